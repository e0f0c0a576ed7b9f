//! Tool definitions pinned by digest: the workflow's pins first, then the
//! ones recorded in the run's state the first time a tool was listed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use airlock_model::mcp::McpServer;

/// What a definition's digest is checked against.
#[derive(Debug, Clone, PartialEq)]
pub enum PinCheck {
    /// Matches its pin (or was pinned now, on its first listing).
    Pinned,
    /// Differs from its pin: the message says which digests and the fix.
    Changed(String),
}

/// The run's pins, a JSON file `{server: {tool: digest}}` written whole
/// and atomically.
#[derive(Debug)]
pub struct PinStore {
    path: PathBuf,
    pins: BTreeMap<String, BTreeMap<String, String>>,
}

impl PinStore {
    /// Reads the pins at `path`; a missing file is no pins. A file that is
    /// not what airlock wrote is an error, never an empty set (that would
    /// re-pin whatever the upstream says now).
    pub fn open(path: PathBuf) -> Result<PinStore, String> {
        let pins = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                format!(
                    "{} is not airlock's record of pinned MCP tool definitions: {e}",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Ok(PinStore { path, pins })
    }

    /// Checks `digest` of `tool` against the workflow's pin, else the run's;
    /// pins it in the run's state on its first listing.
    pub fn check(
        &mut self,
        server: &McpServer,
        tool: &str,
        digest: &str,
    ) -> Result<PinCheck, String> {
        let accepted = server.pin(tool);
        let recorded = self
            .pins
            .get(&server.name)
            .and_then(|m| m.get(tool))
            .cloned();
        let (pinned, source) = match (accepted, &recorded) {
            (Some(p), _) => (p.to_string(), "accepted by the workflow"),
            (None, Some(r)) => (r.clone(), "pinned when this run first listed it"),
            (None, None) => {
                self.record(&server.name, tool, digest)?;
                return Ok(PinCheck::Pinned);
            }
        };
        if pinned == digest {
            if recorded.as_deref() != Some(digest) {
                self.record(&server.name, tool, digest)?;
            }
            return Ok(PinCheck::Pinned);
        }
        Ok(PinCheck::Changed(format!(
            "mcp-definition-changed: tool `{tool}` of MCP server `{server}` no longer matches its pinned definition \
             (description, input schema and annotations): pinned sha256 {pinned} ({source}), now sha256 {digest}. \
             The tool is hidden and its calls are refused. If the new definition is right, the workflow's owner \
             accepts it in .airlock/workflow.toml: `[mcp.servers.{server}.pins] {tool} = \"{digest}\"`",
            server = server.name
        )))
    }

    fn record(&mut self, server: &str, tool: &str, digest: &str) -> Result<(), String> {
        self.pins
            .entry(server.to_string())
            .or_default()
            .insert(tool.to_string(), digest.to_string());
        let bytes = serde_json::to_vec_pretty(&self.pins).map_err(|e| e.to_string())?;
        airlock_fs::write(&self.path, &bytes)
            .map_err(|e| format!("cannot record the pin of tool `{tool}`: {e}"))
    }
}
