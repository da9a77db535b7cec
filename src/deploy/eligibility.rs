//! Phase 2, eligibility: should a commit be made? Already deployed → success without a
//! commit (unless the promotion path fails: a promote to itself is refused); a held environment (unless `--override hold`), a blocked release (unless
//! `--override blocked`) or a failing decision → refuse.

use super::Override;
use super::plan::Item;
use crate::policy::{Environment, PROMOTION_PATH};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Proceed,
    /// The pointer already names this release (commit and digest): nothing to do.
    AlreadyDeployed,
    /// `--auto` leaves a newer release in place: nothing to do there.
    Skipped(String),
    Refused(Vec<String>),
}

/// Judges one planned item. [`Override::Blocked`] lets a blocked release return.
#[must_use]
pub fn judge(item: &Item, env: &Environment, overrides: &[Override]) -> Verdict {
    // `promote --from X --to X` finds its release in place, but it is off the path: refused.
    let off_path = super::failing(&item.decisions)
        .iter()
        .any(|d| d.rule == PROMOTION_PATH);
    if !off_path
        && let Some(p) = &item.current
        && p.id.commit == item.target.commit
        && p.digest.as_ref() == Some(&item.target.digest)
    {
        return Verdict::AlreadyDeployed;
    }
    let mut reasons = Vec::new();
    if let Some(why) = env
        .hold
        .as_ref()
        .filter(|_| !overrides.contains(&Override::Hold))
    {
        reasons.push(format!("environment {} is on hold: {why}", env.name));
    }
    let blocked = item
        .current
        .as_ref()
        .is_some_and(|p| p.blocked().iter().any(|c| c == item.target.commit.as_str()));
    if blocked && !overrides.contains(&Override::Blocked) {
        reasons.push(format!(
            "release {} of {} is blocked in {} by a rollback: run `releasectl unblock {} {} {}` first",
            item.target.label(),
            item.project_name(),
            env.name,
            env.name,
            item.project_name(),
            item.target.number
        ));
    }
    for d in super::failing(&item.decisions) {
        reasons.push(format!(
            "{}: required {}, actual {}",
            d.rule, d.required, d.actual
        ));
    }
    if reasons.is_empty() {
        Verdict::Proceed
    } else {
        Verdict::Refused(reasons)
    }
}
