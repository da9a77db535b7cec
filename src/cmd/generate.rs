//! `generate`: the Argo CD Config Management Plugin (DESIGN.md §5).
//!
//! Invariants:
//! - stdout receives the manifests once, after every check passed; on any failure nothing
//!   is written there and the process exits non-zero with one line on stderr;
//! - an empty result is an error (Argo CD with prune would delete the application);
//! - a release pinned by digest and present in `RELEASECTL_CACHE_DIR` needs no network and
//!   builds no HTTP client;
//! - one deadline bounds the whole run (`RELEASECTL_TIMEOUT`, default 45 s, under Argo CD's
//!   60 s), so a stalled registry produces a clear error instead of Argo CD's timeout.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use crate::archive::Limits;
use crate::cache::{Cache, Lookup};
use crate::cli::Global;
use crate::error::InvalidInput;
use crate::format::Expected;
use crate::manifests::{self, Object};
use crate::oci::{ImageRef, Store};
use crate::pointer::Pointer;
use crate::release::{self, Release};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(45);
const ENV_FILE: &str = "env.yaml";
const POINTER_FILE: &str = "release.yaml";

/// Reads and parses the pointer; returns it with the directory it sits in.
fn load_pointer(path: &Path) -> anyhow::Result<(Pointer, PathBuf)> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| {
        InvalidInput(if e.kind() == std::io::ErrorKind::NotFound {
            format!("{shown}: no ReleasePointer here (file not found)")
        } else {
            format!("{shown}: cannot read: {e}")
        })
    })?;
    let pointer = crate::pointer::parse(&shown, &bytes)?;
    let dir = path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    Ok((pointer, dir))
}

/// Only `release.yaml` and `env.yaml` may sit in a project directory (DESIGN.md §4): anything
/// else would look applied to a reader of the repository while it is not.
fn check_directory(dir: &Path, pointer_name: &str) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == pointer_name || name == ENV_FILE {
            continue;
        }
        return Err(InvalidInput(format!(
            "{}: unexpected {name:?} next to the ReleasePointer: expected only {POINTER_FILE} and {ENV_FILE}",
            dir.display()
        ))
        .into());
    }
    Ok(())
}

/// The environment's own objects, appended after the release's.
fn env_objects(dir: &Path) -> anyhow::Result<Vec<Object>> {
    let path = dir.join(ENV_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(manifests::parse_file(&path.display().to_string(), &bytes)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot read {}", path.display()))),
    }
}

fn cache() -> Option<Cache> {
    std::env::var_os("RELEASECTL_CACHE_DIR")
        .filter(|d| !d.is_empty())
        .map(|d| Cache::new(Path::new(&d)))
}

/// Fetches the release: from the cache when pinned and cached, else from its registry
/// (then into the cache).
async fn fetch(
    image: &ImageRef,
    expected: &Expected,
    global: &Global,
    cache: Option<&Cache>,
    limits: &Limits,
) -> anyhow::Result<Release> {
    if let (Some(cache), Some(digest)) = (cache, image.digest()) {
        match cache.get(digest, expected, limits).await {
            Lookup::Hit(mut release) => {
                crate::log::info(&format!("{image}: from cache"));
                release.head.image = image.clone();
                return Ok(*release);
            }
            Lookup::Miss => {}
            Lookup::Discarded(reason) => {
                crate::log::info(&format!(
                    "{image}: cache entry discarded ({reason}); fetching again"
                ));
            }
        }
    }
    let options = crate::settings::store_options(global, DEFAULT_TIMEOUT);
    let store = Store::open(image, &options)?;
    let release = release::fetch(&store, image, expected, limits).await?;
    if let Some(cache) = cache
        && let Err(e) = cache.put(&release)
    {
        // A cache that cannot be written costs speed, not correctness.
        crate::log::info(&format!("cannot cache {}: {e}", release.image));
    }
    Ok(release)
}

/// Runs `f` over `items` on up to `threads` threads, keeping the order of results.
fn parallel<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let chunk = items.len().div_ceil(threads.max(1)).max(1);
    if items.len() <= chunk {
        return vec![f(items)];
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = items.chunks(chunk).map(|c| scope.spawn(|| f(c))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// Checks, sorts and writes a verified release's objects. Documents keep their author's text
/// when [`manifests::verbatim`] understands them, else they are parsed and rendered; files are
/// scanned on every core, and the output does not depend on how the work was split.
fn render_release(release: Release, limits: &Limits) -> anyhow::Result<String> {
    let what = format!("resources of {}", release.image);
    let files = release.files(limits)?;
    // The compressed layer is no longer needed: free it before the scan.
    drop(release);
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(8);
    let total: usize = files.iter().map(|f| f.data.len()).sum();
    let threads = if total < 64 * 1024 { 1 } else { threads };
    let indexed: Vec<(usize, &crate::archive::File)> = files.iter().enumerate().collect();
    let scanned = parallel(&indexed, threads, |chunk| {
        let mut out = Vec::new();
        for &(i, f) in chunk {
            out.extend(
                manifests::documents(&f.path, &f.data)?
                    .into_iter()
                    .map(|d| (i, d)),
            );
        }
        Ok::<_, manifests::ManifestError>(out)
    });
    let contents = |e: manifests::ManifestError| release::ReleaseError::Contents {
        what: what.clone(),
        reason: e.to_string(),
    };
    let mut documents = Vec::new();
    for s in scanned {
        documents.extend(s.map_err(contents)?);
    }
    if documents.is_empty() {
        return Err(release::ReleaseError::Contents {
            what,
            reason: "no Kubernetes objects: refusing an empty result (Argo CD would prune the application)".into(),
        }
        .into());
    }
    documents.sort_by(|(_, a), (_, b)| manifests::compare_documents(a, b));
    let mut out = String::with_capacity(total + documents.len() * 8);
    for (i, document) in &documents {
        manifests::write_document(&mut out, document, &files[*i].data).map_err(contents)?;
    }
    Ok(out)
}

/// Produces the manifests for the pointer at `pointer_path`.
pub async fn render(pointer_path: &Path, global: &Global) -> anyhow::Result<String> {
    let (pointer, dir) = load_pointer(pointer_path)?;
    let pointer_name = pointer_path.file_name().map_or_else(
        || POINTER_FILE.to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    check_directory(&dir, &pointer_name)?;
    let env = manifests::render(&env_objects(&dir)?)?;
    // A pointer may name a registry, but not a directory: a layout committed next to the
    // pointers would let anyone with push access to the GitOps repository bypass the
    // registry (and `check`), and a path would let a pointer probe the sidecar's disk.
    if let Some(crate::oci::RegistryBase::Layout(path)) = &pointer.registry
        && std::env::var_os("RELEASECTL_ALLOW_LAYOUT_POINTERS").is_none()
    {
        return Err(InvalidInput(format!(
            "{}: spec.registry is oci:{}: expected a registry host (set RELEASECTL_ALLOW_LAYOUT_POINTERS=1 to allow OCI layouts in pointers)",
            pointer_path.display(),
            path.display()
        ))
        .into());
    }
    let image = super::pointer_image(&pointer, &pointer_path.display().to_string(), global)?;
    let cache = cache();
    // Warm: the rendering of this exact release, made from verified blobs by an earlier run.
    if let (Some(cache), Some(digest)) = (&cache, image.digest())
        && let Some(mut body) = cache.rendered(digest)
    {
        crate::log::info(&format!(
            "generating {} from {image}: rendered from cache",
            pointer.id
        ));
        body.push_str(&env);
        return Ok(body);
    }
    crate::log::info(&format!("generating {} from {image}", pointer.id));
    let limits = crate::settings::limits()?;
    let release = fetch(
        &image,
        &Expected::from(&pointer.id),
        global,
        cache.as_ref(),
        &limits,
    )
    .await?;
    crate::log::info(&format!("verified {}", release.image));
    let mut body = render_release(release, &limits)?;
    if let (Some(cache), Some(digest)) = (&cache, image.digest())
        && let Err(e) = cache.put_rendered(digest, &body)
    {
        crate::log::info(&format!("cannot cache the rendering of {image}: {e}"));
    }
    body.push_str(&env);
    Ok(body)
}

/// Renders, then hands the output over without copying it (it may be hundreds of MB).
pub async fn run(path: PathBuf, global: &Global, out: &mut Vec<u8>) -> anyhow::Result<()> {
    let timeout = global.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let rendered = tokio::select! {
        r = tokio::time::timeout(timeout, render(&path, global)) => match r {
            Ok(r) => r?,
            Err(_) => anyhow::bail!(crate::oci::OciError::Deadline {
                what: format!("generate {}", path.display()),
                seconds: timeout.as_secs(),
            }),
        },
        signal = terminated() => anyhow::bail!("interrupted by {signal}: nothing was written"),
    };
    if out.is_empty() {
        *out = rendered.into_bytes();
    } else {
        out.extend_from_slice(rendered.as_bytes());
    }
    Ok(())
}

/// Resolves when the process is asked to stop (SIGTERM from the cmp-server, or SIGINT).
async fn terminated() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
