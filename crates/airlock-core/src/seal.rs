//! The sealed log (issue 20): evidence a database administrator cannot
//! rewrite.
//!
//! Each chain of the ledger (a run's events) ends in a head; a seal
//! appends a leaf (chain, n, head hash) to the store's log for every chain
//! that moved, and this machine signs a checkpoint of the log (its size
//! and RFC 6962 root, airlock-log) with its own key and pushes it, as a
//! commit whose parent is the checkpoint before, to `refs/airlock/log` on
//! the team's remote with a compare-and-swap push. The key never enters
//! the database, so a superuser who edits events, chains or leaves cannot
//! make a checkpoint agree.
//!
//! Each machine remembers the last checkpoint it verified in its key
//! directory (never the database). `review`, `approve` and `promote`
//! check, in order: the remote's checkpoint is signed by a key
//! `.airlock/runners` at the target's tip lets sign checkpoints; it
//! descends from (and is no smaller than) the one remembered; the
//! database's leaves hash to both roots; every leaf's event is stored
//! with the hash it was sealed with; and every event this machine
//! appended and has not seen sealed is still stored
//! (`airlock_store::unsealed`). Anything else is `log-inconsistent`,
//! naming each problem.
//!
//! Team mode without a `[team] remote` has nowhere to publish
//! checkpoints: none of this applies then.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use airlock_log::{Checkpoint, Hash, Leaf, SignedCheckpoint};
use airlock_proof::signers::AllowedSigners;
use airlock_store::LogLeaf;
use airlock_store::unsealed::{self, Unsealed};

use crate::Airlock;
use crate::error::{Code, Error, Result};
use crate::git::Git;

/// The ref on the team's remote whose commits hold the checkpoints.
pub const LOG_REF: &str = "refs/airlock/log";
/// Where a fetch puts the remote's log ref here.
const FETCHED_REF: &str = "refs/airlock-seal/log";
/// The runners file, read from the target branch's tip.
pub const RUNNERS: &str = ".airlock/runners";
/// How many times a seal retries a push another machine's push beat.
const PUSH_ATTEMPTS: usize = 5;

/// A checkpoint as this machine verified it (and as proofs and approvals
/// record it): which log, its size and root, the commit on the remote
/// that holds it, and whose machine signed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub origin: String,
    pub size: u64,
    /// The root, hex.
    pub root: String,
    pub commit: String,
    pub principal: String,
}

/// What a seal did.
#[derive(Debug, Clone, Serialize)]
pub struct Sealed {
    /// The checkpoint that now covers the log (ours, or a larger one
    /// another machine pushed first).
    pub checkpoint: Seen,
    /// Whether this machine pushed it.
    pub pushed: bool,
    /// The leaves in the database.
    pub leaves: u64,
}

/// The team's remote and the branch whose tip holds `.airlock/runners`.
struct Team {
    remote: String,
    target: String,
}

fn team(al: &Airlock) -> Result<Option<Team>> {
    let workflow = al.current_workflow()?;
    crate::seal_notes::arm(al, &workflow)?;
    let Some(remote) = workflow.team.remote.clone() else {
        return Ok(None);
    };
    if remote.starts_with('-') {
        return Err(Error::Invalid(format!(
            "[team] remote {remote:?} begins with `-`; name a remote or give a URL"
        )));
    }
    let target = crate::start::target_branch(al, &workflow)?.unwrap_or_else(|| "main".into());
    Ok(Some(Team { remote, target }))
}

/// Whether this repository publishes sealed checkpoints (`[team] remote`).
pub fn enabled(al: &Airlock) -> Result<bool> {
    Ok(team(al)?.is_some())
}

/// The checkpoint this machine last verified for the team's remote, for a
/// proof or an approval to record; `None` outside team mode or before any.
pub fn seen(al: &Airlock) -> Option<Seen> {
    let team = team(al).ok()??;
    remembered(al, &team).ok()?
}

// ---- what this machine remembers (the key directory) ----

fn remembered_path(al: &Airlock, team: &Team) -> PathBuf {
    let mut h = Sha256::new();
    h.update(al.layout.git_dir.as_os_str().as_encoded_bytes());
    h.update([0]);
    h.update(team.remote.as_bytes());
    let digest = hex::encode(h.finalize());
    al.layout
        .key_dir
        .join("log")
        .join(format!("{}.checkpoint.json", &digest[..24]))
}

fn remembered(al: &Airlock, team: &Team) -> Result<Option<Seen>> {
    let path = remembered_path(al, team);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::Corrupt(format!(
                "{} is not a remembered checkpoint ({e}); remove it to trust the remote's checkpoint anew",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Write { path, source }),
    }
}

fn remember(al: &Airlock, team: &Team, seen: &Seen) -> Result<()> {
    let path = remembered_path(al, team);
    if let Some(dir) = path.parent() {
        airlock_fs::private_dir(dir).map_err(|source| Error::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let mut text = serde_json::to_vec_pretty(seen).map_err(|e| Error::Corrupt(e.to_string()))?;
    text.push(b'\n');
    crate::layout::write_atomic(&path, &text)
}

// ---- the remote ----

/// A checkpoint read from a commit of the log ref.
struct RemoteCheckpoint {
    commit: String,
    signed: SignedCheckpoint,
}

impl RemoteCheckpoint {
    fn seen(&self) -> Seen {
        Seen {
            origin: self.signed.checkpoint.origin.clone(),
            size: self.signed.checkpoint.size,
            root: self.signed.checkpoint.root_hex(),
            commit: self.commit.clone(),
            principal: self.signed.principal.clone(),
        }
    }
}

fn unreachable(team: &Team, what: &str, detail: &str) -> Error {
    Error::refused(
        Code::RemoteUnreachable,
        format!(
            "cannot {what} the sealed log on the team's remote {}",
            team.remote
        ),
        vec![detail.trim().to_string()],
        "check `[team] remote` in the workflow and that the remote can be reached, then run again",
    )
}

/// Fetches the remote's log ref; `None` when it has none.
fn fetch(git: &Git, team: &Team) -> Result<Option<String>> {
    let refspec = format!("+{LOG_REF}*:{FETCHED_REF}*");
    let (ok, _, err) = git.try_run(
        &[
            "fetch",
            "--quiet",
            "--no-tags",
            "--prune",
            "--no-write-fetch-head",
            "--",
            &team.remote,
            &refspec,
        ],
        None,
    )?;
    if !ok {
        return Err(unreachable(team, "fetch", &String::from_utf8_lossy(&err)));
    }
    git.ref_value(FETCHED_REF)
}

fn invalid(team: &Team, commit: &str, reason: String) -> Error {
    Error::refused(
        Code::CheckpointInvalid,
        format!(
            "the checkpoint at {LOG_REF} ({}) on {} cannot be trusted",
            crate::guards::short(commit),
            team.remote
        ),
        vec![reason],
        format!(
            "find who pushed it; a runner's key must be listed in {RUNNERS} on {} of `{}` (`airlock key public --runners-line` prints the line)",
            team.target, team.remote
        ),
    )
}

/// Reads the checkpoint held by `commit`, each file bounded.
fn read_commit(git: &Git, team: &Team, commit: &str) -> Result<SignedCheckpoint> {
    let listing = git.text(&["ls-tree", "-l", "--full-tree", commit])?;
    let blob = |name: &str| -> Result<Vec<u8>> {
        let line = listing
            .lines()
            .find(|l| l.split('\t').nth(1) == Some(name))
            .ok_or_else(|| invalid(team, commit, format!("its commit has no file `{name}`")))?;
        let fields: Vec<&str> = line
            .split('\t')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let (Some(&"blob"), Some(id), Some(size)) = (fields.get(1), fields.get(2), fields.get(3))
        else {
            return Err(invalid(team, commit, format!("`{name}` is not a file")));
        };
        if size
            .parse::<usize>()
            .map_or(true, |s| s > airlock_log::MAX_CHECKPOINT_BYTES)
        {
            return Err(invalid(
                team,
                commit,
                format!(
                    "`{name}` is larger than {} bytes",
                    airlock_log::MAX_CHECKPOINT_BYTES
                ),
            ));
        }
        git.run(&["cat-file", "blob", id])
    };
    let (text, signature, signer) = (
        blob("checkpoint")?,
        blob("checkpoint.sig")?,
        blob("signer")?,
    );
    SignedCheckpoint::parse(&text, &signature, &signer)
        .map_err(|e| invalid(team, commit, e.to_string()))
}

/// The commit the rules are read from: the target's tip on the team's
/// remote, fetched now (never this checkout's branch, which may hold a
/// commit never pushed, or lag behind).
fn remote_tip(al: &Airlock, team: &Team, doing: &str) -> Result<String> {
    crate::remote::target_tip(al, &team.remote, &team.target, doing)?
        .ok_or_else(|| runners_missing(&team.remote, &team.target, doing, None))
}

/// `runners-missing`: team mode without `.airlock/runners` at the remote's
/// tip (or without the target branch there at all).
fn runners_missing(remote: &str, target: &str, doing: &str, tip: Option<&str>) -> Error {
    let at = match tip {
        Some(tip) => format!("{target} ({})", crate::guards::short(tip)),
        None => format!("{target} (the remote has no such branch)"),
    };
    Error::refused(
        Code::RunnersMissing,
        format!(
            "refusing to {doing}: the team's remote `{remote}` has no {RUNNERS} on {at}"
        ),
        vec![
            format!(
                "{RUNNERS} lists the machines trusted to sign proofs and the sealed log's checkpoints: one line per machine key, `PRINCIPAL KEY` (OpenSSH allowed_signers), the principal being the person who owns the machine"
            ),
            "with `[team] remote` set, nothing is submitted or promoted that no listed machine vouches for, and nothing is promoted unsealed".into(),
            "nothing was pushed or recorded".into(),
        ],
        format!(
            "on each machine that runs agents or promotes, `airlock key public --runners-line` prints its line; commit the lines in {RUNNERS} on {target}, push it to `{remote}`, then run again"
        ),
    )
}

/// `.airlock/runners` at `tip` (a commit of the remote's target branch).
fn runners(al: &Airlock, team: &Team, tip: &str, doing: &str) -> Result<AllowedSigners> {
    let git = al.layout.git();
    let Some(text) = crate::rules_file::read_at(&git, &team.target, tip, RUNNERS)? else {
        return Err(runners_missing(
            &team.remote,
            &team.target,
            doing,
            Some(tip),
        ));
    };
    AllowedSigners::parse(&text).map_err(|e| {
        Error::refused(
            Code::CheckpointInvalid,
            format!(
                "{RUNNERS} on {} ({}) is malformed",
                team.target,
                crate::guards::short(tip)
            ),
            vec![e.to_string()],
            format!("fix the line in {RUNNERS} on {}", team.target),
        )
    })
}

/// `submit` and `promote` in team mode (`[team] remote`): the remote's
/// target tip `tip` (fetched now when `None`) must hold `.airlock/runners`,
/// so that a proof has machines to vouch for it and a promotion can be
/// sealed. Returns the file's signers. Nothing outside `[team] remote`.
pub fn require_runners(
    al: &Airlock,
    remote: &str,
    target: &str,
    tip: Option<&str>,
    doing: &str,
) -> Result<AllowedSigners> {
    let team = Team {
        remote: remote.to_string(),
        target: target.to_string(),
    };
    let tip = match tip {
        Some(tip) => tip.to_string(),
        None => remote_tip(al, &team, doing)?,
    };
    runners(al, &team, &tip, doing)
}

/// Refuses (`log-unsealed`, naming the line to add) when this machine's key
/// may not sign checkpoints under `signers`: checked before anything is
/// sealed, so that a machine that cannot publish a checkpoint writes no
/// leaves either.
fn require_signer(
    key: &airlock_proof::SigningKey,
    principal: &str,
    signers: &AllowedSigners,
    team: &Team,
) -> Result<()> {
    let probe = Checkpoint {
        origin: "airlock.dev/log/probe".into(),
        size: 0,
        root: Hash::default(),
    }
    .sign(key, principal)
    .map_err(|e| Error::Corrupt(e.to_string()))?;
    probe.verify(signers, now()).map(|_| ()).map_err(|e| {
        Error::refused(
            Code::LogUnsealed,
            "this machine cannot sign the sealed log's checkpoints",
            vec![
                e.to_string(),
                format!(
                    "{RUNNERS} is read from {} on the team's remote `{}`, never from this checkout",
                    team.target, team.remote
                ),
            ],
            format!(
                "add this machine's line to {RUNNERS} on {} as {principal} (`airlock key public --runners-line` prints it) and push it to `{}`, then run again",
                team.target, team.remote
            ),
        )
    })
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Fetches and verifies the remote's checkpoint (signature only), against
/// `signers` or else the runners at the remote's target tip, fetched now.
fn remote_checkpoint(
    al: &Airlock,
    team: &Team,
    signers: Option<&AllowedSigners>,
    doing: &str,
) -> Result<Option<RemoteCheckpoint>> {
    let git = al.layout.git();
    let Some(commit) = fetch(&git, team)? else {
        return Ok(None);
    };
    let signed = read_commit(&git, team, &commit)?;
    let fetched;
    let signers = match signers {
        Some(s) => s,
        None => {
            let tip = remote_tip(al, team, doing)?;
            fetched = runners(al, team, &tip, doing)?;
            &fetched
        }
    };
    signed
        .verify(signers, now())
        .map_err(|e| invalid(team, &commit, e.to_string()))?;
    Ok(Some(RemoteCheckpoint { commit, signed }))
}

// ---- consistency ----

fn chain_name(chain: &str) -> String {
    if chain.is_empty() {
        "the events of no run".into()
    } else {
        format!("run {chain}")
    }
}

fn tree_hashes(leaves: &[LogLeaf]) -> Vec<Hash> {
    leaves
        .iter()
        .map(|l| {
            Leaf {
                chain: l.chain.clone(),
                n: l.n,
                hash: l.hash.clone(),
            }
            .tree_hash()
        })
        .collect()
}

/// What disagrees between the checkpoints, the database's leaves and
/// events, and this machine's notes of unsealed events: one sentence each.
fn problems(
    al: &Airlock,
    remembered: Option<&Seen>,
    remote: Option<&Seen>,
    leaves: &[LogLeaf],
    notes: &[Unsealed],
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let hashes = tree_hashes(leaves);
    let git = al.layout.git();
    // The remembered checkpoint against the remote's.
    match (remembered, remote) {
        (Some(mine), None) => out.push(format!(
            "the remote has no {LOG_REF}, but this machine verified checkpoint {} (size {}) there: the log's ref was deleted",
            crate::guards::short(&mine.commit),
            mine.size
        )),
        (Some(mine), Some(theirs)) => {
            if theirs.origin != mine.origin {
                out.push(format!(
                    "the remote's checkpoint is of the log {:?}, and this machine verified the log {:?}: the log was replaced",
                    theirs.origin, mine.origin
                ));
            }
            if theirs.size < mine.size {
                out.push(format!(
                    "the remote's checkpoint has {} leaves, fewer than the {} of the checkpoint this machine verified ({}): {LOG_REF} was rewound",
                    theirs.size,
                    mine.size,
                    crate::guards::short(&mine.commit)
                ));
            } else if theirs.commit != mine.commit {
                let (ok, _, _) = git.try_run(
                    &["merge-base", "--is-ancestor", &mine.commit, &theirs.commit],
                    None,
                )?;
                if !ok {
                    out.push(format!(
                        "the remote's {LOG_REF} ({}) does not descend from the checkpoint this machine verified ({}): the log was rewritten or forked",
                        crate::guards::short(&theirs.commit),
                        crate::guards::short(&mine.commit)
                    ));
                }
            }
        }
        _ => {}
    }
    // A remote log begun from other leaves than this database's, on a
    // machine that never verified it: most often a machine on a database
    // of its own (each machine's SQLite) in a team whose log another
    // database sealed. Said first, as what to fix.
    if let (None, Some(theirs)) = (remembered, remote)
        && (hashes.is_empty() || origin_for(&hashes) != theirs.origin)
    {
        out.push(format!(
            "the remote's sealed log ({:?}) {ANOTHER_DATABASE}: every machine of a team must use the same database (`[store] url`, docs/team.md), or this database's history was rewritten",
            theirs.origin
        ));
    }
    // Each checkpoint against the database's leaves.
    for (whose, seen) in [
        ("this machine verified", remembered),
        ("the remote holds", remote),
    ] {
        let Some(seen) = seen else { continue };
        if (hashes.len() as u64) < seen.size {
            out.push(format!(
                "the database holds {} leaves of the sealed log, and the checkpoint {whose} ({}, signed by {}) has {}: leaves were deleted",
                hashes.len(),
                crate::guards::short(&seen.commit),
                seen.principal,
                seen.size
            ));
            continue;
        }
        let root = hex::encode(airlock_log::root(&hashes[..seen.size as usize]));
        if root != seen.root {
            out.push(format!(
                "the database's first {} leaves do not hash to the root of the checkpoint {whose} ({}, signed by {}): the database's history differs from the one sealed (rewritten or forked)",
                seen.size,
                crate::guards::short(&seen.commit),
                seen.principal
            ));
        }
    }
    // Each leaf against the event it sealed.
    for leaf in leaves {
        match &leaf.event {
            Some(hash) if *hash == leaf.hash => {}
            Some(hash) => out.push(format!(
                "event {} of {} was sealed (leaf {}) with hash {:.16}… and is stored with hash {:.16}…: the event was rewritten",
                leaf.n,
                chain_name(&leaf.chain),
                leaf.index,
                leaf.hash,
                hash
            )),
            None => out.push(format!(
                "event {} of {} was sealed (leaf {}) and is no longer stored: it was deleted",
                leaf.n,
                chain_name(&leaf.chain),
                leaf.index
            )),
        }
    }
    // Each chain's head against its newest leaf: a head moved back behind
    // what was sealed (its later events deleted, or only `chains` edited)
    // would let the chain be appended to again from there.
    let mut sealed: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for leaf in leaves {
        let n = sealed.entry(leaf.chain.as_str()).or_default();
        *n = (*n).max(leaf.n);
    }
    let heads = al.store.chain_heads()?;
    let mut seen_chains = std::collections::HashSet::new();
    for (chain, n, _) in &heads {
        seen_chains.insert(chain.as_str());
        if let Some(s) = sealed.get(chain.as_str())
            && s > n
        {
            out.push(format!(
                "{} records its head at event {n}, but event {s} of it was sealed: its tail was deleted",
                chain_name(chain)
            ));
        }
    }
    for (chain, s) in &sealed {
        if !seen_chains.contains(chain) {
            out.push(format!(
                "{} has no head recorded, but event {s} of it was sealed: its chain was deleted",
                chain_name(chain)
            ));
        }
    }
    // The events this machine appended and has not seen sealed.
    for note in notes {
        if !al.store.ledger_contains(note.seq, &note.hash)? {
            out.push(format!(
                "event {} of {}, appended by this machine and not sealed yet (hash {:.16}…), is not in the database: it was dropped",
                note.seq,
                chain_name(&note.chain),
                note.hash
            ));
        }
    }
    Ok(out)
}

fn notes(al: &Airlock) -> Result<Vec<Unsealed>> {
    match al.store.unsealed_notes() {
        Some(path) => Ok(unsealed::read(&path)?),
        None => Ok(Vec::new()),
    }
}

fn inconsistent(doing: &str, problems: Vec<String>) -> Error {
    Error::refused(
        Code::LogInconsistent,
        format!(
            "refusing to {doing}: the ledger does not agree with the sealed log's signed checkpoints"
        ),
        problems.clone(),
        if problems
            .first()
            .is_some_and(|p| p.contains(ANOTHER_DATABASE))
        {
            "point this machine at the team's database (`[store] url` in .airlock/workflow.toml, or AIRLOCK_DATABASE_URL) and run again; if it already is, do not trust it: `airlock ledger verify --remote` lists every problem"
        } else {
            "do not trust this database: `airlock ledger verify --remote` lists every problem; restore it from a backup that agrees with the checkpoints"
        },
    )
}

/// How the problem of a machine on a database of its own begins.
const ANOTHER_DATABASE: &str = "was begun by another database than this machine's";

/// The check `review`, `approve` and `promote` make: the database against
/// the remote's checkpoint and the one this machine remembers. A
/// consistent, larger remote checkpoint becomes the remembered one. When
/// the remote cannot be reached, the database is checked against the
/// remembered checkpoint alone.
pub fn check(al: &Airlock, doing: &str) -> Result<Option<Seen>> {
    let Some(team) = team(al)? else {
        return Ok(None);
    };
    let mine = remembered(al, &team)?;
    // Only a fetch that worked can say the ref was deleted; unreachable,
    // the database is checked against the remembered checkpoint alone.
    let (reached, theirs) = match remote_checkpoint(al, &team, None, doing) {
        Ok(c) => (true, c.map(|c| c.seen())),
        Err(e) if e.code() == Code::RemoteUnreachable => (false, None),
        Err(e) => return Err(e),
    };
    let remote_view = if reached {
        theirs.as_ref()
    } else {
        mine.as_ref()
    };
    let leaves = al.store.log_leaves()?;
    let found = problems(al, mine.as_ref(), remote_view, &leaves, &notes(al)?)?;
    if !found.is_empty() {
        return Err(inconsistent(doing, found));
    }
    if let Some(theirs) = &theirs
        && mine.as_ref().is_none_or(|m| theirs.size > m.size)
    {
        remember(al, &team, theirs)?;
        return Ok(Some(theirs.clone()));
    }
    Ok(mine)
}

// ---- sealing ----

fn origin_for(leaves: &[Hash]) -> String {
    format!(
        "airlock.dev/log/{}",
        &hex::encode(leaves.first().copied().unwrap_or_default())[..16]
    )
}

/// Seals the chains that moved, signs a checkpoint of the whole log with
/// this machine's key, and pushes it to the team's remote (a larger
/// consistent checkpoint already there is success). Refuses, naming each
/// problem, when the database does not agree with the checkpoints.
pub fn seal(al: &mut Airlock) -> Result<Sealed> {
    seal_at(al, None)
}

/// [`seal`], the runners read at `tip` of the remote's target branch (the
/// tip a promotion merges onto), or at the tip fetched now when `None`.
pub fn seal_at(al: &mut Airlock, tip: Option<&str>) -> Result<Sealed> {
    crate::guards::refuse_from_lane(al, "seal")?;
    let Some(team) = team(al)? else {
        return Err(Error::refused(
            Code::LogUnsealed,
            "this repository has no `[team] remote` to publish the sealed log to",
            vec!["checkpoints are pushed to the team's git remote".into()],
            "set `[team] remote = \"origin\"` in .airlock/workflow.toml",
        ));
    };
    let doing = "seal the ledger";
    // Who may sign, from the remote's tip, before anything is written: a
    // machine that may not publish a checkpoint appends no leaves.
    let tip = match tip {
        Some(tip) => tip.to_string(),
        None => remote_tip(al, &team, doing)?,
    };
    let signers = runners(al, &team, &tip, doing)?;
    let who = crate::identity::who(al)?;
    let key = al.signing_key()?;
    require_signer(&key, &who.principal, &signers, &team)?;
    // The notes read before sealing are the ones this seal covers.
    let notes = notes(al)?;
    al.store.seal()?;
    let git = al.layout.git();
    for _ in 0..PUSH_ATTEMPTS {
        let mine = remembered(al, &team)?;
        let theirs = remote_checkpoint(al, &team, Some(&signers), doing)?;
        let leaves = al.store.log_leaves()?;
        let found = problems(
            al,
            mine.as_ref(),
            theirs.as_ref().map(|c| c.seen()).as_ref(),
            &leaves,
            &notes,
        )?;
        if !found.is_empty() {
            return Err(inconsistent("seal the ledger", found));
        }
        let hashes = tree_hashes(&leaves);
        if let Some(theirs) = &theirs
            && theirs.signed.checkpoint.size >= hashes.len() as u64
        {
            let seen = theirs.seen();
            remember(al, &team, &seen)?;
            if let Some(path) = al.store.unsealed_notes() {
                unsealed::settle(&path, &notes)?;
            }
            return Ok(Sealed {
                checkpoint: seen,
                pushed: false,
                leaves: hashes.len() as u64,
            });
        }
        let checkpoint = Checkpoint {
            origin: theirs
                .as_ref()
                .map(|c| c.signed.checkpoint.origin.clone())
                .unwrap_or_else(|| origin_for(&hashes)),
            size: hashes.len() as u64,
            root: airlock_log::root(&hashes),
        };
        let signed = checkpoint
            .sign(&key, &who.principal)
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        if let Err(e) = signed.verify(&signers, now()) {
            return Err(Error::refused(
                Code::LogUnsealed,
                "this machine cannot sign the sealed log's checkpoints",
                vec![e.to_string()],
                format!(
                    "add this machine's line to {RUNNERS} on {} as {} (`airlock key public --runners-line` prints it) and push it to `{}`, then run again",
                    team.target, who.principal, team.remote
                ),
            ));
        }
        let commit = checkpoint_commit(&git, &signed, theirs.as_ref().map(|c| c.commit.as_str()))?;
        let lease = format!(
            "--force-with-lease={LOG_REF}:{}",
            theirs.as_ref().map_or("", |c| c.commit.as_str())
        );
        let refspec = format!("{commit}:{LOG_REF}");
        let (ok, _, err) = git.try_run(
            &[
                "push",
                "--quiet",
                "--porcelain",
                &lease,
                "--",
                &team.remote,
                &refspec,
            ],
            None,
        )?;
        let err = String::from_utf8_lossy(&err).into_owned();
        if ok {
            let seen = Seen {
                origin: checkpoint.origin.clone(),
                size: checkpoint.size,
                root: checkpoint.root_hex(),
                commit,
                principal: who.principal.clone(),
            };
            remember(al, &team, &seen)?;
            if let Some(path) = al.store.unsealed_notes() {
                unsealed::settle(&path, &notes)?;
            }
            return Ok(Sealed {
                checkpoint: seen,
                pushed: true,
                leaves: checkpoint.size,
            });
        }
        // Another machine's push won the race when the ref moved from
        // what we leased (git words it several ways: stale info, a
        // rejected update, a ref it could not lock): fetch, verify, try
        // again. Otherwise the push itself failed.
        let leased = theirs.as_ref().map(|c| c.commit.clone());
        if fetch(&git, &team)? == leased {
            return Err(unreachable(&team, "push to", &err));
        }
    }
    Err(Error::refused(
        Code::LogUnsealed,
        format!(
            "the checkpoint could not be pushed to {}: other machines' pushes won {PUSH_ATTEMPTS} times",
            team.remote
        ),
        vec![],
        "run again",
    ))
}

/// The commit holding `signed` on top of `parent`.
fn checkpoint_commit(git: &Git, signed: &SignedCheckpoint, parent: Option<&str>) -> Result<String> {
    let blob = |bytes: &[u8]| -> Result<String> {
        Ok(String::from_utf8_lossy(
            &git.run_with_input(&["hash-object", "-w", "--stdin"], Some(bytes))?,
        )
        .trim()
        .to_string())
    };
    let listing = format!(
        "100644 blob {}\tcheckpoint\n100644 blob {}\tcheckpoint.sig\n100644 blob {}\tsigner\n",
        blob(signed.text.as_bytes())?,
        blob(signed.signature.as_bytes())?,
        blob(format!("{}\n", signed.principal).as_bytes())?
    );
    let tree = String::from_utf8_lossy(&git.run_with_input(&["mktree"], Some(listing.as_bytes()))?)
        .trim()
        .to_string();
    let parents: Vec<&str> = parent.into_iter().collect();
    git.commit_tree(
        &tree,
        &parents,
        &format!(
            "airlock checkpoint: {} leaves\n\n{}",
            signed.checkpoint.size, signed.text
        ),
    )
}

/// What `promote` checks first: the run's own chain, recomputed, and the
/// database against the checkpoints ([`check`]). Outside team mode,
/// nothing.
pub fn check_before_promote(al: &Airlock, run: &str) -> Result<()> {
    check_run(al, run, &format!("promote run {run}"))
}

/// [`check`], and first `run`'s own chain recomputed: a leaf seals only a
/// chain's head, so an event before it edited without its hash (its
/// principal or time changed) shows only when the chain is recomputed.
/// `approve` and `promote` make it. Outside team mode, nothing.
pub fn check_run(al: &Airlock, run: &str, doing: &str) -> Result<()> {
    if !enabled(al)? {
        return Ok(());
    }
    let doing = doing.to_string();
    // Only a store that chains each run's events on their own (PostgreSQL)
    // has a run's chain to recompute; SQLite's one chain interleaves runs
    // and is covered by its head record and `ledger verify`.
    let Some((_, n, hash)) = al
        .store
        .chain_heads()?
        .into_iter()
        .find(|(chain, _, _)| chain == run)
    else {
        check(al, &doing)?;
        return Ok(());
    };
    // The run's own chain, recomputed.
    let mut prev = airlock_ledger::GENESIS.to_string();
    let mut broken = Vec::new();
    let events = al.store.events(Some(run))?;
    for event in &events {
        if event.prev != prev {
            broken.push(format!(
                "event {} of run {run}: its link to the event before it is broken (an event was removed or reordered)",
                event.seq
            ));
            break;
        }
        if event.computed_hash() != event.hash {
            broken.push(format!(
                "event {} of run {run}: its stored hash does not match its contents (edited)",
                event.seq
            ));
            break;
        }
        prev = event.hash.clone();
    }
    // The events listed under the run must be its chain's, up to the head
    // the chain records: a chain replayed under the run's id (its own
    // events moved to another run) recomputes cleanly on its own.
    if broken.is_empty() && (events.len() as u64 != n || prev != hash) {
        broken.push(format!(
            "run {run} lists {} events ending at {:.16}…, and its chain records its head at event {n} ({:.16}…): its events were replaced or moved to another run",
            events.len(),
            prev,
            hash
        ));
    }
    // The run's record is a copy of where its chain led: a row moved on by
    // hand (made `approved` or `promoted` with no event) names a state no
    // transition of the chain reached. Every transition's event says `to`.
    // Read again once when they differ: another machine may have moved the
    // run on between the two reads.
    let led_to = |events: &[airlock_ledger::Event]| {
        events.iter().rev().find_map(|e| {
            e.data
                .get("to")
                .and_then(|to| to.as_str().map(str::to_string))
        })
    };
    let mut led = led_to(&events);
    let mut recorded = al.store.get(run)?.state;
    if led.as_deref().is_some_and(|led| led != recorded.as_str()) {
        recorded = al.store.get(run)?.state;
        led = led_to(&al.store.events(Some(run))?);
    }
    if !broken.is_empty() {
        return Err(inconsistent(&doing, broken));
    }
    // The log's own findings first: events deleted also leave the record
    // ahead of the chain, and they say more.
    check(al, &doing)?;
    if let Some(led) = led
        && led != recorded.as_str()
    {
        return Err(inconsistent(
            &doing,
            vec![format!(
                "run {run} is recorded as {recorded}, but the last transition of its chain led to {led}: its record was changed outside airlock"
            )],
        ));
    }
    Ok(())
}

/// Before `promote` does anything irreversible: a checkpoint on the remote
/// covers the run's last event (sealed and pushed now if need be), signed
/// under the runners at `tip`, the remote's target tip the promotion
/// merges onto. Outside team mode, nothing.
pub fn require_sealed(al: &mut Airlock, verb: &str, run: &str, tip: &str) -> Result<Option<Seen>> {
    if !enabled(al)? {
        return Ok(None);
    }
    let doing = format!("{verb} run {run}");
    let sealed = seal_at(al, Some(tip)).map_err(|e| match e {
        e if matches!(
            e.code(),
            Code::LogInconsistent | Code::CheckpointInvalid | Code::RunnersMissing
        ) =>
        {
            e
        }
        e => {
            // The seal's own refusal, flattened: what it says, then why.
            let reasons = match &e {
                Error::Refused(inner) => std::iter::once(inner.what.clone())
                    .chain(inner.reasons.iter().cloned())
                    .collect(),
                e => vec![e.to_string()],
            };
            Error::refused(
                Code::LogUnsealed,
                format!("refusing to {doing}: its events could not be sealed"),
                reasons,
                format!("fix what the reason names and {verb} again; nothing was merged or pushed"),
            )
        }
    })?;
    let head = al
        .store
        .chain_heads()?
        .into_iter()
        .find(|(chain, _, _)| chain == run);
    if let Some((_, n, hash)) = head {
        let leaves = al.store.log_leaves()?;
        let covered = leaves
            .iter()
            .take(sealed.checkpoint.size as usize)
            .any(|l| l.chain == run && l.n >= n);
        if !covered {
            return Err(Error::refused(
                Code::LogUnsealed,
                format!("refusing to {doing}: its last event is not sealed"),
                vec![format!(
                    "event {n} of run {run} ({:.16}…) is not covered by the checkpoint of {} leaves",
                    hash, sealed.checkpoint.size
                )],
                format!("{verb} again"),
            ));
        }
    }
    Ok(Some(sealed.checkpoint))
}

/// `airlock ledger verify --remote`: the whole database against the
/// checkpoints.
#[derive(Debug, Clone, Serialize)]
pub struct RemoteAudit {
    /// The remote's checkpoint, verified by signature.
    pub checkpoint: Option<Seen>,
    /// The checkpoint this machine remembered before.
    pub remembered: Option<Seen>,
    pub leaves: u64,
    pub chains: u64,
    /// Chains with events after their last leaf (not sealed yet).
    pub unsealed_chains: u64,
    /// Every problem found, one sentence each.
    pub problems: Vec<String>,
}

impl RemoteAudit {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks every chain (recomputed), every leaf and the root against the
/// remote's checkpoint and the one remembered; names each problem.
pub fn audit_remote(al: &Airlock) -> Result<RemoteAudit> {
    let Some(team) = team(al)? else {
        return Err(Error::refused(
            Code::LogUnsealed,
            "this repository has no `[team] remote` holding a sealed log",
            vec![],
            "set `[team] remote = \"origin\"` in .airlock/workflow.toml",
        ));
    };
    let mine = remembered(al, &team)?;
    let theirs = remote_checkpoint(al, &team, None, "verify the ledger")?.map(|c| c.seen());
    let leaves = al.store.log_leaves()?;
    let mut found = Vec::new();
    let chain = al.store.verify_ledger()?;
    if let Some(bad) = &chain.first_bad {
        found.push(bad.problem.clone());
    }
    found.extend(problems(
        al,
        mine.as_ref(),
        theirs.as_ref(),
        &leaves,
        &notes(al)?,
    )?);
    let heads = al.store.chain_heads()?;
    let mut sealed: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    for leaf in &leaves {
        let n = sealed.entry(leaf.chain.as_str()).or_default();
        *n = (*n).max(leaf.n);
    }
    let unsealed_chains = heads
        .iter()
        .filter(|(c, n, _)| sealed.get(c.as_str()).is_none_or(|s| s < n))
        .count() as u64;
    if found.is_empty()
        && let Some(theirs) = &theirs
        && mine.as_ref().is_none_or(|m| theirs.size > m.size)
    {
        remember(al, &team, theirs)?;
    }
    Ok(RemoteAudit {
        checkpoint: theirs,
        remembered: mine,
        leaves: leaves.len() as u64,
        chains: heads.len() as u64,
        unsealed_chains,
        problems: found,
    })
}
