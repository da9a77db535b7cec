//! Checking a register as `check` does (docs/register.md §4): format 1 parses and has no
//! duplicates; format 2 has a head, every entry sits at the path its number gives, every
//! commit and alias of an entry is indexed to it, and every index file names an entry that
//! names it back (so numbers, commits and aliases are each unique).
//!
//! [`register`] checks a whole register (reads every file: an audit); [`changed`] checks
//! only the files one commit touched (what `check --range` and a `pre-receive` hook need).

use super::{Found, Register, legacy, split};
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
    let paths = |sub: &str| snap.list(&format!("{dir}/{sub}"));
    let mut files = paths(layout::REGISTER_RELEASES)?;
    files.extend(paths(layout::REGISTER_COMMITS)?);
    files.extend(paths(layout::REGISTER_ALIASES)?);
    files.push(layout::register_head(&dir));
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

/// Checks the files `paths` (any paths; those outside the register `found` are ignored) of a
/// format 2 register at `snap`. A removed file is checked through what is left.
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
        Some(bytes) => {
            match split::parse_head(&head_path, &bytes, &found.repository, &found.project) {
                Ok(h) => h,
                Err(e) => {
                    out.push(problem(&head_path, "a valid register head", e.to_string()));
                    return Ok(out);
                }
            }
        }
    };
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
