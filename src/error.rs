//! Old homes of two leaf helpers, kept while parallel branches still import them from here.

pub use crate::exit::InvalidInput;

/// `s` made safe for a one-line message: control characters (newlines included) escaped,
/// at most `max` characters kept. Hostile input must not forge extra log lines.
#[must_use]
pub fn printable(s: &str, max: usize) -> String {
    let escaped: String = s.escape_debug().collect();
    if escaped.chars().count() <= max {
        escaped
    } else {
        let mut out: String = escaped.chars().take(max.saturating_sub(3)).collect();
        out.push_str("...");
        out
    }
}
