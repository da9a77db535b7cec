//! `inspect` and `verify`: read a release with every check of docs/format.md §7 (the release
//! reader, [`release::read`]). `inspect` then shows it and its signatures (docs/format.md §10),
//! naming the `--key` that made each; `verify` only says whether it passed, and with `--key`
//! also requires a signature by one of the keys.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use crate::digest::Digest;
use crate::format::{Descriptor, Metadata};
use crate::release::{self, Release};
use crate::settings::{Output, Settings};

/// Fetches `target` and runs every check (see [`release::read`]).
async fn read(target: &str, settings: &Settings) -> crate::exit::Result<Release> {
    let (image, expected) = super::resolve_target(target, settings)?;
    Ok(release::read(&image, &expected, &settings.store, &settings.limits).await?)
}

#[derive(Serialize)]
struct BlobView<'a> {
    media_type: &'a str,
    digest: &'a Digest,
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
    signatures: &'a Signatures,
}

/// The image's signatures, as `inspect` found them.
#[derive(Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "found")]
enum Signatures {
    /// No `sha256-<hex>.sig` manifest.
    None,
    /// The signature manifest could not be read or is not one (the reason).
    Unreadable(String),
    /// No `--key` given: the signatures' payload digests, unchecked.
    Unchecked(Vec<Digest>),
    Checked(Vec<crate::cosign::Finding>),
}

/// Every key of `paths` (files or directories of PEM public keys).
fn load_keys(paths: &[PathBuf]) -> crate::exit::Result<Vec<crate::cosign::TrustedKey>> {
    let mut keys = Vec::new();
    for path in paths {
        keys.extend(crate::cosign::keys::load_trusted(path)?);
    }
    Ok(keys)
}

/// What the signatures of `r` are, never failing the inspection.
async fn signatures(
    r: &Release,
    keys: &[crate::cosign::TrustedKey],
    settings: &Settings,
) -> Signatures {
    let found = async {
        let store = crate::oci::Store::open(r.image(), &settings.store)?;
        if keys.is_empty() {
            return Ok(
                crate::cosign::fetch_envelope(&store, r.image(), r.manifest_digest())
                    .await?
                    .map(|(e, _)| {
                        Signatures::Unchecked(e.signatures().map(|l| l.digest.clone()).collect())
                    }),
            );
        }
        let path = r.id().image_path();
        let subject = crate::cosign::Subject {
            digest: r.manifest_digest(),
            repository: &path,
        };
        Ok::<_, crate::cosign::CosignError>(
            crate::cosign::examine(&store, r.image(), &subject, keys)
                .await?
                .map(Signatures::Checked),
        )
    };
    match found.await {
        Ok(Some(s)) => s,
        Ok(None) => Signatures::None,
        Err(e) => Signatures::Unreadable(e.to_string()),
    }
}

fn text_signatures(s: &Signatures, out: &mut dyn Write) -> std::io::Result<()> {
    match s {
        Signatures::None => writeln!(out, "Signatures  none"),
        Signatures::Unreadable(why) => writeln!(out, "Signatures  unreadable: {why}"),
        Signatures::Unchecked(payloads) => {
            writeln!(
                out,
                "Signatures  {} (not checked: give --key)",
                payloads.len()
            )?;
            for p in payloads {
                writeln!(out, "  payload {p}")?;
            }
            Ok(())
        }
        Signatures::Checked(findings) => {
            writeln!(out, "Signatures  {}", findings.len())?;
            for f in findings {
                match (&f.signer, &f.problem) {
                    (Some(s), _) => writeln!(out, "  signed by {} ({})", s.key, s.fingerprint)?,
                    (None, Some(p)) => writeln!(out, "  not valid: {p}")?,
                    (None, None) => {}
                }
            }
            Ok(())
        }
    }
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

fn text(r: &Release, out: &mut dyn Write) -> std::io::Result<()> {
    let m = r.metadata();
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
            s.committed_at.map(|t| t.to_string()).unwrap_or_default()
        )?;
        if let Some(msg) = s.message.as_deref().and_then(|m| m.lines().next()) {
            writeln!(out, "            {msg}")?;
        }
        if let Some(url) = &s.repository_url {
            writeln!(out, "            {url}")?;
        }
    }
    writeln!(out, "Image       {}", r.image())?;
    let res = &m.resources;
    for (label, digest, size, extra) in [
        (
            "Manifest",
            r.manifest_digest().as_str(),
            r.manifest_bytes().len() as u64,
            String::new(),
        ),
        (
            "Config",
            r.located().config.digest.as_str(),
            r.located().config.size,
            String::new(),
        ),
        (
            "Metadata",
            r.located().metadata.digest.as_str(),
            r.located().metadata.size,
            String::new(),
        ),
        (
            "Resources",
            r.located().resources.digest.as_str(),
            r.located().resources.size,
            format!(
                " ({} uncompressed, {} files, {} documents)",
                human(res.uncompressed_size),
                r.manifests().files().len(),
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

pub async fn run_inspect(
    target: &str,
    keys: &[PathBuf],
    settings: &Settings,
) -> crate::exit::Result<super::Outcome> {
    let keys = load_keys(keys)?;
    let r = read(target, settings).await?;
    let sigs = signatures(&r, &keys, settings).await;
    let mut out = Vec::new();
    match settings.output {
        Output::Text => {
            text(&r, &mut out)?;
            text_signatures(&sigs, &mut out)?;
        }
        Output::Json => {
            let manifest_descriptor = Descriptor {
                media_type: crate::format::MANIFEST_MEDIA_TYPE.into(),
                digest: r.manifest_digest().clone(),
                size: r.manifest_bytes().len() as u64,
                urls: None,
                annotations: std::collections::BTreeMap::new(),
            };
            let located = r.located();
            let view = InspectView {
                reference: r.image().to_string(),
                digest: r.manifest_digest().to_string(),
                verified: true,
                manifest: (&manifest_descriptor).into(),
                config: (&located.config).into(),
                metadata_blob: (&located.metadata).into(),
                resources_blob: (&located.resources).into(),
                annotations: &located.manifest.annotations,
                metadata: r.metadata(),
                signatures: &sigs,
            };
            serde_json::to_writer_pretty(&mut out, &view)?;
            out.push(b'\n');
        }
    }
    Ok(super::Outcome::ok(out))
}

pub async fn run_verify(
    target: &str,
    keys: &[PathBuf],
    settings: &Settings,
) -> crate::exit::Result<super::Outcome> {
    let keys = load_keys(keys)?;
    let r = read(target, settings).await?;
    let signer = if keys.is_empty() {
        None
    } else {
        let store = crate::oci::Store::open(r.image(), &settings.store)?;
        let path = r.id().image_path();
        let subject = crate::cosign::Subject {
            digest: r.manifest_digest(),
            repository: &path,
        };
        Some(crate::cosign::verify(&store, r.image(), &subject, &keys).await?)
    };
    let files = r.manifests().files().len();
    let objects = r.metadata().resources.objects.len();
    let mut out = Vec::new();
    match settings.output {
        Output::Text => writeln!(
            out,
            "verified {}: manifest, config, metadata and resources digests match; {files} files, {objects} objects{}",
            r.image(),
            signer
                .as_ref()
                .map(|s| format!("; signed by {} ({})", s.key, s.fingerprint))
                .unwrap_or_default(),
        )?,
        Output::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "reference": r.image().to_string(),
                "digest": r.manifest_digest().to_string(),
                "verified": true,
                "files": files,
                "objects": objects,
                "signed_by": signer,
            }))?
        )?,
    }
    Ok(super::Outcome::ok(out))
}
