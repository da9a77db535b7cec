//! The machine-readable form of a deploy [`Report`]: what `deploy -o json` prints and what
//! `releasectl serve` answers, one shape for both (every item with its decisions and
//! verdict).

use serde::Serialize;

use super::Action;
use super::eligibility::Verdict;
use super::run::Report;
use crate::policy::Decision;

#[derive(Serialize)]
struct ItemView<'a> {
    environment: &'a str,
    project: String,
    release: ReleaseView<'a>,
    previous: Option<ReleaseView<'a>>,
    decisions: &'a [Decision],
    verdict: String,
}

#[derive(Serialize)]
struct ReleaseView<'a> {
    number: u64,
    commit: &'a str,
    digest: &'a str,
    aliases: Vec<&'a str>,
}

impl<'a> From<&'a crate::gitops::register::Entry> for ReleaseView<'a> {
    fn from(e: &'a crate::gitops::register::Entry) -> Self {
        Self {
            number: e.number,
            commit: e.commit.as_str(),
            digest: e.digest.as_str(),
            aliases: e.aliases.iter().map(|a| a.alias.as_str()).collect(),
        }
    }
}

/// `eligible`, `already deployed`, `skipped: …` or `refused: …`.
#[must_use]
pub fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::Proceed => "eligible".into(),
        Verdict::AlreadyDeployed => "already deployed".into(),
        Verdict::Skipped(why) => format!("skipped: {why}"),
        Verdict::Refused(r) => format!("refused: {}", r.join("; ")),
    }
}

/// One decision as the text views print it under its item (the CLI's own report and the one
/// a server answered): `  pass RULE required: …; actual: …`, marked when overridden.
#[must_use]
pub fn decision_line(
    pass: bool,
    rule: &str,
    required: &str,
    actual: &str,
    overridden: bool,
) -> String {
    format!(
        "  {} {rule:<17} required: {required}; actual: {actual}{}",
        if pass { "pass" } else { "FAIL" },
        if overridden { " (overridden)" } else { "" }
    )
}

/// The report as JSON: `action`, `result`, `commit` and `items` (each with its decisions).
#[must_use]
pub fn json(report: &Report) -> serde_json::Value {
    let items: Vec<ItemView<'_>> = report
        .judged
        .iter()
        .map(|(i, v)| ItemView {
            environment: i.env.as_str(),
            project: i.project_name(),
            release: (&i.target).into(),
            previous: i.current_entry.as_ref().map(Into::into),
            decisions: &i.decisions,
            verdict: verdict_text(v),
        })
        .collect();
    serde_json::json!({
        "action": report.action.name(),
        "result": report.result(),
        "commit": report.commit.map(|c| c.to_string()),
        "items": items,
    })
}

/// Whether a real run of a dry run's plan would be refused (for `--auto`: when no
/// environment would take the release).
#[must_use]
pub fn would_refuse(report: &Report) -> bool {
    let refused = |v: &Verdict| matches!(v, Verdict::Refused(_));
    if report.action == Action::Auto {
        !report.judged.is_empty() && report.judged.iter().all(|(_, v)| refused(v))
    } else {
        report.judged.iter().any(|(_, v)| refused(v))
    }
}
