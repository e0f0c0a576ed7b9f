//! Digests of bytes (what a file holds is the engine's to read).

use sha2::{Digest, Sha256};

/// The SHA-256 of `data`, as lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}
