//! `[team]` and `[store]` in the workflow: where a team's shared state is
//! (issue 20). `[team] remote` names the git remote that holds the team's
//! `refs/airlock/*` (run heads, proofs, the sealed log's checkpoints,
//! promotion records); `[store]` names the shared database and the shared
//! store of command logs. Both absent: one engineer on one machine, as
//! before.

use serde::Serialize;
use toml::de::DeTable;

use crate::diag::{self, Diagnostics};

/// How many times `promote` merges again (and re-runs the gates and stop
/// conditions) when the target moved on the remote, before giving up.
pub const DEFAULT_REMERGES: u64 = 3;

/// `[team]`, defaults filled in.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TeamSettings {
    /// The git remote holding the team's `refs/airlock/*`: a remote's name
    /// in the repository (`origin`) or a URL or path git accepts. None: no
    /// shared remote.
    pub remote: Option<String>,
    /// See [`DEFAULT_REMERGES`].
    pub remerges: u64,
}

impl Default for TeamSettings {
    fn default() -> Self {
        TeamSettings {
            remote: None,
            remerges: DEFAULT_REMERGES,
        }
    }
}

/// `[store]`: the shared database and log store. `AIRLOCK_DATABASE_URL`
/// set in the environment wins over `url`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct StoreSettings {
    /// A PostgreSQL URL. A workflow is committed: it should name no
    /// password (use `~/.pgpass`, a Unix socket or the environment).
    pub url: Option<String>,
    /// A directory every machine mounts, holding command logs and other
    /// bulk bytes by their sha256.
    pub logs: Option<String>,
}

pub(crate) fn parse_team(root: &DeTable<'_>, diags: &mut Diagnostics<'_>) -> TeamSettings {
    let mut out = TeamSettings::default();
    let Some(value) = diag::get(root, "team") else {
        return out;
    };
    let Some(table) = diag::table(value, "team", diags) else {
        return out;
    };
    diag::unknown_keys(table, &["remote", "remerges"], "[team]", diags);
    if let Some(v) = diag::get(table, "remote")
        && let Some(remote) = diag::string(v, "remote", diags)
    {
        if remote.trim().is_empty() || remote.starts_with('-') {
            diags.error(
                v.span(),
                format!("`remote = {remote:?}` is not a git remote"),
                Some(
                    "write the name of a remote of this repository (`remote = \"origin\"`) or its URL"
                        .into(),
                ),
            );
        } else {
            out.remote = Some(remote);
        }
    }
    if let Some(v) = diag::get(table, "remerges") {
        out.remerges = diag::positive(v, "remerges", diags).unwrap_or(out.remerges);
    }
    out
}

pub(crate) fn parse_store(root: &DeTable<'_>, diags: &mut Diagnostics<'_>) -> StoreSettings {
    let mut out = StoreSettings::default();
    let Some(value) = diag::get(root, "store") else {
        return out;
    };
    let Some(table) = diag::table(value, "store", diags) else {
        return out;
    };
    diag::unknown_keys(table, &["url", "logs"], "[store]", diags);
    if let Some(v) = diag::get(table, "url")
        && let Some(url) = diag::string(v, "url", diags)
    {
        out.url = Some(url);
    }
    if let Some(v) = diag::get(table, "logs")
        && let Some(logs) = diag::string(v, "logs", diags)
    {
        if logs.trim().is_empty() {
            diags.error(
                v.span(),
                "`logs` is empty",
                Some(
                    "write the directory every machine mounts, e.g. `logs = \"/mnt/airlock-logs\"`"
                        .into(),
                ),
            );
        } else {
            out.logs = Some(logs);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::error::Error;
    use crate::workflow::Workflow;

    fn problems(text: &str) -> Vec<String> {
        match Workflow::parse(text, "wf.toml") {
            Err(Error::InvalidToml { diagnostics, .. }) => diagnostics
                .iter()
                .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
                .collect(),
            Err(e) => panic!("{e}"),
            Ok(_) => Vec::new(),
        }
    }

    #[test]
    fn absent_tables_mean_one_machine() {
        let wf = Workflow::parse("", "wf.toml").unwrap();
        assert_eq!(wf.team, super::TeamSettings::default());
        assert_eq!(wf.team.remote, None);
        assert_eq!(wf.team.remerges, super::DEFAULT_REMERGES);
        assert_eq!(wf.store, super::StoreSettings::default());
    }

    #[test]
    fn every_setting_is_read() {
        let wf = Workflow::parse(
            "[team]\nremote = \"origin\"\nremerges = 5\n[store]\nurl = \"postgres://db/airlock\"\nlogs = \"/mnt/logs\"\n",
            "wf.toml",
        )
        .unwrap();
        assert_eq!(wf.team.remote.as_deref(), Some("origin"));
        assert_eq!(wf.team.remerges, 5);
        assert_eq!(wf.store.url.as_deref(), Some("postgres://db/airlock"));
        assert_eq!(wf.store.logs.as_deref(), Some("/mnt/logs"));
    }

    #[test]
    fn bad_settings_are_named_with_their_line() {
        let got =
            problems("[team]\nremote = \"--upload-pack=x\"\nremerge = 2\n[store]\nlogs = \"\"\n");
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            got[0].starts_with("2:10: `remote = \"--upload-pack=x\"` is not a git remote"),
            "{got:?}"
        );
        assert!(got[1].starts_with("3:1:"), "{got:?}");
        assert!(got[1].contains("remerge"), "{got:?}");
        assert!(got[2].starts_with("5:8: `logs` is empty"), "{got:?}");
    }
}
