//! Machine-readable commit trailers (`Key: value` lines in the last paragraph), which
//! `history` and `check` read back.

/// The trailers of a commit message, in order (keys may repeat).
#[must_use]
pub fn parse(message: &str) -> Vec<(String, String)> {
    let message = message.trim_end();
    // A subject alone is not a trailer block, even when it looks like one ("Fix: typo").
    let Some((_, last)) = message.rsplit_once("\n\n") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in last.lines() {
        match line.split_once(": ") {
            Some((k, v))
                if !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                out.push((k.to_owned(), v.trim().to_owned()));
            }
            _ => return Vec::new(),
        }
    }
    out
}

/// The first value of `key`.
#[must_use]
pub fn get<'a>(trailers: &'a [(String, String)], key: &str) -> Option<&'a str> {
    trailers
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_are_read_from_the_last_paragraph_only() {
        let m = "Deploy x to prod: release 1\n\nPrevious release: none\nDeployed by: a\n\nRelease-Commit: abc\nAction: deploy\nEnvironment: dev\nEnvironment: prod\n";
        let t = parse(m);
        assert_eq!(get(&t, "Action"), Some("deploy"));
        assert_eq!(t.iter().filter(|(k, _)| k == "Environment").count(), 2);
        assert!(parse("Hand edit\n\nchanged the pointer by hand, sorry").is_empty());
        assert!(parse("subject only").is_empty());
    }
}
