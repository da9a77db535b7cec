//! Untrusted text made safe for a one-line message.
//!
//! Values that came from an image, a registry or a file may hold newlines (a forged second
//! `error:` line), ANSI escapes, or megabytes. Every such value goes through [`printable`]
//! before it reaches a message. A leaf: imports nothing from the crate.

use std::fmt::Write as _;

/// How many characters of an untrusted value a message keeps.
pub const EXCERPT: usize = 200;

/// `s` with every control character escaped (newlines and ESC included) and at most `max`
/// characters kept; a longer value ends in `…(N bytes)`, N being the value's full length.
#[must_use]
pub fn printable(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut kept = 0;
    for c in s.chars() {
        let piece: String = if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
            c.escape_default().collect()
        } else if c == '\\' {
            "\\\\".into()
        } else {
            c.into()
        };
        let n = piece.chars().count();
        if kept + n > max {
            let _ = write!(out, "…({} bytes)", s.len());
            return out;
        }
        kept += n;
        out.push_str(&piece);
    }
    out
}

/// [`printable`] with the default excerpt length.
#[must_use]
pub fn excerpt(s: &str) -> String {
    printable(s, EXCERPT)
}

/// `text` with every byte but `[A-Za-z0-9._~/-]` written `%XX`: a path or query value in a
/// URL (slashes kept, as `{repo}` may hold them).
#[must_use]
pub fn url_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_escapes_cannot_forge_a_line() {
        let s = printable("a\nerror: forged\u{1b}[31m", 100);
        assert!(!s.contains('\n') && !s.contains('\u{1b}'), "{s}");
        assert!(s.contains("\\n") && s.contains("\\u{1b}"), "{s}");
    }

    #[test]
    fn long_values_are_cut_with_their_length() {
        let s = printable(&"x".repeat(5_000_000), 10);
        assert_eq!(s, format!("xxxxxxxxxx…({} bytes)", 5_000_000));
    }

    #[test]
    fn short_values_are_kept() {
        assert_eq!(printable("auth-service", 100), "auth-service");
    }
}
