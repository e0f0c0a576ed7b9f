//! The egress tests' sandbox: its directories, the proxy's socket among
//! them, and a command run with that proxy as its only way out.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use airlock_sandbox::{CommandSpec, Confinement, Echo, Egress, Limits, Outcome, run_with_egress};

/// A sandbox's directories, the proxy's socket among them.
pub struct Lab {
    _tmp: tempfile::TempDir,
    pub base: PathBuf,
    pub work: PathBuf,
    pub root: PathBuf,
    pub logs: PathBuf,
    pub socket: PathBuf,
}

impl Lab {
    /// A lab in a directory named after `prefix`.
    pub fn new(prefix: &str) -> Lab {
        // Not under /tmp: the sandbox replaces /tmp with a private one.
        let target_tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let parent = if target_tmp.starts_with("/tmp") {
            PathBuf::from("/var/tmp/airlock-test-egress")
        } else {
            target_tmp
        };
        std::fs::create_dir_all(&parent).unwrap();
        let t = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&parent)
            .unwrap();
        let base = t.path().to_path_buf();
        let lab = Lab {
            work: base.join("work"),
            root: base.join("root"),
            logs: base.join("logs"),
            socket: base.join("proxy").join("egress.sock"),
            base,
            _tmp: t,
        };
        for d in [&lab.work, &lab.root, &lab.logs] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::create_dir_all(lab.socket.parent().unwrap()).unwrap();
        lab
    }

    pub fn spec(&self, script: &str) -> CommandSpec {
        CommandSpec {
            argv: vec!["/bin/bash".into(), "-c".into(), script.into()],
            cwd: self.work.clone(),
            env: vec![
                (
                    OsString::from("PATH"),
                    OsString::from("/usr/local/bin:/usr/bin:/bin"),
                ),
                // Replaced: the command's proxy is the bridge, whatever it was given.
                (
                    OsString::from("http_proxy"),
                    OsString::from("http://10.9.9.9:1"),
                ),
            ],
            timeout: Some(Duration::from_secs(60)),
            stdout_path: self.logs.join("out"),
            stderr_path: self.logs.join("err"),
            echo: Echo::None,
            input: airlock_sandbox::Input::Null,
            confinement: Some(Confinement {
                init_program: PathBuf::from(env!("CARGO_BIN_EXE_airlock-sandbox-init")),
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
        }
    }

    pub fn egress(&self) -> Egress {
        Egress {
            proxy_socket: self.socket.clone(),
        }
    }

    /// Runs `script` with the proxy as its only way out; its stdout and stderr.
    pub fn run(&self, script: &str) -> (Outcome, String, String) {
        let outcome = run_with_egress(&self.spec(script), &self.egress(), None).expect("sandbox");
        (
            outcome,
            read(&self.logs.join("out")),
            read(&self.logs.join("err")),
        )
    }
}

pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}
