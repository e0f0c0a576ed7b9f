//! The sealed log's math and text (issue 20): RFC 6962 Merkle tree hashing
//! over leaves that each name a ledger chain's head, and the signed
//! checkpoints a machine publishes of it. No I/O: the engine keeps the
//! leaves (in the store) and the checkpoints (on the git remote).

mod checkpoint;
mod tree;

pub use checkpoint::{
    Checkpoint, CheckpointError, MAX_CHECKPOINT_BYTES, NAMESPACE, SignedCheckpoint,
};
pub use tree::{Hash, Leaf, consistency_proof, leaf_hash, node_hash, root, verify_consistency};
