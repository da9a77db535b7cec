//! GitOps over `ssh://`: a real sshd on 127.0.0.1 (Debian's openssh-server), key
//! authentication with a key file, host keys checked against `~/.ssh/known_hosts`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::register::commit;
use crate::support::git::BareRepo;
use crate::support::setup::stdout_json;
use crate::support::world::World;
use crate::support::{self, Cmd, Output};

struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

fn keygen(path: &Path) {
    Cmd::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .run()
        .assert_success();
}

impl Sshd {
    /// sshd in the foreground on a free port, accepting `client.pub` for the current user.
    fn start() -> Self {
        let sshd = support::require_command("/usr/sbin/sshd", "openssh-server");
        // sshd refuses to start without its privilege separation directory.
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd (tests run as root)");
        let dir = support::temp_dir();
        let d = dir.path();
        keygen(&d.join("host"));
        keygen(&d.join("client"));
        keygen(&d.join("stranger"));
        std::fs::copy(d.join("client.pub"), d.join("authorized_keys")).expect("authorized_keys");
        let port = support::registry::free_port();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nAuthorizedKeysFile {auth}\n\
                 PermitRootLogin yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 UsePAM no\nStrictModes no\nPidFile {pid}\n",
                host = d.join("host").display(),
                auth = d.join("authorized_keys").display(),
                pid = d.join("sshd.pid").display(),
            ),
        )
        .expect("sshd_config");
        let child = Command::new(sshd)
            .arg("-D")
            .arg("-f")
            .arg(d.join("sshd_config"))
            .arg("-E")
            .arg(d.join("sshd.log"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start sshd");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen on {port}: {}",
                std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // A HOME whose known_hosts trusts this server's host key.
        std::fs::create_dir_all(d.join("home/.ssh")).expect("home");
        let host_pub = std::fs::read_to_string(d.join("host.pub")).expect("host.pub");
        std::fs::write(
            d.join("home/.ssh/known_hosts"),
            format!("[127.0.0.1]:{port} {host_pub}"),
        )
        .expect("known_hosts");
        std::fs::create_dir_all(d.join("stranger-home/.ssh")).expect("home");
        Self { child, port, dir }
    }

    fn url(&self, repo: &BareRepo) -> String {
        let user = String::from_utf8(Cmd::new("id").arg("-un").run().stdout).expect("user");
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            user.trim(),
            self.port,
            repo.path().display()
        )
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `release create` of the default project at `commit` through `sshd` into `repo`, with
/// `HOME` and the key file `RELEASECTL_GIT_SSH_KEY` the `(home, key)` paths of the server's
/// dir.
fn register_over_ssh(
    sshd: &Sshd,
    repo: &BareRepo,
    commit: &str,
    (home, key): (&str, &str),
) -> Output {
    let world = World::empty();
    world
        .create_cmd(&sshd.url(repo), &world.cache("writer"), commit, &[])
        .env("HOME", sshd.path(home))
        .env("RELEASECTL_GIT_SSH_KEY", sshd.path(key))
        .run()
}

#[test]
fn registers_over_ssh_with_a_key_file_and_a_known_host() {
    let sshd = Sshd::start();
    let repo = BareRepo::with_initial_commit();
    let c = commit("ssh-key");
    let out = register_over_ssh(&sshd, &repo, &c, ("home", "client"));
    out.assert_success();
    assert_eq!(stdout_json(&out)["number"], 1, "{out}");
    assert!(
        crate::register::register_files(&repo, crate::register::REGISTER)
            .is_some_and(|r| r.contains(&c)),
        "the register at main does not hold the release"
    );
}

#[test]
fn a_key_the_server_does_not_accept_fails_fast_with_exit_5() {
    let sshd = Sshd::start();
    let repo = BareRepo::with_initial_commit();
    let before = repo.main_sha();
    let started = Instant::now();
    let out = register_over_ssh(&sshd, &repo, &commit("ssh-stranger"), ("home", "stranger"));
    out.assert_exit(5).assert_stdout_empty();
    out.assert_stderr_contains("authentication failed");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}: {out}",
        started.elapsed()
    );
    assert_eq!(repo.main_sha(), before, "the remote moved");
}

#[test]
fn an_unknown_host_key_is_refused() {
    let sshd = Sshd::start();
    let repo = BareRepo::with_initial_commit();
    let before = repo.main_sha();
    let out = register_over_ssh(
        &sshd,
        &repo,
        &commit("ssh-unknown-host"),
        ("stranger-home", "client"),
    );
    out.assert_exit(5).assert_stdout_empty();
    out.assert_stderr_contains("hostkey");
    assert_eq!(repo.main_sha(), before, "the remote moved");
}
