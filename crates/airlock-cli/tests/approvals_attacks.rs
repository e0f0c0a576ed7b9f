//! Red team on issue 20's "Who decides": a hostile author, reviewer or team member with
//! database access tries to get a run approved without the approvals the rules ask for,
//! or to make airlock's output lie. Each test attempts the attack and checks that the run
//! is not approved, the target unchanged, and the output shown, never obeyed.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{BRIEF, Env, Output, write};
use serde_json::Value;

const DEV: &str = "dev@example.com";
const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const CAROL: &str = "carol@example.com";

/// A repository whose `main` holds `.airlock/reviewers` (written by the test, from the
/// keys' public halves) and people told apart by `AIRLOCK_PRINCIPAL` and their keys.
struct Team {
    env: Env,
    keys: PathBuf,
}

impl Team {
    fn new() -> Team {
        let env = Env::new();
        let keys = env.tmp.path().join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        let team = Team { env, keys };
        for name in ["dev", "alice", "bob", "carol"] {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
                .arg(team.key(name))
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        }
        team
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

    /// Commits `.airlock/reviewers` with one line per (principals, key name).
    fn reviewers(&self, lines: &[(&str, &str)]) {
        let text: String = lines
            .iter()
            .map(|(who, key)| format!("{who} {}\n", self.public(key)))
            .collect();
        self.env
            .commit_file(".airlock/reviewers", &text, "reviewers");
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

    /// `approve` refused with `code` (exit 1), nothing recorded; the refusal's reasons.
    fn refused(&self, principal: &str, run: &str, key: &str, code: &str) -> String {
        self.refused_with(principal, run, key, 1, code)
    }

    /// [`Team::refused`] with the exit code of the error's class (2: invalid input).
    fn refused_with(&self, principal: &str, run: &str, key: &str, exit: i32, code: &str) -> String {
        let before = self.env.world();
        let key = self.key(key);
        let v = self.json_as(
            principal,
            &["approve", run, "--key", key.to_str().unwrap()],
            exit,
        );
        assert_eq!(v["error"]["code"], code, "{v}");
        self.env.assert_unchanged(&before);
        v["error"]["reasons"].to_string()
    }
}

/// The author's own key, listed in `reviewers` under a second name, or on a wildcard line
/// that also names the author, or the author's name spelt in another case at `start`:
/// the author signs as someone else and is still refused as an author.
#[test]
fn the_author_cannot_approve_under_another_name() {
    // The same key twice, under two names (two lines, or one line with two principals).
    for lines in [
        vec![
            (DEV, "dev"),
            ("mallory@example.com", "dev"),
            (ALICE, "alice"),
        ],
        vec![
            ("dev@example.com,mallory@example.com", "dev"),
            (ALICE, "alice"),
        ],
        // A wildcard line: the key may sign as anyone at example.com, the author included.
        vec![("*@example.com", "dev"), (ALICE, "alice")],
    ] {
        let team = Team::new();
        team.reviewers(&lines);
        let run = team.submitted_by(DEV);
        let why = team.refused("mallory@example.com", &run, "dev", "approver-is-author");
        assert!(
            why.contains("signs with a key .airlock/reviewers:")
                && why.contains("(dev@example.com, who started the run)"),
            "{why}"
        );
        assert_eq!(team.env.state(&run), "in_review");
        // Someone with a key of their own may.
        let out = team.approve(ALICE, &run, "alice");
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(team.env.state(&run), "approved");
    }

    // The author starts the run as `Dev@Example.COM ` and approves as dev@example.com.
    let team = Team::new();
    team.reviewers(&[(DEV, "dev"), (ALICE, "alice")]);
    let run = team.submitted_by("Dev@Example.COM ");
    let why = team.refused(DEV, &run, "dev", "approver-is-author");
    assert!(why.contains("dev@example.com started the run"), "{why}");
    assert_eq!(team.env.state(&run), "in_review");
}

/// One key listed for two owners signs as each: it counts once, so `n=2` stays unmet and
/// promotion is refused; the same principal approving twice (two events) counts once too.
#[test]
fn one_key_signing_as_two_owners_counts_once() {
    let team = Team::new();
    team.reviewers(&[
        ("alice@example.com,bob@example.com", "alice"),
        (CAROL, "carol"),
    ]);
    team.env.commit_file(
        ".airlock/owners",
        "@core = alice@example.com bob@example.com carol@example.com\nsrc/** @core n=2\n",
        "owners",
    );
    let run = team.submitted_by(DEV);
    assert_eq!(team.approve(ALICE, &run, "alice").code, 0);
    // The same principal again: one approval.
    assert_eq!(team.approve(ALICE, &run, "alice").code, 0);
    assert_eq!(team.env.state(&run), "in_review");
    // The same key as bob: refused before anything is recorded.
    let why = team.refused(BOB, &run, "alice", "approvals-missing");
    assert!(
        why.contains("one key is one reviewer, whatever names .airlock/reviewers lists it under"),
        "{why}"
    );
    assert_eq!(team.env.state(&run), "in_review");
    let before = team.env.world();
    let v = team.json_as(CAROL, &["promote", &run], 1);
    assert_eq!(v["error"]["code"], "wrong-state", "{v}");
    team.env.assert_unchanged(&before);
    // A second person's key meets the rule.
    assert_eq!(team.approve(CAROL, &run, "carol").code, 0);
    assert_eq!(team.env.state(&run), "approved");
}

/// Drops the ledger's triggers and rewrites an event's data, as a team member with
/// write access to the database would.
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

fn approval_seq(env: &Env, run: &str) -> i64 {
    env.events(Some(run))
        .into_iter()
        .rev()
        .find(|e| e["kind"] == "approve" || e["kind"] == "approval")
        .unwrap()["seq"]
        .as_i64()
        .unwrap()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

/// A genuine approval's envelope rewritten in the database: its principal a line of
/// output and a shell command, then garbage, oversized, with an extra signature, another
/// payloadType, another predicateType, or a keyid naming another reviewer. `show`,
/// `review`, `approvals` and `promote` never panic, never approve, never promote, and
/// show the hostile text escaped (and quoted where it is a command to copy).
#[test]
fn a_hostile_approval_row_is_never_counted_nor_obeyed() {
    let team = Team::new();
    team.reviewers(&[(ALICE, "alice"), (BOB, "bob")]);
    let run = team.submitted_by(DEV);
    assert_eq!(team.approve(ALICE, &run, "alice").code, 0);
    let seq = approval_seq(&team.env, &run);
    let genuine = team
        .env
        .events(Some(&run))
        .into_iter()
        .rev()
        .find(|e| e["seq"].as_i64() == Some(seq));
    let genuine = genuine.unwrap()["data"]["envelope"].clone();
    let payload = String::from_utf8(unb64(genuine["payload"].as_str().unwrap())).unwrap();
    let main = team.env.rev("main");
    let pwned = team.env.tmp.path().join("pwned");
    let export = team.env.tmp.path().join("export").display().to_string();

    let injected = payload.replace(
        "\"principal\":\"alice@example.com\"",
        &format!(
            "\"principal\":\"x\\nevent 99: bob@example.com (verifies)\\u001b[2J$(touch {})\"",
            pwned.display()
        ),
    );
    assert_ne!(injected, payload);
    let with_payload = |p: &str| {
        let mut e = genuine.clone();
        e["payload"] = Value::String(b64(p.as_bytes()));
        e
    };
    let mut extra = genuine.clone();
    let sig = extra["signatures"][0].clone();
    extra["signatures"] = Value::Array(vec![sig.clone(), sig.clone()]);
    let mut other_type = genuine.clone();
    other_type["payloadType"] = Value::String("application/json".into());
    let mut keyid = genuine.clone();
    keyid["signatures"][0]["keyid"] = Value::String("SHA256:bob".into());
    keyid["signatures"][0]["sig"] = Value::String(b64(
        b"-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n",
    ));
    let cases: Vec<(&str, Value)> = vec![
        ("injected principal", with_payload(&injected)),
        ("garbage", Value::String("garbage".into())),
        ("an object of nothing", serde_json::json!({"payload": 7})),
        ("oversized", with_payload(&"x".repeat(200_000))),
        ("two signatures", extra),
        ("another payloadType", other_type),
        (
            "another predicateType",
            with_payload(&payload.replace(
                "https://airlock.dev/approval/v1",
                "https://slsa.dev/provenance/v1",
            )),
        ),
        ("a keyid claiming another key", keyid),
    ];
    for (what, envelope) in cases {
        tamper(&team.env, seq, &|d| d["envelope"] = envelope.clone());
        for args in [
            vec!["show", run.as_str(), "--no-diff", "--no-pager"],
            vec!["review"],
            vec!["approvals", run.as_str(), "--export", export.as_str()],
            vec!["log"],
        ] {
            let out = team.as_(BOB, &args);
            assert_ne!(out.code, 101, "{what}: {args:?} panicked: {}", out.stderr);
            let all = format!("{}{}", out.stdout, out.stderr);
            assert!(!all.contains('\u{1b}'), "{what}: {args:?}: {all}");
            assert!(
                !all.lines().any(|l| l.starts_with("event 99:")),
                "{what}: {args:?} printed a forged line: {all}"
            );
            if args[0] == "approvals" && what == "injected principal" {
                // Shown escaped on one line, and single-quoted: pasted into a shell, the
                // principal stays one word and nothing runs.
                let quoted = format!(
                    "-I 'x⏎event 99: bob@example.com (verifies)\\x1b[2J$(touch {})' -n airlock-approval",
                    pwned.display()
                );
                assert!(all.contains(&quoted), "{all}");
            }
        }
        let out = team.as_(BOB, &["--json", "promote", &run]);
        assert_ne!(out.code, 101, "{what}: promote panicked: {}", out.stderr);
        assert_ne!(out.code, 0, "{what}: promoted: {}", out.stdout);
        assert_eq!(team.env.rev("main"), main, "{what}");
        assert!(!pwned.exists());
    }
}

/// The author claims another name when starting the run (`AIRLOCK_PRINCIPAL` is a claim,
/// not a proof): with the machine's key in `.airlock/runners`, its owner is still an
/// author, and a reviewer whose key is the runner key is refused too.
#[test]
fn a_spoofed_principal_at_start_is_caught_by_the_runners_file() {
    let team = Team::new();
    team.reviewers(&[(DEV, "dev"), (ALICE, "alice")]);
    let machine =
        std::fs::read_to_string(team.env.home.join(".config/airlock/signing_key.pub")).unwrap();
    team.env.commit_file(
        ".airlock/runners",
        &format!("{DEV} {}", machine.trim()),
        "runners",
    );
    let run = team.submitted_by(ALICE);
    let why = team.refused(DEV, &run, "dev", "approver-is-author");
    assert!(
        why.contains("owns the machine key that signed the proof (.airlock/runners:1)"),
        "{why}"
    );
    assert_eq!(team.env.state(&run), "in_review");
}

/// The run's own commit rewrites every rules file: the author's key added on a wildcard
/// line and as a certificate authority with every namespace, the owners' team redefined
/// to one reviewer with a pattern that matches nothing for the rest, the runners emptied.
/// The rules at the target's tip decide: the author's key is unknown, and one approval of
/// a reviewer the new file names leaves the run in review; promotion is refused.
#[test]
fn a_run_that_rewrites_every_rules_file_is_judged_by_the_rules_before_it() {
    let team = Team::new();
    team.reviewers(&[(ALICE, "alice"), (BOB, "bob"), (CAROL, "carol")]);
    team.env.commit_file(
        ".airlock/owners",
        "@core = alice@example.com bob@example.com\n* @core n=2\n",
        "owners",
    );
    let brief = team.env.write_brief(
        "brief",
        &BRIEF.replace(
            r#"touch = ["src/**", "tests/**"]"#,
            r#"touch = ["src/**", "tests/**", ".airlock/reviewers", ".airlock/owners", ".airlock/runners"]"#,
        ),
    );
    let v = team.json_as(DEV, &["start", &brief], 0);
    let run = v["run"].as_str().unwrap().to_string();
    let wt = PathBuf::from(v["worktree"].as_str().unwrap());
    let dev = team.public("dev");
    write(
        &wt.join(".airlock/reviewers"),
        &format!("* cert-authority,namespaces=\"*\" {dev}\n*@example.com namespaces=\"*\" {dev}\n"),
    );
    write(
        &wt.join(".airlock/owners"),
        "@core = carol@example.com\nnothing-at-all/** @core n=1\n* @core\n",
    );
    write(&wt.join(".airlock/runners"), "");
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    team.json_as(DEV, &["check", &run], 0);
    team.json_as(DEV, &["submit", &run], 0);

    let why = team.refused("mallory@example.com", &run, "dev", "reviewer-unknown");
    assert!(why.contains("is not listed in .airlock/reviewers"), "{why}");
    let out = team.approve(CAROL, &run, "carol");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("missing: * (line 2): 0 of 2 approvals from @core"),
        "{}",
        out.stdout
    );
    assert_eq!(team.env.state(&run), "in_review");
    let before = team.env.world();
    let v = team.json_as(BOB, &["promote", &run], 1);
    assert_eq!(v["error"]["code"], "wrong-state", "{v}");
    team.env.assert_unchanged(&before);
}

/// A rules file on the target that is a symbolic link (to a permissive file), a
/// submodule, or larger than airlock reads: refused by name, never followed nor read,
/// and nothing recorded.
#[test]
fn rules_files_that_are_not_plain_bounded_files_are_refused() {
    let team = Team::new();
    team.reviewers(&[(ALICE, "alice"), (BOB, "bob")]);
    let run = team.submitted_by(DEV);
    let main = team.env.rev("main");

    // A symbolic link to a file that would admit the author's key.
    team.env.write(
        "docs/permissive",
        &format!("*@example.com {}\n", team.public("dev")),
    );
    std::fs::remove_file(team.env.repo.join(".airlock/reviewers")).unwrap();
    std::os::unix::fs::symlink(
        "../docs/permissive",
        team.env.repo.join(".airlock/reviewers"),
    )
    .unwrap();
    team.env.git(&["add", "-A"]);
    team.env.git(&["commit", "-q", "-m", "reviewers as a link"]);
    let why = team.refused_with("mallory@example.com", &run, "dev", 2, "reviewers-invalid");
    assert!(
        why.contains(".airlock/reviewers: it is not a regular file (mode 120000, blob)"),
        "{why}"
    );
    let why = team.refused_with(ALICE, &run, "alice", 2, "reviewers-invalid");
    assert!(why.contains("mode 120000"), "{why}");

    // Back to a plain file; the owners file a submodule (a gitlink).
    team.env.git(&["reset", "-q", "--hard", &main]);
    team.env.git(&[
        "update-index",
        "--add",
        "--cacheinfo",
        &format!("160000,{main},.airlock/owners"),
    ]);
    team.env
        .git(&["commit", "-q", "-m", "owners as a submodule"]);
    let why = team.refused_with(ALICE, &run, "alice", 2, "owners-invalid");
    assert!(
        why.contains(".airlock/owners: it is not a regular file (mode 160000, commit)"),
        "{why}"
    );

    // A reviewers file past the bound.
    team.env.git(&["reset", "-q", "--hard", &main]);
    let huge = format!(
        "{}\n{}",
        "# padding ".repeat(120_000),
        std::fs::read_to_string(team.env.repo.join(".airlock/reviewers")).unwrap()
    );
    team.env
        .commit_file(".airlock/reviewers", &huge, "huge reviewers");
    let why = team.refused_with(ALICE, &run, "alice", 2, "reviewers-invalid");
    assert!(why.contains("bytes, more than airlock reads"), "{why}");
    assert_eq!(team.env.state(&run), "in_review");
}

/// The author claims another name at `start` and runs on a machine `.airlock/runners`
/// does not list: nobody can tell the author's own approval from another's, so every
/// approval is refused until the proof comes from a listed machine.
#[test]
fn a_proof_from_a_machine_the_runners_file_does_not_list_cannot_be_approved() {
    let team = Team::new();
    team.reviewers(&[(DEV, "dev"), (ALICE, "alice")]);
    // The team's runners: a machine that is not this one.
    team.env.commit_file(
        ".airlock/runners",
        &format!("{ALICE} {}\n", team.public("alice")),
        "runners",
    );
    let run = team.submitted_by("zed@example.com");
    let why = team.refused(DEV, &run, "dev", "approver-is-author");
    assert!(
        why.contains("a machine key .airlock/runners does not list"),
        "{why}"
    );
    assert_eq!(team.env.state(&run), "in_review");
    // Listed, the machine's owner is known: dev is its author, alice may approve.
    let machine =
        std::fs::read_to_string(team.env.home.join(".config/airlock/signing_key.pub")).unwrap();
    team.env.commit_file(
        ".airlock/runners",
        &format!("{DEV} {}\n", machine.trim()),
        "runners",
    );
    let why = team.refused(DEV, &run, "dev", "approver-is-author");
    assert!(
        why.contains("owns the machine key that signed the proof"),
        "{why}"
    );
    assert_eq!(team.approve(ALICE, &run, "alice").code, 0);
    assert_eq!(team.env.state(&run), "approved");
}

/// The machine key that signed the proof is also listed as a reviewer's key: an approval
/// signed with it is the proof signer's, refused.
#[test]
fn the_proofs_own_key_listed_as_a_reviewer_cannot_approve() {
    let team = Team::new();
    let machine = team.env.home.join(".config/airlock/signing_key");
    let public =
        std::fs::read_to_string(team.env.home.join(".config/airlock/signing_key.pub")).unwrap();
    let run = {
        // The machine key exists once airlock has run; list it for carol, then submit.
        team.reviewers(&[(ALICE, "alice")]);
        let run = team.submitted_by(DEV);
        team.env.commit_file(
            ".airlock/reviewers",
            &format!(
                "{ALICE} {}\n{CAROL} {}\n",
                team.public("alice"),
                public.trim()
            ),
            "reviewers",
        );
        run
    };
    let before = team.env.world();
    let v = team.json_as(
        CAROL,
        &["approve", &run, "--key", machine.to_str().unwrap()],
        1,
    );
    assert_eq!(v["error"]["code"], "approver-is-author", "{v}");
    assert!(
        v["error"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("the key that signed the proof"),
        "{v}"
    );
    team.env.assert_unchanged(&before);
    assert_eq!(team.env.state(&run), "in_review");
}

/// A rename out of an owned directory (and the deletion it is) is counted under the old
/// path's rule too: moving `ci/pipeline.yml` to `src/` still needs `ci/**`'s two owners.
#[test]
fn a_rename_out_of_an_owned_path_needs_its_owners() {
    let team = Team::new();
    team.reviewers(&[(ALICE, "alice"), (BOB, "bob"), (CAROL, "carol")]);
    team.env.commit_file(
        ".airlock/owners",
        "@core = alice@example.com bob@example.com\nci/** @core n=2\n",
        "owners",
    );
    let brief = team.env.write_brief(
        "brief",
        &BRIEF.replace(
            r#"touch = ["src/**", "tests/**"]"#,
            r#"touch = ["src/**", "tests/**", "ci/**"]"#,
        ),
    );
    let v = team.json_as(DEV, &["start", &brief], 0);
    let run = v["run"].as_str().unwrap().to_string();
    let wt = PathBuf::from(v["worktree"].as_str().unwrap());
    std::fs::rename(wt.join("ci/pipeline.yml"), wt.join("src/pipeline.yml")).unwrap();
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    team.json_as(DEV, &["check", &run], 0);
    team.json_as(DEV, &["submit", &run], 0);
    let out = team.approve(CAROL, &run, "carol");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("missing: ci/** (line 2): 0 of 2 approvals from @core (ci/pipeline.yml)"),
        "{}",
        out.stdout
    );
    assert_eq!(team.env.state(&run), "in_review");
}

/// Principals are claims (`AIRLOCK_PRINCIPAL`) or an envelope's word (a wildcard line of
/// `reviewers` admits any name it matches): markup, a bidirectional override and a
/// backtick in them reach `show`, `log`, `approvals`, `report` and the web run page shown
/// as text, never as markup nor reordering the line.
#[test]
fn hostile_principal_names_are_shown_never_obeyed() {
    let team = Team::new();
    team.reviewers(&[("*@example.net", "bob")]);
    let redirector = "<img src=x onerror=alert(1)>`]\u{202e}@example.com";
    let approver = "<script>alert(2)</script>@example.net";
    let run = team.submitted_by(DEV);
    let out = team.as_(redirector, &["redirect", &run, "--reason", "again"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    team.json_as(DEV, &["check", &run], 0);
    team.json_as(DEV, &["submit", &run], 0);
    let out = team.approve(approver, &run, "bob");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(team.env.state(&run), "approved");
    for args in [
        vec!["show", run.as_str(), "--no-diff", "--no-pager"],
        vec!["log"],
        vec!["approvals", run.as_str()],
        vec!["report", run.as_str()],
    ] {
        let out = team.as_(CAROL, &args);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        assert!(!out.stdout.contains('\u{202e}'), "{args:?}: {}", out.stdout);
        // The redirector's name, where it is shown, with the override as an escape.
        assert!(
            args[0] == "approvals" || out.stdout.contains("\\u{202e}"),
            "{args:?}: {}",
            out.stdout
        );
    }
    let report = team.as_(CAROL, &["report", &run]).stdout;
    for line in report
        .lines()
        .filter(|l| l.contains("<script>") || l.contains("<img"))
    {
        // Inside a code span (its fence longer than any backtick run in the name).
        assert!(
            line.contains("` <img") || line.contains("` <script>"),
            "markup outside a code span: {line}"
        );
    }
    let mut layout = airlock_core::layout::Layout::discover(&team.env.repo).unwrap();
    layout.key_dir = team.env.home.join(".config").join("airlock");
    let al = airlock_core::Airlock::open_in(layout).unwrap();
    let ctx = airlock_web::pages::PageCtx {
        csrf: "csrf".into(),
        flash: None,
        user: "carol".into(),
    };
    let html = airlock_web::pages::run(&al, &run, None, &ctx)
        .unwrap()
        .into_string();
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(!html.contains('\u{202e}'), "{html}");
    assert!(html.contains("&lt;script&gt;alert(2)"), "{html}");
}

/// A genuine approval of round 1, its ledger event relabelled (by a database writer) as
/// one of round 2's proof after a redirect: it names round 1, so it does not count, and a
/// second owner's approval leaves the run one approval short.
#[test]
fn an_approval_of_an_earlier_round_relabelled_for_the_next_does_not_count() {
    let team = Team::new();
    team.reviewers(&[(ALICE, "alice"), (BOB, "bob"), (CAROL, "carol")]);
    team.env.commit_file(
        ".airlock/owners",
        "@core = alice@example.com bob@example.com carol@example.com\n* @core n=2\n",
        "owners",
    );
    let run = team.submitted_by(DEV);
    assert_eq!(team.approve(ALICE, &run, "alice").code, 0);
    let seq = approval_seq(&team.env, &run);
    let out = team.as_(BOB, &["redirect", &run, "--reason", "once more"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    team.json_as(DEV, &["check", &run], 0);
    team.json_as(DEV, &["submit", &run], 0);
    let digest = team
        .env
        .events(Some(&run))
        .into_iter()
        .rev()
        .find(|e| e["kind"] == "submit")
        .unwrap()["data"]["digest"]
        .clone();
    tamper(&team.env, seq, &|d| d["digest"] = digest.clone());
    let out = team.approve(CAROL, &run, "carol");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(team.env.state(&run), "in_review", "{}", out.stdout);
    let show = team.as_(CAROL, &["show", &run, "--no-diff", "--no-pager"]);
    assert!(
        show.stdout.contains(&format!(
            "it approves run {run} round 1, not run {run} round 2"
        )) && show.stdout.contains("1 of 2 approvals from @core"),
        "{}",
        show.stdout
    );
    let main = team.env.rev("main");
    let v = team.json_as(CAROL, &["promote", &run], 1);
    assert_ne!(v["error"]["code"], Value::Null, "{v}");
    assert_eq!(team.env.rev("main"), main);
}

/// A certificate authority's key on the target's `reviewers` signs an approval itself (no
/// certificate): a CA line admits certificates it issued, never plain signatures of its key.
#[test]
fn a_certificate_authoritys_own_key_cannot_approve() {
    let team = Team::new();
    team.reviewers(&[
        (
            "*@example.net cert-authority,namespaces=\"airlock-approval\"",
            "bob",
        ),
        (ALICE, "alice"),
    ]);
    let run = team.submitted_by(DEV);
    let why = team.refused("bob@example.net", &run, "bob", "reviewer-unknown");
    assert!(why.contains("is not listed in .airlock/reviewers"), "{why}");
    assert_eq!(team.env.state(&run), "in_review");
}
