//! `copy SRC DST`: move a release between registries and OCI layouts. The source is fully
//! verified first; the manifest bytes are stored unchanged, so the digest is preserved.
//! Layers of other types (signatures, SBOMs) travel along, each checked by size and digest.

use std::io::Write;

use crate::exit::Context as _;
use crate::settings::{Output, Settings};

use crate::digest::Digest;
use crate::oci::{ImageRef, Store};

pub async fn run(
    source: &str,
    destination: &str,
    settings: &Settings,
) -> crate::exit::Result<super::Outcome> {
    let mut out = Vec::new();
    let done = run_to(source, destination, settings, &mut out).await;
    super::Outcome::from_report(out, done)
}

async fn run_to(
    source: &str,
    destination: &str,
    settings: &Settings,
    out: &mut Vec<u8>,
) -> crate::exit::Result<()> {
    let checked = super::inspect::check(source, settings).await?;
    let release = &checked.release;
    let tag = release
        .image
        .tag()
        .map_or_else(|| release.config.commit.to_string(), str::to_owned);
    let dst: ImageRef = match destination.parse::<ImageRef>() {
        Ok(d) => d,
        // A registry destination without a tag takes the source's.
        Err(_) if !destination.contains('@') => format!("{destination}:{tag}").parse()?,
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
    let options = settings.store.clone();
    let src_store = Store::open(&release.image, &options)?;
    let dst_store = Store::open_for_write(&dst, &options)?;
    let located = &release.located;
    let mut blobs: Vec<(Digest, Vec<u8>)> = vec![
        (
            Digest::of(&release.config_bytes),
            release.config_bytes.clone(),
        ),
        (
            Digest::of(&release.metadata_bytes),
            release.metadata_bytes.clone(),
        ),
        (Digest::of(&release.resources), release.resources.clone()),
    ];
    let limits = settings.limits;
    for layer in &located.manifest.layers {
        if layer.digest == located.metadata.digest || layer.digest == located.resources.digest {
            continue;
        }
        let digest: Digest = layer
            .digest
            .parse()
            .with_context(|| format!("layer of {} has digest {:?}", release.image, layer.digest))?;
        if layer.size > limits.max_total_bytes {
            return Err(crate::oci::OciError::TooLarge {
                what: format!(
                    "layer {} ({}) of {}",
                    digest, layer.media_type, release.image
                ),
                limit: limits.max_total_bytes,
                actual: layer.size,
            }
            .into());
        }
        let bytes = src_store
            .blob(
                &digest,
                layer.size,
                &format!("layer {} of {}", digest.short(), release.image),
            )
            .await?;
        blobs.push((digest, bytes));
    }
    for (digest, bytes) in &blobs {
        dst_store
            .push_blob(digest, bytes, &format!("blob {} of {dst}", digest.short()))
            .await
            .with_context(|| format!("cannot copy to {dst}"))?;
    }
    dst_store
        .push_manifest(
            &release.manifest_bytes,
            &dst_tag,
            &format!("manifest of {dst}"),
        )
        .await
        .with_context(|| format!("cannot copy to {dst}"))?;
    let pinned = dst.with_digest(release.manifest_digest.clone());
    match settings.output {
        Output::Text => writeln!(out, "{pinned}")?,
        Output::Json => writeln!(
            out,
            "{}",
            serde_json::json!({"source": release.image.to_string(), "destination": pinned.to_string(), "digest": release.manifest_digest.to_string()})
        )?,
    }
    Ok(())
}
