//! The repository's configuration files as the engine reads them: the
//! workflow (`.airlock/workflow.toml`) and briefs, parsed by the model, and
//! the starting workflow `airlock init` writes.

use std::path::Path;

use airlock_model::brief::Brief;
use airlock_model::workflow::{Workflow, valid_name};

use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::repo::stamp::FileStamp;

/// Reading a workflow from its file (`Workflow::load_for(&layout)`).
pub trait WorkflowFile: Sized {
    fn load(path: &Path) -> Result<Self>;
    /// The workflow of the repository at `layout`, with the paths it grants
    /// checked against the repository (`confinement::check_paths`).
    fn load_for(layout: &Layout) -> Result<Self>;
}

impl WorkflowFile for Workflow {
    fn load(path: &Path) -> Result<Workflow> {
        let text = match workflow_text(path) {
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
        let name = path.display().to_string();
        // Expressions are type-checked as the workflow loads, with every
        // other problem of the file, by the installed evaluator.
        // The evaluator is built only for a file that may have expressions
        // (`when = …` of a condition or a panel rule).
        let evaluator = if text.contains("when") {
            crate::evaluator::installed()
        } else {
            None
        };
        let workflow = Workflow::parse_with(&text, &name, evaluator)?;
        if !workflow.conditions.is_empty() {
            crate::evaluator::require("the workflow's `[conditions]`")?;
        }
        Ok(workflow)
    }

    fn load_for(layout: &Layout) -> Result<Workflow> {
        let mut workflow = Workflow::load(&layout.workflow_path())?;
        crate::confinement::check_paths(layout, &workflow)?;
        load_mcp_fixtures(layout, &mut workflow)?;
        Ok(workflow)
    }
}

/// The last workflow file read, so a command that opens the store (which
/// needs `[store] url`) and then reads the workflow reads the file once.
struct ReadWorkflow {
    path: std::path::PathBuf,
    stamp: FileStamp,
    read_at: std::time::SystemTime,
    text: std::sync::Arc<str>,
}

static LAST_WORKFLOW: std::sync::Mutex<Option<ReadWorkflow>> = std::sync::Mutex::new(None);

#[cfg(test)]
thread_local! {
    /// How many times this thread read a workflow file from disk (tests).
    static WORKFLOW_READS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The text of the workflow file at `path`: the copy read last, when the
/// file is unchanged since (same inode, size and times, and last modified
/// well before that read: a file written in the same clock tick as the
/// read could change without its times changing, so it is read again, as
/// git does with a "racily clean" index).
pub(crate) fn workflow_text(path: &Path) -> std::io::Result<std::sync::Arc<str>> {
    let meta = std::fs::metadata(path)?;
    let stamp = FileStamp::of(&meta);
    let mut last = LAST_WORKFLOW.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(read) = last.as_ref()
        && read.path == path
        && read.stamp == stamp
        && stamp.settled_by(read.read_at)
    {
        return Ok(read.text.clone());
    }
    let read_at = std::time::SystemTime::now();
    let text: std::sync::Arc<str> = std::fs::read_to_string(path)?.into();
    #[cfg(test)]
    WORKFLOW_READS.with(|n| n.set(n.get() + 1));
    // The stamp after the read: a write during it shows as a change.
    let stamp_after = std::fs::metadata(path).map(|m| FileStamp::of(&m));
    *last = match stamp_after {
        Ok(after) if after == stamp => Some(ReadWorkflow {
            path: path.to_path_buf(),
            stamp,
            read_at,
            text: text.clone(),
        }),
        _ => None,
    };
    Ok(text)
}

/// The largest recorded answer a `[[mcp.tools]]` fixture may hold.
pub const MAX_MCP_FIXTURE: u64 = 1 << 20;

/// Reads the recorded answer of every `[[mcp.tools]]` rule that names a
/// `fixture`, from the main checkout's `.airlock/` (the user's, never a
/// run's worktree), refusing at the rule's line a file that is missing,
/// too large or not JSON.
fn load_mcp_fixtures(layout: &Layout, workflow: &mut Workflow) -> Result<()> {
    let workflow_path = layout.workflow_path();
    let dir = workflow_path.parent().unwrap_or(&layout.root).to_path_buf();
    let mut diagnostics = Vec::new();
    for (i, rule) in workflow.mcp.tools.iter_mut().enumerate() {
        let Some(fixture) = rule.fixture.as_mut() else {
            continue;
        };
        let path = dir.join(&fixture.path);
        let problem = |message: String, help: &str| crate::diag::Diagnostic {
            line: fixture.line,
            column: fixture.column,
            message,
            help: Some(help.to_string()),
        };
        let context = format!("[[mcp.tools]] #{}", i + 1);
        let text = match std::fs::metadata(&path) {
            Ok(m) if !m.is_file() => Err(format!("{} is not a file", path.display())),
            Ok(m) if m.len() > MAX_MCP_FIXTURE => Err(format!(
                "{} is {} bytes, over {MAX_MCP_FIXTURE}",
                path.display(),
                m.len()
            )),
            Ok(_) => std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) => Err(format!("{}: {e}", path.display())),
        };
        let bytes = match text {
            Ok(bytes) => bytes,
            Err(why) => {
                diagnostics.push(problem(
                    format!("the fixture `{}` of {context} cannot be read: {why}", fixture.path),
                    "record the upstream's answer in that file (JSON, e.g. a tool result `{\"content\": [{\"type\": \"text\", \"text\": \"…\"}]}`), relative to .airlock/ of the main checkout, or remove `fixture`",
                ));
                continue;
            }
        };
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(answer) => fixture.answer = Some(answer),
            Err(e) => diagnostics.push(problem(
                format!(
                    "the fixture `{}` of {context} is not JSON ({}: line {}, column {}: {e})",
                    fixture.path,
                    path.display(),
                    e.line(),
                    e.column()
                ),
                "write the recorded answer as one JSON value, e.g. a tool result `{\"content\": [{\"type\": \"text\", \"text\": \"…\"}]}`",
            )),
        }
    }
    if diagnostics.is_empty() {
        return Ok(());
    }
    Err(Error::InvalidToml {
        code: crate::error::Code::InvalidWorkflow,
        path: workflow.origin.clone(),
        diagnostics,
    })
}

/// Reading a brief from its file: the brief and its text.
pub trait BriefFile: Sized {
    fn load(path: &Path, workflow: Option<&Workflow>) -> Result<(Self, String)>;
}

impl BriefFile for Brief {
    fn load(path: &Path, workflow: Option<&Workflow>) -> Result<(Brief, String)> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let brief = Brief::parse(&text, &path.display().to_string(), workflow)?;
        Ok((brief, text))
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
    } else if let Some((found, python)) = python_gates(root) {
        gates = python;
        detected = format!("{found}: {}", names(&gates));
    } else if root.join("go.mod").is_file() {
        gates.push(("build".into(), "go build ./...".into()));
        gates.push(("lint".into(), "go vet ./...".into()));
        gates.push(("test".into(), "go test ./...".into()));
        detected = "go.mod: go build, vet and test".into();
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

/// A Python project's gates, by what it configures: pytest (`[tool.pytest…]`,
/// `[pytest]`, `[tool:pytest]`, a `conftest.py`, or a `tests`/`test`
/// directory), ruff (`[tool.ruff…]`, `ruff.toml`), tox (`tox.ini`,
/// `[tool.tox]`); through `uv run` when there is a `uv.lock`. `None`
/// when there is no `pyproject.toml`, `setup.cfg`, `setup.py` or `tox.ini`.
fn python_gates(root: &Path) -> Option<(String, Vec<(String, String)>)> {
    let markers = ["pyproject.toml", "setup.cfg", "setup.py", "tox.ini"];
    let found: Vec<&str> = markers
        .into_iter()
        .filter(|m| root.join(m).is_file())
        .collect();
    if found.is_empty() {
        return None;
    }
    let read = |name: &str| std::fs::read_to_string(root.join(name)).unwrap_or_default();
    let (pyproject, setup_cfg, tox_ini) =
        (read("pyproject.toml"), read("setup.cfg"), read("tox.ini"));
    let table = |text: &str, prefix: &str| text.lines().any(|l| l.trim_start().starts_with(prefix));
    let uv = root.join("uv.lock").is_file();
    let runner = if uv { "uv run " } else { "" };
    let python = if uv { "uv run python" } else { "python3" };
    let mut gates = Vec::new();
    if table(&pyproject, "[tool.ruff")
        || root.join("ruff.toml").is_file()
        || root.join(".ruff.toml").is_file()
    {
        gates.push(("lint".to_string(), format!("{runner}ruff check .")));
    }
    if table(&pyproject, "[tool.pytest")
        || table(&setup_cfg, "[tool:pytest]")
        || table(&tox_ini, "[pytest]")
        || root.join("pytest.ini").is_file()
        || root.join("conftest.py").is_file()
        || root.join("tests").is_dir()
        || root.join("test").is_dir()
    {
        gates.push(("test".to_string(), format!("{python} -m pytest -q")));
    }
    if root.join("tox.ini").is_file() || table(&pyproject, "[tool.tox") {
        gates.push(("tox".to_string(), format!("{runner}tox")));
    }
    let mut what = found.join(", ");
    if uv {
        what += " and uv.lock";
    }
    Some((what, gates))
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

#[cfg(test)]
mod read_once_tests {
    use super::*;

    #[test]
    fn a_settled_workflow_is_read_once_and_a_changed_one_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("workflow.toml");
        std::fs::write(&path, "[store]\n").unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let reads = || WORKFLOW_READS.with(|n| n.get());
        let before = reads();
        assert_eq!(&*workflow_text(&path).unwrap(), "[store]\n");
        assert_eq!(&*workflow_text(&path).unwrap(), "[store]\n");
        assert_eq!(reads() - before, 1, "the second read is the first's copy");
        // A change (even of the same size, its time put back) is read.
        std::fs::write(&path, "[team]\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(&*workflow_text(&path).unwrap(), "[team]\n");
        // A file modified just now is read every time (its times could
        // stay the same across a write in the same clock tick).
        std::fs::write(&path, "[gates]\n").unwrap();
        let before = reads();
        workflow_text(&path).unwrap();
        workflow_text(&path).unwrap();
        assert_eq!(reads() - before, 2);
    }
}
