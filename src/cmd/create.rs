//! `release create`: validate rendered manifests, pack them into a release image (format v1),
//! push it as `<registry>/<repository>/<project>:<commit>`.
//!
//! Nothing is pushed unless every file validated; blobs go before the manifest, so the tag
//! never names an image whose blobs are missing.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use crate::cli::{CreateArgs, Global, Output, TagStrategy};
use crate::error::InvalidInput;
use crate::format::{self, Alias, AliasType, Artifact, Inputs, Source, Trigger, TriggerType};
use crate::ids::ReleaseId;
use crate::manifests::{self, ObjectRef};
use crate::oci::{RegistryBase, Store};

#[derive(Serialize)]
struct Created<'a> {
    reference: String,
    digest: String,
    repository: &'a str,
    project: &'a str,
    commit: &'a str,
    number: Option<u64>,
    aliases: &'a [Alias],
    objects: usize,
    layer_size: u64,
}

/// Collects the files under `dir`, relative paths with `/`, sorted.
fn collect(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, InvalidInput> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) -> Result<(), InvalidInput> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            InvalidInput(format!(
                "cannot read manifests directory {}: {e}",
                dir.display()
            ))
        })?;
        for entry in entries {
            let entry =
                entry.map_err(|e| InvalidInput(format!("cannot read {}: {e}", dir.display())))?;
            let path = entry.path();
            let kind = entry
                .file_type()
                .map_err(|e| InvalidInput(format!("cannot read {}: {e}", path.display())))?;
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace(std::path::MAIN_SEPARATOR, "/");
            if kind.is_dir() {
                walk(root, &path, out)?;
            } else if kind.is_file() {
                let ext_ok = [".yaml", ".yml", ".json"].iter().any(|e| rel.ends_with(e));
                if !ext_ok {
                    return Err(InvalidInput(format!(
                        "{}: not a manifest file: expected .yaml, .yml or .json",
                        path.display()
                    )));
                }
                let data = std::fs::read(&path)
                    .map_err(|e| InvalidInput(format!("cannot read {}: {e}", path.display())))?;
                out.push((rel, data));
            } else {
                return Err(InvalidInput(format!(
                    "{}: not a regular file (symlinks and special files are not packed)",
                    path.display()
                )));
            }
        }
        Ok(())
    }
    if !dir.is_dir() {
        return Err(InvalidInput(format!(
            "manifests directory {} does not exist or is not a directory",
            dir.display()
        )));
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    if out.is_empty() {
        return Err(InvalidInput(format!(
            "manifests directory {} holds no .yaml, .yml or .json files",
            dir.display()
        )));
    }
    Ok(out)
}

/// Validates every file and returns the objects and the documents per file.
fn validate(
    dir: &Path,
    files: &[(String, Vec<u8>)],
) -> anyhow::Result<(Vec<ObjectRef>, Vec<usize>)> {
    let mut objects = Vec::new();
    let mut per_file = Vec::with_capacity(files.len());
    let mut seen: BTreeMap<(String, Option<String>, String), String> = BTreeMap::new();
    for (path, data) in files {
        let shown = dir.join(path).display().to_string();
        let parsed = manifests::parse_file(&shown, data)?;
        per_file.push(parsed.len());
        for (i, o) in parsed.iter().enumerate() {
            let key = (o.kind.clone(), o.namespace.clone(), o.name.clone());
            let here = format!("{shown} document {}", i + 1);
            if let Some(first) = seen.insert(key, here.clone()) {
                return Err(InvalidInput(format!(
                    "{here}: {} {} is defined twice (first in {first})",
                    o.kind,
                    o.namespace
                        .as_ref()
                        .map_or(o.name.clone(), |ns| format!("{ns}/{}", o.name)),
                ))
                .into());
            }
        }
        objects.extend(parsed);
    }
    if objects.is_empty() {
        return Err(InvalidInput(format!("{} holds no Kubernetes objects", dir.display())).into());
    }
    manifests::sort(&mut objects);
    Ok((manifests::summary(&objects), per_file))
}

fn parse_artifact(spec: &str) -> Result<Artifact, InvalidInput> {
    let bad = || {
        InvalidInput(format!(
            "--artifact {spec:?}: expected NAME=URI[@sha256:DIGEST]"
        ))
    };
    let (name, rest) = spec.split_once('=').ok_or_else(bad)?;
    if name.is_empty() || rest.is_empty() {
        return Err(bad());
    }
    let (uri, digest) = match rest.rsplit_once('@') {
        Some((u, d)) if d.starts_with("sha256:") => {
            d.parse::<crate::digest::Digest>().map_err(|_| bad())?;
            (u, Some(d.to_owned()))
        }
        _ => (rest, None),
    };
    Ok(Artifact {
        name: name.to_owned(),
        kind: "container".into(),
        uri: uri.to_owned(),
        digest,
        tracking_oci_uri: None,
    })
}

/// The tag alias a git tag makes under a tagging strategy (DESIGN.md §2).
#[must_use]
pub fn tag_alias(strategy: TagStrategy, project: &str, tag: &str) -> Option<String> {
    match strategy {
        TagStrategy::TagAll => Some(tag.rsplit('/').next().unwrap_or(tag).to_owned()),
        TagStrategy::Monorepo => tag
            .strip_prefix(project)
            .and_then(|t| t.strip_prefix('/'))
            .filter(|t| t.starts_with('v') && !t.contains('/'))
            .map(str::to_owned),
    }
}

pub async fn run(args: CreateArgs, global: &Global, out: &mut dyn Write) -> anyhow::Result<()> {
    let base: RegistryBase = global
        .registry
        .clone()
        .ok_or_else(|| InvalidInput("no registry: set --registry or RELEASECTL_REGISTRY".into()))?;
    let id = ReleaseId {
        repository: args.repository,
        project: args.project,
        commit: args.commit,
    };
    let dir: PathBuf = args.manifests;
    let files = collect(&dir)?;
    let (objects, per_file) = validate(&dir, &files)?;
    let artifacts = args
        .artifacts
        .iter()
        .map(|a| parse_artifact(a))
        .collect::<Result<Vec<_>, _>>()?;
    let aliases: Vec<Alias> = args
        .source_tag
        .as_deref()
        .and_then(|t| tag_alias(args.tag_strategy, id.project.as_str(), t))
        .map(|alias| Alias {
            alias,
            kind: AliasType::Tag,
        })
        .into_iter()
        .collect();
    let trigger_type = args
        .trigger
        .or(match (&args.source_tag, &args.source_branch) {
            (Some(_), _) => Some(TriggerType::Tag),
            (None, Some(_)) => Some(TriggerType::BranchPush),
            (None, None) => None,
        });
    let trigger = Trigger {
        kind: trigger_type,
        branch: args.source_branch.clone(),
        tag: args.source_tag.clone(),
        triggered_by: args.actor.clone(),
    };
    let source = Source {
        commit: Some(id.commit.clone()),
        author: args.author.clone(),
        message: args.message.clone(),
        committed_at: args.committed_at.clone(),
        repository_url: args.source_url.clone(),
    };
    let created_at = crate::settings::created_at(args.committed_at.as_deref())?;
    let (image_bytes, metadata) = format::build(Inputs {
        id: &id,
        files: &files,
        documents_per_file: &per_file,
        objects,
        number: None,
        aliases,
        created_at,
        trigger: (trigger != Trigger::default()).then_some(trigger),
        source: Some(source),
        artifacts,
    })
    .map_err(|e| InvalidInput(format!("cannot pack {}: {e}", dir.display())))?;

    let image = base.image(&id, None);
    let options = crate::settings::store_options(global, crate::settings::DEFAULT_TIMEOUT);
    let store = Store::open_for_write(&image, &options)?;
    for (digest, bytes) in image_bytes.blobs() {
        store
            .push_blob(
                &digest,
                bytes,
                &format!("blob {} of {image}", digest.short()),
            )
            .await
            .with_context(|| format!("cannot push {image}"))?;
    }
    store
        .push_manifest(
            &image_bytes.manifest,
            id.commit.as_str(),
            &format!("manifest of {image}"),
        )
        .await
        .with_context(|| format!("cannot push {image}"))?;
    let pinned = image.with_digest(image_bytes.manifest_digest.clone());
    crate::log::info(&format!("pushed {pinned}"));
    match global.output {
        Output::Text => writeln!(out, "{pinned}")?,
        Output::Json => {
            let created = Created {
                reference: pinned.to_string(),
                digest: image_bytes.manifest_digest.to_string(),
                repository: id.repository.as_str(),
                project: id.project.as_str(),
                commit: id.commit.as_str(),
                number: metadata.release.number,
                aliases: &metadata.release.aliases,
                objects: metadata.resources.objects.len(),
                layer_size: metadata.resources.layer_size,
            };
            serde_json::to_writer_pretty(&mut *out, &created)?;
            writeln!(out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_aliases_follow_the_strategy() {
        assert_eq!(
            tag_alias(TagStrategy::Monorepo, "auth-service", "auth-service/v1.2.3").as_deref(),
            Some("v1.2.3")
        );
        assert_eq!(
            tag_alias(TagStrategy::Monorepo, "auth-service", "billing/v1.2.3"),
            None
        );
        assert_eq!(
            tag_alias(TagStrategy::Monorepo, "auth-service", "v1.2.3"),
            None
        );
        assert_eq!(
            tag_alias(TagStrategy::TagAll, "auth-service", "v1.2.3").as_deref(),
            Some("v1.2.3")
        );
    }

    #[test]
    fn artifacts_take_an_optional_pinned_digest() {
        let a = parse_artifact("api=reg.example.com/api:v1@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855").unwrap();
        assert_eq!(a.uri, "reg.example.com/api:v1");
        assert!(a.digest.is_some());
        assert!(parse_artifact("api").is_err());
        assert!(parse_artifact("api=x@sha256:short").is_err());
    }
}
