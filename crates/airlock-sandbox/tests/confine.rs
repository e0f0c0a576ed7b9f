//! The kernel sandbox, attacked from the inside. Each test runs a real
//! command in a real sandbox and checks both that the attempt failed and that
//! its target is unchanged.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use airlock_sandbox::ahead::LookAhead;
use airlock_sandbox::host::HostSettings;
use airlock_sandbox::{
    CommandSpec, Confinement, Echo, Exit, Limits, Outcome, SandboxError, run, run_gated,
};

struct Lab {
    /// Where warm sandboxes (hosts) live; `None` builds one per command.
    host: Option<HostSettings>,
    _tmp: tempfile::TempDir,
    work: PathBuf,
    tmp: PathBuf,
    secret: PathBuf,
    outside: PathBuf,
    root: PathBuf,
    logs: PathBuf,
}

impl Lab {
    fn new() -> Lab {
        // Not under /tmp: the sandbox replaces /tmp with a private one, which
        // would hide the lab for the wrong reason. A build below /tmp (a CI
        // checkout, say) uses /var/tmp instead.
        let target_tmp = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let parent = if target_tmp.starts_with("/tmp") {
            std::path::PathBuf::from("/var/tmp/airlock-test-confine")
        } else {
            target_tmp
        };
        std::fs::create_dir_all(&parent).unwrap();
        let t = tempfile::Builder::new()
            .prefix("confine-")
            .tempdir_in(&parent)
            .unwrap();
        let base = t.path().to_path_buf();
        let lab = Lab {
            host: None,
            work: base.join("work"),
            tmp: base.join("private-tmp"),
            secret: base.join("secret"),
            outside: base.join("outside"),
            root: base.join("root"),
            logs: base.join("logs"),
            _tmp: t,
        };
        for d in [
            &lab.work,
            &lab.tmp,
            &lab.secret,
            &lab.outside,
            &lab.root,
            &lab.logs,
        ] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(lab.secret.join("id_ed25519"), "PRIVATE").unwrap();
        std::fs::write(lab.outside.join("target.txt"), "original").unwrap();
        lab
    }

    /// A lab whose commands run in a sandbox kept warm between them.
    fn warm() -> Lab {
        let mut lab = Lab::new();
        lab.host = Some(HostSettings {
            dir: lab.logs.with_file_name("hosts"),
            idle: Duration::from_secs(5),
            owner: None,
            max_hosts: 0,
        });
        lab
    }

    /// One lab of each kind: a sandbox per command, and a warm one.
    fn both() -> [Lab; 2] {
        [Lab::new(), Lab::warm()]
    }

    fn kind(&self) -> &'static str {
        if self.host.is_some() {
            "warm"
        } else {
            "one-off"
        }
    }

    fn spec(&self, script: &str) -> CommandSpec {
        CommandSpec {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            cwd: self.work.clone(),
            env: vec![
                (
                    OsString::from("PATH"),
                    OsString::from("/usr/local/bin:/usr/bin:/bin"),
                ),
                (OsString::from("TMPDIR"), OsString::from("/tmp")),
            ],
            timeout: Some(Duration::from_secs(20)),
            stdout_path: self.logs.join("out"),
            stderr_path: self.logs.join("err"),
            echo: Echo::None,
            input: airlock_sandbox::Input::Null,
            confinement: Some(Confinement {
                init_program: PathBuf::from(env!("CARGO_BIN_EXE_airlock-sandbox-init")),
                writable: vec![
                    (self.work.clone(), self.work.clone()),
                    (self.tmp.clone(), PathBuf::from("/tmp")),
                ],
                read_only: vec![],
                hidden: vec![self.secret.clone()],
                network: false,
                root: self.root.clone(),
                weaker: false,
                host: self.host.clone(),
                ahead: None,
            }),
            limits: Limits::default(),
        }
    }

    fn run(&self, script: &str) -> (Outcome, String, String) {
        let outcome = run(&self.spec(script)).expect("sandbox set-up");
        (
            outcome,
            read(&self.logs.join("out")),
            read(&self.logs.join("err")),
        )
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[test]
fn writes_inside_the_worktree_and_private_tmp_work() {
    for lab in Lab::both() {
        let (o, _, err) = lab.run("echo hi > made.txt && echo t > /tmp/t && cat /tmp/t");
        assert!(o.exit.success(), "{}: {err}", lab.kind());
        assert_eq!(read(&lab.work.join("made.txt")), "hi\n");
        assert_eq!(read(&lab.tmp.join("t")), "t\n");
        assert_eq!(o.confinement, "confined");
    }
}

#[test]
fn writing_outside_by_absolute_path_fails_and_changes_nothing() {
    for lab in Lab::both() {
        let target = lab.outside.join("target.txt");
        let (o, _, err) = lab.run(&format!("echo pwned > {}", target.display()));
        assert!(!o.exit.success(), "{}", lab.kind());
        assert!(
            err.contains("Read-only file system"),
            "{}: {err}",
            lab.kind()
        );
        assert_eq!(read(&target), "original");
    }
}

#[test]
fn hidden_secrets_cannot_be_read() {
    for lab in Lab::both() {
        let (o, out, _) = lab.run(&format!(
            "cat {}/id_ed25519; ls -A {}",
            lab.secret.display(),
            lab.secret.display()
        ));
        assert!(!o.exit.success() || out.trim().is_empty(), "{}", lab.kind());
        assert!(!out.contains("PRIVATE"), "{}: {out}", lab.kind());
    }
}

/// Looks up `spec`'s hidden paths (and its warm sandboxes' directory) now,
/// as airlock does while it waits for the run.
fn look_ahead(spec: &mut CommandSpec) {
    let c = spec.confinement.as_mut().expect("a confined command");
    let hosts = c.host.as_ref().map(|h| h.dir.clone());
    c.ahead = Some(Arc::new(LookAhead::of(&c.hidden, hosts.as_deref())));
}

#[test]
fn a_sandbox_named_from_paths_looked_up_ahead_is_the_same_sandbox() {
    // airlock looks the hidden paths up while it waits for its run; the
    // warm sandbox named from them is the one named without, and hides
    // what it hid. A secret that appears afterwards gets a sandbox that
    // hides it, looked up ahead or not.
    let lab = Lab::warm();
    let script = format!(
        "cat {}/*; ls -A {}",
        lab.secret.display(),
        lab.secret.display()
    );
    let (o, out, err) = lab.run(&script);
    assert!(!out.contains("PRIVATE"), "{out}{err}{o:?}");
    let first = hosts(&lab);
    let mut spec = lab.spec(&script);
    look_ahead(&mut spec);
    let o = run(&spec).expect("sandbox set-up");
    let out = read(&lab.logs.join("out"));
    assert!(!out.contains("PRIVATE"), "{out}{o:?}");
    assert_eq!(hosts(&lab), first, "the same warm sandbox");
    // A secret file next to the hidden directory, hidden by name before it
    // exists: once it does, it is hidden too.
    let token = lab.secret.with_file_name("token");
    let looked_up = || {
        let mut spec = lab.spec(&format!("cat {}", token.display()));
        spec.confinement
            .as_mut()
            .unwrap()
            .hidden
            .push(token.clone());
        look_ahead(&mut spec);
        spec
    };
    assert!(!run(&looked_up()).expect("sandbox set-up").exit.success());
    let before = hosts(&lab).len();
    std::fs::write(&token, "TOKEN").unwrap();
    let o = run(&looked_up()).expect("sandbox set-up");
    let out = read(&lab.logs.join("out"));
    assert!(!out.contains("TOKEN"), "{out}{o:?}");
    assert_eq!(read(&token), "TOKEN");
    assert_eq!(hosts(&lab).len(), before + 1, "a sandbox that hides it");
}

#[test]
fn what_changed_since_the_look_ahead_is_hidden_all_the_same() {
    for lab in Lab::both() {
        // Looked up while missing, then written before the command.
        let token = lab.outside.join("token");
        // Looked up as a file, then made a link to a file outside.
        let link = lab.outside.join("link");
        let target = lab.outside.join("target.txt");
        std::fs::write(&link, "a plain file").unwrap();
        let script = format!("cat {} {}; echo ran", token.display(), link.display());
        let mut spec = lab.spec(&script);
        let c = spec.confinement.as_mut().unwrap();
        c.hidden.extend([token.clone(), link.clone()]);
        // A warm sandbox named before the change, for the stale name to find.
        run(&spec).expect("sandbox set-up");
        look_ahead(&mut spec);
        std::fs::write(&token, "TOKEN").unwrap();
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let o = run(&spec).expect("sandbox set-up");
        let out = read(&lab.logs.join("out"));
        assert!(
            o.exit.success(),
            "{}: {}",
            lab.kind(),
            read(&lab.logs.join("err"))
        );
        assert!(out.ends_with("ran\n"), "{}: {out}", lab.kind());
        assert!(!out.contains("TOKEN"), "{}: {out}", lab.kind());
        assert!(!out.contains("original"), "{}: {out}", lab.kind());
        assert_eq!(read(&target), "original");
    }
}

#[test]
fn a_look_ahead_gone_stale_is_not_used_again() {
    // A hidden file replaced after airlock looked it up, before the
    // command: what was looked up no longer holds, so the sandbox built
    // over the old file (whose cover is gone) is not the one named; the
    // command runs, round after round, with the new file hidden.
    let lab = Lab::warm();
    let cred = lab.outside.join("cred");
    std::fs::write(&cred, "SECRET-1").unwrap();
    let mut spec = lab.spec(&format!("cat {}; echo ran", cred.display()));
    spec.confinement.as_mut().unwrap().hidden.push(cred.clone());
    let o = run(&spec).expect("sandbox set-up");
    assert!(o.exit.success(), "{}", read(&lab.logs.join("err")));
    for round in 2..6 {
        look_ahead(&mut spec);
        std::fs::remove_file(&cred).unwrap();
        std::fs::write(&cred, format!("SECRET-{round}")).unwrap();
        let o = run(&spec).expect("the second try runs it");
        let out = read(&lab.logs.join("out"));
        assert!(
            o.exit.success(),
            "round {round}: {}",
            read(&lab.logs.join("err"))
        );
        assert!(
            out.ends_with("ran\n") && !out.contains("SECRET"),
            "round {round}: {out}"
        );
    }
}

#[test]
fn the_host_loopback_is_unreachable_but_a_private_one_works() {
    for lab in Lab::both() {
        loopback(&lab);
    }
}

fn loopback(lab: &Lab) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let script = format!(
        "python3 - <<'EOF'\nimport socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n    print('host=reached')\nexcept OSError as e:\n    print('host=refused')\ns = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)\nc = socket.create_connection(s.getsockname(), timeout=2)\nprint('private=ok')\nEOF"
    );
    let (o, out, err) = lab.run(&script);
    assert!(o.exit.success(), "{out}{err}");
    assert!(out.contains("host=refused"), "{out}");
    assert!(out.contains("private=ok"), "{out}");
    assert!(
        listener.accept().is_err(),
        "the host listener saw a connection"
    );
}

#[test]
fn a_double_forked_setsid_child_dies_with_the_command() {
    let labs = Lab::both();
    for lab in &labs {
        let marker = lab.work.join("survivor");
        let script = format!(
            "setsid sh -c 'sleep 1; echo alive > {}' & exit 0",
            marker.display()
        );
        let (o, _, _) = lab.run(&script);
        assert!(o.exit.success(), "{}", lab.kind());
    }
    std::thread::sleep(Duration::from_millis(1500));
    for lab in &labs {
        assert!(
            !lab.work.join("survivor").exists(),
            "{}: a setsid grandchild outlived the command",
            lab.kind()
        );
    }
}

#[test]
fn the_time_limit_kills_a_setsid_escapee() {
    let labs = Lab::both();
    for lab in &labs {
        let marker = lab.work.join("late");
        let mut spec = lab.spec(&format!(
            "setsid sh -c 'sleep 2; echo alive > {}' & sleep 30",
            marker.display()
        ));
        spec.timeout = Some(Duration::from_millis(500));
        let o = run(&spec).unwrap();
        assert!(matches!(o.exit, Exit::TimedOut { .. }), "{}", lab.kind());
        assert!(o.duration_ms < 5_000, "{}: {}", lab.kind(), o.duration_ms);
    }
    std::thread::sleep(Duration::from_millis(2500));
    for lab in &labs {
        assert!(!lab.work.join("late").exists(), "{}", lab.kind());
    }
}

#[test]
fn mounting_and_new_namespaces_are_refused() {
    for lab in Lab::both() {
        let (_, out, _) = lab.run(&format!(
            "mount -t tmpfs none {} 2>/dev/null && echo mounted; unshare -r true 2>/dev/null && echo unshared; echo done",
            lab.secret.display()
        ));
        assert!(!out.contains("mounted"), "{}: {out}", lab.kind());
        assert!(!out.contains("unshared"), "{}: {out}", lab.kind());
        assert!(out.contains("done"), "{}", lab.kind());
    }
}

/// Each socket family a command could ask for, and io_uring, with what
/// the sandbox answered (`ok` or the errno's name).
const FAMILIES_AND_IO_URING: &str = "python3 - <<'EOF'
import ctypes, errno, socket
def answer(make):
    try:
        make(); return 'ok'
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
for name, args in (('unix', (socket.AF_UNIX,)), ('inet', (socket.AF_INET,)),
                   ('inet6', (socket.AF_INET6,)),
                   ('netlink-route', (socket.AF_NETLINK, socket.SOCK_RAW, 0)),
                   ('netlink-uevent', (socket.AF_NETLINK, socket.SOCK_RAW, 15)),
                   ('vsock', (socket.AF_VSOCK, socket.SOCK_STREAM)),
                   ('packet', (socket.AF_PACKET, socket.SOCK_RAW)),
                   ('alg', (socket.AF_ALG, socket.SOCK_SEQPACKET))):
    print(name, answer(lambda: socket.socket(*args)))
print('pair-unix', answer(lambda: socket.socketpair(socket.AF_UNIX)))
print('pair-tipc', answer(lambda: socket.socketpair(socket.AF_TIPC, socket.SOCK_STREAM)))
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
fd = libc.syscall(ctypes.c_long(425), ctypes.c_long(4), ctypes.create_string_buffer(120))
print('io_uring_setup', 'ok' if fd >= 0 else errno.errorcode[ctypes.get_errno()])
EOF";

#[test]
fn socket_families_are_limited_and_io_uring_is_absent() {
    // The one-off and the warm sandbox, and the weaker one without
    // namespaces: every one applies the same filters.
    for (weaker, lab) in [
        (false, Lab::new()),
        (false, Lab::warm()),
        (true, Lab::new()),
    ] {
        let mut spec = lab.spec(FAMILIES_AND_IO_URING);
        spec.confinement.as_mut().unwrap().weaker = weaker;
        let o = run(&spec).expect("sandbox set-up");
        let out = read(&lab.logs.join("out"));
        let err = read(&lab.logs.join("err"));
        assert!(
            o.exit.success(),
            "{} weaker={weaker}: {out}{err}",
            lab.kind()
        );
        assert_eq!(
            out,
            "unix ok\ninet ok\ninet6 ok\nnetlink-route ok\nnetlink-uevent EAFNOSUPPORT\n\
             vsock EAFNOSUPPORT\npacket EAFNOSUPPORT\nalg EAFNOSUPPORT\npair-unix ok\n\
             pair-tipc EAFNOSUPPORT\nio_uring_setup ENOSYS\n",
            "{} weaker={weaker}",
            lab.kind()
        );
    }
}

#[test]
fn a_failed_setup_is_an_error_naming_the_step() {
    let lab = Lab::new();
    let mut spec = lab.spec("true");
    if let Some(c) = spec.confinement.as_mut() {
        c.root = lab.work.join("does-not-exist");
    }
    let err = run(&spec).unwrap_err().to_string();
    assert!(
        err.starts_with("the sandbox could not be set up: binding the filesystem into the sandbox"),
        "{err}"
    );
}

/// Runs `script` held back by a gate that first checks the command has not
/// started (no `ran` file in the worktree), then answers `answer`.
fn gated(
    lab: &Lab,
    weaker: bool,
    script: &str,
    answer: Result<(), String>,
) -> Result<Outcome, SandboxError> {
    let mut spec = lab.spec(script);
    if let Some(c) = spec.confinement.as_mut() {
        c.weaker = weaker;
    }
    let ran = lab.work.join("ran");
    let mut calls = 0;
    let mut gate = || {
        calls += 1;
        // Long enough for the sandbox to be built and the command to be
        // waiting; it must not have run.
        std::thread::sleep(Duration::from_millis(300));
        assert!(!ran.exists(), "the command started before the gate opened");
        answer.clone()
    };
    let result = run_gated(&spec, Some(&mut gate));
    assert_eq!(calls, 1);
    result
}

/// Reports the command's descriptors 3 and 4 (the report pipe and the gate
/// in the init process) if it has them, then leaves `ran`.
const FDS_THEN_RAN: &str =
    "for fd in 3 4; do [ -e /proc/$$/fd/$fd ] && echo \"fd $fd open\"; done; echo yes > ran";

#[test]
fn a_gated_command_starts_when_the_gate_opens_without_its_descriptors() {
    for (weaker, lab) in [
        (false, Lab::new()),
        (true, Lab::new()),
        (false, Lab::warm()),
    ] {
        let o = gated(&lab, weaker, FDS_THEN_RAN, Ok(())).expect("sandbox set-up");
        let out = read(&lab.logs.join("out"));
        assert!(
            o.exit.success(),
            "weaker={weaker}: {out}{}",
            read(&lab.logs.join("err"))
        );
        assert_eq!(read(&lab.work.join("ran")), "yes\n", "weaker={weaker}");
        assert!(!out.contains("open"), "weaker={weaker}: {out}");
    }
}

#[test]
fn a_closed_gate_stops_the_command_and_says_why() {
    for (weaker, lab) in [
        (false, Lab::new()),
        (true, Lab::new()),
        (false, Lab::warm()),
    ] {
        let err = gated(
            &lab,
            weaker,
            FDS_THEN_RAN,
            Err("the snapshot before it failed".into()),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the command was not run: the snapshot before it failed",
            "weaker={weaker}"
        );
        assert!(
            !lab.work.join("ran").exists(),
            "weaker={weaker}: the command ran"
        );
    }
}

#[test]
fn an_ungated_command_does_not_wait() {
    // Without a gate nothing is passed on fd 4 and nothing waits for it.
    for lab in Lab::both() {
        let (o, out, err) = lab.run(FDS_THEN_RAN);
        assert!(o.exit.success(), "{}: {out}{err}", lab.kind());
        assert!(!out.contains("open"), "{}: {out}", lab.kind());
        assert_eq!(read(&lab.work.join("ran")), "yes\n");
    }
}

/// The warm sandboxes' sockets in `lab`.
fn hosts(lab: &Lab) -> Vec<String> {
    let dir = &lab.host.as_ref().expect("a warm lab").dir;
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".sock"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_warm_sandbox_runs_command_after_command_each_in_a_namespace_of_its_own() {
    let lab = Lab::warm();
    let mut seen = Vec::new();
    for i in 0..3 {
        // Each command is PID 2 of its own namespace (PID 1 reaps for it)
        // and sees no process of an earlier one.
        let (o, out, err) = lab.run(&format!(
            "echo $$; ls /proc | grep -c '^[0-9]'; echo {i} >> /tmp/count; sleep 30 & exit {i}"
        ));
        assert_eq!(o.exit, Exit::Exited { code: i }, "{out}{err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "2", "{out}");
        assert!(lines[1].parse::<u32>().unwrap() <= 4, "{out}");
        seen.push(hosts(&lab));
    }
    // One host served all three, and the private /tmp is the run's.
    assert_eq!(seen[0].len(), 1, "{seen:?}");
    assert!(seen.iter().all(|h| *h == seen[0]), "{seen:?}");
    assert_eq!(read(&lab.tmp.join("count")), "0\n1\n2\n");
}

#[test]
fn commands_run_while_the_callers_of_earlier_ones_still_hold_them() {
    // A caller holds a finished command's connection until it has recorded
    // it (`Outcome::held`), and the host builds the next sandbox only then
    // (or a second later). Commands that come meanwhile do not wait for
    // that: each still runs, in a namespace of its own, in the same host.
    let lab = Lab::warm();
    let mut held = Vec::new();
    for i in 0..3 {
        let (o, out, err) = lab.run(&format!("echo $$; exit {i}"));
        assert_eq!(o.exit, Exit::Exited { code: i }, "{out}{err}");
        assert_eq!(out, "2\n", "{err}");
        assert!(
            o.held.is_some(),
            "a warm sandbox's connection is handed back"
        );
        held.push(o);
    }
    assert_eq!(hosts(&lab).len(), 1, "{:?}", hosts(&lab));
    drop(held);
    let (o, out, err) = lab.run("echo $$");
    assert!(o.exit.success(), "{err}");
    assert_eq!(out, "2\n");
    // A sandbox of one command's own has nothing to hold.
    let (o, _, err) = Lab::new().run("true");
    assert!(o.exit.success() && o.held.is_none(), "{err}");
}

#[test]
fn each_command_gets_its_own_limits() {
    for lab in Lab::both() {
        // Limits are the command's, set after its process was made ahead
        // in a warm sandbox: they neither leak into the next command nor
        // come from the one before.
        let mut limited = lab.spec("ulimit -v; ulimit -p");
        limited.limits.memory_bytes = Some(256 << 20);
        limited.limits.processes = Some(50);
        let o = run(&limited).expect("sandbox set-up");
        let out = read(&lab.logs.join("out"));
        assert!(
            o.exit.success(),
            "{}: {}",
            lab.kind(),
            read(&lab.logs.join("err"))
        );
        assert_eq!(out, "262144\n50\n", "{}", lab.kind());
        let (o, out, err) = lab.run("ulimit -v");
        assert!(o.exit.success(), "{}: {err}", lab.kind());
        assert_eq!(out, "unlimited\n", "{}", lab.kind());
    }
}

#[test]
fn a_write_past_the_file_size_limit_is_refused() {
    for (weaker, lab) in [
        (false, Lab::new()),
        (false, Lab::warm()),
        (true, Lab::new()),
    ] {
        let kind = format!("{} weaker={weaker}", lab.kind());
        // The shell's child dies of SIGXFSZ; Python ignores the signal and
        // sees EFBIG. Neither file grows past the limit.
        let mut spec = lab.spec(
            "head -c 3000000 /dev/zero > big; echo \"head: $?\"; \
             python3 -c \"open('big2', 'wb').write(bytes(3000000))\"",
        );
        spec.confinement.as_mut().unwrap().weaker = weaker;
        spec.limits.file_size_bytes = Some(1 << 20);
        let o = run(&spec).expect("sandbox set-up");
        let out = read(&lab.logs.join("out"));
        let err = read(&lab.logs.join("err"));
        assert_eq!(
            out,
            format!("head: {}\n", 128 + libc::SIGXFSZ),
            "{kind}: {err}"
        );
        assert!(err.contains("File too large"), "{kind}: {err}");
        assert_eq!(
            std::fs::metadata(lab.work.join("big")).unwrap().len(),
            1 << 20,
            "{kind}"
        );
        assert_eq!(
            std::fs::metadata(lab.work.join("big2")).unwrap().len(),
            1 << 20,
            "{kind}"
        );
        assert_eq!(o.exit, Exit::Exited { code: 1 }, "{kind}");
        // The shell's report of its child is recognised too.
        let mut spec = lab.spec("head -c 3000000 /dev/zero > big");
        spec.confinement.as_mut().unwrap().weaker = weaker;
        spec.limits.file_size_bytes = Some(1 << 20);
        let o = run(&spec).expect("sandbox set-up");
        assert_eq!(o.exit.shell_code(), 128 + libc::SIGXFSZ, "{kind}");
        assert_eq!(
            o.limit_hit.as_deref(),
            Some("file size limit of 1048576 bytes: a write past it was refused"),
            "{kind}"
        );
        // The limit is the command's: the next one, without it, writes on.
        let mut spec = lab.spec("head -c 3000000 /dev/zero > big");
        spec.confinement.as_mut().unwrap().weaker = weaker;
        let o = run(&spec).expect("sandbox set-up");
        assert!(o.exit.success(), "{kind}: {}", read(&lab.logs.join("err")));
        assert_eq!(
            std::fs::metadata(lab.work.join("big")).unwrap().len(),
            3000000,
            "{kind}"
        );
    }
}

#[test]
fn each_command_gets_its_own_process_cap_in_a_warm_sandbox() {
    // The namespace's pid_max is capped ahead as the host's first command
    // asked; a command asking another cap, or none, gets its own.
    let pid_max = |lab: &Lab, processes: Option<u64>| {
        let mut spec = lab.spec("cat /proc/sys/kernel/pid_max");
        spec.limits.processes = processes;
        let o = run(&spec).expect("sandbox set-up");
        assert!(o.exit.success(), "{}", read(&lab.logs.join("err")));
        read(&lab.logs.join("out")).trim().to_string()
    };
    // What a namespace nobody capped has.
    let uncapped = pid_max(&Lab::warm(), None);
    let lab = Lab::warm();
    let first = pid_max(&lab, Some(50));
    if first == uncapped {
        eprintln!("skipped: this kernel keeps one pid_max for every namespace (Linux < 6.14)");
        return;
    }
    assert_eq!(first, "301");
    assert_eq!(pid_max(&lab, Some(50)), "301");
    assert_eq!(pid_max(&lab, Some(1000)), "1002");
    assert_eq!(pid_max(&lab, None), uncapped);
    assert_eq!(pid_max(&lab, Some(50)), "301");
}

/// A warm lab whose sandbox is built, with `script` started in it in the
/// background a moment ago (its stdout goes to `long.out`).
fn warm_with_a_long_command(script: &str) -> (Lab, std::thread::JoinHandle<Outcome>) {
    let lab = Lab::warm();
    let (o, _, err) = lab.run("true");
    assert!(o.exit.success(), "{err}");
    let mut long = lab.spec(script);
    long.stdout_path = lab.logs.join("long.out");
    let long = std::thread::spawn(move || run(&long).expect("sandbox set-up"));
    std::thread::sleep(Duration::from_millis(300));
    (lab, long)
}

#[test]
fn overlapping_commands_in_a_warm_sandbox_each_run() {
    // A long command holds the sandbox's ready process; commands that
    // arrive meanwhile get theirs made on the spot, and the one after
    // everything ended finds one ready again.
    let (lab, long) = warm_with_a_long_command("sleep 1; echo long");
    for i in 0..3 {
        let (o, out, err) = lab.run(&format!("echo short {i}"));
        assert!(o.exit.success(), "{err}");
        assert_eq!(out, format!("short {i}\n"));
    }
    let o = long.join().unwrap();
    assert!(o.exit.success());
    assert_eq!(read(&lab.logs.join("long.out")), "long\n");
    let (o, out, err) = lab.run("echo after");
    assert!(o.exit.success(), "{err}");
    assert_eq!(out, "after\n");
    // (How many hosts served them is not asserted: a socket bound by a
    // test running beside this one renames the sandbox, by design.)
}

/// CPU time (user + system, in clock ticks) of the processes holding the
/// warm lab's hosts lock: its host.
fn host_cpu_ticks(lab: &Lab) -> u64 {
    let lock = lab
        .host
        .as_ref()
        .expect("a warm lab")
        .dir
        .join("hosts.lock");
    let mut ticks = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l == lock));
        if !holds {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // Fields after the command name's closing parenthesis: utime is the
        // 12th, stime the 13th.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        ticks += fields
            .get(11)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0);
        ticks += fields
            .get(12)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0);
    }
    ticks
}

#[test]
fn a_warm_sandbox_idles_while_a_long_command_outlives_a_short_one() {
    // A short command that starts and ends while a long one runs: the host
    // then waits for the long one's end, not in a loop.
    let (lab, long) = warm_with_a_long_command("sleep 3");
    let (o, _, err) = lab.run("true");
    assert!(o.exit.success(), "{err}");
    let before = host_cpu_ticks(&lab);
    std::thread::sleep(Duration::from_millis(1500));
    let spent = host_cpu_ticks(&lab) - before;
    // A loop would take the whole 1.5 s (150 ticks at 100 Hz).
    assert!(spent < 30, "the host spent {spent} ticks of CPU waiting");
    assert!(long.join().unwrap().exit.success());
}

#[test]
fn a_worktree_made_again_gets_a_sandbox_of_its_own() {
    // A directory removed and created again is another directory: a warm
    // sandbox bound to the old one must not serve the new.
    let lab = Lab::warm();
    let (o, out, _) = lab.run("ls");
    assert!(o.exit.success());
    assert_eq!(out, "");
    let first = hosts(&lab);
    std::fs::remove_dir_all(&lab.work).unwrap();
    std::fs::create_dir_all(&lab.work).unwrap();
    std::fs::write(lab.work.join("new.txt"), "new").unwrap();
    let (o, out, err) = lab.run("ls; echo made > made.txt");
    assert!(o.exit.success(), "{err}");
    assert_eq!(out, "new.txt\n");
    assert_eq!(read(&lab.work.join("made.txt")), "made\n");
    assert_ne!(hosts(&lab), first);
}

#[test]
fn an_idle_warm_sandbox_goes_away() {
    let mut lab = Lab::warm();
    if let Some(h) = lab.host.as_mut() {
        h.idle = Duration::from_millis(300);
    }
    let (o, _, err) = lab.run("true");
    assert!(o.exit.success(), "{err}");
    let socket = lab.host.as_ref().unwrap().dir.join(&hosts(&lab)[0]);
    // An idle host removes its socket as it goes.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while socket.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the idle host is still there"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(matches!(
        std::os::unix::net::UnixStream::connect(&socket),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound
    ));
    // The next command gets a new host, on the same name.
    let (o, _, err) = lab.run("echo again");
    assert!(o.exit.success(), "{err}");
    assert_eq!(read(&lab.logs.join("out")), "again\n");
}

#[test]
fn without_a_place_for_a_warm_sandbox_each_command_gets_its_own() {
    // The hosts' directory cannot exist (a file is in the way): the command
    // still runs, confined, in a sandbox of its own.
    let mut lab = Lab::warm();
    let blocker = lab.logs.with_file_name("not-a-directory");
    std::fs::write(&blocker, "").unwrap();
    if let Some(h) = lab.host.as_mut() {
        h.dir = blocker.join("hosts");
    }
    let target = lab.outside.join("target.txt");
    let (o, out, err) = lab.run(&format!("echo ran; echo pwned > {}", target.display()));
    assert!(!o.exit.success(), "{out}{err}");
    assert_eq!(out, "ran\n");
    assert!(err.contains("Read-only file system"), "{err}");
    assert_eq!(o.confinement, "confined");
    assert_eq!(read(&target), "original");
}

#[test]
fn a_hidden_file_replaced_on_the_host_stays_hidden_in_a_warm_sandbox() {
    // The file's inode number can come back when it is deleted and written
    // again: a warm sandbox built over the old file must not show the new.
    let lab = Lab::warm();
    let cred = lab.outside.join("cred");
    std::fs::write(&cred, "SECRET-1").unwrap();
    let show = |lab: &Lab| {
        let mut spec = lab.spec(&format!("cat {}; echo", cred.display()));
        if let Some(c) = spec.confinement.as_mut() {
            c.hidden.push(cred.clone());
        }
        // Either the command runs and sees nothing, or the sandbox refuses.
        match run(&spec) {
            Ok(_) => read(&lab.logs.join("out")),
            Err(e) => format!("refused: {e}"),
        }
    };
    assert_eq!(show(&lab), "\n");
    for round in 2..8 {
        if round % 2 == 0 {
            std::fs::remove_file(&cred).unwrap();
            std::fs::write(&cred, format!("SECRET-{round}")).unwrap();
        } else {
            let next = lab.outside.join("cred.new");
            std::fs::write(&next, format!("SECRET-{round}")).unwrap();
            std::fs::rename(&next, &cred).unwrap();
        }
        let seen = show(&lab);
        assert!(!seen.contains("SECRET"), "round {round}: {seen}");
    }
}
