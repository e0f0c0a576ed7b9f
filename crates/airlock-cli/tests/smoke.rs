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
