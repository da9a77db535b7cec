//! One GitOps remote, mirrored in a bare cache clone under `RELEASECTL_CACHE_DIR/git/`.
//!
//! Every transaction runs under an exclusive lock on the cache clone, so processes on one
//! machine take turns on it; processes on different machines (or with different caches)
//! race at the remote, where the non-forced push is the compare-and-swap.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::path::{Path, PathBuf};

use git2::build::TreeUpdateBuilder;
use git2::{
    Cred, CredentialType, ErrorCode, FetchOptions, FileMode, ObjectType, Oid, PushOptions,
    RemoteCallbacks, Repository, Signature, Time,
};

use super::GitError;
use crate::digest::sha256_hex;

/// Who a commit is by: the author is the person or pipeline (`--actor`), the committer
/// the bot identity.
#[derive(Debug, Clone)]
pub struct Identity {
    pub author_name: String,
    pub author_email: String,
    pub committer_name: String,
    pub committer_email: String,
    /// Seconds since the epoch (from `RELEASECTL_NOW` when set).
    pub time: i64,
}

impl Identity {
    /// `actor` may be `Name <email>`, an email, or a name.
    #[must_use]
    pub fn new(actor: &str, time: i64) -> Self {
        let (name, email) = match actor.split_once('<') {
            Some((n, e)) => (
                n.trim().to_owned(),
                e.trim_end_matches('>').trim().to_owned(),
            ),
            None if actor.contains('@') => (actor.to_owned(), actor.to_owned()),
            None => (actor.to_owned(), format!("{actor}@releasectl.invalid")),
        };
        Self {
            author_name: name,
            author_email: email,
            committer_name: std::env::var("RELEASECTL_BOT_NAME")
                .unwrap_or_else(|_| "releasectl".into()),
            committer_email: std::env::var("RELEASECTL_BOT_EMAIL")
                .unwrap_or_else(|_| "releasectl@releasectl.invalid".into()),
            time,
        }
    }
}

/// A file to write (`Some`) or delete (`None`) at a repository path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub path: String,
    pub content: Option<Vec<u8>>,
}

/// The branch tip as fetched: files are read from it without a working tree.
pub struct Snapshot<'r> {
    repo: &'r Repository,
    pub tip: Option<Oid>,
    tree: Option<git2::Tree<'r>>,
}

impl Snapshot<'_> {
    /// The file at `path`, if there is one.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>, git2::Error> {
        let Some(tree) = &self.tree else {
            return Ok(None);
        };
        let entry = match tree.get_path(Path::new(path)) {
            Ok(e) => e,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if entry.kind() != Some(ObjectType::Blob) {
            return Ok(None);
        }
        Ok(Some(self.repo.find_blob(entry.id())?.content().to_vec()))
    }

    /// Paths of the blobs under directory `dir` (recursively), relative to the root.
    pub fn list(&self, dir: &str) -> Result<Vec<String>, git2::Error> {
        let Some(tree) = &self.tree else {
            return Ok(Vec::new());
        };
        let sub = match tree.get_path(Path::new(dir)) {
            Ok(e) if e.kind() == Some(ObjectType::Tree) => self.repo.find_tree(e.id())?,
            Ok(_) => return Ok(Vec::new()),
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        sub.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
            if entry.kind() == Some(ObjectType::Blob)
                && let Ok(name) = entry.name()
            {
                out.push(format!("{dir}/{root}{name}"));
            }
            git2::TreeWalkResult::Ok
        })?;
        Ok(out)
    }

    /// The commits that changed `path`, newest first (first-parent history), lazily: callers
    /// that need only the latest few changes stop early, so the cost grows with how far back
    /// they look, not with the repository's age.
    pub fn history(&self, path: &str) -> Result<History<'_>, git2::Error> {
        let mut walk = self.repo.revwalk()?;
        if let Some(tip) = self.tip {
            walk.push(tip)?;
        }
        walk.simplify_first_parent()?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL)?;
        Ok(History {
            repo: self.repo,
            walk,
            path: path.to_owned(),
        })
    }

    /// Names of the directories at the root.
    pub fn list_dirs(&self) -> Result<Vec<String>, git2::Error> {
        let Some(tree) = &self.tree else {
            return Ok(Vec::new());
        };
        Ok(tree
            .iter()
            .filter(|e| e.kind() == Some(ObjectType::Tree))
            .filter_map(|e| e.name().ok().map(str::to_owned))
            .collect())
    }

    /// The tip commit's id as hex, or `(empty)`.
    #[must_use]
    pub fn tip_str(&self) -> String {
        self.tip.map_or_else(|| "(empty)".into(), |o| o.to_string())
    }
}

/// One commit that changed a path.
#[derive(Debug, Clone)]
pub struct PathChange {
    pub commit: Oid,
    /// Commit time, seconds since the epoch.
    pub time: i64,
    pub author: String,
    pub message: String,
    /// The file after the commit (`None`: deleted).
    pub content: Option<Vec<u8>>,
}

/// Iterator over the commits that changed one path (see [`Snapshot::history`]).
pub struct History<'r> {
    repo: &'r Repository,
    walk: git2::Revwalk<'r>,
    path: String,
}

impl History<'_> {
    fn entry(&self, commit: &git2::Commit<'_>) -> Result<Option<Oid>, git2::Error> {
        match commit.tree()?.get_path(Path::new(&self.path)) {
            Ok(e) => Ok(Some(e.id())),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Iterator for History<'_> {
    type Item = Result<PathChange, git2::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let oid = match self.walk.next()? {
                Ok(o) => o,
                Err(e) => return Some(Err(e)),
            };
            let step = (|| -> Result<Option<PathChange>, git2::Error> {
                let commit = self.repo.find_commit(oid)?;
                let here = self.entry(&commit)?;
                let before = match commit.parent(0) {
                    Ok(p) => self.entry(&p)?,
                    Err(_) => None,
                };
                if here == before {
                    return Ok(None);
                }
                let content = match here {
                    Some(id) => Some(self.repo.find_blob(id)?.content().to_vec()),
                    None => None,
                };
                let author = commit.author();
                Ok(Some(PathChange {
                    commit: oid,
                    time: commit.time().seconds(),
                    author: author.email().or(author.name()).unwrap_or("").to_owned(),
                    message: commit.message().unwrap_or("").to_owned(),
                    content,
                }))
            })();
            match step {
                Ok(Some(change)) => return Some(Ok(change)),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// How a push ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    Pushed(Oid),
    /// Someone else moved the branch, or the server refused; the message says which.
    Rejected(String),
}

/// Credentials for the remote, never printed.
#[derive(Clone, Default)]
struct Auth {
    username: Option<String>,
    password: Option<crate::credentials::Secret>,
    ssh_key: Option<PathBuf>,
}

pub struct GitOps {
    repo: Repository,
    /// The URL without credentials: the only form that appears in messages.
    url: String,
    /// The URL handed to libgit2 (credentials removed; they come through the callback).
    fetch_url: String,
    branch: String,
    auth: Auth,
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

/// The default cache: `RELEASECTL_CACHE_DIR`, else `$XDG_CACHE_HOME/releasectl`, else
/// `~/.cache/releasectl`.
#[must_use]
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("RELEASECTL_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("releasectl");
    }
    std::env::var_os("HOME")
        .map_or_else(std::env::temp_dir, |h| PathBuf::from(h).join(".cache"))
        .join("releasectl")
}

fn local(path: &Path, reason: impl std::fmt::Display) -> GitError {
    GitError::Local {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

impl GitOps {
    /// Opens (creating if needed) the cache clone of `url` and takes its lock.
    pub fn open(url: &str, branch: &str) -> Result<Self, GitError> {
        // A plain path is a local repository.
        let url = if url.contains("://") || url.starts_with("git@") {
            url.to_owned()
        } else {
            let p = Path::new(url);
            let abs = if p.is_absolute() {
                p.to_owned()
            } else {
                std::env::current_dir().map_err(|e| local(p, e))?.join(p)
            };
            format!("file://{}", abs.display())
        };
        let (clean, username, password) = split_userinfo(&url);
        let auth = Auth {
            username: std::env::var("RELEASECTL_GIT_USERNAME").ok().or(username),
            password: std::env::var("RELEASECTL_GIT_PASSWORD")
                .or_else(|_| std::env::var("RELEASECTL_GIT_TOKEN"))
                .ok()
                .or(password)
                .map(crate::credentials::Secret::new),
            ssh_key: std::env::var_os("RELEASECTL_GIT_SSH_KEY").map(PathBuf::from),
        };
        let root = cache_dir().join("git");
        std::fs::create_dir_all(&root).map_err(|e| local(&root, e))?;
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
        Ok(Self {
            repo,
            url: clean.clone(),
            fetch_url: clean,
            branch: branch.to_owned(),
            auth,
            _lock: Some(lock),
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

    fn tracking_ref(&self) -> String {
        format!("refs/remotes/origin/{}", self.branch)
    }

    /// Callbacks with credentials that are offered once: a second request means they were
    /// refused, and libgit2 would otherwise ask again and again.
    fn callbacks<'a>(
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

    fn remote_error(
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

    /// Opens the repository this process runs in, as git would (`GIT_DIR`,
    /// `GIT_OBJECT_DIRECTORY`, `GIT_ALTERNATE_OBJECT_DIRECTORIES` honoured), for reading
    /// only: the `pre-receive` hook sees the pushed objects in their quarantine this way.
    pub fn open_here(branch: &str) -> Result<Self, GitError> {
        let repo = Repository::open_from_env().map_err(|e| local(Path::new("."), e.message()))?;
        let url = repo.path().display().to_string();
        Ok(Self {
            repo,
            url: url.clone(),
            fetch_url: url,
            branch: branch.to_owned(),
            auth: Auth::default(),
            _lock: None,
        })
    }

    /// The repository as of commit `oid` (which must be present locally).
    pub fn snapshot_at(&self, oid: Oid) -> Result<Snapshot<'_>, GitError> {
        let tree = self
            .repo
            .find_commit(oid)
            .and_then(|c| c.tree())
            .map_err(|e| self.remote_error("read", &e, false))?;
        Ok(Snapshot {
            repo: &self.repo,
            tip: Some(oid),
            tree: Some(tree),
        })
    }

    /// Resolves a revision (`main`, a SHA, `HEAD~3`) to a commit.
    pub fn resolve(&self, rev: &str) -> Result<Oid, GitError> {
        let tracking = format!("refs/remotes/origin/{rev}");
        self.repo
            .revparse_single(&tracking)
            .or_else(|_| self.repo.revparse_single(rev))
            .and_then(|o| o.peel_to_commit())
            .map(|c| c.id())
            .map_err(|e| GitError::BadFile {
                url: self.url.clone(),
                path: rev.to_owned(),
                commit: "-".into(),
                reason: e.message().to_owned(),
            })
    }

    /// The commits in `from..to`, oldest first, first-parent.
    pub fn range(&self, from: Option<Oid>, to: Oid) -> Result<Vec<Oid>, GitError> {
        let err = |e: git2::Error| local(self.repo.path(), e.message());
        let mut walk = self.repo.revwalk().map_err(err)?;
        walk.push(to).map_err(err)?;
        if let Some(f) = from {
            walk.hide(f).map_err(err)?;
        }
        walk.simplify_first_parent().map_err(err)?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)
            .map_err(err)?;
        walk.collect::<Result<Vec<_>, _>>().map_err(err)
    }

    /// The paths whose blobs differ between `parent` (or the empty tree) and `commit`.
    pub fn changed_paths(&self, parent: Option<Oid>, commit: Oid) -> Result<Vec<String>, GitError> {
        let err = |e: git2::Error| local(self.repo.path(), e.message());
        let tree_of = |oid: Oid| {
            self.repo
                .find_commit(oid)
                .and_then(|c| c.tree())
                .map_err(err)
        };
        let new = tree_of(commit)?;
        let old = match parent {
            Some(p) => Some(tree_of(p)?),
            None => None,
        };
        let diff = self
            .repo
            .diff_tree_to_tree(old.as_ref(), Some(&new), None)
            .map_err(err)?;
        let mut out = Vec::new();
        for d in diff.deltas() {
            for f in [d.old_file(), d.new_file()] {
                if let Some(p) = f.path().and_then(|p| p.to_str())
                    && !out.iter().any(|x: &String| x == p)
                {
                    out.push(p.to_owned());
                }
            }
        }
        Ok(out)
    }

    /// The first parent of a commit, if any.
    pub fn parent(&self, oid: Oid) -> Result<Option<Oid>, GitError> {
        let c = self
            .repo
            .find_commit(oid)
            .map_err(|e| local(self.repo.path(), e.message()))?;
        Ok(c.parent_id(0).ok())
    }

    /// A commit's time, author and message.
    pub fn commit_info(&self, oid: Oid) -> Result<(i64, String, String), GitError> {
        let c = self
            .repo
            .find_commit(oid)
            .map_err(|e| local(self.repo.path(), e.message()))?;
        let a = c.author();
        Ok((
            c.time().seconds(),
            a.email().or(a.name()).unwrap_or("").to_owned(),
            c.message().unwrap_or("").to_owned(),
        ))
    }

    /// Fetches the branch and returns its tip.
    pub fn fetch(&self) -> Result<Snapshot<'_>, GitError> {
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
        let tip = if advertised {
            Some(
                self.repo
                    .refname_to_id(&self.tracking_ref())
                    .map_err(|e| self.remote_error("fetch", &e, false))?,
            )
        } else {
            None
        };
        let tree = match tip {
            Some(oid) => Some(
                self.repo
                    .find_commit(oid)
                    .and_then(|c| c.tree())
                    .map_err(|e| self.remote_error("fetch", &e, false))?,
            ),
            None => None,
        };
        Ok(Snapshot {
            repo: &self.repo,
            tip,
            tree,
        })
    }

    /// Builds a commit on top of `base` with `edits` (only those paths change) and pushes it
    /// without force.
    pub fn commit_and_push(
        &self,
        base: &Snapshot<'_>,
        edits: &[Edit],
        message: &str,
        identity: &Identity,
    ) -> Result<PushOutcome, GitError> {
        let oid = self.commit(base, edits, message, identity)?;
        match self.push(oid, base.tip)? {
            PushOutcome::Rejected(reason) => {
                // A rejection with the branch where we left it was no race: the server
                // refused the change itself (a hook, a protected branch). Retrying cannot help.
                // (A local compare-and-swap only ever fails on a race.)
                if !self.fetch_url.starts_with("file://") && self.fetch()?.tip == base.tip {
                    return Err(GitError::Refused {
                        url: self.url.clone(),
                        reason,
                    });
                }
                Ok(PushOutcome::Rejected(reason))
            }
            pushed @ PushOutcome::Pushed(_) => Ok(pushed),
        }
    }

    /// Creates the commit object (no ref moves).
    pub fn commit(
        &self,
        base: &Snapshot<'_>,
        edits: &[Edit],
        message: &str,
        identity: &Identity,
    ) -> Result<Oid, GitError> {
        let dir = self.repo.path().to_owned();
        let err = |e: git2::Error| local(&dir, e.message());
        let baseline = match &base.tree {
            Some(t) => t.clone(),
            None => {
                let empty = self
                    .repo
                    .treebuilder(None)
                    .and_then(|b| b.write())
                    .map_err(err)?;
                self.repo.find_tree(empty).map_err(err)?
            }
        };
        let mut update = TreeUpdateBuilder::new();
        for edit in edits {
            match &edit.content {
                Some(bytes) => {
                    let blob = self.repo.blob(bytes).map_err(err)?;
                    update.upsert(edit.path.as_str(), blob, FileMode::Blob);
                }
                None => {
                    update.remove(edit.path.as_str());
                }
            }
        }
        let tree_id = update.create_updated(&self.repo, &baseline).map_err(err)?;
        let tree = self.repo.find_tree(tree_id).map_err(err)?;
        let time = Time::new(identity.time, 0);
        let author =
            Signature::new(&identity.author_name, &identity.author_email, &time).map_err(err)?;
        let committer = Signature::new(&identity.committer_name, &identity.committer_email, &time)
            .map_err(err)?;
        let parent = match base.tip {
            Some(oid) => Some(self.repo.find_commit(oid).map_err(err)?),
            None => None,
        };
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        self.repo
            .commit(None, &author, &committer, message, &tree, &parents)
            .map_err(err)
    }

    /// Pushes `oid` to the branch without force, expecting the branch at `base` (`None`: a
    /// new branch).
    pub fn push(&self, oid: Oid, base: Option<Oid>) -> Result<PushOutcome, GitError> {
        let local_ref = format!("refs/heads/{}", self.branch);
        self.repo
            .reference(&local_ref, oid, true, "releasectl: prepared commit")
            .map_err(|e| local(self.repo.path(), e.message()))?;
        if let Some(path) = self.fetch_url.strip_prefix("file://") {
            return self.push_local(Path::new(path), oid, base);
        }
        let auth_failed = Cell::new(false);
        let asked = Cell::new(0);
        let rejected: RefCell<Option<String>> = RefCell::new(None);
        let said: RefCell<String> = RefCell::new(String::new());
        let mut remote = self
            .repo
            .remote_anonymous(&self.fetch_url)
            .map_err(|e| self.remote_error("push", &e, false))?;
        let mut cb = self.callbacks(&auth_failed, &asked);
        cb.push_update_reference(|refname, status| {
            if let Some(msg) = status {
                *rejected.borrow_mut() = Some(format!("{refname}: {msg}"));
            }
            Ok(())
        });
        // What the server's hooks print ("remote: ...") explains a refusal.
        cb.sideband_progress(|data| {
            let mut s = said.borrow_mut();
            if s.len() < 4096 {
                s.push_str(&String::from_utf8_lossy(data));
            }
            true
        });
        let mut opts = PushOptions::new();
        opts.remote_callbacks(cb);
        let refspec = format!("{local_ref}:{local_ref}");
        match remote.push(&[&refspec], Some(&mut opts)) {
            Ok(()) => {}
            Err(e) if e.code() == ErrorCode::NotFastForward => {
                return Ok(PushOutcome::Rejected(
                    "not a fast-forward: the branch moved".into(),
                ));
            }
            Err(e) if !auth_failed.get() && is_race_message(e.message()) => {
                return Ok(PushOutcome::Rejected(e.message().to_owned()));
            }
            Err(e) => return Err(self.remote_error("push", &e, auth_failed.get())),
        }
        drop(remote);
        drop(opts);
        if let Some(reason) = rejected.take() {
            let said = said.take();
            let said: Vec<&str> = said
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            return Ok(PushOutcome::Rejected(if said.is_empty() {
                reason
            } else {
                format!("{reason} ({})", said.join(" / "))
            }));
        }
        Ok(self.pushed(oid))
    }

    /// Keeps the tracking ref in step, so the next fetch has nothing to download.
    fn pushed(&self, oid: Oid) -> PushOutcome {
        let _ = self
            .repo
            .reference(&self.tracking_ref(), oid, true, "releasectl: pushed");
        PushOutcome::Pushed(oid)
    }

    /// A push to a repository on this machine. libgit2's local transport overwrites the
    /// remote ref without checking its old value (two writers could both "win"), so the new
    /// objects are copied into the target's object database directly and the branch moves by
    /// compare-and-swap under git's ref lock. Copying stops at every tree the target already
    /// has, so the cost is the changed paths, not the repository. (Hooks do not run for local
    /// remotes, as with libgit2's own local push.)
    fn push_local(
        &self,
        path: &Path,
        oid: Oid,
        base: Option<Oid>,
    ) -> Result<PushOutcome, GitError> {
        let fail = |e: git2::Error| self.remote_error("push", &e, false);
        let target = Repository::open(path).map_err(fail)?;
        let (from, to) = (self.repo.odb().map_err(fail)?, target.odb().map_err(fail)?);
        let copy = |id: Oid| -> Result<(), git2::Error> {
            let obj = from.read(id)?;
            to.write(obj.kind(), obj.data())?;
            Ok(())
        };
        let commit = self.repo.find_commit(oid).map_err(fail)?;
        let mut trees = vec![commit.tree_id()];
        while let Some(t) = trees.pop() {
            if to.exists(t) {
                continue; // content-addressed: everything below it is there too
            }
            let tree = self.repo.find_tree(t).map_err(fail)?;
            for entry in &tree {
                match entry.kind() {
                    Some(ObjectType::Tree) => trees.push(entry.id()),
                    Some(ObjectType::Blob) if !to.exists(entry.id()) => {
                        copy(entry.id()).map_err(fail)?;
                    }
                    _ => {}
                }
            }
            copy(t).map_err(fail)?;
        }
        copy(oid).map_err(fail)?;
        let branch = format!("refs/heads/{}", self.branch);
        let swapped = match base {
            Some(old) => target.reference_matching(&branch, oid, true, old, "releasectl: push"),
            None => target.reference(&branch, oid, false, "releasectl: push"),
        };
        match swapped {
            Ok(_) => Ok(self.pushed(oid)),
            // Moved under us, or another writer holds the ref lock right now: a lost race.
            Err(e)
                if matches!(
                    e.code(),
                    ErrorCode::Modified | ErrorCode::Exists | ErrorCode::Locked
                ) =>
            {
                Ok(PushOutcome::Rejected(format!(
                    "the branch moved ({})",
                    e.message()
                )))
            }
            Err(e) => Err(fail(e)),
        }
    }
}

/// What one attempt of a [`GitOps::transact`] decided.
pub enum Txn<T> {
    /// Nothing to write.
    Done(T),
    /// Write these files in one commit.
    Commit {
        edits: Vec<Edit>,
        message: String,
        identity: Identity,
        result: T,
    },
}

impl GitOps {
    /// Runs `f` on a fresh tip and pushes what it decides; when the push is rejected, runs
    /// it again on the new tip (never rebasing), with jittered backoff, until `attempts` or
    /// `deadline` run out. Returns `f`'s result and the pushed commit, if any.
    pub fn transact<T>(
        &self,
        attempts: u32,
        deadline: std::time::Instant,
        mut f: impl FnMut(&Snapshot<'_>) -> crate::exit::Result<Txn<T>>,
    ) -> crate::exit::Result<(T, Option<Oid>)> {
        let mut last = String::new();
        let mut tries = crate::retry::Attempts::new(attempts, deadline);
        while tries.next_blocking() {
            let tip = self.fetch()?;
            match f(&tip)? {
                Txn::Done(t) => return Ok((t, None)),
                Txn::Commit {
                    edits,
                    message,
                    identity,
                    result,
                } => match self.commit_and_push(&tip, &edits, &message, &identity)? {
                    PushOutcome::Pushed(oid) => return Ok((result, Some(oid))),
                    PushOutcome::Rejected(reason) => {
                        crate::log::info(&format!(
                            "push to {} rejected ({reason}); retrying from the new tip",
                            self.url
                        ));
                        last = reason;
                    }
                },
            }
        }
        Err(GitError::Contended {
            url: self.url.clone(),
            attempts,
            last,
        }
        .into())
    }
}

/// Messages with which servers report that the ref moved under us.
fn is_race_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("fetch first")
        || m.contains("non-fast-forward")
        || m.contains("failed to update ref")
        || m.contains("cannot lock ref")
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn actors_become_signatures() {
        let id = Identity::new("Alice <alice@company.com>", 0);
        assert_eq!(
            (id.author_name.as_str(), id.author_email.as_str()),
            ("Alice", "alice@company.com")
        );
        let id = Identity::new("ci@company.com", 0);
        assert_eq!(id.author_email, "ci@company.com");
    }
}
