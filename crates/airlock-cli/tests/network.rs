//! The `network` setting (issue 16, "Egress by host"): `"off"`, `"on"` or a
//! list of hosts in `[sandbox]`, `[lanes.NAME]` and the brief. Bad input is
//! refused when the file is read, with its line and what to write instead,
//! and a brief may only narrow its lane's network, never widen it: each
//! refusal is checked for its message, its exit code, and that nothing was
//! written.

mod common;

use common::both;
use common::http::HttpServer as Server;
use common::{BRIEF, Caller, Env, Jail, WORKFLOW};
use serde_json::Value;

/// A repository whose workflow is the harness's with `extra` appended.
fn env_with(extra: &str) -> Env {
    let env = Env::new();
    env.write(".airlock/workflow.toml", &format!("{WORKFLOW}\n{extra}"));
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "workflow"]);
    env
}

/// 1-based line of the first line of `text` starting with `prefix`.
fn line_of(text: &str, prefix: &str) -> usize {
    text.lines().position(|l| l.starts_with(prefix)).unwrap() + 1
}

/// `airlock start` of `brief` refused at load (exit 2), nothing written;
/// returns stderr.
fn start_refused(env: &Env, brief: &str) -> String {
    let path = env.write_brief("refused", brief);
    let before = env.world();
    let out = env.fails(&["start", &path], 2);
    env.assert_unchanged(&before);
    assert!(
        env.airlock_branches().is_empty(),
        "a run ref was made: {}",
        env.airlock_branches()
    );
    out.stderr
}

#[test]
fn malformed_network_entries_in_the_workflow_are_refused_with_their_lines() {
    let extra = "[lanes.governed]\nnetwork = [\n  \"pypi.org\",\n  \"*\",\n  \"*.10.0.0.5\",\n  \"https://crates.io/api\",\n  \"a..b\",\n]\n";
    let env = env_with(extra);
    let text = format!("{WORKFLOW}\n{extra}");
    let stderr = start_refused(&env, BRIEF);
    for (entry, problem, instead) in [
        (
            "\"*\"",
            "network entry `*`: a bare `*` would allow every host",
            "write `network = \"on\"` to allow the whole network",
        ),
        (
            "\"*.10.0.0.5\"",
            "network entry `*.10.0.0.5`: a wildcard never matches an address",
            "write the address itself, such as `10.0.0.5`",
        ),
        (
            "\"https://",
            "network entry `https://crates.io/api`: an entry is a host, not a URL",
            "write `crates.io`",
        ),
        (
            "\"a..b\"",
            "network entry `a..b`: `a..b` has an empty label",
            "write a host name such as `example.com`",
        ),
    ] {
        let line = line_of(&text, &format!("  {entry}"));
        assert!(
            stderr.contains(&format!("workflow.toml:{line}:3: {problem}")),
            "{entry}: {stderr}"
        );
        assert!(stderr.contains(instead), "{entry}: {stderr}");
    }
    assert!(!stderr.contains("`pypi.org`"), "{stderr}");
}

#[test]
fn a_network_setting_that_is_neither_on_off_nor_a_list_is_refused() {
    let env = env_with("[sandbox]\nnetwork = \"pypi.org\"\n");
    let text = format!("{WORKFLOW}\n[sandbox]\nnetwork = \"pypi.org\"\n");
    let line = line_of(&text, "network = ");
    let stderr = start_refused(&env, BRIEF);
    assert!(
        stderr.contains(&format!(
            "workflow.toml:{line}:11: `network` must be \"on\", \"off\" or a list of hosts, found \"pypi.org\""
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("to allow that host: `network = [\"pypi.org\"]`"),
        "{stderr}"
    );
    let env = env_with("[lanes.staging]\nnetwork = true\n");
    let stderr = start_refused(&env, BRIEF);
    assert!(
        stderr.contains("`network` must be \"on\", \"off\" or a list of hosts, found a boolean"),
        "{stderr}"
    );
}

#[test]
fn a_resolve_entry_that_is_not_an_address_is_refused_with_its_line() {
    let extra = "[sandbox]\nresolve = {\"pkg.test\" = [\"127.0.0.1\", \"localhost\"], \"-bad-\" = \"10.0.0.1\"}\n";
    let env = env_with(extra);
    let text = format!("{WORKFLOW}\n{extra}");
    let line = line_of(&text, "resolve = ");
    let stderr = start_refused(&env, BRIEF);
    assert!(
        stderr.contains(&format!(
            "workflow.toml:{line}:39: `localhost` in `resolve` is not an IP address"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("`resolve` names `-bad-`: the label `-bad-` starts or ends with `-`"),
        "{stderr}"
    );
}

#[test]
fn a_malformed_entry_in_a_brief_is_refused_with_its_line() {
    let env = Env::new();
    let brief = format!("{BRIEF}network = [\"pypi.org\", \"foo*.example.com\"]\n");
    let line = line_of(&brief, "network = ");
    let stderr = start_refused(&env, &brief);
    assert!(
        stderr.contains(&format!(
            ":{line}:24: network entry `foo*.example.com`: `*` may only be the whole first label"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("write `*.example.com` to allow the names under `example.com`"),
        "{stderr}"
    );
}

/// Today's hole: a brief turned the network on by itself. Under a lane
/// whose network is off (the default) that is a widening, refused at start.
#[test]
fn a_brief_cannot_turn_the_network_on_by_itself() {
    let env = Env::new();
    let brief = format!("{BRIEF}network = \"on\"\n");
    let line = line_of(&brief, "network = ");
    let stderr = start_refused(&env, &brief);
    assert!(
        stderr.contains(&format!(
            ":{line}:11: `network` widens lane `governed`: `on`: the lane's network is off ([sandbox] network is \"off\")"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "a brief may only narrow its lane's network: remove `on` from the brief, or grant it in the workflow under [lanes.governed]"
        ),
        "{stderr}"
    );
    // Nor a list of hosts.
    let stderr = start_refused(&env, &format!("{BRIEF}network = [\"pypi.org\"]\n"));
    assert!(
        stderr.contains("`network` widens lane `governed`: `pypi.org`: the lane's network is off"),
        "{stderr}"
    );
}

#[test]
fn a_brief_may_narrow_its_lane_but_never_widen_it() {
    let env = env_with(
        "[lanes.governed]\nnetwork = [\"pypi.org:443\", \"*.pythonhosted.org\"]\n\n[lanes.staging]\nnetwork = \"on\"\n",
    );
    // `on` under a list of hosts.
    let stderr = start_refused(&env, &format!("{BRIEF}network = \"on\"\n"));
    assert!(
        stderr.contains(
            "`network` widens lane `governed`: `on`: `on` allows every host; the lane allows a list of hosts: list the ones needed ([lanes.governed] network is [\"pypi.org:443\", \"*.pythonhosted.org\"])"
        ),
        "{stderr}"
    );
    // A host the lane does not list, another port, the apex of a wildcard:
    // each its own diagnostic.
    let stderr = start_refused(
        &env,
        &format!(
            "{BRIEF}network = [\"files.pythonhosted.org\", \"evil.example\", \"pypi.org\", \"pythonhosted.org\"]\n"
        ),
    );
    for widening in [
        "`evil.example`: the lane does not allow this host",
        "`pypi.org`: the lane allows this host on port 443 only (`pypi.org:443`); add that port",
        "`pythonhosted.org`: the lane does not allow this host",
    ] {
        assert!(
            stderr.contains(&format!("`network` widens lane `governed`: {widening}")),
            "{widening}: {stderr}"
        );
    }
    assert!(!stderr.contains("`files.pythonhosted.org`"), "{stderr}");

    // Narrowing is accepted: a sub-list, "off", and anything under "on".
    for narrower in [
        "network = [\"files.pythonhosted.org\", \"pypi.org:443\"]\n",
        "network = \"off\"\n",
        "lane = \"staging\"\nnetwork = [\"example.com\"]\n",
        "lane = \"staging\"\nnetwork = \"on\"\n",
    ] {
        let path = env.write_brief("narrow", &format!("{BRIEF}{narrower}"));
        let v = env.json(&["start", &path], 0);
        assert!(v["run"].is_string(), "{narrower}: {v}");
    }
}

/// `brief check` reads the brief with the workflow too, so the widening is
/// found before any run is started.
#[test]
fn brief_check_reports_a_widening() {
    let env = Env::new();
    let path = env.write_brief("wide", &format!("{BRIEF}network = \"on\"\n"));
    let before = env.world();
    let out = env.fails(&["brief", "check", &path], 2);
    assert!(
        out.stderr
            .contains("`network` widens lane `governed`: `on`"),
        "{}",
        out.stderr
    );
    env.assert_unchanged(&before);
}

// ---- The engine: commands whose network is a list of hosts ----------------

/// A jail whose lane `governed` reaches `pkg.test` (the test's server, by
/// the documented `[sandbox] resolve` name map) and nothing else; a gate
/// `fetch` that downloads from it.
fn egress_jail(c: Caller, server: &Server) -> Jail {
    let port = server.port;
    Jail::new(
        c,
        &format!(
            "{WORKFLOW}\n[gates.fetch]\nrun = \"curl -sSf http://pkg.test:{port}/from-gate\"\ntimeout = 30\n\n\
             [sandbox]\nresolve = {{\"pkg.test\" = \"127.0.0.1\", \"other.test\" = \"127.0.0.1\"}}\n\n\
             [lanes.governed]\nnetwork = [\"pkg.test:{port}\", \"127.0.0.1:{port}\"]\n"
        ),
    )
}

fn last_trace(j: &Jail, run: &str) -> Value {
    let v = j.json(&["show", run, "--no-pager"], 0);
    v["traces"].as_array().unwrap().last().unwrap().clone()
}

fn curl_through_the_proxy_reaches_a_listed_host_and_nothing_else(c: Caller) {
    let server = Server::start();
    let port = server.port;
    let j = egress_jail(c, &server);
    let (run, wt) = j.start(BRIEF);

    // Plain HTTP (absolute form) and a CONNECT tunnel (`-p`), by name.
    let out = j.airlock(&[
        "exec",
        &run,
        "--",
        "sh",
        "-c",
        &format!(
            "curl -sSf http://pkg.test:{port}/plain && curl -sSfp http://pkg.test:{port}/tunnel"
        ),
    ]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.stdout, "served /plain\nserved /tunnel\n");
    let trace = last_trace(&j, &run);
    assert_eq!(trace["network"], false, "{trace}");
    assert_eq!(
        trace["egress"],
        serde_json::json!([format!("pkg.test:{port}"), format!("127.0.0.1:{port}")])
    );
    let connections = trace["connections"].as_array().unwrap();
    assert_eq!(connections.len(), 2, "{trace}");
    for (conn, protocol) in connections.iter().zip(["http", "connect"]) {
        assert_eq!(conn["protocol"], protocol, "{conn}");
        assert_eq!(conn["host"], "pkg.test", "{conn}");
        assert_eq!(conn["port"], port, "{conn}");
        assert_eq!(conn["outcome"], "allowed", "{conn}");
        assert_eq!(conn["address"], format!("127.0.0.1:{port}"), "{conn}");
        assert!(
            conn["rule"]
                .as_str()
                .unwrap()
                .starts_with(&format!("pkg.test:{port}")),
            "{conn}"
        );
        assert!(conn["bytes_down"].as_u64().unwrap() > 0, "{conn}");
        assert!(conn["bytes_up"].as_u64().unwrap() > 0, "{conn}");
    }
    assert_eq!(server.requests().len(), 2, "{:?}", server.requests());

    // A host the lane does not list: refused by the proxy, the server sees
    // nothing, the client is told which setting would allow it.
    let out = j.airlock(&[
        "exec",
        &run,
        "--",
        "curl",
        "-sS",
        &format!("http://other.test:{port}/secret"),
    ]);
    assert_eq!(out.code, 0, "curl got the proxy's answer: {}", out.stderr);
    assert!(
        out.stdout
            .contains(&format!("network = [\"other.test:{port}\"]")),
        "{}",
        out.stdout
    );
    assert_eq!(server.requests().len(), 2, "{:?}", server.requests());
    assert!(
        out.stderr.contains(&format!(
            "hint: the egress proxy refused other.test:{port} (network = [\"other.test:{port}\"]): \
             to allow a host, add it to `network` under [lanes.governed] in .airlock/workflow.toml"
        )),
        "{}",
        out.stderr
    );
    // A direct connection, bypassing the proxy: no route at all.
    let out = j.airlock(&[
        "exec",
        &run,
        "--",
        "curl",
        "-sS",
        "--noproxy",
        "*",
        "--max-time",
        "5",
        &format!("http://127.0.0.1:{port}/direct"),
    ]);
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert_eq!(server.requests().len(), 2, "{:?}", server.requests());

    let v = j.json(&["show", &run, "--no-pager"], 0);
    let traces = v["traces"].as_array().unwrap();
    let refused = &traces[traces.len() - 2];
    assert_eq!(refused["connections"][0]["outcome"], "refused", "{refused}");
    assert_eq!(
        refused["connections"][0]["allow_with"],
        format!("network = [\"other.test:{port}\"]")
    );
    assert_eq!(refused["connections"][0]["bytes_up"], 0);
    assert!(
        refused["hint"]
            .as_str()
            .unwrap()
            .contains(&format!("network = [\"other.test:{port}\"]")),
        "{refused}"
    );
    assert_eq!(
        v["egress"]["reached"],
        serde_json::json!([{"host": "pkg.test", "port": port, "connections": 2,
            "bytes_up": traces[0]["connections"][0]["bytes_up"].as_u64().unwrap()
                + traces[0]["connections"][1]["bytes_up"].as_u64().unwrap(),
            "bytes_down": traces[0]["connections"][0]["bytes_down"].as_u64().unwrap()
                + traces[0]["connections"][1]["bytes_down"].as_u64().unwrap()}])
    );
    assert_eq!(v["egress"]["refused"][0]["host"], "other.test", "{v}");
    assert_eq!(v["egress"]["refused"][0]["trace"], refused["n"], "{v}");
    let human = j.airlock(&["show", &run, "--no-pager", "--no-diff"]);
    assert_eq!(human.code, 0, "{}", human.stderr);
    assert!(
        human.stdout.contains(&format!(
            "network: only pkg.test:{port}, 127.0.0.1:{port} (egress proxy), 2 connection(s)"
        )),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains(&format!(
            "REFUSED #{} other.test:{port}: not in the network allowlist (to allow: network = [\"other.test:{port}\"])",
            refused["n"]
        )),
        "{}",
        human.stdout
    );
    assert!(
        human
            .stdout
            .contains(&format!("reached pkg.test:{port}: 2 connection(s)")),
        "{}",
        human.stdout
    );
    // The traces and the network section, whole.
    let from = human.stdout.find("\ntraces:").unwrap();
    let to = human.stdout.find("\nactions (").unwrap();
    let part = &human.stdout[from..to];
    let port_pattern = format!(r"\b{port}\b");
    insta::with_settings!({
        filters => vec![
            (port_pattern.as_str(), "[PORT]"),
            (r"in \d+ ms", "in [N] ms"),
            (r"\b\d+ B\b", "[N] B"),
        ],
    }, {
        insta::assert_snapshot!("show_egress_traces_and_network", part);
    });

    // The proof carries every connection, and still verifies.
    common::write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    let out = j.airlock(&["check", &run]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let out = j.airlock(&["submit", &run]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let v = j.json(&["proof", "verify", &run], 0);
    assert_eq!(v["verified"], true, "{v}");
    let v = j.json(&["show", &run, "--no-diff", "--no-pager"], 0);
    let bundle = std::fs::read_to_string(v["proof"]["path"].as_str().unwrap()).unwrap();
    let evidence = statement_with(&bundle, "traces");
    let traced = evidence["predicate"]["traces"].as_array().unwrap();
    assert_eq!(
        traced[0]["connections"], v["traces"][0]["connections"],
        "{evidence}"
    );
    assert_eq!(traced[0]["egress"], v["traces"][0]["egress"]);
    assert_eq!(traced[1]["connections"][0]["outcome"], "refused");
    let limits = statement_with(&bundle, "confidence_limits");
    assert!(
        limits["predicate"]["confidence_limits"]
            .to_string()
            .contains("reached only the hosts of their lane's list"),
        "{limits}"
    );

    // A gate runs through the proxy too, and its trace keeps the record.
    let brief = BRIEF.replace(
        "checks = [\"build\", \"test\"]",
        "checks = [\"build\", \"test\", \"fetch\"]",
    );
    let (gated, _) = j.start(&brief);
    let out = j.airlock(&["check", &gated]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        server.requests().iter().any(|r| r.contains("/from-gate")),
        "{:?}",
        server.requests()
    );
    let v = j.json(&["show", &gated, "--no-pager"], 0);
    let fetch = v["traces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["origin"] == "gate:fetch")
        .unwrap_or_else(|| panic!("{v}"))
        .clone();
    assert_eq!(fetch["connections"][0]["outcome"], "allowed", "{fetch}");
    assert_eq!(fetch["connections"][0]["host"], "pkg.test", "{fetch}");
    drop(wt);
}

/// The statement of a bundle whose predicate has `field`.
fn statement_with(bundle: &str, field: &str) -> Value {
    use base64::Engine;
    for line in bundle.lines() {
        let envelope: Value = serde_json::from_str(line).unwrap();
        let payload = base64::engine::general_purpose::STANDARD
            .decode(envelope["payload"].as_str().unwrap())
            .unwrap();
        let statement: Value = serde_json::from_slice(&payload).unwrap();
        if !statement["predicate"][field].is_null() {
            return statement;
        }
    }
    panic!("no statement with {field} in the bundle");
}

/// What a command of a list-of-hosts run sees: the proxy variables naming
/// the bridge, and none of the offline settings of a run without network.
fn a_list_of_hosts_sets_the_proxy_variables_and_not_the_offline_ones(c: Caller) {
    let server = Server::start();
    let j = egress_jail(c, &server);
    let (run, _) = j.start(BRIEF);
    let out = j.airlock(&[
        "exec",
        &run,
        "--",
        "sh",
        "-c",
        "echo $HTTP_PROXY $https_proxy $ALL_PROXY $NO_PROXY [$CARGO_NET_OFFLINE$PIP_NO_INDEX$GOPROXY]",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "http://127.0.0.1:3128 http://127.0.0.1:3128 http://127.0.0.1:3128 localhost,127.0.0.1,::1 []\n"
    );
}

/// If the proxy cannot start, the command is refused and never runs (with
/// a direct route or any other).
fn a_proxy_that_cannot_start_refuses_the_command(c: Caller) {
    let server = Server::start();
    let port = server.port;
    let j = egress_jail(c, &server);
    let (run, wt) = j.start(BRIEF);
    // Where the proxy's private directory goes, a file instead.
    let egress_dir = j.home.join(".config/airlock/egress");
    assert!(j.home.join(".config/airlock").is_dir());
    let _ = std::fs::remove_dir_all(&egress_dir);
    j.plant(&egress_dir, "not a directory\n");
    let before = j.world();
    let out = j.airlock(&[
        "exec",
        &run,
        "--",
        "sh",
        "-c",
        &format!("echo ran > ran.txt; curl -sS http://pkg.test:{port}/refused"),
    ]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("refusing to run the command: its egress proxy could not start"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("never run with a direct route"),
        "{}",
        out.stderr
    );
    let v = j.json(&["exec", &run, "--", "true"], 1);
    assert_eq!(v["error"]["code"], "egress-not-started", "{v}");
    assert!(!wt.join("ran.txt").exists(), "the command ran");
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    let after = j.world();
    assert_eq!(before.runs, after.runs);
    assert_eq!(before.fingerprint, after.fingerprint);
}

/// A command action's rehearsal runs in the run's sandbox, so through its
/// proxy too, and its trace keeps the connection.
#[test]
fn a_rehearsal_reaches_the_listed_host_through_the_proxy() {
    let server = Server::start();
    let port = server.port;
    let j = Jail::new(
        Caller::Current,
        &format!(
            "{WORKFLOW}\n[sandbox]\nresolve = {{\"pkg.test\" = \"127.0.0.1\"}}\n\n\
             [lanes.governed]\nnetwork = [\"pkg.test:{port}\", \"127.0.0.1:{port}\"]\nscopes = [\"command:notify\"]\n"
        ),
    );
    let (run, _) = j.start(BRIEF);
    let action = j.tmp.path().join("publish.toml");
    std::fs::write(
        &action,
        format!(
            "kind = \"command\"\nname = \"publish\"\nscopes = [\"command:notify\"]\n\
             argv = [\"true\"]\nrehearse = [\"curl\", \"-sSf\", \"http://pkg.test:{port}/rehearsal\"]\n"
        ),
    )
    .unwrap();
    let out = j.airlock(&["propose", &run, action.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        server.requests(),
        vec!["GET /rehearsal HTTP/1.1".to_string()]
    );
    let v = j.json(&["show", &run, "--no-pager"], 0);
    let rehearsal = v["traces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["origin"] == "rehearse:publish")
        .unwrap_or_else(|| panic!("{v}"))
        .clone();
    assert_eq!(
        rehearsal["connections"][0]["outcome"], "allowed",
        "{rehearsal}"
    );
    assert_eq!(
        rehearsal["connections"][0]["host"], "pkg.test",
        "{rehearsal}"
    );
}

both!(
    curl_through_the_proxy_reaches_a_listed_host_and_nothing_else,
    a_list_of_hosts_sets_the_proxy_variables_and_not_the_offline_ones,
    a_proxy_that_cannot_start_refuses_the_command,
);
