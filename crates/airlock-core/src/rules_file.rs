//! A rules file (`.airlock/reviewers`, `owners`, `runners`) read from a
//! commit's git objects, never a working copy: a regular file, bounded,
//! UTF-8. Below both `approvals` and `seal`, which read them.

use crate::error::{Code, Error, Refusal, Result};
use crate::guards::short;

/// The owners file, whose faults have their own code.
const OWNERS_FILE: &str = ".airlock/owners";

pub(crate) fn invalid_rules(
    code: Code,
    file: &str,
    target: &str,
    tip: &str,
    line: usize,
    why: &str,
) -> Error {
    let at = if line == 0 {
        file.to_string()
    } else {
        format!("{file}:{line}")
    };
    Error::Refused(Refusal::problem(
        code,
        format!("{file} on {target} ({}) is not valid", short(tip)),
        vec![format!("{at}: {why}")],
        format!(
            "fix the file in a commit on {target}: airlock reads it from the target branch's tip, never from a run's worktree"
        ),
    ))
}

/// A rules file at `tip`, if there is one: a regular file, bounded, UTF-8.
pub(crate) fn read_at(
    git: &crate::git::Git,
    target: &str,
    tip: &str,
    path: &str,
) -> Result<Option<String>> {
    let listing = git.run(&["ls-tree", "-z", "--full-tree", tip, "--", path])?;
    let listing = String::from_utf8_lossy(&listing);
    let Some(entry) = listing.split('\0').find(|e| !e.is_empty()) else {
        return Ok(None);
    };
    let (meta, _) = entry.split_once('\t').unwrap_or((entry, ""));
    let fields: Vec<&str> = meta.split(' ').collect();
    let code = if path == OWNERS_FILE {
        Code::OwnersInvalid
    } else {
        Code::ReviewersInvalid
    };
    let [mode, kind, oid] = fields[..] else {
        return Err(invalid_rules(
            code,
            path,
            target,
            tip,
            0,
            "git lists it oddly",
        ));
    };
    if kind != "blob" || !(mode == "100644" || mode == "100755") {
        return Err(invalid_rules(
            code,
            path,
            target,
            tip,
            0,
            &format!("it is not a regular file (mode {mode}, {kind})"),
        ));
    }
    let size: usize = git
        .text(&["cat-file", "-s", oid])?
        .parse()
        .unwrap_or(usize::MAX);
    if size > airlock_proof::signers::MAX_FILE {
        return Err(invalid_rules(
            code,
            path,
            target,
            tip,
            0,
            &format!("it is {size} bytes, more than airlock reads"),
        ));
    }
    let bytes = git.run(&["cat-file", "blob", oid])?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| invalid_rules(code, path, target, tip, 0, "it is not UTF-8 text"))
}
