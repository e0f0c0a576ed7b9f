//! The client side: naming the host for a sandbox's view, connecting to it
//! or starting it.

use super::{
    DIR_FD, HOST_ARG, HostSettings, HostSpec, LISTEN_FD, LOCK_FD, LOCK_FILE, READY_FD, SPEC_FD,
    connect_to, evict, listen_on, mark_used, owner_tag,
};
use crate::confine::{self, InitReport, InitSpec, fail};
use crate::{Confinement, SandboxError};
use sha2::{Digest, Sha256};
use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Connects to the host for this confinement, starting it if there is none.
/// `None` when no host can be kept here (its directory cannot be written, a
/// socket cannot be bound): the caller builds a sandbox for the command
/// alone. An error when the host could not build its sandbox: a sandbox of
/// one's own would fail the same way.
pub(crate) fn connect(
    confinement: &Confinement,
    settings: &HostSettings,
    init: &InitSpec,
) -> Result<Option<OwnedFd>, SandboxError> {
    // The host's pathname sockets as they are now: hidden in the sandbox,
    // and part of its name, so that a socket bound since (a restarted
    // daemon) gets a host that hides it too. Sockets below a hidden
    // directory are hidden with it, and covered whenever they appear: hosts'
    // own sockets are, so that one host starting does not rename the others.
    let mut init = init.clone();
    let dir = &settings.dir;
    let ahead = confinement.ahead.as_deref();
    // The hosts' own directory is hidden, whatever the caller hides, and by
    // its real path: a hidden path that is a link is not covered.
    let real_dir = match ahead.and_then(|a| a.hosts_dir.as_ref()) {
        Some((made, real)) if made == dir => real.clone(),
        _ => {
            if crate::private::private_dir(dir).is_err() {
                return Ok(None);
            }
            let Ok(real) = std::fs::canonicalize(dir) else {
                return Ok(None);
            };
            real
        }
    };
    init.hidden.push(real_dir.as_os_str().as_bytes().to_vec());
    let sockets = match ahead.and_then(|a| a.sockets.clone()) {
        Some(sockets) => sockets,
        None => confine::host_sockets(),
    };
    let sockets: Vec<Vec<u8>> = sockets
        .into_iter()
        .filter(|socket| {
            !init.hidden.iter().any(|dir| {
                Path::new(std::ffi::OsStr::from_bytes(socket))
                    .starts_with(std::ffi::OsStr::from_bytes(dir))
            })
        })
        .collect();
    init.hidden.extend(sockets);
    let init = &init;
    let key = host_key(confinement, settings, init);
    let socket_name = match &settings.owner {
        Some(owner) => format!("{}-{key}.sock", owner_tag(owner)),
        None => format!("{key}.sock"),
    };
    let lock_path = dir.join(LOCK_FILE);
    let open_lock = || {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
    };
    let Ok(lock) = open_lock() else {
        return Ok(None);
    };
    // Released when it is closed.
    if rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).is_err() {
        return Ok(None);
    }
    let Ok(dir_fd) = File::open(dir) else {
        return Ok(None);
    };
    // The socket's path through the directory's descriptor: the directory
    // can be longer than a socket address allows.
    let socket_path = format!("/proc/self/fd/{}/{socket_name}", dir_fd.as_raw_fd());
    if let Ok(sock) = connect_to(&socket_path) {
        mark_used(&dir_fd, &socket_name);
        return Ok(Some(sock));
    }
    let _ = std::fs::remove_file(dir.join(&socket_name));
    // One more host: the least recently used go first if that is too many.
    if settings.max_hosts > 0 {
        evict(dir, settings.max_hosts - 1);
    }
    let (Ok(listener), Ok(host_lock)) = (listen_on(&socket_path), open_lock()) else {
        return Ok(None);
    };
    let socket_ino = std::fs::symlink_metadata(dir.join(&socket_name))
        .map(|m| m.ino())
        .unwrap_or(0);
    let started = Started {
        listener: &listener,
        lock: &host_lock,
        dir: &dir_fd,
        socket: socket_name,
        socket_ino,
    };
    // A host that cannot even be started (its specification too large for
    // the environment, say): a sandbox of the command's own instead.
    match start(confinement, settings, init, started) {
        Ok(()) => {}
        Err(SandboxError::Spawn { .. }) => return Ok(None),
        Err(e) => return Err(e),
    }
    drop(listener);
    Ok(connect_to(&socket_path).ok())
}

/// Device (major, minor), inode, birth time (seconds, nanoseconds).
pub(crate) type Identity = (u32, u32, u64, i64, u32);

/// Which file `path` is now: device, inode and birth time (the change
/// time where the filesystem keeps none). An inode number alone is reused
/// as soon as it is freed: a secret deleted and written again could get the
/// same one, and a stale host, whose cover over it went with the old file,
/// would show it.
pub(crate) fn identity(path: &[u8]) -> Option<Identity> {
    let st = statx_nofollow(
        path,
        libc::STATX_INO | libc::STATX_BTIME | libc::STATX_CTIME,
    )?;
    let born = if st.stx_mask & libc::STATX_BTIME != 0 {
        st.stx_btime
    } else {
        st.stx_ctime
    };
    Some((
        st.stx_dev_major,
        st.stx_dev_minor,
        st.stx_ino,
        born.tv_sec,
        born.tv_nsec,
    ))
}

/// `statx` of `path` itself (not what a link leads to), asking for `mask`.
pub(crate) fn statx_nofollow(path: &[u8], mask: libc::c_uint) -> Option<rustix::fs::Statx> {
    use rustix::fs::{AtFlags, CWD, StatxFlags, statx};
    let path = CString::new(path).ok()?;
    statx(
        CWD,
        path.as_c_str(),
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::from_bits_retain(mask),
    )
    .ok()
}

/// The host's name: a digest of everything that shapes its sandbox,
/// including which file each path is now. A directory removed and made
/// again (a scratch checkout), a secret file or a host socket that appeared
/// since, all mean a different sandbox, so a different host.
fn host_key(confinement: &Confinement, settings: &HostSettings, init: &InitSpec) -> String {
    let identity = |path: &[u8]| match confinement.ahead.as_deref() {
        Some(ahead) => ahead.identity(path),
        None => identity(path),
    };
    let sources: Vec<_> = init
        .binds
        .iter()
        .chain(&init.read_only)
        .map(|(source, _)| identity(source))
        .collect();
    let hidden: Vec<_> = init.hidden.iter().map(|p| identity(p)).collect();
    let view = (
        &init.binds,
        &init.read_only,
        &init.hidden,
        init.network,
        // With egress: a network namespace and bridge per command.
        &init.egress,
        &init.root,
        settings.idle.as_millis() as u64,
        sources,
        hidden,
    );
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(&view).unwrap_or_default());
    h.update(confinement.init_program.as_os_str().as_bytes());
    // A rebuilt airlock gets a new host rather than talking to the old code.
    if let Ok(meta) = std::fs::metadata(&confinement.init_program) {
        h.update(meta.ino().to_le_bytes());
        h.update(meta.mtime().to_le_bytes());
        h.update(meta.mtime_nsec().to_le_bytes());
        h.update(meta.size().to_le_bytes());
    }
    hex::encode(&h.finalize()[..12])
}

/// What a new host is handed: its listening socket, its own descriptor of
/// the lock file, the hosts' directory and its socket's name there.
struct Started<'a> {
    listener: &'a OwnedFd,
    lock: &'a File,
    dir: &'a File,
    socket: String,
    socket_ino: u64,
}

/// Starts `<init program> __sandbox-host` and waits until its sandbox is
/// built (or its setup failed).
fn start(
    confinement: &Confinement,
    settings: &HostSettings,
    init: &InitSpec,
    handed: Started,
) -> Result<(), SandboxError> {
    // Only the sandbox's view: each command brings its own argv and
    // environment.
    let mut view = init.clone();
    view.argv.clear();
    view.env.clear();
    let spec = HostSpec {
        init: view,
        idle_ms: settings.idle.as_millis() as u64,
        socket: handed.socket,
        socket_ino: handed.socket_ino,
    };
    let json = serde_json::to_vec(&spec).map_err(|e| SandboxError::Setup {
        step: "encoding the sandbox specification".into(),
        error: e.to_string(),
    })?;
    let pipe = || crate::pipe_cloexec().map_err(|e| fail("making a pipe", e));
    let (ready_read, ready_write) = pipe()?;
    let (spec_read, spec_write) = pipe()?;
    let sources = [
        handed.listener.as_raw_fd(),
        ready_write.as_raw_fd(),
        handed.lock.as_raw_fd(),
        handed.dir.as_raw_fd(),
        spec_read.as_raw_fd(),
    ];
    let mut command = Command::new(&confinement.init_program);
    command
        .arg(HOST_ARG)
        .current_dir("/")
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // libc: pre_exec is unsafe in std; dup2 there onto fixed numbers.
    // SAFETY: fcntl, dup2 and setsid are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            // Copy above the targets first: one target could be another's source.
            let mut high = [0; 5];
            for (slot, fd) in high.iter_mut().zip(sources) {
                *slot = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
                if *slot < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (fd, target) in high
                .into_iter()
                .zip([LISTEN_FD, READY_FD, LOCK_FD, DIR_FD, SPEC_FD])
            {
                if libc::dup2(fd, target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // Nothing else airlock's own caller left open reaches a
            // process that outlives it (a CI job's pipes, say).
            const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
            libc::syscall(
                libc::SYS_close_range,
                SPEC_FD + 1,
                libc::c_uint::MAX,
                CLOSE_RANGE_CLOEXEC,
            );
            // Not in airlock's process group or session: the host outlives
            // this command, and the group kill of a time limit.
            libc::setsid();
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|source| SandboxError::Spawn {
        program: confinement.init_program.display().to_string(),
        source,
    })?;
    drop(ready_write);
    drop(spec_read);
    // The host reads it all first thing; a host that died first is
    // reported below, through the ready pipe.
    let _ = File::from(spec_write).write_all(&json);
    let mut text = String::new();
    let _ = File::from(ready_read).read_to_string(&mut text);
    let _ = child.wait();
    let report = text
        .lines()
        .filter_map(|l| serde_json::from_str::<InitReport>(l).ok())
        .next();
    match report {
        Some(InitReport::Ready) => Ok(()),
        Some(InitReport::SetupFailed { step, error }) => Err(SandboxError::Setup { step, error }),
        _ => Err(SandboxError::Setup {
            step: "starting the sandbox host".into(),
            error: "it ended without saying whether its sandbox was built".into(),
        }),
    }
}
