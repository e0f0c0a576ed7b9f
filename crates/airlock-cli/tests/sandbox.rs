//! The sandbox as airlock uses it: doctor, refusing a weaker sandbox unless
//! the workflow accepts it, interruption, and an unprivileged user.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use common::*;

/// The tests of this file run one at a time: a warm sandbox is named after
/// the host's pathname sockets among other things, so a socket another
/// test's airlock binds meanwhile (its own warm sandbox, its ledger server)
/// gives the next command a new sandbox, which the test counting warm
/// sandboxes would take for a bug.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn doctor_reports_every_protection_in_force_here() {
    let _one = one_at_a_time();
    let env = Env::new();
    let v = env.json(&["sandbox", "doctor"], 0);
    assert_eq!(v["backend"], "namespaces", "{v}");
    assert!(v["problem"].is_null(), "{v}");
    let protections: Vec<(&str, bool)> = v["protections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["in_force"] == true))
        .collect();
    // With namespaces everything is in force; Landlock as far as the kernel
    // offers it (the doctor reports its ABI).
    let landlock = v["landlock_abi"].as_i64();
    assert_eq!(
        protections,
        [
            ("writes confined to the worktree", true),
            ("secrets hidden", true),
            ("no network", true),
            ("whole process tree killed", true),
            ("no privilege gain", true),
            ("Landlock", landlock.is_some()),
            ("no io_uring, vsock or raw sockets", true),
        ],
        "{v}"
    );
    let detail = match landlock {
        Some(abi) => format!("kernel ABI {abi}"),
        None => "not offered by this kernel".into(),
    };
    assert_eq!(v["protections"][5]["detail"], detail.as_str(), "{v}");

    // The text says the same, one protection per line.
    let out = env.airlock(&["sandbox", "doctor"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.starts_with("sandbox backend: namespaces"),
        "{}",
        out.stdout
    );
    for (name, in_force) in protections {
        let mark = if in_force { "yes" } else { "NO " };
        assert!(
            out.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{mark} {name}"))),
            "no `{mark} {name}` in:\n{}",
            out.stdout
        );
    }
}

/// Runs `airlock ARGS` inside a user namespace that may not create user
/// namespaces: what a machine without unprivileged namespaces looks like.
fn airlock_without_namespaces(env: &Env, args: &[&str]) -> Output {
    let exe = assert_cmd::cargo::cargo_bin("airlock");
    let quoted: Vec<String> = args
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let script = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces && exec '{}' {}",
        exe.display(),
        quoted.join(" ")
    );
    let mut cmd = Command::new("unshare");
    env.hermetic(&mut cmd);
    cmd.args(["-Ur", "sh", "-c", &script])
        .current_dir(&env.repo)
        .output()
        .unwrap()
        .into()
}

#[test]
fn without_namespaces_a_command_is_refused_unless_the_workflow_accepts_less() {
    let _one = one_at_a_time();
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    let out = airlock_without_namespaces(
        &env,
        &["exec", &run, "--", "sh", "-c", "echo ran > ran.txt"],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("error: refusing to run the command without its sandbox"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("creating user, mount, pid and network namespaces failed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("accept_weaker = true"),
        "{}",
        out.stderr
    );
    assert!(!wt.join("ran.txt").exists(), "the command ran anyway");
    assert_eq!(
        env.json(&["show", &run], 0)["traces"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // The workflow accepts the weaker sandbox: the command runs, writes
    // outside the worktree still fail (Landlock), and the trace says how it ran.
    let workflow = format!("{WORKFLOW}\n[sandbox]\naccept_weaker = true\n");
    env.write(".airlock/workflow.toml", &workflow);
    let outside = env.tmp.path().join("outside.txt");
    std::fs::write(&outside, "original").unwrap();
    let script = format!("echo ran > ran.txt; echo pwned > {}", outside.display());
    let out = airlock_without_namespaces(&env, &["exec", &run, "--", "sh", "-c", &script]);
    // sh reports the refused write and exits 2; airlock passes the status through.
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("outside.txt: Permission denied"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(wt.join("ran.txt")).unwrap(),
        "ran\n"
    );
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "original");
    let traces = env.json(&["show", &run], 0)["traces"].clone();
    let confinement = traces[0]["confinement"].as_str().unwrap();
    assert!(confinement.starts_with("confined (weaker"), "{confinement}");
}

#[test]
fn interrupting_airlock_kills_the_command_and_everything_it_started() {
    let _one = one_at_a_time();
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    let marker = wt.join("survivor");
    let script = format!(
        "setsid sh -c 'sleep 1; echo alive > {m}' & (sleep 1; echo alive >> {m}) & sleep 30",
        m = marker.display()
    );
    let mut child = env
        .cmd(&["exec", &run, "--", "sh", "-c", &script])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // Our own child.
    let pid = rustix::process::Pid::from_child(&child);
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    let status = child.wait().unwrap();
    assert!(!status.success());
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !marker.exists(),
        "a process outlived the interrupted airlock"
    );
}

#[test]
fn an_unprivileged_user_gets_the_same_sandbox() {
    let _one = one_at_a_time();
    if !rustix::process::getuid().is_root() {
        // Already unprivileged: every other test here is the proof.
        return;
    }
    let parent = outside_private_tmp("unprivileged");
    std::fs::create_dir_all(&parent).unwrap();
    let base = tempfile::Builder::new()
        .prefix("unpriv-")
        .tempdir_in(&parent)
        .unwrap();
    let mut dir = base.path().to_path_buf();
    // Every ancestor must be traversable by the unprivileged user.
    while let Some(parent) = dir.parent() {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode | 0o711)).unwrap();
        dir = parent.to_path_buf();
    }
    let home = base.path().join("home");
    let repo = base.path().join("repo");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::write(home.join(".ssh/id_ed25519"), "UNPRIVILEGED-SECRET").unwrap();
    std::fs::create_dir_all(repo.join("src")).unwrap();
    std::fs::write(repo.join("src/app.sh"), "echo hi\n").unwrap();
    let outside = base.path().join("outside.txt");
    std::fs::write(&outside, "original").unwrap();
    let chown = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(base.path())
        .status()
        .unwrap();
    assert!(chown.success());

    let exe = assert_cmd::cargo::cargo_bin("airlock");
    let script = format!(
        r#"set -e
git init -q -b main && git add -A && git commit -q -m init
"{exe}" init >/dev/null
printf 'objective = "x"\ntouch = ["src/**"]\nchecks = []\nrollback = "revert"\n' > ../brief.toml
run=$("{exe}" --json start ../brief.toml | sed -n 's/.*"run": "\(.*\)".*/\1/p')
"{exe}" exec "$run" -- sh -c 'id -u; echo made > src/made.txt; cat ~/.ssh/id_ed25519 || true; echo pwned > {outside} || true'
"{exe}" --json show "$run" | grep -c '"confinement": "confined"'
"#,
        exe = exe.display(),
        outside = outside.display()
    );
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
            &script,
        ])
        .current_dir(&repo)
        .env_clear()
        .env("HOME", &home)
        .env("PATH", std::env::var("PATH").unwrap())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "u")
        .env("GIT_AUTHOR_EMAIL", "u@example.invalid")
        .env("GIT_COMMITTER_NAME", "u")
        .env("GIT_COMMITTER_EMAIL", "u@example.invalid")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.starts_with("65534\n"), "{stdout}");
    assert!(!stdout.contains("UNPRIVILEGED-SECRET"), "{stdout}");
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "original");
    assert_eq!(stdout.lines().last(), Some("1"), "{stdout}");
    let made = std::fs::read_dir(repo.join(".airlock/local/runs"))
        .unwrap()
        .map(|e| e.unwrap().path().join("worktree/src/made.txt"))
        .next()
        .unwrap();
    assert_eq!(std::fs::read_to_string(made).unwrap(), "made\n");
}

/// The warm sandboxes' sockets under the test's home.
fn warm_sandboxes(env: &Env) -> Vec<String> {
    let dir = env.home.join(".config/airlock/sandboxes");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".sock"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn commands_of_a_run_share_one_warm_sandbox_unless_the_workflow_says_otherwise() {
    let _one = one_at_a_time();
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    for i in 0..3 {
        let out = env.airlock(&[
            "exec",
            &run,
            "--",
            "sh",
            "-c",
            &format!("echo {i} >> n.txt"),
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    assert_eq!(
        std::fs::read_to_string(wt.join("n.txt")).unwrap(),
        "0\n1\n2\n"
    );
    let warm = warm_sandboxes(&env);
    assert_eq!(warm.len(), 1, "{warm:?}");

    // `keep_warm = 0`: a sandbox per command, none left behind.
    let other = Env::new();
    let (run, wt) = other.start(BRIEF);
    other.write(
        ".airlock/workflow.toml",
        &format!("{WORKFLOW}\n[sandbox]\nkeep_warm = 0\n"),
    );
    let out = other.airlock(&["exec", &run, "--", "sh", "-c", "echo $$ > pid.txt"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(wt.join("pid.txt")).unwrap(), "2\n");
    assert_eq!(warm_sandboxes(&other), Vec::<String>::new());
    let trace = &other.json(&["show", &run, "--no-diff"], 0)["traces"][0];
    assert_eq!(trace["confinement"], "confined");
}

#[test]
fn doctor_lists_what_commands_of_the_repository_see() {
    let _one = one_at_a_time();
    let env = Env::new();
    std::fs::create_dir_all(env.home.join(".cargo/bin")).unwrap();
    std::fs::create_dir_all(env.home.join("datasets")).unwrap();
    std::fs::create_dir_all(env.home.join("scratch")).unwrap();
    let workflow = format!(
        "{WORKFLOW}\n[sandbox]\nread = [\"~/datasets\"]\nwrite = [\"~/scratch\"]\nhide = [\"/etc/hostname\"]\n"
    );
    env.write(".airlock/workflow.toml", &workflow);
    let line_of = |start: &str| workflow.lines().position(|l| l.starts_with(start)).unwrap() + 1;
    let v = env.json(&["sandbox", "doctor"], 0);
    let repo = &v["repository"];
    let listed = |list: &str| -> Vec<(String, String)> {
        repo[list]
            .as_array()
            .unwrap_or_else(|| panic!("no {list} in {v}"))
            .iter()
            .map(|s| {
                (
                    s["path"].as_str().unwrap().to_string(),
                    s["why"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let has = |list: &str, path: &std::path::Path, why: &str| {
        assert!(
            listed(list)
                .iter()
                .any(|(p, w)| p == &path.display().to_string() && w.contains(why)),
            "no {} ({why}) in {list}: {:#?}",
            path.display(),
            listed(list)
        );
    };
    let repo_root = std::fs::canonicalize(&env.repo).unwrap();
    let home = std::fs::canonicalize(&env.home).unwrap();
    has("hidden", &repo_root, "the main checkout");
    has(
        "hidden",
        &repo_root.join(".airlock/local"),
        "airlock's state",
    );
    has(
        "hidden",
        &env.home.join(".config/airlock"),
        "the signing key",
    );
    has("hidden", &env.home, "the home directory");
    has("hidden", &env.home.join(".ssh"), "HOME_SECRETS");
    has("hidden", &env.home.join(".pgpass"), "HOME_SECRETS");
    has(
        "hidden",
        std::path::Path::new("/etc/hostname"),
        &format!("[sandbox] hide (line {})", line_of("hide = ")),
    );
    has("read_only", &repo_root.join(".git/objects"), "object store");
    has("read_only", &home.join(".cargo"), "HOME_EXPOSED");
    has(
        "read_only",
        &env.home.join("datasets"),
        &format!("[sandbox] read (line {})", line_of("read = ")),
    );
    has(
        "writable",
        &repo_root.join(".airlock/local/runs/RUN/worktree"),
        "the run's worktree",
    );
    has("writable", std::path::Path::new("/tmp"), "private /tmp");
    has(
        "writable",
        &env.home.join("scratch"),
        &format!("[sandbox] write (line {})", line_of("write = ")),
    );
    // Missing toolchains are not listed: only what exists is shown.
    assert!(
        !listed("read_only")
            .iter()
            .any(|(p, _)| p.ends_with(".rustup"))
    );

    // The text says the same, in three lists.
    let out = env.airlock(&["sandbox", "doctor"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for heading in ["hidden:", "shown again, read-only:", "writable:"] {
        assert!(
            out.stdout.lines().any(|l| l == heading),
            "no `{heading}` in:\n{}",
            out.stdout
        );
    }
    assert!(out.stdout.contains("~/.pgpass"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains(&format!("[sandbox] read (line {})", line_of("read = "))),
        "{}",
        out.stdout
    );
}

// ---- Red team ----------------------------------------------------------------

/// With the weaker sandbox (no PID namespace), every process of the user is
/// in the command's /proc: an action's token in airlock's own environment
/// (or in any process airlock started) must still be out of its reach.
#[test]
fn red_team_an_action_token_is_out_of_reach_of_a_weaker_sandbox() {
    let _one = one_at_a_time();
    let env = Env::new();
    env.write(
        ".airlock/workflow.toml",
        &format!(
            "{WORKFLOW}\n[sandbox]\naccept_weaker = true\n[actions]\nenv = [\"HOOK_TOKEN\"]\n"
        ),
    );
    env.git(&["commit", "-q", "-am", "weaker sandbox, a token for actions"]);
    let (run, _) = env.start(BRIEF);
    let token = "hook-token-4f1c0ffee9d2b7a1";
    let exe = assert_cmd::cargo::cargo_bin("airlock");
    let script = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces && exec '{}' exec {run} -- sh -c \
         'for f in /proc/[0-9]*/environ; do tr \"\\0\" \"\\n\" < $f 2>/dev/null; done | grep hook-token; \
          cat /proc/$PPID/environ /proc/1/environ 2>&1 | tr \"\\0\" \"\\n\" | grep hook-token; ls /proc | grep -c ^[0-9] | sed s/^/procs:/; echo RAN; exit 0'",
        exe.display()
    );
    let mut cmd = Command::new("unshare");
    env.hermetic(&mut cmd);
    let out: Output = cmd
        .args(["-Ur", "sh", "-c", &script])
        .env("HOOK_TOKEN", token)
        .current_dir(&env.repo)
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("RAN"), "{}\n{}", out.stdout, out.stderr);
    assert!(
        !out.stdout.contains(token) && !out.stderr.contains(token),
        "a command in the weaker sandbox read the action token:\n{}\n{}",
        out.stdout,
        out.stderr
    );
}
