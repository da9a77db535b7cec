//! The rules that read how deploys went (docs/policy.md, "Outcomes"): `requires` with
//! `healthy: true` and `retry_limit`. Pure, as `evaluate`: the outcomes `--wait` recorded
//! (git notes, docs/design.md §7) come in as [`OutcomeFacts`], decisions come out, in the
//! order `healthy` per required environment, then `retry_limit`.

use super::{Decision, EnvName, Environment};

/// The rule of `requires: [{environment: E, healthy: true}]` (`--override healthy`).
pub const HEALTHY: &str = "healthy";
/// The rule of `retry_limit: N` (`--override retry_limit`).
pub const RETRY_LIMIT: &str = "retry_limit";

/// What the recorded outcomes say about one release.
#[derive(Debug, Clone, Default)]
pub struct OutcomeFacts {
    /// Environments where a `--wait` recorded the release succeeded.
    pub healthy_in: Vec<EnvName>,
    /// How many deploys of the release to the environment being judged ended failed or
    /// timed out.
    pub failures_here: u32,
}

/// The outcome rules of `env` for a release.
#[must_use]
pub fn evaluate_outcomes(env: &Environment, facts: &OutcomeFacts) -> Vec<Decision> {
    let mut out = Vec::new();
    for req in &env.healthy {
        let pass = facts.healthy_in.contains(req);
        out.push(Decision::new(
            HEALTHY,
            format!("healthy in {req} (a succeeded --wait recorded)"),
            if pass {
                format!("succeeded in {req}")
            } else {
                format!("no succeeded outcome recorded in {req}")
            },
            pass,
        ));
    }
    if let Some(limit) = env.retry_limit {
        out.push(Decision::new(
            RETRY_LIMIT,
            format!(
                "fewer than {limit} failed deploys of this release to {}",
                env.name
            ),
            format!("{} failed", facts.failures_here),
            facts.failures_here < limit,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prod(body: &str) -> Environment {
        let text =
            format!("environments:\n  staging: {{}}\n  prod:\n    promotion_policy: {{{body}}}\n");
        let policy = super::super::parse("environments.yaml", text.as_bytes()).expect("a policy");
        policy.get(&EnvName("prod".into())).expect("prod").clone()
    }

    #[test]
    fn healthy_requires_a_succeeded_outcome_in_that_environment() {
        let env = prod("requires: [{environment: staging, healthy: true}]");
        assert_eq!(env.requires, [EnvName("staging".into())]);
        let d = evaluate_outcomes(&env, &OutcomeFacts::default());
        assert_eq!((d[0].rule, d[0].pass), (HEALTHY, false));
        assert_eq!(d[0].actual, "no succeeded outcome recorded in staging");
        let facts = OutcomeFacts {
            healthy_in: vec![EnvName("staging".into())],
            failures_here: 0,
        };
        assert!(evaluate_outcomes(&env, &facts)[0].pass);
        // The plain list still means progression only.
        assert!(
            evaluate_outcomes(&prod("requires: [staging]"), &OutcomeFacts::default()).is_empty()
        );
    }

    #[test]
    fn retry_limit_refuses_a_release_that_failed_that_many_times() {
        let env = prod("retry_limit: 2, on_failure: rollback");
        assert!(env.on_failure_rollback);
        let judge = |n| {
            evaluate_outcomes(
                &env,
                &OutcomeFacts {
                    healthy_in: Vec::new(),
                    failures_here: n,
                },
            )[0]
            .clone()
        };
        assert!(judge(1).pass);
        let d = judge(2);
        assert!(!d.pass);
        assert_eq!(d.actual, "2 failed");
        assert!(
            super::super::parse(
                "environments.yaml",
                b"environments:\n  prod:\n    promotion_policy: {retry_limit: 0}\n"
            )
            .is_err()
        );
        assert!(
            super::super::parse(
                "environments.yaml",
                b"environments:\n  prod:\n    promotion_policy: {on_failure: retry}\n"
            )
            .is_err()
        );
    }
}
