//! The key directory holds the signing key and the sockets of the warm
//! sandboxes and ledger servers: whoever can enter it can run commands in a
//! run's sandbox, and whoever can write above it can swap it for their
//! own. airlock makes it 0700; one made otherwise is refused, with why.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// `dir`, if it is safe to keep the key and sockets in: this user's own,
/// open to nobody else (when it is there yet), below directories nobody
/// but this user and root can write to (or sticky ones, like /tmp).
pub fn checked(dir: PathBuf) -> Result<PathBuf> {
    check(&dir)?;
    Ok(dir)
}

fn check(dir: &Path) -> Result<()> {
    let me = rustix::process::geteuid().as_raw();
    let refuse = |what: String, why: &str, hint: String| {
        Err(Error::refused(
            crate::error::Code::UnsafeKeyDir,
            format!(
                "refusing to use the key directory {}: {what}",
                dir.display()
            ),
            vec![why.to_string()],
            hint,
        ))
    };
    const KEPT: &str = "it holds the signing key and the sockets of the warm sandboxes and ledger servers: another user who can reach them can run commands as you in a run's sandbox";
    let elsewhere = "or set AIRLOCK_KEY_DIR to a directory only you can enter";
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => {
            return refuse(
                "it is not a directory".into(),
                KEPT,
                format!("remove it, {elsewhere}"),
            );
        }
        Ok(meta) if meta.uid() != me => {
            return refuse(
                format!("it belongs to uid {}, not to you (uid {me})", meta.uid()),
                KEPT,
                "set AIRLOCK_KEY_DIR to a directory of your own".into(),
            );
        }
        Ok(meta) if meta.mode() & 0o077 != 0 => {
            let mode = meta.mode() & 0o7777;
            let can = if mode & 0o022 != 0 {
                "write to and enter"
            } else if mode & 0o011 != 0 {
                "enter"
            } else {
                "list"
            };
            return refuse(
                format!("other users can {can} it (mode {mode:04o})"),
                KEPT,
                format!("run `chmod 700 {}`, {elsewhere}", dir.display()),
            );
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(Error::Read {
                path: dir.to_path_buf(),
                source,
            });
        }
    }
    // The way there counts as much as where it leads: a symbolic link on
    // the path can be pointed elsewhere by its owner, or replaced by anyone
    // who can write to the directory it is in, after this check.
    let mut ways = Vec::new();
    for link in dir.ancestors().filter(|a| !a.as_os_str().is_empty()) {
        let Ok(meta) = std::fs::symlink_metadata(link) else {
            continue;
        };
        if !meta.file_type().is_symlink() {
            continue;
        }
        if meta.uid() != me && meta.uid() != 0 {
            return refuse(
                format!(
                    "the symbolic link {} on the way to it belongs to uid {}, who could point it elsewhere",
                    link.display(),
                    meta.uid()
                ),
                KEPT,
                "set AIRLOCK_KEY_DIR to the directory itself, not a link to it".into(),
            );
        }
        if let Some(parent) = link.parent().filter(|p| !p.as_os_str().is_empty()) {
            ways.extend(std::fs::canonicalize(parent).ok());
        }
    }
    // The directories above it (the nearest one there, if it is not yet),
    // as they really are: links resolved; and those above every link on
    // the way.
    ways.extend(
        dir.ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .find_map(|a| std::fs::canonicalize(a).ok()),
    );
    for real in &ways {
        for above in real.ancestors() {
            let Ok(meta) = std::fs::metadata(above) else {
                continue;
            };
            let mode = meta.mode() & 0o7777;
            let sticky = mode & libc::S_ISVTX != 0;
            if meta.uid() != me && meta.uid() != 0 {
                return refuse(
                    format!(
                        "{} above it belongs to uid {}, who could replace it",
                        above.display(),
                        meta.uid()
                    ),
                    KEPT,
                    "set AIRLOCK_KEY_DIR to a directory below your own".into(),
                );
            }
            if mode & 0o022 != 0 && !sticky {
                return refuse(
                    format!(
                        "other users can write to {} above it (mode {mode:04o}), and so replace it",
                        above.display()
                    ),
                    KEPT,
                    format!("run `chmod go-w {}`, {elsewhere}", above.display()),
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn refusal(dir: &Path) -> String {
        match checked(dir.to_path_buf()) {
            Err(Error::Refused(r)) => format!("{} | {}", r.what, r.hint),
            other => panic!("{} was not refused: {other:?}", dir.display()),
        }
    }

    #[test]
    fn a_private_key_directory_or_one_not_made_yet_is_used() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys");
        assert_eq!(checked(dir.clone()).unwrap(), dir);
        assert!(checked(dir.join("deeper")).is_ok());
        std::fs::create_dir(&dir).unwrap();
        chmod(&dir, 0o700);
        assert!(checked(dir.clone()).is_ok());
        // Below a sticky directory anyone can write to, like /tmp.
        let shared = tmp.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        chmod(&shared, 0o1777);
        let mine = shared.join("mine");
        std::fs::create_dir(&mine).unwrap();
        chmod(&mine, 0o700);
        assert!(checked(mine).is_ok());
    }

    #[test]
    fn a_key_directory_others_can_enter_or_replace_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys");
        std::fs::create_dir(&dir).unwrap();
        for (mode, says) in [
            (0o755, "other users can enter it (mode 0755)"),
            (0o777, "other users can write to and enter it (mode 0777)"),
            (0o740, "other users can list it (mode 0740)"),
        ] {
            chmod(&dir, mode);
            let text = refusal(&dir);
            assert!(text.contains(says), "{text}");
            assert!(
                text.contains(&format!("run `chmod 700 {}`", dir.display())),
                "{text}"
            );
        }
        chmod(&dir, 0o700);
        // Writable from above without a sticky bit: the directory can be
        // swapped, made or not.
        chmod(tmp.path(), 0o777);
        for target in [dir.clone(), dir.join("not-yet")] {
            let text = refusal(&target);
            assert!(
                text.contains(&format!(
                    "other users can write to {} above it (mode 0777)",
                    tmp.path().display()
                )),
                "{text}"
            );
        }
        chmod(tmp.path(), 0o700);
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(refusal(&file).contains("it is not a directory"));
    }
}
