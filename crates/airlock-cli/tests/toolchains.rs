//! Real projects build and test inside the sandbox, whose home directory is
//! hidden but for the toolchains shown again read-only: a Rust crate (cargo
//! through `~/.cargo` and `~/.rustup`), a Python project with the main
//! checkout's virtual environment, and a Node project (`npm test`). Each
//! runs its gates through `airlock check`, with no network.
//!
//! HOME is the jail's own: its `~/.cargo` and `~/.rustup` are links to the
//! toolchain of the user running the tests, so cargo is found only through
//! what the sandbox shows of the home.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::both;
use common::*;
use serde_json::Value;

const PY: &str = "/usr/bin/python3";

fn brief(checks: &[&str]) -> String {
    format!(
        "title = \"Greet\"\nobjective = \"greet\"\ntouch = [\"src/**\", \"tests/**\"]\n\
         checks = [{}]\nrollback = \"revert\"\n",
        checks
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Writes `files` into the main checkout as the caller and commits them.
fn commit(j: &Jail, files: &[(&str, &str)]) {
    for (rel, text) in files {
        j.plant(&j.repo.join(rel), text);
    }
    j.git(&["add", "-A"]);
    j.git(&["commit", "-qm", "project"]);
}

/// `airlock check RUN`: every gate passed (the stop conditions are not
/// this file's concern: cargo adds a `Cargo.lock`); returns the report.
fn check_passes(j: &Jail, run: &str) -> Value {
    passed(j, run, j.airlock(&["--json", "check", run]))
}

/// The report of a `check` whose gates all passed; otherwise fails with
/// what the gates printed.
fn passed(j: &Jail, run: &str, out: Output) -> Value {
    let report: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    let logs: String = j.json(&["show", run, "--no-diff"], 0)["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            ["stdout", "stderr"]
                .iter()
                .map(|s| std::fs::read_to_string(t[s]["log"].as_str().unwrap()).unwrap_or_default())
                .collect::<String>()
        })
        .collect();
    let gates = report["gates"].as_array().cloned().unwrap_or_default();
    assert!(
        !gates.is_empty() && gates.iter().all(|g| g["status"] == "passed"),
        "{}\n{}\ncommand output:\n{logs}",
        out.stdout,
        out.stderr
    );
    report
}

/// The toolchain directory of the user running the tests.
fn real_toolchain(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(default))
}

#[test]
fn a_rust_crate_builds_and_tests_with_the_home_s_toolchain() {
    let cargo_home = real_toolchain("CARGO_HOME", ".cargo");
    let rustup_home = real_toolchain("RUSTUP_HOME", ".rustup");
    if !cargo_home.join("bin/cargo").exists() {
        eprintln!("skipped: no cargo in {}", cargo_home.display());
        return;
    }
    let j = Jail::new(
        Caller::Current,
        &format!(
            "{WORKFLOW}\n[gates.cargo-build]\nrun = \"cargo build --offline\"\ntimeout = 600\n\n\
             [gates.cargo-test]\nrun = \"cargo test --offline\"\ntimeout = 600\n"
        ),
    );
    std::os::unix::fs::symlink(&cargo_home, j.home.join(".cargo")).unwrap();
    if rustup_home.exists() {
        std::os::unix::fs::symlink(&rustup_home, j.home.join(".rustup")).unwrap();
    }
    commit(
        &j,
        &[
            (".gitignore", "/target\n"),
            (
                "Cargo.toml",
                "[package]\nname = \"greet\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n\n# not part of any workspace above it\n[workspace]\n",
            ),
            (
                "src/lib.rs",
                "pub fn greet(name: &str) -> String {\n    format!(\"hello, {name}\")\n}\n\n\
                 #[cfg(test)]\nmod tests {\n    #[test]\n    fn greets() {\n        \
                 assert_eq!(super::greet(\"ann\"), \"hello, ann\");\n    }\n}\n",
            ),
        ],
    );
    let (run, wt) = j.start(&brief(&["cargo-build", "cargo-test"]));
    // Only what the sandbox shows of the home finds cargo and its toolchain.
    let path = format!("{}:/usr/bin:/bin", j.home.join(".cargo/bin").display());
    let mut cmd = j.command(&assert_cmd::cargo::cargo_bin("airlock"));
    for var in [
        "CARGO_HOME",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
        "CARGO_TARGET_DIR",
    ] {
        cmd.env_remove(var);
    }
    let out: Output = cmd
        .env("PATH", &path)
        .args(["--json", "check", &run])
        .output()
        .unwrap()
        .into();
    passed(&j, &run, out);
    let traces = j.json(&["show", &run, "--no-diff"], 0)["traces"].clone();
    let test_log = traces
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["origin"] == "gate:cargo-test")
        .map(|t| std::fs::read_to_string(t["stdout"]["log"].as_str().unwrap()).unwrap())
        .unwrap();
    assert!(test_log.contains("test tests::greets ... ok"), "{test_log}");
    assert!(wt.join("target/debug").is_dir());
}

fn python_venv_project(c: Caller) {
    let j = Jail::new(
        c,
        &format!(
            "{WORKFLOW}\n[gates.py-test]\nrun = \"python -m unittest discover -s tests -v\"\ntimeout = 120\n"
        ),
    );
    commit(
        &j,
        &[
            (".gitignore", ".venv/\n__pycache__/\n"),
            (
                "src/greet.py",
                "import polite\n\ndef greet(name):\n    return polite.please(f'hello, {name}')\n",
            ),
            (
                "tests/test_greet.py",
                "import sys, os, unittest\nsys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'src'))\n\
                 import greet\n\nclass GreetTest(unittest.TestCase):\n    def test_greets(self):\n        \
                 self.assertEqual(greet.greet('ann'), 'hello, ann, please')\n        \
                 self.assertTrue(sys.prefix.endswith('.venv'), sys.prefix)\n",
            ),
        ],
    );
    // The human's virtual environment, with a library installed in it.
    let venv = j.repo.join(".venv");
    let made = Command::new(PY)
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let lib = std::fs::read_dir(venv.join("lib"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    write(
        &lib.join("site-packages/polite.py"),
        "def please(text):\n    return text + ', please'\n",
    );
    j.own(&venv);
    let (run, _) = j.start(&brief(&["py-test"]));
    let report = check_passes(&j, &run);
    assert_eq!(report["gates"][0]["name"], "py-test", "{report}");
    // Python's byte-code cache was not written into the human's venv.
    assert!(!lib.join("site-packages/__pycache__").exists());
}

fn node_project(c: Caller) {
    if !Path::new("/usr/bin/node").exists() || !Path::new("/usr/bin/npm").exists() {
        eprintln!("skipped: no node and npm in /usr/bin");
        return;
    }
    let j = Jail::new(
        c,
        &format!("{WORKFLOW}\n[gates.npm-test]\nrun = \"npm test\"\ntimeout = 120\n"),
    );
    commit(
        &j,
        &[
            (
                "package.json",
                "{\n  \"name\": \"greet\",\n  \"version\": \"1.0.0\",\n  \"private\": true,\n  \
                 \"scripts\": { \"test\": \"node --test tests/\" }\n}\n",
            ),
            (
                "src/greet.js",
                "exports.greet = (name) => `hello, ${name}`;\n",
            ),
            (
                "tests/greet.test.js",
                "const test = require('node:test');\nconst assert = require('node:assert');\n\
                 const { greet } = require('../src/greet.js');\n\
                 test('greets', () => assert.strictEqual(greet('ann'), 'hello, ann'));\n",
            ),
        ],
    );
    let (run, _) = j.start(&brief(&["npm-test"]));
    let report = check_passes(&j, &run);
    assert_eq!(report["gates"][0]["name"], "npm-test", "{report}");
}

both!(python_venv_project, node_project);
