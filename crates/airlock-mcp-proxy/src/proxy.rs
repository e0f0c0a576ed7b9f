//! The proxy: an MCP server on stdio for the agent, an MCP client of the
//! upstream server it starts.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_model::action::{McpCall, Rehearsal};
use airlock_model::mcp::{Decision, McpServer, McpSettings, ToolFacts, definition_digest};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleClient, RoleServer, RunningService};
use rmcp::{ErrorData as McpError, Peer, ServerHandler, ServiceExt};
use serde_json::{Value, json};

use crate::pins::{PinCheck, PinStore};

/// Arguments larger than this (as JSON) are refused before anything else.
pub const MAX_ARGUMENTS: usize = 1 << 20;
/// At most this much of a rehearsal's answer is kept.
const MAX_REHEARSAL_DETAIL: usize = 4096;

/// A staged call as the plan recorded it.
#[derive(Debug, Clone)]
pub struct Staged {
    pub seq: u32,
    pub name: String,
}

/// A call the proxy passed or refused, as the run's ledger records it: never
/// the arguments themselves (they may carry secrets), only their SHA-256
/// and size; every string bounded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CallRecord {
    pub server: String,
    pub tool: String,
    /// `allow` or `deny` (a staged call is recorded as its action).
    pub decision: Decision,
    /// The rule that decided, 1-based as the messages number it, or none
    /// when the default decided.
    pub rule: Option<usize>,
    /// Why, as the agent was told.
    pub why: String,
    /// SHA-256 of the arguments' JSON as the proxy read them (`{}` when
    /// the call has none).
    pub arguments_sha256: String,
    pub arguments_bytes: usize,
}

/// The longest tool name or reason a record keeps (an upstream names its
/// tools; a longer one is cut and marked).
pub const MAX_RECORDED_TEXT: usize = 512;

fn bounded(text: &str) -> String {
    if text.len() <= MAX_RECORDED_TEXT {
        return text.to_string();
    }
    let mut cut = MAX_RECORDED_TEXT;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

/// Where the proxy's decisions go (the engine, through the CLI). An `Err`
/// is the refusal, rendered for the agent.
pub trait Stage: Send + Sync + 'static {
    /// Records a staged call in the run's plan.
    fn stage(&self, call: McpCall, rehearsal: Option<Rehearsal>) -> Result<Staged, String>;
    /// Records a passed or refused call in the run's ledger, before a
    /// passed one is forwarded.
    fn record(&self, call: CallRecord) -> Result<(), String>;
}

/// How to run the proxy.
pub struct Config {
    pub run: String,
    /// The upstream as the workflow declares it.
    pub server: McpServer,
    pub settings: McpSettings,
    /// The workflow's file name, for the rules' positions.
    pub origin: String,
    /// What is started for the upstream (`airlock exec` of the run when it
    /// is sandboxed, the command itself otherwise).
    pub upstream_argv: Vec<String>,
    pub upstream_cwd: PathBuf,
    /// The run's pins (`runs/RUN/mcp-pins.json`).
    pub pins: PathBuf,
    pub stage: Arc<dyn Stage>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot start the upstream MCP server `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("the upstream MCP server did not initialize: {0}")]
    Upstream(String),
    #[error("the agent's side of the proxy failed: {0}")]
    Agent(String),
    #[error("{0}")]
    Pins(String),
    #[error("cannot start the proxy's runtime: {0}")]
    Runtime(std::io::Error),
}

/// A tool as listed by the upstream, with its pin verdict.
#[derive(Clone)]
struct Listed {
    tool: Tool,
    digest: String,
    changed: Option<String>,
}

#[derive(Clone)]
struct Proxy {
    inner: Arc<Inner>,
}

struct Inner {
    run: String,
    server: McpServer,
    settings: McpSettings,
    origin: String,
    upstream: Peer<RoleClient>,
    pins: Mutex<PinStore>,
    tools: Mutex<HashMap<String, Listed>>,
    stage: Arc<dyn Stage>,
}

fn text_of(content: &[ContentBlock]) -> String {
    content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The rehearsal of a staged call from the rule's recorded answer (the
/// upstream is not called): its text, or the JSON itself when it is not a
/// tool result.
fn fixture_rehearsal(path: &str, answer: &Value) -> Rehearsal {
    let result = serde_json::from_value::<CallToolResult>(answer.clone()).ok();
    let (mut detail, failed) = match &result {
        Some(r) if !r.content.is_empty() => (text_of(&r.content), r.is_error == Some(true)),
        _ => (
            serde_json::to_string_pretty(answer).unwrap_or_default(),
            false,
        ),
    };
    if detail.len() > MAX_REHEARSAL_DETAIL {
        let mut cut = MAX_REHEARSAL_DETAIL;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
        detail.push_str("\n…");
    }
    Rehearsal {
        status: if failed { "failed" } else { "ok" }.into(),
        summary: format!(
            "the recorded answer in .airlock/{path} (a fixture the workflow names; the upstream was not called){}",
            if failed { " is an error" } else { "" }
        ),
        detail,
    }
}

fn refusal(code: &str, message: String) -> CallToolResult {
    let mut result = CallToolResult::error(vec![ContentBlock::text(message.clone())]);
    result.structured_content = Some(json!({"airlock": {"status": "refused", "code": code,
                                                          "message": message}}));
    result
}

impl Inner {
    /// Lists the upstream's tools, checks each against its pin and keeps
    /// the verdicts for the calls.
    async fn refresh(&self) -> Result<Vec<Listed>, McpError> {
        let tools = self.upstream.list_all_tools().await.map_err(|e| {
            McpError::internal_error(
                format!(
                    "the upstream MCP server `{}` did not list its tools: {e}",
                    self.server.name
                ),
                None,
            )
        })?;
        let mut listed = Vec::new();
        {
            let mut pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
            for tool in tools {
                let schema = Value::Object((*tool.input_schema).clone());
                let annotations = tool
                    .annotations
                    .as_ref()
                    .and_then(|a| serde_json::to_value(a).ok());
                let digest = definition_digest(
                    &tool.name,
                    tool.description.as_deref(),
                    &schema,
                    annotations.as_ref(),
                );
                let changed = match pins
                    .check(&self.server, &tool.name, &digest)
                    .map_err(|e| McpError::internal_error(e, None))?
                {
                    PinCheck::Pinned => None,
                    PinCheck::Changed(why) => Some(why),
                };
                listed.push(Listed {
                    tool,
                    digest,
                    changed,
                });
            }
        }
        let mut map = self.tools.lock().unwrap_or_else(|p| p.into_inner());
        map.clear();
        for l in &listed {
            map.insert(l.tool.name.to_string(), l.clone());
        }
        Ok(listed)
    }

    async fn lookup(&self, name: &str) -> Result<Option<Listed>, McpError> {
        if let Some(l) = self
            .tools
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            return Ok(Some(l.clone()));
        }
        Ok(self
            .refresh()
            .await?
            .into_iter()
            .find(|l| l.tool.name == name))
    }

    fn facts<'a>(&'a self, tool: &'a Tool) -> ToolFacts<'a> {
        ToolFacts {
            server: &self.server.name,
            tool: &tool.name,
            read_only: tool.annotations.as_ref().and_then(|a| a.read_only_hint),
            destructive: tool.annotations.as_ref().and_then(|a| a.destructive_hint),
        }
    }

    /// Calls the workflow's read-only counterpart with the same arguments.
    async fn rehearse(
        &self,
        counterpart: &str,
        arguments: Option<rmcp::model::JsonObject>,
    ) -> Rehearsal {
        let unavailable = |summary: String| Rehearsal {
            status: "unavailable".into(),
            summary,
            detail: String::new(),
        };
        let listed = match self.lookup(counterpart).await {
            Ok(Some(l)) => l,
            Ok(None) => {
                return unavailable(format!(
                    "the rehearsal tool `{counterpart}` is not listed by server `{}`",
                    self.server.name
                ));
            }
            Err(e) => {
                return unavailable(format!(
                    "the rehearsal tool could not be listed: {}",
                    e.message
                ));
            }
        };
        if let Some(why) = listed.changed {
            return unavailable(format!("the rehearsal tool is refused: {why}"));
        }
        let verdict = self
            .settings
            .decide(&self.facts(&listed.tool), &self.origin);
        if verdict.decision != Decision::Allow {
            return unavailable(format!(
                "the rehearsal tool `{counterpart}` is not one the workflow lets pass ({})",
                verdict.why
            ));
        }
        let mut params = CallToolRequestParams::new(counterpart.to_string());
        params.arguments = arguments;
        match self.upstream.call_tool(params).await {
            Ok(result) => {
                let mut detail = text_of(&result.content);
                if detail.len() > MAX_REHEARSAL_DETAIL {
                    let mut cut = MAX_REHEARSAL_DETAIL;
                    while !detail.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    detail.truncate(cut);
                    detail.push_str("\n…");
                }
                let failed = result.is_error == Some(true);
                Rehearsal {
                    status: if failed { "failed" } else { "ok" }.into(),
                    summary: format!(
                        "read-only counterpart `{counterpart}` called with the same arguments {}",
                        if failed {
                            "answered an error"
                        } else {
                            "answered"
                        }
                    ),
                    detail,
                }
            }
            Err(e) => unavailable(format!("read-only counterpart `{counterpart}` failed: {e}")),
        }
    }

    /// Writes the ledger record of a passed or refused call.
    async fn record(
        &self,
        tool: &str,
        verdict: &airlock_model::mcp::Verdict,
        arguments: &[u8],
    ) -> Result<(), String> {
        let record = CallRecord {
            server: self.server.name.clone(),
            tool: bounded(tool),
            decision: verdict.decision,
            rule: verdict.rule.map(|i| i + 1),
            why: bounded(&verdict.why),
            arguments_sha256: airlock_model::digest::sha256_hex(arguments),
            arguments_bytes: arguments.len(),
        };
        let stage = self.stage.clone();
        tokio::task::spawn_blocking(move || stage.record(record))
            .await
            .map_err(|e| format!("the record was not written: {e}"))?
    }

    async fn call(&self, request: CallToolRequestParams) -> Result<CallToolResult, McpError> {
        let size = request
            .arguments
            .as_ref()
            .map(|a| serde_json::to_vec(a).map(|v| v.len()).unwrap_or(usize::MAX))
            .unwrap_or(0);
        if size > MAX_ARGUMENTS {
            return Ok(refusal(
                "mcp-arguments-too-large",
                format!(
                    "mcp-arguments-too-large: the arguments of `{}` are {size} bytes of JSON; airlock's MCP proxy takes at most {MAX_ARGUMENTS}. Nothing was called or recorded: send smaller arguments (a path to a file of the worktree instead of its content)",
                    request.name
                ),
            ));
        }
        let Some(listed) = self.lookup(&request.name).await? else {
            return Err(McpError::invalid_params(
                format!(
                    "mcp-unknown-tool: MCP server `{}` has no tool `{}`; nothing was called or recorded. `tools/list` shows the tools it has",
                    self.server.name,
                    request.name.escape_debug()
                ),
                Some(json!({"code": "mcp-unknown-tool"})),
            ));
        };
        if let Some(why) = &listed.changed {
            return Ok(refusal(
                "mcp-definition-changed",
                format!("{why}. Nothing was called or recorded"),
            ));
        }
        let verdict = self
            .settings
            .decide(&self.facts(&listed.tool), &self.origin);
        let arguments = if verdict.decision == Decision::Stage {
            Vec::new()
        } else {
            serde_json::to_vec(&request.arguments.clone().unwrap_or_default()).unwrap_or_default()
        };
        match verdict.decision {
            Decision::Allow => {
                // No record, no call: the ledger shows every call that left.
                if let Err(why) = self.record(&request.name, &verdict, &arguments).await {
                    return Ok(refusal(
                        "mcp-not-recorded",
                        format!(
                            "mcp-not-recorded: airlock did not pass the call of `{}` to MCP server `{}`: it could not record it in the run's ledger ({why}). Nothing was called; run `airlock ledger verify` and try again",
                            request.name, self.server.name
                        ),
                    ));
                }
                self.upstream.call_tool(request).await.map_err(|e| {
                    McpError::internal_error(
                        format!(
                            "the upstream MCP server `{}` failed the call: {e}",
                            self.server.name
                        ),
                        None,
                    )
                })
            }
            Decision::Deny => {
                let recorded = match self.record(&request.name, &verdict, &arguments).await {
                    Ok(()) => "the refusal is recorded in the run's ledger".to_string(),
                    Err(why) => format!("the refusal could not be recorded: {why}"),
                };
                Ok(refusal(
                    "mcp-denied",
                    format!(
                        "mcp-denied: airlock refused the call of `{}` on MCP server `{}`: {}. Nothing was called ({recorded}); do without this tool, or ask the workflow's owner to change the rule",
                        request.name, self.server.name, verdict.why
                    ),
                ))
            }
            Decision::Stage => {
                let rehearsal = match (&verdict.rehearse, &verdict.fixture) {
                    (Some(counterpart), _) => {
                        Some(self.rehearse(counterpart, request.arguments.clone()).await)
                    }
                    (None, Some((path, answer))) => Some(fixture_rehearsal(path, answer)),
                    (None, None) => None,
                };
                let call = McpCall {
                    server: self.server.name.clone(),
                    command: self.server.command.clone(),
                    tool: request.name.to_string(),
                    arguments: Value::Object(request.arguments.clone().unwrap_or_default()),
                    definition: listed.digest.clone(),
                };
                let stage = self.stage.clone();
                let staged = tokio::task::spawn_blocking(move || stage.stage(call, rehearsal))
                    .await
                    .map_err(|e| McpError::internal_error(format!("staging failed: {e}"), None))?;
                Ok(match staged {
                    Ok(s) => {
                        let message = format!(
                            "staged for review as action {seq} (`{name}`) of run {run}: the call of `{tool}` was NOT made. \
                             {why}. A reviewer sees the server, the tool and these arguments in `airlock plan {run}`; \
                             if the run is approved, airlock makes the call once, at promotion. Do not call it again: \
                             the plan already holds it",
                            seq = s.seq,
                            name = s.name,
                            run = self.run,
                            tool = request.name,
                            why = verdict.why,
                        );
                        let mut result = CallToolResult::success(vec![ContentBlock::text(message)]);
                        result.structured_content = Some(json!({"airlock": {
                            "status": "staged", "action": s.seq, "name": s.name, "run": self.run}}));
                        result
                    }
                    Err(why) => refusal(
                        "mcp-not-staged",
                        format!(
                            "airlock could not stage the call of `{}`: {why}. Nothing was called or recorded",
                            request.name
                        ),
                    ),
                })
            }
        }
    }
}

impl ServerHandler for Proxy {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build());
        info.server_info = Implementation::new("airlock-mcp-proxy", env!("CARGO_PKG_VERSION"));
        info.instructions = Some(format!(
            "airlock stands in front of MCP server `{}` for run {}: read-only tools answer directly; calls that change \
             the world are staged for human review and made at promotion; some may be refused. Each answer says which.",
            self.inner.server.name, self.inner.run
        ));
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let listed = self.inner.refresh().await?;
        let inner = &self.inner;
        Ok(ListToolsResult::with_all_items(
            listed
                .into_iter()
                .filter(|l| l.changed.is_none())
                .map(|l| {
                    let mut tool = l.tool;
                    // A staged or refused call never returns what the tool
                    // declares it returns: clients validate structured
                    // results against `outputSchema`, so it is not shown.
                    if inner
                        .settings
                        .decide(&inner.facts(&tool), &inner.origin)
                        .decision
                        != Decision::Allow
                    {
                        tool.output_schema = None;
                    }
                    tool
                })
                .collect(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.inner.call(request).await.map(CallToolResponse::from)
    }
}

/// The largest message the proxy reads from the agent; a longer line is
/// answered with an error and dropped, never buffered whole.
pub const MAX_MESSAGE: usize = 8 << 20;

type SharedOut = Arc<tokio::sync::Mutex<tokio::io::Stdout>>;

async fn write_line(out: &SharedOut, line: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut out = out.lock().await;
    out.write_all(line).await?;
    if !line.ends_with(b"\n") {
        out.write_all(b"\n").await?;
    }
    out.flush().await
}

/// A JSON-RPC error for a message that never reached the MCP layer.
fn rpc_error(id: Value, code: i64, message: String) -> Vec<u8> {
    let mut line = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
        .to_string()
        .into_bytes();
    line.push(b'\n');
    line
}

/// What is wrong with one line from the agent, if anything: the JSON-RPC
/// error to answer it with.
fn check_message(line: &[u8], number: u64) -> Option<Vec<u8>> {
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            return Some(rpc_error(
                Value::Null,
                -32700,
                format!(
                    "parse error: message {number} from the client is not JSON ({e}); it was ignored and nothing was called or recorded"
                ),
            ));
        }
    };
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    let ok = value.get("jsonrpc").and_then(Value::as_str) == Some("2.0")
        && (value.get("method").is_some_and(Value::is_string)
            || value.get("result").is_some()
            || value.get("error").is_some());
    (!ok).then(|| {
        rpc_error(
            id,
            -32600,
            format!("invalid request: message {number} from the client is JSON but not a JSON-RPC 2.0 message (it needs \"jsonrpc\": \"2.0\" and a \"method\", or a result or error); it was ignored and nothing was called or recorded"),
        )
    })
}

/// Reads one line of at most `max` bytes into `buf`; `None` at the end,
/// `Some(true)` when the line was longer (its bytes are dropped).
async fn read_line_bounded<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<bool>> {
    use tokio::io::AsyncBufReadExt;
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(any.then_some(too_long));
        }
        any = true;
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..=i], true),
            None => (available, false),
        };
        if !too_long && buf.len() + chunk.len() <= max {
            buf.extend_from_slice(chunk);
        } else {
            too_long = true;
            buf.clear();
        }
        let n = chunk.len();
        reader.consume(n);
        if done {
            return Ok(Some(too_long));
        }
    }
}

/// Passes the agent's well-formed JSON-RPC lines to the MCP layer and
/// answers every other line itself, so a malformed message gets a precise
/// error instead of ending the session.
async fn guard_input(
    stdin: tokio::io::Stdin,
    mut to_rmcp: tokio::io::WriteHalf<tokio::io::DuplexStream>,
    out: SharedOut,
) {
    use tokio::io::AsyncWriteExt;
    let mut reader = tokio::io::BufReader::new(stdin);
    let mut line = Vec::new();
    let mut number = 0u64;
    while let Ok(Some(too_long)) = read_line_bounded(&mut reader, &mut line, MAX_MESSAGE).await {
        number += 1;
        let reply = if too_long {
            Some(rpc_error(
                Value::Null,
                -32600,
                format!(
                    "invalid request: message {number} from the client is longer than {MAX_MESSAGE} bytes; it was dropped unread and nothing was called or recorded"
                ),
            ))
        } else if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        } else {
            check_message(&line, number)
        };
        if !line.ends_with(b"\n") {
            line.push(b'\n');
        }
        let sent = match reply {
            Some(error) => write_line(&out, &error).await,
            None => to_rmcp.write_all(&line).await,
        };
        if sent.is_err() {
            break;
        }
    }
    let _ = to_rmcp.shutdown().await;
}

/// Writes the MCP layer's messages to stdout, a whole line at a time.
async fn relay_output(from_rmcp: tokio::io::ReadHalf<tokio::io::DuplexStream>, out: SharedOut) {
    use tokio::io::AsyncBufReadExt;
    let mut reader = tokio::io::BufReader::new(from_rmcp);
    let mut line = Vec::new();
    while let Ok(n) = reader.read_until(b'\n', &mut line).await {
        if n == 0 || write_line(&out, &line).await.is_err() {
            break;
        }
        line.clear();
    }
}

/// Starts the upstream, connects to it, and serves the agent on stdio until
/// the agent closes its side; then stops the upstream.
pub fn serve_stdio(config: Config) -> Result<(), ProxyError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ProxyError::Runtime)?;
    runtime.block_on(serve(config))
}

async fn serve(config: Config) -> Result<(), ProxyError> {
    let pins = PinStore::open(config.pins.clone()).map_err(ProxyError::Pins)?;
    let program = config.upstream_argv.first().cloned().unwrap_or_default();
    let mut child = tokio::process::Command::new(&program)
        .args(&config.upstream_argv[1..])
        .current_dir(&config.upstream_cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ProxyError::Spawn {
            program: program.clone(),
            source,
        })?;
    let (Some(out), Some(inp)) = (child.stdout.take(), child.stdin.take()) else {
        return Err(ProxyError::Upstream("its pipes were not made".into()));
    };
    let client: RunningService<RoleClient, ()> = ()
        .serve((out, inp))
        .await
        .map_err(|e| ProxyError::Upstream(e.to_string()))?;
    let proxy = Proxy {
        inner: Arc::new(Inner {
            run: config.run,
            server: config.server,
            settings: config.settings,
            origin: config.origin,
            upstream: client.peer().clone(),
            pins: Mutex::new(pins),
            tools: Mutex::new(HashMap::new()),
            stage: config.stage,
        }),
    };
    let (rmcp_side, guard_side) = tokio::io::duplex(1 << 16);
    let (from_rmcp, to_rmcp) = tokio::io::split(guard_side);
    let stdout = Arc::new(tokio::sync::Mutex::new(tokio::io::stdout()));
    let input = tokio::spawn(guard_input(tokio::io::stdin(), to_rmcp, stdout.clone()));
    let output = tokio::spawn(relay_output(from_rmcp, stdout));
    match proxy.serve(rmcp_side).await {
        Ok(agent) => {
            let _ = agent.waiting().await;
        }
        // The agent left before it initialized: a session that ended, not
        // a failure (anything it sent was answered by `guard_input`).
        Err(rmcp::service::ServerInitializeError::ConnectionClosed(_)) => {}
        Err(e) => return Err(ProxyError::Agent(e.to_string())),
    }
    input.abort();
    let _ = output.await;
    // The agent is gone: close the upstream's stdin and give it a moment
    // to leave on its own (an `airlock exec` records its trace then).
    let _ = client.cancel().await;
    if tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .is_err()
    {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<(Vec<u8>, bool)> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut reader = tokio::io::BufReader::with_capacity(4, input);
            let mut out = Vec::new();
            let mut line = Vec::new();
            while let Some(too_long) = read_line_bounded(&mut reader, &mut line, max)
                .await
                .unwrap()
            {
                out.push((line.clone(), too_long));
            }
            out
        })
    }

    #[test]
    fn long_lines_are_dropped_whole_and_the_next_line_is_read() {
        assert_eq!(
            lines(b"ab\nlonger than eight\ncd", 8),
            vec![
                (b"ab\n".to_vec(), false),
                (Vec::new(), true),
                (b"cd".to_vec(), false)
            ]
        );
    }

    #[test]
    fn only_json_rpc_2_0_messages_pass() {
        assert!(check_message(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#, 1).is_none());
        assert!(check_message(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#, 1).is_none());
        let parse: Value =
            serde_json::from_slice(&check_message(b"{\"jsonrpc\":", 3).unwrap()).unwrap();
        assert_eq!(parse["error"]["code"], -32700);
        assert_eq!(parse["id"], Value::Null);
        let invalid: Value = serde_json::from_slice(
            &check_message(br#"{"jsonrpc":"1.0","id":"x","method":"m"}"#, 4).unwrap(),
        )
        .unwrap();
        assert_eq!(invalid["error"]["code"], -32600);
        assert_eq!(invalid["id"], "x");
        let not_object: Value =
            serde_json::from_slice(&check_message(b"[1, 2]", 5).unwrap()).unwrap();
        assert_eq!(not_object["error"]["code"], -32600);
    }
}
