//! What a deploy would change: the objects two releases hold, each read by the release reader
//! (every check `generate` makes) and compared object by object as rendered from the verified
//! files — added, removed, changed (with a unified diff) and unchanged. Read by `diff` and by
//! `releasectl serve`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::archive::Limits;
use crate::exit::InvalidInput;
use crate::format::Expected;
use crate::gitops::{GitOps, ProjectRef, ReleaseSelector};
use crate::manifests::{self, Object};
use crate::oci::{ImageRef, RegistryBase, StoreOptions};
use crate::policy::EnvName;

type Key = (String, Option<String>, manifests::ObjectName);

/// A changed object and its unified diff (running → new).
#[derive(Debug, Serialize, Deserialize)]
pub struct Changed {
    pub object: String,
    pub diff: String,
}

/// The comparison of two releases' objects.
#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    pub from: String,
    pub to: String,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<Changed>,
    pub unchanged: usize,
}

/// The release's objects, rendered one by one, keyed by (kind, namespace, name).
async fn objects(
    image: &ImageRef,
    expected: &Expected,
    store: &StoreOptions,
    limits: &Limits,
) -> crate::exit::Result<BTreeMap<Key, String>> {
    let release = crate::release::read(image, expected, store, limits).await?;
    let mut out = BTreeMap::new();
    for f in release.manifests().files() {
        for o in manifests::parse_file(&f.path, &f.data)? {
            let text = manifests::render(std::slice::from_ref(&o))?;
            let Object {
                kind,
                namespace,
                name,
                ..
            } = o;
            out.insert((kind, namespace, name), text);
        }
    }
    Ok(out)
}

fn show(k: &Key) -> String {
    match &k.1 {
        Some(ns) => format!("{} {ns}/{}", k.0, k.2),
        None => format!("{} {}", k.0, k.2),
    }
}

fn compare(
    from_name: String,
    to_name: String,
    from: &BTreeMap<Key, String>,
    to: &BTreeMap<Key, String>,
) -> Report {
    let added: Vec<String> = to
        .keys()
        .filter(|k| !from.contains_key(*k))
        .map(show)
        .collect();
    let removed: Vec<String> = from
        .keys()
        .filter(|k| !to.contains_key(*k))
        .map(show)
        .collect();
    let mut changed = Vec::new();
    let mut unchanged = 0;
    for (k, a) in from {
        let Some(b) = to.get(k) else { continue };
        if a == b {
            unchanged += 1;
            continue;
        }
        let name = show(k);
        let diff = similar::TextDiff::from_lines(a, b)
            .unified_diff()
            .context_radius(3)
            .header(&format!("{name} (running)"), &format!("{name} (new)"))
            .to_string();
        changed.push(Changed { object: name, diff });
    }
    Report {
        from: from_name,
        to: to_name,
        added,
        removed,
        changed,
        unchanged,
    }
}

/// The objects of release `b` against those of release `a`.
pub async fn between(
    a: (&ImageRef, &Expected),
    b: (&ImageRef, &Expected),
    store: &StoreOptions,
    limits: &Limits,
) -> crate::exit::Result<Report> {
    let from = objects(a.0, a.1, store, limits).await?;
    let to = objects(b.0, b.1, store, limits).await?;
    Ok(compare(a.0.to_string(), b.0.to_string(), &from, &to))
}

/// What deploying release `id` of `project` to `env` would change against what runs there
/// (everything is added when nothing runs yet). Images are read from the pointer's
/// `spec.registry`, else `default`.
pub async fn against_running(
    gitops: &GitOps,
    env: &EnvName,
    project: &ProjectRef,
    id: &ReleaseSelector,
    default: Option<&RegistryBase>,
    store: &StoreOptions,
    limits: &Limits,
) -> crate::exit::Result<Report> {
    let tip = gitops.fetch()?;
    let reg = crate::gitops::find_register(gitops, &tip, project)?;
    let target = reg.resolve(&tip, id)?;
    let path = crate::gitops::layout::pointer_path(env, &reg.repository, &reg.project);
    let current = crate::gitops::layout::load_pointer(&tip, &path)?;
    let base = current
        .as_ref()
        .and_then(|p| p.registry.as_ref())
        .or(default)
        .cloned()
        .ok_or_else(|| {
            InvalidInput(
                "no spec.registry and no RELEASECTL_REGISTRY: expected one of them to name the registry"
                    .into(),
            )
        })?;
    let b_id = crate::ids::ReleaseId {
        repository: reg.repository.clone(),
        project: reg.project.clone(),
        commit: target.commit.clone(),
    };
    let b_img = base.image(&b_id, Some(target.digest.clone()));
    let b_exp = Expected::from(&b_id);
    match &current {
        Some(p) => {
            let a_img = base.image(&p.id, p.digest.clone());
            between(
                (&a_img, &Expected::from(&p.id)),
                (&b_img, &b_exp),
                store,
                limits,
            )
            .await
        }
        None => {
            let to = objects(&b_img, &b_exp, store, limits).await?;
            Ok(compare(
                "nothing".into(),
                b_img.to_string(),
                &BTreeMap::new(),
                &to,
            ))
        }
    }
}
