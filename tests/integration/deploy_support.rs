//! Helpers shared by the deploy, policy and race tests (issue 5): a bare GitOps remote seeded
//! with a policy, an OCI layout registry, and `releasectl` with the flags that reach both.
//!
//! Everything runs the real binary against a real bare repository (`git init --bare -b main`):
//! the remote is what the tests assert on — its branch tip, its commit messages word for word,
//! its object count (a refusal must create no commit object), `git fsck --full`. Files are
//! committed behind the product's back with git plumbing and a throwaway index, so the remote
//! never needs a working tree and a test can change the policy or add approvals between
//! commands, as a person pushing to the repository would.

// Each test file uses a different part of these helpers.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common;
use crate::support::{self, Cmd, Output};

pub const ACTOR: &str = "alice@company.com";
pub const REPOSITORY: &str = "company/monorepo";
pub const PROJECT: &str = "auth-service";
/// A Monday, 10:00 UTC (11:00 in Berlin): inside the example policy's production window.
pub const MONDAY: &str = "2026-11-23T10:00:00Z";

/// The specification's example policy (DESIGN.md §6), checked in as a fixture.
pub fn example_policy() -> String {
    std::fs::read_to_string(support::manifest_dir().join("fixtures/policy/environments.yaml"))
        .expect("read fixtures/policy/environments.yaml")
}

/// A 40-hex commit id derived from `seed` (stable across runs).
pub fn sha(seed: &str) -> String {
    common::sha256(seed.as_bytes())["sha256:".len()..][..40].to_owned()
}

/// `<env>/apps/company/monorepo/<project>/release.yaml`.
pub fn pointer_path(env: &str, project: &str) -> String {
    format!("{env}/apps/{REPOSITORY}/{project}/release.yaml")
}

pub use crate::support::git::git;

/// A bare repository with `HEAD` → `refs/heads/main`.
pub struct Remote {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Remote {
    /// A bare repository whose first commit holds `environments.yaml` = `policy`.
    pub fn with_policy(policy: &str) -> Self {
        let dir = support::temp_dir();
        let path = dir.path().join("gitops.git");
        git()
            .args(["init", "-q", "--bare", "-b", "main"])
            .arg(&path)
            .run()
            .assert_success();
        let remote = Self { _dir: dir, path };
        remote.commit_files(&[("environments.yaml", Some(policy))], "Seed the policy");
        remote
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn url(&self) -> String {
        self.path.display().to_string()
    }

    /// `git --git-dir REMOTE ARGS`, which must succeed.
    pub fn git<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let out = git().arg("--git-dir").arg(&self.path).args(args).run();
        out.assert_success();
        out
    }

    fn try_git(&self, args: &[&str]) -> Output {
        git().arg("--git-dir").arg(&self.path).args(args).run()
    }

    /// The tip of `main`.
    pub fn head(&self) -> String {
        self.git(["rev-parse", "refs/heads/main"])
            .stdout_str()
            .trim()
            .to_owned()
    }

    /// The full message of `rev` (`git log -1 --format=%B`).
    pub fn message(&self, rev: &str) -> String {
        self.git(["log", "-1", "--format=%B", rev]).stdout_str()
    }

    /// The message of the tip of `main`.
    pub fn last_message(&self) -> String {
        self.message("main")
    }

    /// A file at the tip of `main`, if present.
    pub fn show(&self, path: &str) -> Option<String> {
        let out = self.try_git(&["show", &format!("main:{path}")]);
        out.success().then(|| out.stdout_str())
    }

    /// Commits on `main`.
    pub fn commit_count(&self) -> usize {
        self.git(["rev-list", "--count", "main"])
            .stdout_str()
            .trim()
            .parse()
            .expect("count")
    }

    /// Subjects on `main`, newest first.
    pub fn subjects(&self) -> Vec<String> {
        self.git(["log", "--format=%s", "main"])
            .stdout_str()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Loose plus packed objects (`git count-objects -v`).
    pub fn object_count(&self) -> u64 {
        let out = self.git(["count-objects", "-v"]).stdout_str();
        out.lines()
            .filter_map(|l| l.split_once(": "))
            .filter(|(k, _)| *k == "count" || *k == "in-pack")
            .map(|(_, v)| v.trim().parse::<u64>().expect("count-objects number"))
            .sum()
    }

    /// Objects no ref reaches (`git fsck --unreachable --no-reflogs`).
    pub fn unreachable(&self) -> Vec<String> {
        self.git(["fsck", "--unreachable", "--no-reflogs", "--no-progress"])
            .stdout_str()
            .lines()
            .filter(|l| l.starts_with("unreachable"))
            .map(str::to_owned)
            .collect()
    }

    /// `git rev-list --merges main` is empty.
    pub fn is_linear(&self) -> bool {
        self.git(["rev-list", "--merges", "main"])
            .stdout_str()
            .trim()
            .is_empty()
    }

    pub fn assert_fsck_clean(&self) {
        let out = self.try_git(&["fsck", "--full", "--strict", "--no-progress"]);
        if !out.success() || !out.stderr_str().trim().is_empty() {
            out.fail("git fsck --full found problems in the remote");
        }
    }

    /// Commits `files` (path, content; `None` deletes) on top of `main` with plumbing and a
    /// throwaway index; returns the new commit.
    pub fn commit_files(&self, files: &[(&str, Option<&str>)], message: &str) -> String {
        let scratch = support::temp_dir();
        let index = scratch.path().join("index");
        let run = |args: &[&str], stdin: Option<&str>| {
            let mut cmd = git()
                .arg("--git-dir")
                .arg(&self.path)
                .args(args)
                .env("GIT_INDEX_FILE", &index);
            if let Some(s) = stdin {
                cmd = cmd.stdin(s.as_bytes().to_vec());
            }
            let out = cmd.run();
            out.assert_success();
            out.stdout_str().trim().to_owned()
        };
        let parent = self
            .try_git(&["rev-parse", "--verify", "-q", "refs/heads/main"])
            .stdout_str()
            .trim()
            .to_owned();
        if parent.is_empty() {
            run(&["read-tree", "--empty"], None);
        } else {
            run(&["read-tree", &parent], None);
        }
        for (path, content) in files {
            match content {
                Some(c) => {
                    let blob = run(&["hash-object", "-w", "--stdin"], Some(c));
                    run(
                        &[
                            "update-index",
                            "--add",
                            "--cacheinfo",
                            &format!("100644,{blob},{path}"),
                        ],
                        None,
                    );
                }
                None => {
                    run(&["update-index", "--force-remove", path], None);
                }
            }
        }
        let tree = run(&["write-tree"], None);
        let commit = if parent.is_empty() {
            run(&["commit-tree", &tree, "-m", message], None)
        } else {
            run(&["commit-tree", &tree, "-p", &parent, "-m", message], None)
        };
        let old = if parent.is_empty() {
            "0000000000000000000000000000000000000000".to_owned()
        } else {
            parent
        };
        run(&["update-ref", "refs/heads/main", &commit, &old], None);
        commit
    }

    /// Replaces `environments.yaml`.
    pub fn set_policy(&self, policy: &str) {
        self.commit_files(&[("environments.yaml", Some(policy))], "Change the policy");
    }
}

/// A registered release.
#[derive(Clone, Debug)]
pub struct Release {
    pub project: String,
    pub commit: String,
    pub number: u64,
    pub digest: String,
    /// `42 (v1.2.3)`: the number and first alias, as commit messages show it.
    pub label: String,
}

/// A remote, a registry, a cache and a clock: everything `releasectl` needs.
pub struct World {
    pub remote: Remote,
    /// How `releasectl` reaches the remote: its path unless a test serves it otherwise.
    pub url: String,
    registry: tempfile::TempDir,
    caches: tempfile::TempDir,
    pub now: String,
}

impl World {
    pub fn new(policy: &str) -> Self {
        let remote = Remote::with_policy(policy);
        Self {
            url: remote.url(),
            remote,
            registry: support::temp_dir(),
            caches: support::temp_dir(),
            now: MONDAY.to_owned(),
        }
    }

    /// The example policy of DESIGN.md §6.
    pub fn example() -> Self {
        Self::new(&example_policy())
    }

    /// `oci:DIR`.
    pub fn registry(&self) -> String {
        format!("oci:{}", self.registry.path().display())
    }

    /// A cache dir of its own, named `name`.
    pub fn cache(&self, name: &str) -> PathBuf {
        let dir = self.caches.path().join(name);
        std::fs::create_dir_all(&dir).expect("create cache dir");
        dir
    }

    /// `releasectl --gitops REMOTE --registry oci:DIR --actor alice@company.com`, with the
    /// shared cache, `SOURCE_DATE_EPOCH` and `RELEASECTL_NOW` = `now`.
    pub fn at(&self, now: &str) -> Cmd {
        Cmd::releasectl()
            .args(["--gitops", &self.url, "--registry", &self.registry()])
            .args(["--actor", ACTOR])
            .env("RELEASECTL_CACHE_DIR", self.cache("shared"))
            .env("SOURCE_DATE_EPOCH", common::EPOCH)
            .env("RELEASECTL_NOW", now)
    }

    /// [`World::at`] the world's clock.
    pub fn cmd(&self) -> Cmd {
        self.at(&self.now)
    }

    /// `releasectl ARGS` at the world's clock.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).run()
    }

    /// `releasectl ARGS` at `now`.
    pub fn run_at(&self, now: &str, args: &[&str]) -> Output {
        self.at(now).args(args).run()
    }

    /// `release create --gitops` of `project` at `commit` with the fixture's manifests and
    /// `extra` flags (`--source-branch main`, `--source-tag P/v1.2.3`, `--trigger manual`).
    pub fn create(&self, project: &str, commit: &str, extra: &[&str]) -> Release {
        self.create_from(project, commit, &common::fixture_manifests(), extra)
    }

    /// As [`World::create`], with manifests from `dir`.
    pub fn create_from(&self, project: &str, commit: &str, dir: &Path, extra: &[&str]) -> Release {
        let out = self
            .cmd()
            .args(["-o", "json", "release", "create"])
            .args(["--repository", REPOSITORY, "--project", project])
            .args(["--commit", commit])
            .arg("--manifests")
            .arg(dir)
            .args(extra)
            .run();
        out.assert_success();
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| out.fail(&format!("release create printed no JSON: {e}")));
        let number = v["number"].as_u64().expect("registered number");
        let label = match v["aliases"][0]["alias"].as_str() {
            Some(a) => format!("{number} ({a})"),
            None => number.to_string(),
        };
        Release {
            project: project.to_owned(),
            commit: commit.to_owned(),
            number,
            digest: v["digest"].as_str().expect("digest").to_owned(),
            label,
        }
    }

    /// A release of the default project from `main` (branch_push).
    pub fn main_release(&self, seed: &str) -> Release {
        self.create(PROJECT, &sha(seed), &["--source-branch", "main"])
    }

    /// Objects in the product's cache clones of the shared cache (loose and packed).
    pub fn cache_object_count(&self) -> u64 {
        let root = self.cache("shared").join("git");
        let Ok(dirs) = std::fs::read_dir(&root) else {
            return 0;
        };
        let mut total = 0;
        for d in dirs {
            let d = d.expect("read cache dir").path();
            if d.extension().is_some_and(|e| e == "git") {
                let out = git()
                    .arg("--git-dir")
                    .arg(&d)
                    .args(["count-objects", "-v"])
                    .run();
                out.assert_success();
                total += out
                    .stdout_str()
                    .lines()
                    .filter_map(|l| l.split_once(": "))
                    .filter(|(k, _)| *k == "count" || *k == "in-pack")
                    .map(|(_, v)| v.trim().parse::<u64>().expect("count-objects number"))
                    .sum::<u64>();
            }
        }
        total
    }

    /// The pointer of `project` in `env` at the tip, if any.
    pub fn pointer(&self, env: &str, project: &str) -> Option<String> {
        self.remote.show(&pointer_path(env, project))
    }

    /// The commit the pointer of `project` in `env` names (`spec.release`).
    pub fn running(&self, env: &str, project: &str) -> Option<String> {
        self.pointer(env, project).map(|p| {
            p.lines()
                .find_map(|l| l.trim().strip_prefix("release: "))
                .expect("pointer has spec.release")
                .trim()
                .trim_matches(['"', '\''])
                .to_owned()
        })
    }

    /// Writes an approval file for `release` in `env` (as the `approve` command will),
    /// committed to the remote by hand. Each approval: (approver, environment, digest,
    /// expires_at).
    pub fn approve(&self, env: &str, release: &Release, approvals: &[(&str, &str, &str, &str)]) {
        let mut yaml = format!(
            "apiVersion: releasectl.dev/v1alpha1\nkind: ReleaseApprovals\nenvironment: {env}\n\
             repository: {REPOSITORY}\nproject: {}\ncommit: {}\napprovals:\n",
            release.project, release.commit
        );
        for (who, approved_env, digest, expires) in approvals {
            let _ = write!(
                yaml,
                "- approver: {who}\n  environment: {approved_env}\n  digest: \"{digest}\"\n  \
                 approved_at: \"2026-11-23T08:00:00Z\"\n  expires_at: \"{expires}\"\n  \
                 justification: looks good\n"
            );
        }
        let path = format!(
            "approvals/{env}/{REPOSITORY}/{}/{}.yaml",
            release.project, release.commit
        );
        self.remote
            .commit_files(&[(&path, Some(&yaml))], "Approve by hand");
    }
}

/// Asserts a refusal: exit 4, `main` did not move, no new object in the remote, and stderr
/// names every `needles` (the failing decisions).
#[track_caller]
pub fn assert_refused(world: &World, args: &[&str], needles: &[&str]) -> Output {
    assert_refused_at(world, &world.now.clone(), args, needles)
}

#[track_caller]
pub fn assert_refused_at(world: &World, now: &str, args: &[&str], needles: &[&str]) -> Output {
    // Bring the product's cache clone up to date first, so that any object it holds after
    // the refused command was made by that command.
    world.run(&["status"]).assert_success();
    let head = world.remote.head();
    let objects = world.remote.object_count();
    let cached = world.cache_object_count();
    let out = world.run_at(now, args);
    out.assert_exit(4);
    for n in needles {
        out.assert_stderr_contains(n);
    }
    if world.remote.head() != head {
        out.fail("a refused deploy moved main");
    }
    if world.remote.object_count() != objects {
        out.fail("a refused deploy wrote objects to the remote");
    }
    if world.cache_object_count() != cached {
        out.fail("a refused deploy created objects (a commit) in its local clone");
    }
    out
}

/// Parses stdout as JSON.
#[track_caller]
pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| out.fail(&format!("stdout is not JSON: {e}")))
}

/// The decision named `rule` of the first item of a deploy's `-o json` report.
pub fn decision<'v>(report: &'v Value, rule: &str) -> &'v Value {
    report["items"][0]["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .find(|d| d["rule"] == rule)
        .unwrap_or_else(|| panic!("no decision {rule} in {report:#}"))
}

/// A policy of one environment `env` with the given `promotion_policy` body (YAML flow
/// mapping contents) and, optionally, a `dev` environment before it.
pub fn policy_one(body: &str) -> String {
    format!(
        "environments:\n  dev:\n    promotion_policy: {{auto_deploy: true}}\n  prod:\n    promotion_policy: {{{body}}}\n"
    )
}
