//! The write is whole or not at all: after a failure the old content is
//! there and no temporary file is; after success the new content is, with
//! the permissions asked for.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Every entry of `dir` but the ones named.
fn others(dir: &Path, known: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !known.contains(&n.as_str()))
        .collect();
    names.sort();
    names
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn success_replaces_the_content_and_leaves_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    airlock_fs::write(&path, b"first").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"first");
    airlock_fs::write(&path, b"second, longer than the first").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"second, longer than the first");
    airlock_fs::write(&path, b"").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"");
    assert_eq!(others(dir.path(), &["state.json"]), Vec::<String>::new());
}

#[test]
fn a_relative_path_writes_in_the_current_directory() {
    // The parent of "name" is "", which must mean ".".
    let dir = tempfile::tempdir().unwrap();
    let prev = std::env::current_dir().unwrap();
    std::env::set_current_dir(dir.path()).unwrap();
    let written = airlock_fs::write(Path::new("relative"), b"here");
    std::env::set_current_dir(prev).unwrap();
    written.unwrap();
    assert_eq!(fs::read(dir.path().join("relative")).unwrap(), b"here");
}

#[test]
fn permissions_are_the_ones_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("signing_key");
    airlock_fs::Write::new()
        .mode(0o600)
        .write(&key, b"secret")
        .unwrap();
    assert_eq!(mode(&key), 0o600);
    // Replacing a file gives the new file the mode asked for, not the old one's.
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    airlock_fs::Write::new()
        .mode(0o600)
        .write(&key, b"secret 2")
        .unwrap();
    assert_eq!(mode(&key), 0o600);
    // The default is File::create's: 0o666 less the umask, never more.
    let plain = dir.path().join("plain");
    airlock_fs::write(&plain, b"x").unwrap();
    let created = dir.path().join("created");
    fs::File::create(&created).unwrap();
    assert_eq!(mode(&plain), mode(&created));
}

#[test]
fn a_directory_in_the_way_fails_the_write_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("inside"), b"kept").unwrap();
    let err = airlock_fs::write(&target, b"new").unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::IsADirectory | ErrorKind::DirectoryNotEmpty
        ),
        "{err:?}"
    );
    assert!(target.is_dir());
    assert_eq!(fs::read(target.join("inside")).unwrap(), b"kept");
    assert_eq!(others(dir.path(), &["target"]), Vec::<String>::new());
}

#[test]
fn no_clobber_keeps_the_existing_file_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signing_key");
    fs::write(&path, b"the winner's key").unwrap();
    let err = airlock_fs::Write::new()
        .mode(0o600)
        .no_clobber()
        .write(&path, b"the loser's key")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err:?}");
    assert_eq!(fs::read(&path).unwrap(), b"the winner's key");
    assert_eq!(others(dir.path(), &["signing_key"]), Vec::<String>::new());
    // Where nothing is in the way, it creates.
    let fresh = dir.path().join("fresh");
    airlock_fs::Write::new()
        .no_clobber()
        .write(&fresh, b"made")
        .unwrap();
    assert_eq!(fs::read(&fresh).unwrap(), b"made");
}

#[test]
fn a_read_only_directory_fails_the_write_and_keeps_the_old_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    fs::write(&path, b"old").unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o555)).unwrap();
    // Root writes into a read-only directory anyway: nothing to show then.
    let probe = dir.path().join("probe");
    if fs::write(&probe, b"").is_ok() {
        fs::remove_file(&probe).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        eprintln!("skipped: privileged, a read-only directory does not stop the write");
        return;
    }
    let err = airlock_fs::write(&path, b"new").unwrap_err();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err:?}");
    assert_eq!(fs::read(&path).unwrap(), b"old");
    assert_eq!(others(dir.path(), &["config"]), Vec::<String>::new());
}

#[test]
fn a_missing_directory_is_an_error_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent").join("file");
    let err = airlock_fs::write(&path, b"x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
    assert!(!dir.path().join("absent").exists());
}

#[test]
fn a_cache_write_is_whole_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("walk.cache");
    fs::write(&path, b"old cache").unwrap();
    airlock_fs::Write::new()
        .cache()
        .write(&path, b"new cache")
        .unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"new cache");
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    airlock_fs::Write::new()
        .cache()
        .write(&path, b"x")
        .unwrap_err();
    assert_eq!(others(dir.path(), &["walk.cache"]), Vec::<String>::new());
}

#[test]
fn rename_moves_a_finished_file_over_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let (pending, golden) = (dir.path().join("a.pending"), dir.path().join("a.snap"));
    fs::write(&pending, b"new").unwrap();
    fs::write(&golden, b"old").unwrap();
    airlock_fs::rename(&pending, &golden).unwrap();
    assert_eq!(fs::read(&golden).unwrap(), b"new");
    assert!(!pending.exists());
    // A failed rename changes nothing.
    fs::create_dir(&pending).unwrap();
    fs::write(pending.join("x"), b"").unwrap();
    airlock_fs::rename(&pending, &golden).unwrap_err();
    assert_eq!(fs::read(&golden).unwrap(), b"new");
}
