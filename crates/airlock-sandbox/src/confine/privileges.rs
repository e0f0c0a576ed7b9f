//! What applies to the command's own process once its view is built:
//! `no_new_privs`, no capabilities, the Landlock domain and the seccomp
//! filters.

use super::{
    Filters, InitSpec, SetupError, check, errno, fail, landlock_ruleset, limit, seccomp_filters,
};

/// The Landlock ruleset and seccomp filters of a sandbox, built ahead of the
/// command: a warm sandbox builds them once and every command applies them.
pub(crate) struct Prepared {
    ruleset: landlock::RulesetCreated,
    filters: Filters,
}

/// Builds what [`confine_process`] applies: in the sandbox's final view of
/// the files (after `pivot_root`), since the ruleset holds its paths open.
pub(crate) fn prepare(spec: &InitSpec, in_namespaces: bool) -> Result<Prepared, SetupError> {
    let filters = seccomp_filters()?;
    Ok(Prepared {
        ruleset: landlock_ruleset(spec, in_namespaces)?,
        filters,
    })
}

/// Limits, no_new_privs, capabilities, Landlock, seccomp: everything that
/// applies to the command's own process.
pub(crate) fn confine_process(spec: &InitSpec, in_namespaces: bool) -> Result<(), SetupError> {
    let prepared = prepare(spec, in_namespaces)?;
    limit(spec)?;
    confine_prepared(in_namespaces, &prepared)
}

/// [`confine_process`] without the limits, with the ruleset and filters
/// built beforehand: nothing here depends on the command.
pub(crate) fn confine_prepared(in_namespaces: bool, prepared: &Prepared) -> Result<(), SetupError> {
    // SAFETY: plain system calls on our own process.
    unsafe {
        if libc::setsid() < 0 && in_namespaces {
            return Err(errno("starting a session"));
        }
        check(
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
            "setting no_new_privs",
        )?;
        if in_namespaces {
            // Empty the bounding set so that exec grants no capability, even to uid 0.
            for cap in 0..=63 {
                if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) < 0
                    && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL)
                {
                    return Err(errno("dropping capabilities"));
                }
            }
            let _ = libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            );
        }
    }
    prepared
        .ruleset
        .try_clone()
        .map_err(|e| fail("entering the Landlock domain", e))?
        .restrict_self()
        .map_err(|e| fail("entering the Landlock domain", e))?;
    for filter in [
        &prepared.filters.deny,
        &prepared.filters.absent,
        &prepared.filters.families,
        &prepared.filters.x32,
    ] {
        seccompiler::apply_filter(filter).map_err(|e| fail("installing the seccomp filter", e))?;
    }
    Ok(())
}
