//! A docker `config.json` for `DOCKER_CONFIG`, with optional credential helpers.
//!
//! Helpers are shell scripts named `docker-credential-<name>` in their own directory, which the
//! test puts first on `PATH` ([`super::Cmd::docker_config`] does both). They follow the
//! docker-credential-helpers protocol for `get`: the server URL arrives on stdin (docker sends
//! no newline), the answer is `{"ServerURL":…,"Username":…,"Secret":…}` on stdout; for an
//! unknown server they print `credentials not found in native keychain` on stdout and exit 1,
//! the message the docker client library recognises as "no credentials". Every call is
//! appended to a log so a test can assert which helper was asked for which host.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tempfile::TempDir;

/// One credential a helper knows.
#[derive(Clone, Debug)]
struct HelperCred {
    server: String,
    user: String,
    secret: String,
}

/// Builder for a docker config directory. Call [`DockerConfig::write`] (the builder methods
/// rewrite the files as they go, so the directory is always current).
pub struct DockerConfig {
    dir: TempDir,
    bin: TempDir,
    auths: BTreeMap<String, Value>,
    cred_helpers: BTreeMap<String, String>,
    creds_store: Option<String>,
    helpers: BTreeMap<String, Vec<HelperCred>>,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl DockerConfig {
    /// An empty config (`{}`) in a fresh temp dir.
    pub fn new() -> Self {
        let config = Self {
            dir: tempfile::Builder::new()
                .prefix("releasectl-docker-config-")
                .tempdir()
                .expect("temp dir"),
            bin: tempfile::Builder::new()
                .prefix("releasectl-cred-helpers-")
                .tempdir()
                .expect("temp dir"),
            auths: BTreeMap::new(),
            cred_helpers: BTreeMap::new(),
            creds_store: None,
            helpers: BTreeMap::new(),
        };
        config.write();
        config
    }

    /// `auths[host] = {"auth": base64("user:pass")}`.
    #[must_use]
    pub fn auth(self, host: &str, user: &str, pass: &str) -> Self {
        let auth = super::base64(format!("{user}:{pass}").as_bytes());
        self.auth_entry(host, json!({ "auth": auth }))
    }

    /// `auths[host] = entry` as given: for `identitytoken`, `username`/`password` fields, or
    /// deliberately malformed entries.
    #[must_use]
    pub fn auth_entry(mut self, host: &str, entry: Value) -> Self {
        self.auths.insert(host.to_owned(), entry);
        self.write();
        self
    }

    /// `credHelpers[host] = helper`, and helper `helper` answers `host` with these credentials.
    #[must_use]
    pub fn cred_helper(mut self, host: &str, helper: &str, user: &str, secret: &str) -> Self {
        self.cred_helpers.insert(host.to_owned(), helper.to_owned());
        self.helper_knows(helper, host, user, secret)
    }

    /// `credsStore = helper` (the default helper for every host without an `auths`/`credHelpers`
    /// entry). Add what it knows with [`DockerConfig::helper_knows`].
    #[must_use]
    pub fn creds_store(mut self, helper: &str) -> Self {
        self.creds_store = Some(helper.to_owned());
        self.helpers.entry(helper.to_owned()).or_default();
        self.write();
        self
    }

    /// Teaches helper `helper` a credential for `server` (matched exactly against stdin).
    #[must_use]
    pub fn helper_knows(mut self, helper: &str, server: &str, user: &str, secret: &str) -> Self {
        self.helpers
            .entry(helper.to_owned())
            .or_default()
            .push(HelperCred {
                server: server.to_owned(),
                user: user.to_owned(),
                secret: secret.to_owned(),
            });
        self.write();
        self
    }

    /// The directory to put in `DOCKER_CONFIG`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `DIR/config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }

    /// The directory holding the `docker-credential-*` scripts, to prepend to `PATH`.
    pub fn bin_dir(&self) -> &Path {
        self.bin.path()
    }

    /// The path of helper `name`'s script.
    pub fn helper_path(&self, name: &str) -> PathBuf {
        self.bin.path().join(format!("docker-credential-{name}"))
    }

    /// Every helper call so far, one line each: `<helper> <action> <stdin>`.
    pub fn helper_calls(&self) -> Vec<String> {
        fs::read_to_string(self.calls_log())
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn calls_log(&self) -> PathBuf {
        self.bin.path().join("calls.log")
    }

    /// Writes `config.json` and the helper scripts.
    pub fn write(&self) {
        let mut doc = serde_json::Map::new();
        if !self.auths.is_empty() {
            doc.insert("auths".into(), json!(self.auths));
        }
        if !self.cred_helpers.is_empty() {
            doc.insert("credHelpers".into(), json!(self.cred_helpers));
        }
        if let Some(store) = &self.creds_store {
            doc.insert("credsStore".into(), json!(store));
        }
        fs::write(
            self.config_path(),
            serde_json::to_vec_pretty(&Value::Object(doc)).expect("json"),
        )
        .expect("write config.json");
        for (name, creds) in &self.helpers {
            let path = self.helper_path(name);
            fs::write(&path, helper_script(name, creds, &self.calls_log()))
                .expect("write credential helper");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                .expect("chmod credential helper");
        }
    }
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn helper_script(name: &str, creds: &[HelperCred], log: &Path) -> String {
    let mut cases = String::new();
    for c in creds {
        let answer = json!({ "ServerURL": c.server, "Username": c.user, "Secret": c.secret });
        let _ = writeln!(
            cases,
            "      {}) printf '%s\\n' {}; exit 0 ;;",
            sh_quote(&c.server),
            sh_quote(&answer.to_string())
        );
    }
    format!(
        r#"#!/bin/sh
# docker-credential-{name}: test credential helper (docker-credential-helpers protocol).
log={log}
input=$(cat)
printf '%s %s %s\n' {name_q} "$1" "$input" >> "$log"
case "$1" in
  get)
    case "$input" in
{cases}    esac
    echo "credentials not found in native keychain"
    exit 1 ;;
  store|erase) exit 0 ;;
  list) echo '{{}}' ;;
  *) echo "unknown action: $1"; exit 1 ;;
esac
"#,
        log = sh_quote(&log.to_string_lossy()),
        name_q = sh_quote(name),
    )
}
