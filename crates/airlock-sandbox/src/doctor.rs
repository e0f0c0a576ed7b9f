//! What protections this machine can enforce, found by trying them.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::{CommandSpec, Confinement, Echo, Limits, SandboxError, run};

#[derive(Debug, Clone, Serialize)]
pub struct Protection {
    pub name: &'static str,
    pub in_force: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Doctor {
    /// `namespaces` (everything), `weaker` (no namespaces) or `none`.
    pub backend: &'static str,
    pub landlock_abi: Option<i32>,
    pub protections: Vec<Protection>,
    /// Why the full backend is unavailable, when it is.
    pub problem: Option<String>,
}

/// The Landlock ABI version the kernel offers, if any.
pub fn landlock_abi() -> Option<i32> {
    // libc: neither rustix nor the landlock crate exposes this version query.
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) only queries.
    let v = unsafe { libc::syscall(444, std::ptr::null::<libc::c_void>(), 0usize, 1u32) };
    (v > 0).then_some(v as i32)
}

/// Tries the sandbox for real: sets it up around a probe script that tests
/// each protection from the inside, in `scratch` (an empty directory).
pub fn diagnose(init_program: &Path, scratch: &Path) -> Doctor {
    let abi = landlock_abi();
    let work = scratch.join("work");
    let secret = scratch.join("secret");
    let root = scratch.join("root");
    for dir in [&work, &secret, &root] {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(secret.join("token"), "probe");
    let outside = scratch.join("outside");
    let script = format!(
        "echo x > {outside} 2>/dev/null && echo write-outside=yes || echo write-outside=no; \
         echo x > {work}/ok 2>/dev/null && echo write-inside=yes || echo write-inside=no; \
         cat {secret}/token 2>/dev/null && echo secret=visible || echo secret=hidden; \
         echo pid=$$; \
         if [ -r /proc/net/dev ]; then echo interfaces=$(tail -n +3 /proc/net/dev | wc -l); fi",
        outside = outside.display(),
        work = work.display(),
        secret = secret.display(),
    );
    let attempt = |weaker: bool| -> Result<String, SandboxError> {
        let spec = CommandSpec {
            argv: vec!["/bin/sh".into(), "-c".into(), script.clone().into()],
            cwd: work.clone(),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            timeout: Some(Duration::from_secs(20)),
            stdout_path: scratch.join("probe.out"),
            stderr_path: scratch.join("probe.err"),
            echo: Echo::None,
            input: crate::Input::Null,
            confinement: Some(Confinement {
                ahead: None,
                host: None,
                init_program: init_program.to_path_buf(),
                writable: vec![(work.clone(), work.clone())],
                read_only: vec![],
                hidden: vec![secret.clone()],
                network: false,
                root: root.clone(),
                weaker,
            }),
            limits: Limits::default(),
        };
        run(&spec)?;
        Ok(std::fs::read_to_string(scratch.join("probe.out")).unwrap_or_default())
    };
    let (backend, output, problem) = match attempt(false) {
        Ok(out) => ("namespaces", out, None),
        Err(full) => match attempt(true) {
            Ok(out) => ("weaker", out, Some(full.to_string())),
            Err(_) => ("none", String::new(), Some(full.to_string())),
        },
    };
    let has = |line: &str| output.lines().any(|l| l.trim() == line);
    let namespaces = backend == "namespaces";
    let protections = vec![
        Protection {
            name: "writes confined to the worktree",
            in_force: has("write-outside=no") && has("write-inside=yes"),
            detail: "read-only view of the system (mount namespace) and Landlock write rules"
                .into(),
        },
        Protection {
            name: "secrets hidden",
            in_force: has("secret=hidden"),
            detail: "secret paths covered by empty tmpfs or /dev/null in a mount namespace".into(),
        },
        Protection {
            name: "no network",
            in_force: namespaces && has("interfaces=1"),
            detail: "a network namespace with only its own loopback".into(),
        },
        Protection {
            name: "whole process tree killed",
            in_force: namespaces && has("pid=2"),
            detail: "a pid namespace whose PID 1 exits with the command".into(),
        },
        Protection {
            name: "no privilege gain",
            in_force: backend != "none",
            detail: "no_new_privs, an empty capability bounding set and a seccomp filter".into(),
        },
        Protection {
            name: "Landlock",
            in_force: backend != "none" && abi.is_some(),
            detail: match abi {
                Some(v) => format!("kernel ABI {v}"),
                None => "not offered by this kernel".into(),
            },
        },
        Protection {
            name: "no io_uring, vsock or raw sockets",
            in_force: backend != "none",
            detail: format!(
                "seccomp: sockets of the {} families only (vsock, packet, AF_ALG and the rest \
                 answer EAFNOSUPPORT); io_uring answers ENOSYS",
                crate::confine::SOCKET_FAMILIES
                    .iter()
                    .map(|(_, name)| *name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    ];
    Doctor {
        backend,
        landlock_abi: abi,
        protections,
        problem,
    }
}
