//! Test support for airlock's egress: real servers on 127.0.0.1 (HTTPS with a
//! throwaway certificate authority, git over smart HTTP, a PEP 503 package
//! index), each logging what reached it, and a sandbox whose only way out is
//! the egress proxy. Not shipped; used by this crate's tests and the CLI's.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use airlock_egress::{Allowlist, ConnectionRecord, Proxy, ProxyConfig, Sink};
use airlock_sandbox::{CommandSpec, Confinement, Echo, Egress, Input, Limits, Outcome};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The interpreter a sandboxed command finds: the home directory, where
/// pyenv and the like live, is hidden from it.
pub const PYTHON: &str = "/usr/bin/python3";

/// Whether `check` (a shell command) succeeds, that is, whether what a test
/// needs is here. Missing under `CI=true`: a failure naming `install`.
/// Missing elsewhere: `false`, with the reason printed, so the test skips.
pub fn require(what: &str, check: &str, install: &str) -> bool {
    let ok = Command::new("/bin/sh")
        .args(["-c", check])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{what} is needed by this test and missing ({check} failed): {install} (.ci/run does)"
        );
    }
    eprintln!("skipped: {what} is missing ({check} failed); {install} to run this test");
    false
}

/// Everything the egress tests run: curl, git with `http-backend`, openssl,
/// and the system Python with pip, setuptools and wheel (to build a wheel).
pub fn require_clients() -> bool {
    require("curl", "command -v curl", "apt-get install curl")
        && require("openssl", "command -v openssl", "apt-get install openssl")
        && require(
            "git http-backend",
            "test -x \"$(git --exec-path)/git-http-backend\"",
            "apt-get install git",
        )
        && require(
            "the system Python's pip, setuptools and wheel",
            &format!("{PYTHON} -c 'import setuptools, wheel, pip'"),
            "apt-get install python3-pip python3-setuptools python3-wheel",
        )
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// git with nothing of the machine's or the user's configuration.
pub fn git(home: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid");
    cmd
}

/// A certificate authority made for one test, and a certificate it signed
/// for the test's server names (and 127.0.0.1).
pub struct Pki {
    /// The authority's certificate: what clients are told to trust.
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    pub fn make(dir: &Path, names: &[&str]) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        let ca_key = dir.join("ca.key");
        let pki = Pki {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        run(Command::new("openssl")
            .args(["req", "-x509", "-nodes", "-days", "2"])
            .args(ec)
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&pki.ca)
            .args(["-subj", "/CN=airlock test authority"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]));
        let csr = dir.join("server.csr");
        run(Command::new("openssl")
            .args(["req", "-nodes"])
            .args(ec)
            .arg("-keyout")
            .arg(&pki.key)
            .arg("-out")
            .arg(&csr)
            .args(["-subj", &format!("/CN={}", names[0])]));
        let alt: Vec<String> = names
            .iter()
            .map(|n| format!("DNS:{n}"))
            .chain(["IP:127.0.0.1".to_string()])
            .collect();
        let ext = dir.join("server.ext");
        std::fs::write(
            &ext,
            format!(
                "subjectAltName={}\nbasicConstraints=critical,CA:FALSE\n\
                 keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
                alt.join(",")
            ),
        )
        .unwrap();
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-set_serial", "2"])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&pki.ca)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&pki.cert));
        pki
    }
}

/// What a server serves: `files/` as static files under `/`, bare
/// repositories in `git/` under `/git/`.
pub struct Site {
    pub root: PathBuf,
}

impl Site {
    pub fn new(root: &Path) -> Site {
        for d in ["files", "git", "home"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        Site {
            root: root.to_path_buf(),
        }
    }

    fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    /// A bare repository `git/NAME.git` with one commit holding `files`;
    /// the commit's id.
    pub fn repository(&self, name: &str, files: &[(&str, &str)]) -> String {
        let src = self.root.join(format!("src-{name}"));
        run(git(&self.home())
            .args(["init", "-q", "-b", "main"])
            .arg(&src));
        for (path, text) in files {
            let p = src.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        run(git(&self.home()).current_dir(&src).args(["add", "-A"]));
        run(git(&self.home())
            .current_dir(&src)
            .args(["commit", "-q", "-m", "served"]));
        let bare = self.root.join("git").join(format!("{name}.git"));
        run(git(&self.home())
            .args(["clone", "-q", "--bare"])
            .arg(&src)
            .arg(&bare));
        run(git(&self.home())
            .current_dir(&src)
            .args(["rev-parse", "HEAD"]))
        .trim()
        .to_string()
    }

    /// A wheel of the project `name` (its module `module` defining `VALUE =
    /// value`), built by `pip wheel`, and a PEP 503 simple index listing it
    /// under `/simple/`. The wheel's file name.
    pub fn package_index(&self, name: &str, module: &str, value: &str) -> String {
        let src = self.root.join(format!("src-{name}"));
        std::fs::create_dir_all(src.join(module)).unwrap();
        std::fs::write(
            src.join("pyproject.toml"),
            format!(
                "[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n\n\
                 [project]\nname = \"{name}\"\nversion = \"1.0\"\n"
            ),
        )
        .unwrap();
        std::fs::write(
            src.join(module).join("__init__.py"),
            format!("VALUE = {value:?}\n"),
        )
        .unwrap();
        let dist = self.root.join("files").join("packages");
        run(Command::new(PYTHON)
            .args(["-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index"])
            .args([
                "--no-build-isolation",
                "--no-cache-dir",
                "--disable-pip-version-check",
            ])
            .arg("--wheel-dir")
            .arg(&dist)
            .arg(&src)
            .env("HOME", self.home())
            .env("PIP_CONFIG_FILE", "/dev/null"));
        let wheel = std::fs::read_dir(&dist)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .find(|n| n.ends_with(".whl"))
            .expect("pip wheel made no wheel");
        let digest = hex::encode(Sha256::digest(std::fs::read(dist.join(&wheel)).unwrap()));
        let normalized = name.to_ascii_lowercase().replace(['_', '.'], "-");
        let project = self.root.join("files/simple").join(&normalized);
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(
            self.root.join("files/simple/index.html"),
            format!(
                "<!DOCTYPE html>\n<html><body><a href=\"{normalized}/\">{normalized}</a></body></html>\n"
            ),
        )
        .unwrap();
        std::fs::write(
            project.join("index.html"),
            format!(
                "<!DOCTYPE html>\n<html><body>\
                 <a href=\"../../packages/{wheel}#sha256={digest}\">{wheel}</a>\
                 </body></html>\n"
            ),
        )
        .unwrap();
        wheel
    }
}

/// A server (`src/server.py`) serving a site over HTTP, or HTTPS with a
/// certificate; killed when dropped.
pub struct Served {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Served {
    pub fn start(site: &Site, name: &str, bind: Ipv4Addr, tls: Option<&Pki>) -> Served {
        let script = site.root.join("server.py");
        std::fs::write(&script, include_str!("server.py")).unwrap();
        let log = site.root.join(format!("{name}.log"));
        std::fs::write(&log, "").unwrap();
        let mut cmd = Command::new(PYTHON);
        cmd.arg(&script)
            .arg(&site.root)
            .arg(&log)
            .arg(bind.to_string());
        if let Some(pki) = tls {
            cmd.arg(&pki.cert).arg(&pki.key);
        }
        let mut child = cmd
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the test server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Ok(port) = line.trim().parse() else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the test server did not start: {line:?}");
        };
        Served { child, port, log }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every entry of the server's log: `{"event": "connect"}` for each
    /// connection accepted, `{"event": "request", "method", "path",
    /// "host"}` for each request.
    pub fn log(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// `METHOD PATH` of each request the server received.
    pub fn requests(&self) -> Vec<String> {
        self.log()
            .iter()
            .filter(|e| e["event"] == "request")
            .map(|e| {
                format!(
                    "{} {}",
                    e["method"].as_str().unwrap(),
                    e["path"].as_str().unwrap()
                )
            })
            .collect()
    }

    /// Nothing reached the server: not a connection, let alone a request.
    pub fn assert_untouched(&self, context: &str) {
        let log = self.log();
        assert!(log.is_empty(), "{context}: the server saw {log:?}");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An address of this machine other than loopback, if it has a route out:
/// what a command with the host's network would reach its servers by.
pub fn host_address() -> Option<Ipv4Addr> {
    let probe = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    probe.connect(("192.0.2.1", 9)).ok()?;
    match probe.local_addr().ok()?.ip() {
        IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Some(ip),
        _ => None,
    }
}

/// A sandbox's directories (outside /tmp, which the sandbox replaces), the
/// proxy's socket among them.
pub struct Lab {
    _tmp: tempfile::TempDir,
    pub base: PathBuf,
    /// The command's working directory, its one writable place.
    pub work: PathBuf,
    root: PathBuf,
    logs: PathBuf,
    pub socket: PathBuf,
    init: PathBuf,
}

/// The output of a command run in a [`Lab`].
pub struct Ran {
    pub outcome: Outcome,
    pub stdout: String,
    pub stderr: String,
}

impl Lab {
    /// `parent`: a directory not under /tmp (a test's
    /// `CARGO_TARGET_TMPDIR`); `init`: the sandbox's init program.
    pub fn new(parent: &Path, init: &Path) -> Lab {
        let parent = if parent.starts_with("/tmp") {
            PathBuf::from("/var/tmp/airlock-test-egress")
        } else {
            parent.to_path_buf()
        };
        std::fs::create_dir_all(&parent).unwrap();
        let t = tempfile::Builder::new()
            .prefix("netclients-")
            .tempdir_in(&parent)
            .unwrap();
        let base = t.path().to_path_buf();
        let lab = Lab {
            work: base.join("work"),
            root: base.join("root"),
            logs: base.join("logs"),
            socket: base.join("proxy").join("egress.sock"),
            init: init.to_path_buf(),
            base,
            _tmp: t,
        };
        for d in [&lab.work, &lab.root, &lab.logs] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::create_dir_all(lab.socket.parent().unwrap()).unwrap();
        lab
    }

    /// A proxy on the lab's socket allowing `allow`, with `names` resolved
    /// by its name map (like curl's `--resolve`).
    pub fn proxy(
        &self,
        allow: &[String],
        names: &[(&str, IpAddr)],
    ) -> (Proxy, Receiver<ConnectionRecord>) {
        let (sink, records) = Sink::channel();
        let mut config = ProxyConfig::new(Allowlist::parse(allow).unwrap(), sink);
        for (name, address) in names {
            config = config.name(name, &[*address]);
        }
        config.unix_socket = Some(self.socket.clone());
        (Proxy::start(config).expect("start the proxy"), records)
    }

    /// Runs `script` with bash in the sandbox, whose only way out is the
    /// proxy on the lab's socket; `env` is added to a bare environment
    /// (`PATH` without the home's interpreters, `HOME` the working
    /// directory).
    pub fn run(&self, script: &str, env: &[(&str, &str)]) -> Ran {
        let mut vars = vec![
            (
                OsString::from("PATH"),
                OsString::from("/usr/local/bin:/usr/bin:/bin"),
            ),
            (OsString::from("HOME"), self.work.clone().into_os_string()),
        ];
        vars.extend(
            env.iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v))),
        );
        let spec = CommandSpec {
            argv: vec!["/bin/bash".into(), "-c".into(), script.into()],
            cwd: self.work.clone(),
            env: vars,
            timeout: Some(Duration::from_secs(300)),
            stdout_path: self.logs.join("out"),
            stderr_path: self.logs.join("err"),
            echo: Echo::None,
            input: Input::Null,
            confinement: Some(Confinement {
                init_program: self.init.clone(),
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
        let egress = Egress {
            proxy_socket: self.socket.clone(),
        };
        let outcome = airlock_sandbox::run_with_egress(&spec, &egress, None).expect("sandbox");
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        Ran {
            outcome,
            stdout: read(&self.logs.join("out")),
            stderr: read(&self.logs.join("err")),
        }
    }
}
