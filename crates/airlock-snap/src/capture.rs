//! Turning a command's recorded output (a log file) into a [`Body`].

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::SnapError;
use crate::format::{Body, sha256_hex};
use crate::normalize::Normalizer;

/// The default size cap of one stream: past it, output is compared by digest.
pub const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Text is valid UTF-8 without NUL bytes; anything else is binary.
pub fn is_binary(bytes: &[u8]) -> bool {
    bytes.contains(&0) || std::str::from_utf8(bytes).is_err()
}

/// Reads one stream's log. Over `max_bytes`, the file is hashed as it is
/// read, never held in memory; binary content is hashed; text is normalized.
pub fn read_body(path: &Path, max_bytes: u64, normalizer: &Normalizer) -> Result<Body, SnapError> {
    let read_err = |source| SnapError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read_err)?;
    let size = file.metadata().map_err(read_err)?.len();
    if size > max_bytes {
        let mut hasher = Sha256::new();
        let bytes = std::io::copy(&mut file, &mut hasher).map_err(read_err)?;
        return Ok(Body::OverCap {
            sha256: hex::encode(hasher.finalize()),
            bytes,
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.read_to_end(&mut bytes).map_err(read_err)?;
    Ok(body_of(bytes, max_bytes, normalizer))
}

/// The body of output already in memory.
pub fn body_of(bytes: Vec<u8>, max_bytes: u64, normalizer: &Normalizer) -> Body {
    if bytes.len() as u64 > max_bytes {
        return Body::OverCap {
            sha256: sha256_hex(&bytes),
            bytes: bytes.len() as u64,
        };
    }
    if bytes.contains(&0) {
        return Body::Binary {
            sha256: sha256_hex(&bytes),
            bytes: bytes.len() as u64,
        };
    }
    match String::from_utf8(bytes) {
        Ok(text) => Body::Text {
            text: normalizer.apply(&text),
        },
        Err(e) => {
            let bytes = e.into_bytes();
            Body::Binary {
                sha256: sha256_hex(&bytes),
                bytes: bytes.len() as u64,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::Context;

    #[test]
    fn binary_and_oversized_output_become_digests() {
        let n = Normalizer::new(&Context::default(), &[]).unwrap();
        assert!(matches!(
            body_of(b"a\0b".to_vec(), 100, &n),
            Body::Binary { bytes: 3, .. }
        ));
        assert!(matches!(
            body_of(vec![0xff, 0xfe], 100, &n),
            Body::Binary { bytes: 2, .. }
        ));
        assert_eq!(
            body_of(b"took 3ms\n".to_vec(), 100, &n),
            Body::text("took [DURATION]\n")
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out");
        std::fs::write(&p, "x".repeat(1000)).unwrap();
        match read_body(&p, 999, &n).unwrap() {
            Body::OverCap { sha256, bytes } => {
                assert_eq!(bytes, 1000);
                assert_eq!(sha256, sha256_hex("x".repeat(1000).as_bytes()));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            read_body(&p, 1000, &n).unwrap(),
            Body::text("x".repeat(1000))
        );
    }
}
