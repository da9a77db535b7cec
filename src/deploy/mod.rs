//! Moving releases between environments (docs/design.md §7): plan → eligibility → execute.
//!
//! The three phases are separate pieces with their own tests: [`plan`] resolves what should
//! run and evaluates policy (and is all `--dry-run` does); [`eligibility`] decides whether a
//! commit should be made; [`execute`] writes pointers and builds the commit. The driver,
//! [`run`], runs them inside the GitOps transaction, so a lost push race runs all three
//! again on the new tip, because policy, approvals or pointers may have changed. A refusal
//! is a result ([`run::Ended::Refused`]) with every decision, not an error.

pub mod approve;
pub mod diff;
pub mod eligibility;
pub mod execute;
pub mod history;
pub mod plan;
pub mod record;
pub mod run;
pub mod status;
pub mod trailers;
pub mod view;
pub mod wait;

use std::fmt;

use crate::gitops::register::Entry;
use crate::gitops::{ProjectRef, ReleaseSelector};
use crate::policy::{self, Decision, EnvName};

/// What a person asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Deploy,
    /// `deploy --auto`: every `auto_deploy` environment that admits the release.
    Auto,
    Promote {
        from: EnvName,
    },
    Rollback {
        block: bool,
    },
    /// Several projects to one environment in one commit.
    Group,
    /// Lift a `rollback --block`.
    Unblock,
}

impl Action {
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Auto => "auto-deploy",
            Self::Promote { .. } => "promote",
            Self::Rollback { .. } => "rollback",
            Self::Group => "deploy-group",
            Self::Unblock => "unblock",
        }
    }
}

/// How the release to deploy is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// A release id as a person gives it (alias, number, commit prefix).
    Id(ReleaseSelector),
    /// The release running in another environment (`promote`).
    RunningIn(EnvName),
    /// The release before the current one in this environment's pointer history (`rollback`).
    Previous,
}

/// One project to one environment.
#[derive(Debug, Clone)]
pub struct Request {
    pub env: EnvName,
    pub project: ProjectRef,
    pub selector: Selector,
}

/// A failing check a person lets pass (`--override RULE`, needs a reason), recorded in the
/// commit's `Override:` trailers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Override {
    /// A policy rule, one of [`policy::RULES`].
    Rule(&'static str),
    /// A release blocked by `rollback --block` may return without `unblock`.
    Blocked,
    /// Deploy to an environment on `hold`.
    Hold,
}

impl Override {
    /// The policy rule this override lets pass, if it is one.
    #[must_use]
    pub fn rule(self) -> Option<&'static str> {
        match self {
            Self::Rule(r) => Some(r),
            Self::Blocked | Self::Hold => None,
        }
    }

    /// The names of the policy rules among `overrides`, as the evaluator takes them.
    #[must_use]
    pub fn rules(overrides: &[Self]) -> Vec<String> {
        overrides
            .iter()
            .filter_map(|o| o.rule())
            .map(str::to_owned)
            .collect()
    }
}

impl std::str::FromStr for Override {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "blocked" => return Ok(Self::Blocked),
            "hold" => return Ok(Self::Hold),
            // The singular reads naturally on the command line: `--override window`.
            "window" => return Ok(Self::Rule("windows")),
            _ => {}
        }
        policy::RULES
            .iter()
            .find(|r| **r == s)
            .map(|r| Self::Rule(r))
            .ok_or_else(|| {
                format!(
                    "unknown rule {:?}: expected one of {}, hold, blocked",
                    crate::text::excerpt(s),
                    policy::RULES.join(", ")
                )
            })
    }
}

impl fmt::Display for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rule(r) => f.write_str(r),
            Self::Blocked => f.write_str("blocked"),
            Self::Hold => f.write_str("hold"),
        }
    }
}

/// A pointer the plan read changed on the remote before the write landed: an explicit
/// `deploy`, `promote`, `rollback`, `unblock` or group writes nothing and says who moved it
/// (exit 6), because the person asked for a change against a state that no longer holds.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "conflict: {path} changed while this {action} was being written: planned on release {planned}, \
     found release {found}, changed by commit {commit} by {author}; nothing was written: look at \
     `releasectl history` and run it again if it still makes sense"
)]
pub struct Conflict {
    pub action: &'static str,
    pub path: String,
    pub planned: String,
    pub found: String,
    pub commit: String,
    pub author: String,
}

crate::exit_class!(Conflict => Conflict);

/// `42 (v1.2.3)`, or `none`.
#[must_use]
pub fn label(entry: Option<&Entry>) -> String {
    entry.map_or_else(|| "none".to_owned(), Entry::label)
}

/// The failing decisions, for a refusal.
#[must_use]
pub fn failing(decisions: &[Decision]) -> Vec<&Decision> {
    decisions.iter().filter(|d| !d.pass).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_name_a_policy_rule_or_blocked() {
        assert_eq!("blocked".parse::<Override>(), Ok(Override::Blocked));
        assert_eq!("soak".parse::<Override>(), Ok(Override::Rule("soak")));
        let e = "everything".parse::<Override>().unwrap_err();
        assert!(e.contains("everything") && e.contains("blocked"), "{e}");
        assert_eq!(
            Override::rules(&[Override::Blocked, Override::Rule("windows")]),
            ["windows"]
        );
        assert_eq!(Override::Blocked.to_string(), "blocked");
        assert_eq!("hold".parse::<Override>(), Ok(Override::Hold));
        assert_eq!("window".parse::<Override>(), Ok(Override::Rule("windows")));
        assert_eq!(Override::Hold.to_string(), "hold");
    }
}
