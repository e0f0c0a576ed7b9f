//! Test hooks for the crash-recovery tests.

/// Test hook: dies (SIGKILL, like `kill -9`) at the named point when
/// `AIRLOCK_FAILPOINT` names it. Used by the crash-recovery tests.
pub fn failpoint(name: &str) {
    if std::env::var_os("AIRLOCK_FAILPOINT").is_some_and(|v| v == name) {
        use rustix::process::{Signal, getpid, kill_process};
        let _ = kill_process(getpid(), Signal::KILL);
    }
}
