//! The whole pipeline with real clients: `airlock exec` in a run whose lane
//! lists hosts runs curl (CONNECT and SOCKS5 to HTTPS), `git clone` over
//! HTTPS and `pip install` from a package index through the egress proxy
//! airlock starts, against servers this test runs on 127.0.0.1 (named by
//! the documented `[sandbox] resolve` map); the trace and `show` record
//! each connection. The same clients aimed at a host the lane does not list
//! are refused, and that host's server sees nothing.

mod common;

use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;

use airlock_nettest::{Pki, Served, Site, require_clients};
use common::both;
use common::{BRIEF, Caller, Jail, WORKFLOW, outside_private_tmp};
use serde_json::Value;

const PACKAGE: &str = "airlock-probe";
const PACKAGE_VALUE: &str = "installed by an airlock run";
const README: &str = "cloned by an airlock run\n";

/// Servers for one test: `https` (pkg.test and git.test, the lane's
/// hosts) and `victim`, serving the same repository and index, which
/// `denied.test` names and nothing may reach.
struct Servers {
    https: Served,
    victim: Served,
    ca: String,
    commit: String,
    _dir: tempfile::TempDir,
}

impl Servers {
    fn start() -> Servers {
        let parent = outside_private_tmp("egress-clients");
        std::fs::create_dir_all(&parent).unwrap();
        let dir = tempfile::tempdir_in(&parent).unwrap();
        // An unprivileged caller's sandbox reads the authority's certificate.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let pki = Pki::make(&dir.path().join("pki"), &["pkg.test", "git.test"]);
        let site = Site::new(&dir.path().join("site"));
        let commit = site.repository("project", &[("README.md", README)]);
        site.package_index(PACKAGE, "airlock_probe", PACKAGE_VALUE);
        Servers {
            https: Served::start(&site, "https", Ipv4Addr::LOCALHOST, Some(&pki)),
            victim: Served::start(&site, "victim", Ipv4Addr::UNSPECIFIED, None),
            ca: pki.ca.display().to_string(),
            commit,
            _dir: dir,
        }
    }

    /// A jail whose lane `governed` (a plain brief's) lists the HTTPS
    /// server's names and address, and nothing else.
    fn jail(&self, caller: Caller) -> Jail {
        let s = self.https.port();
        Jail::new(
            caller,
            &format!(
                "{WORKFLOW}\n[sandbox]\nresolve = {{\"pkg.test\" = \"127.0.0.1\", \
                 \"git.test\" = \"127.0.0.1\", \"denied.test\" = \"127.0.0.1\"}}\n\n\
                 [lanes.governed]\nnetwork = [\"pkg.test:{s}\", \"git.test:{s}\", \"127.0.0.1:{s}\"]\n"
            ),
        )
    }
}

/// `airlock exec RUN -- sh -c SCRIPT` with git and pip kept from any
/// configuration of the machine; (exit code, stdout, stderr).
fn exec(j: &Jail, run: &str, script: &str) -> (i32, String, String) {
    let script = format!(
        "export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null PIP_CONFIG_FILE=/dev/null \
         PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1; {script}"
    );
    let out = j.airlock(&["exec", run, "--timeout", "300s", "--", "sh", "-c", &script]);
    (out.code, out.stdout, out.stderr)
}

fn traces(j: &Jail, run: &str) -> Vec<Value> {
    let v = j.json(&["show", run, "--no-pager"], 0);
    v["traces"].as_array().unwrap().clone()
}

fn curl_git_and_pip_reach_the_lanes_hosts_through_airlock_exec(c: Caller) {
    if !require_clients() {
        return;
    }
    let servers = Servers::start();
    let j = servers.jail(c);
    let (run, wt) = j.start(BRIEF);
    let (ca, s) = (&servers.ca, servers.https.port());

    let (code, out, err) = exec(
        &j,
        &run,
        &format!(
            "echo connect $(curl -sS --cacert {ca} https://pkg.test:{s}/git/project.git/HEAD); \
             echo socks $(curl -sS --cacert {ca} --socks5-hostname 127.0.0.1:3128 \
               https://pkg.test:{s}/git/project.git/HEAD)"
        ),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        out, "connect ref: refs/heads/main\nsocks ref: refs/heads/main\n",
        "{err}"
    );

    let (code, out, err) = exec(
        &j,
        &run,
        &format!(
            "GIT_SSL_CAINFO={ca} git clone -q https://git.test:{s}/git/project.git cloned && \
             git -C cloned rev-parse HEAD"
        ),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(out.trim(), servers.commit, "{err}");
    assert_eq!(
        std::fs::read_to_string(wt.join("cloned/README.md")).unwrap(),
        README
    );

    let (code, out, err) = exec(
        &j,
        &run,
        &format!(
            "/usr/bin/python3 -m pip install --quiet --index-url https://pkg.test:{s}/simple/ \
               --cert {ca} --target site {PACKAGE} && \
             PYTHONPATH=site /usr/bin/python3 -c 'import airlock_probe; print(airlock_probe.VALUE)'"
        ),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(out, format!("{PACKAGE_VALUE}\n"), "{err}");
    assert!(wt.join("site/airlock_probe/__init__.py").is_file());

    // The server saw each client by the name it asked for.
    let requests = servers.https.requests();
    for expected in [
        "GET /git/project.git/HEAD",
        "GET /git/project.git/info/refs?service=git-upload-pack",
        "POST /git/project.git/git-upload-pack",
        &format!("GET /simple/{PACKAGE}/"),
    ] {
        assert!(
            requests.iter().any(|r| r == expected),
            "{expected}: {requests:?}"
        );
    }
    servers.victim.assert_untouched("the lane's hosts only");

    // Each command's trace holds its connections, all allowed, to the
    // host it named; show sums up the hosts reached.
    let traces = traces(&j, &run);
    assert_eq!(traces.len(), 3, "{traces:?}");
    for (trace, host, protocols) in [
        (&traces[0], "pkg.test", &["connect", "socks5"][..]),
        (&traces[1], "git.test", &["connect"][..]),
        (&traces[2], "pkg.test", &["connect"][..]),
    ] {
        let connections = trace["connections"].as_array().unwrap();
        assert!(!connections.is_empty(), "{trace}");
        for conn in connections {
            assert_eq!(conn["outcome"], "allowed", "{conn}");
            assert_eq!(conn["host"], host, "{conn}");
            assert_eq!(conn["port"], s, "{conn}");
            assert_eq!(conn["address"], format!("127.0.0.1:{s}"), "{conn}");
            assert!(
                protocols.contains(&conn["protocol"].as_str().unwrap()),
                "{conn}"
            );
            assert!(conn["bytes_down"].as_u64().unwrap() > 0, "{conn}");
        }
    }
    let v = j.json(&["show", &run, "--no-pager"], 0);
    let reached: Vec<&str> = v["egress"]["reached"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["host"].as_str().unwrap())
        .collect();
    assert!(
        reached.contains(&"pkg.test") && reached.contains(&"git.test"),
        "{v}"
    );
    assert!(
        v["egress"]["refused"].as_array().is_none_or(Vec::is_empty),
        "{v}"
    );
}

fn clients_aimed_at_a_host_the_lane_does_not_list_reach_nothing(c: Caller) {
    if !require_clients() {
        return;
    }
    let servers = Servers::start();
    let j = servers.jail(c);
    let (run, wt) = j.start(BRIEF);
    let (ca, v) = (&servers.ca, servers.victim.port());
    let denied = format!("network = [\"denied.test:{v}\"]");

    // git: the proxy's answer reaches the agent, with the setting to ask for.
    let (code, out, err) = exec(
        &j,
        &run,
        &format!("git clone -q http://denied.test:{v}/git/project.git cloned"),
    );
    assert_eq!(code, 128, "{out}\n{err}");
    assert!(err.contains(&denied), "{err}");
    assert!(
        err.contains("The requested URL returned error: 403"),
        "{err}"
    );
    assert!(!wt.join("cloned").exists());

    // pip, over HTTPS (a tunnel) and plain HTTP.
    let (code, out, err) = exec(
        &j,
        &run,
        &format!(
            "/usr/bin/python3 -m pip install --retries 0 --index-url https://denied.test:{v}/simple/ \
               --cert {ca} --target site {PACKAGE}; \
             /usr/bin/python3 -m pip install --retries 0 --index-url http://denied.test:{v}/simple/ \
               --trusted-host denied.test --target site {PACKAGE}"
        ),
    );
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(!wt.join("site/airlock_probe").exists(), "{out}\n{err}");

    // Around the proxy: no route to the machine's loopback; no resolver.
    let (code, out, err) = exec(
        &j,
        &run,
        &format!(
            "curl -sS --noproxy '*' http://127.0.0.1:{v}/simple/; echo curl $?; \
             getent hosts denied.test; echo getent $?"
        ),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("curl 7\n"), "{out}\n{err}");
    assert!(
        out.contains("getent ") && !out.contains("getent 0\n"),
        "{out}\n{err}"
    );

    servers
        .victim
        .assert_untouched("a host the lane does not list");
    servers
        .https
        .assert_untouched("a host the lane does not list");
    let traces = traces(&j, &run);
    assert_eq!(traces.len(), 3, "{traces:?}");
    let refused: Vec<&Value> = traces[..2]
        .iter()
        .flat_map(|t| t["connections"].as_array().unwrap())
        .collect();
    // git once, pip at least once each way.
    assert!(refused.len() >= 3, "{refused:?}");
    for conn in &refused {
        assert_eq!(conn["outcome"], "refused", "{conn}");
        assert_eq!(conn["host"], "denied.test", "{conn}");
        assert_eq!(conn["allow_with"], denied, "{conn}");
        assert_eq!(conn["bytes_up"], 0, "{conn}");
    }
    assert!(
        traces[2]["connections"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{}",
        traces[2]
    );
    let shown = j.json(&["show", &run, "--no-pager"], 0);
    let hosts: Vec<&str> = shown["egress"]["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["host"].as_str().unwrap())
        .collect();
    assert!(
        !hosts.is_empty() && hosts.iter().all(|h| *h == "denied.test"),
        "{shown}"
    );
}

both!(
    curl_git_and_pip_reach_the_lanes_hosts_through_airlock_exec,
    clients_aimed_at_a_host_the_lane_does_not_list_reach_nothing,
);
