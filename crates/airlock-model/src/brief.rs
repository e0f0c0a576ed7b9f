//! The task contract: a TOML brief.

use serde::{Deserialize, Serialize};

use crate::diag::{self, Diagnostics};
use crate::digest::sha256_hex;
use crate::error::{Error, Result};
use crate::globs;
pub use crate::names::LANES;
use crate::names::valid_name;
use crate::workflow::Workflow;

const KEYS: &[&str] = &[
    "title",
    "objective",
    "class",
    "lane",
    "non_goals",
    "touch",
    "checks",
    "rollback",
    "assumptions",
    "data",
    "limits",
    "network",
];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Brief {
    pub title: Option<String>,
    pub objective: String,
    pub class: String,
    pub lane: String,
    pub non_goals: Vec<String>,
    pub touch: Vec<String>,
    pub checks: Vec<String>,
    pub rollback: String,
    pub assumptions: Vec<String>,
    pub forbid_read: Vec<String>,
    pub max_files: Option<u64>,
    pub max_lines: Option<u64>,
    /// `network = "off"`, `"on"` or a list of hosts: a brief may only
    /// narrow what its lane grants (checked against the workflow when one
    /// is given to [`Brief::parse`]); `None` leaves it to the lane.
    pub network: Option<crate::network::Network>,
    /// sha256 of the brief's bytes.
    pub digest: String,
}

impl Brief {
    /// Parses and validates a brief, reporting every problem at once. With a
    /// workflow, `checks` must name its gates.
    pub fn parse(text: &str, name: &str, workflow: Option<&Workflow>) -> Result<Brief> {
        let mut diags = Diagnostics::new(text);
        let doc = diag::parse(text, &mut diags);
        let root = doc.get_ref();
        diag::unknown_keys(root, KEYS, "a brief", &mut diags);

        let mut network_span = None;
        let mut class_span = None;
        let mut lane_span = None;
        let mut brief = Brief {
            title: None,
            objective: String::new(),
            class: "default".into(),
            lane: "governed".into(),
            non_goals: vec![],
            touch: vec![],
            checks: vec![],
            rollback: String::new(),
            assumptions: vec![],
            forbid_read: vec![],
            max_files: None,
            max_lines: None,
            network: None,
            digest: sha256_hex(text.as_bytes()),
        };
        for required in ["objective", "touch", "checks", "rollback"] {
            if diag::get(root, required).is_none() {
                let example = match required {
                    "touch" => {
                        "touch = [\"src/**\"]   # paths the change may create, modify or delete"
                    }
                    "checks" => {
                        "checks = [\"test\"]   # gates from .airlock/workflow.toml that define done"
                    }
                    "rollback" => "rollback = \"revert the merge commit\"",
                    _ => "objective = \"what the change must achieve\"",
                };
                diags.at_end(
                    format!("missing required key `{required}`"),
                    Some(format!("add `{example}`")),
                );
            }
        }

        for (key, value) in root.iter() {
            let key_name = key.get_ref().as_ref();
            match key_name {
                "title" => brief.title = diag::string(value, key_name, &mut diags),
                "objective" | "rollback" => {
                    if let Some(s) = diag::string(value, key_name, &mut diags) {
                        if s.trim().is_empty() {
                            diags.error(
                                value.span(),
                                format!("`{key_name}` is empty"),
                                Some("say it in a sentence".into()),
                            );
                        }
                        if key_name == "objective" {
                            brief.objective = s;
                        } else {
                            brief.rollback = s;
                        }
                    }
                }
                "class" => {
                    class_span = Some(value.span());
                    if let Some(s) = diag::string(value, key_name, &mut diags) {
                        if !valid_name(&s) {
                            diags.error(
                                value.span(),
                                format!("class `{s}` is not a valid name"),
                                Some("use letters, digits, `-` and `_`, e.g. `bugfix`".into()),
                            );
                        }
                        brief.class = s;
                    }
                }
                "lane" => {
                    lane_span = Some(value.span());
                    if let Some(s) = diag::string(value, key_name, &mut diags) {
                        if !LANES.contains(&s.as_str()) {
                            let help = diag::did_you_mean(&s, LANES.iter().copied())
                                .unwrap_or_else(|| format!("lanes are: {}", LANES.join(", ")));
                            diags.error(value.span(), format!("unknown lane `{s}`"), Some(help));
                        }
                        brief.lane = s;
                    }
                }
                "non_goals" | "assumptions" => {
                    let list = diag::string_list(value, key_name, &mut diags).unwrap_or_default();
                    let list = list.into_iter().map(|(s, _)| s).collect();
                    if key_name == "non_goals" {
                        brief.non_goals = list;
                    } else {
                        brief.assumptions = list;
                    }
                }
                "touch" => {
                    let list = diag::string_list(value, key_name, &mut diags).unwrap_or_default();
                    if list.is_empty() && matches!(value.get_ref(), toml::de::DeValue::Array(_)) {
                        diags.error(
                            value.span(),
                            "`touch` is empty: the change could not touch any path",
                            Some("list the paths the change may create, modify or delete, e.g. `[\"src/**\"]`".into()),
                        );
                    }
                    for (glob, span) in list {
                        if let Err(e) = globs::compile(&glob) {
                            diags.error(span, format!("invalid glob `{glob}`: {e}"), None);
                        }
                        brief.touch.push(glob);
                    }
                }
                "checks" => {
                    for (gate, span) in
                        diag::string_list(value, key_name, &mut diags).unwrap_or_default()
                    {
                        if let Some(workflow) = workflow
                            && workflow.gate(&gate).is_none()
                        {
                            let names = workflow.gate_names();
                            let help = diag::did_you_mean(&gate, names.iter().copied()).unwrap_or_else(|| {
                                if names.is_empty() {
                                    "the workflow defines no gates; add `[gates.NAME]` to .airlock/workflow.toml".into()
                                } else {
                                    format!("the workflow defines: {}", names.join(", "))
                                }
                            });
                            diags.error(
                                span.clone(),
                                format!("the workflow has no gate `{gate}`"),
                                Some(help),
                            );
                        }
                        if brief.checks.contains(&gate) {
                            diags.error(span, format!("gate `{gate}` is listed twice"), None);
                        } else {
                            brief.checks.push(gate);
                        }
                    }
                }
                "network" => {
                    brief.network = crate::workflow::network_setting(value, &mut diags);
                    network_span = Some(value.span());
                }
                "data" => {
                    if let Some(table) = diag::table(value, "data", &mut diags) {
                        diag::unknown_keys(table, &["forbid_read"], "[data]", &mut diags);
                        if let Some(v) = diag::get(table, "forbid_read") {
                            for (glob, span) in
                                diag::string_list(v, "forbid_read", &mut diags).unwrap_or_default()
                            {
                                if let Err(e) = globs::compile(&glob) {
                                    diags.error(span, format!("invalid glob `{glob}`: {e}"), None);
                                }
                                brief.forbid_read.push(glob);
                            }
                        }
                    }
                }
                "limits" => {
                    if let Some(table) = diag::table(value, "limits", &mut diags) {
                        diag::unknown_keys(
                            table,
                            &["max_files", "max_lines"],
                            "[limits]",
                            &mut diags,
                        );
                        for (k, v) in table.iter() {
                            match k.get_ref().as_ref() {
                                "max_files" => {
                                    brief.max_files = diag::positive(v, "max_files", &mut diags)
                                }
                                "max_lines" => {
                                    brief.max_lines = diag::positive(v, "max_lines", &mut diags)
                                }
                                _ => {}
                            }
                        }
                    }
                }
                _ => {}
            }
        }

        // A brief may narrow its lane's network, never widen it: refused
        // here, when the brief is read with its workflow (`start`, `brief
        // check`), before anything of the run exists.
        if let (Some(workflow), Some(network), Some(span)) =
            (workflow, brief.network.as_ref(), network_span)
            && LANES.contains(&brief.lane.as_str())
        {
            let (lane_network, source) = workflow.lane_network(&brief.lane);
            for w in crate::network::Network::narrow(lane_network, network) {
                diags.error(
                    span.clone(),
                    format!(
                        "`network` widens lane `{}`: {w} ({source} is {})",
                        brief.lane,
                        crate::network::describe(lane_network)
                    ),
                    Some(format!(
                        "a brief may only narrow its lane's network: remove `{}` from the brief, \
                         or grant it in the workflow under [lanes.{}]",
                        w.entry, brief.lane
                    )),
                );
            }
        }

        if let Some(workflow) = workflow
            && LANES.contains(&brief.lane.as_str())
        {
            check_class(&brief, workflow, class_span, lane_span, &mut diags);
        }

        if !diags.is_empty() {
            return Err(Error::InvalidToml {
                code: crate::error::Code::InvalidBrief,
                path: name.to_string(),
                diagnostics: diags.into_sorted(),
            });
        }
        Ok(brief)
    }

    /// A short label: the title, or the start of the objective.
    pub fn label(&self) -> String {
        let text = self.title.as_deref().unwrap_or(&self.objective);
        let line = text.lines().next().unwrap_or("").trim();
        line.chars().take(72).collect()
    }
}

/// A brief's class and lane against the workflow's `[classes]`: when any
/// class is declared, the brief's must be one (a hostile brief must not
/// invent a class to escape a limit), and its lane at most the class's
/// `max_lane`, as a brief may not widen its lane's network.
fn check_class(
    brief: &Brief,
    workflow: &Workflow,
    class_span: Option<std::ops::Range<usize>>,
    lane_span: Option<std::ops::Range<usize>>,
    diags: &mut Diagnostics<'_>,
) {
    use crate::lanes::Denial;
    let Err(Denial::ClassLimit { max_lane }) = workflow.class_allows(&brief.class, &brief.lane)
    else {
        return;
    };
    let class = &brief.class;
    let lane = &brief.lane;
    let origin = &workflow.origin;
    match max_lane {
        None => {
            let declared: Vec<&str> = workflow.classes.iter().map(|c| c.name.as_str()).collect();
            let help = diag::did_you_mean(class, declared.iter().copied())
                .map(|d| format!("{d} "))
                .unwrap_or_default()
                + &format!(
                    "write one of the classes {origin} declares: `class = \"…\"` with {}",
                    declared.join(", ")
                );
            let message = if class_span.is_some() {
                format!("class `{class}` is not declared in the workflow's [classes]")
            } else {
                "the brief has no `class`, and the workflow declares classes".to_string()
            };
            match class_span {
                Some(span) => diags.error(span, message, Some(help)),
                None => diags.at_end(message, Some(help)),
            }
        }
        Some(max) => {
            let message = format!(
                "lane `{lane}` is past what class `{class}` may use: its `max_lane` is `{max}`"
            );
            let help = format!(
                "write `lane = \"{max}\"` (or a lower lane); only the workflow's owner can raise `[classes.{class}] max_lane`"
            );
            match lane_span {
                Some(span) => diags.error(span, message, Some(help)),
                // The default lane (`governed`) is past the class's limit.
                None => diags.at_end(
                    format!("{message} (the brief sets no `lane`, so it is `{lane}`)"),
                    Some(help),
                ),
            }
        }
    }
}
