//! HTML building blocks of the dashboard: escaping, the page frame with its embedded style
//! sheet, and small helpers for tables and forms.
//!
//! Invariants: every value that reaches a page passes through [`esc`] (text and attribute
//! values alike); the frame loads nothing from elsewhere (no script, no CDN, one inline style
//! sheet), and the Content-Security-Policy sent with it ([`CSP`]) forbids scripts altogether.

use std::fmt::Write as _;

/// What every dashboard page is served with: no scripts, no outside resources, forms post
/// only to this server, no framing.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}\
header{background:#1d3557;color:#fff;padding:.6em 1.2em;display:flex;gap:1.5em;align-items:center}\
header a{color:#fff;text-decoration:none;font-weight:600}header .who{margin-left:auto}\
header form{display:inline}main{padding:1em 1.2em}\
table{border-collapse:collapse;background:#fff;margin:.5em 0 1.2em}\
th,td{border:1px solid #d0d5dc;padding:.35em .6em;text-align:left;vertical-align:top}\
th{background:#e9edf2}.muted{color:#68717d}.num{font-weight:700}\
.badge{display:inline-block;border-radius:.6em;padding:0 .5em;margin:0 .15em;font-size:.85em}\
.blocked,.refused,.fail{background:#fde2e1;color:#9b1c1c}.held,.pending{background:#fff3cd;color:#7a5b00}\
.drift{background:#e0e7ff;color:#2c3e9e}.pass,.ok{background:#dcfce7;color:#166534}\
pre.diff{background:#fff;border:1px solid #d0d5dc;padding:.6em;overflow:auto}\
.add{color:#166534}.del{color:#9b1c1c}.hunk{color:#2c3e9e}\
form.action{background:#fff;border:1px solid #d0d5dc;padding:.6em;margin:.4em 0;display:inline-block}\
label{margin-right:.6em}input,select,button{font:inherit}.error{color:#9b1c1c;font-weight:600}";

/// `text` escaped for HTML text and (double-quoted) attribute values.
#[must_use]
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The signed-in user as the frame shows them: the identity and the CSRF token of their forms.
pub struct Viewer<'a> {
    pub actor: Option<&'a str>,
    pub csrf: Option<&'a str>,
}

/// A whole page: `title` (escaped here) and `body` (already HTML).
#[must_use]
pub fn frame(title: &str, viewer: &Viewer<'_>, body: &str) -> String {
    let who = match (viewer.actor, viewer.csrf) {
        (Some(actor), Some(csrf)) => format!(
            "<span class=\"who\">signed in as <b id=\"actor\">{}</b> <form method=\"post\" action=\"/ui/logout\">{}<button>Sign out</button></form></span>",
            esc(actor),
            csrf_field(csrf)
        ),
        _ => "<span class=\"who\"><a href=\"/ui/login\">Sign in</a></span>".to_owned(),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} · releasectl</title>\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{STYLE}</style></head>\
<body><header><a href=\"/\">releasectl</a><span>{t}</span>{who}</header><main>{body}</main></body></html>\n",
        t = esc(title)
    )
}

/// The hidden field every form of a signed-in user carries.
#[must_use]
pub fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(csrf)
    )
}

/// A hidden field `name` = `value`.
#[must_use]
pub fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        esc(name),
        esc(value)
    )
}

/// A badge of class `class` reading `text`.
#[must_use]
pub fn badge(class: &str, text: &str) -> String {
    format!("<span class=\"badge {}\">{}</span>", esc(class), esc(text))
}

/// A unified diff, its lines coloured by their first character.
#[must_use]
pub fn diff_block(diff: &str) -> String {
    let mut out = String::from("<pre class=\"diff\">");
    for line in diff.lines() {
        let class = match line.chars().next() {
            Some('+') if !line.starts_with("+++") => "add",
            Some('-') if !line.starts_with("---") => "del",
            Some('@') => "hunk",
            _ => "",
        };
        let _ = writeln!(out, "<span class=\"{class}\">{}</span>", esc(line));
    }
    out.push_str("</pre>");
    out
}

/// How long ago `at` (RFC 3339) was, from `now`: `5m`, `3h`, `2d`; `None` when unparsable.
#[must_use]
pub fn age(at: &str, now: jiff::Timestamp) -> Option<String> {
    let then: jiff::Timestamp = at.parse().ok()?;
    let secs = now.as_second().saturating_sub(then.as_second()).max(0);
    Some(match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_neutralises_markup_quotes_and_controls() {
        assert_eq!(
            esc("<script>alert(\"x\")</script>&'"),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
        assert_eq!(esc("a\u{1b}[31m"), "a\u{fffd}[31m");
        assert_eq!(
            crate::text::url_escaped("company/mono repo?x=\"1\""),
            "company/mono%20repo%3Fx%3D%221%22"
        );
    }

    #[test]
    fn diff_lines_are_classed_and_escaped() {
        let html = diff_block("--- a\n+++ b\n@@ -1 +1 @@\n-<old>\n+new");
        assert!(
            html.contains("<span class=\"del\">-&lt;old&gt;</span>"),
            "{html}"
        );
        assert!(html.contains("<span class=\"add\">+new</span>"), "{html}");
        assert!(html.contains("<span class=\"\">+++ b</span>"), "{html}");
    }

    #[test]
    fn ages_round_down_to_the_largest_unit() {
        let now: jiff::Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        assert_eq!(age("2026-11-23T09:58:00Z", now).as_deref(), Some("2m"));
        assert_eq!(age("2026-11-21T09:00:00Z", now).as_deref(), Some("2d"));
        assert_eq!(age("yesterday", now), None);
    }
}
