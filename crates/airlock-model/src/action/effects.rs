//! The network side of live actions as a trait, so that its clients (HTTP
//! and SMTP, in `airlock-effects`) depend on the model only.

use std::time::Duration;

use crate::action::Body;
use crate::action::settings::Smtp;

/// A request as it goes on the wire (environment references expanded).
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// A message ready for SMTP.
#[derive(Debug, Clone)]
pub struct OutgoingEmail {
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub body: String,
    /// Without angle brackets.
    pub message_id: String,
    pub attachments: Vec<(String, Vec<u8>)>,
}

/// A tool call of an upstream MCP server, as made at promotion.
#[derive(Debug, Clone)]
pub struct McpRequest {
    pub server: String,
    /// The server's argv, as approved.
    pub command: Vec<String>,
    /// Where the server is started (the repository's main checkout).
    pub cwd: std::path::PathBuf,
    pub tool: String,
    pub arguments: serde_json::Value,
    /// The definition digest approved: the call is not made if the server
    /// now describes the tool differently.
    pub definition: String,
    pub timeout: Duration,
}

/// What the tool answered.
#[derive(Debug, Clone)]
pub struct McpReply {
    /// The tool said it failed (`isError`).
    pub is_error: bool,
    /// The result as JSON text (what the result digest covers).
    pub result: String,
    /// Its text content, for the summary.
    pub text: String,
}

/// Why a live attempt failed, and whether the effect may have happened.
#[derive(Debug, Clone)]
pub struct Failure {
    pub message: String,
    /// The request or message may have reached the other side.
    pub maybe_delivered: bool,
}

/// The network side of live actions, kept out of the core (HTTP and SMTP
/// clients live in `airlock-effects`).
pub trait Effects {
    fn http(&self, request: &HttpRequest) -> std::result::Result<HttpResponse, Failure>;
    /// Sends and returns the server's final reply.
    fn email(
        &self,
        server: &Smtp,
        credentials: Option<(String, String)>,
        message: &OutgoingEmail,
    ) -> std::result::Result<String, Failure>;
    /// Starts the MCP server, initializes, checks the tool's definition,
    /// calls it, and stops the server. A build without an MCP client says so.
    fn mcp(&self, _request: &McpRequest) -> std::result::Result<McpReply, Failure> {
        Err(Failure {
            message: "not called: this airlock has no MCP client for approved calls".into(),
            maybe_delivered: false,
        })
    }
    /// What the live clients would refuse in an action, found when it is
    /// proposed rather than after it was approved.
    fn validate(&self, _body: &Body) -> std::result::Result<(), Vec<String>> {
        Ok(())
    }
}
