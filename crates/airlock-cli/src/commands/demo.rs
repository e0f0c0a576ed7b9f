//! `airlock demo`: the whole flow on a throwaway repository, narrated.
//!
//! Every step runs the real `airlock` binary (this one) as a user would, and
//! the agent is a shell script run through `airlock exec`. Nothing is faked:
//! the output shown is what each command printed.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use airlock_core::{Error, Result};

use super::Ctx;
use crate::render::{Output, Report};

#[derive(clap::Args)]
pub struct Args {
    /// Keep the throwaway repository and print where it is.
    #[arg(long)]
    keep: bool,
}

const LIB_RS: &str = r#"//! Counting words.

/// The number of words in `text`.
pub fn count_words(text: &str) -> usize {
    text.split(' ').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_simple_words() {
        assert_eq!(count_words("hello world"), 2);
    }
}
"#;

const FIXED_LIB_RS: &str = r#"//! Counting words.

/// The number of words in `text`: runs of non-whitespace.
pub fn count_words(text: &str) -> usize {
    text.split_whitespace().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_simple_words() {
        assert_eq!(count_words("hello world"), 2);
    }

    #[test]
    fn ignores_repeated_and_surrounding_spaces() {
        assert_eq!(count_words("  hello   world "), 2);
        assert_eq!(count_words(""), 0);
    }
}
"#;

const BRIEF: &str = r#"title = "Fix count_words on repeated spaces"
objective = "count_words must count runs of non-whitespace, so repeated or surrounding spaces do not add words"
non_goals = ["change the public API", "touch the README"]
touch = ["src/**"]
checks = ["build", "lint", "test"]
rollback = "revert the merge commit; nothing else depends on it"
class = "bugfix"
assumptions = ["callers expect 0 for an empty string"]
"#;

/// The name the demo's package host goes by: `[sandbox] resolve` maps it
/// to 127.0.0.1, where the demo serves the team's repository.
const PACKAGE_HOST: &str = "git.demo.test";

/// What the demo adds to the workflow `airlock init` wrote: the package
/// host's address, and the lane the brief runs in, which may reach that
/// host (and its loopback address, which the proxy refuses unless named)
/// and push release branches, nothing else.
fn lane_settings(port: u16) -> String {
    format!(
        r#"
[sandbox]
resolve = {{"{PACKAGE_HOST}" = "127.0.0.1"}}

[lanes.governed]
scopes = ["git:push:origin:refs/heads/release/*"]
network = ["{PACKAGE_HOST}:{port}", "127.0.0.1:{port}"]
"#
    )
}

const PUSH_MAIN: &str = r#"kind = "git-push"
name = "push-main"
scopes = ["git:push:origin:refs/heads/main"]
remote = "origin"
ref = "refs/heads/main"
"#;

const PUSH_RELEASE: &str = r#"kind = "git-push"
name = "release-branch"
description = "publish the fix on a release branch for the team"
scopes = ["git:push:origin:refs/heads/release/*"]
remote = "origin"
ref = "refs/heads/release/wordcount-fix"
"#;

/// A git command's trimmed stdout, in `dir`, with the demo's environment.
fn git_output(d: &Demo, args: &[&str], dir: &Path) -> Result<String> {
    let mut cmd = Command::new("git");
    cmd.args(args).current_dir(dir);
    let (code, out, err) = d.spawn(cmd)?;
    if code != 0 {
        return Err(Error::Git {
            args: args.join(" "),
            message: err.trim().to_string(),
        });
    }
    Ok(out.trim().to_string())
}

struct Demo {
    exe: PathBuf,
    repo: PathBuf,
    env: Vec<(String, String)>,
    json: bool,
    steps: Vec<Step>,
}

/// One `airlock` command the demo ran, and how it exited.
#[derive(serde::Serialize)]
struct Step {
    command: String,
    exit: i32,
}

/// `airlock demo`: every step it ran; the steps were narrated as they ran.
#[derive(serde::Serialize)]
struct DemoReport {
    ok: bool,
    steps: Vec<Step>,
    /// Where the demo's repository was kept (`--keep`).
    kept: Option<PathBuf>,
}

impl Report for DemoReport {
    fn human(&self) -> String {
        "\ndemo finished: every step above ran for real".into()
    }
}

impl Demo {
    fn say(&self, text: &str) {
        if !self.json {
            println!("\n== {text}");
        }
    }

    /// Runs `airlock ARGS` in the demo repository and shows what it printed.
    fn airlock(&mut self, args: &[&str]) -> Result<(i32, String)> {
        let mut cmd = Command::new(&self.exe);
        cmd.args(args).current_dir(&self.repo);
        let (code, stdout, stderr) = self.spawn(cmd)?;
        let shown: Vec<&str> = args
            .iter()
            .map(|a| if a.len() > 60 { "'<agent script>'" } else { a })
            .collect();
        if !self.json {
            println!("$ airlock {}", shown.join(" "));
            for line in stdout.lines().chain(stderr.lines()) {
                println!("  {line}");
            }
        }
        self.steps.push(Step {
            command: format!("airlock {}", shown.join(" ")),
            exit: code,
        });
        Ok((code, stdout))
    }

    /// Like [`Demo::airlock`], and the step must end with `want`.
    fn expect(&mut self, args: &[&str], want: i32) -> Result<String> {
        let (code, out) = self.airlock(args)?;
        if code != want {
            return Err(Error::Internal(format!(
                "demo step `airlock {}` exited {code}, expected {want}; the demo repository is kept at {}",
                args.join(" "),
                self.repo.display()
            )));
        }
        Ok(out)
    }

    fn spawn(&self, mut cmd: Command) -> Result<(i32, String, String)> {
        cmd.env_clear();
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd
            .output()
            .map_err(|e| Error::Environment(format!("cannot run {}: {e}", self.exe.display())))?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    fn git(&self, args: &[&str]) -> Result<()> {
        let mut cmd = Command::new("git");
        cmd.args(args).current_dir(&self.repo);
        let (code, _, err) = self.spawn(cmd)?;
        if code != 0 {
            return Err(Error::Git {
                args: args.join(" "),
                message: err.trim().to_string(),
            });
        }
        Ok(())
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.into(),
            source,
        })?;
    }
    std::fs::write(path, text).map_err(|source| Error::Write {
        path: path.into(),
        source,
    })
}

/// `sh -c` text that writes `content` to `path` (single-quoted, so literal).
fn write_script(path: &str, content: &str) -> String {
    format!("cat > {path} <<'AIRLOCK_EOF'\n{content}AIRLOCK_EOF\n")
}

fn run_id(start_json: &str) -> Result<String> {
    serde_json::from_str::<Value>(start_json)
        .ok()
        .and_then(|v| v["run"].as_str().map(str::to_string))
        .ok_or_else(|| Error::Internal("`airlock start --json` printed no run id".into()))
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let dir = tempfile::Builder::new()
        .prefix("airlock-demo-")
        .tempdir()
        .map_err(|source| Error::Write {
            path: std::env::temp_dir(),
            source,
        })?;
    let root = dir.path().to_path_buf();
    let repo = root.join("wordcount");
    let home = root.join("home");
    std::fs::create_dir_all(&home).map_err(|source| Error::Write {
        path: home.clone(),
        source,
    })?;
    let exe = std::env::current_exe()
        .map_err(|e| Error::Environment(format!("cannot find the airlock binary: {e}")))?;

    // A private HOME (so the demo's signing key and git config are throwaway),
    // but the user's Rust toolchain, found where it already is.
    let real_home = std::env::var("HOME").unwrap_or_default();
    let mut env: Vec<(String, String)> = vec![
        ("HOME".into(), home.display().to_string()),
        (
            "PATH".into(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        ),
        ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
        ("GIT_CONFIG_GLOBAL".into(), "/dev/null".into()),
        ("GIT_AUTHOR_NAME".into(), "Demo User".into()),
        ("GIT_AUTHOR_EMAIL".into(), "demo@example.invalid".into()),
        ("GIT_COMMITTER_NAME".into(), "Demo User".into()),
        ("GIT_COMMITTER_EMAIL".into(), "demo@example.invalid".into()),
        (
            "CARGO_HOME".into(),
            std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{real_home}/.cargo")),
        ),
        (
            "RUSTUP_HOME".into(),
            std::env::var("RUSTUP_HOME").unwrap_or_else(|_| format!("{real_home}/.rustup")),
        ),
        ("CARGO_TERM_COLOR".into(), "never".into()),
    ];
    for name in ["RUSTUP_TOOLCHAIN", "LANG", "TERM"] {
        if let Ok(v) = std::env::var(name) {
            env.push((name.into(), v));
        }
    }
    let mut demo = Demo {
        exe,
        repo: repo.clone(),
        env,
        json: ctx.json,
        steps: Vec::new(),
    };
    let outcome = narrate(&mut demo, &root);
    let kept = if args.keep || outcome.is_err() {
        Some(dir.keep())
    } else {
        None
    };
    outcome?;
    if let Some(path) = &kept
        && !ctx.json
    {
        println!(
            "\nthe demo repository is kept at {}",
            path.join("wordcount").display()
        );
    }
    Ok(Output::report(&DemoReport {
        ok: true,
        steps: demo.steps,
        kept,
    }))
}

fn narrate(d: &mut Demo, root: &Path) -> Result<()> {
    let repo = d.repo.clone();
    d.say("A small Rust library with a bug: count_words(\"  hello   world \") is not 2");
    write(
        &repo.join("Cargo.toml"),
        "[package]\nname = \"wordcount\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n",
    )?;
    write(
        &repo.join("Cargo.lock"),
        "# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\nversion = 4\n\n[[package]]\nname = \"wordcount\"\nversion = \"0.1.0\"\n",
    )?;
    write(&repo.join("src/lib.rs"), LIB_RS)?;
    write(&repo.join("README.md"), "# wordcount\n\nCounts words.\n")?;
    write(&repo.join(".gitignore"), "/target\n")?;
    d.git(&["init", "-q", "-b", "main"])?;
    d.git(&["add", "-A"])?;
    d.git(&["commit", "-q", "-m", "wordcount: first version"])?;
    if !d.json {
        println!("created {} (git, branch main, one commit)", repo.display());
    }

    // The team's remote, a bare repository beside the checkout.
    d.git(&["init", "-q", "--bare", "-b", "main", "../team.git"])?;
    d.git(&["remote", "add", "origin", "../team.git"])?;
    d.git(&["push", "-q", "origin", "main"])?;
    // Served over plain HTTP (git's static-file protocol), for the agent.
    d.git(&["--git-dir", "../team.git", "update-server-info"])?;
    let site = crate::demo_site::Site::serve("team.git", root.join("team.git")).map_err(|e| {
        Error::Environment(format!(
            "cannot serve the demo's package host on 127.0.0.1: {e}"
        ))
    })?;

    d.say("1. airlock init: a workflow with gates detected from Cargo.toml, and a signing key");
    d.expect(&["init"], 0)?;
    let workflow = repo.join(".airlock/workflow.toml");
    let mut text = std::fs::read_to_string(&workflow).map_err(|source| Error::Read {
        path: workflow.clone(),
        source,
    })?;
    text.push_str(&lane_settings(site.port()));
    write(&workflow, &text)?;
    d.git(&["add", ".airlock"])?;
    d.git(&["commit", "-q", "-m", "airlock: workflow"])?;

    d.say("2. The brief: the task contract. A sloppy first draft is refused with every problem at once");
    write(
        &repo.join(".airlock/briefs/draft.toml"),
        "objective = \"fix it\"\ntuch = [\"src/**\"]\nchecks = [\"biuld\"]\nlane = \"prod\"\n",
    )?;
    d.expect(&["brief", "check", ".airlock/briefs/draft.toml"], 2)?;
    write(&repo.join(".airlock/briefs/fix-count-words.toml"), BRIEF)?;
    d.expect(
        &["brief", "check", ".airlock/briefs/fix-count-words.toml"],
        0,
    )?;

    d.say("3. Start a run: an isolated worktree on its own branch, in a repository of its own");
    let started = d.expect(
        &["--json", "start", ".airlock/briefs/fix-count-words.toml"],
        0,
    )?;
    let id = run_id(&started)?;

    d.say("4. The agent works (a scripted agent, run through `airlock exec` so every command is traced)");
    let agent = format!(
        "{}printf '\\nNow handles repeated spaces.\\n' >> README.md\n",
        write_script("src/lib.rs", FIXED_LIB_RS)
    );
    d.expect(&["exec", &id, "--", "sh", "-c", &agent], 0)?;

    d.say(&format!(
        "5. The agent fetches the team's repository over HTTP. Its lane lists one host, {PACKAGE_HOST}, reached only through airlock's proxy; any other host is refused, and the refusal names the setting that would allow it"
    ));
    let clone = format!(
        "git clone -q http://{PACKAGE_HOST}:{}/team.git /tmp/team && git -C /tmp/team log --oneline",
        site.port()
    );
    d.expect(&["exec", &id, "--", "sh", "-c", &clone], 0)?;
    d.expect(
        &[
            "exec",
            &id,
            "--",
            "git",
            "ls-remote",
            "http://registry.example.org/team.git",
        ],
        128,
    )?;

    d.say(
        "6. Check: gates in workflow order, then stop conditions. The agent also edited README.md",
    );
    d.expect(&["check", &id], 1)?;

    d.say("7. The agent puts README.md back, using git inside its own worktree, and checks again");
    d.expect(
        &["exec", &id, "--", "git", "checkout", "--", "README.md"],
        0,
    )?;
    d.expect(&["check", &id], 0)?;

    d.say("8. The agent proposes side effects: they are previewed and rehearsed, never performed by the agent. Pushing to main is refused outright; a release branch is staged");
    write(&root.join("push-main.toml"), PUSH_MAIN)?;
    write(&root.join("release-branch.toml"), PUSH_RELEASE)?;
    d.expect(&["propose", &id, "../push-main.toml"], 1)?;
    d.expect(&["propose", &id, "../release-branch.toml"], 0)?;

    d.say("9. Submit: commit on the run branch, sign the proof bundle (actions included), queue for review");
    d.expect(&["submit", &id], 0)?;
    d.expect(&["review"], 0)?;
    d.expect(&["show", &id, "--no-diff"], 0)?;

    d.say(
        "10. The proof verifies with standard tools too: ssh-keygen checks the detached signature",
    );
    let pubkey = d.expect(&["key", "public"], 0)?;
    let signers = root.join("allowed_signers");
    write(&signers, &format!("airlock {}", pubkey.trim()))?;
    let bundle = repo.join(format!(".airlock/local/proofs/{id}-r1.intoto.jsonl"));
    let mut keygen = Command::new("ssh-keygen");
    keygen
        .args(["-Y", "verify", "-f"])
        .arg(&signers)
        .args(["-I", "airlock", "-n", "airlock-proof", "-s"])
        .arg(format!("{}.sig", bundle.display()));
    keygen.stdin(std::fs::File::open(&bundle).map_err(|source| Error::Read {
        path: bundle.clone(),
        source,
    })?);
    if !d.json {
        println!(
            "$ ssh-keygen -Y verify -f allowed_signers -I airlock -n airlock-proof -s {id}-r1.intoto.jsonl.sig < {id}-r1.intoto.jsonl"
        );
    }
    match d.spawn(keygen) {
        Ok((code, out, err)) => {
            if !d.json {
                for line in out.lines().chain(err.lines()) {
                    println!("  {line}");
                }
            }
            if code != 0 {
                return Err(Error::Internal(format!(
                    "ssh-keygen could not verify the proof signature (exit {code})"
                )));
            }
        }
        Err(_) if !d.json => println!("  (ssh-keygen is not installed here; skipped)"),
        Err(_) => {}
    }

    d.say("11. A human approves exactly this proof");
    d.expect(
        &["approve", &id, "--reason", "fix is minimal and tested"],
        0,
    )?;

    d.say("12. The agent sneaks in one more edit after approval: exec is refused, and a direct write voids the approval");
    d.expect(
        &[
            "exec",
            &id,
            "--",
            "sh",
            "-c",
            "echo '// one more thing' >> src/lib.rs",
        ],
        1,
    )?;
    let lib = repo
        .join(".airlock/local/runs")
        .join(&id)
        .join("worktree/src/lib.rs");
    let mut text = std::fs::read_to_string(&lib).map_err(|source| Error::Read {
        path: lib.clone(),
        source,
    })?;
    text.push_str("// one more thing\n");
    write(&lib, &text)?;
    d.expect(&["promote", &id], 1)?;

    d.say("13. The reviewer redirects; the agent undoes it; check, submit, approve again");
    d.expect(
        &[
            "redirect",
            &id,
            "--reason",
            "no edits after submit; undo the extra line",
        ],
        0,
    )?;
    d.expect(
        &[
            "exec",
            &id,
            "--",
            "sh",
            "-c",
            &write_script("src/lib.rs", FIXED_LIB_RS),
        ],
        0,
    )?;
    d.expect(&["check", &id], 0)?;
    d.expect(&["submit", &id], 0)?;
    d.expect(&["approve", &id, "--reason", "same fix as round 1"], 0)?;

    d.say("14. Promote: everything is verified again, merged into main (the checked-out branch is updated), then the approved push is performed, exactly once");
    d.expect(&["promote", &id], 0)?;
    let remote_tip = git_output(
        d,
        &["rev-parse", "refs/heads/release/wordcount-fix"],
        &root.join("team.git"),
    )?;
    let main_tip = git_output(d, &["rev-parse", "main"], &repo)?;
    if remote_tip != main_tip {
        return Err(Error::Internal(format!(
            "the team remote's release/wordcount-fix is {remote_tip}, not main's {main_tip}"
        )));
    }
    if !d.json {
        println!(
            "team.git refs/heads/release/wordcount-fix = {} (main)",
            &main_tip[..12]
        );
    }
    d.expect(&["proof", "verify", &id], 0)?;

    d.say("15. The ledger: every step, hash-chained");
    d.expect(&["log", &id], 0)?;
    d.expect(&["ledger", "verify"], 0)?;
    let merged = std::fs::read_to_string(repo.join("src/lib.rs")).unwrap_or_default();
    if !merged.contains("split_whitespace") || merged.contains("one more thing") {
        return Err(Error::Internal(
            "the main checkout does not hold the approved fix".into(),
        ));
    }
    if !d.json {
        println!(
            "\nmain now holds exactly the approved fix (src/lib.rs uses split_whitespace; the sneaked line is not there)"
        );
    }
    Ok(())
}
