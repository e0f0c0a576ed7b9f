//! Stand-in agents for `airlock agent`'s tests: a script started as the
//! agent's CMD, and the attempts its `try` recorded.

use std::path::Path;

use super::{Env, Output, write};

/// Writes `script` into the worktree as `agent.sh` (executable): the
/// stand-in agent, started as `./agent.sh`.
pub fn agent_script(wt: &Path, script: &str) {
    let path = wt.join("agent.sh");
    write(&path, script);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `airlock --json agent ARGS…`.
pub fn agent(env: &Env, args: &[&str]) -> Output {
    let mut full = vec!["--json", "agent"];
    full.extend_from_slice(args);
    env.airlock(&full)
}

/// The attempts `try` recorded: (exit code, command line, output).
pub fn attempts(wt: &Path) -> Vec<(i32, String, String)> {
    let text = std::fs::read_to_string(wt.join("attempts.txt")).unwrap_or_default();
    let mut out: Vec<(i32, String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("  | ") {
            if let Some(last) = out.last_mut() {
                last.2 += rest;
                last.2 += "\n";
            }
            continue;
        }
        let (code, command) = line.split_once(' ').unwrap_or((line, ""));
        out.push((code.parse().unwrap(), command.to_string(), String::new()));
    }
    out
}
