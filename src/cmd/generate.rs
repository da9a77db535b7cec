//! `generate`: the Argo CD Config Management Plugin (docs/design.md §5).
//!
//! Invariants:
//! - stdout receives the manifests once, after every check passed; on any failure nothing
//!   is written there and the process exits non-zero with one line on stderr;
//! - an empty result is an error (Argo CD with prune would delete the application);
//! - a release pinned by digest and present in `RELEASECTL_CACHE_DIR` needs no network and
//!   builds no HTTP client;
//! - one deadline bounds the whole run (`RELEASECTL_TIMEOUT`, default 45 s, under Argo CD's
//!   60 s), so a stalled registry produces a clear error instead of Argo CD's timeout;
//! - with `RELEASECTL_TRUSTED_KEYS`, nothing is printed unless the release carries a valid
//!   cosign signature by one of those keys (docs/format.md §10); a signature verified once is
//!   remembered in the cache, for as long as its key stays trusted.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cache::{Cache, Lookup};
use crate::exit::{Context as _, InvalidInput};
use crate::format::Expected;
use crate::ids::ReleaseId;
use crate::manifests::{self, Object, ObjectName};
use crate::oci::ImageRef;
use crate::pointer::Pointer;
use crate::release::{self, Manifests, Release};
use crate::settings::Settings;

const ENV_FILE: &str = "env.yaml";
const POINTER_FILE: &str = "release.yaml";

/// Reads `path`, which must be a regular file and not a symbolic link (`Ok(None)`: absent).
///
/// A link in an application directory could point anywhere on the sidecar's disk (a token,
/// another app's Secret): the file is never opened through one. The path's own metadata is
/// taken without following links, and the opened file must be that very file (same device and
/// inode), so a link swapped in between the two is refused too.
fn read_regular(path: &Path) -> crate::exit::Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    use std::os::unix::fs::MetadataExt as _;
    let shown = path.display();
    let refuse = |actual: &str| -> crate::exit::Error {
        InvalidInput(format!(
            "{shown}: is {actual}: expected a regular file (links are not followed)"
        ))
        .into()
    };
    let before = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(InvalidInput(format!("{shown}: cannot read: {e}")).into()),
    };
    if before.file_type().is_symlink() {
        return Err(refuse("a symbolic link"));
    }
    if !before.is_file() {
        return Err(refuse("not a regular file"));
    }
    let mut file = std::fs::File::open(path)
        .map_err(|e| InvalidInput(format!("{shown}: cannot read: {e}")))?;
    let opened = file
        .metadata()
        .map_err(|e| InvalidInput(format!("{shown}: cannot read: {e}")))?;
    if (opened.dev(), opened.ino()) != (before.dev(), before.ino()) || !opened.is_file() {
        return Err(refuse("a file replaced while being opened"));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| InvalidInput(format!("{shown}: cannot read: {e}")))?;
    Ok(Some(bytes))
}

/// Reads and parses the pointer; returns it with the directory it sits in.
fn load_pointer(path: &Path) -> crate::exit::Result<(Pointer, PathBuf)> {
    let shown = path.display().to_string();
    let bytes = read_regular(path)?
        .ok_or_else(|| InvalidInput(format!("{shown}: no ReleasePointer here (file not found)")))?;
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

/// Only `release.yaml` and `env.yaml` may sit in a project directory (docs/design.md §4): anything
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
            "{}: unexpected {name:?} next to the ReleasePointer {pointer_name:?}: expected only {pointer_name} and {ENV_FILE}",
            dir.display()
        ))
        .into());
    }
    Ok(())
}

/// The environment's own objects, appended after the release's.
fn env_objects(dir: &Path) -> crate::exit::Result<Vec<Object>> {
    let path = dir.join(ENV_FILE);
    match read_regular(&path)? {
        Some(bytes) => Ok(manifests::parse_file(&path.display().to_string(), &bytes)?),
        None => Ok(Vec::new()),
    }
}

/// No environment object may share (group, kind, namespace, name) with a release object:
/// Argo CD keeps the last duplicate, so it would replace the verified one.
fn check_env_replaces(
    env: &[Object],
    release: &Manifests,
    image: &ImageRef,
) -> crate::exit::Result<()> {
    let key = |api: &str, kind: &str, ns: Option<&str>, name: &ObjectName| {
        (
            crate::manifests::env::group_kind(api, kind),
            ns.map(str::to_owned),
            name.clone(),
        )
    };
    let ours: std::collections::HashSet<_> = release
        .documents()
        .map(|d| key(&d.api_version, &d.kind, d.namespace.as_deref(), &d.name))
        .collect();
    if let Some(o) = env.iter().find(|o| {
        ours.contains(&key(
            &o.api_version,
            &o.kind,
            o.namespace.as_deref(),
            &o.name,
        ))
    }) {
        let shown = crate::manifests::env::describe(
            &o.api_version,
            &o.kind,
            o.namespace.as_deref(),
            &o.name,
        );
        return Err(crate::exit::Error::new(
            crate::exit::Exit::Verify,
            format!(
                "{}: {shown} would replace the release's object {shown} of {image}: expected environment objects that are not in the release",
                o.source
            ),
        ));
    }
    Ok(())
}

/// Fetches the release: from the cache when pinned and cached as this very release (then
/// `true`), else from its registry (`false`: the caller stores it, see [`render`]).
async fn fetch(
    image: &ImageRef,
    id: &ReleaseId,
    settings: &Settings,
    cache: Option<&Cache>,
) -> crate::exit::Result<(Release, bool)> {
    fetch_from(None, image, id, settings, cache).await
}

/// [`fetch`] through `store` when given (one HTTP client for the release and its signature).
async fn fetch_from(
    store: Option<&crate::oci::Store>,
    image: &ImageRef,
    id: &ReleaseId,
    settings: &Settings,
    cache: Option<&Cache>,
) -> crate::exit::Result<(Release, bool)> {
    if let (Some(cache), Some(digest)) = (cache, image.digest()) {
        match cache.get(id, digest, &settings.limits).await {
            Lookup::Hit(release) => {
                crate::log::info(&format!("{image}: from cache"));
                return Ok((*release, true));
            }
            Lookup::Miss => {}
            Lookup::Other(reason) => {
                crate::log::info(&format!(
                    "{image}: the cached release is another ({reason}); fetching it"
                ));
            }
            Lookup::Discarded(reason) => {
                crate::log::info(&format!(
                    "{image}: cache entry discarded ({reason}); fetching again"
                ));
            }
        }
    }
    let release = match store {
        Some(store) => {
            release::read_from(store, image, &Expected::from(id), &settings.limits).await?
        }
        None => {
            release::read(
                image,
                &Expected::from(id),
                &settings.store,
                &settings.limits,
            )
            .await?
        }
    };
    Ok((release, false))
}

/// The trusted keys (`RELEASECTL_TRUSTED_KEYS`), when configured.
fn trusted_keys(
    settings: &Settings,
) -> crate::exit::Result<Option<Vec<crate::cosign::TrustedKey>>> {
    Ok(settings
        .trusted_keys
        .as_deref()
        .map(crate::cosign::keys::load_trusted)
        .transpose()?)
}

/// Whether an earlier run verified a signature of this release by a key still trusted.
fn signed_in_cache(
    keys: &[crate::cosign::TrustedKey],
    cache: Option<&Cache>,
    id: &ReleaseId,
    digest: &crate::digest::Digest,
) -> bool {
    cache
        .and_then(|c| c.signed_by(id, digest))
        .is_some_and(|fp| keys.iter().any(|k| k.fingerprint == fp))
}

/// Requires a signature of release `id`, manifest `digest`, by one of `keys` (from the cache
/// when an earlier run verified one by a key still trusted), and records it in the cache.
async fn require_signature(
    store: &crate::oci::Store,
    image: &ImageRef,
    id: &ReleaseId,
    digest: &crate::digest::Digest,
    keys: &[crate::cosign::TrustedKey],
    cache: Option<&Cache>,
) -> crate::exit::Result<()> {
    if signed_in_cache(keys, cache, id, digest) {
        crate::log::info(&format!("{image}: signature verified by an earlier run"));
        return Ok(());
    }
    let path = id.image_path();
    let subject = crate::cosign::Subject {
        digest,
        repository: &path,
    };
    let signer = crate::cosign::verify(store, image, &subject, keys).await?;
    crate::log::info(&format!(
        "{image}: signed by {} ({})",
        signer.key, signer.fingerprint
    ));
    if let Some(cache) = cache
        && let Err(e) = cache.put_signed(id, digest, &signer.fingerprint)
    {
        crate::log::info(&format!("cannot cache the signature of {image}: {e}"));
    }
    Ok(())
}

/// [`fetch`], and with trusted keys the signature check, at once when the pointer pins the
/// digest (else the signature of the digest read).
async fn fetch_signed(
    image: &ImageRef,
    id: &ReleaseId,
    keys: Option<&[crate::cosign::TrustedKey]>,
    settings: &Settings,
    cache: Option<&Cache>,
) -> crate::exit::Result<(Release, bool)> {
    let Some(keys) = keys else {
        return fetch(image, id, settings, cache).await;
    };
    let store = crate::oci::Store::open(image, &settings.store)?;
    if let Some(digest) = image.digest() {
        let (fetched, signed) = tokio::join!(
            fetch_from(Some(&store), image, id, settings, cache),
            require_signature(&store, image, id, digest, keys, cache)
        );
        let fetched = fetched?;
        signed?;
        return Ok(fetched);
    }
    let (release, cached) = fetch_from(Some(&store), image, id, settings, cache).await?;
    require_signature(&store, image, id, release.manifest_digest(), keys, cache).await?;
    Ok((release, cached))
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
    Release(Manifests),
    /// `--parameters`: the Argo CD parameter announcement.
    Parameters(String),
}

impl super::Report for Output {
    /// Writes everything, through one buffer (pieces larger than it go straight through).
    fn write_to(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
        match &mut self.body {
            Body::Cached(entry) => entry.write_to(&mut out)?,
            Body::Release(manifests) => manifests.write_to(&mut out)?,
            Body::Parameters(json) => out.write_all(json.as_bytes())?,
        }
        out.write_all(self.env.as_bytes())?;
        out.flush()
    }
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
    let env_objects = env_objects(&dir)?;
    crate::manifests::env::check_env_kinds(&env_objects, &settings.env_kinds)
        .map_err(InvalidInput)?;
    let env = manifests::render(&env_objects)?;
    let image = pointer_image(&pointer, pointer_path, settings)?;
    let id = &pointer.id;
    let keys = trusted_keys(settings)?;
    let cache = settings
        .generate_cache
        .as_deref()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Cache::new);
    // Warm: the rendering of this exact release, made from verified blobs by an earlier run
    // that verified it to be the release this pointer names.
    // With environment objects, the release's own are needed to check them against: the
    // blob cache below still saves the network.
    if let (Some(cache), Some(digest), true) = (&cache, image.digest(), env_objects.is_empty())
        && keys
            .as_deref()
            .is_none_or(|k| signed_in_cache(k, Some(cache), id, digest))
        && let Some(body) = cache.rendered(id, digest)
    {
        crate::log::info(&format!(
            "generating {id} from {image}: rendered from cache"
        ));
        return Ok(Output {
            body: Body::Cached(body),
            env,
        });
    }
    crate::log::info(&format!("generating {id} from {image}"));
    let (release, cached) =
        fetch_signed(&image, id, keys.as_deref(), settings, cache.as_ref()).await?;
    crate::log::info(&format!("verified {image}"));
    let manifests = release.manifests();
    crate::log::debug(&format!(
        "{} documents from {} files{}, {} kept as written",
        manifests.documents().count(),
        manifests.files().len(),
        if cached { " (blob cache)" } else { "" },
        manifests
            .documents()
            .filter(|d| matches!(d.body, manifests::Body::Verbatim(_)))
            .count()
    ));
    if manifests.documents().next().is_none() {
        return Err(release::ReleaseError::Contents {
            what: format!("resources of {image}"),
            reason: "no Kubernetes objects: refusing an empty result (Argo CD would prune the application)".into(),
        }
        .into());
    }
    check_env_replaces(&env_objects, manifests, &image)?;
    // Both cache entries are written at once: writing tens of MB is mostly the kernel's
    // time, and a cache that cannot be written costs speed, not correctness.
    if let Some(cache) = &cache {
        std::thread::scope(|scope| {
            let stored = (!cached).then(|| scope.spawn(|| cache.put(&release)));
            if let Some(digest) = image.digest()
                && let Err(e) = cache.put_rendered(id, digest, |w| manifests.write_to(w))
            {
                crate::log::info(&format!("cannot cache the rendering of {image}: {e}"));
            }
            if let Some(Ok(Err(e))) = stored.map(std::thread::ScopedJoinHandle::join) {
                crate::log::info(&format!("cannot cache {image}: {e}"));
            }
        });
    }
    crate::log::debug("rendering cached");
    Ok(Output {
        body: Body::Release(release.into_manifests()),
        env,
    })
}

/// The image the pointer names. A pointer may name a registry, but not a directory: a layout
/// committed next to the pointers would let anyone with push access to the GitOps repository
/// bypass the registry (and `check`), and a path would let a pointer probe the sidecar's disk.
fn pointer_image(
    pointer: &Pointer,
    pointer_path: &Path,
    settings: &Settings,
) -> crate::exit::Result<ImageRef> {
    if let Some(crate::oci::RegistryBase::Layout(path)) = &pointer.registry
        && !settings.allow_layout_pointers
    {
        return Err(InvalidInput(format!(
            "{}: spec.registry is oci:{}: expected a registry host (set RELEASECTL_ALLOW_LAYOUT_POINTERS=1 to allow OCI layouts in pointers)",
            pointer_path.display(),
            path.display()
        ))
        .into());
    }
    Ok(super::pointer_image(
        pointer,
        &pointer_path.display().to_string(),
        settings,
    )?)
}

/// The Argo CD parameter announcement of a verified release (`parameters.dynamic`): one
/// read-only `map` parameter, `release`, whose values are strings, as Argo CD wants them.
fn announcement(release: &Release) -> String {
    let info = &release.metadata().release;
    let aliases: Vec<&str> = info.aliases.iter().map(|a| a.alias.as_str()).collect();
    let json = serde_json::json!([{
        "name": "release",
        "title": "Release",
        "collectionType": "map",
        "map": {
            "number": info.number.map(|n| n.to_string()).unwrap_or_default(),
            "aliases": aliases.join(","),
            "commit": info.commit.as_str(),
            "digest": release.manifest_digest().as_str(),
            "repository": info.repository.as_str(),
            "project": info.project.as_str(),
        }
    }]);
    format!("{json}\n")
}

/// `--parameters`: the announcement for the pointer at `pointer_path`, from the release read
/// and verified exactly as [`render`] reads it (the blob cache included); prints no manifests.
pub async fn parameters(pointer_path: &Path, settings: &Settings) -> crate::exit::Result<Output> {
    let (pointer, _) = load_pointer(pointer_path)?;
    let image = pointer_image(&pointer, pointer_path, settings)?;
    let keys = trusted_keys(settings)?;
    let cache = settings
        .generate_cache
        .as_deref()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Cache::new);
    let (release, _) = fetch_signed(
        &image,
        &pointer.id,
        keys.as_deref(),
        settings,
        cache.as_ref(),
    )
    .await?;
    Ok(Output {
        body: Body::Parameters(announcement(&release)),
        env: String::new(),
    })
}

/// Produces the output, within the deadline; the caller writes it (see [`Output::write_to`]).
pub async fn run(
    path: PathBuf,
    parameters: bool,
    settings: &Settings,
) -> crate::exit::Result<super::Outcome> {
    let timeout = settings.timeout;
    let work = async {
        if parameters {
            self::parameters(&path, settings).await
        } else {
            render(&path, settings).await
        }
    };
    tokio::select! {
        r = tokio::time::timeout(timeout, work) => match r {
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
