//! Kubernetes objects in manifest files: parsing, checking, ordering and rendering
//! (docs/design.md §3 "Resources layer", §5 rules 3 and 4).
//!
//! Invariants:
//!
//! - Every [`Object`] returned by [`parse_file`] came from a mapping document with a non-empty
//!   string `apiVersion` and `kind`, a name ([`ObjectName`]: a non-empty string
//!   `metadata.name`, or, when `name` is absent, a non-empty string `metadata.generateName`),
//!   and a string (or absent/null) `metadata.namespace`. Anything else is an error naming the
//!   file, the document index and the field; nothing is silently dropped except empty
//!   documents.
//! - An object's identity is (kind, namespace, [`ObjectName`]): a `generateName` prefix is
//!   never equal to a `name`, even when the strings are, because the API server (or Argo CD,
//!   for hooks) completes the prefix into another name.
//! - Parsing untrusted YAML is bounded: alias expansion, nesting, node and document counts are
//!   capped explicitly (see [`crate::yaml::options`]), so an alias bomb ("billion laughs") fails in
//!   milliseconds. Duplicate mapping keys are an error in YAML and in JSON.
//! - YAML is read with the YAML 1.1 scalar rules Kubernetes itself uses (sigs.k8s.io/yaml, i.e.
//!   go-yaml v2): `0644` is octal (420), `yes`/`on` are booleans. Parser errors carry no source
//!   snippet, so the text of a Secret cannot leak into a log through an error message.
//! - [`sort`] is total and deterministic: (kind, namespace with `None` first, named objects
//!   before `generateName` ones, name or prefix, source, index). [`render`] is a pure function of the objects' values: map keys come out sorted
//!   (`serde_json::Map` is a `BTreeMap`), every document starts with `---\n`, and strings that a
//!   YAML 1.1 reader could take for a number, boolean or null are quoted, so the output parses
//!   back to the same values.

use std::cmp::Ordering;
use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub mod env;
pub mod verbatim;

/// One Kubernetes object from a manifest file.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub api_version: String,
    pub kind: String,
    /// `metadata.namespace`; `None` when absent, null or empty.
    pub namespace: Option<String>,
    pub name: ObjectName,
    /// The whole document.
    pub value: Value,
    /// Path of the file the object came from.
    pub source: String,
    /// Index of the document within its file, counting from 0 and counting non-empty
    /// documents only.
    pub index: usize,
}

/// How an object is named: `metadata.name`, or, for an object without one, the
/// `metadata.generateName` prefix the API server (or Argo CD, for a hook) completes at creation.
///
/// The variants' order is the output order within a kind and namespace: named objects first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectName {
    /// `metadata.name` (which wins when `generateName` is present too, as in Kubernetes).
    Name(String),
    /// `metadata.generateName` of an object without `metadata.name`.
    GenerateName(String),
}

impl ObjectName {
    /// The name or the prefix.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Name(s) | Self::GenerateName(s) => s,
        }
    }
}

/// A name as is; a prefix as `PREFIX* (generateName)`, which no name can be mistaken for.
impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::GenerateName(prefix) => write!(f, "{prefix}* (generateName)"),
        }
    }
}

/// The identity of an object, as recorded in release metadata (`resources.objects`): in JSON,
/// `name` for a named object (exactly as before `generateName` was accepted, so the records
/// and digests of existing releases are unchanged) or `generate_name` for the others; a record
/// with both or neither is refused.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "ObjectRecord", into = "ObjectRecord")]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: ObjectName,
}

/// [`ObjectRef`] as JSON. Field order is the serialization order, and so part of the
/// metadata's bytes.
#[derive(Serialize, Deserialize)]
struct ObjectRecord {
    api_version: String,
    kind: String,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    generate_name: Option<String>,
}

impl TryFrom<ObjectRecord> for ObjectRef {
    type Error = String;

    fn try_from(record: ObjectRecord) -> Result<Self, String> {
        let name = match (record.name, record.generate_name) {
            (Some(name), None) => ObjectName::Name(name),
            (None, Some(prefix)) => ObjectName::GenerateName(prefix),
            (Some(_), Some(_)) => {
                return Err(format!(
                    "object record of kind {}: expected name or generate_name, got both",
                    crate::text::excerpt(&record.kind)
                ));
            }
            (None, None) => {
                return Err(format!(
                    "object record of kind {}: expected name or generate_name, got neither",
                    crate::text::excerpt(&record.kind)
                ));
            }
        };
        Ok(Self {
            api_version: record.api_version,
            kind: record.kind,
            namespace: record.namespace,
            name,
        })
    }
}

impl From<ObjectRef> for ObjectRecord {
    fn from(object: ObjectRef) -> Self {
        let (name, generate_name) = match object.name {
            ObjectName::Name(name) => (Some(name), None),
            ObjectName::GenerateName(prefix) => (None, Some(prefix)),
        };
        Self {
            api_version: object.api_version,
            kind: object.kind,
            namespace: object.namespace,
            name,
            generate_name,
        }
    }
}

impl ObjectRef {
    /// What records are ordered by, as [`sort`] orders objects: (kind, namespace with `None`
    /// first, name).
    #[must_use]
    pub fn order_key(&self) -> (&str, Option<&str>, &ObjectName) {
        (&self.kind, self.namespace.as_deref(), &self.name)
    }
}

/// Why a manifest file could not be read or rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    #[error("{path}: not valid UTF-8 (first invalid byte at offset {offset})")]
    NotUtf8 { path: String, offset: usize },
    #[error("{path}: unsupported file type: expected a .yaml, .yml or .json file")]
    UnsupportedExtension { path: String },
    #[error("{path}: invalid YAML: {reason}")]
    Yaml { path: String, reason: String },
    #[error(
        "{path}: YAML exceeds the parser's resource limits (alias expansion, nesting or size; alias bombs are refused): {reason}"
    )]
    YamlLimit { path: String, reason: String },
    #[error("{path}: invalid JSON: {reason}")]
    Json { path: String, reason: String },
    #[error("{path} document {n}: expected a mapping (a Kubernetes object), got {actual}", n = index + 1)]
    NotAMapping {
        path: String,
        index: usize,
        actual: &'static str,
    },
    #[error("{path} document {n}: {field} is missing", n = index + 1)]
    MissingField {
        path: String,
        index: usize,
        field: &'static str,
    },
    #[error("{path} document {n}: {field} must be {expected}, got {actual}", n = index + 1)]
    InvalidField {
        path: String,
        index: usize,
        field: &'static str,
        expected: &'static str,
        actual: &'static str,
    },
    #[error("cannot render {kind}/{name} from {path} document {n} as YAML", n = index + 1)]
    Render {
        kind: String,
        name: String,
        path: String,
        index: usize,
        #[source]
        source: Box<serde_saphyr::ser::Error>,
    },
}

/// Parses one manifest file. `.json` files hold exactly one object; `.yaml` and `.yml` files
/// hold any number of YAML documents, of which empty ones (comments only, bare `---`, `null`)
/// are skipped.
///
/// # Errors
///
/// Bytes that are not UTF-8, an unknown extension, a YAML or JSON syntax error, a duplicate
/// key, a resource limit, or a document that is not a Kubernetes object.
pub fn parse_file(path: &str, data: &[u8]) -> Result<Vec<Object>, ManifestError> {
    let text = std::str::from_utf8(data).map_err(|e| ManifestError::NotUtf8 {
        path: path.to_owned(),
        offset: e.valid_up_to(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let extension = extension(path);
    let values = if extension == Some("json") {
        // Duplicate keys and anything after the object are refused.
        let value = crate::yaml::json_value(text).map_err(|e| ManifestError::Json {
            path: path.to_owned(),
            reason: crate::text::printable(&e.to_string(), 300),
        })?;
        vec![value]
    } else if matches!(extension, Some("yaml" | "yml")) {
        serde_saphyr::from_multiple_with_options::<Value>(text, crate::yaml::options())
            .map_err(|e| yaml_error(path, &e))?
    } else {
        return Err(ManifestError::UnsupportedExtension {
            path: path.to_owned(),
        });
    };
    values
        .into_iter()
        .enumerate()
        .map(|(index, value)| object(path, index, value))
        .collect()
}

/// A file's extension, which decides how it is read (`yaml`, `yml` or `json`).
fn extension(path: &str) -> Option<&str> {
    path.rsplit('/')
        .next()
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, extension)| extension)
}

fn yaml_error(path: &str, source: &serde_saphyr::Error) -> ManifestError {
    let path = path.to_owned();
    let reason = crate::yaml::reason(source);
    if crate::yaml::is_limit(source) {
        ManifestError::YamlLimit { path, reason }
    } else {
        ManifestError::Yaml { path, reason }
    }
}

/// Checks one document and extracts its identity.
fn object(path: &str, index: usize, value: Value) -> Result<Object, ManifestError> {
    let missing = |field| ManifestError::MissingField {
        path: path.to_owned(),
        index,
        field,
    };
    let invalid = |field, expected, actual| ManifestError::InvalidField {
        path: path.to_owned(),
        index,
        field,
        expected,
        actual,
    };
    let non_empty = |map: &Map<String, Value>, key: &str, field| match map.get(key) {
        None => Err(missing(field)),
        Some(Value::String(s)) if s.is_empty() => {
            Err(invalid(field, "a non-empty string", "an empty string"))
        }
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(invalid(field, "a non-empty string", type_name(other))),
    };

    let Value::Object(map) = &value else {
        return Err(ManifestError::NotAMapping {
            path: path.to_owned(),
            index,
            actual: type_name(&value),
        });
    };
    let api_version = non_empty(map, "apiVersion", "apiVersion")?;
    let kind = non_empty(map, "kind", "kind")?;
    let metadata = match map.get("metadata") {
        None => return Err(missing("metadata")),
        Some(Value::Object(metadata)) => metadata,
        Some(other) => return Err(invalid("metadata", "a mapping", type_name(other))),
    };
    // As in Kubernetes, `name` wins; `generateName` counts only when `name` is absent.
    let name = if metadata.contains_key("name") {
        ObjectName::Name(non_empty(metadata, "name", "metadata.name")?)
    } else if metadata.contains_key("generateName") {
        ObjectName::GenerateName(non_empty(
            metadata,
            "generateName",
            "metadata.generateName",
        )?)
    } else {
        return Err(missing(MISSING_NAME));
    };
    let namespace = match metadata.get("namespace") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(invalid("metadata.namespace", "a string", type_name(other))),
    };
    Ok(Object {
        api_version,
        kind,
        namespace,
        name,
        value,
        source: path.to_owned(),
        index,
    })
}

/// The field named when a document has neither `metadata.name` nor `metadata.generateName`.
const MISSING_NAME: &str = "metadata.name (or metadata.generateName)";

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

/// Sorts objects by (kind, namespace with `None` first, [`ObjectName`]: named objects first,
/// then `generateName` ones, each by their string), then source and index, so the order is
/// total and does not depend on the input order.
pub fn sort(objects: &mut [Object]) {
    objects.sort_by(compare);
}

fn compare(a: &Object, b: &Object) -> Ordering {
    a.order_key().cmp(&b.order_key())
}

/// What objects and documents are ordered by: (kind, namespace with `None` first, name,
/// source, index).
type OrderKey<'a> = (&'a str, Option<&'a str>, &'a ObjectName, &'a str, usize);

impl Object {
    fn order_key(&self) -> OrderKey<'_> {
        let namespace = self.namespace.as_deref();
        (&self.kind, namespace, &self.name, &self.source, self.index)
    }
}

impl Document {
    fn order_key(&self) -> OrderKey<'_> {
        let namespace = self.namespace.as_deref();
        (&self.kind, namespace, &self.name, &self.source, self.index)
    }
}

/// Renders objects, in the order given, as one YAML stream: each document is `---\n` followed
/// by the object's value.
///
/// # Errors
///
/// The serializer refusing a value (not expected for values that came from [`parse_file`]).
pub fn render(objects: &[Object]) -> Result<String, ManifestError> {
    let mut out = String::new();
    for object in objects {
        let document = serde_saphyr::to_string_with_options(&object.value, serializer_options())
            .map_err(|source| ManifestError::Render {
                kind: object.kind.clone(),
                name: object.name.to_string(),
                path: object.source.clone(),
                index: object.index,
                source: Box::new(source),
            })?;
        out.push_str("---\n");
        out.push_str(&document);
        if !document.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

/// Defaults, spelled out where they carry the round-trip guarantee: `yaml_12: false` quotes
/// every string a YAML 1.1 reader (kubectl, Argo CD) would take for a number, boolean, null or
/// timestamp.
fn serializer_options() -> serde_saphyr::SerializerOptions {
    serde_saphyr::ser_options! {
        yaml_12: false,
        indent_step: 2,
        quote_all: false,
    }
}

/// A checked document of a manifest file, ready to be written: its identity (as [`Object`]'s)
/// and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: ObjectName,
    pub source: String,
    pub index: usize,
    pub body: Body,
}

/// The text of a [`Document`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// The author's text: this byte range of the file, which [`verbatim::scan`] checked.
    Verbatim(Range<usize>),
    /// Rendered from the parsed value, `---\n` included (the full path, see [`documents`]).
    Rendered(String),
}

/// The documents of one manifest file, checked as [`parse_file`] checks them and with the same
/// errors. YAML files that [`verbatim::scan`] fully understands keep their text; others (JSON,
/// anchors, tags, anything unusual) are parsed and rendered as [`render`] does.
///
/// # Errors
///
/// As [`parse_file`].
pub fn documents(path: &str, data: &[u8]) -> Result<Vec<Document>, ManifestError> {
    if matches!(extension(path), Some("yaml" | "yml"))
        && let Ok(text) = std::str::from_utf8(data)
    {
        let bom = if text.starts_with('\u{feff}') {
            '\u{feff}'.len_utf8()
        } else {
            0
        };
        if let Some(scanned) = verbatim::scan(&text[bom..]) {
            return Ok(scanned
                .into_iter()
                .map(|d| Document {
                    api_version: d.api_version,
                    kind: d.kind,
                    namespace: d.namespace,
                    name: d.name,
                    source: path.to_owned(),
                    index: d.index,
                    body: Body::Verbatim(d.range.start + bom..d.range.end + bom),
                })
                .collect());
        }
    }
    parse_file(path, data)?
        .into_iter()
        .map(|object| {
            let body = Body::Rendered(render(std::slice::from_ref(&object))?);
            Ok(Document {
                api_version: object.api_version,
                kind: object.kind,
                namespace: object.namespace,
                name: object.name,
                source: object.source,
                index: object.index,
                body,
            })
        })
        .collect()
}

/// The order of documents in the output, as [`sort`] orders objects.
#[must_use]
pub fn compare_documents(a: &Document, b: &Document) -> Ordering {
    a.order_key().cmp(&b.order_key())
}

/// Writes a document of a YAML stream: `---\n`, its text, and a line feed if the text does
/// not end with one. `data` is the file a [`Body::Verbatim`] range points into.
///
/// # Errors
///
/// The writer's, or a verbatim range outside `data` (not expected: the range came from
/// scanning that file).
pub fn write_document(
    out: &mut (impl std::io::Write + ?Sized),
    document: &Document,
    data: &[u8],
) -> std::io::Result<()> {
    match &document.body {
        Body::Rendered(text) => out.write_all(text.as_bytes()),
        Body::Verbatim(range) => {
            let text = data.get(range.clone()).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{} document {}: range {range:?} is outside the file",
                        document.source,
                        document.index + 1
                    ),
                )
            })?;
            out.write_all(b"---\n")?;
            out.write_all(text)?;
            if !text.ends_with(b"\n") {
                out.write_all(b"\n")?;
            }
            Ok(())
        }
    }
}

/// The identities of `objects`, in the order given.
#[must_use]
pub fn summary(objects: &[Object]) -> Vec<ObjectRef> {
    objects
        .iter()
        .map(|o| ObjectRef {
            api_version: o.api_version.clone(),
            kind: o.kind.clone(),
            namespace: o.namespace.clone(),
            name: o.name.clone(),
        })
        .collect()
}

crate::exit_class!(ManifestError => Usage);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::fmt::Write as _;
    use std::time::{Duration, Instant};

    const DEPLOYMENT: &str = "\
# leading comment
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
";

    fn parse(path: &str, text: &str) -> Result<Vec<Object>, ManifestError> {
        parse_file(path, text.as_bytes())
    }

    fn obj(kind: &str, namespace: Option<&str>, name: &str, source: &str, index: usize) -> Object {
        Object {
            api_version: "v1".to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: ObjectName::Name(name.to_owned()),
            value: json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name}}),
            source: source.to_owned(),
            index,
        }
    }

    // ---- parse_file: happy paths ----

    #[test]
    fn multi_document_yaml_skips_empty_documents() {
        let text = format!(
            "---\n# only a comment\n---\n{DEPLOYMENT}---\n---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: shop}}\n...\n"
        );
        let objects = parse("dir/app.yaml", &text).unwrap();
        assert_eq!(objects.len(), 2);
        let d = &objects[0];
        assert_eq!(
            (d.api_version.as_str(), d.kind.as_str(), d.name.as_str()),
            ("apps/v1", "Deployment", "web")
        );
        assert_eq!(d.namespace.as_deref(), Some("shop"));
        assert_eq!((d.source.as_str(), d.index), ("dir/app.yaml", 0));
        assert_eq!(d.value["spec"]["replicas"], json!(2));
        assert_eq!(objects[1].kind, "Namespace");
        assert_eq!(objects[1].namespace, None);
        assert_eq!(objects[1].index, 1);
    }

    #[test]
    fn file_of_comments_only_has_no_objects() {
        assert!(parse("a.yml", "# nothing\n").unwrap().is_empty());
        assert!(parse("a.yml", "").unwrap().is_empty());
        assert!(parse("a.yml", "---\n---\n").unwrap().is_empty());
    }

    #[test]
    fn json_file_holds_one_object() {
        let objects = parse(
            "cm.json",
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":null},"data":{"k":"0123"}}"#,
        )
        .unwrap();
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].namespace, None);
        assert_eq!(objects[0].value["data"]["k"], json!("0123"));
    }

    #[test]
    fn yaml_scalars_follow_kubernetes_yaml_1_1_rules() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nmode: 0644\non: yes\nq: \"0644\"\nbig: 12345678901234\nf: 1.5\n";
        let value = &parse("p.yaml", text).unwrap()[0].value;
        assert_eq!(value["mode"], json!(420));
        assert_eq!(value["on"], json!(true));
        assert_eq!(value["q"], json!("0644"));
        assert_eq!(value["big"], json!(12_345_678_901_234_u64));
        assert_eq!(value["f"], json!(1.5));
    }

    #[test]
    fn anchors_and_merge_keys_within_limits_work() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\nbase: &b {x: 1}\ndata:\n  <<: *b\n  y: 2\n";
        let value = &parse("c.yaml", text).unwrap()[0].value;
        assert_eq!(value["data"], json!({"x": 1, "y": 2}));
    }

    #[test]
    fn byte_order_mark_is_ignored() {
        let text = format!("\u{feff}{DEPLOYMENT}");
        assert_eq!(parse("a.yaml", &text).unwrap().len(), 1);
        let json = "\u{feff}{\"apiVersion\":\"v1\",\"kind\":\"A\",\"metadata\":{\"name\":\"a\"}}";
        assert_eq!(parse("a.json", json).unwrap().len(), 1);
    }

    // ---- parse_file: errors ----

    #[test]
    fn invalid_utf8_is_rejected_with_the_file_name() {
        let err = parse_file("bad.yaml", b"kind: \xff\n").unwrap_err();
        assert!(matches!(err, ManifestError::NotUtf8 { offset: 6, .. }));
        assert_eq!(
            err.to_string(),
            "bad.yaml: not valid UTF-8 (first invalid byte at offset 6)"
        );
    }

    #[test]
    fn unknown_extension_is_rejected() {
        let err = parse("notes.txt", DEPLOYMENT).unwrap_err();
        assert!(matches!(err, ManifestError::UnsupportedExtension { .. }));
    }

    #[test]
    fn yaml_syntax_error_is_rejected_with_the_file_name() {
        let err = parse("broken.yaml", "a: [1, 2\n").unwrap_err();
        assert!(matches!(err, ManifestError::Yaml { ref path, .. } if path == "broken.yaml"));
        assert_eq!(
            err.to_string(),
            "broken.yaml: invalid YAML: unclosed bracket '[' at line 1, column 4"
        );
    }

    #[test]
    fn yaml_errors_give_the_reason_and_position_without_library_hints() {
        for (text, reason) in [
            (
                "a: 1\na: 2\n",
                "duplicate mapping key: a at line 2, column 1",
            ),
            ("a:\n\tb: 1\n", "tabs disallowed"),
            (
                "a: .nan\n",
                "non-finite float `.nan` is not allowed at line 1, column 4",
            ),
            ("a: b: c\n", "line 1, column 5"),
        ] {
            let err = parse("x.yaml", text).unwrap_err().to_string();
            assert!(err.starts_with("x.yaml: invalid YAML: "), "{text:?}: {err}");
            assert!(err.contains(reason), "{text:?}: {err}");
            assert!(!err.contains("DuplicateKeyPolicy"), "{err}");
        }
    }

    #[test]
    fn a_hostile_duplicate_key_cannot_forge_a_line() {
        let text = "\"a\\nerror: forged\": 1\n\"a\\nerror: forged\": 2\n";
        let err = parse("x.yaml", text).unwrap_err().to_string();
        assert!(!err.contains('\n'), "{err}");
        assert!(err.contains("duplicate mapping key"), "{err}");
    }

    #[test]
    fn duplicate_yaml_key_is_rejected() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  k: 1\n  k: 2\n";
        let err = parse("dup.yaml", text).unwrap_err();
        assert!(matches!(err, ManifestError::Yaml { .. }));
        assert!(
            err.to_string().contains("duplicate mapping key: k"),
            "{err}"
        );
    }

    #[test]
    fn duplicate_json_key_is_rejected() {
        let text = r#"{"apiVersion":"v1","kind":"A","metadata":{"name":"a","name":"b"}}"#;
        let err = parse("dup.json", text).unwrap_err();
        assert!(matches!(err, ManifestError::Json { .. }));
        assert!(err.to_string().contains("duplicate key \"name\""), "{err}");
    }

    #[test]
    fn json_with_two_values_or_none_is_rejected() {
        let one = r#"{"apiVersion":"v1","kind":"A","metadata":{"name":"a"}}"#;
        for text in [format!("{one} {one}"), format!("{one} x"), String::new()] {
            let err = parse("two.json", &text).unwrap_err();
            assert!(matches!(err, ManifestError::Json { .. }), "{text}");
        }
        let err = parse("list.json", &format!("[{one}]")).unwrap_err();
        assert!(matches!(
            err,
            ManifestError::NotAMapping {
                actual: "a sequence",
                ..
            }
        ));
    }

    #[test]
    fn billion_laughs_fails_fast() {
        let mut text = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
            .iter()
            .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
        {
            let refs = vec![format!("*{prev}"); 9].join(",");
            writeln!(text, "{name}: &{name} [{refs}]").unwrap();
        }
        let start = Instant::now();
        let err = parse("bomb.yaml", &text).unwrap_err();
        let elapsed = start.elapsed();
        assert!(matches!(err, ManifestError::YamlLimit { .. }), "{err:?}");
        // ~20 ms in release, ~270 ms in a debug build: the cap is on replayed events, not time.
        assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
        assert!(err.to_string().starts_with("bomb.yaml: YAML exceeds"));
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let text = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        let err = parse("deep.yaml", &text).unwrap_err();
        assert!(
            matches!(
                err,
                ManifestError::YamlLimit { .. } | ManifestError::Yaml { .. }
            ),
            "{err}"
        );
        let json = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            parse("deep.json", &json).unwrap_err(),
            ManifestError::Json { .. }
        ));
    }

    #[test]
    fn non_mapping_document_is_rejected_with_its_index() {
        let text = format!("{DEPLOYMENT}---\n- a\n- b\n");
        let err = parse("x.yaml", &text).unwrap_err();
        assert!(matches!(
            err,
            ManifestError::NotAMapping {
                index: 1,
                actual: "a sequence",
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "x.yaml document 2: expected a mapping (a Kubernetes object), got a sequence"
        );
        let err = parse("s.yaml", "just a string\n").unwrap_err();
        assert!(matches!(
            err,
            ManifestError::NotAMapping {
                actual: "a string",
                ..
            }
        ));
    }

    #[test]
    fn missing_fields_are_named() {
        let cases = [
            ("kind: A\nmetadata: {name: a}\n", "apiVersion"),
            ("apiVersion: v1\nmetadata: {name: a}\n", "kind"),
            ("apiVersion: v1\nkind: A\n", "metadata"),
            (
                "apiVersion: v1\nkind: A\nmetadata: {namespace: n}\n",
                "metadata.name (or metadata.generateName)",
            ),
        ];
        for (text, want) in cases {
            let err = parse("m.yaml", text).unwrap_err();
            assert!(
                matches!(err, ManifestError::MissingField { field, index: 0, .. } if field == want),
                "{text}: {err}"
            );
        }
        let err = parse("m.yaml", "apiVersion: v1\nkind: A\n").unwrap_err();
        assert_eq!(err.to_string(), "m.yaml document 1: metadata is missing");
        let err = parse(
            "m.yaml",
            "apiVersion: v1\nkind: A\nmetadata: {labels: {}}\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "m.yaml document 1: metadata.name (or metadata.generateName) is missing"
        );
    }

    // ---- generateName ----

    /// Argo CD's PostSync hook example: a Job with `generateName` and no `name`.
    const POST_SYNC_JOB: &str = include_str!("../../fixtures/hooks/post-sync-job.yaml");

    #[test]
    fn an_object_without_a_name_is_identified_by_its_generate_name() {
        let objects = parse("hook.yaml", POST_SYNC_JOB).unwrap();
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].kind, "Job");
        assert_eq!(objects[0].namespace, None);
        assert_eq!(
            objects[0].name,
            ObjectName::GenerateName("app-slack-notification-".to_owned())
        );
        assert_eq!(
            objects[0].name.to_string(),
            "app-slack-notification-* (generateName)"
        );
        assert_eq!(
            render(&objects).unwrap(),
            render(&parse("again.yaml", &render(&objects).unwrap()).unwrap()).unwrap()
        );
    }

    #[test]
    fn name_wins_over_generate_name_whatever_generate_name_holds() {
        for generate in ["x-", "7", "''", "[a]", "{a: b}", "~"] {
            let text = format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: p, generateName: {generate}}}\n"
            );
            let objects = parse("p.yaml", &text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(objects[0].name, ObjectName::Name("p".to_owned()), "{text}");
        }
        // A present `name` must still be a non-empty string: `generateName` does not excuse it.
        let err = parse(
            "p.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: '', generateName: x-}\n",
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                ManifestError::InvalidField {
                    field: "metadata.name",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_generate_name_without_a_name_must_be_a_non_empty_string() {
        for (generate, actual) in [
            ("''", "an empty string"),
            ("7", "a number"),
            ("~", "null"),
            ("[a]", "a sequence"),
            ("{a: b}", "a mapping"),
        ] {
            let text =
                format!("apiVersion: v1\nkind: Pod\nmetadata: {{generateName: {generate}}}\n");
            let err = parse("g.yaml", &text).unwrap_err();
            assert!(
                matches!(err, ManifestError::InvalidField { field: "metadata.generateName", actual: a, .. } if a == actual),
                "{text}: {err}"
            );
        }
        let err = parse(
            "g.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {generateName: 7}\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "g.yaml document 1: metadata.generateName must be a non-empty string, got a number"
        );
    }

    #[test]
    fn a_generate_name_never_equals_a_name_of_the_same_string() {
        let named = ObjectName::Name("x-".to_owned());
        let generated = ObjectName::GenerateName("x-".to_owned());
        assert_ne!(named, generated);
        assert_eq!(named.as_str(), generated.as_str());
        assert_ne!(named.to_string(), generated.to_string());
    }

    #[test]
    fn generate_name_objects_sort_after_named_ones_of_their_kind_and_namespace() {
        let generated = |kind: &str, namespace: Option<&str>, prefix: &str, source: &str| {
            let mut o = obj(kind, namespace, prefix, source, 0);
            o.name = ObjectName::GenerateName(prefix.to_owned());
            o
        };
        let mut objects = vec![
            generated("Job", Some("a"), "b-", "1.yaml"),
            obj("Job", Some("a"), "z", "2.yaml", 0),
            generated("Job", None, "z-", "3.yaml"),
            generated("Job", Some("a"), "a-", "4.yaml"),
            obj("Job", Some("a"), "a-", "5.yaml", 0),
            generated("Job", Some("a"), "a-", "0.yaml"),
            obj("ConfigMap", Some("a"), "c", "6.yaml", 0),
        ];
        sort(&mut objects);
        let got: Vec<_> = objects
            .iter()
            .map(|o| {
                (
                    o.kind.as_str(),
                    o.namespace.as_deref(),
                    o.name.to_string(),
                    o.source.as_str(),
                )
            })
            .collect();
        let want = [
            ("ConfigMap", Some("a"), "c", "6.yaml"),
            ("Job", None, "z-* (generateName)", "3.yaml"),
            ("Job", Some("a"), "a-", "5.yaml"),
            ("Job", Some("a"), "z", "2.yaml"),
            ("Job", Some("a"), "a-* (generateName)", "0.yaml"),
            ("Job", Some("a"), "a-* (generateName)", "4.yaml"),
            ("Job", Some("a"), "b-* (generateName)", "1.yaml"),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|(k, n, name, s)| (*k, *n, (*name).to_owned(), *s))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn invalid_fields_are_named_with_expected_and_actual() {
        let cases = [
            (
                "apiVersion: 1\nkind: A\nmetadata: {name: a}\n",
                "apiVersion",
                "a number",
            ),
            (
                "apiVersion: v1\nkind: [A]\nmetadata: {name: a}\n",
                "kind",
                "a sequence",
            ),
            (
                "apiVersion: v1\nkind: ''\nmetadata: {name: a}\n",
                "kind",
                "an empty string",
            ),
            (
                "apiVersion: v1\nkind: A\nmetadata: [a]\n",
                "metadata",
                "a sequence",
            ),
            (
                "apiVersion: v1\nkind: A\nmetadata: {name: ''}\n",
                "metadata.name",
                "an empty string",
            ),
            (
                "apiVersion: v1\nkind: A\nmetadata: {name: 7}\n",
                "metadata.name",
                "a number",
            ),
            (
                "apiVersion: v1\nkind: A\nmetadata: {name: a, namespace: {}}\n",
                "metadata.namespace",
                "a mapping",
            ),
            (
                "apiVersion: v1\nkind: A\nmetadata: {name: a, namespace: true}\n",
                "metadata.namespace",
                "a boolean",
            ),
        ];
        for (text, want_field, want_actual) in cases {
            let err = parse("f.yaml", text).unwrap_err();
            assert!(
                matches!(err, ManifestError::InvalidField { field, actual, .. } if field == want_field && actual == want_actual),
                "{text}: {err}"
            );
        }
        let err = parse("f.yaml", "apiVersion: v1\nkind: A\nmetadata: {name: 7}\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.yaml document 1: metadata.name must be a non-empty string, got a number"
        );
    }

    #[test]
    fn empty_or_null_namespace_is_none() {
        let text = "apiVersion: v1\nkind: A\nmetadata: {name: a, namespace: ''}\n---\napiVersion: v1\nkind: A\nmetadata: {name: b, namespace: ~}\n";
        let objects = parse("n.yaml", text).unwrap();
        assert_eq!(objects[0].namespace, None);
        assert_eq!(objects[1].namespace, None);
    }

    // ---- sort ----

    #[test]
    fn sort_orders_by_kind_namespace_name_then_source_and_index() {
        let mut objects = vec![
            obj("Service", Some("b"), "x", "s.yaml", 0),
            obj("Deployment", Some("a"), "y", "d.yaml", 0),
            obj("Service", None, "z", "s.yaml", 1),
            obj("Service", Some("a"), "x", "t.yaml", 0),
            obj("Service", Some("a"), "x", "s.yaml", 3),
            obj("Service", Some("a"), "x", "s.yaml", 2),
            obj("ClusterRole", None, "r", "r.yaml", 0),
        ];
        sort(&mut objects);
        let got: Vec<_> = objects
            .iter()
            .map(|o| {
                (
                    o.kind.as_str(),
                    o.namespace.as_deref(),
                    o.name.as_str(),
                    o.source.as_str(),
                    o.index,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("ClusterRole", None, "r", "r.yaml", 0),
                ("Deployment", Some("a"), "y", "d.yaml", 0),
                ("Service", None, "z", "s.yaml", 1),
                ("Service", Some("a"), "x", "s.yaml", 2),
                ("Service", Some("a"), "x", "s.yaml", 3),
                ("Service", Some("a"), "x", "t.yaml", 0),
                ("Service", Some("b"), "x", "s.yaml", 0),
            ]
        );
    }

    // ---- render ----

    /// Strings that YAML emitters get wrong: YAML 1.1 numbers, booleans, nulls and timestamps,
    /// indicators, whitespace at the edges, control characters, block scalars, long lines.
    fn tricky_strings() -> Vec<(&'static str, String)> {
        let plain = [
            ("octal", "0123"),
            ("octal2", "0644"),
            ("true", "true"),
            ("yes", "yes"),
            ("no", "No"),
            ("on", "on"),
            ("off", "OFF"),
            ("y", "y"),
            ("n", "n"),
            ("exp", "1e3"),
            ("float", "1.5"),
            ("hex", "0x1F"),
            ("oct12", "0o17"),
            ("inf", ".inf"),
            ("nan", ".NaN"),
            ("null", "null"),
            ("tilde", "~"),
            ("empty", ""),
            ("space", " "),
            ("lead", " lead"),
            ("trail", "trail "),
            ("colon", "a: b"),
            ("dash", "- x"),
            ("hash", "#x"),
            ("comment", "a #b"),
            ("star", "*ref"),
            ("amp", "&a"),
            ("bang", "!tag"),
            ("pct", "%x"),
            ("at", "@x"),
            ("tick", "`x"),
            ("quote", "'x'"),
            ("dquote", "\"x\""),
            ("brace", "{a}"),
            ("bracket", "[a]"),
            ("pipe", "|"),
            ("gt", ">"),
            ("merge", "<<"),
            ("eq", "="),
            ("date", "2001-12-14"),
            ("time", "2001-12-14t21:59:43.10-05:00"),
            ("sexagesimal", "190:20:30"),
            ("under", "1_000"),
            ("plus", "+1"),
            ("dot", ".5"),
            ("minus", "-"),
            ("qmark", "? x"),
            ("doc", "---"),
            ("end", "..."),
            ("tab", "a\tb"),
            ("cr", "a\rb"),
            ("nul", "a\u{0}b"),
            ("bell", "\u{7}"),
            ("unicode", "h\u{e9}llo \u{2713}"),
            ("nbsp", "a\u{a0}"),
            ("bom", "\u{feff}x"),
            ("multi", "line one\nline two\n"),
            ("multi_no_nl", "line one\nline two"),
            ("multi_trailing", "a\n\n\n"),
            ("multi_lead_space", "  indented\nnext\n"),
            ("only_newlines", "\n\n"),
            ("multi_trail_space", "a \nb \n"),
            (
                "script",
                "#!/bin/sh\nset -eu\necho \"$HOME\" | tr a-z A-Z\n  indented: yes\n- item\n",
            ),
        ];
        let mut out: Vec<(&str, String)> =
            plain.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        out.push(("long", "word ".repeat(40)));
        out.push(("long_multi_space", format!("{}  x  y", "y ".repeat(50))));
        out.push(("long_no_space", "z".repeat(200)));
        out.push((
            "long_multi_line",
            format!("{}\n{}\n", "a ".repeat(60), "b ".repeat(60)),
        ));
        out
    }

    fn tricky_value() -> Value {
        let data: Map<String, Value> = tricky_strings()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v)))
            .collect();
        let mut value = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "tricky", "namespace": "ns", "labels": {}, "annotations": {"yes": "no"}},
            "numbers": {"i": 1, "neg": -7, "u": 18_446_744_073_709_551_615_u64, "f": 1.5, "e": 1000.0, "zero": 0},
            "bools": [true, false],
            "nothing": null,
            "empty_map": {},
            "empty_list": [],
            "nested": [{"a": []}, [], [[]], {"b": {}}, "", null],
            "1": "numeric key", "true": "bool key", "": "empty key", "a: b": "colon key", "- k": "dash key"
        });
        value["data"] = Value::Object(data);
        value
    }

    fn round_trip(objects: &[Object]) -> Vec<Value> {
        let text = render(objects).unwrap();
        parse("rendered.yaml", &text)
            .unwrap_or_else(|e| panic!("{e:?}\n{text}"))
            .into_iter()
            .map(|o| o.value)
            .collect()
    }

    #[test]
    fn rendered_yaml_parses_back_to_the_same_values() {
        let mut tricky = obj("ConfigMap", Some("ns"), "tricky", "t.yaml", 0);
        tricky.value = tricky_value();
        let objects = vec![obj("Namespace", None, "ns", "n.yaml", 0), tricky];
        let values: Vec<Value> = objects.iter().map(|o| o.value.clone()).collect();
        assert_eq!(round_trip(&objects), values);
    }

    #[test]
    fn rendered_strings_round_trip_one_by_one() {
        // One document per string, so a failure names the string.
        for (key, string) in tricky_strings() {
            let mut o = obj("ConfigMap", None, "c", "c.yaml", 0);
            o.value["data"] = json!({ "k": string.clone() });
            let back = round_trip(std::slice::from_ref(&o));
            assert_eq!(
                back[0]["data"]["k"],
                string,
                "{key}: {}",
                render(&[o]).unwrap()
            );
        }
    }

    #[test]
    fn render_is_deterministic_and_starts_every_document_with_a_marker() {
        let text = render(&[
            obj("A", None, "a", "a.yaml", 0),
            obj("B", None, "b", "b.yaml", 0),
        ])
        .unwrap();
        assert_eq!(
            text,
            "---\napiVersion: v1\nkind: A\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: B\nmetadata:\n  name: b\n"
        );
        assert_eq!(render(&[]).unwrap(), "");
    }

    #[test]
    fn render_output_of_parsed_files_is_stable() {
        let objects = parse("a.yaml", DEPLOYMENT).unwrap();
        let once = render(&objects).unwrap();
        let twice = render(&parse("b.yaml", &once).unwrap()).unwrap();
        assert_eq!(once, twice);
    }

    // ---- summary ----

    #[test]
    fn summary_serializes_with_snake_case_fields() {
        let objects = parse("a.yaml", DEPLOYMENT).unwrap();
        let refs = summary(&objects);
        assert_eq!(
            serde_json::to_value(&refs).unwrap(),
            json!([{"api_version": "apps/v1", "kind": "Deployment", "namespace": "shop", "name": "web"}])
        );
        let cluster: ObjectRef =
            serde_json::from_str(r#"{"api_version":"v1","kind":"Namespace","name":"n"}"#).unwrap();
        assert_eq!(cluster.namespace, None);
        assert_eq!(
            serde_json::to_string(&cluster).unwrap(),
            r#"{"api_version":"v1","kind":"Namespace","namespace":null,"name":"n"}"#
        );
    }

    #[test]
    fn a_generate_name_record_carries_generate_name_instead_of_name() {
        let objects = parse("hook.yaml", POST_SYNC_JOB).unwrap();
        let refs = summary(&objects);
        assert_eq!(
            serde_json::to_string(&refs).unwrap(),
            r#"[{"api_version":"batch/v1","kind":"Job","namespace":null,"generate_name":"app-slack-notification-"}]"#
        );
        let back: Vec<ObjectRef> =
            serde_json::from_str(&serde_json::to_string(&refs).unwrap()).unwrap();
        assert_eq!(back, refs);
    }

    #[test]
    fn a_named_record_serializes_as_it_always_did() {
        let objects = parse("a.yaml", DEPLOYMENT).unwrap();
        assert_eq!(
            serde_json::to_string(&summary(&objects)).unwrap(),
            r#"[{"api_version":"apps/v1","kind":"Deployment","namespace":"shop","name":"web"}]"#
        );
    }

    #[test]
    fn a_record_with_both_names_or_neither_is_refused_and_unknown_fields_are_ignored() {
        let both = r#"{"api_version":"v1","kind":"Pod","name":"a","generate_name":"a-"}"#;
        let err = serde_json::from_str::<ObjectRef>(both)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("expected name or generate_name, got both"),
            "{err}"
        );
        let neither = r#"{"api_version":"v1","kind":"Pod","namespace":"n"}"#;
        let err = serde_json::from_str::<ObjectRef>(neither)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("expected name or generate_name, got neither"),
            "{err}"
        );
        let later = r#"{"api_version":"v1","kind":"Pod","generate_name":"a-","uid":"x"}"#;
        let read: ObjectRef = serde_json::from_str(later).unwrap();
        assert_eq!(read.name, ObjectName::GenerateName("a-".to_owned()));
        assert_eq!(read.namespace, None);
        let null_name = r#"{"api_version":"v1","kind":"Pod","name":null,"generate_name":"a-"}"#;
        let read: ObjectRef = serde_json::from_str(null_name).unwrap();
        assert_eq!(read.name, ObjectName::GenerateName("a-".to_owned()));
    }

    #[test]
    fn non_finite_floats_are_rejected() {
        let err = parse(
            "f.yaml",
            "apiVersion: v1\nkind: A\nmetadata: {name: a}\nx: .inf\n",
        );
        assert!(matches!(err.unwrap_err(), ManifestError::Yaml { .. }));
    }

    #[test]
    fn every_prefix_of_a_manifest_is_an_error_or_objects_never_a_panic() {
        let text = format!("{DEPLOYMENT}---\nbase: &b {{x: [1, \"two\", 'three']}}\nother: *b\n");
        for (end, _) in text.char_indices() {
            let _ = parse("p.yaml", &text[..end]);
            let _ = parse("p.json", &text[..end]);
        }
    }
}
