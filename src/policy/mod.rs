//! Environment policy, `environments.yaml` (docs/design.md §6): the model.
//!
//! [`parse`] (in `parse.rs`) is strict: an unknown key, a bad glob, duration or window, or a
//! `requires` naming an unknown environment is an error naming the file, the key and the value
//! (exit 2), since a policy typo must never silently allow a deploy. [`evaluate`] (in
//! `evaluate.rs`) is pure: it takes what the repository says (triggers, pointer history,
//! approvals) and a clock, and yields one [`Decision`] per rule with what was required, what
//! was found, and whether it passed. Deployment windows live in `window.rs`, the promotion
//! path (`promote` along `requires`) in `path.rs`.

use std::fmt;

use jiff::Timestamp;
use serde::Serialize;

use crate::format::TriggerType;
use crate::yaml::FieldError;

mod evaluate;
pub mod outcomes;
mod parse;
mod path;
mod window;

pub use evaluate::{apply_overrides, evaluate};
pub use parse::parse;
pub use path::{RULE as PROMOTION_PATH, promotion_path};
pub use window::Window;

pub const FILE: &str = "environments.yaml";

/// Why a policy file was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("{file}: not valid YAML: {reason}")]
    Yaml { file: String, reason: String },
    #[error("{file}: expected one YAML document holding environments, found {count}")]
    DocumentCount { file: String, count: usize },
    #[error(transparent)]
    Field(#[from] FieldError),
}

/// An environment name: a single path segment of `[a-z0-9]+([._-][a-z0-9]+)*`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct EnvName(String);

impl EnvName {
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        crate::ids::is_name_component(s).then(|| Self(s.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EnvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for EnvName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| {
            format!("invalid environment {s:?}: expected [a-z0-9]+([._-][a-z0-9]+)*")
        })
    }
}

/// An anchored glob: `*` matches any run of characters (including `/`), `?` one character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    fn parse(s: &str) -> Option<Self> {
        // Character classes and escapes are not supported: refuse them rather than guess.
        (!s.is_empty() && !s.contains(['[', ']', '{', '}', '\\'])).then(|| Self(s.to_owned()))
    }

    #[must_use]
    pub fn matches(&self, text: &str) -> bool {
        fn go(p: &[u8], t: &[u8]) -> bool {
            match (p.first(), t.first()) {
                (None, None) => true,
                (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
                (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
                (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
                _ => false,
            }
        }
        go(self.0.as_bytes(), text.as_bytes())
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approver {
    pub id: String,
    /// An SSH public key (`ssh-ed25519 AAAA…`), when approvals must be signed.
    pub key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRule {
    pub min: usize,
    pub ttl: jiff::SignedDuration,
    pub approvers: Vec<Approver>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    pub name: EnvName,
    pub allowed_triggers: Vec<TriggerType>,
    pub allowed_branches: Vec<Glob>,
    pub auto_deploy: bool,
    pub requires_approval: bool,
    pub approvals: ApprovalRule,
    pub requires: Vec<EnvName>,
    pub soak: Option<jiff::SignedDuration>,
    pub windows: Vec<Window>,
    /// Why the environment is on hold; no deploys while set.
    pub hold: Option<String>,
    /// The required environments where the release must also have been healthy
    /// (`requires: [{environment: E, healthy: true}]`).
    pub healthy: Vec<EnvName>,
    /// `retry_limit: N`: a release whose deploys here failed N times is refused.
    pub retry_limit: Option<u32>,
    /// `on_failure: rollback`: a `--wait` that sees the release fail rolls it back and blocks it.
    pub on_failure_rollback: bool,
    /// Who may deploy here through `releasectl serve` (identities or claim globs); `None`:
    /// any authenticated identity.
    pub deployers: Option<Vec<Glob>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// In progression order: each environment after those it requires.
    pub environments: Vec<Environment>,
    /// Who may create (register) releases through `releasectl serve`; `None`: any
    /// authenticated identity.
    pub release_creators: Option<Vec<Glob>>,
    /// `commit_signers`: the SSH keys commits that touch pointers, registers or approvals
    /// must be signed with (`check` reports the others); empty: commits need no signature.
    pub commit_signers: Vec<Approver>,
}

impl Policy {
    #[must_use]
    pub fn get(&self, name: &EnvName) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == *name)
    }
}

/// One rule's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub rule: &'static str,
    pub required: String,
    pub actual: String,
    pub pass: bool,
    /// Passed only because of `--override`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub overridden: bool,
}

impl Decision {
    fn new(
        rule: &'static str,
        required: impl Into<String>,
        actual: impl Into<String>,
        pass: bool,
    ) -> Self {
        Self {
            rule,
            required: required.into(),
            actual: actual.into(),
            pass,
            overridden: false,
        }
    }
}

/// A trigger as the register records it.
#[derive(Debug, Clone)]
pub struct TriggerFact {
    pub kind: Option<TriggerType>,
    pub branch: Option<String>,
}

/// The release's most recent continuous stay in an environment, from that pointer's history.
#[derive(Debug, Clone)]
pub struct Presence {
    pub env: EnvName,
    /// When the most recent continuous stay began (`None`: never there).
    pub since: Option<Timestamp>,
    pub running_now: bool,
    /// How that stay ended, when it is over.
    pub ended: Option<Departure>,
    /// The release is blocked there by `rollback --block`.
    pub blocked: bool,
}

/// How a release left an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departure {
    pub at: Timestamp,
    /// Replaced by a forward deploy of a newer (higher-numbered) release; anything else (a
    /// rollback, an older release, a deleted pointer) is leaving it behind.
    pub forward: bool,
    /// What replaced it, for people (`release 5 (v1.2.0)`, `no release`).
    pub by: String,
}

/// An approval, judged for digest, environment, expiry and signature.
#[derive(Debug, Clone)]
pub struct ApprovalFact {
    pub approver: String,
    pub valid: bool,
    /// Why it does not count, when it does not.
    pub problem: Option<String>,
}

/// Everything evaluation needs to know about one release and one environment.
pub struct Facts<'a> {
    pub triggers: &'a [TriggerFact],
    pub presence: &'a [Presence],
    pub approvals: &'a [ApprovalFact],
    pub now: Timestamp,
}

/// The rule names `--override` accepts.
pub const RULES: &[&str] = &[
    "allowed_triggers",
    "allowed_branches",
    "approvals",
    "requires",
    "soak",
    "windows",
    path::RULE,
    outcomes::HEALTHY,
    outcomes::RETRY_LIMIT,
];

crate::exit_class!(PolicyError => Usage);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_are_anchored_at_both_ends() {
        let g = |s: &str| Glob::parse(s).unwrap();
        assert!(g("main").matches("main"));
        for no in ["main2", "feature/main", "xmain", "mai", ""] {
            assert!(!g("main").matches(no), "main matched {no}");
        }
        assert!(g("release/*").matches("release/1.2"));
        assert!(g("release/*").matches("release/"));
        assert!(!g("release/*").matches("release"));
        assert!(!g("release/*").matches("xrelease/1"));
        assert!(g("*").matches("feature/login"));
        assert!(g("v?").matches("v1") && !g("v?").matches("v10"));
        for bad in ["", "release/[0-9]*", "{a,b}", "a\\*"] {
            assert!(Glob::parse(bad).is_none(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn environment_names_are_single_lower_case_segments() {
        assert_eq!(EnvName::parse("prod-eu").unwrap().as_str(), "prod-eu");
        for bad in ["Prod", "a/b", "", "-x"] {
            assert!(EnvName::parse(bad).is_none(), "{bad:?}");
            assert!(
                bad.parse::<EnvName>()
                    .unwrap_err()
                    .contains("invalid environment")
            );
        }
    }
}
