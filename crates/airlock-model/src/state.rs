//! The states a run moves through.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Drafted,
    Staged,
    Checked,
    InReview,
    Approved,
    Promoted,
    RolledBack,
    Rejected,
}

impl State {
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Drafted => "drafted",
            State::Staged => "staged",
            State::Checked => "checked",
            State::InReview => "in_review",
            State::Approved => "approved",
            State::Promoted => "promoted",
            State::RolledBack => "rolled_back",
            State::Rejected => "rejected",
        }
    }

    /// Every state, in lifecycle order.
    pub const ALL: [State; 8] = [
        State::Drafted,
        State::Staged,
        State::Checked,
        State::InReview,
        State::Approved,
        State::Promoted,
        State::RolledBack,
        State::Rejected,
    ];

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// What moves a run on from this state.
    pub fn next_step(&self, run: &str) -> String {
        match self {
            State::Drafted => "start it with `airlock start BRIEF.toml`".into(),
            State::Staged => format!("run `airlock check {run}`"),
            State::Checked => format!("run `airlock submit {run}`"),
            State::InReview => {
                format!("a reviewer runs `airlock approve {run}`, `reject` or `redirect`")
            }
            State::Approved => format!("run `airlock promote {run}`"),
            State::Promoted => format!(
                "nothing to promote: `airlock plan {run}` shows its actions, `airlock promote {run} --actions-only` applies any that remain, `airlock rollback {run} --reason …` undoes it"
            ),
            State::RolledBack => format!(
                "nothing: the run was rolled back (if a compensation is unfinished, `airlock rollback {run} --actions-only --reason …` finishes it)"
            ),
            State::Rejected => {
                "nothing: the run was rejected; start a new run from a new brief".into()
            }
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
