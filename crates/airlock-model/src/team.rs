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

/// What to do instead of a password in `[store] url`.
pub const PASSWORD_HELP: &str = "remove the password: use ~/.pgpass (or PGPASSFILE), a Unix socket, or set AIRLOCK_DATABASE_URL in the environment";

/// Whether a PostgreSQL connection string names a password: the URL form's
/// `user:password@`, or a `password` parameter (the URL's query or the
/// `key=value` form).
pub fn carries_password(url: &str) -> bool {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    if let Some(rest) = lower
        .strip_prefix("postgres://")
        .or_else(|| lower.strip_prefix("postgresql://"))
    {
        let (authority, query) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], rest[i..].split_once('?').map(|(_, q)| q)),
            None => (rest, None),
        };
        let userinfo_has_password = authority
            .rsplit_once('@')
            .is_some_and(|(userinfo, _)| userinfo.contains(':'));
        let query_has_password = query.is_some_and(|q| {
            q.split('&')
                .any(|pair| pair.split('=').next().map(str::trim) == Some("password"))
        });
        return userinfo_has_password || query_has_password;
    }
    // The `key=value` form: `host=db user=me password=secret`.
    let mut rest = lower.as_str();
    while let Some(i) = rest.find("password") {
        let before = &rest[..i];
        let after = rest[i + "password".len()..].trim_start();
        if (before.is_empty() || before.ends_with(char::is_whitespace)) && after.starts_with('=') {
            return true;
        }
        rest = &rest[i + "password".len()..];
    }
    false
}

/// `[store]` alone, for opening the store before the whole workflow is
/// read: the same checks as the workflow's, a password in `url` refused
/// with its own code. `name` is the file's name for messages.
pub fn store_settings(text: &str, name: &str) -> Result<StoreSettings, crate::error::Error> {
    let mut diags = Diagnostics::new(text);
    let root = diag::parse(text, &mut diags);
    // Only `[store]`'s problems count here; the rest of the file is the
    // command's to report when it reads the whole workflow.
    diags.items.clear();
    let settings = parse_store(root.get_ref(), &mut diags);
    if diags.is_empty() {
        return Ok(settings);
    }
    let password = diags
        .items
        .iter()
        .any(|d| d.message.contains("carries a password"));
    Err(crate::error::Error::InvalidToml {
        code: if password {
            crate::error::Code::DatabaseUrlPassword
        } else {
            crate::error::Code::InvalidWorkflow
        },
        path: name.to_string(),
        diagnostics: diags.into_sorted(),
    })
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
        if carries_password(&url) {
            diags.error(
                v.span(),
                "`url` carries a password, in a file committed for everyone to read",
                Some(PASSWORD_HELP.into()),
            );
        } else {
            out.url = Some(url);
        }
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

    #[test]
    fn a_password_in_the_url_is_refused_at_its_line() {
        for url in [
            "postgres://me:secret@db/airlock",
            "postgresql://me:s%40cret@db:5432/airlock",
            "postgres://db/airlock?user=me&password=secret",
            "host=db user=me password=secret",
            "host=db password = secret",
        ] {
            assert!(super::carries_password(url), "{url}");
            let text = format!("[team]\nremerges = 2\n[store]\nurl = {url:?}\n");
            let got = problems(&text);
            assert_eq!(got.len(), 1, "{got:?}");
            assert!(
                got[0].starts_with("4:7: `url` carries a password"),
                "{got:?}"
            );
            match super::store_settings(&text, "wf.toml") {
                Err(Error::InvalidToml {
                    code, diagnostics, ..
                }) => {
                    assert_eq!(code, crate::error::Code::DatabaseUrlPassword);
                    assert_eq!(diagnostics[0].line, 4);
                    assert!(
                        diagnostics[0]
                            .help
                            .as_deref()
                            .unwrap()
                            .contains("~/.pgpass")
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        for url in [
            "postgres://me@db/airlock",
            "postgres:///airlock?host=/run/postgresql",
            "postgres://db/airlock?passwordless=1",
            "host=db user=me dbname=passwords",
        ] {
            assert!(!super::carries_password(url), "{url}");
            let text = format!("[store]\nurl = {url:?}\n");
            assert_eq!(
                super::store_settings(&text, "wf.toml")
                    .unwrap()
                    .url
                    .as_deref(),
                Some(url)
            );
        }
        // The rest of the file is not this reader's business.
        let text = "[gates]\nbuild = 3\n[store]\nurl = \"postgres://db/a\"\n";
        assert!(!problems(text).is_empty());
        assert_eq!(
            super::store_settings(text, "wf.toml")
                .unwrap()
                .url
                .as_deref(),
            Some("postgres://db/a")
        );
    }
}
