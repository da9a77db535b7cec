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
pub mod sign;
pub mod status;
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
pub fn pointer_image(
    pointer: &crate::pointer::Pointer,
    file: &str,
    settings: &Settings,
) -> Result<ImageRef, InvalidInput> {
    let base =
        registry_base(Some(pointer), settings).map_err(|e| InvalidInput(format!("{file}: {e}")))?;
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
