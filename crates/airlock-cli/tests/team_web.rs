//! Team mode's logs and web page (issue 20): every log a run's commands
//! leave goes to the shared log store, and a reviewer's `airlock serve` on
//! another machine (its own home and state, the same PostgreSQL database and
//! the same shared log directory) shows the run, who did what, and its
//! output read from the shared store, checked against its digest. Spoken to
//! over HTTP on 127.0.0.1 with a real client (ureq), as web_server.rs does.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::web::{self, Reply, form, input_value, request};
use common::{BRIEF, Env, Output, WORKFLOW, write};
use serde_json::Value;

const ANA: &str = "ana@example.com";
const BOB: &str = "bob@example.com";

/// What ana's gate prints, on stdout and on stderr.
const GATE_OUT: &str = "all greetings polite, counted by ana";
const GATE_ERR: &str = "one warning from the test gate";

/// One machine: a clone with its own HOME, AIRLOCK_HOME, git config and
/// principal, on the shared database.
struct Machine {
    env: Env,
    principal: &'static str,
    url: String,
}

impl Machine {
    fn new(env: Env, principal: &'static str, url: &str) -> Machine {
        std::fs::create_dir_all(env.tmp.path().join("state")).unwrap();
        write(
            &env.tmp.path().join("gitconfig"),
            &format!("[user]\n\tname = {principal}\n\temail = {principal}\n"),
        );
        Machine {
            env,
            principal,
            url: url.to_string(),
        }
    }

    fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AIRLOCK_DATABASE_URL", self.url.clone()),
            ("AIRLOCK_PRINCIPAL", self.principal.to_string()),
            (
                "AIRLOCK_HOME",
                self.env.tmp.path().join("state").display().to_string(),
            ),
            (
                "GIT_CONFIG_GLOBAL",
                self.env.tmp.path().join("gitconfig").display().to_string(),
            ),
        ]
    }

    fn airlock(&self, args: &[&str]) -> Output {
        let mut cmd = self.env.cmd(args);
        cmd.envs(self.vars());
        cmd.output().unwrap().into()
    }

    fn json(&self, args: &[&str], code: i32) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        self.airlock(&full).expect_json(args, code)
    }

    fn key_line(&self) -> String {
        let init = self.airlock(&["init"]);
        assert_eq!(init.code, 0, "{}", init.stderr);
        self.json(&["key", "public"], 0)["public_key"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn events(&self, run: &str) -> Vec<Value> {
        self.json(&["log", run], 0)["events"]
            .as_array()
            .unwrap()
            .clone()
    }

    fn state(&self, run: &str) -> String {
        self.json(&["show", run, "--no-diff"], 0)["state"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn serve(&self) -> Serve {
        let vars = self.vars();
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let started = web::start_serve(&self.env, &vars);
        let mut serve = Serve {
            child: started.child,
            base: format!("http://{}", started.listen),
            cookie: String::new(),
        };
        let r = request("GET", &started.url, &[], None);
        assert_eq!(r.status, 303, "{}", r.body);
        let set = r.header("set-cookie").expect("a session cookie");
        serve.cookie = set.split(';').next().unwrap().to_string();
        serve
    }
}

/// A running `airlock serve` with its session, killed when dropped.
struct Serve {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    base: String,
    /// The session's `Cookie` header value.
    cookie: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    fn get(&self, path: &str) -> Reply {
        request(
            "GET",
            &format!("{}{path}", self.base),
            &[("cookie", &self.cookie)],
            None,
        )
    }

    /// A form POST as the browser on the review page sends it.
    fn post(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        request(
            "POST",
            &format!("{}{path}", self.base),
            &[
                ("cookie", &self.cookie),
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", &self.base),
            ],
            Some(form(fields).into_bytes()),
        )
    }
}

fn clone_of(remote: &Path) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(&home).unwrap();
    let env = Env { tmp, repo, home };
    env.git_in(
        env.tmp.path(),
        &["clone", "-q", &remote.display().to_string(), "repo"],
    );
    env
}

/// An ed25519 reviewer key made by ssh-keygen: (private key file, public line).
fn ssh_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public.trim().to_string())
}

/// Two machines on one database, one bare remote and one shared log
/// directory; ana (A) has a run submitted whose test gate printed
/// [`GATE_OUT`] and [`GATE_ERR`]; bob (B) reviews.
struct Team {
    a: Machine,
    b: Machine,
    logs: PathBuf,
    bob_key: PathBuf,
    run: String,
    /// Each machine's key fingerprint (`SHA256:…`).
    machine_a: String,
    _db: airlock_store_pg::testing::Database,
}

fn team() -> Team {
    let db = airlock_store_pg::testing::shared().database();
    let url = db.url();
    let a = Machine::new(Env::new(), ANA, &url);
    let remote = a.env.tmp.path().join("remote.git");
    let logs = a.env.tmp.path().join("shared-logs");
    std::fs::create_dir_all(&logs).unwrap();
    a.env.git(&[
        "clone",
        "-q",
        "--bare",
        &a.env.repo.display().to_string(),
        &remote.display().to_string(),
    ]);
    a.env
        .git(&["remote", "add", "origin", &remote.display().to_string()]);
    let b = Machine::new(clone_of(&remote), BOB, &url);

    let keys = a.env.tmp.path().join("reviewer-keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (_, ana_pub) = ssh_key(&keys, "ana");
    let (bob_key, bob_pub) = ssh_key(&keys, "bob");
    a.env.write(
        ".airlock/reviewers",
        &format!("{ANA} {ana_pub}\n{BOB} {bob_pub}\n"),
    );
    let (key_a, key_b) = (a.key_line(), b.key_line());
    a.env.write(
        ".airlock/runners",
        &format!("{ANA} {key_a}\n{BOB} {key_b}\n"),
    );
    let workflow = WORKFLOW.replace(
        "run = \"sh tests/run.sh\"",
        &format!("run = \"sh tests/run.sh && echo '{GATE_OUT}' && echo '{GATE_ERR}' >&2\""),
    );
    assert_ne!(workflow, WORKFLOW);
    a.env.write(
        ".airlock/workflow.toml",
        &format!(
            "{workflow}\n[team]\nremote = \"origin\"\n\n[store]\nlogs = \"{}\"\n",
            logs.display()
        ),
    );
    a.env.git(&["add", "-A"]);
    a.env
        .git(&["commit", "-q", "-m", "team mode: rules, remote, logs"]);
    a.env.git(&["push", "-q", "origin", "main"]);
    b.env.git(&["pull", "-q", "origin", "main"]);

    let brief = a.env.write_brief("brief", BRIEF);
    let started = a.json(&["start", &brief], 0);
    let run = started["run"].as_str().unwrap().to_string();
    let wt = PathBuf::from(started["worktree"].as_str().unwrap());
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    a.json(&["check", &run], 0);
    a.json(&["submit", &run], 0);
    let machine_a = a.events(&run)[0]["data"]["who"]["machine"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(machine_a.starts_with("SHA256:"), "{machine_a}");
    Team {
        a,
        b,
        logs,
        bob_key,
        run,
        machine_a,
        _db: db,
    }
}

/// The test gate's trace on A: its stdout and stderr logs (A's files) and
/// their digests.
fn gate_logs(t: &Team) -> Vec<(PathBuf, String)> {
    let traced = t.a.json(&["logs", &t.run, "test"], 0);
    traced["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                PathBuf::from(s["path"].as_str().unwrap()),
                s["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Where a test moves a log of A's out of the way (the stream's name kept).
fn away(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.away", path.display()))
}

fn blob(logs: &Path, sha: &str) -> PathBuf {
    logs.join("sha256").join(&sha[..2]).join(sha)
}

#[test]
fn machine_b_s_web_page_shows_machine_a_s_run_with_who_and_its_output_from_the_shared_store() {
    let t = team();
    let run = &t.run;
    // A's local logs moved away: on B they exist only in the shared store
    // (the test's machines share one disk, where A's files would be found).
    let local = gate_logs(&t);
    for (path, sha) in &local {
        assert!(blob(&t.logs, sha).is_file(), "{}", path.display());
        std::fs::rename(path, away(path)).unwrap();
    }
    let before = t.b.events(run).len();
    let serve = t.b.serve();
    let page = serve.get(&format!("/runs/{run}"));
    assert_eq!(page.status, 200, "{}", page.body);
    // The output, not the gate's command line (which holds the same words).
    let out_shown = format!("<pre class=\"output\">{GATE_OUT}\n</pre>");
    page.says(&out_shown)
        .says(&format!("<pre class=\"output\">{GATE_ERR}\n</pre>"))
        .says("from the shared log store")
        // Who: the ledger section names ana and her machine for each event.
        .says("<h2>Ledger</h2>")
        .says(ANA)
        .says(&t.machine_a);
    let row = |kind: &str| row_of(&page.body, kind);
    for kind in ["start", "check", "submit"] {
        let r = row(kind);
        assert!(r.contains(ANA) && r.contains(&t.machine_a), "{kind}: {r}");
    }
    assert!(!page.body.contains("the log is not on this machine"));
    assert_eq!(t.b.events(run).len(), before, "reading records nothing");

    // The attack: the shared copy of stdout replaced (a member with write
    // access to the share, or a disk that cut it short). The page names
    // the blob and shows none of it; `airlock logs` refuses it.
    let (_, sha) = &local[0];
    let shared = blob(&t.logs, sha);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let forged = "all greetings FORGED by mallory\n";
    std::fs::write(&shared, forged).unwrap();
    let page = serve.get(&format!("/runs/{run}"));
    assert_eq!(page.status, 200, "{}", page.body);
    page.says("log-corrupt")
        .says(&shared.display().to_string())
        .says("is not the log its trace recorded")
        .says(GATE_ERR);
    assert!(!page.body.contains("FORGED"), "{}", page.body);
    assert!(!page.body.contains(&out_shown), "{}", page.body);
    let out = t.b.airlock(&["--json", "logs", run, "test"]);
    assert_eq!(out.code, 4, "{}\n{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains("FORGED"), "{}", out.stdout);
    assert_eq!(out.json()["error"]["code"], "log-corrupt", "{}", out.stdout);
    assert_eq!(
        std::fs::read_to_string(&shared).unwrap(),
        forged,
        "a reader never rewrites the store"
    );
    for (path, _) in &local {
        std::fs::rename(away(path), path).unwrap();
    }

    // Bob approves with his key; the page, `show`, `log` and `report` on B
    // say who did what.
    t.b.json(&["approve", run, "--key", t.bob_key.to_str().unwrap()], 0);
    let page = serve.get(&format!("/runs/{run}"));
    assert!(
        page.body
            .split("<li>")
            .any(|d| d.contains("<strong>approve</strong>") && d.contains(&format!("by {BOB}"))),
        "{}",
        page.body
    );
    let r = row_of(&page.body, "approve");
    assert!(r.contains(BOB) && !r.contains(&t.machine_a), "{r}");
    let shown = t.b.airlock(&["show", run, "--no-diff"]);
    assert!(shown.stdout.contains(BOB), "{}", shown.stdout);
    let log = t.b.airlock(&["log", run]);
    assert!(
        log.stdout.contains(&format!("by {ANA}")) && log.stdout.contains(&format!("by {BOB}")),
        "{}",
        log.stdout
    );
    let report = t.b.airlock(&["report", run]);
    assert_eq!(report.code, 0, "{}", report.stderr);
    assert!(report.stdout.contains(BOB), "{}", report.stdout);
}

/// The row of the ledger section for the first event of `kind`.
fn row_of(body: &str, kind: &str) -> String {
    let at = body
        .find("<section class=\"events\">")
        .unwrap_or_else(|| panic!("no ledger section:\n{body}"));
    body[at..]
        .split("<tr>")
        .find(|r| r.contains(&format!("<td>{kind}</td>")))
        .unwrap_or_else(|| panic!("no {kind} row:\n{body}"))
        .to_string()
}

#[test]
fn in_team_mode_the_browser_s_approve_is_refused_409_naming_the_signed_command_nothing_recorded() {
    let t = team();
    let run = &t.run;
    let serve = t.b.serve();
    let page = serve.get(&format!("/runs/{run}"));
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = input_value(&page.body, "csrf");
    let digest = input_value(&page.body, "digest");
    let before = t.b.events(run).len();
    let r = serve.post(
        &format!("/runs/{run}/approve"),
        &[
            ("csrf", &csrf),
            ("digest", &digest),
            ("reason", "looks fine"),
        ],
    );
    assert_eq!(r.status, 409, "{}", r.body);
    r.says(&format!("run {run} needs a signed approval"))
        .says(&format!("airlock approve {run} --key"))
        .says("approval-unsigned");
    assert_eq!(t.b.events(run).len(), before, "nothing recorded");
    assert_eq!(t.b.state(run), "in_review");
    assert_eq!(t.a.state(run), "in_review");
}

#[test]
fn a_malformed_reviewers_or_owners_file_is_a_clear_page_never_a_500() {
    let t = team();
    let run = &t.run;
    let serve = t.b.serve();
    let page = serve.get(&format!("/runs/{run}"));
    let csrf = input_value(&page.body, "csrf");
    let digest = input_value(&page.body, "digest");
    let reviewers = t.b.env.read(".airlock/reviewers");
    for (file, text, code, says) in [
        (
            ".airlock/reviewers",
            format!("{reviewers}{BOB} ssh-ed25519 not-base64!\n"),
            "reviewers-invalid",
            ".airlock/reviewers:3",
        ),
        (
            ".airlock/owners",
            format!("src/** {BOB} n=zero\n"),
            "owners-invalid",
            ".airlock/owners:1",
        ),
    ] {
        // The rules on the remote's target branch (where airlock reads them
        // in team mode) broken, by a push of B's.
        t.b.env.git(&["pull", "-q", "--ff-only", "origin", "main"]);
        t.b.env.commit_file(file, &text, "break the rules file");
        t.b.env.git(&["push", "-q", "origin", "HEAD:main"]);
        let before = t.b.events(run).len();
        // The page still shows the run, and says what is wrong with the file.
        let page = serve.get(&format!("/runs/{run}"));
        assert_eq!(page.status, 200, "{file}: {}", page.body);
        page.says(says);
        // Approving is refused with a page naming the file, not a 500.
        let r = serve.post(
            &format!("/runs/{run}/approve"),
            &[("csrf", &csrf), ("digest", &digest)],
        );
        assert_eq!(r.status, 409, "{file}: {}", r.body);
        r.says(says).says(code);
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(t.b.events(run).len(), before, "{file}: nothing recorded");
        assert_eq!(t.b.state(run), "in_review");
        t.b.env.git(&["revert", "--no-edit", "HEAD"]);
        t.b.env.git(&["push", "-q", "origin", "HEAD:main"]);
    }
}

/// Every digest a run's records name (traces, promote's re-run gates, a
/// command action's output, a rehearsal) is a blob in the shared log store,
/// the bytes of the local log it was copied from. One machine (SQLite):
/// what is shared does not depend on the database.
#[test]
fn every_log_a_run_leaves_is_in_the_shared_store_promote_gates_rehearsals_and_actions_included() {
    let env = Env::new();
    let logs = env.tmp.path().join("shared-logs");
    env.write(
        ".airlock/workflow.toml",
        &format!(
            "{WORKFLOW}\n[lanes.governed]\nscopes = [\"command:notify\"]\n\n[store]\nlogs = \"{}\"\n",
            logs.display()
        ),
    );
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "shared logs"]);
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    let action = env.tmp.path().join("publish.toml");
    write(
        &action,
        r#"kind = "command"
name = "publish"
scopes = ["command:notify"]
argv = ["sh", "-c", "echo published by the action; echo action warning >&2"]
rehearse = ["sh", "-c", "echo rehearsed; grep -q please src/app.sh"]
"#,
    );
    env.json(&["propose", &run, action.to_str().unwrap()], 0);
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    env.json(&["approve", &run], 0);
    // The target moves (no overlap): promote re-runs the gates on the merge.
    env.commit_file("docs/guide.md", "# Guide, moved on\n", "docs move on");
    env.json(&["promote", &run], 0);

    let mut named: Vec<(String, String)> = Vec::new();
    for e in env.events(Some(&run)) {
        let kind = e["kind"].as_str().unwrap().to_string();
        for key in ["stdout_sha256", "stderr_sha256", "result_sha256"] {
            if let Some(sha) = e["data"][key].as_str() {
                named.push((format!("{kind} {key}"), sha.to_string()));
            }
        }
    }
    let traces = env.json(&["logs", &run], 0);
    let mut origins = Vec::new();
    for t in traces["traces"].as_array().unwrap() {
        origins.push(t["origin"].as_str().unwrap().to_string());
        for stream in ["stdout", "stderr"] {
            named.push((
                format!("trace {} {stream}", t["n"]),
                t[stream]["sha256"].as_str().unwrap().to_string(),
            ));
        }
    }
    assert!(
        origins.contains(&"rehearse:publish".to_string()),
        "{origins:?}"
    );
    let kinds: Vec<&str> = named.iter().map(|(k, _)| k.as_str()).collect();
    assert!(kinds.contains(&"promote-gate stdout_sha256"), "{kinds:?}");
    assert!(kinds.contains(&"promote-gate stderr_sha256"), "{kinds:?}");
    assert!(
        kinds.contains(&"action-finished result_sha256"),
        "{kinds:?}"
    );
    for (what, sha) in &named {
        assert!(
            blob(&logs, sha).is_file(),
            "{what}: sha256 {sha} is not in the shared store"
        );
        let bytes = std::fs::read(blob(&logs, sha)).unwrap();
        assert_eq!(&common::sha256_hex(&bytes), sha, "{what}");
    }
    // The action's output is there, by the digest its event names.
    let finished = env
        .events(Some(&run))
        .into_iter()
        .find(|e| e["kind"] == "action-finished")
        .unwrap();
    let sha = finished["data"]["result_sha256"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(blob(&logs, sha)).unwrap(),
        "published by the action\n"
    );
}

/// A soak probe's logs are in the shared store under the digests its
/// `soak-probe` event names, written before the event.
#[test]
fn a_soak_probe_s_logs_are_in_the_shared_store() {
    let env = Env::new();
    let logs = env.tmp.path().join("shared-logs");
    env.write(
        ".airlock/workflow.toml",
        &format!(
            r#"{WORKFLOW}
[gates.staging-clean]
soak = "24h"
probe = "echo probe says healthy; echo probe warning >&2"
every = "1h"

[lanes.staging]
scopes = []

[lanes.production]
scopes = ["http:POST:127.0.0.1:9/prod/*"]

[store]
logs = "{}"
"#,
            logs.display()
        ),
    );
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "soak gate, shared logs"]);
    let (run, wt) = env.start(&format!("{BRIEF}lane = \"production\"\n"));
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    // A production action (never sent here): what makes a promotion soak.
    let deploy = env.tmp.path().join("deploy-prod.toml");
    write(
        &deploy,
        "kind = \"http\"\nname = \"deploy-prod\"\nscopes = [\"http:POST:127.0.0.1:9/prod/*\"]\nmethod = \"POST\"\nurl = \"http://127.0.0.1:9/prod/deploy\"\n",
    );
    env.json(&["propose", &run, deploy.to_str().unwrap()], 0);
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    env.json(&["approve", &run], 0);
    let out = env.airlock_env(
        &["promote", &run],
        &[("AIRLOCK_TEST_NOW", "2030-01-01T00:00:00Z")],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let out = env.airlock_env(
        &["--json", "soak", &run],
        &[("AIRLOCK_TEST_NOW", "2030-01-01T01:00:00Z")],
    );
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let probe = env
        .events(Some(&run))
        .into_iter()
        .find(|e| e["kind"] == "soak-probe")
        .expect("a soak-probe event");
    assert_eq!(probe["data"]["logs_unshared"], Value::Null, "{probe}");
    for (key, text) in [
        ("stdout_sha256", "probe says healthy\n"),
        ("stderr_sha256", "probe warning\n"),
    ] {
        let sha = probe["data"][key].as_str().unwrap();
        assert_eq!(
            std::fs::read_to_string(blob(&logs, sha)).unwrap(),
            text,
            "{key}"
        );
    }
}
