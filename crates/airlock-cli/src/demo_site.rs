//! The demo's package host: one directory served read-only over plain HTTP
//! on 127.0.0.1 under one path, enough for git's "dumb" HTTP protocol (static files of a bare
//! repository after `git update-server-info`). The demo's agent clones from
//! it through airlock's egress proxy, so the demo shows a lane's host list
//! with a real client and a real server, on loopback only.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The longest request head read; the demo's only client is git.
const MAX_HEAD: usize = 16 * 1024;

/// A served directory; stops serving when dropped.
pub struct Site {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Site {
    /// Serves the files under `root` at `http://127.0.0.1:PORT/NAME/…`,
    /// on a free port. Nothing else is served.
    pub fn serve(name: &'static str, root: PathBuf) -> std::io::Result<Site> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(conn) = conn {
                    let root = root.clone();
                    std::thread::spawn(move || answer(conn, name, &root));
                }
            }
        });
        Ok(Site {
            port,
            stop,
            thread: Some(thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers one request (`Connection: close`): the file its path names
/// under `root`, or 404.
fn answer(conn: TcpStream, name: &str, root: &Path) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&conn);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // The rest of the head is read and ignored, bounded.
    let mut read = line.len();
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => return,
            Ok(n) => read += n,
        }
        if header == "\r\n" || header == "\n" || read > MAX_HEAD {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let body = (method == "GET" || method == "HEAD")
        .then(|| file_at(name, root, target))
        .flatten();
    let mut out = &conn;
    let _ = match body {
        Some(bytes) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                bytes.len()
            );
            out.write_all(head.as_bytes()).and_then(|()| {
                if method == "GET" {
                    out.write_all(&bytes)
                } else {
                    Ok(())
                }
            })
        }
        None => out
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    };
}

/// The file a request target names: `/NAME/PATH` is `PATH` under `root`,
/// the target an origin-form path or, as a proxy forwards it, an absolute
/// URL; the query is ignored. Nothing outside `root` is served (no `..`,
/// no absolute components).
fn file_at(name: &str, root: &Path, target: &str) -> Option<Vec<u8>> {
    let path = match target.split_once("://") {
        Some((_, rest)) => &rest[rest.find('/')?..],
        None => target,
    };
    let path = path.split('?').next()?.strip_prefix('/')?;
    let path = path.strip_prefix(name)?.strip_prefix('/')?;
    let relative = Path::new(path);
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return None;
    }
    let full = root.join(relative);
    full.is_file().then(|| std::fs::read(full).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_files_under_its_root_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("team.git");
        std::fs::create_dir_all(root.join("info")).unwrap();
        std::fs::write(root.join("info/refs"), "abc\trefs/heads/main\n").unwrap();
        std::fs::write(dir.path().join("secret"), "no").unwrap();
        let got = |t: &str| file_at("team.git", &root, t).map(|b| String::from_utf8(b).unwrap());
        assert_eq!(
            got("/team.git/info/refs?service=git-upload-pack").as_deref(),
            Some("abc\trefs/heads/main\n")
        );
        assert_eq!(
            got("http://git.demo.test:80/team.git/info/refs").as_deref(),
            Some("abc\trefs/heads/main\n")
        );
        assert_eq!(got("/../secret"), None);
        assert_eq!(got("/secret"), None);
        assert_eq!(got("/team.git../secret"), None);
        assert_eq!(got("/team.git/../secret"), None);
        assert_eq!(got("/team.git/../../secret"), None);
        assert_eq!(got("/team.git/info"), None);
        assert_eq!(got("http://host"), None);

        // Over a real socket: a file, then a 404.
        let site = Site::serve("team.git", root).unwrap();
        let ask = |target: &str| {
            let mut c = TcpStream::connect((Ipv4Addr::LOCALHOST, site.port())).unwrap();
            write!(c, "GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut answer = String::new();
            std::io::Read::read_to_string(&mut c, &mut answer).unwrap();
            answer
        };
        let found = ask("/team.git/info/refs");
        assert!(found.starts_with("HTTP/1.1 200 OK\r\n"), "{found}");
        assert!(found.ends_with("\r\n\r\nabc\trefs/heads/main\n"), "{found}");
        assert!(ask("/../secret").starts_with("HTTP/1.1 404 Not Found\r\n"));
    }
}
