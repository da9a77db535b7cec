//! Approvals, `approvals/<env>/<repository>/<project>/<commit>.yaml` (docs/design.md §8).
//!
//! One file per release and environment, holding every approval given for it. An approval
//! counts only for the exact release digest and environment it names, only if its approver
//! is listed in the policy, only until it expires, and (when the policy lists the
//! approver's key) only with a valid signature over the canonical payload.
//!
//! Parsing is strict ([`crate::yaml`]'s walker): an unknown key or a malformed field is an
//! error naming the file, the field path (`approvals[1].digest`), the value and what was
//! expected.

use serde::Serialize;

use crate::digest::Digest;
use crate::ids::{CommitSha, Project, Repository};
use crate::policy::{ApprovalFact, Environment};
use crate::yaml::{FieldError, Mapping, Node};

pub const API_VERSION: &str = "releasectl.dev/v1alpha1";
pub const KIND: &str = "ReleaseApprovals";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approval {
    pub approver: String,
    pub environment: String,
    pub digest: Digest,
    pub approved_at: String,
    pub expires_at: String,
    pub justification: String,
    /// An SSH signature (`-----BEGIN SSH SIGNATURE-----`) over [`Approval::payload`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalFile {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    pub environment: String,
    pub repository: Repository,
    pub project: Project,
    pub commit: CommitSha,
    pub approvals: Vec<Approval>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApprovalError {
    #[error("{file}: not a valid ReleaseApprovals file: {reason}")]
    Invalid { file: String, reason: String },
    #[error(transparent)]
    Field(#[from] FieldError),
}

const FILE_KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "environment",
    "repository",
    "project",
    "commit",
    "approvals",
];
const APPROVAL_KEYS: &[&str] = &[
    "approver",
    "environment",
    "digest",
    "approved_at",
    "expires_at",
    "justification",
    "signature",
];

impl ApprovalFile {
    #[must_use]
    pub fn new(env: &str, repository: Repository, project: Project, commit: CommitSha) -> Self {
        Self {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            environment: env.to_owned(),
            repository,
            project,
            commit,
            approvals: Vec::new(),
        }
    }

    /// Parses an approvals file. `file` names it in errors.
    ///
    /// # Errors
    ///
    /// Not one YAML document, another kind, or a field that is unknown or malformed.
    pub fn parse(file: &str, bytes: &[u8]) -> Result<Self, ApprovalError> {
        let err = |reason: String| ApprovalError::Invalid {
            file: file.to_owned(),
            reason,
        };
        let docs = crate::yaml::documents(bytes).map_err(|e| err(e.to_string()))?;
        let [doc] = docs.as_slice() else {
            return Err(err(format!(
                "expected one YAML document, found {}",
                docs.len()
            )));
        };
        let top = Node::root(file, doc).mapping(FILE_KEYS)?;
        for (key, want) in [("apiVersion", API_VERSION), ("kind", KIND)] {
            let node = top.required(key, want)?;
            if node.str(want)? != want {
                return Err(node.invalid(want).into());
            }
        }
        let mut approvals = Vec::new();
        for item in top.list("approvals", "a list of approvals")? {
            approvals.push(Approval::parse(&item.mapping(APPROVAL_KEYS)?)?);
        }
        Ok(Self {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            environment: top
                .required_str("environment", "an environment name")?
                .to_owned(),
            repository: parsed(&top, "repository", "a repository like company/monorepo")?,
            project: parsed(&top, "project", "a project name like auth-service")?,
            commit: parsed(&top, "commit", "a commit SHA of 40 lower-case hex digits")?,
            approvals,
        })
    }

    #[must_use]
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).expect("approvals serialise")
    }
}

impl Approval {
    fn parse(m: &Mapping<'_>) -> Result<Self, FieldError> {
        let text = |key: &str, expected: &str| -> Result<String, FieldError> {
            Ok(m.required_str(key, expected)?.to_owned())
        };
        Ok(Self {
            approver: text("approver", "the approver's identity")?,
            environment: text("environment", "an environment name")?,
            digest: parsed(m, "digest", "sha256:<64 lower-case hex digits>")?,
            approved_at: text("approved_at", "an RFC 3339 time")?,
            expires_at: text("expires_at", "an RFC 3339 time")?,
            justification: text("justification", "a justification")?,
            signature: m.str("signature", "an SSH signature")?.map(str::to_owned),
        })
    }

    /// The canonical payload a signature covers: one `key=value` per line, in this order.
    #[must_use]
    pub fn payload(&self, file: &ApprovalFile) -> String {
        format!(
            "releasectl-approval-v1\nenvironment={}\nrepository={}\nproject={}\ncommit={}\ndigest={}\napprover={}\nexpires_at={}\n",
            self.environment,
            file.repository,
            file.project,
            file.commit,
            self.digest,
            self.approver,
            self.expires_at
        )
    }
}

/// A required string field parsed into `T`; `expected` describes the syntax.
fn parsed<T: std::str::FromStr>(
    m: &Mapping<'_>,
    key: &str,
    expected: &str,
) -> Result<T, FieldError> {
    let node = m.required(key, expected)?;
    node.str(expected)?
        .parse()
        .map_err(|_| node.invalid(expected))
}

/// Checks a signature; supplied by the signing module (issue: signed approvals).
pub type SignatureCheck<'a> = &'a dyn Fn(&str, &str, &str) -> Result<(), String>;

/// Whether two identities (`Name <email>`, an email, a name) are the same person: equal, or
/// with the same email.
fn same_identity(a: &str, b: &str) -> bool {
    let email = |s: &str| {
        s.split_once('<')
            .map_or(s, |(_, e)| e.trim_end_matches('>'))
            .trim()
            .to_ascii_lowercase()
    };
    a.trim() == b.trim() || email(a) == email(b)
}

/// Judges each approval of `file` for a release with `digest` in `env` at `now`.
#[must_use]
pub fn facts(
    file: Option<&ApprovalFile>,
    env: &Environment,
    digest: &Digest,
    now: jiff::Timestamp,
    deployer: Option<&str>,
    verify: SignatureCheck<'_>,
) -> Vec<ApprovalFact> {
    let Some(file) = file else { return Vec::new() };
    let mut seen: Vec<&str> = Vec::new();
    file.approvals
        .iter()
        .map(|a| {
            let problem = (|| {
                if a.environment != env.name.as_str() || file.environment != env.name.as_str() {
                    return Some(format!(
                        "approves environment {}, not {}",
                        a.environment, env.name
                    ));
                }
                if a.digest != *digest {
                    return Some(format!("approves digest {}, not {digest}", a.digest));
                }
                // Without a list, anyone named other than the deployer may approve (four eyes).
                let open = crate::policy::Approver {
                    id: a.approver.clone(),
                    key: None,
                };
                let listed = if env.approvals.approvers.is_empty() {
                    if a.approver.trim().is_empty() {
                        return Some("no approver named".to_owned());
                    }
                    if deployer.is_some_and(|d| same_identity(d, &a.approver)) {
                        return Some(
                            "approved by the deployer: another person must approve".to_owned(),
                        );
                    }
                    &open
                } else {
                    let Some(listed) = env.approvals.approvers.iter().find(|x| x.id == a.approver)
                    else {
                        return Some("not a listed approver".to_owned());
                    };
                    listed
                };
                // An approval lasts until its own expiry or the policy's ttl after it was
                // given, whichever is sooner: a hand-written far expiry gains nothing.
                let Ok(given) = a.approved_at.parse::<jiff::Timestamp>() else {
                    return Some(format!("approved_at {:?} is not a time", a.approved_at));
                };
                let Ok(expires) = a.expires_at.parse::<jiff::Timestamp>() else {
                    return Some(format!("expiry {:?} is not a time", a.expires_at));
                };
                if given > now {
                    return Some(format!("approved in the future ({given})"));
                }
                let until = given
                    .checked_add(env.approvals.ttl)
                    .map_or(expires, |t| t.min(expires));
                if until <= now {
                    return Some(format!("expired at {until}"));
                }
                if let Some(key) = &listed.key {
                    let Some(sig) = &a.signature else {
                        return Some(
                            "unsigned, but the policy lists the approver's key".to_owned(),
                        );
                    };
                    if let Err(e) = verify(key, &a.payload(file), sig) {
                        return Some(format!("signature does not verify: {e}"));
                    }
                }
                if seen.contains(&a.approver.as_str()) {
                    return Some("approved more than once; counted once".to_owned());
                }
                seen.push(&a.approver);
                None
            })();
            ApprovalFact {
                approver: a.approver.clone(),
                valid: problem.is_none(),
                problem,
            }
        })
        .collect()
}

crate::exit_class!(ApprovalError => Usage);

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const NOW: &str = "2026-11-23T10:00:00Z";
    const LATER: &str = "2026-11-24T10:00:00Z";

    fn env(approvers: &str) -> Environment {
        let yaml = format!(
            "environments:\n  production:\n    promotion_policy:\n      requires_approval: true\n      approvals: {{min: 2, approvers: [{approvers}]}}\n"
        );
        let policy = crate::policy::parse("environments.yaml", yaml.as_bytes()).unwrap();
        policy.environments[0].clone()
    }

    fn plain_env() -> Environment {
        env("alice@company.com, bob@company.com")
    }

    fn file(approvals: Vec<Approval>) -> ApprovalFile {
        let mut f = ApprovalFile::new(
            "production",
            "company/monorepo".parse().unwrap(),
            "auth-service".parse().unwrap(),
            "0123456789012345678901234567890123456789".parse().unwrap(),
        );
        f.approvals = approvals;
        f
    }

    fn approval(who: &str) -> Approval {
        Approval {
            approver: who.to_owned(),
            environment: "production".into(),
            digest: D1.parse().unwrap(),
            approved_at: NOW.into(),
            expires_at: LATER.into(),
            justification: "looks good".into(),
            signature: None,
        }
    }

    fn never(_: &str, _: &str, _: &str) -> Result<(), String> {
        panic!("no key is listed: nothing to verify")
    }

    fn judge(
        f: &ApprovalFile,
        env: &Environment,
        verify: SignatureCheck<'_>,
    ) -> Vec<(String, Option<String>)> {
        facts(
            Some(f),
            env,
            &D1.parse().unwrap(),
            NOW.parse().unwrap(),
            Some("alice@company.com"),
            verify,
        )
        .into_iter()
        .map(|a| {
            assert_eq!(a.valid, a.problem.is_none());
            (a.approver, a.problem)
        })
        .collect()
    }

    #[test]
    fn approvals_by_listed_approvers_for_this_digest_and_environment_count() {
        let f = file(vec![
            approval("alice@company.com"),
            approval("bob@company.com"),
        ]);
        let got = judge(&f, &plain_env(), &never);
        assert_eq!(
            got,
            vec![
                ("alice@company.com".into(), None),
                ("bob@company.com".into(), None)
            ]
        );
    }

    #[test]
    fn without_a_list_anyone_named_but_the_deployer_may_approve() {
        let open = env("");
        let f = file(vec![
            approval("Alice <alice@company.com>"),
            approval("carol@company.com"),
        ]);
        let got = judge(&f, &open, &never);
        assert_eq!(
            got,
            vec![
                (
                    "Alice <alice@company.com>".into(),
                    Some("approved by the deployer: another person must approve".into())
                ),
                ("carol@company.com".into(), None)
            ]
        );
    }

    #[test]
    fn no_file_means_no_approvals() {
        let got = facts(
            None,
            &plain_env(),
            &D1.parse().unwrap(),
            NOW.parse().unwrap(),
            None,
            &never,
        );
        assert!(got.is_empty());
    }

    #[test]
    fn each_reason_not_to_count_is_named() {
        let mut other_env = approval("alice@company.com");
        other_env.environment = "staging".into();
        let mut other_digest = approval("alice@company.com");
        other_digest.digest = D2.parse().unwrap();
        let unlisted = approval("carol@company.com");
        let mut expired = approval("alice@company.com");
        expired.expires_at = NOW.into(); // expires at the very moment: no longer valid
        let mut garbage = approval("alice@company.com");
        garbage.expires_at = "tomorrow".into();
        let f = file(vec![other_env, other_digest, unlisted, expired, garbage]);
        let got: Vec<String> = judge(&f, &plain_env(), &never)
            .into_iter()
            .map(|(_, p)| p.expect("does not count"))
            .collect();
        assert_eq!(
            got,
            vec![
                "approves environment staging, not production".to_owned(),
                format!("approves digest {D2}, not {D1}"),
                "not a listed approver".to_owned(),
                format!("expired at {NOW}"),
                "expiry \"tomorrow\" is not a time".to_owned(),
            ]
        );
    }

    #[test]
    fn a_file_for_another_environment_does_not_count_even_if_its_entries_say_production() {
        let mut f = file(vec![approval("alice@company.com")]);
        f.environment = "staging".into();
        let got = judge(&f, &plain_env(), &never);
        assert!(
            got[0]
                .1
                .as_deref()
                .is_some_and(|p| p.contains("not production")),
            "{got:?}"
        );
    }

    #[test]
    fn a_second_approval_by_the_same_approver_counts_once() {
        let f = file(vec![
            approval("alice@company.com"),
            approval("alice@company.com"),
        ]);
        let got = judge(&f, &plain_env(), &never);
        assert_eq!(got[0].1, None);
        assert_eq!(
            got[1].1.as_deref(),
            Some("approved more than once; counted once")
        );
    }

    #[test]
    fn an_invalid_approval_does_not_use_up_the_approvers_one_valid_approval() {
        let mut expired = approval("alice@company.com");
        expired.expires_at = "2026-11-22T10:00:00Z".into();
        let f = file(vec![expired, approval("alice@company.com")]);
        let got = judge(&f, &plain_env(), &never);
        assert!(got[0].1.is_some());
        assert_eq!(got[1].1, None, "{got:?}");
    }

    #[test]
    fn with_a_listed_key_an_approval_needs_a_signature_that_verifies_over_the_payload() {
        let env = env(r#"{id: alice@company.com, key: "ssh-ed25519 AAAAalice"}, bob@company.com"#);
        let mut signed = approval("alice@company.com");
        signed.signature = Some("SIG-GOOD".into());
        let mut forged = approval("alice@company.com");
        forged.signature = Some("SIG-BAD".into());
        let unsigned = approval("alice@company.com");
        // bob has no key listed: his unsigned approval counts without a verification.
        let f = file(vec![
            forged,
            unsigned,
            signed.clone(),
            approval("bob@company.com"),
        ]);
        let seen = RefCell::new(Vec::new());
        let verify = |key: &str, payload: &str, sig: &str| {
            seen.borrow_mut()
                .push((key.to_owned(), payload.to_owned(), sig.to_owned()));
            if sig == "SIG-GOOD" {
                Ok(())
            } else {
                Err("made by another key".to_owned())
            }
        };
        let got = judge(&f, &env, &verify);
        assert_eq!(
            got[0].1.as_deref(),
            Some("signature does not verify: made by another key")
        );
        assert_eq!(
            got[1].1.as_deref(),
            Some("unsigned, but the policy lists the approver's key")
        );
        assert_eq!(got[2].1, None);
        assert_eq!(got[3].1, None);
        let seen = seen.into_inner();
        assert_eq!(
            seen.len(),
            2,
            "only keyed, signed approvals are verified: {seen:?}"
        );
        assert_eq!(seen[1].0, "ssh-ed25519 AAAAalice");
        assert_eq!(seen[1].1, signed.payload(&f));
        assert_eq!(seen[1].2, "SIG-GOOD");
    }

    #[test]
    fn the_payload_is_the_canonical_key_value_lines() {
        let f = file(vec![]);
        assert_eq!(
            approval("alice@company.com").payload(&f),
            format!(
                "releasectl-approval-v1\nenvironment=production\nrepository=company/monorepo\nproject=auth-service\ncommit=0123456789012345678901234567890123456789\ndigest={D1}\napprover=alice@company.com\nexpires_at={LATER}\n"
            )
        );
    }

    #[test]
    fn a_file_round_trips_through_yaml_even_with_an_all_digit_commit() {
        let mut signed = approval("bob@company.com");
        signed.signature =
            Some("-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n".into());
        let f = file(vec![approval("alice@company.com"), signed]);
        let text = f.to_yaml();
        assert_eq!(
            ApprovalFile::parse("a.yaml", text.as_bytes()),
            Ok(f),
            "{text}"
        );
    }

    #[test]
    fn parse_refuses_unknown_fields_other_kinds_and_several_documents() {
        let good = file(vec![approval("alice@company.com")]).to_yaml();
        let err = |text: &str| {
            ApprovalFile::parse("a.yaml", text.as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&good.replace("kind: ReleaseApprovals", "kind: ReleasePointer")),
            "a.yaml: kind is \"ReleasePointer\": expected ReleaseApprovals"
        );
        assert!(
            err(&format!("{good}\nextra: 1\n")).starts_with("a.yaml: unknown field extra: "),
            "{good}"
        );
        let m = err(&good.replace("justification:", "approved: true\n  justification:"));
        assert!(
            m.starts_with("a.yaml: unknown field approvals[0].approved: "),
            "{m}"
        );
        let m = err(&good.replace("sha256:1111", "sha256:zzzz"));
        assert!(
            m.starts_with("a.yaml: approvals[0].digest is \"sha256:zzzz"),
            "{m}"
        );
        let m = err("approvals: [{who: alice}]\n");
        assert!(m.starts_with("a.yaml: apiVersion is missing"), "{m}");
        assert!(err(&format!("{good}\n---\n{good}")).contains("found 2"));
        assert!(err("").starts_with("a.yaml: not a valid ReleaseApprovals file"));
    }
}
