//! Scans of real directories, and the changes between them.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use airlock_scan::{Change, Fingerprint, Options, scan};

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn take(root: &Path) -> Fingerprint {
    scan(root, None, &Options::default()).unwrap()
}

fn changes(before: &Fingerprint, after: &Fingerprint) -> Vec<(char, String)> {
    before
        .changes(after)
        .into_iter()
        .map(|Change { status, path }| (status, path))
        .collect()
}

fn paths(fp: &Fingerprint) -> Vec<String> {
    fp.paths()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect()
}

#[test]
fn added_modified_deleted_and_retyped_files_are_listed_in_path_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "keep.txt", "same");
    write(root, "edit.txt", "one");
    write(root, "gone.txt", "bye");
    write(root, "tool.sh", "echo");
    write(root, "link", "a file for now");
    let before = take(root);

    write(root, "edit.txt", "two");
    std::fs::remove_file(root.join("gone.txt")).unwrap();
    write(root, "sub/new.txt", "hello");
    std::fs::set_permissions(root.join("tool.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::remove_file(root.join("link")).unwrap();
    std::os::unix::fs::symlink("keep.txt", root.join("link")).unwrap();
    // Rewritten with the same bytes: not a change.
    write(root, "keep.txt", "same");
    let after = scan(root, Some(&before), &Options::default()).unwrap();

    assert_eq!(
        changes(&before, &after),
        vec![
            ('M', "edit.txt".to_string()),
            ('D', "gone.txt".to_string()),
            ('T', "link".to_string()),
            ('A', "sub/new.txt".to_string()),
            ('M', "tool.sh".to_string()),
        ]
    );
    assert!(changes(&after, &after).is_empty());
}

#[test]
fn ignored_files_git_metadata_and_nested_repositories_are_not_listed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, ".gitignore", "target/\n*.log\n");
    write(root, "src/main.rs", "fn main() {}");
    write(root, "src/.gitignore", "generated.rs\n");
    write(root, "src/generated.rs", "// made");
    write(root, "target/debug/app", "binary");
    write(root, "run.log", "log");
    write(root, ".git/config", "[core]");
    write(root, "vendor/lib/.git/HEAD", "ref: refs/heads/main");
    std::fs::create_dir_all(root.join("vendor/lib/.git/objects")).unwrap();
    std::fs::create_dir_all(root.join("vendor/lib/.git/refs")).unwrap();
    write(root, "vendor/lib/code.rs", "// theirs");
    write(root, "secret.key", "k");
    write(root, "exclude", "secret.key\n");
    let options = Options {
        excludes: vec![root.join("exclude"), root.join("missing-exclude")],
    };
    let fp = scan(root, None, &options).unwrap();
    assert_eq!(
        paths(&fp),
        vec![".gitignore", "exclude", "src/.gitignore", "src/main.rs"]
    );
}

#[test]
fn a_cache_survives_a_round_trip_and_a_damaged_one_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    write(&root, "a.txt", "a");
    let fp = take(&root);
    let cache = dir.path().join("scan.cache");
    fp.save(&cache).unwrap();
    assert_eq!(Fingerprint::load(&cache), Some(fp));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");

    std::fs::write(&cache, b"\xff\xff not a cache").unwrap();
    assert_eq!(Fingerprint::load(&cache), None);
    assert_eq!(Fingerprint::load(&dir.path().join("none")), None);
}

fn mkfifo(path: &Path) {
    use rustix::fs::{CWD, FileType, Mode, mknodat};
    mknodat(CWD, path, FileType::Fifo, Mode::from_raw_mode(0o644), 0).unwrap();
}

#[test]
fn a_fifo_is_not_listed_and_does_not_hang_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "a.txt", "a");
    // A FIFO is not a file git tracks; it must not hang the scan either.
    mkfifo(&root.join("pipe"));
    let before = take(root);
    assert_eq!(paths(&before), vec!["a.txt"]);
}

#[test]
fn a_missing_root_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = scan(&missing, None, &Options::default()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read the work tree {}", missing.display())),
        "{err}"
    );
}

/// What `git add --all` would stage in `root` (a fresh repository made there).
fn git_sees(root: &Path) -> Vec<String> {
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(root)
            .env("HOME", root)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    git(&["init", "-q"]);
    write(root, ".git/info/exclude", "*.tmp\n!kept.tmp\nscratch/\n");
    git(&["add", "--all"]);
    let listed = git(&["ls-files", "-z"]);
    let mut paths: Vec<String> = listed
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    paths.sort();
    paths
}

#[test]
fn it_lists_exactly_what_git_would_stage() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for (path, text) in [
        (".gitignore", "*.log\nbuild/\n/only-at-root.txt\n"),
        ("app.log", "x"),
        ("src/lib.rs", "x"),
        ("src/.gitignore", "!keep.log\ngen/\n*.rs.bk\n"),
        ("src/keep.log", "x"),
        ("src/drop.log.bak", "x"),
        ("src/gen/out.rs", "x"),
        ("src/a.rs.bk", "x"),
        ("src/only-at-root.txt", "x"),
        ("only-at-root.txt", "x"),
        ("build/app", "x"),
        ("build/keep.log", "x"),
        ("deep/er/build/x", "x"),
        ("notes.tmp", "x"),
        ("kept.tmp", "x"),
        ("scratch/a", "x"),
        ("src/scratch/b", "x"),
        ("docs/#odd name!.md", "x"),
        (".hidden/file", "x"),
        // Not a repository: an empty `.git` file does not hide its directory.
        ("plain/.git", ""),
        ("plain/payload", "x"),
        // Not a repository either: a `.git` directory without one inside.
        ("fake/.git/HEAD", "ref: refs/heads/main\n"),
        ("fake/inner.txt", "x"),
    ] {
        write(root, path, text);
    }
    std::os::unix::fs::symlink("src/lib.rs", root.join("link")).unwrap();
    let expected = git_sees(root);
    let options = Options {
        excludes: vec![root.join(".git/info/exclude")],
    };
    let fp = scan(root, None, &options).unwrap();
    assert_eq!(paths(&fp), expected);
    assert!(
        expected.contains(&"src/keep.log".to_string()),
        "{expected:?}"
    );
}

/// Runs `f` on a thread; fails the test if it has not returned within a
/// minute (a hang is the bug these tests look for, not a speed).
fn finishes<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .expect("the scan never finished")
}

#[test]
fn a_gitignore_that_is_not_a_regular_file_is_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    let outside = dir.path().join("outside-rules");
    write(&outside, "rules", "*.txt\n");
    write(&root, "fifo/a.txt", "a");
    write(&root, "zero/b.txt", "b");
    write(&root, "linked/c.txt", "c");
    mkfifo(&root.join("fifo/.gitignore"));
    std::os::unix::fs::symlink("/dev/zero", root.join("zero/.gitignore")).unwrap();
    // git does not follow a linked .gitignore either: c.txt stays listed.
    std::os::unix::fs::symlink(outside.join("rules"), root.join("linked/.gitignore")).unwrap();
    let fp = finishes(move || scan(&root, None, &Options::default()).unwrap());
    assert_eq!(
        paths(&fp),
        vec![
            "fifo/a.txt",
            "linked/.gitignore",
            "linked/c.txt",
            "zero/.gitignore",
            "zero/b.txt"
        ]
    );
}

#[test]
fn a_directory_swapped_for_a_link_never_leads_outside() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    let outside = dir.path().join("outside");
    write(&outside, "outside-marker", "secret name");
    write(&root, "keep.txt", "k");
    let d = root.join("d");
    std::fs::create_dir_all(&d).unwrap();
    for i in 0..20 {
        write(&d, &format!("f{i}"), "x");
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, d, outside) = (stop.clone(), d.clone(), outside.clone());
        let real = root.join("d.real");
        let link = root.join("d.link");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        std::fs::rename(&d, &real).unwrap();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // d is a directory, then a link to the outside, and so on.
                let _ = std::fs::rename(&real, &d);
                let _ = std::fs::rename(&d, &real);
                let _ = std::fs::rename(&link, &d);
                let _ = std::fs::rename(&d, &link);
            }
        })
    };
    for _ in 0..300 {
        let fp = scan(&root, None, &Options::default()).unwrap();
        let listed = paths(&fp);
        assert!(
            !listed.iter().any(|p| p.contains("outside-marker")),
            "{listed:?}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
}

#[test]
fn bytes_count_the_files_a_snapshot_would_store_and_nothing_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, ".gitignore", "target/\n");
    write(root, "src/main.rs", "fn main() {}");
    write(root, "data/big.bin", &"x".repeat(5000));
    write(root, "target/debug/app", &"y".repeat(100_000));
    write(root, ".git/objects/pack", &"z".repeat(100_000));
    std::os::unix::fs::symlink("src/main.rs", root.join("link")).unwrap();
    let fp = take(root);
    // .gitignore (8) + main.rs (12) + big.bin (5000) + the link's target name (11).
    assert_eq!(fp.bytes(), 8 + 12 + 5000 + 11);
    assert_eq!(
        fp.largest(2),
        vec![
            ("data/big.bin".to_string(), 5000),
            ("src/main.rs".to_string(), 12)
        ]
    );
}
