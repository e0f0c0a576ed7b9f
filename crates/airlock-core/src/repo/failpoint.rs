//! Test hooks for the crash-recovery tests.

/// Test hook: dies (SIGKILL, like `kill -9`) at the named point when
/// `AIRLOCK_FAILPOINT` names it. Used by the crash-recovery tests.
pub fn failpoint(name: &str) {
    if std::env::var_os("AIRLOCK_FAILPOINT").is_some_and(|v| v == name) {
        use rustix::process::{Signal, getpid, kill_process};
        let _ = kill_process(getpid(), Signal::KILL);
    }
}

/// Test hook: waits at the named point when `AIRLOCK_PAUSEPOINT` names it,
/// for a race test to act in between (push to the remote, promote from
/// another machine): at the point's Nth arrival in this process, writes
/// `NAME.reached.N` into `AIRLOCK_PAUSEPOINT_DIR`, then waits (at most a
/// minute) for `NAME.go.N` there.
pub fn pausepoint(name: &str) {
    static ARRIVALS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    if std::env::var_os("AIRLOCK_PAUSEPOINT").is_none_or(|v| v != name) {
        return;
    }
    let Some(dir) = std::env::var_os("AIRLOCK_PAUSEPOINT_DIR").map(std::path::PathBuf::from) else {
        return;
    };
    let n = ARRIVALS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    let _ = std::fs::write(dir.join(format!("{name}.reached.{n}")), b"");
    let go = dir.join(format!("{name}.go.{n}"));
    for _ in 0..600 {
        if go.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
