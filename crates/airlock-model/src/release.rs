//! `[release]` in the workflow, and what a release run carries besides its
//! brief. The release itself is the engine's (`airlock_core::release`).

use serde::{Deserialize, Serialize};
use toml::de::{DeTable, DeValue};

use crate::diag::{self, Diagnostics};
use crate::globs;

pub const CLASS: &str = "release";

/// `[release]` in the workflow.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseSettings {
    pub lane: String,
    pub touch: Vec<String>,
    pub checks: Vec<String>,
    pub checklist: Vec<ChecklistItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChecklistItem {
    pub item: String,
    /// A glob the release's diff must touch.
    pub changed: String,
}

/// What a release run carries besides its brief.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ReleaseInfo {
    pub includes: Vec<Included>,
    pub checklist: Vec<ChecklistItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Included {
    pub run: String,
    pub label: String,
    pub class: String,
    pub merge: String,
    pub promoted: String,
}

pub(crate) fn parse(root: &DeTable<'_>, diags: &mut Diagnostics<'_>) -> Option<ReleaseSettings> {
    let value = diag::get(root, "release")?;
    let table = diag::table(value, "release", diags)?;
    diag::unknown_keys(
        table,
        &["lane", "touch", "checks", "checklist"],
        "[release]",
        diags,
    );
    let mut out = ReleaseSettings {
        lane: "production".into(),
        touch: Vec::new(),
        checks: Vec::new(),
        checklist: Vec::new(),
    };
    if let Some(v) = diag::get(table, "lane")
        && let Some(lane) = diag::string(v, "lane", diags)
    {
        if crate::names::LANES.contains(&lane.as_str()) {
            out.lane = lane;
        } else {
            diags.error(
                v.span(),
                format!("unknown lane `{lane}`"),
                Some(format!("lanes are: {}", crate::names::LANES.join(", "))),
            );
        }
    }
    match diag::get(table, "touch") {
        Some(v) => {
            for (glob, span) in diag::string_list(v, "touch", diags).unwrap_or_default() {
                match globs::compile(&glob) {
                    Ok(_) => out.touch.push(glob),
                    Err(e) => diags.error(span, format!("invalid glob `{glob}`: {e}"), None),
                }
            }
        }
        None => diags.error(
            value.span(),
            "[release] has no `touch`",
            Some(
                "list what a release may change, e.g. `touch = [\"CHANGELOG.md\", \"Cargo.toml\"]`"
                    .into(),
            ),
        ),
    }
    if let Some(v) = diag::get(table, "checks") {
        out.checks = diag::string_list(v, "checks", diags)
            .unwrap_or_default()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
    }
    if let Some(v) = diag::get(table, "checklist") {
        let DeValue::Array(items) = v.get_ref() else {
            diags.error(
                v.span(),
                "`release.checklist` must be an array of tables",
                Some(
                    "write `[[release.checklist]]` with `item = \"…\"` and `changed = \"GLOB\"`"
                        .into(),
                ),
            );
            return Some(out);
        };
        for (i, item) in items.iter().enumerate() {
            let context = format!("[[release.checklist]] #{}", i + 1);
            let Some(t) = diag::table(item, "release.checklist", diags) else {
                continue;
            };
            diag::unknown_keys(t, &["item", "changed"], &context, diags);
            let text = diag::get(t, "item").and_then(|v| diag::string(v, "item", diags));
            let changed = diag::get(t, "changed").and_then(|v| {
                let glob = diag::string(v, "changed", diags)?;
                match globs::compile(&glob) {
                    Ok(_) => Some(glob),
                    Err(e) => {
                        diags.error(v.span(), format!("invalid glob `{glob}`: {e}"), None);
                        None
                    }
                }
            });
            match (text, changed) {
                (Some(item), Some(changed)) => out.checklist.push(ChecklistItem { item, changed }),
                _ => diags.error(
                    item.span(),
                    format!("{context} needs `item = \"…\"` and `changed = \"GLOB\"`"),
                    None,
                ),
            }
        }
    }
    Some(out)
}

/// Checks the release settings name gates the workflow has.
pub(crate) fn check_gates(settings: &ReleaseSettings, gates: &[&str], diags: &mut Diagnostics<'_>) {
    for c in &settings.checks {
        if !gates.contains(&c.as_str()) {
            diags.at_end(
                format!("[release] checks names gate `{c}`, which the workflow does not define"),
                diag::did_you_mean(c, gates.iter().copied()),
            );
        }
    }
}
