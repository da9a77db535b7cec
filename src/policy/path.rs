//! The promotion path: `promote --from A --to B` must follow the `requires` edges the policy
//! declares (B requires A, directly or through environments in between).
//!
//! Pure: [`promotion_path`] takes the policy and the two environment names and yields the
//! `promotion_path` decision, or none where the policy declares no path (no environment has
//! `requires`). Promoting an environment to itself is never a promotion: it always fails.

use super::{Decision, EnvName, Policy};

/// The rule name, one of [`super::RULES`].
pub const RULE: &str = "promotion_path";

/// What `env` requires (nothing when the policy does not name it).
fn requires<'p>(policy: &'p Policy, env: &EnvName) -> &'p [EnvName] {
    policy.get(env).map_or(&[], |e| e.requires.as_slice())
}

/// The chain of environments from `to` back to `from` along `requires` edges
/// (`[to, …, from]`), shortest first found, or `None` when `to` does not require `from`.
fn chain(policy: &Policy, from: &EnvName, to: &EnvName) -> Option<Vec<EnvName>> {
    // Breadth-first over `requires`; the parser refuses cycles, `seen` guards anyway.
    let mut paths: Vec<Vec<EnvName>> = vec![vec![to.clone()]];
    let mut seen: Vec<EnvName> = vec![to.clone()];
    while !paths.is_empty() {
        let mut next = Vec::new();
        for path in paths {
            let last = path.last().expect("a path is never empty");
            for req in requires(policy, last) {
                let mut longer = path.clone();
                longer.push(req.clone());
                if req == from {
                    return Some(longer);
                }
                if !seen.contains(req) {
                    seen.push(req.clone());
                    next.push(longer);
                }
            }
        }
        paths = next;
    }
    None
}

/// The `promotion_path` decision of promoting from `from` to `to`: `None` when the policy
/// declares no path and the two differ.
#[must_use]
pub fn promotion_path(policy: &Policy, from: &EnvName, to: &EnvName) -> Option<Decision> {
    let required = format!("{to} requires {from}, directly or transitively");
    if from == to {
        return Some(Decision::new(
            RULE,
            "--to an environment other than --from",
            format!("from {from} to {to}: a release cannot be promoted to where it runs"),
            false,
        ));
    }
    if policy.environments.iter().all(|e| e.requires.is_empty()) {
        return None;
    }
    let decision = match chain(policy, from, to) {
        Some(path) => {
            let shown: Vec<&str> = path.iter().map(EnvName::as_str).collect();
            Decision::new(RULE, required, shown.join(" requires "), true)
        }
        None => {
            let direct = requires(policy, to);
            let actual = if direct.is_empty() {
                format!("{to} requires no environment")
            } else {
                let names: Vec<&str> = direct.iter().map(EnvName::as_str).collect();
                format!("{to} requires {}, not {from}", names.join(", "))
            };
            Decision::new(RULE, required, actual, false)
        }
    };
    Some(decision)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dev → staging → production; qa beside dev (staging requires both); sandbox alone.
    const POLICY: &str = "environments:\n  dev: {}\n  qa: {}\n  sandbox: {}\n  staging:\n    promotion_policy: {requires: [dev, qa]}\n  production:\n    promotion_policy: {requires: [staging]}\n";

    fn judge(policy: &str, from: &str, to: &str) -> Option<(bool, String)> {
        let policy = crate::policy::parse("environments.yaml", policy.as_bytes()).unwrap();
        let env = |s: &str| EnvName::parse(s).unwrap();
        promotion_path(&policy, &env(from), &env(to)).map(|d| {
            assert_eq!(d.rule, RULE);
            assert!(!d.overridden);
            (d.pass, d.actual)
        })
    }

    #[test]
    fn a_promote_passes_only_along_requires_directly_or_transitively() {
        // (from, to, passes, actual)
        let cases = [
            ("staging", "production", true, "production requires staging"),
            ("dev", "staging", true, "staging requires dev"),
            ("qa", "staging", true, "staging requires qa"),
            (
                "dev",
                "production",
                true,
                "production requires staging requires dev",
            ),
            ("production", "dev", false, "dev requires no environment"),
            ("staging", "dev", false, "dev requires no environment"),
            (
                "sandbox",
                "production",
                false,
                "production requires staging, not sandbox",
            ),
            (
                "production",
                "staging",
                false,
                "staging requires dev, qa, not production",
            ),
            (
                "staging",
                "staging",
                false,
                "a release cannot be promoted to where it runs",
            ),
        ];
        for (from, to, pass, actual) in cases {
            let (p, a) =
                judge(POLICY, from, to).unwrap_or_else(|| panic!("{from} → {to}: no decision"));
            assert_eq!(p, pass, "{from} → {to}: {a}");
            assert!(a.contains(actual), "{from} → {to}: {a:?} lacks {actual:?}");
        }
    }

    #[test]
    fn without_any_requires_only_a_promote_to_itself_is_judged() {
        let flat = "environments:\n  dev: {}\n  production: {}\n";
        assert_eq!(judge(flat, "production", "dev"), None);
        assert_eq!(judge(flat, "dev", "production"), None);
        assert_eq!(judge(flat, "dev", "dev").map(|(pass, _)| pass), Some(false));
    }
}
