//! `init`: the workflow, the git-ignore for local state, the signing key.

use std::path::{Path, PathBuf};

use serde::Serialize;

use airlock_proof::SigningKey;

use crate::config::{WorkflowFile, template_for};
use crate::error::{Error, Result};
use crate::layout::{Layout, write_atomic};
use crate::workflow::Workflow;

#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    pub root: PathBuf,
    pub workflow: PathBuf,
    pub workflow_written: bool,
    pub detected: String,
    pub gates: Vec<String>,
    pub gitignore: PathBuf,
    pub key_dir: PathBuf,
    pub key_created: bool,
    pub public_key: String,
    /// The detected gates run once on the base (the commit checked out),
    /// when init wrote the workflow and there is a commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<crate::base_gates::BaseGates>,
    /// The lanes whose commands run with the network off, where package
    /// tools are switched to offline ([`crate::confinement::OFFLINE_ENV`]).
    pub offline_lanes: Vec<String>,
    /// The variables that switch them.
    pub offline_env: Vec<String>,
}

pub fn init(cwd: &Path) -> Result<InitReport> {
    let layout = Layout::discover(cwd)?;
    let workflow_path = layout.workflow_path();
    let (written, detected) = if workflow_path.exists() {
        (false, "kept the existing workflow".to_string())
    } else {
        let (text, detected) = template_for(&layout.root);
        write_atomic(&workflow_path, text.as_bytes())?;
        (true, detected)
    };
    // Validate whatever is there now, so problems show at init.
    let workflow = Workflow::load_for(&layout)?;

    let gitignore = layout.root.join(".airlock").join(".gitignore");
    let wanted = "/local/";
    let current = std::fs::read_to_string(&gitignore).unwrap_or_default();
    if !current.lines().any(|l| l.trim() == wanted) {
        let mut text = current;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("# airlock's local state: ledger, worktrees, logs, proofs\n/local/\n");
        write_atomic(&gitignore, text.as_bytes())?;
    }

    let (key, created) = SigningKey::load_or_create(&layout.key_dir)?;
    if layout.key_dir.starts_with(&layout.root) {
        return Err(Error::refused(
            crate::error::Code::KeyDirInRepository,
            format!(
                "the signing key directory {} is inside the repository",
                layout.key_dir.display()
            ),
            vec!["a key a run can read can sign its own proof".into()],
            "set AIRLOCK_KEY_DIR to a directory outside every repository",
        ));
    }
    // Gates just detected run once on the base, so one already red there is
    // not blamed on a run. A workflow kept as it was is the user's: its gates
    // are theirs to run.
    let base = match layout
        .git()
        .text(&["rev-parse", "--verify", "-q", "HEAD^{commit}"])
    {
        Ok(commit) if written && !workflow.gates.is_empty() && !commit.is_empty() => {
            let program = crate::init_program();
            let site = crate::Site {
                layout: &layout,
                init_program: &program,
            };
            Some(crate::base_gates::run_on(&site, &workflow, &commit)?)
        }
        _ => None,
    };
    // What a brief that says nothing of the network gets, lane by lane.
    let offline_lanes: Vec<String> = crate::brief::LANES
        .iter()
        .filter(|lane| {
            matches!(
                crate::confinement::network_of(&workflow, None, lane).network,
                airlock_model::network::Network::Off
            )
        })
        .map(|lane| lane.to_string())
        .collect();
    Ok(InitReport {
        offline_env: crate::confinement::OFFLINE_ENV
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect(),
        offline_lanes,
        root: layout.root.clone(),
        workflow: workflow_path,
        workflow_written: written,
        detected,
        gates: workflow.gates.iter().map(|g| g.name.clone()).collect(),
        gitignore,
        key_dir: layout.key_dir.clone(),
        key_created: created,
        public_key: key.public().to_openssh(),
        base,
    })
}
