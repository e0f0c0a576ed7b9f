//! The proof bundle of a run: what it builds from and how it is checked
//! against the repository.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};

use airlock_proof::{PublicKey, Statement, Subject, build_bundle, verify_bundle};

use crate::Airlock;
use crate::brief::Brief;
use crate::check::CheckReport;
use crate::error::{Error, Result};
use crate::exec::Trace;
use crate::layout::{sha256_hex, write_atomic};
use crate::run::Run;

pub const RUN_PREDICATE: &str = "https://airlock.dev/run/v1";
pub const TRACES_PREDICATE: &str = "https://airlock.dev/traces/v1";
pub const CHECKS_PREDICATE: &str = "https://airlock.dev/checks/v1";
pub const ACTIONS_PREDICATE: &str = "https://airlock.dev/actions/v1";
/// The review panel's decision log (outcome, tally, every vote).
pub const PANEL_PREDICATE: &str = "https://airlock.dev/panel/v1";

pub struct Evidence<'a> {
    pub run: &'a Run,
    pub brief: &'a Brief,
    pub workflow_digest: &'a str,
    pub head: &'a str,
    pub tree: &'a str,
    pub diff_digest: &'a str,
    pub diff_stat: Value,
    pub traces: &'a [Trace],
    pub check: &'a CheckReport,
    /// The plan of side effects (and compensations) the approval covers.
    pub actions: &'a [crate::action::Action],
    /// What the run's lane grants under the workflow of `workflow_digest`.
    pub lane_capabilities: &'a crate::lane_policy::Capabilities,
    /// The review panel's decision on this tree; its statement is left out
    /// when the panel is off.
    pub panel: Option<&'a airlock_model::panel::Decision>,
}

pub struct WrittenProof {
    pub path: PathBuf,
    pub signature: PathBuf,
    pub digest: String,
}

/// The digest of what changed: sha256 of git's raw diff between two commits,
/// which names every path with its modes and blob ids.
pub fn diff_digest(al: &Airlock, base: &str, head: &str) -> Result<String> {
    let raw = al.layout.git().run(&[
        "diff-tree",
        "-r",
        "-z",
        "--no-renames",
        "--raw",
        "--full-index",
        base,
        head,
    ])?;
    Ok(sha256_hex(&raw))
}

pub fn build(al: &Airlock, ev: &Evidence<'_>) -> Result<WrittenProof> {
    let key = al.signing_key()?;
    let run = ev.run;
    let ledger_head = al.store.ledger_head()?;
    let subjects = vec![
        Subject {
            name: format!("git+commit:{}", run.main_ref()),
            digest: [
                ("gitCommit".to_string(), ev.head.to_string()),
                ("gitTree".to_string(), ev.tree.to_string()),
            ]
            .into_iter()
            .collect(),
        },
        Subject {
            name: "diff".into(),
            digest: [("sha256".to_string(), ev.diff_digest.to_string())]
                .into_iter()
                .collect(),
        },
    ];
    let brief = ev.brief;
    let mut run_statement = Statement::new(
        subjects.clone(),
        RUN_PREDICATE,
        json!({
            "run": run.id, "round": run.round, "class": run.class, "lane": run.lane,
            "brief": {"sha256": brief.digest, "title": brief.title, "objective": brief.objective,
                      "non_goals": brief.non_goals, "touch": brief.touch, "checks": brief.checks,
                      "rollback": brief.rollback, "assumptions": brief.assumptions,
                      "forbid_read": brief.forbid_read},
            "workflow": {"sha256": ev.workflow_digest},
            // What the lane granted when the run was submitted: part of what
            // the reviewer approves (bound by the workflow's digest too).
            "lane_capabilities": ev.lane_capabilities,
            "base": run.base, "head": ev.head, "tree": ev.tree, "target": run.target,
            "diff": {"sha256": ev.diff_digest, "stat": ev.diff_stat},
            "ledger_head": ledger_head.map(|(seq, hash)| json!({"seq": seq, "hash": hash})),
            "created": crate::run::now(),
            "confidence_limits": confidence_limits(ev.traces),
            "release": run.release,
        }),
    );
    // Team mode: the sealed log's checkpoint this machine last verified
    // (issue 20); absent otherwise, so a one-machine proof is unchanged.
    if let Some(seen) = crate::seal::seen(al) {
        run_statement.predicate["checkpoint"] = json!(seen);
    }
    let traces = Statement::new(
        subjects.clone(),
        TRACES_PREDICATE,
        json!({"traces": ev.traces.iter().map(trace_evidence).collect::<Vec<_>>()}),
    );
    let actions = Statement::new(
        subjects.clone(),
        ACTIONS_PREDICATE,
        crate::action::plan::evidence(ev.actions, run.round),
    );
    let checks = Statement::new(subjects, CHECKS_PREDICATE, checks_predicate(ev.check));
    let mut statements = vec![run_statement, traces, checks, actions];
    if let Some(decision) = ev.panel {
        statements.push(Statement::new(
            statements[0].subject.clone(),
            PANEL_PREDICATE,
            serde_json::to_value(decision).unwrap_or(Value::Null),
        ));
    }
    let bundle = build_bundle(&key, &statements)?;
    let dir = al.layout.proofs_dir();
    let path = dir.join(format!("{}-r{}.intoto.jsonl", run.id, run.round));
    let signature = PathBuf::from(format!("{}.sig", path.display()));
    write_atomic(&signature, bundle.ssh_signature.as_bytes())?;
    write_atomic(&path, &bundle.jsonl)?;
    Ok(WrittenProof {
        path,
        signature,
        digest: bundle.digest,
    })
}

/// What the evidence cannot vouch for, in sentences a reviewer can weigh.
pub fn confidence_limits(traces: &[Trace]) -> Vec<String> {
    let mut limits =
        vec!["secret scanning is line-based and covers added text lines only".to_string()];
    let weaker: Vec<u32> = traces
        .iter()
        .filter(|t| t.confinement != "confined")
        .map(|t| t.n)
        .collect();
    if weaker.is_empty() {
        limits.push(
            "every command ran in the namespace sandbox: read-only system, secrets hidden, writes only to the worktree and a private /tmp".into(),
        );
    } else {
        limits.push(format!(
            "commands {weaker:?} ran without the full sandbox (see each trace's confinement)"
        ));
    }
    let networked: Vec<u32> = traces.iter().filter(|t| t.network).map(|t| t.n).collect();
    if !networked.is_empty() {
        limits.push(format!(
            "commands {networked:?} had the network: what they fetched or sent is not in this evidence"
        ));
    }
    let listed: Vec<u32> = traces
        .iter()
        .filter(|t| t.egress.is_some())
        .map(|t| t.n)
        .collect();
    if !listed.is_empty() {
        limits.push(format!(
            "commands {listed:?} reached only the hosts of their lane's list, through airlock's egress proxy: \
             each connection (host, port, address, allowed or refused, bytes) is in their traces, not what was sent"
        ));
    }
    limits.push(
        "files an agent changed without airlock exec are attributed to the next traced command"
            .into(),
    );
    limits
}

fn trace_evidence(t: &Trace) -> Value {
    let mut evidence = json!({
        "n": t.n, "round": t.round, "origin": t.origin, "argv": t.argv, "cwd": t.cwd, "lane": t.lane,
        "exit": t.exit, "duration_ms": t.duration_ms,
        "stdout": {"sha256": t.stdout.sha256, "size": t.stdout.size},
        "stderr": {"sha256": t.stderr.sha256, "size": t.stderr.size},
        "files_changed": t.files_changed, "started": t.started,
        "confinement": t.confinement, "network": t.network, "limit_hit": t.limit_hit, "denials": t.denials,
    });
    // A command whose network was a list of hosts: the list and every
    // connection it asked the egress proxy for.
    if let Some(hosts) = &t.egress {
        evidence["egress"] = json!(hosts);
        evidence["connections"] = json!(t.connections);
    }
    evidence
}

#[derive(Debug, Clone, Serialize)]
pub struct ProofCheck {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProofReport {
    pub path: PathBuf,
    pub digest: String,
    pub key_id: String,
    pub run: Option<String>,
    /// The round its run statement names.
    pub round: Option<u32>,
    pub checks: Vec<ProofCheck>,
}

impl ProofReport {
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

/// Verifies run `run`'s proof: the bundle at the path its submission
/// recorded, which must be that run's (run id and round in its run
/// statement) and the very bundle submitted (its digest the one recorded at
/// submit), besides everything [`verify_file`] checks. Another run's bundle
/// copied over the path verifies as a bundle, but not as this run's proof.
pub fn verify_run(al: &Airlock, run: &Run, key: Option<&PublicKey>) -> Result<ProofReport> {
    let submission = run.submission.as_ref().ok_or_else(|| {
        Error::Invalid(format!(
            "run {0} has no proof yet: it is made by `airlock submit {0}`",
            run.id
        ))
    })?;
    // Team mode: a run started on another machine (issue 20).
    let mut report = match crate::remote::fetched_proof(al, run)? {
        Some((path, signer)) => verify_file(al, &path, Some(&signer))?,
        None => verify_file(al, &submission.proof, key)?,
    };
    let claimed = format!(
        "run {} round {}, sha256:{}",
        report.run.as_deref().unwrap_or("(none)"),
        report
            .round
            .map_or_else(|| "(none)".to_string(), |r| r.to_string()),
        report.digest
    );
    let recorded = format!(
        "run {} round {}, sha256:{}",
        run.id, submission.round, submission.digest
    );
    let ok = report.run.as_deref() == Some(run.id.as_str())
        && report.round == Some(submission.round)
        && report.digest == submission.digest;
    report.checks.insert(
        1,
        ProofCheck {
            name: "submitted".into(),
            ok,
            detail: if ok {
                format!("the bundle is the one submitted: {recorded}")
            } else {
                format!(
                    "the bundle at {} is {claimed}, but the ledger recorded {recorded} at submit",
                    submission.proof.display()
                )
            },
        },
    );
    Ok(report)
}

/// Verifies a bundle file: signatures (DSSE and SSH), the envelope index, and
/// every digest against the repository. Errors only when the bundle cannot be
/// read or its signatures fail; repository mismatches are failed checks.
pub fn verify_file(al: &Airlock, path: &Path, key: Option<&PublicKey>) -> Result<ProofReport> {
    let jsonl = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let sig_path = PathBuf::from(format!("{}.sig", path.display()));
    let ssh_sig = std::fs::read_to_string(&sig_path).map_err(|source| Error::Read {
        path: sig_path.clone(),
        source,
    })?;
    let key = match key {
        Some(k) => k.clone(),
        None => al.signing_key()?.public(),
    };
    let verified = verify_bundle(&key, &jsonl, Some(&ssh_sig))?;
    let mut checks = vec![ProofCheck {
        name: "signatures".into(),
        ok: true,
        detail: format!(
            "{} envelopes and the SSH signature verify with {}",
            verified.statements.len() + 1,
            verified.key_id
        ),
    }];
    let statement = verified
        .statements
        .iter()
        .find(|s| s.predicate_type == RUN_PREDICATE)
        .ok_or_else(|| {
            Error::Invalid(format!("{} holds no airlock run statement", path.display()))
        })?;
    let p = &statement.predicate;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let run_id = text(&p["run"]);
    let (base, head, tree) = (text(&p["base"]), text(&p["head"]), text(&p["tree"]));
    let git = al.layout.git();

    let head_ok = !head.is_empty() && git.object_exists(&format!("{head}^{{commit}}"))?;
    checks.push(ProofCheck {
        name: "head commit".into(),
        ok: head_ok,
        detail: if head_ok {
            format!("{head} is in the repository")
        } else {
            format!("{head} is not in this repository")
        },
    });
    if head_ok {
        let actual_tree = git.tree_of(&head)?;
        checks.push(ProofCheck {
            name: "head tree".into(),
            ok: actual_tree == tree,
            detail: format!("commit's tree {actual_tree}, proof says {tree}"),
        });
        let subject_commit = statement
            .subject
            .iter()
            .find_map(|s| s.digest.get("gitCommit"))
            .cloned()
            .unwrap_or_default();
        checks.push(ProofCheck {
            name: "subject".into(),
            ok: subject_commit == head,
            detail: format!("subject gitCommit {subject_commit}"),
        });
        let recorded = text(&p["diff"]["sha256"]);
        let actual = diff_digest(al, &base, &head)?;
        checks.push(ProofCheck {
            name: "diff digest".into(),
            ok: recorded == actual,
            detail: if recorded == actual {
                format!("sha256 {actual} matches {base:.12}..{head:.12}")
            } else {
                format!("recomputed {actual}, proof says {recorded}")
            },
        });
    }
    // A run missing from the ledger is missing history (a ledger older
    // than the proof): its brief, plan and anchor checks fail, never skip.
    let found = match al.store.get(&run_id) {
        Ok(run) => Some(run),
        Err(airlock_store::Error::UnknownRun(_)) => None,
        Err(e) => return Err(e.into()),
    };
    if found.is_none() {
        for name in ["brief digest", "action plan", "ledger anchor"] {
            checks.push(ProofCheck {
                name: name.into(),
                ok: false,
                detail: format!(
                    "run {run_id:?} is not in the ledger, so this cannot be checked: the ledger is older than the proof, or it is another repository's"
                ),
            });
        }
    }
    if let Some(run) = found {
        let brief_text =
            std::fs::read(al.layout.run_dir(&run.id).join("brief.toml")).unwrap_or_default();
        let actual = sha256_hex(&brief_text);
        let recorded = text(&p["brief"]["sha256"]);
        checks.push(ProofCheck {
            name: "brief digest".into(),
            ok: actual == recorded && recorded == run.brief_digest,
            detail: format!("brief sha256 {recorded}"),
        });
        let planned = crate::action::plan::fingerprint(&crate::action::plan::list(al, &run.id)?);
        let signed = verified
            .statements
            .iter()
            .find(|s| s.predicate_type == ACTIONS_PREDICATE)
            .map(|s| crate::action::plan::fingerprint_of_evidence(&s.predicate))
            .unwrap_or_default();
        let uncovered: Vec<String> = planned
            .iter()
            .filter(|a| !signed.contains(a))
            .map(|(role, name, _)| format!("{role} `{name}`"))
            .chain(
                signed
                    .iter()
                    .filter(|a| !planned.contains(a))
                    .map(|(role, name, _)| {
                        format!("{role} `{name}` (in the proof, not in the plan)")
                    }),
            )
            .collect();
        checks.push(ProofCheck {
            name: "action plan".into(),
            ok: uncovered.is_empty(),
            detail: if uncovered.is_empty() {
                format!(
                    "the plan's {} action(s) are exactly those signed",
                    planned.len()
                )
            } else {
                format!(
                    "the plan differs from the signed one, so the approval does not cover: {}",
                    uncovered.join(", ")
                )
            },
        });
        let anchored = p["ledger_head"]["seq"].as_u64();
        if anchored.is_none() {
            checks.push(ProofCheck {
                name: "ledger anchor".into(),
                ok: false,
                detail: "the proof records no ledger head to check the ledger against".into(),
            });
        }
        if let Some(head) = anchored {
            let hash = text(&p["ledger_head"]["hash"]);
            let ok = al.store.ledger_contains(head, &hash)?;
            checks.push(ProofCheck {
                name: "ledger anchor".into(),
                ok,
                detail: if ok {
                    format!("ledger event {head} is in the ledger with the recorded hash")
                } else {
                    format!("ledger event {head} with hash {hash:.16} is missing: the ledger was cut or rewritten")
                },
            });
        }
    }
    Ok(ProofReport {
        path: path.to_path_buf(),
        digest: verified.digest,
        key_id: verified.key_id,
        run: (!run_id.is_empty()).then_some(run_id),
        round: p["round"].as_u64().and_then(|r| u32::try_from(r).ok()),
        checks,
    })
}

/// The checks statement's predicate: gates and stop conditions, and the
/// workflow's conditions as evaluated at submit when it has any.
fn checks_predicate(check: &CheckReport) -> serde_json::Value {
    let mut predicate = json!({"passed": check.passed, "tree": check.tree, "gates": check.gates, "stop_conditions": check.stops});
    if !check.conditions.is_empty() {
        predicate["conditions"] = json!(check.conditions);
    }
    predicate
}
