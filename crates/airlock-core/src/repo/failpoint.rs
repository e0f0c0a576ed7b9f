//! Test hooks for the crash-recovery tests.

/// Test hook: dies (SIGKILL, like `kill -9`) at the named point when
/// `AIRLOCK_FAILPOINT` names it. Used by the crash-recovery tests.
pub fn failpoint(name: &str) {
    if std::env::var_os("AIRLOCK_FAILPOINT").is_some_and(|v| v == name) {
        // SAFETY: raising a signal at ourselves.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
