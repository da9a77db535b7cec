//! The user's config file: named contexts (a GitOps repository and branch, a registry, the
//! registries spoken to over plain HTTP, who acts), as kubectl and argocd keep them.
//!
//! `$XDG_CONFIG_HOME/releasectl/config.yaml` (else `~/.config/releasectl/config.yaml`, or the
//! file `RELEASECTL_CONFIG` names). Flags and environment variables win over the context; the
//! Argo CD plugin (`generate`) never reads the file: a sidecar is configured by its
//! environment only. Parsing is strict, like every file of ours.

use std::fmt::Write as _;

use crate::yaml::{FieldError, Node};

/// Everything the config file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub current_context: Option<String>,
    pub contexts: Vec<Context>,
}

/// One named context. Every field is optional: what it leaves out comes from flags, the
/// environment or the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    pub name: String,
    pub gitops: Option<String>,
    pub gitops_branch: Option<String>,
    pub registry: Option<String>,
    pub insecure_registries: Vec<String>,
    pub actor: Option<String>,
    /// A `releasectl serve` to act through (`--server`).
    pub server: Option<String>,
}

/// Why the config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {reason}")]
    Yaml { file: String, reason: String },
    #[error("{file}: expected one YAML document, found {count}")]
    DocumentCount { file: String, count: usize },
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("{file}: context {name} is defined twice")]
    Duplicate { file: String, name: String },
    #[error("{file}: no context {name}: expected one of {known}")]
    Unknown {
        file: String,
        name: String,
        known: String,
    },
}

crate::exit_class!(ConfigError => Usage);

const TOP: &[&str] = &["current-context", "contexts"];
const CONTEXT: &[&str] = &[
    "name",
    "gitops",
    "gitops-branch",
    "registry",
    "insecure-registries",
    "actor",
    "server",
];

/// Parses the config file. An empty file is an empty config.
pub fn parse(file: &str, bytes: &[u8]) -> Result<Config, ConfigError> {
    let docs = crate::yaml::documents(bytes).map_err(|e| ConfigError::Yaml {
        file: file.to_owned(),
        reason: e.to_string(),
    })?;
    let doc = match docs.as_slice() {
        [] => return Ok(Config::default()),
        [doc] => doc,
        many => {
            return Err(ConfigError::DocumentCount {
                file: file.to_owned(),
                count: many.len(),
            });
        }
    };
    let top = Node::root(file, doc).mapping(TOP)?;
    let mut config = Config {
        current_context: top
            .str("current-context", "a context name")?
            .map(str::to_owned),
        contexts: Vec::new(),
    };
    for node in top.list("contexts", "a list of contexts")? {
        let m = node.mapping(CONTEXT)?;
        let text = |key: &str| -> Result<Option<String>, FieldError> {
            Ok(m.str(key, "a string")?.map(str::to_owned))
        };
        let context = Context {
            name: m.required_str("name", "a context name")?.to_owned(),
            gitops: text("gitops")?,
            gitops_branch: text("gitops-branch")?,
            registry: text("registry")?,
            insecure_registries: m
                .list("insecure-registries", "a list of host:port")?
                .iter()
                .map(|n| n.str("host:port").map(str::to_owned))
                .collect::<Result<_, _>>()?,
            actor: text("actor")?,
            server: text("server")?,
        };
        if config.contexts.iter().any(|c| c.name == context.name) {
            return Err(ConfigError::Duplicate {
                file: file.to_owned(),
                name: crate::text::excerpt(&context.name),
            });
        }
        config.contexts.push(context);
    }
    Ok(config)
}

impl Config {
    /// The context named `name`, else the current one; `Ok(None)` when neither is set.
    pub fn select(&self, file: &str, name: Option<&str>) -> Result<Option<&Context>, ConfigError> {
        let Some(name) = name.or(self.current_context.as_deref()) else {
            return Ok(None);
        };
        self.contexts
            .iter()
            .find(|c| c.name == name)
            .map(Some)
            .ok_or_else(|| ConfigError::Unknown {
                file: file.to_owned(),
                name: crate::text::excerpt(name),
                known: self.known(),
            })
    }

    /// The context names, for messages.
    #[must_use]
    pub fn known(&self) -> String {
        if self.contexts.is_empty() {
            "none (add one with `releasectl config set-context`)".into()
        } else {
            self.contexts
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    }

    /// The file's text. Strings are written as JSON strings, which YAML reads back as they are.
    #[must_use]
    pub fn render(&self) -> String {
        let q = |s: &str| serde_json::Value::from(s).to_string();
        let mut out = String::new();
        if let Some(c) = &self.current_context {
            let _ = writeln!(out, "current-context: {}", q(c));
        }
        out.push_str("contexts:");
        if self.contexts.is_empty() {
            out.push_str(" []");
        }
        out.push('\n');
        for c in &self.contexts {
            let _ = writeln!(out, "  - name: {}", q(&c.name));
            for (key, value) in [
                ("gitops", &c.gitops),
                ("gitops-branch", &c.gitops_branch),
                ("registry", &c.registry),
                ("actor", &c.actor),
                ("server", &c.server),
            ] {
                if let Some(v) = value {
                    let _ = writeln!(out, "    {key}: {}", q(v));
                }
            }
            if !c.insecure_registries.is_empty() {
                let list: Vec<String> = c.insecure_registries.iter().map(|s| q(s)).collect();
                let _ = writeln!(out, "    insecure-registries: [{}]", list.join(", "));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "config.yaml";

    #[test]
    fn a_config_round_trips_through_its_rendering() {
        let config = Config {
            current_context: Some("prod".into()),
            contexts: vec![
                Context {
                    name: "prod".into(),
                    gitops: Some("https://git.example.com/ops/gitops.git".into()),
                    gitops_branch: Some("main".into()),
                    registry: Some("registry.example.com/releases".into()),
                    insecure_registries: vec!["localhost:5000".into()],
                    actor: Some("alice@company.com".into()),
                    server: Some("https://releasectl.example.com".into()),
                },
                Context {
                    name: "lab: \"x\"".into(),
                    ..Context::default()
                },
            ],
        };
        assert_eq!(parse(FILE, config.render().as_bytes()).unwrap(), config);
    }

    #[test]
    fn an_unknown_key_names_the_field() {
        let err = parse(FILE, b"contexts:\n  - name: a\n    gitop: x\n").unwrap_err();
        assert!(err.to_string().contains("gitop"), "{err}");
    }

    #[test]
    fn selecting_an_unknown_context_lists_the_known_ones() {
        let config = parse(FILE, b"contexts: [{name: a}, {name: b}]\n").unwrap();
        let err = config.select(FILE, Some("c")).unwrap_err().to_string();
        assert!(err.contains("no context c: expected one of a, b"), "{err}");
        assert_eq!(config.select(FILE, None).unwrap(), None);
        assert_eq!(config.select(FILE, Some("b")).unwrap().unwrap().name, "b");
    }

    #[test]
    fn a_context_defined_twice_is_refused() {
        let err = parse(FILE, b"contexts: [{name: a}, {name: a}]\n").unwrap_err();
        assert!(err.to_string().contains("defined twice"), "{err}");
    }
}
