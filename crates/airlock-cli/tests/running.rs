//! Running commands with `airlock exec`, as people and agents do: input on
//! a pipe or from a file, an interactive program at a terminal, a command
//! stopped with ^C or `kill`, a program that is not there, a command that
//! wanted the network. Each in a warm sandbox and in one of its own
//! (`keep_warm = 0`), with real programs.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

const PY: &str = "/usr/bin/python3";

/// A jail whose sandbox is kept warm (`warm`) or built per command.
fn jail(warm: bool) -> Jail {
    let extra = if warm {
        ""
    } else {
        "\n[sandbox]\nkeep_warm = 0\n"
    };
    Jail::new(Caller::Current, &format!("{WORKFLOW}{extra}"))
}

fn airlock(j: &Jail, args: &[&str]) -> Command {
    let mut cmd = j.command(&assert_cmd::cargo::cargo_bin("airlock"));
    cmd.args(args);
    cmd
}

/// The run's last trace, as `show --json` has it.
fn last_trace(j: &Jail, run: &str) -> Value {
    let show = j.json(&["show", run, "--no-diff"], 0);
    show["traces"].as_array().unwrap().last().unwrap().clone()
}

fn both(test: fn(bool)) {
    test(true);
    test(false);
}

// ---- stdin ------------------------------------------------------------------

fn stdin_on_a_pipe_reaches_the_command(warm: bool) {
    let j = jail(warm);
    let (run, _) = j.start(BRIEF);
    let mut child = airlock(&j, &["exec", &run, "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hi\n").unwrap();
    let out: Output = child.wait_with_output().unwrap().into();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "hi\n");
    let trace = last_trace(&j, &run);
    assert_eq!(trace["stdout"]["sha256"], sha256_hex(b"hi\n"));
}

#[test]
fn echo_hi_piped_into_cat_prints_hi() {
    both(stdin_on_a_pipe_reaches_the_command);
}

fn a_script_on_stdin_runs(warm: bool) {
    let j = jail(warm);
    let (run, wt) = j.start(BRIEF);
    let script = j.tmp.path().join("fix.py");
    std::fs::write(
        &script,
        "open('src/fixed.txt', 'w').write('fixed\\n')\nprint('script ran')\n",
    )
    .unwrap();
    let out: Output = airlock(&j, &["exec", &run, "--", PY, "-"])
        .stdin(std::fs::File::open(&script).unwrap())
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "script ran\n");
    assert_eq!(
        std::fs::read_to_string(wt.join("src/fixed.txt")).unwrap(),
        "fixed\n"
    );
    let trace = last_trace(&j, &run);
    assert_eq!(
        trace["files_changed"][0]["path"], "src/fixed.txt",
        "{trace}"
    );
}

#[test]
fn python_reads_its_script_from_a_redirected_file() {
    both(a_script_on_stdin_runs);
}

// ---- a terminal -------------------------------------------------------------

fn an_interactive_program_gets_a_terminal(warm: bool) {
    let j = jail(warm);
    let (run, _) = j.start(BRIEF);
    let t = at_terminal(
        airlock(
            &j,
            &[
                "exec",
                &run,
                "--",
                PY,
                "-c",
                "import os, sys; print(sys.stdin.isatty(), sys.stdout.isatty(), 'READY', flush=True); \
                 line = input(); print('got', line, 'in', tuple(os.get_terminal_size()))",
            ],
        ),
        "READY",
        "typed line\r",
        Some((33, 101)),
    );
    assert_eq!(t.code, 0, "{}", t.shown);
    assert!(t.shown.contains("True True READY"), "{}", t.shown);
    // The window's new size reached the command's terminal.
    assert!(
        t.shown.contains("got typed line in (101, 33)"),
        "{}",
        t.shown
    );
    assert!(t.settings_kept, "the user's terminal was left in raw mode");
    // Both streams of a terminal are one: recorded as stdout.
    let trace = last_trace(&j, &run);
    let log = std::fs::read_to_string(trace["stdout"]["log"].as_str().unwrap()).unwrap();
    assert!(log.contains("got typed line"), "{log}");
}

#[test]
fn an_interactive_program_reads_the_users_keys_through_a_terminal_of_its_own() {
    both(an_interactive_program_gets_a_terminal);
}

// ---- ^C and kill --------------------------------------------------------------

fn stopped_with(warm: bool, signal: libc::c_int) {
    let j = jail(warm);
    let (run, wt) = j.start(BRIEF);
    let mut child = airlock(
        &j,
        &[
            "exec",
            &run,
            "--",
            "sh",
            "-c",
            "echo half-done > src/stopped.txt; echo STARTED; exec sleep 600",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("STARTED") {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "the command ended before it started");
        seen.extend_from_slice(&buf[..n]);
    }
    // Our own child.
    let pid = rustix::process::Pid::from_child(&child);
    let sig = rustix::process::Signal::from_named_raw(signal).unwrap();
    let _ = rustix::process::kill_process(pid, sig);
    let out: Output = child.wait_with_output().unwrap().into();
    assert_eq!(out.code, 128 + signal, "{}", out.stderr);
    let name = if signal == libc::SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    assert!(
        out.stderr.contains(&format!(
            "stopped: airlock received {name} and killed the command"
        )),
        "{}",
        out.stderr
    );
    assert!(wt.join("src/stopped.txt").exists());
    let trace = last_trace(&j, &run);
    assert_eq!(trace["exit"]["ended_by_signal"], name, "{trace}");
    assert_eq!(trace["exit"]["code"], 128 + signal, "{trace}");
    assert_eq!(
        trace["files_changed"][0]["path"], "src/stopped.txt",
        "{trace}"
    );
    let execs: Vec<Value> = j
        .events(Some(&run))
        .into_iter()
        .filter(|e| e["kind"] == "exec")
        .collect();
    assert_eq!(execs.len(), 1, "{execs:?}");
    j.assert_ledger_ok();
}

#[test]
fn a_command_stopped_by_sigterm_leaves_its_trace() {
    stopped_with(true, libc::SIGTERM);
    stopped_with(false, libc::SIGTERM);
}

#[test]
fn a_command_stopped_by_ctrl_c_leaves_its_trace() {
    stopped_with(true, libc::SIGINT);
    stopped_with(false, libc::SIGINT);
}

// ---- programs that are not there ------------------------------------------

/// The output with the jail's paths and the run's id replaced.
fn normalized(j: &Jail, run: &str, text: &str) -> String {
    text.replace(&j.tmp.path().display().to_string(), "[JAIL]")
        .replace(run, "[RUN]")
}

fn missing_programs(warm: bool) {
    let j = jail(warm);
    let (run, wt) = j.start(BRIEF);
    let before = j.world();

    let out = j.fails(&["exec", &run, "--", "no-such-program", "--flag"], 127);
    assert!(
        out.stderr
            .starts_with("error: `no-such-program` not found in the run's sandbox"),
        "{}",
        out.stderr
    );
    if warm {
        insta::assert_snapshot!("missing_program", normalized(&j, &run, &out.stderr));
    }

    // Under the host's /tmp, which the sandbox does not show.
    let host_tmp = tempfile::Builder::new()
        .prefix("airlock-test-")
        .tempdir_in("/tmp")
        .unwrap();
    let script = host_tmp.path().join("fix.sh");
    std::fs::write(&script, "#!/bin/sh\necho fixed\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = j.fails(&["exec", &run, "--", script.to_str().unwrap()], 127);
    assert!(
        out.stderr.contains("the sandbox has a private /tmp"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&wt.display().to_string()),
        "{}",
        out.stderr
    );
    // A file under /tmp, given to a program that is there: its trace says so.
    let out = j.airlock(&["exec", &run, "--", "cat", script.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("is in the host's /tmp, which the sandbox does not show"),
        "{}",
        out.stderr
    );

    // There, but not executable: 126.
    j.plant(&wt.join("src/run.sh"), "#!/bin/sh\necho ran\n");
    let out = j.fails(&["exec", &run, "--", "./src/run.sh"], 126);
    assert!(
        out.stderr.contains("`./src/run.sh` cannot be run"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("chmod +x"), "{}", out.stderr);
    // The refusals added no trace; `cat` above did.
    let traces = j.json(&["show", &run, "--no-diff"], 0)["traces"].clone();
    assert_eq!(traces.as_array().unwrap().len(), 1, "{traces}");
    assert_eq!(before.fingerprint, j.world().fingerprint);
}

#[test]
fn a_missing_program_exits_127_and_a_host_tmp_path_is_explained() {
    both(missing_programs);
}

// ---- the network ----------------------------------------------------------

#[test]
fn a_command_failing_for_the_network_that_is_off_is_told_where_to_grant_it() {
    let j = jail(true);
    let (run, _) = j.start(BRIEF);
    let out = j.airlock(&[
        "exec",
        &run,
        "--",
        PY,
        "-c",
        "import urllib.request; urllib.request.urlopen('http://example.invalid/', timeout=5)",
    ]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "hint: the command failed after trying the network, which is off for this run \
             (no lane, brief or workflow grants it); to grant it, set `network = \"on\"` under \
             [lanes.governed]"
        ),
        "{}",
        out.stderr
    );
    let trace = last_trace(&j, &run);
    assert!(
        trace["hint"].as_str().unwrap().contains("[lanes.governed]"),
        "{trace}"
    );
    // A command that failed for another reason gets no such hint.
    let out = j.airlock(&["exec", &run, "--", "sh", "-c", "exit 3"]);
    assert_eq!(out.code, 3);
    assert!(!out.stderr.contains("hint"), "{}", out.stderr);
}

#[test]
fn package_tools_are_offline_when_the_network_is_off() {
    let j = Jail::new(
        Caller::Current,
        &format!("{WORKFLOW}\n[lanes.staging]\nnetwork = \"on\"\n"),
    );
    let (run, _) = j.start(BRIEF);
    let out = j.airlock(&[
        "exec",
        &run,
        "--",
        "sh",
        "-c",
        "echo $CARGO_NET_OFFLINE $npm_config_offline $PIP_NO_INDEX $UV_OFFLINE $GOPROXY",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "true true 1 1 off\n");
    // With the network on, none is set.
    let (online, _) = j.start(&format!("{BRIEF}lane = \"staging\"\n"));
    let out = j.airlock(&[
        "exec",
        &online,
        "--",
        "sh",
        "-c",
        "echo [$CARGO_NET_OFFLINE]",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "[]\n");
}

/// cargo in a project without a `Cargo.lock`: without the network it
/// resolves offline at once instead of retrying name lookups.
#[test]
fn cargo_without_a_lock_file_resolves_offline() {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(&std::env::var_os("HOME").unwrap()).join(".cargo"));
    if !cargo_home.join("bin/cargo").exists() {
        eprintln!("skipped: no cargo in {}", cargo_home.display());
        return;
    }
    let j = jail(true);
    j.plant(&j.repo.join(".gitignore"), "/target\n");
    j.plant(
        &j.repo.join("Cargo.toml"),
        "[package]\nname = \"greet\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nairlock-test-absent-crate = \"1\"\n\n[workspace]\n",
    );
    j.plant(&j.repo.join("src/lib.rs"), "pub fn greet() {}\n");
    j.git(&["add", "-A"]);
    j.git(&["commit", "-qm", "crate"]);
    let (run, _) = j.start(BRIEF);
    let rustup_home = std::env::var_os("RUSTUP_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(&std::env::var_os("HOME").unwrap()).join(".rustup"));
    let path = format!("{}:{SYSTEM_PATH}", cargo_home.join("bin").display());
    let out: Output = airlock(&j, &["exec", &run, "--", "cargo", "generate-lockfile"])
        .env("PATH", &path)
        .env("CARGO_HOME", &cargo_home)
        .env("RUSTUP_HOME", &rustup_home)
        .env_remove("CARGO_NET_OFFLINE")
        .output()
        .unwrap()
        .into();
    // The crate is in no cache: cargo says so, offline, without trying
    // the network (no index update, no name lookups and their retries).
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("offline"), "{}", out.stderr);
    for tried in [
        "Updating crates.io index",
        "spurious network error",
        "Could not resolve host",
        "failed to query replaced source",
    ] {
        assert!(!out.stderr.contains(tried), "{tried}:\n{}", out.stderr);
    }
}

// ---- granted paths that do not exist ----------------------------------------

#[test]
fn a_write_grant_that_does_not_exist_is_refused_with_its_line() {
    for (extra, setting) in [
        ("[sandbox]\nwrite = [\"~/not-made\"]\n", "[sandbox] write"),
        (
            "[lanes.governed]\nwrite = [\"~/not-made\"]\n",
            "[lanes.governed] write",
        ),
    ] {
        let j = Jail::new(Caller::Current, &format!("{WORKFLOW}\n{extra}"));
        let line = WORKFLOW.lines().count() + 3;
        let (run, wt) = j.start(BRIEF);
        let before = j.world();
        let out = j.fails(
            &["exec", &run, "--", "sh", "-c", "echo RAN > src/ran.txt"],
            2,
        );
        assert!(
            out.stderr.contains(&format!(
                "workflow.toml:{line}:10: `~/not-made` in `{setting}` does not exist"
            )),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("create it, or remove it"),
            "{}",
            out.stderr
        );
        assert!(!wt.join("src/ran.txt").exists());
        j.assert_unchanged(&before);
    }
}

/// At a terminal but writing to a file, the command gets no terminal (its
/// output would be a terminal's, `\r\n` and all) and reads nothing.
#[test]
fn at_a_terminal_with_output_to_a_file_the_command_reads_nothing() {
    let j = jail(true);
    let (run, _) = j.start(BRIEF);
    let out = j.tmp.path().join("out.txt");
    let mut cmd = j.command(Path::new("sh"));
    cmd.args([
        "-c",
        &format!(
            "{} exec {run} -- sh -c 'test -t 0 && echo terminal; cat; echo ended' > {}",
            assert_cmd::cargo::cargo_bin("airlock").display(),
            out.display()
        ),
    ]);
    let t = at_terminal(cmd, "", "", None);
    assert_eq!(t.code, 0, "{}", t.shown);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "ended\n");
}
