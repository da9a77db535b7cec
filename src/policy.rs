//! Environment policy, `environments.yaml` (DESIGN.md §6).
//!
//! Parsing is strict: an unknown key, a bad glob, duration or window, or a `requires` naming
//! an unknown environment is an error naming the file, the key and the value (exit 2), since
//! a policy typo must never silently allow a deploy. Evaluation is pure: it takes what the
//! repository says (triggers, pointer history, approvals) and a clock, and yields one
//! [`Decision`] per rule with what was required, what was found, and whether it passed.

use std::fmt;

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;
use serde_json::Value;

use crate::format::TriggerType;

pub const FILE: &str = "environments.yaml";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{file}: {key} is {value}: expected {expected}")]
pub struct PolicyError {
    pub file: String,
    pub key: String,
    pub value: String,
    pub expected: String,
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

/// A weekday/time range in a time zone: `Mon-Thu 09:00-16:00`.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub allow: bool,
    pub spec: String,
    /// Weekdays as 1 (Mon) ..= 7 (Sun).
    pub days: Vec<i8>,
    /// Minutes after midnight, `end` exclusive; `end < start` wraps past midnight.
    pub start: u16,
    pub end: u16,
    pub tz_name: String,
    pub tz: TimeZone,
}

impl Window {
    fn contains(&self, now: Timestamp) -> bool {
        let local = now.to_zoned(self.tz.clone());
        let day = local.weekday().to_monday_one_offset();
        let minute =
            u16::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute())).unwrap_or(0);
        if self.start <= self.end {
            self.days.contains(&day) && (self.start..self.end).contains(&minute)
        } else {
            // Over midnight: the part after midnight belongs to the previous day's window.
            let prev = if day == 1 { 7 } else { day - 1 };
            (self.days.contains(&day) && minute >= self.start)
                || (self.days.contains(&prev) && minute < self.end)
        }
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
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// In file order.
    pub environments: Vec<Environment>,
}

impl Policy {
    #[must_use]
    pub fn get(&self, name: &EnvName) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == *name)
    }
}

const ENV_KEYS: &[&str] = &["promotion_policy", "hold"];
const POLICY_KEYS: &[&str] = &[
    "allowed_triggers",
    "allowed_branches",
    "auto_deploy",
    "requires_approval",
    "approvals",
    "requires",
    "soak",
    "windows",
];
const APPROVAL_KEYS: &[&str] = &["min", "ttl", "approvers"];
const WINDOW_KEYS: &[&str] = &["allow", "deny", "tz"];

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{}\"", crate::error::printable(s, 160)),
        other => crate::error::printable(&other.to_string(), 160),
    }
}

/// Parses `45s`, `30m`, `24h`, `7d`, `1h30m`.
#[must_use]
pub fn parse_duration(s: &str) -> Option<jiff::SignedDuration> {
    let mut total: i64 = 0;
    let mut digits = String::new();
    if s.is_empty() {
        return None;
    }
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: i64 = digits.parse().ok()?;
        digits.clear();
        total = total.checked_add(n.checked_mul(match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        })?)?;
    }
    digits
        .is_empty()
        .then(|| jiff::SignedDuration::from_secs(total))
}

fn parse_clock(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && s.len() == 5 || h == 24 && m == 0).then_some(h * 60 + m)
}

fn parse_days(s: &str) -> Option<Vec<i8>> {
    const NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let day = |d: &str| {
        NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(d))
            .map(|i| i as i8 + 1)
    };
    let mut out = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                let mut d = a;
                loop {
                    out.push(d);
                    if d == b {
                        break;
                    }
                    d = if d == 7 { 1 } else { d + 1 };
                }
            }
            None => out.push(day(part)?),
        }
    }
    Some(out)
}

struct Parser<'a> {
    file: &'a str,
}

impl Parser<'_> {
    fn err(&self, key: &str, value: &Value, expected: impl Into<String>) -> PolicyError {
        PolicyError {
            file: self.file.to_owned(),
            key: key.to_owned(),
            value: show(value),
            expected: expected.into(),
        }
    }

    fn map<'v>(
        &self,
        key: &str,
        v: &'v Value,
        allowed: &[&str],
    ) -> Result<&'v serde_json::Map<String, Value>, PolicyError> {
        let m = v.as_object().ok_or_else(|| self.err(key, v, "a mapping"))?;
        if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(self.err(
                &format!("{key}.{}", crate::error::printable(k, 80)),
                &Value::String(k.clone()),
                format!("a known key: one of {}", allowed.join(", ")),
            ));
        }
        Ok(m)
    }

    fn list<'v>(&self, key: &str, v: Option<&'v Value>) -> Result<&'v [Value], PolicyError> {
        match v {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(a)) => Ok(a),
            Some(other) => Err(self.err(key, other, "a list")),
        }
    }

    fn bool(&self, key: &str, v: Option<&Value>) -> Result<bool, PolicyError> {
        match v {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.err(key, other, "true or false")),
        }
    }

    fn str<'v>(&self, key: &str, v: &'v Value, expected: &str) -> Result<&'v str, PolicyError> {
        v.as_str().ok_or_else(|| self.err(key, v, expected))
    }

    fn window(&self, key: &str, v: &Value) -> Result<Window, PolicyError> {
        let m = self.map(key, v, WINDOW_KEYS)?;
        let (allow, spec_v) = match (m.get("allow"), m.get("deny")) {
            (Some(a), None) => (true, a),
            (None, Some(d)) => (false, d),
            _ => return Err(self.err(key, v, "exactly one of allow or deny, e.g. {allow: \"Mon-Thu 09:00-16:00\", tz: Europe/Berlin}")),
        };
        let spec = self.str(key, spec_v, "a window like \"Mon-Thu 09:00-16:00\"")?;
        let bad = || {
            self.err(
                &format!("{key}.{}", if allow { "allow" } else { "deny" }),
                spec_v,
                "DAYS HH:MM-HH:MM, e.g. \"Mon-Thu 09:00-16:00\" or \"Sat,Sun 00:00-24:00\"",
            )
        };
        let (days, times) = spec.split_once(' ').ok_or_else(bad)?;
        let days = parse_days(days).ok_or_else(bad)?;
        let (start, end) = times.split_once('-').ok_or_else(bad)?;
        let (start, end) = (
            parse_clock(start).ok_or_else(bad)?,
            parse_clock(end).ok_or_else(bad)?,
        );
        if start == end {
            return Err(bad());
        }
        let tz_v = m.get("tz").cloned().unwrap_or(Value::String("UTC".into()));
        let tz_name = self.str(
            &format!("{key}.tz"),
            &tz_v,
            "an IANA time zone like Europe/Berlin",
        )?;
        let tz = jiff::tz::db().get(tz_name).map_err(|_| {
            self.err(
                &format!("{key}.tz"),
                &tz_v,
                "an IANA time zone like Europe/Berlin",
            )
        })?;
        Ok(Window {
            allow,
            spec: spec.to_owned(),
            days,
            start,
            end,
            tz_name: tz_name.to_owned(),
            tz,
        })
    }
}

/// Parses and validates a policy file.
#[allow(clippy::many_single_char_names)] // p: parser, k: key, v: value, as in the rest of this module
pub fn parse(file: &str, bytes: &[u8]) -> Result<Policy, PolicyError> {
    let p = Parser { file };
    let docs = crate::manifests::yaml_documents(bytes).map_err(|reason| PolicyError {
        file: file.to_owned(),
        key: "(document)".into(),
        value: reason,
        expected: "valid YAML".into(),
    })?;
    let [doc] = docs.as_slice() else {
        return Err(p.err(
            "(document)",
            &Value::from(docs.len()),
            "exactly one YAML document",
        ));
    };
    let top = p.map("", doc, &["environments"])?;
    let envs_v = top
        .get("environments")
        .ok_or_else(|| p.err("environments", &Value::Null, "a mapping of environments"))?;
    let envs = envs_v
        .as_object()
        .ok_or_else(|| p.err("environments", envs_v, "a mapping of environments"))?;
    let mut environments = Vec::new();
    for name in envs.keys() {
        let v = &envs[name];
        let key = format!("environments.{}", crate::error::printable(name, 80));
        let env_name = EnvName::parse(name).ok_or_else(|| {
            p.err(
                &key,
                &Value::String(name.clone()),
                "an environment name of [a-z0-9]+([._-][a-z0-9]+)*",
            )
        })?;
        let env = p.map(&key, v, ENV_KEYS)?;
        let hold = match env.get("hold") {
            None | Some(Value::Null | Value::Bool(false)) => None,
            Some(Value::Bool(true)) => Some("on hold".to_owned()),
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(p.err(&format!("{key}.hold"), other, "a reason (string) or true"));
            }
        };
        let empty = Value::Object(serde_json::Map::new());
        let pk = format!("{key}.promotion_policy");
        let pol = p.map(
            &pk,
            env.get("promotion_policy").unwrap_or(&empty),
            POLICY_KEYS,
        )?;
        let mut allowed_triggers = Vec::new();
        for t in p.list(
            &format!("{pk}.allowed_triggers"),
            pol.get("allowed_triggers"),
        )? {
            allowed_triggers.push(match t.as_str() {
                Some("branch_push") => TriggerType::BranchPush,
                Some("tag") => TriggerType::Tag,
                Some("manual") => TriggerType::Manual,
                _ => {
                    return Err(p.err(
                        &format!("{pk}.allowed_triggers"),
                        t,
                        "one of branch_push, tag, manual",
                    ));
                }
            });
        }
        let mut allowed_branches = Vec::new();
        for b in p.list(
            &format!("{pk}.allowed_branches"),
            pol.get("allowed_branches"),
        )? {
            let k = format!("{pk}.allowed_branches");
            let s = p.str(&k, b, "a glob like main or release/*")?;
            allowed_branches.push(Glob::parse(s).ok_or_else(|| {
                p.err(
                    &k,
                    b,
                    "a glob of literal characters, * and ? (no [], {} or \\)",
                )
            })?);
        }
        let mut requires = Vec::new();
        for r in p.list(&format!("{pk}.requires"), pol.get("requires"))? {
            let k = format!("{pk}.requires");
            let s = p.str(&k, r, "an environment name")?;
            if s == name || !envs.contains_key(s) {
                return Err(p.err(
                    &k,
                    r,
                    format!(
                        "another environment of this file: one of {}",
                        envs.keys()
                            .filter(|e| *e != name)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            requires.push(EnvName(s.to_owned()));
        }
        let soak = match pol.get("soak") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                parse_duration(p.str(&format!("{pk}.soak"), v, "a duration like 30m")?)
                    .ok_or_else(|| {
                        p.err(
                            &format!("{pk}.soak"),
                            v,
                            "a duration like 30s, 30m, 24h, 7d or 1h30m",
                        )
                    })?,
            ),
        };
        let mut windows = Vec::new();
        for (i, w) in p
            .list(&format!("{pk}.windows"), pol.get("windows"))?
            .iter()
            .enumerate()
        {
            windows.push(p.window(&format!("{pk}.windows[{i}]"), w)?);
        }
        let requires_approval = p.bool(
            &format!("{pk}.requires_approval"),
            pol.get("requires_approval"),
        )?;
        let ak = format!("{pk}.approvals");
        let approvals = match pol.get("approvals") {
            None | Some(Value::Null) => ApprovalRule {
                min: 1,
                ttl: jiff::SignedDuration::from_hours(24),
                approvers: Vec::new(),
            },
            Some(v) => {
                let a = p.map(&ak, v, APPROVAL_KEYS)?;
                let min = match a.get("min") {
                    None => 1,
                    Some(m) => m.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
                        p.err(&format!("{ak}.min"), m, "a whole number of at least 1")
                    })? as usize,
                };
                let ttl = match a.get("ttl") {
                    None => jiff::SignedDuration::from_hours(24),
                    Some(t) => {
                        parse_duration(p.str(&format!("{ak}.ttl"), t, "a duration like 24h")?)
                            .filter(|d| d.as_secs() > 0)
                            .ok_or_else(|| p.err(&format!("{ak}.ttl"), t, "a duration like 24h"))?
                    }
                };
                let mut approvers = Vec::new();
                for v in p.list(&format!("{ak}.approvers"), a.get("approvers"))? {
                    let k = format!("{ak}.approvers");
                    approvers.push(match v {
                        Value::String(s) if !s.is_empty() => Approver {
                            id: s.clone(),
                            key: None,
                        },
                        Value::Object(_) => {
                            let m = p.map(&k, v, &["id", "key"])?;
                            let id = m
                                .get("id")
                                .and_then(Value::as_str)
                                .filter(|s| !s.is_empty())
                                .ok_or_else(|| {
                                    p.err(
                                        &format!("{k}.id"),
                                        m.get("id").unwrap_or(&Value::Null),
                                        "the approver's identity, e.g. alice@company.com",
                                    )
                                })?;
                            let key = match m.get("key") {
                                None | Some(Value::Null) => None,
                                Some(Value::String(s))
                                    if s.starts_with("ssh-") || s.starts_with("ecdsa-") =>
                                {
                                    Some(s.clone())
                                }
                                Some(other) => {
                                    return Err(p.err(
                                        &format!("{k}.key"),
                                        other,
                                        "an SSH public key like \"ssh-ed25519 AAAA...\"",
                                    ));
                                }
                            };
                            Approver {
                                id: id.to_owned(),
                                key,
                            }
                        }
                        other => return Err(p.err(&k, other, "an identity or {id, key}")),
                    });
                }
                if requires_approval && approvers.len() < min {
                    return Err(p.err(
                        &format!("{ak}.approvers"),
                        v.get("approvers").unwrap_or(&Value::Null),
                        format!("at least min ({min}) approvers"),
                    ));
                }
                ApprovalRule {
                    min,
                    ttl,
                    approvers,
                }
            }
        };
        environments.push(Environment {
            name: env_name,
            allowed_triggers,
            allowed_branches,
            auto_deploy: p.bool(&format!("{pk}.auto_deploy"), pol.get("auto_deploy"))?,
            requires_approval,
            approvals,
            requires,
            soak,
            windows,
            hold,
        });
    }
    order_by_progression(&mut environments);
    Ok(Policy { environments })
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

/// When a release reached an environment, if it ever did.
#[derive(Debug, Clone)]
pub struct Presence {
    pub env: EnvName,
    /// First time the pointer named the release.
    pub since: Option<Timestamp>,
    pub running_now: bool,
}

/// A valid approval, already checked for digest, environment, expiry and signature.
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
];

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
        let ran = p.is_some_and(|p| p.since.is_some());
        out.push(Decision::new(
            "requires",
            format!("running (or having run) in {req}"),
            match p {
                Some(p) if p.running_now => format!("running in {req}"),
                Some(p) if p.since.is_some() => format!("ran in {req}"),
                _ => format!("never deployed to {req}"),
            },
            ran,
        ));
        if let Some(soak) = env.soak {
            let since = p.and_then(|p| p.since);
            let age = since.map(|s| facts.now.duration_since(s));
            out.push(Decision::new(
                "soak",
                format!("{} in {req}", human(soak)),
                match age {
                    Some(a) => format!("{} in {req}", human(a)),
                    None => format!("never in {req}"),
                },
                age.is_some_and(|a| a >= soak),
            ));
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
            format!(
                "{} distinct approvals by {}",
                env.approvals.min,
                env.approvals
                    .approvers
                    .iter()
                    .map(|a| a.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
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

/// `1h30m` style.
#[must_use]
pub fn human(d: jiff::SignedDuration) -> String {
    let s = d.as_secs().max(0);
    let (days, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    let mut out = String::new();
    for (n, u) in [(days, "d"), (h, "h"), (m, "m"), (sec, "s")] {
        if n > 0 {
            let _ = write!(out, "{n}{u}");
        }
    }
    if out.is_empty() { "0s".into() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("RFC 3339")
    }

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

    fn facts<'a>(
        triggers: &'a [TriggerFact],
        presence: &'a [Presence],
        approvals: &'a [ApprovalFact],
        now: &str,
    ) -> Facts<'a> {
        Facts {
            triggers,
            presence,
            approvals,
            now: ts(now),
        }
    }

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
    fn durations_parse_units_and_refuse_anything_else() {
        assert_eq!(
            parse_duration("45s"),
            Some(jiff::SignedDuration::from_secs(45))
        );
        assert_eq!(
            parse_duration("30m"),
            Some(jiff::SignedDuration::from_mins(30))
        );
        assert_eq!(
            parse_duration("1h30m"),
            Some(jiff::SignedDuration::from_mins(90))
        );
        assert_eq!(
            parse_duration("7d"),
            Some(jiff::SignedDuration::from_hours(168))
        );
        for bad in [
            "",
            "30",
            "m",
            "1w",
            "30 m",
            "-5m",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_specification_example_parses_in_progression_order() {
        let p = parse(FILE, include_bytes!("../fixtures/policy/environments.yaml"))
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

    #[test]
    fn errors_name_the_file_the_key_and_the_value() {
        let e = one("allowed_trigers: [tag]").unwrap_err();
        assert_eq!(e.file, FILE);
        assert_eq!(e.key, "environments.prod.promotion_policy.allowed_trigers");
        assert_eq!(e.value, "\"allowed_trigers\"");
        let e = one("windows: [{allow: \"Mon-Thu 09:00-16:00\", tz: Mars/Olympus}]").unwrap_err();
        assert_eq!(e.key, "environments.prod.promotion_policy.windows[0].tz");
        assert_eq!(e.value, "\"Mars/Olympus\"");
        let e = one("windows: [{allow: \"Mon-Thu 09:00-25:00\"}]").unwrap_err();
        assert_eq!(e.key, "environments.prod.promotion_policy.windows[0].allow");
        let e = one("windows: [{allow: \"Mon 09:00-09:00\"}]").unwrap_err();
        assert_eq!(e.key, "environments.prod.promotion_policy.windows[0].allow");
        let e =
            one("windows: [{allow: \"Mon 09:00-10:00\", deny: \"Tue 09:00-10:00\"}]").unwrap_err();
        assert_eq!(e.key, "environments.prod.promotion_policy.windows[0]");
        let e = one("requires: [prod]").unwrap_err();
        assert_eq!(e.key, "environments.prod.promotion_policy.requires");
        assert_eq!(e.value, "\"prod\"");
        let e = one("soak: 5 minutes").unwrap_err();
        assert_eq!(e.key, "environments.prod.promotion_policy.soak");
        let e = one("auto_deploy: yes please").unwrap_err();
        assert_eq!(e.key, "environments.prod.promotion_policy.auto_deploy");
        let e = one("approvals: {min: 0}").unwrap_err();
        assert_eq!(e.key, "environments.prod.promotion_policy.approvals.min");
        let e = parse(FILE, b"environments:\n  Prod: {}\n").unwrap_err();
        assert_eq!(e.key, "environments.Prod");
        assert!(parse(FILE, b"envs: {}\n").is_err());
        assert!(parse(FILE, b"environments: {}\n---\nenvironments: {}\n").is_err());
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
    fn windows_honour_the_time_zone_the_weekday_and_midnight() {
        let berlin = prod("windows: [{allow: \"Mon-Thu 09:00-16:00\", tz: Europe/Berlin}]");
        let w = &berlin.windows[0];
        assert!(w.contains(ts("2026-11-23T08:00:00Z"))); // Mon 09:00 CET
        assert!(!w.contains(ts("2026-11-23T07:59:00Z")));
        assert!(!w.contains(ts("2026-11-23T15:00:00Z"))); // 16:00: end is exclusive
        assert!(w.contains(ts("2026-07-06T07:30:00Z"))); // Mon 09:30 CEST
        assert!(!w.contains(ts("2026-11-27T10:00:00Z"))); // Friday
        let night = prod("windows: [{deny: \"Fri 22:00-06:00\"}]");
        let w = &night.windows[0];
        assert!(w.contains(ts("2026-11-27T22:00:00Z"))); // Fri 22:00
        assert!(w.contains(ts("2026-11-28T05:59:00Z"))); // Sat 05:59, Friday's night
        assert!(!w.contains(ts("2026-11-28T06:00:00Z")));
        assert!(!w.contains(ts("2026-11-28T22:30:00Z"))); // Saturday night is not Friday's
        let sunday_to_monday = prod("windows: [{allow: \"Sun 23:00-01:00\"}]");
        assert!(sunday_to_monday.windows[0].contains(ts("2026-11-30T00:30:00Z"))); // Mon 00:30
        let whole_days = prod("windows: [{deny: \"Sat,Sun 00:00-24:00\"}]");
        assert!(whole_days.windows[0].contains(ts("2026-11-29T23:59:00Z")));
        assert!(!whole_days.windows[0].contains(ts("2026-11-30T00:00:00Z")));
    }

    #[test]
    fn every_rule_yields_a_decision_with_required_and_actual() {
        let env = prod(
            "allowed_triggers: [tag], allowed_branches: [main], requires: [dev], soak: 30m, \
             requires_approval: true, approvals: {min: 2, approvers: [a@x, b@x]}, \
             windows: [{allow: \"Mon-Thu 09:00-16:00\"}]",
        );
        let triggers = [TriggerFact {
            kind: Some(TriggerType::BranchPush),
            branch: Some("feature/x".into()),
        }];
        let presence = [Presence {
            env: EnvName::parse("dev").unwrap(),
            since: Some(ts("2026-11-23T09:50:00Z")),
            running_now: true,
        }];
        let approvals = [
            ApprovalFact {
                approver: "a@x".into(),
                valid: true,
                problem: None,
            },
            ApprovalFact {
                approver: "c@x".into(),
                valid: false,
                problem: Some("not a listed approver".into()),
            },
        ];
        let d = evaluate(
            &env,
            &facts(&triggers, &presence, &approvals, "2026-11-28T10:00:00Z"),
        );
        let got: Vec<(&str, bool, &str)> = d
            .iter()
            .map(|d| (d.rule, d.pass, d.actual.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("allowed_triggers", false, "branch_push"),
                ("allowed_branches", false, "feature/x"),
                ("requires", true, "running in dev"),
                ("soak", true, "5d10m in dev"),
                (
                    "approvals",
                    false,
                    "1 valid (a@x); not counted: c@x: not a listed approver"
                ),
                ("windows", false, "Sat 10:00 UTC"),
            ]
        );
        assert_eq!(d[3].required, "30m in dev");
        assert_eq!(d[4].required, "2 distinct approvals by a@x, b@x");
    }

    #[test]
    fn any_registered_trigger_may_pass_the_trigger_and_branch_rules() {
        let env = prod("allowed_triggers: [tag], allowed_branches: [main]");
        let triggers = [
            TriggerFact {
                kind: Some(TriggerType::BranchPush),
                branch: Some("feature/x".into()),
            },
            TriggerFact {
                kind: Some(TriggerType::Tag),
                branch: Some("main".into()),
            },
        ];
        let d = evaluate(&env, &facts(&triggers, &[], &[], "2026-11-23T10:00:00Z"));
        assert!(d.iter().all(|d| d.pass), "{d:?}");
    }

    #[test]
    fn soak_fails_until_the_full_duration_has_passed() {
        let env = prod("requires: [dev], soak: 30m");
        let presence = [Presence {
            env: EnvName::parse("dev").unwrap(),
            since: Some(ts("2026-11-23T10:00:00Z")),
            running_now: false,
        }];
        let at = |now: &str| evaluate(&env, &facts(&[], &presence, &[], now));
        let d = at("2026-11-23T10:29:59Z");
        assert_eq!((d[0].pass, d[0].actual.as_str()), (true, "ran in dev"));
        assert!(!d[1].pass);
        assert!(at("2026-11-23T10:30:00Z")[1].pass);
        let never = evaluate(&env, &facts(&[], &[], &[], "2026-11-23T10:30:00Z"));
        assert_eq!(never[0].actual, "never deployed to dev");
        assert_eq!(never[1].actual, "never in dev");
        assert!(!never[0].pass && !never[1].pass);
    }

    #[test]
    fn overrides_pass_only_the_named_failing_rules_and_mark_them() {
        let env = prod("requires: [dev], windows: [{deny: \"Mon-Sun 00:00-24:00\"}]");
        let mut d = evaluate(&env, &facts(&[], &[], &[], "2026-11-23T10:00:00Z"));
        apply_overrides(&mut d, &["windows".to_owned()]);
        let w = d.iter().find(|d| d.rule == "windows").unwrap();
        assert!(w.pass && w.overridden);
        let r = d.iter().find(|d| d.rule == "requires").unwrap();
        assert!(!r.pass && !r.overridden);
    }

    #[test]
    fn human_durations_read_naturally() {
        assert_eq!(human(jiff::SignedDuration::from_secs(0)), "0s");
        assert_eq!(human(jiff::SignedDuration::from_secs(5400)), "1h30m");
        assert_eq!(human(jiff::SignedDuration::from_secs(86_401)), "1d1s");
        assert_eq!(human(jiff::SignedDuration::from_secs(-5)), "0s");
    }
}
