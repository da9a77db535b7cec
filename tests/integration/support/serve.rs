//! `releasectl serve` as a test server: started against a world's remote with its own cache
//! and configuration (static tokens for alice, bob and a CI robot), reached with a small
//! HTTP/1.1 client that sends JSON bodies.
//!
//! Invariants: the server is killed when the handle drops; its access log (stderr) is kept
//! for assertions ([`Served::log`]); each server has its own cache dir (a clone is locked by
//! the process that holds it).

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::cmd::Cmd;
use super::http::parse_response;
use super::world::{ALICE, BOB, CAROL, World};

/// The static tokens every test server knows, and whom they authenticate.
pub const TOKENS: &[(&str, &str)] = &[
    ("alice-token-0123456789", ALICE),
    ("bob-token-0123456789", BOB),
    ("carol-token-0123456789", CAROL),
    ("ci-token-0123456789", "ci@example.com"),
];

/// The token of `identity` among [`TOKENS`].
pub fn token(identity: &str) -> &'static str {
    TOKENS
        .iter()
        .find(|(_, who)| *who == identity)
        .map(|(t, _)| *t)
        .expect("a known identity")
}

/// A running `releasectl serve`.
pub struct Served {
    child: Option<Child>,
    pub addr: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Served {
    /// Serves the world's remote at `url` with `extra_config` appended to a config that
    /// lists [`TOKENS`].
    pub fn start(world: &World, url: &str, extra_config: &str) -> Self {
        Self::start_cmd(world.cmd_via(url, &world.now), extra_config)
    }

    /// Serves with `base` (a `releasectl` with its global flags: `--gitops`, `--registry`,
    /// …) and `extra_config` appended to a config that lists [`TOKENS`].
    pub fn start_cmd(base: Cmd, extra_config: &str) -> Self {
        let dir = super::temp_dir();
        let mut tokens = String::from("tokens:\n");
        for (t, who) in TOKENS {
            let _ = writeln!(
                tokens,
                "  {}: {who}",
                super::image::sha256_hex(t.as_bytes())
            );
        }
        std::fs::write(dir.path().join("tokens.yaml"), tokens).expect("write tokens");
        let config = format!("static_tokens: tokens.yaml\n{extra_config}");
        std::fs::write(dir.path().join("serve.yaml"), config).expect("write config");
        let log = dir.path().join("serve.log");
        let cache = dir.path().join("cache");
        let mut command = base
            .env("RELEASECTL_CACHE_DIR", &cache)
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(dir.path().join("serve.yaml"))
            .to_command(std::env::vars_os().map(|(k, _)| k));
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("create log"))
            .spawn()
            .expect("start releasectl serve");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("read the listening line");
        let addr = serde_json::from_str::<Value>(&first)
            .ok()
            .and_then(|v| v["listening"].as_str().map(str::to_owned))
            .unwrap_or_else(|| {
                panic!(
                    "serve did not start: {first:?}\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        Self {
            child: Some(child),
            addr,
            log,
            _dir: dir,
        }
    }

    /// `METHOD PATH` with `token` (if any) and a raw body; the status and the JSON answer.
    pub fn raw(&self, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> (u16, Value) {
        let mut stream = TcpStream::connect(&self.addr).expect("connect to serve");
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .expect("timeout");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if let Some(t) = token {
            let _ = write!(head, "Authorization: Bearer {t}\r\n");
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).expect("send head");
        // A server may answer (413) before reading the whole body and close.
        let _ = stream.write_all(body);
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        let response = parse_response(&raw)
            .unwrap_or_else(|| panic!("not HTTP: {:?}", String::from_utf8_lossy(&raw)));
        let json = serde_json::from_slice(&response.body)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {}", response.body_str()));
        (response.status, json)
    }

    /// `GET PATH` as `identity` (`None`: anonymous).
    pub fn get(&self, path: &str, identity: Option<&str>) -> (u16, Value) {
        self.raw("GET", path, identity.map(token), b"")
    }

    /// `POST PATH` of `body` as `identity`.
    pub fn post(&self, path: &str, identity: &str, body: &Value) -> (u16, Value) {
        self.raw(
            "POST",
            path,
            Some(token(identity)),
            body.to_string().as_bytes(),
        )
    }

    /// The access log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit; returns whether it exited successfully.
    pub fn terminate(self) -> bool {
        self.sigterm();
        self.wait_exit()
    }

    /// Sends SIGTERM (requests in flight go on).
    pub fn sigterm(&self) {
        let pid = self.child.as_ref().expect("running").id();
        Cmd::new("kill")
            .args(["-TERM", &pid.to_string()])
            .run()
            .assert_success();
    }

    /// Waits for the server to exit; returns whether it exited successfully.
    pub fn wait_exit(mut self) -> bool {
        let mut child = self.child.take().expect("running");
        child.wait().expect("wait for serve").success()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
