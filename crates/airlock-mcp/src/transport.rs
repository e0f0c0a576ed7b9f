//! Newline-delimited JSON-RPC on stdin and stdout, as MCP's stdio transport
//! says, with answers for what rmcp's own transport passes over in
//! silence: a line that is not JSON gets a parse error (-32700), JSON that
//! is not a message an invalid-request error (-32600, with the request's id
//! when it has one), and a line over [`MAX_MESSAGE`] an invalid-request
//! error, its bytes dropped as they come rather than held.

use std::sync::Arc;

use rmcp::service::{RoleServer, RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader, Stdin};
use tokio::sync::Mutex;

/// The longest message the server reads: tool arguments are held to
/// [`crate::MAX_ARGUMENTS`], and this leaves room for the envelope.
pub const MAX_MESSAGE: usize = 4 << 20;

pub struct Lines {
    read: BufReader<Stdin>,
    line: Vec<u8>,
    /// A line over the limit is being skipped to its end.
    discarding: bool,
    write: Arc<Mutex<Box<dyn AsyncWrite + Send + Unpin>>>,
}

impl Lines {
    pub fn stdio() -> Lines {
        Lines {
            read: BufReader::new(tokio::io::stdin()),
            line: Vec::new(),
            discarding: false,
            write: Arc::new(Mutex::new(Box::new(tokio::io::stdout()))),
        }
    }

    /// Writes one line on its own task, so that a `receive` cancelled by
    /// the service's `select!` never leaves half a line on stdout.
    fn answer(&self, message: Value) {
        let write = self.write.clone();
        tokio::spawn(async move {
            let mut bytes = serde_json::to_vec(&message).unwrap_or_default();
            bytes.push(b'\n');
            let mut out = write.lock().await;
            let _ = out.write_all(&bytes).await;
            let _ = out.flush().await;
        });
    }

    fn error(&self, id: Value, code: i64, message: String) {
        self.answer(json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {"code": code, "message": message}
        }));
    }

    /// The next whole line in `self.line`, or `None` at the end of input.
    /// Cancel-safe: what was read stays in `self.line`.
    async fn read_line(&mut self) -> Option<Result<(), usize>> {
        loop {
            let available = match self.read.fill_buf().await {
                Ok([]) => return None,
                Ok(bytes) => bytes,
                Err(_) => return None,
            };
            let (take, whole) = match available.iter().position(|&b| b == b'\n') {
                Some(end) => (end + 1, true),
                None => (available.len(), false),
            };
            if self.discarding {
                self.read.consume(take);
                if whole {
                    self.discarding = false;
                }
                continue;
            }
            if self.line.len() + take > MAX_MESSAGE + 1 {
                let seen = self.line.len() + take;
                self.line.clear();
                self.read.consume(take);
                self.discarding = !whole;
                return Some(Err(seen));
            }
            self.line.extend_from_slice(&available[..take]);
            self.read.consume(take);
            if whole {
                return Some(Ok(()));
            }
        }
    }
}

impl Transport<RoleServer> for Lines {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let write = self.write.clone();
        async move {
            let mut bytes = serde_json::to_vec(&item).map_err(std::io::Error::other)?;
            bytes.push(b'\n');
            let mut out = write.lock().await;
            out.write_all(&bytes).await?;
            out.flush().await
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            match self.read_line().await? {
                Ok(()) => {}
                Err(seen) => {
                    self.error(
                        Value::Null,
                        -32600,
                        format!(
                            "message dropped: at least {seen} bytes, over the limit of {MAX_MESSAGE} bytes per message; \
                             send smaller arguments"
                        ),
                    );
                    continue;
                }
            }
            let line = std::mem::take(&mut self.line);
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let value: Value = match serde_json::from_slice(text) {
                Ok(value) => value,
                Err(e) => {
                    self.error(
                        Value::Null,
                        -32700,
                        format!("parse error: the message is not JSON ({e}); send one JSON-RPC 2.0 object per line"),
                    );
                    continue;
                }
            };
            let id = match value.get("id") {
                Some(id @ (Value::String(_) | Value::Number(_))) => id.clone(),
                _ => Value::Null,
            };
            if value.get("jsonrpc") != Some(&json!("2.0")) {
                self.error(
                    id,
                    -32600,
                    "invalid request: not a JSON-RPC 2.0 message (it needs \"jsonrpc\": \"2.0\")"
                        .into(),
                );
                continue;
            }
            match serde_json::from_value::<RxJsonRpcMessage<RoleServer>>(value) {
                Ok(message) => return Some(message),
                Err(e) => self.error(
                    id,
                    -32600,
                    format!("invalid request: not a request, notification or response this server takes ({e})"),
                ),
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.write.lock().await.flush().await
    }
}
