//! The one duration grammar of the program: `--timeout`, policy `soak` and approval `ttl`.
//!
//! A duration is a run of `<digits><unit>` parts with units `d`, `h`, `m`, `s`, `ms`, each at
//! most once and largest first (`1d12h`, `1h30m`, `1500ms`, `45s`, `7d`), or a bare number of
//! seconds (`45`). Nothing else is accepted: no signs, fractions, spaces inside or other units,
//! so a typo is an error naming the value rather than a guess. [`human`] prints durations in
//! the same grammar.

use std::fmt::Write as _;
use std::time::Duration;

/// What [`parse`] accepts, for error messages.
pub const GRAMMAR: &str = "a number with units d, h, m, s or ms, largest first, like 45s, 1500ms, 2m, 1h30m or 7d (a bare number is seconds)";

/// A text that is not a duration of [`GRAMMAR`].
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid duration {value}: expected {GRAMMAR}")]
pub struct DurationError {
    /// The refused text, quoted, escaped and truncated.
    pub value: String,
}

/// Units, largest first, with their length in milliseconds.
const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses a duration of [`GRAMMAR`]; surrounding whitespace is ignored.
///
/// # Errors
///
/// Anything else, or a duration too large to represent.
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    let refuse = || DurationError {
        value: format!("\"{}\"", crate::error::printable(s, 80)),
    };
    let text = s.trim();
    if text.is_empty() {
        return Err(refuse());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map(Duration::from_secs).map_err(|_| refuse());
    }
    let mut millis: u64 = 0;
    // Index into UNITS of the next unit allowed: each unit once, largest first.
    let mut next_unit = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let letters = rest[digits..]
            .find(|c: char| c.is_ascii_digit())
            .map_or(rest.len(), |n| n + digits);
        let (number, unit) = (&rest[..digits], &rest[digits..letters]);
        let n: u64 = number.parse().map_err(|_| refuse())?;
        let offset = UNITS[next_unit..]
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(refuse)?;
        let (_, scale) = UNITS[next_unit + offset];
        next_unit += offset + 1;
        millis = n
            .checked_mul(scale)
            .and_then(|v| millis.checked_add(v))
            .ok_or_else(refuse)?;
        rest = &rest[letters..];
    }
    Ok(Duration::from_millis(millis))
}

/// [`parse`], as a signed duration (for arithmetic with timestamps).
///
/// # Errors
///
/// As [`parse`].
pub fn parse_signed(s: &str) -> Result<jiff::SignedDuration, DurationError> {
    let d = parse(s)?;
    jiff::SignedDuration::try_from(d).map_err(|_| DurationError {
        value: format!("\"{}\"", crate::error::printable(s, 80)),
    })
}

/// Prints a duration in whole seconds, largest unit first: `1h30m`, `1d1s`, `0s`. Negative
/// durations print as `0s`; milliseconds are dropped.
#[must_use]
pub fn human(d: jiff::SignedDuration) -> String {
    let s = d.as_secs().max(0);
    let (days, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    let mut out = String::new();
    for (n, u) in [(days, "d"), (h, "h"), (m, "m"), (sec, "s")] {
        if n > 0 {
            let _ = write!(out, "{n}{u}");
        }
    }
    if out.is_empty() { "0s".into() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn single_and_compound_units_parse() {
        assert_eq!(parse("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1500ms"), Ok(ms(1500)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1d12h"), Ok(Duration::from_secs(36 * 3600)));
        assert_eq!(parse("1m30s250ms"), Ok(ms(90_250)));
        assert_eq!(parse(" 30m "), Ok(Duration::from_secs(1800)));
    }

    #[test]
    fn a_bare_number_is_seconds() {
        assert_eq!(parse("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn anything_else_is_refused_naming_the_value_and_the_grammar() {
        for bad in [
            "",
            "m",
            "1w",
            "30 m",
            "-5m",
            "1.5h",
            "30m1h",
            "1h1h",
            "1hm",
            "h1",
            "5 minutes",
            "99999999999999999999d",
            "9999999999999999d",
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(e.to_string().contains(GRAMMAR), "{e}");
            assert!(e.value.contains(bad.trim()), "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_hostile_value_cannot_add_lines_to_the_message() {
        let e = parse("1h\nreleasectl: all good").unwrap_err();
        assert_eq!(e.to_string().lines().count(), 1, "{e}");
    }

    #[test]
    fn the_signed_form_agrees_with_the_unsigned_one() {
        assert_eq!(
            parse_signed("1h30m"),
            Ok(jiff::SignedDuration::from_mins(90))
        );
        assert_eq!(
            parse_signed("1500ms"),
            Ok(jiff::SignedDuration::from_millis(1500))
        );
        assert!(parse_signed("1x").is_err());
    }

    #[test]
    fn human_durations_read_naturally_and_parse_back() {
        assert_eq!(human(jiff::SignedDuration::from_secs(0)), "0s");
        assert_eq!(human(jiff::SignedDuration::from_secs(5400)), "1h30m");
        assert_eq!(human(jiff::SignedDuration::from_secs(86_401)), "1d1s");
        assert_eq!(human(jiff::SignedDuration::from_secs(-5)), "0s");
        for secs in [1, 59, 61, 3599, 3661, 90_061] {
            let d = jiff::SignedDuration::from_secs(secs);
            assert_eq!(parse_signed(&human(d)), Ok(d), "{secs}");
        }
    }
}
