//! The recent history a pointer carries with it (the `releasectl.dev/history` annotation,
//! docs/format.md §11 and docs/design.md §6): the last [`MAX_STAYS`] stays of a release in
//! that environment, newest first, so soak, progression and rollback's default target read
//! the past from the tip in O(1) instead of walking commits (which, on a cold shallow cache,
//! means fetching every commit and tree of the repository).
//!
//! Invariants: a record holds 1..=[`MAX_STAYS`] stays, each naming a different release than
//! the stay before it (a stay is one continuous run of one release); its encoding is one
//! deterministic line, so the same facts always give the same bytes; a record is only read
//! when its newest stay names the pointer's release ([`Record::of`]): an edit by hand that
//! moved the release without it leaves a stale record, which is ignored (the history is
//! walked instead), and `check` flags it.

use std::fmt::Write as _;

use jiff::Timestamp;

use super::Action;
use crate::ids::CommitSha;
use crate::pointer::{ANN_HISTORY, Pointer};

/// How many stays a record keeps.
pub const MAX_STAYS: usize = 10;

/// The marker after the oldest stay when the write of that stay created the pointer: the
/// record then holds the pointer's whole history.
pub const CREATED: &str = "created";

/// How a stay began: by a rollback, or by any other write (deploy, promote, a group,
/// auto-deploy).
const ROLLBACK: &str = "rollback";
const DEPLOY: &str = "deploy";

/// One continuous stay of a release in the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stay {
    /// When the write that began it was made (the commit's time), whole seconds.
    pub since: Timestamp,
    /// A rollback began it (`rollback`; anything else is `deploy`).
    pub rollback: bool,
    /// The release's number in the register.
    pub number: u64,
    /// The release's commit.
    pub commit: CommitSha,
}

impl Stay {
    /// The stay `action` begins at `since` for release `number` at `commit`.
    #[must_use]
    pub fn new(since: Timestamp, action: &Action, number: u64, commit: CommitSha) -> Self {
        Self {
            since: Timestamp::from_second(since.as_second()).unwrap_or(since),
            rollback: matches!(action, Action::Rollback { .. }),
            number,
            commit,
        }
    }
}

/// A pointer's recent history, newest stay first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub stays: Vec<Stay>,
    /// The oldest stay's write created the pointer: nothing older exists.
    pub created: bool,
}

/// A `releasectl.dev/history` value that is not a record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{file}: metadata.annotations.{ANN_HISTORY}: {what}: expected {expected}, found {actual}")]
pub struct RecordError {
    pub file: String,
    pub what: String,
    pub expected: String,
    pub actual: String,
}

crate::exit_class!(RecordError => Usage);

impl Record {
    /// The one-line encoding: stays newest first, separated by `,`, each
    /// `<since> <action> <number> <commit>`, then `,created` when [`Record::created`].
    #[must_use]
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (i, s) in self.stays.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{} {} {} {}",
                crate::clock::format(s.since),
                if s.rollback { ROLLBACK } else { DEPLOY },
                s.number,
                s.commit
            );
        }
        if self.created {
            out.push(',');
            out.push_str(CREATED);
        }
        out
    }

    /// Parses a record; `file` names the pointer in errors.
    pub fn decode(file: &str, value: &str) -> Result<Self, RecordError> {
        let err = |what: String, expected: &str, actual: &str| RecordError {
            file: file.to_owned(),
            what,
            expected: expected.to_owned(),
            actual: format!("{:?}", crate::text::excerpt(actual)),
        };
        let mut parts: Vec<&str> = if value.is_empty() {
            Vec::new()
        } else {
            value.split(',').collect()
        };
        let created = parts.last() == Some(&CREATED);
        if created {
            parts.pop();
        }
        if parts.is_empty() || parts.len() > MAX_STAYS {
            return Err(err(
                "stays".into(),
                &format!("1 to {MAX_STAYS} stays separated by ','"),
                value,
            ));
        }
        let mut stays: Vec<Stay> = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let what = |field: &str| format!("stay {} {field}", i + 1);
            let fields: Vec<&str> = part.split(' ').collect();
            let [since, action, number, commit] = fields.as_slice() else {
                return Err(err(
                    what("fields"),
                    "'<since> <action> <number> <commit>' (one space between)",
                    part,
                ));
            };
            let at: Timestamp = since
                .parse()
                .ok()
                .filter(|t| crate::clock::format(*t) == *since)
                .ok_or_else(|| err(what("since"), "RFC 3339 UTC, whole seconds", since))?;
            let rollback = match *action {
                ROLLBACK => true,
                DEPLOY => false,
                _ => return Err(err(what("action"), "deploy or rollback", action)),
            };
            let n: u64 = number
                .parse()
                .ok()
                .filter(|n: &u64| *n > 0 && n.to_string() == *number)
                .ok_or_else(|| err(what("number"), "a release number from 1", number))?;
            let c: CommitSha = commit
                .parse()
                .map_err(|_| err(what("commit"), "a commit SHA of lower-case hex", commit))?;
            if stays.last().is_some_and(|s| s.commit == c) {
                return Err(err(
                    what("commit"),
                    "another release than the stay before (one stay per run of a release)",
                    commit,
                ));
            }
            stays.push(Stay {
                since: at,
                rollback,
                number: n,
                commit: c,
            });
        }
        Ok(Self { stays, created })
    }

    /// The pointer's record, if it has one: `Ok(None)` without the annotation.
    pub fn read(file: &str, pointer: &Pointer) -> Result<Option<Self>, RecordError> {
        pointer
            .annotations
            .get(ANN_HISTORY)
            .map(|v| Self::decode(file, v))
            .transpose()
    }

    /// The record the rules may read: well-formed, and its newest stay names the pointer's
    /// release (otherwise it is stale or broken, and the history is walked instead).
    #[must_use]
    pub fn of(file: &str, pointer: &Pointer) -> Option<Self> {
        Self::read(file, pointer).ok().flatten().filter(|r| {
            r.stays
                .first()
                .is_some_and(|s| s.commit == pointer.id.commit)
        })
    }

    /// The record after a write that leaves release `stay.commit` in place of `previous`
    /// (`None`: the write creates the pointer). The previous pointer's own record continues
    /// when it is current (so `check` can verify the new one from the old one alone);
    /// otherwise `known`, the history the plan walked, as a record. Without either, the new
    /// record begins with the new stay (and the history before it is walked when a rule
    /// needs it).
    #[must_use]
    pub fn next(previous: Option<(&str, &Pointer)>, known: Option<&Self>, stay: Stay) -> Self {
        let before = match previous {
            None => Some(Self {
                stays: Vec::new(),
                created: true,
            }),
            Some((file, p)) => Self::of(file, p).or_else(|| known.cloned()),
        };
        let mut record = before.unwrap_or(Self {
            stays: Vec::new(),
            created: false,
        });
        if record
            .stays
            .first()
            .is_some_and(|s| s.commit == stay.commit)
        {
            // The same release stays: the stay goes on (an unblock, or a hand edit).
            return record;
        }
        record.stays.insert(0, stay);
        if record.stays.len() > MAX_STAYS {
            record.stays.truncate(MAX_STAYS);
            record.created = false;
        }
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POINTER: &str = "apiVersion: releasectl.dev/v1alpha1\nkind: ReleasePointer\nmetadata:\n  name: auth-service\nspec:\n  repository: company/monorepo\n  project: auth-service\n  release: 0123456789abcdef0123456789abcdef01234567\n";

    fn sha(n: u64) -> CommitSha {
        format!("{n:040x}").parse().unwrap()
    }

    fn stay(n: u64, minute: u32, action: &str) -> Stay {
        Stay {
            since: format!("2026-11-23T12:{minute:02}:00Z").parse().unwrap(),
            rollback: action == "rollback",
            number: n,
            commit: sha(n),
        }
    }

    #[test]
    fn a_record_encodes_to_one_line_and_decodes_back_to_itself() {
        let r = Record {
            stays: vec![
                stay(3, 10, "rollback"),
                stay(4, 5, "deploy"),
                stay(3, 0, "deploy"),
            ],
            created: true,
        };
        let line = r.encode();
        assert_eq!(
            line,
            format!(
                "2026-11-23T12:10:00Z rollback 3 {},2026-11-23T12:05:00Z deploy 4 {},2026-11-23T12:00:00Z deploy 3 {},created",
                sha(3),
                sha(4),
                sha(3)
            )
        );
        assert_eq!(Record::decode("p.yaml", &line).unwrap(), r);
        let open = Record {
            created: false,
            ..r
        };
        assert_eq!(Record::decode("p.yaml", &open.encode()).unwrap(), open);
        assert!(open.stays[0].rollback && !open.stays[1].rollback);
    }

    #[test]
    fn a_malformed_record_is_refused_naming_the_file_the_stay_and_what_was_expected() {
        let good = stay(1, 0, "deploy");
        let line = Record {
            stays: vec![good.clone()],
            created: false,
        }
        .encode();
        let cases = [
            ("", "stays", "1 to 10 stays"),
            ("created", "stays", "1 to 10 stays"),
            (
                &line.replace(" deploy ", " unblock "),
                "stay 1 action",
                "\"unblock\"",
            ),
            (
                &line.replace("12:00:00Z", "12:00:00+01:00"),
                "stay 1 since",
                "whole seconds",
            ),
            (&line.replace(" 1 ", " 0 "), "stay 1 number", "from 1"),
            (&line.replace(" 1 ", " 01 "), "stay 1 number", "\"01\""),
            (&line.replace(" 1 ", "  1 "), "stay 1 fields", "one space"),
            (
                &format!("{line},{line}"),
                "stay 2 commit",
                "one stay per run",
            ),
            (&format!("{line},,created"), "stay 2 fields", "one space"),
            (
                &line.replace(&sha(1).to_string(), "main"),
                "stay 1 commit",
                "\"main\"",
            ),
        ];
        for (value, what, needle) in cases {
            let m = Record::decode("dev/apps/x/release.yaml", value)
                .unwrap_err()
                .to_string();
            assert!(
                m.starts_with(
                    "dev/apps/x/release.yaml: metadata.annotations.releasectl.dev/history: "
                ) && m.contains(what)
                    && m.contains(needle),
                "{value:?}: {m}"
            );
        }
        let eleven: Vec<String> = (1..=11)
            .map(|n| {
                Record {
                    stays: vec![stay(n, 0, "deploy")],
                    created: false,
                }
                .encode()
            })
            .collect();
        let m = Record::decode("p", &eleven.join(",")).unwrap_err();
        assert_eq!(m.what, "stays");
        assert!(Record::decode("p", &eleven[..10].join(",")).is_ok());
    }

    #[test]
    fn each_write_adds_a_stay_keeps_ten_and_forgets_it_was_created_when_it_drops_one() {
        let mut r = Record::next(None, None, stay(1, 0, "deploy"));
        assert!(r.created && r.stays.len() == 1);
        let pointer = |r: &Record, n: u64| {
            let mut p = crate::pointer::parse("p", POINTER.as_bytes()).unwrap();
            p.id.commit = sha(n);
            p.annotations.insert(ANN_HISTORY.into(), r.encode());
            p
        };
        for n in 2..=10 {
            r = Record::next(Some(("p", &pointer(&r, n - 1))), None, stay(n, 0, "deploy"));
        }
        assert!(r.created && r.stays.len() == MAX_STAYS);
        let r11 = Record::next(Some(("p", &pointer(&r, 10))), None, stay(11, 0, "deploy"));
        assert!(!r11.created);
        assert_eq!(r11.stays.len(), MAX_STAYS);
        assert_eq!(r11.stays[0].number, 11);
        assert_eq!(r11.stays[9].number, 2);
        // The same release again (an unblock): the stay goes on, unchanged.
        let same = Record::next(
            Some(("p", &pointer(&r11, 11))),
            None,
            stay(11, 30, "deploy"),
        );
        assert_eq!(same, r11);
    }

    #[test]
    fn a_stale_or_missing_record_is_not_continued_and_the_new_one_says_so() {
        let r = Record::next(None, None, stay(1, 0, "deploy"));
        let mut p = crate::pointer::parse("p", POINTER.as_bytes()).unwrap();
        p.id.commit = sha(2); // moved by hand to release 2, the record left behind
        p.annotations.insert(ANN_HISTORY.into(), r.encode());
        assert_eq!(Record::of("p", &p), None);
        let next = Record::next(Some(("p", &p)), None, stay(3, 5, "deploy"));
        assert_eq!(next.stays, vec![stay(3, 5, "deploy")]);
        assert!(!next.created, "what came before is unknown");
        // A walked history continues instead.
        let walked = Record {
            stays: vec![stay(2, 1, "deploy"), stay(1, 0, "deploy")],
            created: true,
        };
        let next = Record::next(Some(("p", &p)), Some(&walked), stay(3, 5, "deploy"));
        assert_eq!(next.stays.len(), 3);
        assert!(next.created);
        p.annotations.remove(ANN_HISTORY);
        assert_eq!(Record::read("p", &p), Ok(None));
    }
}
