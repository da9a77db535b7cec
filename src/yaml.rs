//! Strict, bounded loading of untrusted YAML and JSON, and one walker for hand-validated
//! YAML mappings.
//!
//! Invariants:
//!
//! - Every parse of untrusted YAML uses [`options`]: alias expansion, nesting, node and
//!   document counts are capped explicitly, so an alias bomb ("billion laughs") fails in
//!   milliseconds, and a library upgrade cannot loosen a limit silently. Duplicate mapping keys
//!   are an error in YAML and in JSON ([`json_value`]).
//! - YAML is read with the YAML 1.1 scalar rules Kubernetes itself uses (go-yaml v2): `0644` is
//!   octal (420), `yes`/`on` are booleans. Parser errors carry no source snippet, so the text
//!   of a Secret cannot leak into a log through an error message.
//! - The walker ([`Node`], [`Mapping`]) refuses unknown keys and wrongly typed values with a
//!   [`FieldError`] naming the file, the field path (`spec.registry`, `windows[0].tz`), the
//!   value (quoted, escaped and truncated: one line whatever the input) and what was expected.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The parser settings for untrusted YAML.
///
/// Linear limits (events, nodes, scalar bytes) are generous: the archive already caps a file at
/// 16 MiB and big CRD bundles are legitimate. The exponential one, alias replay, is tight:
/// real manifests use a handful of anchors, a billion-laughs bomb needs 10^9 replays.
#[must_use]
pub fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_documents: MAX_DOCUMENTS,
            max_depth: MAX_DEPTH,
            max_nodes: 2_000_000,
            max_events: 4_000_000,
            max_anchors: 10_000,
            max_aliases: 10_000,
            max_total_scalar_bytes: 64 * 1024 * 1024,
            max_merge_keys: 10_000,
            enforce_alias_anchor_ratio: true,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
            max_replay_stack_depth: 16,
            max_alias_expansions_per_anchor: 1_000,
        },
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        // JSON (and so the API server) has no NaN or infinity.
        non_finite_float_policy: serde_saphyr::NonFiniteFloatPolicy::Reject,
        // Kubernetes reads YAML 1.1 scalars (go-yaml v2): `defaultMode: 0644` is 420.
        legacy_octal_numbers: true,
        // No source snippets in errors: a manifest may be a Secret.
        with_snippet: false,
        crop_radius: 0,
    }
}

/// The deepest nesting [`options`] allows.
pub const MAX_DEPTH: usize = 100;
/// The most documents one stream may hold under [`options`].
pub const MAX_DOCUMENTS: usize = 10_000;

/// Whether a parser error is one of [`options`]' resource limits rather than a syntax error.
#[must_use]
pub fn is_limit(error: &serde_saphyr::Error) -> bool {
    use serde_saphyr::Error as E;
    // Limit errors may come wrapped with alias locations or a snippet: look at the original.
    let mut original = error;
    while let E::AliasError { error, .. } | E::WithSnippet { error, .. } = original {
        original = error;
    }
    matches!(
        original,
        E::Budget { .. }
            | E::AliasReplayLimitExceeded { .. }
            | E::AliasExpansionLimitExceeded { .. }
            | E::AliasReplayStackDepthExceeded { .. }
            | E::AliasReplayCounterOverflow { .. }
    )
}

/// Why [`documents`] or [`typed`] could not read a file. Callers name the file. Each message
/// holds the parser's reason and position once (no source chain that would repeat it).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not valid UTF-8 (first invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error(
        "exceeds the parser's resource limits (alias expansion, nesting or size; alias bombs are refused): {0}"
    )]
    Limit(String),
    #[error("{0}")]
    Syntax(String),
}

impl From<serde_saphyr::Error> for LoadError {
    fn from(e: serde_saphyr::Error) -> Self {
        if is_limit(&e) {
            Self::Limit(reason(&e))
        } else {
            Self::Syntax(reason(&e))
        }
    }
}

/// The parser's reason for refusing a file, with its line and column, made fit for a message:
/// the library's configuration hints removed, control characters escaped (the reason may quote
/// the input, a key say), and cut at a few hundred characters.
#[must_use]
pub fn reason(error: &serde_saphyr::Error) -> String {
    let text = error
        .to_string()
        .replace(", set DuplicateKeyPolicy in Options if acceptable", "")
        .replace(" rejected by the configured policy", " is not allowed");
    crate::text::printable(&text, 300)
}

fn utf8(data: &[u8]) -> Result<&str, LoadError> {
    std::str::from_utf8(data).map_err(|e| LoadError::NotUtf8 {
        offset: e.valid_up_to(),
    })
}

/// Parses untrusted YAML (any number of documents) into values; empty documents are dropped.
/// For small files of our own kinds (pointers, policy, approvals).
///
/// # Errors
///
/// Bytes that are not UTF-8, a syntax error, a duplicate key or a resource limit.
pub fn documents(data: &[u8]) -> Result<Vec<Value>, LoadError> {
    let values = serde_saphyr::from_multiple_with_options::<Value>(utf8(data)?, options())?;
    Ok(values.into_iter().filter(|v| !v.is_null()).collect())
}

/// Parses one untrusted YAML document straight into `T` (no intermediate `Value`: the
/// release register of a busy project is megabytes).
///
/// # Errors
///
/// As [`documents`], and `T` refusing the document.
pub fn typed<T: serde::de::DeserializeOwned>(data: &[u8]) -> Result<T, LoadError> {
    Ok(serde_saphyr::from_str_with_options::<T>(
        utf8(data)?,
        options(),
    )?)
}

/// Parses one JSON value, refusing duplicate keys (which `serde_json` would otherwise resolve
/// silently to the last one) and anything after the value.
///
/// # Errors
///
/// A syntax error, a duplicate key, trailing data.
pub fn json_value(text: &str) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = StrictJson.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Deserializes JSON into a [`Value`] like `Value::deserialize`, but rejects duplicate keys.
struct StrictJson;

impl<'de> de::DeserializeSeed<'de> for StrictJson {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(StrictJson)
    }
}

impl<'de> Visitor<'de> for StrictJson {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictJson)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            let value = access.next_value_seed(StrictJson)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

// ---------------------------------------------------------------------------------------------
// The walker

/// A field of a hand-validated file that is missing, unknown or not what was expected.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum FieldError {
    #[error("{file}: {field} is missing: expected {expected}")]
    Missing {
        file: String,
        field: String,
        expected: String,
    },
    #[error("{file}: unknown field {field}: {key} is not one of {allowed}")]
    Unknown {
        file: String,
        field: String,
        /// The key, quoted, escaped and truncated.
        key: String,
        allowed: String,
    },
    #[error("{file}: {field} is {value}: expected {expected}")]
    Invalid {
        file: String,
        field: String,
        /// The value, quoted (strings), escaped and truncated.
        value: String,
        expected: String,
    },
}

impl FieldError {
    /// The field path the error is about.
    #[must_use]
    pub fn field(&self) -> &str {
        match self {
            Self::Missing { field, .. }
            | Self::Unknown { field, .. }
            | Self::Invalid { field, .. } => field,
        }
    }
}

/// A value for an error message: strings quoted, everything escaped and truncated.
#[must_use]
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{}\"", crate::error::printable(s, 160)),
        other => crate::error::printable(&other.to_string(), 160),
    }
}

/// `parent.key`, with the key escaped and truncated (an empty key shown as `""`, so that a
/// message never names an empty field).
fn join(parent: &str, key: &str) -> String {
    let key = if key.is_empty() {
        "\"\"".to_owned()
    } else {
        crate::error::printable(key, 80)
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

/// A value of a file being walked, with where it is.
#[derive(Debug, Clone)]
pub struct Node<'a> {
    file: &'a str,
    path: String,
    value: &'a Value,
}

impl<'a> Node<'a> {
    /// The whole document of `file`.
    #[must_use]
    pub fn root(file: &'a str, value: &'a Value) -> Self {
        Self {
            file,
            path: String::new(),
            value,
        }
    }

    #[must_use]
    pub fn value(&self) -> &'a Value {
        self.value
    }

    /// The field path, `(document)` for the root.
    #[must_use]
    pub fn path(&self) -> &str {
        if self.path.is_empty() {
            "(document)"
        } else {
            &self.path
        }
    }

    /// An error saying this value is not `expected`.
    #[must_use]
    pub fn invalid(&self, expected: impl Into<String>) -> FieldError {
        FieldError::Invalid {
            file: self.file.to_owned(),
            field: self.path().to_owned(),
            value: show(self.value),
            expected: expected.into(),
        }
    }

    /// This value as a mapping whose keys are all in `allowed`.
    ///
    /// # Errors
    ///
    /// Not a mapping, or an unknown key.
    pub fn mapping(&self, allowed: &'static [&'static str]) -> Result<Mapping<'a>, FieldError> {
        let map = self
            .value
            .as_object()
            .ok_or_else(|| self.invalid(format!("a mapping of {}", allowed.join(", "))))?;
        if let Some(key) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(FieldError::Unknown {
                file: self.file.to_owned(),
                field: join(&self.path, key),
                key: show(&Value::String(key.clone())),
                allowed: allowed.join(", "),
            });
        }
        Ok(Mapping {
            node: self.clone(),
            map,
        })
    }

    /// The entries of a mapping with free keys (annotations, environments), in key order.
    ///
    /// # Errors
    ///
    /// Not a mapping.
    pub fn entries(&self, expected: &str) -> Result<Vec<(&'a str, Node<'a>)>, FieldError> {
        let map = self
            .value
            .as_object()
            .ok_or_else(|| self.invalid(expected))?;
        Ok(map
            .iter()
            .map(|(k, value)| (k.as_str(), self.child(&join(&self.path, k), value)))
            .collect())
    }

    /// This value as a string.
    ///
    /// # Errors
    ///
    /// Not a string.
    pub fn str(&self, expected: &str) -> Result<&'a str, FieldError> {
        self.value.as_str().ok_or_else(|| self.invalid(expected))
    }

    /// The items of a list, each named `path[i]`.
    ///
    /// # Errors
    ///
    /// Not a list.
    pub fn list(&self, expected: &str) -> Result<Vec<Node<'a>>, FieldError> {
        let items = self
            .value
            .as_array()
            .ok_or_else(|| self.invalid(expected))?;
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, value)| self.child(&format!("{}[{i}]", self.path), value))
            .collect())
    }

    fn child(&self, path: &str, value: &'a Value) -> Node<'a> {
        Node {
            file: self.file,
            path: path.to_owned(),
            value,
        }
    }
}

/// A mapping whose keys were checked against the allowed ones.
#[derive(Debug, Clone)]
pub struct Mapping<'a> {
    node: Node<'a>,
    map: &'a Map<String, Value>,
}

impl<'a> Mapping<'a> {
    /// The mapping itself, as a node.
    #[must_use]
    pub fn node(&self) -> &Node<'a> {
        &self.node
    }

    /// The value of `key`; an absent key and a null value are both `None`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<Node<'a>> {
        self.map
            .get(key)
            .filter(|v| !v.is_null())
            .map(|v| self.node.child(&join(&self.node.path, key), v))
    }

    /// The value of `key`, which must be present and not null.
    ///
    /// # Errors
    ///
    /// [`FieldError::Missing`] naming `expected`.
    pub fn required(&self, key: &str, expected: &str) -> Result<Node<'a>, FieldError> {
        self.get(key).ok_or_else(|| FieldError::Missing {
            file: self.node.file.to_owned(),
            field: join(&self.node.path, key),
            expected: expected.to_owned(),
        })
    }

    /// An optional string.
    ///
    /// # Errors
    ///
    /// Present but not a string.
    pub fn str(&self, key: &str, expected: &str) -> Result<Option<&'a str>, FieldError> {
        self.get(key).map(|n| n.str(expected)).transpose()
    }

    /// A required string.
    ///
    /// # Errors
    ///
    /// Missing or not a string.
    pub fn required_str(&self, key: &str, expected: &str) -> Result<&'a str, FieldError> {
        self.required(key, expected)?.str(expected)
    }

    /// An optional boolean.
    ///
    /// # Errors
    ///
    /// Present but not `true` or `false`.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, FieldError> {
        self.get(key)
            .map(|n| n.value.as_bool().ok_or_else(|| n.invalid("true or false")))
            .transpose()
    }

    /// An optional whole number.
    ///
    /// # Errors
    ///
    /// Present but not a non-negative whole number.
    pub fn u64(&self, key: &str, expected: &str) -> Result<Option<u64>, FieldError> {
        self.get(key)
            .map(|n| n.value.as_u64().ok_or_else(|| n.invalid(expected)))
            .transpose()
    }

    /// The items of an optional list; absent or null is empty.
    ///
    /// # Errors
    ///
    /// Present but not a list.
    pub fn list(&self, key: &str, expected: &str) -> Result<Vec<Node<'a>>, FieldError> {
        self.get(key).map_or(Ok(Vec::new()), |n| n.list(expected))
    }

    /// An optional nested mapping whose keys are all in `allowed`; absent or null reads as an
    /// empty mapping.
    ///
    /// # Errors
    ///
    /// Present but not a mapping, or an unknown key in it.
    pub fn mapping_or_empty(
        &self,
        key: &str,
        allowed: &'static [&'static str],
    ) -> Result<Mapping<'a>, FieldError> {
        static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
        Ok(self.mapping(key, allowed)?.unwrap_or_else(|| Mapping {
            node: self.node.child(&join(&self.node.path, key), &Value::Null),
            map: &EMPTY,
        }))
    }

    /// An optional nested mapping whose keys are all in `allowed`.
    ///
    /// # Errors
    ///
    /// Present but not a mapping, or an unknown key in it.
    pub fn mapping(
        &self,
        key: &str,
        allowed: &'static [&'static str],
    ) -> Result<Option<Mapping<'a>>, FieldError> {
        self.get(key).map(|n| n.mapping(allowed)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    const FILE: &str = "f.yaml";

    fn doc(text: &str) -> Value {
        documents(text.as_bytes()).unwrap().remove(0)
    }

    #[test]
    fn empty_documents_are_dropped_and_several_are_kept_in_order() {
        let docs = documents(b"a: 1\n---\n# nothing\n---\nb: 2\n").unwrap();
        assert_eq!(
            docs,
            [serde_json::json!({"a": 1}), serde_json::json!({"b": 2})]
        );
        assert!(documents(b"").unwrap().is_empty());
    }

    #[test]
    fn loading_refuses_bad_bytes_duplicate_keys_and_alias_bombs() {
        let e = documents(b"a: \xff\n").unwrap_err();
        assert!(matches!(e, LoadError::NotUtf8 { offset: 3 }), "{e}");
        assert!(matches!(
            documents(b"a: 1\na: 2\n"),
            Err(LoadError::Syntax(_))
        ));
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            let _ = writeln!(
                bomb,
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]"
            );
        }
        let e = documents(bomb.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("alias bombs are refused"), "{e}");
    }

    #[test]
    fn typed_reads_straight_into_a_type() {
        #[derive(serde::Deserialize)]
        struct T {
            n: u32,
        }
        assert_eq!(typed::<T>(b"n: 7\n").unwrap().n, 7);
        assert!(typed::<T>(b"n: seven\n").is_err());
    }

    #[test]
    fn strict_json_refuses_duplicate_keys_and_trailing_values() {
        assert_eq!(json_value(r#"{"a": [1, true]}"#).unwrap()["a"][1], true);
        assert!(
            json_value(r#"{"a": 1, "a": 2}"#)
                .unwrap_err()
                .to_string()
                .contains("duplicate key")
        );
        assert!(json_value("{} {}").is_err());
        assert!(json_value("").is_err());
    }

    #[test]
    fn the_walker_names_file_path_value_and_expectation() {
        let v = doc("spec:\n  name: 5\n  items: [a, 7]\n  on: maybe\n");
        let root = Node::root(FILE, &v).mapping(&["spec"]).unwrap();
        let spec = root
            .mapping("spec", &["name", "items", "on", "n"])
            .unwrap()
            .unwrap();
        assert_eq!(
            spec.str("name", "a name").unwrap_err().to_string(),
            "f.yaml: spec.name is 5: expected a name"
        );
        let items = spec.list("items", "a list").unwrap();
        assert_eq!(items[0].str("x").unwrap(), "a");
        assert_eq!(
            items[1].str("a string").unwrap_err().to_string(),
            "f.yaml: spec.items[1] is 7: expected a string"
        );
        assert_eq!(
            spec.bool("on").unwrap_err().to_string(),
            "f.yaml: spec.on is \"maybe\": expected true or false"
        );
        assert_eq!(
            spec.required_str("n", "a number").unwrap_err().to_string(),
            "f.yaml: spec.n is missing: expected a number"
        );
        assert_eq!(spec.u64("n", "a count"), Ok(None));
        assert!(spec.list("n", "a list").unwrap().is_empty());
    }

    #[test]
    fn an_unknown_key_is_named_with_its_path_and_the_allowed_ones() {
        let v = doc("spec: {nmae: x}\n");
        let root = Node::root(FILE, &v).mapping(&["spec"]).unwrap();
        let e = root.mapping("spec", &["name", "size"]).unwrap_err();
        assert_eq!(e.field(), "spec.nmae");
        assert_eq!(
            e.to_string(),
            "f.yaml: unknown field spec.nmae: \"nmae\" is not one of name, size"
        );
        let e = Node::root(FILE, &doc("[1]\n"))
            .mapping(&["spec"])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.yaml: (document) is [1]: expected a mapping of spec"
        );
    }

    #[test]
    fn hostile_keys_and_values_stay_on_one_line_and_are_truncated() {
        let long = "ü".repeat(500);
        let v = doc(&format!("\"x\\nreleasectl: ok\": 1\nname: \"{long}\"\n"));
        let e = Node::root(FILE, &v).mapping(&["name"]).unwrap_err();
        assert_eq!(e.to_string().lines().count(), 1, "{e}");
        let v = doc(&format!("name: \"a\\nb{long}\"\n"));
        let m = Node::root(FILE, &v).mapping(&["name"]).unwrap();
        let e = m.get("name").unwrap().invalid("short");
        assert_eq!(e.to_string().lines().count(), 1, "{e}");
        assert!(e.to_string().len() < 600, "{e}");
    }

    #[test]
    fn an_empty_key_is_named_as_such_never_as_an_empty_field() {
        let v = doc("\"\": 1\n");
        let e = Node::root(FILE, &v).mapping(&["spec"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.yaml: unknown field \"\": \"\" is not one of spec"
        );
        let v = doc("spec:\n  \"\": x\n");
        let root = Node::root(FILE, &v).mapping(&["spec"]).unwrap();
        let e = root.mapping("spec", &["name"]).unwrap_err();
        assert_eq!(e.field(), "spec.\"\"");
    }
}
