//! One file per subcommand. Each takes validated settings, does its I/O at the edge, and
//! writes its result to the `out` it is given, once, at the end.

pub mod approve;
pub mod check;
pub mod copy;
pub mod create;
pub mod deploy;
pub mod diff;
pub mod generate;
pub mod inspect;
pub mod release;
pub mod status;

use std::path::Path;

use anyhow::Context as _;

use crate::cli::Global;
use crate::error::InvalidInput;
use crate::format::Expected;
use crate::ids::CommitSha;
use crate::oci::ImageRef;

/// Where a project's releases live: the current pointer's `spec.registry`, else the
/// configured default registry.
pub fn registry_base<'a>(
    pointer: Option<&'a crate::pointer::Pointer>,
    global: &'a Global,
) -> Result<&'a crate::oci::RegistryBase, InvalidInput> {
    pointer
        .and_then(|p| p.registry.as_ref())
        .or(global.registry.as_ref())
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
    global: &Global,
) -> Result<ImageRef, InvalidInput> {
    let base =
        registry_base(Some(pointer), global).map_err(|e| InvalidInput(format!("{file}: {e}")))?;
    Ok(base.image(&pointer.id, pointer.digest.clone()))
}

/// What a command-line target (`REF`, `oci:PATH[:TAG]` or a pointer file) names, and what
/// is known about the release it should hold.
pub fn resolve_target(target: &str, global: &Global) -> anyhow::Result<(ImageRef, Expected)> {
    if !target.starts_with("oci:") && Path::new(target).is_file() {
        let bytes = std::fs::read(target).with_context(|| format!("cannot read {target}"))?;
        let pointer = crate::pointer::parse(target, &bytes)?;
        let image = pointer_image(&pointer, target, global)?;
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
