//! The `ReleasePointer` (`release.yaml`, DESIGN.md §4): which release runs in one environment.
//!
//! Parsing is strict because a lenient parser is how a typo becomes a deployment: unknown
//! `spec` fields, a wrong `apiVersion`/`kind`, a malformed SHA or digest are errors naming the
//! file, the field, the value and what was expected. YAML budgets (alias expansion, depth,
//! size) come from [`crate::manifests::yaml_options`], so an alias bomb fails fast.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::digest::Digest;
use crate::ids::{CommitSha, Project, ReleaseId, Repository};
use crate::oci::RegistryBase;

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
    #[error("{file}: {field} is missing: expected {expected}")]
    Missing {
        file: String,
        field: String,
        expected: &'static str,
    },
    #[error("{file}: unknown field {field}: expected one of {allowed}")]
    UnknownField {
        file: String,
        field: String,
        allowed: String,
    },
    #[error("{file}: {field} is {value}: expected {expected}")]
    Invalid {
        file: String,
        field: String,
        value: String,
        expected: String,
    },
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{}\"", crate::error::printable(s, 160)),
        other => crate::error::printable(&other.to_string(), 160),
    }
}

struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn invalid(&self, field: &str, value: &Value, expected: impl Into<String>) -> PointerError {
        PointerError::Invalid {
            file: self.file.to_owned(),
            field: field.to_owned(),
            value: describe(value),
            expected: expected.into(),
        }
    }

    fn object<'v>(
        &self,
        v: &'v Value,
        field: &str,
        allowed: &[&str],
    ) -> Result<&'v serde_json::Map<String, Value>, PointerError> {
        let map = v
            .as_object()
            .ok_or_else(|| self.invalid(field, v, "a mapping"))?;
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(PointerError::UnknownField {
                file: self.file.to_owned(),
                field: if field.is_empty() {
                    crate::error::printable(unknown, 80)
                } else {
                    format!("{field}.{}", crate::error::printable(unknown, 80))
                },
                allowed: allowed.join(", "),
            });
        }
        Ok(map)
    }

    fn string<'v>(
        &self,
        map: &'v serde_json::Map<String, Value>,
        field: &str,
        key: &str,
        expected: &'static str,
    ) -> Result<Option<&'v str>, PointerError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.invalid(field, other, expected)),
        }
    }

    fn required<'v>(
        &self,
        map: &'v serde_json::Map<String, Value>,
        field: &str,
        key: &str,
        expected: &'static str,
    ) -> Result<&'v str, PointerError> {
        self.string(map, field, key, expected)?
            .ok_or_else(|| PointerError::Missing {
                file: self.file.to_owned(),
                field: field.to_owned(),
                expected,
            })
    }
}

/// Annotation keys written by `deploy`, `promote` and `rollback`.
pub const ANN_NUMBER: &str = "releasectl.dev/release-number";
pub const ANN_ALIASES: &str = "releasectl.dev/aliases";
pub const ANN_DEPLOYED_BY: &str = "releasectl.dev/deployed-by";
pub const ANN_DEPLOYED_AT: &str = "releasectl.dev/deployed-at";
/// Commits that may not return to this environment until unblocked (`rollback --block`).
pub const ANN_BLOCKED: &str = "releasectl.dev/blocked-releases";

/// Where the pointer of `id`'s project lives in environment `env`.
#[must_use]
pub fn path(
    env: &str,
    repository: &crate::ids::Repository,
    project: &crate::ids::Project,
) -> String {
    format!("{env}/apps/{repository}/{project}/release.yaml")
}

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
    let cx = Ctx { file };
    if bytes.len() > MAX_POINTER_BYTES {
        return Err(PointerError::TooLarge {
            file: file.to_owned(),
            size: bytes.len(),
        });
    }
    let docs = crate::manifests::yaml_documents(bytes).map_err(|reason| PointerError::Yaml {
        file: file.to_owned(),
        reason,
    })?;
    let [doc] = docs.as_slice() else {
        return Err(PointerError::DocumentCount {
            file: file.to_owned(),
            count: docs.len(),
        });
    };
    let top = cx.object(doc, "", TOP_FIELDS)?;
    let api_version = cx.required(top, "apiVersion", "apiVersion", API_VERSION)?;
    if api_version != API_VERSION {
        return Err(cx.invalid("apiVersion", &top["apiVersion"], API_VERSION));
    }
    let kind = cx.required(top, "kind", "kind", KIND)?;
    if kind != KIND {
        return Err(cx.invalid("kind", &top["kind"], KIND));
    }
    let metadata = top.get("metadata").ok_or_else(|| PointerError::Missing {
        file: file.to_owned(),
        field: "metadata".into(),
        expected: "a mapping with name",
    })?;
    let metadata = cx.object(metadata, "metadata", METADATA_FIELDS)?;
    let name = cx.required(metadata, "metadata.name", "name", "a non-empty string")?;
    if name.is_empty() {
        return Err(cx.invalid("metadata.name", &metadata["name"], "a non-empty string"));
    }
    let mut annotations = BTreeMap::new();
    if let Some(a) = metadata.get("annotations").filter(|a| !a.is_null()) {
        let map = a
            .as_object()
            .ok_or_else(|| cx.invalid("metadata.annotations", a, "a mapping of strings"))?;
        for (k, v) in map {
            let v = v.as_str().ok_or_else(|| {
                cx.invalid(
                    &format!("metadata.annotations.{}", crate::error::printable(k, 80)),
                    v,
                    "a string",
                )
            })?;
            annotations.insert(k.clone(), v.to_owned());
        }
    }
    let spec = top.get("spec").ok_or_else(|| PointerError::Missing {
        file: file.to_owned(),
        field: "spec".into(),
        expected: "a mapping with repository, project, release",
    })?;
    let spec = cx.object(spec, "spec", SPEC_FIELDS)?;
    let typed = |field: &str,
                 key: &str,
                 expected: &'static str|
     -> Result<Option<(&Value, &str)>, PointerError> {
        Ok(cx
            .string(spec, field, key, expected)?
            .map(|s| (&spec[key], s)))
    };
    let need =
        |field: &str, key: &str, expected: &'static str| -> Result<(&Value, &str), PointerError> {
            typed(field, key, expected)?.ok_or_else(|| PointerError::Missing {
                file: file.to_owned(),
                field: field.to_owned(),
                expected,
            })
        };
    let (v, s) = need(
        "spec.repository",
        "repository",
        "a repository like company/monorepo",
    )?;
    let repository: Repository = s.parse().map_err(|_| {
        cx.invalid(
            "spec.repository",
            v,
            "'/'-separated segments of [a-z0-9]+([._-][a-z0-9]+)*",
        )
    })?;
    let (v, s) = need(
        "spec.project",
        "project",
        "a project name like auth-service",
    )?;
    let project: Project = s
        .parse()
        .map_err(|_| cx.invalid("spec.project", v, "[a-z0-9]+([._-][a-z0-9]+)*"))?;
    let (v, s) = need("spec.release", "release", "the release's commit SHA")?;
    let commit: CommitSha = s.parse().map_err(|_| {
        cx.invalid(
            "spec.release",
            v,
            "a commit SHA of 40 lower-case hex digits",
        )
    })?;
    let digest = match typed("spec.digest", "digest", "sha256:<64 hex>")? {
        Some((v, s)) => Some(
            s.parse::<Digest>()
                .map_err(|_| cx.invalid("spec.digest", v, "sha256:<64 lower-case hex digits>"))?,
        ),
        None => None,
    };
    let registry = match typed("spec.registry", "registry", "host[:port][/prefix]")? {
        Some((v, s)) => Some(
            s.parse::<RegistryBase>()
                .map_err(|_| cx.invalid("spec.registry", v, "host[:port][/prefix] or oci:PATH"))?,
        ),
        None => None,
    };
    Ok(Pointer {
        name: name.to_owned(),
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
        assert!(m.contains("unknown field spec.registyr"), "{m}");
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
