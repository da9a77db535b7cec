//! `copy SRC DST`: move a release between registries and OCI layouts. The source is fully
//! verified first; the manifest bytes are stored unchanged, so the digest is preserved.
//! Layers of other types (signatures, SBOMs) travel along, each checked by size and digest.

use std::borrow::Cow;
use std::io::Write;

use crate::digest::Digest;
use crate::exit::Context as _;
use crate::oci::{ImageRef, Store};
use crate::release;
use crate::settings::{Output, Settings};

pub async fn run(
    source: &str,
    destination: &str,
    settings: &Settings,
) -> crate::exit::Result<super::Outcome> {
    let (image, expected) = super::resolve_target(source, settings)?;
    let options = &settings.store;
    let limits = settings.limits;
    let src_store = Store::open(&image, options)?;
    let release = release::read_from(&src_store, &image, &expected, &limits).await?;
    let image = release.image();
    let tag = image
        .tag()
        .map_or_else(|| release.config().commit.to_string(), str::to_owned);
    let dst: ImageRef = match destination.parse::<ImageRef>() {
        Ok(d) => d,
        // A registry destination without a tag takes the source's (an `oci:` one parses
        // without a tag, so its error is its own, shown as the user wrote it).
        Err(_) if !destination.contains('@') && !destination.starts_with("oci:") => {
            format!("{destination}:{tag}").parse()?
        }
        Err(e) => return Err(e.into()),
    };
    if dst.digest().is_some() {
        return Err(crate::exit::InvalidInput(format!(
            "copy destination {destination} names a digest: give a tag (or none)"
        ))
        .into());
    }
    let dst_tag = dst.tag().map_or(tag, str::to_owned);
    let dst = dst.with_tag(Some(dst_tag.clone()));
    let dst_store = Store::open_for_write(&dst, options)?;
    let located = release.located();
    let mut blobs: Vec<(Digest, Cow<'_, [u8]>)> = vec![
        (located.config.digest.clone(), release.config_bytes().into()),
        (
            located.metadata.digest.clone(),
            release.metadata_bytes().into(),
        ),
        (
            located.resources.digest.clone(),
            release.resources_layer().into(),
        ),
    ];
    for layer in &located.manifest.layers {
        if layer.digest == located.metadata.digest.as_str()
            || layer.digest == located.resources.digest.as_str()
        {
            continue;
        }
        let digest: Digest = layer.digest.parse().with_context(|| {
            format!(
                "layer of {image} has digest \"{}\"",
                crate::text::excerpt(&layer.digest)
            )
        })?;
        if layer.size > limits.max_total_bytes {
            return Err(crate::oci::OciError::TooLarge {
                what: format!("layer {digest} ({}) of {image}", layer.media_type),
                limit: limits.max_total_bytes,
                actual: layer.size,
            }
            .into());
        }
        let bytes = src_store
            .blob(
                &digest,
                layer.size,
                &format!("layer {} of {image}", digest.short()),
            )
            .await?;
        blobs.push((digest, bytes.into()));
    }
    let total = blobs.iter().map(|(_, b)| b.len() as u64).sum();
    let mut progress = crate::progress::Progress::start(format!("copying to {dst}"), total);
    for (digest, bytes) in &blobs {
        progress.advance(0);
        dst_store
            .push_blob(digest, bytes, &format!("blob {} of {dst}", digest.short()))
            .await
            .with_context(|| format!("cannot copy to {dst}"))?;
        progress.advance(bytes.len() as u64);
    }
    drop(progress);
    dst_store
        .push_manifest(
            release.manifest_bytes(),
            &dst_tag,
            &format!("manifest of {dst}"),
        )
        .await
        .with_context(|| format!("cannot copy to {dst}"))?;
    // The image's cosign signatures (docs/format.md §10) travel with it, bytes unchanged.
    let signatures = crate::cosign::copy(
        (&src_store, image),
        (&dst_store, &dst),
        release.manifest_digest(),
    )
    .await
    .with_context(|| format!("cannot copy the signatures of {image} to {dst}"))?;
    crate::log::info(&format!("copied {signatures} signature(s) of {image}"));
    let pinned = dst.with_digest(release.manifest_digest().clone());
    let mut out = Vec::new();
    match settings.output {
        Output::Text => writeln!(out, "{pinned}")?,
        Output::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "source": image.to_string(),
                "destination": pinned.to_string(),
                "digest": release.manifest_digest().to_string(),
            }))?
        )?,
    }
    Ok(super::Outcome::ok(out))
}
