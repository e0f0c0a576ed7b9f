//! airlock's persistent state: runs, their traces, crash intents, the
//! actions they propose, and the hash-chained ledger they are recorded in,
//! with the head record that proves the ledger is not older than what
//! airlock did. SQLite ([`SqliteStore`]) is the embedded store.

pub mod actions;
pub mod error;
pub mod files;
pub mod head;
pub mod history;
pub mod interface;
pub mod lease;
pub mod lock;
pub mod paths;
pub mod schema;
pub mod spool;
pub mod sqlite;
pub mod unsealed;

pub use error::{Error, Result};
pub use interface::{InReview, Intent, IntentGuard, LogLeaf, Store, TRACED};
pub use lease::Lease;
pub use paths::Paths;
pub use sqlite::SqliteStore;
