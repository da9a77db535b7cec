//! The fast path of `generate`: documents passed through as their author wrote them.
//!
//! Parsing every manifest into values and rendering them again was most of a cold
//! `generate` (docs/benchmarks.md). Most manifests need neither: [`scan`] reads a file's YAML
//! events once (the same parser, granit, that serde-saphyr uses), checks each document's
//! identity, and returns the byte range of each document's text, which `generate` writes as is.
//!
//! Invariants:
//!
//! - [`scan`] answers only for files it fully understands, and then agrees with
//!   [`super::parse_file`]: same documents, same order and indexes, same identities, and each
//!   range parses (alone, as YAML) to the value `parse_file` gives. Anything it is not sure of
//!   makes it return `None` and the caller takes the full path, which yields the same result or
//!   the same error as before this module existed. "Not sure" covers: a syntax error, a
//!   directive, a tag, an anchor or alias (and so merge keys' usual companions), a `<<` or other
//!   key that is not plainly a string, a duplicate key, a key that is not a scalar, an identity
//!   field (`apiVersion`, `kind`, `metadata.name`, `metadata.generateName`, the latter even
//!   beside a `name`) that is not plainly a non-empty string, neither `name` nor
//!   `generateName`, a plain scalar that may be a non-finite float
//!   (`.nan`, `-.inf`), a root that is not a mapping or an empty document, a root mapping that
//!   does not start its line, nesting deeper than the full path allows, and more documents than
//!   it allows.
//! - A range starts at the beginning of the root mapping's first line and ends where the
//!   document ends (the next `---` or `...` marker, or the end of the file), so it keeps the
//!   document's indentation and drops only the markers and comments before the root node.

use std::borrow::Cow;
use std::ops::Range;

use granit_parser::{Event, Parser, ScalarStyle, StructureStyle};

// The full path's limits, which the fast path must not exceed.
use crate::yaml::{MAX_DEPTH, MAX_DOCUMENTS};

use super::ObjectName;

/// A document the fast path understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: ObjectName,
    /// Index among the file's non-empty documents, as [`super::Object::index`].
    pub index: usize,
    /// Byte range of the document's text in the scanned text.
    pub range: Range<usize>,
}

/// Where a mapping sits, for the fields the identity is read from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Root,
    Metadata,
    Other,
}

struct Frame<'a> {
    is_map: bool,
    role: Role,
    /// In a mapping: the next node is a key.
    expect_key: bool,
    /// The key whose value comes next, kept only in the root and `metadata` mappings.
    key: Option<Cow<'a, str>>,
    keys: Vec<Cow<'a, str>>,
}

#[derive(Default)]
struct Identity {
    api_version: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    generate_name: Option<String>,
    /// Empty when absent, null or empty.
    namespace: Option<String>,
}

/// The documents of one YAML file (without a byte-order mark), or `None` when the full path
/// must decide.
#[must_use]
pub fn scan(text: &str) -> Option<Vec<Scanned>> {
    let options = granit_parser::options! { emit_comments: false };
    let mut documents = Vec::new();
    let mut stack: Vec<Frame<'_>> = Vec::new();
    // Key vectors of closed mappings, reused: most mappings are small and short-lived.
    let mut spare: Vec<Vec<Cow<'_, str>>> = Vec::new();
    let mut identity = Identity::default();
    let mut root_start: Option<usize> = None;
    let mut empty_document = false;
    for event in Parser::new_from_str_with_options(text, options) {
        let (event, span) = event.ok()?;
        match event {
            Event::StreamStart | Event::StreamEnd => {}
            Event::DocumentStart(_, version) => {
                if version.is_some() {
                    return None;
                }
                identity = Identity::default();
                root_start = None;
                empty_document = false;
            }
            Event::DocumentEnd => {
                if empty_document {
                    continue;
                }
                let start = root_start?;
                let end = span.start.byte_offset()?;
                let Identity {
                    api_version: Some(api_version),
                    kind: Some(kind),
                    name,
                    generate_name,
                    namespace,
                } = std::mem::take(&mut identity)
                else {
                    return None;
                };
                // `name` wins, as in the full path and in Kubernetes.
                let name = match (name, generate_name) {
                    (Some(name), _) => ObjectName::Name(name),
                    (None, Some(prefix)) => ObjectName::GenerateName(prefix),
                    (None, None) => return None,
                };
                if documents.len() == MAX_DOCUMENTS || end < start {
                    return None;
                }
                documents.push(Scanned {
                    api_version,
                    kind,
                    namespace: namespace.filter(|n| !n.is_empty()),
                    name,
                    index: documents.len(),
                    range: start..end,
                });
            }
            Event::Scalar(value, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return None;
                }
                let Some(top) = stack.last_mut() else {
                    // A scalar root: only an empty document (comments, `---` alone, `null`)
                    // is skipped; anything else is for the full path to refuse.
                    if style == ScalarStyle::Plain && is_null(&value) {
                        empty_document = true;
                        continue;
                    }
                    return None;
                };
                if top.is_map && top.expect_key {
                    if style == ScalarStyle::Plain && !is_plain_string(&value) {
                        return None;
                    }
                    top.expect_key = false;
                    if top.role != Role::Other {
                        top.key = Some(value.clone());
                    }
                    top.keys.push(value);
                    continue;
                }
                if style == ScalarStyle::Plain && maybe_non_finite(&value) {
                    return None;
                }
                if top.is_map {
                    top.expect_key = true;
                    let field = identity_field(top, &mut identity);
                    if let Some(slot) = field {
                        *slot = Some(identity_string(&value, style)?);
                    } else if top.role == Role::Metadata && top.key.as_deref() == Some("namespace")
                    {
                        identity.namespace = Some(namespace(&value, style)?.to_owned());
                    } else if top.role == Role::Root && top.key.as_deref() == Some("metadata") {
                        return None; // metadata must be a mapping
                    }
                }
            }
            Event::MappingStart(style, anchor, ref tag)
            | Event::SequenceStart(style, anchor, ref tag) => {
                if anchor != 0 || tag.is_some() || stack.len() >= MAX_DEPTH {
                    return None;
                }
                let is_map = matches!(event, Event::MappingStart(..));
                let role = match stack.last_mut() {
                    None => {
                        if !is_map || style != StructureStyle::Block {
                            return None;
                        }
                        root_start = Some(line_start(text, span.start.byte_offset()?)?);
                        Role::Root
                    }
                    Some(top) if top.is_map && top.expect_key => return None, // complex key
                    Some(top) => {
                        if top.is_map {
                            top.expect_key = true;
                            match (top.role, top.key.as_deref()) {
                                (Role::Root, Some("metadata")) if is_map => Role::Metadata,
                                (Role::Root, Some("metadata" | "apiVersion" | "kind"))
                                | (Role::Metadata, Some("name" | "generateName" | "namespace")) => {
                                    return None;
                                }
                                _ => Role::Other,
                            }
                        } else {
                            Role::Other
                        }
                    }
                };
                stack.push(Frame {
                    is_map,
                    role,
                    expect_key: true,
                    key: None,
                    keys: spare.pop().unwrap_or_default(),
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let mut frame = stack.pop()?;
                if frame.is_map && has_duplicate(&mut frame.keys) {
                    return None;
                }
                frame.keys.clear();
                spare.push(frame.keys);
            }
            // Aliases, and whatever else a parser may report.
            _ => return None,
        }
    }
    Some(documents)
}

/// The identity slot the value in the current position fills, if any.
fn identity_field<'i>(
    top: &Frame<'_>,
    identity: &'i mut Identity,
) -> Option<&'i mut Option<String>> {
    match (top.role, top.key.as_deref()) {
        (Role::Root, Some("apiVersion")) => Some(&mut identity.api_version),
        (Role::Root, Some("kind")) => Some(&mut identity.kind),
        (Role::Metadata, Some("name")) => Some(&mut identity.name),
        (Role::Metadata, Some("generateName")) => Some(&mut identity.generate_name),
        _ => None,
    }
}

/// A non-empty string for `apiVersion`, `kind`, `metadata.name` or `metadata.generateName`,
/// or `None` to defer.
fn identity_string(value: &str, style: ScalarStyle) -> Option<String> {
    let plain_ok = style != ScalarStyle::Plain || is_plain_string(value);
    (plain_ok && !value.is_empty()).then(|| value.to_owned())
}

/// `metadata.namespace`: a string, empty for none (null or empty); `None` to defer.
fn namespace(value: &str, style: ScalarStyle) -> Option<&str> {
    if style == ScalarStyle::Plain && is_null(value) {
        return Some("");
    }
    (style != ScalarStyle::Plain || is_plain_string(value)).then_some(value)
}

/// The start of the line holding `offset`, when only spaces precede it there.
fn line_start(text: &str, offset: usize) -> Option<usize> {
    let before = text.get(..offset)?;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    before[start..].bytes().all(|b| b == b' ').then_some(start)
}

fn is_null(value: &str) -> bool {
    matches!(value, "" | "~" | "null" | "Null" | "NULL")
}

/// Whether a plain scalar is a string under every resolution a reader may apply (YAML 1.1 as
/// Kubernetes reads it, and YAML 1.2): it starts with a letter or `/` and is not one of the
/// boolean or null words. Conservative: `false` only means "not sure".
fn is_plain_string(value: &str) -> bool {
    let Some(first) = value.bytes().next() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == b'/')
        && !matches!(
            value,
            "y" | "Y"
                | "yes"
                | "Yes"
                | "YES"
                | "n"
                | "N"
                | "no"
                | "No"
                | "NO"
                | "true"
                | "True"
                | "TRUE"
                | "false"
                | "False"
                | "FALSE"
                | "on"
                | "On"
                | "ON"
                | "off"
                | "Off"
                | "OFF"
                | "null"
                | "Null"
                | "NULL"
        )
}

/// Whether a plain scalar could be `.inf`, `-.inf` or `.nan` in some spelling, which the full
/// path refuses (JSON, and so the API server, has neither).
fn maybe_non_finite(value: &str) -> bool {
    let b = value.as_bytes();
    matches!(b.first(), Some(b'.'))
        || (matches!(b.first(), Some(b'+' | b'-')) && b.get(1) == Some(&b'.'))
}

fn has_duplicate(keys: &mut [Cow<'_, str>]) -> bool {
    match keys.len() {
        0 | 1 => false,
        2 => keys[0] == keys[1],
        _ => {
            keys.sort_unstable();
            keys.windows(2).any(|w| w[0] == w[1])
        }
    }
}

/// Checks this module's invariant on one file against the full path: [`super::documents`] and
/// [`super::parse_file`] agree on success or failure (with the same message), on the documents
/// and their identities, and each document's text parses alone to the full path's value.
/// Returns how many documents kept their text. For tests and the `verbatim` fuzz target.
#[doc(hidden)]
pub fn check_agreement(path: &str, data: &[u8]) -> Result<usize, String> {
    let (documents, objects) = match (super::documents(path, data), super::parse_file(path, data)) {
        (Ok(documents), Ok(objects)) => (documents, objects),
        (Err(a), Err(b)) if a.to_string() == b.to_string() => return Ok(0),
        (a, b) => return Err(format!("fast path {a:?}, full path {b:?}")),
    };
    if documents.len() != objects.len() {
        return Err(format!(
            "{} documents, full path {}",
            documents.len(),
            objects.len()
        ));
    }
    let mut kept = 0;
    for (d, o) in documents.iter().zip(&objects) {
        let same = (
            &d.api_version,
            &d.kind,
            &d.namespace,
            &d.name,
            &d.source,
            d.index,
        ) == (
            &o.api_version,
            &o.kind,
            &o.namespace,
            &o.name,
            &o.source,
            o.index,
        );
        if !same {
            return Err(format!("identity {d:?}, full path {o:?}"));
        }
        let mut written = Vec::new();
        super::write_document(&mut written, d, data).map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&written);
        let again = super::parse_file("again.yaml", &written)
            .map_err(|e| format!("written document does not parse: {e}: {text:?}"))?;
        match again.as_slice() {
            [one] if one.value == o.value => {}
            _ => return Err(format!("written document {text:?} is not {:?}", o.value)),
        }
        kept += usize::from(matches!(d.body, super::Body::Verbatim(_)));
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web, tier: \"1\"}
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: app
          image: example.com/web:1.0
          args: [\"--port\", \"8080\"]
          env:
            - {name: A, value: \"yes\"}
";

    /// Agreement holds and `kept` documents kept their text.
    #[track_caller]
    fn agrees(text: &str, kept: usize) {
        assert_eq!(
            check_agreement("a.yaml", text.as_bytes()),
            Ok(kept),
            "{text}"
        );
    }

    #[test]
    fn plain_manifests_keep_their_text() {
        agrees(DEPLOYMENT, 1);
        let stream = format!("# head\n---\n{DEPLOYMENT}---\n\n---\n# c\n{DEPLOYMENT}...\n");
        let scanned = scan(&stream).unwrap();
        assert_eq!(scanned.len(), 2);
        assert_eq!(scanned[1].index, 1);
        assert_eq!(&stream[scanned[0].range.clone()], DEPLOYMENT);
        assert_eq!(&stream[scanned[1].range.clone()], DEPLOYMENT);
        // Duplicate documents are the full path's business too (sorting keeps both).
        agrees(&stream, 2);
    }

    #[test]
    fn helm_style_output_keeps_its_text() {
        // What `helm template` prints: source comments, explicit markers, block scalars with
        // chomping indicators, JSON in annotations, quoted numbers, empty maps and lists.
        let text = r#"---
# Source: shop/templates/serviceaccount.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: shop
  labels:
    helm.sh/chart: shop-1.2.3
    app.kubernetes.io/version: "1.16.0"
---
# Source: shop/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: shop-scripts
  annotations:
    checksum/config: 0f1e2d3c
    example.com/json: '{"a": [1, 2], "b": {"c": null}}'
data:
  start.sh: |-
    #!/bin/sh
    set -eu
    exec /app --port "${PORT:-8080}"
  motd: >
    folded
    text

  empty: ""
---
# Source: shop/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  namespace: "shop"
spec:
  replicas: 3
  revisionHistoryLimit: 0
  template:
    metadata:
      annotations: {}
    spec:
      securityContext: {runAsNonRoot: true, fsGroup: 2000}
      volumes:
        - name: scripts
          configMap: {name: shop-scripts, defaultMode: 0755}
      containers:
        - name: shop
          image: "example.com/shop:1.16.0"
          command: ["/bin/sh", "/scripts/start.sh"]
          env: []
          resources:
            limits: {cpu: 500m, memory: 128Mi}
"#;
        agrees(text, 3);
    }

    #[test]
    fn identity_fields_are_read_as_the_full_path_reads_them() {
        let text =
            "kind: 'Service'\napiVersion: \"v1\"\nmetadata:\n  namespace: ~\n  name: \"0123\"\n";
        let scanned = scan(text).unwrap();
        assert_eq!(scanned[0].kind, "Service");
        assert_eq!(scanned[0].name, ObjectName::Name("0123".to_owned()));
        assert_eq!(scanned[0].namespace, None);
        agrees(text, 1);
        agrees(
            "apiVersion: v1\nkind: A\nmetadata: {name: a, namespace: ''}\n",
            1,
        );
    }

    #[test]
    fn block_scalars_and_markers_inside_them_stay_in_their_document() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  a: |\n    ---\n    ...\n  b: >-\n    folded\n    text\n";
        agrees(text, 1);
        agrees(&format!("{text}---\n{text}"), 2);
    }

    #[test]
    fn an_indented_root_keeps_its_indentation() {
        agrees(
            "---\n  apiVersion: v1\n  kind: A\n  metadata:\n    name: a\n",
            1,
        );
        // On the marker's line it cannot be cut out: the full path renders it.
        agrees("--- {apiVersion: v1, kind: A, metadata: {name: a}}\n", 0);
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        agrees(&format!("\u{feff}{DEPLOYMENT}"), 1);
    }

    #[test]
    fn anything_unusual_goes_to_the_full_path() {
        let base = "apiVersion: v1\nkind: A\nmetadata: {name: a}\n";
        for extra in [
            "x: &a 1\ny: *a\n",  // anchor and alias
            "x: !!str 1\n",      // tag
            "x: {<<: {y: 1}}\n", // merge key
            "x: {1: a}\n",       // a key that is not plainly a string
            "x: {yes: a}\n",     // YAML 1.1 boolean key
            "x: .nan\n",         // non-finite float
            "x: -.Inf\n",        //
            "x: {? [a] : b}\n",  // complex key
        ] {
            let text = format!("{base}{extra}");
            assert_eq!(scan(&text), None, "{text}");
            agrees(&text, 0);
        }
        for text in [
            "%YAML 1.1\n---\napiVersion: v1\nkind: A\nmetadata: {name: a}\n",
            "apiVersion: v1\nkind: 1\nmetadata: {name: a}\n",
            "apiVersion: v1\nkind: A\nmetadata: {name: true}\n",
            "apiVersion: v1\nkind: A\nmetadata: {name: ''}\n",
            "apiVersion: v1\nkind: A\nmetadata: {name: a, namespace: 7}\n",
            "apiVersion: v1\nkind: A\nmetadata: [a]\n",
            "apiVersion: v1\nkind: A\n",
            "- a\n",
            "just text\n",
            "apiVersion: v1\nkind: A\nmetadata: {name: a}\nkind: B\n",
            "apiVersion: v1\nkind: A\nmetadata: {name: a, name: b}\n",
            "apiVersion: v1\nkind: [A]\nmetadata: {name: a}\n",
            "apiVersion: v1\nkind: A\nmetadata: {name: a}\nx: [unclosed\n",
        ] {
            assert_eq!(scan(text), None, "{text}");
            assert_eq!(check_agreement("a.yaml", text.as_bytes()), Ok(0), "{text}");
        }
    }

    #[test]
    fn a_generate_name_document_keeps_its_text_and_its_identity() {
        let hook = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: migrate-\n  annotations:\n    argocd.argoproj.io/hook: PostSync\nspec:\n  template:\n    spec:\n      containers: [{name: m, image: example.com/m:1}]\n      restartPolicy: Never\n";
        let scanned = scan(hook).unwrap();
        assert_eq!(
            scanned[0].name,
            ObjectName::GenerateName("migrate-".to_owned())
        );
        agrees(hook, 1);
        // The same string as a name is another object, in both paths.
        let named = hook.replace("generateName", "name");
        assert_eq!(
            scan(&named).unwrap()[0].name,
            ObjectName::Name("migrate-".to_owned())
        );
        agrees(&format!("{hook}---\n{named}"), 2);
        // `name` wins, in either order.
        for metadata in [
            "{name: a, generateName: b-}",
            "{generateName: b-, name: a}",
            "{generateName: \"b-\", name: 'a'}",
        ] {
            let text = format!("apiVersion: v1\nkind: Pod\nmetadata: {metadata}\n");
            assert_eq!(
                scan(&text).unwrap()[0].name,
                ObjectName::Name("a".to_owned()),
                "{text}"
            );
            agrees(&text, 1);
        }
    }

    #[test]
    fn an_unusual_generate_name_goes_to_the_full_path_which_agrees() {
        for metadata in [
            // Beside a name the full path ignores it; the fast path is not sure.
            "{name: a, generateName: 7}",
            "{name: a, generateName: [x]}",
            "{name: a, generateName: {x: y}}",
            "{name: a, generateName: ''}",
            // Without a name it must be a non-empty string.
            "{generateName: 7}",
            "{generateName: ''}",
            "{generateName: ~}",
            "{generateName: [x]}",
            "{generateName: yes}",
            "{generateName: a-, generateName: b-}",
            // Neither: the full path names the missing field.
            "{namespace: n}",
            "{}",
        ] {
            let text = format!("apiVersion: v1\nkind: Pod\nmetadata: {metadata}\n");
            assert_eq!(scan(&text), None, "{text}");
            assert_eq!(check_agreement("a.yaml", text.as_bytes()), Ok(0), "{text}");
        }
        let err = super::super::parse_file("a.yaml", b"apiVersion: v1\nkind: Pod\nmetadata: {}\n")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "a.yaml document 1: metadata.name (or metadata.generateName) is missing"
        );
    }

    #[test]
    fn empty_documents_are_skipped_and_not_counted() {
        let text = format!("---\n---\nnull\n---\n# only a comment\n---\n{DEPLOYMENT}");
        let scanned = scan(&text).unwrap();
        assert_eq!(scanned.len(), 1);
        assert_eq!(scanned[0].index, 0);
        agrees(&text, 1);
        agrees("", 0);
    }

    #[test]
    fn nesting_beyond_the_full_path_limit_is_not_scanned() {
        let deep = format!(
            "apiVersion: v1\nkind: A\nmetadata: {{name: a}}\nx: {}{}\n",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(scan(&deep), None);
    }
}
