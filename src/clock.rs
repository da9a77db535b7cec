//! How releasectl writes times: RFC 3339 in UTC with whole seconds (`2026-11-22T10:30:00Z`),
//! in pointers, approvals, registers and reports alike. A leaf.

use jiff::Timestamp;

/// `t` as RFC 3339 in UTC with whole seconds: `2026-11-22T10:30:00Z`.
#[must_use]
pub fn format(t: Timestamp) -> String {
    Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_in_utc_with_whole_seconds() {
        let t: Timestamp = "2026-11-22T11:30:00.5+01:00".parse().unwrap();
        assert_eq!(format(t), "2026-11-22T10:30:00Z");
    }
}
