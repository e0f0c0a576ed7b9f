use std::path::PathBuf;

use airlock_core::Result;
use airlock_core::layout::key_dir;
use airlock_core::proofs::SigningKey;

use super::Ctx;
use crate::render::{Output, Report};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print the public signing key, one line, OpenSSH format.
    Public {
        /// Print this machine's line for `.airlock/runners` instead: the
        /// principal (`AIRLOCK_PRINCIPAL`, else the git e-mail) and the key.
        #[arg(long)]
        runners_line: bool,
    },
}

pub fn run(ctx: &Ctx, cmd: Command) -> Result<Output> {
    let Command::Public { runners_line } = cmd;
    let dir = airlock_core::keydir::checked(key_dir())?;
    let key = SigningKey::load(&dir.join("signing_key"))?;
    let public = key.public();
    // The principal as team mode records it (the repository's git e-mail
    // when there is one here).
    let runners_line = if runners_line {
        let layout = airlock_core::layout::Layout::discover(&ctx.cwd)?;
        let who = airlock_core::identity::who_in(&layout)?;
        Some(format!("{} {}", who.principal, public.to_openssh()))
    } else {
        None
    };
    Ok(Output::report(&PublicKey {
        public_key: public.to_openssh(),
        key_id: public.key_id(),
        path: dir.join("signing_key.pub"),
        runners_line,
    }))
}

/// `airlock key public`: the public key, its id and its file.
#[derive(serde::Serialize)]
struct PublicKey {
    public_key: String,
    key_id: String,
    path: PathBuf,
    /// With `--runners-line`: the line `.airlock/runners` needs for this machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    runners_line: Option<String>,
}

impl Report for PublicKey {
    fn human(&self) -> String {
        self.runners_line
            .clone()
            .unwrap_or_else(|| self.public_key.clone())
    }
}
