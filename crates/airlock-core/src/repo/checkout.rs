//! The main checkout moved the way `git merge` moves it, at promotion, its
//! recovery and rollback: only when the user's uncommitted changes survive.

use crate::error::{Error, Result};
use crate::repo::layout::Layout;

/// Whether `target_ref` is checked out in the main checkout; when it is,
/// refuses (touching nothing) unless moving the checkout from `from` to `to`
/// keeps the user's uncommitted changes. `verb` names the command
/// (`promote`, `roll back`).
pub fn checkout_can_move(
    layout: &Layout,
    run: &str,
    target_ref: &str,
    from: &str,
    to: &str,
    verb: &str,
) -> Result<bool> {
    let checkout = layout.git().with_checkout(&layout.root);
    let (is_symbolic, head_ref, _) = checkout.try_run(&["symbolic-ref", "-q", "HEAD"], None)?;
    let checked_out = is_symbolic && String::from_utf8_lossy(&head_ref).trim() == target_ref;
    if checked_out {
        let (ok, _, err) = checkout.try_run(&["read-tree", "-m", "-u", "-n", from, to], None)?;
        if !ok {
            return Err(Error::refused(
                crate::error::Code::UncommittedChanges,
                format!(
                    "refusing to {verb} run {run}: it would overwrite uncommitted changes in {}",
                    layout.root.display()
                ),
                String::from_utf8_lossy(&err)
                    .lines()
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty())
                    .collect(),
                format!(
                    "commit or stash your changes in the main checkout, then {verb} again; nothing was changed"
                ),
            ));
        }
    }
    Ok(checked_out)
}

/// Brings the main checkout from `from` to `to` as `git merge` would.
pub fn update_checkout(layout: &Layout, from: &str, to: &str) -> Result<()> {
    layout
        .git()
        .with_checkout(&layout.root)
        .run(&["read-tree", "-m", "-u", from, to])?;
    Ok(())
}
