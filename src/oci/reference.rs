//! Where images live: registry references, OCI layout paths, and the `--registry` setting.
//!
//! Grammar accepted for a registry reference: `host[:port]/path[:tag][@sha256:…]` where every
//! path segment follows the OCI name grammar. The first segment is always the registry host:
//! we never guess `docker.io`, because a release pulled from the wrong registry is worse than
//! an error.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::digest::Digest;
use crate::ids::{ReleaseId, is_name_component};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error(
        "invalid image reference {value:?}: {reason} (expected host[:port]/path[:tag][@sha256:…] or oci:PATH[:TAG])"
    )]
    Image { value: String, reason: &'static str },
    #[error("invalid registry {value:?}: {reason} (expected host[:port][/prefix] or oci:PATH)")]
    Registry { value: String, reason: &'static str },
}

/// An image in a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryImage {
    /// `host[:port]`
    pub host: String,
    /// The repository path inside the registry, e.g. `company/monorepo/auth-service`.
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// An image in an OCI image layout directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutImage {
    pub dir: PathBuf,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// Any image location a command accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    Registry(RegistryImage),
    Layout(LayoutImage),
}

/// The `--registry` setting: a registry (with an optional path prefix) or a layout root.
///
/// In a layout root, each `<repository>/<project>` is its own OCI layout directory, tagged by
/// commit, mirroring a registry's `<repository>/<project>:<commit>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryBase {
    Registry {
        host: String,
        prefix: Option<String>,
    },
    Layout(PathBuf),
}

fn is_tag(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric() || b == b'_')
        && s.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn is_host(s: &str) -> bool {
    let (name, port) = match s.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (s, None),
    };
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Splits `rest[:tag][@digest]` (the tag's `:` must come after the last `/`).
fn split_tag_digest(s: &str) -> Result<(&str, Option<String>, Option<Digest>), &'static str> {
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(d.parse::<Digest>().map_err(|_| "bad digest")?)),
        None => (s, None),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[last_slash..].rfind(':') {
        Some(i) => {
            let tag = &rest[last_slash + i + 1..];
            if !is_tag(tag) {
                return Err("bad tag");
            }
            Ok((&rest[..last_slash + i], Some(tag.to_owned()), digest))
        }
        None => Ok((rest, None, digest)),
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let err = |reason| ReferenceError::Image {
            value: value.to_owned(),
            reason,
        };
        if let Some(path) = value.strip_prefix("oci:") {
            let (dir, tag, digest) = split_tag_digest(path).map_err(err)?;
            if dir.is_empty() {
                return Err(err("empty layout path"));
            }
            return Ok(Self::Layout(LayoutImage {
                dir: PathBuf::from(dir),
                tag,
                digest,
            }));
        }
        let (host, rest) = value
            .split_once('/')
            .ok_or_else(|| err("no registry host"))?;
        if !is_host(host) {
            return Err(err("bad registry host"));
        }
        let (path, tag, digest) = split_tag_digest(rest).map_err(err)?;
        if !path.split('/').all(is_name_component) {
            return Err(err("bad repository path"));
        }
        if tag.is_none() && digest.is_none() {
            return Err(err("no tag or digest"));
        }
        Ok(Self::Registry(RegistryImage {
            host: host.to_owned(),
            path: path.to_owned(),
            tag,
            digest,
        }))
    }
}

impl FromStr for RegistryBase {
    type Err = ReferenceError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let err = |reason| ReferenceError::Registry {
            value: value.to_owned(),
            reason,
        };
        if let Some(path) = value.strip_prefix("oci:") {
            if path.is_empty() {
                return Err(err("empty layout path"));
            }
            return Ok(Self::Layout(PathBuf::from(path)));
        }
        let value_trimmed = value.trim_end_matches('/');
        let (host, prefix) = match value_trimmed.split_once('/') {
            Some((h, p)) => (h, Some(p)),
            None => (value_trimmed, None),
        };
        if !is_host(host) {
            return Err(err("bad registry host"));
        }
        if let Some(p) = prefix
            && !p.split('/').all(is_name_component)
        {
            return Err(err("bad path prefix"));
        }
        Ok(Self::Registry {
            host: host.to_owned(),
            prefix: prefix.map(str::to_owned),
        })
    }
}

impl RegistryBase {
    /// The setting as a person writes it: `host[:port][/prefix]` or `oci:PATH`.
    #[must_use]
    pub fn to_string_value(&self) -> String {
        match self {
            Self::Registry {
                host,
                prefix: Some(p),
            } => format!("{host}/{p}"),
            Self::Registry { host, prefix: None } => host.clone(),
            Self::Layout(path) => format!("oci:{}", path.display()),
        }
    }

    /// Where the release `id` lives under this base, tagged by its commit.
    #[must_use]
    pub fn image(&self, id: &ReleaseId, digest: Option<Digest>) -> ImageRef {
        let tag = Some(id.commit.to_string());
        match self {
            Self::Registry { host, prefix } => ImageRef::Registry(RegistryImage {
                host: host.clone(),
                path: match prefix {
                    Some(p) => format!("{p}/{}", id.image_path()),
                    None => id.image_path(),
                },
                tag,
                digest,
            }),
            Self::Layout(root) => ImageRef::Layout(LayoutImage {
                dir: root.join(id.repository.as_str()).join(id.project.as_str()),
                tag,
                digest,
            }),
        }
    }
}

impl ImageRef {
    #[must_use]
    pub fn tag(&self) -> Option<&str> {
        match self {
            Self::Registry(r) => r.tag.as_deref(),
            Self::Layout(l) => l.tag.as_deref(),
        }
    }

    #[must_use]
    pub fn digest(&self) -> Option<&Digest> {
        match self {
            Self::Registry(r) => r.digest.as_ref(),
            Self::Layout(l) => l.digest.as_ref(),
        }
    }

    /// The same image, pinned to `digest` (the tag is kept for people).
    #[must_use]
    pub fn with_digest(&self, digest: Digest) -> Self {
        let mut out = self.clone();
        match &mut out {
            Self::Registry(r) => r.digest = Some(digest),
            Self::Layout(l) => l.digest = Some(digest),
        }
        out
    }

    /// The same location with another tag and no digest (a copy's destination).
    #[must_use]
    pub fn with_tag(&self, tag: Option<String>) -> Self {
        let mut out = self.clone();
        match &mut out {
            Self::Registry(r) => {
                r.tag = tag;
                r.digest = None;
            }
            Self::Layout(l) => {
                l.tag = tag;
                l.digest = None;
            }
        }
        out
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (tag, digest) = (self.tag(), self.digest());
        match self {
            Self::Registry(r) => write!(f, "{}/{}", r.host, r.path)?,
            Self::Layout(l) => write!(f, "oci:{}", l.dir.display())?,
        }
        if let Some(t) = tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

crate::exit_class!(ReferenceError => Usage);

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn registry_references_split_into_host_path_tag_and_digest() {
        let r: ImageRef = format!("127.0.0.1:5000/company/monorepo/auth-service:abc@{D}")
            .parse()
            .unwrap();
        let ImageRef::Registry(r) = r else { panic!() };
        assert_eq!(r.host, "127.0.0.1:5000");
        assert_eq!(r.path, "company/monorepo/auth-service");
        assert_eq!(r.tag.as_deref(), Some("abc"));
        assert_eq!(r.digest.unwrap().as_str(), D);
    }

    #[test]
    fn layout_references_take_an_optional_tag_after_the_last_slash() {
        let r: ImageRef = "oci:/tmp/x:1/layout:v1".parse().unwrap();
        assert_eq!(
            r,
            ImageRef::Layout(LayoutImage {
                dir: "/tmp/x:1/layout".into(),
                tag: Some("v1".into()),
                digest: None
            })
        );
        let r: ImageRef = "oci:fixtures/registry".parse().unwrap();
        assert_eq!(r.tag(), None);
    }

    #[test]
    fn references_without_host_or_with_bad_parts_are_refused() {
        for bad in [
            "auth-service:abc",
            "127.0.0.1:5000/Company/x:abc",
            "127.0.0.1:5000/x",
            "127.0.0.1:5000/x:-bad",
            "127.0.0.1:5000/x@sha256:short",
            "oci:",
        ] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn registry_base_places_releases_under_its_prefix() {
        let id = ReleaseId {
            repository: "company/monorepo".parse().unwrap(),
            project: "auth-service".parse().unwrap(),
            commit: "0123456789abcdef0123456789abcdef01234567".parse().unwrap(),
        };
        let base: RegistryBase = "reg.example.com:443/releases".parse().unwrap();
        assert_eq!(
            base.image(&id, None).to_string(),
            "reg.example.com:443/releases/company/monorepo/auth-service:0123456789abcdef0123456789abcdef01234567"
        );
        let base: RegistryBase = "oci:/srv/r".parse().unwrap();
        assert_eq!(
            base.image(&id, None).to_string(),
            "oci:/srv/r/company/monorepo/auth-service:0123456789abcdef0123456789abcdef01234567"
        );
    }
}
