//! `release create`: validate rendered manifests, pack them into a release image (format v1),
//! push it as `<registry>/<repository>/<project>:<commit>`.
//!
//! Nothing is pushed unless every file validated; blobs go before the manifest, so the tag
//! never names an image whose blobs are missing.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::exit::Context as _;
use crate::settings::{Output, Settings};
use serde::Serialize;

use crate::cli::CreateArgs;
use crate::digest::Digest;
use crate::exit::InvalidInput;
use crate::format::{
    self, Alias, Artifact, ImageBytes, Inputs, Metadata, Source, Trigger, TriggerType,
};
use crate::gitops::register::{self, Entry, Register, RegisteredTrigger};
use crate::gitops::{Author, GitOps, Remote, Step, Url};
use crate::ids::ReleaseId;
use crate::manifests::{self, ObjectRef};
use crate::oci::{ImageRef, RegistryBase, Store};

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
    registered: bool,
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
) -> crate::exit::Result<(Vec<ObjectRef>, Vec<usize>)> {
    let mut objects = Vec::new();
    let mut per_file = Vec::with_capacity(files.len());
    let mut seen: BTreeMap<(String, Option<String>, manifests::ObjectName), String> =
        BTreeMap::new();
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
                        .map_or(o.name.to_string(), |ns| format!("{ns}/{}", o.name)),
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

/// Everything about the release except its number and the aliases that depend on it.
struct Package<'a> {
    id: &'a ReleaseId,
    dir: &'a Path,
    files: Vec<(String, Vec<u8>)>,
    objects: Vec<ObjectRef>,
    per_file: Vec<usize>,
    artifacts: Vec<Artifact>,
    trigger: Option<Trigger>,
    source: Source,
    created_at: jiff::Timestamp,
    /// Aliases known before a number is assigned (tags).
    tag_aliases: Vec<Alias>,
    /// The branch whose `<branch>-<number>` alias the release gets.
    source_branch: Option<String>,
    /// The trigger as the register records it.
    registered_trigger: Option<RegisteredTrigger>,
}

impl Package<'_> {
    fn build(
        &self,
        number: Option<u64>,
        aliases: Vec<Alias>,
    ) -> crate::exit::Result<(ImageBytes, Metadata)> {
        format::build(Inputs {
            id: self.id,
            files: &self.files,
            documents_per_file: &self.per_file,
            objects: self.objects.clone(),
            number,
            aliases,
            created_at: self.created_at,
            trigger: self.trigger.clone(),
            source: Some(self.source.clone()),
            artifacts: self.artifacts.clone(),
        })
        .map_err(|e| InvalidInput(format!("cannot pack {}: {e}", self.dir.display())).into())
    }
}

/// Pushes blobs, then the manifest under the commit tag.
async fn push(
    store: &Store,
    image: &ImageRef,
    bytes: &ImageBytes,
    tag: &str,
) -> crate::exit::Result<()> {
    let blobs = bytes.blobs();
    let total = blobs.iter().map(|(_, b)| b.len() as u64).sum();
    let mut progress = crate::progress::Progress::start(format!("pushing {image}"), total);
    for (digest, blob) in blobs {
        store
            .push_blob(
                &digest,
                blob,
                &format!("blob {} of {image}", digest.short()),
            )
            .await
            .with_context(|| format!("cannot push {image}"))?;
        progress.advance(blob.len() as u64);
    }
    drop(progress);
    store
        .push_manifest(&bytes.manifest, tag, &format!("manifest of {image}"))
        .await
        .with_context(|| format!("cannot push {image}"))?;
    crate::log::info(&format!("pushed {image}@{}", bytes.manifest_digest));
    Ok(())
}

/// The outcome a pipeline reads.
struct Outcome {
    digest: Digest,
    number: Option<u64>,
    aliases: Vec<Alias>,
    objects: usize,
    layer_size: u64,
    registered: bool,
}

impl Outcome {
    fn from_metadata(digest: Digest, m: &Metadata, registered: bool) -> Self {
        Self {
            digest,
            number: m.release.number,
            aliases: m.release.aliases.clone(),
            objects: m.resources.objects.len(),
            layer_size: m.resources.layer_size,
            registered,
        }
    }
}

/// Registers the release in the GitOps repository, pushing its image first (docs/design.md
/// §2): the number is taken from the register at the tip, the image built with it and
/// pushed, and the register commit pushed without force. When another writer got there
/// first, the number is taken again from the new tip (and the image rebuilt if it changed).
/// A commit that is already registered only gains new aliases and triggers.
async fn register(
    pkg: &Package<'_>,
    store: &Store,
    image: &ImageRef,
    url: &Url,
    settings: &Settings,
) -> crate::exit::Result<Outcome> {
    let id = pkg.id;
    let actor = settings.actor.as_deref().unwrap_or("releasectl");
    let gitops = GitOps::open(&Remote::from_parts(
        url,
        &settings.gitops_branch,
        &settings.git.auth,
        &settings.git.committer,
        &settings.gitops_cache,
    ))?;
    let mut built: Option<(u64, ImageBytes, Metadata)> = None;
    let author = Author::new(actor, settings.unix_now());
    let landed = gitops
        .transact(&author, settings.deadline, async |tip| {
            // Reads a bounded number of files of the register (format 3), whatever its size;
            // a format 1 or 2 register is migrated by this write (docs/register.md).
            let reg = Register::open_or_new(tip, &id.repository, &id.project)?;
            let (outcome, message, edits) =
                if let Some(existing) = reg.find_commit(tip, &id.commit)? {
                    // A new branch adds its alias, numbered as the release already is.
                    let mut aliases = pkg.tag_aliases.clone();
                    if let Some(b) = &pkg.source_branch {
                        aliases.push(register::branch_alias(b, existing.number));
                    }
                    let (entry, edits) =
                        reg.merge(tip, &id.commit, &aliases, pkg.registered_trigger.clone())?;
                    let outcome = Outcome {
                        digest: entry.digest.clone(),
                        number: Some(entry.number),
                        aliases: entry.aliases.clone(),
                        objects: pkg.objects.len(),
                        layer_size: 0,
                        registered: true,
                    };
                    if edits.is_empty() {
                        crate::log::info(&format!("{id} is already release {}", existing.number));
                        return Ok(Step::Done(outcome));
                    }
                    (
                        outcome,
                        crate::registration::commit_message("Update", &reg, &entry, actor),
                        edits,
                    )
                } else {
                    let number = reg.next_number();
                    if built.as_ref().is_none_or(|(n, _, _)| *n != number) {
                        let mut aliases = pkg.tag_aliases.clone();
                        if let Some(b) = &pkg.source_branch {
                            aliases.push(register::branch_alias(b, number));
                        }
                        // Refuse before pushing anything: an image must not claim a number that
                        // its registration will never get.
                        for a in &aliases {
                            reg.check_alias_free(tip, &a.alias, &id.commit)?;
                        }
                        let (bytes, metadata) = pkg.build(Some(number), aliases)?;
                        push(store, image, &bytes, id.commit.as_str()).await?;
                        built = Some((number, bytes, metadata));
                    }
                    let (_, bytes, metadata) = built.as_ref().expect("built above");
                    let entry = Entry {
                        number,
                        commit: id.commit.clone(),
                        digest: bytes.manifest_digest.clone(),
                        created_at: metadata.release.created_at.to_string(),
                        aliases: metadata.release.aliases.clone(),
                        triggers: pkg.registered_trigger.clone().into_iter().collect(),
                    };
                    let edits = reg.add(tip, &entry)?;
                    (
                        Outcome::from_metadata(bytes.manifest_digest.clone(), metadata, true),
                        crate::registration::commit_message("Register", &reg, &entry, actor),
                        edits,
                    )
                };
            Ok(Step::Commit {
                edits,
                message,
                result: outcome,
            })
        })
        .await?;
    if let Some(oid) = landed.commit {
        crate::log::info(&format!(
            "registered {id} as release {:?} in {oid}",
            landed.result.number
        ));
    }
    Ok(landed.result)
}

/// `Register release 42 of company/monorepo/auth-service (v1.2.3)` with trailers.
pub async fn run(args: CreateArgs, settings: &Settings) -> crate::exit::Result<super::Outcome> {
    let mut out = Vec::new();
    let base: RegistryBase = settings
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
    // Under the monorepo strategy another project's tag is neither an alias nor a trigger of
    // this one: it is dropped (with a note), and `--trigger tag` with it is a usage error.
    let tag_alias = args
        .source_tag
        .as_deref()
        .and_then(|t| args.tag_strategy.alias(&id.project, t));
    let source_tag = match (&args.source_tag, &tag_alias) {
        (Some(t), None) => {
            eprintln!(
                "releasectl: note: --source-tag {} is not a tag of {} under the tag strategy (expected {}/v*): neither an alias nor a trigger",
                crate::text::excerpt(t),
                id.project,
                id.project
            );
            None
        }
        (tag, _) => tag.clone(),
    };
    let tag_aliases: Vec<Alias> = tag_alias.into_iter().collect();
    let trigger_type = trigger_type(
        args.trigger,
        source_tag.as_deref(),
        args.source_branch.as_deref(),
    )?;
    let actor = settings.actor.clone();
    let trigger = Trigger {
        kind: trigger_type,
        branch: args.source_branch.clone(),
        tag: source_tag,
        triggered_by: actor,
    };
    let committed_at = args.committed_at.as_deref().map(parse_time).transpose()?;
    let created_at = settings.created_at(committed_at);
    let registered_trigger = (trigger != Trigger::default()).then(|| RegisteredTrigger {
        kind: trigger.kind,
        branch: trigger.branch.clone(),
        tag: trigger.tag.clone(),
        triggered_by: trigger.triggered_by.clone(),
        at: created_at.to_string(),
    });
    let pkg = Package {
        id: &id,
        dir: &dir,
        files,
        objects,
        per_file,
        artifacts,
        trigger: (trigger != Trigger::default()).then_some(trigger),
        source: Source {
            commit: Some(id.commit.clone()),
            author: args.author.clone(),
            message: args.message.clone(),
            committed_at,
            repository_url: args.source_url.clone(),
        },
        created_at,
        tag_aliases,
        source_branch: args.source_branch.clone(),
        registered_trigger,
    };

    let image = base.image(&id, None);
    // A key that cannot sign is refused before anything is pushed.
    let sign_key = args
        .sign_key
        .as_deref()
        .map(|k| {
            crate::cosign::keys::load_private(
                k,
                settings
                    .sign_key_password
                    .as_ref()
                    .map(crate::credentials::Secret::expose),
            )
        })
        .transpose()?;
    let options = settings.store.clone();
    let store = Store::open_for_write(&image, &options)?;
    let outcome = match (&settings.server, &settings.gitops) {
        // Pushed by the CLI, registered by the server as the token's identity.
        (Some(server), _) => {
            let client = crate::client::Client::new(server, settings.deadline)?;
            let (bytes, metadata) = pkg.build(None, pkg.tag_aliases.clone())?;
            push(&store, &image, &bytes, id.commit.as_str()).await?;
            let done = crate::client::reads::register(
                &client,
                &image.to_string(),
                bytes.manifest_digest.as_str(),
            )
            .await?;
            let mut outcome =
                Outcome::from_metadata(bytes.manifest_digest.clone(), &metadata, true);
            outcome.number = Some(done.number);
            outcome.aliases = done.aliases;
            outcome
        }
        (None, None) => {
            let (bytes, metadata) = pkg.build(None, pkg.tag_aliases.clone())?;
            push(&store, &image, &bytes, id.commit.as_str()).await?;
            Outcome::from_metadata(bytes.manifest_digest.clone(), &metadata, false)
        }
        (None, Some(url)) => register(&pkg, &store, &image, url, settings).await?,
    };
    if let Some(key) = &sign_key {
        let reference = crate::cosign::docker_reference(&image, &id);
        crate::cosign::sign(&store, &image, &outcome.digest, &reference, key).await?;
        crate::log::info(&format!(
            "signed {image}@{} with {}",
            outcome.digest,
            crate::cosign::keys::fingerprint(key.verifying_key())
        ));
    }
    let pinned = image.with_digest(outcome.digest.clone());
    match settings.output {
        Output::Text => match outcome.number {
            Some(n) => writeln!(
                out,
                "{pinned}\nrelease {n} of {}/{}",
                id.repository, id.project
            )?,
            None => writeln!(out, "{pinned}")?,
        },
        Output::Json => {
            let created = Created {
                reference: pinned.to_string(),
                digest: outcome.digest.to_string(),
                repository: id.repository.as_str(),
                project: id.project.as_str(),
                commit: id.commit.as_str(),
                number: outcome.number,
                aliases: &outcome.aliases,
                objects: outcome.objects,
                layer_size: outcome.layer_size,
                registered: outcome.registered,
            };
            serde_json::to_writer_pretty(&mut out, &created)?;
            writeln!(out)?;
        }
    }
    Ok(super::Outcome::ok(out))
}

/// `--committed-at`: an RFC 3339 time.
/// The trigger a release records: `--trigger` when given (its source must be given too: a
/// tag trigger needs its tag, a branch push its branch), else a tag, else a branch push.
fn trigger_type(
    given: Option<TriggerType>,
    tag: Option<&str>,
    branch: Option<&str>,
) -> Result<Option<TriggerType>, InvalidInput> {
    match (given, tag, branch) {
        (Some(TriggerType::Tag), None, _) => Err(InvalidInput(
            "--trigger tag needs --source-tag with a tag of this project".into(),
        )),
        (Some(TriggerType::BranchPush), _, None) => Err(InvalidInput(
            "--trigger branch_push needs --source-branch".into(),
        )),
        (Some(t), _, _) => Ok(Some(t)),
        (None, Some(_), _) => Ok(Some(TriggerType::Tag)),
        (None, None, Some(_)) => Ok(Some(TriggerType::BranchPush)),
        (None, None, None) => Ok(None),
    }
}

fn parse_time(text: &str) -> Result<jiff::Timestamp, InvalidInput> {
    text.parse().map_err(|_| {
        InvalidInput(format!(
            "--committed-at is \"{}\": expected an RFC 3339 time",
            crate::text::excerpt(text)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifacts_take_an_optional_pinned_digest() {
        let a = parse_artifact("api=reg.example.com/api:v1@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855").unwrap();
        assert_eq!(a.uri, "reg.example.com/api:v1");
        assert!(a.digest.is_some());
        assert!(parse_artifact("api").is_err());
        assert!(parse_artifact("api=x@sha256:short").is_err());
    }
}
