//! The team's shared log store (`[store] logs = DIR`, issue 20): command
//! output every machine reads, kept by its sha256 in a directory every
//! machine mounts, never in the database. A run's logs stay on the machine
//! that ran it as before; a copy goes here, so `airlock logs` on another
//! machine shows them.
//!
//! A blob is `DIR/sha256/ab/abcdef…`: written to a temporary file in the
//! same directory, hashed while copied, synced, made read-only and renamed
//! into place (the directory synced), so a reader sees a whole blob or none.
//! A blob is checked against its name on every read: one changed or cut
//! short is named ([`Code::LogCorrupt`]), never shown as the output.
//! Commands in a sandbox neither read nor write the store (it is hidden,
//! `confinement::view`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Code, Error, Result};
use crate::layout::Layout;

/// The shared store of command logs.
#[derive(Debug, Clone, PartialEq)]
pub struct LogStore {
    pub dir: PathBuf,
}

impl LogStore {
    /// The store at `dir` as `[store] logs` writes it.
    pub fn at(layout: &Layout, dir: &str) -> LogStore {
        let path = match dir.strip_prefix('~') {
            Some(rest) => std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default()
                .join(rest.trim_start_matches('/')),
            None => layout.root.join(dir),
        };
        LogStore { dir: path }
    }

    /// Where the blob of `sha256` is (whether it is there or not); None for
    /// a name that is not a sha256 in hex.
    pub fn blob(&self, sha256: &str) -> Option<PathBuf> {
        let hex = sha256.len() == 64
            && sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        hex.then(|| self.dir.join("sha256").join(&sha256[..2]).join(sha256))
    }

    /// Copies the file at `from` into the store as the blob of `sha256`,
    /// unless a whole one is there already. The copy is hashed as it is
    /// written: a file that no longer has that digest (changed since it
    /// was recorded) is not stored under it.
    pub fn put(&self, from: &Path, sha256: &str) -> Result<PathBuf> {
        let blob = self
            .blob(sha256)
            .ok_or_else(|| Error::Internal(format!("`{sha256}` is not a sha256")))?;
        if check(&blob, sha256).is_ok() {
            return Ok(blob);
        }
        let dir = blob.parent().expect("a blob has a directory");
        let write = |source: std::io::Error| Error::Write {
            path: blob.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(write)?;
        let mut input = std::fs::File::open(from).map_err(|source| Error::Read {
            path: from.to_path_buf(),
            source,
        })?;
        let mut tmp = {
            use std::os::unix::fs::PermissionsExt;
            tempfile::Builder::new()
                .prefix(".blob.")
                .suffix(".tmp")
                // Read-only from birth: the open handle still writes it.
                .permissions(std::fs::Permissions::from_mode(0o444))
                .tempfile_in(dir)
                .map_err(write)?
        };
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = input.read(&mut buf).map_err(|source| Error::Read {
                path: from.to_path_buf(),
                source,
            })?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            tmp.as_file_mut().write_all(&buf[..n]).map_err(write)?;
        }
        let got = hex::encode(hasher.finalize());
        if got != sha256 {
            return Err(Error::Corrupt(format!(
                "the log {} has changed since its trace recorded it (sha256 {got}, recorded {sha256}); it was not copied to the shared log store",
                from.display()
            )));
        }
        tmp.as_file().sync_all().map_err(write)?;
        // A blob another machine wrote meanwhile is the same bytes; a bad
        // one (it failed the check above) is replaced.
        tmp.persist(&blob).map_err(|e| write(e.error))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(write)?;
        Ok(blob)
    }

    /// The bytes of the blob of `sha256`, checked against its name.
    /// `Ok(None)`: the store has no such blob.
    pub fn get(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        let Some(blob) = self.blob(sha256) else {
            return Ok(None);
        };
        let bytes = match std::fs::read(&blob) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::Read { path: blob, source }),
        };
        let got = hex::encode(Sha256::digest(&bytes));
        if got != sha256 {
            return Err(corrupt(&blob, sha256, &got, bytes.len()));
        }
        Ok(Some(bytes))
    }
}

/// Copies each `(log, sha256)` into the shared log store the workflow
/// names (`[store] logs`), before the record that names the digests is
/// written, so a reader elsewhere finds every log the ledger names. The
/// command has run: a store that cannot be written does not undo it;
/// the note returned says what was not copied (None: all were, or the
/// workflow names no store).
pub fn share(
    layout: &Layout,
    workflow: &airlock_model::workflow::Workflow,
    logs: &[(&Path, &str)],
) -> Option<String> {
    let dir = workflow.store.logs.as_ref()?;
    LogStore::at(layout, dir).share(logs)
}

impl LogStore {
    /// [`share`] into this store.
    pub fn share(&self, logs: &[(&Path, &str)]) -> Option<String> {
        let store = self;
        let failed: Vec<String> = logs
            .iter()
            .filter_map(|(log, sha256)| store.put(log, sha256).err())
            .map(|e| e.to_string())
            .collect();
        (!failed.is_empty()).then(|| {
        format!(
            "its logs were not copied to the shared log store {} ({}); they are on this machine only",
            store.dir.display(),
            failed.join("; ")
        )
    })
    }
}

/// Where a log was read from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// The machine's own file, whole (it hashes to the recorded digest).
    Local(PathBuf),
    /// The shared store's blob, checked against the digest.
    Shared(PathBuf),
}

/// The bytes of a log recorded as `sha256` at `local`: the local file when
/// it is there and whole, else the shared store's blob, checked against the
/// digest (a changed or cut blob is [`Code::LogCorrupt`], never returned).
/// `Ok(None)`: neither has it (the log is on another machine, or gone).
pub fn read_log(
    local: &Path,
    sha256: &str,
    shared: Option<&LogStore>,
) -> Result<Option<(Vec<u8>, Source)>> {
    if let Ok(bytes) = std::fs::read(local)
        && hex::encode(Sha256::digest(&bytes)) == sha256
    {
        return Ok(Some((bytes, Source::Local(local.to_path_buf()))));
    }
    let Some(store) = shared else {
        return Ok(None);
    };
    Ok(store.get(sha256)?.map(|bytes| {
        let blob = store.blob(sha256).unwrap_or_default();
        (bytes, Source::Shared(blob))
    }))
}

/// Whether the blob at `blob` is whole: its bytes hash to its name.
fn check(blob: &Path, sha256: &str) -> std::io::Result<()> {
    let mut file = std::fs::File::open(blob)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    if hex::encode(hasher.finalize()) == sha256 {
        Ok(())
    } else {
        Err(std::io::Error::other("the blob does not match its name"))
    }
}

fn corrupt(blob: &Path, want: &str, got: &str, size: usize) -> Error {
    Error::Refused(airlock_model::error::Refusal::problem(
        Code::LogCorrupt,
        format!(
            "the shared log store's copy {} is not the log its trace recorded",
            blob.display()
        ),
        vec![format!(
            "its {size} bytes hash to sha256 {got}, not {want}: it was changed or cut short after it was written"
        )],
        "it is not shown; restore it from the machine that ran the command (its local log), or from a backup of the shared store",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> LogStore {
        LogStore {
            dir: dir.join("shared"),
        }
    }

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    #[test]
    fn a_blob_is_written_read_only_and_read_back_checked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let log = dir.path().join("x.stdout");
        std::fs::write(&log, b"hello\n").unwrap();
        let digest = sha(b"hello\n");
        let blob = s.put(&log, &digest).unwrap();
        assert_eq!(blob, s.dir.join("sha256").join(&digest[..2]).join(&digest));
        let mode = std::fs::metadata(&blob).unwrap().permissions().mode();
        assert_eq!(mode & 0o222, 0, "read-only: {mode:o}");
        assert_eq!(s.get(&digest).unwrap().unwrap(), b"hello\n");
        // Again: nothing to do, no temporary file left.
        s.put(&log, &digest).unwrap();
        let names: Vec<_> = std::fs::read_dir(blob.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!(s.get(&sha(b"other")).unwrap(), None);
        assert_eq!(s.get("../../etc/passwd").unwrap(), None);
    }

    #[test]
    fn a_changed_or_truncated_blob_is_named_never_returned() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let log = dir.path().join("x.stdout");
        std::fs::write(&log, b"all tests passed\n").unwrap();
        let digest = sha(b"all tests passed\n");
        let blob = s.put(&log, &digest).unwrap();
        for forged in [&b"all tests"[..], b"all tests FAILED\n"] {
            std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o644)).unwrap();
            std::fs::write(&blob, forged).unwrap();
            let err = s.get(&digest).unwrap_err();
            assert_eq!(err.code(), Code::LogCorrupt);
            assert!(
                err.to_string().contains(&blob.display().to_string()),
                "{err}"
            );
        }
        // A bad blob is replaced by the next good copy.
        s.put(&log, &digest).unwrap();
        assert_eq!(s.get(&digest).unwrap().unwrap(), b"all tests passed\n");
    }

    #[test]
    fn a_log_changed_since_its_trace_is_not_stored_under_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let log = dir.path().join("x.stdout");
        std::fs::write(&log, b"forged\n").unwrap();
        let digest = sha(b"the real output\n");
        let err = s.put(&log, &digest).unwrap_err();
        assert!(err.to_string().contains("has changed since"), "{err}");
        assert_eq!(s.get(&digest).unwrap(), None);
        let leftovers: Vec<_> = std::fs::read_dir(s.dir.join("sha256").join(&digest[..2]))
            .unwrap()
            .collect();
        assert!(leftovers.is_empty(), "no temporary file left");
    }
}
