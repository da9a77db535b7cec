//! `diff`: which objects a deploy would add, remove and change, with a unified diff of the
//! changed ones. Both sides are read by the release reader (every check `generate` makes),
//! and compared object by object as rendered from the verified files.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use crate::cli::DiffArgs;
use crate::exit::InvalidInput;
use crate::format::Expected;
use crate::manifests::{self, Object};
use crate::oci::ImageRef;
use crate::settings::{Output, Settings};

type Key = (String, Option<String>, manifests::ObjectName);

/// The release's objects, rendered one by one, keyed by (kind, namespace, name).
async fn objects(
    image: &ImageRef,
    expected: &Expected,
    settings: &Settings,
) -> crate::exit::Result<BTreeMap<Key, String>> {
    let release = crate::release::read(image, expected, &settings.store, &settings.limits).await?;
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

#[derive(Serialize)]
struct Changed {
    object: String,
    diff: String,
}

#[derive(Serialize)]
struct Report {
    from: String,
    to: String,
    added: Vec<String>,
    removed: Vec<String>,
    changed: Vec<Changed>,
    unchanged: usize,
}

pub async fn run(args: &DiffArgs, settings: &Settings) -> crate::exit::Result<super::Outcome> {
    let mut out = Vec::new();
    run_to(args, settings, &mut out).await?;
    Ok(super::Outcome::ok(out))
}

async fn run_to(
    args: &DiffArgs,
    settings: &Settings,
    out: &mut Vec<u8>,
) -> crate::exit::Result<()> {
    let ((a_img, a_exp), (b_img, b_exp)) = match args.args.as_slice() {
        [env, project, id] => {
            let gitops = settings.open_gitops()?;
            let tip = gitops.fetch()?;
            let reg = crate::gitops::find_register(&gitops, &tip, &project.parse()?)?;
            let target = reg.resolve(&tip, &id.parse()?)?;
            let env: crate::policy::EnvName = env.parse().map_err(InvalidInput)?;
            let path = crate::gitops::layout::pointer_path(&env, &reg.repository, &reg.project);
            let current = crate::gitops::layout::load_pointer(&tip, &path)?;
            let base = super::registry_base(current.as_ref(), settings)?.clone();
            let id_of = |commit: &crate::ids::CommitSha| crate::ids::ReleaseId {
                repository: reg.repository.clone(),
                project: reg.project.clone(),
                commit: commit.clone(),
            };
            let b_id = id_of(&target.commit);
            let b = (
                base.image(&b_id, Some(target.digest.clone())),
                Expected::from(&b_id),
            );
            match current {
                Some(p) => (
                    (base.image(&p.id, p.digest.clone()), Expected::from(&p.id)),
                    b,
                ),
                None => {
                    // Nothing runs yet: everything is added.
                    let to = objects(&b.0, &b.1, settings).await?;
                    return write(
                        out,
                        settings.output,
                        "nothing".into(),
                        b.0.to_string(),
                        &BTreeMap::new(),
                        &to,
                    );
                }
            }
        }
        [a, b] => (
            super::resolve_target(a, settings)?,
            super::resolve_target(b, settings)?,
        ),
        _ => {
            return Err(
                InvalidInput("diff takes ENV PROJECT RELEASE_ID or REF_A REF_B".into()).into(),
            );
        }
    };
    let from = objects(&a_img, &a_exp, settings).await?;
    let to = objects(&b_img, &b_exp, settings).await?;
    write(
        out,
        settings.output,
        a_img.to_string(),
        b_img.to_string(),
        &from,
        &to,
    )
}

fn write(
    out: &mut Vec<u8>,
    output: Output,
    from_name: String,
    to_name: String,
    from: &BTreeMap<Key, String>,
    to: &BTreeMap<Key, String>,
) -> crate::exit::Result<()> {
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
    let report = Report {
        from: from_name,
        to: to_name,
        added,
        removed,
        changed,
        unchanged,
    };
    match output {
        Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?,
        Output::Text => {
            writeln!(out, "from {}\nto   {}", report.from, report.to)?;
            writeln!(
                out,
                "{} added, {} removed, {} changed, {} unchanged",
                report.added.len(),
                report.removed.len(),
                report.changed.len(),
                report.unchanged
            )?;
            for a in &report.added {
                writeln!(out, "+ {a}")?;
            }
            for r in &report.removed {
                writeln!(out, "- {r}")?;
            }
            for c in &report.changed {
                writeln!(out, "~ {}", c.object)?;
            }
            for c in &report.changed {
                write!(out, "\n{}", c.diff)?;
            }
        }
    }
    Ok(())
}
