//! Helpers for the approval and `check` tests (issue 6): a bare GitOps remote seeded through a
//! clone (commit, push) with a production policy that requires approvals, an OCI layout
//! registry, `releasectl` with the flags that reach both and a fixed clock, SSH keys made by
//! `ssh-keygen`, and a `git daemon` whose environment the tests choose (so the
//! `scripts/hooks/pre-receive` hook can be installed verbatim and find the built binary).
//!
//! Changes "by hand" go through a working clone and a plain `git push`, as a person with push
//! access would make them; their committer time is the world's clock, so `check` (which judges
//! a change at its commit time) sees what the test intends.

// Each test file uses a different part of these helpers.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{self, Cmd, Output};

pub const ALICE: &str = "alice@company.com";
pub const BOB: &str = "bob@company.com";
pub const CAROL: &str = "carol@company.com";
pub const REPOSITORY: &str = "company/monorepo";
pub const PROJECT: &str = "auth-service";
pub const PRODUCTION: &str = "production";
/// The world's clock: a Monday, 10:00 UTC.
pub const NOW: &str = "2026-11-23T10:00:00Z";
/// What `approve` at [`NOW`] writes with the policy's `ttl: 24h`.
pub const EXPIRES: &str = "2026-11-24T10:00:00Z";
/// The namespace of approval signatures (`ssh-keygen -Y sign -n`).
pub const NAMESPACE: &str = "releasectl-approval";

/// `production/apps/company/monorepo/auth-service/release.yaml`.
pub fn pointer_path(env: &str) -> String {
    format!("{env}/apps/{REPOSITORY}/{PROJECT}/release.yaml")
}

/// `approvals/<env>/company/monorepo/auth-service/<commit>.yaml`.
pub fn approval_path(env: &str, commit: &str) -> String {
    format!("approvals/{env}/{REPOSITORY}/{PROJECT}/{commit}.yaml")
}

/// A 40-hex commit id derived from `seed`, stable across runs. Its first character is a
/// letter, so no YAML writer can take it for a number.
pub fn sha(seed: &str) -> String {
    format!(
        "c{}",
        &crate::common::sha256(seed.as_bytes())["sha256:".len()..][..39]
    )
}

/// A policy whose `production` requires `min: 2` approvals by `approvers` (the YAML flow
/// sequence's contents, e.g. `alice@company.com, bob@company.com` or `{id: …, key: "…"}`),
/// with `ttl: 24h`; triggers and branches admit a tagged release from `main`; no windows,
/// no progression. `staging` has no rules.
pub fn policy(approvers: &str) -> String {
    format!(
        "environments:\n  staging:\n    promotion_policy: {{allowed_triggers: [branch_push, tag, manual], allowed_branches: [\"*\"]}}\n  production:\n    promotion_policy:\n      allowed_triggers: [tag, manual]\n      allowed_branches: [main]\n      requires_approval: true\n      approvals: {{min: 2, ttl: 24h, approvers: [{approvers}]}}\n"
    )
}

/// [`policy`] with alice and bob listed by identity only.
pub fn plain_policy() -> String {
    policy(&format!("{ALICE}, {BOB}"))
}

/// [`policy`] with alice and bob listed with their SSH public keys.
pub fn keyed_policy(alice: &Key, bob: &Key) -> String {
    policy(&format!(
        "{{id: {ALICE}, key: \"{}\"}}, {{id: {BOB}, key: \"{}\"}}",
        alice.public, bob.public
    ))
}

/// `git` with no inherited `GIT_*` variables and no user or system config.
pub fn git() -> Cmd {
    let mut cmd = Cmd::new("git")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Mallory Hand")
        .env("GIT_AUTHOR_EMAIL", "mallory@company.com")
        .env("GIT_COMMITTER_NAME", "Mallory Hand")
        .env("GIT_COMMITTER_EMAIL", "mallory@company.com");
    for (name, _) in std::env::vars_os() {
        let n = name.to_string_lossy();
        if n.starts_with("GIT_") && !n.starts_with("GIT_CONFIG") {
            cmd = cmd.env_remove(&name);
        }
    }
    cmd
}

/// An ed25519 key pair made by `ssh-keygen -t ed25519 -N ''`.
pub struct Key {
    pub private: PathBuf,
    /// `ssh-ed25519 AAAA… comment`.
    pub public: String,
}

impl Key {
    pub fn generate(dir: &Path, name: &str) -> Self {
        support::require_command("ssh-keygen", "openssh-client");
        let private = dir.join(name);
        Cmd::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&private)
            .run()
            .assert_success();
        let public = std::fs::read_to_string(dir.join(format!("{name}.pub")))
            .expect("read public key")
            .trim()
            .to_owned();
        Self { private, public }
    }

    /// `ssh-keygen -Y sign -f KEY -n NAMESPACE` over `payload`: the armored signature.
    pub fn sign(&self, payload: &str, namespace: &str) -> String {
        let dir = support::temp_dir();
        let file = dir.path().join("payload");
        std::fs::write(&file, payload).expect("write payload");
        Cmd::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", namespace, "-f"])
            .arg(&self.private)
            .arg(&file)
            .run()
            .assert_success();
        std::fs::read_to_string(dir.path().join("payload.sig")).expect("read signature")
    }
}

/// `ssh-keygen -Y verify -f allowed_signers -I identity -n releasectl-approval -s SIG < PAYLOAD`.
pub fn ssh_keygen_verify(identity: &str, public: &str, payload: &str, signature: &str) -> Output {
    let dir = support::temp_dir();
    let signers = dir.path().join("allowed_signers");
    std::fs::write(
        &signers,
        format!("{identity} namespaces=\"{NAMESPACE}\" {public}\n"),
    )
    .expect("write allowed_signers");
    let sig = dir.path().join("approval.sig");
    std::fs::write(&sig, signature).expect("write signature");
    Cmd::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&signers)
        .args(["-I", identity, "-n", NAMESPACE, "-s"])
        .arg(&sig)
        .stdin(payload.as_bytes().to_vec())
        .run()
}

/// The canonical payload an approval's signature covers, written out independently of the
/// product (DESIGN.md §8, `Approval::payload`): a test that pins the format.
pub fn payload(file: &Value, approval: &Value) -> String {
    let s = |v: &Value| v.as_str().expect("string field").to_owned();
    format!(
        "releasectl-approval-v1\nenvironment={}\nrepository={}\nproject={}\ncommit={}\ndigest={}\napprover={}\nexpires_at={}\n",
        s(&approval["environment"]),
        s(&file["repository"]),
        s(&file["project"]),
        s(&file["commit"]),
        s(&approval["digest"]),
        s(&approval["approver"]),
        s(&approval["expires_at"]),
    )
}

/// A registered release.
#[derive(Clone, Debug)]
pub struct Release {
    pub commit: String,
    pub digest: String,
    /// `v1.0.0`.
    pub tag: String,
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
            "- approver: {}\n  environment: {}\n  digest: \"{}\"\n  approved_at: \"{NOW}\"\n  expires_at: \"{}\"\n  justification: by hand\n",
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
        "apiVersion: releasectl.dev/v1alpha1\nkind: ReleaseApprovals\nenvironment: {env}\nrepository: {REPOSITORY}\nproject: {PROJECT}\ncommit: \"{}\"\napprovals:\n",
        release.commit
    );
    for e in entries {
        out.push_str(&e.yaml());
    }
    out
}

/// Parses YAML (an approvals file, a pointer) into JSON values.
pub fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("not YAML ({e}):\n{text}"))
}

/// A remote, a working clone, a registry, a cache and a clock.
pub struct World {
    dir: tempfile::TempDir,
    /// Directories that live as long as the world (keys made before it).
    kept: std::cell::RefCell<Vec<tempfile::TempDir>>,
    pub remote: PathBuf,
    work: PathBuf,
    pub now: String,
}

impl World {
    /// A bare remote whose first commit (made in a clone and pushed) holds `policy`.
    pub fn new(policy: &str) -> Self {
        let dir = support::temp_dir();
        let remote = dir.path().join("gitops.git");
        let work = dir.path().join("work");
        git()
            .args(["init", "-q", "--bare", "-b", "main"])
            .arg(&remote)
            .run()
            .assert_success();
        git()
            .args(["clone", "-q"])
            .arg(&remote)
            .arg(&work)
            .run()
            .assert_success();
        let world = Self {
            dir,
            kept: std::cell::RefCell::default(),
            remote,
            work,
            now: NOW.to_owned(),
        };
        world.hand_commit(&[("environments.yaml", Some(policy))], "Seed the policy");
        world.push().assert_success();
        world
    }

    /// Keeps `dir` until the world is dropped.
    pub fn keep(&self, dir: tempfile::TempDir) {
        self.kept.borrow_mut().push(dir);
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn url(&self) -> String {
        self.remote.display().to_string()
    }

    /// `oci:DIR`.
    pub fn registry(&self) -> String {
        format!("oci:{}", self.dir.path().join("registry").display())
    }

    /// `releasectl --gitops GITOPS --registry oci:DIR` at `now`, with a cache of its own.
    pub fn cmd_via(&self, gitops: &str, now: &str) -> Cmd {
        Cmd::releasectl()
            .args(["--gitops", gitops, "--registry", &self.registry()])
            .env("RELEASECTL_CACHE_DIR", self.dir.path().join("cache"))
            .env("RELEASECTL_NOW", now)
    }

    /// `releasectl` against the remote at `now`.
    pub fn at(&self, now: &str) -> Cmd {
        self.cmd_via(&self.url(), now)
    }

    /// `releasectl` against the remote at the world's clock.
    pub fn cmd(&self) -> Cmd {
        self.at(&self.now)
    }

    /// `releasectl ARGS`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).run()
    }

    /// Registers auth-service at `commit`, built from `main` and tagged `auth-service/TAG`,
    /// so production's trigger and branch rules pass.
    pub fn create(&self, commit: &str, tag: &str) -> Release {
        let out = self
            .cmd()
            .args(["-o", "json", "release", "create"])
            .args(["--repository", REPOSITORY, "--project", PROJECT])
            .args(["--commit", commit, "--manifests"])
            .arg(support::manifest_dir().join("fixtures/manifests/auth-service"))
            .args(["--source-branch", "main", "--source-tag"])
            .arg(format!("{PROJECT}/{tag}"))
            .run();
        out.assert_success();
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| out.fail(&format!("release create printed no JSON: {e}")));
        Release {
            commit: commit.to_owned(),
            digest: v["digest"].as_str().expect("digest").to_owned(),
            tag: tag.to_owned(),
        }
    }

    /// `approve ENV auth-service TAG --justification … --actor ACTOR [--key KEY]`.
    pub fn approve(&self, env: &str, release: &Release, actor: &str, key: Option<&Path>) -> Output {
        let mut cmd = self
            .cmd()
            .args(["approve", env, PROJECT, &release.tag])
            .args(["--justification", "reviewed the change log and the canary"])
            .args(["--actor", actor]);
        if let Some(k) = key {
            cmd = cmd.arg("--key").arg(k);
        }
        cmd.run()
    }

    /// `revoke ENV auth-service TAG --actor ACTOR`.
    pub fn revoke(&self, env: &str, release: &Release, actor: &str) -> Output {
        self.run(&["revoke", env, PROJECT, &release.tag, "--actor", actor])
    }

    /// `deploy ENV auth-service TAG --actor alice@company.com` at `now`.
    pub fn deploy_at(&self, now: &str, env: &str, release: &Release) -> Output {
        self.at(now)
            .args(["deploy", env, PROJECT, &release.tag, "--actor", ALICE])
            .run()
    }

    pub fn deploy(&self, env: &str, release: &Release) -> Output {
        self.deploy_at(&self.now, env, release)
    }

    /// Approves by alice and bob (unsigned), asserting success.
    pub fn approve_both(&self, release: &Release) {
        self.approve(PRODUCTION, release, ALICE, None)
            .assert_success();
        self.approve(PRODUCTION, release, BOB, None)
            .assert_success();
    }

    fn try_git(&self, args: &[&str]) -> Output {
        git().arg("--git-dir").arg(&self.remote).args(args).run()
    }

    /// `git --git-dir REMOTE ARGS`, which must succeed; stdout trimmed.
    pub fn git(&self, args: &[&str]) -> String {
        let out = self.try_git(args);
        out.assert_success();
        out.stdout_str().trim().to_owned()
    }

    /// The tip of the remote's `main`.
    pub fn head(&self) -> String {
        self.git(&["rev-parse", "refs/heads/main"])
    }

    /// The full message of `rev` in the remote.
    pub fn message(&self, rev: &str) -> String {
        self.git(&["log", "-1", "--format=%B", rev])
    }

    /// The paths `rev` changed relative to its parent.
    pub fn changed(&self, rev: &str) -> Vec<String> {
        self.git(&["diff-tree", "--no-commit-id", "--name-only", "-r", rev])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// A file at the remote's `main`, if present.
    pub fn show(&self, path: &str) -> Option<String> {
        let out = self.try_git(&["show", &format!("main:{path}")]);
        out.success().then(|| out.stdout_str())
    }

    /// A file at the remote's `main`, which must exist.
    pub fn show_required(&self, path: &str) -> String {
        self.show(path)
            .unwrap_or_else(|| panic!("{path} is not at the remote's main"))
    }

    /// The approvals file of `release` in `env`, parsed.
    pub fn approvals(&self, env: &str, release: &Release) -> Value {
        yaml(&self.show_required(&approval_path(env, &release.commit)))
    }

    fn work_git(&self, args: &[&str]) -> Output {
        let out = git()
            .arg("-C")
            .arg(&self.work)
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
        if self
            .try_git(&["rev-parse", "--verify", "-q", "refs/heads/main"])
            .success()
        {
            self.work_git(&["fetch", "-q", "origin"]);
            self.work_git(&["reset", "-q", "--hard", "origin/main"]);
        }
        for (path, content) in files {
            let file = self.work.join(path);
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
            .arg(&self.work)
            .args(["push", "origin", "HEAD:main"]);
        for (k, v) in env {
            cmd = cmd.env(k, v);
        }
        cmd.run()
    }

    pub fn push(&self) -> Output {
        self.push_with(&[])
    }

    /// Commits and pushes `files`, asserting the push succeeded; returns the commit.
    pub fn hand_push(&self, files: &[(&str, Option<&str>)], message: &str) -> String {
        let commit = self.hand_commit(files, message);
        self.push().assert_success();
        commit
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

    /// The pointer of `env` at the tip, with `release` and `digest` replaced: what a person
    /// editing the file by hand would push.
    pub fn pointer_naming(&self, env: &str, commit: &str, digest: &str) -> String {
        let old = self.show_required(&pointer_path(env));
        old.lines()
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
}

/// Asserts a refused deploy: exit 4, the decision report on stdout ending in "nothing
/// written", the remote's `main` unchanged, and each of `needles` on stderr.
#[track_caller]
pub fn assert_deploy_refused(world: &World, release: &Release, needles: &[&str]) -> Output {
    let head = world.head();
    let out = world.deploy(PRODUCTION, release);
    out.assert_exit(4)
        .assert_stdout_contains("FAIL approvals")
        .assert_stdout_contains("refused: nothing written");
    for n in needles {
        out.assert_stderr_contains(n);
    }
    if world.head() != head {
        out.fail("a refused deploy moved the remote's main");
    }
    if world
        .show(&pointer_path(PRODUCTION))
        .is_some_and(|p| p.contains(&release.commit))
    {
        out.fail("a refused deploy wrote the production pointer");
    }
    out
}

/// Parses stdout as JSON.
#[track_caller]
pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| out.fail(&format!("stdout is not JSON: {e}")))
}

/// `git daemon --enable=receive-pack` serving the world's remote, with an environment the
/// test chooses (hooks run in the daemon's environment). Killed on drop.
pub struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    pub fn start(world: &World, env: &[(&str, &str)]) -> Self {
        let log = world.dir().join("daemon.log");
        for _ in 0..5 {
            let port = crate::support::registry::free_port();
            let log_file = std::fs::File::create(&log).expect("create daemon log");
            let mut cmd = git().args([
                "daemon",
                "--reuseaddr",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
            ]);
            cmd = cmd
                .arg(format!("--base-path={}", world.dir().display()))
                .args(["--export-all", "--enable=receive-pack"])
                .arg(world.dir());
            for (k, v) in env {
                cmd = cmd.env(k, v);
            }
            let child = cmd
                .to_command(std::env::vars_os().map(|(k, _)| k))
                .stdout(Stdio::null())
                .stderr(log_file)
                .spawn()
                .expect("start git daemon");
            let mut daemon = Self { child, port };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if daemon.child.try_wait().ok().flatten().is_some() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return daemon;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = daemon.child.kill();
        }
        panic!(
            "git daemon did not start:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// `git://127.0.0.1:PORT/gitops.git`.
    pub fn url(&self) -> String {
        format!("git://127.0.0.1:{}/gitops.git", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
