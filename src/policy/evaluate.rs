//! Rules → decisions: [`evaluate`] judges every rule of an environment for one release, and
//! [`apply_overrides`] passes the failing decisions `--override` names.
//!
//! Pure: the facts (triggers, presence in required environments, judged approvals, the clock)
//! come in, one [`Decision`] per configured rule comes out, in a fixed order
//! (`allowed_triggers`, `allowed_branches`, then `requires` and `soak` per required environment,
//! `approvals`, `windows`), each saying what was required and what was found.

use std::fmt::Write as _;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::{Decision, EnvName, Environment, Facts, Presence, Window};
use crate::duration::human;
use crate::format::TriggerType;

/// Evaluates every rule of `env` for a release.
#[must_use]
pub fn evaluate(env: &Environment, facts: &Facts<'_>) -> Vec<Decision> {
    let mut out = Vec::new();
    let triggers_shown = || {
        let mut v: Vec<String> = facts
            .triggers
            .iter()
            .map(|t| t.kind.map_or("unknown", TriggerType::as_str).to_owned())
            .collect();
        v.sort();
        v.dedup();
        if v.is_empty() {
            "none".into()
        } else {
            v.join(", ")
        }
    };
    if !env.allowed_triggers.is_empty() {
        let pass = facts
            .triggers
            .iter()
            .any(|t| t.kind.is_some_and(|k| env.allowed_triggers.contains(&k)));
        out.push(Decision::new(
            "allowed_triggers",
            format!(
                "one of {}",
                env.allowed_triggers
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            triggers_shown(),
            pass,
        ));
    }
    if !env.allowed_branches.is_empty() {
        let branches: Vec<&str> = facts
            .triggers
            .iter()
            .filter_map(|t| t.branch.as_deref())
            .collect();
        let pass = branches
            .iter()
            .any(|b| env.allowed_branches.iter().any(|g| g.matches(b)));
        out.push(Decision::new(
            "allowed_branches",
            format!(
                "a branch matching {}",
                env.allowed_branches
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            if branches.is_empty() {
                "no branch".into()
            } else {
                branches.join(", ")
            },
            pass,
        ));
    }
    for req in &env.requires {
        let p = facts.presence.iter().find(|p| p.env == *req);
        out.push(requires(req, p));
        if let Some(soak) = env.soak {
            out.push(soaked(req, p, soak, facts.now));
        }
    }
    if env.requires_approval {
        let mut approvers: Vec<&str> = facts
            .approvals
            .iter()
            .filter(|a| a.valid)
            .map(|a| a.approver.as_str())
            .collect();
        approvers.sort_unstable();
        approvers.dedup();
        let problems: Vec<String> = facts
            .approvals
            .iter()
            .filter_map(|a| a.problem.as_ref().map(|p| format!("{}: {p}", a.approver)))
            .collect();
        let mut actual = format!(
            "{} valid ({})",
            approvers.len(),
            if approvers.is_empty() {
                "none".into()
            } else {
                approvers.join(", ")
            }
        );
        if !problems.is_empty() {
            let _ = write!(actual, "; not counted: {}", problems.join("; "));
        }
        out.push(Decision::new(
            "approvals",
            if env.approvals.approvers.is_empty() {
                format!(
                    "{} distinct approvals by anyone other than the deployer",
                    env.approvals.min
                )
            } else {
                format!(
                    "{} distinct approvals by {}",
                    env.approvals.min,
                    env.approvals
                        .approvers
                        .iter()
                        .map(|a| a.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            actual,
            approvers.len() >= env.approvals.min,
        ));
    }
    if !env.windows.is_empty() {
        let allows: Vec<&Window> = env.windows.iter().filter(|w| w.allow).collect();
        let in_deny = env
            .windows
            .iter()
            .find(|w| !w.allow && w.contains(facts.now));
        let in_allow = allows.is_empty() || allows.iter().any(|w| w.contains(facts.now));
        let required = env
            .windows
            .iter()
            .map(|w| {
                format!(
                    "{} {} ({})",
                    if w.allow { "within" } else { "outside" },
                    w.spec,
                    w.tz_name
                )
            })
            .collect::<Vec<_>>()
            .join(" and ");
        let tz = env.windows.first().map_or(TimeZone::UTC, |w| w.tz.clone());
        let local = facts.now.to_zoned(tz);
        out.push(Decision::new(
            "windows",
            required,
            format!(
                "{}{}",
                local.strftime("%a %H:%M %Z"),
                in_deny
                    .map(|w| format!(", inside deny {}", w.spec))
                    .unwrap_or_default()
            ),
            in_allow && in_deny.is_none(),
        ));
    }
    out
}

/// Whether a stay counts for progression: the release runs there now, or left only because a
/// newer release was deployed forward; never when blocked there.
fn counts(p: &Presence) -> bool {
    p.since.is_some()
        && !p.blocked
        && (p.running_now || p.ended.as_ref().is_some_and(|e| e.forward))
}

/// `requires: [E]`: running in E now, or left E only for a newer release deployed forward.
fn requires(req: &EnvName, p: Option<&Presence>) -> Decision {
    let actual = match p {
        None | Some(Presence { since: None, .. }) => format!("never deployed to {req}"),
        Some(p) if p.blocked => format!("blocked in {req}"),
        Some(p) if p.running_now => format!("running in {req}"),
        Some(Presence { ended: Some(e), .. }) if e.forward => {
            format!("ran in {req} until {} replaced it", e.by)
        }
        Some(Presence { ended: Some(e), .. }) => format!("left {req} by a rollback (to {})", e.by),
        Some(_) => format!("ran in {req}"),
    };
    Decision::new(
        "requires",
        format!("running (or having run) in {req}"),
        actual,
        p.is_some_and(counts),
    )
}

/// `soak`: the most recent continuous stay in E (until now, or until a forward deploy replaced
/// it) lasted at least `soak`; a stay that ended in a rollback, or a blocked release, does not
/// count.
fn soaked(req: &EnvName, p: Option<&Presence>, soak: SignedDuration, now: Timestamp) -> Decision {
    let required = format!("{} in {req}", human(soak));
    let Some(p) = p.filter(|p| p.since.is_some()) else {
        return Decision::new("soak", required, format!("never in {req}"), false);
    };
    let since = p.since.unwrap_or(now);
    let until = p
        .ended
        .as_ref()
        .filter(|_| !p.running_now)
        .map_or(now, |e| e.at);
    let stay = until.duration_since(since);
    let actual = if p.blocked {
        format!(
            "{} in {req}, but blocked there: does not count",
            human(stay)
        )
    } else if p.running_now {
        format!("{} in {req}", human(stay))
    } else if counts(p) {
        format!("{} in {req} (until replaced)", human(stay))
    } else {
        format!(
            "{} in {req}, ended by a rollback: does not count",
            human(stay)
        )
    };
    Decision::new("soak", required, actual, counts(p) && stay >= soak)
}

/// Marks failing decisions of the overridden rules as passed (and overridden).
pub fn apply_overrides(decisions: &mut [Decision], rules: &[String]) {
    for d in decisions
        .iter_mut()
        .filter(|d| !d.pass && rules.iter().any(|r| r == d.rule))
    {
        d.pass = true;
        d.overridden = true;
    }
}

/// The policy rule matrix: for each rule, facts that pass and facts that fail, asserting the
/// decision's rule, required, actual and verdict. The end-to-end tests of `deploy` check the
/// same behaviours through the binary.
#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::approvals::{Approval, ApprovalFile};
    use crate::policy::{ApprovalFact, Departure, EnvName, Presence, TriggerFact};

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("RFC 3339")
    }

    /// `prod` of a policy with environments `dev` and `prod`, `body` being prod's rules.
    fn prod(body: &str) -> Environment {
        let text =
            format!("environments:\n  dev: {{}}\n  prod:\n    promotion_policy: {{{body}}}\n");
        let policy = crate::policy::parse("environments.yaml", text.as_bytes()).unwrap();
        policy
            .get(&EnvName::parse("prod").unwrap())
            .unwrap()
            .clone()
    }

    fn trigger(kind: Option<TriggerType>, branch: Option<&str>) -> TriggerFact {
        TriggerFact {
            kind,
            branch: branch.map(str::to_owned),
        }
    }

    fn pushed(branch: &str) -> TriggerFact {
        trigger(Some(TriggerType::BranchPush), Some(branch))
    }

    fn in_dev(since: Option<&str>, running_now: bool) -> Presence {
        Presence {
            env: EnvName::parse("dev").unwrap(),
            since: since.map(ts),
            running_now,
            ended: None,
            blocked: false,
        }
    }

    /// In dev from `since` until `until`, replaced then forward (`forward`) or not.
    fn left_dev(since: &str, until: &str, forward: bool) -> Presence {
        Presence {
            ended: Some(Departure {
                at: ts(until),
                forward,
                by: "release 5".into(),
            }),
            ..in_dev(Some(since), false)
        }
    }

    /// In dev from 08:00 to 09:00, left by a forward deploy or not.
    fn left_dev_at_nine(forward: bool) -> Presence {
        left_dev("2026-11-23T08:00:00Z", "2026-11-23T09:00:00Z", forward)
    }

    fn approval(who: &str, problem: Option<&str>) -> ApprovalFact {
        ApprovalFact {
            approver: who.to_owned(),
            valid: problem.is_none(),
            problem: problem.map(str::to_owned),
        }
    }

    struct Case<'a> {
        triggers: &'a [TriggerFact],
        presence: &'a [Presence],
        approvals: &'a [ApprovalFact],
        now: &'a str,
    }

    const NOW: &str = "2026-11-23T10:00:00Z";

    impl Default for Case<'_> {
        fn default() -> Self {
            Self {
                triggers: &[],
                presence: &[],
                approvals: &[],
                now: NOW,
            }
        }
    }

    impl<'a> Case<'a> {
        fn triggers(triggers: &'a [TriggerFact]) -> Self {
            Self {
                triggers,
                ..Self::default()
            }
        }

        fn presence(presence: &'a [Presence]) -> Self {
            Self {
                presence,
                ..Self::default()
            }
        }

        fn approvals(approvals: &'a [ApprovalFact]) -> Self {
            Self {
                approvals,
                ..Self::default()
            }
        }

        /// The same facts judged at `now`.
        fn at(self, now: &'a str) -> Self {
            Self { now, ..self }
        }
    }

    fn run(env: &Environment, case: &Case<'_>) -> Vec<Decision> {
        evaluate(
            env,
            &Facts {
                triggers: case.triggers,
                presence: case.presence,
                approvals: case.approvals,
                now: ts(case.now),
            },
        )
    }

    /// Asserts the one decision of `rule`: what was required, what was found, the verdict.
    #[track_caller]
    fn assert_decision(d: &[Decision], rule: &str, required: &str, actual: &str, pass: bool) {
        let found: Vec<&Decision> = d.iter().filter(|d| d.rule == rule).collect();
        assert_eq!(found.len(), 1, "one {rule} decision in {d:?}");
        let got = found[0];
        assert_eq!(
            (got.required.as_str(), got.actual.as_str(), got.pass),
            (required, actual, pass),
            "{rule}"
        );
        assert!(!got.overridden);
    }

    #[test]
    fn an_environment_without_rules_yields_no_decisions() {
        assert!(run(&prod(""), &Case::default()).is_empty());
        // soak without requires has nothing to count from.
        assert!(run(&prod("soak: 30m"), &Case::default()).is_empty());
        // Approvers listed but not required: no approvals decision.
        let env = prod("approvals: {min: 1, approvers: [a@x]}");
        assert!(run(&env, &Case::default()).is_empty());
    }

    #[test]
    fn allowed_triggers_refuses_a_branch_push_and_admits_a_tag_or_a_manual_release() {
        let env = prod("allowed_triggers: [tag, manual]");
        let tag = trigger(Some(TriggerType::Tag), Some("main"));
        let manual = trigger(Some(TriggerType::Manual), None);
        let unknown = trigger(None, Some("main"));
        let cases: &[(&[TriggerFact], &str, bool)] = &[
            (&[pushed("main")], "branch_push", false),
            (std::slice::from_ref(&tag), "tag", true),
            (std::slice::from_ref(&manual), "manual", true),
            (&[], "none", false),
            (std::slice::from_ref(&unknown), "unknown", false),
            // Pushed from main and later tagged: any registered trigger passing is enough.
            (&[pushed("main"), tag.clone()], "branch_push, tag", true),
            (&[pushed("main"), pushed("x")], "branch_push", false),
        ];
        for (triggers, actual, pass) in cases {
            let d = run(&env, &Case::triggers(triggers));
            assert_decision(&d, "allowed_triggers", "one of tag, manual", actual, *pass);
        }
    }

    #[test]
    fn allowed_branches_are_anchored_globs() {
        let env = prod("allowed_branches: [main, \"release/*\"]");
        let required = "a branch matching main, release/*";
        for (branch, pass) in [
            ("main2", false),
            ("feature/main", false),
            ("xmain", false),
            ("release", false),
            ("xrelease/1.2", false),
            ("main", true),
            ("release/1.2", true),
            ("release/2026-11", true),
        ] {
            let triggers = [pushed(branch)];
            let d = run(&env, &Case::triggers(&triggers));
            assert_decision(&d, "allowed_branches", required, branch, pass);
        }
        // Any registered trigger's branch may pass.
        let triggers = [pushed("feature/x"), pushed("main")];
        let d = run(&env, &Case::triggers(&triggers));
        assert_decision(&d, "allowed_branches", required, "feature/x, main", true);
    }

    #[test]
    fn a_release_without_a_branch_fails_allowed_branches() {
        let env = prod("allowed_branches: [\"*\"]");
        let triggers = [trigger(Some(TriggerType::Manual), None)];
        for triggers in [&triggers[..], &[]] {
            let d = run(&env, &Case::triggers(triggers));
            assert_decision(
                &d,
                "allowed_branches",
                "a branch matching *",
                "no branch",
                false,
            );
        }
    }

    #[test]
    fn requires_admits_a_release_running_or_replaced_forward_and_nothing_else() {
        let env = prod("requires: [dev]");
        let required = "running (or having run) in dev";
        let running = [in_dev(Some(NOW), true)];
        let replaced = [left_dev_at_nine(true)];
        let rolled_back = [left_dev_at_nine(false)];
        let blocked = [Presence {
            blocked: true,
            ..in_dev(Some(NOW), true)
        }];
        let never = [in_dev(None, false)];
        let cases: &[(&[Presence], &str, bool)] = &[
            (&[], "never deployed to dev", false),
            (&never, "never deployed to dev", false),
            (&running, "running in dev", true),
            (&replaced, "ran in dev until release 5 replaced it", true),
            (&rolled_back, "left dev by a rollback (to release 5)", false),
            (&blocked, "blocked in dev", false),
        ];
        for (presence, actual, pass) in cases {
            let d = run(&env, &Case::presence(presence));
            assert_decision(&d, "requires", required, actual, *pass);
        }
    }

    #[test]
    fn soak_is_the_length_of_the_most_recent_continuous_stay() {
        let env = prod("requires: [dev], soak: 30m");
        let running = [in_dev(Some("2026-11-23T10:00:00Z"), true)];
        for (now, actual, pass) in [
            ("2026-11-23T10:10:00Z", "10m in dev", false),
            ("2026-11-23T10:29:59Z", "29m59s in dev", false),
            ("2026-11-23T10:30:00Z", "30m in dev", true),
            ("2026-11-28T10:10:00Z", "5d10m in dev", true),
        ] {
            let d = run(&env, &Case::presence(&running).at(now));
            assert_decision(&d, "soak", "30m in dev", actual, pass);
        }
        // In dev from 12:00 to 12:05, then replaced: at 13:20 it soaked 5 minutes, not 1h20m.
        let short = [left_dev(
            "2026-11-23T12:00:00Z",
            "2026-11-23T12:05:00Z",
            true,
        )];
        let long = [left_dev_at_nine(true)];
        let rolled_back = [left_dev_at_nine(false)];
        let blocked = [Presence {
            blocked: true,
            ..in_dev(Some("2026-11-23T08:00:00Z"), true)
        }];
        let cases: &[(&[Presence], &str, bool)] = &[
            (&short, "5m in dev (until replaced)", false),
            (&long, "1h in dev (until replaced)", true),
            (
                &rolled_back,
                "1h in dev, ended by a rollback: does not count",
                false,
            ),
            (
                &blocked,
                "5h20m in dev, but blocked there: does not count",
                false,
            ),
        ];
        for (presence, actual, pass) in cases {
            let d = run(&env, &Case::presence(presence).at("2026-11-23T13:20:00Z"));
            assert_decision(&d, "soak", "30m in dev", actual, *pass);
        }
        let d = run(&env, &Case::default());
        assert_decision(&d, "soak", "30m in dev", "never in dev", false);
    }

    #[test]
    fn requires_and_soak_are_judged_per_required_environment() {
        let text = "environments:\n  dev: {}\n  qa: {}\n  prod:\n    promotion_policy: {requires: [dev, qa], soak: 1h}\n";
        let policy = crate::policy::parse("environments.yaml", text.as_bytes()).unwrap();
        let env = policy.get(&EnvName::parse("prod").unwrap()).unwrap();
        let presence = [in_dev(Some("2026-11-23T08:00:00Z"), true)];
        let d = run(env, &Case::presence(&presence));
        let got: Vec<(&str, &str, bool)> = d
            .iter()
            .map(|d| (d.rule, d.actual.as_str(), d.pass))
            .collect();
        assert_eq!(
            got,
            [
                ("requires", "running in dev", true),
                ("soak", "2h in dev", true),
                ("requires", "never deployed to qa", false),
                ("soak", "never in qa", false),
            ]
        );
    }

    const APPROVAL_POLICY: &str = "requires_approval: true, approvals: {min: 2, ttl: 24h, approvers: [alice@company.com, bob@company.com]}";
    const BY_BOTH: &str = "2 distinct approvals by alice@company.com, bob@company.com";

    #[test]
    fn approvals_count_distinct_valid_approvers_against_the_minimum() {
        let env = prod(APPROVAL_POLICY);
        let alice = approval("alice@company.com", None);
        let bob = approval("bob@company.com", None);
        let carol = approval("carol@company.com", Some("not a listed approver"));
        let cases: &[(&[ApprovalFact], &str, bool)] = &[
            (&[], "0 valid (none)", false),
            (
                std::slice::from_ref(&alice),
                "1 valid (alice@company.com)",
                false,
            ),
            (
                &[bob.clone(), alice.clone()],
                "2 valid (alice@company.com, bob@company.com)",
                true,
            ),
            (
                &[alice.clone(), carol.clone()],
                "1 valid (alice@company.com); not counted: carol@company.com: not a listed approver",
                false,
            ),
            (
                &[alice.clone(), bob.clone(), carol.clone()],
                "2 valid (alice@company.com, bob@company.com); not counted: carol@company.com: not a listed approver",
                true,
            ),
        ];
        for (approvals, actual, pass) in cases {
            let d = run(&env, &Case::approvals(approvals));
            assert_decision(&d, "approvals", BY_BOTH, actual, *pass);
        }
    }

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn approval_file(approvals: Vec<Approval>) -> ApprovalFile {
        let mut f = ApprovalFile::new(
            "prod",
            "company/monorepo".parse().unwrap(),
            "auth-service".parse().unwrap(),
            "0123456789012345678901234567890123456789".parse().unwrap(),
        );
        f.approvals = approvals;
        f
    }

    fn given(who: &str, env: &str, digest: &str, expires_at: &str) -> Approval {
        Approval {
            approver: who.to_owned(),
            environment: env.to_owned(),
            digest: digest.parse().unwrap(),
            approved_at: "2026-11-23T08:00:00Z".into(),
            expires_at: expires_at.to_owned(),
            justification: "ok".into(),
            signature: None,
        }
    }

    /// The approvals decision for `approvals` of release digest D1 in prod at [`NOW`].
    fn judged(env: &Environment, approvals: Vec<Approval>) -> Vec<Decision> {
        let file = approval_file(approvals);
        let no_key = |_: &str, _: &str, _: &str| -> Result<(), String> {
            panic!("no approver key is listed")
        };
        let facts = crate::approvals::facts(
            Some(&file),
            env,
            &D1.parse().unwrap(),
            ts(NOW),
            None,
            &no_key,
        );
        run(env, &Case::approvals(&facts))
    }

    #[test]
    fn approvals_that_do_not_count_are_named_and_leave_the_quorum_short() {
        let env = prod(APPROVAL_POLICY);
        let until = "2026-11-24T08:00:00Z";
        let alice = given("alice@company.com", "prod", D1, until);
        let cases = [
            (
                given("carol@company.com", "prod", D1, until),
                "carol@company.com: not a listed approver".to_owned(),
            ),
            (
                given("bob@company.com", "prod", D2, until),
                format!("bob@company.com: approves digest {D2}, not {D1}"),
            ),
            (
                given("bob@company.com", "dev", D1, until),
                "bob@company.com: approves environment dev, not prod".to_owned(),
            ),
            (
                given("bob@company.com", "prod", D1, "2026-11-23T09:59:59Z"),
                "bob@company.com: expired at 2026-11-23T09:59:59Z".to_owned(),
            ),
            (
                alice.clone(),
                "alice@company.com: approved more than once; counted once".to_owned(),
            ),
        ];
        for (second, named) in cases {
            let d = judged(&env, vec![alice.clone(), second]);
            let actual = format!("1 valid (alice@company.com); not counted: {named}");
            assert_decision(&d, "approvals", BY_BOTH, &actual, false);
        }
        let bob = given("bob@company.com", "prod", D1, until);
        let d = judged(&env, vec![alice, bob]);
        assert_decision(
            &d,
            "approvals",
            BY_BOTH,
            "2 valid (alice@company.com, bob@company.com)",
            true,
        );
    }

    #[test]
    fn an_approval_does_not_outlive_the_policy_ttl() {
        let env = prod(
            "requires_approval: true, approvals: {min: 1, ttl: 24h, approvers: [alice@company.com]}",
        );
        // Given three days ago with a hand-written expiry a month later.
        let mut long = given("alice@company.com", "prod", D1, "2026-12-20T08:00:00Z");
        long.approved_at = "2026-11-20T08:00:00Z".into();
        let d = judged(&env, vec![long]);
        assert_decision(
            &d,
            "approvals",
            "1 distinct approvals by alice@company.com",
            "0 valid (none); not counted: alice@company.com: expired at 2026-11-21T08:00:00Z",
            false,
        );
    }

    /// One window policy, and (instant, actual, pass) rows judged against it.
    #[track_caller]
    fn assert_windows(body: &str, required: &str, rows: &[(&str, &str, bool)]) {
        let env = prod(body);
        for (now, actual, pass) in rows {
            let d = run(&env, &Case::default().at(now));
            assert_decision(&d, "windows", required, actual, *pass);
        }
    }

    #[test]
    fn a_berlin_window_admits_inside_and_refuses_outside_following_daylight_saving_time() {
        assert_windows(
            "windows: [{allow: \"Mon-Thu 09:00-16:00\", tz: Europe/Berlin}]",
            "within Mon-Thu 09:00-16:00 (Europe/Berlin)",
            &[
                // 15:30 UTC is 16:30 in Berlin: outside.
                ("2026-11-23T15:30:00Z", "Mon 16:30 CET", false),
                // The wrong day.
                ("2026-11-27T10:00:00Z", "Fri 11:00 CET", false),
                // 08:30 UTC is 09:30 in Berlin: inside (and would be outside in UTC).
                ("2026-11-23T08:30:00Z", "Mon 09:30 CET", true),
                // In July Berlin is UTC+2: 07:30 UTC is 09:30 CEST.
                ("2026-07-06T07:30:00Z", "Mon 09:30 CEST", true),
            ],
        );
    }

    #[test]
    fn the_same_instant_is_inside_a_berlin_window_and_outside_a_utc_one() {
        assert_windows(
            "windows: [{allow: \"Mon-Thu 09:00-16:00\", tz: UTC}]",
            "within Mon-Thu 09:00-16:00 (UTC)",
            &[("2026-11-23T08:30:00Z", "Mon 08:30 UTC", false)],
        );
    }

    #[test]
    fn a_weekend_deny_window_refuses_on_saturday_and_admits_on_monday() {
        let deny = ", inside deny Sat,Sun 00:00-24:00";
        assert_windows(
            "windows: [{deny: \"Sat,Sun 00:00-24:00\", tz: UTC}]",
            "outside Sat,Sun 00:00-24:00 (UTC)",
            &[
                (
                    "2026-11-28T12:00:00Z",
                    &format!("Sat 12:00 UTC{deny}"),
                    false,
                ),
                (
                    "2026-11-29T23:59:00Z",
                    &format!("Sun 23:59 UTC{deny}"),
                    false,
                ),
                ("2026-11-30T00:00:00Z", "Mon 00:00 UTC", true),
            ],
        );
    }

    #[test]
    fn a_deny_window_over_midnight_covers_the_early_hours_of_the_next_day() {
        let deny = ", inside deny Fri 18:00-08:00";
        assert_windows(
            "windows: [{deny: \"Fri 18:00-08:00\", tz: UTC}]",
            "outside Fri 18:00-08:00 (UTC)",
            &[
                ("2026-11-27T17:59:00Z", "Fri 17:59 UTC", true),
                (
                    "2026-11-27T18:00:00Z",
                    &format!("Fri 18:00 UTC{deny}"),
                    false,
                ),
                (
                    "2026-11-28T07:59:00Z",
                    &format!("Sat 07:59 UTC{deny}"),
                    false,
                ),
                ("2026-11-28T08:00:00Z", "Sat 08:00 UTC", true),
            ],
        );
    }

    #[test]
    fn an_allow_window_in_berlin_on_monday_starts_on_sunday_evening_utc() {
        assert_windows(
            "windows: [{allow: \"Mon 00:00-01:00\", tz: Europe/Berlin}]",
            "within Mon 00:00-01:00 (Europe/Berlin)",
            &[
                ("2026-11-29T23:30:00Z", "Mon 00:30 CET", true),
                ("2026-11-29T22:30:00Z", "Sun 23:30 CET", false),
            ],
        );
    }

    #[test]
    fn allow_and_deny_windows_combine() {
        assert_windows(
            "windows: [{allow: \"Mon-Fri 08:00-18:00\"}, {deny: \"Wed 12:00-13:00\"}]",
            "within Mon-Fri 08:00-18:00 (UTC) and outside Wed 12:00-13:00 (UTC)",
            &[
                (
                    "2026-11-25T12:30:00Z",
                    "Wed 12:30 UTC, inside deny Wed 12:00-13:00",
                    false,
                ),
                ("2026-11-25T13:00:00Z", "Wed 13:00 UTC", true),
                ("2026-11-28T13:00:00Z", "Sat 13:00 UTC", false),
            ],
        );
    }

    #[test]
    fn overrides_pass_only_the_named_failing_rules_and_mark_them() {
        let env = prod("requires: [dev], soak: 30m, windows: [{deny: \"Mon-Sun 00:00-24:00\"}]");
        let presence = [in_dev(Some("2026-11-23T09:59:00Z"), true)];
        let mut d = run(&env, &Case::presence(&presence));
        apply_overrides(
            &mut d,
            &[
                "windows".to_owned(),
                "requires".to_owned(),
                "nonsense".to_owned(),
            ],
        );
        let got: Vec<(&str, bool, bool)> =
            d.iter().map(|d| (d.rule, d.pass, d.overridden)).collect();
        assert_eq!(
            got,
            [
                // Passing anyway: not marked overridden.
                ("requires", true, false),
                // Failing and not named: still failing.
                ("soak", false, false),
                ("windows", true, true),
            ]
        );
    }

    const EVERYTHING: &str = "allowed_triggers: [tag], allowed_branches: [main], requires: [dev], soak: 1h, \
        requires_approval: true, approvals: {min: 1, ttl: 24h, approvers: [bob@company.com]}, \
        windows: [{allow: \"Mon-Thu 09:00-16:00\", tz: Europe/Berlin}]";

    #[test]
    fn a_refusal_lists_every_failing_decision_with_required_and_actual() {
        let env = prod(EVERYTHING);
        let triggers = [pushed("feature/x")];
        let d = run(
            &env,
            &Case {
                triggers: &triggers,
                now: "2026-11-28T12:00:00Z",
                ..Case::default()
            },
        );
        let got: Vec<(&str, &str, &str, bool)> = d
            .iter()
            .map(|d| (d.rule, d.required.as_str(), d.actual.as_str(), d.pass))
            .collect();
        assert_eq!(
            got,
            [
                ("allowed_triggers", "one of tag", "branch_push", false),
                (
                    "allowed_branches",
                    "a branch matching main",
                    "feature/x",
                    false
                ),
                (
                    "requires",
                    "running (or having run) in dev",
                    "never deployed to dev",
                    false
                ),
                ("soak", "1h in dev", "never in dev", false),
                (
                    "approvals",
                    "1 distinct approvals by bob@company.com",
                    "0 valid (none)",
                    false
                ),
                (
                    "windows",
                    "within Mon-Thu 09:00-16:00 (Europe/Berlin)",
                    "Sat 13:00 CET",
                    false
                ),
            ]
        );
    }

    #[test]
    fn a_release_passing_every_rule_together_passes_each_decision_in_order() {
        let env = prod(EVERYTHING);
        let triggers = [
            pushed("main"),
            trigger(Some(TriggerType::Tag), Some("main")),
        ];
        let presence = [in_dev(Some("2026-11-23T08:00:00Z"), true)];
        let approvals = [approval("bob@company.com", None)];
        // 09:00 UTC: an hour in dev, 10:00 in Berlin.
        let d = run(
            &env,
            &Case {
                triggers: &triggers,
                presence: &presence,
                approvals: &approvals,
                now: "2026-11-23T09:00:00Z",
            },
        );
        let got: Vec<(&str, bool)> = d.iter().map(|d| (d.rule, d.pass)).collect();
        assert_eq!(
            got,
            [
                ("allowed_triggers", true),
                ("allowed_branches", true),
                ("requires", true),
                ("soak", true),
                ("approvals", true),
                ("windows", true),
            ]
        );
        assert_eq!(d[3].actual, "1h in dev");
        assert_eq!(d[5].actual, "Mon 10:00 CET");
    }
}
