//! `mcp-exec`: the MCP server's `exec` tool against `airlock exec`, on the same
//! run: one `tools/call` of `exec` with `["true"]` on a session that is
//! already open (initialized once, before anything is timed), against
//! `airlock exec RUN -- true` started as a process. Both record a trace
//! through the same engine path; the server saves the process start and
//! the argument parsing, and pays for the JSON-RPC round trip.
//!
//! The session is driven with newline-delimited JSON-RPC written here: the
//! timing is of the server, not of a client library.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::env::{Env, make_repo, run, run_id, timed, write_brief};
use crate::stats::{Comparison, Measure, Target};

pub struct Opts {
    pub pairs: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts { pairs: 51 }
    }
}

const WORKFLOW: &str = "[gates.ok]\nrun = \"true\"\n\n[policy]\ntarget = \"main\"\n";

/// An `airlock mcp --run RUN` session, initialized.
struct Session {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Session {
    fn start(env: &Env, repo: &Path, run: &str) -> Result<Session> {
        let mut child = env
            .airlock(repo, &["mcp", "--run", run])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start `airlock mcp`")?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        let mut session = Session {
            child,
            stdin,
            stdout,
            next_id: 1,
        };
        session.request(
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "airlock-bench", "version": "1"}
            }),
        )?;
        session.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
        Ok(session)
    }

    fn send(&mut self, message: &Value) -> Result<()> {
        let mut line = serde_json::to_vec(message)?;
        line.push(b'\n');
        self.stdin.write_all(&line)?;
        self.stdin.flush()?;
        Ok(())
    }

    /// One request and its answer (the server sends nothing unasked).
    fn request(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("`airlock mcp` closed its output");
        }
        let answer: Value =
            serde_json::from_str(&line).context("the server's answer is not JSON")?;
        if answer["id"] != json!(id) {
            bail!("the server answered another request: {line}");
        }
        if let Some(error) = answer.get("error") {
            bail!("the server answered an error: {error}");
        }
        Ok(answer["result"].clone())
    }

    fn exec_true(&mut self) -> Result<()> {
        let result = self.request(
            "tools/call",
            json!({"name": "exec", "arguments": {"command": ["true"]}}),
        )?;
        if result["isError"] != json!(false) || result["structuredContent"]["exit"]["code"] != 0 {
            bail!("the exec tool failed: {result}");
        }
        Ok(())
    }

    fn close(mut self) -> Result<()> {
        drop(self.stdin);
        let status = self.child.wait()?;
        if !status.success() {
            bail!("`airlock mcp` exited with {status}");
        }
        Ok(())
    }
}

pub fn bench(
    airlock: &Path,
    opts: &Opts,
    verbose: bool,
    keep: &mut Vec<tempfile::TempDir>,
) -> Result<Comparison> {
    let env = Env::new(airlock, "mcp", verbose)?;
    let repo = env.path("repo");
    make_repo(&env, &repo, 5, 10, WORKFLOW)?;
    let brief = env.path("brief.toml");
    write_brief(&brief, "mcp bench", &["ok"])?;
    let out = run(env.airlock(&repo, &["start", "--json", &brief.display().to_string()]))?;
    let id = run_id(&out)?;

    let mut session = Session::start(&env, &repo, &id)?;
    let mut subject = Measure::new("MCP tools/call exec [\"true\"] on an open session");
    let mut baseline = Measure::new("airlock exec RUN -- true");
    let mut execs = 0;
    for i in 0..=opts.pairs {
        let t = Instant::now();
        session.exec_true()?;
        let a = t.elapsed();
        let (b, _) = timed(env.airlock(&repo, &["exec", &id, "--", "true"]))?;
        execs += 2;
        if i > 0 {
            subject.push(a);
            baseline.push(b);
        }
        env.say(&format!(
            "mcp: round {i}{}: MCP exec {:.2} ms, airlock exec {:.2} ms",
            if i > 0 { "" } else { " (untimed)" },
            a.as_secs_f64() * 1e3,
            b.as_secs_f64() * 1e3
        ));
    }
    session.close()?;

    // Sanity: both sides recorded every command as a trace of the run.
    let shown = run(env.airlock(&repo, &["show", &id, "--json", "--no-diff"]))?;
    let shown: Value =
        serde_json::from_slice(&shown.stdout).context("airlock show --json printed no JSON")?;
    let recorded = shown["traces"].as_array().map_or(0, Vec::len);
    anyhow::ensure!(
        recorded == execs,
        "run {id} shows {recorded} traces, expected {execs}"
    );
    keep.push(env.into_dir());
    Ok(Comparison {
        id: "mcp-exec".into(),
        title: format!(
            "mcp-exec: the MCP server's exec tool (one call on an open session) vs airlock exec RUN -- true, {} interleaved pairs",
            opts.pairs
        ),
        subject,
        baseline,
        details: vec![],
        notes: vec![
            "same run, same engine path (traced, sandboxed, recorded); both report, no target"
                .into(),
        ],
        target: Target::None,
    })
}
