//! Signed approvals in team mode (issue 20, "Who decides"): `.airlock/reviewers` on the
//! target branch turns them on. People are told apart by `AIRLOCK_PRINCIPAL` and their own
//! SSH keys (made by the real ssh-keygen; one test signs through a real ssh-agent); every
//! refusal is checked for its message, its exit code and that nothing was recorded.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{BRIEF, Env, Output, write};
use serde_json::Value;

struct Team {
    env: Env,
    keys: PathBuf,
}

const DEV: &str = "dev@example.com";
const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const CAROL: &str = "carol@example.com";

impl Team {
    /// A repository whose `main` holds `.airlock/reviewers` with `reviewers` (principal,
    /// key name, options) and, if given, `.airlock/owners`.
    fn new(reviewers: &[(&str, &str, &str)], owners: Option<&str>) -> Team {
        let env = Env::new();
        let keys = env.tmp.path().join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        let team = Team { env, keys };
        for name in ["dev", "alice", "bob", "carol", "mallory"] {
            team.keygen(name);
        }
        team.env.commit_file(
            ".airlock/reviewers",
            &team.reviewers(reviewers),
            "reviewers",
        );
        if let Some(owners) = owners {
            team.env.commit_file(".airlock/owners", owners, "owners");
        }
        team
    }

    fn keygen(&self, name: &str) {
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(self.key(name))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }

    fn key(&self, name: &str) -> PathBuf {
        self.keys.join(name)
    }

    fn public(&self, name: &str) -> String {
        std::fs::read_to_string(self.keys.join(format!("{name}.pub")))
            .unwrap()
            .trim()
            .to_string()
    }

    fn reviewers(&self, list: &[(&str, &str, &str)]) -> String {
        list.iter()
            .map(|(who, key, options)| {
                let options = if options.is_empty() {
                    String::new()
                } else {
                    format!("{options} ")
                };
                format!("{who} {options}{}\n", self.public(key))
            })
            .collect()
    }

    fn as_(&self, principal: &str, args: &[&str]) -> Output {
        self.env
            .airlock_env(args, &[("AIRLOCK_PRINCIPAL", principal)])
    }

    fn json_as(&self, principal: &str, args: &[&str], code: i32) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        self.as_(principal, &full).expect_json(args, code)
    }

    /// A run started, checked and submitted by `principal`.
    fn submitted_by(&self, principal: &str) -> String {
        let brief = self.env.write_brief("brief", BRIEF);
        let v = self.json_as(principal, &["start", &brief], 0);
        let run = v["run"].as_str().unwrap().to_string();
        let wt = PathBuf::from(v["worktree"].as_str().unwrap());
        write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
        self.json_as(principal, &["check", &run], 0);
        self.json_as(principal, &["submit", &run], 0);
        run
    }

    fn approve(&self, principal: &str, run: &str, key: &str) -> Output {
        let key = self.key(key);
        self.as_(principal, &["approve", run, "--key", key.to_str().unwrap()])
    }

    /// `approve` that must be refused with `code` and `exit`, recording nothing.
    fn refused(&self, principal: &str, run: &str, key: &str, exit: i32, code: &str) -> String {
        let before = self.env.world();
        let key = self.key(key);
        let v = self.json_as(
            principal,
            &["approve", run, "--key", key.to_str().unwrap()],
            exit,
        );
        assert_eq!(v["error"]["code"], code, "{v}");
        self.env.assert_unchanged(&before);
        let e = &v["error"];
        format!(
            "{} | {}",
            e["message"].as_str().unwrap_or_default(),
            e["hint"].as_str().unwrap_or_default()
        )
    }
}

fn ssh_keygen_verifies(signers: &Path, principal: &str, sig: &Path, pae: &Path) -> bool {
    Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(signers)
        .args(["-I", principal, "-n", "airlock-approval", "-s"])
        .arg(sig)
        .stdin(std::fs::File::open(pae).unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[test]
fn a_signed_approval_verifies_with_ssh_keygen_alone_and_promotes() {
    let team = Team::new(&[(ALICE, "alice", "")], None);
    let run = team.submitted_by(DEV);
    let out = team.approve(ALICE, &run, "alice");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with(&format!(
            "approved run {run} (signed by {ALICE}) for proof sha256:"
        )),
        "{}",
        out.stdout
    );
    assert_eq!(team.env.state(&run), "approved");

    let dir = team.env.tmp.path().join("export");
    let v = team.json_as(
        BOB,
        &["approvals", &run, "--export", dir.to_str().unwrap()],
        0,
    );
    let approvals = v["approvals"].as_array().unwrap();
    assert_eq!(approvals.len(), 1, "{v}");
    assert_eq!(approvals[0]["principal"], ALICE);
    assert_eq!(approvals[0]["verified"], true);
    let pae = PathBuf::from(approvals[0]["pae"].as_str().unwrap());
    let sig = PathBuf::from(approvals[0]["sig"].as_str().unwrap());
    // Exactly the recipe of docs/team.md, with nothing of airlock's.
    let signers = dir.join("allowed_signers");
    assert!(ssh_keygen_verifies(&signers, ALICE, &sig, &pae));
    assert!(!ssh_keygen_verifies(&signers, BOB, &sig, &pae));
    // The PAE carries the statement about this run's proof and head.
    let text = std::fs::read_to_string(&pae).unwrap();
    assert!(
        text.starts_with("DSSEv1 28 application/vnd.in-toto+json "),
        "{text}"
    );
    assert!(text.contains("https://airlock.dev/approval/v1"), "{text}");
    assert!(text.contains(&format!("\"run\":\"{run}\"")), "{text}");
    let mut altered = std::fs::read(&pae).unwrap();
    let at = altered.len() - 3;
    altered[at] ^= 1;
    std::fs::write(&pae, altered).unwrap();
    assert!(!ssh_keygen_verifies(&signers, ALICE, &sig, &pae));

    // Every event names who acted.
    let events = team.env.events(Some(&run));
    for e in &events {
        assert!(
            e["data"]["who"]["machine"]
                .as_str()
                .unwrap()
                .starts_with("SHA256:"),
            "{e}"
        );
    }
    let by = |kind: &str| {
        events
            .iter()
            .find(|e| e["kind"] == kind)
            .map(|e| e["data"]["who"]["principal"].clone())
            .unwrap()
    };
    assert_eq!(by("start"), DEV);
    assert_eq!(by("submit"), DEV);
    assert_eq!(by("approve"), ALICE);

    let out = team.as_(CAROL, &["promote", &run]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    team.env.assert_ledger_ok();
}

#[test]
fn owners_need_distinct_approvals_for_each_path() {
    let team = Team::new(
        &[(ALICE, "alice", ""), (BOB, "bob", ""), (CAROL, "carol", "")],
        Some("@core = alice@example.com bob@example.com\nsrc/** @core n=2\n"),
    );
    let run = team.submitted_by(DEV);
    // Carol is a reviewer but not an owner of src/**: her approval counts for nothing.
    let out = team.approve(CAROL, &run, "carol");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("it stays in review")
            && out
                .stdout
                .contains("missing: src/** (line 2): 0 of 2 approvals from @core (src/app.sh)"),
        "{}",
        out.stdout
    );
    let out = team.approve(ALICE, &run, "alice");
    assert!(
        out.stdout
            .contains("missing: src/** (line 2): 1 of 2 approvals from @core (src/app.sh)"),
        "{}",
        out.stdout
    );
    assert_eq!(team.env.state(&run), "in_review");
    let show = team.as_(ALICE, &["show", &run, "--no-diff", "--no-pager"]);
    assert!(
        show.stdout
            .contains("src/** (line 2): 1 of 2 approvals from @core"),
        "{}",
        show.stdout
    );
    // Promotion is refused while the owners' count is not met.
    let before = team.env.world();
    let v = team.json_as(ALICE, &["promote", &run], 1);
    assert_eq!(v["error"]["code"], "wrong-state", "{v}");
    team.env.assert_unchanged(&before);
    let out = team.approve(BOB, &run, "bob");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("approved run"), "{}", out.stdout);
    assert_eq!(team.env.state(&run), "approved");
    let out = team.as_(CAROL, &["promote", &run]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}

#[test]
fn promote_checks_the_owners_at_the_tip_it_merges_onto() {
    let team = Team::new(&[(ALICE, "alice", ""), (BOB, "bob", "")], None);
    let run = team.submitted_by(DEV);
    assert_eq!(team.approve(ALICE, &run, "alice").code, 0);
    // The owners' rule is committed on the target after the approval.
    team.env.commit_file(
        ".airlock/owners",
        "@core = alice@example.com bob@example.com\nsrc/** @core n=2\n",
        "owners",
    );
    let before = team.env.world();
    let v = team.json_as(CAROL, &["promote", &run], 1);
    assert_eq!(v["error"]["code"], "approvals-missing", "{v}");
    assert!(
        v["error"]["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("src/** (line 2): 1 of 2 approvals from @core"),
        "{v}"
    );
    team.env.assert_unchanged(&before);
}

#[test]
fn authors_cannot_approve() {
    let team = Team::new(
        &[
            (DEV, "dev", ""),
            (ALICE, "alice", ""),
            (BOB, "bob", ""),
            (CAROL, "carol", ""),
        ],
        None,
    );
    let run = team.submitted_by(DEV);
    let why = team.refused(DEV, &run, "dev", 1, "approver-is-author");
    assert_eq!(
        why,
        format!(
            "dev@example.com may not approve run {run}: they are one of its authors\n  - dev@example.com started the run | ask a reviewer who took no part in the run to approve it"
        )
    );

    // A redirector is an author of the next round.
    let out = team.as_(BOB, &["redirect", &run, "--reason", "more"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    team.json_as(DEV, &["check", &run], 0);
    team.json_as(DEV, &["submit", &run], 0);
    let why = team.refused(BOB, &run, "bob", 1, "approver-is-author");
    assert!(why.contains("bob@example.com redirected the run"), "{why}");

    // The owner of the machine key that signed the proof.
    let machine =
        std::fs::read_to_string(team.env.home.join(".config/airlock/signing_key.pub")).unwrap();
    team.env.commit_file(
        ".airlock/runners",
        &format!("{CAROL} {}", machine.trim()),
        "runners",
    );
    let why = team.refused(CAROL, &run, "carol", 1, "approver-is-author");
    assert!(
        why.contains(
            "carol@example.com owns the machine key that signed the proof (.airlock/runners:1)"
        ),
        "{why}"
    );
    // Anyone else may.
    assert_eq!(team.approve(ALICE, &run, "alice").code, 0);
}

#[test]
fn keys_the_reviewers_file_does_not_admit_are_refused() {
    let team = Team::new(
        &[
            (ALICE, "alice", "valid-before=\"20200101Z\""),
            (BOB, "bob", "namespaces=\"git\""),
            (CAROL, "carol", ""),
        ],
        None,
    );
    let run = team.submitted_by(DEV);
    let why = team.refused(ALICE, &run, "alice", 1, "reviewer-key-expired");
    assert!(
        why.contains("the key on line 1 expired at 2020-01-01T00:00:00Z in .airlock/reviewers"),
        "{why}"
    );
    let why = team.refused(BOB, &run, "bob", 1, "reviewer-unknown");
    assert!(
        why.contains("(line 2) may sign only in namespaces git, not airlock-approval"),
        "{why}"
    );
    let why = team.refused(ALICE, &run, "mallory", 1, "reviewer-unknown");
    assert!(why.contains("is not listed in .airlock/reviewers"), "{why}");
    // Carol's key, claimed by another principal.
    let why = team.refused(ALICE, &run, "carol", 1, "reviewer-unknown");
    assert!(
        why.contains("is listed for carol@example.com, not for alice@example.com"),
        "{why}"
    );
    // No key at all.
    let before = team.env.world();
    let v = team.json_as(CAROL, &["approve", &run], 1);
    assert_eq!(v["error"]["code"], "approval-unsigned", "{v}");
    assert!(
        v["error"]["hint"].as_str().unwrap().contains("--key"),
        "{v}"
    );
    team.env.assert_unchanged(&before);
    assert_eq!(team.approve(CAROL, &run, "carol").code, 0);
}

#[test]
fn a_run_that_adds_its_approver_to_reviewers_is_judged_by_the_rules_before_it() {
    let team = Team::new(&[(ALICE, "alice", "")], None);
    let brief = team.env.write_brief(
        "brief",
        &BRIEF.replace(
            r#"touch = ["src/**", "tests/**"]"#,
            r#"touch = ["src/**", "tests/**", ".airlock/reviewers"]"#,
        ),
    );
    let v = team.json_as(DEV, &["start", &brief], 0);
    let run = v["run"].as_str().unwrap().to_string();
    let wt = PathBuf::from(v["worktree"].as_str().unwrap());
    let mut reviewers = std::fs::read_to_string(wt.join(".airlock/reviewers")).unwrap();
    reviewers.push_str(&format!(
        "{} {}\n",
        "mallory@example.com",
        team.public("mallory")
    ));
    write(&wt.join(".airlock/reviewers"), &reviewers);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    team.json_as(DEV, &["check", &run], 0);
    team.json_as(DEV, &["submit", &run], 0);
    let why = team.refused(
        "mallory@example.com",
        &run,
        "mallory",
        1,
        "reviewer-unknown",
    );
    assert!(why.contains("is not listed in .airlock/reviewers"), "{why}");
    // The main checkout's working file does not count either: only the target's tip.
    std::fs::write(team.env.repo.join(".airlock/reviewers"), &reviewers).unwrap();
    let why = team.refused(
        "mallory@example.com",
        &run,
        "mallory",
        1,
        "reviewer-unknown",
    );
    assert!(why.contains("is not listed"), "{why}");
    team.env.git(&["checkout", "--", ".airlock/reviewers"]);
    assert_eq!(team.approve(ALICE, &run, "alice").code, 0);
}

#[test]
fn malformed_rules_files_are_named_by_line() {
    let team = Team::new(&[(ALICE, "alice", "")], None);
    let run = team.submitted_by(DEV);
    let good = std::fs::read_to_string(team.env.repo.join(".airlock/reviewers")).unwrap();
    team.env.commit_file(
        ".airlock/reviewers",
        &format!(
            "{good}bob@example.com valid-after=\"2027-01-01\" {}\n",
            team.public("bob")
        ),
        "bad reviewers",
    );
    let why = team.refused(ALICE, &run, "alice", 2, "reviewers-invalid");
    assert!(
        why.starts_with(".airlock/reviewers on main (")
            && why.contains(
                ") is not valid\n  - .airlock/reviewers:2: valid-after=\"2027-01-01\" has no Z"
            ),
        "{why}"
    );
    assert!(why.contains("fix the file in a commit on main"), "{why}");
    team.env
        .commit_file(".airlock/reviewers", &good, "fix reviewers");
    team.env
        .commit_file(".airlock/owners", "# owners\nsrc/** @core\n", "bad owners");
    let why = team.refused(ALICE, &run, "alice", 2, "owners-invalid");
    assert!(
        why.contains(".airlock/owners:2: team @core is not declared"),
        "{why}"
    );
}

/// The ledger's approval events as a database superuser could rewrite them.
fn tamper(env: &Env, seq: i64, edit: &dyn Fn(&mut Value)) {
    let db = env.db();
    let triggers: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for t in &triggers {
        db.execute(&format!("DROP TRIGGER {t}"), []).unwrap();
    }
    let text: String = db
        .query_row("SELECT data FROM events WHERE seq = ?1", [seq], |r| {
            r.get(0)
        })
        .unwrap();
    let mut data: Value = serde_json::from_str(&text).unwrap();
    edit(&mut data);
    db.execute(
        "UPDATE events SET data = ?1 WHERE seq = ?2",
        rusqlite::params![data.to_string(), seq],
    )
    .unwrap();
}

fn approval_event(env: &Env, run: &str) -> (i64, Value) {
    let e = env
        .events(Some(run))
        .into_iter()
        .rev()
        .find(|e| e["kind"] == "approve" || e["kind"] == "approval")
        .unwrap();
    (e["seq"].as_i64().unwrap(), e["data"].clone())
}

#[test]
fn a_forged_or_replayed_approval_is_refused_at_promotion() {
    let team = Team::new(&[(ALICE, "alice", "")], None);
    let run = team.submitted_by(DEV);
    assert_eq!(team.approve(ALICE, &run, "alice").code, 0);
    let (seq, data) = approval_event(&team.env, &run);

    // The payload edited after signing: its reason changed.
    tamper(&team.env, seq, &|d| {
        let env = &mut d["envelope"];
        let payload = base64_decode(env["payload"].as_str().unwrap());
        let edited = String::from_utf8(payload)
            .unwrap()
            .replace("\"reason\":null", "\"reason\":\"lgtm\"");
        env["payload"] = Value::String(base64_encode(edited.as_bytes()));
    });
    let v = team.json_as(CAROL, &["promote", &run], 1);
    assert_eq!(v["error"]["code"], "approval-invalid", "{v}");
    assert!(
        v["error"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("does not verify with key SHA256:"),
        "{v}"
    );
    let listed = team.json_as(CAROL, &["approvals", &run], 0);
    assert_eq!(listed["approvals"][0]["verified"], false, "{listed}");

    // A genuine approval of this run, replayed onto another run.
    tamper(&team.env, seq, &|d| *d = data.clone());
    let other = team.submitted_by(DEV);
    assert_eq!(team.approve(ALICE, &other, "alice").code, 0);
    let (other_seq, _) = approval_event(&team.env, &other);
    let genuine = data["envelope"].clone();
    tamper(&team.env, other_seq, &|d| d["envelope"] = genuine.clone());
    let v = team.json_as(CAROL, &["promote", &other], 1);
    assert_eq!(v["error"]["code"], "approval-invalid", "{v}");
    assert!(
        v["error"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains(&format!(
                "it approves run {run} round 1, not run {other} round 1"
            )),
        "{v}"
    );
    assert_eq!(team.env.rev("main"), team.env.rev("main"));
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A real ssh-agent on a socket of the test's own; killed on drop.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .args(["-D", "-a"])
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..500 {
            if socket.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Agent { child, socket }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_approval_signed_through_ssh_agent() {
    let team = Team::new(&[(ALICE, "alice", "")], None);
    let run = team.submitted_by(DEV);
    let agent = Agent::start(team.env.tmp.path());
    let add = Command::new("ssh-add")
        .arg("-q")
        .arg(team.key("alice"))
        .env("SSH_AUTH_SOCK", &agent.socket)
        .output()
        .unwrap();
    assert!(add.status.success(), "{add:?}");
    // Only the public key is given; the private key file is gone from reach.
    let public = team.keys.join("alice-only.pub");
    std::fs::copy(team.keys.join("alice.pub"), &public).unwrap();
    std::fs::remove_file(team.key("alice")).unwrap();

    // Without the agent, the public key cannot sign.
    let before = team.env.world();
    let v = team
        .env
        .airlock_env(
            &["--json", "approve", &run, "--key", public.to_str().unwrap()],
            &[("AIRLOCK_PRINCIPAL", ALICE)],
        )
        .expect_json(&[], 1);
    assert_eq!(v["error"]["code"], "approval-unsigned", "{v}");
    team.env.assert_unchanged(&before);

    let out = team.env.airlock_env(
        &["approve", &run, "--key", public.to_str().unwrap()],
        &[
            ("AIRLOCK_PRINCIPAL", ALICE),
            ("SSH_AUTH_SOCK", agent.socket.to_str().unwrap()),
        ],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(team.env.state(&run), "approved");
    let out = team.as_(CAROL, &["promote", &run]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}

#[test]
fn without_a_reviewers_file_approval_is_unchanged() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let v = env.json(&["approve", &run], 0);
    assert_eq!(v["state"], "approved");
    assert!(v.get("principal").is_none(), "{v}");
    let events = env.events(Some(&run));
    let approve = events.iter().find(|e| e["kind"] == "approve").unwrap();
    assert!(approve["data"].get("envelope").is_none(), "{approve}");
}

/// The same signed approvals with the store on PostgreSQL: owners' counts across two
/// reviewers, and `who` in the events' rows as the database holds them.
#[test]
fn signed_approvals_with_the_store_on_postgresql() {
    let team = Team::new(
        &[(DEV, "dev", ""), (ALICE, "alice", ""), (BOB, "bob", "")],
        Some("src/** alice@example.com bob@example.com n=2\n"),
    );
    let db = airlock_store_pg::testing::shared().database();
    let url = db.url();
    let on_pg = |principal: &str, args: &[&str]| -> Output {
        team.env.airlock_env(
            args,
            &[
                ("AIRLOCK_PRINCIPAL", principal),
                ("AIRLOCK_DATABASE_URL", url.as_str()),
            ],
        )
    };
    let brief = team.env.write_brief("brief", BRIEF);
    let v = on_pg(DEV, &["--json", "start", &brief]).expect_json(&[], 0);
    let run = v["run"].as_str().unwrap().to_string();
    write(
        &PathBuf::from(v["worktree"].as_str().unwrap()).join("src/app.sh"),
        "#!/bin/sh\necho hello, please\n",
    );
    assert_eq!(on_pg(DEV, &["check", &run]).code, 0);
    assert_eq!(on_pg(DEV, &["submit", &run]).code, 0);
    let key = |name: &str| team.key(name).to_str().unwrap().to_string();
    let v = on_pg(DEV, &["--json", "approve", &run, "--key", &key("dev")]).expect_json(&[], 1);
    assert_eq!(v["error"]["code"], "approver-is-author", "{v}");
    let v = on_pg(ALICE, &["--json", "approve", &run, "--key", &key("alice")]).expect_json(&[], 0);
    assert_eq!(v["state"], "in_review", "{v}");
    assert_eq!(
        v["missing"][0],
        "src/** (line 1): 1 of 2 approvals from alice@example.com bob@example.com (src/app.sh)"
    );
    let v = on_pg(BOB, &["--json", "approve", &run, "--key", &key("bob")]).expect_json(&[], 0);
    assert_eq!(v["state"], "approved", "{v}");
    let out = on_pg(CAROL, &["promote", &run]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);

    let mut admin = db.admin();
    let rows: Vec<(String, Value)> = admin
        .query(
            "SELECT kind, data FROM events WHERE run = $1 ORDER BY n",
            &[&run],
        )
        .unwrap()
        .iter()
        .map(|r| {
            let data: String = r.get(1);
            (r.get(0), serde_json::from_str(&data).unwrap())
        })
        .collect();
    let who = |kind: &str| {
        rows.iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, d)| d["who"]["principal"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(who("start"), [DEV]);
    assert_eq!(who("approval"), [ALICE]);
    assert_eq!(who("approve"), [BOB]);
    assert_eq!(who("promote"), [CAROL]);
    assert!(
        rows.iter()
            .all(|(_, d)| d["who"]["machine"].as_str().unwrap().starts_with("SHA256:"))
    );
}

/// Without `--key`, git's `user.signingkey` signs when `gpg.format` is `ssh` (the
/// reviewer's own global config, as on their machine).
#[test]
fn git_s_ssh_signing_key_signs_by_default() {
    let team = Team::new(&[(ALICE, "alice", "")], None);
    let run = team.submitted_by(DEV);
    let config = team.env.tmp.path().join("alice.gitconfig");
    std::fs::write(
        &config,
        format!(
            "[gpg]\n\tformat = ssh\n[user]\n\tsigningkey = {}\n",
            team.key("alice").display()
        ),
    )
    .unwrap();
    let out = team.env.airlock_env(
        &["approve", &run],
        &[
            ("AIRLOCK_PRINCIPAL", ALICE),
            ("GIT_CONFIG_GLOBAL", config.to_str().unwrap()),
        ],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&format!("(signed by {ALICE})")),
        "{}",
        out.stdout
    );
}

/// What a reviewer reads, whole: an approval that leaves the run in review, one that
/// completes it, a refusal, and the export.
#[test]
fn transcript_of_signed_approvals() {
    let team = Team::new(
        &[(DEV, "dev", ""), (ALICE, "alice", ""), (BOB, "bob", "")],
        Some("@core = alice@example.com bob@example.com\nsrc/** @core n=2\n"),
    );
    let run = team.submitted_by(DEV);
    let mut text = String::new();
    let mut step = |principal: &str, args: &[&str]| {
        let out = team.as_(principal, args);
        text.push_str(&format!(
            "$ AIRLOCK_PRINCIPAL={principal} airlock {}\n",
            args.join(" ")
        ));
        text.push_str(&out.stdout);
        if !out.stdout.is_empty() && !out.stdout.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&out.stderr);
        text.push_str(&format!("[exit {}]\n\n", out.code));
    };
    let key = |name: &str| team.key(name).display().to_string();
    let export = team.env.tmp.path().join("export").display().to_string();
    step(DEV, &["approve", &run, "--key", &key("dev")]);
    step(ALICE, &["approve", &run, "--key", &key("alice")]);
    step(CAROL, &["review"]);
    step(BOB, &["approve", &run, "--key", &key("bob")]);
    step(CAROL, &["approvals", &run, "--export", &export]);
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(
        &regex_escape(&team.env.tmp.path().display().to_string()),
        "[TMP]",
    );
    settings.add_filter(&regex_escape(&run), "[RUN]");
    settings.add_filter(r"SHA256:[A-Za-z0-9+/]{43}", "SHA256:[KEY]");
    settings.add_filter(r"\b[0-9a-f]{12}\b", "[SHORT]");
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[TIME]");
    settings.add_filter(r"event \d+", "event [SEQ]");
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!("approvals_signed", text));
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if "\\.+*?()|[]{}^$#&-~".contains(c) {
                format!("\\{c}")
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The web run page names the signed approvals and what the owners' rules still miss.
#[test]
fn the_web_run_page_shows_signed_approvals_and_what_is_missing() {
    let team = Team::new(
        &[(ALICE, "alice", ""), (BOB, "bob", "")],
        Some("@core = alice@example.com bob@example.com\nsrc/** @core n=2\n"),
    );
    let run = team.submitted_by(DEV);
    assert_eq!(team.approve(ALICE, &run, "alice").code, 0);
    let mut layout = airlock_core::layout::Layout::discover(&team.env.repo).unwrap();
    layout.key_dir = team.env.home.join(".config").join("airlock");
    let al = airlock_core::Airlock::open_in(layout).unwrap();
    let ctx = airlock_web::pages::PageCtx {
        csrf: "csrf".into(),
        flash: None,
        user: "Test User".into(),
    };
    let html = airlock_web::pages::run(&al, &run, None, &ctx)
        .unwrap()
        .into_string();
    let text: String = {
        let mut out = String::new();
        let mut in_tag = false;
        for c in html.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out.replace("&amp;", "&")
    };
    assert!(text.contains("Signed approvals"), "{text}");
    assert!(text.contains(&format!("{ALICE} with SHA256:")), "{text}");
    assert!(
        text.contains("src/** (line 2): 1 of 2 approvals from @core (src/app.sh)"),
        "{text}"
    );
}

// ---- Every key type OpenSSH signs with, and certificates (issue 20, sshkeys) ----

impl Team {
    /// `ssh-keygen -t KIND…` into the keys directory as `name`.
    fn keygen_kind(&self, name: &str, kind: &[&str]) {
        let out = Command::new("ssh-keygen")
            .args(["-q", "-N", "", "-C", name, "-t"])
            .args(kind)
            .arg("-f")
            .arg(self.key(name))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }

    /// `ssh-keygen -s CA -I ID -n PRINCIPALS -V VALIDITY [EXTRA] NAME.pub`: `NAME-cert.pub`.
    fn certify(&self, ca: &str, name: &str, principals: &str, validity: &str, extra: &[&str]) {
        let out = Command::new("ssh-keygen")
            .args(["-q", "-s"])
            .arg(self.key(ca))
            .args([
                "-I",
                &format!("{name}-id"),
                "-n",
                principals,
                "-V",
                validity,
            ])
            .args(extra)
            .arg(self.keys.join(format!("{name}.pub")))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }

    /// Commits `.airlock/reviewers` anew; returns its text.
    fn set_reviewers(&self, list: &[(&str, &str, &str)]) -> String {
        let text = self.reviewers(list);
        self.env
            .commit_file(".airlock/reviewers", &text, "reviewers");
        text
    }

    /// ssh-keygen's own verdict on `key` (a key or a certificate file) signing as
    /// `principal` under `reviewers`: the reference each airlock verdict is held to.
    fn ssh_keygen_admits(&self, reviewers: &str, principal: &str, key: &str) -> bool {
        let dir = self.env.tmp.path().join("reference");
        std::fs::create_dir_all(&dir).unwrap();
        let message = dir.join("message");
        std::fs::write(&message, b"reference").unwrap();
        let _ = std::fs::remove_file(dir.join("message.sig"));
        let signed = Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", "airlock-approval", "-f"])
            .arg(self.key(key))
            .arg(&message)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(signed.success());
        std::fs::write(dir.join("allowed"), reviewers).unwrap();
        ssh_keygen_verifies(
            &dir.join("allowed"),
            principal,
            &dir.join("message.sig"),
            &message,
        )
    }

    /// `approvals --export`: each approval's PAE and signature checked by ssh-keygen alone
    /// with the exported allowed_signers; what ssh-keygen said of each that verified
    /// (`Good "airlock-approval" signature for P with KIND key SHA256:…`), sorted.
    fn exported_and_verified_by_ssh_keygen(&self, run: &str) -> Vec<String> {
        let dir = self.env.tmp.path().join(format!("export-{run}"));
        let v = self.json_as(
            CAROL,
            &["approvals", run, "--export", dir.to_str().unwrap()],
            0,
        );
        let signers = dir.join("allowed_signers");
        let mut verified = Vec::new();
        for a in v["approvals"].as_array().unwrap() {
            let principal = a["principal"].as_str().unwrap();
            assert_eq!(a["verified"], true, "{a}");
            let pae = PathBuf::from(a["pae"].as_str().unwrap());
            let sig = PathBuf::from(a["sig"].as_str().unwrap());
            let out = Command::new("ssh-keygen")
                .args(["-Y", "verify", "-f"])
                .arg(&signers)
                .args(["-I", principal, "-n", "airlock-approval", "-s"])
                .arg(&sig)
                .stdin(std::fs::File::open(&pae).unwrap())
                .output()
                .unwrap();
            if out.status.success() {
                let said = String::from_utf8_lossy(&out.stdout);
                verified.push(said.split(" SHA256:").next().unwrap().to_string());
            }
        }
        verified.sort();
        verified
    }
}

#[test]
fn rsa_and_ecdsa_reviewers_approve_and_their_approvals_count_at_promote() {
    let team = Team::new(&[(ALICE, "alice", "")], None);
    let kinds: [(&str, &[&str]); 4] = [
        ("rsa", &["rsa", "-b", "3072"]),
        ("p256", &["ecdsa", "-b", "256"]),
        ("p384", &["ecdsa", "-b", "384"]),
        ("p521", &["ecdsa", "-b", "521"]),
    ];
    let principals: Vec<String> = kinds
        .iter()
        .map(|(name, _)| format!("{name}@example.com"))
        .collect();
    for (name, kind) in kinds {
        team.keygen_kind(name, kind);
    }
    let list: Vec<(&str, &str, &str)> = kinds
        .iter()
        .zip(&principals)
        .map(|((name, _), principal)| (principal.as_str(), *name, ""))
        .collect();
    let reviewers = team.set_reviewers(&list);
    // Every one of the four must approve: each approval has to verify to count.
    team.env.commit_file(
        ".airlock/owners",
        &format!("src/** {} n=4\n", principals.join(" ")),
        "owners",
    );
    let run = team.submitted_by(DEV);
    for ((name, _), principal) in kinds.iter().zip(&principals) {
        assert!(team.ssh_keygen_admits(&reviewers, principal, name));
        let out = team.approve(principal, &run, name);
        assert_eq!(out.code, 0, "{name}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stdout
                .contains(&format!(" run {run} (signed by {principal})")),
            "{}",
            out.stdout
        );
    }
    assert_eq!(team.env.state(&run), "approved");
    let good = |p: &str, kind: &str| {
        format!("Good \"airlock-approval\" signature for {p} with {kind} key")
    };
    assert_eq!(
        team.exported_and_verified_by_ssh_keygen(&run),
        [
            good("p256@example.com", "ECDSA"),
            good("p384@example.com", "ECDSA"),
            good("p521@example.com", "ECDSA"),
            good("rsa@example.com", "RSA"),
        ]
    );
    let out = team.as_(CAROL, &["promote", &run]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    team.env.assert_ledger_ok();
}

#[test]
fn an_approval_signed_with_a_certificate_counts_at_promote() {
    let team = Team::new(&[(ALICE, "alice", "")], None);
    team.keygen("ca");
    team.keygen_kind("erin", &["ecdsa", "-b", "384"]);
    team.certify("ca", "bob", BOB, "-5m:+1h", &[]);
    team.certify("ca", "erin", "erin@example.com", "-5m:+1h", &[]);
    let reviewers = team.set_reviewers(&[(
        "*@example.com",
        "ca",
        "cert-authority,namespaces=\"airlock-approval\"",
    )]);
    team.env.commit_file(
        ".airlock/owners",
        "src/** bob@example.com erin@example.com n=2\n",
        "owners",
    );
    let run = team.submitted_by(DEV);
    // The certificate file itself (its private key beside it)…
    assert!(team.ssh_keygen_admits(&reviewers, BOB, "bob-cert.pub"));
    let v = team.json_as(
        BOB,
        &[
            "approve",
            &run,
            "--key",
            team.keys.join("bob-cert.pub").to_str().unwrap(),
        ],
        0,
    );
    assert_eq!(v["principal"], BOB, "{v}");
    // …or the private key, its certificate beside it as ssh-keygen -s wrote it.
    assert!(team.ssh_keygen_admits(&reviewers, "erin@example.com", "erin-cert.pub"));
    let out = team.approve("erin@example.com", &run, "erin");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(team.env.state(&run), "approved");
    assert_eq!(
        team.exported_and_verified_by_ssh_keygen(&run),
        [
            format!("Good \"airlock-approval\" signature for {BOB} with ED25519-CERT key"),
            "Good \"airlock-approval\" signature for erin@example.com with ECDSA-CERT key"
                .to_string(),
        ]
    );
    let out = team.as_(CAROL, &["promote", &run]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    team.env.assert_ledger_ok();
}

#[test]
fn a_certificate_in_ssh_agent_signs_the_approval() {
    let team = Team::new(&[(ALICE, "alice", "")], None);
    team.keygen("ca");
    team.certify("ca", "bob", BOB, "-5m:+1h", &[]);
    team.set_reviewers(&[("*@example.com", "ca", "cert-authority")]);
    let run = team.submitted_by(DEV);
    let agent = Agent::start(team.env.tmp.path());
    // ssh-add loads bob and bob-cert.pub beside it.
    let add = Command::new("ssh-add")
        .arg("-q")
        .arg(team.key("bob"))
        .env("SSH_AUTH_SOCK", &agent.socket)
        .output()
        .unwrap();
    assert!(add.status.success(), "{add:?}");
    // Only the certificate is given; the private key is out of reach.
    let cert = team.keys.join("agent-only-cert.pub");
    std::fs::copy(team.keys.join("bob-cert.pub"), &cert).unwrap();
    std::fs::remove_file(team.key("bob")).unwrap();
    let out = team.env.airlock_env(
        &["approve", &run, "--key", cert.to_str().unwrap()],
        &[
            ("AIRLOCK_PRINCIPAL", BOB),
            ("SSH_AUTH_SOCK", agent.socket.to_str().unwrap()),
        ],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(team.env.state(&run), "approved");
    assert_eq!(
        team.exported_and_verified_by_ssh_keygen(&run),
        [format!(
            "Good \"airlock-approval\" signature for {BOB} with ED25519-CERT key"
        )]
    );
    let out = team.as_(CAROL, &["promote", &run]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}

/// Each certificate airlock refuses: the message, the exit code, nothing recorded, and
/// ssh-keygen's verdict on the same certificate and reviewers file.
#[test]
fn certificates_the_reviewers_file_does_not_admit_are_refused() {
    let team = Team::new(&[(ALICE, "alice", "")], None);
    team.keygen("ca");
    team.keygen("otherca");
    let mut reviewers = team.set_reviewers(&[
        ("*@example.com", "ca", "cert-authority"),
        (CAROL, "carol", ""),
        (DEV, "dev", ""),
    ]);
    let run = team.submitted_by(DEV);
    let case = |name: &str, ca: &str, principals: &str, validity: &str, extra: &[&str]| {
        team.keygen(name);
        team.certify(ca, name, principals, validity, extra);
        format!("{name}-cert.pub")
    };

    let cert = case("c1", "otherca", BOB, "-5m:+1h", &[]);
    let why = team.refused(BOB, &run, &cert, 1, "reviewer-unknown");
    assert!(why.contains("is not listed in .airlock/reviewers"), "{why}");
    assert!(!team.ssh_keygen_admits(&reviewers, BOB, &cert));

    let cert = case("c2", "ca", BOB, "20200101:20210101", &[]);
    let why = team.refused(BOB, &run, &cert, 1, "reviewer-key-expired");
    assert!(
        why.contains(
            "the certificate \"c2-id\" expired at 2021-01-01T00:00:00Z in .airlock/reviewers"
        ),
        "{why}"
    );
    assert!(!team.ssh_keygen_admits(&reviewers, BOB, &cert));

    let cert = case("c3", "ca", BOB, "-5m:+1h", &[]);
    let why = team.refused(ALICE, &run, &cert, 1, "reviewer-unknown");
    assert!(
        why.contains(
            "the certificate is not valid: it names bob@example.com, not alice@example.com"
        ),
        "{why}"
    );
    assert!(!team.ssh_keygen_admits(&reviewers, ALICE, &cert));

    let cert = case("c4", "ca", BOB, "-5m:+1h", &["-h"]);
    let why = team.refused(BOB, &run, &cert, 1, "reviewer-unknown");
    assert!(why.contains("it is a host certificate"), "{why}");
    assert!(!team.ssh_keygen_admits(&reviewers, BOB, &cert));

    // Carol's own key, certified for Bob: one key is one person. Stricter than ssh-keygen,
    // which accepts it (docs/team.md says so).
    team.certify("ca", "carol", BOB, "-5m:+1h", &[]);
    let why = team.refused(BOB, &run, "carol-cert.pub", 1, "reviewer-unknown");
    assert!(
        why.contains("is listed for carol@example.com, not for bob@example.com"),
        "{why}"
    );
    assert!(team.ssh_keygen_admits(&reviewers, BOB, "carol-cert.pub"));

    // A certificate that also names the run's author is the author's.
    let cert = case("c5", "ca", &format!("{BOB},{DEV}"), "-5m:+1h", &[]);
    let why = team.refused(BOB, &run, &cert, 1, "approver-is-author");
    assert!(
        why.contains("bob@example.com signs with a certificate that also names dev@example.com, who started the run"),
        "{why}"
    );
    assert!(team.ssh_keygen_admits(&reviewers, BOB, &cert));

    // The authority restricted to another namespace.
    reviewers = team.set_reviewers(&[("*@example.com", "ca", "cert-authority,namespaces=\"git\"")]);
    let cert = case("c6", "ca", BOB, "-5m:+1h", &[]);
    let why = team.refused(BOB, &run, &cert, 1, "reviewer-unknown");
    assert!(
        why.contains("may sign only in namespaces git, not airlock-approval"),
        "{why}"
    );
    assert!(!team.ssh_keygen_admits(&reviewers, BOB, &cert));

    // Nothing counted: still in review, and promote refuses.
    assert_eq!(team.env.state(&run), "in_review");
    let before = team.env.world();
    let v = team.json_as(CAROL, &["promote", &run], 1);
    assert_eq!(v["error"]["code"], "wrong-state", "{v}");
    team.env.assert_unchanged(&before);
}

// `approve` says how many of the approvals each owners' rule needs are in,
// and "approved" only when all are met (issue 20): a run the review panel
// approved alone is `approved` in state, yet promote needs the owners.

/// A workflow whose governed lane lets the panel approve `docs` runs alone.
const PANEL_WORKFLOW: &str = r#"[gates.build]
run = "test -f src/app.sh"
timeout = 30

[gates.test]
run = "sh tests/run.sh && echo 'test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s'"
timeout = 30

[lanes.governed]
auto_promote = ["docs"]

[classes.docs]
max_lane = "governed"
"#;

const PANEL_BRIEF: &str = r#"title = "Make greet polite"
objective = "greet prints a polite greeting"
non_goals = ["changing what else greet prints"]
touch = ["src/**", "tests/**"]
checks = ["build", "test"]
rollback = "revert the merge commit"
class = "docs"
"#;

#[test]
fn approve_after_the_panel_approved_alone_counts_the_owners_and_says_approved_only_when_met() {
    let team = Team::new(
        &[(ALICE, "alice", ""), (BOB, "bob", "")],
        Some("src/** alice@example.com bob@example.com n=2\n"),
    );
    team.env.commit_file(
        ".airlock/workflow.toml",
        PANEL_WORKFLOW,
        "panel decides docs",
    );
    let brief = team.env.write_brief("brief", PANEL_BRIEF);
    let v = team.json_as(DEV, &["start", &brief], 0);
    let run = v["run"].as_str().unwrap().to_string();
    let wt = PathBuf::from(v["worktree"].as_str().unwrap());
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    write(
        &wt.join("tests/run.sh"),
        "#!/bin/sh\nsh src/app.sh | grep -q 'hello, please'\n",
    );
    team.json_as(DEV, &["check", &run], 0);
    team.json_as(DEV, &["submit", &run], 0);
    let shown = team.json_as(DEV, &["show", &run, "--no-diff"], 0);
    assert_eq!(shown["state"], "approved", "{shown}");
    assert_eq!(shown["approval"]["by"], "panel", "{shown}");
    // Alice's signed approval: one of the two src/** needs.
    let key = team.key("alice");
    let v = team.json_as(ALICE, &["approve", &run, "--key", key.to_str().unwrap()], 0);
    assert_eq!(v["met"], false, "{v}");
    // src/** needs two (one in); tests/run.sh, which no rule names, one.
    let rules = v["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2, "{v}");
    let src = rules.iter().find(|r| r["pattern"] == "src/**").unwrap();
    assert_eq!(src["line"], 1);
    assert_eq!(src["approved"], 1);
    assert_eq!(src["needed"], 2);
    assert_eq!(src["approved_by"], serde_json::json!([ALICE]));
    let rest = rules.iter().find(|r| r["line"].is_null()).unwrap();
    assert_eq!((&rest["approved"], &rest["needed"]), (&1.into(), &1.into()));
    assert_eq!(v["missing"].as_array().unwrap().len(), 1, "{v}");
    // Bob's, in human form: not "approved" yet from Alice's; then met.
    let before = team.env.world();
    let v = team.json_as(DEV, &["promote", &run], 1);
    assert_eq!(v["error"]["code"], "approvals-missing", "{v}");
    team.env.assert_unchanged(&before);
    let out = team.approve(BOB, &run, "bob");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with(&format!("approved run {run} (signed by {BOB})")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("  met: src/** (line 1): 2 of 2 approvals from alice@example.com bob@example.com (src/app.sh"),
        "{}",
        out.stdout
    );
}

#[test]
fn approve_in_human_form_after_the_panel_approved_alone_does_not_say_approved() {
    let team = Team::new(
        &[(ALICE, "alice", ""), (BOB, "bob", "")],
        Some("src/** alice@example.com bob@example.com n=2\n"),
    );
    team.env.commit_file(
        ".airlock/workflow.toml",
        PANEL_WORKFLOW,
        "panel decides docs",
    );
    let brief = team.env.write_brief("brief", PANEL_BRIEF);
    let v = team.json_as(DEV, &["start", &brief], 0);
    let run = v["run"].as_str().unwrap().to_string();
    let wt = PathBuf::from(v["worktree"].as_str().unwrap());
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    write(
        &wt.join("tests/run.sh"),
        "#!/bin/sh\nsh src/app.sh | grep -q 'hello, please'\n",
    );
    team.json_as(DEV, &["check", &run], 0);
    team.json_as(DEV, &["submit", &run], 0);
    assert_eq!(team.env.state(&run), "approved");
    let out = team.approve(ALICE, &run, "alice");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stdout.starts_with("approved run"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!(
            "recorded the approval of run {run} (signed by {ALICE}) for proof sha256:"
        )) && out
            .stdout
            .contains("the owners' rules are not met yet, so `promote` refuses it:\n  missing: src/** (line 1): 1 of 2 approvals from alice@example.com bob@example.com (src/app.sh"),
        "{}",
        out.stdout
    );
}

// The built-in protection of the rules files (issue 20): a change to
// `reviewers`, `owners` or `runners` no owners' rule names needs two
// distinct reviewers when `reviewers` lists two or more, else one.

fn run_changing_runners(team: &Team) -> String {
    let brief = team.env.write_brief(
        "brief",
        &BRIEF.replace(
            r#"touch = ["src/**", "tests/**"]"#,
            r#"touch = ["src/**", "tests/**", ".airlock/runners"]"#,
        ),
    );
    let v = team.json_as(DEV, &["start", &brief], 0);
    let run = v["run"].as_str().unwrap().to_string();
    let wt = PathBuf::from(v["worktree"].as_str().unwrap());
    write(
        &wt.join(".airlock/runners"),
        &format!("{DEV} {}\n", team.public("dev")),
    );
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    team.json_as(DEV, &["check", &run], 0);
    team.json_as(DEV, &["submit", &run], 0);
    run
}

#[test]
fn a_change_to_the_rules_files_needs_two_reviewers_when_two_are_listed() {
    let team = Team::new(&[(ALICE, "alice", ""), (BOB, "bob", "")], None);
    let run = run_changing_runners(&team);
    let out = team.approve(ALICE, &run, "alice");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(
            "missing: .airlock/{reviewers,owners,runners} (built in): 1 of 2 approvals from anyone in .airlock/reviewers (.airlock/runners)"
        ),
        "{}",
        out.stdout
    );
    assert_eq!(team.env.state(&run), "in_review");
    let before = team.env.world();
    let v = team.json_as(ALICE, &["promote", &run], 1);
    assert_eq!(v["error"]["code"], "wrong-state", "{v}");
    team.env.assert_unchanged(&before);
    let out = team.approve(BOB, &run, "bob");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("approved run"), "{}", out.stdout);
    assert_eq!(team.env.state(&run), "approved");
}

#[test]
fn a_change_to_the_rules_files_needs_one_reviewer_when_one_is_listed() {
    let team = Team::new(&[(ALICE, "alice", "")], None);
    let run = run_changing_runners(&team);
    let out = team.approve(ALICE, &run, "alice");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("approved run"), "{}", out.stdout);
    assert_eq!(team.env.state(&run), "approved");
}
