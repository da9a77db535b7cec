//! The server's configuration file (YAML, strict like every file releasectl reads): where to
//! listen, which OIDC issuers and static tokens authenticate (and how often their JWKS are
//! read again), whether reads need a token, the body limit, the request rate limit and the
//! proxies whose `X-Forwarded-For` is believed.
//!
//! Invariants: an unknown key or a bad value is an error naming the file, the field, the
//! value and what was expected; the token file holds only SHA-256 digests of tokens, never
//! tokens, so nothing read here is a secret.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::exit::{Context as _, InvalidInput};
use crate::yaml::{FieldError, Node};

const TOP_KEYS: &[&str] = &[
    "listen",
    "anonymous_read",
    "max_body_bytes",
    "static_tokens",
    "issuers",
    "rate_limit",
    "trusted_proxies",
    "jwks_refresh",
    "jwks_unknown_kid_interval",
];
const RATE_KEYS: &[&str] = &["per_second", "burst"];
const ISSUER_KEYS: &[&str] = &["issuer", "audience", "jwks_file", "jwks_url"];
const TOKEN_FILE_KEYS: &[&str] = &["tokens"];

/// Request bodies above this many bytes are refused (413) unless the file says otherwise.
pub const DEFAULT_MAX_BODY: u64 = 1 << 20;

/// The default rate limit: a pipeline fleet behind one robot identity may send a burst of
/// 500 requests (scripts/bench-serve.sh sends 200 at once), then 50 a second.
pub const DEFAULT_RATE: RateLimit = RateLimit {
    per_second: 50,
    burst: 500,
};

/// URL JWKS are read again this often (and file JWKS whenever their mtime changes).
pub const DEFAULT_JWKS_REFRESH: Duration = Duration::from_secs(600);

/// A token whose `kid` no key has makes the issuer's JWKS URL be read again, at most this
/// often (random `kid`s cannot make the server hammer the issuer).
pub const DEFAULT_JWKS_UNKNOWN_KID_INTERVAL: Duration = Duration::from_secs(30);

/// A token bucket per caller: `burst` requests at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u64,
    pub burst: u64,
}

/// A proxy address or network (`10.0.0.0/8`, `::1`) whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Network {
    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address counts as IPv4).
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        let (a, b, bits) = match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                (u128::from(a.to_bits()), u128::from(b.to_bits()), 32)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => (a.to_bits(), b.to_bits(), 128),
            _ => return false,
        };
        let prefix = u32::from(self.prefix);
        if prefix == 0 {
            return true;
        }
        let shift = bits - prefix;
        (a >> shift) == (b >> shift)
    }
}

impl std::str::FromStr for Network {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| ())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or(())?,
        };
        Ok(Self { addr, prefix })
    }
}

/// Where an issuer's signing keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Jwks {
    File(PathBuf),
    Url(String),
}

/// An OIDC issuer whose ID tokens are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    /// The `iss` claim, exactly.
    pub issuer: String,
    /// The `aud` claim must hold this.
    pub audience: String,
    pub jwks: Jwks,
}

/// The server's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: Option<SocketAddr>,
    pub anonymous_read: bool,
    pub max_body_bytes: u64,
    /// The token file (`static_tokens`).
    pub token_file: Option<PathBuf>,
    /// `sha256(token)` in lower-case hex → identity, read from `token_file`.
    pub static_tokens: BTreeMap<String, String>,
    pub issuers: Vec<Issuer>,
    pub rate_limit: RateLimit,
    pub trusted_proxies: Vec<Network>,
    pub jwks_refresh: Duration,
    pub jwks_unknown_kid_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: None,
            anonymous_read: false,
            max_body_bytes: DEFAULT_MAX_BODY,
            token_file: None,
            static_tokens: BTreeMap::new(),
            issuers: Vec::new(),
            rate_limit: DEFAULT_RATE,
            trusted_proxies: Vec::new(),
            jwks_refresh: DEFAULT_JWKS_REFRESH,
            jwks_unknown_kid_interval: DEFAULT_JWKS_UNKNOWN_KID_INTERVAL,
        }
    }
}

fn one_document<'v>(
    file: &str,
    docs: &'v [serde_json::Value],
) -> Result<&'v serde_json::Value, InvalidInput> {
    match docs {
        [doc] => Ok(doc),
        _ => Err(InvalidInput(format!(
            "{file}: expected one YAML document, found {}",
            docs.len()
        ))),
    }
}

/// Reads the configuration file at `path`; relative paths in it are relative to its
/// directory.
pub fn load(path: &Path) -> crate::exit::Result<Config> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {file}"))?;
    let docs = crate::yaml::documents(&bytes).map_err(|e| InvalidInput(format!("{file}: {e}")))?;
    let doc = one_document(&file, &docs)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut config = parse(&file, doc, base).map_err(|e| InvalidInput(e.to_string()))?;
    if let Some(tokens) = &config.token_file {
        config.static_tokens = load_tokens(tokens)?;
    }
    Ok(config)
}

fn parse(file: &str, doc: &serde_json::Value, base: &Path) -> Result<Config, FieldError> {
    let top = Node::root(file, doc).mapping(TOP_KEYS)?;
    let listen = match top.str("listen", "an address such as 127.0.0.1:8080")? {
        None => None,
        Some(s) => Some(s.parse().map_err(|_| {
            top.get("listen")
                .expect("present")
                .invalid("an address such as 127.0.0.1:8080 or [::]:8080")
        })?),
    };
    let mut issuers = Vec::new();
    for node in top.list("issuers", "a list of issuers")? {
        let m = node.mapping(ISSUER_KEYS)?;
        let issuer = m.required_str("issuer", "the issuer URL (the iss claim)")?;
        let audience = m.required_str("audience", "the audience (the aud claim)")?;
        let jwks = match (
            m.str("jwks_file", "a path")?,
            m.str("jwks_url", "an https URL")?,
        ) {
            (Some(f), None) => Jwks::File(base.join(f)),
            (None, Some(u)) if u.starts_with("https://") || u.starts_with("http://") => {
                Jwks::Url(u.to_owned())
            }
            (None, Some(_)) => {
                return Err(m
                    .get("jwks_url")
                    .expect("present")
                    .invalid("an http(s) URL"));
            }
            _ => return Err(node.invalid("exactly one of jwks_file and jwks_url")),
        };
        issuers.push(Issuer {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            jwks,
        });
    }
    let token_file = top
        .str("static_tokens", "the path of a token file")?
        .map(|p| base.join(p));
    let rate = top.mapping_or_empty("rate_limit", RATE_KEYS)?;
    let rate_limit = RateLimit {
        per_second: rate
            .u64("per_second", "requests a second, at least 1")?
            .unwrap_or(DEFAULT_RATE.per_second),
        burst: rate
            .u64("burst", "requests at once, at least 1")?
            .unwrap_or(DEFAULT_RATE.burst),
    };
    if rate_limit.per_second == 0 || rate_limit.burst == 0 {
        return Err(rate.node().invalid("per_second and burst of at least 1"));
    }
    let mut trusted_proxies = Vec::new();
    for node in top.list("trusted_proxies", "a list of addresses or networks")? {
        let text = node.str("an address or network such as 10.0.0.0/8")?;
        trusted_proxies.push(
            text.parse()
                .map_err(|()| node.invalid("an address or network such as 10.0.0.0/8 or ::1"))?,
        );
    }
    let duration = |key: &str, default: Duration| -> Result<Duration, FieldError> {
        match top.str(key, "a duration such as 10m")? {
            None => Ok(default),
            Some(text) => crate::duration::parse(text)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    top.get(key)
                        .expect("present")
                        .invalid("a duration such as 30s or 10m, above zero")
                }),
        }
    };
    Ok(Config {
        listen,
        anonymous_read: top.bool("anonymous_read")?.unwrap_or(false),
        max_body_bytes: top
            .u64("max_body_bytes", "a number of bytes")?
            .unwrap_or(DEFAULT_MAX_BODY),
        token_file,
        static_tokens: BTreeMap::new(),
        issuers,
        rate_limit,
        trusted_proxies,
        jwks_refresh: duration("jwks_refresh", DEFAULT_JWKS_REFRESH)?,
        jwks_unknown_kid_interval: duration(
            "jwks_unknown_kid_interval",
            DEFAULT_JWKS_UNKNOWN_KID_INTERVAL,
        )?,
    })
}

/// Reads a token file: `tokens:` mapping the lower-case hex SHA-256 of each token to the
/// identity it authenticates.
pub fn load_tokens(path: &Path) -> crate::exit::Result<BTreeMap<String, String>> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {file}"))?;
    let docs = crate::yaml::documents(&bytes).map_err(|e| InvalidInput(format!("{file}: {e}")))?;
    let doc = one_document(&file, &docs)?;
    Ok(tokens(&file, doc).map_err(|e| InvalidInput(e.to_string()))?)
}

fn tokens(file: &str, doc: &serde_json::Value) -> Result<BTreeMap<String, String>, FieldError> {
    let top = Node::root(file, doc).mapping(TOKEN_FILE_KEYS)?;
    let mut tokens = BTreeMap::new();
    for (digest, node) in top
        .required("tokens", "a mapping of sha256(token) to identity")?
        .entries("a mapping of sha256(token) to identity")?
    {
        if digest.len() != 64
            || !digest
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(
                node.invalid("an entry keyed by 64 lower-case hex digits (sha256 of the token)")
            );
        }
        let identity = node.str("an identity such as deploy-bot@company.com")?;
        if identity.trim().is_empty() {
            return Err(node.invalid("a non-empty identity"));
        }
        tokens.insert(digest.to_owned(), identity.to_owned());
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(yaml: &str) -> Result<Config, FieldError> {
        let docs = crate::yaml::documents(yaml.as_bytes()).unwrap();
        parse("serve.yaml", &docs[0], Path::new("/etc/releasectl"))
    }

    #[test]
    fn a_full_file_is_read_and_paths_are_relative_to_it() {
        let c = parsed(
            "listen: 127.0.0.1:8080\nanonymous_read: true\nmax_body_bytes: 4096\nissuers:\n  - {issuer: https://idp, audience: releasectl, jwks_file: jwks.json}\n",
        )
        .unwrap();
        assert_eq!(c.listen, Some("127.0.0.1:8080".parse().unwrap()));
        assert!(c.anonymous_read);
        assert_eq!(c.max_body_bytes, 4096);
        assert_eq!(
            c.issuers[0].jwks,
            Jwks::File("/etc/releasectl/jwks.json".into())
        );
    }

    #[test]
    fn unknown_keys_and_ambiguous_key_sources_are_refused_by_name() {
        let e = parsed("listen: 127.0.0.1:1\nanonymus_read: true\n").unwrap_err();
        assert!(e.to_string().contains("anonymus_read"), "{e}");
        let e =
            parsed("issuers:\n  - {issuer: a, audience: b, jwks_file: x, jwks_url: https://y}\n")
                .unwrap_err();
        assert!(
            e.to_string()
                .contains("exactly one of jwks_file and jwks_url"),
            "{e}"
        );
        let e = parsed("listen: nowhere\n").unwrap_err();
        assert!(e.to_string().contains("\"nowhere\""), "{e}");
    }

    #[test]
    fn rate_limits_proxies_and_jwks_intervals_are_read_with_defaults() {
        let c = parsed("listen: 127.0.0.1:1\n").unwrap();
        assert_eq!(c.rate_limit, DEFAULT_RATE);
        assert_eq!(c.jwks_refresh, DEFAULT_JWKS_REFRESH);
        let c = parsed(
            "rate_limit: {per_second: 2, burst: 3}\ntrusted_proxies: [10.0.0.0/8, \"::1\"]\njwks_refresh: 1m\njwks_unknown_kid_interval: 5s\n",
        )
        .unwrap();
        assert_eq!(
            c.rate_limit,
            RateLimit {
                per_second: 2,
                burst: 3
            }
        );
        assert!(c.trusted_proxies[0].contains("10.1.2.3".parse().unwrap()));
        assert!(c.trusted_proxies[0].contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!c.trusted_proxies[0].contains("11.0.0.1".parse().unwrap()));
        assert!(c.trusted_proxies[1].contains("::1".parse().unwrap()));
        assert!(!c.trusted_proxies[1].contains("127.0.0.1".parse().unwrap()));
        assert_eq!(c.jwks_refresh, Duration::from_secs(60));
        assert_eq!(c.jwks_unknown_kid_interval, Duration::from_secs(5));
        for bad in [
            "rate_limit: {per_second: 0}\n",
            "rate_limit: {rate: 1}\n",
            "trusted_proxies: [10.0.0.0/33]\n",
            "jwks_refresh: 0s\n",
        ] {
            assert!(parsed(bad).is_err(), "{bad}");
        }
    }
}
