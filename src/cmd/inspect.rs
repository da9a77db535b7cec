//! `inspect` and `verify`: fetch a release with every check of DESIGN.md §5 rule 2, read its
//! resources layer with the safe reader, and compare the contents with the metadata's record.
//! `inspect` then shows it; `verify` only says whether it passed.

use std::io::Write;

use serde::Serialize;

use crate::format::{Descriptor, Metadata};
use crate::oci::Store;
use crate::release::{self, Release};
use crate::settings::{Output, Settings};

/// A release that passed every check, with what a person wants to see of it.
pub struct Checked {
    pub release: Release,
    pub files: usize,
}

/// Fetches `target` and runs every check.
pub async fn check(target: &str, settings: &Settings) -> crate::exit::Result<Checked> {
    let (image, expected) = super::resolve_target(target, settings)?;
    let limits = settings.limits;
    let options = settings.store.clone();
    let store = Store::open(&image, &options)?;
    let release = release::fetch(&store, &image, &expected, &limits).await?;
    let files = release.files(&limits)?;
    // The objects the layer really holds must be the ones the metadata lists.
    let mut objects = Vec::new();
    for f in &files {
        objects.extend(crate::manifests::parse_file(&f.path, &f.data).map_err(|e| {
            release::ReleaseError::Contents {
                what: format!("resources of {}", release.image),
                reason: e.to_string(),
            }
        })?);
    }
    crate::manifests::sort(&mut objects);
    let actual = crate::manifests::summary(&objects);
    let mut recorded = release.metadata.resources.objects.clone();
    recorded.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
    if actual != recorded {
        return Err(release::ReleaseError::Contents {
            what: format!("resources of {}", release.image),
            reason: format!(
                "the layer holds {} objects that differ from the {} the metadata lists",
                actual.len(),
                recorded.len()
            ),
        }
        .into());
    }
    Ok(Checked {
        files: files.len(),
        release,
    })
}

#[derive(Serialize)]
struct BlobView<'a> {
    media_type: &'a str,
    digest: &'a str,
    size: u64,
    verified: bool,
}

impl<'a> From<&'a Descriptor> for BlobView<'a> {
    fn from(d: &'a Descriptor) -> Self {
        Self {
            media_type: &d.media_type,
            digest: &d.digest,
            size: d.size,
            verified: true,
        }
    }
}

#[derive(Serialize)]
struct InspectView<'a> {
    reference: String,
    digest: String,
    verified: bool,
    manifest: BlobView<'a>,
    config: BlobView<'a>,
    metadata_blob: BlobView<'a>,
    resources_blob: BlobView<'a>,
    annotations: &'a std::collections::BTreeMap<String, String>,
    metadata: &'a Metadata,
}

fn human(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let b = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1024 * 1024 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    }
}

fn text(c: &Checked, out: &mut dyn Write) -> std::io::Result<()> {
    let r = &c.release;
    let m = &r.metadata;
    let rel = &m.release;
    writeln!(
        out,
        "Release     {}/{} @ {}",
        rel.repository, rel.project, rel.commit
    )?;
    match rel.number {
        Some(n) => writeln!(out, "Number      {n}")?,
        None => writeln!(out, "Number      - (not registered)")?,
    }
    let aliases: Vec<String> = rel
        .aliases
        .iter()
        .map(|a| {
            format!(
                "{} ({})",
                a.alias,
                serde_json::to_value(a.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            )
        })
        .collect();
    writeln!(
        out,
        "Aliases     {}",
        if aliases.is_empty() {
            "-".into()
        } else {
            aliases.join(", ")
        }
    )?;
    writeln!(out, "Created     {}", rel.created_at)?;
    if let Some(t) = &m.trigger {
        let mut parts = vec![t.kind.map_or("-", |k| k.as_str()).to_owned()];
        if let Some(tag) = &t.tag {
            parts.push(format!("tag {tag}"));
        }
        if let Some(b) = &t.branch {
            parts.push(format!("branch {b}"));
        }
        if let Some(by) = &t.triggered_by {
            parts.push(format!("by {by}"));
        }
        writeln!(out, "Trigger     {}", parts.join(", "))?;
    }
    if let Some(s) = &m.source {
        let commit = s.commit.as_ref().map_or("-", |c| c.short());
        writeln!(
            out,
            "Source      {commit}  {}  {}",
            s.author.as_deref().unwrap_or("-"),
            s.committed_at.as_deref().unwrap_or("")
        )?;
        if let Some(msg) = s.message.as_deref().and_then(|m| m.lines().next()) {
            writeln!(out, "            {msg}")?;
        }
        if let Some(url) = &s.repository_url {
            writeln!(out, "            {url}")?;
        }
    }
    writeln!(out, "Image       {}", r.image)?;
    let res = &m.resources;
    for (label, digest, size, extra) in [
        (
            "Manifest",
            r.manifest_digest.as_str(),
            r.manifest_bytes.len() as u64,
            String::new(),
        ),
        (
            "Config",
            r.located.config.digest.as_str(),
            r.located.config.size,
            String::new(),
        ),
        (
            "Metadata",
            r.located.metadata.digest.as_str(),
            r.located.metadata.size,
            String::new(),
        ),
        (
            "Resources",
            r.located.resources.digest.as_str(),
            r.located.resources.size,
            format!(
                " ({} uncompressed, {} files, {} documents)",
                human(res.uncompressed_size),
                c.files,
                res.documents
            ),
        ),
    ] {
        writeln!(
            out,
            "{label:<11} {digest}  {}{extra}  verified",
            human(size)
        )?;
    }
    if !m.artifacts.is_empty() {
        writeln!(out, "Artifacts")?;
        for a in &m.artifacts {
            writeln!(
                out,
                "  {}  {}  {}{}",
                a.name,
                a.kind,
                a.uri,
                a.digest
                    .as_ref()
                    .map(|d| format!("@{d}"))
                    .unwrap_or_default()
            )?;
        }
    }
    writeln!(out, "Objects ({})", res.objects.len())?;
    let kind_w = res
        .objects
        .iter()
        .map(|o| o.kind.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let ns_w = res
        .objects
        .iter()
        .map(|o| o.namespace.as_deref().unwrap_or("-").len())
        .max()
        .unwrap_or(9)
        .max(9);
    writeln!(out, "  {:<kind_w$}  {:<ns_w$}  NAME", "KIND", "NAMESPACE")?;
    for o in &res.objects {
        writeln!(
            out,
            "  {:<kind_w$}  {:<ns_w$}  {}",
            o.kind,
            o.namespace.as_deref().unwrap_or("-"),
            o.name
        )?;
    }
    Ok(())
}

pub async fn run_inspect(target: &str, settings: &Settings) -> crate::exit::Result<super::Outcome> {
    let mut out = Vec::new();
    let done = run_inspect_to(target, settings, &mut out).await;
    super::Outcome::from_report(out, done)
}

async fn run_inspect_to(
    target: &str,
    settings: &Settings,
    out: &mut Vec<u8>,
) -> crate::exit::Result<()> {
    let checked = check(target, settings).await?;
    let mut buf = Vec::new();
    match settings.output {
        Output::Text => text(&checked, &mut buf)?,
        Output::Json => {
            let r = &checked.release;
            let manifest_descriptor = Descriptor {
                media_type: crate::format::MANIFEST_MEDIA_TYPE.into(),
                digest: r.manifest_digest.to_string(),
                size: r.manifest_bytes.len() as u64,
                urls: None,
                annotations: std::collections::BTreeMap::new(),
            };
            let view = InspectView {
                reference: r.image.to_string(),
                digest: r.manifest_digest.to_string(),
                verified: true,
                manifest: (&manifest_descriptor).into(),
                config: (&r.located.config).into(),
                metadata_blob: (&r.located.metadata).into(),
                resources_blob: (&r.located.resources).into(),
                annotations: &r.located.manifest.annotations,
                metadata: &r.metadata,
            };
            serde_json::to_writer_pretty(&mut buf, &view)?;
            buf.push(b'\n');
        }
    }
    out.write_all(&buf)?;
    Ok(())
}

pub async fn run_verify(target: &str, settings: &Settings) -> crate::exit::Result<super::Outcome> {
    let mut out = Vec::new();
    let done = run_verify_to(target, settings, &mut out).await;
    super::Outcome::from_report(out, done)
}

async fn run_verify_to(
    target: &str,
    settings: &Settings,
    out: &mut Vec<u8>,
) -> crate::exit::Result<()> {
    let checked = check(target, settings).await?;
    let r = &checked.release;
    match settings.output {
        Output::Text => writeln!(
            out,
            "verified {}: manifest, config, metadata and resources digests match; {} files, {} objects",
            r.image,
            checked.files,
            r.metadata.resources.objects.len()
        )?,
        Output::Json => writeln!(
            out,
            "{}",
            serde_json::json!({
                "reference": r.image.to_string(),
                "digest": r.manifest_digest.to_string(),
                "verified": true,
                "files": checked.files,
                "objects": r.metadata.resources.objects.len(),
            })
        )?,
    }
    Ok(())
}
