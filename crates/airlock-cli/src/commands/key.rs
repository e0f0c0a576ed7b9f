use std::path::PathBuf;

use airlock_core::Result;
use airlock_core::layout::key_dir;
use airlock_core::proofs::SigningKey;

use super::Ctx;
use crate::render::{Output, Report};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print the public signing key, one line, OpenSSH format.
    Public,
}

pub fn run(_ctx: &Ctx, cmd: Command) -> Result<Output> {
    let Command::Public = cmd;
    let dir = airlock_core::keydir::checked(key_dir())?;
    let key = SigningKey::load(&dir.join("signing_key"))?;
    let public = key.public();
    Ok(Output::report(&PublicKey {
        public_key: public.to_openssh(),
        key_id: public.key_id(),
        path: dir.join("signing_key.pub"),
    }))
}

/// `airlock key public`: the public key, its id and its file.
#[derive(serde::Serialize)]
struct PublicKey {
    public_key: String,
    key_id: String,
    path: PathBuf,
}

impl Report for PublicKey {
    fn human(&self) -> String {
        self.public_key.clone()
    }
}
