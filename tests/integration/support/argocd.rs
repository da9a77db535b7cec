//! The Argo CD stand-in (`argocd_server.py`, the one stand-in of docs/design.md §9): started
//! per test with a script of each Application's states over time, against the world's GitOps
//! remote (`@tip` answers its branch tip), killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use super::world::World;

/// The token the stand-in accepts (`Authorization: Bearer …`).
pub const TOKEN: &str = "argocd-test-token-6f1d0c9e-do-not-print";

pub struct ArgoCd {
    child: Child,
    pub url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl ArgoCd {
    /// Serves `apps` (`{NAME: [FRAME, ...]}`, see argocd_server.py) for `world`'s remote.
    pub fn start(world: &World, apps: &Value) -> Self {
        let dir = super::temp_dir();
        let log = dir.path().join("requests.jsonl");
        let script = dir.path().join("script.json");
        let body = json!({
            "token": TOKEN,
            "remote": world.remote.path(),
            "branch": "main",
            "log": log,
            "apps": apps,
        });
        std::fs::write(&script, body.to_string()).expect("write the stand-in's script");
        let server = super::manifest_dir().join("tests/integration/support/argocd_server.py");
        let mut child = Command::new(super::python())
            .arg(server)
            .arg(&script)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the Argo CD stand-in");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the stand-in prints its port");
        let port: u16 = line.trim().parse().expect("a port");
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        }
    }

    /// `--argocd URL --argocd-insecure` and the token, on `cmd`.
    pub fn on(&self, cmd: super::Cmd) -> super::Cmd {
        cmd.args(["--argocd", &self.url, "--argocd-insecure"])
            .env("RELEASECTL_ARGOCD_TOKEN", TOKEN)
    }

    /// The requests served so far: `{"path", "query", "authorized"}`.
    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }
}

impl Drop for ArgoCd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One frame of an Application: from `after` seconds, `sync` and `health` at `revision`.
pub fn frame(after: f64, sync: &str, health: &str, revision: &str) -> Value {
    json!({"after": after, "sync": sync, "health": health, "revision": revision})
}
