//! One file per subcommand. Each takes its arguments and the run's [`Settings`], makes one
//! call into the domain, and returns an [`Outcome`]: the report for stdout and how the run
//! ended. A refusal is an outcome (its report is printed, exit 4), not an error. A command
//! never imports another command.

pub mod approve;
pub mod check;
pub mod completion;
pub mod config;
pub mod copy;
pub mod create;
pub mod deploy;
pub mod diff;
pub mod generate;
pub mod inspect;
pub mod release;
pub mod serve;
pub mod sign;
pub mod status;
pub mod summary;
pub mod version;

use std::io::Write;
use std::path::Path;

use crate::exit::{Context as _, Exit, InvalidInput};
use crate::format::Expected;
use crate::ids::CommitSha;
use crate::oci::ImageRef;
use crate::settings::Settings;

/// Where a project's releases live: the current pointer's `spec.registry`, else the
/// configured default registry.
pub fn registry_base<'a>(
    pointer: Option<&'a crate::pointer::Pointer>,
    settings: &'a Settings,
) -> Result<&'a crate::oci::RegistryBase, InvalidInput> {
    pointer
        .and_then(|p| p.registry.as_ref())
        .or(settings.registry.as_ref())
        .ok_or_else(|| {
            InvalidInput(
                "no spec.registry and no RELEASECTL_REGISTRY: expected one of them to name the registry"
                    .into(),
            )
        })
}

/// The image a pointer names: its `spec.registry`, else the configured default registry.
/// A relative `oci:` path in `spec.registry` is relative to the pointer file's directory
/// (where Argo CD runs `generate`), never to wherever the command happens to run; one from
/// `--registry` or RELEASECTL_REGISTRY is relative to the working directory, as any path
/// given on a command line.
pub fn pointer_image(
    pointer: &crate::pointer::Pointer,
    file: &str,
    settings: &Settings,
) -> Result<ImageRef, InvalidInput> {
    use crate::oci::RegistryBase;
    let base =
        registry_base(Some(pointer), settings).map_err(|e| InvalidInput(format!("{file}: {e}")))?;
    let from_pointer = pointer.registry.is_some();
    let base = match base {
        RegistryBase::Layout(root) if from_pointer && root.is_relative() => {
            let dir = Path::new(file).parent().unwrap_or(Path::new(""));
            RegistryBase::Layout(dir.join(root))
        }
        other => other.clone(),
    };
    Ok(base.image(&pointer.id, pointer.digest.clone()))
}

/// What a command-line target (`REF`, `oci:PATH[:TAG]` or a pointer file) names, and what
/// is known about the release it should hold.
pub fn resolve_target(
    target: &str,
    settings: &Settings,
) -> crate::exit::Result<(ImageRef, Expected)> {
    if !target.starts_with("oci:") && Path::new(target).is_file() {
        let bytes = std::fs::read(target).with_context(|| format!("cannot read {target}"))?;
        let pointer = crate::pointer::parse(target, &bytes)?;
        let image = pointer_image(&pointer, target, settings)?;
        return Ok((image, Expected::from(&pointer.id)));
    }
    let image: ImageRef = target.parse()?;
    // A reference says nothing certain about repository and project (a copy may live
    // anywhere), but a tag that is a commit SHA must be the release's commit: a moved tag
    // is caught by the revision check.
    let expected = Expected {
        commit: image.tag().and_then(|t| t.parse::<CommitSha>().ok()),
        ..Expected::default()
    };
    Ok((image, expected))
}

/// What a command prints on stdout, written once by `app` after the command returned.
pub trait Report {
    fn write_to(&mut self, out: &mut dyn Write) -> std::io::Result<()>;
}

impl Report for Vec<u8> {
    fn write_to(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(self)
    }
}

/// How a command ended: its report, its exit class, and for a run that did not succeed the
/// one line that goes to stderr.
pub struct Outcome {
    pub report: Box<dyn Report>,
    pub exit: Exit,
    pub message: Option<String>,
}

impl Outcome {
    /// Success, with this report.
    #[must_use]
    pub fn ok(report: impl Report + 'static) -> Self {
        Self {
            report: Box::new(report),
            exit: Exit::Success,
            message: None,
        }
    }

    /// A run that ended with `exit` (a refusal, say) and still prints its report.
    #[must_use]
    pub fn ended(report: impl Report + 'static, exit: Exit, message: String) -> Self {
        Self {
            report: Box::new(report),
            exit,
            message: Some(message),
        }
    }
}

/// Refuses `-o json|yaml` for a command whose output has a format of its own: `generate`
/// prints manifests as Argo CD reads them (and `--parameters` JSON as Argo CD asks for it),
/// `completion` a shell script, `man` roff. Silently printing something else than asked
/// would break the script that asked.
pub fn refuse_format(
    command: &crate::cli::Command,
    format: crate::settings::Format,
) -> Result<(), InvalidInput> {
    use crate::cli::Command;
    use crate::settings::Format;
    let (name, prints) = match command {
        Command::Generate(_) => (
            "generate",
            "the manifests as Argo CD reads them (YAML; --parameters: the JSON Argo CD asks for)",
        ),
        Command::Completion(_) => ("completion", "a shell script"),
        Command::Man(_) => ("man", "a roff man page"),
        _ => return Ok(()),
    };
    match format {
        Format::Text => Ok(()),
        Format::Json | Format::Yaml => Err(InvalidInput(format!(
            "{name} -o {}: {name} prints {prints}, in no other format; for a release's data as JSON or YAML use `inspect` or `release get`",
            if format == Format::Json {
                "json"
            } else {
                "yaml"
            }
        ))),
    }
}

/// The outcome with its JSON report re-serialized as YAML: `-o yaml` is exactly the
/// structure of `-o json` (keys sorted, as kubectl prints YAML). A report that is a message
/// rather than data (`config use-context`: "Switched to context lab.") is printed as it is.
#[must_use]
pub fn as_yaml(outcome: Outcome) -> Outcome {
    Outcome {
        report: Box::new(Yaml(outcome.report)),
        ..outcome
    }
}

struct Yaml(Box<dyn Report>);

impl Report for Yaml {
    fn write_to(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        let mut json = Vec::new();
        self.0.write_to(&mut json)?;
        if json.is_empty() {
            return Ok(());
        }
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&json) else {
            return out.write_all(&json);
        };
        let yaml = serde_saphyr::to_string(&value).map_err(std::io::Error::other)?;
        out.write_all(yaml.as_bytes())?;
        if !yaml.ends_with('\n') {
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}
