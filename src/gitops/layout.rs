//! The GitOps repository's layout (docs/design.md §4): the one place that knows which path
//! holds what, and the readers of the typed files at those paths.
//!
//! ```text
//! environments.yaml                                   the policy
//! releases/<repository>/<project>/_register.yaml     a project's register: its head (next number)
//! releases/<repository>/<project>/_entries/<d>/<b>.yaml  releases b..b+19 (format 3)
//! releases/<repository>/<project>/_commit-index/<c0c1>/<c0c1c2>  index: commit → number
//! releases/<repository>/<project>/_alias-index/<h0h1>/<h0h1h2>   index: alias → number
//! releases/<repository>/<project>/_releases|_commits|_aliases/…  format 2 (read, migrated)
//! releases/<repository>/<project>.yaml                format 1, one file (read, migrated)
//! <env>/apps/<repository>/<project>/release.yaml      the pointer: what runs in <env>
//! <env>/apps/<repository>/<project>/env.yaml          the environment's own objects
//! approvals/<env>/<repository>/<project>/<commit>.yaml approvals of one release for <env>
//! ```
//!
//! `<repository>` may have several segments (`company/monorepo`); every other segment is one.

use std::fmt::Write as _;

use super::remote::GitOps;
use super::snapshot::Snapshot;
use crate::approvals::ApprovalFile;
use crate::exit::InvalidInput;
use crate::ids::{CommitSha, Project, Repository};
use crate::pointer::{self, Pointer};
use crate::policy::{self, EnvName, Policy};

/// The environment policy, at the root.
pub const POLICY: &str = policy::FILE;
/// The directory of the release registers.
pub const REGISTERS: &str = "releases";
/// The pointer's file name in a project directory.
pub const POINTER_FILE: &str = "release.yaml";
/// The environment's own objects, next to the pointer.
pub const ENV_FILE: &str = "env.yaml";

/// The head of a register in its directory. Every name the register writes in its directory
/// starts with `_`, which no repository segment or project name can (the OCI name grammar), so
/// a register directory never collides with a repository nested below it.
pub const REGISTER_HEAD: &str = "_register.yaml";
/// The release entries of format 2, one file per release, below a register directory.
pub const REGISTER_RELEASES: &str = "_releases";
/// The commit index of format 2, one file per commit.
pub const REGISTER_COMMITS: &str = "_commits";
/// The alias index of format 2, one file per alias.
pub const REGISTER_ALIASES: &str = "_aliases";
/// Release entries per directory of `_releases/` (format 2).
pub const RELEASES_PER_DIR: u64 = 1000;
/// The release entries of format 3, a bucket file per 20 consecutive numbers.
pub const REGISTER_ENTRIES: &str = "_entries";
/// The commit index of format 3, a bucket file per 3-digit commit prefix.
pub const REGISTER_COMMIT_INDEX: &str = "_commit-index";
/// The alias index of format 3, a bucket file per 3-digit prefix of the alias's SHA-256.
pub const REGISTER_ALIAS_INDEX: &str = "_alias-index";
/// Releases per bucket file of `_entries/`.
pub const ENTRIES_PER_BUCKET: u64 = 20;
/// Bucket files per directory of `_entries/`.
pub const BUCKETS_PER_DIR: u64 = 100;

/// `releases/<repository>/<project>.yaml`: the one-file register (format 1), read and
/// migrated, no longer written (docs/register.md).
#[must_use]
pub fn legacy_register_path(repository: &Repository, project: &Project) -> String {
    format!("{REGISTERS}/{repository}/{project}.yaml")
}

/// `releases/<repository>/<project>`: the directory of a project's register (format 2).
#[must_use]
pub fn register_dir(repository: &Repository, project: &Project) -> String {
    format!("{REGISTERS}/{repository}/{project}")
}

/// `<dir>/_register.yaml`.
#[must_use]
pub fn register_head(dir: &str) -> String {
    format!("{dir}/{REGISTER_HEAD}")
}

/// `<dir>/_releases/<number / 1000>/<number>.yaml`.
#[must_use]
pub fn register_entry(dir: &str, number: u64) -> String {
    format!(
        "{dir}/{REGISTER_RELEASES}/{}/{number}.yaml",
        number / RELEASES_PER_DIR
    )
}

/// `<dir>/_entries/<d>/<b>.yaml`: the bucket holding release `number`, `b` the number rounded
/// down to a multiple of 20 and `d` rounded down to a multiple of 2,000 (42057 →
/// `_entries/42000/42040.yaml`). At 100,000 releases: 50 directories of 100 buckets.
#[must_use]
pub fn register_bucket(dir: &str, number: u64) -> String {
    let per_dir = ENTRIES_PER_BUCKET * BUCKETS_PER_DIR;
    format!(
        "{dir}/{REGISTER_ENTRIES}/{}/{}.yaml",
        number - number % per_dir,
        number - number % ENTRIES_PER_BUCKET
    )
}

/// The first number of the bucket file at `path` (as [`register_bucket`] names it), or `None`
/// when `path` is not a bucket file name of the register at `dir`.
#[must_use]
pub fn register_bucket_first(dir: &str, path: &str) -> Option<u64> {
    let name = path.rsplit('/').next()?.strip_suffix(".yaml")?;
    let first = name.parse::<u64>().ok()?;
    (first.to_string() == name
        && first % ENTRIES_PER_BUCKET == 0
        && register_bucket(dir, first) == path)
        .then_some(first)
}

/// `<dir>/_commit-index/<c0c1>/<c0c1c2>`: the index bucket of the commits starting with
/// `prefix` (at least 3 lower-case hex digits). 4,096 buckets in 256 directories: at 100,000
/// releases a bucket holds about 25 lines.
#[must_use]
pub fn register_commit_bucket(dir: &str, prefix: &str) -> String {
    format!(
        "{dir}/{REGISTER_COMMIT_INDEX}/{}/{}",
        &prefix[..2],
        &prefix[..3]
    )
}

/// `<dir>/_alias-index/<h0h1>/<h0h1h2>`, `h` the SHA-256 of the alias: aliases spread evenly
/// whatever they look like (`main-1`, `main-2`, …).
#[must_use]
pub fn register_alias_bucket(dir: &str, alias: &str) -> String {
    let h = crate::digest::sha256_hex(alias.as_bytes());
    format!("{dir}/{REGISTER_ALIAS_INDEX}/{}/{}", &h[..2], &h[..3])
}

/// `<dir>/_commits/<c0c1>`: the index directory of the commits starting with `prefix` (at
/// least 2 lower-case hex digits). One level of 256 directories: at 100,000 releases each
/// holds about 400 names, and a migration writes 256 trees, not tens of thousands.
#[must_use]
pub fn register_commit_dir(dir: &str, prefix: &str) -> String {
    format!("{dir}/{REGISTER_COMMITS}/{}", &prefix[..2])
}

/// `<dir>/_commits/<c0c1>/<commit>`.
#[must_use]
pub fn register_commit(dir: &str, commit: &CommitSha) -> String {
    format!("{}/{commit}", register_commit_dir(dir, commit.as_str()))
}

/// `<dir>/_aliases/<h0h1>/<alias, escaped>` (format 2), `h` the sha256 of the alias.
#[must_use]
pub fn register_alias(dir: &str, alias: &str) -> String {
    let h = crate::digest::sha256_hex(alias.as_bytes());
    format!("{dir}/{REGISTER_ALIASES}/{}/{}", &h[..2], alias_key(alias))
}

/// An alias as the register writes it in a file name (format 2) or an index line (format
/// 3): bytes outside `[a-z0-9._-]`, and a leading `.`, are written `%XX`, so every alias is
/// one safe file name, also on a case-insensitive checkout, and one word without spaces.
#[must_use]
pub fn alias_key(alias: &str) -> String {
    let mut name = String::with_capacity(alias.len());
    for (i, b) in alias.bytes().enumerate() {
        if b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || b == b'-'
            || b == b'_'
            || (b == b'.' && i > 0)
        {
            name.push(char::from(b));
        } else {
            let _ = write!(name, "%{b:02X}");
        }
    }
    name
}

/// `<env>/apps`: the pointers of one environment live below it.
#[must_use]
pub fn apps_dir(env: &str) -> String {
    format!("{env}/apps")
}

/// `<env>/apps/<repository>/<project>/release.yaml`.
#[must_use]
pub fn pointer_path(env: &EnvName, repository: &Repository, project: &Project) -> String {
    format!(
        "{}/{repository}/{project}/{POINTER_FILE}",
        apps_dir(env.as_str())
    )
}

/// The environment segment of a pointer path, or `None` when `path` is not a pointer.
#[must_use]
pub fn pointer_env(path: &str) -> Option<&str> {
    let mut parts = path.split('/');
    let env = parts.next()?;
    (parts.next()? == "apps"
        && path.ends_with(&format!("/{POINTER_FILE}"))
        && path.split('/').count() >= 5)
        .then_some(env)
}

/// `approvals/<env>/<repository>/<project>/<commit>.yaml`.
#[must_use]
pub fn approvals_path(
    env: &EnvName,
    repository: &Repository,
    project: &Project,
    commit: &CommitSha,
) -> String {
    format!("approvals/{env}/{repository}/{project}/{commit}.yaml")
}

/// The policy at `snap`; its absence is invalid input.
pub fn load_policy(gitops: &GitOps, snap: &Snapshot<'_>) -> crate::exit::Result<Policy> {
    let bytes = snap.read(POLICY)?.ok_or_else(|| {
        InvalidInput(format!(
            "{} has no {POLICY} on branch {}: expected the environment policy there",
            gitops.url(),
            gitops.branch()
        ))
    })?;
    Ok(policy::parse(POLICY, &bytes)?)
}

/// The pointer at `path`, if there is one.
pub fn load_pointer(snap: &Snapshot<'_>, path: &str) -> crate::exit::Result<Option<Pointer>> {
    match snap.read(path)? {
        Some(bytes) => Ok(Some(parse_pointer(path, &bytes)?)),
        None => Ok(None),
    }
}

/// Parses a pointer like [`pointer::parse`], with the same result: a pointer in the shape
/// releasectl writes ([`Pointer::render`]: these keys in this order, one per line, values
/// quoted without escapes or plain words) is read line by line; anything else, including
/// every invalid pointer, goes through the YAML parser. `status` reads thousands.
pub fn parse_pointer(path: &str, bytes: &[u8]) -> Result<Pointer, pointer::PointerError> {
    match fast_pointer(bytes) {
        Some(p) => Ok(p),
        None => pointer::parse(path, bytes),
    }
}

/// The value of a one-line scalar whose meaning in YAML is plainly this string: printable
/// ASCII in double quotes without escapes, or a plain word of `[a-z0-9._/-]` starting with
/// a letter that YAML 1.1 does not read as a boolean or null.
fn plain_scalar(v: &str) -> Option<&str> {
    if let Some(inner) = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        return inner
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
            .then_some(inner);
    }
    let word = v.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && v.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'/' | b'-')
        })
        && !matches!(
            v,
            "y" | "yes" | "n" | "no" | "true" | "false" | "on" | "off" | "null"
        );
    word.then_some(v)
}

/// `<indent><key>: <value>` with a key from `keys` (`None` for any plain key).
fn key_value<'a>(line: &'a str, indent: &str, keys: Option<&[&str]>) -> Option<(&'a str, &'a str)> {
    let (key, value) = line.strip_prefix(indent)?.split_once(": ")?;
    let known = match keys {
        Some(keys) => keys.contains(&key),
        None => plain_scalar(key) == Some(key),
    };
    known.then_some((key, plain_scalar(value)?))
}

/// [`parse_pointer`]'s line-by-line reader: `None` when the text is not in the written shape
/// or a value does not parse (the YAML parser then decides, and names the error).
fn fast_pointer(bytes: &[u8]) -> Option<Pointer> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text.strip_suffix('\n')?.split('\n').peekable();
    for want in [
        &format!("apiVersion: {}", pointer::API_VERSION)[..],
        &format!("kind: {}", pointer::KIND),
        "metadata:",
    ] {
        (lines.next()? == want).then_some(())?;
    }
    let (_, name) = key_value(lines.next()?, "  ", Some(&["name"]))?;
    let mut annotations = std::collections::BTreeMap::new();
    if lines.next_if_eq(&"  annotations:").is_some() {
        // An empty mapping is not one of strings: the YAML parser says so.
        key_value(lines.peek()?, "    ", None)?;
        while let Some((k, v)) = lines.peek().and_then(|l| key_value(l, "    ", None)) {
            annotations
                .insert(k.to_owned(), v.to_owned())
                .is_none()
                .then_some(())?;
            lines.next();
        }
    }
    (lines.next()? == "spec:").then_some(())?;
    let mut field = |key: &str| {
        lines
            .next_if(|l| key_value(l, "  ", Some(&[key])).is_some())
            .and_then(|l| key_value(l, "  ", Some(&[key])))
            .map(|(_, v)| v)
    };
    let (repository, project, commit) =
        (field("repository")?, field("project")?, field("release")?);
    let digest = field("digest").map(str::parse).transpose().ok()?;
    let registry = field("registry").map(str::parse).transpose().ok()?;
    if lines.next().is_some() || name.is_empty() {
        return None;
    }
    Some(Pointer {
        name: name.to_owned(),
        annotations,
        id: crate::ids::ReleaseId {
            repository: repository.parse().ok()?,
            project: project.parse().ok()?,
            commit: commit.parse().ok()?,
        },
        digest,
        registry,
    })
}

/// The approvals file at `path`, if there is one.
pub fn load_approvals(
    snap: &Snapshot<'_>,
    path: &str,
) -> crate::exit::Result<Option<ApprovalFile>> {
    match snap.read(path)? {
        Some(bytes) => Ok(Some(ApprovalFile::parse(path, &bytes)?)),
        None => Ok(None),
    }
}

/// The pointer paths of environment `env`, sorted.
pub fn pointers_in(snap: &Snapshot<'_>, env: &str) -> crate::exit::Result<Vec<String>> {
    let mut paths = snap.list(&apps_dir(env))?;
    paths.retain(|p| pointer_env(p) == Some(env));
    paths.sort();
    Ok(paths)
}

/// Every pointer path at `snap`, whatever the policy says about environments.
pub fn all_pointers(snap: &Snapshot<'_>) -> crate::exit::Result<Vec<String>> {
    let mut out = Vec::new();
    for top in snap.list_dirs() {
        out.extend(pointers_in(snap, &top)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_nest_the_repository_and_name_the_environment() {
        let env: EnvName = "prod".parse().unwrap();
        let repo: Repository = "company/monorepo".parse().unwrap();
        let project: Project = "auth-service".parse().unwrap();
        let pointer = pointer_path(&env, &repo, &project);
        assert_eq!(
            pointer,
            "prod/apps/company/monorepo/auth-service/release.yaml"
        );
        assert_eq!(pointer_env(&pointer), Some("prod"));
        let register = legacy_register_path(&repo, &project);
        assert_eq!(register, "releases/company/monorepo/auth-service.yaml");
        let dir = register_dir(&repo, &project);
        assert_eq!(
            register_entry(&dir, 42_017),
            "releases/company/monorepo/auth-service/_releases/42/42017.yaml"
        );
        assert_eq!(
            register_entry(&dir, 7),
            "releases/company/monorepo/auth-service/_releases/0/7.yaml"
        );
        let c: CommitSha = "abcdef1".repeat(6)[..40].parse().unwrap();
        assert_eq!(
            register_commit(&dir, &c),
            format!("releases/company/monorepo/auth-service/_commits/ab/{c}")
        );
        assert_eq!(
            register_bucket(&dir, 42_057),
            "releases/company/monorepo/auth-service/_entries/42000/42040.yaml"
        );
        assert_eq!(
            register_bucket(&dir, 7),
            "releases/company/monorepo/auth-service/_entries/0/0.yaml"
        );
        assert_eq!(
            register_bucket(&dir, 100),
            format!("{dir}/_entries/0/100.yaml")
        );
        assert_eq!(
            register_bucket_first(&dir, &register_bucket(&dir, 42_057)),
            Some(42_040)
        );
        for bad in [
            "_entries/0/42000.yaml",
            "_entries/40000/42001.yaml",
            "_entries/40000/042000.yaml",
        ] {
            assert_eq!(
                register_bucket_first(&dir, &format!("{dir}/{bad}")),
                None,
                "{bad}"
            );
        }
        assert_eq!(
            register_commit_bucket(&dir, c.as_str()),
            "releases/company/monorepo/auth-service/_commit-index/ab/abc"
        );
        let commit: CommitSha = "a".repeat(40).parse().unwrap();
        assert_eq!(
            approvals_path(&env, &repo, &project, &commit),
            format!("approvals/prod/company/monorepo/auth-service/{commit}.yaml")
        );
    }

    #[test]
    fn only_release_files_below_an_apps_directory_are_pointers() {
        assert_eq!(pointer_env("prod/apps/company/x/env.yaml"), None);
        assert_eq!(pointer_env("prod/apps/x/release.yaml"), None);
        assert_eq!(pointer_env("prod/other/company/x/release.yaml"), None);
        assert_eq!(pointer_env("releases/company/x.yaml"), None);
    }

    const WRITTEN: &str = "apiVersion: releasectl.dev/v1alpha1\nkind: ReleasePointer\nmetadata:\n  name: \"auth-service\"\n  annotations:\n    releasectl.dev/deployed-at: \"2026-11-20T10:00:00Z\"\n    releasectl.dev/release-number: \"42\"\nspec:\n  repository: \"company/monorepo\"\n  project: \"auth-service\"\n  release: \"0123456789abcdef0123456789abcdef01234567\"\n  digest: \"sha256:0000000000000000000000000000000000000000000000000000000000000000\"\n";

    #[test]
    fn the_line_reader_reads_what_releasectl_writes_as_the_yaml_parser_does() {
        let fast = fast_pointer(WRITTEN.as_bytes()).expect("the written shape is read fast");
        assert_eq!(fast, pointer::parse("p", WRITTEN.as_bytes()).unwrap());
        assert_eq!(fast.annotations.len(), 2);
        // Rendered again (another key order and quoting) and with plain words.
        let rendered = fast.render();
        assert_eq!(fast_pointer(rendered.as_bytes()), Some(fast.clone()));
        let plain = WRITTEN
            .replace("\"company/monorepo\"", "company/monorepo")
            .replace("name: \"auth-service\"", "name: auth-service");
        assert_eq!(
            fast_pointer(plain.as_bytes()),
            Some(pointer::parse("p", plain.as_bytes()).unwrap())
        );
    }

    #[test]
    fn anything_else_goes_to_the_yaml_parser_with_the_same_result() {
        let variants = [
            WRITTEN.replace("  name: \"auth-service\"", "  name: \"\""),
            WRITTEN.replace("\"42\"", "42"),
            WRITTEN.replace("\"42\"", "yes"),
            WRITTEN.replace("\"42\"", "\"4\\u0032\""),
            WRITTEN.replace("deployed-at", "release-number"),
            WRITTEN.replace("kind: ReleasePointer", "kind: Pointer"),
            WRITTEN.replace("project: \"auth-service\"", "project: \"Auth\""),
            WRITTEN.replace("  digest:", "  # c\n  digest:"),
            WRITTEN.replace("  digest:", "  extra: \"x\"\n  digest:"),
            WRITTEN.replace("    releasectl.dev/deployed-at: \"2026-11-20T10:00:00Z\"\n    releasectl.dev/release-number: \"42\"\n", ""),
            WRITTEN.replace('\n', "\r\n"),
            format!("{WRITTEN}---\n{WRITTEN}"),
            WRITTEN.trim_end().to_owned(),
        ];
        for v in &variants {
            let via_yaml = pointer::parse("p", v.as_bytes());
            assert_eq!(parse_pointer("p", v.as_bytes()), via_yaml, "{v}");
            if let Some(fast) = fast_pointer(v.as_bytes()) {
                assert_eq!(Ok(fast), via_yaml, "{v}");
            }
        }
        assert!(fast_pointer(variants[0].as_bytes()).is_none());
        assert!(
            fast_pointer(variants[4].as_bytes()).is_none(),
            "a duplicate key"
        );
        assert!(parse_pointer("p", variants[2].as_bytes()).is_err());
    }

    #[test]
    fn alias_files_are_escaped_and_spread_by_hash() {
        let a = register_alias("r", "v1.2.3");
        let b = register_alias("r", "V1.2.3");
        assert!(
            a.starts_with("r/_aliases/") && a.ends_with("/v1.2.3"),
            "{a}"
        );
        assert!(b.ends_with("/%561.2.3"), "{b}");
        assert!(register_alias("r", ".git").ends_with("/%2Egit"));
        assert!(register_alias("r", "a/b").ends_with("/a%2Fb"));
        assert_eq!(a.split('/').count(), 4);
        let h = crate::digest::sha256_hex(b"v1.2.3");
        assert_eq!(
            register_alias_bucket("r", "v1.2.3"),
            format!("r/_alias-index/{}/{}", &h[..2], &h[..3])
        );
        assert_eq!(alias_key("a b"), "a%20b");
    }
}
