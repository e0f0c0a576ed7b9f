//! Signed approvals in team mode (issue 20, "Who decides").
//!
//! When the target branch's tip holds `.airlock/reviewers` (OpenSSH `allowed_signers`), an
//! approval is a DSSE envelope of an in-toto Statement v1 (subjects: the proof bundle's
//! `sha256` and the run's head `gitCommit`; predicate `https://airlock.dev/approval/v1`),
//! signed over its PAE bytes by the reviewer's SSH key through `ssh-keygen -Y sign -n
//! airlock-approval` (so ssh-agent and hardware keys work). The DSSE signature's `sig` is
//! the base64 of the armored SSHSIG, so `ssh-keygen -Y verify` checks the PAE bytes alone.
//!
//! The rules (`reviewers`, `owners`, `runners`) are always read from the target's tip
//! commit, never from a worktree: a run that changes them is judged by the rules before it.
//! The approver is never an author: not whoever started, submitted or redirected the run
//! (the `who` of those events), not the owner (per `runners`) of the key that signed the
//! proof, nor that key itself. `.airlock/owners` says how many distinct approvals each
//! changed path needs; until all are met the run stays in review.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use airlock_model::owners::Owners;
pub use airlock_model::owners::Requirement;
use airlock_proof::signers::{AllowedSigners, SignatureRefused, SignerDenied, SshIdentity};
use airlock_proof::{Envelope, PAYLOAD_TYPE, STATEMENT_TYPE, Statement, Subject, pae};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::{Value, json};
use ssh_key::HashAlg;

use crate::Airlock;
use crate::error::{Code, Error, Result};
use crate::guards::short;
use crate::run::{Run, Submission};

pub const REVIEWERS_FILE: &str = ".airlock/reviewers";
pub const OWNERS_FILE: &str = ".airlock/owners";
pub const RUNNERS_FILE: &str = ".airlock/runners";
/// `predicateType` of an approval statement.
pub const APPROVAL_PREDICATE: &str = "https://airlock.dev/approval/v1";
/// SSHSIG namespace of approvals.
pub const NAMESPACE: &str = airlock_proof::APPROVAL_NAMESPACE;
/// SSHSIG namespace the runners' keys sign proofs in.
const PROOF_NAMESPACE: &str = airlock_proof::SSH_NAMESPACE;
/// The ledger event of a signed approval that leaves the run in review.
pub const APPROVAL_EVENT: &str = "approval";
/// An envelope larger than this is not an approval (one is about 2 KiB).
const MAX_ENVELOPE: usize = 64 * 1024;

/// The rules in force: read from the target's tip.
#[derive(Debug, Clone)]
pub struct Rules {
    pub target: String,
    pub tip: String,
    /// The reviewers file as committed (written beside exported approvals).
    pub reviewers_text: String,
    pub reviewers: AllowedSigners,
    pub owners: Owners,
    pub runners: Option<AllowedSigners>,
}

/// The rules at the tip of `target`, or `None` when it holds no `.airlock/reviewers` (no
/// signed approvals: one engineer's airlock, unchanged). With `[team] remote` the tip is
/// the remote's, fetched now: a commit on this checkout's branch that was never pushed
/// (a machine listing its own key) decides nothing.
pub fn rules_at(al: &Airlock, target: &str) -> Result<Option<Rules>> {
    match rules_tip(al, target)? {
        Some(tip) => rules_at_tip(al, target, &tip),
        None => Ok(None),
    }
}

/// The commit the rules of `target` are read from: the shared remote's tip of it in team
/// mode through `[team] remote` (fetched now), else the local branch's.
pub fn rules_tip(al: &Airlock, target: &str) -> Result<Option<String>> {
    if let Some(remote) = al
        .current_workflow()
        .ok()
        .as_ref()
        .and_then(crate::remote::remote_of)
    {
        return crate::remote::target_tip(
            al,
            &remote,
            target,
            &format!("read the rules on {target}"),
        );
    }
    al.layout.git().ref_value(&format!("refs/heads/{target}"))
}

/// [`rules_at`] at a tip the caller already read (promotion: the tip it merges onto).
pub fn rules_at_tip(al: &Airlock, target: &str, tip: &str) -> Result<Option<Rules>> {
    let git = al.layout.git();
    let Some(reviewers_text) = read_at(&git, target, tip, REVIEWERS_FILE)? else {
        return Ok(None);
    };
    let reviewers = AllowedSigners::parse(&reviewers_text).map_err(|e| {
        invalid_rules(
            Code::ReviewersInvalid,
            REVIEWERS_FILE,
            target,
            tip,
            e.line,
            &format!("{}; {}", e.problem, e.hint),
        )
    })?;
    let owners = match read_at(&git, target, tip, OWNERS_FILE)? {
        Some(text) => Owners::parse(&text).map_err(|e| {
            invalid_rules(
                Code::OwnersInvalid,
                OWNERS_FILE,
                target,
                tip,
                e.line,
                &format!("{}; {}", e.problem, e.hint),
            )
        })?,
        None => Owners::default(),
    };
    let runners = match read_at(&git, target, tip, RUNNERS_FILE)? {
        Some(text) => Some(AllowedSigners::parse(&text).map_err(|e| {
            invalid_rules(
                Code::ReviewersInvalid,
                RUNNERS_FILE,
                target,
                tip,
                e.line,
                &format!("{}; {}", e.problem, e.hint),
            )
        })?),
        None => None,
    };
    Ok(Some(Rules {
        target: target.to_string(),
        tip: tip.to_string(),
        reviewers_text,
        reviewers,
        owners,
        runners,
    }))
}

use crate::rules_file::{invalid_rules, read_at};

/// The built-in protection of the rules files: a change to `reviewers`, `owners` or
/// `runners` that no `owners` rule names needs two distinct reviewers' approvals when
/// `reviewers` lists two or more principals (else one): one reviewer alone cannot change
/// who decides.
fn rules_files_protection(
    rules: &Rules,
    paths: &[String],
    approvers: &[String],
) -> Option<Requirement> {
    let changed: Vec<String> = paths
        .iter()
        .filter(|p| [REVIEWERS_FILE, OWNERS_FILE, RUNNERS_FILE].contains(&p.as_str()))
        .filter(|p| rules.owners.rule_for(p).is_none())
        .cloned()
        .collect();
    if changed.is_empty() {
        return None;
    }
    let mut listed: Vec<&str> = rules
        .reviewers
        .entries
        .iter()
        .flat_map(|e| e.principals.iter().map(String::as_str))
        .collect();
    listed.sort_unstable();
    listed.dedup();
    let mut approved_by: Vec<String> = Vec::new();
    for a in approvers {
        if !approved_by.contains(a) {
            approved_by.push(a.clone());
        }
    }
    Some(Requirement {
        line: None,
        pattern: ".airlock/{reviewers,owners,runners} (built in)".into(),
        owners: Vec::new(),
        needed: if listed.len() >= 2 { 2 } else { 1 },
        approved_by,
        path_count: changed.len(),
        paths: changed,
    })
}

/// The statement an approval signs.
pub fn statement(
    run: &Run,
    submission: &Submission,
    principal: &str,
    reason: Option<&str>,
    at: &str,
    checkpoint: Option<&crate::seal::Seen>,
) -> Statement {
    Statement::new(
        vec![
            Subject {
                name: format!("airlock-proof:{}-r{}", run.id, submission.round),
                digest: BTreeMap::from([("sha256".to_string(), submission.digest.clone())]),
            },
            Subject {
                name: format!("airlock-run:{}", run.id),
                digest: BTreeMap::from([("gitCommit".to_string(), submission.head.clone())]),
            },
        ],
        APPROVAL_PREDICATE,
        json!({
            "run": run.id,
            "round": submission.round,
            "target": run.target,
            "principal": principal,
            "reason": reason,
            "at": at,
            "checkpoint": checkpoint,
        }),
    )
}

/// A signed approval that verified.
#[derive(Debug, Clone, Serialize)]
pub struct VerifiedApproval {
    pub principal: String,
    /// `SHA256:…` of the reviewer's key.
    pub key: String,
    /// The `.airlock/reviewers` line that admitted it.
    pub line: usize,
    pub at: String,
    /// The sealed log's checkpoint the reviewer's machine had verified when
    /// signing (`None` outside team mode or before its first).
    pub checkpoint: Option<SeenCheckpoint>,
    /// When an OpenSSH certificate signed: every principal it names (one person's names,
    /// so the approval is an author's if any of them is an author).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificate_principals: Vec<String>,
}

/// The checkpoint an approval records, as far as shown: its size and the
/// commit of `refs/airlock/log` that carried it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SeenCheckpoint {
    pub size: u64,
    pub commit: String,
}

impl SeenCheckpoint {
    /// From a signed statement's predicate: anything but a size and a hex
    /// commit id is not shown (the reviewer signed it, but it is still text
    /// from another machine).
    fn from_predicate(p: &Value) -> Option<SeenCheckpoint> {
        let size = p.get("size")?.as_u64()?;
        let commit = p.get("commit")?.as_str()?;
        let hex = (7..=64).contains(&commit.len()) && commit.bytes().all(|b| b.is_ascii_hexdigit());
        hex.then(|| SeenCheckpoint {
            size,
            commit: commit.to_string(),
        })
    }
}

/// Checks an approval envelope against this run's current proof and the rules: the
/// statement is about this proof and head (not another run's, not an earlier round's), its
/// SSH signature over the PAE verifies, and the key may sign as the principal it names.
pub fn verify(
    rules: &Rules,
    run: &Run,
    submission: &Submission,
    env: &Envelope,
    now: u64,
) -> Result<VerifiedApproval> {
    let forged = |why: String| {
        Error::refused(
            Code::ApprovalInvalid,
            format!("an approval of run {} does not verify", run.id),
            vec![why],
            format!(
                "approve again with your own key: `airlock approve {} --key PATH`",
                run.id
            ),
        )
    };
    if env.payload_type != PAYLOAD_TYPE {
        return Err(forged(format!(
            "its payloadType is {:?}, not {PAYLOAD_TYPE:?}",
            env.payload_type
        )));
    }
    if env.payload.len() > MAX_ENVELOPE {
        return Err(forged("its payload is too large to be an approval".into()));
    }
    let payload = STANDARD
        .decode(env.payload.as_bytes())
        .map_err(|e| forged(format!("its payload is not base64 ({e})")))?;
    let st: Statement = serde_json::from_slice(&payload)
        .map_err(|e| forged(format!("its payload is not an in-toto statement ({e})")))?;
    if st.type_ != STATEMENT_TYPE || st.predicate_type != APPROVAL_PREDICATE {
        return Err(forged(format!(
            "it is a {} statement, not an approval",
            st.predicate_type
        )));
    }
    let names = |kind: &str, value: &str| {
        st.subject
            .iter()
            .any(|s| s.digest.get(kind).map(String::as_str) == Some(value))
    };
    let p = &st.predicate;
    let approved_run = p["run"].as_str().unwrap_or_default();
    let round = p["round"].as_u64().unwrap_or_default();
    if approved_run != run.id || round != u64::from(submission.round) {
        return Err(forged(format!(
            "it approves run {approved_run} round {round}, not run {} round {} (an approval copied from another run or round)",
            run.id, submission.round
        )));
    }
    if !names("sha256", &submission.digest) || !names("gitCommit", &submission.head) {
        return Err(forged(format!(
            "it is not about proof {} and commit {} (an approval of something else)",
            short(&submission.digest),
            short(&submission.head)
        )));
    }
    let principal = p["principal"].as_str().unwrap_or_default().to_string();
    let [signature] = &env.signatures[..] else {
        return Err(forged(format!(
            "it has {} signatures; an approval has exactly one",
            env.signatures.len()
        )));
    };
    let armored = STANDARD
        .decode(signature.sig.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| forged("its signature is not base64 of an armored SSH signature".into()))?;
    let message = pae(&env.payload_type, &payload);
    match rules
        .reviewers
        .verify(&principal, NAMESPACE, &message, &armored, now)
    {
        Ok(signer) => Ok(VerifiedApproval {
            principal,
            key: signer.fingerprint,
            line: signer.line,
            at: p["at"].as_str().unwrap_or_default().to_string(),
            checkpoint: SeenCheckpoint::from_predicate(&p["checkpoint"]),
            certificate_principals: signer.certificate.map(|c| c.principals).unwrap_or_default(),
        }),
        Err(SignatureRefused::Denied(denied)) => Err(denied_error(rules, run, &principal, &denied)),
        Err(other) => Err(forged(format!(
            "{other} (the statement was edited after it was signed)"
        ))),
    }
}

fn denied_error(rules: &Rules, run: &Run, principal: &str, denied: &SignerDenied) -> Error {
    let code = if denied.is_expiry() {
        Code::ReviewerKeyExpired
    } else {
        Code::ReviewerUnknown
    };
    Error::refused(
        code,
        format!(
            "{principal} may not approve run {}: {REVIEWERS_FILE} on {} does not admit the key",
            run.id, rules.target
        ),
        vec![format!(
            "{denied} in {REVIEWERS_FILE} at {}",
            short(&rules.tip)
        )],
        format!(
            "approve with a key listed for {principal} in {REVIEWERS_FILE} on {} (namespace {NAMESPACE}, valid now); changing that file takes a commit on {} approved under the rules before it",
            rules.target, rules.target
        ),
    )
}

/// Who may not approve a run, and why.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Authors {
    /// Principal patterns, each with what made them an author.
    pub principals: Vec<(String, String)>,
    /// `SHA256:…` of the keys that signed the run's proofs.
    pub proof_keys: Vec<String>,
    /// `SHA256:…` of reviewer keys that may sign as an author (a line of `reviewers` whose
    /// patterns name an author: the author's key listed again under another name, or a
    /// wildcard line), each with why. Such a key's approval is the author's, whatever
    /// principal it claims.
    pub author_keys: Vec<(String, String)>,
    /// `SHA256:…` of the key that signed the current proof when `.airlock/runners` exists
    /// and does not list it: whoever owns that machine is unknown, so nobody can be told
    /// apart from the author (`AIRLOCK_PRINCIPAL` at `start` is a claim, not a proof).
    pub unknown_runner: Option<String>,
}

/// A principal as compared for authorship: e-mail addresses differ in case only in
/// spelling, and surrounding spaces are not part of a name.
fn author_form(principal: &str) -> String {
    principal.trim().to_lowercase()
}

/// The run's authors: the principals of its `start`, `submit` and `redirect` events, the
/// owners (per `runners`) of the keys that signed its proofs, and those keys.
pub fn authors(al: &Airlock, run: &Run, rules: &Rules) -> Result<Authors> {
    let mut out = Authors::default();
    for e in al.store.events(Some(&run.id))? {
        let did = match e.kind.as_str() {
            "start" => "started the run",
            "submit" => "submitted a round",
            "redirect" => "redirected the run",
            _ => continue,
        };
        if let Some(p) = e.data["who"]["principal"].as_str() {
            out.principals.push((p.to_string(), did.to_string()));
        }
        if e.kind == "submit"
            && let Some(m) = e.data["who"]["machine"].as_str()
            && !out.proof_keys.iter().any(|k| k == m)
        {
            out.proof_keys.push(m.to_string());
        }
    }
    if let Some(submission) = &run.submission {
        let sig = PathBuf::from(format!("{}.sig", submission.proof.display()));
        if let Ok(text) = std::fs::read_to_string(&sig)
            && let Ok(sig) = ssh_key::SshSig::from_pem(text.trim())
        {
            let key = sig.public_key();
            let fp = key.fingerprint(HashAlg::Sha256).to_string();
            if let Some(runners) = &rules.runners
                && !runners
                    .entries
                    .iter()
                    .any(|e| !e.cert_authority && e.key.key_data() == key)
            {
                out.unknown_runner = Some(fp.clone());
            }
            if !out.proof_keys.contains(&fp) {
                out.proof_keys.push(fp);
            }
            if let Some(runners) = &rules.runners {
                for entry in runners.entries.iter().filter(|e| e.key.key_data() == key) {
                    for p in &entry.principals {
                        out.principals.push((
                            p.clone(),
                            format!(
                                "owns the machine key that signed the proof ({RUNNERS_FILE}:{})",
                                entry.line
                            ),
                        ));
                    }
                }
            }
        }
    }
    if let Some(runners) = &rules.runners {
        // A runner key named by fingerprint (the submit event's machine) counts too.
        for entry in &runners.entries {
            let fp = entry.key.fingerprint(HashAlg::Sha256).to_string();
            if out.proof_keys.contains(&fp) {
                for p in &entry.principals {
                    let why = format!(
                        "owns the machine key that signed the proof ({RUNNERS_FILE}:{})",
                        entry.line
                    );
                    if !out.principals.iter().any(|(q, w)| q == p && *w == why) {
                        out.principals.push((p.clone(), why));
                    }
                }
            }
        }
    }
    let _ = PROOF_NAMESPACE;
    for entry in rules.reviewers.entries.iter().filter(|e| !e.cert_authority) {
        let patterns: Vec<String> = entry.principals.iter().map(|p| author_form(p)).collect();
        let named = out
            .principals
            .iter()
            .find(|(p, _)| airlock_proof::signers::match_pattern_list(&author_form(p), &patterns));
        if let Some((author, did)) = named {
            let fp = entry.key.fingerprint(HashAlg::Sha256).to_string();
            if !out.author_keys.iter().any(|(k, _)| *k == fp) {
                out.author_keys.push((
                    fp,
                    format!(
                        "signs with a key {REVIEWERS_FILE}:{} lists for {} ({author}, who {did})",
                        entry.line,
                        entry.principals.join(",")
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// Refuses an approver who is an author of the run.
pub fn require_not_author(run: &Run, authors: &Authors, approval: &VerifiedApproval) -> Result<()> {
    if let Some(key) = &authors.unknown_runner {
        return Err(author_refusal(
            run,
            &approval.principal,
            &format!(
                "cannot be told apart from its author: the proof was signed by {key}, a machine key {RUNNERS_FILE} does not list, so whose run it is is unknown (add the machine's `airlock key` line to {RUNNERS_FILE} and submit again from it)"
            ),
        ));
    }
    let approver = author_form(&approval.principal);
    for (pattern, why) in &authors.principals {
        if airlock_proof::signers::match_pattern_list(&approver, &[author_form(pattern)]) {
            return Err(author_refusal(run, &approval.principal, why));
        }
        // A certificate is one person's: any name it carries that is an author's makes
        // the approval the author's.
        if let Some(name) = approval.certificate_principals.iter().find(|name| {
            airlock_proof::signers::match_pattern_list(&author_form(name), &[author_form(pattern)])
        }) {
            return Err(author_refusal(
                run,
                &approval.principal,
                &format!("signs with a certificate that also names {name}, who {why}"),
            ));
        }
    }
    if let Some((_, why)) = authors.author_keys.iter().find(|(k, _)| *k == approval.key) {
        return Err(author_refusal(run, &approval.principal, why));
    }
    if authors.proof_keys.contains(&approval.key) {
        return Err(author_refusal(
            run,
            &approval.principal,
            &format!("signs with {}, the key that signed the proof", approval.key),
        ));
    }
    Ok(())
}

/// One key is one reviewer: a key listed under several principals (or a wildcard) that
/// signed as each of them counts once, for the first principal it signed as.
fn require_new_key(counted: &[VerifiedApproval], v: VerifiedApproval) -> Result<VerifiedApproval> {
    match counted
        .iter()
        .find(|a| a.key == v.key && a.principal != v.principal)
    {
        Some(first) => Err(Error::refused(
            Code::ApprovalsMissing,
            format!(
                "the approval as {} does not count: its key already approved as {}",
                v.principal, first.principal
            ),
            vec![format!(
                "{} signed both; one key is one reviewer, whatever names {REVIEWERS_FILE} lists it under",
                v.key
            )],
            "ask another reviewer, with their own key, to approve",
        )),
        None => Ok(v),
    }
}

fn author_refusal(run: &Run, principal: &str, why: &str) -> Error {
    Error::refused(
        Code::ApproverIsAuthor,
        format!(
            "{principal} may not approve run {}: they are one of its authors",
            run.id
        ),
        vec![format!("{principal} {why}")],
        "ask a reviewer who took no part in the run to approve it",
    )
}

/// The approval envelopes recorded for the run's current proof, with their events' seq.
pub fn recorded(al: &Airlock, run: &Run, submission: &Submission) -> Result<Vec<(u64, Envelope)>> {
    let mut out = Vec::new();
    for e in al.store.events(Some(&run.id))? {
        if (e.kind == APPROVAL_EVENT || e.kind == "approve")
            && e.data["digest"].as_str() == Some(submission.digest.as_str())
            && !e.data["envelope"].is_null()
        {
            let env: Envelope =
                serde_json::from_value(e.data["envelope"].clone()).map_err(|err| {
                    Error::Corrupt(format!(
                        "the approval in ledger event {} is not a DSSE envelope: {err}",
                        e.seq
                    ))
                })?;
            out.push((e.seq, env));
        }
    }
    Ok(out)
}

/// Where a run's signed approvals stand under the rules.
#[derive(Debug, Clone, Serialize)]
pub struct Standing {
    pub target: String,
    pub tip: String,
    /// Approvals that verified and count.
    pub approvals: Vec<VerifiedApproval>,
    /// Approvals that no longer count, with why (seq of their event, message).
    pub refused: Vec<(u64, String, Code)>,
    /// Per rule governing a changed path.
    pub requirements: Vec<Requirement>,
}

impl Standing {
    pub fn met(&self) -> bool {
        self.requirements.iter().all(Requirement::met)
    }

    /// What is missing, one line a rule.
    pub fn missing(&self) -> Vec<String> {
        self.requirements
            .iter()
            .filter(|r| !r.met())
            .map(Requirement::describe)
            .collect()
    }
}

/// Every recorded approval of the current proof checked again under `rules`, and what the
/// changed paths need.
pub fn standing(
    al: &Airlock,
    run: &Run,
    submission: &Submission,
    rules: &Rules,
    extra: Option<&VerifiedApproval>,
) -> Result<Standing> {
    let now = unix_now();
    let authors = authors(al, run, rules)?;
    let mut approvals: Vec<VerifiedApproval> = Vec::new();
    let mut refused = Vec::new();
    for (seq, env) in recorded(al, run, submission)? {
        match verify(rules, run, submission, &env, now)
            .and_then(|v| require_not_author(run, &authors, &v).map(|()| v))
            .and_then(|v| require_new_key(&approvals, v))
        {
            Ok(v) => approvals.push(v),
            Err(e) => refused.push((seq, one_line(&e), e.code())),
        }
    }
    if let Some(v) = extra {
        approvals.push(require_new_key(&approvals, v.clone())?);
    }
    let principals: Vec<String> = approvals.iter().map(|a| a.principal.clone()).collect();
    let paths: Vec<String> = crate::git::diff_tree(&al.layout.git(), &run.base, &submission.head)?
        .into_iter()
        .map(|c| c.path)
        .collect();
    let mut requirements = rules.owners.requirements(&paths, &principals);
    requirements.extend(rules_files_protection(rules, &paths, &principals));
    Ok(Standing {
        target: rules.target.clone(),
        tip: rules.tip.clone(),
        approvals,
        refused,
        requirements,
    })
}

fn one_line(e: &Error) -> String {
    match e {
        Error::Refused(r) if !r.reasons.is_empty() => {
            format!("{}: {}", r.what, r.reasons.join("; "))
        }
        other => other.to_string(),
    }
}

/// `promote`'s check: every recorded approval verifies (a forged one refuses outright),
/// and the ones that still count meet the owners' rules at the tip merged onto.
pub fn require_approved(
    al: &Airlock,
    run: &Run,
    submission: &Submission,
    rules: &Rules,
) -> Result<Standing> {
    let standing = standing(al, run, submission, rules, None)?;
    if let Some((seq, why, _)) = standing
        .refused
        .iter()
        .find(|(_, _, code)| *code == Code::ApprovalInvalid)
    {
        return Err(Error::refused(
            Code::ApprovalInvalid,
            format!(
                "refusing to promote run {}: a recorded approval does not verify",
                run.id
            ),
            vec![format!("ledger event {seq}: {why}")],
            "the ledger holds an approval no reviewer signed; run `airlock ledger verify` and approve again",
        ));
    }
    if !standing.met() {
        let mut reasons = standing.missing();
        reasons.extend(
            standing.refused.iter().map(|(seq, why, _)| {
                format!("the approval of event {seq} no longer counts: {why}")
            }),
        );
        return Err(Error::refused(
            Code::ApprovalsMissing,
            format!(
                "refusing to promote run {}: it lacks the approvals {OWNERS_FILE} on {} ({}) requires",
                run.id,
                rules.target,
                short(&rules.tip)
            ),
            reasons,
            format!(
                "ask the owners named to run `airlock approve {} --key PATH`",
                run.id
            ),
        ));
    }
    Ok(standing)
}

/// The reviewer's public key for the key file given: the file itself when it is a public
/// key (the private half is then in ssh-agent), else `FILE.pub`, else derived by ssh-keygen.
pub fn public_key_of(key: &Path) -> Result<ssh_key::PublicKey> {
    let unusable = |why: String| {
        Error::refused(
            Code::ApprovalUnsigned,
            format!("cannot sign the approval with {}", key.display()),
            vec![why],
            "give an SSH key listed in .airlock/reviewers: `--key ~/.ssh/id_ed25519` (or its .pub with the key in ssh-agent)",
        )
    };
    let text = std::fs::read_to_string(key).map_err(|e| unusable(format!("{e}")))?;
    if let Ok(public) = ssh_key::PublicKey::from_openssh(text.trim()) {
        return Ok(public);
    }
    let beside = PathBuf::from(format!("{}.pub", key.display()));
    if let Ok(text) = std::fs::read_to_string(&beside)
        && let Ok(public) = ssh_key::PublicKey::from_openssh(text.trim())
    {
        return Ok(public);
    }
    let out = Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(key)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| unusable(format!("cannot run ssh-keygen: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    ssh_key::PublicKey::from_openssh(text.trim()).map_err(|_| {
        unusable(format!(
            "it is not an SSH key ssh-keygen can read without a passphrase prompt ({})",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    })
}

/// What `--key PATH` signs with: the public key or certificate in PATH (a `.pub` or
/// `-cert.pub` file, its private half beside it or in ssh-agent), else the public half of
/// the private key PATH.
pub fn signing_identity(key: &Path) -> Result<SshIdentity> {
    if let Ok(text) = std::fs::read_to_string(key)
        && let Some(identity) = SshIdentity::from_openssh(&text)
    {
        return Ok(identity);
    }
    Ok(SshIdentity::Key(public_key_of(key)?.key_data().clone()))
}

/// `KEY-cert.pub` beside the key file (or beside `KEY` for `KEY.pub`), when it certifies
/// that very key.
fn certificate_beside(key: &Path, identity: &SshIdentity) -> Option<(PathBuf, SshIdentity)> {
    let text = key.to_str()?;
    let base = text.strip_suffix(".pub").unwrap_or(text);
    let path = PathBuf::from(format!("{base}-cert.pub"));
    let cert = SshIdentity::from_openssh(&std::fs::read_to_string(&path).ok()?)?;
    (matches!(cert, SshIdentity::Certificate(_)) && cert.key_data() == identity.key_data())
        .then_some((path, cert))
}

/// Signs `message` with `ssh-keygen -Y sign -n airlock-approval -f KEY`: the key file, or a
/// public key whose private half ssh-agent holds (`SSH_AUTH_SOCK`).
pub fn ssh_sign(key: &Path, message: &[u8]) -> Result<String> {
    let dir = tempfile::tempdir()
        .map_err(|e| Error::Environment(format!("cannot make a temporary directory: {e}")))?;
    let file = dir.path().join("approval.pae");
    std::fs::write(&file, message).map_err(|source| Error::Write {
        path: file.clone(),
        source,
    })?;
    let out = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", NAMESPACE, "-f"])
        .arg(key)
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Environment(format!("cannot run ssh-keygen: {e}")))?;
    let sig = dir.path().join("approval.pae.sig");
    if !out.status.success() {
        return Err(Error::refused(
            Code::ApprovalUnsigned,
            format!(
                "ssh-keygen could not sign the approval with {}",
                key.display()
            ),
            vec![String::from_utf8_lossy(&out.stderr).trim().to_string()],
            "give a private key file without a passphrase prompt, or a public key whose private half is in ssh-agent (`ssh-add -l` lists them)",
        ));
    }
    std::fs::read_to_string(&sig).map_err(|source| Error::Read { path: sig, source })
}

/// The key `approve` signs with when `--key` is not given: git's `user.signingkey` when
/// `gpg.format` is `ssh`.
pub fn default_key(al: &Airlock) -> Option<PathBuf> {
    crate::git::ssh_signing_key(&al.layout.git_dir, &al.layout.key_dir)
}

/// A signed approval, made and checked, ready to record.
pub struct Signed {
    pub envelope: Envelope,
    pub approval: VerifiedApproval,
    pub standing: Standing,
}

/// `approve` in team mode: builds the statement, refuses an approver the rules do not admit
/// or who is an author before asking for a signature, signs, verifies the envelope back and
/// says where the run stands with it.
pub fn sign_approval(
    al: &Airlock,
    run: &Run,
    submission: &Submission,
    rules: &Rules,
    reason: Option<&str>,
    key: Option<&Path>,
) -> Result<Signed> {
    // The default key (git's user.signingkey) is the terminal's to choose: `approve`
    // passes it; a decision in the browser passes none and is refused here.
    let key = match key.map(Path::to_path_buf) {
        Some(k) => k,
        None => {
            return Err(Error::refused(
                Code::ApprovalUnsigned,
                format!("run {} needs a signed approval", run.id),
                vec![format!(
                    "{REVIEWERS_FILE} on {} lists who may approve, with their SSH keys",
                    rules.target
                )],
                format!(
                    "sign with your SSH key: `airlock approve {} --key ~/.ssh/id_ed25519` (or set git's user.signingkey with gpg.format = ssh)",
                    run.id
                ),
            ));
        }
    };
    let principal = crate::identity::who(al)?.principal;
    let mut identity = signing_identity(&key)?;
    let mut sign_with = key.clone();
    let now = unix_now();
    let authors = authors(al, run, rules)?;
    // Refused before the reviewer is asked to touch a hardware key.
    let mut admitted = rules
        .reviewers
        .authorize_identity(&principal, &identity, NAMESPACE, now);
    // A key whose own line is missing but whose certificate lies beside it (KEY-cert.pub,
    // as `ssh-keygen -s` writes it) signs with the certificate: ssh-keygen takes the
    // private half from KEY or from ssh-agent.
    if let Err(SignerDenied::UnknownKey { .. }) = admitted
        && let SshIdentity::Key(_) = identity
        && let Some((path, cert)) = certificate_beside(&key, &identity)
    {
        admitted = rules
            .reviewers
            .authorize_identity(&principal, &cert, NAMESPACE, now);
        sign_with = path;
        identity = cert;
    }
    match admitted {
        Ok(entry) => require_not_author(
            run,
            &authors,
            &VerifiedApproval {
                principal: principal.clone(),
                key: identity.fingerprint(),
                line: entry.line,
                at: String::new(),
                checkpoint: None,
                certificate_principals: match &identity {
                    SshIdentity::Certificate(cert) => cert.valid_principals().to_vec(),
                    SshIdentity::Key(_) => Vec::new(),
                },
            },
        )?,
        Err(denied) => return Err(denied_error(rules, run, &principal, &denied)),
    }
    let at = crate::run::now();
    // The sealed log's checkpoint this machine last verified (team mode).
    let st = statement(
        run,
        submission,
        &principal,
        reason,
        &at,
        crate::seal::seen(al).as_ref(),
    );
    let payload = serde_json::to_vec(&st).map_err(|e| Error::Internal(e.to_string()))?;
    let armored = ssh_sign(&sign_with, &pae(PAYLOAD_TYPE, &payload))?;
    let envelope = Envelope {
        payload: STANDARD.encode(&payload),
        payload_type: PAYLOAD_TYPE.to_string(),
        signatures: vec![airlock_proof::Signature {
            keyid: identity.fingerprint(),
            sig: STANDARD.encode(armored.as_bytes()),
        }],
    };
    let approval = verify(rules, run, submission, &envelope, now)?;
    require_not_author(run, &authors, &approval)?;
    let standing = standing(al, run, submission, rules, Some(&approval))?;
    Ok(Signed {
        envelope,
        approval,
        standing,
    })
}

/// One exported approval: `ssh-keygen -Y verify -f allowed_signers -I PRINCIPAL -n
/// airlock-approval -s SIG < PAE` checks it alone.
#[derive(Debug, Clone, Serialize)]
pub struct Exported {
    pub seq: u64,
    pub principal: String,
    pub pae: Option<PathBuf>,
    pub sig: Option<PathBuf>,
    /// Whether it verifies under the rules at the target's tip, and if not why.
    pub verified: bool,
    pub problem: Option<String>,
}

/// A run's signed approvals of its current proof; with `dir`, each written as
/// `N-PRINCIPAL.pae` and `.sig`, plus the `allowed_signers` they verify against.
pub fn list(al: &Airlock, run: &Run, dir: Option<&Path>) -> Result<(Option<Rules>, Vec<Exported>)> {
    let Some(submission) = run.submission.clone() else {
        return Ok((None, Vec::new()));
    };
    let rules = rules_at(al, &run.target)?;
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        if let Some(rules) = &rules {
            write(
                &dir.join("allowed_signers"),
                rules.reviewers_text.as_bytes(),
            )?;
        }
    }
    let authors = match &rules {
        Some(r) => Some(authors(al, run, r)?),
        None => None,
    };
    let mut out = Vec::new();
    for (n, (seq, env)) in recorded(al, run, &submission)?.into_iter().enumerate() {
        let payload = STANDARD.decode(env.payload.as_bytes()).unwrap_or_default();
        let principal = serde_json::from_slice::<Statement>(&payload)
            .ok()
            .and_then(|s| s.predicate["principal"].as_str().map(str::to_string))
            .unwrap_or_default();
        let check = match (&rules, &authors) {
            (Some(rules), Some(authors)) => verify(rules, run, &submission, &env, unix_now())
                .and_then(|v| require_not_author(run, authors, &v))
                .map_err(|e| one_line(&e)),
            _ => Err(format!("{REVIEWERS_FILE} is not on {}", run.target)),
        };
        let (mut pae_path, mut sig_path) = (None, None);
        if let Some(dir) = dir {
            let safe: String = principal
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "@.-_".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .take(64)
                .collect();
            let stem = format!("{}-{safe}", n + 1);
            let p = dir.join(format!("{stem}.pae"));
            write(&p, &pae(&env.payload_type, &payload))?;
            pae_path = Some(p);
            if let Some(armored) = env
                .signatures
                .first()
                .and_then(|s| STANDARD.decode(s.sig.as_bytes()).ok())
            {
                let s = dir.join(format!("{stem}.sig"));
                write(&s, &armored)?;
                sig_path = Some(s);
            }
        }
        out.push(Exported {
            seq,
            principal,
            pae: pae_path,
            sig: sig_path,
            verified: check.is_ok(),
            problem: check.err(),
        });
    }
    Ok((rules, out))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

pub use crate::run::unix_now;
