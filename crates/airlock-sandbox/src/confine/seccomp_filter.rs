//! The seccomp filters of a sandbox: the denied system calls, the absent
//! ones, the permitted socket families, and x32.

use super::{SetupError, fail};

pub(crate) fn seccomp_filters() -> Result<Filters, SetupError> {
    use seccompiler::{SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};
    use std::collections::BTreeMap;
    let step = |e: &dyn std::fmt::Display| fail("building the seccomp filter", e);
    let denied = [
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_open_by_handle_at,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_bpf,
        libc::SYS_userfaultfd,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_fsopen,
        libc::SYS_fsmount,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_mount_setattr,
    ];
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = denied.iter().map(|s| (*s, vec![])).collect();
    // clone with any namespace flag: a new namespace could undo the sandbox's view.
    let ns_flags = [
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWNS,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWCGROUP,
    ];
    let mut clone_rules = Vec::new();
    for flag in ns_flags {
        let cond = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(flag as u64),
            flag as u64,
        )
        .map_err(|e| step(&e))?;
        clone_rules.push(SeccompRule::new(vec![cond]).map_err(|e| step(&e))?);
    }
    rules.insert(libc::SYS_clone, clone_rules);
    let deny = program(rules, libc::EPERM)?;
    // Calls answered as a kernel without them answers, so that programs
    // fall back. clone3 passes its flags in memory, out of a filter's
    // reach: the C library falls back to clone, which is checked above.
    // io_uring does its work in the kernel without system calls a filter
    // could see (opening, connecting, sending), and its code has been a
    // steady source of kernel exploits.
    let absent = program(
        [
            libc::SYS_clone3,
            libc::SYS_io_uring_setup,
            libc::SYS_io_uring_enter,
            libc::SYS_io_uring_register,
        ]
        .into_iter()
        .map(|s| (s, vec![]))
        .collect(),
        libc::ENOSYS,
    )?;
    let families = program(socket_family_rules()?, libc::EAFNOSUPPORT)?;
    Ok(Filters {
        deny,
        absent,
        families,
        x32: x32_program(),
    })
}

/// The seccomp filters of a command: denied calls (`EPERM`), calls
/// answered as absent (`ENOSYS`), socket families refused (`EAFNOSUPPORT`).
/// A filter has one answer, hence three.
pub(crate) struct Filters {
    pub(super) deny: seccompiler::BpfProgram,
    pub(super) absent: seccompiler::BpfProgram,
    pub(super) families: seccompiler::BpfProgram,
    pub(super) x32: seccompiler::BpfProgram,
}

/// The x32 ABI's system calls (on x86_64 kernels built with it) carry the
/// number of their x86_64 twin with bit 30 set, under the x86_64
/// architecture: the other filters, which match exact numbers, never see
/// them, so `mount`, `unshare` or `io_uring_setup` called that way would
/// pass. Every such number is answered `ENOSYS`, as a kernel without the
/// ABI answers. seccompiler cannot compare a number by range, hence a
/// program of our own: load the architecture; anything but x86_64 is left
/// to the other filters (which kill a foreign architecture); load the
/// number; at or above the x32 bit, `ENOSYS`; otherwise allow.
fn x32_program() -> seccompiler::BpfProgram {
    if !cfg!(target_arch = "x86_64") {
        return Vec::new();
    }
    // Classic BPF, as in linux/filter.h and linux/seccomp.h.
    const LOAD_WORD: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS
    const JUMP_IF_EQUAL: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
    const JUMP_IF_AT_LEAST: u16 = 0x05 | 0x30; // BPF_JMP | BPF_JGE | BPF_K
    const RETURN: u16 = 0x06; // BPF_RET | BPF_K
    const NR_OFFSET: u32 = 0; // seccomp_data.nr
    const ARCH_OFFSET: u32 = 4; // seccomp_data.arch
    const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let op = |code, jt, jf, k| seccompiler::sock_filter { code, jt, jf, k };
    vec![
        op(LOAD_WORD, 0, 0, ARCH_OFFSET),
        op(JUMP_IF_EQUAL, 0, 3, AUDIT_ARCH_X86_64),
        op(LOAD_WORD, 0, 0, NR_OFFSET),
        op(JUMP_IF_AT_LEAST, 0, 1, X32_SYSCALL_BIT),
        op(RETURN, 0, 0, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
        op(RETURN, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]
}

/// Socket families a command may use: Unix sockets, IPv4 and IPv6 (with
/// the network off they reach only the sandbox's own loopback), and
/// routing netlink (what the C library's resolver and `ip` ask about
/// interfaces and addresses). Everything else is answered as a kernel
/// without the family answers: vsock, which no network namespace
/// confines, reaches the hypervisor; packet, crypto (`AF_ALG`), key,
/// TIPC, RDS, XDP, Bluetooth, CAN, netfilter and the other netlink
/// protocols are kernel code no build or test needs.
pub(crate) const SOCKET_FAMILIES: &[(libc::c_int, &str)] = &[
    (libc::AF_UNIX, "Unix"),
    (libc::AF_INET, "IPv4"),
    (libc::AF_INET6, "IPv6"),
    (libc::AF_NETLINK, "netlink (routing only)"),
];

fn socket_family_rules()
-> Result<std::collections::BTreeMap<i64, Vec<seccompiler::SeccompRule>>, SetupError> {
    use seccompiler::{SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};
    let step = |e: &dyn std::fmt::Display| fail("building the seccomp filter", e);
    // The family and protocol are C ints: compared as 32 bits, as the
    // kernel reads them.
    let arg = |index: u8, op: SeccompCmpOp, value: libc::c_int| {
        SeccompCondition::new(index, SeccompCmpArgLen::Dword, op, value as u32 as u64)
            .map_err(|e| step(&e))
    };
    let other_family = SOCKET_FAMILIES
        .iter()
        .map(|(family, _)| arg(0, SeccompCmpOp::Ne, *family))
        .collect::<Result<Vec<_>, _>>()?;
    let other_netlink = vec![
        arg(0, SeccompCmpOp::Eq, libc::AF_NETLINK)?,
        arg(2, SeccompCmpOp::Ne, libc::NETLINK_ROUTE)?,
    ];
    let rule = |conditions| SeccompRule::new(conditions).map_err(|e| step(&e));
    Ok([
        (
            libc::SYS_socket,
            vec![rule(other_family)?, rule(other_netlink)?],
        ),
        // Pairs are Unix sockets (TIPC makes pairs too).
        (
            libc::SYS_socketpair,
            vec![rule(vec![arg(0, SeccompCmpOp::Ne, libc::AF_UNIX)?])?],
        ),
    ]
    .into_iter()
    .collect())
}

/// A filter answering `errno` to the calls `rules` match, allowing the rest.
fn program(
    rules: std::collections::BTreeMap<i64, Vec<seccompiler::SeccompRule>>,
    errno: libc::c_int,
) -> Result<seccompiler::BpfProgram, SetupError> {
    use seccompiler::{SeccompAction, SeccompFilter, TargetArch};
    let step = |e: &dyn std::fmt::Display| fail("building the seccomp filter", e);
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| step(&e))?;
    SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch,
    )
    .map_err(|e| step(&e))?
    .try_into()
    .map_err(|e: seccompiler::BackendError| step(&e))
}

#[cfg(test)]
mod tests {
    use super::{SOCKET_FAMILIES, seccomp_filters, x32_program};

    /// Runs a classic BPF program of the instructions seccomp filters of
    /// ours use on a system call (architecture, number, arguments), as the
    /// kernel would: the x32 filter cannot be tried on a kernel without
    /// x32, and a denied call cannot be tried without applying the filter
    /// to the test process, so their logic is checked here instruction by
    /// instruction.
    fn run(program: &[seccompiler::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        // struct seccomp_data: nr, arch, instruction_pointer, args[6].
        let mut data = Vec::with_capacity(64);
        data.extend(nr.to_ne_bytes());
        data.extend(arch.to_ne_bytes());
        data.extend(0u64.to_ne_bytes());
        for arg in args {
            data.extend(arg.to_ne_bytes());
        }
        let word = |k: u32| {
            let k = k as usize;
            u32::from_ne_bytes(data[k..k + 4].try_into().unwrap())
        };
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let op = &program[pc];
            let jump = |taken: bool| usize::from(if taken { op.jt } else { op.jf });
            match op.code {
                0x20 => acc = word(op.k),
                0x54 => acc &= op.k,
                0x05 => pc += op.k as usize,
                0x15 => pc += jump(acc == op.k),
                0x25 => pc += jump(acc > op.k),
                0x35 => pc += jump(acc >= op.k),
                0x45 => pc += jump(acc & op.k != 0),
                0x06 => return op.k,
                other => panic!("instruction {other:#x} is not one the filters use"),
            }
            pc += 1;
        }
    }

    fn verdict(program: &[seccompiler::sock_filter], arch: u32, nr: u32) -> u32 {
        run(program, arch, nr, [0; 6])
    }

    fn errno(e: libc::c_int) -> u32 {
        libc::SECCOMP_RET_ERRNO | e as u32
    }

    const X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;

    /// Calls that could undo the sandbox's view or reach into the kernel
    /// are denied; everyday calls pass; `clone` is denied only with a
    /// namespace flag; io_uring and clone3 are answered as absent.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_deny_filter_refuses_its_calls_and_allows_the_rest() {
        let filters = seccomp_filters().unwrap();
        for call in [
            libc::SYS_mount,
            libc::SYS_umount2,
            libc::SYS_pivot_root,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_bpf,
            libc::SYS_keyctl,
            libc::SYS_init_module,
            libc::SYS_kexec_load,
            libc::SYS_open_tree,
            libc::SYS_mount_setattr,
        ] {
            let nr = call as u32;
            assert_eq!(
                verdict(&filters.deny, X86_64, nr),
                errno(libc::EPERM),
                "{nr}"
            );
        }
        for call in [
            libc::SYS_read,
            libc::SYS_openat,
            libc::SYS_execve,
            libc::SYS_socket,
        ] {
            let nr = call as u32;
            assert_eq!(
                verdict(&filters.deny, X86_64, nr),
                libc::SECCOMP_RET_ALLOW,
                "{nr}"
            );
        }
        let clone = libc::SYS_clone as u32;
        let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
        assert_eq!(
            run(&filters.deny, X86_64, clone, [thread, 0, 0, 0, 0, 0]),
            libc::SECCOMP_RET_ALLOW
        );
        for flag in [libc::CLONE_NEWUSER, libc::CLONE_NEWNS, libc::CLONE_NEWNET] {
            let flags = thread | flag as u64;
            assert_eq!(
                run(&filters.deny, X86_64, clone, [flags, 0, 0, 0, 0, 0]),
                errno(libc::EPERM),
                "{flag:#x}"
            );
        }
        for call in [
            libc::SYS_clone3,
            libc::SYS_io_uring_setup,
            libc::SYS_io_uring_enter,
        ] {
            let nr = call as u32;
            assert_eq!(
                verdict(&filters.absent, X86_64, nr),
                errno(libc::ENOSYS),
                "{nr}"
            );
        }
        assert_eq!(
            verdict(&filters.absent, X86_64, libc::SYS_read as u32),
            libc::SECCOMP_RET_ALLOW
        );
    }

    /// Sockets of the listed families open; any other family, and netlink
    /// other than routing, is answered as absent.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn sockets_of_other_families_are_refused() {
        let families = seccomp_filters().unwrap().families;
        let socket = |family: libc::c_int, protocol: libc::c_int| {
            let args = [
                family as u64,
                libc::SOCK_STREAM as u64,
                protocol as u64,
                0,
                0,
                0,
            ];
            run(&families, X86_64, libc::SYS_socket as u32, args)
        };
        for (family, name) in SOCKET_FAMILIES {
            assert_eq!(socket(*family, 0), libc::SECCOMP_RET_ALLOW, "{name}");
        }
        for family in [
            libc::AF_PACKET,
            libc::AF_VSOCK,
            libc::AF_ALG,
            libc::AF_BLUETOOTH,
        ] {
            assert_eq!(socket(family, 0), errno(libc::EAFNOSUPPORT), "{family}");
        }
        assert_eq!(
            socket(libc::AF_NETLINK, libc::NETLINK_AUDIT),
            errno(libc::EAFNOSUPPORT)
        );
        let pair = |family: libc::c_int| {
            let args = [family as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0];
            run(&families, X86_64, libc::SYS_socketpair as u32, args)
        };
        assert_eq!(pair(libc::AF_UNIX), libc::SECCOMP_RET_ALLOW);
        assert_eq!(pair(libc::AF_TIPC), errno(libc::EAFNOSUPPORT));
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn x32_system_calls_are_answered_as_absent() {
        const I386: u32 = 3 | 0x4000_0000;
        let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        let program = x32_program();
        for call in [
            libc::SYS_mount,
            libc::SYS_unshare,
            libc::SYS_io_uring_setup,
            0,
            511,
        ] {
            let nr = call as u32;
            assert_eq!(
                verdict(&program, X86_64, nr | 0x4000_0000),
                enosys,
                "x32 {nr}"
            );
            assert_eq!(
                verdict(&program, X86_64, nr),
                libc::SECCOMP_RET_ALLOW,
                "{nr}"
            );
            // Other architectures are the other filters' to kill.
            assert_eq!(
                verdict(&program, I386, nr | 0x4000_0000),
                libc::SECCOMP_RET_ALLOW
            );
        }
        assert_eq!(verdict(&program, X86_64, u32::MAX), enosys);
    }
}
