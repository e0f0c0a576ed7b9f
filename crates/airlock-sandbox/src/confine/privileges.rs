//! What applies to the command's own process once its view is built:
//! `no_new_privs`, no capabilities, the Landlock domain and the seccomp
//! filters.

use super::{
    Filters, InitSpec, SetupError, fail, failed, landlock_ruleset, limit, seccomp_filters,
};
use rustix::io::Errno;
use rustix::thread::{CapabilitySet, remove_capability_from_bounding_set};

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
    if let Err(e) = rustix::process::setsid()
        && in_namespaces
    {
        return Err(failed("starting a session")(e));
    }
    rustix::thread::set_no_new_privs(true).map_err(failed("setting no_new_privs"))?;
    if in_namespaces {
        // Empty the bounding set so that exec grants no capability, even to
        // uid 0: every number, including those the kernel may add later
        // (those it does not know answer EINVAL).
        for cap in 0..=63 {
            let capability = CapabilitySet::from_bits_retain(1 << cap);
            match remove_capability_from_bounding_set(capability) {
                Ok(()) | Err(Errno::INVAL) => {}
                Err(e) => return Err(failed("dropping capabilities")(e)),
            }
        }
        let _ = rustix::thread::clear_ambient_capability_set();
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
