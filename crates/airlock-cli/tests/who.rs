//! Who an event names when nothing in the environment says: the user's git
//! e-mail address, remembered between commands until a config file changes.

mod common;

use common::{BRIEF, Env};

/// Runs `airlock ARGS` with git's global config at `config` and no
/// `GIT_AUTHOR_*` or `AIRLOCK_PRINCIPAL`; returns the principal of the
/// newest event.
fn principal_after(env: &Env, config: &std::path::Path, args: &[&str]) -> String {
    let out = env
        .cmd(args)
        .env("GIT_CONFIG_GLOBAL", config)
        .env_remove("GIT_AUTHOR_NAME")
        .env_remove("GIT_AUTHOR_EMAIL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = env.events(None);
    events.last().unwrap()["data"]["who"]["principal"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn the_principal_follows_the_git_config_across_commands() {
    let env = Env::new();
    let config = env.tmp.path().join("gitconfig");
    std::fs::write(&config, "[user]\n\tname = Ada\n\temail = ada@example.com\n").unwrap();
    // Only files written well before git is asked are trusted by their
    // times: these two were, a minute ago.
    written_a_minute_ago(&config);
    written_a_minute_ago(&env.repo.join(".git/config"));
    let brief = env.write_brief("one", BRIEF);
    assert_eq!(
        principal_after(&env, &config, &["start", &brief]),
        "ada@example.com"
    );
    // Remembered, in the key directory (under HOME here): the same answer
    // without asking git.
    let remembered = walk(&env.home)
        .into_iter()
        .filter(|p| p.parent().is_some_and(|d| d.ends_with("git-config")))
        .collect::<Vec<_>>();
    assert_eq!(remembered.len(), 1, "{remembered:?}");
    assert!(
        std::fs::read_to_string(&remembered[0])
            .unwrap()
            .contains("ada@example.com")
    );
    assert_eq!(
        principal_after(&env, &config, &["start", &brief]),
        "ada@example.com"
    );

    // The file changes (same size, so only its time and content tell).
    std::fs::write(&config, "[user]\n\tname = Ada\n\temail = bob@example.com\n").unwrap();
    assert_eq!(
        principal_after(&env, &config, &["start", &brief]),
        "bob@example.com"
    );
    // Written just now: asked, not remembered (a second write in the same
    // clock tick would not show in its times).
    let text = std::fs::read_to_string(&remembered[0]).unwrap();
    assert!(!text.contains("bob@example.com"), "{text}");

    // A config that includes another is asked every time: a change in the
    // included file shows at once.
    let included = env.tmp.path().join("identity");
    std::fs::write(&included, "[user]\n\tname = Cy\n\temail = cy@example.com\n").unwrap();
    std::fs::write(
        &config,
        format!("[include]\n\tpath = {}\n", included.display()),
    )
    .unwrap();
    assert_eq!(
        principal_after(&env, &config, &["start", &brief]),
        "cy@example.com"
    );
    std::fs::write(&included, "[user]\n\tname = Cy\n\temail = di@example.com\n").unwrap();
    assert_eq!(
        principal_after(&env, &config, &["start", &brief]),
        "di@example.com"
    );

    // The repository's own config wins over the global one, as for a commit.
    env.git(&["config", "user.email", "repo@example.com"]);
    assert_eq!(
        principal_after(&env, &config, &["start", &brief]),
        "repo@example.com"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

fn written_a_minute_ago(path: &std::path::Path) {
    let then = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(then)
        .unwrap();
}
