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

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::exit::Context as _;
use crate::settings::Settings;

use crate::archive::Limits;
use crate::cache::{Cache, Lookup};
use crate::exit::InvalidInput;
use crate::format::Expected;
use crate::manifests::{self, Object};
use crate::oci::{ImageRef, Store};
use crate::pointer::Pointer;
use crate::release::{self, Release};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(45);
const ENV_FILE: &str = "env.yaml";
const POINTER_FILE: &str = "release.yaml";

/// Reads and parses the pointer; returns it with the directory it sits in.
fn load_pointer(path: &Path) -> crate::exit::Result<(Pointer, PathBuf)> {
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
fn check_directory(dir: &Path, pointer_name: &str) -> crate::exit::Result<()> {
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
fn env_objects(dir: &Path) -> crate::exit::Result<Vec<Object>> {
    let path = dir.join(ENV_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(manifests::parse_file(&path.display().to_string(), &bytes)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn cache() -> Option<Cache> {
    std::env::var_os("RELEASECTL_CACHE_DIR")
        .filter(|d| !d.is_empty())
        .map(|d| Cache::new(Path::new(&d)))
}

/// Fetches the release: from the cache when pinned and cached (then `true`), else from its
/// registry (`false`: the caller stores it, see [`render`]).
async fn fetch(
    image: &ImageRef,
    expected: &Expected,
    settings: &Settings,
    cache: Option<&Cache>,
    limits: &Limits,
) -> crate::exit::Result<(Release, bool)> {
    if let (Some(cache), Some(digest)) = (cache, image.digest()) {
        match cache.get(digest, expected, limits).await {
            Lookup::Hit(mut release) => {
                crate::log::info(&format!("{image}: from cache"));
                release.head.image = image.clone();
                return Ok((*release, true));
            }
            Lookup::Miss => {}
            Lookup::Discarded(reason) => {
                crate::log::info(&format!(
                    "{image}: cache entry discarded ({reason}); fetching again"
                ));
            }
        }
    }
    let options = settings.store.clone();
    let store = Store::open(image, &options)?;
    Ok((
        release::fetch(&store, image, expected, limits).await?,
        false,
    ))
}

/// What `generate` prints, once every check has passed: the release's documents, then the
/// environment's objects (`env.yaml`).
pub struct Output {
    body: Body,
    env: String,
}

enum Body {
    /// A rendering made by an earlier run (see [`Cache::rendered`]).
    Cached(crate::cache::RenderedEntry),
    Release(Rendered),
}

/// A release's checked documents in output order, with the files their text is in: written
/// straight from the decompressed files, never copied into one buffer (it may be hundreds of MB).
struct Rendered {
    files: Vec<crate::archive::File>,
    documents: Vec<(usize, manifests::Document)>,
}

impl Rendered {
    fn write_to(&self, out: &mut (impl Write + ?Sized)) -> std::io::Result<()> {
        for (i, document) in &self.documents {
            manifests::write_document(out, document, &self.files[*i].data)?;
        }
        Ok(())
    }
}

impl super::Report for Output {
    /// Writes everything, through one buffer (pieces larger than it go straight through).
    fn write_to(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
        match &mut self.body {
            Body::Cached(entry) => entry.write_to(&mut out)?,
            Body::Release(rendered) => rendered.write_to(&mut out)?,
        }
        out.write_all(self.env.as_bytes())?;
        out.flush()
    }
}

/// Checks and orders a verified release's objects. Documents keep their author's text when
/// [`manifests::verbatim`] understands them, else they are parsed and rendered; files are
/// scanned on every core while the layer is decompressed, and the output does not depend on
/// how the work was split.
fn render_release(release: &Release, limits: &Limits) -> crate::exit::Result<Rendered> {
    let what = format!("resources of {}", release.image);
    let scanned = release.files_map(limits, |f| manifests::documents(&f.path, &f.data))?;
    let mut files = Vec::with_capacity(scanned.len());
    let mut documents = Vec::new();
    for (i, (file, result)) in scanned.into_iter().enumerate() {
        let found = result.map_err(|e| release::ReleaseError::Contents {
            what: what.clone(),
            reason: e.to_string(),
        })?;
        documents.extend(found.into_iter().map(|d| (i, d)));
        files.push(file);
    }
    if documents.is_empty() {
        return Err(release::ReleaseError::Contents {
            what,
            reason: "no Kubernetes objects: refusing an empty result (Argo CD would prune the application)".into(),
        }
        .into());
    }
    documents.sort_by(|(_, a), (_, b)| manifests::compare_documents(a, b));
    Ok(Rendered { files, documents })
}

/// Produces the manifests for the pointer at `pointer_path`.
pub async fn render(pointer_path: &Path, settings: &Settings) -> crate::exit::Result<Output> {
    crate::log::debug(&format!("reading {}", pointer_path.display()));
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
    let image = super::pointer_image(&pointer, &pointer_path.display().to_string(), settings)?;
    let cache = cache();
    // Warm: the rendering of this exact release, made from verified blobs by an earlier run.
    if let (Some(cache), Some(digest)) = (&cache, image.digest())
        && let Some(body) = cache.rendered(digest)
    {
        crate::log::info(&format!(
            "generating {} from {image}: rendered from cache",
            pointer.id
        ));
        return Ok(Output {
            body: Body::Cached(body),
            env,
        });
    }
    crate::log::info(&format!("generating {} from {image}", pointer.id));
    let limits = settings.limits;
    let (release, cached) = fetch(
        &image,
        &Expected::from(&pointer.id),
        settings,
        cache.as_ref(),
        &limits,
    )
    .await?;
    crate::log::info(&format!("verified {}", release.image));
    crate::log::debug(&format!(
        "fetched{}",
        if cached { " from the blob cache" } else { "" }
    ));
    let rendered = render_release(&release, &limits)?;
    crate::log::debug(&format!(
        "{} documents from {} files, {} kept as written",
        rendered.documents.len(),
        rendered.files.len(),
        rendered
            .documents
            .iter()
            .filter(|(_, d)| matches!(d.body, manifests::Body::Verbatim(_)))
            .count()
    ));
    // Both cache entries are written at once: writing tens of MB is mostly the kernel's
    // time, and a cache that cannot be written costs speed, not correctness.
    if let Some(cache) = &cache {
        std::thread::scope(|scope| {
            let stored = (!cached).then(|| scope.spawn(|| cache.put(&release)));
            if let Some(digest) = image.digest()
                && let Err(e) = cache.put_rendered(digest, |w| rendered.write_to(w))
            {
                crate::log::info(&format!("cannot cache the rendering of {image}: {e}"));
            }
            if let Some(Ok(Err(e))) = stored.map(std::thread::ScopedJoinHandle::join) {
                crate::log::info(&format!("cannot cache {}: {e}", release.image));
            }
        });
    }
    drop(release);
    crate::log::debug("rendering cached");
    Ok(Output {
        body: Body::Release(rendered),
        env,
    })
}

/// Produces the output, within the deadline; the caller writes it (see [`Output::write_to`]).
pub async fn run(path: PathBuf, settings: &Settings) -> crate::exit::Result<super::Outcome> {
    let timeout = settings.timeout;
    tokio::select! {
        r = tokio::time::timeout(timeout, render(&path, settings)) => match r {
            Ok(r) => Ok(super::Outcome::ok(r?)),
            Err(_) => Err(crate::oci::OciError::Deadline {
                what: format!("generate {}", path.display()),
                seconds: timeout.as_secs(),
            }
            .into()),
        },
        signal = terminated() => Err(crate::exit::Error::new(
            crate::exit::Exit::Other,
            format!("interrupted by {signal}: nothing was written"),
        )),
    }
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
