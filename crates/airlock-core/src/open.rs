//! Opening a repository: its state, then recovery of what an earlier
//! process left half done, then bringing older state up to date. It sits
//! above every step, since recovery finishes any of them.

use std::path::Path;

use crate::airlock::{Airlock, init_program};
use crate::error::Result;
use crate::layout::Layout;
use crate::{migrate, recover};

impl Airlock {
    pub fn open(cwd: &Path) -> Result<Airlock> {
        Airlock::open_in(Layout::discover(cwd)?)
    }

    /// [`Airlock::open`] in a repository already found.
    pub fn open_in(layout: Layout) -> Result<Airlock> {
        crate::identity::record_who(&layout);
        let store = crate::store_backend::open_for(&layout, true)?;
        let mut al = Airlock {
            layout,
            store,
            recovered: Vec::new(),
            init_program: init_program(),
        };
        al.recovered = recover::recover(&mut al)?;
        let moved = migrate::run_refs(&mut al)?;
        al.recovered.extend(moved);
        Ok(al)
    }

    /// The repository without recovery and without the check of the
    /// ledger's head record, for `ledger verify` and `ledger accept-loss`,
    /// which report and settle a ledger older than its record. Nothing
    /// else may run on it.
    pub fn open_unverified(layout: Layout) -> Result<Airlock> {
        crate::identity::record_who(&layout);
        let store = crate::store_backend::open_for(&layout, false)?;
        Ok(Airlock {
            layout,
            store,
            recovered: Vec::new(),
            init_program: init_program(),
        })
    }
}
