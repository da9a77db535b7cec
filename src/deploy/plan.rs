//! Phase 1, plan: what should be deployed. Resolve the release in the register, fetch its
//! metadata by digest (the registry must hold exactly the registered image), and evaluate
//! the environment's policy. Reads only; `--dry-run` stops after it.

use jiff::Timestamp;

use super::record::{MAX_STAYS, Record, Stay};
use super::{Override, Request, Selector};
use crate::approvals;
use crate::exit::InvalidInput;
use crate::gitops::ProjectRef;
use crate::gitops::layout::{self, load_pointer};
use crate::gitops::register::{Entry, Register};
use crate::gitops::{GitOps, Snapshot};
use crate::ids::{CommitSha, Project, Repository};
use crate::pointer::{self, Pointer};
use crate::policy::{
    self, Decision, Departure, EnvName, Environment, Policy, Presence, TriggerFact,
};

/// One project's part of a plan.
#[derive(Debug, Clone)]
pub struct Item {
    pub env: EnvName,
    pub register: Register,
    pub target: Entry,
    pub pointer_path: String,
    pub current: Option<Pointer>,
    /// The register's entry for the current pointer's release, when it has one.
    pub current_entry: Option<Entry>,
    pub decisions: Vec<Decision>,
    /// This pointer's past, when the plan read it (a rollback): the next record continues
    /// from it.
    pub past: Option<Past>,
}

impl Item {
    #[must_use]
    pub fn project_name(&self) -> String {
        self.register.full_name()
    }
}

/// The environment `env` of `policy`, or an error listing the environments there are.
pub fn environment<'p>(policy: &'p Policy, env: &EnvName) -> Result<&'p Environment, InvalidInput> {
    policy.get(env).ok_or_else(|| {
        InvalidInput(format!(
            "{}: no environment {env}: expected one of {}",
            policy::FILE,
            policy
                .environments
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// One version of a pointer, from its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The release it names (`None`: the pointer is unreadable there).
    pub commit: Option<CommitSha>,
    /// Its number in the register, when registered.
    pub number: Option<u64>,
    /// `5 (v1.2.0)`, for people; `None` until looked up (a version read from the pointer's
    /// record: only the one a decision shows is looked up, see [`label`]).
    pub label: Option<String>,
    /// When it was committed.
    pub at: Timestamp,
    /// Written by `rollback` (the commit's `Action: rollback` trailer).
    pub rollback: bool,
}

impl Version {
    /// The label, or what the record says without the register.
    #[must_use]
    pub fn describe(&self) -> String {
        self.label
            .clone()
            .unwrap_or_else(|| match (self.number, &self.commit) {
                (Some(n), _) => format!("release {n}"),
                (None, Some(c)) => format!("commit {c}"),
                (None, None) => "no release".into(),
            })
    }
}

/// A pointer's past as the rules read it (docs/design.md §6, "The past"): its versions,
/// newest first, and whether they go back to the beginning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Past {
    pub versions: Vec<Version>,
    /// Nothing older counts: the history was walked, or the pointer's record begins where
    /// the pointer was created.
    pub complete: bool,
}

impl Past {
    /// Whether `commit` has a stay in it.
    #[must_use]
    pub fn has(&self, commit: &CommitSha) -> bool {
        self.versions
            .iter()
            .any(|v| v.commit.as_ref() == Some(commit))
    }

    /// The record these versions make, as far as they can: for a walked past, so that the
    /// next write of the pointer carries it (a version without a registered release ends it).
    #[must_use]
    pub fn record(&self) -> Option<Record> {
        let mut stays = Vec::new();
        for v in &self.versions {
            match (&v.commit, v.number) {
                (Some(c), Some(n)) if stays.len() < MAX_STAYS => stays.push(Stay {
                    since: v.at,
                    rollback: v.rollback,
                    number: n,
                    commit: c.clone(),
                }),
                _ => {
                    return (!stays.is_empty()).then_some(Record {
                        stays,
                        created: false,
                    });
                }
            }
        }
        (!stays.is_empty()).then_some(Record {
            stays,
            created: self.complete,
        })
    }
}

/// The past of the pointer at `path` (`pointer`: its content at the tip): read in O(1) from
/// the pointer's record when it has a current one, else [`walked`].
pub fn past(
    tip: &Snapshot<'_>,
    path: &str,
    pointer: Option<&Pointer>,
    register: &Register,
) -> crate::exit::Result<Past> {
    if let Some(record) = pointer.and_then(|p| Record::of(path, p)) {
        return Ok(Past {
            versions: record
                .stays
                .iter()
                .map(|s| Version {
                    commit: Some(s.commit.clone()),
                    number: Some(s.number),
                    label: None,
                    at: s.since,
                    rollback: s.rollback,
                })
                .collect(),
            complete: record.created,
        });
    }
    walked(tip, path, register)
}

/// The past of the pointer at `path`, walked through the commits (a shallow cache is
/// deepened), so complete.
pub fn walked(tip: &Snapshot<'_>, path: &str, register: &Register) -> crate::exit::Result<Past> {
    Ok(Past {
        versions: versions(tip, path, register)?,
        complete: true,
    })
}

/// Every version of the pointer at `path` that changed the release it names, newest first,
/// since the pointer was last created: a deletion ends the history (what ran before it is
/// not a stay the rules count, as a record begun by the write that creates the pointer
/// knows nothing older). Edits that keep the release, such as `unblock`, are not a new stay.
pub fn versions(
    tip: &Snapshot<'_>,
    path: &str,
    register: &Register,
) -> crate::exit::Result<Vec<Version>> {
    let mut out: Vec<Version> = Vec::new();
    for change in tip.history(path)? {
        let change = change?;
        let Some(content) = change.content.as_deref() else {
            break;
        };
        let commit = pointer::parse(path, content).ok().map(|p| p.id.commit);
        let entry = match &commit {
            Some(c) => register.find_commit(tip, c)?,
            None => None,
        };
        let entry = entry.as_ref();
        let version = Version {
            number: entry.map(|e| e.number),
            label: Some(match (entry, &commit) {
                (Some(e), _) => format!("release {}", e.label()),
                (None, Some(c)) => format!("commit {c}"),
                (None, None) => "no release".into(),
            }),
            commit,
            at: Timestamp::from_second(change.time)?,
            rollback: super::trailers::get(&super::trailers::parse(&change.message), "Action")
                == Some("rollback"),
        };
        // Newest first: an older change naming the same release is the same stay, and the
        // stay began there; keep the oldest (its time) with the newest's other facts.
        match out.last_mut() {
            Some(newer) if newer.commit == version.commit => {
                newer.at = version.at;
                newer.rollback = version.rollback;
            }
            _ => out.push(version),
        }
    }
    Ok(out)
}

/// Looks up the label of the version that followed `commit`'s most recent stay (the one a
/// departure names), when it was read from a record.
pub fn label(
    tip: &Snapshot<'_>,
    register: &Register,
    versions: &mut [Version],
    commit: &CommitSha,
) -> crate::exit::Result<()> {
    let at = versions
        .iter()
        .position(|v| v.commit.as_ref() == Some(commit));
    let Some(next) = at.filter(|i| *i > 0).map(|i| &mut versions[i - 1]) else {
        return Ok(());
    };
    if next.label.is_none()
        && let Some(c) = &next.commit
        && let Some(e) = register.find_commit(tip, c)?
    {
        next.label = Some(format!("release {}", e.label()));
    }
    Ok(())
}

/// The release `commit` (number `number`) in `env`: its most recent continuous stay there,
/// from `versions` (newest first, as [`versions`] gives them), and whether `blocked` there.
#[must_use]
pub fn presence(
    env: &EnvName,
    versions: &[Version],
    commit: &CommitSha,
    number: u64,
    blocked: bool,
) -> Presence {
    let at = versions
        .iter()
        .position(|v| v.commit.as_ref() == Some(commit));
    let Some(i) = at else {
        return Presence {
            env: env.clone(),
            since: None,
            running_now: false,
            ended: None,
            blocked,
        };
    };
    let ended = (i > 0).then(|| {
        let next = &versions[i - 1];
        Departure {
            at: next.at,
            forward: !next.rollback && next.number.is_some_and(|n| n > number),
            by: next.describe(),
        }
    });
    Presence {
        env: env.clone(),
        since: Some(versions[i].at),
        running_now: i == 0,
        ended,
        blocked,
    }
}

/// Replays `versions` oldest first: forward deploys stack up and a rollback returns down the
/// stack. Also says whether a rollback returned to a release not on the stack (on a past
/// that is not complete, it may be on the part of the stack the past does not show).
fn replay(versions: &[Version]) -> (Vec<&CommitSha>, bool) {
    let mut stack: Vec<&CommitSha> = Vec::new();
    let mut beyond = false;
    for v in versions.iter().rev() {
        let Some(c) = &v.commit else {
            stack.clear();
            continue;
        };
        if v.rollback {
            if let Some(pos) = stack.iter().rposition(|s| *s == c) {
                stack.truncate(pos + 1);
                continue;
            }
            beyond = true;
        }
        if stack.last() != Some(&c) {
            stack.push(c);
        }
    }
    (stack, beyond)
}

/// Rollback's default target: replaying the history oldest first, forward deploys stack up
/// and a rollback returns down the stack, so the target is the release that ran before the
/// current one was deployed forward, skipping releases blocked here. Two rollbacks in a row
/// go two steps back, never forward. `versions` is the whole history.
#[must_use]
pub fn rollback_target<'v>(versions: &'v [Version], blocked: &[String]) -> Option<&'v CommitSha> {
    let (mut stack, _) = replay(versions);
    stack.pop()?;
    stack
        .into_iter()
        .rev()
        .find(|c| !blocked.iter().any(|b| b == c.as_str()))
}

/// [`rollback_target`] on a past that may not be complete: `None` when the answer may lie
/// in what it does not show (then the history is walked), `Some(target)` when it is known.
#[must_use]
pub fn rollback_target_in<'v>(past: &'v Past, blocked: &[String]) -> Option<Option<&'v CommitSha>> {
    if past.complete {
        return Some(rollback_target(&past.versions, blocked));
    }
    let (mut stack, beyond) = replay(&past.versions);
    if beyond {
        return None;
    }
    stack.pop()?;
    stack
        .into_iter()
        .rev()
        .find(|c| !blocked.iter().any(|b| b == c.as_str()))
        .map(Some)
}

/// Everything plan needs besides the repository.
pub struct Context<'a> {
    pub gitops: &'a GitOps,
    pub now: Timestamp,
    pub overrides: &'a [Override],
    /// A rollback: a release that ran in the environment before is judged only by windows
    /// (and the hold), and may not be newer than the current one.
    pub rollback: bool,
    /// Who deploys: without an approver list, anyone else may approve.
    pub actor: Option<&'a str>,
    /// Verifies an approval signature: (public key, payload, signature).
    pub verify: approvals::SignatureCheck<'a>,
}

/// On a lazy cache, fetches the files planning `request` reads first — the register's head
/// (`head`), the pointers of the environment, of those it requires and of a promotion's
/// source, the buckets the release id may name — in one request per tree level rather than
/// one per tree and file (a cold deploy: 17 requests → 11).
fn prefetch(
    tip: &Snapshot<'_>,
    env: &Environment,
    request: &Request,
    repository: &Repository,
    project: &Project,
    head: bool,
) -> crate::exit::Result<()> {
    let dir = layout::register_dir(repository, project);
    let mut paths = vec![layout::pointer_path(&env.name, repository, project)];
    if head {
        paths.push(layout::register_head(&dir));
    }
    paths.extend(
        env.requires
            .iter()
            .map(|e| layout::pointer_path(e, repository, project)),
    );
    match &request.selector {
        Selector::Id(id) => {
            paths.extend(crate::gitops::register::bucket::id_paths(&dir, id.as_str()));
        }
        Selector::RunningIn(from) => paths.push(layout::pointer_path(from, repository, project)),
        Selector::Previous => {}
    }
    Ok(tip.prefetch(&paths)?)
}

/// Plans one request against the tip.
pub fn plan_item(
    cx: &Context<'_>,
    tip: &Snapshot<'_>,
    policy: &Policy,
    request: &Request,
) -> crate::exit::Result<Item> {
    let env = environment(policy, &request.env)?;
    if let ProjectRef::Full(repository, project) = &request.project {
        prefetch(tip, env, request, repository, project, true)?;
    }
    let register = crate::gitops::find_register(cx.gitops, tip, &request.project)?;
    if let ProjectRef::Bare(_) = &request.project {
        prefetch(
            tip,
            env,
            request,
            &register.repository,
            &register.project,
            false,
        )?;
    }
    let pointer_path = layout::pointer_path(&env.name, &register.repository, &register.project);
    let current = load_pointer(tip, &pointer_path)?;
    let current_entry = match &current {
        Some(p) => register.find_commit(tip, &p.id.commit)?,
        None => None,
    };
    // A rollback reads this pointer's past: from its record, walked only when the record
    // does not reach far enough back for the question.
    let mut here = if cx.rollback {
        Some(past(tip, &pointer_path, current.as_ref(), &register)?)
    } else {
        None
    };
    let target = match &request.selector {
        Selector::Id(id) => register.resolve(tip, id)?,
        Selector::RunningIn(from) => {
            environment(policy, from)?;
            let from_path = layout::pointer_path(from, &register.repository, &register.project);
            let running = load_pointer(tip, &from_path)?.ok_or_else(|| {
                InvalidInput(format!(
                    "nothing of {} runs in {from}: no {from_path}",
                    register.full_name()
                ))
            })?;
            register
                .find_commit(tip, &running.id.commit)?
                .ok_or_else(|| {
                    InvalidInput(format!(
                        "{from_path} names commit {}, which is not registered for {}",
                        running.id.commit,
                        register.full_name()
                    ))
                })?
        }
        Selector::Previous => {
            let cur = current.as_ref().ok_or_else(|| {
                InvalidInput(format!(
                    "nothing to roll back: {} does not run in {}",
                    register.full_name(),
                    env.name
                ))
            })?;
            let blocked = cur.blocked();
            let mut target = None;
            if let Some(p) = &mut here {
                target = rollback_target_in(p, &blocked).map(Option::<&CommitSha>::cloned);
                if target.is_none() {
                    *p = walked(tip, &pointer_path, &register)?;
                    target = Some(rollback_target(&p.versions, &blocked).cloned());
                }
            }
            let target = match target.flatten() {
                Some(c) => register.find_commit(tip, &c)?,
                None => None,
            };
            target.ok_or_else(|| {
                    InvalidInput(format!(
                        "nothing to roll back to: {} has had no other release in {} before the current one that is not blocked ({pointer_path} history)",
                        register.full_name(),
                        env.name
                    ))
                })?
        }
    };
    let triggers: Vec<TriggerFact> = target
        .triggers
        .iter()
        .map(|t| TriggerFact {
            kind: t.kind,
            branch: t.branch.clone(),
        })
        .collect();
    // A rollback to a release that ran here before was admitted then: approvals,
    // progression and soak do not gate it again (windows and holds still do).
    let ran_here = |p: &Past| {
        p.versions
            .iter()
            .skip(1)
            .any(|v| v.commit.as_ref() == Some(&target.commit))
    };
    let returning = match &mut here {
        Some(p) if ran_here(p) => true,
        Some(p) if !p.complete => {
            *p = walked(tip, &pointer_path, &register)?;
            ran_here(p)
        }
        _ => false,
    };
    let gated;
    let env = if returning {
        gated = Environment {
            requires: Vec::new(),
            soak: None,
            requires_approval: false,
            healthy: Vec::new(),
            retry_limit: None,
            ..env.clone()
        };
        &gated
    } else {
        env
    };
    let mut presences = Vec::new();
    for req in &env.requires {
        let path = layout::pointer_path(req, &register.repository, &register.project);
        let cur = load_pointer(tip, &path)?;
        let blocked = cur
            .as_ref()
            .is_some_and(|p| p.blocked().iter().any(|c| c == target.commit.as_str()));
        // Read from the record: walked only to learn that the release never ran there
        // when the record does not go back to the pointer's creation.
        let mut history = past(tip, &path, cur.as_ref(), &register)?;
        if !history.complete && !history.has(&target.commit) {
            history = walked(tip, &path, &register)?;
        }
        label(tip, &register, &mut history.versions, &target.commit)?;
        presences.push(presence(
            req,
            &history.versions,
            &target.commit,
            target.number,
            blocked,
        ));
    }
    let approval_file = if env.requires_approval {
        let path = layout::approvals_path(
            &env.name,
            &register.repository,
            &register.project,
            &target.commit,
        );
        layout::load_approvals(tip, &path)?
    } else {
        None
    };
    let approval_facts = approvals::facts(
        approval_file.as_ref(),
        env,
        &target.digest,
        cx.now,
        cx.actor,
        cx.verify,
    );
    let mut decisions = policy::evaluate(
        env,
        &policy::Facts {
            triggers: &triggers,
            presence: &presences,
            approvals: &approval_facts,
            now: cx.now,
        },
    );
    if !env.healthy.is_empty() || env.retry_limit.is_some() {
        decisions.extend(policy::outcomes::evaluate_outcomes(
            env,
            &outcome_facts(cx.gitops, env, &register, &target.commit)?,
        ));
    }
    if let Selector::RunningIn(from) = &request.selector {
        // The path is judged against the policy as written, before any rollback relief.
        decisions.extend(policy::promotion_path(policy, from, &env.name));
    }
    policy::apply_overrides(&mut decisions, &Override::rules(cx.overrides));
    Ok(Item {
        env: env.name.clone(),
        register,
        target,
        pointer_path,
        current,
        current_entry,
        decisions,
        past: here,
    })
}

/// What the recorded outcomes (git notes, fetched now) say about `commit` of `register`'s
/// project, for the outcome rules of `env`.
fn outcome_facts(
    gitops: &GitOps,
    env: &Environment,
    register: &Register,
    commit: &crate::ids::CommitSha,
) -> crate::exit::Result<policy::outcomes::OutcomeFacts> {
    gitops.fetch_notes()?;
    let project = format!("{}/{}", register.repository, register.project);
    let mut facts = policy::outcomes::OutcomeFacts::default();
    for (_, o) in gitops.all_outcomes()? {
        if o.project != project || o.release != commit.as_str() {
            continue;
        }
        if o.state == crate::gitops::notes::State::Succeeded {
            if let Some(e) = EnvName::parse(&o.environment)
                && !facts.healthy_in.contains(&e)
            {
                facts.healthy_in.push(e);
            }
        } else if o.environment == env.name.as_str() {
            facts.failures_here += 1;
        }
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(n: u64) -> CommitSha {
        format!("{n:040}").parse().unwrap()
    }

    /// A version naming release `n` (0: no release) from `at`, written by a rollback or not.
    fn v(n: u64, at: &str, rollback: bool) -> Version {
        Version {
            commit: (n > 0).then(|| sha(n)),
            number: (n > 0).then_some(n),
            label: Some(format!("release {n}")),
            at: format!("2026-11-23T{at}:00Z").parse().unwrap(),
            rollback,
        }
    }

    fn dev() -> EnvName {
        EnvName::parse("dev").unwrap()
    }

    /// Oldest first in the test, newest first as [`versions`] gives them.
    fn newest_first(mut history: Vec<Version>) -> Vec<Version> {
        history.reverse();
        history
    }

    #[test]
    fn the_stay_that_counts_is_the_most_recent_one_and_says_how_it_ended() {
        let h = newest_first(vec![
            v(1, "08:00", false),
            v(2, "09:00", false),
            v(1, "10:00", true),
            v(3, "12:00", false),
            v(4, "12:05", false),
        ]);
        // Release 3: 12:00 to 12:05, replaced forward by 4.
        let p = presence(&dev(), &h, &sha(3), 3, false);
        assert_eq!(p.since, Some("2026-11-23T12:00:00Z".parse().unwrap()));
        assert!(!p.running_now);
        let e = p.ended.unwrap();
        assert!(e.forward);
        assert_eq!(e.at, "2026-11-23T12:05:00Z".parse().unwrap());
        // Release 2 was rolled back away from.
        let p = presence(&dev(), &h, &sha(2), 2, false);
        assert!(!p.ended.unwrap().forward);
        // Release 1's most recent stay began at the rollback, 10:00, not at 08:00.
        let p = presence(&dev(), &h, &sha(1), 1, false);
        assert_eq!(p.since, Some("2026-11-23T10:00:00Z".parse().unwrap()));
        assert!(p.ended.unwrap().forward);
        let p = presence(&dev(), &h, &sha(4), 4, true);
        assert!(p.running_now && p.blocked && p.ended.is_none());
        assert!(presence(&dev(), &h, &sha(9), 9, false).since.is_none());
    }

    #[test]
    fn replacing_a_release_with_an_older_one_is_not_leaving_it_forward() {
        let h = newest_first(vec![v(5, "08:00", false), v(3, "09:00", false)]);
        assert!(
            !presence(&dev(), &h, &sha(5), 5, false)
                .ended
                .unwrap()
                .forward
        );
    }

    #[test]
    fn rollbacks_go_back_down_the_forward_deploys_never_forward() {
        let target = |h: Vec<Version>, blocked: &[u64]| {
            let blocked: Vec<String> = blocked.iter().map(|b| sha(*b).to_string()).collect();
            rollback_target(&newest_first(h), &blocked).cloned()
        };
        let deployed = vec![
            v(1, "08:00", false),
            v(2, "09:00", false),
            v(3, "10:00", false),
        ];
        assert_eq!(target(deployed.clone(), &[]), Some(sha(2)));
        // After rolling back to 2, the next rollback goes to 1, not forward to 3.
        let mut once = deployed.clone();
        once.push(v(2, "11:00", true));
        assert_eq!(target(once.clone(), &[3]), Some(sha(1)));
        assert_eq!(target(once.clone(), &[]), Some(sha(1)));
        let mut twice = once;
        twice.push(v(1, "12:00", true));
        assert_eq!(target(twice, &[]), None);
        // Blocked releases are skipped.
        assert_eq!(target(deployed.clone(), &[2]), Some(sha(1)));
        // A forward deploy after a rollback stacks again.
        let mut again = deployed;
        again.push(v(2, "11:00", true));
        again.push(v(4, "12:00", false));
        assert_eq!(target(again, &[3]), Some(sha(2)));
        assert_eq!(target(vec![v(1, "08:00", false)], &[]), None);
    }

    /// The last `keep` versions of `history` (oldest first) as a record would show them.
    fn recorded(history: &[Version], keep: usize) -> Past {
        let versions = newest_first(history.to_vec())
            .into_iter()
            .take(keep)
            .map(|v| Version { label: None, ..v })
            .collect();
        Past {
            versions,
            complete: keep >= history.len(),
        }
    }

    #[test]
    fn a_short_record_answers_a_rollback_when_the_answer_is_in_it_and_says_so_when_not() {
        let history = vec![
            v(1, "08:00", false),
            v(2, "09:00", false),
            v(3, "10:00", false),
            v(4, "11:00", false),
        ];
        let full = newest_first(history.clone());
        for keep in 1..=4 {
            let past = recorded(&history, keep);
            let whole = rollback_target(&full, &[]).cloned();
            match rollback_target_in(&past, &[]) {
                Some(t) => assert_eq!(t.cloned(), whole, "keep {keep}"),
                None => assert!(keep < 2, "keep {keep}: the target 3 is in the record"),
            }
        }
        // Blocked down to 1: only the whole history knows it.
        let blocked = [sha(3).to_string(), sha(2).to_string()];
        assert_eq!(rollback_target_in(&recorded(&history, 3), &blocked), None);
        assert_eq!(
            rollback_target_in(&recorded(&history, 4), &blocked),
            Some(Some(&sha(1)))
        );
        // A rollback back to a release older than the record: the record cannot replay it.
        let mut back = history;
        back.push(v(1, "12:00", true));
        assert_eq!(rollback_target_in(&recorded(&back, 3), &[]), None);
        assert_eq!(
            rollback_target_in(&recorded(&back, 5), &[]),
            Some(rollback_target(&newest_first(back), &[]))
        );
    }

    #[test]
    fn a_past_becomes_the_record_the_next_write_continues_bounded_to_ten_stays() {
        let history: Vec<Version> = (1..=12)
            .map(|n| v(n, &format!("{n:02}:00"), n == 7))
            .collect();
        let walked = Past {
            versions: newest_first(history.clone()),
            complete: true,
        };
        let r = walked.record().unwrap();
        assert_eq!(r.stays.len(), MAX_STAYS);
        assert!(!r.created, "two stays left out");
        assert_eq!(r.stays[0].number, 12);
        assert!(r.stays[5].rollback && r.stays[5].number == 7);
        let short = Past {
            versions: newest_first(history[..3].to_vec()),
            complete: true,
        };
        assert!(short.record().unwrap().created);
        // An unregistered or unreadable version ends what can be recorded.
        let mut gap = history[..3].to_vec();
        gap[1] = v(0, "02:00", false);
        let r = Past {
            versions: newest_first(gap),
            complete: true,
        }
        .record()
        .unwrap();
        assert_eq!((r.stays.len(), r.created), (1, false));
    }

    #[test]
    fn a_departure_read_from_a_record_names_the_release_by_its_number() {
        let h = recorded(&[v(1, "08:00", false), v(2, "09:00", false)], 2);
        let p = presence(&dev(), &h.versions, &sha(1), 1, false);
        let e = p.ended.unwrap();
        assert!(e.forward);
        assert_eq!(e.by, "release 2");
    }
}
