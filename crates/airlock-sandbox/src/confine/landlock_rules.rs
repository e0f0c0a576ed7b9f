//! The Landlock ruleset of a sandbox: reads everywhere, writes only below the
//! writable paths, no signals or abstract sockets outside the sandbox.

use super::{InitSpec, SetupError, fail, os};

pub(crate) fn landlock_ruleset(
    spec: &InitSpec,
    in_namespaces: bool,
) -> Result<landlock::RulesetCreated, SetupError> {
    use landlock::{
        ABI, Access, AccessFs, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr,
        RulesetCreatedAttr, Scope,
    };
    // V9 adds ResolveUnix: connecting to a pathname socket is then allowed
    // only below the writable paths (best effort: older kernels drop it and
    // rely on the sockets hidden in build_root).
    let abi = ABI::V9;
    let step = |e: &dyn std::fmt::Display| fail("entering the Landlock domain", e);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))
        .map_err(|e| step(&e))?;
    ruleset = ruleset
        .scope(Scope::from_all(ABI::V6))
        .map_err(|e| step(&e))?;
    let mut created = ruleset.create().map_err(|e| step(&e))?;
    let read = AccessFs::from_read(abi);
    created = created
        .add_rule(PathBeneath::new(
            PathFd::new("/").map_err(|e| step(&e))?,
            read,
        ))
        .map_err(|e| step(&e))?;
    let mut writable: Vec<Vec<u8>> = spec
        .binds
        .iter()
        .map(|(source, target)| {
            if in_namespaces {
                target.clone()
            } else {
                source.clone()
            }
        })
        .collect();
    writable.push(b"/dev/shm".to_vec());
    for path in &writable {
        if let Ok(fd) = PathFd::new(os(path)) {
            created = created
                .add_rule(PathBeneath::new(fd, AccessFs::from_all(abi)))
                .map_err(|e| step(&e))?;
        }
    }
    // Devices a command legitimately writes to.
    let device_rights = AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::IoctlDev;
    for dev in [
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/tty",
        "/dev/ptmx",
        "/dev/pts",
    ] {
        if let Ok(fd) = PathFd::new(dev) {
            let rights = if dev == "/dev/pts" {
                device_rights | read
            } else {
                device_rights
            };
            created = created
                .add_rule(PathBeneath::new(fd, rights))
                .map_err(|e| step(&e))?;
        }
    }
    Ok(created)
}
