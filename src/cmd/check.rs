//! `check`: the GitOps repository checks itself (docs/design.md §7, §8), so a change pushed
//! around the CLI is caught by the repository's own CI or `pre-receive` hook.
//!
//! For every pointer change (each commit of `--range`, or the last change of every pointer
//! at the tip): the pointer parses; it names a registered release with the same digest; the
//! environment's policy at that commit passed at that time — triggers, branches, approvals
//! (signatures included), progression, soak and windows — or the commit records an
//! override for the failing rule; the environment was not on hold; the release was not
//! blocked there; and releasectl's trailers, when present, agree with the change.
//!
//! When the policy lists `commit_signers`, every commit that touches a pointer, a register or
//! approvals must carry a valid SSH signature (git's `gpg.format=ssh`) by one of their keys,
//! judged by the policy before the commit (so a commit cannot trust its own key).
//!
//! A pointer's record of recent stays (`releasectl.dev/history`) must be well formed and
//! agree with the commit that wrote it: the rules trust it as they trust the pointer.
//!
//! Registers (docs/register.md §4), in any of their three formats: at the tip every register
//! is checked whole; in a range, the register files each commit changed.

use std::io::Write;

use serde::Serialize;

use crate::cli::CheckArgs;
use crate::deploy::plan::{self, Context};
use crate::deploy::record::{Record, Stay};
use crate::deploy::{Override, Request, Selector, trailers};
use crate::exit::{Exit, InvalidInput};
use crate::gitops::layout::{self, pointer_env};
use crate::gitops::register::validate;
use crate::gitops::{GitOps, ProjectRef, ReleaseSelector};
use crate::pointer;
use crate::policy::EnvName;
use crate::settings::{Output, Settings};

#[derive(Debug, Serialize)]
struct Violation {
    commit: String,
    file: String,
    rule: String,
    required: String,
    actual: String,
}

struct Checker<'g> {
    gitops: &'g GitOps,
    /// Judge windows at this time instead of commit time (the hook: the push happens now).
    now: Option<jiff::Timestamp>,
    violations: Vec<Violation>,
    /// The kinds an `env.yaml` may hold (`RELEASECTL_ENV_KINDS`), as `generate` enforces them.
    env_kinds: &'g [String],
    /// Commits whose signature was already checked.
    signatures_checked: std::collections::HashSet<git2::Oid>,
}

/// Whether a change to `path` needs a signed commit when the policy lists `commit_signers`.
fn needs_signature(path: &str) -> bool {
    pointer_env(path).is_some() || path.starts_with("releases/") || path.starts_with("approvals/")
}

impl Checker<'_> {
    /// With `commit_signers` in the policy before `commit`, the commit must carry a valid SSH
    /// signature by one of their keys.
    fn signature(&mut self, commit: git2::Oid, file: &str) -> crate::exit::Result<()> {
        if !self.signatures_checked.insert(commit) {
            return Ok(());
        }
        let at = self.gitops.parent(commit)?.unwrap_or(commit);
        let Some(bytes) = self.gitops.snapshot_at(at)?.read(layout::POLICY)? else {
            return Ok(());
        };
        let policy = crate::policy::parse(layout::POLICY, &bytes)?;
        if policy.commit_signers.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = policy
            .commit_signers
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        let required = format!(
            "a commit signed by one of commit_signers ({})",
            ids.join(", ")
        );
        let actual = match self.gitops.commit_signer(commit) {
            crate::signing::CommitSigner::Key {
                public,
                fingerprint,
            } => {
                if policy.commit_signers.iter().any(|s| {
                    s.key
                        .as_deref()
                        .is_some_and(|k| crate::signing::same_key(k, &public))
                }) {
                    return Ok(());
                }
                format!("signed by {fingerprint}, a key not listed")
            }
            crate::signing::CommitSigner::Unsigned => "unsigned".to_owned(),
            crate::signing::CommitSigner::Invalid(why) => format!("invalid signature: {why}"),
        };
        self.flag(&commit.to_string(), file, "signature", required, actual);
        Ok(())
    }
}

impl Checker<'_> {
    /// The `env.yaml` next to the pointer at `pointer_path` in `snap`, if any, holds only
    /// allowed kinds (the rule `generate` enforces; a violation here is caught before sync).
    fn env_file(
        &mut self,
        snap: &crate::gitops::Snapshot<'_>,
        commit: &str,
        pointer_path: &str,
    ) -> crate::exit::Result<()> {
        let Some(dir) = pointer_path.strip_suffix(layout::POINTER_FILE) else {
            return Ok(());
        };
        let path = format!("{dir}{}", layout::ENV_FILE);
        let Some(bytes) = snap.read(&path)? else {
            return Ok(());
        };
        let required = format!("objects of the kinds {}", self.env_kinds.join(", "));
        match crate::manifests::parse_file(&path, &bytes) {
            Err(e) => self.flag(commit, &path, "env.yaml", required, e.to_string()),
            Ok(objects) => {
                if let Err(why) = crate::manifests::env::check_env_kinds(&objects, self.env_kinds) {
                    self.flag(commit, &path, "env.yaml", required, why);
                }
            }
        }
        Ok(())
    }

    fn flag(
        &mut self,
        commit: &str,
        file: &str,
        rule: &str,
        required: impl Into<String>,
        actual: impl Into<String>,
    ) {
        self.violations.push(Violation {
            commit: commit.to_owned(),
            file: file.to_owned(),
            rule: rule.to_owned(),
            required: required.into(),
            actual: actual.into(),
        });
    }

    /// Checks the change `commit` made to the pointer at `path`.
    fn change(&mut self, commit: git2::Oid, path: &str) -> crate::exit::Result<()> {
        let c = commit.to_string();
        let snap = self.gitops.snapshot_at(commit)?;
        let Some(bytes) = snap.read(path)? else {
            return Ok(()); // removed: taking an application away is not a deploy
        };
        let new = match pointer::parse(path, &bytes) {
            Ok(p) => p,
            Err(e) => {
                self.flag(&c, path, "pointer", "a valid ReleasePointer", e.to_string());
                return Ok(());
            }
        };
        let parent = self.gitops.parent(commit)?;
        let old = match parent {
            Some(p) => {
                let ps = self.gitops.snapshot_at(p)?;
                ps.read(path)?.and_then(|b| pointer::parse(path, &b).ok())
            }
            None => None,
        };
        let env_str = pointer_env(path).unwrap_or("");
        let Some(env) = EnvName::parse(env_str) else {
            self.flag(&c, path, "environment", "an environment name", env_str);
            return Ok(());
        };
        // The policy in force is the one before the change: a commit that relaxes the
        // policy and moves a pointer at once must be judged by the old rules. (Changes to the
        // policy itself are flagged on their own, see `policy_change`.)
        let policy_snap = match parent {
            Some(p) => self.gitops.snapshot_at(p)?,
            None => self.gitops.snapshot_at(commit)?,
        };
        let policy = match layout::load_policy(self.gitops, &policy_snap)
            .or_else(|_| layout::load_policy(self.gitops, &snap))
        {
            Ok(p) => p,
            Err(e) => {
                self.flag(
                    &c,
                    layout::POLICY,
                    "policy",
                    format!("a valid {}", layout::POLICY),
                    format!("{e:#}"),
                );
                return Ok(());
            }
        };
        let Some(env_policy) = policy.get(&env) else {
            self.flag(
                &c,
                path,
                "environment",
                format!("an environment of {}", layout::POLICY),
                env.as_str(),
            );
            return Ok(());
        };
        // Registered, with the same digest.
        let project = ProjectRef::Full(new.id.repository.clone(), new.id.project.clone());
        let reg = match crate::gitops::find_register(self.gitops, &snap, &project) {
            Ok(r) => r,
            Err(e) => {
                self.flag(
                    &c,
                    path,
                    "registered",
                    "a registered release",
                    format!("{e:#}"),
                );
                return Ok(());
            }
        };
        let Some(entry) = reg.find_commit(&snap, &new.id.commit)? else {
            self.flag(
                &c,
                path,
                "registered",
                format!("a release of {project} in {}", reg.file()),
                format!("commit {} is not registered", new.id.commit),
            );
            return Ok(());
        };
        if new.digest.as_ref() != Some(&entry.digest) {
            self.flag(
                &c,
                path,
                "digest",
                format!("the registered digest {}", entry.digest),
                new.digest
                    .as_ref()
                    .map_or("no digest".to_owned(), ToString::to_string),
            );
        }
        self.record(commit, path, &new, old.as_ref(), entry.number)?;
        // The same release as before (an annotation or unblock edit): no deploy to judge.
        if old
            .as_ref()
            .is_some_and(|o| o.id.commit == new.id.commit && o.digest == new.digest)
        {
            return Ok(());
        }
        let info = self.gitops.commit_info(commit)?;
        let t = trailers::parse(&info.message);
        // Overrides the commit records; anything else in an `Override:` trailer lets nothing
        // pass.
        let overrides: Vec<Override> = t
            .iter()
            .filter(|(k, _)| k == "Override")
            .filter_map(|(_, v)| v.parse().ok())
            .collect();
        if let Some(why) = &env_policy.hold
            && !overrides.contains(&Override::Hold)
        {
            self.flag(
                &c,
                path,
                "hold",
                format!("no deploys while {env} is on hold"),
                why.clone(),
            );
        }
        if old
            .as_ref()
            .is_some_and(|o| o.blocked().iter().any(|b| b == new.id.commit.as_str()))
            && !overrides.contains(&Override::Blocked)
        {
            self.flag(
                &c,
                path,
                "blocked",
                format!(
                    "release {} stays out of {env} until unblocked",
                    entry.label()
                ),
                "deployed again",
            );
        }
        let verify = crate::signing::verify_approval;
        let now = self.now.unwrap_or(jiff::Timestamp::from_second(info.time)?);
        let cx = Context {
            gitops: self.gitops,
            now,
            overrides: &overrides,
            rollback: trailers::get(&t, "Action") == Some("rollback"),
            actor: Some(&info.author),
            verify: &verify,
        };
        // Judge against the repository as it was when the change landed.
        let item = plan::plan_item(
            &cx,
            &snap,
            &policy,
            &Request {
                env: env.clone(),
                project: project.clone(),
                selector: Selector::Id(ReleaseSelector::commit(&new.id.commit)),
            },
        )?;
        for d in item.decisions.iter().filter(|d| !d.pass) {
            self.flag(&c, path, d.rule, d.required.clone(), d.actual.clone());
        }
        // releasectl's trailers, when there are some, must describe this change.
        if let Some(action) = trailers::get(&t, "Action")
            && [
                "deploy",
                "auto-deploy",
                "promote",
                "rollback",
                "deploy-group",
            ]
            .contains(&action)
        {
            let all = |k: &str| {
                t.iter()
                    .filter(|(x, _)| x == k)
                    .map(|(_, v)| v.as_str())
                    .collect::<Vec<_>>()
            };
            if !all("Release-Commit").contains(&new.id.commit.as_str()) {
                self.flag(
                    &c,
                    path,
                    "trailers",
                    format!("Release-Commit: {}", new.id.commit),
                    all("Release-Commit").join(", "),
                );
            }
            if !all("Environment").contains(&env.as_str()) {
                self.flag(
                    &c,
                    path,
                    "trailers",
                    format!("Environment: {env}"),
                    all("Environment").join(", "),
                );
            }
            let project = project.to_string();
            if !all("Project").contains(&project.as_str()) {
                self.flag(
                    &c,
                    path,
                    "trailers",
                    format!("Project: {project}"),
                    all("Project").join(", "),
                );
            }
        }
        Ok(())
    }
}

impl Checker<'_> {
    /// The pointer's record of recent stays (docs/format.md §11), when it has one: well
    /// formed, its newest stay the pointer's release (number `number`) since this commit
    /// when the commit moved the release, and the rest the record before it; unchanged when
    /// the release stays. A pointer without a record is valid (the rules walk its history).
    fn record(
        &mut self,
        commit: git2::Oid,
        path: &str,
        new: &pointer::Pointer,
        old: Option<&pointer::Pointer>,
        number: u64,
    ) -> crate::exit::Result<()> {
        let c = commit.to_string();
        let rule = "history";
        let found = match Record::read(path, new) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(e) => {
                self.flag(&c, path, rule, "a valid record", e.to_string());
                return Ok(());
            }
        };
        let shown = |r: &Record| crate::text::excerpt(&r.encode());
        if let Some(first) = found.stays.first().filter(|s| s.commit != new.id.commit) {
            // Stale: the release moved (by hand) and the record did not follow.
            self.flag(
                &c,
                path,
                rule,
                format!(
                    "a record whose newest stay is release {} (the pointer's), or none: a change by hand removes {}",
                    new.id.commit,
                    pointer::ANN_HISTORY
                ),
                format!("its newest stay is release {}", first.commit),
            );
            return Ok(());
        }
        if let Some(o) = old.filter(|o| o.id.commit == new.id.commit) {
            let before = Record::read(path, o).ok().flatten();
            if before.as_ref().is_some_and(|b| *b != found) {
                self.flag(
                    &c,
                    path,
                    rule,
                    format!(
                        "the record unchanged while the release stays: {}",
                        before.as_ref().map(shown).unwrap_or_default()
                    ),
                    shown(&found),
                );
            }
            return Ok(());
        }
        let info = self.gitops.commit_info(commit)?;
        let t = trailers::parse(&info.message);
        let stay = Stay {
            since: jiff::Timestamp::from_second(info.time)?,
            rollback: trailers::get(&t, "Action") == Some("rollback"),
            number,
            commit: new.id.commit.clone(),
        };
        let expected = Record::next(old.map(|o| (path, o)), None, stay);
        // Without a current record before, only the newest stay can be checked here (the
        // rest came from a walk of the history).
        let agrees = if old.is_none_or(|o| Record::of(path, o).is_some()) {
            expected == found
        } else {
            expected.stays.first() == found.stays.first()
        };
        if !agrees {
            self.flag(&c, path, rule, shown(&expected), shown(&found));
        }
        Ok(())
    }

    fn register_problems(
        &mut self,
        commit: &str,
        problems: Vec<crate::gitops::register::validate::Problem>,
    ) {
        for p in problems {
            self.flag(commit, &p.file, "register", p.required, p.actual);
        }
    }

    /// A commit that modifies `environments.yaml` changes the rules every later deploy is
    /// judged by: it must say so with an `Override: policy` trailer (and a reason), or it is
    /// flagged, so relaxing the policy in one commit and deploying in the next is seen.
    fn policy_change(&mut self, commit: git2::Oid) -> crate::exit::Result<()> {
        let Some(parent) = self.gitops.parent(commit)? else {
            return Ok(()); // the first policy: nothing relaxed
        };
        let before = self.gitops.snapshot_at(parent)?.read(layout::POLICY)?;
        let after = self.gitops.snapshot_at(commit)?.read(layout::POLICY)?;
        if before.is_none() || before == after {
            return Ok(());
        }
        let t = trailers::parse(&self.gitops.commit_info(commit)?.message);
        let overridden = t.iter().any(|(k, v)| k == "Override" && v == "policy")
            && trailers::get(&t, "Override-Reason").is_some_and(|r| !r.trim().is_empty());
        if !overridden {
            self.flag(
                &commit.to_string(),
                layout::POLICY,
                "policy",
                "a policy change recorded with `Override: policy` and `Override-Reason:` trailers",
                if after.is_none() {
                    "removed without a recorded reason"
                } else {
                    "changed without a recorded reason"
                },
            );
        }
        Ok(())
    }
}

fn changed_pointers(gitops: &GitOps, commit: git2::Oid) -> crate::exit::Result<Vec<String>> {
    let parent = gitops.parent(commit)?;
    Ok(gitops
        .changed_paths(parent, commit)?
        .into_iter()
        .filter(|p| pointer_env(p).is_some())
        .collect())
}

pub fn run(args: &CheckArgs, settings: &Settings) -> crate::exit::Result<super::Outcome> {
    let gitops = if args.here {
        GitOps::open_here(&settings.gitops_branch)?
    } else {
        settings.open_gitops()?
    };
    let mut checker = Checker {
        gitops: &gitops,
        now: if args.here { Some(settings.now) } else { None },
        violations: Vec::new(),
        env_kinds: &settings.env_kinds,
        signatures_checked: std::collections::HashSet::new(),
    };
    let (what, changes) = match &args.range {
        Some(range) => {
            let (a, b) = range
                .split_once("..")
                .ok_or_else(|| InvalidInput(format!("--range {range:?}: expected A..B")))?;
            if !args.here {
                gitops.fetch()?;
            }
            let zero = |s: &str| s.is_empty() || s.bytes().all(|c| c == b'0');
            let from = if zero(a) {
                None
            } else {
                Some(gitops.resolve(a)?)
            };
            let to = gitops.resolve(b)?;
            let commits = gitops.range(from, to)?;
            for &c in &commits {
                checker.policy_change(c)?;
                for path in changed_pointers(&gitops, c)? {
                    checker.change(c, &path)?;
                }
                let snap = gitops.snapshot_at(c)?;
                let parent = gitops.parent(c)?;
                let changed = gitops.changed_paths(parent, c)?;
                if let Some(path) = changed.iter().find(|p| needs_signature(p)) {
                    checker.signature(c, path)?;
                }
                checker.register_problems(
                    &c.to_string(),
                    validate::changed_registers(&snap, &changed)?,
                );
                for path in changed {
                    if let Some(dir) = path.strip_suffix(layout::ENV_FILE)
                        && pointer_env(&format!("{dir}{}", layout::POINTER_FILE)).is_some()
                    {
                        let pointer = format!("{dir}{}", layout::POINTER_FILE);
                        checker.env_file(&snap, &c.to_string(), &pointer)?;
                    }
                }
            }
            (range.clone(), commits.len())
        }
        None => {
            let tip = if args.here {
                gitops.snapshot_at(gitops.resolve("HEAD")?)?
            } else {
                gitops.fetch()?
            };
            let mut n = 0;
            for found in crate::gitops::register::all_registers(&tip)? {
                let problems = validate::register(&tip, &found)?;
                checker.register_problems(&tip.tip_str(), problems);
            }
            for path in layout::all_pointers(&tip)? {
                checker.env_file(&tip, &tip.tip_str(), &path)?;
                if let Some(change) = tip.history(&path)?.next() {
                    let commit = change?.commit;
                    checker.change(commit, &path)?;
                    checker.signature(commit, &path)?;
                    n += 1;
                }
            }
            (format!("{} at {}", gitops.branch(), tip.tip_str()), n)
        }
    };
    let violations = checker.violations;
    let mut out = Vec::new();
    match settings.output {
        Output::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"checked": what, "changes": changes, "violations": violations})
            )?
        )?,
        Output::Text => {
            for v in &violations {
                writeln!(
                    out,
                    "{} {}: {}: required {}; actual {}",
                    &v.commit[..12.min(v.commit.len())],
                    v.file,
                    v.rule,
                    v.required,
                    v.actual
                )?;
            }
            writeln!(
                out,
                "{} violation(s) in {what} ({changes} checked)",
                violations.len()
            )?;
        }
    }
    Ok(if violations.is_empty() {
        super::Outcome::ok(out)
    } else {
        let message = format!("{} policy violation(s) in {what}", violations.len());
        super::Outcome::ended(out, Exit::Policy, message)
    })
}
