//! The output a run's commands and gates left: picking a trace by number or
//! gate name, and reading the end of its logs. The logs are airlock's (under
//! the run's state directory, out of every sandbox's reach); what they hold
//! is the agent's, for the caller to escape.

use std::path::Path;

use crate::error::{Error, Result};
use crate::exec::Trace;

/// The trace `selector` names among a run's traces: a trace number (`3`,
/// `#3`), or a gate name, meaning that gate's latest trace in `round`.
pub fn select<'t>(run: &str, traces: &'t [Trace], round: u32, selector: &str) -> Result<&'t Trace> {
    let number = selector.strip_prefix('#').unwrap_or(selector);
    if let Ok(n) = number.parse::<u32>() {
        return traces.iter().find(|t| t.n == n).ok_or_else(|| {
            Error::refused(
                crate::error::Code::UnknownTrace,
                format!("run {run} has no trace #{n}"),
                vec![match traces.last() {
                    Some(last) => format!("its traces are #1 to #{}", last.n),
                    None => "it has no traces yet".into(),
                }],
                format!("list them with `airlock logs {run}`"),
            )
        });
    }
    let origin = format!("gate:{selector}");
    if let Some(t) = traces
        .iter()
        .rev()
        .find(|t| t.round == round && t.origin == origin)
    {
        return Ok(t);
    }
    let mut gates: Vec<&str> = traces
        .iter()
        .filter_map(|t| t.origin.strip_prefix("gate:"))
        .collect();
    gates.sort_unstable();
    gates.dedup();
    let earlier = traces.iter().any(|t| t.origin == origin);
    let mut reasons = vec![if earlier {
        format!("gate `{selector}` ran only in an earlier round; this is round {round}")
    } else if gates.is_empty() {
        "no gate has run for it yet (`airlock check` runs them)".into()
    } else {
        format!("the gates that ran: {}", gates.join(", "))
    }];
    if let Some(guess) = crate::diag::did_you_mean(selector, gates.iter().copied()) {
        reasons.push(guess);
    }
    Err(Error::refused(
        crate::error::Code::UnknownTrace,
        format!("run {run} has no trace of gate `{selector}` in round {round}"),
        reasons,
        if earlier {
            format!("pick the earlier trace by number; list them with `airlock logs {run}`")
        } else {
            format!("give a trace number or a gate name; list them with `airlock logs {run}`")
        },
    ))
}

/// The last `lines` lines of the log at `path` (read from its last 256 KiB
/// at most), and whether lines before them were left out.
pub fn tail(path: &Path, lines: usize) -> std::io::Result<(Vec<String>, bool)> {
    const WINDOW: u64 = 256 << 10;
    let size = std::fs::metadata(path)?.len();
    let text = crate::gate_counts::read_end(path, WINDOW)?;
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    // A window cut into the file starts mid-line: that line is not whole.
    let start = if size > WINDOW { start.max(1) } else { start };
    let cut = start > 0 || size > WINDOW;
    Ok((
        all[start.min(all.len())..]
            .iter()
            .map(|l| l.to_string())
            .collect(),
        cut,
    ))
}

/// The whole log at `path`, as text (invalid UTF-8 replaced).
pub fn read(path: &Path) -> std::io::Result<String> {
    Ok(String::from_utf8_lossy(&std::fs::read(path)?).into_owned())
}

/// The SHA-256 of the log as it is now, to compare with the trace's record.
pub fn digest(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(path)?;
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// The lines of `bytes` (invalid UTF-8 replaced): all of them, or the last
/// `tail`, and whether lines before them were left out.
pub fn lines_of(bytes: &[u8], tail: Option<usize>) -> (Vec<String>, bool) {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.lines().collect();
    let start = tail.map_or(0, |n| all.len().saturating_sub(n));
    (
        all[start..].iter().map(|l| l.to_string()).collect(),
        start > 0,
    )
}
