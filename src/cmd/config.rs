//! `config get-contexts | current-context | use-context | set-context | delete-context`: the
//! named contexts of the config file (see `crate::config`). Writes replace the file whole
//! (a temporary file renamed over it), so a crash never leaves half a file.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::cli::ConfigCommand;
use crate::config::{Config, Context};
use crate::exit::{Context as _, InvalidInput, Result};
use crate::settings::{Flags, Output};

/// Reads the config file; a missing file is an empty config.
pub fn load(path: &Path) -> Result<Config> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(crate::config::parse(&path.display().to_string(), &bytes)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn save(path: &Path, config: &Config) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(config.render().as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn path_or_error(path: Option<PathBuf>) -> Result<PathBuf> {
    path.ok_or_else(|| {
        InvalidInput(
            "no config file: set RELEASECTL_CONFIG, XDG_CONFIG_HOME or HOME to say where it is"
                .into(),
        )
        .into()
    })
}

pub fn run(
    command: &ConfigCommand,
    path: Option<PathBuf>,
    flags: &Flags,
) -> Result<super::Outcome> {
    let output = flags.output;
    let path = path_or_error(path)?;
    let file = path.display().to_string();
    let mut config = load(&path)?;
    let mut out = Vec::new();
    match command {
        ConfigCommand::GetContexts => match output {
            Output::Json => {
                let contexts: Vec<serde_json::Value> = config
                    .contexts
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "name": c.name,
                            "current": config.current_context.as_deref() == Some(c.name.as_str()),
                            "gitops": c.gitops,
                            "gitops_branch": c.gitops_branch,
                            "registry": c.registry,
                            "insecure_registries": c.insecure_registries,
                            "actor": c.actor,
                            "server": c.server,
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&contexts)?)?;
            }
            Output::Text => {
                writeln!(out, "CURRENT  NAME  GITOPS  BRANCH  REGISTRY  ACTOR")?;
                for c in &config.contexts {
                    let current = config.current_context.as_deref() == Some(c.name.as_str());
                    writeln!(
                        out,
                        "{}  {}  {}  {}  {}  {}",
                        if current { "*" } else { " " },
                        c.name,
                        c.gitops.as_deref().unwrap_or("-"),
                        c.gitops_branch.as_deref().unwrap_or("-"),
                        c.registry.as_deref().unwrap_or("-"),
                        c.actor.as_deref().unwrap_or("-"),
                    )?;
                }
            }
        },
        ConfigCommand::CurrentContext => {
            let name = config
                .current_context
                .as_deref()
                .ok_or_else(|| InvalidInput(format!("{file}: no current context is set")))?;
            writeln!(out, "{name}")?;
        }
        ConfigCommand::UseContext { name } => {
            config.select(&file, Some(name))?;
            config.current_context = Some(name.clone());
            save(&path, &config)?;
            writeln!(out, "Switched to context {name}.")?;
        }
        ConfigCommand::SetContext { name } => {
            let verb = set(&mut config, name, flags);
            save(&path, &config)?;
            writeln!(out, "Context {name} {verb}.")?;
        }
        ConfigCommand::DeleteContext { name } => {
            config.select(&file, Some(name))?;
            config.contexts.retain(|c| &c.name != name);
            if config.current_context.as_deref() == Some(name.as_str()) {
                config.current_context = None;
            }
            save(&path, &config)?;
            writeln!(out, "Deleted context {name}.")?;
        }
    }
    Ok(super::Outcome::ok(out))
}

/// Creates or updates a context; says which.
fn set(config: &mut Config, name: &str, args: &Flags) -> &'static str {
    let (context, verb) = match config.contexts.iter().position(|c| c.name == name) {
        Some(i) => (&mut config.contexts[i], "modified"),
        None => {
            config.contexts.push(Context {
                name: name.to_owned(),
                ..Context::default()
            });
            (config.contexts.last_mut().expect("just pushed"), "created")
        }
    };
    if let Some(g) = &args.gitops {
        context.gitops = Some(g.to_string());
    }
    if let Some(b) = &args.gitops_branch {
        context.gitops_branch = Some(b.clone());
    }
    if let Some(r) = &args.registry {
        context.registry = Some(r.to_string_value());
    }
    if !args.insecure_registries.is_empty() {
        context
            .insecure_registries
            .clone_from(&args.insecure_registries);
    }
    if let Some(a) = &args.actor {
        context.actor = Some(a.clone());
    }
    if let Some(s) = &args.server {
        context.server = Some(s.clone());
    }
    if config.current_context.is_none() {
        config.current_context = Some(name.to_owned());
    }
    verb
}
