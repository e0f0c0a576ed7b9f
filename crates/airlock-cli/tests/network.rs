//! The `network` setting (issue 16, "Egress by host"): `"off"`, `"on"` or a
//! list of hosts in `[sandbox]`, `[lanes.NAME]` and the brief. Bad input is
//! refused when the file is read, with its line and what to write instead,
//! and a brief may only narrow its lane's network, never widen it: each
//! refusal is checked for its message, its exit code, and that nothing was
//! written.

mod common;

use common::{BRIEF, Env, WORKFLOW};

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
