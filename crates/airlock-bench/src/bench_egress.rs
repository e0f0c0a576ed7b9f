//! `egress`: airlock-egress's proxy called directly, against the same
//! client talking to the same loopback server without it. One connection
//! (connect, one byte each way, close) through an HTTP CONNECT tunnel vs
//! direct, and a bulk download through the tunnel vs direct. Then the
//! path a sandboxed command takes: this binary as a reader inside a real
//! sandbox (`run_with_egress`), through the bridge on the sandbox's
//! loopback and the proxy's Unix socket, against the same reader run
//! outside, straight to the server.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use airlock_egress::{Allowlist, Proxy, ProxyConfig, Sink};
use airlock_sandbox::{CommandSpec, Confinement, Echo, Egress, Input, Limits, run_with_egress};
use anyhow::{Context, Result, bail, ensure};

use crate::stats::{Comparison, Measure, Target};

pub struct Opts {
    /// Timed pairs of single connections.
    pub pairs: usize,
    /// Megabytes each download carries.
    pub mb: usize,
    /// Timed pairs of downloads.
    pub download_pairs: usize,
    /// Timed pairs of downloads by a sandboxed reader (0: none).
    pub sandbox_pairs: usize,
    /// The bulk server's pace in MB/s, as a link's (0: unpaced).
    pub link_mbs: u64,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            pairs: 500,
            mb: 100,
            download_pairs: 21,
            sandbox_pairs: 11,
            link_mbs: 0,
        }
    }
}

const NAME: &str = "bench.test";
const CHUNK: usize = 1 << 20;

/// A loopback server that runs `serve` on each connection, in its own thread.
struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(serve: fn(TcpStream)) -> Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(c) = conn {
                    std::thread::spawn(move || serve(c));
                }
            }
        });
        Ok(Server {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One byte in, one byte out, then wait for the client to close.
fn echo_byte(mut c: TcpStream) {
    let mut b = [0u8; 1];
    if c.read_exact(&mut b).is_ok() && c.write_all(&b).is_ok() {
        let _ = c.read(&mut b);
    }
}

/// The bulk server's pace in bytes per second (0: unpaced). A static
/// because the server's connection handlers are plain functions.
static LINK_BYTES_PER_SEC: AtomicU64 = AtomicU64::new(0);

/// The size is the first 8 bytes the client sends; then that many bytes,
/// never ahead of [`LINK_BYTES_PER_SEC`] when it is set: a link's rate,
/// against which what the proxy costs is seen as on a network rather than
/// as memory copies on loopback.
fn send_bulk(mut c: TcpStream) {
    let mut n = [0u8; 8];
    if c.read_exact(&mut n).is_err() {
        return;
    }
    let mut left = u64::from_le_bytes(n) as usize;
    let chunk = vec![0x5au8; CHUNK];
    let pace = LINK_BYTES_PER_SEC.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut sent = 0u64;
    while left > 0 {
        if pace > 0 {
            let due = Duration::from_secs_f64(sent as f64 / pace as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let k = left.min(CHUNK);
        if c.write_all(&chunk[..k]).is_err() {
            return;
        }
        left -= k;
        sent += k as u64;
    }
    let _ = c.shutdown(Shutdown::Write);
}

/// Opens a CONNECT tunnel to `NAME:port` over `s`.
fn tunnel<S: Read + Write>(mut s: S, port: u16) -> Result<S> {
    write!(
        s,
        "CONNECT {NAME}:{port} HTTP/1.1\r\nHost: {NAME}:{port}\r\n\r\n"
    )?;
    let mut answer = [0u8; 39];
    s.read_exact(&mut answer)?;
    ensure!(
        &answer[..] == b"HTTP/1.1 200 Connection established\r\n\r\n",
        "the proxy answered {:?}",
        String::from_utf8_lossy(&answer)
    );
    Ok(s)
}

fn one_byte<S: Read + Write>(mut s: S) -> Result<()> {
    s.write_all(b"x")?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b)?;
    Ok(())
}

fn download<S: Read + Write>(mut s: S, bytes: usize) -> Result<()> {
    s.write_all(&(bytes as u64).to_le_bytes())?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0;
    loop {
        match s.read(&mut buf)? {
            0 => break,
            n => got += n,
        }
    }
    ensure!(got == bytes, "downloaded {got} bytes of {bytes}");
    Ok(())
}

/// The hidden first argument that makes this binary the reader of the
/// sandboxed downloads: `airlock-bench __egress-reader PORT BYTES`.
pub const READER_ARG: &str = "__egress-reader";

/// The reader: downloads BYTES from `NAME:PORT`, through the proxy named by
/// `HTTPS_PROXY` when it is set (as it is in a sandbox with egress: the
/// bridge), else straight from `127.0.0.1:PORT`; prints the nanoseconds
/// from its connect to the last byte. The same code times both sides, and
/// neither includes starting the process or its sandbox.
pub fn reader_main(args: &[String]) -> ! {
    match reader(args) {
        Ok(took) => {
            println!("{}", took.as_nanos());
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("airlock-bench {READER_ARG}: {e:#}");
            std::process::exit(2)
        }
    }
}

fn reader(args: &[String]) -> Result<Duration> {
    let [port, bytes] = args else {
        bail!("expected PORT BYTES, got {args:?}");
    };
    let port: u16 = port.parse().context("PORT")?;
    let bytes: usize = bytes.parse().context("BYTES")?;
    match std::env::var("HTTPS_PROXY") {
        Ok(proxy) => {
            let proxy = proxy.trim_start_matches("http://").trim_end_matches('/');
            time(|| download(tunnel(TcpStream::connect(proxy)?, port)?, bytes))
        }
        Err(_) => time(|| download(TcpStream::connect(("127.0.0.1", port))?, bytes)),
    }
}

/// What a sandboxed reader needs: its directories (not under /tmp, which
/// the sandbox replaces), and the proxy's socket in one no writable path
/// covers.
struct Lab {
    _tmp: tempfile::TempDir,
    work: PathBuf,
    root: PathBuf,
    logs: PathBuf,
    socket: PathBuf,
}

impl Lab {
    fn new() -> Result<Lab> {
        let parent = Path::new("/var/tmp");
        let tmp = tempfile::Builder::new()
            .prefix("airlock-bench-egress-")
            .tempdir_in(parent)
            .with_context(|| format!("a directory in {}", parent.display()))?;
        let base = tmp.path().to_path_buf();
        let lab = Lab {
            work: base.join("work"),
            root: base.join("root"),
            logs: base.join("logs"),
            socket: base.join("proxy").join("egress.sock"),
            _tmp: tmp,
        };
        for d in [&lab.work, &lab.root, &lab.logs, &base.join("proxy")] {
            std::fs::create_dir_all(d)?;
        }
        Ok(lab)
    }

    /// Runs this binary as the reader, in a sandbox whose only way out is
    /// the proxy, or (`sandboxed` false) as a plain process; what it timed.
    fn read(&self, sandboxed: bool, port: u16, bytes: usize) -> Result<Duration> {
        let exe = std::env::current_exe().context("this binary's path")?;
        let spec = CommandSpec {
            argv: vec![
                exe.clone().into(),
                READER_ARG.into(),
                port.to_string().into(),
                bytes.to_string().into(),
            ],
            cwd: self.work.clone(),
            env: vec![(OsString::from("PATH"), OsString::from("/usr/bin:/bin"))],
            timeout: Some(Duration::from_secs(120)),
            stdout_path: self.logs.join("out"),
            stderr_path: self.logs.join("err"),
            echo: Echo::None,
            input: Input::Null,
            confinement: sandboxed.then(|| Confinement {
                init_program: exe,
                writable: vec![(self.work.clone(), self.work.clone())],
                read_only: vec![],
                hidden: vec![],
                network: false,
                root: self.root.clone(),
                weaker: false,
                host: None,
                ahead: None,
            }),
            limits: Limits::default(),
        };
        let outcome = if sandboxed {
            let egress = Egress {
                proxy_socket: self.socket.clone(),
            };
            run_with_egress(&spec, &egress, None).context(
                "the sandboxed reader (where this machine cannot sandbox, run with --sandbox-pairs 0)",
            )?
        } else {
            airlock_sandbox::run(&spec).context("the reader")?
        };
        let out = std::fs::read_to_string(&spec.stdout_path).unwrap_or_default();
        let err = std::fs::read_to_string(&spec.stderr_path).unwrap_or_default();
        ensure!(
            outcome.exit.success(),
            "the reader failed ({:?}): {}{}",
            outcome.exit,
            out,
            err
        );
        if sandboxed {
            ensure!(
                outcome.confinement == "confined",
                "the reader ran {}, not confined",
                outcome.confinement
            );
        }
        let nanos: u64 = out
            .trim()
            .parse()
            .with_context(|| format!("the reader printed {out:?}"))?;
        Ok(Duration::from_nanos(nanos))
    }
}

/// CPU time (user and system) this whole process has used: the server,
/// the proxy and the client all run in it.
fn cpu_time() -> Duration {
    usage(libc::RUSAGE_SELF)
}

/// [`cpu_time`] and that of every child process that ended and was waited
/// for: the readers, and a sandbox's init with its bridge.
fn cpu_time_with_children() -> Duration {
    usage(libc::RUSAGE_SELF) + usage(libc::RUSAGE_CHILDREN)
}

fn usage(who: libc::c_int) -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes only into the struct it is given.
    unsafe { libc::getrusage(who, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn time(f: impl FnOnce() -> Result<()>) -> Result<Duration> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed())
}

pub fn bench(opts: &Opts, verbose: bool) -> Result<Vec<Comparison>> {
    LINK_BYTES_PER_SEC.store(opts.link_mbs * 1_000_000, Ordering::Relaxed);
    let small = Server::start(echo_byte)?;
    let bulk = Server::start(send_bulk)?;
    let lab = Lab::new()?;
    let (sink, records) = Sink::channel();
    let list = Allowlist::parse(&[
        NAME.to_string(),
        format!("127.0.0.1:{}", small.addr.port()),
        format!("127.0.0.1:{}", bulk.addr.port()),
    ])
    .context("the benchmark's allowlist")?;
    let mut config = ProxyConfig::new(list, sink).name(NAME, &[IpAddr::from([127, 0, 0, 1])]);
    config.tcp = Some("127.0.0.1:0".parse()?);
    config.unix_socket = Some(lab.socket.clone());
    let proxy = Proxy::start(config)?;
    let proxy_tcp = proxy.tcp_addr().context("the proxy's TCP address")?;
    let proxy_unix = proxy
        .unix_path()
        .context("the proxy's socket")?
        .to_path_buf();
    let say = |s: String| {
        if verbose {
            eprintln!("airlock-bench: {s}");
        }
    };

    // One connection: connect, one byte each way, close.
    let mut subject = Measure::new("through the proxy (TCP, CONNECT)");
    let mut baseline = Measure::new("direct");
    let mut unix = Measure::new("through the proxy's Unix socket (CONNECT)");
    let port = small.addr.port();
    say(format!(
        "egress: {} pairs of single connections",
        opts.pairs
    ));
    for i in 0..=opts.pairs {
        let a = time(|| one_byte(tunnel(TcpStream::connect(proxy_tcp)?, port)?))?;
        let b = time(|| one_byte(TcpStream::connect(small.addr)?))?;
        let c = time(|| one_byte(tunnel(UnixStream::connect(&proxy_unix)?, port)?))?;
        if i > 0 {
            subject.push(a);
            baseline.push(b);
            unix.push(c);
        }
    }

    // Downloads.
    let bytes = opts.mb * 1_000_000;
    let mut through = Measure::new(format!("{} MB through the proxy (TCP, CONNECT)", opts.mb));
    let mut direct = Measure::new(format!("{} MB direct", opts.mb));
    let mut through_unix = Measure::new(format!(
        "{} MB through the proxy's Unix socket (CONNECT)",
        opts.mb
    ));
    // CPU time of each side's timed downloads, all threads of this process.
    let (mut cpu_through, mut cpu_direct) = (Duration::ZERO, Duration::ZERO);
    let port = bulk.addr.port();
    for i in 0..=opts.download_pairs {
        let cpu = cpu_time();
        let a = time(|| download(tunnel(TcpStream::connect(proxy_tcp)?, port)?, bytes))?;
        let cpu_a = cpu_time() - cpu;
        let cpu = cpu_time();
        let b = time(|| download(TcpStream::connect(bulk.addr)?, bytes))?;
        let cpu_b = cpu_time() - cpu;
        let c = time(|| download(tunnel(UnixStream::connect(&proxy_unix)?, port)?, bytes))?;
        if i > 0 {
            through_unix.push(c);
            cpu_through += cpu_a;
            cpu_direct += cpu_b;
        }
        say(format!(
            "egress: download {i}{}: proxy {:.0} ms, direct {:.0} ms",
            if i == 0 { " (untimed)" } else { "" },
            a.as_secs_f64() * 1e3,
            b.as_secs_f64() * 1e3
        ));
        if i > 0 {
            through.push(a);
            direct.push(b);
        }
    }

    // The path a sandboxed command takes: the reader in a sandbox, through
    // the bridge and the proxy's Unix socket, against the same reader
    // outside, straight to the server.
    let mut sandboxed = Measure::new(format!(
        "{} MB by a sandboxed reader (bridge, Unix socket, proxy)",
        opts.mb
    ));
    let mut outside = Measure::new(format!("{} MB by the same reader outside, direct", opts.mb));
    let (mut cpu_sandboxed, mut cpu_outside) = (Duration::ZERO, Duration::ZERO);
    for i in 0..opts.sandbox_pairs.min(1) + opts.sandbox_pairs {
        let cpu = cpu_time_with_children();
        let a = lab.read(true, port, bytes)?;
        let cpu_a = cpu_time_with_children() - cpu;
        let cpu = cpu_time_with_children();
        let b = lab.read(false, port, bytes)?;
        let cpu_b = cpu_time_with_children() - cpu;
        if i > 0 {
            cpu_sandboxed += cpu_a;
            cpu_outside += cpu_b;
        }
        say(format!(
            "egress: sandboxed download {i}{}: through bridge and proxy {:.0} ms, direct {:.0} ms",
            if i == 0 { " (untimed)" } else { "" },
            a.as_secs_f64() * 1e3,
            b.as_secs_f64() * 1e3
        ));
        if i > 0 {
            sandboxed.push(a);
            outside.push(b);
        }
    }
    proxy.stop();
    // Two of each round go through the proxy (over TCP and over the Unix
    // socket), and each sandboxed download once.
    let all: Vec<_> = records.try_iter().collect();
    let sandboxed_downloads = opts.sandbox_pairs.min(1) + opts.sandbox_pairs;
    let expected = 2 * (opts.pairs + 1) + 2 * (opts.download_pairs + 1) + sandboxed_downloads;
    ensure!(
        all.len() == expected && all.iter().all(|r| r.allowed()),
        "the proxy recorded {} connections ({} allowed), expected {expected}, all allowed",
        all.len(),
        all.iter().filter(|r| r.allowed()).count()
    );
    // Each download's record counts its bytes exactly: the 8 of the request
    // up, the whole body down.
    let downloads: Vec<_> = all.iter().filter(|r| r.port == port).collect();
    ensure!(
        downloads.len() == 2 * (opts.download_pairs + 1) + sandboxed_downloads
            && downloads
                .iter()
                .all(|r| r.bytes_up == 8 && r.bytes_down == bytes as u64),
        "the proxy's records of the downloads count other bytes than were sent: {:?}",
        downloads
            .iter()
            .map(|r| (r.bytes_up, r.bytes_down))
            .collect::<Vec<_>>()
    );
    let rate = |m: &Measure| bytes as f64 / m.median().as_secs_f64() / 1e6;
    let rates = format!(
        "throughput at the median: {:.0} MB/s through the proxy, {:.0} MB/s direct ({:.2}x; target >= 0.90x)",
        rate(&through),
        rate(&direct),
        rate(&through) / rate(&direct)
    );
    let per_download = |d: Duration| d.as_secs_f64() * 1e3 / opts.download_pairs.max(1) as f64;
    let per_sandboxed = |d: Duration| d.as_secs_f64() * 1e3 / opts.sandbox_pairs.max(1) as f64;
    let sandbox_cpu = format!(
        "CPU time per download (server, proxy, bridge and reader together; the sandboxed side also its sandbox's set-up and the reader's start, both sides the reader's process): {:.0} ms sandboxed, {:.0} ms direct",
        per_sandboxed(cpu_sandboxed),
        per_sandboxed(cpu_outside)
    );
    let cpu = format!(
        "CPU time per download (server, proxy and client together): {:.0} ms through the proxy, {:.0} ms direct",
        per_download(cpu_through),
        per_download(cpu_direct)
    );
    let sandbox_rates = format!(
        "throughput at the median: {:.0} MB/s sandboxed through bridge and proxy, {:.0} MB/s direct ({:.2}x; target >= 0.90x)",
        rate(&sandboxed),
        rate(&outside),
        rate(&sandboxed) / rate(&outside)
    );
    // Paced runs are other measurements: their ids and titles say so.
    let (paced_id, paced_title) = if opts.link_mbs > 0 {
        (
            format!("-link-{}mbs", opts.link_mbs),
            format!(", the server paced to a {} MB/s link", opts.link_mbs),
        )
    } else {
        (String::new(), String::new())
    };
    let mut results = vec![
        Comparison {
            id: "egress-connect".into(),
            title: format!(
                "egress: one connection through the proxy vs direct, loopback, {} interleaved pairs",
                opts.pairs
            ),
            subject,
            baseline,
            details: vec![unix],
            notes: vec![
                "each: connect, (CONNECT bench.test:PORT, the proxy resolving it from its name map, checking, dialling), one byte each way, close".into(),
                "every connection's record is delivered to a channel, as airlock's trace will".into(),
            ],
            target: Target::AddedPerCommandUnder {
                commands: 1,
                limit: Duration::from_millis(1),
            },
        },
        Comparison {
            id: format!("egress-download{paced_id}"),
            title: format!(
                "egress: a {} MB download through the proxy vs direct, loopback, {} interleaved pairs{paced_title}",
                opts.mb, opts.download_pairs
            ),
            subject: through,
            baseline: direct,
            details: vec![through_unix],
            notes: vec![rates, cpu],
            // At least 0.9x the direct throughput: at most 1/0.9 the time.
            target: Target::RatioAtMost(1.0 / 0.9),
        },
    ];
    if opts.sandbox_pairs > 0 {
        results.push(Comparison {
            id: format!("egress-sandbox-download{paced_id}"),
            title: format!(
                "egress: a {} MB download by a reader in a sandbox (run_with_egress) vs the same reader outside, {} interleaved pairs{paced_title}",
                opts.mb, opts.sandbox_pairs
            ),
            subject: sandboxed,
            baseline: outside,
            details: vec![],
            notes: vec![
                sandbox_rates,
                sandbox_cpu,
                "the reader is this binary, timing itself from connect to last byte (its process and sandbox start not included); in the sandbox it follows HTTPS_PROXY: CONNECT to the bridge on 127.0.0.1:3128, which relays to the proxy's Unix socket".into(),
            ],
            target: Target::RatioAtMost(1.0 / 0.9),
        });
    }
    Ok(results)
}
