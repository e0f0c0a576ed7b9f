//! `airlock mcp --run RUN`: the Model Context Protocol over stdio, with
//! rmcp. The server is bound to one run: its tools take no run id, and a
//! call naming one is refused. What a tool does is the caller's
//! [`Backend`] (the CLI runs the same code as its commands), so a result
//! carries the same fields as that command's `--json`, and an error the
//! same code, message and hint.

mod tools;
mod transport;

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler, ServiceExt};
use serde_json::{Value, json};

pub use tools::{Call, MAX_ARGUMENTS, Rejected, TOOLS};
pub use transport::MAX_MESSAGE;

/// What a tool produced: the command's `--json` document and a short text
/// for the model. A failed check or a changed snapshot is a result like
/// any other (its document says so), not a tool error.
pub struct Reply {
    pub data: Value,
    pub text: String,
}

/// Runs the calls. Calls come one at a time.
pub trait Backend: Send + Sync + 'static {
    fn call(&self, call: Call) -> Result<Reply, airlock_core::Error>;
}

/// The names of the tools, as listed.
pub fn tool_names() -> Vec<&'static str> {
    TOOLS.iter().map(|t| t.name).collect()
}

struct Server<B> {
    run: String,
    /// One call at a time: the engine's steps take the run's locks, and a
    /// client that sends calls together gets them in order.
    backend: Arc<Mutex<B>>,
}

fn tool_list() -> Vec<Tool> {
    TOOLS
        .iter()
        .map(|t| {
            let Value::Object(schema) = (t.schema)() else {
                unreachable!("every schema is an object")
            };
            let mut annotations = ToolAnnotations::with_title(t.title);
            annotations.read_only_hint = Some(t.read_only);
            annotations.destructive_hint = Some(false);
            annotations.open_world_hint = Some(false);
            Tool::new(t.name, t.description, schema).with_annotations(annotations)
        })
        .collect()
}

/// An airlock error as a tool error: the `--json` error document as the
/// structured content, and its text as airlock prints it.
fn error_result(body: Value) -> CallToolResult {
    let mut text = format!("error: {}", body["message"].as_str().unwrap_or_default());
    if let Some(reasons) = body["reasons"].as_array() {
        for r in reasons {
            text += &format!("\n  - {}", r.as_str().unwrap_or_default());
        }
    }
    // A file's problems, each where it is (a model reads the text).
    if let Some(diagnostics) = body["diagnostics"].as_array() {
        let origin = body["path"].as_str().unwrap_or_default();
        for d in diagnostics {
            text += &format!(
                "\n  - {origin}, line {}, column {}: {}",
                d["line"],
                d["column"],
                d["message"].as_str().unwrap_or_default()
            );
            if let Some(help) = d["help"].as_str() {
                text += &format!("\n    help: {help}");
            }
        }
    }
    if let Some(hint) = body["hint"].as_str() {
        text += &format!("\n  hint: {hint}");
    }
    text += &format!("\n  code: {}", body["code"].as_str().unwrap_or_default());
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    result.structured_content = Some(json!({ "error": body }));
    result
}

impl<B: Backend> ServerHandler for Server<B> {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("airlock", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "airlock stages your work in run {run}: an isolated worktree, sandboxed and traced commands, \
                 gates, and a review by a person before anything reaches the main branch or the world. \
                 Run every command with `exec`, run `check` until it passes, propose side effects with \
                 `propose` (they run only after approval), then `submit`. `status` shows the state and the \
                 reviewer's feedback. Errors carry a stable `code` to branch on.",
                run = self.run
            ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tool_list()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(parsed) = tools::parse(&self.run, &request.name, request.arguments.as_ref())
        else {
            return Err(ErrorData::invalid_params(
                Cow::Owned(format!(
                    "unknown tool `{}`: this server offers {}; approving, rejecting, promoting, resolving, \
                     rolling back and editing the workflow are a person's, outside this server",
                    request.name,
                    tool_names().join(", ")
                )),
                Some(json!({"code": "invalid-input", "tool": request.name})),
            ));
        };
        let call = match parsed {
            Ok(call) => call,
            Err(rejected) => return Ok(error_result(rejected.to_json()).into()),
        };
        let backend = self.backend.clone();
        let answer = tokio::task::spawn_blocking(move || {
            let backend = backend
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            backend.call(call)
        })
        .await;
        Ok(match answer {
            Ok(Ok(reply)) => {
                let mut result = CallToolResult::success(vec![ContentBlock::text(reply.text)]);
                result.structured_content = Some(reply.data);
                result
            }
            Ok(Err(error)) => error_result(error.to_json()),
            // A panic in the call: the server carries on and says so.
            Err(e) => error_result(
                airlock_core::Error::Internal(format!("the tool call failed: {e}")).to_json(),
            ),
        }
        .into())
    }
}

/// Serves `run` on stdin and stdout until the client closes stdin.
pub fn serve_stdio(run: String, backend: impl Backend) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let server = Server {
            run,
            backend: Arc::new(Mutex::new(backend)),
        };
        let transport = transport::Lines::stdio();
        let service = server
            .serve(transport)
            .await
            .map_err(|e| std::io::Error::other(format!("the MCP session did not start: {e}")))?;
        service
            .waiting()
            .await
            .map_err(|e| std::io::Error::other(format!("the MCP session failed: {e}")))?;
        Ok(())
    })
}
