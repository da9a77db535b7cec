//! [`Register`]: one project's register at a snapshot, in any of its formats, and the edits that
//! change it. Finding registers ([`find_register`], [`all_registers`]) walks the directories
//! of `releases/` but never enters a register's own `_…` directories.
//!
//! Invariants: with format 3 every lookup and every change reads a bounded number of small
//! files; the first change of a format 1 or format 2 register writes the whole register in
//! format 3 and removes the old files in the same commit; a new release gets
//! `last_number + 1`.

use super::bucket::{self, Changes};
use super::head::{self, Format};
use super::split;
use super::{Entry, RegisterError, RegisteredTrigger, ReleaseSelector, legacy};
use crate::exit::InvalidInput;
use crate::format::Alias;
use crate::gitops::layout;
use crate::gitops::push::Edit;
use crate::gitops::snapshot::Snapshot;
use crate::ids::{CommitSha, Project, Repository};

/// Which format a register is stored in.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Form {
    /// Format 3: bucket files below the register directory, read on demand.
    Buckets,
    /// Format 2: one file per release and key below the register directory, read on demand.
    Split,
    /// Format 1 (the whole list, parsed), or no register yet (`file: false`).
    Legacy { entries: Vec<Entry>, file: bool },
}

/// One project's register (see the module comment). Lookups take the snapshot the register
/// was found at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    pub repository: Repository,
    pub project: Project,
    /// The highest number ever given.
    pub last_number: u64,
    form: Form,
}

/// A register found below `releases/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub repository: Repository,
    pub project: Project,
    /// A register directory (a `_register.yaml`: format 2 or 3); else the file of format 1.
    pub split: bool,
}

/// Every register at `snap`, in the order of the tree. A project may show up twice, as a
/// register directory and as a format 1 file, only when someone put a format 1 file back by
/// hand (`check` flags it).
pub fn all_registers(snap: &Snapshot<'_>) -> crate::exit::Result<Vec<Found>> {
    let mut out = Vec::new();
    // Level by level, each level's trees fetched in one request on a lazy cache: the walk
    // costs the depth of `releases/` in round trips, not one per directory.
    let mut level = vec![layout::REGISTERS.to_owned()];
    while !level.is_empty() {
        snap.ensure_dirs(&level)?;
        let mut next = Vec::new();
        for dir in level {
            let entries = snap.entries(&dir)?;
            let repo = dir
                .strip_prefix(layout::REGISTERS)
                .and_then(|d| d.strip_prefix('/'))
                .and_then(|d| d.parse::<Repository>().ok());
            if entries
                .iter()
                .any(|(n, is_dir)| !is_dir && n == layout::REGISTER_HEAD)
                && let Some((repo, name)) = dir.rsplit_once('/')
                && let (Some(repository), Ok(project)) = (
                    repo.strip_prefix(layout::REGISTERS)
                        .and_then(|d| d.strip_prefix('/'))
                        .and_then(|d| d.parse::<Repository>().ok()),
                    name.parse::<Project>(),
                )
            {
                out.push(Found {
                    repository,
                    project,
                    split: true,
                });
            }
            for (name, is_dir) in entries {
                if name.starts_with('_') {
                    continue;
                }
                if is_dir {
                    next.push(format!("{dir}/{name}"));
                } else if let (Some(repository), Some(Ok(project))) =
                    (&repo, name.strip_suffix(".yaml").map(str::parse::<Project>))
                {
                    out.push(Found {
                        repository: repository.clone(),
                        project,
                        split: false,
                    });
                }
            }
        }
        level = next;
    }
    out.sort_by(|a, b| {
        (a.repository.as_str(), a.project.as_str())
            .cmp(&(b.repository.as_str(), b.project.as_str()))
    });
    Ok(out)
}

/// Finds a project's register at `tip`: `repository/project` directly, or a bare project
/// name that must be unique across repositories.
pub fn find_register(
    gitops: &crate::gitops::GitOps,
    tip: &Snapshot<'_>,
    project: &super::ProjectRef,
) -> crate::exit::Result<Register> {
    let (repository, name) = match project {
        super::ProjectRef::Full(repository, name) => (repository.clone(), name.clone()),
        super::ProjectRef::Bare(name) => {
            let mut matches: Vec<Repository> = all_registers(tip)?
                .into_iter()
                .filter(|f| f.project == *name)
                .map(|f| f.repository)
                .collect();
            matches.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            matches.dedup();
            match matches.as_slice() {
                [repo] => (repo.clone(), name.clone()),
                [] => {
                    return Err(InvalidInput(format!(
                        "no project {name} is registered in {} (branch {})",
                        gitops.url(),
                        gitops.branch()
                    ))
                    .into());
                }
                many => {
                    let names: Vec<String> = many.iter().map(|r| format!("{r}/{name}")).collect();
                    return Err(InvalidInput(format!(
                        "project {name} is ambiguous: expected one of {}",
                        names.join(", ")
                    ))
                    .into());
                }
            }
        }
    };
    Register::open(tip, &repository, &name)?.ok_or_else(|| {
        InvalidInput(format!(
            "no project {repository}/{name} is registered in {} (neither {} nor {})",
            gitops.url(),
            layout::register_head(&layout::register_dir(&repository, &name)),
            layout::legacy_register_path(&repository, &name)
        ))
        .into()
    })
}

impl Register {
    /// The register of a project nothing is registered for yet.
    #[must_use]
    pub fn new(repository: Repository, project: Project) -> Self {
        Self {
            repository,
            project,
            last_number: 0,
            form: Form::Legacy {
                entries: Vec::new(),
                file: false,
            },
        }
    }

    /// The project's register at `snap` (the register directory when there is one, else
    /// format 1), or `None` when the project has none.
    pub fn open(
        snap: &Snapshot<'_>,
        repository: &Repository,
        project: &Project,
    ) -> crate::exit::Result<Option<Self>> {
        let dir = layout::register_dir(repository, project);
        if let Some(head) = head::read_head(snap, &dir, repository, project)? {
            return Ok(Some(Self {
                repository: repository.clone(),
                project: project.clone(),
                last_number: head.last_number,
                form: match head.format() {
                    Format::Buckets => Form::Buckets,
                    Format::Split => Form::Split,
                },
            }));
        }
        let path = layout::legacy_register_path(repository, project);
        let Some(bytes) = snap.read(&path)? else {
            return Ok(None);
        };
        let old = legacy::LegacyRegister::parse(&path, &bytes, repository, project)?;
        let highest = old.releases.iter().map(|e| e.number).max().unwrap_or(0);
        Ok(Some(Self {
            repository: repository.clone(),
            project: project.clone(),
            last_number: old.last_number.max(highest),
            form: Form::Legacy {
                entries: old.releases,
                file: true,
            },
        }))
    }

    /// The project's register at `snap`, or a new, empty one.
    pub fn open_or_new(
        snap: &Snapshot<'_>,
        repository: &Repository,
        project: &Project,
    ) -> crate::exit::Result<Self> {
        Ok(Self::open(snap, repository, project)?
            .unwrap_or_else(|| Self::new(repository.clone(), project.clone())))
    }

    #[must_use]
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.repository, self.project)
    }

    /// The register directory (formats 2 and 3).
    #[must_use]
    pub fn dir(&self) -> String {
        layout::register_dir(&self.repository, &self.project)
    }

    /// The file a person looks at for this register.
    #[must_use]
    pub fn file(&self) -> String {
        match self.form {
            Form::Buckets | Form::Split => layout::register_head(&self.dir()),
            Form::Legacy { .. } => layout::legacy_register_path(&self.repository, &self.project),
        }
    }

    /// The number the next new release gets.
    #[must_use]
    pub fn next_number(&self) -> u64 {
        self.last_number + 1
    }

    /// The release of `commit`, if registered.
    pub fn find_commit(
        &self,
        snap: &Snapshot<'_>,
        commit: &CommitSha,
    ) -> crate::exit::Result<Option<Entry>> {
        match &self.form {
            Form::Legacy { entries, .. } => {
                Ok(entries.iter().find(|e| e.commit == *commit).cloned())
            }
            Form::Buckets => bucket::find_commit(snap, &self.dir(), commit),
            Form::Split => {
                let dir = self.dir();
                let file = layout::register_commit(&dir, commit);
                match split::read_index(snap, &file)? {
                    Some(n) => Ok(Some(split::indexed_entry(snap, &dir, &file, n, |e| {
                        e.commit == *commit
                    })?)),
                    None => Ok(None),
                }
            }
        }
    }

    /// Release number `number`, if registered.
    pub fn get(&self, snap: &Snapshot<'_>, number: u64) -> crate::exit::Result<Option<Entry>> {
        match &self.form {
            Form::Legacy { entries, .. } => {
                Ok(entries.iter().find(|e| e.number == number).cloned())
            }
            Form::Buckets => bucket::read_entry(snap, &self.dir(), number),
            Form::Split => split::read_entry(snap, &self.dir(), number),
        }
    }

    /// The release `alias` names, if any.
    pub fn find_alias(
        &self,
        snap: &Snapshot<'_>,
        alias: &str,
    ) -> crate::exit::Result<Option<Entry>> {
        match &self.form {
            Form::Legacy { entries, .. } => Ok(entries
                .iter()
                .find(|e| e.aliases.iter().any(|a| a.alias == alias))
                .cloned()),
            Form::Buckets => bucket::find_alias(snap, &self.dir(), alias),
            Form::Split => {
                let dir = self.dir();
                let file = layout::register_alias(&dir, alias);
                match split::read_index(snap, &file)? {
                    Some(n) => Ok(Some(split::indexed_entry(snap, &dir, &file, n, |e| {
                        e.aliases.iter().any(|a| a.alias == alias)
                    })?)),
                    None => Ok(None),
                }
            }
        }
    }

    /// The registered commits starting with `prefix` (at least 7 hex digits), with numbers.
    fn with_prefix(
        &self,
        snap: &Snapshot<'_>,
        prefix: &str,
    ) -> crate::exit::Result<Vec<(CommitSha, u64)>> {
        match &self.form {
            Form::Legacy { entries, .. } => Ok(entries
                .iter()
                .filter(|e| e.commit.as_str().starts_with(prefix))
                .map(|e| (e.commit.clone(), e.number))
                .collect()),
            Form::Buckets => bucket::commits_with_prefix(snap, &self.dir(), prefix),
            Form::Split => split::commits_with_prefix(snap, &self.dir(), prefix),
        }
    }

    /// Resolves a release id as a person gives it: exact alias → number → unique commit
    /// prefix (at least 7 hex digits) → error.
    pub fn resolve(&self, snap: &Snapshot<'_>, id: &ReleaseSelector) -> crate::exit::Result<Entry> {
        let id = id.as_str();
        if let Some(e) = self.find_alias(snap, id)? {
            return Ok(e);
        }
        if let Ok(n) = id.parse::<u64>()
            && let Some(e) = self.get(snap, n)?
        {
            return Ok(e);
        }
        if id.len() >= 7 && crate::digest::is_lower_hex(id) {
            let mut found = self.with_prefix(snap, id)?;
            found.sort_by_key(|(_, n)| *n);
            match found.as_slice() {
                [(commit, _)] => {
                    if let Some(e) = self.find_commit(snap, commit)? {
                        return Ok(e);
                    }
                }
                [] => {}
                many => {
                    return Err(RegisterError::Ambiguous {
                        id: id.to_owned(),
                        project: self.full_name(),
                        candidates: many
                            .iter()
                            .map(|(c, n)| format!("{c} (release {n})"))
                            .collect::<Vec<_>>()
                            .join(", "),
                    }
                    .into());
                }
            }
        }
        Err(RegisterError::NotFound {
            id: id.to_owned(),
            project: self.full_name(),
        }
        .into())
    }

    /// Every release, by number (reads the whole register: `release list`, `check`,
    /// migration).
    pub fn entries(&self, snap: &Snapshot<'_>) -> crate::exit::Result<Vec<Entry>> {
        let mut out = match &self.form {
            Form::Legacy { entries, .. } => entries.clone(),
            Form::Buckets => bucket::all_entries(snap, &self.dir())?,
            Form::Split => {
                let dir = self.dir();
                let mut out = Vec::new();
                let paths = snap.list(&format!("{dir}/{}", layout::REGISTER_RELEASES))?;
                snap.prefetch(&paths)?;
                for path in paths {
                    let number = path
                        .rsplit('/')
                        .next()
                        .and_then(|n| n.strip_suffix(".yaml"))
                        .and_then(|n| n.parse::<u64>().ok());
                    let Some(number) = number.filter(|n| layout::register_entry(&dir, *n) == path)
                    else {
                        return Err(RegisterError::Invalid {
                            file: path,
                            reason:
                                "not an entry file name: expected _releases/<n / 1000>/<n>.yaml"
                                    .into(),
                        }
                        .into());
                    };
                    let bytes = snap.read(&path)?.unwrap_or_default();
                    out.push(split::parse_entry(&path, &bytes, number)?);
                }
                out
            }
        };
        out.sort_by_key(|e| e.number);
        Ok(out)
    }

    /// Fails when `alias` already names a release other than `commit`'s.
    pub fn check_alias_free(
        &self,
        snap: &Snapshot<'_>,
        alias: &str,
        commit: &CommitSha,
    ) -> crate::exit::Result<()> {
        match self.find_alias(snap, alias)? {
            Some(other) if other.commit != *commit => Err(RegisterError::AliasTaken {
                alias: alias.to_owned(),
                number: other.number,
                commit: other.commit.to_string(),
                project: self.full_name(),
                wanted: commit.to_string(),
            }
            .into()),
            _ => Ok(()),
        }
    }

    /// The edits that register `entry` as a new release (numbered [`Self::next_number`]).
    pub fn add(&self, snap: &Snapshot<'_>, entry: &Entry) -> crate::exit::Result<Vec<Edit>> {
        assert_eq!(
            entry.number,
            self.next_number(),
            "a new release takes the next number"
        );
        for a in &entry.aliases {
            self.check_alias_free(snap, &a.alias, &entry.commit)?;
        }
        match &self.form {
            Form::Buckets => {
                let mut changes = Changes::on(snap, &self.dir());
                changes.put_release(entry)?;
                Ok(self.with_head(changes, entry.number))
            }
            Form::Split | Form::Legacy { .. } => {
                let mut all = self.entries(snap)?;
                all.push(entry.clone());
                self.rewrite(snap, &all, entry.number)
            }
        }
    }

    /// Merges aliases and a trigger into the registered release of `commit`: the release as
    /// it is then and the edits, which are empty when nothing changed.
    pub fn merge(
        &self,
        snap: &Snapshot<'_>,
        commit: &CommitSha,
        aliases: &[Alias],
        trigger: Option<RegisteredTrigger>,
    ) -> crate::exit::Result<(Entry, Vec<Edit>)> {
        for a in aliases {
            self.check_alias_free(snap, &a.alias, commit)?;
        }
        let mut entry = self
            .find_commit(snap, commit)?
            .expect("merge is called for a registered commit");
        let mut added = Vec::new();
        for a in aliases {
            if !entry.aliases.iter().any(|x| x.alias == a.alias) {
                entry.aliases.push(a.clone());
                added.push(a.alias.clone());
            }
        }
        let mut changed = !added.is_empty();
        if let Some(t) = trigger
            && !entry.triggers.iter().any(|x| x.same_event(&t))
        {
            entry.triggers.push(t);
            changed = true;
        }
        if !changed {
            return Ok((entry, Vec::new()));
        }
        let edits = match &self.form {
            Form::Buckets => {
                let mut buckets = Changes::on(snap, &self.dir());
                for a in &added {
                    buckets.put_alias(a, entry.number)?;
                }
                buckets.update_entry(entry.clone())?;
                buckets.edits()
            }
            Form::Split | Form::Legacy { .. } => {
                let all: Vec<Entry> = self
                    .entries(snap)?
                    .into_iter()
                    .map(|e| {
                        if e.commit == *commit {
                            entry.clone()
                        } else {
                            e
                        }
                    })
                    .collect();
                self.rewrite(snap, &all, self.last_number)?
            }
        };
        Ok((entry, edits))
    }

    /// The edits that move a format 1 or format 2 register to format 3, or `None` when it
    /// is already there (migrating is idempotent).
    pub fn migration(&self, snap: &Snapshot<'_>) -> crate::exit::Result<Option<Vec<Edit>>> {
        match &self.form {
            Form::Legacy { file: true, .. } | Form::Split => Ok(Some(self.rewrite(
                snap,
                &self.entries(snap)?,
                self.last_number,
            )?)),
            Form::Legacy { file: false, .. } | Form::Buckets => Ok(None),
        }
    }

    /// `changes` and the head giving `last_number`.
    fn with_head(&self, changes: Changes<'_, '_>, last_number: u64) -> Vec<Edit> {
        let mut edits = changes.edits();
        edits.push(Edit {
            path: layout::register_head(&self.dir()),
            content: Some(head::bytes(&self.repository, &self.project, last_number)),
        });
        edits
    }

    /// All of `entries` in format 3, and the files of the format it was in removed.
    fn rewrite(
        &self,
        snap: &Snapshot<'_>,
        entries: &[Entry],
        last_number: u64,
    ) -> crate::exit::Result<Vec<Edit>> {
        if let Some(why) = legacy::duplicates(entries) {
            return Err(RegisterError::Invalid {
                file: self.file(),
                reason: format!("{why}: fix it by hand before releasectl migrates the register"),
            }
            .into());
        }
        let dir = self.dir();
        let mut changes = Changes::fresh(&dir);
        for e in entries {
            changes.put_release(e)?;
        }
        // A head below a registered number (only a hand edit makes one) is raised to it, so
        // the next registration cannot take a number in use.
        let highest = entries.iter().map(|e| e.number).max().unwrap_or(0);
        let mut edits = self.with_head(changes, last_number.max(highest));
        match self.form {
            Form::Legacy { file: true, .. } => edits.push(Edit {
                path: layout::legacy_register_path(&self.repository, &self.project),
                content: None,
            }),
            Form::Split => {
                // Whole directories go: a format 2 register of 100,000 releases is 300,000
                // files, and removing each would cost as much again.
                for (name, is_dir) in snap.entries(&dir)? {
                    if is_dir
                        && [
                            layout::REGISTER_RELEASES,
                            layout::REGISTER_COMMITS,
                            layout::REGISTER_ALIASES,
                        ]
                        .contains(&name.as_str())
                    {
                        edits.push(Edit {
                            path: format!("{dir}/{name}"),
                            content: None,
                        });
                    }
                }
            }
            Form::Legacy { file: false, .. } | Form::Buckets => {}
        }
        Ok(edits)
    }
}
