//! The team's shared remote (issue 20, `[team] remote`): git transport
//! (airlock's hermetic git: no hooks, no global config, refspecs after
//! `--`), the refs airlock keeps there, `submit`'s push of a round, and
//! reading a run started on another machine from it (its round's objects,
//! proof and brief; the proof's key from `.airlock/runners` on the target's
//! tip). Promotion through it is `promote::remote`. Layout (docs/team.md):
//!
//! - `refs/airlock/runs/<run>/r<round>`: a commit whose parent is the
//!   run's head and whose tree holds the proof bundle, its SSH signature
//!   and airlock's copy of the brief (`submit`);
//! - `refs/airlock/promoted/<run>`: a commit whose parent is the
//!   promotion's merge, holding `promotion.json` (`promote`);
//! - `refs/airlock/rolledback/<run>`: a commit whose parent is the revert
//!   of that merge, holding `rollback.json` (`rollback`).

use crate::Airlock;
use crate::error::{Code, Error, Result};
use crate::run::{Run, Submission};

/// The shared remote the workflow names, if the repository is in team mode
/// through `[team] remote`.
pub fn remote_of(workflow: &crate::workflow::Workflow) -> Option<String> {
    workflow.team.remote.clone()
}

/// Where a run's round is on the remote.
pub fn round_ref(run: &str, round: u32) -> String {
    format!("refs/airlock/runs/{run}/r{round}")
}

/// Where [`round_ref`] is fetched to here: beside the run's own
/// `refs/airlock/runs/<run>`, which a ref under it would collide with.
pub(crate) fn fetched_round_ref(run: &str, round: u32) -> String {
    format!("refs/airlock/remote/runs/{run}/r{round}")
}

/// Where a run's promotion is recorded on the remote.
pub fn promoted_ref(run: &str) -> String {
    format!("refs/airlock/promoted/{run}")
}

/// Where a run's rollback is recorded on the remote: a commit whose parent
/// is the revert, holding `rollback.json` (`rollback`). Pushed with the
/// revert in one atomic push, and only where it does not exist yet, so a
/// run is reverted once whoever rolls it back.
pub fn rolledback_ref(run: &str) -> String {
    format!("refs/airlock/rolledback/{run}")
}

/// What a push came to.
#[derive(Debug)]
pub(crate) enum Pushed {
    Done,
    /// A ref was not where `--force-with-lease` expected it.
    Stale(Vec<String>),
    /// The remote refused (a hook, a protection rule).
    Rejected(Vec<String>),
}

fn unreachable(remote: &str, doing: &str, detail: &[u8]) -> Error {
    let detail = String::from_utf8_lossy(detail);
    Error::refused(
        Code::RemoteUnreachable,
        format!("cannot {doing}: the shared remote `{remote}` cannot be reached"),
        detail
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(5)
            .map(str::to_string)
            .collect(),
        "check `[team] remote` in the workflow, the network and your credentials, then run the command again; nothing was recorded",
    )
}

/// `git push --porcelain --atomic` with `leases` (ref, expected old value;
/// empty: must not exist) and `refspecs`, classified.
pub(crate) fn push(
    al: &Airlock,
    remote: &str,
    leases: &[(&str, &str)],
    refspecs: &[String],
    doing: &str,
) -> Result<Pushed> {
    let mut args: Vec<String> = vec!["push".into(), "--porcelain".into(), "--atomic".into()];
    for (name, old) in leases {
        args.push(format!("--force-with-lease={name}:{old}"));
    }
    args.push("--".into());
    args.push(remote.to_string());
    args.extend(refspecs.iter().cloned());
    let (ok, out, err) = al.layout.git().try_run(&args, None)?;
    if ok {
        return Ok(Pushed::Done);
    }
    // Porcelain: `!\tSRC:DST\t[rejected] (stale info)` per refused ref; no
    // such line at all means the remote was never reached.
    let text = String::from_utf8_lossy(&out);
    let refused: Vec<&str> = text.lines().filter(|l| l.starts_with('!')).collect();
    if refused.is_empty() {
        return Err(unreachable(remote, doing, &err));
    }
    let describe = |l: &str| {
        let fields: Vec<&str> = l.split('\t').collect();
        format!(
            "{}: {}",
            fields
                .get(1)
                .and_then(|f| f.split(':').nth(1))
                .unwrap_or("?"),
            fields.get(2).unwrap_or(&"refused")
        )
    };
    let stale = refused
        .iter()
        .any(|l| l.contains("stale info") || l.contains("fetch first"));
    let hook: Vec<String> = String::from_utf8_lossy(&err)
        .lines()
        .filter(|l| l.starts_with("remote:"))
        .take(10)
        .map(|l| l.trim().to_string())
        .collect();
    let mut reasons: Vec<String> = refused.iter().map(|l| describe(l)).collect();
    if stale && !text.contains("remote rejected") {
        return Ok(Pushed::Stale(reasons));
    }
    reasons.extend(hook);
    Ok(Pushed::Rejected(reasons))
}

/// The remote's refs among `names`, as (name, object id).
pub(crate) fn ls_remote(
    al: &Airlock,
    remote: &str,
    names: &[&str],
    doing: &str,
) -> Result<Vec<(String, String)>> {
    let mut args = vec!["ls-remote", "--refs", "--", remote];
    args.extend_from_slice(names);
    let (ok, out, err) = al.layout.git().try_run(&args, None)?;
    if !ok {
        return Err(unreachable(remote, doing, &err));
    }
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(id, name)| names.contains(name) && is_object_id(id))
        .map(|(id, name)| (name.to_string(), id.to_string()))
        .collect())
}

fn is_object_id(id: &str) -> bool {
    matches!(id.len(), 40 | 64) && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Fetches `refspecs` (objects checked as they arrive: the remote is not
/// trusted to send well-formed ones).
pub(crate) fn fetch(al: &Airlock, remote: &str, refspecs: &[String], doing: &str) -> Result<()> {
    let mut args: Vec<String> = [
        "-c",
        "fetch.fsckObjects=true",
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        "--no-recurse-submodules",
        "--",
        remote,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(refspecs.iter().cloned());
    let (ok, _, err) = al.layout.git().try_run(&args, None)?;
    if !ok {
        return Err(unreachable(remote, doing, &err));
    }
    Ok(())
}

/// Where the remote's target branch is fetched to here.
pub(crate) fn tracking_ref(target: &str) -> String {
    format!("refs/airlock/remote/heads/{target}")
}

/// The tip of `target` on the shared remote, fetched now (to
/// [`tracking_ref`]): in team mode the rules files (`.airlock/runners`,
/// `reviewers`, `owners`) are read from this commit, never from the local
/// branch, which a machine may have committed to without pushing (or not
/// pulled). `None`: the remote has no such branch.
pub fn target_tip(al: &Airlock, remote: &str, target: &str, doing: &str) -> Result<Option<String>> {
    let tracking = tracking_ref(target);
    let branch = format!("refs/heads/{target}");
    if let Err(e) = fetch(al, remote, &[format!("+{branch}:{tracking}")], doing) {
        // A fetch of a branch the remote lacks fails like an unreachable
        // remote; ask which it is.
        if ls_remote(al, remote, &[&branch], doing)?.is_empty() {
            let _ = al
                .layout
                .git()
                .try_run(&["update-ref", "-d", &tracking], None);
            return Ok(None);
        }
        return Err(e);
    }
    al.layout.git().ref_value(&tracking)
}

/// A commit whose tree holds `files` (name, bytes), with `parents`.
pub(crate) fn files_commit(
    al: &Airlock,
    files: &[(&str, Vec<u8>)],
    parents: &[&str],
    message: &str,
) -> Result<String> {
    let git = al.layout.git();
    let mut listing = String::new();
    for (name, bytes) in files {
        let id = String::from_utf8_lossy(
            &git.run_with_input(&["hash-object", "-w", "--stdin"], Some(bytes))?,
        )
        .trim()
        .to_string();
        listing.push_str(&format!("100644 blob {id}\t{name}\n"));
    }
    let tree = String::from_utf8_lossy(&git.run_with_input(&["mktree"], Some(listing.as_bytes()))?)
        .trim()
        .to_string();
    git.commit_tree(&tree, parents, message)
}

fn read(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// `submit`'s push: the round's commit (the head as its parent; the proof
/// bundle, its signature and the brief in its tree) to
/// [`round_ref`]. Refused (`remote-unreachable`, `remote-rejected`) before
/// anything is recorded: the run stays checked.
pub fn push_round(
    al: &Airlock,
    remote: &str,
    run: &Run,
    head: &str,
    proof: (&std::path::Path, &std::path::Path, &str),
) -> Result<String> {
    let brief = al.layout.run_dir(&run.id).join("brief.toml");
    let commit = files_commit(
        al,
        &[
            ("brief.toml", read(&brief)?),
            ("proof.intoto.jsonl", read(proof.0)?),
            ("proof.intoto.jsonl.sig", read(proof.1)?),
        ],
        &[head],
        &format!(
            "airlock run {} round {}\n\nhead: {head}\nproof: sha256 {}\n",
            run.id, run.round, proof.2
        ),
    )?;
    let target = round_ref(&run.id, run.round);
    let doing = format!("submit run {}", run.id);
    match push(al, remote, &[], &[format!("+{commit}:{target}")], &doing)? {
        Pushed::Done => Ok(commit),
        Pushed::Stale(reasons) | Pushed::Rejected(reasons) => {
            Err(rejected(remote, &doing, reasons))
        }
    }
}

pub(crate) fn rejected(remote: &str, doing: &str, reasons: Vec<String>) -> Error {
    Error::refused(
        Code::RemoteRejected,
        format!("cannot {doing}: the shared remote `{remote}` refused the push"),
        reasons,
        "fix what the remote names (a hook or a branch protection on the server), then run the command again; nothing was recorded",
    )
}

/// The largest proof bundle, signature or brief read from a run's round.
const MAX_FETCHED: u64 = 64 * 1024 * 1024;

/// A run started on another machine, in a store shared with it: its
/// submitted round's objects (the head, its tree, the proof commit) are
/// fetched from the shared remote when this repository lacks them, so
/// that `show` can diff it. Nothing is done outside team mode or when the
/// objects are here.
pub fn materialise(al: &Airlock, run: &Run) -> Result<()> {
    let Some(submission) = &run.submission else {
        return Ok(());
    };
    let main = al.layout.git();
    if main.object_exists(&format!("{}^{{commit}}", submission.head))? {
        return Ok(());
    }
    let Some(remote) = al.current_workflow().ok().as_ref().and_then(remote_of) else {
        return Ok(());
    };
    fetch(
        al,
        &remote,
        &[format!(
            "+{}:{}",
            round_ref(&run.id, submission.round),
            fetched_round_ref(&run.id, submission.round)
        )],
        &format!("read run {}", run.id),
    )
}

/// Whether `run` was started on another machine: team mode, and its
/// proof is not here or was not signed by this machine's key.
pub(crate) fn started_elsewhere(al: &Airlock, run: &Run) -> Option<String> {
    let submission = run.submission.as_ref()?;
    let remote = al.current_workflow().ok().as_ref().and_then(remote_of)?;
    // Ours: its bundle is here and this machine's key signed it.
    let ours = signed_by(&submission.proof, &al.signing_key().ok()?.public());
    (!ours).then_some(remote)
}

/// The proof of a run started on another machine, fetched from its round
/// on the shared remote into this machine's proofs (`remote/`), and the
/// key that signed it: one of the machines' keys in `.airlock/runners` on
/// the target's tip on the remote (never a file of a run's branch). The
/// brief's copy is put where `brief_of` reads it (it checks the digest the
/// run recorded). `None`: the run is this machine's (or not in team mode).
pub fn fetched_proof(
    al: &Airlock,
    run: &Run,
) -> Result<Option<(std::path::PathBuf, airlock_proof::PublicKey)>> {
    let Some(remote) = started_elsewhere(al, run) else {
        return Ok(None);
    };
    let Some(submission) = &run.submission else {
        return Ok(None);
    };
    let doing = format!("read run {} started on another machine", run.id);
    let round = fetched_round_ref(&run.id, submission.round);
    let tracking = format!("refs/airlock/remote/heads/{}", run.target);
    fetch(
        al,
        &remote,
        &[
            format!("+{}:{round}", round_ref(&run.id, submission.round)),
            format!("+refs/heads/{}:{tracking}", run.target),
        ],
        &doing,
    )?;
    let main = al.layout.git();
    let blob = |name: &str| -> Result<Vec<u8>> {
        // The remote is not trusted to keep them small.
        let size: u64 = main
            .text(&["cat-file", "-s", &format!("{round}:{name}")])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if size > MAX_FETCHED {
            return Err(Error::refused(
                Code::ProofUnverified,
                format!(
                    "refusing run {}: its {name} on the shared remote is {size} bytes, over the {MAX_FETCHED} airlock reads",
                    run.id
                ),
                vec![],
                "ask whoever runs the remote who wrote the run's round",
            ));
        }
        let (ok, out, _) = main.try_run(&["cat-file", "blob", &format!("{round}:{name}")], None)?;
        if !ok {
            return Err(Error::Corrupt(format!(
                "run {}'s round on the shared remote has no {name}",
                run.id
            )));
        }
        Ok(out)
    };
    let dir = al.layout.proofs_dir().join("remote");
    std::fs::create_dir_all(&dir).map_err(|source| Error::Write {
        path: dir.clone(),
        source,
    })?;
    let path = dir.join(format!("{}-r{}.intoto.jsonl", run.id, submission.round));
    let write = |path: &std::path::Path, bytes: &[u8]| {
        std::fs::write(path, bytes).map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })
    };
    write(&path, &blob("proof.intoto.jsonl")?)?;
    write(
        &std::path::PathBuf::from(format!("{}.sig", path.display())),
        &blob("proof.intoto.jsonl.sig")?,
    )?;
    // Only the brief the run started with is kept as its brief here: a
    // round rewritten on the remote must not leave its copy behind (every
    // later look would then find the run's brief changed for good).
    let run_dir = al.layout.run_dir(&run.id);
    let brief = run_dir.join("brief.toml");
    let kept = std::fs::read(&brief).map(|b| crate::layout::sha256_hex(&b));
    if kept.ok().as_deref() != Some(run.brief_digest.as_str()) {
        let copy = blob("brief.toml")?;
        let digest = crate::layout::sha256_hex(&copy);
        if digest != run.brief_digest {
            return Err(Error::refused(
                Code::BriefChanged,
                format!(
                    "refusing run {}: its brief on the shared remote `{remote}` is not the one it started with",
                    run.id
                ),
                vec![format!(
                    "brief.toml of {} has sha256 {digest}; the run recorded {} at start",
                    round_ref(&run.id, submission.round),
                    run.brief_digest
                )],
                "ask whoever runs the remote who rewrote the run's round; nothing was recorded",
            ));
        }
        std::fs::create_dir_all(&run_dir).map_err(|source| Error::Write {
            path: run_dir.clone(),
            source,
        })?;
        write(&brief, &copy)?;
    }
    let runners = main
        .try_run(
            &["cat-file", "blob", &format!("{tracking}:.airlock/runners")],
            None,
        )?
        .1;
    let keys = runner_keys(
        &String::from_utf8_lossy(&runners),
        crate::run::unix_now(),
    )
    .map_err(|e| {
        Error::refused(
            Code::ReviewersInvalid,
            format!(
                "refusing run {}: .airlock/runners on {} of `{remote}` is invalid at line {}: {}",
                run.id, run.target, e.line, e.problem
            ),
            vec![],
            format!("{}; fix the file on the target branch", e.hint),
        )
    })?;
    for key in &keys {
        if signed_by(&path, key) {
            return Ok(Some((path, key.clone())));
        }
    }
    Err(Error::refused(
        Code::ProofUnverified,
        format!(
            "refusing run {}: its proof was signed on another machine by a key not in .airlock/runners",
            run.id
        ),
        vec![format!(
            "{} key(s) in .airlock/runners on {} of `{remote}`; none verifies the proof",
            keys.len(),
            run.target
        )],
        "add the machine's key (`airlock key` prints the line) to .airlock/runners on the target branch",
    ))
}

/// The machine keys `.airlock/runners` lets sign a proof at `now`, read
/// with the parser the approvals and the sealed log use (validity dates and
/// `namespaces=` honoured). A certificate authority's line admits none: a
/// machine signs proofs with its own airlock key, never a certificate.
fn runner_keys(
    text: &str,
    now: u64,
) -> std::result::Result<Vec<airlock_proof::PublicKey>, airlock_proof::signers::SignersError> {
    let signers = airlock_proof::signers::AllowedSigners::parse(text)?;
    Ok(signers
        .entries
        .iter()
        .filter(|e| !e.cert_authority)
        .filter(|e| {
            signers
                .find_principals(e.key.key_data(), airlock_proof::SSH_NAMESPACE, now)
                .is_ok()
        })
        .filter_map(|e| airlock_proof::PublicKey::from_openssh(&e.key.to_openssh().ok()?).ok())
        .collect())
}

/// The check a run started on another machine gets instead of its
/// worktree's (which is on that machine): its submitted commit, fetched
/// from the remote, has the tree the proof names. `None`: the run is this
/// machine's.
pub fn checked_without_worktree(
    al: &Airlock,
    run: &Run,
    submission: &Submission,
) -> Result<Option<()>> {
    if started_elsewhere(al, run).is_none() {
        return Ok(None);
    }
    materialise(al, run)?;
    let main = al.layout.git();
    let tree = main.tree_of(&submission.head).unwrap_or_default();
    if tree == submission.tree {
        return Ok(Some(()));
    }
    Err(Error::refused(
        Code::WorktreeChanged,
        format!(
            "run {}'s submitted commit on the shared remote does not have the tree its proof names",
            run.id
        ),
        vec![format!(
            "commit {} has tree {tree}; the proof says {}",
            submission.head, submission.tree
        )],
        format!(
            "redirect the run (`airlock redirect {} --reason …`) so it is submitted again",
            run.id
        ),
    ))
}

/// Whether the bundle at `path` (and its `.sig`) is signed by `key`.
fn signed_by(path: &std::path::Path, key: &airlock_proof::PublicKey) -> bool {
    let (Ok(jsonl), Ok(sig)) = (
        std::fs::read(path),
        std::fs::read_to_string(format!("{}.sig", path.display())),
    ) else {
        return false;
    };
    airlock_proof::verify_bundle(key, &jsonl, Some(&sig)).is_ok()
}

/// What the shared remote says of a push killed after its intent
/// (`promote`'s or `rollback`'s), by the record ref the push would have
/// made.
pub(crate) enum Interrupted {
    /// No record: the push did not happen.
    NotPushed,
    /// A record of another push (another machine's) stands there.
    ByAnother,
    /// The record this machine made: the push happened.
    Pushed,
}

/// Reads `record_ref` on the intent's remote and ends the killed
/// operation's lease whatever it says; the first two outcomes are logged
/// as a `recover` event (`operation`, and `by_another` as its outcome).
/// `None` when the remote cannot be reached: the intent stays.
pub(crate) fn interrupted(
    al: &mut Airlock,
    intent: &crate::store::Intent,
    record_ref: &str,
    operation: &str,
    by_another: &str,
) -> Result<Option<Interrupted>> {
    let remote = intent.data["remote"].as_str().unwrap_or_default();
    let record = intent.data["record"].as_str().unwrap_or_default();
    let doing = format!("recover an interrupted `airlock {operation}`");
    let Ok(seen) = ls_remote(al, remote, &[record_ref], &doing) else {
        return Ok(None);
    };
    if let (Some(target), Some(token)) = (
        intent.data["lease"]["target"].as_str(),
        intent.data["lease"]["token"].as_str(),
    ) {
        al.store.release_lease(target, token)?;
    }
    let (outcome, said) = match seen.first().map(|(_, id)| id.as_str()) {
        None => (Interrupted::NotPushed, "not pushed"),
        Some(id) if id != record => (Interrupted::ByAnother, by_another),
        Some(_) => return Ok(Some(Interrupted::Pushed)),
    };
    al.store.event(
        Some(&intent.run),
        "recover",
        serde_json::json!({"operation": operation, "remote": remote, "outcome": said}),
    )?;
    Ok(Some(outcome))
}

#[cfg(test)]
mod tests {
    use super::runner_keys;

    #[test]
    fn runner_keys_honour_validity_dates_namespaces_and_refuse_certificate_authorities() {
        let [current, expired, elsewhere, authority] =
            std::array::from_fn(|_| airlock_proof::SigningKey::generate().public());
        let text = format!(
            "ana@example.com {}\n\
             old@example.com valid-before=\"20200101Z\" {}\n\
             ci@example.com namespaces=\"airlock-checkpoint\" {}\n\
             *@example.com cert-authority {}\n",
            current.to_openssh(),
            expired.to_openssh(),
            elsewhere.to_openssh(),
            authority.to_openssh()
        );
        let keys = runner_keys(&text, 1_800_000_000).unwrap();
        assert_eq!(keys, vec![current]);
        // A malformed line is named, not skipped.
        let err = runner_keys("ana@example.com ssh-ed25519 !!!\n", 0).unwrap_err();
        assert_eq!(err.line, 1);
    }
}
