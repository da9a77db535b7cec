//! The `ReleasePointer` (`release.yaml`, docs/design.md §4): which release runs in one environment.
//!
//! Parsing is strict because a lenient parser is how a typo becomes a deployment: unknown
//! `spec` fields, a wrong `apiVersion`/`kind`, a malformed SHA or digest are errors naming the
//! file, the field, the value and what was expected ([`crate::yaml`]'s walker). YAML budgets
//! (alias expansion, depth, size) are [`crate::yaml::options`], so an alias bomb fails fast.

use std::collections::BTreeMap;

use crate::digest::Digest;
use crate::ids::{CommitSha, Project, ReleaseId, Repository};
use crate::oci::RegistryBase;
use crate::yaml::{FieldError, Node};

pub const API_VERSION: &str = "releasectl.dev/v1alpha1";
pub const KIND: &str = "ReleasePointer";
/// A pointer is a few hundred bytes; anything near this is not a pointer.
pub const MAX_POINTER_BYTES: usize = 64 * 1024;

const SPEC_FIELDS: &[&str] = &["repository", "project", "release", "digest", "registry"];
const TOP_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "spec"];
const METADATA_FIELDS: &[&str] = &["name", "namespace", "annotations", "labels"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    pub name: String,
    pub annotations: BTreeMap<String, String>,
    pub id: ReleaseId,
    pub digest: Option<Digest>,
    pub registry: Option<RegistryBase>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PointerError {
    #[error("{file}: {size} bytes is too large for a ReleasePointer (limit {MAX_POINTER_BYTES})")]
    TooLarge { file: String, size: usize },
    #[error("{file}: not valid YAML: {reason}")]
    Yaml { file: String, reason: String },
    #[error("{file}: expected one YAML document holding a ReleasePointer, found {count}")]
    DocumentCount { file: String, count: usize },
    #[error(transparent)]
    Field(#[from] FieldError),
}

/// Annotation keys written by `deploy`, `promote` and `rollback`.
pub const ANN_NUMBER: &str = "releasectl.dev/release-number";
pub const ANN_ALIASES: &str = "releasectl.dev/aliases";
pub const ANN_DEPLOYED_BY: &str = "releasectl.dev/deployed-by";
pub const ANN_DEPLOYED_AT: &str = "releasectl.dev/deployed-at";
/// Commits that may not return to this environment until unblocked (`rollback --block`).
pub const ANN_BLOCKED: &str = "releasectl.dev/blocked-releases";
/// The pointer's recent stays, newest first (`deploy::record`, docs/format.md §11), written
/// with every pointer write so the rules that read the past need not walk commits.
pub const ANN_HISTORY: &str = "releasectl.dev/history";

impl Pointer {
    /// The commits blocked from this environment.
    #[must_use]
    pub fn blocked(&self) -> Vec<String> {
        self.annotations
            .get(ANN_BLOCKED)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The pointer file, as written into the GitOps repository.
    #[must_use]
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut out = format!(
            "apiVersion: {API_VERSION}\nkind: {KIND}\nmetadata:\n  name: {}\n",
            serde_json::Value::String(self.name.clone())
        );
        if !self.annotations.is_empty() {
            out.push_str("  annotations:\n");
            for (k, v) in &self.annotations {
                // JSON strings are valid YAML double-quoted scalars.
                let _ = writeln!(out, "    {k}: {}", serde_json::Value::String(v.clone()));
            }
        }
        // Every value is quoted: an all-digit commit (or a project named `123`) would
        // otherwise read back as a number.
        let q = |v: &str| serde_json::Value::String(v.to_owned());
        let _ = write!(
            out,
            "spec:\n  repository: {}\n  project: {}\n  release: {}\n",
            q(self.id.repository.as_str()),
            q(self.id.project.as_str()),
            q(self.id.commit.as_str())
        );
        if let Some(d) = &self.digest {
            let _ = writeln!(out, "  digest: {}", q(d.as_str()));
        }
        if let Some(r) = &self.registry {
            let _ = writeln!(out, "  registry: {}", q(&r.to_string_value()));
        }
        out
    }
}

/// Parses a pointer. `file` names it in errors.
pub fn parse(file: &str, bytes: &[u8]) -> Result<Pointer, PointerError> {
    if bytes.len() > MAX_POINTER_BYTES {
        return Err(PointerError::TooLarge {
            file: file.to_owned(),
            size: bytes.len(),
        });
    }
    let docs = crate::yaml::documents(bytes).map_err(|e| PointerError::Yaml {
        file: file.to_owned(),
        reason: e.to_string(),
    })?;
    let [doc] = docs.as_slice() else {
        return Err(PointerError::DocumentCount {
            file: file.to_owned(),
            count: docs.len(),
        });
    };
    let top = Node::root(file, doc).mapping(TOP_FIELDS)?;
    let constant = |key: &str, want: &str| -> Result<(), FieldError> {
        let node = top.required(key, want)?;
        if node.str(want)? == want {
            Ok(())
        } else {
            Err(node.invalid(want))
        }
    };
    constant("apiVersion", API_VERSION)?;
    constant("kind", KIND)?;
    let metadata = top
        .required("metadata", "a mapping with name")?
        .mapping(METADATA_FIELDS)?;
    let name = metadata.required("name", "a non-empty string")?;
    if name.str("a non-empty string")?.is_empty() {
        return Err(name.invalid("a non-empty string").into());
    }
    let mut annotations = BTreeMap::new();
    if let Some(a) = metadata.get("annotations") {
        for (k, v) in a.entries("a mapping of strings")? {
            annotations.insert(k.to_owned(), v.str("a string")?.to_owned());
        }
    }
    let spec = top
        .required("spec", "a mapping with repository, project, release")?
        .mapping(SPEC_FIELDS)?;
    let repository: Repository = parsed(
        &spec.required("repository", "a repository like company/monorepo")?,
        "'/'-separated segments of [a-z0-9]+([._-][a-z0-9]+)*",
    )?;
    let project: Project = parsed(
        &spec.required("project", "a project name like auth-service")?,
        "[a-z0-9]+([._-][a-z0-9]+)*",
    )?;
    let commit: CommitSha = parsed(
        &spec.required("release", "the release's commit SHA")?,
        "a commit SHA of 40 lower-case hex digits",
    )?;
    let digest: Option<Digest> = spec
        .get("digest")
        .map(|n| parsed(&n, "sha256:<64 lower-case hex digits>"))
        .transpose()?;
    let registry: Option<RegistryBase> = spec
        .get("registry")
        .map(|n| parsed(&n, "host[:port][/prefix] or oci:PATH"))
        .transpose()?;
    Ok(Pointer {
        name: name.str("a non-empty string")?.to_owned(),
        annotations,
        id: ReleaseId {
            repository,
            project,
            commit,
        },
        digest,
        registry,
    })
}

/// A string field parsed into `T`; `expected` describes both the type and the syntax.
fn parsed<T: std::str::FromStr>(node: &Node<'_>, expected: &str) -> Result<T, FieldError> {
    node.str(expected)?
        .parse()
        .map_err(|_| node.invalid(expected))
}

crate::exit_class!(PointerError => Usage);

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: releasectl.dev/v1alpha1
kind: ReleasePointer
metadata:
  name: auth-service
  annotations:
    releasectl.dev/release-number: \"42\"
spec:
  repository: company/monorepo
  project: auth-service
  release: 0123456789abcdef0123456789abcdef01234567
  digest: sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
  registry: registry.example.com
";

    #[test]
    fn a_complete_pointer_parses() {
        let p = parse("release.yaml", GOOD.as_bytes()).unwrap();
        assert_eq!(p.name, "auth-service");
        assert_eq!(
            p.id.to_string(),
            "company/monorepo/auth-service/0123456789abcdef0123456789abcdef01234567"
        );
        assert_eq!(p.annotations["releasectl.dev/release-number"], "42");
        assert!(p.digest.is_some() && p.registry.is_some());
    }

    fn err(text: &str) -> String {
        parse("apps/x/release.yaml", text.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn each_bad_field_is_named_with_its_value_and_expectation() {
        let m = err(&GOOD.replace("v1alpha1", "v2"));
        assert!(
            m.contains("apiVersion") && m.contains("releasectl.dev/v2") && m.contains(API_VERSION),
            "{m}"
        );
        let m = err(&GOOD.replace("kind: ReleasePointer", "kind: Deployment"));
        assert!(m.contains("kind") && m.contains("Deployment"), "{m}");
        let m = err(&GOOD.replace("0123456789abcdef0123456789abcdef01234567", "main"));
        assert!(
            m.contains("spec.release") && m.contains("\"main\"") && m.contains("40"),
            "{m}"
        );
        let m = err(&GOOD.replace("sha256:e3b0", "sha256:zzzz"));
        assert!(
            m.contains("spec.digest") && m.contains("sha256:zzzz"),
            "{m}"
        );
        let m = err(&GOOD.replace("  registry: registry.example.com", "  registyr: x"));
        assert!(
            m.contains("unknown field spec.registyr: \"registyr\" is not one of"),
            "{m}"
        );
        let m = err(&GOOD.replace("  project: auth-service\n", ""));
        assert!(m.contains("spec.project is missing"), "{m}");
        assert!(m.starts_with("apps/x/release.yaml: "), "{m}");
    }

    #[test]
    fn a_rendered_pointer_parses_back_to_itself() {
        let mut p = parse("release.yaml", GOOD.as_bytes()).unwrap();
        p.annotations.insert(ANN_BLOCKED.into(), "a,b".into());
        p.annotations.insert(ANN_ALIASES.into(), "v1: \"x\"".into());
        let back = parse("release.yaml", p.render().as_bytes()).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.blocked(), vec!["a", "b"]);
        // An all-digit commit and a numeric project name stay strings.
        p.id.commit = "1".repeat(40).parse().unwrap();
        p.id.project = "123".parse().unwrap();
        p.name = "123".into();
        assert_eq!(parse("release.yaml", p.render().as_bytes()).unwrap(), p);
    }

    #[test]
    fn hostile_keys_and_values_cannot_add_lines_to_the_message() {
        // Found by the `pointer` fuzz target: a key holding newlines forged a second log line.
        let m = err("\"x\\nreleasectl error: all good\": 1\n");
        assert_eq!(m.lines().count(), 1, "{m}");
        let m = err(&GOOD.replace("release: 0123456789abcdef0123456789abcdef01234567", "release: \"a\\nb ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü ü\""));
        assert_eq!(m.lines().count(), 1, "{m}");
    }

    #[test]
    fn not_yaml_and_several_documents_are_refused() {
        assert!(err("a: [").contains("not valid YAML"));
        assert!(err(&format!("{GOOD}---\n{GOOD}")).contains("found 2"));
        assert!(err("").contains("found 0"));
    }
}
