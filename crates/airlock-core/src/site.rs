//! What running a command for a run needs of airlock.

use crate::layout::Layout;

/// What running a command for a run needs of airlock: where the
/// repository's state is, and the program that builds sandboxes. An
/// [`crate::Airlock`] gives one; so does `exec` served with no ledger open.
#[derive(Clone, Copy)]
pub struct Site<'a> {
    pub layout: &'a Layout,
    pub init_program: &'a std::path::Path,
}
