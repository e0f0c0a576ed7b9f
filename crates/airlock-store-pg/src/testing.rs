//! A private PostgreSQL cluster for tests (feature `testing`): `initdb` and
//! `pg_ctl` from the machine's PostgreSQL binaries (Debian puts them in
//! /usr/lib/postgresql/NN/bin; `.ci/run` installs them) in a temporary
//! directory, listening on a Unix socket in that directory and on
//! 127.0.0.1 at a free port, never the machine's own PostgreSQL service.
//! PostgreSQL refuses to run as root, so a test running as root runs the
//! cluster as the `postgres` account (or `nobody`) with the directory
//! handed over to it.
//!
//! One cluster per test process ([`shared`]), stopped and removed when the
//! process exits; a database per test ([`Cluster::database`]), made from a
//! template and dropped with its guard. The tests connect as `airlock_app`
//! (a password over TCP, no special rights; it owns its databases); the
//! superuser `airlock_admin` (over the socket) is what a database
//! administrator could do.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The application role's password.
pub const APP_PASSWORD: &str = "app-secret";
const ADMIN: &str = "airlock_admin";
const APP: &str = "airlock_app";
const TEMPLATE: &str = "airlock_template";

/// A running private cluster; stopped and its directory removed on drop.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    /// The account the server runs as when the tests run as root.
    run_as: Option<String>,
    next: AtomicUsize,
    /// Whether the server flushes commits to disk.
    durable: bool,
    /// TLS: the server's certificate and key files, when it serves TLS.
    ssl: Option<(PathBuf, PathBuf)>,
}

static SHARED: OnceLock<Mutex<Option<Arc<Cluster>>>> = OnceLock::new();

extern "C" fn stop_shared() {
    if let Some(slot) = SHARED.get()
        && let Ok(mut slot) = slot.lock()
    {
        slot.take();
    }
}

/// The test process's cluster, started on first use and stopped when the
/// process exits.
pub fn shared() -> Arc<Cluster> {
    let slot = SHARED.get_or_init(|| Mutex::new(None));
    let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(cluster) = slot.as_ref() {
        return cluster.clone();
    }
    let cluster = Arc::new(Cluster::start().unwrap_or_else(|e| panic!("{e}")));
    // SAFETY: registers a plain function that only drops the cluster.
    unsafe {
        libc::atexit(stop_shared);
    }
    *slot = Some(cluster.clone());
    cluster
}

/// The directory of `initdb` and `pg_ctl`: `AIRLOCK_PG_BIN`, else the
/// newest /usr/lib/postgresql/NN/bin.
pub fn bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("AIRLOCK_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| {
            format!("PostgreSQL is not installed (/usr/lib/postgresql: {e}); `.ci/run` installs it (apt-get install postgresql), or set AIRLOCK_PG_BIN")
        })?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no initdb under /usr/lib/postgresql/*/bin; install postgresql".into())
}

impl Cluster {
    /// Makes and starts a cluster in a new temporary directory, with
    /// fsync off (tests need no durability).
    pub fn start() -> Result<Cluster, String> {
        Cluster::start_with(false)
    }

    /// [`Cluster::start`], flushing commits to disk when `durable` (for
    /// benchmarks).
    pub fn start_with(durable: bool) -> Result<Cluster, String> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("airlock-pg-")
            .tempdir()
            .map_err(|e| format!("cannot make a temporary directory: {e}"))?;
        let run_as = if rustix::process::geteuid().is_root() {
            let user = ["postgres", "nobody"]
                .into_iter()
                .find(|u| account(u).is_some())
                .ok_or("running as root, and there is no `postgres` or `nobody` account to run PostgreSQL as")?;
            let (uid, gid) = account(user).expect("found");
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(|e| format!("cannot hand {} to {user}: {e}", dir.path().display()))?;
            Some(user.to_string())
        } else {
            None
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port on 127.0.0.1: {e}"))?
            .port();
        let cluster = Cluster {
            dir,
            bin,
            port,
            run_as,
            next: AtomicUsize::new(0),
            durable,
            ssl: None,
        };
        let pwfile = cluster.dir.path().join("pw");
        std::fs::write(&pwfile, format!("{APP_PASSWORD}\n"))
            .map_err(|e| format!("cannot write {}: {e}", pwfile.display()))?;
        cluster.hand_over(&pwfile)?;
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                ADMIN,
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                &format!("--pwfile={}", pwfile.display()),
            ],
        )?;
        cluster.pg_start()?;
        let mut admin = cluster.admin("postgres")?;
        // One statement each: CREATE DATABASE runs outside a transaction.
        for sql in [
            format!("CREATE ROLE {APP} LOGIN PASSWORD '{APP_PASSWORD}'"),
            format!("CREATE DATABASE {TEMPLATE} TEMPLATE template0 ENCODING 'UTF8'"),
        ] {
            admin
                .batch_execute(&sql)
                .map_err(|e| format!("cannot set the cluster up ({sql}): {}", message(&e)))?;
        }
        Ok(cluster)
    }

    /// Starts the server (`pg_ctl start`, waiting until it accepts).
    fn pg_start(&self) -> Result<(), String> {
        let socket = self.socket_dir();
        let log = self.dir.path().join("server.log");
        let durability = if self.durable {
            ""
        } else {
            " -c fsync=off -c full_page_writes=off"
        };
        let ssl = match &self.ssl {
            Some((cert, key)) => format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                cert.display(),
                key.display()
            ),
            None => String::new(),
        };
        let options = format!(
            "-k {socket} -p {port} -h 127.0.0.1 -c max_connections=200{durability}{ssl}",
            port = self.port
        );
        let data = self.data();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &data,
                "-l",
                &log.display().to_string(),
                "-w",
                "-o",
                &options,
                "start",
            ],
        )
        .map_err(|e| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            format!("{e}\nserver log:\n{log}")
        })
    }

    /// Stops the server (its databases kept), as a database that goes out
    /// of reach; [`Cluster::start_again`] brings it back. For a cluster of
    /// a test's own (`Cluster::start`), never the shared one.
    pub fn stop(&self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"])
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts a stopped server again, at the same address.
    pub fn start_again(&self) {
        self.pg_start().unwrap_or_else(|e| panic!("{e}"));
    }

    /// A cluster that accepts TCP connections over TLS only, its
    /// certificate (for 127.0.0.1 and localhost) signed by a CA of its own,
    /// made with `openssl`; returns it and the CA's certificate (PEM).
    pub fn start_tls() -> Result<(Cluster, PathBuf), String> {
        let mut cluster = Cluster::start()?;
        let dir = cluster.dir.path().join("tls");
        let ca = make_ca(&dir, "ca")?;
        let openssl = |args: &[&str]| -> Result<(), String> {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .map_err(|e| format!("cannot run openssl: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "openssl {args:?} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        };
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
        )
        .map_err(|e| e.to_string())?;
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ])?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ])?;
        let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| e.to_string())?;
        }
        cluster.hand_over(&dir)?;
        cluster.hand_over(&cert)?;
        cluster.hand_over(&key)?;
        // TCP only over TLS: a connection without it is refused.
        let hba = cluster.dir.path().join("data/pg_hba.conf");
        std::fs::write(
            &hba,
            "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
        )
        .map_err(|e| e.to_string())?;
        cluster.hand_over(&hba)?;
        cluster.stop();
        cluster.ssl = Some((cert, key));
        cluster.pg_start()?;
        Ok((cluster, ca))
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// The directory of the server's Unix socket.
    pub fn socket_dir(&self) -> String {
        self.dir.path().display().to_string()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn hand_over(&self, path: &Path) -> Result<(), String> {
        if let Some(user) = &self.run_as {
            let (uid, gid) = account(user).expect("checked at start");
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(|e| format!("cannot hand {} to {user}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// Runs one of PostgreSQL's programs, as the cluster's account.
    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let exe = self.bin.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.args(args).current_dir(self.dir.path());
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{program} failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }

    /// A superuser's connection (over the socket) to `database`.
    pub fn admin(&self, database: &str) -> Result<postgres::Client, String> {
        postgres::Config::new()
            .host_path(self.dir.path())
            .port(self.port)
            .user(ADMIN)
            .dbname(database)
            .connect(postgres::NoTls)
            .map_err(|e| format!("cannot connect as the superuser: {}", message(&e)))
    }

    /// A new empty database owned by the application role, dropped with
    /// the guard.
    pub fn database(self: &Arc<Self>) -> Database {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let name = format!("t{}_{n}", std::process::id());
        self.admin("postgres")
            .and_then(|mut c| {
                c.batch_execute(&format!(
                    "CREATE DATABASE {name} TEMPLATE {TEMPLATE} OWNER {APP}"
                ))
                .map_err(|e| format!("cannot create database {name}: {}", message(&e)))
            })
            .unwrap_or_else(|e| panic!("{e}"));
        Database {
            name,
            cluster: self.clone(),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}

/// One test's database.
pub struct Database {
    pub name: String,
    pub cluster: Arc<Cluster>,
}

impl Database {
    /// The application's URL: TCP on 127.0.0.1 with the role's password.
    pub fn url(&self) -> String {
        self.url_with(APP, APP_PASSWORD)
    }

    /// The application's URL without its password (for a workflow's
    /// `[store] url`, the password in a password file), and the
    /// password-file line that goes with it.
    pub fn url_and_pgpass(&self) -> (String, String) {
        (
            format!(
                "postgres://{APP}@127.0.0.1:{}/{}",
                self.cluster.port, self.name
            ),
            format!(
                "127.0.0.1:{}:{}:{APP}:{APP_PASSWORD}\n",
                self.cluster.port, self.name
            ),
        )
    }

    pub fn url_with(&self, user: &str, password: &str) -> String {
        format!(
            "postgres://{user}:{password}@127.0.0.1:{}/{}",
            self.cluster.port, self.name
        )
    }

    /// A superuser's connection to this database.
    pub fn admin(&self) -> postgres::Client {
        self.cluster
            .admin(&self.name)
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut admin) = self.cluster.admin("postgres") {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// The uid and gid of the account `name`.
fn account(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() > 3 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

/// A PostgreSQL error with the server's own message.
fn message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{e}: {}", db.message()),
        None => format!("{e:?}"),
    }
}

/// A new CA (`NAME.crt`, `NAME.key`) in `dir`, made with `openssl`; returns
/// its certificate's path.
pub fn make_ca(dir: &Path, name: &str) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=airlock test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ])
        .arg("-keyout")
        .arg(format!("{name}.key"))
        .arg("-out")
        .arg(format!("{name}.crt"))
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run openssl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl req -x509 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(dir.join(format!("{name}.crt")))
}
