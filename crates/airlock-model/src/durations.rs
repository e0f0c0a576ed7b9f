//! Durations as the model's files write them (`90s`, `5m`, or seconds).

use std::time::Duration;

use crate::diag::Diagnostics;

/// A whole number of seconds, or a duration (`"90s"`, `"5m"`).
pub(crate) fn seconds_or_duration(
    value: &toml::Spanned<toml::de::DeValue<'_>>,
) -> Option<Duration> {
    use toml::de::DeValue;
    match value.get_ref() {
        DeValue::Integer(i) => i.as_str().parse::<u64>().ok().map(Duration::from_secs),
        DeValue::String(s) => humantime::parse_duration(s).ok(),
        _ => None,
    }
}

pub(crate) fn parse_timeout(
    value: &toml::Spanned<toml::de::DeValue<'_>>,
    diags: &mut Diagnostics<'_>,
) -> Option<Duration> {
    let parsed = seconds_or_duration(value).filter(|d| !d.is_zero());
    if parsed.is_none() {
        diags.error(
            value.span(),
            "`timeout` must be a positive number of seconds or a duration",
            Some("write e.g. `timeout = 300` or `timeout = \"5m\"`".into()),
        );
    }
    parsed
}

/// Parses a duration like `90s`, `5m` or `1h 30m`.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration ({e}); write e.g. 90s or 10m"))
        .and_then(|d| {
            if d.is_zero() {
                Err("a time limit must be more than zero".into())
            } else {
                Ok(d)
            }
        })
}
