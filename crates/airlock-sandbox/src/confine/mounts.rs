//! The sandbox's view of the files: the host's tree bound read-only, secret
//! paths hidden, granted paths bound back, a fresh `/proc` and `/dev/shm`,
//! then `pivot_root`.

use super::failed;
use super::{InitSpec, SetupError, check, cstr, fail, os};
use rustix::mount::{MountFlags, UnmountFlags, unmount};
use rustix::process::{chdir, pivot_root};
use std::ffi::CString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// Mounts an empty, private `/dev/shm` on `target`, if there is one.
fn mount_shm(target: &[u8]) -> Result<(), SetupError> {
    if !Path::new(&os(target)).is_dir() {
        return Ok(());
    }
    mount(
        Some(b"tmpfs"),
        target,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some("size=64m,mode=1777"),
        "mounting /dev/shm",
    )
}

/// Mounts a fresh proc (of the current pid namespace) on `target`.
pub(crate) fn mount_proc(target: &[u8], step: &str) -> Result<(), SetupError> {
    mount(
        Some(b"proc"),
        target,
        Some("proc"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        None,
        step,
    )
}

fn mount(
    src: Option<&[u8]>,
    target: &[u8],
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
    step: &str,
) -> Result<(), SetupError> {
    let src = src.map(cstr).transpose()?;
    let target_c = cstr(target)?;
    let fstype = fstype.map(|f| CString::new(f).expect("static"));
    let data = data.map(|d| CString::new(d).expect("static"));
    // No source or type is passed as "": the kernel reads neither for a
    // change of propagation, a bind's type, or a remount.
    rustix::mount::mount(
        src.as_deref().unwrap_or(c""),
        target_c.as_c_str(),
        fstype.as_deref().unwrap_or(c""),
        MountFlags::from_bits_retain(flags as libc::c_uint),
        data.as_deref(),
    )
    .map_err(failed(format!(
        "{step} ({})",
        String::from_utf8_lossy(target)
    )))
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const AT_RECURSIVE: libc::c_int = 0x8000;

fn set_read_only_recursive(target: &[u8]) -> Result<(), SetupError> {
    let path = cstr(target)?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // libc: rustix has no mount_setattr.
    // SAFETY: mount_setattr with a valid path and attribute struct.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            AT_RECURSIVE as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(rc as libc::c_int, "making the whole filesystem read-only")
}

fn join(root: &[u8], path: &[u8]) -> Vec<u8> {
    let mut out = root.to_vec();
    out.extend_from_slice(path);
    out
}

/// One step of the sandbox's view after the read-only bind of `/`.
#[derive(Debug, PartialEq)]
enum MountOp<'a> {
    /// A path hidden under an empty tmpfs (a directory) or `/dev/null`.
    Hide(&'a [u8]),
    /// A (source, target) bind, writable or not.
    Bind(&'a [u8], &'a [u8], bool),
}

/// Hidden and writable paths, parents before children, so that a later
/// mount is never buried under an earlier one (a private /tmp bound over
/// the host's must come before a worktree that lives below /tmp).
fn mount_plan(spec: &InitSpec) -> Vec<MountOp<'_>> {
    let mut ops: Vec<MountOp> = spec.hidden.iter().map(|h| MountOp::Hide(h)).collect();
    ops.extend(spec.binds.iter().map(|(s, t)| MountOp::Bind(s, t, true)));
    ops.extend(
        spec.read_only
            .iter()
            .map(|(s, t)| MountOp::Bind(s, t, false)),
    );
    let depth = |op: &MountOp| {
        let target = match op {
            MountOp::Hide(t) | MountOp::Bind(_, t, _) => t,
        };
        target
            .split(|b| *b == b'/')
            .filter(|c| !c.is_empty())
            .count()
    };
    ops.sort_by_key(|op| depth(op));
    ops
}

pub(crate) fn build_root(spec: &InitSpec) -> Result<(), SetupError> {
    let root = &spec.root;
    mount(
        None,
        b"/",
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
        "making mounts private",
    )?;
    mount(
        Some(b"/"),
        root,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
        "binding the filesystem into the sandbox",
    )?;
    set_read_only_recursive(root)?;

    let mut hidden_dirs = Vec::new();
    for op in mount_plan(spec) {
        match op {
            MountOp::Hide(path) => {
                // Judged inside the new root: what is not visible needs no hiding.
                let target = join(root, path);
                let Ok(meta) = std::fs::symlink_metadata(Path::new(&os(&target))) else {
                    continue;
                };
                let hidden = if meta.is_dir() {
                    mount(
                        Some(b"tmpfs"),
                        &target,
                        Some("tmpfs"),
                        libc::MS_NOSUID | libc::MS_NODEV,
                        Some("size=1m,mode=0755"),
                        "hiding a directory",
                    )
                    .map(|()| hidden_dirs.push(target.clone()))
                } else if meta.is_file() {
                    mount(
                        Some(b"/dev/null"),
                        &target,
                        None,
                        libc::MS_BIND,
                        None,
                        "hiding a file",
                    )
                } else if std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) {
                    // connect() to /dev/null is refused.
                    mount(
                        Some(b"/dev/null"),
                        &target,
                        None,
                        libc::MS_BIND,
                        None,
                        "hiding a socket",
                    )
                } else {
                    Ok(())
                };
                // Removed since it was looked at (a socket of a daemon or a
                // test that just ended): nothing is there to hide.
                let gone = || std::fs::symlink_metadata(Path::new(&os(&target))).is_err();
                match hidden {
                    Err(_) if gone() => {}
                    hidden => hidden?,
                }
            }
            MountOp::Bind(source, target, writable) => {
                let inside = join(root, target);
                let inside_path = PathBuf::from(os(&inside));
                if !inside_path.exists() {
                    // Below a hidden directory (the home), the mount point
                    // is made in its empty tmpfs: a directory, or an empty
                    // file for a file.
                    let is_file =
                        std::fs::metadata(Path::new(&os(source))).is_ok_and(|m| !m.is_dir());
                    let dir = if is_file {
                        inside_path.parent()
                    } else {
                        Some(inside_path.as_path())
                    };
                    dir.map_or(Ok(()), std::fs::create_dir_all)
                        .and_then(|()| {
                            if is_file {
                                std::fs::File::create(&inside_path).map(drop)
                            } else {
                                Ok(())
                            }
                        })
                        .map_err(|e| {
                            fail(
                                format!("making the mount point {}", inside_path.display()),
                                e,
                            )
                        })?;
                }
                mount(
                    Some(source),
                    &inside,
                    None,
                    libc::MS_BIND | libc::MS_REC,
                    None,
                    "binding a path into the sandbox",
                )?;
                if !writable {
                    set_read_only_recursive(&inside)?;
                }
            }
        }
    }
    for dir in &hidden_dirs {
        mount(
            None,
            dir,
            None,
            libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
            None,
            "making a hidden directory read-only",
        )?;
    }
    mount_proc(&join(root, b"/proc"), "mounting /proc for the sandbox")?;
    mount_shm(&join(root, b"/dev/shm"))?;

    let root_c = cstr(root)?;
    // pivot_root(".", "."): the old root is stacked under the new one and
    // detached right after.
    chdir(root_c.as_c_str()).map_err(failed("entering the new root"))?;
    pivot_root(".", ".").map_err(failed("pivoting into the new root"))?;
    unmount(".", UnmountFlags::DETACH).map_err(failed("detaching the old root"))?;
    chdir("/").map_err(failed("entering the new root"))?;
    Ok(())
}

/// `std::fs::canonicalize` for many paths that share directories: each
/// directory on the way is looked at once (one `lstat`, where
/// `canonicalize` reads every component of every path again). A sandbox
/// resolves every hidden path, a score of them under the same home, before
/// every command.
#[derive(Debug, Clone, Default)]
pub(crate) struct RealPaths {
    seen: std::collections::HashMap<PathBuf, Option<PathBuf>>,
}

impl RealPaths {
    /// The path with every link resolved, if it exists: as
    /// `canonicalize`, except that a trailing `/` after a file resolves
    /// rather than fails (which only ever hides more).
    pub(crate) fn real(&mut self, path: &Path) -> Option<PathBuf> {
        use std::path::Component;
        let plain = path.is_absolute()
            && path
                .components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
        let (true, Some(parent), Some(name)) = (plain, path.parent(), path.file_name()) else {
            // The root, `..`, a relative path: rare enough to resolve whole.
            return std::fs::canonicalize(path).ok();
        };
        if let Some(known) = self.seen.get(path) {
            return known.clone();
        }
        let real = self.real(parent).and_then(|dir| {
            let candidate = dir.join(name);
            match std::fs::symlink_metadata(&candidate) {
                Ok(meta) if meta.file_type().is_symlink() => std::fs::canonicalize(&candidate).ok(),
                Ok(_) => Some(candidate),
                Err(_) => None,
            }
        });
        self.seen.insert(path.to_path_buf(), real.clone());
        real
    }
}

/// The host's bound pathname sockets, as canonical paths, from
/// `/proc/net/unix` (read before leaving the host's network namespace) and
/// from the table of every other network namespace a process this one may
/// inspect is in: a daemon in a namespace of its own (rootless docker's
/// dockerd under rootlesskit, a service with a private network) binds its
/// socket in the shared file system, where connect() by path reaches it from
/// any namespace, yet only its own namespace's table lists it.
/// Sockets bound later are not covered; Landlock ABI 9 covers them all.
pub(crate) fn host_sockets() -> Vec<Vec<u8>> {
    let mut tables = Vec::new();
    if let Ok(table) = std::fs::read("/proc/net/unix") {
        tables.push((table, false));
    }
    tables.extend(
        other_network_namespaces_unix_tables()
            .into_iter()
            .map(|t| (t, true)),
    );
    let mut real = RealPaths::default();
    let mut paths: Vec<Vec<u8>> = Vec::new();
    for (table, foreign) in &tables {
        // Accepted connections repeat their listener's path: dedup before resolving.
        let bound: std::collections::BTreeSet<&[u8]> = table
            .split(|b| *b == b'\n')
            .skip(1)
            .filter_map(|line| {
                // Num RefCount Protocol Flags Type St Inode (padded), one space, Path.
                let mut rest = line;
                for _ in 0..7 {
                    rest = rest.trim_ascii_start();
                    rest = &rest[rest.iter().position(|b| *b == b' ')?..];
                }
                rest.strip_prefix(b" ")
            })
            // A socket bound through a descriptor (`/proc/self/fd/N/…`) names
            // a file only in the process that bound it: resolved here, it
            // would name whatever this process has open as N.
            .filter(|p| {
                p.starts_with(b"/") && !p.starts_with(b"/proc/") && !p.starts_with(b"/dev/fd/")
            })
            .collect();
        paths.extend(
            bound
                .into_iter()
                .filter_map(|p| real.real(Path::new(&os(p))))
                // A path of another namespace's process may be of another
                // mount namespace too: here it may name a file of the
                // host's, which is not to be hidden for that.
                .filter(|p| {
                    !*foreign
                        || std::fs::symlink_metadata(p).is_ok_and(|m| {
                            std::os::unix::fs::FileTypeExt::is_socket(&m.file_type())
                        })
                })
                .map(|p| p.into_os_string().into_vec()),
        );
    }
    paths.sort();
    paths.dedup();
    paths
}

/// `/proc/PID/net/unix` of one process in each network namespace other than
/// this one's, for every process whose namespace this one may read.
///
/// Every process is looked at each time: a process can enter another
/// namespace (`unshare`, `setns`) without anything cheaper than its
/// `ns/net` link showing it, so no earlier walk vouches for this one. One
/// `readlinkat` per process through a descriptor of `/proc`, into a buffer
/// reused, and no path built: the walk is that system call's cost, about
/// 3 µs a process (BENCHMARKS.md, exec: other network namespaces' sockets).
fn other_network_namespaces_unix_tables() -> Vec<Vec<u8>> {
    use rustix::fs::{Dir, Mode, OFlags, openat, readlinkat};
    let Ok(proc_fd) = openat(
        rustix::fs::CWD,
        "/proc",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return Vec::new();
    };
    let mut link = Vec::with_capacity(32);
    let mut seen = std::collections::HashSet::new();
    if let Ok(own) = readlinkat(&proc_fd, "self/ns/net", std::mem::take(&mut link)) {
        link = own.into_bytes();
        seen.insert(link.clone());
    }
    let Ok(entries) = Dir::read_from(&proc_fd) else {
        return Vec::new();
    };
    let mut tables = Vec::new();
    let mut path = Vec::with_capacity(32);
    for entry in entries.flatten() {
        let pid = entry.file_name().to_bytes();
        if pid.is_empty() || !pid.iter().all(u8::is_ascii_digit) {
            continue;
        }
        path.clear();
        path.extend_from_slice(pid);
        path.extend_from_slice(b"/ns/net");
        let Ok(ns) = readlinkat(&proc_fd, path.as_slice(), std::mem::take(&mut link)) else {
            continue;
        };
        link = ns.into_bytes();
        if seen.contains(&link) {
            continue;
        }
        seen.insert(link.clone());
        path.truncate(pid.len());
        path.extend_from_slice(b"/net/unix");
        if let Ok(fd) = openat(
            &proc_fd,
            path.as_slice(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            let mut table = Vec::new();
            if std::io::Read::read_to_end(&mut std::fs::File::from(fd), &mut table).is_ok() {
                tables.push(table);
            }
        }
    }
    tables
}

#[cfg(test)]
mod tests {
    use super::{MountOp, RealPaths, host_sockets, mount_plan};
    use crate::confine::InitSpec;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::symlink;
    use std::os::unix::net::UnixListener;
    use std::path::PathBuf;

    /// Resolving through remembered directories gives what resolving each
    /// path whole gives: links at the end, links on the way, paths missing
    /// at either end, `..`, relative paths.
    #[test]
    fn real_paths_resolve_as_canonicalize_does() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        std::fs::create_dir_all(base.join("home/.config")).unwrap();
        std::fs::write(base.join("home/.netrc"), "secret").unwrap();
        std::fs::create_dir(base.join("elsewhere")).unwrap();
        std::fs::write(base.join("elsewhere/token"), "secret").unwrap();
        symlink(base.join("elsewhere/token"), base.join("home/.token")).unwrap();
        symlink(base.join("home"), base.join("link-to-home")).unwrap();
        symlink(base.join("gone"), base.join("home/dangling")).unwrap();
        let paths: Vec<PathBuf> = [
            "home/.netrc",
            "home/.token",
            "home/.config",
            "home/missing",
            "home/dangling",
            "link-to-home/.netrc",
            "link-to-home/.token",
            "missing-dir/.netrc",
            "home/.config/../.netrc",
            "home/.config/..",
            "home/.netrc/below-a-file",
            "link-to-home/.config",
        ]
        .iter()
        .map(|p| base.join(p))
        .chain([PathBuf::from("relative/path"), PathBuf::from("/")])
        .collect();
        let mut real = RealPaths::default();
        for path in &paths {
            // Twice: the second time from what the first remembered.
            for _ in 0..2 {
                assert_eq!(
                    real.real(path),
                    std::fs::canonicalize(path).ok(),
                    "{}",
                    path.display()
                );
            }
        }
        assert_eq!(
            real.real(&base.join("home/.token")),
            Some(std::fs::canonicalize(base).unwrap().join("elsewhere/token"))
        );
    }

    /// A socket bound through a descriptor names a file only in the process
    /// that bound it; resolved elsewhere it names whatever that process has
    /// open under the number (here: another directory). Such names are
    /// left out; a socket bound by its path is listed by its real path.
    #[test]
    fn host_sockets_are_listed_by_real_paths_only() {
        let tmp = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(tmp.path()).unwrap();
        for dir in ["bound-here", "opened-later", "direct"] {
            std::fs::create_dir(base.join(dir)).unwrap();
        }
        let here = std::fs::File::open(base.join("bound-here")).unwrap();
        let through_fd = format!("/proc/self/fd/{}/through-fd.sock", here.as_raw_fd());
        let _by_fd = UnixListener::bind(&through_fd).unwrap();
        drop(here);
        // Most likely under the number just freed, and holding a file of
        // the socket's name: resolved here, the name would lead to it.
        std::fs::write(base.join("opened-later/through-fd.sock"), "").unwrap();
        let _later = std::fs::File::open(base.join("opened-later")).unwrap();
        let direct = base.join("direct/by-path.sock");
        let _by_path = UnixListener::bind(&direct).unwrap();
        let listed: Vec<String> = host_sockets()
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        assert!(
            listed.iter().any(|p| *p == direct.to_string_lossy()),
            "{listed:?}"
        );
        assert!(
            !listed.iter().any(|p| p.contains("through-fd")),
            "{listed:?}"
        );
    }

    /// A socket bound by a process in a network namespace of its own is
    /// listed (connect() by path reaches it from anywhere), though the
    /// table of this process's namespace does not have it; one bound by
    /// the same program here is listed too, from that table.
    #[test]
    fn host_sockets_lists_those_bound_in_other_network_namespaces() {
        let tmp = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(tmp.path()).unwrap();
        let bind = "import socket, sys, time\n\
                    s = socket.socket(socket.AF_UNIX)\n\
                    s.bind(sys.argv[1]); s.listen(1)\n\
                    open(sys.argv[2], 'w').close()\n\
                    time.sleep(60)\n";
        let start = |prefix: &[&str], name: &str| {
            let socket = base.join(format!("{name}.sock"));
            let ready = base.join(format!("{name}.ready"));
            let child = std::process::Command::new(prefix[0])
                .args(&prefix[1..])
                .args(["python3", "-c", bind])
                .arg(&socket)
                .arg(&ready)
                .stdin(std::process::Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{prefix:?} python3: {e}"));
            (child, socket, ready)
        };
        let mut daemons = [
            start(&["unshare", "-rn"], "own-namespace"),
            start(&["env"], "this-namespace"),
        ];
        for (child, _, ready) in &mut daemons {
            while !ready.exists() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("a socket's daemon ended before it bound: {status}");
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        let listed: Vec<String> = host_sockets()
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        for (child, _, _) in &mut daemons {
            let _ = child.kill();
            let _ = child.wait();
        }
        for (_, socket, _) in &daemons {
            assert!(
                listed.iter().any(|p| *p == socket.to_string_lossy()),
                "{} not in {listed:?}",
                socket.display()
            );
        }
    }

    fn spec(hidden: &[&str], binds: &[(&str, &str)], read_only: &[(&str, &str)]) -> InitSpec {
        let pairs = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(s, t)| (s.as_bytes().to_vec(), t.as_bytes().to_vec()))
                .collect()
        };
        InitSpec {
            argv: vec![b"true".to_vec()],
            cwd: b"/".to_vec(),
            env: vec![],
            binds: pairs(binds),
            read_only: pairs(read_only),
            hidden: hidden.iter().map(|h| h.as_bytes().to_vec()).collect(),
            network: false,
            root: b"/tmp/root".to_vec(),
            memory_bytes: None,
            processes: None,
            file_size_bytes: None,
            weaker: false,
            gate: false,
            terminal: false,
            egress: None,
        }
    }

    /// Parents are mounted before their children whatever the order they
    /// were given in: a worktree below /tmp is bound after the private /tmp,
    /// a path re-exposed below a hidden home after the home is hidden.
    #[test]
    fn the_mount_plan_puts_parents_before_children() {
        let spec = spec(
            &["/home/u/.ssh", "/home/u"],
            &[("/w/tmp/run/wt", "/tmp/run/wt"), ("/w/tmp", "/tmp")],
            &[("/home/u/.cargo", "/home/u/.cargo")],
        );
        assert_eq!(
            mount_plan(&spec),
            [
                MountOp::Bind(b"/w/tmp", b"/tmp", true),
                MountOp::Hide(b"/home/u"),
                MountOp::Hide(b"/home/u/.ssh"),
                MountOp::Bind(b"/w/tmp/run/wt", b"/tmp/run/wt", true),
                MountOp::Bind(b"/home/u/.cargo", b"/home/u/.cargo", false),
            ]
        );
    }

    /// At the same depth the given order stays: hidden paths, then writable
    /// binds, then read-only ones; depth counts components, not slashes.
    #[test]
    fn the_mount_plan_keeps_the_given_order_at_one_depth() {
        let spec = spec(
            &["/b//c/", "/a"],
            &[("/s1", "/x/y"), ("/s2", "/z")],
            &[("/s3", "/ro")],
        );
        assert_eq!(
            mount_plan(&spec),
            [
                MountOp::Hide(b"/a"),
                MountOp::Bind(b"/s2", b"/z", true),
                MountOp::Bind(b"/s3", b"/ro", false),
                MountOp::Hide(b"/b//c/"),
                MountOp::Bind(b"/s1", b"/x/y", true),
            ]
        );
        assert!(mount_plan(&spec_empty()).is_empty());
    }

    fn spec_empty() -> InitSpec {
        spec(&[], &[], &[])
    }
}
