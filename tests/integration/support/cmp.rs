//! Runs `releasectl generate` the way Argo CD's `argocd-cmp-server` does (CMP v2 sidecar).
//!
//! The cmp-server receives the repository as a tarball, extracts it into a fresh temporary
//! directory, and runs the plugin's `generate` command with the application's path as working
//! directory and the `ARGOCD_APP_*` and `ARGOCD_ENV_*` variables set. When Argo CD's deadline
//! passes it sends SIGTERM, and SIGKILL after a grace period. This harness does the same:
//!
//! - the application directory is copied to `<tmp>/repo/<ARGOCD_APP_SOURCE_PATH>` with every file
//!   mode 0644 (directories 0755), so the product never depends on the test's own tree or modes;
//! - the environment holds what the cmp-server sets plus what the test adds (`RELEASECTL_*`),
//!   and nothing inherited that starts with `RELEASECTL_` (see [`super::Cmd`]);
//! - at the timeout the child gets SIGTERM; if it is still alive after the grace period its
//!   process group gets SIGKILL (through `kill(1)`: the crate forbids unsafe code, so no
//!   `libc::kill`).

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::{Cmd, Output};

/// Argo CD's default exec timeout for config management plugins is 60 s; tests use less.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Time between SIGTERM and SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);
/// Where the application sits in the copied repository, as Argo CD reports it.
pub const SOURCE_PATH: &str = "dev/apps/company/monorepo/auth-service";
pub const APP_NAME: &str = "auth-service-dev";

/// One generate call as the cmp-server makes it.
#[derive(Clone, Debug)]
pub struct CmpRun {
    app_dir: PathBuf,
    program: Option<PathBuf>,
    source_path: String,
    env: Vec<(String, String)>,
    args: Vec<String>,
    timeout: Duration,
    grace: Duration,
}

impl CmpRun {
    /// Generate for the application whose files are in `app_dir`.
    pub fn new(app_dir: impl AsRef<Path>) -> Self {
        Self {
            app_dir: app_dir.as_ref().to_owned(),
            program: None,
            source_path: SOURCE_PATH.to_owned(),
            env: Vec::new(),
            args: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            grace: DEFAULT_GRACE,
        }
    }

    /// A variable for the child on top of the cmp-server's (e.g. `RELEASECTL_REGISTRY`).
    #[must_use]
    pub fn env(mut self, key: &str, value: impl AsRef<str>) -> Self {
        self.env.push((key.to_owned(), value.as_ref().to_owned()));
        self
    }

    /// An argument after `generate` (e.g. `--pointer`).
    #[must_use]
    pub fn arg(mut self, arg: impl AsRef<str>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    #[must_use]
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Runs `program` instead of `releasectl` (for the harness's own tests).
    #[must_use]
    pub fn program(mut self, program: &Path) -> Self {
        self.program = Some(program.to_owned());
        self
    }

    /// The application's path inside the copied repository (`ARGOCD_APP_SOURCE_PATH`).
    #[must_use]
    pub fn source_path(mut self, path: &str) -> Self {
        path.clone_into(&mut self.source_path);
        self
    }

    /// The command, with the cmp-server's environment, to run in `cwd`.
    fn cmd(&self, cwd: &Path) -> Cmd {
        let program = self.program.as_ref().map_or_else(Cmd::releasectl, Cmd::new);
        let mut cmd = program
            .arg("generate")
            .args(&self.args)
            .current_dir(cwd)
            .env("ARGOCD_APP_NAME", APP_NAME)
            .env("ARGOCD_APP_NAMESPACE", "argocd")
            .env(
                "ARGOCD_APP_REVISION",
                "5a1b2c3d4e5f60718293a4b5c6d7e8f901234567",
            )
            .env("ARGOCD_APP_REVISION_SHORT", "5a1b2c3")
            .env("ARGOCD_APP_SOURCE_PATH", &self.source_path)
            .env(
                "ARGOCD_APP_SOURCE_REPO_URL",
                "https://git.example.com/company/gitops.git",
            )
            .env("ARGOCD_APP_SOURCE_TARGET_REVISION", "HEAD")
            .env("ARGOCD_ENV_FOO", "bar")
            .env("KUBE_VERSION", "1.33.0")
            .timeout(self.timeout);
        for (k, v) in &self.env {
            cmd = cmd.env(k, v);
        }
        cmd
    }

    /// Copies the application into a fresh repository checkout and runs generate there.
    pub fn run(&self) -> Output {
        let repo = super::temp_dir();
        let cwd = repo.path().join(&self.source_path);
        copy_tree(&self.app_dir, &cwd);
        self.run_in(&cwd)
    }

    /// Runs generate in `cwd` as it is (no copy): for tests that prepare the directory.
    pub fn run_in(&self, cwd: &Path) -> Output {
        let cmd = self.cmd(cwd);
        let inherited = std::env::vars_os().map(|(name, _)| name);
        let mut command = cmd.to_command(inherited);
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "could not start {}: {e}\ncwd: {}",
                cmd.command_line(),
                cwd.display()
            )
        });
        let started = Instant::now();
        let (tx, rx) = mpsc::channel();
        for (which, pipe) in [
            (
                1u8,
                Box::new(child.stdout.take().expect("piped")) as Box<dyn Read + Send>,
            ),
            (2u8, Box::new(child.stderr.take().expect("piped"))),
        ] {
            let tx = tx.clone();
            thread::spawn(move || {
                let mut pipe = pipe;
                let mut buf = Vec::new();
                let _ = pipe.read_to_end(&mut buf);
                let _ = tx.send((which, buf));
            });
        }
        drop(tx);

        let mut timed_out = false;
        let mut killed_at: Option<Instant> = None;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for generate") {
                break status;
            }
            let now = Instant::now();
            match killed_at {
                None if now >= started + self.timeout => {
                    timed_out = true;
                    signal(&format!("{}", child.id()), "TERM");
                    killed_at = Some(now);
                }
                Some(at) if now >= at + self.grace => {
                    signal(&format!("-{}", child.id()), "KILL");
                    let _ = child.kill();
                    break child.wait().expect("wait for killed generate");
                }
                _ => {}
            }
            thread::sleep(Duration::from_millis(5));
        };
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        while let Ok((which, bytes)) = rx.recv_timeout(Duration::from_secs(5)) {
            if which == 1 {
                stdout = bytes;
            } else {
                stderr = bytes;
            }
        }
        Output::finished(
            &cmd,
            cwd.to_owned(),
            status,
            timed_out,
            started,
            (stdout, stderr),
        )
    }
}

/// `kill -SIGNAL -- TARGET` (a pid, or `-pgid` for a process group).
fn signal(target: &str, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), "--", target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Copies the tree at `from` to `to`: files 0644, directories 0755, symlinks not followed
/// (Argo CD refuses repositories with out-of-bounds symlinks; tests do not make any).
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    fs::set_permissions(to, fs::Permissions::from_mode(0o755)).expect("chmod dir");
    let entries = fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()));
    for entry in entries {
        let entry = entry.expect("dir entry");
        let kind = entry.file_type().expect("file type");
        let dest = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &dest);
        } else if kind.is_file() {
            fs::copy(entry.path(), &dest)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
            fs::set_permissions(&dest, fs::Permissions::from_mode(0o644)).expect("chmod file");
        }
    }
}

/// A fresh application directory holding `files` (name, contents).
pub fn app_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = super::temp_dir();
    for (name, contents) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create app subdir");
        }
        fs::write(&path, contents).expect("write app file");
    }
    dir
}

/// The checked-in example application (`scripts/make-fixtures.sh`).
pub fn fixture_app() -> PathBuf {
    super::manifest_dir()
        .join("fixtures/gitops")
        .join(SOURCE_PATH)
}

/// The checked-in OCI layout root that holds the example release.
pub fn fixture_registry() -> PathBuf {
    super::manifest_dir().join("fixtures/registry")
}

/// `generate` as the sidecar runs it, for `image` pushed to `registry` tagged with its commit,
/// from a pinned pointer.
pub fn generate_pushed(
    image: &super::image::Image,
    registry: &super::registry::Registry,
) -> Output {
    image.push(registry, &image.commit);
    let app = app_dir(&[("release.yaml", &super::image::Pointer::to(image).yaml())]);
    CmpRun::new(app.path())
        .env("RELEASECTL_REGISTRY", registry.host())
        .env("RELEASECTL_INSECURE_REGISTRIES", registry.host())
        .env("RELEASECTL_TIMEOUT", "20s")
        .run()
}
