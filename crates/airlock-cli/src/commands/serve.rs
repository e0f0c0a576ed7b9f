//! `airlock serve`: the review queue in a browser (airlock-web), on
//! 127.0.0.1 unless `--listen` says otherwise. Prints a one-time URL, then
//! serves until ^C or SIGTERM.

use std::io::Write;

use airlock_core::{Error, Result};
use airlock_web::server::{Server, listen};
use serde_json::json;

use super::Ctx;
use crate::render::{Output, warn};

#[derive(clap::Args)]
pub struct Args {
    /// The port on 127.0.0.1 (default 7878; 0 picks a free one).
    #[arg(long, value_name = "PORT")]
    port: Option<String>,
    /// Serve on another address, ADDR[:PORT] (an IP address): beyond this machine if it is not loopback.
    #[arg(long, value_name = "ADDR[:PORT]")]
    listen: Option<String>,
    /// Open the URL in a browser ($BROWSER, else xdg-open) when one exists.
    #[arg(long)]
    open: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let (addr, beyond) = listen::address(args.port.as_deref(), args.listen.as_deref())?;
    // The repository must open before anything is promised.
    let al = ctx.open()?;
    // Decisions are made by a person at the boundary: a server started from
    // inside a run's lane (by its agent) would decide as that person.
    airlock_core::decide::refuse_from_lane(&al, "serve")?;
    let user = who(&airlock_core::decide::decider(&al));
    let layout = al.layout.clone();
    drop(al);
    let listener = listen::bind(addr)?;
    let server = Server::new(listener, layout.clone(), user)
        .map_err(|e| Error::Environment(format!("cannot read the listening address: {e}")))?;
    if beyond {
        warn(&format!(
            "serving on {}, beyond this machine: anyone who can reach it may try the link; the session and each decision still need the one-time token",
            server.listen
        ));
    }
    let mut out = std::io::stdout().lock();
    let said = if ctx.json {
        writeln!(
            out,
            "{}",
            json!({"url": server.url, "listen": server.listen.to_string()})
        )
    } else {
        writeln!(
            out,
            "airlock serve: the review queue of {}\n\n  {}\n\nOpen that link once: it opens a session in that browser and is then spent.\nStop with ^C.",
            layout.root.display(),
            server.url
        )
    };
    said.and_then(|()| out.flush())
        .map_err(|e| Error::Environment(format!("cannot write to stdout: {e}")))?;
    drop(out);
    // Kept until the server stops (then removed).
    let _opener = if args.open {
        open_browser(&server.url)
    } else {
        None
    };
    let signal = server
        .run()
        .map_err(|e| Error::Environment(format!("the web server stopped: {e}")))?;
    eprintln!("airlock serve: stopped by {signal}");
    Ok(Output::raw(String::new(), 0))
}

/// Who decides, as a page shows it: the git identity, else the account.
fn who(decider: &serde_json::Value) -> String {
    decider["git"]
        .as_str()
        .or(decider["user"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| format!("uid {}", decider["uid"]))
}

/// `$BROWSER FILE`, else `xdg-open FILE`, FILE a page that sends the
/// browser on to `url`; a note when neither runs. The browser is not given
/// the link itself: a program's arguments are readable by every user of
/// this machine (`/proc/PID/cmdline`), and whoever spends the token first
/// owns the session. The page is private to this user (in a directory only
/// it can read); it is removed when the returned directory is dropped.
fn open_browser(url: &str) -> Option<tempfile::TempDir> {
    let (dir, page) = match redirect_page(url) {
        Ok(made) => made,
        Err(e) => {
            warn(&format!(
                "cannot write the page that opens the browser ({e}); open the link above yourself"
            ));
            return None;
        }
    };
    // $BROWSER may list several commands (`a:b`); the first is tried,
    // with any arguments it carries.
    let browser = std::env::var("BROWSER").unwrap_or_default();
    let first = browser.split(':').next().unwrap_or_default();
    let mut words = first.split_whitespace();
    let program = words.next().unwrap_or("xdg-open").to_string();
    let started = std::process::Command::new(&program)
        .args(words)
        .arg(&page)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match started {
        // Reaped when it exits, so it leaves no zombie behind.
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
            Some(dir)
        }
        Err(e) => {
            warn(&format!(
                "cannot open a browser ({program}: {e}); open the link above yourself (set $BROWSER to choose one)"
            ));
            None
        }
    }
}

/// A private directory holding `open.html`, which redirects to `url`, and
/// that page's `file://` URL.
fn redirect_page(url: &str) -> std::io::Result<(tempfile::TempDir, String)> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("airlock-serve-")
        .tempdir()?;
    // Only this user lists it (the page in it is 0600 besides).
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
    let path = dir.path().join("open.html");
    // The URL is ours: an address and a hex token, nothing to escape.
    let page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url={url}\"><title>airlock serve</title></head>\n<body><p><a href=\"{url}\">Open the review queue</a></p></body></html>\n"
    );
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?
        .write_all(page.as_bytes())?;
    let mut file_url = String::from("file://");
    for b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(b) {
            file_url.push(*b as char);
        } else {
            file_url.push_str(&format!("%{b:02X}"));
        }
    }
    Ok((dir, file_url))
}
