//! Real git remotes for the GitOps tests (docs/design.md §9): a bare repository reachable as a plain
//! path and as `file://`, the same repository served by `git daemon --enable=receive-pack`, and
//! by smart HTTP (`git http-backend` behind lighttpd with htpasswd basic auth).
//!
//! Invariants:
//! - every server listens on 127.0.0.1 only, on a port of its own, and dies with its handle
//!   (Drop), so tests run in parallel without seeing each other;
//! - a missing tool fails the test with the command that installs it, never skips it;
//! - the hooks are plain `sh` scripts written by the harness: what they do is readable here.
//!
//! Hooks only run when git's own `receive-pack` takes the push (daemon, HTTP): libgit2 pushes
//! to a `file://` remote in-process, without hooks.

use std::fmt::Write as _;
use std::fs;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::cmd::{Cmd, Output};
use super::registry::free_port;

/// How long a server may take to answer its port.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const START_ATTEMPTS: u32 = 5;
const ZERO: &str = "0000000000000000000000000000000000000000";

/// `git` on `PATH`, checked once.
fn git_program() -> PathBuf {
    super::require_command("git", "git")
}

/// A `git` command with no inherited `GIT_*` variables and no user or system config, so a
/// developer's setup cannot change a test.
pub fn git() -> Cmd {
    let mut cmd = Cmd::new(git_program())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com");
    for (name, _) in std::env::vars_os() {
        let n = name.to_string_lossy();
        if n.starts_with("GIT_") && !n.starts_with("GIT_CONFIG") {
            cmd = cmd.env_remove(&name);
        }
    }
    cmd
}

/// `git --exec-path`: where `git-daemon` and `git-http-backend` of the `git` on `PATH` live.
fn exec_path() -> PathBuf {
    let out = git().arg("--exec-path").run();
    out.assert_success();
    PathBuf::from(out.stdout_str().trim())
}

/// Loose plus packed objects of the repository at `git_dir` (`git count-objects -v`).
pub fn object_count(git_dir: &Path) -> u64 {
    let out = git()
        .arg("--git-dir")
        .arg(git_dir)
        .args(["count-objects", "-v"])
        .run();
    out.assert_success();
    out.stdout_str()
        .lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(k, _)| *k == "count" || *k == "in-pack")
        .map(|(_, v)| v.trim().parse::<u64>().expect("count-objects number"))
        .sum()
}

/// One ref update as a hook saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefUpdate {
    pub old: String,
    pub new: String,
    pub name: String,
}

/// A bare repository with `HEAD` → `refs/heads/main`, in a temp dir of its own.
pub struct BareRepo {
    dir: TempDir,
    path: PathBuf,
}

impl BareRepo {
    /// An empty bare repository named `gitops.git`.
    pub fn new() -> Self {
        Self::named("gitops.git")
    }

    pub fn named(name: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("releasectl-git-")
            .tempdir()
            .expect("create git temp dir");
        let path = dir.path().join(name);
        git()
            .args(["init", "--quiet", "--bare", "--initial-branch=main"])
            .arg(&path)
            .run()
            .assert_success();
        let repo = Self { dir, path };
        repo.git(["symbolic-ref", "HEAD", "refs/heads/main"])
            .assert_success();
        fs::create_dir_all(repo.hooks_dir()).expect("create hooks dir");
        repo
    }

    /// A bare repository whose `main` already has one commit (a README).
    pub fn with_initial_commit() -> Self {
        let repo = Self::new();
        repo.commit_file(
            "README.md",
            "GitOps repository for tests\n",
            "Initial commit",
        );
        repo
    }

    /// The directory the repository lives in (the base path servers export).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The repository's directory name (`gitops.git`).
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .expect("repo has a name")
            .to_string_lossy()
            .into_owned()
    }

    /// The plain path (what `--gitops /srv/gitops.git` takes).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `file:///…/gitops.git`.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.path.display())
    }

    fn hooks_dir(&self) -> PathBuf {
        self.path.join("hooks")
    }

    /// `git --git-dir=REPO ARGS`.
    pub fn git<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        git().arg("--git-dir").arg(&self.path).args(args).run()
    }

    /// `git ARGS`, asserting success, stdout trimmed.
    pub fn git_ok(&self, args: &[&str]) -> String {
        let out = self.git(args);
        out.assert_success();
        out.stdout_str().trim().to_owned()
    }

    /// The commit `main` points at, if the branch exists.
    pub fn main_sha(&self) -> Option<String> {
        let out = self.git(["rev-parse", "--verify", "--quiet", "refs/heads/main"]);
        out.success().then(|| out.stdout_str().trim().to_owned())
    }

    /// The file at `main`, if there is one.
    pub fn show(&self, path: &str) -> Option<String> {
        let out = self.git(["show", &format!("refs/heads/main:{path}")]);
        out.success().then(|| out.stdout_str())
    }

    /// The file at `main`, or a panic naming what is there instead.
    pub fn show_required(&self, path: &str) -> String {
        self.show(path).unwrap_or_else(|| {
            panic!(
                "{path} is not at main of {}; files: {}",
                self.path.display(),
                self.git_ok(&["ls-tree", "-r", "--name-only", "refs/heads/main"])
            )
        })
    }

    /// Number of commits reachable from `main` (0 when it does not exist).
    pub fn commit_count(&self) -> usize {
        if self.main_sha().is_none() {
            return 0;
        }
        self.git_ok(&["rev-list", "--count", "refs/heads/main"])
            .parse()
            .expect("rev-list --count prints a number")
    }

    /// Is the history of `main` a single line (no merges, one root)?
    pub fn is_linear(&self) -> bool {
        let merges = self.git_ok(&["rev-list", "--merges", "refs/heads/main"]);
        let roots = self.git_ok(&["rev-list", "--max-parents=0", "refs/heads/main"]);
        merges.is_empty() && roots.lines().count() == 1
    }

    /// Subjects of the commits on `main`, newest first.
    pub fn subjects(&self) -> Vec<String> {
        self.git_ok(&["log", "--format=%s", "refs/heads/main"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// `git fsck --full --strict`, asserted clean.
    pub fn assert_fsck_clean(&self) {
        let out = self.git(["fsck", "--full", "--strict", "--no-dangling"]);
        if !out.success() || !out.stderr.is_empty() {
            out.fail("git fsck --full reported problems");
        }
    }

    /// Commits `content` at `path` on `main` directly (no push), with plumbing.
    pub fn commit_file(&self, path: &str, content: &str, message: &str) -> String {
        self.commit_files_at(&[(path, Some(content))], message, None)
    }

    /// Commits `files` (path, content; `None` deletes) on top of `main` directly (no push)
    /// with plumbing and a throwaway index, dated `date` if given; returns the new commit.
    pub fn commit_files_at(
        &self,
        files: &[(&str, Option<&str>)],
        message: &str,
        date: Option<&str>,
    ) -> String {
        let index = self.dir.path().join("commit-files.index");
        let _ = fs::remove_file(&index);
        let run = |args: &[&str], stdin: Option<&str>| {
            let mut cmd = git()
                .arg("--git-dir")
                .arg(&self.path)
                .env("GIT_INDEX_FILE", &index)
                .args(args);
            if let Some(d) = date {
                cmd = cmd.env("GIT_COMMITTER_DATE", d).env("GIT_AUTHOR_DATE", d);
            }
            if let Some(s) = stdin {
                cmd = cmd.stdin(s.as_bytes().to_vec());
            }
            let out = cmd.run();
            out.assert_success();
            out.stdout_str().trim().to_owned()
        };
        let parent = self.main_sha();
        match &parent {
            Some(p) => run(&["read-tree", p], None),
            None => run(&["read-tree", "--empty"], None),
        };
        for (path, content) in files {
            match content {
                Some(c) => {
                    let blob = run(&["hash-object", "-w", "--stdin"], Some(c));
                    let info = format!("100644,{blob},{path}");
                    run(&["update-index", "--add", "--cacheinfo", &info], None);
                }
                None => {
                    // `--force-remove` wants a work tree; mode 0 removes in a bare repository.
                    let info = format!("0 {ZERO}\t{path}\n");
                    run(&["update-index", "--index-info"], Some(&info));
                }
            }
        }
        let tree = run(&["write-tree"], None);
        let _ = fs::remove_file(&index);
        let mut args = vec!["commit-tree", tree.as_str(), "-m", message];
        if let Some(p) = &parent {
            args.extend(["-p", p.as_str()]);
        }
        let commit = run(&args, None);
        let old = parent.unwrap_or_else(|| ZERO.to_owned());
        run(&["update-ref", "refs/heads/main", &commit, &old], None);
        commit
    }

    /// The tip of `main`, which must exist.
    pub fn head(&self) -> String {
        self.git_ok(&["rev-parse", "refs/heads/main"])
    }

    /// The full message of `rev` (`git log -1 --format=%B`).
    pub fn message(&self, rev: &str) -> String {
        let out = self.git(["log", "-1", "--format=%B", rev]);
        out.assert_success();
        out.stdout_str()
    }

    /// The message of the tip of `main`.
    pub fn last_message(&self) -> String {
        self.message("refs/heads/main")
    }

    /// The paths `rev` changed relative to its parent.
    pub fn changed(&self, rev: &str) -> Vec<String> {
        self.git_ok(&["diff-tree", "--no-commit-id", "--name-only", "-r", rev])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Loose plus packed objects.
    pub fn object_count(&self) -> u64 {
        object_count(&self.path)
    }

    /// Objects no ref reaches (`git fsck --unreachable --no-reflogs`).
    pub fn unreachable(&self) -> Vec<String> {
        self.git_ok(&["fsck", "--unreachable", "--no-reflogs", "--no-progress"])
            .lines()
            .filter(|l| l.starts_with("unreachable"))
            .map(str::to_owned)
            .collect()
    }

    /// Writes `hooks/pre-receive` (and `post-receive`) from the parts asked for. Every
    /// installed hook logs what it is asked to do, so tests can reason about pushes.
    pub fn install_hooks(&self, hooks: &Hooks) {
        let log_attempts = self.attempt_log_path();
        let log_accepted = self.accepted_log_path();
        let git = git_program();
        let mut pre = String::from("#!/bin/sh\n# Written by tests/integration/support/git.rs\n");
        let _ = writeln!(pre, "updates=$(cat)");
        let _ = writeln!(
            pre,
            "printf '%s\\n' \"$updates\" >> {}",
            sh_quote(&log_attempts)
        );
        if let Some(competing) = &hooks.competing_commit {
            let marker = self.dir.path().join("competing-commit.done");
            let index = self.dir.path().join("competing-commit.index");
            // Outside the quarantine (receive-pack keeps the pushed objects apart, and refuses
            // ref updates from inside it): the competitor writes straight to the repository,
            // like another client whose push landed a moment earlier.
            let _ = write!(
                pre,
                r#"if [ ! -e {marker} ]; then
  : > {marker}
  (
    unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_DIR
    export GIT_DIR={repo} GIT_INDEX_FILE={index}
    export GIT_AUTHOR_NAME=Competitor GIT_AUTHOR_EMAIL=competitor@example.com
    export GIT_COMMITTER_NAME=Competitor GIT_COMMITTER_EMAIL=competitor@example.com
    set -e
    old=$({git} rev-parse --verify refs/heads/main)
    blob=$(printf '%s' {content} | {git} hash-object -w --stdin)
    rm -f {index}
    {git} read-tree "$old"
    path={path}
    {git} update-index --add --cacheinfo "100644,$blob,$path"
    tree=$({git} write-tree)
    new=$({git} commit-tree "$tree" -p "$old" -m {message})
    {git} update-ref refs/heads/main "$new" "$old"
    rm -f {index}
    echo "$new" > {marker}
  ) || {{ echo "competing commit failed" >&2; exit 1; }}
fi
"#,
                marker = sh_quote(&marker),
                index = sh_quote(&index),
                repo = sh_quote(&self.path),
                git = sh_quote(&git),
                content = sh_quote_str(&competing.content),
                path = sh_quote_str(&competing.path),
                message = sh_quote_str(&competing.message),
            );
        }
        if let Some(message) = &hooks.reject {
            let _ = writeln!(pre, "echo {} >&2\nexit 1", sh_quote_str(message));
        }
        pre.push_str("exit 0\n");
        write_hook(&self.hooks_dir().join("pre-receive"), &pre);
        let post = format!(
            "#!/bin/sh\n# Written by tests/integration/support/git.rs\ncat >> {}\n",
            sh_quote(&log_accepted)
        );
        write_hook(&self.hooks_dir().join("post-receive"), &post);
    }

    fn attempt_log_path(&self) -> PathBuf {
        self.dir.path().join("pre-receive.log")
    }

    fn accepted_log_path(&self) -> PathBuf {
        self.dir.path().join("post-receive.log")
    }

    /// Every ref update the server was asked for (pre-receive), in order.
    pub fn attempted_updates(&self) -> Vec<RefUpdate> {
        read_updates(&self.attempt_log_path())
    }

    /// Every ref update the server accepted (post-receive), in order.
    pub fn accepted_updates(&self) -> Vec<RefUpdate> {
        read_updates(&self.accepted_log_path())
    }

    /// The commit the competing-commit hook made, once it ran.
    pub fn competing_commit(&self) -> Option<String> {
        fs::read_to_string(self.dir.path().join("competing-commit.done"))
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    /// Is `old` an ancestor of `new` (a fast-forward)? A creation (`old` all zeros) is one.
    pub fn is_fast_forward(&self, old: &str, new: &str) -> bool {
        old == ZERO
            || self
                .git(["merge-base", "--is-ancestor", old, new])
                .success()
    }

    /// Every accepted update was a fast-forward, and each started where the previous one
    /// ended (nothing was overwritten): no force push ever happened.
    pub fn assert_fast_forward_only(&self, expected_updates: usize) {
        let accepted = self.accepted_updates();
        assert_eq!(
            accepted.len(),
            expected_updates,
            "accepted ref updates (post-receive log): {accepted:#?}"
        );
        let mut previous: Option<&str> = None;
        for u in &accepted {
            assert_eq!(u.name, "refs/heads/main", "unexpected ref: {u:?}");
            assert!(
                self.is_fast_forward(&u.old, &u.new),
                "non-fast-forward update (a force push): {u:?}\nall: {accepted:#?}"
            );
            if let Some(prev) = previous {
                assert_eq!(
                    u.old, prev,
                    "an update did not start from the previous tip: {u:?}\nall: {accepted:#?}"
                );
            }
            previous = Some(&u.new);
        }
        if let Some(last) = previous {
            assert_eq!(
                self.main_sha().as_deref(),
                Some(last),
                "main is not where the last accepted push left it"
            );
        }
    }
}

impl Default for BareRepo {
    fn default() -> Self {
        Self::new()
    }
}

/// What the `pre-receive` hook does besides logging.
#[derive(Clone, Debug, Default)]
pub struct Hooks {
    /// Reject every push with this message on stderr.
    pub reject: Option<String>,
    /// The first time the hook runs, land this commit on `main` first, so the push in
    /// progress loses the race at its ref update.
    pub competing_commit: Option<CompetingCommit>,
}

impl Hooks {
    /// Only log.
    pub fn log() -> Self {
        Self::default()
    }

    pub fn reject(message: &str) -> Self {
        Self {
            reject: Some(message.to_owned()),
            ..Self::default()
        }
    }

    pub fn competing_commit(path: &str, content: &str) -> Self {
        Self {
            competing_commit: Some(CompetingCommit {
                path: path.to_owned(),
                content: content.to_owned(),
                message: format!("Competing commit touching {path}"),
            }),
            ..Self::default()
        }
    }
}

#[derive(Clone, Debug)]
pub struct CompetingCommit {
    pub path: String,
    pub content: String,
    pub message: String,
}

fn write_hook(path: &Path, script: &str) {
    fs::write(path, script).expect("write hook");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod hook");
}

fn read_updates(path: &Path) -> Vec<RefUpdate> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.split_whitespace();
            let (Some(old), Some(new), Some(name)) = (parts.next(), parts.next(), parts.next())
            else {
                panic!("bad hook log line {l:?} in {}", path.display());
            };
            RefUpdate {
                old: old.to_owned(),
                new: new.to_owned(),
                name: name.to_owned(),
            }
        })
        .collect()
}

fn sh_quote(p: &Path) -> String {
    sh_quote_str(&p.to_string_lossy())
}

fn sh_quote_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A process killed (and reaped) on drop.
struct Server {
    child: Option<Child>,
}

impl Server {
    /// Spawns `command` with its stdout and stderr going to a new file at `log`, and waits
    /// until it listens on `port` (see [`wait_port`]).
    fn listening(command: &mut Command, log: &Path, port: u16) -> Result<Self, String> {
        let file = fs::File::create(log).expect("create server log");
        let child = command
            .stdout(file.try_clone().expect("clone log"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        let mut server = Self { child: Some(child) };
        wait_port(&mut server, port, log)?;
        Ok(server)
    }
}

impl Server {
    fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().expect("wait for server").is_none())
    }

    /// SIGTERM (lighttpd flushes its logs on it), then reap; SIGKILL if it lingers.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until `port` accepts while the server lives; `Err(log)` when it died first.
fn wait_port(server: &mut Server, port: u16, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if !server.alive() {
            return Err(fs::read_to_string(log).unwrap_or_default());
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        assert!(
            Instant::now() < deadline,
            "server did not answer on 127.0.0.1:{port} within {READY_TIMEOUT:?}\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// `git daemon --enable=receive-pack` exporting a repository's directory on 127.0.0.1.
pub struct GitDaemon {
    port: u16,
    repo_name: String,
    _server: Server,
    _log_dir: TempDir,
}

impl GitDaemon {
    pub fn start(repo: &BareRepo) -> Self {
        Self::start_with_env(repo, &[])
    }

    /// As [`GitDaemon::start`], with `env` in the daemon's environment (its hooks run in it).
    pub fn start_with_env(repo: &BareRepo, env: &[(&str, &str)]) -> Self {
        let daemon = exec_path().join("git-daemon");
        assert!(
            daemon.exists(),
            "{} is missing: install git (`apt-get install -y git`)",
            daemon.display()
        );
        let log_dir = tempfile::tempdir().expect("temp dir");
        let log = log_dir.path().join("daemon.log");
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let mut cmd = git()
                .args([
                    "daemon",
                    "--reuseaddr",
                    "--verbose",
                    "--listen=127.0.0.1",
                    &format!("--port={port}"),
                ])
                .arg(format!("--base-path={}", repo.root().display()))
                .args(["--export-all", "--enable=receive-pack"])
                .arg(repo.root());
            for (k, v) in env {
                cmd = cmd.env(k, v);
            }
            let command = &mut cmd.to_command(std::env::vars_os().map(|(k, _)| k));
            match Server::listening(command, &log, port) {
                Ok(server) => {
                    return Self {
                        port,
                        repo_name: repo.name(),
                        _server: server,
                        _log_dir: log_dir,
                    };
                }
                Err(l) => last = l,
            }
        }
        panic!("git daemon did not start in {START_ATTEMPTS} attempts:\n{last}");
    }

    /// `git://127.0.0.1:PORT/gitops.git`.
    pub fn url(&self) -> String {
        format!("git://127.0.0.1:{}/{}", self.port, self.repo_name)
    }
}

/// Smart HTTP: lighttpd running `git http-backend` as CGI, behind htpasswd basic auth.
pub struct GitHttp {
    port: u16,
    repo_name: String,
    user: String,
    password: String,
    server: Server,
    access_log: PathBuf,
    _dir: TempDir,
}

impl GitHttp {
    /// Serves `repo` at `http://127.0.0.1:PORT/git/gitops.git`, for `user`:`password` only.
    pub fn start(repo: &BareRepo, user: &str, password: &str) -> Self {
        let lighttpd = super::require_command("lighttpd", "lighttpd");
        super::require_command("htpasswd", "apache2-utils");
        let backend = exec_path().join("git-http-backend");
        assert!(
            backend.exists(),
            "{} is missing: install git (`apt-get install -y git`)",
            backend.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("releasectl-lighttpd-")
            .tempdir()
            .expect("temp dir");
        let htpasswd = dir.path().join("htpasswd");
        let out = Cmd::new("htpasswd").args(["-Bbn", user, password]).run();
        out.assert_success();
        fs::write(&htpasswd, &out.stdout).expect("write htpasswd");
        let docroot = dir.path().join("www");
        fs::create_dir_all(&docroot).expect("docroot");
        let access_log = dir.path().join("access.log");
        let error_log = dir.path().join("error.log");
        let stderr_log = dir.path().join("stderr.log");
        let conf = dir.path().join("lighttpd.conf");
        let q = |p: &Path| serde_json::to_string(&p.to_string_lossy()).expect("json string");
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            // mod_auth must come before mod_cgi, or the CGI runs before authentication.
            let config = format!(
                r#"server.modules = ("mod_auth", "mod_authn_file", "mod_alias", "mod_setenv", "mod_cgi", "mod_accesslog")
server.document-root = {docroot}
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = {error_log}
accesslog.filename = {access_log}
auth.backend = "htpasswd"
auth.backend.htpasswd.userfile = {htpasswd}
auth.require = ( "/" => ( "method" => "basic", "realm" => "gitops", "require" => "valid-user" ) )
alias.url = ( "/git" => {backend} )
$HTTP["url"] =~ "^/git" {{
  cgi.assign = ( "" => "" )
  setenv.add-environment = ( "GIT_PROJECT_ROOT" => {root}, "GIT_HTTP_EXPORT_ALL" => "1" )
}}
"#,
                docroot = q(&docroot),
                error_log = q(&error_log),
                access_log = q(&access_log),
                htpasswd = q(&htpasswd),
                backend = q(&backend),
                root = q(repo.root()),
            );
            fs::write(&conf, config).expect("write lighttpd.conf");
            let mut command = Command::new(&lighttpd);
            command.args(["-D", "-f"]).arg(&conf).stdin(Stdio::null());
            match Server::listening(&mut command, &stderr_log, port) {
                Ok(server) => {
                    return Self {
                        port,
                        repo_name: repo.name(),
                        user: user.to_owned(),
                        password: password.to_owned(),
                        server,
                        access_log,
                        _dir: dir,
                    };
                }
                Err(l) => {
                    last = format!(
                        "{l}\n{}",
                        fs::read_to_string(&error_log).unwrap_or_default()
                    );
                }
            }
        }
        panic!("lighttpd did not start in {START_ATTEMPTS} attempts:\n{last}");
    }

    /// `http://127.0.0.1:PORT/git/gitops.git`, without credentials.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/git/{}", self.port, self.repo_name)
    }

    /// The URL with `user:password@` in it.
    pub fn url_with(&self, user: &str, password: &str) -> String {
        format!(
            "http://{user}:{password}@127.0.0.1:{}/git/{}",
            self.port, self.repo_name
        )
    }

    /// The URL with the right credentials in it.
    pub fn url_with_credentials(&self) -> String {
        self.url_with(&self.user, &self.password)
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// Stops the server (lighttpd writes its access log out on SIGTERM) and returns the
    /// access log, one request a line.
    pub fn stop_and_access_log(&mut self) -> Vec<String> {
        self.server.stop();
        fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}
