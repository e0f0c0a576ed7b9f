//! `egress`: airlock-egress's proxy called directly, against the same
//! client talking to the same loopback server without it. One connection
//! (connect, one byte each way, close) through an HTTP CONNECT tunnel vs
//! direct, and a bulk download through the tunnel vs direct.

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use airlock_egress::{Allowlist, Proxy, ProxyConfig, Sink};
use anyhow::{Context, Result, ensure};

use crate::stats::{Comparison, Measure, Target};

pub struct Opts {
    /// Timed pairs of single connections.
    pub pairs: usize,
    /// Megabytes each download carries.
    pub mb: usize,
    /// Timed pairs of downloads.
    pub download_pairs: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            pairs: 500,
            mb: 100,
            download_pairs: 21,
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

/// The size is the first 8 bytes the client sends; then that many bytes.
fn send_bulk(mut c: TcpStream) {
    let mut n = [0u8; 8];
    if c.read_exact(&mut n).is_err() {
        return;
    }
    let mut left = u64::from_le_bytes(n) as usize;
    let chunk = vec![0x5au8; CHUNK];
    while left > 0 {
        let k = left.min(CHUNK);
        if c.write_all(&chunk[..k]).is_err() {
            return;
        }
        left -= k;
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

/// CPU time (user and system) this whole process has used: the server,
/// the proxy and the client all run in it.
fn cpu_time() -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes only into the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn time(f: impl FnOnce() -> Result<()>) -> Result<Duration> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed())
}

pub fn bench(opts: &Opts, verbose: bool) -> Result<Vec<Comparison>> {
    let small = Server::start(echo_byte)?;
    let bulk = Server::start(send_bulk)?;
    let dir = tempfile::tempdir()?;
    let (sink, records) = Sink::channel();
    let list = Allowlist::parse(&[
        NAME.to_string(),
        format!("127.0.0.1:{}", small.addr.port()),
        format!("127.0.0.1:{}", bulk.addr.port()),
    ])
    .context("the benchmark's allowlist")?;
    let mut config = ProxyConfig::new(list, sink).name(NAME, &[IpAddr::from([127, 0, 0, 1])]);
    config.tcp = Some("127.0.0.1:0".parse()?);
    config.unix_socket = Some(dir.path().join("egress.sock"));
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
    proxy.stop();
    // Two of each round go through the proxy: over TCP and over the Unix socket.
    let all: Vec<_> = records.try_iter().collect();
    let expected = 2 * (opts.pairs + 1) + 2 * (opts.download_pairs + 1);
    ensure!(
        all.len() == expected && all.iter().all(|r| r.allowed()),
        "the proxy recorded {} connections ({} allowed), expected {expected}, all allowed",
        all.len(),
        all.iter().filter(|r| r.allowed()).count()
    );
    let rate = |m: &Measure| bytes as f64 / m.median().as_secs_f64() / 1e6;
    let rates = format!(
        "throughput at the median: {:.0} MB/s through the proxy, {:.0} MB/s direct ({:.2}x; target >= 0.90x)",
        rate(&through),
        rate(&direct),
        rate(&through) / rate(&direct)
    );
    let per_download = |d: Duration| d.as_secs_f64() * 1e3 / opts.download_pairs.max(1) as f64;
    let cpu = format!(
        "CPU time per download (server, proxy and client together): {:.0} ms through the proxy, {:.0} ms direct",
        per_download(cpu_through),
        per_download(cpu_direct)
    );
    Ok(vec![
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
            id: "egress-download".into(),
            title: format!(
                "egress: a {} MB download through the proxy vs direct, loopback, {} interleaved pairs",
                opts.mb, opts.download_pairs
            ),
            subject: through,
            baseline: direct,
            details: vec![through_unix],
            notes: vec![rates, cpu],
            // At least 0.9x the direct throughput: at most 1/0.9 the time.
            target: Target::RatioAtMost(1.0 / 0.9),
        },
    ])
}
