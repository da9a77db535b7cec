//! Moving releases between environments (DESIGN.md §7): plan → eligibility → execute.
//!
//! The three phases are separate pieces with their own tests: [`plan`] resolves what should
//! run and evaluates policy (and is all `--dry-run` does); [`eligibility`] decides whether a
//! commit should be made; [`execute`] writes pointers and builds the commit. The driver in
//! `cmd::deploy` runs them against the fetched tip, and on a lost push race runs all three
//! again on the new tip, because policy, approvals or pointers may have changed.

pub mod eligibility;
pub mod execute;
pub mod plan;
pub mod trailers;

use crate::gitops::register::Entry;
use crate::policy::{Decision, EnvName};

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
    Id(String),
    /// The release running in another environment (`promote`).
    RunningIn(EnvName),
    /// The release before the current one in this environment's pointer history (`rollback`).
    Previous,
}

/// One project to one environment.
#[derive(Debug, Clone)]
pub struct Request {
    pub env: EnvName,
    pub project: String,
    pub selector: Selector,
}

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
