//! Running programs under test.
//!
//! Invariants:
//! - the child never sees an inherited `RELEASECTL_*` or `DOCKER_CONFIG` variable: only what the
//!   test set explicitly, so a developer's shell cannot change a test's outcome;
//! - every run has a deadline; a hung child (and its process group) is killed, never waited on
//!   forever;
//! - every failed assertion panics with the command line, cwd, exit status, stdout and stderr, so
//!   a CI log alone is enough to see what happened.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Default deadline for one command: generous for a debug build on a loaded 2-core machine,
/// well under the nextest slow-timeout so a hang shows up as this harness's clear message.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Is this inherited variable removed from every child's environment?
fn is_scrubbed(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with("RELEASECTL_") || name == "DOCKER_CONFIG"
}

/// A command to run: program, arguments, environment changes, cwd, stdin and deadline.
#[derive(Clone, Debug)]
pub struct Cmd {
    program: PathBuf,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    /// Explicit changes, applied in order after scrubbing: `None` removes the variable.
    env: Vec<(OsString, Option<OsString>)>,
    path_prepend: Vec<PathBuf>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
}

impl Cmd {
    /// A command for `program` (a path, or a name looked up on `PATH`).
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Self {
            program: PathBuf::from(program.as_ref()),
            args: Vec::new(),
            cwd: None,
            env: Vec::new(),
            path_prepend: Vec::new(),
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The product binary built by cargo for this test target.
    pub fn releasectl() -> Self {
        Self::new(env!("CARGO_BIN_EXE_releasectl"))
    }

    #[must_use]
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    #[must_use]
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// Sets a variable for the child (this is how a test passes `RELEASECTL_*`/`DOCKER_CONFIG`).
    #[must_use]
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    #[must_use]
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Puts `dir` first on the child's `PATH` (e.g. for `docker-credential-*` helpers).
    #[must_use]
    pub fn path_prepend(mut self, dir: impl AsRef<Path>) -> Self {
        self.path_prepend.push(dir.as_ref().to_owned());
        self
    }

    /// Points the child at a docker `config.json` and puts its credential helpers on `PATH`.
    #[must_use]
    pub fn docker_config(self, config: &super::DockerConfig) -> Self {
        self.env("DOCKER_CONFIG", config.dir())
            .path_prepend(config.bin_dir())
    }

    #[must_use]
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The command line, shell-quoted, for messages.
    pub fn command_line(&self) -> String {
        std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(shell_quote)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The `std` command, scrubbing from `inherited` (the names of the harness process's
    /// variables) what no test asked for. Public for the harness's own test of the scrubbing.
    pub fn to_command(&self, inherited: impl IntoIterator<Item = OsString>) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        for name in inherited {
            if is_scrubbed(&name) {
                command.env_remove(name);
            }
        }
        // A developer's own config file (contexts) must not reach the product under test.
        command.env(
            "RELEASECTL_CONFIG",
            "/nonexistent/releasectl-tests/config.yaml",
        );
        if !self.path_prepend.is_empty() {
            let mut dirs: Vec<PathBuf> = self.path_prepend.iter().rev().cloned().collect();
            // An explicit PATH set by the test wins over the inherited one.
            let base = self
                .env
                .iter()
                .rev()
                .find(|(k, _)| k == "PATH")
                .and_then(|(_, v)| v.clone())
                .or_else(|| std::env::var_os("PATH"));
            if let Some(base) = base {
                dirs.extend(std::env::split_paths(&base));
            }
            let joined = std::env::join_paths(dirs).expect("PATH entry contains ':'");
            command.env("PATH", joined);
        }
        for (key, value) in &self.env {
            if key == "PATH" && !self.path_prepend.is_empty() {
                continue;
            }
            match value {
                Some(v) => command.env(key, v),
                None => command.env_remove(key),
            };
        }
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        command
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own process group, so a timeout can kill whatever the child started too.
            .process_group(0);
        command
    }

    /// Runs the command to completion (or its deadline). Never panics on a non-zero exit: use
    /// the assertions on [`Output`].
    pub fn run(&self) -> Output {
        let cwd = self
            .cwd
            .clone()
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_default();
        let inherited = std::env::vars_os().map(|(name, _)| name);
        let mut child = self.to_command(inherited).spawn().unwrap_or_else(|e| {
            panic!(
                "could not start command: {e}\ncommand: {}\ncwd: {}",
                self.command_line(),
                cwd.display()
            )
        });
        let started = Instant::now();
        let deadline = started + self.timeout;

        if let Some(input) = self.stdin.clone() {
            let mut pipe = child.stdin.take().expect("stdin was piped");
            // A child that exits without reading its stdin gives EPIPE: not the test's concern.
            thread::spawn(move || {
                let _ = pipe.write_all(&input);
            });
        }
        let (tx, rx) = mpsc::channel();
        spawn_reader(
            child.stdout.take().expect("stdout was piped"),
            1,
            tx.clone(),
        );
        spawn_reader(child.stderr.take().expect("stderr was piped"), 2, tx);

        let mut timed_out = false;
        let status = loop {
            match child.try_wait().expect("waiting for child") {
                Some(status) => break status,
                None if Instant::now() >= deadline => {
                    timed_out = true;
                    kill_group(&mut child);
                    break child.wait().expect("waiting for killed child");
                }
                None => thread::sleep(Duration::from_millis(5)),
            }
        };
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            // A grandchild may hold the pipes open after the child exited: don't wait for it
            // past the deadline (plus a grace second).
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(1));
            match rx.recv_timeout(wait) {
                Ok((1, bytes)) => stdout = bytes,
                Ok((_, bytes)) => stderr = bytes,
                Err(_) => {
                    timed_out = true;
                    kill_group(&mut child);
                    break;
                }
            }
        }
        Output::finished(self, cwd, status, timed_out, started, (stdout, stderr))
    }
}

fn spawn_reader(mut pipe: impl Read + Send + 'static, which: u8, tx: mpsc::Sender<(u8, Vec<u8>)>) {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = tx.send((which, buf));
    });
}

fn kill_group(child: &mut Child) {
    // The child leads its own process group (process_group(0)); std has no killpg, and the
    // harness forbids unsafe code, so ask kill(1).
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
}

/// What a finished command did.
#[derive(Clone)]
pub struct Output {
    pub command_line: String,
    pub cwd: PathBuf,
    pub status: ExitStatus,
    pub timed_out: bool,
    pub timeout: Duration,
    pub elapsed: Duration,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    /// What a run of `cmd` in `cwd`, started at `started`, gave.
    pub fn finished(
        cmd: &Cmd,
        cwd: PathBuf,
        status: ExitStatus,
        timed_out: bool,
        started: Instant,
        (stdout, stderr): (Vec<u8>, Vec<u8>),
    ) -> Self {
        Self {
            command_line: cmd.command_line(),
            cwd,
            status,
            timed_out,
            timeout: cmd.timeout,
            elapsed: started.elapsed(),
            stdout,
            stderr,
        }
    }

    /// The exit code; `None` when killed by a signal (or the timeout).
    pub fn code(&self) -> Option<i32> {
        if self.timed_out {
            None
        } else {
            self.status.code()
        }
    }

    pub fn success(&self) -> bool {
        !self.timed_out && self.status.success()
    }

    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Panics with the full report and `what` as the headline.
    #[track_caller]
    pub fn fail(&self, what: &str) -> ! {
        panic!("{what}\n{self}")
    }

    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        if !self.success() {
            self.fail("command was expected to succeed");
        }
        self
    }

    #[track_caller]
    pub fn assert_exit(&self, code: i32) -> &Self {
        if self.code() != Some(code) {
            self.fail(&format!("command was expected to exit with {code}"));
        }
        self
    }

    /// Any non-zero exit (not a timeout, not a signal).
    #[track_caller]
    pub fn assert_failure(&self) -> &Self {
        if !matches!(self.code(), Some(c) if c != 0) {
            self.fail("command was expected to fail with a non-zero exit code");
        }
        self
    }

    #[track_caller]
    pub fn assert_stdout_empty(&self) -> &Self {
        if !self.stdout.is_empty() {
            self.fail("stdout was expected to be empty");
        }
        self
    }

    #[track_caller]
    pub fn assert_stdout_contains(&self, needle: &str) -> &Self {
        if !self.stdout_str().contains(needle) {
            self.fail(&format!("stdout was expected to contain {needle:?}"));
        }
        self
    }

    #[track_caller]
    pub fn assert_stderr_contains(&self, needle: &str) -> &Self {
        if !self.stderr_str().contains(needle) {
            self.fail(&format!("stderr was expected to contain {needle:?}"));
        }
        self
    }

    /// Fails if `secret` appears anywhere in stdout or stderr.
    #[track_caller]
    pub fn assert_no_leak(&self, secret: &str) -> &Self {
        if self.stdout_str().contains(secret) || self.stderr_str().contains(secret) {
            self.fail(&format!("output contains the secret {secret:?}"));
        }
        self
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "command: {}", self.command_line)?;
        writeln!(f, "cwd: {}", self.cwd.display())?;
        if self.timed_out {
            writeln!(f, "status: killed after the {:?} timeout", self.timeout)?;
        } else if let Some(signal) = self.status.signal() {
            writeln!(f, "status: killed by signal {signal}")?;
        } else {
            writeln!(f, "status: {}", self.status)?;
        }
        writeln!(f, "elapsed: {:?}", self.elapsed)?;
        section(f, "stdout", &self.stdout)?;
        section(f, "stderr", &self.stderr)
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

fn section(f: &mut fmt::Formatter<'_>, name: &str, bytes: &[u8]) -> fmt::Result {
    if bytes.is_empty() {
        return writeln!(f, "{name}: (empty)");
    }
    writeln!(f, "---- {name} ({} bytes) ----", bytes.len())?;
    let text = String::from_utf8_lossy(bytes);
    write!(f, "{text}")?;
    if !text.ends_with('\n') {
        writeln!(f)?;
    }
    writeln!(f, "---- end {name} ----")
}

fn shell_quote(arg: &OsStr) -> String {
    let s = arg.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
