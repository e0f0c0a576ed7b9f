//! The review panel: `[panel]` and `[panel.PERSPECTIVE]` of the workflow,
//! the default panel, and the tally that turns the votes of the
//! perspectives' rules into a decision log.
//!
//! Rules are CEL expressions over the run's evidence document; the model
//! only parses them. The engine evaluates them through the model's
//! `Evaluator` trait and hands the results to [`Panel::decide`], which is
//! pure: the same results always give the same decision.

use std::ops::Range;

use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diag::{self, Diagnostics};
use crate::evidence::Evaluator;

/// The perspectives of the panel, in the order the tally lists them.
pub const PERSPECTIVES: &[&str] = &[
    "engineering-leadership",
    "security",
    "reliability",
    "qa",
    "product",
    "compliance",
    "operations",
    "data",
    "finance",
    "design",
    "customer-success",
    "strategy",
];

/// Keys of `[panel]` itself; every other key names a perspective.
const SETTINGS: &[&str] = &["enabled", "defaults", "block_at", "attention_above"];

/// Blocking weight at or past this share of the weight cast blocks.
pub const DEFAULT_BLOCK_AT: f64 = 0.5;
/// Concern and block weight past this share of the weight cast needs
/// attention: by default any concern of a perspective that has weight.
pub const DEFAULT_ATTENTION_ABOVE: f64 = 0.0;

/// What a rule casts when its condition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Vote {
    Approve,
    Concern,
    Block,
}

impl Vote {
    pub const NAMES: &[&str] = &["approve", "concern", "block"];

    pub fn as_str(self) -> &'static str {
        match self {
            Vote::Approve => "approve",
            Vote::Concern => "concern",
            Vote::Block => "block",
        }
    }

    fn parse(s: &str) -> Option<Vote> {
        match s {
            "approve" => Some(Vote::Approve),
            "concern" => Some(Vote::Concern),
            "block" => Some(Vote::Block),
            _ => None,
        }
    }
}

/// The panel's recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    RecommendApprove,
    NeedsAttention,
    Block,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::RecommendApprove => "recommend-approve",
            Outcome::NeedsAttention => "needs-attention",
            Outcome::Block => "block",
        }
    }
}

/// `[[panel.PERSPECTIVE.rules]]`: a condition over the evidence and the vote
/// it casts.
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    /// CEL over the evidence document; must be a bool.
    pub when: String,
    pub vote: Vote,
    pub rationale: String,
    /// `default` for the shipped panel's rules, else the workflow file.
    pub origin: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Perspective {
    pub name: String,
    pub weight: f64,
    /// Its block blocks the run whatever the others vote.
    pub veto: bool,
    pub rules: Vec<Rule>,
}

/// The workflow's panel: the shipped default, changed by `[panel]`.
#[derive(Debug, Clone, Serialize)]
pub struct Panel {
    /// `[panel] enabled = false` turns the panel off (nothing is voted, no
    /// run is promoted by the panel).
    pub enabled: bool,
    pub block_at: f64,
    pub attention_above: f64,
    /// Every perspective of [`PERSPECTIVES`], in that order.
    pub perspectives: Vec<Perspective>,
}

/// The default panel, in the workflow's own syntax (docs/panel.md shows it).
pub const DEFAULT_PANEL: &str = include_str!("panel_default.toml");

impl Default for Panel {
    fn default() -> Self {
        let mut diags = Diagnostics::new(DEFAULT_PANEL);
        let doc = diag::parse(DEFAULT_PANEL, &mut diags);
        let mut panel = empty();
        if let Some(table) =
            diag::get(doc.get_ref(), "panel").and_then(|v| diag::table(v, "panel", &mut diags))
        {
            panel = parse_from(table, DEFAULT_PANEL, "default", panel, None, &mut diags);
        }
        assert!(diags.is_empty(), "the default panel parses");
        panel
    }
}

/// All twelve perspectives, weight 1, no veto, no rules.
fn empty() -> Panel {
    Panel {
        enabled: true,
        block_at: DEFAULT_BLOCK_AT,
        attention_above: DEFAULT_ATTENTION_ABOVE,
        perspectives: PERSPECTIVES
            .iter()
            .map(|name| Perspective {
                name: name.to_string(),
                weight: 1.0,
                veto: false,
                rules: Vec::new(),
            })
            .collect(),
    }
}

/// `[panel]` of a workflow: the default panel unless `defaults = false`,
/// with each perspective's `weight` and `veto` as written and its rules
/// added after the default ones. With an evaluator, every `when` the
/// workflow writes is type-checked (the default rules are, by a test, not
/// on every load).
pub fn parse(
    root: &DeTable<'_>,
    source: &str,
    evaluator: Option<&dyn Evaluator>,
    diags: &mut Diagnostics<'_>,
) -> Panel {
    let table = diag::get(root, "panel").and_then(|v| diag::table(v, "panel", diags));
    let Some(table) = table else {
        return Panel::default();
    };
    let start = match diag::get(table, "defaults").map(|v| diag::boolean(v, "defaults", diags)) {
        Some(Some(false)) => empty(),
        _ => Panel::default(),
    };
    parse_from(table, source, "workflow", start, evaluator, diags)
}

/// The keys of one `[panel]` table over `panel`.
fn parse_from(
    table: &DeTable<'_>,
    source: &str,
    origin: &str,
    mut panel: Panel,
    evaluator: Option<&dyn Evaluator>,
    diags: &mut Diagnostics<'_>,
) -> Panel {
    for (key, value) in table.iter() {
        let name = key.get_ref().as_ref();
        match name {
            "enabled" => panel.enabled = diag::boolean(value, "enabled", diags).unwrap_or(true),
            "defaults" => {} // read by `parse`
            "block_at" => {
                if let Some(share) = share(value, "block_at", diags) {
                    if share > 0.0 {
                        panel.block_at = share;
                    } else {
                        diags.error(
                            value.span(),
                            "`block_at` must be more than 0",
                            Some("a share of the weight cast, e.g. `block_at = 0.5`; a veto holder blocks alone".into()),
                        );
                    }
                }
            }
            "attention_above" => {
                if let Some(share) = share(value, "attention_above", diags) {
                    panel.attention_above = share;
                }
            }
            _ => {
                let Some(index) = PERSPECTIVES.iter().position(|p| *p == name) else {
                    let help = diag::did_you_mean(
                        name,
                        PERSPECTIVES.iter().chain(SETTINGS.iter()).copied(),
                    )
                    .unwrap_or_else(|| format!("perspectives are: {}", PERSPECTIVES.join(", ")));
                    diags.error(
                        key.span(),
                        format!("unknown perspective `{}` in [panel]", name.escape_debug()),
                        Some(help),
                    );
                    continue;
                };
                let perspective = &mut panel.perspectives[index];
                parse_perspective(value, source, origin, perspective, evaluator, diags);
            }
        }
    }
    panel
}

fn parse_perspective(
    value: &Spanned<DeValue<'_>>,
    source: &str,
    origin: &str,
    perspective: &mut Perspective,
    evaluator: Option<&dyn Evaluator>,
    diags: &mut Diagnostics<'_>,
) {
    let context = format!("[panel.{}]", perspective.name);
    let Some(table) = diag::table(value, &format!("panel.{}", perspective.name), diags) else {
        return;
    };
    diag::unknown_keys(table, &["weight", "veto", "rules"], &context, diags);
    if let Some(v) = diag::get(table, "weight") {
        match number(v) {
            Some(w) if w >= 0.0 && w.is_finite() => perspective.weight = w,
            Some(_) => diags.error(
                v.span(),
                format!(
                    "`weight` of {context} must be a number of 0 or more, found `{}`",
                    raw(source, v.span())
                ),
                Some("write a number of 0 or more, e.g. `weight = 2`; 0 keeps its votes in the log but out of the tally".into()),
            ),
            None => diags.error(
                v.span(),
                format!(
                    "`weight` of {context} must be a number, found {}",
                    describe(source, v)
                ),
                Some("write e.g. `weight = 2` or `weight = 1.5`".into()),
            ),
        }
    }
    if let Some(v) = diag::get(table, "veto") {
        perspective.veto = diag::boolean(v, "veto", diags).unwrap_or(perspective.veto);
    }
    let Some(rules) = diag::get(table, "rules") else {
        return;
    };
    let DeValue::Array(items) = rules.get_ref() else {
        diags.error(
            rules.span(),
            format!("`rules` of {context} must be an array of tables"),
            Some(format!(
                "write `[[panel.{}.rules]]` with `when`, `vote` and `rationale`",
                perspective.name
            )),
        );
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let rule_context = format!("[[panel.{}.rules]] #{}", perspective.name, i + 1);
        if let Some(rule) = parse_rule(item, source, origin, &rule_context, evaluator, diags) {
            perspective.rules.push(rule);
        }
    }
}

fn parse_rule(
    item: &Spanned<DeValue<'_>>,
    source: &str,
    origin: &str,
    context: &str,
    evaluator: Option<&dyn Evaluator>,
    diags: &mut Diagnostics<'_>,
) -> Option<Rule> {
    let table = diag::table(item, "rules", diags)?;
    diag::unknown_keys(table, &["when", "vote", "rationale"], context, diags);
    let when = match diag::get(table, "when") {
        Some(v) => diag::string(v, "when", diags).and_then(|s| {
            if s.trim().is_empty() {
                diags.error(
                    v.span(),
                    format!("{context} has an empty `when`"),
                    Some("write a CEL condition over the evidence, e.g. `when = \"secrets.findings > 0\"`".into()),
                );
                None
            } else {
                if let Some(evaluator) = evaluator
                    && let Err(errors) = evaluator.check(&s)
                {
                    crate::conditions::report_expression_errors(
                        source, v, &s, context, &errors, diags,
                    );
                }
                Some(s)
            }
        }),
        None => {
            diags.error(
                item.span(),
                format!("{context} has no `when`"),
                Some("a rule votes only when its condition holds: add `when = \"…\"`, a CEL condition over the evidence (docs/evidence.md)".into()),
            );
            None
        }
    };
    let vote = match diag::get(table, "vote") {
        Some(v) => diag::string(v, "vote", diags).and_then(|s| match Vote::parse(&s) {
            Some(vote) => Some(vote),
            None => {
                let help = diag::did_you_mean(&s, Vote::NAMES.iter().copied())
                    .unwrap_or_else(|| "a vote is `approve`, `concern` or `block`".into());
                diags.error(
                    v.span(),
                    format!("unknown vote `{}` in {context}", s.escape_debug()),
                    Some(help),
                );
                None
            }
        }),
        None => {
            diags.error(
                item.span(),
                format!("{context} has no `vote`"),
                Some("add `vote = \"approve\"`, `\"concern\"` or `\"block\"`".into()),
            );
            None
        }
    };
    let rationale = match diag::get(table, "rationale") {
        Some(v) => diag::string(v, "rationale", diags).and_then(|s| {
            if s.trim().is_empty() {
                diags.error(
                    v.span(),
                    format!("{context} has an empty `rationale`"),
                    Some("say in a sentence why this vote, for the reviewer who reads the decision log".into()),
                );
                None
            } else {
                Some(s)
            }
        }),
        None => {
            diags.error(
                item.span(),
                format!("{context} has no `rationale`"),
                Some("add `rationale = \"…\"`: why the perspective votes so, as the reviewer will read it".into()),
            );
            None
        }
    };
    let (when, vote, rationale) = (when?, vote?, rationale?);
    Some(Rule {
        when,
        vote,
        rationale,
        origin: origin.to_string(),
    })
}

fn number(value: &Spanned<DeValue<'_>>) -> Option<f64> {
    match value.get_ref() {
        DeValue::Integer(i) if i.radix() == 10 => i
            .as_str()
            .replace('_', "")
            .parse::<i64>()
            .ok()
            .map(|n| n as f64),
        DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
        _ => None,
    }
}

fn share(value: &Spanned<DeValue<'_>>, key: &str, diags: &mut Diagnostics<'_>) -> Option<f64> {
    match number(value) {
        Some(s) if (0.0..=1.0).contains(&s) => Some(s),
        _ => {
            diags.error(
                value.span(),
                format!("`{key}` must be a share of the weight cast, from 0 to 1"),
                Some(format!("write e.g. `{key} = 0.5`")),
            );
            None
        }
    }
}

fn raw(source: &str, span: Range<usize>) -> String {
    source.get(span).unwrap_or("").escape_debug().to_string()
}

fn describe(source: &str, value: &Spanned<DeValue<'_>>) -> String {
    match value.get_ref() {
        DeValue::String(s) => format!("the string \"{}\"", s.escape_debug()),
        DeValue::Integer(_) | DeValue::Float(_) => format!("`{}`", raw(source, value.span())),
        other => diag::kind_name(other).to_string(),
    }
}

/// One vote cast: the rule whose condition held (or could not be
/// evaluated, which counts as a concern).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CastVote {
    pub perspective: String,
    /// 1-based, among the perspective's rules (default ones first).
    pub rule: usize,
    pub vote: Vote,
    pub rationale: String,
    pub when: String,
    /// `default` or `workflow`.
    pub origin: String,
    /// Why the rule could not be evaluated; its vote is then a concern.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One perspective's verdict: its most severe vote, none when no rule of
/// it held (it abstains).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub perspective: String,
    pub weight: f64,
    pub veto: bool,
    pub vote: Option<Vote>,
}

/// The weighted sums: each perspective's weight counted once, under its
/// verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub approve: f64,
    pub concern: f64,
    pub block: f64,
    /// approve + concern + block: the weight of the perspectives that voted.
    pub cast: f64,
    pub block_at: f64,
    pub attention_above: f64,
    /// The veto holders whose block decided.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vetoed_by: Vec<String>,
}

/// The panel's decision log: outcome, tally, every perspective's verdict and
/// every vote with its rationale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub version: String,
    pub outcome: Outcome,
    /// Why the outcome, in one sentence.
    pub reason: String,
    pub tally: Tally,
    pub verdicts: Vec<Verdict>,
    pub votes: Vec<CastVote>,
}

pub const DECISION_VERSION: &str = "airlock.panel/v1";

impl Panel {
    /// Every rule's `when`, perspective by perspective, rule by rule: the
    /// order [`Panel::decide`] expects the results in.
    pub fn expressions(&self) -> Vec<&str> {
        self.rules().map(|(_, r)| r.when.as_str()).collect()
    }

    fn rules(&self) -> impl Iterator<Item = (&Perspective, &Rule)> {
        self.perspectives
            .iter()
            .flat_map(|p| p.rules.iter().map(move |r| (p, r)))
    }

    /// The decision from each rule's result, in the order of
    /// [`Panel::expressions`]. A rule that could not be evaluated casts a
    /// concern: the panel never approves what it could not look at.
    ///
    /// The tally: a perspective's verdict is its most severe vote (block >
    /// concern > approve), or it abstains. A veto holder's block blocks.
    /// Otherwise, of the weight cast, a blocking share at or past `block_at`
    /// blocks; a concern-or-block share past `attention_above` needs
    /// attention; no approving weight at all needs attention (nothing
    /// vouched for the run); else the panel recommends approval.
    pub fn decide(&self, results: &[Result<bool, String>]) -> Decision {
        let mut votes = Vec::new();
        let mut verdicts = Vec::new();
        let mut results = results.iter();
        for p in &self.perspectives {
            let mut worst: Option<Vote> = None;
            for (i, rule) in p.rules.iter().enumerate() {
                let (vote, error) = match results.next() {
                    Some(Ok(true)) => (rule.vote, None),
                    Some(Ok(false)) => continue,
                    Some(Err(e)) => (Vote::Concern, Some(e.clone())),
                    None => (Vote::Concern, Some("the rule was not evaluated".into())),
                };
                worst = worst.max(Some(vote));
                votes.push(CastVote {
                    perspective: p.name.clone(),
                    rule: i + 1,
                    vote,
                    rationale: rule.rationale.clone(),
                    when: rule.when.clone(),
                    origin: rule.origin.clone(),
                    error,
                });
            }
            verdicts.push(Verdict {
                perspective: p.name.clone(),
                weight: p.weight,
                veto: p.veto,
                vote: worst,
            });
        }
        let sum = |v: Vote| {
            verdicts
                .iter()
                .filter(|d| d.vote == Some(v))
                .map(|d| d.weight)
                // From +0.0: an empty f64 sum is -0.0.
                .fold(0.0, |sum, w| sum + w)
        };
        let (approve, concern, block) = (sum(Vote::Approve), sum(Vote::Concern), sum(Vote::Block));
        let cast = approve + concern + block;
        let vetoed_by: Vec<String> = verdicts
            .iter()
            .filter(|d| d.veto && d.vote == Some(Vote::Block))
            .map(|d| d.perspective.clone())
            .collect();
        let (outcome, reason) = if !vetoed_by.is_empty() {
            (
                Outcome::Block,
                format!("vetoed by {}", vetoed_by.join(", ")),
            )
        } else if block > 0.0 && block >= self.block_at * cast {
            (
                Outcome::Block,
                format!(
                    "blocking weight {} of {} cast reaches block_at {}",
                    fmt(block),
                    fmt(cast),
                    fmt(self.block_at)
                ),
            )
        } else if concern + block > self.attention_above * cast {
            (
                Outcome::NeedsAttention,
                format!(
                    "concern and block weight {} of {} cast is past attention_above {}",
                    fmt(concern + block),
                    fmt(cast),
                    fmt(self.attention_above)
                ),
            )
        } else if approve <= 0.0 {
            (
                Outcome::NeedsAttention,
                "no perspective with weight approved".to_string(),
            )
        } else {
            (
                Outcome::RecommendApprove,
                format!("approving weight {} of {} cast", fmt(approve), fmt(cast)),
            )
        };
        Decision {
            version: DECISION_VERSION.to_string(),
            outcome,
            reason,
            tally: Tally {
                approve,
                concern,
                block,
                cast,
                block_at: self.block_at,
                attention_above: self.attention_above,
                vetoed_by,
            },
            verdicts,
            votes,
        }
    }
}

/// A weight as people write it: `3`, `1.5`.
pub fn fmt(w: f64) -> String {
    if w.fract() == 0.0 && w.abs() < 1e15 {
        format!("{}", w as i64)
    } else {
        format!("{w}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::workflow::Workflow;
    use crate::workflow::tests::problems;

    fn panel(text: &str) -> Panel {
        Workflow::parse(text, "wf.toml").unwrap().panel
    }

    fn perspective<'a>(panel: &'a Panel, name: &str) -> &'a Perspective {
        panel.perspectives.iter().find(|p| p.name == name).unwrap()
    }

    #[test]
    fn the_default_panel_has_every_perspective_with_rules_and_rationales() {
        let p = Panel::default();
        let names: Vec<&str> = p.perspectives.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, PERSPECTIVES);
        for persp in &p.perspectives {
            assert!(!persp.rules.is_empty(), "{} has rules", persp.name);
            for r in &persp.rules {
                assert!(r.rationale.len() > 20, "{}: {}", persp.name, r.rationale);
                assert_eq!(r.origin, "default");
            }
        }
        let security = perspective(&p, "security");
        assert!(security.veto);
        assert_eq!(security.weight, 3.0);
        assert!(
            security
                .rules
                .iter()
                .any(|r| r.vote == Vote::Block && r.when.contains("secrets.findings"))
        );
        // A workflow without [panel] gets the default.
        assert_eq!(panel("").perspectives.len(), 12);
        assert!(panel("").enabled);
    }

    #[test]
    fn a_workflow_sets_weights_and_vetoes_and_adds_rules_after_the_defaults() {
        let p = panel(
            "[panel.qa]\nweight = 4.5\nveto = true\n\n[[panel.qa.rules]]\n\
             when = 'tests.skipped > 10'\nvote = \"concern\"\nrationale = \"Many tests skipped.\"\n",
        );
        let qa = perspective(&p, "qa");
        assert_eq!(qa.weight, 4.5);
        assert!(qa.veto);
        let last = qa.rules.last().unwrap();
        assert_eq!(last.when, "tests.skipped > 10");
        assert_eq!(last.origin, "workflow");
        assert_eq!(
            qa.rules.len(),
            perspective(&Panel::default(), "qa").rules.len() + 1
        );

        let bare = panel("[panel]\ndefaults = false\nblock_at = 0.75\n[panel.data]\nweight = 0\n");
        assert!(bare.perspectives.iter().all(|p| p.rules.is_empty()));
        assert_eq!(bare.block_at, 0.75);
        assert_eq!(perspective(&bare, "data").weight, 0.0);
        assert!(!panel("[panel]\nenabled = false\n").enabled);
    }

    #[test]
    fn every_problem_of_the_panel_is_refused_at_once_with_its_position() {
        let found = problems(
            "[panel]\nblock_at = 2\n\n\
             [panel.securty]\nweight = 1\n\n\
             [panel.qa]\nweight = -1\n\n\
             [panel.data]\nweight = \"heavy\"\nveto = \"yes\"\n\n\
             [[panel.product.rules]]\nvote = \"aprove\"\nrationale = \"r\"\n\n\
             [[panel.design.rules]]\nwhen = \"true\"\n\n\
             [[panel.finance.rules]]\nwhen = \" \"\nvote = \"concern\"\nrationale = \"\"\nextra = 1\n\n\
             [panel.reliability]\nweight = nan\n",
        );
        assert_eq!(
            found,
            vec![
                "2:12: `block_at` must be a share of the weight cast, from 0 to 1",
                "4:8: unknown perspective `securty` in [panel]",
                "8:10: `weight` of [panel.qa] must be a number of 0 or more, found `-1`",
                "11:10: `weight` of [panel.data] must be a number, found the string \"heavy\"",
                "12:8: `veto` must be true or false, found a string",
                "14:1: [[panel.product.rules]] #1 has no `when`",
                "15:8: unknown vote `aprove` in [[panel.product.rules]] #1",
                "18:1: [[panel.design.rules]] #1 has no `vote`",
                "18:1: [[panel.design.rules]] #1 has no `rationale`",
                "22:8: [[panel.finance.rules]] #1 has an empty `when`",
                "24:13: [[panel.finance.rules]] #1 has an empty `rationale`",
                "25:1: unknown key `extra` in [[panel.finance.rules]] #1",
                "28:10: `weight` of [panel.reliability] must be a number of 0 or more, found `nan`",
            ]
        );
    }

    #[test]
    fn the_refusals_say_what_to_write_instead() {
        let Err(Error::InvalidToml { diagnostics, .. }) = Workflow::parse(
            "[panel.securty]\nweight = 1\n[[panel.qa.rules]]\nwhen = \"true\"\nvote = \"aprove\"\nrationale = \"x\"\n",
            "wf.toml",
        ) else {
            panic!("refused")
        };
        assert_eq!(
            diagnostics[0].help.as_deref(),
            Some("did you mean `security`?")
        );
        assert_eq!(
            diagnostics[1].help.as_deref(),
            Some("did you mean `approve`?")
        );
    }

    fn with_rules(rules: &[(&str, f64, bool, Vote)]) -> Panel {
        let mut p = empty();
        for (name, weight, veto, vote) in rules {
            let persp = p.perspectives.iter_mut().find(|p| p.name == *name).unwrap();
            persp.weight = *weight;
            persp.veto = *veto;
            persp.rules.push(Rule {
                when: format!("{name} votes"),
                vote: *vote,
                rationale: format!("{name} says {}", vote.as_str()),
                origin: "workflow".into(),
            });
        }
        p
    }

    #[test]
    fn a_veto_holders_block_blocks_whatever_the_weights() {
        let p = with_rules(&[
            ("security", 1.0, true, Vote::Block),
            ("qa", 10.0, false, Vote::Approve),
            ("product", 10.0, false, Vote::Approve),
        ]);
        let d = p.decide(&[Ok(true), Ok(true), Ok(true)]);
        assert_eq!(d.outcome, Outcome::Block);
        assert_eq!(d.tally.vetoed_by, ["security"]);
        assert_eq!(d.reason, "vetoed by security");
        assert_eq!(d.votes.len(), 3);
        // The same block without the veto is outweighed: it needs attention.
        let p = with_rules(&[
            ("security", 1.0, false, Vote::Block),
            ("qa", 10.0, false, Vote::Approve),
        ]);
        let d = p.decide(&[Ok(true), Ok(true)]);
        assert_eq!(d.outcome, Outcome::NeedsAttention);
        assert_eq!(
            (d.tally.approve, d.tally.block, d.tally.cast),
            (10.0, 1.0, 11.0)
        );
    }

    #[test]
    fn the_tally_weighs_each_perspective_once_by_its_worst_vote() {
        let mut p = with_rules(&[
            ("qa", 2.0, false, Vote::Approve),
            ("qa", 2.0, false, Vote::Block),
            ("product", 1.0, false, Vote::Approve),
        ]);
        p.block_at = 0.6;
        let d = p.decide(&[Ok(true), Ok(true), Ok(true)]);
        assert_eq!((d.tally.block, d.tally.approve), (2.0, 1.0));
        assert_eq!(d.outcome, Outcome::Block, "2 of 3 reaches 0.6");
        assert_eq!(d.votes.len(), 3, "every vote is in the log");
        assert_eq!(d.verdicts[3].vote, Some(Vote::Block));
        // A rule that does not hold casts nothing; all approving recommends.
        let d = p.decide(&[Ok(true), Ok(false), Ok(true)]);
        assert_eq!(d.outcome, Outcome::RecommendApprove);
        assert_eq!(d.votes.len(), 2);
        // Nothing held: nobody vouched for the run.
        let d = p.decide(&[Ok(false), Ok(false), Ok(false)]);
        assert_eq!(d.outcome, Outcome::NeedsAttention);
        assert_eq!(d.reason, "no perspective with weight approved");
    }

    #[test]
    fn a_rule_that_cannot_be_evaluated_is_a_concern_never_an_approval() {
        let p = with_rules(&[("qa", 1.0, false, Vote::Approve)]);
        let d = p.decide(&[Err("no such key: tests".into())]);
        assert_eq!(d.outcome, Outcome::NeedsAttention);
        assert_eq!(d.votes[0].vote, Vote::Concern);
        assert_eq!(d.votes[0].error.as_deref(), Some("no such key: tests"));
        // Missing results count the same.
        assert_eq!(p.decide(&[]).outcome, Outcome::NeedsAttention);
    }

    #[test]
    fn the_decision_is_deterministic_and_round_trips() {
        let p = Panel::default();
        let results: Vec<Result<bool, String>> =
            (0..p.expressions().len()).map(|i| Ok(i % 3 == 0)).collect();
        let a = p.decide(&results);
        let b = p.decide(&results);
        assert_eq!(a, b);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::to_string(&b).unwrap(), json);
        let back: Decision = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
        assert_eq!(a.version, DECISION_VERSION);
    }
}
