//! The password file libpq reads (`~/.pgpass`, or the file `PGPASSFILE`
//! names), which the `postgres` client does not: a URL committed in the
//! workflow names no password, and this file supplies it. Lines are
//! `host:port:database:user:password`, `*` matching anything, `\:` and
//! `\\` escaped; the first matching line wins; a file others can read is
//! ignored, as libpq ignores it.

use std::path::{Path, PathBuf};

use postgres::config::Host;

/// Fills in `config`'s password from the password file when the URL gave
/// none.
pub fn fill(config: &mut postgres::Config) {
    if config.get_password().is_some() {
        return;
    }
    let Some(path) = file() else {
        return;
    };
    if let Some(password) = lookup(&path, config) {
        config.password(password);
    }
}

/// `PGPASSFILE`, else `~/.pgpass`.
fn file() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PGPASSFILE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| Path::new(&h).join(".pgpass"))
}

/// The password of the first line of the file at `path` matching
/// `config`'s first host, port, database and user.
fn lookup(path: &Path, config: &postgres::Config) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).ok()?;
    // Like libpq: a file the group or others can read is not a secret.
    if !meta.is_file() || meta.permissions().mode() & 0o077 != 0 {
        return None;
    }
    if meta.len() > 1 << 20 {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        // libpq matches a socket connection as `localhost`.
        Some(Host::Unix(_)) | None => "localhost".into(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user()?.to_string();
    let database = config.get_dbname().unwrap_or(&user).to_string();
    let wanted = [host.as_str(), &port, &database, &user];
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(fields)
        .find(|f| {
            f[..4]
                .iter()
                .zip(wanted)
                .all(|(field, want)| field == "*" || field == want)
        })
        .map(|mut f| f.swap_remove(4))
}

/// A line's five fields, unescaped; None for a line with fewer.
fn fields(line: &str) -> Option<Vec<String>> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.last_mut()?.push(chars.next().unwrap_or('\\')),
            ':' if out.len() < 5 => out.push(String::new()),
            c => out.last_mut()?.push(c),
        }
    }
    (out.len() == 5).then_some(out)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn write(dir: &Path, text: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("pgpass");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn config(url: &str) -> postgres::Config {
        postgres::Config::from_str(url).unwrap()
    }

    #[test]
    fn the_first_matching_line_gives_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "# comment\nother:5432:*:me:wrong\ndb:5433:airlock:me:p\\:a\\\\ss:word\n*:*:*:me:fallback\n",
            0o600,
        );
        let c = config("postgres://me@db:5433/airlock");
        assert_eq!(lookup(&path, &c).as_deref(), Some("p:a\\ss:word"));
        let c = config("postgres://me@db/other");
        assert_eq!(lookup(&path, &c).as_deref(), Some("fallback"));
        let c = config("postgres://you@db/airlock");
        assert_eq!(lookup(&path, &c), None);
        // A socket connection is `localhost`; the database defaults to the user's.
        let path = write(dir.path(), "localhost:5432:me:me:sock\n", 0o600);
        let c = config("host=/run/postgresql user=me");
        assert_eq!(lookup(&path, &c).as_deref(), Some("sock"));
    }

    #[test]
    fn a_file_others_can_read_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "*:*:*:*:secret\n", 0o644);
        assert_eq!(lookup(&path, &config("postgres://me@db/a")), None);
        let path = write(dir.path(), "*:*:*:*:secret\n", 0o600);
        assert_eq!(
            lookup(&path, &config("postgres://me@db/a")).as_deref(),
            Some("secret")
        );
        // Short or malformed lines are skipped, never a panic.
        let path = write(dir.path(), "a:b\n\\\n::::\n", 0o600);
        assert_eq!(lookup(&path, &config("postgres://me@db/a")), None);
    }
}
