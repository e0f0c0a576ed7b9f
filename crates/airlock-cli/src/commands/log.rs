use serde_json::Value;

use airlock_core::Result;
use airlock_core::ledger::Event;

use super::Ctx;
use crate::render::{Output, Report, one_line};

#[derive(clap::Args)]
pub struct Args {
    /// Only this run's events.
    pub(super) run: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<Output> {
    let al = ctx.open()?;
    if let Some(run) = &args.run {
        al.store.get(run)?;
    }
    let events = al.store.events(args.run.as_deref())?;
    Ok(Output::report(&Events { events }).hostile())
}

/// `airlock log`: ledger events, oldest first.
#[derive(serde::Serialize)]
struct Events {
    events: Vec<Event>,
}

impl Report for Events {
    fn human(&self) -> String {
        let mut human = String::new();
        if self.events.is_empty() {
            human += "no events yet";
        }
        for e in &self.events {
            human += &format!(
                "{:>5} {} {:<28} {:<10} {}\n",
                e.seq,
                e.ts,
                e.run.as_deref().unwrap_or("-"),
                e.kind,
                // Whole: a reason cut short can change its meaning.
                one_line(&summary(&e.data), usize::MAX)
            );
        }
        human.trim_end().to_string()
    }
}

fn summary(data: &Value) -> String {
    let mut parts = Vec::new();
    if let (Some(from), Some(to)) = (data["from"].as_str(), data["to"].as_str()) {
        parts.push(format!("{from} -> {to}"));
    }
    if let Some(argv) = data["argv"].as_array() {
        let argv: Vec<&str> = argv.iter().filter_map(Value::as_str).collect();
        parts.push(format!(
            "{} ({})",
            argv.join(" "),
            data["exit"]["description"].as_str().unwrap_or("")
        ));
    }
    // Action events: which action, its role when it is a compensation, and
    // what became of it.
    if let Some(name) = data["name"].as_str() {
        let role = match data["role"].as_str() {
            Some("undo") => "undo ",
            _ => "",
        };
        parts.push(format!("{role}`{name}`"));
    }
    for key in [
        "kind",
        "state",
        "summary",
        "as",
        "idempotency_key",
        "passed",
        "reason",
        "digest",
        "merge",
        "failure",
        "stage",
        "outcome",
    ] {
        if let Some(v) = data.get(key).filter(|v| !v.is_null()) {
            let text = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            parts.push(format!("{key}={text}"));
        }
    }
    // Who acted (issue 20; the machine's key is in `--json`); first, so
    // that a reason (whole, hostile) stays last.
    if let Some(principal) = data["who"]["principal"].as_str() {
        parts.insert(0, format!("by {principal}"));
    }
    parts.join("  ")
}
