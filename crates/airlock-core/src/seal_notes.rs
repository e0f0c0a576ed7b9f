//! The switch for a machine's notes of the events it appended and has not
//! seen sealed (`airlock_store::unsealed`, issue 20), below both `start`
//! and `seal`, which turn it on.

use crate::Airlock;
use crate::error::Result;

/// In team mode (`[team] remote`), makes the store note, from now on, the
/// events this machine appends until they are sealed: the notes file's
/// presence is the switch, so a machine outside team mode keeps no notes
/// that nothing would ever settle.
pub fn arm(al: &Airlock, workflow: &crate::workflow::Workflow) -> Result<()> {
    if workflow.team.remote.is_none() {
        return Ok(());
    }
    let Some(path) = al.store.unsealed_notes() else {
        return Ok(());
    };
    if path.exists() {
        return Ok(());
    }
    Ok(airlock_store::unsealed::arm(&path)?)
}
