//! The ledger server: a process per repository that keeps the ledger open
//! for `exec`. Every exec must record exactly what it would without one.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{BRIEF, Env, WORKFLOW};

/// The pids of the ledger servers of `env`'s repository.
fn servers(env: &Env) -> Vec<u32> {
    let repo = env.repo.display().to_string();
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.get(1) == Some(&b"__ledger-server".as_slice())
                && args.get(2) == Some(&repo.as_bytes())
        })
        .collect();
    pids.sort();
    pids
}

/// Where the servers of `env`'s repositories listen: beside the signing
/// key, hidden from every sandbox.
fn socket_dir(env: &Env) -> PathBuf {
    env.home.join(".config/airlock/ledgers")
}

fn sockets(env: &Env) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(socket_dir(env))
        .map(|rd| {
            rd.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "sock"))
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths
}

/// A caller's connection to the server at `socket`.
fn caller(socket: &std::path::Path) -> std::os::unix::net::UnixStream {
    let stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// A request as it travels: its length (little-endian), then its JSON.
fn frame(request: &serde_json::Value) -> Vec<u8> {
    let body = serde_json::to_vec(request).unwrap();
    let mut frame = (body.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

/// The next answer on `stream`; `None` if the server closed it instead.
fn answer(stream: &mut std::os::unix::net::UnixStream) -> Option<serde_json::Value> {
    use std::io::Read;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
    stream.read_exact(&mut body).ok()?;
    Some(serde_json::from_slice(&body).unwrap())
}

/// One request to the server at `socket`, as an exec sends it; the
/// answer, or `None` if the server closed the connection instead.
fn ask(socket: &std::path::Path, request: &serde_json::Value) -> Option<serde_json::Value> {
    use std::io::Write;
    let mut stream = caller(socket);
    stream.write_all(&frame(request)).ok()?;
    answer(&mut stream)
}

/// `request` on a connection that first asked for run `run`, as an exec
/// does; the answer to `request`.
fn ask_as_exec(
    socket: &std::path::Path,
    run: &str,
    request: &serde_json::Value,
) -> Option<serde_json::Value> {
    use std::io::Write;
    let mut stream = caller(socket);
    stream
        .write_all(&frame(&serde_json::json!({ "Run": { "id": run } })))
        .ok()?;
    answer(&mut stream)?;
    stream.write_all(&frame(request)).ok()?;
    answer(&mut stream)
}

/// Write system calls the process has made so far.
fn writes_by(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("syscw: "))
        .unwrap()
        .parse()
        .unwrap()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(10), "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills the repository's servers when the test ends, before its
/// directory goes.
struct Reaper<'a>(&'a Env);

impl Drop for Reaper<'_> {
    fn drop(&mut self) {
        for pid in servers(self.0) {
            // Signalling a process this test started.
            if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

fn exec(env: &Env, run: &str, script: &str) -> serde_json::Value {
    env.json(&["exec", run, "--", "sh", "-c", script], 0)
}

fn traces(env: &Env, run: &str) -> Vec<serde_json::Value> {
    env.json(&["show", run, "--no-diff"], 0)["traces"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn execs_after_the_first_go_through_the_ledger_server_and_record_the_same() {
    let env = Env::new();
    let _reaper = Reaper(&env);
    let (run, _) = env.start(BRIEF);
    assert!(servers(&env).is_empty());

    // The first exec opens the ledger itself and starts a server.
    let first = exec(&env, &run, "echo one");
    assert_eq!(first["n"], 1);
    let started = servers(&env);
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(sockets(&env).len(), 1);

    // The next ones are stored by it: it writes, and it stays the same one.
    let pid = started[0];
    let before = writes_by(pid);
    let second = exec(&env, &run, "echo two > src/new.txt; echo two");
    let third = exec(&env, &run, "exit 0");
    assert!(writes_by(pid) > before, "the server stored nothing");
    assert_eq!(servers(&env), vec![pid]);
    assert_eq!(
        (second["n"].clone(), third["n"].clone()),
        (2.into(), 3.into())
    );
    assert_eq!(
        second["files_changed"],
        serde_json::json!([{ "status": "A", "path": "src/new.txt" }])
    );

    let shown = traces(&env, &run);
    assert_eq!(shown.len(), 3);
    assert_eq!(shown[1], second);
    assert_eq!(shown[2], third);
    env.assert_ledger_ok();
}

#[test]
fn a_killed_ledger_server_loses_nothing_and_is_replaced() {
    let env = Env::new();
    let _reaper = Reaper(&env);
    let (run, _) = env.start(BRIEF);
    exec(&env, &run, "true");
    let old = servers(&env);
    assert_eq!(old.len(), 1);
    // Killing the server this test started.
    if let Some(pid) = rustix::process::Pid::from_raw(old[0] as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
    wait_until("the server is gone", || servers(&env).is_empty());
    // Its socket is still there, with nobody listening.
    assert_eq!(sockets(&env).len(), 1);

    let second = exec(&env, &run, "echo after");
    assert_eq!(second["n"], 2);
    let new = servers(&env);
    assert_eq!(new.len(), 1);
    assert_ne!(new, old);
    assert_eq!(sockets(&env).len(), 1);
    exec(&env, &run, "echo served");
    assert_eq!(traces(&env, &run).len(), 3);
    env.assert_ledger_ok();
}

#[test]
fn keep_warm_zero_starts_no_ledger_server() {
    let env = Env::new();
    let _reaper = Reaper(&env);
    let (run, _) = env.start(BRIEF);
    env.write(
        ".airlock/workflow.toml",
        &format!("{WORKFLOW}\n[sandbox]\nkeep_warm = 0\n"),
    );
    exec(&env, &run, "true");
    exec(&env, &run, "true");
    assert!(servers(&env).is_empty());
    assert!(sockets(&env).is_empty());
    assert_eq!(traces(&env, &run).len(), 2);
}

#[test]
fn refusals_read_the_same_through_the_ledger_server() {
    let env = Env::new();
    let _reaper = Reaper(&env);
    let (run, _) = env.start(BRIEF);
    let (submitted, _) = env.submitted();
    let logs = |run: &str| -> Vec<PathBuf> {
        let dir = env.repo.join(".airlock/local/runs").join(run).join("logs");
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|rd| rd.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        files.sort();
        files
    };
    let refusals = |env: &Env| {
        [
            env.airlock(&["exec", "no-such-run", "--", "true"]),
            env.airlock(&["exec", &submitted, "--", "true"]),
        ]
        .map(|out| (out.code, out.stderr))
    };
    // Without a server, then through one: the same message, the same code,
    // and nothing written.
    let direct = refusals(&env);
    let logs_before = logs(&submitted);
    exec(&env, &run, "true");
    assert_eq!(servers(&env).len(), 1);
    let served = refusals(&env);
    assert_eq!(served, direct);
    assert!(
        direct[0].1.contains("no run named `no-such-run`"),
        "{direct:?}"
    );
    assert_ne!(direct[1].0, 0, "{direct:?}");
    assert_eq!(logs(&submitted), logs_before);
    env.assert_ledger_ok();
}

#[test]
fn a_ledger_server_never_writes_to_a_ledger_replaced_under_it() {
    let env = Env::new();
    let _reaper = Reaper(&env);
    let (run, _) = env.start(BRIEF);
    exec(&env, &run, "true");
    let old = servers(&env);
    assert_eq!(old.len(), 1);
    // The same ledger as a new file (a restore from a backup, say): the
    // server's connection still reads the old one.
    let state = env.repo.join(".airlock/local");
    let db = state.join("ledger.db");
    let copy = state.join("ledger.db.copy");
    env.airlock(&["ledger", "verify"]);
    std::fs::copy(&db, &copy).unwrap();
    let wal = state.join("ledger.db-wal");
    if wal.exists() {
        std::fs::copy(&wal, state.join("ledger.db.copy-wal")).unwrap();
        std::fs::rename(state.join("ledger.db.copy-wal"), &wal).unwrap();
    }
    std::fs::rename(&copy, &db).unwrap();

    let second = exec(&env, &run, "echo into the new file");
    assert_eq!(second["n"], 2);
    assert_eq!(traces(&env, &run).len(), 2);
    wait_until("the old server leaves", || !servers(&env).contains(&old[0]));
    env.assert_ledger_ok();
}

#[test]
fn a_ledger_server_for_a_repository_gone_creates_nothing_in_the_one_around_it() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    // A repository without airlock, and inside it what is left of one
    // being deleted as its server starts: the directory, its `.git` gone
    // first (test repositories live in such trees).
    let outer = Env::bare();
    let gone = outer.repo.join("target/tmp/jail/repo");
    std::fs::create_dir_all(&gone).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(outer.tmp.path().join("s.sock")).unwrap();
    let fd = listener.as_raw_fd();
    let mut cmd = outer.cmd(&[
        "__ledger-server",
        &gone.display().to_string(),
        "ledger-test.sock",
        "60000",
    ]);
    // SAFETY: only fcntl and dup2, single system calls, between fork and
    // exec; `fd` is the listener, open in the child too.
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                libc::fcntl(fd, libc::F_SETFD, 0);
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the server stayed for a repository that is not there"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    assert!(!outer.repo.join(".airlock").exists());
    assert!(!gone.join(".airlock").exists());
}

/// An exec's server, started, with its socket.
fn served(env: &Env) -> (String, PathBuf, u32) {
    let (run, _) = env.start(BRIEF);
    exec(env, &run, "true");
    let pids = servers(env);
    assert_eq!(pids.len(), 1, "{pids:?}");
    let sockets = sockets(env);
    assert_eq!(sockets.len(), 1, "{sockets:?}");
    (run, sockets[0].clone(), pids[0])
}

fn forged_trace(env: &Env, run: &str) -> serde_json::Value {
    let mut trace = traces(env, run)[0].clone();
    trace["argv"] = serde_json::json!(["sh", "-c", "FORGED"]);
    trace["stdout"]["log"] = serde_json::json!("/forged.stdout");
    serde_json::json!({ "AddTrace": { "run": run, "trace": trace } })
}

#[test]
fn a_sandboxed_command_cannot_reach_the_ledger_server() {
    let env = Env::new();
    let _reaper = Reaper(&env);
    let (run, socket, _) = served(&env);
    let forged = forged_trace(&env, &run);
    let body = serde_json::to_vec(&forged).unwrap();
    let script = format!(
        "import os, socket, struct, sys\n\
         d = {dir:?}\n\
         try: print('listing', os.listdir(d))\n\
         except OSError as e: print('listing', e)\n\
         s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n\
         try:\n\
         \x20 s.connect({socket:?})\n\
         \x20 body = bytes.fromhex({hex:?})\n\
         \x20 s.sendall(struct.pack('<I', len(body)) + body)\n\
         \x20 print('answer', s.recv(100))\n\
         except OSError as e: print('connect', e)\n",
        dir = socket_dir(&env).display().to_string(),
        socket = socket.display().to_string(),
        hex = hex::encode(&body),
    );
    let out = env.json(&["exec", &run, "--", "/usr/bin/python3", "-c", &script], 0);
    let log = std::fs::read_to_string(out["stdout"]["log"].as_str().unwrap()).unwrap();
    assert!(log.contains("connect"), "{log}");
    assert!(!log.contains("answer"), "{log}");
    let argvs: Vec<String> = traces(&env, &run)
        .iter()
        .map(|t| t["argv"].to_string())
        .collect();
    assert_eq!(argvs.len(), 2, "{argvs:?}");
    assert!(!argvs.iter().any(|a| a.contains("FORGED")), "{argvs:?}");
}

#[test]
fn a_caller_under_no_new_privs_is_refused() {
    // What a command of a weaker sandbox (no namespaces, so nothing hidden)
    // looks like to the server: every sandboxed command has no_new_privs.
    let env = Env::new();
    let _reaper = Reaper(&env);
    let (run, socket, _) = served(&env);
    let forged = forged_trace(&env, &run);
    let body = serde_json::to_vec(&forged).unwrap();
    let script = format!(
        "import ctypes, socket, struct\n\
         assert ctypes.CDLL(None).prctl(38, 1, 0, 0, 0) == 0\n\
         s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n\
         s.settimeout(20)\n\
         s.connect({socket:?})\n\
         body = bytes.fromhex({hex:?})\n\
         try:\n\
         \x20 s.sendall(struct.pack('<I', len(body)) + body)\n\
         \x20 print('answer', s.recv(100))\n\
         except OSError as e: print('refused', e)\n",
        socket = socket.display().to_string(),
        hex = hex::encode(&body),
    );
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("answer b''") || said.contains("refused"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The same request from a process without no_new_privs is answered:
    // the refusal is the caller's, not the request's.
    let mut plain = forged.clone();
    plain["AddTrace"]["trace"]["argv"] = serde_json::json!(["sh", "-c", "plain"]);
    plain["AddTrace"]["trace"]["stdout"]["log"] = serde_json::json!("/plain.stdout");
    assert!(ask_as_exec(&socket, &run, &plain).unwrap()["Added"]["n"].is_u64());
    let argvs: Vec<String> = traces(&env, &run)
        .iter()
        .map(|t| t["argv"].to_string())
        .collect();
    assert!(!argvs.iter().any(|a| a.contains("FORGED")), "{argvs:?}");
}

#[test]
fn a_trace_handed_over_twice_is_stored_once() {
    // An exec that waited too long stores its trace itself; the server,
    // reading the same trace late, must not store it again.
    let env = Env::new();
    let _reaper = Reaper(&env);
    let (run, socket, _) = served(&env);
    let second = exec(&env, &run, "echo twice");
    let again = serde_json::json!({ "AddTrace": { "run": run, "trace": second } });
    let answer = ask_as_exec(&socket, &run, &again).unwrap();
    assert_eq!(answer["Added"]["n"], second["n"], "{answer}");
    assert_eq!(traces(&env, &run).len(), 2);
    env.assert_ledger_ok();
}

#[test]
fn a_stalled_caller_does_not_hold_up_the_others() {
    use std::io::Write;
    let env = Env::new();
    let _reaper = Reaper(&env);
    let (run, socket, pid) = served(&env);
    // A frame that never ends, a byte at a time, all through the exec.
    let mut stalled = caller(&socket);
    stalled.write_all(&[200, 0]).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let dribbling = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if stalled.write_all(b"x").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let before = writes_by(pid);
    let next = exec(&env, &run, "echo next");
    // Stored by the server, not by the exec after giving up on it.
    assert!(writes_by(pid) > before, "the server did not store it");
    assert_eq!(next["n"], 2);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    dribbling.join().unwrap();
}

#[test]
fn the_ledger_server_keeps_none_of_the_callers_descriptors() {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let env = Env::new();
    let _reaper = Reaper(&env);
    let (run, _) = env.start(BRIEF);
    // The first exec starts the server, with a pipe of its caller's on fd 5
    // (a shell's `$(…)` or a job server look like this).
    let (read_end, write_end) = rustix::pipe::pipe().unwrap();
    let w = write_end.as_raw_fd();
    let mut cmd = env.cmd(&["exec", &run, "--", "true"]);
    // SAFETY: only dup2, a single system call, between fork and exec; `w`
    // is the pipe's write end, open in the child too.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(w, 5) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(servers(&env).len(), 1);
    drop(write_end);
    // Nobody else holds the write end: it reads to its end at once.
    let mut read = std::fs::File::from(read_end);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut rest = Vec::new();
        tx.send(read.read_to_end(&mut rest).map(|_| rest.len()))
            .unwrap();
    });
    let ended = rx.recv_timeout(Duration::from_secs(10));
    assert!(
        matches!(ended, Ok(Ok(0))),
        "the pipe stayed open: {ended:?}"
    );
}

#[test]
fn no_ledger_server_where_a_weaker_sandbox_may_run_a_command() {
    // A weaker sandbox has no namespaces: it hides nothing, so its commands
    // could reach the socket. A workflow that accepts one gets no server,
    // and a server running when the workflow starts accepting one leaves.
    let env = Env::new();
    let _reaper = Reaper(&env);
    let (run, _, pid) = served(&env);
    env.write(
        ".airlock/workflow.toml",
        &format!("{WORKFLOW}\n[sandbox]\naccept_weaker = true\n"),
    );
    let next = exec(&env, &run, "echo next");
    assert_eq!(next["n"], 2);
    wait_until("the server leaves", || !servers(&env).contains(&pid));
    exec(&env, &run, "echo again");
    assert!(servers(&env).is_empty(), "{:?}", servers(&env));
    assert_eq!(traces(&env, &run).len(), 3);
    env.assert_ledger_ok();
}

#[test]
fn requests_sent_together_are_each_answered() {
    use std::io::Write;
    let env = Env::new();
    let _reaper = Reaper(&env);
    let (run, socket, _) = served(&env);
    let mut stream = caller(&socket);
    let frames: Vec<u8> = [run.as_str(), "no-such-run"]
        .iter()
        .flat_map(|id| frame(&serde_json::json!({ "Run": { "id": id } })))
        .collect();
    stream.write_all(&frames).unwrap();
    let answers = [answer(&mut stream).unwrap(), answer(&mut stream).unwrap()];
    assert_eq!(answers[0]["Run"]["run"]["id"], run.as_str());
    assert_eq!(answers[1], "UnknownRun");
}

#[test]
fn a_forged_trace_is_refused_unless_its_runs_exec_hands_it_over_while_commands_run() {
    use std::io::Write;
    let env = Env::new();
    let _reaper = Reaper(&env);
    let (run, socket, _) = served(&env);
    let wt = PathBuf::from(
        env.json(&["show", &run, "--no-diff"], 0)["worktree"]
            .as_str()
            .unwrap(),
    );
    common::write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    env.json(&["check", &run], 0);
    // An exec's connection, which asked for the run while it could still
    // run commands...
    let mut held = caller(&socket);
    held.write_all(&frame(&serde_json::json!({ "Run": { "id": run } })))
        .unwrap();
    assert_eq!(answer(&mut held).unwrap()["Run"]["run"]["state"], "checked");
    // ... and a run submitted and approved meanwhile.
    env.json(&["submit", &run], 0);
    env.json(&["approve", &run], 0);
    let forged = forged_trace(&env, &run);
    let (other, _) = env.start(BRIEF);
    let before = env.world();
    let shown = traces(&env, &run);
    // On that connection: the run no longer runs commands.
    held.write_all(&frame(&forged)).unwrap();
    assert_eq!(answer(&mut held).unwrap(), "Failed");
    // On a connection that asked for nothing, or for the run now.
    assert_eq!(ask(&socket, &forged).unwrap(), "Failed");
    assert_eq!(ask_as_exec(&socket, &run, &forged).unwrap(), "Failed");
    // For a run that runs commands, from a caller that is not its exec
    // (it never asked for it, or asked for another).
    let mut for_other = forged.clone();
    for_other["AddTrace"]["run"] = serde_json::json!(other);
    assert_eq!(ask(&socket, &for_other).unwrap(), "Failed");
    assert_eq!(ask_as_exec(&socket, &run, &for_other).unwrap(), "Failed");
    assert!(traces(&env, &other).is_empty());
    // On the connection of another run's exec, which may run commands.
    assert_eq!(ask_as_exec(&socket, &other, &forged).unwrap(), "Failed");
    assert_eq!(traces(&env, &run), shown);
    let show = env.airlock(&["show", &run, "--no-diff"]);
    assert!(!show.stdout.contains("FORGED"), "{}", show.stdout);
    env.assert_unchanged(&before);
    assert_eq!(env.state(&run), "approved");
}
