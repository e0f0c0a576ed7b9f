//! Helpers no step owns: git, the repository's layout and locks, the key
//! directory, atomic writes. They use nothing of the steps above them.

pub mod checkout;
pub mod failpoint;
pub mod git;
pub mod keydir;
pub mod layout;
pub mod stamp;

pub use airlock_store::lock;
