//! `mcp-proxy`: a passed-through tool call via `airlock mcp-proxy` against the
//! same call on the upstream directly, in one run and one client (the
//! official MCP Python SDK, `src/mcp_driver.py`), sessions held open and
//! calls interleaved. The upstream is the test fixture server (a read-only
//! `read_notes`). Three sessions:
//!
//! - `airlock mcp-proxy --run RUN` (the upstream in the run's sandbox
//!   through `airlock exec`): the subject;
//! - `airlock exec RUN -- SERVER` (the same sandboxed upstream, no proxy):
//!   the baseline, so the difference is what the proxy adds;
//! - the server itself, no airlock: shown as a reference point.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::env::{Env, make_repo, run, run_id, write_brief};
use crate::stats::{Comparison, Measure, Target};

pub struct Opts {
    pub calls: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts { calls: 200 }
    }
}

const DRIVER: &str = include_str!("mcp_driver.py");
const SERVER: &str = include_str!("../../airlock-cli/tests/fixtures/mcp/notes_server.py");

/// The interpreter with the MCP SDK, by its absolute path.
fn python(env: &Env) -> Result<String> {
    let out = env
        .command("python3", env.dir.path())
        .args(["-c", "import mcp, sys; print(sys.executable)"])
        .output()
        .context("cannot run python3")?;
    if !out.status.success() {
        bail!("the MCP Python SDK is not installed: `python3 -m pip install mcp`");
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn bench(airlock: &Path, opts: &Opts, verbose: bool) -> Result<Comparison> {
    let env = Env::new(airlock, "mcp", verbose)?;
    let python = python(&env)?;
    // In the repository, so the sandboxed upstream sees it in the worktree
    // (the sandbox has a private /tmp); every session starts it relative
    // to its directory (the worktree, or the main checkout).
    let repo = env.path("repo");
    std::fs::create_dir_all(&repo)?;
    std::fs::write(repo.join("notes_server.py"), SERVER)?;
    let driver = env.path("mcp_driver.py");
    std::fs::write(&driver, DRIVER)?;
    let notes = env.path("notes.txt");
    let command = [
        python.clone(),
        "notes_server.py".to_string(),
        notes.display().to_string(),
    ];
    let workflow = format!(
        "[gates.build]\nrun = \"true\"\n\n[mcp.servers.notes]\ncommand = {}\n",
        serde_json::to_string(&command)?
    );
    make_repo(&env, &repo, 2, 2, &workflow)?;
    let brief = env.path("brief.toml");
    write_brief(&brief, "mcp bench", &["build"])?;
    let out = run(env.airlock(&repo, &["--json", "start", &brief.display().to_string()]))?;
    let id = run_id(&out)?;
    let me = airlock.display().to_string();
    let mut exec = vec![
        me.clone(),
        "-C".into(),
        repo.display().to_string(),
        "exec".into(),
        id.clone(),
        "--timeout".into(),
        "1h".into(),
        "--".into(),
    ];
    exec.extend(command.iter().cloned());
    let config = serde_json::json!({
        "tool": "read_notes",
        "calls": opts.calls,
        "sessions": {
            "proxy": [me, "-C", repo.display().to_string(), "mcp-proxy", "--run", id],
            "sandboxed": exec,
            "bare": command,
        },
    });
    env.say(&format!("{} calls on each of 3 sessions", opts.calls));
    let mut child = env
        .command(&python, &repo)
        .arg(&driver)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start the MCP driver")?;
    child
        .stdin
        .take()
        .context("no stdin")?
        .write_all(config.to_string().as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "the MCP driver failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let times: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("the MCP driver printed no JSON")?;
    let measure = |name: &str, label: &str| {
        let mut m = Measure::new(label);
        for ns in times[name].as_array().into_iter().flatten() {
            m.push(Duration::from_nanos(ns.as_u64().unwrap_or(0)));
        }
        m
    };
    Ok(Comparison {
        id: "mcp".into(),
        title: "MCP: a passed-through tool call via airlock mcp-proxy vs the same sandboxed upstream directly"
            .into(),
        subject: measure("proxy", "via airlock mcp-proxy"),
        baseline: measure("sandboxed", "upstream directly (airlock exec)"),
        details: vec![measure("bare", "upstream directly, no sandbox")],
        notes: vec![format!(
            "{} calls of read_notes per session, interleaved; the official MCP Python SDK's client; upstream: MCPServer (Python SDK)",
            opts.calls
        )],
        target: Target::AddedPerCommandUnder {
            commands: 1,
            limit: Duration::from_millis(2),
        },
    })
}
