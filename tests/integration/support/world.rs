//! The one GitOps fixture world of the product tests: a bare GitOps remote ([`BareRepo`]) seeded
//! with a policy, an OCI layout registry, a cache, a clock, and `releasectl` with the flags
//! that reach them; releases registered into it; approvals, pointers and policy changes made
//! "by hand" behind the product's back.
//!
//! Invariants:
//! - everything lives in temp dirs owned by the world and goes with it;
//! - the remote is what tests assert on (its tip, its messages word for word, its object
//!   count, `git fsck`); commits by hand are dated at the world's clock, so `check` (which
//!   judges a change at its commit time) sees what the test intends;
//! - a hand change either lands directly with plumbing ([`World::hand_push`]) or goes through
//!   a working clone and a real `git push` ([`World::hand_commit`], [`World::push_with`]) when
//!   a test needs the server's hooks to run.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::cmd::{Cmd, Output};
use super::git::{BareRepo, git};
use super::setup::{
    EPOCH, PROJECT, REPOSITORY, create_args, fixture_manifests, sha256, stdout_json,
};

pub const ALICE: &str = "alice@company.com";
pub const BOB: &str = "bob@company.com";
pub const CAROL: &str = "carol@company.com";
/// The actor of registrations through [`World::releasectl`]: a CI job.
pub const CI: &str = "ci@example.com";
/// The actor of worlds that act as a person: alice.
pub const ACTOR: &str = ALICE;
pub const PRODUCTION: &str = "production";
/// A Monday, 10:00 UTC (11:00 in Berlin): the world's clock, inside the example policy's
/// production window.
pub const MONDAY: &str = "2026-11-23T10:00:00Z";
/// What `approve` at [`MONDAY`] writes with a policy's `ttl: 24h`.
pub const EXPIRES: &str = "2026-11-24T10:00:00Z";

/// A 40-hex commit id derived from `seed`, stable across runs. Its first character is a
/// letter, so no YAML writer can take it for a number.
pub fn sha(seed: &str) -> String {
    format!("c{}", &sha256(seed.as_bytes())["sha256:".len()..][..39])
}

/// `<env>/apps/company/monorepo/<project>/release.yaml`.
pub fn pointer_path(env: &str, project: &str) -> String {
    format!("{env}/apps/{REPOSITORY}/{project}/release.yaml")
}

/// `approvals/<env>/company/monorepo/auth-service/<commit>.yaml`.
pub fn approval_path(env: &str, commit: &str) -> String {
    format!("approvals/{env}/{REPOSITORY}/{PROJECT}/{commit}.yaml")
}

/// The specification's example policy (docs/design.md §6), checked in as a fixture.
pub fn example_policy() -> String {
    std::fs::read_to_string(super::manifest_dir().join("fixtures/policy/environments.yaml"))
        .expect("read fixtures/policy/environments.yaml")
}

/// A policy with an automatic `dev` and a `prod` whose `promotion_policy` is the flow
/// mapping `{body}`.
pub fn policy_one(body: &str) -> String {
    format!(
        "environments:\n  dev:\n    promotion_policy: {{auto_deploy: true}}\n  prod:\n    promotion_policy: {{{body}}}\n"
    )
}

/// A policy whose `production` requires `min: 2` approvals by `approvers` (the YAML flow
/// sequence's contents, e.g. `alice@company.com, bob@company.com` or `{id: …, key: "…"}`),
/// with `ttl: 24h`; triggers and branches admit a tagged release from `main`; no windows,
/// no progression. `staging` has no rules.
pub fn approvals_policy(approvers: &str) -> String {
    format!(
        "environments:\n  staging:\n    promotion_policy: {{allowed_triggers: [branch_push, tag, manual], allowed_branches: [\"*\"]}}\n  production:\n    promotion_policy:\n      allowed_triggers: [tag, manual]\n      allowed_branches: [main]\n      requires_approval: true\n      approvals: {{min: 2, ttl: 24h, approvers: [{approvers}]}}\n"
    )
}

/// [`approvals_policy`] with alice and bob listed by identity only.
pub fn plain_policy() -> String {
    approvals_policy(&format!("{ALICE}, {BOB}"))
}

/// Parses YAML (an approvals file, a pointer) into JSON values.
pub fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("not YAML ({e}):\n{text}"))
}

/// A registered release.
#[derive(Clone, Debug)]
pub struct Release {
    pub project: String,
    pub commit: String,
    pub number: u64,
    pub digest: String,
    /// The first alias (`v1.0.0`), or the number when there is none: what a person types.
    pub tag: String,
    /// `42 (v1.2.3)`: the number and first alias, as commit messages show it.
    pub label: String,
}

/// One approval entry as a file holds it (for files written by hand).
pub struct Entry<'a> {
    pub approver: &'a str,
    pub environment: &'a str,
    pub digest: &'a str,
    pub expires_at: &'a str,
    pub signature: Option<String>,
}

impl Entry<'_> {
    fn yaml(&self) -> String {
        let mut out = format!(
            "- approver: {}\n  environment: {}\n  digest: \"{}\"\n  approved_at: \"2026-11-23T08:00:00Z\"\n  expires_at: \"{}\"\n  justification: by hand\n",
            self.approver, self.environment, self.digest, self.expires_at
        );
        if let Some(sig) = &self.signature {
            out.push_str("  signature: |\n");
            for line in sig.lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
        out
    }
}

/// An approvals file for `release` in `env` holding `entries`, as `approve` would write it.
pub fn approvals_yaml(env: &str, release: &Release, entries: &[Entry<'_>]) -> String {
    let mut out = format!(
        "apiVersion: releasectl.dev/v1alpha1\nkind: ReleaseApprovals\nenvironment: {env}\nrepository: {REPOSITORY}\nproject: {}\ncommit: \"{}\"\napprovals:\n",
        release.project, release.commit
    );
    for e in entries {
        out.push_str(&e.yaml());
    }
    out
}

/// A remote, a registry, caches, a working clone and a clock: everything `releasectl` needs.
pub struct World {
    dir: tempfile::TempDir,
    /// Directories that live as long as the world (keys made before it).
    kept: RefCell<Vec<tempfile::TempDir>>,
    pub remote: BareRepo,
    /// How `releasectl` reaches the remote: its path unless a test serves it otherwise.
    pub url: String,
    /// The clock (`RELEASECTL_NOW`) of every command and hand commit.
    pub now: String,
    /// `--actor` given before the subcommand, if any.
    actor: Option<String>,
    /// Made under [`cold`]: the remote served over `git daemon`, the shared cache emptied
    /// before every command.
    daemon: Option<super::git::GitDaemon>,
}

thread_local! {
    /// Set while [`cold`] runs.
    static COLD: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with every world it makes ([`World::new`], [`World::without_actor`]) cold: its
/// remote served over `git daemon` with partial fetches allowed, and the shared cache emptied
/// before every command, as on an ephemeral CI runner — so a test suite written for a warm
/// cache runs again on an empty one.
pub fn cold<R>(f: impl FnOnce() -> R) -> R {
    COLD.set(true);
    let out = f();
    COLD.set(false);
    out
}

impl World {
    /// A remote whose first commit holds `environments.yaml` = `policy`; commands act as
    /// alice.
    pub fn new(policy: &str) -> Self {
        Self::seeded(policy, Some(ACTOR))
    }

    /// The example policy of docs/design.md §6.
    pub fn example() -> Self {
        Self::new(&example_policy())
    }

    /// As [`World::new`], with no `--actor` given unless a command says it.
    pub fn without_actor(policy: &str) -> Self {
        Self::seeded(policy, None)
    }

    /// A world whose remote has no commit yet and no `--actor` given: for registration
    /// through remotes a test serves itself (by path, `file://`, `git daemon`, smart HTTP,
    /// SSH) with [`World::releasectl`] and the commands built on it.
    pub fn empty() -> Self {
        let remote = BareRepo::new();
        Self {
            dir: super::temp_dir(),
            kept: RefCell::default(),
            url: remote.path().display().to_string(),
            remote,
            now: MONDAY.to_owned(),
            actor: None,
            daemon: None,
        }
    }

    fn seeded(policy: &str, actor: Option<&str>) -> Self {
        let mut world = Self {
            actor: actor.map(str::to_owned),
            ..Self::empty()
        };
        world.hand_push(&[("environments.yaml", Some(policy))], "Seed the policy");
        if COLD.get() {
            for (key, value) in [
                ("uploadpack.allowFilter", "true"),
                ("uploadpack.allowAnySHA1InWant", "true"),
            ] {
                git()
                    .arg("--git-dir")
                    .arg(world.remote.path())
                    .args(["config", key, value])
                    .run()
                    .assert_success();
            }
            let daemon = super::git::GitDaemon::start(&world.remote);
            world.url = daemon.url();
            world.daemon = Some(daemon);
        }
        world
    }

    /// Whether the world was made under [`cold`].
    pub fn is_cold(&self) -> bool {
        self.daemon.is_some()
    }

    /// `releasectl --registry oci:DIR --gitops GITOPS --actor ci@example.com` with the cache
    /// dir `cache` and `SOURCE_DATE_EPOCH` (no clock: registration does not read one).
    pub fn releasectl(&self, gitops: &str, cache: &Path) -> Cmd {
        Cmd::releasectl()
            .args(["--registry", &self.registry(), "--gitops", gitops])
            .args(["--actor", CI])
            .env("RELEASECTL_CACHE_DIR", cache)
            .env("SOURCE_DATE_EPOCH", EPOCH)
    }

    /// `release create -o json` of the default project at `commit` with the fixture's
    /// manifests and `extra` flags, through `gitops` with the cache dir `cache`.
    pub fn create_cmd(&self, gitops: &str, cache: &Path, commit: &str, extra: &[&str]) -> Cmd {
        self.create_cmd_for(gitops, cache, REPOSITORY, PROJECT, commit, extra)
    }

    /// As [`World::create_cmd`], for `project` of `repository`.
    pub fn create_cmd_for(
        &self,
        gitops: &str,
        cache: &Path,
        repository: &str,
        project: &str,
        commit: &str,
        extra: &[&str],
    ) -> Cmd {
        self.releasectl(gitops, cache)
            .args(["-o", "json"])
            .args(create_args(
                repository,
                project,
                commit,
                &fixture_manifests(),
            ))
            .args(extra)
    }

    /// [`World::create_cmd`], asserting success and `registered: true`; returns the printed
    /// JSON.
    pub fn register_via(&self, gitops: &str, cache: &Path, commit: &str, extra: &[&str]) -> Value {
        let out = self.create_cmd(gitops, cache, commit, extra).run();
        out.assert_success();
        let json = stdout_json(&out);
        assert_eq!(json["registered"], true, "{out}");
        json
    }

    /// `release get PROJECT ID -o json` through `gitops`.
    pub fn get(&self, gitops: &str, project: &str, id: &str) -> Output {
        self.releasectl(gitops, &self.cache("readers"))
            .args(["-o", "json", "release", "get", project, id])
            .run()
    }

    /// `release list PROJECT -o json` through `gitops`, parsed; asserts success.
    pub fn list(&self, gitops: &str, project: &str) -> Value {
        let out = self
            .releasectl(gitops, &self.cache("readers"))
            .args(["-o", "json", "release", "list", project])
            .run();
        out.assert_success();
        stdout_json(&out)
    }

    /// The metadata number in the release image of the default project at `commit`, as
    /// `inspect` reads it from the OCI layout.
    pub fn image_number(&self, commit: &str) -> Value {
        let reference = format!("{}/{REPOSITORY}/{PROJECT}:{commit}", self.registry());
        let out = Cmd::releasectl()
            .args(["inspect", "-o", "json", &reference])
            .run();
        out.assert_success();
        stdout_json(&out)["metadata"]["release"]["number"].clone()
    }

    /// Keeps `dir` until the world is dropped.
    pub fn keep(&self, dir: tempfile::TempDir) {
        self.kept.borrow_mut().push(dir);
    }

    /// A directory that lives as long as the world.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `oci:DIR`.
    pub fn registry(&self) -> String {
        format!("oci:{}", self.dir.path().join("registry").display())
    }

    /// A cache dir of its own, named `name`.
    pub fn cache(&self, name: &str) -> PathBuf {
        let dir = self.dir.path().join("caches").join(name);
        std::fs::create_dir_all(&dir).expect("create cache dir");
        dir
    }

    /// `releasectl --gitops GITOPS --registry oci:DIR [--actor A]` at `now`, with the shared
    /// cache and `SOURCE_DATE_EPOCH`.
    pub fn cmd_via(&self, gitops: &str, now: &str) -> Cmd {
        if self.is_cold() {
            let _ = std::fs::remove_dir_all(self.dir.path().join("caches").join("shared"));
        }
        let mut cmd = Cmd::releasectl().args(["--gitops", gitops, "--registry", &self.registry()]);
        if let Some(actor) = &self.actor {
            cmd = cmd.args(["--actor", actor]);
        }
        cmd.env("RELEASECTL_CACHE_DIR", self.cache("shared"))
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .env("RELEASECTL_NOW", now)
    }

    /// `releasectl` against the world's URL at `now`.
    pub fn at(&self, now: &str) -> Cmd {
        self.cmd_via(&self.url, now)
    }

    /// [`World::at`] the world's clock.
    pub fn cmd(&self) -> Cmd {
        self.at(&self.now)
    }

    /// `releasectl ARGS` at the world's clock.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).run()
    }

    /// `releasectl ARGS` at the world's clock, asserting success.
    pub fn ok(&self, args: &[&str]) -> Output {
        self.ok_at(&self.now, args)
    }

    /// `releasectl ARGS` at `now`, asserting success.
    pub fn ok_at(&self, now: &str, args: &[&str]) -> Output {
        let out = self.run_at(now, args);
        out.assert_success();
        out
    }

    /// `releasectl ARGS` at `now`.
    pub fn run_at(&self, now: &str, args: &[&str]) -> Output {
        self.at(now).args(args).run()
    }

    /// Deploys the releases of the default project named `releases`, one after the other, to
    /// `env`, asserting success.
    pub fn deploy_each(&self, env: &str, releases: &[&str]) {
        for release in releases {
            self.ok(&["deploy", env, PROJECT, release]);
        }
    }

    /// Runs `f` and asserts that it moved no branch tip of the remote and wrote no object to
    /// it; returns what `f` returned.
    #[track_caller]
    pub fn writes_nothing<R>(&self, f: impl FnOnce() -> R) -> R {
        let head = self.remote.head();
        let objects = self.remote.object_count();
        let result = f();
        assert_eq!(self.remote.head(), head, "main moved");
        assert_eq!(self.remote.object_count(), objects, "objects were written");
        result
    }

    /// `release create --gitops` of `project` at `commit` with the fixture's manifests and
    /// `extra` flags (`--source-branch main`, `--source-tag P/v1.2.3`, `--trigger manual`).
    pub fn create(&self, project: &str, commit: &str, extra: &[&str]) -> Release {
        self.create_from(project, commit, &fixture_manifests(), extra)
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
        let v = stdout_json(&out);
        let number = v["number"].as_u64().expect("registered number");
        let alias = v["aliases"][0]["alias"].as_str();
        Release {
            project: project.to_owned(),
            commit: commit.to_owned(),
            number,
            digest: v["digest"].as_str().expect("digest").to_owned(),
            tag: alias.map_or_else(|| number.to_string(), str::to_owned),
            label: alias.map_or_else(|| number.to_string(), |a| format!("{number} ({a})")),
        }
    }

    /// A release of the default project from `main` (branch_push).
    pub fn main_release(&self, seed: &str) -> Release {
        self.create(PROJECT, &sha(seed), &["--source-branch", "main"])
    }

    /// [`World::main_release`] of each seed, in order (numbers 1, 2, … in a new world).
    pub fn main_releases(&self, seeds: &[&str]) -> Vec<Release> {
        seeds.iter().map(|s| self.main_release(s)).collect()
    }

    /// A release of the default project at `commit`, built from `main` and tagged
    /// `auth-service/TAG`, so production's trigger and branch rules pass.
    pub fn tagged(&self, commit: &str, tag: &str) -> Release {
        let source_tag = format!("{PROJECT}/{tag}");
        self.create(
            PROJECT,
            commit,
            &["--source-branch", "main", "--source-tag", &source_tag],
        )
    }

    /// `approve ENV auth-service TAG --justification … --actor ACTOR [--key KEY]`.
    pub fn approve(&self, env: &str, release: &Release, actor: &str, key: Option<&Path>) -> Output {
        let mut cmd = self
            .cmd()
            .args(["approve", env, &release.project, &release.tag])
            .args(["--justification", "reviewed the change log and the canary"])
            .args(["--actor", actor]);
        if let Some(k) = key {
            cmd = cmd.arg("--key").arg(k);
        }
        cmd.run()
    }

    /// Approves in production by alice and bob (unsigned), asserting success.
    pub fn approve_both(&self, release: &Release) {
        for who in [ALICE, BOB] {
            self.approve(PRODUCTION, release, who, None)
                .assert_success();
        }
    }

    /// `revoke ENV auth-service TAG --actor ACTOR`.
    pub fn revoke(&self, env: &str, release: &Release, actor: &str) -> Output {
        self.run(&[
            "revoke",
            env,
            &release.project,
            &release.tag,
            "--actor",
            actor,
        ])
    }

    /// `deploy ENV auth-service TAG --actor alice@company.com` at `now`.
    pub fn deploy_at(&self, now: &str, env: &str, release: &Release) -> Output {
        self.at(now)
            .args(["deploy", env, &release.project, &release.tag])
            .args(["--actor", ALICE])
            .run()
    }

    pub fn deploy(&self, env: &str, release: &Release) -> Output {
        self.deploy_at(&self.now, env, release)
    }

    /// Writes an approvals file for `release` in `env` by hand. Each approval: (approver,
    /// environment, digest, expires_at).
    pub fn hand_approve(
        &self,
        env: &str,
        release: &Release,
        approvals: &[(&str, &str, &str, &str)],
    ) {
        let entries: Vec<Entry<'_>> = approvals
            .iter()
            .map(|&(approver, environment, digest, expires_at)| Entry {
                approver,
                environment,
                digest,
                expires_at,
                signature: None,
            })
            .collect();
        let path = format!(
            "approvals/{env}/{REPOSITORY}/{}/{}.yaml",
            release.project, release.commit
        );
        let yaml = approvals_yaml(env, release, &entries);
        self.hand_push(&[(&path, Some(&yaml))], "Approve by hand");
    }

    /// Writes by hand approvals of `release` in `env` by alice and bob that expire at
    /// `expires_at`.
    pub fn hand_approve_both(&self, env: &str, release: &Release, expires_at: &str) {
        let digest = release.digest.as_str();
        self.hand_approve(
            env,
            release,
            &[
                (ALICE, env, digest, expires_at),
                (BOB, env, digest, expires_at),
            ],
        );
    }

    /// The approvals file of `release` in `env`, parsed.
    pub fn approvals(&self, env: &str, release: &Release) -> Value {
        yaml(
            &self
                .remote
                .show_required(&approval_path(env, &release.commit)),
        )
    }

    /// Rewrites the approvals file of `release` in `env` with `edit` and pushes it by hand.
    pub fn edit_approvals(&self, env: &str, release: &Release, edit: impl FnOnce(&mut Value)) {
        let mut file = self.approvals(env, release);
        edit(&mut file);
        let text = serde_json::to_string_pretty(&file).expect("serialise");
        // JSON is YAML: the product reads it as any other approvals file.
        self.hand_push(
            &[(&approval_path(env, &release.commit), Some(&text))],
            "Edit approvals by hand",
        );
    }

    /// Replaces `environments.yaml` by hand.
    pub fn set_policy(&self, policy: &str) {
        self.hand_push(&[("environments.yaml", Some(policy))], "Change the policy");
    }

    /// Commits `files` (path, content; `None` deletes) on top of `main` directly, dated at the
    /// world's clock; returns the commit.
    pub fn hand_push(&self, files: &[(&str, Option<&str>)], message: &str) -> String {
        self.remote.commit_files_at(files, message, Some(&self.now))
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

    /// The pointer of auth-service in `env` at the tip, with `release` and `digest` replaced:
    /// what a person editing the file by hand would push.
    pub fn pointer_naming(&self, env: &str, commit: &str, digest: &str) -> String {
        let old = self.remote.show_required(&pointer_path(env, PROJECT));
        // A change by hand drops the record of recent stays (it would no longer be true).
        old.lines()
            .filter(|l| !l.contains("releasectl.dev/history:"))
            .map(|l| {
                if l.trim_start().starts_with("release:") {
                    format!("  release: {commit}")
                } else if l.trim_start().starts_with("digest:") {
                    format!("  digest: {digest}")
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    }

    /// The working clone (made on first use by [`World::hand_commit`]).
    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    fn work_git(&self, args: &[&str]) -> Output {
        let out = git()
            .arg("-C")
            .arg(self.work())
            .args(args)
            .env("GIT_COMMITTER_DATE", &self.now)
            .env("GIT_AUTHOR_DATE", &self.now)
            .run();
        out.assert_success();
        out
    }

    /// In the working clone, on top of the remote's `main`: writes (or, with `None`, removes)
    /// `files` and commits them. Returns the new commit; nothing is pushed yet.
    pub fn hand_commit(&self, files: &[(&str, Option<&str>)], message: &str) -> String {
        if !self.work().exists() {
            git()
                .args(["clone", "-q"])
                .arg(self.remote.path())
                .arg(self.work())
                .run()
                .assert_success();
        }
        self.work_git(&["fetch", "-q", "origin"]);
        self.work_git(&["reset", "-q", "--hard", "origin/main"]);
        for (path, content) in files {
            let file = self.work().join(path);
            match content {
                Some(c) => {
                    std::fs::create_dir_all(file.parent().expect("parent")).expect("create dirs");
                    std::fs::write(&file, c).expect("write file");
                }
                None => std::fs::remove_file(&file).expect("remove file"),
            }
        }
        self.work_git(&["add", "-A"]);
        self.work_git(&["commit", "-q", "-m", message]);
        self.work_git(&["rev-parse", "HEAD"])
            .stdout_str()
            .trim()
            .to_owned()
    }

    /// `git push origin HEAD:main` from the working clone (with `env` for the server's hooks:
    /// a push to a local path runs `receive-pack` in the pusher's environment).
    pub fn push_with(&self, env: &[(&str, &str)]) -> Output {
        let mut cmd = git()
            .arg("-C")
            .arg(self.work())
            .args(["push", "origin", "HEAD:main"]);
        for (k, v) in env {
            cmd = cmd.env(k, v);
        }
        cmd.run()
    }

    /// Objects in the product's clones in the shared cache (loose and packed).
    pub fn cache_object_count(&self) -> u64 {
        let root = self.cache("shared").join("git");
        let Ok(dirs) = std::fs::read_dir(&root) else {
            return 0;
        };
        dirs.map(|d| d.expect("read cache dir").path())
            .filter(|d| d.extension().is_some_and(|e| e == "git"))
            .map(|d| super::git::object_count(&d))
            .sum()
    }
}

/// Asserts a refusal at the world's clock (see [`assert_refused_at`]).
#[track_caller]
pub fn assert_refused(world: &World, args: &[&str], needles: &[&str]) -> Output {
    assert_refused_at(world, &world.now.clone(), args, needles)
}

/// Asserts that `args` is refused at each `(now, needle)` of `cases` (see
/// [`assert_refused_at`]), with a message that says `needle`.
#[track_caller]
pub fn assert_refused_each(world: &World, args: &[&str], cases: &[(&str, &str)]) {
    for (now, needle) in cases {
        assert_refused_at(world, now, args, &[needle]);
    }
}

/// Asserts a refusal: exit 4, `main` did not move, no new object in the
/// remote or the product's clone, and stderr names every `needles` (the failing decisions).
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
    // (A cold world's cache starts empty for every command: nothing to compare.)
    if !world.is_cold() && world.cache_object_count() != cached {
        out.fail("a refused deploy created objects (a commit) in its local clone");
    }
    out
}

/// Asserts a refused deploy of `release` to production: [`assert_refused`], nothing on
/// stdout, and no production pointer naming the release.
#[track_caller]
pub fn assert_deploy_refused(world: &World, release: &Release, needles: &[&str]) -> Output {
    let args = [
        "deploy",
        PRODUCTION,
        &release.project,
        &release.tag,
        "--actor",
        ALICE,
    ];
    let out = assert_refused(world, &args, needles);
    out.assert_stdout_contains("FAIL approvals")
        .assert_stdout_contains("refused: nothing written");
    if world
        .pointer(PRODUCTION, &release.project)
        .is_some_and(|p| p.contains(&release.commit))
    {
        out.fail("a refused deploy wrote the production pointer");
    }
    out
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
