//! The command line, stage two: everything a command needs to know about its run, built once
//! from the flags and the process environment.
//!
//! This is the only module that reads the environment. It makes one deadline for the whole
//! run (every registry and git operation of a command shares it), one clock reading, the store
//! options, the archive limits, the caches and the credentials' sources. It imports nothing
//! from `cli` or `cmd`: `app` hands it the flags as [`Flags`].

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::archive::Limits;
use crate::exit::InvalidInput;
use crate::oci::{RegistryBase, StoreOptions};

/// Default budget for commands other than `generate`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Default budget for `generate`: well under Argo CD's 60 s exec timeout.
pub const GENERATE_TIMEOUT: Duration = Duration::from_secs(45);

/// How results are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// `-o`: the format the user asked for. Commands render [`Output`]; `yaml` is their JSON
/// report's structure, serialized as YAML by `cmd::as_yaml` (so the two never drift).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Yaml,
}

impl Format {
    /// What the command renders: JSON for both data formats.
    #[must_use]
    pub fn output(self) -> Output {
        match self {
            Self::Text => Output::Text,
            Self::Json | Self::Yaml => Output::Json,
        }
    }
}

/// The global flags, as the command line gave them (flags win over the environment; clap
/// has already applied the `RELEASECTL_*` variables that mirror a flag).
#[derive(Debug, Clone)]
pub struct Flags {
    pub registry: Option<RegistryBase>,
    pub insecure_registries: Vec<String>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Option<Duration>,
    pub gitops: Option<crate::gitops::Url>,
    /// `None`: the context's, else `main`.
    pub gitops_branch: Option<String>,
    pub actor: Option<String>,
    pub output: Output,
    pub argocd: ArgoCdFlags,
    /// `--server`: a `releasectl serve` to act through.
    pub server: Option<String>,
    /// `--server-token-file`.
    pub server_token_file: Option<PathBuf>,
}

/// The Argo CD flags (`--argocd`, `--argocd-*`), as the command line gave them.
#[derive(Debug, Clone, Default)]
pub struct ArgoCdFlags {
    pub server: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub insecure: bool,
    pub app_template: String,
    pub app_namespace: Option<String>,
    pub project: Option<String>,
}

impl Flags {
    /// Fills what the flags and the environment left unset from a config-file context.
    pub fn apply(&mut self, context: &crate::config::Context) -> Result<(), InvalidInput> {
        let bad = |key: &str, value: &str, e: &dyn std::fmt::Display| {
            InvalidInput(format!(
                "context {}: {key} is {:?}: {e}",
                crate::text::excerpt(&context.name),
                crate::text::excerpt(value)
            ))
        };
        if self.registry.is_none()
            && let Some(r) = &context.registry
        {
            self.registry = Some(r.parse().map_err(|e| bad("registry", r, &e))?);
        }
        if self.gitops.is_none()
            && let Some(g) = &context.gitops
        {
            self.gitops = Some(g.parse().map_err(|e| bad("gitops", g, &e))?);
        }
        if self.gitops_branch.is_none() {
            self.gitops_branch.clone_from(&context.gitops_branch);
        }
        if self.actor.is_none() {
            self.actor.clone_from(&context.actor);
        }
        if self.insecure_registries.is_empty() {
            self.insecure_registries
                .clone_from(&context.insecure_registries);
        }
        if self.server.is_none() {
            self.server.clone_from(&context.server);
        }
        Ok(())
    }
}

/// Where the config file lives: `RELEASECTL_CONFIG`, else
/// `$XDG_CONFIG_HOME/releasectl/config.yaml`, else `~/.config/releasectl/config.yaml`.
#[must_use]
pub fn config_path() -> Option<PathBuf> {
    if let Some(p) = var_os("RELEASECTL_CONFIG") {
        return Some(PathBuf::from(p));
    }
    var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|d| d.join("releasectl/config.yaml"))
}

/// `--server`: the API to act through instead of the GitOps repository.
#[derive(Debug, Clone)]
pub struct Server {
    /// The base URL, without a trailing `/`.
    pub url: String,
    /// `--server-token-file`'s content, else RELEASECTL_SERVER_TOKEN.
    pub token: Option<crate::credentials::Secret>,
    /// Extra CA certificates (`--ca-file`).
    pub ca_file: Option<PathBuf>,
    /// An actor given by flag, environment or context: a command that goes through the
    /// server refuses it (the actor is the token's identity), rather than ignoring it.
    pub actor: Option<String>,
}

/// The server to act through, if any.
fn server(flags: &Flags) -> Result<Option<Server>, InvalidInput> {
    let Some(url) = flags
        .server
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return Ok(None);
    };
    let shown = crate::text::excerpt(url);
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(InvalidInput(format!(
            "--server {shown:?}: expected an http:// or https:// URL of a releasectl serve"
        )));
    }
    let token = match &flags.server_token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                InvalidInput(format!(
                    "--server-token-file {}: cannot read it: {e}",
                    path.display()
                ))
            })?;
            let token = text.trim();
            if token.is_empty() {
                return Err(InvalidInput(format!(
                    "--server-token-file {}: expected a token, found an empty file",
                    path.display()
                )));
            }
            Some(crate::credentials::Secret::new(token.to_owned()))
        }
        None => var("RELEASECTL_SERVER_TOKEN")
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .map(crate::credentials::Secret::new),
    };
    Ok(Some(Server {
        url: url.trim_end_matches('/').to_owned(),
        token,
        ca_file: flags.ca_file.clone(),
        actor: flags.actor.clone().filter(|a| !a.is_empty()),
    }))
}

/// A run's settings. Built once by `app`; commands only read it.
#[derive(Debug, Clone)]
pub struct Settings {
    pub output: Output,
    /// The budget of the whole run and the instant it ends.
    pub timeout: Duration,
    pub deadline: Instant,
    /// The clock: now, or `RELEASECTL_NOW` so that plans are reproducible.
    pub now: Timestamp,
    pub registry: Option<RegistryBase>,
    pub store: StoreOptions,
    pub limits: Limits,
    pub gitops: Option<crate::gitops::Url>,
    pub gitops_branch: String,
    /// Who acts: `--actor`, else git's `user.email`, else the CI's user variables.
    pub actor: Option<String>,
    /// `generate`'s digest-keyed cache (`RELEASECTL_CACHE_DIR`); none: no cache.
    pub generate_cache: Option<PathBuf>,
    /// Where GitOps clones are kept between runs (`<cache root>/git`).
    pub gitops_cache: PathBuf,
    /// `generate` may follow a pointer whose `spec.registry` is an `oci:` layout.
    pub allow_layout_pointers: bool,
    /// The kinds an `env.yaml` may hold (`RELEASECTL_ENV_KINDS`), each `group/Kind`, or `Kind`
    /// for the core group; default [`DEFAULT_ENV_KINDS`].
    pub env_kinds: Vec<String>,
    /// `SOURCE_DATE_EPOCH`: a release's `created_at`, for reproducible digests.
    pub source_date_epoch: Option<Timestamp>,
    pub git: GitEnv,
    /// How to reach Argo CD; the token from `RELEASECTL_ARGOCD_TOKEN`.
    pub argocd: crate::argocd::Config,
    /// `RELEASECTL_NOW` is set: every reading of the clock is `now` (a server too).
    pub clock_fixed: bool,
    /// `RELEASECTL_TRUSTED_KEYS`: a PEM public key, or a directory of them; `generate` then
    /// requires a cosign signature by one of them (docs/format.md §10).
    pub trusted_keys: Option<PathBuf>,
    /// The password of an encrypted cosign key: `RELEASECTL_SIGN_KEY_PASSWORD`, else
    /// `COSIGN_PASSWORD`.
    pub sign_key_password: Option<crate::credentials::Secret>,
    /// `--server`: act through this `releasectl serve` instead of the GitOps repository.
    pub server: Option<Server>,
}

/// GitOps credentials and the committer, from `RELEASECTL_GIT_*` and `RELEASECTL_BOT_*`.
#[derive(Debug, Clone)]
pub struct GitEnv {
    /// `RELEASECTL_GIT_USERNAME`, `RELEASECTL_GIT_PASSWORD` (else `RELEASECTL_GIT_TOKEN`),
    /// `RELEASECTL_GIT_SSH_KEY`.
    pub auth: crate::gitops::Auth,
    /// `RELEASECTL_BOT_NAME`, `RELEASECTL_BOT_EMAIL`.
    pub committer: crate::gitops::Committer,
}

/// The kinds an `env.yaml` may hold when `RELEASECTL_ENV_KINDS` is unset: environment values,
/// never workloads or RBAC.
pub const DEFAULT_ENV_KINDS: &[&str] =
    &["ConfigMap", "apiextensions.crossplane.io/EnvironmentConfig"];

/// `RELEASECTL_ENV_KINDS`: a comma list of `group/Kind` or `Kind`; unset or empty: the default.
fn env_kinds(value: Option<&str>) -> Vec<String> {
    let listed: Vec<String> = value
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if listed.is_empty() {
        DEFAULT_ENV_KINDS.iter().map(|&k| k.to_owned()).collect()
    } else {
        listed
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn var_os(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

fn env_number(name: &str) -> Result<Option<u64>, InvalidInput> {
    match var(name) {
        Some(v) => v.trim().parse().map(Some).map_err(|_| {
            InvalidInput(format!(
                "{name} is {:?}: expected a whole number",
                crate::text::excerpt(&v)
            ))
        }),
        None => Ok(None),
    }
}

fn env_time(name: &str) -> Result<Option<Timestamp>, InvalidInput> {
    let Some(v) = var(name) else { return Ok(None) };
    v.parse::<Timestamp>().map(Some).map_err(|_| {
        InvalidInput(format!(
            "{name} is {:?}: expected an RFC 3339 time such as 2026-11-22T10:30:00Z",
            crate::text::excerpt(&v)
        ))
    })
}

/// Archive limits, from `RELEASECTL_MAX_TOTAL_BYTES`, `RELEASECTL_MAX_FILES` and
/// `RELEASECTL_MAX_FILE_BYTES` over the defaults.
fn limits() -> Result<Limits, InvalidInput> {
    let mut limits = Limits::default();
    if let Some(n) = env_number("RELEASECTL_MAX_TOTAL_BYTES")? {
        limits.max_total_bytes = n;
    }
    if let Some(n) = env_number("RELEASECTL_MAX_FILES")? {
        limits.max_files = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if let Some(n) = env_number("RELEASECTL_MAX_FILE_BYTES")? {
        limits.max_file_bytes = n;
    }
    Ok(limits)
}

fn actor(flag: Option<&str>) -> Option<String> {
    if let Some(a) = flag.filter(|a| !a.is_empty()) {
        return Some(a.to_owned());
    }
    if let Ok(email) = git2::Config::open_default().and_then(|c| c.get_string("user.email"))
        && !email.is_empty()
    {
        return Some(email);
    }
    [
        "GITLAB_USER_EMAIL",
        "GITHUB_ACTOR",
        "BUILD_REQUESTEDFOREMAIL",
        "BUILD_USER_EMAIL",
    ]
    .iter()
    .find_map(|v| var(v).filter(|s| !s.is_empty()))
}

/// The cache root: `RELEASECTL_CACHE_DIR`, else `$XDG_CACHE_HOME/releasectl`, else
/// `~/.cache/releasectl`. GitOps clones live in its `git/`; `generate` caches only where
/// `RELEASECTL_CACHE_DIR` says (a sidecar writes nowhere it was not given).
fn cache_root() -> PathBuf {
    if let Some(d) = var_os("RELEASECTL_CACHE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("releasectl");
    }
    var_os("HOME")
        .map_or_else(std::env::temp_dir, |h| PathBuf::from(h).join(".cache"))
        .join("releasectl")
}

/// `RELEASECTL_LOG` (`info`, `debug`; empty or unset: quiet) and the Argo CD application a
/// plugin run is for. Read before the rest so that even a bad setting can be logged.
pub fn log_settings(
    flag: Option<crate::log::Level>,
) -> Result<(crate::log::Level, Option<String>), InvalidInput> {
    let app = var("ARGOCD_APP_NAME").filter(|s| !s.is_empty());
    if let Some(level) = flag {
        return Ok((level, app));
    }
    let level = match var("RELEASECTL_LOG").as_deref().map(str::trim) {
        None | Some("" | "quiet" | "off") => crate::log::Level::Quiet,
        Some("info") => crate::log::Level::Info,
        Some("debug" | "trace") => crate::log::Level::Debug,
        Some(other) => {
            return Err(InvalidInput(format!(
                "RELEASECTL_LOG is {:?}: expected quiet, info or debug",
                crate::text::excerpt(other)
            )));
        }
    };
    Ok((level, app))
}

impl Settings {
    /// Reads the environment once, over the flags. `default_timeout` is the command's
    /// budget when `--timeout` is not given.
    pub fn load(flags: Flags, default_timeout: Duration) -> Result<Self, InvalidInput> {
        let timeout = flags.timeout.unwrap_or(default_timeout);
        let deadline = Instant::now() + timeout;
        let server = server(&flags)?;
        let mut store = StoreOptions::new(
            flags
                .insecure_registries
                .iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            flags.ca_file.clone(),
            timeout,
        );
        store.deadline = deadline;
        store.credentials = crate::credentials::Sources {
            env_host: match &flags.registry {
                Some(RegistryBase::Registry { host, .. }) => Some(host.clone()),
                _ => None,
            },
            environment: crate::credentials::Sources::environment(
                var("RELEASECTL_REGISTRY_TOKEN")
                    .filter(|s| !s.is_empty())
                    .map(crate::credentials::Secret::new),
                var("RELEASECTL_REGISTRY_USERNAME"),
                var("RELEASECTL_REGISTRY_PASSWORD").map(crate::credentials::Secret::new),
            ),
            // `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
            docker_config: var_os("DOCKER_CONFIG")
                .map(|d| PathBuf::from(d).join("config.json"))
                .or_else(|| var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))),
        };
        let source_date_epoch = match var("SOURCE_DATE_EPOCH") {
            Some(v) => {
                let secs: i64 = v.trim().parse().map_err(|_| {
                    InvalidInput(format!(
                        "SOURCE_DATE_EPOCH is {:?}: expected seconds since 1970",
                        crate::text::excerpt(&v)
                    ))
                })?;
                Some(Timestamp::from_second(secs).map_err(|_| {
                    InvalidInput(format!("SOURCE_DATE_EPOCH {secs} is out of range"))
                })?)
            }
            None => None,
        };
        let argocd = crate::argocd::Config {
            server: flags.argocd.server.filter(|s| !s.trim().is_empty()),
            token: var("RELEASECTL_ARGOCD_TOKEN")
                .filter(|s| !s.trim().is_empty())
                .map(crate::credentials::Secret::new),
            ca_file: flags.argocd.ca_file.or_else(|| flags.ca_file.clone()),
            insecure: flags.argocd.insecure,
            app_template: flags.argocd.app_template,
            app_namespace: flags.argocd.app_namespace,
            project: flags.argocd.project,
        };
        let fixed_now = env_time("RELEASECTL_NOW")?;
        Ok(Self {
            server,
            argocd,
            output: flags.output,
            timeout,
            deadline,
            now: fixed_now.unwrap_or_else(Timestamp::now),
            clock_fixed: fixed_now.is_some(),
            registry: flags.registry,
            store,
            limits: limits()?,
            gitops: flags.gitops,
            gitops_branch: flags.gitops_branch.unwrap_or_else(|| "main".into()),
            actor: actor(flags.actor.as_deref()),
            generate_cache: var_os("RELEASECTL_CACHE_DIR").map(PathBuf::from),
            gitops_cache: cache_root().join("git"),
            allow_layout_pointers: var_os("RELEASECTL_ALLOW_LAYOUT_POINTERS").is_some(),
            env_kinds: env_kinds(var("RELEASECTL_ENV_KINDS").as_deref()),
            source_date_epoch,
            git: GitEnv {
                auth: crate::gitops::Auth {
                    username: var("RELEASECTL_GIT_USERNAME"),
                    password: var("RELEASECTL_GIT_PASSWORD")
                        .or_else(|| var("RELEASECTL_GIT_TOKEN"))
                        .map(crate::credentials::Secret::new),
                    ssh_key: var_os("RELEASECTL_GIT_SSH_KEY").map(PathBuf::from),
                },
                committer: crate::gitops::Committer::new(
                    var("RELEASECTL_BOT_NAME")
                        .filter(|s| !s.is_empty())
                        .as_deref(),
                    var("RELEASECTL_BOT_EMAIL")
                        .filter(|s| !s.is_empty())
                        .as_deref(),
                )
                .signed_with(var_os("RELEASECTL_SIGNING_KEY").map(PathBuf::from)),
            },
            trusted_keys: var_os("RELEASECTL_TRUSTED_KEYS").map(PathBuf::from),
            sign_key_password: var("RELEASECTL_SIGN_KEY_PASSWORD")
                .or_else(|| var("COSIGN_PASSWORD"))
                .map(crate::credentials::Secret::new),
        })
    }

    /// The GitOps repository's URL or path (`--gitops`).
    pub fn gitops_url(&self) -> Result<&crate::gitops::Url, InvalidInput> {
        self.gitops.as_ref().ok_or_else(|| {
            InvalidInput("no GitOps repository: set --gitops or RELEASECTL_GITOPS".into())
        })
    }

    /// Opens the GitOps repository (`--gitops`) with the run's credentials, committer and
    /// cache: its local clone, locked for this run.
    pub fn open_gitops(&self) -> crate::exit::Result<crate::gitops::GitOps> {
        let remote = crate::gitops::Remote::from_parts(
            self.gitops_url()?,
            &self.gitops_branch,
            &self.git.auth,
            &self.git.committer,
            &self.gitops_cache,
        );
        Ok(crate::gitops::GitOps::open(&remote)?)
    }

    /// The clock in whole seconds since 1970, for git signatures.
    #[must_use]
    pub fn unix_now(&self) -> i64 {
        self.now.as_second()
    }

    /// A release's creation time, in whole seconds: `SOURCE_DATE_EPOCH`, else the commit
    /// time, else now.
    #[must_use]
    pub fn created_at(&self, committed_at: Option<Timestamp>) -> Timestamp {
        let t = self.source_date_epoch.or(committed_at).unwrap_or(self.now);
        Timestamp::from_second(t.as_second()).unwrap_or(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_kinds_default_to_configmap_and_environmentconfig_and_accept_a_list() {
        assert_eq!(env_kinds(None), DEFAULT_ENV_KINDS);
        assert_eq!(env_kinds(Some(" , ")), DEFAULT_ENV_KINDS);
        assert_eq!(
            env_kinds(Some("ConfigMap, example.com/Values")),
            ["ConfigMap", "example.com/Values"]
        );
    }
}
