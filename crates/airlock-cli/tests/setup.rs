//! Set-up and everyday conventions: `init` on Python and Go projects and the
//! gates on the base, `-C`, colour and the pager, completions and the man
//! page, who commits are by and who decided.

mod common;

use std::process::Command;

use common::*;

/// A repository with `files` committed on `main`, no airlock yet.
fn project(files: &[(&str, &str)]) -> Env {
    let env = Env::bare();
    for (path, text) in files {
        env.write(path, text);
    }
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "initial"]);
    env
}

/// Whether `/usr/bin/python3` has pytest (the interpreter the sandbox sees
/// first with PATH=/usr/bin:/bin).
fn system_pytest() -> bool {
    Command::new("/usr/bin/python3")
        .args(["-m", "pytest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn on_path(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

// ---- -C --------------------------------------------------------------------

#[test]
fn dash_c_naming_a_missing_directory_says_so_with_exit_2() {
    let env = Env::new();
    let missing = env.tmp.path().join("nonexistent");
    let before = env.world();
    for args in [
        vec!["-C", missing.to_str().unwrap(), "show", "x"],
        vec!["-C", missing.to_str().unwrap(), "init"],
        vec!["-C", missing.to_str().unwrap(), "exec", "x", "--", "true"],
    ] {
        let out = env.fails(&args, 2);
        assert!(
            out.stderr.contains(&format!(
                "the directory {} given with -C does not exist",
                missing.display()
            )),
            "{}",
            out.stderr
        );
        assert!(!out.stderr.contains("install git"), "{}", out.stderr);
        assert!(out.stderr.contains("hint: give -C"), "{}", out.stderr);
    }
    let file = env.repo.join("src/app.sh");
    let out = env.fails(&["-C", file.to_str().unwrap(), "show", "x"], 2);
    assert!(out.stderr.contains("is not a directory"), "{}", out.stderr);
    let v = env
        .airlock(&["--json", "-C", missing.to_str().unwrap(), "show", "x"])
        .expect_json(&[], 2);
    assert_eq!(v["error"]["class"], "invalid");
    env.assert_unchanged(&before);
}

// ---- completions, man --------------------------------------------------------

#[test]
fn completions_and_the_man_page_come_from_the_argument_definitions() {
    let env = Env::bare();
    let bash = env.airlock(&["completions", "bash"]);
    assert_eq!(bash.code, 0, "{}", bash.stderr);
    assert!(bash.stdout.contains("_airlock()"), "{}", bash.stdout);
    assert!(
        bash.stdout.contains("complete -F _airlock"),
        "{}",
        bash.stdout
    );
    // Every command and the global options are there.
    for word in [
        "promote",
        "rollback",
        "completions",
        "--color",
        "--no-pager",
    ] {
        assert!(bash.stdout.contains(word), "bash completions lack {word}");
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = env.airlock(&["completions", shell]);
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        assert!(out.stdout.contains("promote"), "{shell}: {}", out.stdout);
    }
    let bad = env.airlock(&["completions", "tcsh"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("invalid value 'tcsh'"),
        "{}",
        bad.stderr
    );

    let man = env.airlock(&["man"]);
    assert_eq!(man.code, 0, "{}", man.stderr);
    assert!(man.stdout.contains(".TH airlock 1"), "{}", man.stdout);
    assert!(man.stdout.contains("promote"), "{}", man.stdout);
    assert!(man.stdout.contains("\\-\\-color"), "{}", man.stdout);
    // Generated, not a bash script in JSON's clothing: --json carries it.
    let v = env.json(&["completions", "bash"], 0);
    assert_eq!(v["shell"], "bash");
    assert_eq!(v["script"].as_str().unwrap(), bash.stdout);
}

// ---- colour and the pager ---------------------------------------------------

const ESC: char = '\x1b';

#[test]
fn colour_follows_the_color_option_and_no_color() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    // Not a terminal: no colour by default.
    let plain = env.airlock(&["check", &run]);
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    assert!(!plain.stdout.contains(ESC), "{}", plain.stdout);
    // Forced: the marks are coloured, the rest is the same text.
    let coloured = env.airlock(&["--color", "always", "check", &run]);
    assert_eq!(coloured.code, 0, "{}", coloured.stderr);
    assert!(
        coloured.stdout.contains("\x1b[32mok\x1b[0m"),
        "{:?}",
        coloured.stdout
    );
    let show = env.airlock(&["--color", "always", "--no-pager", "show", &run]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    assert!(
        show.stdout.contains("\x1b[32m+echo hello, please\x1b[0m"),
        "{:?}",
        show.stdout
    );
    assert!(
        show.stdout.contains("\x1b[31m-echo hello\x1b[0m"),
        "{:?}",
        show.stdout
    );
    // never, and JSON, carry no colour even when asked.
    let never = env.airlock(&["--color", "never", "show", &run]);
    assert!(!never.stdout.contains(ESC), "{}", never.stdout);
    let json = env.airlock(&["--json", "--color", "always", "show", &run]);
    assert!(!json.stdout.contains(ESC), "{}", json.stdout);
    json.expect_json(&[], 0);
}

/// Runs `command` (a shell command line) on a pseudo-terminal through
/// `script`, so stdout is a terminal; returns what `script` captured.
fn on_a_terminal(env: &Env, command: &str, envs: &[(&str, &str)]) -> String {
    let mut cmd = Command::new("script");
    env.hermetic(&mut cmd);
    cmd.env_remove("NO_COLOR");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd
        .args(["-qec", command, "/dev/null"])
        .current_dir(&env.repo)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn show_on_a_terminal_goes_through_the_pager_unless_told_not_to() {
    if !on_path("script") {
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
    }
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    let airlock = assert_cmd::cargo::cargo_bin("airlock");
    let paged = env.tmp.path().join("paged");
    let pager = format!("cat > {}", paged.display());
    let command = format!("{} show {run}", airlock.display());
    let screen = on_a_terminal(&env, &command, &[("PAGER", &pager)]);
    let text = std::fs::read_to_string(&paged).expect("the pager ran");
    assert!(text.contains(&format!("run {run}")), "{text}");
    // On a terminal the diff is coloured; the pager gets the colours.
    assert!(text.contains("\x1b[32m+echo hello, please"), "{text:?}");
    assert!(!screen.contains(&format!("run {run}")), "{screen}");
    std::fs::remove_file(&paged).unwrap();

    // --no-pager, --json, or stdout not a terminal: no pager.
    let screen = on_a_terminal(
        &env,
        &format!("{} --no-pager show {run}", airlock.display()),
        &[("PAGER", &pager)],
    );
    assert!(screen.contains(&format!("run {run}")), "{screen}");
    let screen = on_a_terminal(
        &env,
        &format!("{} --json show {run}", airlock.display()),
        &[("PAGER", &pager)],
    );
    assert!(screen.contains("\"run\""), "{screen}");
    let piped = env.airlock_env(&["show", &run], &[("PAGER", &pager)]);
    assert!(piped.stdout.contains(&format!("run {run}")));
    assert!(!paged.exists(), "the pager ran without a terminal");
    // A pager that does not exist: the text is printed instead of lost.
    let screen = on_a_terminal(&env, &command, &[("PAGER", "no-such-pager-here")]);
    assert!(screen.contains(&format!("run {run}")), "{screen}");
    // NO_COLOR on a terminal: paged, not coloured.
    let _ = on_a_terminal(&env, &command, &[("PAGER", &pager), ("NO_COLOR", "1")]);
    let text = std::fs::read_to_string(&paged).unwrap();
    assert!(!text.contains(ESC), "{text:?}");
}

// ---- init: Python and Go --------------------------------------------------

const PYPROJECT: &str = "[project]\nname = \"calc\"\nversion = \"0.1.0\"\n\n[tool.pytest.ini_options]\ntestpaths = [\"tests\"]\n";

fn python_project(failing: bool) -> Env {
    let mut files = vec![
        ("pyproject.toml", PYPROJECT),
        ("calc.py", "def add(a, b):\n    return a + b\n"),
        (
            "tests/test_calc.py",
            "from calc import add\n\ndef test_add():\n    assert add(1, 2) == 3\n",
        ),
    ];
    if failing {
        files.push((
            "tests/test_known_bug.py",
            "from calc import add\n\ndef test_strings():\n    assert add('1', 2) == 3\n",
        ));
    }
    project(&files)
}

/// `airlock init` with the system's Python first on PATH.
fn init_with_system_python(env: &Env, json: bool) -> common::Output {
    let mut args = vec![];
    if json {
        args.push("--json");
    }
    args.push("init");
    env.airlock_env(&args, &[("PATH", "/usr/bin:/bin")])
}

fn normalized(env: &Env, text: &str) -> String {
    let short = env.git(&["rev-parse", "--short=12", "HEAD"]);
    text.replace(&env.repo.display().to_string(), "[REPO]")
        .replace(&env.home.display().to_string(), "[HOME]")
        .replace(&short, "[BASE]")
}

#[test]
fn init_on_a_python_project_runs_pytest_on_the_base_and_marks_it_red() {
    if !system_pytest() {
        eprintln!("skipped: /usr/bin/python3 has no pytest (apt-get install python3-pytest)");
        return;
    }
    let env = python_project(true);
    let out = init_with_system_python(&env, false);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let wf = env.read(".airlock/workflow.toml");
    assert!(
        wf.contains("[gates.test]\nrun = \"python3 -m pytest -q\""),
        "{wf}"
    );
    // The key line differs every time; the rest is the transcript.
    let text: String = normalized(&env, &out.stdout)
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("ssh-ed25519 ") {
                "  [PUBLIC KEY]"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!("init_python_red_on_base", text);
    // pytest really ran, in the sandbox, on the base.
    let log = std::fs::read_to_string(env.state_dir().join("base-gates/test.stdout")).unwrap();
    assert!(log.contains("1 failed, 1 passed"), "{log}");
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.state_dir().join("base-gates.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["gates"][0]["red"], true, "{record}");
    // Nothing of the scratch checkout is left, and no run was made.
    assert!(env.run_dirs().is_empty(), "{:?}", env.run_dirs());
    let status = env.git(&["status", "--porcelain", "--untracked-files=all"]);
    assert_eq!(
        status, "?? .airlock/.gitignore\n?? .airlock/workflow.toml",
        "init left more behind: {status}"
    );
}

#[test]
fn init_on_a_green_python_project_reports_the_gate_green() {
    if !system_pytest() {
        eprintln!("skipped: /usr/bin/python3 has no pytest");
        return;
    }
    let env = python_project(false);
    let v = init_with_system_python(&env, true).expect_json(&["init"], 0);
    assert_eq!(v["gates"], serde_json::json!(["test"]));
    assert_eq!(v["base"]["gates"][0]["outcome"], "exit 0", "{v}");
    assert_eq!(v["base"]["gates"][0]["red"], false, "{v}");
    let out = env.airlock(&["init"]);
    // Kept the workflow: the user's gates are not run again.
    assert!(!out.stdout.contains("on the base"), "{}", out.stdout);
}

#[test]
fn init_detects_ruff_tox_and_uv_from_what_the_project_configures() {
    let env = project(&[
        (
            "pyproject.toml",
            "[project]\nname = \"x\"\nversion = \"0.1.0\"\n\n[tool.ruff]\nline-length = 100\n",
        ),
        ("tox.ini", "[tox]\nenv_list = py311\n"),
        ("uv.lock", "version = 1\n"),
        ("tests/test_x.py", "def test_x():\n    pass\n"),
    ]);
    let v = env.json(&["init"], 0);
    assert_eq!(
        v["gates"],
        serde_json::json!(["lint", "test", "tox"]),
        "{v}"
    );
    let detected = v["detected"].as_str().unwrap();
    assert!(
        detected.contains("pyproject.toml, tox.ini and uv.lock"),
        "{detected}"
    );
    let wf = env.read(".airlock/workflow.toml");
    for run in [
        "uv run ruff check .",
        "uv run python -m pytest -q",
        "uv run tox",
    ] {
        assert!(wf.contains(&format!("run = \"{run}\"")), "{run}: {wf}");
    }
    // Each ran once on the base: a missing tool shows as red there too,
    // named, before any run is blamed for it.
    let gates = v["base"]["gates"].as_array().unwrap();
    assert_eq!(gates.len(), 3, "{v}");
    for g in gates {
        if !on_path("uv") {
            assert_eq!(g["red"], true, "{g}");
        }
    }
}

#[test]
fn init_detects_go_modules() {
    let env = project(&[
        ("go.mod", "module example.com/hello\n\ngo 1.21\n"),
        (
            "main.go",
            "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hi\") }\n",
        ),
    ]);
    let v = env.json(&["init"], 0);
    assert_eq!(
        v["gates"],
        serde_json::json!(["build", "lint", "test"]),
        "{v}"
    );
    assert!(v["detected"].as_str().unwrap().contains("go.mod"), "{v}");
    let wf = env.read(".airlock/workflow.toml");
    for run in ["go build ./...", "go vet ./...", "go test ./..."] {
        assert!(wf.contains(&format!("run = \"{run}\"")), "{run}: {wf}");
    }
    let gates = v["base"]["gates"].as_array().unwrap();
    assert_eq!(gates.len(), 3, "{v}");
    if on_path("go") {
        // Whether the sandbox reaches this machine's Go (and its caches)
        // depends on where it is installed: the result is reported either way.
        assert!(gates.iter().all(|g| g["outcome"].is_string()), "{v}");
    } else {
        eprintln!("go is not installed: the Go gates were detected, and ran red");
        assert!(gates.iter().all(|g| g["red"] == true), "{v}");
    }
}

// ---- who commits, who decides ---------------------------------------------

fn author_and_committer(env: &Env, rev: &str) -> (String, String) {
    let out = env.git(&["log", "-1", "--format=%an <%ae>%n%cn <%ce>", rev]);
    let (a, c) = out.split_once('\n').unwrap();
    (a.to_string(), c.to_string())
}

#[test]
fn the_submitted_commit_is_authored_by_the_user_and_decisions_name_who_made_them() {
    let env = Env::new();
    let (run, _) = env.submitted();
    let branch = format!("refs/airlock/runs/{run}");
    // The harness's git identity (GIT_AUTHOR_NAME/EMAIL) is the user's.
    let (author, committer) = author_and_committer(&env, &branch);
    assert_eq!(author, "Test User <test@example.invalid>");
    assert_eq!(committer, "airlock <airlock@localhost>");
    env.json(&["approve", &run, "--reason", "fine"], 0);
    let approve = env
        .events(Some(&run))
        .into_iter()
        .find(|e| e["kind"] == "approve")
        .unwrap();
    let by = &approve["data"]["by"];
    assert_eq!(by["git"], "Test User <test@example.invalid>", "{approve}");
    assert_eq!(by["uid"], rustix::process::getuid().as_raw(), "{approve}");
    let promoted = env.json(&["promote", &run], 0);
    let merge = promoted["merge"].as_str().unwrap_or("main").to_string();
    let (author, _) = author_and_committer(&env, &merge);
    assert_eq!(author, "Test User <test@example.invalid>");
}

#[test]
fn without_the_environment_the_identity_comes_from_the_main_repository_config() {
    let env = Env::new();
    env.git(&["config", "user.name", "Ada Lovelace"]);
    env.git(&["config", "user.email", "ada@example.invalid"]);
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    // A lane's own config names someone else: never read.
    env.git_in(&wt, &["config", "user.name", "Mallory"]);
    env.json(&["check", &run], 0);
    let submit = |args: &[&str]| {
        let mut cmd = env.cmd(args);
        cmd.env_remove("GIT_AUTHOR_NAME")
            .env_remove("GIT_AUTHOR_EMAIL");
        common::Output::from(cmd.output().unwrap())
    };
    let out = submit(&["submit", &run]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("no git identity"), "{}", out.stderr);
    let (author, _) = author_and_committer(&env, &format!("refs/airlock/runs/{run}"));
    assert_eq!(author, "Ada Lovelace <ada@example.invalid>");
    let out = submit(&["--json", "reject", &run, "--reason", "not now"]);
    let reject = env
        .events(Some(&run))
        .into_iter()
        .find(|e| e["kind"] == "reject")
        .unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        reject["data"]["by"]["git"],
        "Ada Lovelace <ada@example.invalid>"
    );
}

#[test]
fn with_no_identity_at_all_the_commit_is_airlocks_and_submit_says_so() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello, please\n");
    env.json(&["check", &run], 0);
    let mut cmd = env.cmd(&["submit", &run]);
    cmd.env_remove("GIT_AUTHOR_NAME")
        .env_remove("GIT_AUTHOR_EMAIL")
        .env_remove("EMAIL");
    let out = common::Output::from(cmd.output().unwrap());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("warning: no git identity is configured, so the commit is authored by airlock <airlock@localhost>"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("git config --global user.name"),
        "{}",
        out.stderr
    );
    let (author, _) = author_and_committer(&env, &format!("refs/airlock/runs/{run}"));
    assert_eq!(author, "airlock <airlock@localhost>");
}

// ---- check --base -------------------------------------------------------------

#[test]
fn check_base_says_which_failing_gates_were_already_red_on_the_base() {
    let env = Env::new();
    // The test gate is red on main already: it wants a word nobody wrote yet.
    env.write(
        "tests/run.sh",
        "#!/bin/sh\nsh src/app.sh | grep -q please\n",
    );
    env.git(&["commit", "-q", "-am", "a test for what is not done"]);
    let (run, _) = env.start(BRIEF);
    let v = env.json(&["check", &run], 1);
    assert_eq!(v["passed"], false, "{v}");
    let state = env.state(&run);

    let out = env.airlock(&["check", "--base", &run]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("red on the base: not caused by a run: test"),
        "{}",
        out.stdout
    );
    let v = env.json(&["check", "--base", &run], 0);
    assert_eq!(v["already_red"], serde_json::json!(["test"]), "{v}");
    assert_eq!(v["caused_by_run"], serde_json::json!([]), "{v}");
    assert_eq!(v["base"]["gates"][0]["outcome"], "exit 0", "{v}");
    // Evidence in the ledger; the run itself is where it was, and no
    // scratch checkout is left among the runs.
    assert!(
        env.events(Some(&run))
            .iter()
            .any(|e| e["kind"] == "base-check"),
        "no base-check event"
    );
    assert_eq!(env.state(&run), state);
    assert_eq!(env.run_dirs(), vec![run.clone()]);

    // A gate the run broke is the run's.
    let (broken, wt) = env.start(BRIEF);
    std::fs::remove_file(wt.join("src/app.sh")).unwrap();
    env.json(&["check", &broken], 1);
    let v = env.json(&["check", "--base", &broken], 0);
    assert_eq!(v["caused_by_run"], serde_json::json!(["build"]), "{v}");
    assert_eq!(v["already_red"], serde_json::json!([]), "{v}");
}

/// `init` says that commands run with the network off, and that package
/// tools then work offline, lane by lane: a lane granting the network is
/// left out.
#[test]
fn init_says_package_tools_run_offline_where_the_network_is_off() {
    let env = project(&[("README.md", "hello\n")]);
    let v = env.json(&["init"], 0);
    assert_eq!(
        v["offline_lanes"],
        serde_json::json!(["draft", "sandbox", "governed", "staging", "production"]),
        "{v}"
    );
    assert!(
        v["offline_env"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("CARGO_NET_OFFLINE=true")),
        "{v}"
    );
    let out = env.airlock(&["init"]);
    assert!(
        out.stdout
            .contains("network off for commands in every lane: package tools run offline"),
        "{}",
        out.stdout
    );
    let workflow = std::fs::read_to_string(env.repo.join(".airlock/workflow.toml")).unwrap();
    env.write(
        ".airlock/workflow.toml",
        &format!("{workflow}\n[lanes.staging]\nnetwork = \"on\"\n"),
    );
    let v = env.json(&["init"], 0);
    assert_eq!(
        v["offline_lanes"],
        serde_json::json!(["draft", "sandbox", "governed", "production"]),
        "{v}"
    );
}
