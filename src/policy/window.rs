//! Deployment windows: `{allow: "Mon-Thu 09:00-16:00", tz: Europe/Berlin}` or `{deny: …}`.
//!
//! A window is a set of weekdays and a time range in an IANA time zone (UTC when not given),
//! end exclusive; a range whose end is before its start runs past midnight and belongs to the
//! day it starts on. Parsing refuses anything else, naming the field and the value.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::yaml::{FieldError, Node};

const WINDOW_KEYS: &[&str] = &["allow", "deny", "tz"];
const SPEC: &str = "DAYS HH:MM-HH:MM, e.g. \"Mon-Thu 09:00-16:00\" or \"Sat,Sun 00:00-24:00\"";
const TZ: &str = "an IANA time zone like Europe/Berlin";

/// A weekday/time range in a time zone: `Mon-Thu 09:00-16:00`.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub allow: bool,
    pub spec: String,
    /// Weekdays as 1 (Mon) ..= 7 (Sun).
    pub days: Vec<i8>,
    /// Minutes after midnight, `end` exclusive; `end < start` wraps past midnight.
    pub start: u16,
    pub end: u16,
    pub tz_name: String,
    pub tz: TimeZone,
}

impl Window {
    /// Whether `now` falls inside the window.
    #[must_use]
    pub fn contains(&self, now: Timestamp) -> bool {
        let local = now.to_zoned(self.tz.clone());
        let day = local.weekday().to_monday_one_offset();
        let minute =
            u16::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute())).unwrap_or(0);
        if self.start <= self.end {
            self.days.contains(&day) && (self.start..self.end).contains(&minute)
        } else {
            // Over midnight: the part after midnight belongs to the previous day's window.
            let prev = if day == 1 { 7 } else { day - 1 };
            (self.days.contains(&day) && minute >= self.start)
                || (self.days.contains(&prev) && minute < self.end)
        }
    }
}

/// Parses one item of `windows`.
pub(super) fn parse(node: &Node<'_>) -> Result<Window, FieldError> {
    let m = node.mapping(WINDOW_KEYS)?;
    let (allow, spec_node) = match (m.get("allow"), m.get("deny")) {
        (Some(a), None) => (true, a),
        (None, Some(d)) => (false, d),
        _ => {
            return Err(node.invalid(
                "exactly one of allow or deny, e.g. {allow: \"Mon-Thu 09:00-16:00\", tz: Europe/Berlin}",
            ));
        }
    };
    let spec = spec_node.str(SPEC)?;
    let bad = || spec_node.invalid(SPEC);
    let (days, times) = spec.split_once(' ').ok_or_else(bad)?;
    let days = parse_days(days).ok_or_else(bad)?;
    let (start, end) = times.split_once('-').ok_or_else(bad)?;
    let (start, end) = (
        parse_clock(start).ok_or_else(bad)?,
        parse_clock(end).ok_or_else(bad)?,
    );
    if start == end {
        return Err(bad());
    }
    let tz_node = m.get("tz");
    let tz_name = tz_node
        .as_ref()
        .map(|n| n.str(TZ))
        .transpose()?
        .unwrap_or("UTC");
    let tz = jiff::tz::db().get(tz_name).map_err(|_| {
        tz_node
            .as_ref()
            .map_or_else(|| node.invalid(TZ), |n| n.invalid(TZ))
    })?;
    Ok(Window {
        allow,
        spec: spec.to_owned(),
        days,
        start,
        end,
        tz_name: tz_name.to_owned(),
        tz,
    })
}

/// `HH:MM` as minutes after midnight; `24:00` is the end of the day.
fn parse_clock(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && s.len() == 5 || h == 24 && m == 0).then_some(h * 60 + m)
}

/// `Mon-Thu`, `Sat,Sun`, `Fri-Mon` (wrapping) as weekdays 1 (Mon) ..= 7 (Sun).
fn parse_days(s: &str) -> Option<Vec<i8>> {
    const NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let day = |d: &str| {
        NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(d))
            .and_then(|i| i8::try_from(i + 1).ok())
    };
    let mut out = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                let mut d = a;
                loop {
                    out.push(d);
                    if d == b {
                        break;
                    }
                    d = if d == 7 { 1 } else { d + 1 };
                }
            }
            None => out.push(day(part)?),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("RFC 3339")
    }

    fn window(yaml: &str) -> Result<Window, FieldError> {
        let v = crate::yaml::documents(yaml.as_bytes()).unwrap().remove(0);
        let node = Node::root("environments.yaml", &v);
        parse(&node)
    }

    #[test]
    fn windows_honour_the_time_zone_the_weekday_and_midnight() {
        let w = window("{allow: \"Mon-Thu 09:00-16:00\", tz: Europe/Berlin}").unwrap();
        assert!(w.contains(ts("2026-11-23T08:00:00Z"))); // Mon 09:00 CET
        assert!(!w.contains(ts("2026-11-23T07:59:00Z")));
        assert!(!w.contains(ts("2026-11-23T15:00:00Z"))); // 16:00: end is exclusive
        assert!(w.contains(ts("2026-07-06T07:30:00Z"))); // Mon 09:30 CEST
        assert!(!w.contains(ts("2026-11-27T10:00:00Z"))); // Friday
        let w = window("{deny: \"Fri 22:00-06:00\"}").unwrap();
        assert_eq!(w.tz_name, "UTC");
        assert!(w.contains(ts("2026-11-27T22:00:00Z"))); // Fri 22:00
        assert!(w.contains(ts("2026-11-28T05:59:00Z"))); // Sat 05:59, Friday's night
        assert!(!w.contains(ts("2026-11-28T06:00:00Z")));
        assert!(!w.contains(ts("2026-11-28T22:30:00Z"))); // Saturday night is not Friday's
        let w = window("{allow: \"Sun 23:00-01:00\"}").unwrap();
        assert!(w.contains(ts("2026-11-30T00:30:00Z"))); // Mon 00:30
        let w = window("{deny: \"Sat,Sun 00:00-24:00\"}").unwrap();
        assert!(w.contains(ts("2026-11-29T23:59:00Z")));
        assert!(!w.contains(ts("2026-11-30T00:00:00Z")));
    }

    #[test]
    fn day_ranges_wrap_over_the_week_end() {
        let w = window("{allow: \"Fri-Mon 00:00-24:00\"}").unwrap();
        assert_eq!(w.days, [5, 6, 7, 1]);
        assert_eq!((w.start, w.end), (0, 1440));
    }

    #[test]
    fn bad_windows_name_the_field_and_the_value() {
        let field = |yaml: &str| {
            let e = window(yaml).unwrap_err();
            (e.field().to_owned(), e.to_string())
        };
        for spec in [
            "Mon-Fri 9-17",
            "Fry 00:00-24:00",
            "Mon 09:00-09:00",
            "Mon 09:00-25:00",
            "Mon09:00-10:00",
            "Mon 9:00-10:00",
        ] {
            let (f, m) = field(&format!("{{allow: \"{spec}\"}}"));
            assert_eq!(f, "allow", "{spec}");
            assert!(
                m.contains(&format!("\"{spec}\"")) && m.contains("DAYS HH:MM"),
                "{m}"
            );
        }
        let (f, m) = field("{allow: \"Mon 09:00-10:00\", tz: Mars/Olympus}");
        assert_eq!(f, "tz");
        assert!(m.contains("\"Mars/Olympus\"") && m.contains("IANA"), "{m}");
        let (f, _) = field("{allow: \"Mon 09:00-10:00\", deny: \"Tue 09:00-10:00\"}");
        assert_eq!(f, "(document)");
        let (f, _) = field("{tz: UTC}");
        assert_eq!(f, "(document)");
        let (f, m) = field("{allow: \"Mon 09:00-10:00\", tzz: UTC}");
        assert_eq!(f, "tzz");
        assert!(m.contains("unknown field"), "{m}");
    }
}
