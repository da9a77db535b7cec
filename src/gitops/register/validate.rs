//! Checking a register as `check` does (docs/register.md §4): format 1 parses and has no
//! duplicates; formats 2 and 3 have a head, every entry sits where its number puts it, every
//! commit and alias of an entry is indexed to it, and every index file (format 2) or line
//! (format 3) names an entry that names it back (so numbers, commits and aliases are each
//! unique).
//!
//! [`register`] checks a whole register (reads every file: an audit); [`changed`] checks
//! only the files one commit touched (what `check --range` and a `pre-receive` hook need).

use std::collections::HashMap;

use super::bucket::{self, Index, Line};
use super::head::{self, Format, Head};
use super::{Entry, Found, Register, legacy, split};
use crate::gitops::layout;
use crate::gitops::snapshot::Snapshot;
use crate::ids::CommitSha;

/// One thing wrong with a register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub required: String,
    pub actual: String,
}

fn problem(file: &str, required: impl Into<String>, actual: impl Into<String>) -> Problem {
    Problem {
        file: file.to_owned(),
        required: required.into(),
        actual: actual.into(),
    }
}

/// Checks the whole register `found` at `snap`.
pub fn register(snap: &Snapshot<'_>, found: &Found) -> crate::exit::Result<Vec<Problem>> {
    let (repository, project) = (&found.repository, &found.project);
    if !found.split {
        let path = layout::legacy_register_path(repository, project);
        let bytes = snap.read(&path)?.unwrap_or_default();
        return Ok(
            match legacy::LegacyRegister::parse(&path, &bytes, repository, project) {
                Err(e) => vec![problem(&path, "a valid ReleaseRegister", e.to_string())],
                Ok(old) => legacy::duplicates(&old.releases)
                    .map(|why| problem(&path, "unique numbers, commits and aliases", why))
                    .into_iter()
                    .collect(),
            },
        );
    }
    let dir = layout::register_dir(repository, project);
    let files = if head_format(snap, found)? == Some(Format::Buckets) {
        // Every file below the directory: a format 2 file left next to format 3 is found too.
        let mut files = Vec::new();
        for (name, is_dir) in snap.entries(&dir)? {
            if is_dir && name.starts_with('_') {
                files.extend(snap.list(&format!("{dir}/{name}"))?);
            } else if !is_dir {
                files.push(format!("{dir}/{name}"));
            }
        }
        files
    } else {
        let paths = |sub: &str| snap.list(&format!("{dir}/{sub}"));
        let mut files = paths(layout::REGISTER_RELEASES)?;
        files.extend(paths(layout::REGISTER_COMMITS)?);
        files.extend(paths(layout::REGISTER_ALIASES)?);
        files.push(layout::register_head(&dir));
        files
    };
    snap.prefetch(&files)?;
    let mut out = changed(snap, found, &files)?;
    if snap
        .read(&layout::legacy_register_path(repository, project))?
        .is_some()
    {
        out.push(problem(
            &layout::legacy_register_path(repository, project),
            format!("no format 1 file next to {}", layout::register_head(&dir)),
            "both formats present",
        ));
    }
    Ok(out)
}

/// The format of the head of `found`, when it has a valid one.
fn head_format(snap: &Snapshot<'_>, found: &Found) -> crate::exit::Result<Option<Format>> {
    let file = layout::register_head(&layout::register_dir(&found.repository, &found.project));
    Ok(snap.read(&file)?.and_then(|bytes| {
        head::parse(&file, &bytes, &found.repository, &found.project)
            .ok()
            .map(|h| h.format())
    }))
}

/// Checks the files `paths` (any paths; those outside the register `found` are ignored) of a
/// register directory at `snap`. A removed file is checked through what is left.
pub fn changed(
    snap: &Snapshot<'_>,
    found: &Found,
    paths: &[String],
) -> crate::exit::Result<Vec<Problem>> {
    let dir = layout::register_dir(&found.repository, &found.project);
    let head_path = layout::register_head(&dir);
    let mut out = Vec::new();
    let head = match snap.read(&head_path)? {
        None => {
            out.push(problem(&head_path, "the register's head", "missing"));
            return Ok(out);
        }
        Some(bytes) => match head::parse(&head_path, &bytes, &found.repository, &found.project) {
            Ok(h) => h,
            Err(e) => {
                out.push(problem(&head_path, "a valid register head", e.to_string()));
                return Ok(out);
            }
        },
    };
    if head.format() == Format::Buckets {
        out.extend(changed_buckets(snap, &dir, &head, paths)?);
        return Ok(out);
    }
    let reg =
        Register::open(snap, &found.repository, &found.project)?.expect("the head was read above");
    let prefix = format!("{dir}/");
    for path in paths {
        let Some(rest) = path.strip_prefix(&prefix) else {
            continue;
        };
        let Some(bytes) = snap.read(path)? else {
            continue;
        };
        let (kind, name) = match rest.split_once('/') {
            Some((kind, _)) => (kind, rest.rsplit('/').next().unwrap_or_default()),
            None => continue,
        };
        match kind {
            layout::REGISTER_RELEASES => {
                let number = name
                    .strip_suffix(".yaml")
                    .and_then(|n| n.parse::<u64>().ok())
                    .filter(|n| layout::register_entry(&dir, *n) == *path);
                let Some(number) = number else {
                    out.push(problem(
                        path,
                        "_releases/<n / 1000>/<n>.yaml",
                        "another name",
                    ));
                    continue;
                };
                let entry = match split::parse_entry(path, &bytes, number) {
                    Ok(e) => e,
                    Err(e) => {
                        out.push(problem(path, "a valid register entry", e.to_string()));
                        continue;
                    }
                };
                if number > head.last_number {
                    out.push(problem(
                        path,
                        format!("a number up to last_number {}", head.last_number),
                        number.to_string(),
                    ));
                }
                let commit_file = layout::register_commit(&dir, &entry.commit);
                expect_index(snap, &mut out, &commit_file, number)?;
                for a in &entry.aliases {
                    expect_index(
                        snap,
                        &mut out,
                        &layout::register_alias(&dir, &a.alias),
                        number,
                    )?;
                }
            }
            layout::REGISTER_COMMITS | layout::REGISTER_ALIASES => {
                let number = match split::parse_index(path, &bytes) {
                    Ok(n) => n,
                    Err(e) => {
                        out.push(problem(path, "a release number", e.to_string()));
                        continue;
                    }
                };
                let entry = reg.get(snap, number);
                let names_it = |e: &super::Entry| {
                    if kind == layout::REGISTER_COMMITS {
                        name.parse::<CommitSha>().is_ok_and(|c| {
                            layout::register_commit(&dir, &c) == *path && e.commit == c
                        })
                    } else {
                        e.aliases
                            .iter()
                            .any(|a| layout::register_alias(&dir, &a.alias) == *path)
                    }
                };
                match entry {
                    Ok(Some(e)) if names_it(&e) => {}
                    Ok(Some(_)) => out.push(problem(
                        path,
                        format!("release {number} to name this {}", &kind[1..kind.len() - 1]),
                        "it does not",
                    )),
                    Ok(None) => out.push(problem(
                        path,
                        format!("release {number} to exist"),
                        format!("no {}", layout::register_entry(&dir, number)),
                    )),
                    Err(e) => out.push(problem(
                        path,
                        format!("a valid release {number}"),
                        format!("{e:#}"),
                    )),
                }
            }
            _ => {
                if path != &head_path {
                    out.push(problem(
                        path,
                        "a file of the register layout",
                        "an unknown file",
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// The buckets a format 3 check reads, each parsed once (a whole register is read in one
/// pass, not once per line that points into a bucket).
struct Buckets<'a, 's> {
    snap: &'a Snapshot<'s>,
    dir: &'a str,
    entries: HashMap<String, Result<Vec<Entry>, String>>,
    index: HashMap<String, Result<Vec<Line>, String>>,
}

impl Buckets<'_, '_> {
    /// The bucket of release `number` (`Err`: why it cannot be read).
    fn entries(&mut self, number: u64) -> crate::exit::Result<&Result<Vec<Entry>, String>> {
        let file = layout::register_bucket(self.dir, number);
        if !self.entries.contains_key(&file) {
            let got = match self.snap.read(&file)? {
                None => Ok(Vec::new()),
                Some(bytes) => bucket::parse_entries(
                    &file,
                    &bytes,
                    number - number % layout::ENTRIES_PER_BUCKET,
                )
                .map_err(|e| e.to_string()),
            };
            self.entries.insert(file.clone(), got);
        }
        Ok(&self.entries[&file])
    }

    /// The lines of index bucket `file` (`Err`: why it cannot be read).
    fn index(
        &mut self,
        file: &str,
        index: Index,
    ) -> crate::exit::Result<&Result<Vec<Line>, String>> {
        if !self.index.contains_key(file) {
            let got = match self.snap.read(file)? {
                None => Ok(Vec::new()),
                Some(bytes) => bucket::parse_index(file, &bytes, index).map_err(|e| e.to_string()),
            };
            self.index.insert(file.to_owned(), got);
        }
        Ok(&self.index[file])
    }

    /// A problem unless the index bucket `file` has `key` naming release `number`.
    fn expect_line(
        &mut self,
        out: &mut Vec<Problem>,
        file: &str,
        index: Index,
        key: &str,
        number: u64,
    ) -> crate::exit::Result<()> {
        let required = format!("a line `{} {number}`", crate::text::excerpt(key));
        match self.index(file, index)? {
            Err(why) => out.push(problem(file, "a valid index bucket", why.clone())),
            Ok(lines) => match bucket::lookup(lines, key) {
                Some(n) if n == number => {}
                Some(n) => out.push(problem(file, required, format!("release {n}"))),
                None => out.push(problem(file, required, "missing")),
            },
        }
        Ok(())
    }
}

/// The last path segment when it is `<3 lower-case hex digits>`, the name of an index bucket.
fn bucket_prefix(path: &str) -> Option<&str> {
    let name = path.rsplit('/').next()?;
    (name.len() == 3 && crate::digest::is_lower_hex(name)).then_some(name)
}

/// [`changed`] for a register of format 3.
fn changed_buckets(
    snap: &Snapshot<'_>,
    dir: &str,
    head: &Head,
    paths: &[String],
) -> crate::exit::Result<Vec<Problem>> {
    let mut out = Vec::new();
    let mut buckets = Buckets {
        snap,
        dir,
        entries: HashMap::new(),
        index: HashMap::new(),
    };
    let prefix = format!("{dir}/");
    for path in paths {
        let Some(rest) = path.strip_prefix(&prefix) else {
            continue;
        };
        if rest == layout::REGISTER_HEAD || snap.read(path)?.is_none() {
            continue;
        }
        let kind = rest.split('/').next().unwrap_or_default();
        match kind {
            layout::REGISTER_ENTRIES => {
                let Some(first) = layout::register_bucket_first(dir, path) else {
                    out.push(problem(
                        path,
                        "_entries/<n rounded down to 2000>/<n rounded down to 20>.yaml",
                        "another name",
                    ));
                    continue;
                };
                let entries = match buckets.entries(first)? {
                    Ok(e) => e.clone(),
                    Err(why) => {
                        out.push(problem(path, "a valid entry bucket", why.clone()));
                        continue;
                    }
                };
                for entry in entries {
                    if entry.number > head.last_number {
                        out.push(problem(
                            path,
                            format!("numbers up to last_number {}", head.last_number),
                            format!("release {}", entry.number),
                        ));
                    }
                    let commit = entry.commit.as_str();
                    let file = layout::register_commit_bucket(dir, commit);
                    buckets.expect_line(&mut out, &file, Index::Commit, commit, entry.number)?;
                    for a in &entry.aliases {
                        let file = layout::register_alias_bucket(dir, &a.alias);
                        let key = layout::alias_key(&a.alias);
                        buckets.expect_line(&mut out, &file, Index::Alias, &key, entry.number)?;
                    }
                }
            }
            layout::REGISTER_COMMIT_INDEX | layout::REGISTER_ALIAS_INDEX => {
                let index = if kind == layout::REGISTER_COMMIT_INDEX {
                    Index::Commit
                } else {
                    Index::Alias
                };
                let named = bucket_prefix(path)
                    .is_some_and(|p| format!("{dir}/{kind}/{}/{p}", &p[..2]) == *path);
                if !named {
                    out.push(problem(
                        path,
                        format!("{kind}/<2 hex digits>/<the same and a third>"),
                        "another name",
                    ));
                    continue;
                }
                let lines = match buckets.index(path, index)? {
                    Ok(l) => l.clone(),
                    Err(why) => {
                        out.push(problem(path, "a valid index bucket", why.clone()));
                        continue;
                    }
                };
                for (key, number) in lines {
                    let what = format!(
                        "release {number} to name {} {} with its {} in this bucket",
                        index.noun(),
                        crate::text::excerpt(&key),
                        index.noun()
                    );
                    let found = match buckets.entries(number)? {
                        Ok(entries) => entries.iter().find(|e| e.number == number).cloned(),
                        Err(why) => {
                            out.push(problem(path, what, why.clone()));
                            continue;
                        }
                    };
                    let Some(entry) = found else {
                        out.push(problem(
                            path,
                            what,
                            format!(
                                "no release {number} in {}",
                                layout::register_bucket(dir, number)
                            ),
                        ));
                        continue;
                    };
                    let names_it = match index {
                        Index::Commit => {
                            entry.commit.as_str() == key
                                && layout::register_commit_bucket(dir, &key) == *path
                        }
                        Index::Alias => entry.aliases.iter().any(|a| {
                            layout::alias_key(&a.alias) == key
                                && layout::register_alias_bucket(dir, &a.alias) == *path
                        }),
                    };
                    if !names_it {
                        out.push(problem(path, what, "it does not"));
                    }
                }
            }
            layout::REGISTER_RELEASES | layout::REGISTER_COMMITS | layout::REGISTER_ALIASES => {
                out.push(problem(
                    path,
                    format!("no format 2 file next to {}", layout::register_head(dir)),
                    "a format 2 file in a format 3 register",
                ));
            }
            _ => out.push(problem(
                path,
                "a file of the register layout",
                "an unknown file",
            )),
        }
    }
    Ok(out)
}

fn expect_index(
    snap: &Snapshot<'_>,
    out: &mut Vec<Problem>,
    file: &str,
    number: u64,
) -> crate::exit::Result<()> {
    match snap.read(file)? {
        None => out.push(problem(
            file,
            format!("an index file naming release {number}"),
            "missing",
        )),
        Some(bytes) => match split::parse_index(file, &bytes) {
            Ok(n) if n == number => {}
            Ok(n) => out.push(problem(
                file,
                format!("release {number}"),
                format!("release {n}"),
            )),
            Err(e) => out.push(problem(file, "a release number", e.to_string())),
        },
    }
    Ok(())
}

/// The register a repository path belongs to (`releases/…`), if any.
#[must_use]
pub fn register_of(path: &str) -> Option<Found> {
    let rest = path.strip_prefix(layout::REGISTERS)?.strip_prefix('/')?;
    let (full, split) = match rest.split_once("/_") {
        Some((dir, _)) => (dir, true),
        None => (rest.strip_suffix(".yaml")?, false),
    };
    let (repository, project) = full.rsplit_once('/')?;
    Some(Found {
        repository: repository.parse().ok()?,
        project: project.parse().ok()?,
        split,
    })
}

/// Checks the registers that the paths `changed` (one commit's) touch, at that commit:
/// format 2 through the changed files only, format 1 whole (one file).
pub fn changed_registers(
    snap: &Snapshot<'_>,
    paths: &[String],
) -> crate::exit::Result<Vec<Problem>> {
    let mut seen: Vec<Found> = Vec::new();
    for p in paths {
        if let Some(f) = register_of(p)
            && !seen.contains(&f)
        {
            seen.push(f);
        }
    }
    let mut out = Vec::new();
    for f in &seen {
        if f.split {
            if snap
                .read(&layout::register_head(&layout::register_dir(
                    &f.repository,
                    &f.project,
                )))?
                .is_some()
                || paths.iter().any(|p| {
                    register_of(p).as_ref() == Some(f) && snap.read(p).ok().flatten().is_some()
                })
            {
                out.extend(changed(snap, f, paths)?);
            }
        } else if snap
            .read(&layout::legacy_register_path(&f.repository, &f.project))?
            .is_some()
        {
            out.extend(register(snap, f)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_names_its_register_in_either_format() {
        let f = register_of("releases/company/monorepo/auth-service/_commits/ab/cd/x").unwrap();
        assert_eq!(
            (f.repository.as_str(), f.project.as_str(), f.split),
            ("company/monorepo", "auth-service", true)
        );
        let f = register_of("releases/company/monorepo/auth-service.yaml").unwrap();
        assert_eq!(
            (f.repository.as_str(), f.project.as_str(), f.split),
            ("company/monorepo", "auth-service", false)
        );
        assert_eq!(register_of("releases/auth-service.yaml"), None);
        assert_eq!(register_of("prod/apps/company/x/release.yaml"), None);
        assert_eq!(register_of("releases/company/x/README"), None);
    }
}
