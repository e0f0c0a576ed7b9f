//! The MCP client of approved calls, added to any `Effects`.

use std::process::Stdio;

use airlock_model::action::Body;
use airlock_model::action::effects::{
    Effects, Failure, HttpRequest, HttpResponse, McpReply, McpRequest, OutgoingEmail,
};
use airlock_model::action::settings::Smtp;
use airlock_model::mcp::definition_digest;
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use serde_json::Value;

/// `E`'s HTTP and SMTP clients, plus an MCP client for approved `mcp`
/// actions: the CLI gives the engine `WithMcp(airlock_effects::Live)`.
pub struct WithMcp<E>(pub E);

/// Variables an approved call's server is started with, from airlock's
/// environment: enough to find programs and a home, nothing else.
const BASE_ENV: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TMPDIR",
];

impl<E: Effects> Effects for WithMcp<E> {
    fn http(&self, request: &HttpRequest) -> Result<HttpResponse, Failure> {
        self.0.http(request)
    }

    fn email(
        &self,
        server: &Smtp,
        credentials: Option<(String, String)>,
        message: &OutgoingEmail,
    ) -> Result<String, Failure> {
        self.0.email(server, credentials, message)
    }

    fn validate(&self, body: &Body) -> Result<(), Vec<String>> {
        self.0.validate(body)
    }

    fn mcp(&self, request: &McpRequest) -> Result<McpReply, Failure> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| not_called(format!("cannot start a runtime: {e}")))?;
        runtime.block_on(async {
            match tokio::time::timeout(request.timeout, call(request)).await {
                Ok(result) => result,
                Err(_) => Err(Failure {
                    message: format!(
                        "no answer from tool {} within {} s: it may or may not have acted",
                        request.tool,
                        request.timeout.as_secs()
                    ),
                    maybe_delivered: true,
                }),
            }
        })
    }
}

fn not_called(message: String) -> Failure {
    Failure {
        message: format!("not called: {message}"),
        maybe_delivered: false,
    }
}

async fn call(request: &McpRequest) -> Result<McpReply, Failure> {
    let Some((program, args)) = request.command.split_first() else {
        return Err(not_called("the server has no command".into()));
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .current_dir(&request.cwd)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    for name in BASE_ENV {
        if let Some(v) = std::env::var_os(name) {
            command.env(name, v);
        }
    }
    let mut child = command.spawn().map_err(|e| {
        not_called(format!(
            "cannot start MCP server `{}` ({program}): {e}",
            request.server
        ))
    })?;
    let (Some(out), Some(inp)) = (child.stdout.take(), child.stdin.take()) else {
        return Err(not_called("the server's pipes were not made".into()));
    };
    let client = ().serve((out, inp)).await.map_err(|e| {
        not_called(format!(
            "MCP server `{}` did not initialize: {e}",
            request.server
        ))
    })?;
    let tools = client.list_all_tools().await.map_err(|e| {
        not_called(format!(
            "MCP server `{}` did not list its tools: {e}",
            request.server
        ))
    })?;
    let Some(tool) = tools.iter().find(|t| t.name == request.tool) else {
        return Err(not_called(format!(
            "MCP server `{}` no longer lists tool `{}`",
            request.server, request.tool
        )));
    };
    let digest = definition_digest(
        &tool.name,
        tool.description.as_deref(),
        &Value::Object((*tool.input_schema).clone()),
        tool.annotations
            .as_ref()
            .and_then(|a| serde_json::to_value(a).ok())
            .as_ref(),
    );
    if digest != request.definition {
        return Err(not_called(format!(
            "tool `{}` of MCP server `{}` is described differently from the definition approved (sha256 {} approved, {} now)",
            request.tool, request.server, request.definition, digest
        )));
    }
    let mut params = CallToolRequestParams::new(request.tool.clone());
    params.arguments = match &request.arguments {
        Value::Object(map) => Some(map.clone()),
        _ => None,
    };
    // From here the request may have reached the server.
    let result = client.call_tool(params).await.map_err(|e| Failure {
        message: format!(
            "the call of tool {} broke off after it was sent: {e}; it may or may not have acted",
            request.tool
        ),
        maybe_delivered: true,
    })?;
    let _ = client.cancel().await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), child.wait()).await;
    let text = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(McpReply {
        is_error: result.is_error == Some(true),
        result: serde_json::to_string(&result).unwrap_or_default(),
        text,
    })
}
