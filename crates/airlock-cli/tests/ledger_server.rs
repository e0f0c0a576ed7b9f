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

fn sockets(env: &Env) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(env.repo.join(".airlock/local"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ledger-") && n.ends_with(".sock"))
        .collect();
    names.sort();
    names
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
            // SAFETY: signalling a process this test started.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
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
    // SAFETY: killing the server this test started.
    unsafe { libc::kill(old[0] as i32, libc::SIGKILL) };
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
    // SAFETY: dup2 between fork and exec.
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
