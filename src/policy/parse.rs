//! `environments.yaml` → [`Policy`], strictly: every key known, every value checked, errors
//! naming the file, the field path and the value (see [`crate::yaml`]'s walker).

use serde_json::Value;

use super::{ApprovalRule, Approver, EnvName, Environment, Glob, Policy, PolicyError, window};
use crate::duration::GRAMMAR;
use crate::format::TriggerType;
use crate::yaml::{FieldError, Mapping, Node};

const TOP_KEYS: &[&str] = &["environments", "release_creators", "commit_signers"];
const ENV_KEYS: &[&str] = &["promotion_policy", "hold", "deployers"];
const POLICY_KEYS: &[&str] = &[
    "allowed_triggers",
    "allowed_branches",
    "auto_deploy",
    "requires_approval",
    "approvals",
    "requires",
    "soak",
    "windows",
    "retry_limit",
    "on_failure",
];
const REQUIRES_KEYS: &[&str] = &["environment", "healthy"];
const APPROVAL_KEYS: &[&str] = &["min", "ttl", "approvers"];
const APPROVER_KEYS: &[&str] = &["id", "key"];

/// An approval lasts this long unless the policy says otherwise.
const DEFAULT_TTL: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// Parses and validates a policy file; environments come out in progression order.
///
/// # Errors
///
/// Not one YAML document, or any field that is unknown or not what is expected.
pub fn parse(file: &str, bytes: &[u8]) -> Result<Policy, PolicyError> {
    let docs = crate::yaml::documents(bytes).map_err(|e| PolicyError::Yaml {
        file: file.to_owned(),
        reason: e.to_string(),
    })?;
    let [doc] = docs.as_slice() else {
        return Err(PolicyError::DocumentCount {
            file: file.to_owned(),
            count: docs.len(),
        });
    };
    let top = Node::root(file, doc).mapping(TOP_KEYS)?;
    let envs = top
        .required("environments", "a mapping of environments")?
        .entries("a mapping of environments")?;
    let names: Vec<&str> = envs.iter().map(|(name, _)| *name).collect();
    let mut environments = Vec::new();
    for (name, node) in &envs {
        environments.push(environment(file, name, node, &names)?);
    }
    order_by_progression(&mut environments);
    let release_creators = identities(&top, "release_creators")?;
    let mut commit_signers = Vec::new();
    if top.get("commit_signers").is_some() {
        for n in top.list("commit_signers", "a list of {id, key}")? {
            commit_signers.push(commit_signer(&n)?);
        }
    }
    Ok(Policy {
        environments,
        release_creators,
        commit_signers,
    })
}

/// An optional list of identities or claim globs (`deployers`, `release_creators`).
fn identities(map: &Mapping<'_>, key: &str) -> Result<Option<Vec<Glob>>, FieldError> {
    if map.get(key).is_none() {
        return Ok(None);
    }
    let mut globs = Vec::new();
    for n in map.list(key, "a list of identities or claim globs")? {
        let glob = Glob::parse(n.str("an identity or a claim glob like repo:company/*")?);
        globs.push(
            glob.ok_or_else(|| {
                n.invalid("a glob of literal characters, * and ? (no [], {} or \\)")
            })?,
        );
    }
    Ok(Some(globs))
}

/// One trusted writer: `{id, key}`, the key an SSH public key (`ssh-ed25519 AAAA…`).
fn commit_signer(n: &Node<'_>) -> Result<Approver, FieldError> {
    let m = n.mapping(APPROVER_KEYS)?;
    let expected = "the writer's identity, e.g. ci@company.com";
    let id = m.required("id", expected)?;
    if id.str(expected)?.is_empty() {
        return Err(id.invalid(expected));
    }
    let key_expected = "an SSH public key like \"ssh-ed25519 AAAA...\"";
    let key = m.required("key", key_expected)?;
    let text = key.str(key_expected)?;
    if ssh_key::PublicKey::from_openssh(text.trim()).is_err() {
        return Err(key.invalid(key_expected));
    }
    Ok(Approver {
        id: id.str(expected)?.to_owned(),
        key: Some(text.to_owned()),
    })
}

fn environment(
    file: &str,
    name: &str,
    node: &Node<'_>,
    names: &[&str],
) -> Result<Environment, FieldError> {
    let env_name = EnvName::parse(name).ok_or_else(|| FieldError::Invalid {
        file: file.to_owned(),
        field: node.path().to_owned(),
        value: crate::yaml::show(&Value::String(name.to_owned())),
        expected: "an environment name of [a-z0-9]+([._-][a-z0-9]+)*".to_owned(),
    })?;
    let env = node.mapping(ENV_KEYS)?;
    let hold = match env.get("hold") {
        None => None,
        Some(n) => match n.value() {
            Value::Bool(false) => None,
            Value::Bool(true) => Some("on hold".to_owned()),
            Value::String(s) => Some(s.clone()),
            _ => return Err(n.invalid("a reason (string) or true")),
        },
    };
    let pol = env.mapping_or_empty("promotion_policy", POLICY_KEYS)?;
    let mut allowed_triggers = Vec::new();
    for t in pol.list("allowed_triggers", "a list of triggers")? {
        allowed_triggers.push(match t.value().as_str() {
            Some("branch_push") => TriggerType::BranchPush,
            Some("tag") => TriggerType::Tag,
            Some("manual") => TriggerType::Manual,
            _ => return Err(t.invalid("one of branch_push, tag, manual")),
        });
    }
    let mut allowed_branches = Vec::new();
    for b in pol.list("allowed_branches", "a list of branch globs")? {
        let glob = Glob::parse(b.str("a glob like main or release/*")?);
        allowed_branches.push(
            glob.ok_or_else(|| {
                b.invalid("a glob of literal characters, * and ? (no [], {} or \\)")
            })?,
        );
    }
    let mut requires = Vec::new();
    let mut healthy = Vec::new();
    for r in pol.list("requires", "a list of environment names")? {
        // `staging`, or `{environment: staging, healthy: true}` (docs/policy.md).
        let (r, wants_health) = if r.value().is_object() {
            let m = r.mapping(REQUIRES_KEYS)?;
            let env = m.required("environment", "an environment name")?;
            (env, m.bool("healthy")?.unwrap_or(false))
        } else {
            (r, false)
        };
        let s = r.str("an environment name")?;
        if s == name || !names.contains(&s) {
            let others: Vec<&str> = names.iter().copied().filter(|e| *e != name).collect();
            return Err(r.invalid(format!(
                "another environment of this file: one of {}",
                others.join(", ")
            )));
        }
        if wants_health {
            healthy.push(EnvName(s.to_owned()));
        }
        requires.push(EnvName(s.to_owned()));
    }
    let retry_limit = pol
        .u64(
            "retry_limit",
            "a whole number of failed deploys, at least 1",
        )?
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    if retry_limit == Some(0)
        && let Some(n) = pol.get("retry_limit")
    {
        return Err(n.invalid("a whole number of failed deploys, at least 1"));
    }
    let on_failure_rollback = match pol.get("on_failure") {
        None => false,
        Some(n) => match n.value().as_str() {
            Some("rollback") => true,
            Some("none") => false,
            _ => return Err(n.invalid("rollback or none")),
        },
    };
    let soak = pol.get("soak").map(|n| duration(&n)).transpose()?;
    let mut windows = Vec::new();
    for w in pol.list("windows", "a list of windows")? {
        windows.push(window::parse(&w)?);
    }
    let requires_approval = pol.bool("requires_approval")?.unwrap_or(false);
    let approvals = match pol.mapping("approvals", APPROVAL_KEYS)? {
        None => ApprovalRule {
            min: 1,
            ttl: DEFAULT_TTL,
            approvers: Vec::new(),
        },
        Some(a) => approval_rule(&a, requires_approval)?,
    };
    Ok(Environment {
        name: env_name,
        allowed_triggers,
        allowed_branches,
        auto_deploy: pol.bool("auto_deploy")?.unwrap_or(false),
        requires_approval,
        approvals,
        requires,
        soak,
        windows,
        hold,
        healthy,
        retry_limit,
        on_failure_rollback,
        deployers: identities(&env, "deployers")?,
    })
}

fn duration(node: &Node<'_>) -> Result<jiff::SignedDuration, FieldError> {
    crate::duration::parse_signed(node.str(GRAMMAR)?).map_err(|_| node.invalid(GRAMMAR))
}

fn approval_rule(a: &Mapping<'_>, requires_approval: bool) -> Result<ApprovalRule, FieldError> {
    let min = match a.get("min") {
        None => 1,
        Some(n) => n
            .value()
            .as_u64()
            .filter(|m| *m >= 1)
            .and_then(|m| usize::try_from(m).ok())
            .ok_or_else(|| n.invalid("a whole number of at least 1"))?,
    };
    let ttl = match a.get("ttl") {
        None => DEFAULT_TTL,
        Some(n) => Some(duration(&n)?)
            .filter(|d| d.as_secs() > 0)
            .ok_or_else(|| n.invalid(format!("at least one second: {GRAMMAR}")))?,
    };
    let mut approvers = Vec::new();
    for n in a.list("approvers", "a list of approvers")? {
        approvers.push(match n.value() {
            Value::String(s) if !s.is_empty() => Approver {
                id: s.clone(),
                key: None,
            },
            Value::Object(_) => {
                let m = n.mapping(APPROVER_KEYS)?;
                let expected = "the approver's identity, e.g. alice@company.com";
                let id = m.required("id", expected)?;
                if id.str(expected)?.is_empty() {
                    return Err(id.invalid(expected));
                }
                let key = m.get("key").map(|k| match k.value() {
                    Value::String(s) if s.starts_with("ssh-") || s.starts_with("ecdsa-") => {
                        Ok(s.clone())
                    }
                    _ => Err(k.invalid("an SSH public key like \"ssh-ed25519 AAAA...\"")),
                });
                Approver {
                    id: id.str(expected)?.to_owned(),
                    key: key.transpose()?,
                }
            }
            _ => return Err(n.invalid("an identity or {id, key}")),
        });
    }
    // Without a list anyone but the deployer may approve; a list must be able to reach `min`.
    if requires_approval && !approvers.is_empty() && approvers.len() < min {
        let expected = format!("at least min ({min}) approvers");
        return Err(match a.get("approvers") {
            Some(n) => n.invalid(expected),
            None => a.required("approvers", &expected).unwrap_err(),
        });
    }
    Ok(ApprovalRule {
        min,
        ttl,
        approvers,
    })
}

/// Orders environments so that each comes after those it requires (dev, staging,
/// production), ties by name. A cycle keeps the remaining ones in name order.
fn order_by_progression(envs: &mut Vec<Environment>) {
    let mut rest: Vec<Environment> = std::mem::take(envs);
    rest.sort_by(|a, b| a.name.cmp(&b.name));
    while !rest.is_empty() {
        let ready = rest
            .iter()
            .position(|e| e.requires.iter().all(|r| envs.iter().any(|d| d.name == *r)))
            .unwrap_or(0);
        envs.push(rest.remove(ready));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::FILE;

    fn one(body: &str) -> Result<Policy, PolicyError> {
        parse(
            FILE,
            format!("environments:\n  dev: {{}}\n  prod:\n    promotion_policy: {{{body}}}\n")
                .as_bytes(),
        )
    }

    fn prod(body: &str) -> Environment {
        let p = one(body).expect("valid policy");
        p.get(&EnvName::parse("prod").unwrap()).unwrap().clone()
    }

    /// The field path of a refused policy, and its message.
    fn refused(text: &str) -> (String, String) {
        match parse(FILE, text.as_bytes()).unwrap_err() {
            PolicyError::Field(e) => (e.field().to_owned(), e.to_string()),
            other => panic!("not a field error: {other}"),
        }
    }

    fn policy_one(body: &str) -> String {
        format!("environments:\n  dev: {{}}\n  prod:\n    promotion_policy: {{{body}}}\n")
    }

    #[test]
    fn the_specification_example_parses_in_progression_order() {
        let p = parse(
            FILE,
            include_bytes!("../../fixtures/policy/environments.yaml"),
        )
        .expect("the example policy is valid");
        let names: Vec<&str> = p.environments.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["dev", "staging", "production"]);
        let prod = &p.environments[2];
        assert!(prod.requires_approval);
        assert_eq!(prod.approvals.min, 2);
        assert_eq!(prod.approvals.ttl, jiff::SignedDuration::from_hours(24));
        assert_eq!(prod.approvals.approvers.len(), 2);
        assert_eq!(prod.windows[0].tz_name, "Europe/Berlin");
        assert_eq!(prod.windows[0].days, [1, 2, 3, 4]);
        assert_eq!((prod.windows[0].start, prod.windows[0].end), (540, 960));
        assert_eq!(
            p.environments[1].soak,
            Some(jiff::SignedDuration::from_mins(30))
        );
        assert!(p.environments[0].auto_deploy && !p.environments[1].auto_deploy);
    }

    /// The policy errors the end-to-end tests check, one per row: the policy, the field path
    /// named and the value shown. Every message also names the file.
    #[test]
    fn each_policy_error_names_the_file_the_field_and_the_value() {
        let cases: &[(&str, &str, &str)] = &[
            (
                &policy_one("allowed_trigers: [tag]"),
                "environments.prod.promotion_policy.allowed_trigers",
                "\"allowed_trigers\"",
            ),
            (
                "environments:\n  dev:\n    promotion_polcy: {auto_deploy: true}\n  prod: {}\n",
                "environments.dev.promotion_polcy",
                "\"promotion_polcy\"",
            ),
            (
                &policy_one(
                    "requires_approval: true, approvals: {min: 1, approver: [alice@company.com]}",
                ),
                "environments.prod.promotion_policy.approvals.approver",
                "\"approver\"",
            ),
            (
                &policy_one("allowed_triggers: [tag, push]"),
                "environments.prod.promotion_policy.allowed_triggers[1]",
                "\"push\"",
            ),
            (
                &policy_one("allowed_branches: [main, \"release/[0-9]*\"]"),
                "environments.prod.promotion_policy.allowed_branches[1]",
                "\"release/[0-9]*\"",
            ),
            (
                &policy_one("requires: [dev], soak: 30 minutes"),
                "environments.prod.promotion_policy.soak",
                "\"30 minutes\"",
            ),
            (
                &policy_one(
                    "requires_approval: true, approvals: {min: 1, ttl: 1w, approvers: [alice@company.com]}",
                ),
                "environments.prod.promotion_policy.approvals.ttl",
                "\"1w\"",
            ),
            (
                &policy_one("windows: [{allow: \"Mon-Fri 9-17\", tz: UTC}]"),
                "environments.prod.promotion_policy.windows[0].allow",
                "\"Mon-Fri 9-17\"",
            ),
            (
                &policy_one(
                    "windows: [{allow: \"Mon-Thu 09:00-16:00\"}, {deny: \"Fry 00:00-24:00\"}]",
                ),
                "environments.prod.promotion_policy.windows[1].deny",
                "\"Fry 00:00-24:00\"",
            ),
            (
                &policy_one("windows: [{allow: \"Mon-Thu 09:00-16:00\", tz: Europe/Atlantis}]"),
                "environments.prod.promotion_policy.windows[0].tz",
                "\"Europe/Atlantis\"",
            ),
            (
                &policy_one("requires: [stagin]"),
                "environments.prod.promotion_policy.requires[0]",
                "\"stagin\"",
            ),
            (
                &policy_one(
                    "requires_approval: true, approvals: {min: 2, approvers: [alice@company.com]}",
                ),
                "environments.prod.promotion_policy.approvals.approvers",
                "alice@company.com",
            ),
            (
                &policy_one("requires: [prod]"),
                "environments.prod.promotion_policy.requires[0]",
                "\"prod\"",
            ),
            (
                &policy_one("auto_deploy: yes please"),
                "environments.prod.promotion_policy.auto_deploy",
                "\"yes please\"",
            ),
            (
                &policy_one("approvals: {min: 0}"),
                "environments.prod.promotion_policy.approvals.min",
                "0",
            ),
            (
                &policy_one("approvals: {ttl: 0s}"),
                "environments.prod.promotion_policy.approvals.ttl",
                "\"0s\"",
            ),
            (
                &policy_one("approvals: {approvers: [{id: a@x, key: rsa-abc}]}"),
                "environments.prod.promotion_policy.approvals.approvers[0].key",
                "\"rsa-abc\"",
            ),
            (
                &policy_one("approvals: {approvers: [{key: ssh-ed25519 AAAA}]}"),
                "environments.prod.promotion_policy.approvals.approvers[0].id",
                "is missing",
            ),
            (
                "environments:\n  prod:\n    hold: 3\n",
                "environments.prod.hold",
                "3",
            ),
            (
                "environments:\n  Prod: {}\n",
                "environments.Prod",
                "\"Prod\"",
            ),
            ("envs: {}\n", "envs", "\"envs\""),
            ("{}\n", "environments", "is missing"),
        ];
        for (text, field, value) in cases {
            let (f, m) = refused(text);
            assert_eq!(f, *field, "{m}");
            assert!(m.starts_with("environments.yaml: "), "{m}");
            assert!(m.contains(field) && m.contains(value), "{value}: {m}");
        }
    }

    #[test]
    fn an_unknown_key_lists_the_known_ones() {
        let (_, m) = refused(&policy_one("allowed_trigers: [tag]"));
        assert!(
            m.contains("is not one of allowed_triggers, allowed_branches, auto_deploy"),
            "{m}"
        );
    }

    #[test]
    fn not_yaml_and_several_documents_are_refused() {
        let e = parse(FILE, b"environments: [").unwrap_err();
        assert!(matches!(e, PolicyError::Yaml { .. }), "{e}");
        let e = parse(FILE, b"environments: {}\n---\nenvironments: {}\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "environments.yaml: expected one YAML document holding environments, found 2"
        );
    }

    #[test]
    fn durations_take_the_common_grammar() {
        assert_eq!(
            prod("requires: [dev], soak: 1h30m").soak,
            Some(jiff::SignedDuration::from_mins(90))
        );
        assert_eq!(
            prod("requires: [dev], soak: 1500ms").soak,
            Some(jiff::SignedDuration::from_millis(1500))
        );
        assert_eq!(
            prod("approvals: {ttl: 7d}").approvals.ttl,
            jiff::SignedDuration::from_hours(168)
        );
    }

    #[test]
    fn defaults_apply_to_what_is_left_out() {
        let env = prod("");
        assert!(!env.auto_deploy && !env.requires_approval && env.hold.is_none());
        assert_eq!(env.approvals.min, 1);
        assert_eq!(env.approvals.ttl, DEFAULT_TTL);
        assert!(env.soak.is_none() && env.windows.is_empty() && env.requires.is_empty());
    }

    #[test]
    fn hold_takes_a_reason_or_true_and_false_lifts_it() {
        let hold = |v: &str| {
            parse(
                FILE,
                format!("environments:\n  prod:\n    hold: {v}\n").as_bytes(),
            )
            .unwrap()
            .environments[0]
                .hold
                .clone()
        };
        assert_eq!(
            hold("\"change freeze INC-42\""),
            Some("change freeze INC-42".into())
        );
        assert_eq!(hold("true"), Some("on hold".into()));
        assert_eq!(hold("false"), None);
    }

    #[test]
    fn approvers_may_carry_a_signing_key() {
        let env = prod(
            "requires_approval: true, approvals: {min: 2, approvers: [b@x, {id: a@x, key: ssh-ed25519 AAAA}]}",
        );
        assert_eq!(
            env.approvals.approvers,
            [
                Approver {
                    id: "b@x".into(),
                    key: None
                },
                Approver {
                    id: "a@x".into(),
                    key: Some("ssh-ed25519 AAAA".into())
                }
            ]
        );
    }

    #[test]
    fn a_requires_cycle_still_parses_and_orders_without_looping() {
        let p = parse(
            FILE,
            b"environments:\n  a:\n    promotion_policy: {requires: [b]}\n  b:\n    promotion_policy: {requires: [a]}\n",
        )
        .unwrap();
        assert_eq!(p.environments.len(), 2);
    }

    #[test]
    fn environments_come_out_after_those_they_require() {
        let p = parse(
            FILE,
            b"environments:\n  a-prod:\n    promotion_policy: {requires: [z-staging]}\n  z-staging:\n    promotion_policy: {requires: [m-dev]}\n  m-dev: {}\n",
        )
        .unwrap();
        let names: Vec<&str> = p.environments.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["m-dev", "z-staging", "a-prod"]);
    }
}
