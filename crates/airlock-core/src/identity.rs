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

/// The user's git e-mail address for the main repository
/// ([`crate::git::user_identity`]), remembered in the key directory beside
/// a stamp of the config files git reads for it: asking git costs two
/// `git config` processes (about 1.3 ms each), at every command's first
/// event. The stamp (each file's device, inode, size and modification
/// time, and `EMAIL`) tells a changed file; a config that includes other
/// files is asked every time, as its stamp cannot cover them.
fn git_principal(layout: &crate::layout::Layout) -> Option<String> {
    let stamp = config_stamp(&layout.git_dir);
    let cache = {
        use sha2::{Digest, Sha256};
        let digest = hex::encode(Sha256::digest(
            layout.git_dir.as_os_str().as_encoded_bytes(),
        ));
        layout
            .key_dir
            .join("principals")
            .join(format!("{}.json", &digest[..24]))
    };
    if let Some(stamp) = &stamp
        && let Ok(text) = std::fs::read(&cache)
        && let Ok(known) = serde_json::from_slice::<KnownPrincipal>(&text)
        && &known.stamp == stamp
    {
        return known.principal;
    }
    let principal = crate::git::user_identity(&layout.git_dir).map(|i| i.email);
    if let Some(stamp) = stamp {
        let known = KnownPrincipal {
            stamp,
            principal: principal.clone(),
        };
        // Best effort: without it the next command asks git again.
        if let Ok(bytes) = serde_json::to_vec(&known)
            && std::os::unix::fs::DirBuilderExt::mode(
                std::fs::DirBuilder::new().recursive(true),
                0o700,
            )
            .create(cache.parent().unwrap_or(&layout.key_dir))
            .is_ok()
        {
            let _ = crate::layout::write_atomic(&cache, &bytes);
        }
    }
    principal
}

#[derive(Serialize, serde::Deserialize)]
struct KnownPrincipal {
    stamp: Vec<String>,
    principal: Option<String>,
}

/// What git's answer for `user.email` depends on, in the files git reads
/// for [`crate::git::user_config`] (the system's, the user's global ones,
/// the repository's) and `EMAIL`; `None` when one of them includes others.
fn config_stamp(git_dir: &std::path::Path) -> Option<Vec<String>> {
    use std::os::unix::fs::MetadataExt;
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let mut files = vec![git_dir.join("config"), git_dir.join("config.worktree")];
    match env("GIT_CONFIG_GLOBAL") {
        Some(global) => files.push(global.into()),
        None => {
            let home = env("HOME").map(std::path::PathBuf::from);
            match env("XDG_CONFIG_HOME") {
                Some(xdg) => files.push(std::path::PathBuf::from(xdg).join("git/config")),
                None => files.extend(home.as_ref().map(|h| h.join(".config/git/config"))),
            }
            files.extend(home.map(|h| h.join(".gitconfig")));
        }
    }
    if env("GIT_CONFIG_NOSYSTEM").is_none() {
        files.push("/etc/gitconfig".into());
    }
    let mut stamp = vec![format!(
        "EMAIL={:?} NOSYSTEM={:?}",
        env("EMAIL"),
        env("GIT_CONFIG_NOSYSTEM")
    )];
    for file in files {
        let line = match std::fs::metadata(&file) {
            Ok(meta) if meta.is_file() => {
                let text = std::fs::read(&file).ok()?;
                if text.windows(7).any(|w| w.eq_ignore_ascii_case(b"include")) {
                    return None;
                }
                format!(
                    "{} {} {} {} {}.{}",
                    file.display(),
                    meta.dev(),
                    meta.ino(),
                    meta.len(),
                    meta.mtime(),
                    meta.mtime_nsec()
                )
            }
            Ok(_) => return None,
            Err(_) => format!("{} absent", file.display()),
        };
        stamp.push(line);
    }
    Some(stamp)
}
