//! Soak gates: a run with production actions is promoted in two stages.
//! The first promotion merges and applies the staging actions; probes run
//! while the run soaks in staging; a second promotion applies the
//! production actions only once the soak is over and every probe passed.
//!
//! Real peers: an HTTP server on 127.0.0.1 receives the actions, the
//! airlock binary's own client sends them. Time is the test build's clock
//! (`AIRLOCK_TEST_NOW`), moved forward by each command; no test waits.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::Value;

/// An HTTP server answering 200 and recording each request's path and
/// idempotency key.
struct HttpPeer {
    port: u16,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl HttpPeer {
    fn start() -> HttpPeer {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for rq in server.incoming_requests() {
                let key = rq
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Idempotency-Key"))
                    .map(|h| h.value.to_string())
                    .unwrap_or_default();
                log.lock().unwrap().push((rq.url().to_string(), key));
                let _ = rq.respond(tiny_http::Response::from_string("ok"));
            }
        });
        HttpPeer { port, seen }
    }

    fn paths(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }

    fn keys(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(_, k)| k.clone())
            .collect()
    }
}

/// The clock every command of a test reads: `T0` plus `minutes`.
fn at(minutes: u64) -> String {
    let t0 = humantime::parse_rfc3339("2030-01-01T00:00:00Z").unwrap();
    humantime::format_rfc3339(t0 + std::time::Duration::from_secs(minutes * 60)).to_string()
}

const H: u64 = 60;

struct Soak {
    env: Env,
    server: HttpPeer,
    run: String,
    /// The file the probe reads: `healthy` passes.
    status: PathBuf,
}

impl Soak {
    /// A production-lane run with a staging and a production action,
    /// approved, under a 24h soak gate whose probe reads `status` (and
    /// runs `probe.sh` from the promoted tree when `agent_probe`).
    fn approved(name: &str, agent_probe: Option<&str>) -> Soak {
        Soak::with(name, agent_probe, None)
    }

    /// With `network`, the probe asks the HTTP peer for `/health` with
    /// curl, and `[lanes.production] network` is what `network` says.
    fn with(name: &str, agent_probe: Option<&str>, network: Option<&str>) -> Soak {
        let server = HttpPeer::start();
        let port = server.port;
        let dir = outside_private_tmp(&format!("soak-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let status = dir.join("status");
        std::fs::write(&status, "healthy\n").unwrap();
        let probe = match (agent_probe, network) {
            (_, Some(_)) => format!("curl -fsS http://staging.test:{port}/health"),
            (Some(_), None) => format!("sh src/probe.sh; grep -qx healthy {}", status.display()),
            (None, None) => format!("cat {0}; grep -qx healthy {0}", status.display()),
        };
        let network = network
            .map(|n| format!("network = {}\n", n.replace("PORT", &port.to_string())))
            .unwrap_or_default();
        let env = Env::new();
        env.write(
            ".airlock/workflow.toml",
            &format!(
                r#"{WORKFLOW}
[sandbox]
resolve = {{"staging.test" = "127.0.0.1"}}

[gates.staging-clean]
soak = "24h"
probe = "{probe}"
every = "1h"

[lanes.staging]
scopes = ["http:POST:127.0.0.1:{port}/staging/*"]

[lanes.production]
scopes = ["http:POST:127.0.0.1:{port}/prod/*"]
{network}"#
            ),
        );
        env.git(&["add", "-A"]);
        env.git(&["commit", "-q", "-m", "soak gate"]);
        let brief = format!("{BRIEF}lane = \"production\"\n");
        let (run, wt) = env.start(&brief);
        write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
        if let Some(script) = agent_probe {
            let script = script
                .replace("RUN_ID", &run)
                .replace("REPO", env.repo.to_str().unwrap());
            write(&wt.join("src/probe.sh"), &script);
        }
        for (action, path) in [("deploy-staging", "staging"), ("deploy-prod", "prod")] {
            let file = env.tmp.path().join(format!("{action}.toml"));
            write(
                &file,
                &format!(
                    "kind = \"http\"\nname = \"{action}\"\nscopes = [\"http:POST:127.0.0.1:{port}/{path}/*\"]\nmethod = \"POST\"\nurl = \"http://127.0.0.1:{port}/{path}/deploy\"\n"
                ),
            );
            env.json(&["propose", &run, file.to_str().unwrap()], 0);
        }
        env.json(&["check", &run], 0);
        env.json(&["submit", &run], 0);
        env.json(&["approve", &run], 0);
        Soak {
            env,
            server,
            run,
            status,
        }
    }

    fn at(&self, minutes: u64, args: &[&str]) -> Output {
        self.env
            .airlock_env(args, &[("AIRLOCK_TEST_NOW", &at(minutes))])
    }

    fn json_at(&self, minutes: u64, args: &[&str], code: i32) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        self.at(minutes, &full).expect_json(args, code)
    }

    fn action_states(&self) -> Vec<(String, String)> {
        self.env.json(&["plan", &self.run], 0)["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["spec"]["name"].as_str().unwrap().to_string(),
                    a["state"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn kinds(&self, kind: &str) -> usize {
        self.env
            .events(Some(&self.run))
            .iter()
            .filter(|e| e["kind"] == kind)
            .count()
    }
}

impl Drop for Soak {
    fn drop(&mut self) {
        if let Some(dir) = self.status.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn states(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn staging_actions_run_at_promotion_and_production_ones_only_after_a_passed_soak() {
    let s = Soak::approved("pass", None);
    let run = s.run.clone();

    // First promotion: merged, the staging action sent once, the
    // production one held; the run soaks from now (the test clock's T0).
    let out = s.at(0, &["promote", &run]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("deploy-prod (http): planned: held: a production action"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("soak: 24h left, 0 of 0 probes passed"),
        "{}",
        out.stdout
    );
    assert_eq!(s.server.paths(), vec!["/staging/deploy"]);
    assert_eq!(s.env.state(&run), "promoted");
    assert_eq!(
        s.action_states(),
        states(&[("deploy-staging", "done"), ("deploy-prod", "planned")])
    );
    let promote = s
        .env
        .events(Some(&run))
        .into_iter()
        .find(|e| e["kind"] == "promote")
        .unwrap();
    assert_eq!(
        promote["data"]["soak"]["entered"],
        "2030-01-01T00:00:00.000Z"
    );
    assert_eq!(promote["data"]["soak"]["production"][0], "deploy-prod");

    // `--actions-only` does not let the held action go either.
    let v = s.json_at(60, &["promote", &run, "--actions-only"], 0);
    assert_eq!(v["actions"]["held"][0], "deploy-prod");
    assert_eq!(s.server.paths(), vec!["/staging/deploy"]);

    // Probes: one due at entry; then one an hour.
    let v = s.json_at(60, &["soak", &run], 0);
    assert_eq!(v["ran"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["ran"][0]["passed"], true);
    assert_eq!(v["ran"][0]["at"], "2030-01-01T01:00:00.000Z");
    assert_eq!(v["ran"][0]["output"], "healthy\n");
    assert_eq!(
        v["status"]["summary"],
        "soak: 23h left, 1 of 1 probes passed"
    );
    let out = s.at(90, &["soak", &run]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("no probe was due\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("soak: 22h 30m left, 1 of 1 probes passed"),
        "{}",
        out.stdout
    );
    let out = s.at(120, &["soak", &run]);
    assert!(
        out.stdout.contains("probe staging-clean: passed"),
        "{}",
        out.stdout
    );

    // `show` says how long remains and lists the probes.
    let out = s.at(23 * H, &["show", &run, "--no-pager"]);
    assert!(
        out.stdout.contains("soak: 1h left, 2 of 2 probes passed"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("probe staging-clean at 2030-01-01T01:00:00.000Z: passed (exit 0)"),
        "{}",
        out.stdout
    );
    let out = s.at(23 * H + 30, &["check", &run]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("soak: 30m left, 2 of 2 probes passed"),
        "{}",
        out.stdout
    );
    let v = s.json_at(23 * H, &["show", &run], 0);
    assert_eq!(v["soak"]["left_secs"], 3600);
    assert_eq!(v["soak"]["gates"][0]["probes"], 2);

    // Before the soak ends: refused with the time left, nothing applied.
    let before = s.env.world();
    let out = s.at(23 * H + 59, &["promote", &run]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains(&format!(
            "refusing to promote run {run} to production: it soaks in staging for 1m more"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("held: deploy-prod; nothing was applied"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("airlock soak {run}")),
        "{}",
        out.stderr
    );
    let v = s.json_at(23 * H + 59, &["promote", &run], 1);
    assert_eq!(v["error"]["code"], "soak-not-over");
    s.env.assert_unchanged(&before);
    assert_eq!(s.server.paths(), vec!["/staging/deploy"]);
    assert_eq!(s.kinds("soak-probe"), 2);

    // Once it is over: a last probe, then the production action, once.
    let out = s.at(24 * H, &["promote", &run]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("deploy-prod (http): done: HTTP 200"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("soak: passed, 3 of 3 probes passed; production actions released"),
        "{}",
        out.stdout
    );
    assert_eq!(s.server.paths(), vec!["/staging/deploy", "/prod/deploy"]);
    assert_eq!((s.kinds("soak-probe"), s.kinds("soak-passed")), (3, 1));

    // The probes are signed evidence too: a bundle beside the run's proof,
    // its SSH signature checked by ssh-keygen, its statement listing them.
    let v = s.json_at(24 * H, &["show", &run], 0);
    let bundle = PathBuf::from(v["soak"]["proof"].as_str().unwrap());
    let jsonl = std::fs::read(&bundle).unwrap();
    let public = s.env.airlock(&["key", "public"]).stdout.trim().to_string();
    let dir = s.env.tmp.path();
    std::fs::write(dir.join("allowed_signers"), format!("airlock {public}\n")).unwrap();
    let verify = |bytes: &[u8]| {
        use std::io::Write as _;
        let mut child = std::process::Command::new("ssh-keygen")
            .current_dir(dir)
            .args(["-Y", "verify", "-f", "allowed_signers", "-I", "airlock"])
            .args(["-n", "airlock-proof", "-s"])
            .arg(format!("{}.sig", bundle.display()))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(bytes).unwrap();
        child.wait_with_output().unwrap().status.success()
    };
    assert!(verify(&jsonl));
    let mut flipped = jsonl.clone();
    flipped[jsonl.len() / 3] ^= 1;
    assert!(!verify(&flipped));
    let first: Value =
        serde_json::from_slice(jsonl.split(|b| *b == b'\n').next().unwrap()).unwrap();
    use base64::Engine as _;
    let statement: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(first["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(statement["predicateType"], "https://airlock.dev/soak/v1");
    assert_eq!(
        statement["predicate"]["probes"].as_array().unwrap().len(),
        3
    );
    assert_eq!(
        statement["predicate"]["passed_at"],
        "2030-01-02T00:00:00.000Z"
    );
    // Its ledger anchor is a witness `ledger verify` checks.
    let v = s.env.json(&["ledger", "verify"], 0);
    let anchor = v["anchors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["proof"] == bundle.to_str().unwrap())
        .unwrap_or_else(|| panic!("{v}"))
        .clone();
    assert_eq!(
        (anchor["witness"].as_bool(), anchor["ok"].as_bool()),
        (Some(true), Some(true)),
        "{anchor}"
    );

    // Again: nothing is sent twice, no probe runs.
    let v = s.json_at(30 * H, &["promote", &run], 0);
    assert_eq!(v["actions"]["complete"], true);
    let out = s.at(30 * H, &["promote", &run, "--actions-only"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(s.server.paths().len(), 2);
    assert_eq!(s.kinds("soak-probe"), 3);
    s.env.assert_ledger_ok();
}

#[test]
fn a_failed_probe_keeps_the_production_actions_from_ever_running() {
    let s = Soak::approved("fail", None);
    let run = s.run.clone();
    assert_eq!(s.at(0, &["promote", &run]).code, 0);
    // What a probe prints comes from the agent's tree: hostile.
    std::fs::write(&s.status, "503 from staging\n\x1b]0;owned\x07\x1b[2J\n").unwrap();
    let out = s.at(2 * H, &["soak", &run]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(!out.stdout.contains('\x1b'), "{}", out.stdout);
    assert!(
        out.stdout.contains("probe staging-clean: failed (exit 1"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("  | 503 from staging"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("soak: failed: probe `staging-clean` failed"),
        "{}",
        out.stdout
    );

    // Staging is healthy again, the soak long over: still refused, with
    // the failed probe's output and what to do.
    std::fs::write(&s.status, "healthy\n").unwrap();
    let before = s.env.world();
    let out = s.at(48 * H, &["promote", &run]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains(&format!(
            "refusing to promote run {run} to production: a soak probe failed in staging"
        )),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("503 from staging"), "{}", out.stderr);
    assert!(!out.stderr.contains('\x1b'), "{}", out.stderr);
    assert!(
        out.stderr.contains("held, never applied: deploy-prod"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("airlock rollback {run} --reason")),
        "{}",
        out.stderr
    );
    let v = s.json_at(48 * H, &["promote", &run], 1);
    assert_eq!(v["error"]["code"], "soak-probe-failed");
    s.env.assert_unchanged(&before);
    // No probe runs after a failure; `--actions-only` holds too.
    let out = s.at(49 * H, &["soak", &run]);
    assert!(out.stdout.starts_with("no probe was due"), "{}", out.stdout);
    let v = s.json_at(49 * H, &["promote", &run, "--actions-only"], 0);
    assert_eq!(v["actions"]["held"][0], "deploy-prod");
    assert_eq!(s.server.paths(), vec!["/staging/deploy"]);
    assert_eq!(s.kinds("soak-probe"), 1);

    // The way out: roll back.
    let out = s.at(49 * H, &["rollback", &run, "--reason", "staging went down"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(s.env.state(&run), "rolled_back");
    let v = s.json_at(50 * H, &["promote", &run, "--actions-only"], 1);
    assert_eq!(v["error"]["code"], "wrong-state");
    assert_eq!(s.server.paths(), vec!["/staging/deploy"]);
    s.env.assert_ledger_ok();
}

#[test]
fn soak_refuses_an_unknown_gate_and_a_run_that_is_not_soaking() {
    let s = Soak::approved("refusals", None);
    let run = s.run.clone();
    let before = s.env.world();
    let v = s.json_at(0, &["soak", &run], 1);
    assert_eq!(v["error"]["code"], "not-soaking");
    let out = s.at(0, &["soak", &run]);
    assert!(
        out.stderr
            .contains(&format!("run {run} is not soaking in staging")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("it is approved"), "{}", out.stderr);
    s.env.assert_unchanged(&before);

    assert_eq!(s.at(0, &["promote", &run]).code, 0);
    let before = s.env.world();
    let out = s.at(H, &["soak", &run, "--gate", "staging-clena"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(&format!(
            "run {run} does not soak under a gate `staging-clena`"
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("its soak gates: staging-clean"),
        "{}",
        out.stderr
    );
    let v = s.json_at(H, &["soak", &run, "--gate", "nope"], 1);
    assert_eq!(v["error"]["code"], "unknown-soak-gate");
    s.env.assert_unchanged(&before);
    assert_eq!(s.kinds("soak-probe"), 0);
    // A named gate runs now, due or not.
    let v = s.json_at(H + 1, &["soak", &run, "--gate", "staging-clean"], 0);
    assert_eq!(v["ran"].as_array().unwrap().len(), 1);
}

#[test]
fn a_run_without_production_actions_is_promoted_in_one_stage() {
    let server = HttpPeer::start();
    let port = server.port;
    let env = Env::new();
    env.write(
        ".airlock/workflow.toml",
        &format!(
            "{WORKFLOW}\n[gates.staging-clean]\nsoak = \"24h\"\nprobe = \"false\"\n[lanes.staging]\nscopes = [\"http:POST:127.0.0.1:{port}/staging/*\"]\n"
        ),
    );
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "soak gate"]);
    let (run, wt) = env.start(&format!("{BRIEF}lane = \"staging\"\n"));
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    let file = env.tmp.path().join("a.toml");
    write(
        &file,
        &format!(
            "kind = \"http\"\nname = \"deploy-staging\"\nscopes = [\"http:POST:127.0.0.1:{port}/staging/*\"]\nmethod = \"POST\"\nurl = \"http://127.0.0.1:{port}/staging/deploy\"\n"
        ),
    );
    env.json(&["propose", &run, file.to_str().unwrap()], 0);
    env.json(&["check", &run], 0);
    env.json(&["submit", &run], 0);
    env.json(&["approve", &run], 0);
    let v = env.json(&["promote", &run], 0);
    assert_eq!(v["actions"]["complete"], true);
    assert!(v.get("soak").is_none(), "{v}");
    assert_eq!(server.paths(), vec!["/staging/deploy"]);
    assert_eq!(env.json(&["soak", &run], 1)["error"]["code"], "not-soaking");
}

/// Kills at every point of both stages; each action still takes effect
/// once, and the production action never before the soak passed.
#[test]
fn a_kill_at_any_point_of_either_stage_recovers_and_holds() {
    for point in [
        "promote:after-ref",
        "promote:after-checkout",
        "action:after-live",
    ] {
        let s = Soak::approved(&format!("kill1-{}", point.replace(':', "-")), None);
        let run = s.run.clone();
        let out = s.env.airlock_env(
            &["promote", &run],
            &[("AIRLOCK_TEST_NOW", &at(0)), ("AIRLOCK_FAILPOINT", point)],
        );
        assert_eq!(out.code, -1, "{point}: {}", out.stderr);
        // Recovery finishes the promotion with its soak; the production
        // action stays held whatever applies the rest.
        let out = s.at(H, &["promote", &run, "--actions-only"]);
        assert_eq!(out.code, 0, "{point}: {}\n{}", out.stdout, out.stderr);
        assert_eq!(
            s.action_states(),
            states(&[("deploy-staging", "done"), ("deploy-prod", "planned")]),
            "{point}"
        );
        assert_eq!(
            s.server
                .paths()
                .iter()
                .filter(|p| *p == "/prod/deploy")
                .count(),
            0,
            "{point}"
        );
        let v = s.json_at(H, &["show", &run], 0);
        assert_eq!(v["soak"]["entered"], "2030-01-01T00:00:00.000Z", "{point}");
        // An interrupted http action is sent again with the same key.
        let keys = s.server.keys();
        assert!(keys.windows(2).all(|w| w[0] == w[1]), "{point}: {keys:?}");
    }

    for point in [
        "soak:before-passed",
        "soak:after-passed",
        "action:after-started",
    ] {
        let s = Soak::approved(&format!("kill2-{}", point.replace(':', "-")), None);
        let run = s.run.clone();
        assert_eq!(s.at(0, &["promote", &run]).code, 0);
        let out = s.env.airlock_env(
            &["promote", &run],
            &[
                ("AIRLOCK_TEST_NOW", &at(24 * H)),
                ("AIRLOCK_FAILPOINT", point),
            ],
        );
        assert_eq!(out.code, -1, "{point}: {}", out.stderr);
        let out = s.at(24 * H + 1, &["promote", &run]);
        assert_eq!(out.code, 0, "{point}: {}\n{}", out.stdout, out.stderr);
        assert_eq!(
            s.action_states(),
            states(&[("deploy-staging", "done"), ("deploy-prod", "done")]),
            "{point}"
        );
        let prod: Vec<String> = s
            .server
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == "/prod/deploy")
            .map(|(_, k)| k.clone())
            .collect();
        assert!(
            !prod.is_empty() && prod.iter().all(|k| *k == prod[0]),
            "{point}: {prod:?}"
        );
        assert_eq!(s.kinds("soak-passed"), 1, "{point}");
        s.env.assert_ledger_ok();
    }
}

/// The agent's code runs in the probe (`probe.sh` of the promoted tree).
/// It sets the variable a test build reads its clock from, writes clock
/// and ledger look-alikes where it can, and runs airlock itself to
/// promote: the soak is not shortened and nothing reaches production.
#[test]
fn red_team_a_probe_cannot_shorten_the_soak() {
    let airlock = env!("CARGO_BIN_EXE_airlock");
    let script = format!(
        "export AIRLOCK_TEST_NOW=2100-01-01T00:00:00Z TZ=UTC-100 FAKETIME=+100d\n\
         echo 2100-01-01T00:00:00Z > clock; echo 2100-01-01T00:00:00Z > \"$TMPDIR/clock\" 2>/dev/null\n\
         touch -d 2100-01-01 . 2>/dev/null\n\
         env -u AIRLOCK_RUN {airlock} -C REPO promote RUN_ID 2>&1 | head -3\n\
         env -u AIRLOCK_RUN {airlock} promote RUN_ID 2>&1 | head -3\n\
         true\n",
    );
    let s = Soak::approved("clock", Some(&script));
    let run = s.run.clone();
    assert_eq!(s.at(0, &["promote", &run]).code, 0);
    let v = s.json_at(H, &["soak", &run], 0);
    assert_eq!(v["ran"][0]["passed"], true, "{v}");
    // airlock in the sandbox found nothing to promote.
    let output = v["ran"][0]["output"].as_str().unwrap();
    assert!(output.contains("error"), "{output}");
    assert!(!output.contains("promoted run"), "{output}");
    let v = s.json_at(H, &["soak", &run, "--gate", "staging-clean"], 0);
    assert_eq!(v["status"]["left_secs"], 23 * 3600, "{v}");
    let out = s.at(H, &["promote", &run]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stderr.contains("it soaks in staging for 23h more"),
        "{}",
        out.stderr
    );
    assert_eq!(s.server.paths(), vec!["/staging/deploy"]);
    assert_eq!(
        s.action_states(),
        states(&[("deploy-staging", "done"), ("deploy-prod", "planned")])
    );
    s.env.assert_ledger_ok();
}

/// A probe runs with the run's lane's network, through airlock's egress
/// proxy when that is a list of hosts (its connections recorded); with
/// the network off it cannot reach staging and the soak fails.
#[test]
fn a_probe_reaches_staging_only_through_the_lanes_network() {
    let s = Soak::with(
        "net-hosts",
        None,
        Some(r#"["staging.test:PORT", "127.0.0.1:PORT"]"#),
    );
    let run = s.run.clone();
    assert_eq!(s.at(0, &["promote", &run]).code, 0);
    let v = s.json_at(H, &["soak", &run], 0);
    assert_eq!(v["ran"][0]["passed"], true, "{v}");
    assert_eq!(v["ran"][0]["connections"], 1, "{v}");
    assert!(s.server.paths().contains(&"/health".to_string()));
    let probe = s
        .env
        .events(Some(&run))
        .into_iter()
        .find(|e| e["kind"] == "soak-probe")
        .unwrap();
    let connection = &probe["data"]["connections"][0];
    assert_eq!(connection["host"], "staging.test", "{probe}");
    assert_eq!(connection["outcome"], "allowed", "{probe}");

    let s = Soak::with("net-off", None, Some(r#""off""#));
    let run = s.run.clone();
    assert_eq!(s.at(0, &["promote", &run]).code, 0);
    let v = s.json_at(H, &["soak", &run], 1);
    assert_eq!(v["ran"][0]["passed"], false, "{v}");
    assert!(!s.server.paths().contains(&"/health".to_string()));
    let v = s.json_at(25 * H, &["promote", &run], 1);
    assert_eq!(v["error"]["code"], "soak-probe-failed");
    assert_eq!(s.server.paths(), vec!["/staging/deploy"]);
}
