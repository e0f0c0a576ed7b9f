use std::ffi::OsString;
use std::time::Duration;

use airlock_sandbox::{CommandSpec, Echo, Exit, Limits, SandboxError, run, run_gated};

fn spec(dir: &std::path::Path, script: &str, timeout: Option<Duration>) -> CommandSpec {
    CommandSpec {
        argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
        cwd: dir.to_path_buf(),
        env: vec![(OsString::from("PATH"), OsString::from("/usr/bin:/bin"))],
        timeout,
        stdout_path: dir.join("out.log"),
        stderr_path: dir.join("err.log"),
        echo: Echo::None,
        input: airlock_sandbox::Input::Null,
        confinement: None,
        limits: Limits::default(),
    }
}

#[test]
fn records_exit_code_and_output_digests() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = run(&spec(
        dir.path(),
        "printf hello; printf oops >&2; exit 3",
        None,
    ))
    .unwrap();
    assert_eq!(outcome.exit, Exit::Exited { code: 3 });
    assert_eq!(outcome.stdout.size, 5);
    // sha256("hello")
    assert_eq!(
        outcome.stdout.sha256,
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("err.log")).unwrap(),
        "oops"
    );
}

#[test]
fn environment_is_only_what_was_given() {
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: single-threaded at this point of the test; the variable is ours.
    unsafe { std::env::set_var("AIRLOCK_TEST_LEAK", "secret-value") };
    let outcome = run(&spec(dir.path(), "env", None)).unwrap();
    assert!(outcome.exit.success());
    let env = std::fs::read_to_string(dir.path().join("out.log")).unwrap();
    assert!(!env.contains("AIRLOCK_TEST_LEAK"), "{env}");
    assert!(env.contains("PATH=/usr/bin:/bin"), "{env}");
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("survivor");
    // A background grandchild that would write the marker after the limit.
    let script = format!("(sleep 2; touch {}) & sleep 30", marker.display());
    let outcome = run(&spec(dir.path(), &script, Some(Duration::from_millis(300)))).unwrap();
    assert!(
        matches!(outcome.exit, Exit::TimedOut { .. }),
        "{:?}",
        outcome.exit
    );
    assert_eq!(outcome.exit.shell_code(), 124);
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!marker.exists(), "a grandchild outlived the time limit");
}

#[test]
fn background_children_do_not_outlive_a_finished_command() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("late");
    let script = format!("(sleep 1; touch {}) & exit 0", marker.display());
    let outcome = run(&spec(dir.path(), &script, None)).unwrap();
    assert!(outcome.exit.success());
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!marker.exists(), "a background child outlived its command");
}

#[test]
fn missing_program_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), "", None);
    s.argv = vec!["/nonexistent/tool".into()];
    let err = run(&s).unwrap_err().to_string();
    assert!(err.starts_with("cannot run `/nonexistent/tool`:"), "{err}");
}

#[test]
fn an_output_flood_is_cut_at_the_limit_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), "yes airlock", None);
    s.limits.output_bytes = Some(100_000);
    let outcome = run(&s).unwrap();
    assert_eq!(outcome.stdout.size, 100_000);
    assert_eq!(
        std::fs::metadata(dir.path().join("out.log")).unwrap().len(),
        100_000
    );
    assert!(!outcome.exit.success());
    assert_eq!(
        outcome.limit_hit.as_deref(),
        Some("output limit of 100000 bytes: the command was killed")
    );
}

#[test]
fn an_unconfined_command_starts_after_its_gate_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let spec = spec(dir.path(), "echo yes > ran", None);
    let mut refuse = || {
        assert!(!ran.exists());
        Err("not now".to_string())
    };
    let err = run_gated(&spec, Some(&mut refuse)).unwrap_err();
    assert!(matches!(err, SandboxError::NotStarted { ref reason } if reason == "not now"));
    assert!(!ran.exists());
    let mut open = || {
        assert!(!ran.exists());
        Ok(())
    };
    assert!(run_gated(&spec, Some(&mut open)).unwrap().exit.success());
    assert!(ran.exists());
}
