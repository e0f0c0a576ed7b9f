//! The repository's policy: `.airlock/workflow.toml`.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::diag::{self, Diagnostics};
use crate::error::{Error, Result};
use crate::globs;
use crate::layout::sha256_hex;

/// Paths that are always protected: the policy itself lives there.
pub const BUILTIN_PROTECTED: &[&str] = &[".airlock/**"];
pub const DEFAULT_GATE_TIMEOUT: Duration = Duration::from_secs(600);
pub const DEFAULT_MAX_FILES: u64 = 200;
pub const DEFAULT_MAX_LINES: u64 = 5000;

#[derive(Debug, Clone, Serialize)]
pub struct Gate {
    pub name: String,
    pub run: String,
    #[serde(with = "humantime_serde_secs")]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    pub target: Option<String>,
    pub protected: Vec<String>,
    pub max_files: u64,
    pub max_lines: u64,
    pub secrets: bool,
    /// Environment variable names passed through to commands in a run.
    pub pass_env: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Workflow {
    /// Gates in the order the file declares them.
    pub gates: Vec<Gate>,
    pub policy: Policy,
    /// sha256 of the file's bytes.
    pub digest: String,
}

impl Workflow {
    pub fn gate(&self, name: &str) -> Option<&Gate> {
        self.gates.iter().find(|g| g.name == name)
    }

    pub fn gate_names(&self) -> Vec<&str> {
        self.gates.iter().map(|g| g.name.as_str()).collect()
    }

    /// All protected globs: the built-in ones and the workflow's.
    pub fn protected(&self) -> Vec<String> {
        BUILTIN_PROTECTED
            .iter()
            .map(|s| s.to_string())
            .chain(self.policy.protected.iter().cloned())
            .collect()
    }

    pub fn load(path: &Path) -> Result<Workflow> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NoWorkflow(path.to_path_buf()));
            }
            Err(source) => {
                return Err(Error::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Workflow::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, name: &str) -> Result<Workflow> {
        let mut diags = Diagnostics::new(text);
        let doc = diag::parse(text, &mut diags);
        let root = doc.get_ref();
        diag::unknown_keys(root, &["gates", "policy"], "the workflow", &mut diags);

        let mut gates = Vec::new();
        if let Some(value) = diag::get(root, "gates")
            && let Some(table) = diag::table(value, "gates", &mut diags)
        {
            for (key, value) in table.iter() {
                let gate_name = key.get_ref().to_string();
                if !valid_name(&gate_name) {
                    diags.error(
                        key.span(),
                        format!("gate name `{gate_name}` is not allowed"),
                        Some("use letters, digits, `-` and `_`".into()),
                    );
                }
                let Some(gate) = diag::table(value, &format!("gates.{gate_name}"), &mut diags)
                else {
                    continue;
                };
                diag::unknown_keys(
                    gate,
                    &["run", "timeout"],
                    &format!("[gates.{gate_name}]"),
                    &mut diags,
                );
                let run = match diag::get(gate, "run") {
                    Some(v) => {
                        let run = diag::string(v, "run", &mut diags).unwrap_or_default();
                        if run.trim().is_empty()
                            && matches!(v.get_ref(), toml::de::DeValue::String(_))
                        {
                            diags.error(
                                v.span(),
                                format!("gate `{gate_name}` has an empty `run` command"),
                                Some("write the shell command that decides this gate".into()),
                            );
                        }
                        run
                    }
                    None => {
                        diags.error(
                            key.span(),
                            format!("gate `{gate_name}` has no `run` command"),
                            Some(
                                "add `run = \"…\"`: a shell command run in the run's worktree"
                                    .into(),
                            ),
                        );
                        String::new()
                    }
                };
                let timeout = match diag::get(gate, "timeout") {
                    Some(v) => parse_timeout(v, &mut diags).unwrap_or(DEFAULT_GATE_TIMEOUT),
                    None => DEFAULT_GATE_TIMEOUT,
                };
                gates.push(Gate {
                    name: gate_name,
                    run,
                    timeout,
                });
            }
        }

        let mut policy = Policy {
            target: None,
            protected: Vec::new(),
            max_files: DEFAULT_MAX_FILES,
            max_lines: DEFAULT_MAX_LINES,
            secrets: true,
            pass_env: Vec::new(),
        };
        if let Some(value) = diag::get(root, "policy")
            && let Some(table) = diag::table(value, "policy", &mut diags)
        {
            diag::unknown_keys(
                table,
                &[
                    "target",
                    "protected",
                    "max_files",
                    "max_lines",
                    "secrets",
                    "pass_env",
                ],
                "[policy]",
                &mut diags,
            );
            for (key, value) in table.iter() {
                match key.get_ref().as_ref() {
                    "target" => policy.target = diag::string(value, "target", &mut diags),
                    "protected" => {
                        for (glob, span) in
                            diag::string_list(value, "protected", &mut diags).unwrap_or_default()
                        {
                            match globs::compile(&glob) {
                                Ok(_) => policy.protected.push(glob),
                                Err(e) => {
                                    diags.error(span, format!("invalid glob `{glob}`: {e}"), None)
                                }
                            }
                        }
                    }
                    "max_files" => {
                        policy.max_files = diag::positive(value, "max_files", &mut diags)
                            .unwrap_or(policy.max_files)
                    }
                    "max_lines" => {
                        policy.max_lines = diag::positive(value, "max_lines", &mut diags)
                            .unwrap_or(policy.max_lines)
                    }
                    "secrets" => {
                        policy.secrets = diag::boolean(value, "secrets", &mut diags).unwrap_or(true)
                    }
                    "pass_env" => {
                        policy.pass_env = diag::string_list(value, "pass_env", &mut diags)
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(s, _)| s)
                            .collect()
                    }
                    _ => {}
                }
            }
        }

        if !diags.is_empty() {
            return Err(Error::InvalidToml {
                path: name.to_string(),
                diagnostics: diags.into_sorted(),
            });
        }
        Ok(Workflow {
            gates,
            policy,
            digest: sha256_hex(text.as_bytes()),
        })
    }
}

pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn parse_timeout(
    value: &toml::Spanned<toml::de::DeValue<'_>>,
    diags: &mut Diagnostics<'_>,
) -> Option<Duration> {
    use toml::de::DeValue;
    let parsed = match value.get_ref() {
        DeValue::Integer(i) => i
            .as_str()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .map(Duration::from_secs),
        DeValue::String(s) => humantime::parse_duration(s).ok().filter(|d| !d.is_zero()),
        _ => None,
    };
    if parsed.is_none() {
        diags.error(
            value.span(),
            "`timeout` must be a positive number of seconds or a duration",
            Some("write e.g. `timeout = 300` or `timeout = \"5m\"`".into()),
        );
    }
    parsed
}

mod humantime_serde_secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
}

/// Writes the starting workflow for a repository, with gates detected from
/// what is in it. Returns the text and a description of what was detected.
pub fn template_for(root: &Path) -> (String, String) {
    let mut gates: Vec<(String, String)> = Vec::new();
    let detected;
    if root.join("Cargo.toml").is_file() {
        detected = "Cargo.toml: cargo build, clippy and test".to_string();
        gates.push(("build".into(), "cargo build --all-targets".into()));
        gates.push((
            "lint".into(),
            "cargo clippy --all-targets -- -D warnings".into(),
        ));
        gates.push(("test".into(), "cargo test".into()));
    } else if let Ok(text) = std::fs::read_to_string(root.join("package.json")) {
        let scripts: Vec<String> = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                v.get("scripts")
                    .and_then(|s| s.as_object())
                    .map(|m| m.keys().cloned().collect())
            })
            .unwrap_or_default();
        for name in [
            "build",
            "typecheck",
            "type-check",
            "lint",
            "test",
            "test:unit",
            "test:integration",
            "smoke",
        ] {
            if scripts.iter().any(|s| s == name) {
                let gate = name.replace(':', "-");
                gates.push((gate, format!("npm run --silent {name}")));
            }
        }
        detected = format!("package.json: npm scripts {}", names(&gates));
    } else if let Ok(text) = std::fs::read_to_string(root.join("Makefile")) {
        let targets: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once(':').map(|(t, _)| t))
            .filter(|t| valid_name(t))
            .collect();
        for name in ["build", "check", "lint", "test", "integration", "smoke"] {
            if targets.contains(&name) {
                gates.push((name.into(), format!("make {name}")));
            }
        }
        detected = format!("Makefile: make targets {}", names(&gates));
    } else {
        detected = "nothing to detect gates from; wrote a commented template".into();
    }

    let mut out = String::from(
        "# airlock workflow: the gates a run must pass, in order, and the policy around them.\n\
         # Briefs name the gates they need in `checks`. Commands run in the run's worktree.\n\n",
    );
    if gates.is_empty() {
        out.push_str(
            "# [gates.build]\n# run = \"make\"\n# timeout = \"10m\"\n#\n# [gates.test]\n# run = \"make test\"\n\n",
        );
    }
    for (name, run) in &gates {
        out.push_str(&format!(
            "[gates.{name}]\nrun = {}\ntimeout = \"10m\"\n\n",
            toml_string(run)
        ));
    }
    out.push_str(
        "[policy]\n\
         # target = \"main\"          # branch to promote into; default: the branch checked out at start\n\
         protected = []              # globs a run may touch only when its brief lists them explicitly\n\
         max_files = 200             # blast radius defaults; a brief can only lower them\n\
         max_lines = 5000\n\
         secrets = true              # scan added lines for secrets\n\
         pass_env = []               # environment variables passed to commands, by name\n",
    );
    (out, detected)
}

fn names(gates: &[(String, String)]) -> String {
    if gates.is_empty() {
        "(none found)".into()
    } else {
        gates
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Parses a duration like `90s`, `5m` or `1h 30m`.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration ({e}); write e.g. 90s or 10m"))
        .and_then(|d| {
            if d.is_zero() {
                Err("a time limit must be more than zero".into())
            } else {
                Ok(d)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        match Workflow::parse(text, "wf.toml") {
            Err(Error::InvalidToml { diagnostics, .. }) => diagnostics
                .iter()
                .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
                .collect(),
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn gates_keep_the_order_of_the_file() {
        let wf = Workflow::parse(
            "[gates.zeta]\nrun = \"true\"\n[gates.alpha]\nrun = \"true\"\ntimeout = \"90s\"\n[gates.mid]\nrun = \"true\"\ntimeout = 5\n",
            "wf.toml",
        )
        .unwrap();
        assert_eq!(wf.gate_names(), vec!["zeta", "alpha", "mid"]);
        assert_eq!(wf.gate("alpha").unwrap().timeout, Duration::from_secs(90));
        assert_eq!(wf.gate("mid").unwrap().timeout, Duration::from_secs(5));
        assert_eq!(wf.gate("zeta").unwrap().timeout, DEFAULT_GATE_TIMEOUT);
    }

    #[test]
    fn every_problem_is_reported_with_its_position() {
        let found = problems(
            "[gates.build]\nrun = \"\"\n[gates.test]\ntimeout = 0\n[policy]\nmax_file = 3\nprotected = [\"../x\"]\n",
        );
        assert_eq!(
            found,
            vec![
                "2:7: gate `build` has an empty `run` command",
                "3:8: gate `test` has no `run` command",
                "4:11: `timeout` must be a positive number of seconds or a duration",
                "6:1: unknown key `max_file` in [policy]",
                "7:14: invalid glob `../x`: `..` cannot appear in a glob: paths never leave the repository",
            ]
        );
    }

    #[test]
    fn the_workflow_itself_is_always_protected() {
        let wf = Workflow::parse("[policy]\nprotected = [\"ci/**\"]\n", "wf.toml").unwrap();
        assert_eq!(wf.protected(), vec![".airlock/**", "ci/**"]);
    }
}
