//! One GitOps remote: its URL (credentials split off), how to authenticate to it, and its
//! bare cache clone under the cache directory the caller names, with the clone's lock.
//!
//! Invariants: the URL that appears in messages never holds credentials (they are split off
//! at parsing and offered only through libgit2's credential callback, once: a second request
//! means they were refused); every transaction runs under an exclusive lock on the cache
//! clone, so processes on one machine take turns on it, while processes on different
//! machines (or with different caches) race at the remote, where the non-forced push is the
//! compare-and-swap. Nothing here reads the process environment: the caller passes it all.

use std::cell::Cell;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use git2::{Cred, CredentialType, ErrorCode, FetchOptions, Oid, RemoteCallbacks, Repository};

use super::GitError;
use crate::credentials::Secret;
use crate::digest::sha256_hex;

/// A GitOps repository as `--gitops` names it: a URL (`file://`, `git://`, `http(s)://`,
/// `ssh://`, `git@host:path`) or a local path, which becomes a `file://` URL. Userinfo in
/// the URL is split off: [`Url::as_str`] never holds a password.
#[derive(Clone, PartialEq, Eq)]
pub struct Url {
    clean: String,
    username: Option<String>,
    password: Option<Secret>,
}

/// Why a `--gitops` value was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid GitOps repository {value:?}: expected a URL (file://, git://, http://, https://, ssh://), git@HOST:PATH or a path"
)]
pub struct InvalidUrl {
    value: String,
}

crate::exit_class!(InvalidUrl => Usage);

const SCHEMES: &[&str] = &["file", "git", "http", "https", "ssh"];

impl std::str::FromStr for Url {
    type Err = InvalidUrl;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidUrl {
            value: crate::text::excerpt(s),
        };
        if s.trim().is_empty() || s.chars().any(char::is_control) {
            return Err(invalid());
        }
        let url = if let Some((scheme, rest)) = s.split_once("://") {
            if !SCHEMES.contains(&scheme) || rest.is_empty() {
                return Err(invalid());
            }
            s.to_owned()
        } else if s.starts_with("git@") {
            s.to_owned()
        } else {
            // A plain path is a local repository.
            let p = Path::new(s);
            let abs = if p.is_absolute() {
                p.to_owned()
            } else {
                std::env::current_dir().map_err(|_| invalid())?.join(p)
            };
            format!("file://{}", abs.display())
        };
        let (clean, username, password) = split_userinfo(&url);
        Ok(Self {
            clean,
            username,
            password: password.map(Secret::new),
        })
    }
}

impl Url {
    /// The URL without credentials: the only form that appears in messages.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.clean
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.clean)
    }
}

impl fmt::Debug for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Url({:?})", self.clean)
    }
}

/// Credentials for the remote, never printed. Those given here win over the URL's userinfo.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// A private key file for ssh; without one, ssh-agent.
    pub ssh_key: Option<PathBuf>,
}

/// Everything needed to open a GitOps remote.
#[derive(Debug, Clone)]
pub struct Remote {
    url: Url,
    branch: String,
    auth: Auth,
    committer: Committer,
    cache: PathBuf,
}

impl Remote {
    /// The remote at `url`, branch `branch`, reached with `auth`, written to as `committer`,
    /// its clone kept under `cache`.
    #[must_use]
    pub fn from_parts(
        url: &Url,
        branch: &str,
        auth: &Auth,
        committer: &Committer,
        cache: &Path,
    ) -> Self {
        Self {
            url: url.clone(),
            branch: branch.to_owned(),
            auth: auth.clone(),
            committer: committer.clone(),
            cache: cache.to_owned(),
        }
    }
}

/// An open GitOps repository: the cache clone of a remote (or, for `check --here`, the
/// repository this process runs in).
pub struct GitOps {
    pub(super) repo: Repository,
    /// The URL without credentials: the only form that appears in messages.
    url: String,
    /// The URL handed to libgit2 (credentials removed; they come through the callback).
    pub(super) fetch_url: String,
    branch: String,
    auth: Auth,
    pub(super) committer: Committer,
    /// For `git://` remotes: objects are fetched when read (see [`super::lazy`]).
    pub(super) lazy: Option<super::lazy::Lazy>,
    _lock: Option<File>,
}

/// Splits `https://user:pass@host/x` into the URL without userinfo and the credentials.
fn split_userinfo(url: &str) -> (String, Option<String>, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), None, None);
    };
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return (url.to_owned(), None, None);
    };
    let (user, pass) = match userinfo.split_once(':') {
        Some((u, p)) => (Some(u.to_owned()), Some(p.to_owned())),
        None => (Some(userinfo.to_owned()), None),
    };
    // ssh URLs keep their user (it is the login name, not a secret).
    if scheme == "ssh" && pass.is_none() {
        return (url.to_owned(), user, None);
    }
    (format!("{scheme}://{host}/{path}"), user, pass)
}

pub(super) fn local(path: &Path, reason: impl fmt::Display) -> GitError {
    GitError::Local {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

impl GitOps {
    /// Opens (creating if needed) the cache clone of the remote and takes its lock.
    pub fn open(remote: &Remote) -> Result<Self, GitError> {
        let clean = remote.url.clean.clone();
        let auth = Auth {
            username: remote
                .auth
                .username
                .clone()
                .or_else(|| remote.url.username.clone()),
            password: remote
                .auth
                .password
                .clone()
                .or_else(|| remote.url.password.clone()),
            ssh_key: remote.auth.ssh_key.clone(),
        };
        let root = &remote.cache;
        std::fs::create_dir_all(root).map_err(|e| local(root, e))?;
        let name = &sha256_hex(clean.as_bytes())[..24];
        let lock_path = root.join(format!("{name}.lock"));
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| local(&lock_path, e))?;
        lock.lock().map_err(|e| local(&lock_path, e))?;
        let dir = root.join(format!("{name}.git"));
        let repo = match Repository::open_bare(&dir) {
            Ok(r) => r,
            Err(_) => {
                // Absent or broken (a crash mid-init): start over; it is only a cache.
                let _ = std::fs::remove_dir_all(&dir);
                Repository::init_bare(&dir).map_err(|e| local(&dir, e.message()))?
            }
        };
        let lazy = super::wire::Daemon::parse(&clean).map(super::lazy::Lazy::new);
        Ok(Self {
            repo,
            lazy,
            url: clean.clone(),
            fetch_url: clean,
            branch: remote.branch.clone(),
            auth,
            committer: remote.committer.clone(),
            _lock: Some(lock),
        })
    }

    /// Opens the repository this process runs in, as git would (`GIT_DIR`,
    /// `GIT_OBJECT_DIRECTORY`, `GIT_ALTERNATE_OBJECT_DIRECTORIES` honoured), for reading
    /// only: the `pre-receive` hook sees the pushed objects in their quarantine this way.
    pub fn open_here(branch: &str) -> Result<Self, GitError> {
        let repo = Repository::open_from_env().map_err(|e| local(Path::new("."), e.message()))?;
        let url = repo.path().display().to_string();
        Ok(Self {
            repo,
            lazy: None,
            url: url.clone(),
            fetch_url: url,
            branch: branch.to_owned(),
            auth: Auth::default(),
            committer: Committer::new(None, None),
            _lock: None,
        })
    }

    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    #[must_use]
    pub fn branch(&self) -> &str {
        &self.branch
    }

    pub(super) fn tracking_ref(&self) -> String {
        format!("refs/remotes/origin/{}", self.branch)
    }

    /// Callbacks with credentials that are offered once: a second request means they were
    /// refused, and libgit2 would otherwise ask again and again.
    pub(super) fn callbacks<'a>(
        &'a self,
        auth_failed: &'a Cell<bool>,
        asked: &'a Cell<u32>,
    ) -> RemoteCallbacks<'a> {
        let mut cb = RemoteCallbacks::new();
        cb.credentials(move |url, username_from_url, allowed| {
            asked.set(asked.get() + 1);
            if asked.get() > 1 {
                auth_failed.set(true);
                return Err(git2::Error::from_str("credentials refused"));
            }
            let user = self
                .auth
                .username
                .as_deref()
                .or(username_from_url)
                .unwrap_or("git");
            if allowed.contains(CredentialType::SSH_KEY) {
                return match &self.auth.ssh_key {
                    Some(key) => Cred::ssh_key(user, None, key, None),
                    None => Cred::ssh_key_from_agent(user),
                };
            }
            if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
                if let Some(pass) = &self.auth.password {
                    return Cred::userpass_plaintext(user, pass.expose());
                }
                let config = git2::Config::open_default()?;
                return Cred::credential_helper(
                    &config,
                    url,
                    username_from_url.or(self.auth.username.as_deref()),
                );
            }
            if allowed.contains(CredentialType::USERNAME) {
                return Cred::username(user);
            }
            Cred::default()
        });
        cb
    }

    pub(super) fn remote_error(
        &self,
        operation: &'static str,
        e: &git2::Error,
        auth_failed: bool,
    ) -> GitError {
        if auth_failed
            || e.code() == ErrorCode::Auth
            || e.class() == git2::ErrorClass::Http && e.message().contains("401")
        {
            return GitError::Auth {
                url: self.url.clone(),
            };
        }
        GitError::Remote {
            url: self.url.clone(),
            operation,
            // libgit2's messages name the URL we gave it, which holds no credentials.
            reason: e.message().to_owned(),
        }
    }

    /// Fetches the branch; its tip, or `None` when the remote has no such branch yet.
    pub(super) fn fetch_tip(&self) -> Result<Option<Oid>, GitError> {
        if let Some(lazy) = &self.lazy {
            let wire = |e: super::wire::WireError| GitError::Remote {
                url: self.url.clone(),
                operation: "fetch",
                reason: e.0,
            };
            let refname = format!("refs/heads/{}", self.branch);
            if let Ok(found) = lazy.ls_ref(&refname).map_err(wire)? {
                let Some(tip) = found else {
                    return Ok(None);
                };
                let odb = self
                    .repo
                    .odb()
                    .map_err(|e| local(self.repo.path(), e.message()))?;
                if !odb.exists(tip) {
                    // The previous tip, held with its history, makes this an update of the
                    // new commits and the trees they changed (no blobs), in one request: a
                    // retry after a lost race then re-reads the paths it decided on without a
                    // round trip per tree level. An empty cache takes the tip with its root
                    // level (`tree:2`: the root tree, the trees and blobs directly in it, such
                    // as the policy and each environment's and the register's directory),
                    // which every command reads first.
                    let have = self
                        .repo
                        .refname_to_id(&self.tracking_ref())
                        .ok()
                        .filter(|o| odb.exists(*o));
                    match have {
                        Some(h) => lazy.fetch(&self.repo, &[tip], &[h], None, "blob:none"),
                        None => lazy.fetch(&self.repo, &[tip], &[], Some(1), "tree:2"),
                    }
                    .map_err(wire)?;
                }
                self.repo
                    .reference(&self.tracking_ref(), tip, true, "releasectl: fetched")
                    .map_err(|e| local(self.repo.path(), e.message()))?;
                return Ok(Some(tip));
            }
            // No protocol v2 or no filter: the full fetch below, which needs a complete cache.
            if self.repo.path().join("shallow").exists() {
                return Err(local(
                    self.repo.path(),
                    "a partial cache of a server that no longer offers protocol v2 with filter: remove it",
                ));
            }
        }
        let auth_failed = Cell::new(false);
        let asked = Cell::new(0);
        let mut remote = self
            .repo
            .remote_anonymous(&self.fetch_url)
            .map_err(|e| self.remote_error("fetch", &e, false))?;
        let mut opts = FetchOptions::new();
        opts.remote_callbacks(self.callbacks(&auth_failed, &asked));
        opts.download_tags(git2::AutotagOption::None);
        let refspec = format!("+refs/heads/{0}:{1}", self.branch, self.tracking_ref());
        remote
            .fetch(&[&refspec], Some(&mut opts), None)
            .map_err(|e| self.remote_error("fetch", &e, auth_failed.get()))?;
        // A branch that does not exist on the remote (a new repository) has no tip.
        let advertised = remote.list().is_ok_and(|heads| {
            heads
                .iter()
                .any(|h| h.name() == format!("refs/heads/{}", self.branch))
        });
        if advertised {
            Ok(Some(
                self.repo
                    .refname_to_id(&self.tracking_ref())
                    .map_err(|e| self.remote_error("fetch", &e, false))?,
            ))
        } else {
            Ok(None)
        }
    }
}

/// Who commits: the bot identity (the author is the person acting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committer {
    pub name: String,
    pub email: String,
    /// `RELEASECTL_SIGNING_KEY`: an SSH private key every commit is signed with (git's
    /// `gpg.format=ssh`), see `crate::signing::commit`.
    pub signing_key: Option<std::path::PathBuf>,
}

impl Committer {
    /// The bot identity, `releasectl <releasectl@releasectl.invalid>` unless given.
    #[must_use]
    pub fn new(name: Option<&str>, email: Option<&str>) -> Self {
        Self {
            name: name.unwrap_or("releasectl").to_owned(),
            email: email.unwrap_or("releasectl@releasectl.invalid").to_owned(),
            signing_key: None,
        }
    }

    /// The same committer, signing its commits with `key` (none: unsigned).
    #[must_use]
    pub fn signed_with(mut self, key: Option<std::path::PathBuf>) -> Self {
        self.signing_key = key;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committer_is_the_bot_unless_named() {
        assert_eq!(Committer::new(None, None).name, "releasectl");
        assert_eq!(Committer::new(Some("ops-bot"), None).name, "ops-bot");
    }

    #[test]
    fn credentials_in_a_url_are_split_off_and_never_kept_in_it() {
        let (url, user, pass) = split_userinfo("https://bot:s3cret@git.example.com/ops/gitops.git");
        assert_eq!(url, "https://git.example.com/ops/gitops.git");
        assert_eq!(user.as_deref(), Some("bot"));
        assert_eq!(pass.as_deref(), Some("s3cret"));
        let (url, user, _) = split_userinfo("ssh://git@git.example.com/ops/gitops.git");
        assert_eq!(url, "ssh://git@git.example.com/ops/gitops.git");
        assert_eq!(user.as_deref(), Some("git"));
        assert_eq!(
            split_userinfo("file:///srv/gitops.git").0,
            "file:///srv/gitops.git"
        );
    }

    #[test]
    fn a_gitops_url_hides_its_password_and_a_path_becomes_a_file_url() {
        let url: Url = "https://bot:s3cret@git.example.com/ops/gitops.git"
            .parse()
            .unwrap();
        assert_eq!(url.as_str(), "https://git.example.com/ops/gitops.git");
        assert!(!format!("{url:?} {url}").contains("s3cret"));
        let url: Url = "/srv/gitops.git".parse().unwrap();
        assert_eq!(url.as_str(), "file:///srv/gitops.git");
        assert!("ftp://host/x".parse::<Url>().is_err());
        assert!("".parse::<Url>().is_err());
    }
}
