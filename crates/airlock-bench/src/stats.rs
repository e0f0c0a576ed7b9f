//! Samples, medians, and the table (or JSON) each benchmark prints.

use std::time::Duration;

use serde_json::{Value, json};

/// The timings of one side of a comparison.
#[derive(Debug, Clone)]
pub struct Measure {
    pub name: String,
    pub samples: Vec<Duration>,
}

impl Measure {
    pub fn new(name: impl Into<String>) -> Measure {
        Measure {
            name: name.into(),
            samples: Vec::new(),
        }
    }

    pub fn push(&mut self, d: Duration) {
        self.samples.push(d);
    }

    fn sorted(&self) -> Vec<Duration> {
        let mut s = self.samples.clone();
        s.sort();
        s
    }

    /// The median (mean of the two middle samples for an even count).
    pub fn median(&self) -> Duration {
        let s = self.sorted();
        match s.len() {
            0 => Duration::ZERO,
            n if n % 2 == 1 => s[n / 2],
            n => (s[n / 2 - 1] + s[n / 2]) / 2,
        }
    }

    /// The 90th percentile, nearest rank.
    pub fn p90(&self) -> Duration {
        let s = self.sorted();
        if s.is_empty() {
            return Duration::ZERO;
        }
        let rank = (s.len() * 9).div_ceil(10).max(1);
        s[rank - 1]
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "n": self.samples.len(),
            "median_ms": ms(self.median()),
            "p90_ms": ms(self.p90()),
            "samples_ms": self.samples.iter().map(|d| ms(*d)).collect::<Vec<_>>(),
        })
    }
}

/// What a comparison must achieve.
#[derive(Debug, Clone)]
pub enum Target {
    /// median(subject) / median(baseline) at most this.
    RatioAtMost(f64),
    /// median(subject) under this.
    MedianUnder(Duration),
    /// `items` / median(subject) over this many per second.
    RateOver { items: u64, per_second: f64 },
    /// (median(subject) - median(baseline)) / `commands` under `limit`: what
    /// airlock adds to each of the `commands` the subject runs.
    AddedPerCommandUnder { commands: u64, limit: Duration },
    /// Reported, no target.
    None,
}

/// One benchmark figure: airlock (subject) against its baseline.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub id: String,
    pub title: String,
    pub subject: Measure,
    pub baseline: Measure,
    /// Parts of the subject, or further reference points; shown, not judged.
    pub details: Vec<Measure>,
    /// Lines of extra facts (sizes, throughput).
    pub notes: Vec<String>,
    pub target: Target,
}

impl Comparison {
    pub fn ratio(&self) -> f64 {
        let b = self.baseline.median().as_secs_f64();
        if b == 0.0 {
            f64::NAN
        } else {
            self.subject.median().as_secs_f64() / b
        }
    }

    /// Overhead: median(subject) - median(baseline), in ms (may be negative).
    pub fn difference_ms(&self) -> f64 {
        ms(self.subject.median()) - ms(self.baseline.median())
    }

    /// [`Comparison::difference_ms`] spread over the subject's commands.
    pub fn added_per_command_ms(&self) -> Option<f64> {
        match self.target {
            Target::AddedPerCommandUnder { commands, .. } => {
                Some(self.difference_ms() / commands as f64)
            }
            _ => None,
        }
    }

    pub fn target_text(&self) -> String {
        match &self.target {
            Target::RatioAtMost(r) => format!("ratio <= {r:.2}x"),
            Target::MedianUnder(d) => format!("median < {}", fmt(*d)),
            Target::RateOver { per_second, .. } => format!("> {per_second:.0}/s"),
            Target::AddedPerCommandUnder { limit, .. } => {
                format!("< {} added per command", fmt(*limit))
            }
            Target::None => "none (reported)".into(),
        }
    }

    /// `Some(true)` met, `Some(false)` missed, `None` no target.
    pub fn met(&self) -> Option<bool> {
        match &self.target {
            Target::RatioAtMost(r) => Some(self.ratio() <= *r),
            Target::MedianUnder(d) => Some(self.subject.median() < *d),
            Target::RateOver { items, per_second } => Some(self.rate(*items) > *per_second),
            Target::AddedPerCommandUnder { limit, .. } => {
                Some(self.added_per_command_ms()? < ms(*limit))
            }
            Target::None => None,
        }
    }

    fn rate(&self, items: u64) -> f64 {
        items as f64 / self.subject.median().as_secs_f64()
    }

    pub fn status(&self) -> &'static str {
        match self.met() {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "-",
        }
    }

    pub fn print(&self) {
        println!("{}", self.title);
        let width = std::iter::once(&self.subject)
            .chain(std::iter::once(&self.baseline))
            .chain(self.details.iter())
            .map(|m| m.name.len() + 2)
            .max()
            .unwrap_or(10)
            .max(12);
        println!(
            "  {:<width$} {:>5} {:>11} {:>11}",
            "side", "n", "median", "p90"
        );
        let row = |label: &str, m: &Measure| {
            println!(
                "  {:<width$} {:>5} {:>11} {:>11}",
                label,
                m.samples.len(),
                fmt(m.median()),
                fmt(m.p90())
            );
        };
        row(&self.subject.name, &self.subject);
        row(&self.baseline.name, &self.baseline);
        for d in &self.details {
            row(&format!("  {}", d.name), d);
        }
        let (a, b) = (self.subject.median(), self.baseline.median());
        let difference = if a >= b {
            format!("+{}", fmt(a - b))
        } else {
            format!("-{}", fmt(b - a))
        };
        println!(
            "  ratio of medians {:.2}x, difference {difference}; target: {}; {}",
            self.ratio(),
            self.target_text(),
            self.status()
        );
        if let Target::RateOver { items, .. } = self.target {
            println!(
                "  rate: {:.0}/s over {items} items (baseline {:.0}/s)",
                self.rate(items),
                items as f64 / self.baseline.median().as_secs_f64()
            );
        }
        if let (Some(added), Target::AddedPerCommandUnder { commands, .. }) =
            (self.added_per_command_ms(), &self.target)
        {
            println!("  added per command: {added:.3} ms (difference / {commands})");
        }
        for n in &self.notes {
            println!("  {n}");
        }
        println!();
    }

    pub fn to_json(&self) -> Value {
        let rate = match self.target {
            Target::RateOver { items, .. } => Some(self.rate(items)),
            _ => None,
        };
        json!({
            "id": self.id,
            "title": self.title,
            "subject": self.subject.to_json(),
            "baseline": self.baseline.to_json(),
            "details": self.details.iter().map(Measure::to_json).collect::<Vec<_>>(),
            "ratio": self.ratio(),
            "difference_ms": self.difference_ms(),
            "rate_per_s": rate,
            "added_per_command_ms": self.added_per_command_ms(),
            "target": self.target_text(),
            "met": self.met(),
            "status": self.status(),
            "notes": self.notes,
        })
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A duration for people: µs under 1 ms, ms under 10 s.
pub fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.1} µs")
    } else if us < 10e6 {
        format!("{:.1} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}
