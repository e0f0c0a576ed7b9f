mod common;

use common::*;

#[test]
fn a_run_goes_from_brief_to_promoted() {
    let env = Env::new();
    let (run, _wt) = env.approved();
    let v = env.json(&["promote", &run], 0);
    assert_eq!(v["target"], "main");
    assert_eq!(env.state(&run), "promoted");
    let text = std::fs::read_to_string(env.repo.join("src/app.sh")).unwrap();
    assert_eq!(text, "#!/bin/sh\necho hello, please\n");
    assert_eq!(env.git(&["status", "--porcelain"]), "");
    env.assert_ledger_ok();
}

#[test]
fn parallel_commands_in_one_run_are_both_traced() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    let children: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|name| {
            env.cmd(&[
                "exec",
                &run,
                "--",
                "sh",
                "-c",
                &format!("echo {name} > src/{name}.txt"),
            ])
            .spawn()
            .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    for name in ["a", "b", "c"] {
        assert_eq!(
            std::fs::read_to_string(wt.join(format!("src/{name}.txt"))).unwrap(),
            format!("{name}\n")
        );
    }
    let traces = env.json(&["show", &run], 0)["traces"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(traces, 3);
    env.assert_ledger_ok();
}

#[test]
fn a_stale_index_lock_from_a_killed_process_does_not_wedge_the_run() {
    let env = Env::new();
    let (run, wt) = env.start(BRIEF);
    let lock = env
        .repo
        .join(".airlock/local/runs")
        .join(&run)
        .join("index.lock");
    std::fs::write(&lock, b"").unwrap();
    write(&wt.join("src/app.sh"), "#!/bin/sh\necho hello again\n");
    let report = env.json(&["check", &run], 0);
    assert_eq!(report["passed"], true);
    assert!(!lock.exists());
}
