//! The workflow's `[mcp]` section: the upstream MCP servers `airlock
//! mcp-proxy` may stand in front of, how each of their tools is treated,
//! and the tool definitions the workflow accepts. Pure: the proxy
//! (`airlock-mcp-proxy`) asks [`McpSettings::decide`] and
//! [`definition_digest`], and reads nothing here.
//!
//! ```toml
//! [mcp.servers.notes]
//! command = ["python3", "/srv/notes_server.py"]  # how airlock starts it at promotion
//! sandbox = true                                 # the proxy runs it in the run's sandbox (default)
//! [mcp.servers.notes.pins]
//! append_note = "3f1c…"                          # an accepted definition digest (64 hex)
//!
//! [[mcp.tools]]                                  # first matching rule decides
//! server = "notes"                               # pattern, `*` any run of characters
//! tool = "append_*"
//! destructive = false                            # optional: the tool's destructiveHint
//! read_only = false                              # optional: the tool's readOnlyHint
//! decision = "stage"                             # allow | stage | deny
//! rehearse = "read_notes"                        # stage only: read-only counterpart
//! # or: fixture = "mcp/append_note.json"         # stage only: a recorded answer, a JSON
//! #     file under the main checkout's .airlock/ (checked when the workflow is loaded)
//! ```
//!
//! Without a matching rule a tool whose annotations say `readOnlyHint:
//! true` passes and every other tool is staged.

use std::ops::Range;

use serde::Serialize;
use serde_json::Value;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::action::pattern::wildcard;
use crate::diag::{self, Diagnostics};
use crate::digest::sha256_hex;
use crate::names::valid_name;

/// What happens to a call of a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Passed to the upstream server as it is.
    Allow,
    /// Recorded as an `mcp` action in the run's plan, made at promotion.
    Stage,
    /// Refused.
    Deny,
}

impl Decision {
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Stage => "stage",
            Decision::Deny => "deny",
        }
    }
}

pub const DECISIONS: &[&str] = &["allow", "stage", "deny"];

/// `[mcp.servers.NAME]`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct McpServer {
    pub name: String,
    /// The argv airlock starts the server with at promotion; `mcp-proxy`
    /// must be given the same.
    pub command: Vec<String>,
    /// Whether the proxy runs the server in the run's sandbox.
    pub sandbox: bool,
    /// Accepted definition digests, by tool name.
    pub pins: Vec<(String, String)>,
}

impl McpServer {
    pub fn pin(&self, tool: &str) -> Option<&str> {
        self.pins
            .iter()
            .find(|(t, _)| t == tool)
            .map(|(_, d)| d.as_str())
    }
}

/// One `[[mcp.tools]]` rule.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ToolRule {
    pub server: String,
    pub tool: String,
    pub read_only: Option<bool>,
    pub destructive: Option<bool>,
    pub decision: Decision,
    /// A read-only tool of the same server called with the same arguments
    /// to rehearse a staged call.
    pub rehearse: Option<String>,
    /// A recorded answer shown as a staged call's rehearsal.
    pub fixture: Option<RuleFixture>,
    /// Where the rule is written (1-based), for messages.
    pub line: usize,
}

/// `fixture = "PATH"` of a rule: a file under the main checkout's
/// `.airlock/` holding a recorded answer (JSON). The model checks the
/// path's form; the engine reads the file when it loads the workflow and
/// puts its JSON in `answer` (refusing a missing file or one that is not
/// JSON at `line`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RuleFixture {
    /// Relative to `.airlock/`, without `..`.
    pub path: String,
    pub line: usize,
    pub column: usize,
    #[serde(skip)]
    pub answer: Option<Value>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct McpSettings {
    pub servers: Vec<McpServer>,
    pub tools: Vec<ToolRule>,
}

/// What the proxy knows of a tool when it decides.
#[derive(Debug, Clone, Default)]
pub struct ToolFacts<'a> {
    pub server: &'a str,
    pub tool: &'a str,
    pub read_only: Option<bool>,
    pub destructive: Option<bool>,
}

/// A decision and the reason for it, in words a model can act on.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub decision: Decision,
    /// The rule that decided, if any (its index in `tools`).
    pub rule: Option<usize>,
    pub why: String,
    pub rehearse: Option<String>,
    /// The rule's fixture: its path and the recorded answer.
    pub fixture: Option<(String, Value)>,
}

impl McpSettings {
    pub fn server(&self, name: &str) -> Option<&McpServer> {
        self.servers.iter().find(|s| s.name == name)
    }

    /// The server declared with exactly `argv`.
    pub fn server_by_command(&self, argv: &[String]) -> Option<&McpServer> {
        self.servers.iter().find(|s| s.command == argv)
    }

    /// The first rule matching the tool decides; without one, read-only
    /// tools pass and the rest are staged.
    pub fn decide(&self, facts: &ToolFacts<'_>, origin: &str) -> Verdict {
        for (i, rule) in self.tools.iter().enumerate() {
            let hint_ok = |want: Option<bool>, got: Option<bool>| {
                want.is_none_or(|w| w == got.unwrap_or(false))
            };
            if wildcard(&rule.server, facts.server)
                && wildcard(&rule.tool, facts.tool)
                && hint_ok(rule.read_only, facts.read_only)
                && hint_ok(rule.destructive, facts.destructive)
            {
                return Verdict {
                    decision: rule.decision,
                    rule: Some(i),
                    why: format!(
                        "rule [[mcp.tools]] #{} at {origin}:{} (server = \"{}\", tool = \"{}\") says `{}`",
                        i + 1,
                        rule.line,
                        rule.server,
                        rule.tool,
                        rule.decision.as_str()
                    ),
                    rehearse: rule.rehearse.clone(),
                    fixture: rule
                        .fixture
                        .as_ref()
                        .and_then(|f| Some((f.path.clone(), f.answer.clone()?))),
                };
            }
        }
        if facts.read_only == Some(true) {
            Verdict {
                decision: Decision::Allow,
                rule: None,
                why: "no [[mcp.tools]] rule matches and the tool is annotated readOnlyHint: true"
                    .into(),
                rehearse: None,
                fixture: None,
            }
        } else {
            Verdict {
                decision: Decision::Stage,
                rule: None,
                why: "no [[mcp.tools]] rule matches and the tool is not annotated read-only".into(),
                rehearse: None,
                fixture: None,
            }
        }
    }
}

/// The digest a tool's definition is pinned by: sha256 over the canonical
/// JSON (keys sorted at every level) of its name, description, input
/// schema and annotations. Whatever a model reads about the tool is in it.
pub fn definition_digest(
    name: &str,
    description: Option<&str>,
    input_schema: &Value,
    annotations: Option<&Value>,
) -> String {
    let doc = serde_json::json!({
        "name": name,
        "description": description,
        "inputSchema": input_schema,
        "annotations": annotations,
    });
    let mut out = String::new();
    canonical(&doc, &mut out);
    sha256_hex(out.as_bytes())
}

fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                canonical(&map[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn line_of(source: &str, span: &Range<usize>) -> usize {
    diag::line_column(source, span.start).0
}

/// Parses `[mcp]`; every problem goes to `diags`.
pub fn parse(root: &DeTable<'_>, source: &str, diags: &mut Diagnostics<'_>) -> McpSettings {
    let mut out = McpSettings::default();
    let Some(table) = diag::get(root, "mcp").and_then(|v| diag::table(v, "mcp", diags)) else {
        return out;
    };
    diag::unknown_keys(table, &["servers", "tools"], "[mcp]", diags);
    if let Some(servers) =
        diag::get(table, "servers").and_then(|v| diag::table(v, "mcp.servers", diags))
    {
        for (key, value) in servers.iter() {
            if let Some(s) = parse_server(key, value, diags) {
                out.servers.push(s);
            }
        }
    }
    if let Some(tools) = diag::get(table, "tools") {
        let DeValue::Array(items) = tools.get_ref() else {
            diags.error(
                tools.span(),
                "`mcp.tools` must be an array of tables",
                Some("write `[[mcp.tools]]` with `tool = \"…\"` and `decision = \"allow\"|\"stage\"|\"deny\"`".into()),
            );
            return out;
        };
        for (i, item) in items.iter().enumerate() {
            if let Some(rule) = parse_rule(i, item, source, &out.servers, diags) {
                out.tools.push(rule);
            }
        }
    }
    out
}

fn parse_server(
    key: &Spanned<std::borrow::Cow<'_, str>>,
    value: &Spanned<DeValue<'_>>,
    diags: &mut Diagnostics<'_>,
) -> Option<McpServer> {
    let name = key.get_ref().to_string();
    if !valid_name(&name) {
        diags.error(
            key.span(),
            format!("MCP server name `{}` is not allowed", name.escape_debug()),
            Some("use letters, digits, `-` and `_`, at most 64".into()),
        );
    }
    let context = format!("[mcp.servers.{name}]");
    let table = diag::table(value, &format!("mcp.servers.{name}"), diags)?;
    diag::unknown_keys(table, &["command", "sandbox", "pins"], &context, diags);
    let command = match diag::get(table, "command") {
        Some(v) => {
            let list: Vec<String> = diag::string_list(v, "command", diags)
                .unwrap_or_default()
                .into_iter()
                .map(|(s, _)| s)
                .collect();
            if list.is_empty() || list[0].is_empty() {
                diags.error(
                    v.span(),
                    format!("{context} has an empty `command`"),
                    Some("write the server's program and arguments: `command = [\"python3\", \"server.py\"]`".into()),
                );
            }
            list
        }
        None => {
            diags.error(
                key.span(),
                format!("{context} has no `command`"),
                Some("add `command = [\"PROGRAM\", \"ARG\", …]`: how airlock starts the server when it makes an approved call".into()),
            );
            Vec::new()
        }
    };
    let sandbox = diag::get(table, "sandbox")
        .and_then(|v| diag::boolean(v, "sandbox", diags))
        .unwrap_or(true);
    let mut pins = Vec::new();
    if let Some(v) = diag::get(table, "pins")
        && let Some(t) = diag::table(v, &format!("mcp.servers.{name}.pins"), diags)
    {
        for (tool, digest) in t.iter() {
            let Some(d) = diag::string(digest, tool.get_ref(), diags) else {
                continue;
            };
            if d.len() != 64
                || !d
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                diags.error(
                    digest.span(),
                    format!(
                        "the pin of tool `{}` is not a sha256 digest",
                        tool.get_ref().escape_debug()
                    ),
                    Some("write the 64 lowercase hex digits `airlock mcp-proxy` names when it refuses a changed definition".into()),
                );
                continue;
            }
            pins.push((tool.get_ref().to_string(), d));
        }
    }
    Some(McpServer {
        name,
        command,
        sandbox,
        pins,
    })
}

fn pattern(
    table: &DeTable<'_>,
    key: &str,
    context: &str,
    diags: &mut Diagnostics<'_>,
) -> Option<(String, Range<usize>)> {
    let v = diag::get(table, key)?;
    let s = diag::string(v, key, diags)?;
    if s.is_empty() || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        diags.error(
            v.span(),
            format!("`{key}` of {context} must be a name or a pattern without spaces"),
            Some(format!(
                "write e.g. `{key} = \"create_*\"`; `*` matches any run of characters"
            )),
        );
        return None;
    }
    Some((s, v.span()))
}

fn parse_rule(
    i: usize,
    item: &Spanned<DeValue<'_>>,
    source: &str,
    servers: &[McpServer],
    diags: &mut Diagnostics<'_>,
) -> Option<ToolRule> {
    let context = format!("[[mcp.tools]] #{}", i + 1);
    let table = diag::table(item, "mcp.tools", diags)?;
    diag::unknown_keys(
        table,
        &[
            "server",
            "tool",
            "read_only",
            "destructive",
            "decision",
            "rehearse",
            "fixture",
        ],
        &context,
        diags,
    );
    let server = match pattern(table, "server", &context, diags) {
        Some((s, span)) => {
            if !s.contains('*') && !servers.iter().any(|x| x.name == s) {
                let help = diag::did_you_mean(&s, servers.iter().map(|x| x.name.as_str()))
                    .unwrap_or_else(|| {
                        format!("declare it: `[mcp.servers.{s}]` with `command = [\"…\"]`, or use a pattern")
                    });
                diags.error(
                    span,
                    format!(
                        "{context} names server `{}`, which [mcp.servers] does not declare",
                        s.escape_debug()
                    ),
                    Some(help),
                );
            }
            s
        }
        None if diag::get(table, "server").is_some() => return None,
        None => "*".to_string(),
    };
    let tool = match pattern(table, "tool", &context, diags) {
        Some((s, _)) => s,
        None if diag::get(table, "tool").is_some() => return None,
        None => "*".to_string(),
    };
    let hint = |key: &str, diags: &mut Diagnostics<'_>| {
        diag::get(table, key).and_then(|v| diag::boolean(v, key, diags))
    };
    let read_only = hint("read_only", diags);
    let destructive = hint("destructive", diags);
    let decision = match diag::get(table, "decision") {
        Some(v) => {
            let d = diag::string(v, "decision", diags)?;
            match d.as_str() {
                "allow" => Decision::Allow,
                "stage" => Decision::Stage,
                "deny" => Decision::Deny,
                other => {
                    let help = diag::did_you_mean(other, DECISIONS.iter().copied())
                        .unwrap_or_else(|| "decisions are: allow, stage, deny".into());
                    diags.error(
                        v.span(),
                        format!("unknown decision `{}` in {context}", other.escape_debug()),
                        Some(help),
                    );
                    return None;
                }
            }
        }
        None => {
            diags.error(
                item.span(),
                format!("{context} has no `decision`"),
                Some("add `decision = \"allow\"`, `\"stage\"` or `\"deny\"`".into()),
            );
            return None;
        }
    };
    let rehearse = match diag::get(table, "rehearse") {
        Some(v) => {
            let r = diag::string(v, "rehearse", diags)?;
            if decision != Decision::Stage {
                diags.error(
                    v.span(),
                    format!("{context} names a rehearsal, but its decision is `{}`", decision.as_str()),
                    Some("only a staged call is rehearsed: remove `rehearse`, or set `decision = \"stage\"`".into()),
                );
                return None;
            }
            if r.is_empty()
                || r.chars()
                    .any(|c| c.is_control() || c.is_whitespace() || c == '*')
            {
                diags.error(
                    v.span(),
                    format!("`rehearse` of {context} must name one tool"),
                    Some("write the name of a read-only tool of the same server, e.g. `rehearse = \"get_issue\"`".into()),
                );
                return None;
            }
            Some(r)
        }
        None => None,
    };
    let fixture = match diag::get(table, "fixture") {
        Some(v) => {
            let path = diag::string(v, "fixture", diags)?;
            let (line, column) = diag::line_column(source, v.span().start);
            if decision != Decision::Stage {
                diags.error(
                    v.span(),
                    format!("{context} names a fixture, but its decision is `{}`", decision.as_str()),
                    Some("only a staged call is rehearsed: remove `fixture`, or set `decision = \"stage\"`".into()),
                );
                return None;
            }
            if rehearse.is_some() {
                diags.error(
                    v.span(),
                    format!("{context} names both a rehearsal tool and a fixture"),
                    Some("keep one: `rehearse` calls a read-only tool, `fixture` shows a recorded answer".into()),
                );
                return None;
            }
            let relative = std::path::Path::new(&path);
            if path.is_empty()
                || path.chars().any(char::is_control)
                || relative.is_absolute()
                || relative
                    .components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                diags.error(
                    v.span(),
                    format!("`fixture` of {context} must be a path inside .airlock/"),
                    Some("write it relative to .airlock/, without `..`: e.g. `fixture = \"mcp/create_issue.json\"`".into()),
                );
                return None;
            }
            Some(RuleFixture {
                path,
                line,
                column,
                answer: None,
            })
        }
        None => None,
    };
    Some(ToolRule {
        server,
        tool,
        read_only,
        destructive,
        decision,
        rehearse,
        fixture,
        line: line_of(source, &item.span()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::Workflow;

    fn problems(text: &str) -> Vec<String> {
        match Workflow::parse(text, "wf.toml") {
            Err(crate::Error::InvalidToml { diagnostics, .. }) => diagnostics
                .iter()
                .map(|d| {
                    format!(
                        "{}:{}: {} | {}",
                        d.line,
                        d.column,
                        d.message,
                        d.help.clone().unwrap_or_default()
                    )
                })
                .collect(),
            other => panic!("expected problems, got {other:?}"),
        }
    }

    const SERVER: &str = "[mcp.servers.notes]\ncommand = [\"python3\", \"notes.py\"]\n";

    #[test]
    fn rules_decide_in_order_and_the_default_follows_the_annotations() {
        let wf = Workflow::parse(
            &format!(
                "{SERVER}[[mcp.tools]]\nserver = \"notes\"\ntool = \"drop_*\"\ndecision = \"deny\"\n\
                 [[mcp.tools]]\ntool = \"append_*\"\ndecision = \"stage\"\nrehearse = \"read_notes\"\n\
                 [[mcp.tools]]\ndestructive = false\nread_only = false\ndecision = \"allow\"\n"
            ),
            "wf.toml",
        )
        .unwrap();
        let mcp = &wf.mcp;
        assert_eq!(mcp.servers[0].command, ["python3", "notes.py"]);
        assert!(mcp.servers[0].sandbox);
        let facts = |tool, read_only, destructive| ToolFacts {
            server: "notes",
            tool,
            read_only,
            destructive,
        };
        let deny = mcp.decide(&facts("drop_all", None, None), "wf.toml");
        assert_eq!(deny.decision, Decision::Deny);
        assert!(deny.why.contains("#1 at wf.toml:3"), "{}", deny.why);
        let stage = mcp.decide(&facts("append_note", Some(false), None), "wf.toml");
        assert_eq!(stage.decision, Decision::Stage);
        assert_eq!(stage.rehearse.as_deref(), Some("read_notes"));
        // destructive = false matches a tool that says so, or says nothing
        // (a missing hint is read as false only for matching rules).
        let allow = mcp.decide(&facts("touch", Some(false), Some(false)), "wf.toml");
        assert_eq!(allow.decision, Decision::Allow);
        assert_eq!(allow.rule, Some(2));
        let destructive = mcp.decide(&facts("wipe", Some(false), Some(true)), "wf.toml");
        assert_eq!(destructive.decision, Decision::Stage);
        assert_eq!(destructive.rule, None);
        let read = mcp.decide(&facts("read", Some(true), None), "wf.toml");
        assert_eq!((read.decision, read.rule), (Decision::Allow, None));
    }

    #[test]
    fn definition_digests_ignore_key_order_and_see_every_field() {
        let a =
            serde_json::json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {}}});
        let b =
            serde_json::json!({"properties": {"b": {}, "a": {"type": "string"}}, "type": "object"});
        let ann = serde_json::json!({"readOnlyHint": true});
        let d = definition_digest("t", Some("x"), &a, Some(&ann));
        assert_eq!(d, definition_digest("t", Some("x"), &b, Some(&ann)));
        assert_ne!(d, definition_digest("t", Some("x "), &a, Some(&ann)));
        assert_ne!(d, definition_digest("t", Some("x"), &a, None));
        assert_ne!(d, definition_digest("u", Some("x"), &a, Some(&ann)));
        assert_eq!(d.len(), 64);
    }

    #[test]
    fn an_unknown_decision_is_refused_with_its_line_and_the_fix() {
        assert_eq!(
            problems(&format!(
                "{SERVER}[[mcp.tools]]\ntool = \"x\"\ndecision = \"alow\"\n"
            )),
            ["5:12: unknown decision `alow` in [[mcp.tools]] #1 | did you mean `allow`?"]
        );
    }

    #[test]
    fn a_rule_without_a_decision_is_refused() {
        assert_eq!(
            problems(&format!("{SERVER}[[mcp.tools]]\ntool = \"x\"\n")),
            [
                "3:1: [[mcp.tools]] #1 has no `decision` | add `decision = \"allow\"`, `\"stage\"` or `\"deny\"`"
            ]
        );
    }

    #[test]
    fn a_rule_naming_an_undeclared_server_is_refused() {
        assert_eq!(
            problems(&format!(
                "{SERVER}[[mcp.tools]]\nserver = \"note\"\ndecision = \"deny\"\n"
            )),
            [
                "4:10: [[mcp.tools]] #1 names server `note`, which [mcp.servers] does not declare | did you mean `notes`?"
            ]
        );
    }

    #[test]
    fn a_rehearsal_of_a_call_that_is_not_staged_is_refused() {
        assert_eq!(
            problems(&format!(
                "{SERVER}[[mcp.tools]]\ntool = \"x\"\ndecision = \"allow\"\nrehearse = \"y\"\n"
            )),
            [
                "6:12: [[mcp.tools]] #1 names a rehearsal, but its decision is `allow` | only a staged call is rehearsed: remove `rehearse`, or set `decision = \"stage\"`"
            ]
        );
    }

    #[test]
    fn a_rehearsal_naming_a_pattern_is_refused() {
        let found = problems(&format!(
            "{SERVER}[[mcp.tools]]\ntool = \"x\"\ndecision = \"stage\"\nrehearse = \"get_*\"\n"
        ));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("6:12: `rehearse` of [[mcp.tools]] #1 must name one tool"),
            "{found:?}"
        );
    }

    #[test]
    fn a_fixture_outside_airlock_or_beside_a_rehearsal_or_not_staged_is_refused() {
        assert_eq!(
            problems(&format!(
                "{SERVER}[[mcp.tools]]\ntool = \"a\"\ndecision = \"stage\"\nfixture = \"../secret.json\"\n\
                 [[mcp.tools]]\ntool = \"b\"\ndecision = \"stage\"\nrehearse = \"r\"\nfixture = \"b.json\"\n\
                 [[mcp.tools]]\ntool = \"c\"\ndecision = \"deny\"\nfixture = \"c.json\"\n"
            )),
            [
                "6:11: `fixture` of [[mcp.tools]] #1 must be a path inside .airlock/ | write it relative to .airlock/, without `..`: e.g. `fixture = \"mcp/create_issue.json\"`",
                "11:11: [[mcp.tools]] #2 names both a rehearsal tool and a fixture | keep one: `rehearse` calls a read-only tool, `fixture` shows a recorded answer",
                "15:11: [[mcp.tools]] #3 names a fixture, but its decision is `deny` | only a staged call is rehearsed: remove `fixture`, or set `decision = \"stage\"`",
            ]
        );
        let wf = Workflow::parse(
            &format!("{SERVER}[[mcp.tools]]\ntool = \"a\"\ndecision = \"stage\"\nfixture = \"mcp/a.json\"\n"),
            "wf.toml",
        )
        .unwrap();
        let f = wf.mcp.tools[0].fixture.as_ref().unwrap();
        assert_eq!((f.path.as_str(), f.line, f.column), ("mcp/a.json", 6, 11));
        // The engine fills the answer when it loads the file; until then
        // the verdict carries none.
        let facts = ToolFacts {
            server: "notes",
            tool: "a",
            ..ToolFacts::default()
        };
        assert_eq!(wf.mcp.decide(&facts, "wf.toml").fixture, None);
    }

    #[test]
    fn a_pattern_with_spaces_is_refused() {
        let found = problems(&format!(
            "{SERVER}[[mcp.tools]]\ntool = \"a b\"\ndecision = \"deny\"\n"
        ));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("4:8: `tool` of [[mcp.tools]] #1 must be a name or a pattern"),
            "{found:?}"
        );
    }

    #[test]
    fn a_server_without_a_command_or_with_an_empty_one_is_refused() {
        assert_eq!(
            problems("[mcp.servers.a]\nsandbox = false\n[mcp.servers.b]\ncommand = []\n"),
            [
                "1:14: [mcp.servers.a] has no `command` | add `command = [\"PROGRAM\", \"ARG\", …]`: how airlock starts the server when it makes an approved call",
                "4:11: [mcp.servers.b] has an empty `command` | write the server's program and arguments: `command = [\"python3\", \"server.py\"]`",
            ]
        );
    }

    #[test]
    fn a_pin_that_is_not_a_digest_is_refused() {
        let found = problems(&format!(
            "{SERVER}[mcp.servers.notes.pins]\nappend = \"sha256:12\"\n"
        ));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("4:10: the pin of tool `append` is not a sha256 digest"),
            "{found:?}"
        );
    }

    #[test]
    fn unknown_keys_and_a_bad_server_name_are_refused() {
        let found = problems(
            "[mcp]\nserver = 1\n[mcp.servers.\"a b\"]\ncommand = [\"x\"]\nsandboxed = true\n[[mcp.tools]]\ntools = \"x\"\ndecision = \"deny\"\n",
        );
        assert_eq!(
            found,
            [
                "2:1: unknown key `server` in [mcp] | did you mean `servers`?",
                "3:14: MCP server name `a b` is not allowed | use letters, digits, `-` and `_`, at most 64",
                "5:1: unknown key `sandboxed` in [mcp.servers.a b] | did you mean `sandbox`?",
                "7:1: unknown key `tools` in [[mcp.tools]] #1 | did you mean `tool`?",
            ]
        );
    }

    #[test]
    fn tools_must_be_an_array_of_tables() {
        let found = problems("[mcp]\ntools = \"x\"\n");
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("2:9: `mcp.tools` must be an array of tables"),
            "{found:?}"
        );
    }
}
