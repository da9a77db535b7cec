//! Reading the repository at a commit, without a working tree: files, listings, one path's
//! history, commit metadata, revision ranges.
//!
//! Invariants: reads come from the commit's tree (never a checkout), so they cost what they
//! read, not the repository's size; a failure to read names the repository, the path and the
//! commit ([`GitError::BadFile`]); history is lazy, newest first, first-parent.

use std::collections::BTreeMap;

use git2::{ObjectType, Oid, Repository};

use super::GitError;
use super::lazy::Lazy;
use super::remote::{GitOps, local};

impl GitOps {
    /// Fetches the branch and returns its tip (empty for a branch the remote does not have).
    pub fn fetch(&self) -> Result<Snapshot<'_>, GitError> {
        match self.fetch_tip()? {
            Some(oid) => self.snapshot_at(oid),
            None => Ok(Snapshot::empty(self)),
        }
    }
}

/// The repository at one commit (or an empty branch): files are read from its tree.
pub struct Snapshot<'r> {
    repo: &'r Repository,
    url: &'r str,
    /// Fetches what is read and missing (a `git://` cache, see [`super::lazy`]).
    lazy: Option<&'r Lazy>,
    pub tip: Option<Oid>,
    pub(super) tree: Option<git2::Tree<'r>>,
    /// Directories already walked to, by path: reading thousands of files under one large
    /// directory inflates its tree once, not once per file (libgit2 does not cache large trees).
    pub(super) dirs: std::cell::RefCell<std::collections::HashMap<String, git2::Tree<'r>>>,
}

impl<'r> Snapshot<'r> {
    /// A branch that does not exist yet: no files.
    pub(super) fn empty(gitops: &'r GitOps) -> Self {
        Self {
            repo: &gitops.repo,
            url: gitops.url(),
            lazy: gitops.lazy.as_ref(),
            tip: None,
            tree: None,
            dirs: std::cell::RefCell::default(),
        }
    }

    fn bad(&self, path: &str, e: &git2::Error) -> GitError {
        GitError::BadFile {
            url: self.url.to_owned(),
            path: path.to_owned(),
            commit: self.tip_str(),
            reason: e.message().to_owned(),
        }
    }

    /// Fetches those of `oids` the cache lacks (nothing to do for a complete cache).
    fn ensure(&self, what: &str, oids: &[Oid]) -> Result<(), GitError> {
        match self.lazy {
            Some(lazy) => lazy
                .ensure(self.repo, oids)
                .map_err(|e| self.cannot_fetch(what, &e)),
            None => Ok(()),
        }
    }

    /// Every tree below the directory `dir` (tree `id`), without blobs, in one fetch (a no-op
    /// for a complete cache).
    fn fetch_trees_below(&self, dir: &str, id: Oid) -> Result<(), GitError> {
        match self.lazy {
            Some(lazy) => lazy
                .fetch(self.repo, &[id], &[], None, "blob:none")
                .map_err(|e| self.cannot_fetch(dir, &e)),
            None => Ok(()),
        }
    }

    fn cannot_fetch(&self, what: &str, e: &super::wire::WireError) -> GitError {
        GitError::BadFile {
            url: self.url.to_owned(),
            path: what.to_owned(),
            commit: self.tip_str(),
            reason: format!("cannot fetch it: {}", e.0),
        }
    }

    /// Fetches, in one request, the trees of those directories in `dirs` the cache lacks
    /// (their parents are fetched on the way if missing): a walk down a directory hierarchy
    /// that calls it once per level pays the depth in round trips, not one per directory.
    /// Paths that are not directories are skipped.
    pub(super) fn ensure_dirs(&self, dirs: &[String]) -> Result<(), GitError> {
        if self.lazy.is_none() {
            return Ok(());
        }
        let mut ids = Vec::new();
        for dir in dirs {
            if let Some((id, ObjectType::Tree)) = self.entry_at(dir)? {
                ids.push(id);
            }
        }
        match dirs.first() {
            Some(first) => self.ensure(first, &ids),
            None => Ok(()),
        }
    }

    /// The id and kind of the entry at `path`, one directory at a time (fetching the trees
    /// on the way when the cache lacks them).
    pub(super) fn entry_at(&self, path: &str) -> Result<Option<(Oid, ObjectType)>, GitError> {
        let Some(root) = &self.tree else {
            return Ok(None);
        };
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let dir = parts
            .len()
            .checked_sub(1)
            .map(|n| parts[..n].join("/"))
            .unwrap_or_default();
        if !dir.is_empty()
            && let Some(tree) = self.dirs.borrow().get(&dir)
        {
            let last = parts[parts.len() - 1];
            return Ok(tree
                .get_name(last)
                .and_then(|e| e.kind().map(|k| (e.id(), k))));
        }
        let mut tree = root.clone();
        for (i, part) in parts.iter().enumerate() {
            let Some((id, kind)) = tree.get_name(part).map(|e| (e.id(), e.kind())) else {
                return Ok(None);
            };
            if i + 1 == parts.len() {
                return Ok(kind.map(|k| (id, k)));
            }
            if kind != Some(ObjectType::Tree) {
                return Ok(None);
            }
            self.ensure(path, &[id])?;
            tree = self.repo.find_tree(id).map_err(|e| self.bad(path, &e))?;
            if i + 2 == parts.len() {
                self.dirs.borrow_mut().insert(dir.clone(), tree.clone());
            }
        }
        Ok(None)
    }

    /// The file at `path`, if there is one.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>, GitError> {
        let Some((id, ObjectType::Blob)) = self.entry_at(path)? else {
            return Ok(None);
        };
        self.ensure(path, &[id])?;
        let blob = self.repo.find_blob(id).map_err(|e| self.bad(path, &e))?;
        Ok(Some(blob.content().to_vec()))
    }

    /// Fetches what a lazy cache lacks to read the files at `paths` (a no-op for a complete
    /// cache), one request per tree level for all of them: the trees one level down every
    /// path and the blobs found at that level go in one `fetch`, so reading many files
    /// (`status`), or the few a command is about to decide on, costs the depth of the deepest
    /// path in round trips, not one per tree and file. Paths that do not exist are skipped.
    pub fn prefetch(&self, paths: &[String]) -> Result<(), GitError> {
        let (Some(_), Some(root)) = (self.lazy, &self.tree) else {
            return Ok(());
        };
        // The trees of this level, each with the rests of the paths that go through it.
        let mut level: BTreeMap<Oid, Vec<Vec<&str>>> = BTreeMap::new();
        level.insert(
            root.id(),
            paths
                .iter()
                .map(|p| p.split('/').filter(|x| !x.is_empty()).collect())
                .collect(),
        );
        while !level.is_empty() {
            let mut want = Vec::new();
            let mut next: BTreeMap<Oid, Vec<Vec<&str>>> = BTreeMap::new();
            for (id, rests) in &level {
                let tree = self
                    .repo
                    .find_tree(*id)
                    .map_err(|e| self.bad("(many files)", &e))?;
                for rest in rests {
                    let Some((first, below)) = rest.split_first() else {
                        continue;
                    };
                    let Some(entry) = tree.get_name(first) else {
                        continue;
                    };
                    match entry.kind() {
                        Some(ObjectType::Blob) if below.is_empty() => want.push(entry.id()),
                        Some(ObjectType::Tree) if !below.is_empty() => {
                            let subs = next.entry(entry.id()).or_default();
                            if subs.is_empty() {
                                want.push(entry.id());
                            }
                            subs.push(below.to_vec());
                        }
                        _ => {}
                    }
                }
            }
            want.sort_unstable();
            want.dedup();
            self.ensure("(many files)", &want)?;
            level = next;
        }
        Ok(())
    }

    /// Paths of the blobs under directory `dir` (recursively), relative to the root.
    pub fn list(&self, dir: &str) -> Result<Vec<String>, GitError> {
        Ok(self
            .blobs_below(dir, |_| true)?
            .into_iter()
            .map(|(path, _)| path)
            .collect())
    }

    /// The blobs below directory `dir` (recursively) whose file name `keep` accepts, with their
    /// paths from the root, in the tree's order. One walk of the tree; on a lazy cache that
    /// lacks a tree below, every tree below (without blobs) is fetched in one request and the
    /// walk runs again.
    fn blobs_below(
        &self,
        dir: &str,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Vec<(String, Oid)>, GitError> {
        let Some((id, ObjectType::Tree)) = self.entry_at(dir)? else {
            return Ok(Vec::new());
        };
        self.ensure(dir, &[id])?;
        let sub = self.repo.find_tree(id).map_err(|e| self.bad(dir, &e))?;
        let walk = |found: &mut Vec<(String, Oid)>| {
            found.clear();
            sub.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
                if entry.kind() == Some(ObjectType::Blob)
                    && let Ok(name) = entry.name()
                    && keep(name)
                {
                    found.push((format!("{dir}/{root}{name}"), entry.id()));
                }
                git2::TreeWalkResult::Ok
            })
        };
        let mut found = Vec::new();
        if let Err(e) = walk(&mut found) {
            if self.lazy.is_none() {
                return Err(self.bad(dir, &e));
            }
            self.fetch_trees_below(dir, id)?;
            walk(&mut found).map_err(|e| self.bad(dir, &e))?;
        }
        Ok(found)
    }

    /// The names directly under directory `dir` (`""`: the root), each with whether it is a
    /// directory; nothing is read below them, so the cost is that one tree's size.
    pub fn entries(&self, dir: &str) -> Result<Vec<(String, bool)>, GitError> {
        let Some(tree) = &self.tree else {
            return Ok(Vec::new());
        };
        let sub;
        let tree = if dir.is_empty() {
            tree
        } else {
            let Some((id, ObjectType::Tree)) = self.entry_at(dir)? else {
                return Ok(Vec::new());
            };
            self.ensure(dir, &[id])?;
            sub = self.repo.find_tree(id).map_err(|e| self.bad(dir, &e))?;
            &sub
        };
        Ok(tree
            .iter()
            .filter_map(|e| {
                let name = e.name().ok()?.to_owned();
                Some((name, e.kind() == Some(ObjectType::Tree)))
            })
            .collect())
    }

    /// Every file called `name` below directory `dir` (recursively), with its path and its
    /// content, sorted by path: one walk of the tree and, for a lazy cache, one fetch of the
    /// blobs it lacks. Reading every pointer of an environment costs one pass over its
    /// directory, not one walk from the root per file.
    pub fn files_named(&self, dir: &str, name: &str) -> Result<Vec<(String, Vec<u8>)>, GitError> {
        let found = self.blobs_below(dir, |n| n == name)?;
        let ids: Vec<Oid> = found.iter().map(|(_, id)| *id).collect();
        self.ensure(dir, &ids)?;
        let mut out = Vec::with_capacity(found.len());
        for (path, id) in found {
            let blob = self.repo.find_blob(id).map_err(|e| self.bad(&path, &e))?;
            out.push((path, blob.content().to_vec()));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Walks to directory `dir` from the deepest directory on its path already walked to,
    /// remembering every directory on the way, so that reads in `dir` start there (an absent
    /// `dir` remembers the part of its path that exists). For many reads below one large
    /// directory, e.g. the registers of thousands of projects below `releases/<repository>`,
    /// which [`Self::read`] alone walks from the root each time.
    pub fn remember(&self, dir: &str) -> Result<(), GitError> {
        let Some(root) = &self.tree else {
            return Ok(());
        };
        let parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
        let (mut start, mut tree) = (0, root.clone());
        for n in (1..=parts.len()).rev() {
            if let Some(t) = self.dirs.borrow().get(&parts[..n].join("/")) {
                (start, tree) = (n, t.clone());
                break;
            }
        }
        for i in start..parts.len() {
            let Some((id, Some(ObjectType::Tree))) =
                tree.get_name(parts[i]).map(|e| (e.id(), e.kind()))
            else {
                return Ok(());
            };
            self.ensure(dir, &[id])?;
            tree = self.repo.find_tree(id).map_err(|e| self.bad(dir, &e))?;
            self.dirs
                .borrow_mut()
                .insert(parts[..=i].join("/"), tree.clone());
        }
        Ok(())
    }

    /// Names of the directories at the root.
    #[must_use]
    pub fn list_dirs(&self) -> Vec<String> {
        let Some(tree) = &self.tree else {
            return Vec::new();
        };
        tree.iter()
            .filter(|e| e.kind() == Some(ObjectType::Tree))
            .filter_map(|e| e.name().ok().map(str::to_owned))
            .collect()
    }

    /// The commits that changed `path`, newest first (first-parent history), lazily: callers
    /// that need only the latest few changes stop early, so the cost grows with how far back
    /// they look, not with the repository's age.
    pub fn history(&self, path: &str) -> Result<History<'r>, GitError> {
        if let (Some(lazy), Some(tip)) = (self.lazy, self.tip) {
            // A shallow cache holds no past: deepen it (commits and trees) first.
            lazy.unshallow(self.repo, tip)
                .map_err(|e| GitError::BadFile {
                    url: self.url.to_owned(),
                    path: path.to_owned(),
                    commit: self.tip_str(),
                    reason: format!("cannot fetch its history: {}", e.0),
                })?;
        }
        // A deepened cache is read through a fresh handle: libgit2 keeps the commits it
        // parsed while the cache was shallow (without their parents).
        let repo = match self.lazy {
            Some(_) => Repo::Fresh(
                Repository::open_bare(self.repo.path()).map_err(|e| self.bad(path, &e))?,
            ),
            None => Repo::Shared(self.repo),
        };
        Ok(History {
            repo,
            lazy: self.lazy,
            next: self.tip,
            path: path.to_owned(),
        })
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
    repo: Repo<'r>,
    lazy: Option<&'r Lazy>,
    /// The next commit of the first-parent chain to look at.
    next: Option<Oid>,
    path: String,
}

/// The repository a [`History`] reads: the snapshot's, or a fresh handle on it.
enum Repo<'r> {
    Shared(&'r Repository),
    Fresh(Repository),
}

impl std::ops::Deref for Repo<'_> {
    type Target = Repository;

    fn deref(&self) -> &Repository {
        match self {
            Self::Shared(r) => r,
            Self::Fresh(r) => r,
        }
    }
}

impl History<'_> {
    /// The id at the history's path in `commit`, fetching trees on the way that a lazy cache
    /// lacks (a deepening fetch leaves out what the server believes the cache has).
    fn entry(&self, commit: &git2::Commit<'_>) -> Result<Option<Oid>, git2::Error> {
        let ensure = |id: Oid| match self.lazy {
            Some(lazy) => lazy
                .ensure(&self.repo, &[id])
                .map_err(|e| git2::Error::from_str(&e.0)),
            None => Ok(()),
        };
        let mut id = commit.tree_id();
        for part in self.path.split('/').filter(|p| !p.is_empty()) {
            ensure(id)?;
            let tree = self.repo.find_tree(id)?;
            match tree.get_name(part) {
                Some(e) => id = e.id(),
                None => return Ok(None),
            }
        }
        Ok(Some(id))
    }

    fn change(&self, oid: Oid) -> Result<Option<PathChange>, git2::Error> {
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
            Some(id) => {
                if let Some(lazy) = self.lazy {
                    lazy.ensure(&self.repo, &[id])
                        .map_err(|e| git2::Error::from_str(&e.0))?;
                }
                Some(self.repo.find_blob(id)?.content().to_vec())
            }
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
    }
}

impl Iterator for History<'_> {
    type Item = Result<PathChange, GitError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let oid = self.next?;
            let parent = self.repo.find_commit(oid).map(|c| c.parent_id(0).ok());
            let step = parent.and_then(|p| {
                self.next = p;
                self.change(oid)
            });
            match step {
                Ok(Some(change)) => return Some(Ok(change)),
                Ok(None) => {}
                Err(e) => {
                    return Some(Err(local(
                        self.repo.path(),
                        format!("history of {}: {}", self.path, e.message()),
                    )));
                }
            }
        }
    }
}

/// One commit's time, author and message.
#[derive(Debug, Clone)]
pub struct CommitInfo {
    /// Seconds since the epoch.
    pub time: i64,
    pub author: String,
    pub message: String,
}

impl GitOps {
    /// The repository as of commit `oid` (which must be present locally).
    pub fn snapshot_at(&self, oid: Oid) -> Result<Snapshot<'_>, GitError> {
        let read = |e: git2::Error| self.remote_error("read", &e, false);
        let tree_id = self.repo.find_commit(oid).map_err(read)?.tree_id();
        if let Some(lazy) = &self.lazy {
            lazy.ensure(&self.repo, &[tree_id])
                .map_err(|e| GitError::Remote {
                    url: self.url().to_owned(),
                    operation: "fetch",
                    reason: e.0,
                })?;
        }
        let tree = self.repo.find_tree(tree_id).map_err(read)?;
        Ok(Snapshot {
            repo: &self.repo,
            url: self.url(),
            lazy: self.lazy.as_ref(),
            tip: Some(oid),
            tree: Some(tree),
            dirs: std::cell::RefCell::default(),
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
                url: self.url().to_owned(),
                path: rev.to_owned(),
                commit: "-".into(),
                reason: e.message().to_owned(),
            })
    }

    /// The commits in `from..to`, oldest first, first-parent.
    pub fn range(&self, from: Option<Oid>, to: Oid) -> Result<Vec<Oid>, GitError> {
        self.deepen(to)?;
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

    /// Makes the history of `oid` complete in a shallow `git://` cache (commits and trees).
    fn deepen(&self, oid: Oid) -> Result<(), GitError> {
        match &self.lazy {
            Some(lazy) => lazy
                .unshallow(&self.repo, oid)
                .map_err(|e| GitError::Remote {
                    url: self.url().to_owned(),
                    operation: "fetch",
                    reason: e.0,
                }),
            None => Ok(()),
        }
    }

    /// The first parent of a commit, if any.
    pub fn parent(&self, oid: Oid) -> Result<Option<Oid>, GitError> {
        self.deepen(oid)?;
        if self.lazy.is_some() {
            // The commit as stored: libgit2 may hold it parsed from while the cache was
            // shallow (without its parents).
            let err = |e: git2::Error| local(self.repo.path(), e.message());
            let odb = self.repo.odb().map_err(err)?;
            let raw = odb.read(oid).map_err(err)?;
            let header = raw
                .data()
                .split(|b| *b == b'\n')
                .take_while(|l| !l.is_empty());
            return Ok(header
                .filter_map(|l| l.strip_prefix(b"parent "))
                .find_map(|h| {
                    std::str::from_utf8(h)
                        .ok()
                        .and_then(|h| Oid::from_str(h).ok())
                }));
        }
        let c = self
            .repo
            .find_commit(oid)
            .map_err(|e| local(self.repo.path(), e.message()))?;
        Ok(c.parent_id(0).ok())
    }

    /// A commit's time, author and message.
    pub fn commit_info(&self, oid: Oid) -> Result<CommitInfo, GitError> {
        let c = self
            .repo
            .find_commit(oid)
            .map_err(|e| local(self.repo.path(), e.message()))?;
        let a = c.author();
        Ok(CommitInfo {
            time: c.time().seconds(),
            author: a.email().or(a.name()).unwrap_or("").to_owned(),
            message: c.message().unwrap_or("").to_owned(),
        })
    }
}
