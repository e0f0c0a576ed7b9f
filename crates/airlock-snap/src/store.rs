//! A directory of snapshots: `NAME.snap` goldens and `NAME.snap.new` pending
//! results beside them.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::diff::{Comparison, DiffStat, compare, diff_stat};
use crate::error::SnapError;
use crate::format::{Body, Snapshot, sha256_hex};

pub const GOLDEN_EXT: &str = ".snap";
pub const PENDING_EXT: &str = ".snap.new";

/// Names are file names: letters, digits, `-`, `_`, `.`; no `/`, no `..`,
/// no leading `.`; at most 100 characters.
pub fn validate_name(name: &str) -> Result<(), SnapError> {
    let bad = |why| {
        Err(SnapError::InvalidName {
            name: name.escape_debug().to_string(),
            why,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 100 {
        return bad("it is longer than 100 characters");
    }
    if name.contains('/') || name.contains('\\') {
        return bad("it contains a path separator");
    }
    if name.contains("..") {
        return bad("it contains `..`");
    }
    if name.starts_with('.') {
        return bad("it starts with `.`");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return bad("it contains a character other than letters, digits, `-`, `_` and `.`");
    }
    Ok(())
}

/// Where a snapshot stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// A golden and nothing pending.
    Ok,
    /// A golden and a pending result that differs from it.
    Changed,
    /// A pending result and no golden.
    New,
    /// A golden recorded by a workflow gate that no gate names any more.
    Orphaned,
}

impl State {
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Changed => "changed",
            State::New => "new",
            State::Orphaned => "orphaned",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub name: String,
    pub state: State,
    pub golden: Option<PathBuf>,
    pub pending: Option<PathBuf>,
    /// Where the snapshot came from (`snap run` or `gate:NAME`), when readable.
    pub origin: Option<String>,
    /// A golden or pending file that does not parse.
    pub problem: Option<String>,
}

/// What comparing a result with its golden decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Equal to the golden (wildcards and normalizers applied).
    Matched,
    /// Differs from the golden.
    Changed,
    /// No golden yet.
    New,
}

/// The outcome of recording one result.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub name: String,
    pub decision: Decision,
    /// sha256 of the golden file's bytes.
    pub golden_sha256: Option<String>,
    /// sha256 of the actual result rendered as a snapshot file.
    pub actual_sha256: String,
    /// Where the pending result was written (nothing is written when `write` was false).
    pub pending: Option<PathBuf>,
    /// A stale pending result removed because the result now matches.
    pub removed_stale_pending: bool,
    pub comparison: Option<Comparison>,
    pub stat: DiffStat,
    pub notes: Vec<String>,
    pub golden: PathBuf,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.decision == Decision::Matched
    }
}

pub struct SnapDir {
    pub dir: PathBuf,
}

impl SnapDir {
    pub fn new(dir: impl Into<PathBuf>) -> SnapDir {
        SnapDir { dir: dir.into() }
    }

    pub fn golden_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{GOLDEN_EXT}"))
    }

    pub fn pending_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{PENDING_EXT}"))
    }

    /// A snapshot file and the sha256 of its bytes, or `None` when absent.
    pub fn read(path: &Path) -> Result<Option<(Snapshot, String)>, SnapError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(SnapError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let text = String::from_utf8(bytes).map_err(|e| {
            let upto = e.utf8_error().valid_up_to();
            let valid = std::str::from_utf8(&e.as_bytes()[..upto]).unwrap_or("");
            SnapError::Parse {
                path: path.to_path_buf(),
                line: valid.matches('\n').count() + 1,
                column: valid.rsplit('\n').next().unwrap_or("").chars().count() + 1,
                expected: "UTF-8 text".into(),
                found: "bytes that are not UTF-8".into(),
            }
        })?;
        let snap = Snapshot::parse(&text, path)?;
        Ok(Some((snap, sha256_hex(text.as_bytes()))))
    }

    /// Compares `actual` with the golden `name`. With `write`, a difference
    /// or a new snapshot is written as `NAME.snap.new` (never as the golden),
    /// and a stale pending result is removed when the result matches.
    pub fn record(&self, name: &str, actual: &Snapshot, write: bool) -> Result<Outcome, SnapError> {
        validate_name(name)?;
        let golden_path = self.golden_path(name);
        let pending_path = self.pending_path(name);
        let rendered = actual.render();
        let actual_sha256 = sha256_hex(rendered.as_bytes());
        let golden = SnapDir::read(&golden_path)?;
        let mut notes: Vec<String> = [("stdout", &actual.stdout), ("stderr", &actual.stderr)]
            .iter()
            .filter_map(|(s, b)| b.note(s))
            .collect();
        let (decision, comparison, stat) = match &golden {
            None => (Decision::New, None, DiffStat::default()),
            Some((g, _)) => {
                let c = compare(g, actual);
                for n in &c.notes {
                    if !notes.contains(n) {
                        notes.push(n.clone());
                    }
                }
                if c.matches {
                    (Decision::Matched, Some(c), DiffStat::default())
                } else {
                    let mut stat = DiffStat::default();
                    for (gb, ab) in [(&g.stdout, &actual.stdout), (&g.stderr, &actual.stderr)] {
                        if let (Body::Text { text: gt }, Body::Text { text: at }) = (gb, ab) {
                            let s = diff_stat(gt, at);
                            stat.added += s.added;
                            stat.removed += s.removed;
                        }
                    }
                    (Decision::Changed, Some(c), stat)
                }
            }
        };
        let mut pending = None;
        let mut removed_stale_pending = false;
        if write {
            if decision == Decision::Matched {
                if pending_path.exists() {
                    std::fs::remove_file(&pending_path).map_err(|source| SnapError::Write {
                        path: pending_path.clone(),
                        source,
                    })?;
                    removed_stale_pending = true;
                }
            } else {
                write_atomic(&pending_path, rendered.as_bytes())?;
                pending = Some(pending_path);
            }
        }
        Ok(Outcome {
            name: name.to_string(),
            decision,
            golden_sha256: golden.map(|(_, d)| d),
            actual_sha256,
            pending,
            removed_stale_pending,
            comparison,
            stat,
            notes,
            golden: golden_path,
        })
    }

    /// Makes the pending result the golden.
    pub fn accept(&self, name: &str) -> Result<PathBuf, SnapError> {
        validate_name(name)?;
        let pending = self.pending_path(name);
        // Refuse a pending file edited into an invalid form: a golden must parse.
        if SnapDir::read(&pending)?.is_none() {
            return Err(self.nothing_pending(name, "accept"));
        }
        let golden = self.golden_path(name);
        airlock_fs::rename(&pending, &golden).map_err(|source| SnapError::Write {
            path: golden.clone(),
            source,
        })?;
        Ok(golden)
    }

    /// Drops the pending result; the golden stays as it is.
    pub fn reject(&self, name: &str) -> Result<PathBuf, SnapError> {
        validate_name(name)?;
        let pending = self.pending_path(name);
        if !pending.exists() {
            return Err(self.nothing_pending(name, "reject"));
        }
        std::fs::remove_file(&pending).map_err(|source| SnapError::Write {
            path: pending.clone(),
            source,
        })?;
        Ok(pending)
    }

    fn nothing_pending(&self, name: &str, action: &'static str) -> SnapError {
        if self.golden_path(name).exists() {
            SnapError::NothingPending {
                name: name.to_string(),
                action,
            }
        } else {
            SnapError::Unknown {
                name: name.to_string(),
                dir: self.dir.clone(),
            }
        }
    }

    /// The names of all pending results, sorted.
    pub fn pending_names(&self) -> Result<Vec<String>, SnapError> {
        Ok(self
            .list(None)?
            .into_iter()
            .filter(|e| e.pending.is_some())
            .map(|e| e.name)
            .collect())
    }

    /// Every snapshot, sorted by name. `gate_snapshots`, when given, names
    /// the snapshots workflow gates use: a golden recorded by a gate whose
    /// name is not among them is orphaned.
    pub fn list(&self, gate_snapshots: Option<&[String]>) -> Result<Vec<Entry>, SnapError> {
        let read_dir = match std::fs::read_dir(&self.dir) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(SnapError::Read {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let mut names = std::collections::BTreeSet::new();
        for entry in read_dir.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            let name = file
                .strip_suffix(PENDING_EXT)
                .or_else(|| file.strip_suffix(GOLDEN_EXT));
            if let Some(name) = name
                && validate_name(name).is_ok()
            {
                names.insert(name.to_string());
            }
        }
        let mut out = Vec::new();
        for name in names {
            let golden = Some(self.golden_path(&name)).filter(|p| p.exists());
            let pending = Some(self.pending_path(&name)).filter(|p| p.exists());
            let mut origin = None;
            let mut problem = None;
            for p in golden.iter().chain(pending.iter()) {
                match SnapDir::read(p) {
                    Ok(Some((s, _))) => {
                        origin.get_or_insert(s.origin);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        problem.get_or_insert(e.to_string());
                    }
                }
            }
            let state = match (&golden, &pending) {
                (None, _) => State::New,
                (Some(_), Some(_)) => State::Changed,
                (Some(_), None) => {
                    let gate = origin.as_deref().and_then(|o| o.strip_prefix("gate:"));
                    match (gate, gate_snapshots) {
                        (Some(_), Some(known)) if !known.contains(&name) => State::Orphaned,
                        _ => State::Ok,
                    }
                }
            };
            out.push(Entry {
                name,
                state,
                golden,
                pending,
                origin,
                problem,
            });
        }
        Ok(out)
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SnapError> {
    let err = |source| SnapError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    // 0600 as the files were always made (tempfile's default before
    // airlock-fs); git records no mode bits but the executable one.
    airlock_fs::Write::new()
        .mode(0o600)
        .write(path, bytes)
        .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_leave_the_directory() {
        for bad in ["", "a/b", "..", "a..b", ".hidden", "a\\b", "a b", "x\n"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        for good in ["cli-help", "v1.2_out", "A"] {
            validate_name(good).unwrap();
        }
    }
}
