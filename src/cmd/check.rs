//! `check`: the GitOps repository checks itself (DESIGN.md §7, §8), so a change pushed
//! around the CLI is caught by the repository's own CI or `pre-receive` hook.
//!
//! For every pointer change (each commit of `--range`, or the last change of every pointer
//! at the tip): the pointer parses; it names a registered release with the same digest; the
//! environment's policy at that commit passed at that time — triggers, branches, approvals
//! (signatures included), progression, soak and windows — or the commit records an
//! override for the failing rule; the environment was not on hold; the release was not
//! blocked there; and releasectl's trailers, when present, agree with the change.

use std::io::Write;

use serde::Serialize;

use crate::cli::CheckArgs;
use crate::deploy::plan::{self, Context};
use crate::deploy::{Request, Selector, trailers};
use crate::exit::InvalidInput;
use crate::gitops::{GitOps, Snapshot};
use crate::pointer;
use crate::policy::EnvName;
use crate::settings::{Output, Settings};

/// Policy violations found: exit 4.
#[derive(Debug, thiserror::Error)]
#[error("{count} policy violation(s) in {what}")]
pub struct Violations {
    pub count: usize,
    pub what: String,
}

impl crate::exit::Classify for Violations {
    fn exit(&self) -> crate::exit::Exit {
        crate::exit::Exit::Policy
    }
}

#[derive(Debug, Serialize)]
struct Violation {
    commit: String,
    file: String,
    rule: String,
    required: String,
    actual: String,
}

/// `<env>/apps/<repository…>/<project>/release.yaml` → env.
fn pointer_env(path: &str) -> Option<&str> {
    let mut parts = path.split('/');
    let env = parts.next()?;
    (parts.next()? == "apps" && path.ends_with("/release.yaml") && path.split('/').count() >= 5)
        .then_some(env)
}

struct Checker<'g> {
    gitops: &'g GitOps,
    /// Judge windows at this time instead of commit time (the hook: the push happens now).
    now: Option<jiff::Timestamp>,
    violations: Vec<Violation>,
}

impl Checker<'_> {
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
        let Some(bytes) = plan::read(self.gitops, &snap, path)? else {
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
                plan::read(self.gitops, &ps, path)?.and_then(|b| pointer::parse(path, &b).ok())
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
        let policy = match plan::load_policy(self.gitops, &policy_snap)
            .or_else(|_| plan::load_policy(self.gitops, &snap))
        {
            Ok(p) => p,
            Err(e) => {
                self.flag(
                    &c,
                    crate::policy::FILE,
                    "policy",
                    "a valid environments.yaml",
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
                format!("an environment of {}", crate::policy::FILE),
                env.as_str(),
            );
            return Ok(());
        };
        // Registered, with the same digest.
        let project = format!("{}/{}", new.id.repository, new.id.project);
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
        let Some(entry) = reg.find_commit(&new.id.commit) else {
            self.flag(
                &c,
                path,
                "registered",
                format!(
                    "a release of {project} in {}",
                    crate::gitops::register::path(&reg.repository, &reg.project)
                ),
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
        // The same release as before (an annotation or unblock edit): no deploy to judge.
        if old
            .as_ref()
            .is_some_and(|o| o.id.commit == new.id.commit && o.digest == new.digest)
        {
            return Ok(());
        }
        let (time, _author, message) = self.gitops.commit_info(commit)?;
        let t = trailers::parse(&message);
        let overrides: Vec<String> = t
            .iter()
            .filter(|(k, _)| k == "Override")
            .map(|(_, v)| v.clone())
            .collect();
        if let Some(why) = &env_policy.hold {
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
            && !overrides.iter().any(|o| o == "blocked")
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
        let now = self.now.unwrap_or(jiff::Timestamp::from_second(time)?);
        let cx = Context {
            gitops: self.gitops,
            now,
            overrides: &overrides,
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
                selector: Selector::Id(new.id.commit.to_string()),
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
    /// A commit that modifies `environments.yaml` changes the rules every later deploy is
    /// judged by: it must say so with an `Override: policy` trailer (and a reason), or it is
    /// flagged, so relaxing the policy in one commit and deploying in the next is seen.
    fn policy_change(&mut self, commit: git2::Oid) -> crate::exit::Result<()> {
        let Some(parent) = self.gitops.parent(commit)? else {
            return Ok(()); // the first policy: nothing relaxed
        };
        let before = plan::read(
            self.gitops,
            &self.gitops.snapshot_at(parent)?,
            crate::policy::FILE,
        )?;
        let after = plan::read(
            self.gitops,
            &self.gitops.snapshot_at(commit)?,
            crate::policy::FILE,
        )?;
        if before.is_none() || before == after {
            return Ok(());
        }
        let (_, _, message) = self.gitops.commit_info(commit)?;
        let t = trailers::parse(&message);
        let overridden = t.iter().any(|(k, v)| k == "Override" && v == "policy")
            && trailers::get(&t, "Override-Reason").is_some_and(|r| !r.trim().is_empty());
        if !overridden {
            self.flag(
                &commit.to_string(),
                crate::policy::FILE,
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

fn all_pointers(tip: &Snapshot<'_>) -> crate::exit::Result<Vec<String>> {
    let mut out = Vec::new();
    for top in tip.list_dirs()? {
        let mut paths = tip.list(&format!("{top}/apps"))?;
        paths.retain(|p| pointer_env(p).is_some());
        out.extend(paths);
    }
    Ok(out)
}

pub fn run(args: &CheckArgs, settings: &Settings) -> crate::exit::Result<super::Outcome> {
    let mut out = Vec::new();
    let done = run_to(args, settings, &mut out);
    super::Outcome::from_report(out, done)
}

fn run_to(args: &CheckArgs, settings: &Settings, out: &mut Vec<u8>) -> crate::exit::Result<()> {
    let gitops = if args.here {
        GitOps::open_here(&settings.gitops_branch)?
    } else {
        crate::gitops::GitOps::open(settings.gitops_url()?, &settings.gitops_branch)?
    };
    let mut checker = Checker {
        gitops: &gitops,
        now: if args.here { Some(settings.now) } else { None },
        violations: Vec::new(),
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
            for path in all_pointers(&tip)? {
                if let Some(change) = tip.history(&path)?.next() {
                    checker.change(change?.commit, &path)?;
                    n += 1;
                }
            }
            (format!("{} at {}", gitops.branch(), tip.tip_str()), n)
        }
    };
    let violations = checker.violations;
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
    if violations.is_empty() {
        Ok(())
    } else {
        // The report goes to stdout either way; the caller prints it before exiting 4.
        std::io::stdout().write_all(out)?;
        out.clear();
        Err(Violations {
            count: violations.len(),
            what,
        }
        .into())
    }
}
