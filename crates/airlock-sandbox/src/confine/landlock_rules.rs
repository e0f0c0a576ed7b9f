//! The Landlock ruleset of a sandbox: reads everywhere, writes only below the
//! writable paths, no signals or abstract sockets outside the sandbox.

use super::{InitSpec, SetupError, fail, os};

/// The paths a command may write below: the writable binds (their targets
/// inside the sandbox's view, their sources without one) and `/dev/shm`.
fn writable_paths(spec: &InitSpec, in_namespaces: bool) -> Vec<Vec<u8>> {
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
    writable
}

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
    let writable = writable_paths(spec, in_namespaces);
    for path in &writable {
        if let Ok(fd) = PathFd::new(os(path)) {
            created = created
                .add_rule(PathBeneath::new(fd, AccessFs::from_all(abi)))
                .map_err(|e| step(&e))?;
        }
    }
    // A socket shown by its own path (`airlock agent`'s relay) may be
    // connected to, and nothing else there.
    for socket in crate::confine::shown_sockets(spec) {
        if let Ok(fd) = PathFd::new(os(&socket)) {
            created = created
                .add_rule(PathBeneath::new(fd, AccessFs::ResolveUnix))
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

#[cfg(test)]
mod tests {
    use super::{landlock_ruleset, writable_paths};
    use crate::confine::InitSpec;

    fn spec(binds: Vec<(Vec<u8>, Vec<u8>)>) -> InitSpec {
        InitSpec {
            argv: vec![b"true".to_vec()],
            cwd: b"/".to_vec(),
            env: vec![],
            binds,
            read_only: vec![(b"/ro-source".to_vec(), b"/ro".to_vec())],
            hidden: vec![b"/home".to_vec()],
            network: false,
            root: b"/tmp/root".to_vec(),
            memory_bytes: None,
            processes: None,
            file_size_bytes: None,
            weaker: false,
            gate: false,
            terminal: false,
            egress: None,
        }
    }

    /// Inside the sandbox's view a bind is written through its target;
    /// without namespaces (the weaker sandbox) there is no view, and the
    /// source is what the command writes. Read-only binds grant nothing.
    #[test]
    fn writable_paths_are_the_binds_as_the_command_sees_them() {
        let spec = spec(vec![
            (b"/host/wt".to_vec(), b"/work/wt".to_vec()),
            (b"/host/tmp".to_vec(), b"/tmp".to_vec()),
        ]);
        assert_eq!(
            writable_paths(&spec, true),
            [&b"/work/wt"[..], b"/tmp", b"/dev/shm"]
        );
        assert_eq!(
            writable_paths(&spec, false),
            [&b"/host/wt"[..], b"/host/tmp", b"/dev/shm"]
        );
    }

    /// A writable path that does not exist (yet) is left out of the
    /// ruleset rather than failing the sandbox. The ruleset is built, not
    /// applied: applying it would confine the test process.
    #[test]
    fn a_ruleset_is_built_from_existing_and_missing_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let here = tmp.path().as_os_str().as_encoded_bytes().to_vec();
        let missing = tmp.path().join("missing");
        let missing = missing.as_os_str().as_encoded_bytes().to_vec();
        let spec = spec(vec![(here.clone(), here), (missing.clone(), missing)]);
        for in_namespaces in [true, false] {
            landlock_ruleset(&spec, in_namespaces).unwrap();
        }
    }
}
