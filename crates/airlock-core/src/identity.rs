//! Who is acting, for team mode (issue 20): the person (`principal`) and
//! the machine. The principal is claimed, not proven: a person's signed
//! approval proves its signer through `.airlock/reviewers`; elsewhere the
//! principal says who a machine's user said they were.

use serde::Serialize;

use crate::Airlock;
use crate::error::Result;

/// The environment variable that names the principal outright.
pub const PRINCIPAL_VAR: &str = "AIRLOCK_PRINCIPAL";

/// Who is acting, as events and leases record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Who {
    /// `AIRLOCK_PRINCIPAL`, else the user's git e-mail address (as a
    /// commit would take it), else `USER@HOST`.
    pub principal: String,
    /// The machine: the OpenSSH fingerprint (`SHA256:…`) of the key airlock
    /// signs proofs with on it, which never leaves it.
    pub machine: String,
    /// The machine's host name, for people to read (not an identity).
    pub host: String,
}

/// Who is acting in this process.
pub fn who(al: &Airlock) -> Result<Who> {
    who_in(&al.layout)
}

/// [`who`] before an [`Airlock`] is open.
pub fn who_in(layout: &crate::layout::Layout) -> Result<Who> {
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let principal = std::env::var(PRINCIPAL_VAR)
        .ok()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty() && !p.chars().any(char::is_control))
        .or_else(|| git_principal(layout))
        .unwrap_or_else(|| {
            let user = ["USER", "LOGNAME"]
                .iter()
                .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
                .unwrap_or_else(|| format!("uid{}", rustix::process::getuid().as_raw()));
            format!("{user}@{host}")
        });
    let machine = airlock_proof::SigningKey::load_or_create(&layout.key_dir)?
        .0
        .public()
        .key_id();
    Ok(Who {
        principal,
        machine,
        host,
    })
}

/// Makes every ledger event this process appends name who acted
/// (`data.who`: principal and machine), worked out at the first append.
pub fn record_who(layout: &crate::layout::Layout) {
    let layout = layout.clone();
    airlock_ledger::set_who(Box::new(move || {
        who_in(&layout)
            .ok()
            .map(|w| serde_json::json!({"principal": w.principal, "machine": w.machine}))
    }));
}

/// The user's git e-mail address for the main repository, as
/// [`crate::git::user_identity`] takes it, from the remembered config
/// ([`crate::git::remembered_user_config`]): asking git costs two `git
/// config` processes (about 1.3 ms each) at every command's first event.
fn git_principal(layout: &crate::layout::Layout) -> Option<String> {
    crate::git::remembered_user_identity(&layout.git_dir, &layout.key_dir).map(|i| i.email)
}
