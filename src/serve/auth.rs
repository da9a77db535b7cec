//! Who is calling: a Bearer token is either a static token (its SHA-256 is in the token file)
//! or an OIDC ID token (a JWT signed RS256 or ES256 by a configured issuer's key, for its
//! audience, not expired). The identity it proves is the actor of every write.
//!
//! Invariants: a token never appears in a message, a log line or a response (only the
//! issuer, the key id and claim values do, escaped); `alg: none`, HS* and any algorithm but
//! RS256/ES256 are refused; a JWT's claims are trusted only after its signature verified
//! with a key of the issuer its `iss` names.
//!
//! Keys are refreshed without a restart: a JWKS URL is read again every `jwks_refresh` (by
//! [`Authenticator::refresh_urls`]) and when a token names a `kid` no key has, at most once per
//! `jwks_unknown_kid_interval` per issuer (random `kid`s cannot make the server hammer the
//! issuer); a JWKS file is read again when its mtime changes. A refresh that fails keeps the
//! keys read before and logs a warning (naming the JWKS, never a token).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::Value;

use super::config::{Config, Issuer, Jwks};
use crate::exit::{Context as _, InvalidInput};

/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: i64 = 60;

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The identity written as the actor: a static token's identity, or the token's `email`
    /// (when not marked unverified), else its `sub`.
    pub actor: String,
    /// Everything a permission glob may match: the actor and the `sub` claim.
    pub names: Vec<String>,
}

impl Principal {
    /// Whether a permission list admits this principal (`None`: everyone authenticated).
    #[must_use]
    pub fn allowed(&self, globs: Option<&[crate::policy::Glob]>) -> bool {
        globs.is_none_or(|globs| {
            globs
                .iter()
                .any(|g| self.names.iter().any(|n| g.matches(n)))
        })
    }
}

/// Why a token was refused (401). Never holds the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no Authorization: Bearer token; expected one")]
    Missing,
    #[error("the Bearer token is neither a known static token nor a JWT: {0}")]
    Malformed(String),
    #[error("token issuer {0}: not a configured issuer")]
    UnknownIssuer(String),
    #[error("token algorithm {0}: expected RS256 or ES256")]
    Algorithm(String),
    #[error("token of {issuer}: no key {kid} in the issuer's JWKS")]
    UnknownKey { issuer: String, kid: String },
    #[error("token of {0}: the signature does not verify")]
    Signature(String),
    #[error("token of {issuer}: audience is {actual}: expected {expected}")]
    Audience {
        issuer: String,
        expected: String,
        actual: String,
    },
    #[error("token of {issuer}: expired at {exp} (now {now})")]
    Expired { issuer: String, exp: i64, now: i64 },
    #[error("token of {issuer}: not valid before {nbf} (now {now})")]
    NotYet { issuer: String, nbf: i64, now: i64 },
    #[error("token of {0}: no sub claim")]
    NoSubject(String),
}

/// One verification key of a JWKS.
#[derive(Debug, Clone)]
enum Key {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    P256(Vec<u8>),
}

type Keys = Arc<BTreeMap<String, Key>>;

#[derive(Debug)]
struct Trusted {
    issuer: Issuer,
    keys: RwLock<Keys>,
    /// A JWKS file's mtime when it was last read.
    mtime: Mutex<Option<SystemTime>>,
    /// When a token's unknown `kid` last made the JWKS URL be read again.
    kid_refresh: tokio::sync::Mutex<Option<Instant>>,
}

impl Trusted {
    fn new(issuer: Issuer, keys: BTreeMap<String, Key>, mtime: Option<SystemTime>) -> Self {
        Self {
            issuer,
            keys: RwLock::new(Arc::new(keys)),
            mtime: Mutex::new(mtime),
            kid_refresh: tokio::sync::Mutex::new(None),
        }
    }

    fn keys(&self) -> Keys {
        Arc::clone(&self.keys.read().expect("not poisoned"))
    }

    fn replace(&self, keys: BTreeMap<String, Key>) {
        *self.keys.write().expect("not poisoned") = Arc::new(keys);
    }

    /// Reads a JWKS file again when its mtime changed since it was last read.
    fn reload_if_changed(&self) {
        let Jwks::File(path) = &self.issuer.jwks else {
            return;
        };
        let Ok(mtime) = std::fs::metadata(path).and_then(|m| m.modified()) else {
            return;
        };
        let mut seen = self.mtime.lock().expect("not poisoned");
        if *seen == Some(mtime) {
            return;
        }
        *seen = Some(mtime);
        match std::fs::read(path)
            .map_err(|e| InvalidInput(format!("JWKS {}: {e}", path.display())))
            .and_then(|bytes| parse_jwks(&path.display().to_string(), &bytes))
        {
            Ok(keys) => self.replace(keys),
            Err(e) => warn(&self.issuer.issuer, &e.to_string(), self.keys().len()),
        }
    }

    /// Reads a JWKS URL again; a failure keeps the keys and logs a warning.
    async fn refresh_url(&self) {
        if let Jwks::Url(_) = &self.issuer.jwks {
            match fetch_jwks(&self.issuer.jwks).await {
                Ok(keys) => self.replace(keys),
                Err(e) => warn(&self.issuer.issuer, &e.to_string(), self.keys().len()),
            }
        }
    }
}

/// A JSON line on stderr, next to the access log: a refresh of `issuer`'s keys failed.
fn warn(issuer: &str, why: &str, kept: usize) {
    eprintln!(
        "{}",
        serde_json::json!({
            "at": jiff::Timestamp::now().to_string(),
            "warning": format!(
                "cannot refresh the keys of issuer {}: {}; keeping the {kept} keys read before",
                crate::text::excerpt(issuer),
                crate::text::printable(why, 400)
            ),
        })
    );
}

/// The authenticator: static tokens and the issuers' keys.
#[derive(Debug)]
pub struct Authenticator {
    tokens: BTreeMap<String, String>,
    issuers: Vec<Trusted>,
    /// How often an unknown `kid` may make an issuer's JWKS URL be read again.
    unknown_kid_interval: Duration,
}

fn b64(part: &str, what: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| AuthError::Malformed(format!("{what} is not base64url")))
}

/// Parses a JWKS document into its RS256/ES256 keys by `kid` (keys without one are keyed "").
fn parse_jwks(source: &str, bytes: &[u8]) -> Result<BTreeMap<String, Key>, InvalidInput> {
    let bad = |why: &str| InvalidInput(format!("JWKS {source}: {why}"));
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| bad(&format!("not JSON: {e}")))?;
    let keys = doc["keys"]
        .as_array()
        .ok_or_else(|| bad("no \"keys\" array"))?;
    let mut out = BTreeMap::new();
    for k in keys {
        let field = |name: &str| -> Result<Vec<u8>, InvalidInput> {
            let text = k[name]
                .as_str()
                .ok_or_else(|| bad(&format!("a key without \"{name}\"")))?;
            URL_SAFE_NO_PAD
                .decode(text)
                .map_err(|_| bad(&format!("\"{name}\" is not base64url")))
        };
        let key = match (k["kty"].as_str(), k["crv"].as_str()) {
            (Some("RSA"), _) => Key::Rsa {
                n: field("n")?,
                e: field("e")?,
            },
            (Some("EC"), Some("P-256")) => {
                let mut point = vec![4u8];
                point.extend(field("x")?);
                point.extend(field("y")?);
                Key::P256(point)
            }
            // Other key types cannot verify RS256 or ES256: skip them.
            _ => continue,
        };
        let kid = k["kid"].as_str().unwrap_or_default().to_owned();
        out.insert(kid, key);
    }
    if out.is_empty() {
        return Err(bad("no RSA or P-256 key"));
    }
    Ok(out)
}

async fn fetch_jwks(jwks: &Jwks) -> crate::exit::Result<BTreeMap<String, Key>> {
    match jwks {
        Jwks::File(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read the JWKS {}", path.display()))?;
            Ok(parse_jwks(&path.display().to_string(), &bytes)?)
        }
        Jwks::Url(url) => {
            crate::tls::install_provider();
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(20))
                .build()
                .map_err(|e| InvalidInput(format!("JWKS {url}: {}", e.without_url())))?;
            let response = client
                .get(url)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| InvalidInput(format!("JWKS {url}: {}", e.without_url())))?;
            let bytes = response
                .bytes()
                .await
                .map_err(|e| InvalidInput(format!("JWKS {url}: {}", e.without_url())))?;
            Ok(parse_jwks(url, &bytes)?)
        }
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

impl Authenticator {
    /// Loads every issuer's keys.
    pub async fn load(config: &Config) -> crate::exit::Result<Self> {
        let mut issuers = Vec::new();
        for issuer in &config.issuers {
            let mtime = match &issuer.jwks {
                Jwks::File(path) => std::fs::metadata(path).and_then(|m| m.modified()).ok(),
                Jwks::Url(_) => None,
            };
            issuers.push(Trusted::new(
                issuer.clone(),
                fetch_jwks(&issuer.jwks).await?,
                mtime,
            ));
        }
        Ok(Self {
            tokens: config.static_tokens.clone(),
            issuers,
            unknown_kid_interval: config.jwks_unknown_kid_interval,
        })
    }

    /// Reads every JWKS URL again (the periodic refresh); failures keep the keys.
    pub async fn refresh_urls(&self) {
        for trusted in &self.issuers {
            trusted.refresh_url().await;
        }
    }

    /// [`Self::authenticate`], and when the token names a `kid` its issuer's JWKS URL did not
    /// have, reads that JWKS again (at most once per `jwks_unknown_kid_interval`) and retries.
    pub async fn authenticate_fresh(
        &self,
        header: Option<&str>,
        now: i64,
    ) -> Result<Principal, AuthError> {
        let first = self.authenticate(header, now);
        let Err(AuthError::UnknownKey { issuer, .. }) = &first else {
            return first;
        };
        let Some(trusted) = self
            .issuers
            .iter()
            .find(|t| &t.issuer.issuer == issuer && matches!(t.issuer.jwks, Jwks::Url(_)))
        else {
            return first;
        };
        {
            // Requests waiting here together read the JWKS once; one refreshed a moment ago
            // leaves the keys as they are.
            let mut last = trusted.kid_refresh.lock().await;
            let at = Instant::now();
            if last.is_none_or(|t| at.duration_since(t) >= self.unknown_kid_interval) {
                *last = Some(at);
                trusted.refresh_url().await;
            }
        }
        self.authenticate(header, now)
    }

    /// The principal an `Authorization` header's value proves, at `now` (Unix seconds).
    pub fn authenticate(&self, header: Option<&str>, now: i64) -> Result<Principal, AuthError> {
        let token = header
            .and_then(|h| {
                let (scheme, rest) = h.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        if let Some(identity) = self
            .tokens
            .get(&crate::digest::sha256_hex(token.as_bytes()))
        {
            return Ok(Principal {
                actor: identity.clone(),
                names: vec![identity.clone()],
            });
        }
        self.verify_jwt(token, now)
    }

    fn verify_jwt(&self, token: &str, now: i64) -> Result<Principal, AuthError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed("not three dot-separated parts".into()));
        };
        let header: Header = serde_json::from_slice(&b64(h, "the header")?)
            .map_err(|_| AuthError::Malformed("the header is not a JWT header".into()))?;
        let claims: Value = serde_json::from_slice(&b64(p, "the payload")?)
            .map_err(|_| AuthError::Malformed("the payload is not JSON".into()))?;
        let signature = b64(s, "the signature")?;
        let iss = claims["iss"].as_str().unwrap_or_default();
        let trusted = self
            .issuers
            .iter()
            .find(|t| t.issuer.issuer == iss)
            .ok_or_else(|| AuthError::UnknownIssuer(crate::text::excerpt(iss)))?;
        let issuer = &trusted.issuer.issuer;
        let kid = header.kid.unwrap_or_default();
        trusted.reload_if_changed();
        let keys = trusted.keys();
        let key = keys
            .get(&kid)
            .or_else(|| {
                (keys.len() == 1 && kid.is_empty())
                    .then(|| keys.values().next())
                    .flatten()
            })
            .ok_or_else(|| AuthError::UnknownKey {
                issuer: issuer.clone(),
                kid: crate::text::excerpt(&kid),
            })?;
        let signed = &token.as_bytes()[..h.len() + 1 + p.len()];
        let verified = match (header.alg.as_str(), key) {
            ("RS256", Key::Rsa { n, e }) => RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, signed, &signature)
                .is_ok(),
            ("ES256", Key::P256(point)) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(signed, &signature)
                    .is_ok()
            }
            ("RS256" | "ES256", _) => false,
            (alg, _) => return Err(AuthError::Algorithm(crate::text::excerpt(alg))),
        };
        if !verified {
            return Err(AuthError::Signature(issuer.clone()));
        }
        let audience = &trusted.issuer.audience;
        let aud_ok = match &claims["aud"] {
            Value::String(a) => a == audience,
            Value::Array(list) => list.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        };
        if !aud_ok {
            return Err(AuthError::Audience {
                issuer: issuer.clone(),
                expected: audience.clone(),
                actual: crate::text::excerpt(&claims["aud"].to_string()),
            });
        }
        let exp = claims["exp"].as_i64().ok_or_else(|| AuthError::Expired {
            issuer: issuer.clone(),
            exp: 0,
            now,
        })?;
        if exp + LEEWAY_SECONDS <= now {
            return Err(AuthError::Expired {
                issuer: issuer.clone(),
                exp,
                now,
            });
        }
        if let Some(nbf) = claims["nbf"].as_i64()
            && nbf - LEEWAY_SECONDS > now
        {
            return Err(AuthError::NotYet {
                issuer: issuer.clone(),
                nbf,
                now,
            });
        }
        let sub = claims["sub"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| AuthError::NoSubject(issuer.clone()))?;
        let email = claims["email"]
            .as_str()
            .filter(|e| !e.is_empty() && claims["email_verified"] != Value::Bool(false));
        let actor = email.unwrap_or(sub).to_owned();
        let mut names = vec![actor.clone()];
        if actor != sub {
            names.push(sub.to_owned());
        }
        Ok(Principal { actor, names })
    }
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn keypair() -> EcdsaKeyPair {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap()
    }

    fn jwt(key: &EcdsaKeyPair, alg: &str, claims: &Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","kid":"k1"}}"#));
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{payload}");
        let sig = key.sign(&SystemRandom::new(), signed.as_bytes()).unwrap();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    fn authenticator(key: &EcdsaKeyPair) -> Authenticator {
        let point = key.public_key().as_ref();
        let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])}]});
        let mut tokens = BTreeMap::new();
        tokens.insert(
            crate::digest::sha256_hex(b"robot-secret"),
            "deploy-bot".to_owned(),
        );
        Authenticator {
            tokens,
            issuers: vec![Trusted::new(
                Issuer {
                    issuer: "https://idp.example".into(),
                    audience: "releasectl".into(),
                    jwks: Jwks::File("/nonexistent/jwks.json".into()),
                },
                parse_jwks("jwks.json", jwks.to_string().as_bytes()).unwrap(),
                None,
            )],
            unknown_kid_interval: Duration::from_secs(30),
        }
    }

    fn claims() -> Value {
        serde_json::json!({"iss": "https://idp.example", "aud": "releasectl", "exp": NOW + 300,
            "sub": "repo:company/monorepo:ref:refs/heads/main"})
    }

    #[test]
    fn a_signed_id_token_of_a_configured_issuer_proves_its_subject() {
        let key = keypair();
        let a = authenticator(&key);
        let token = jwt(&key, "ES256", &claims());
        let p = a
            .authenticate(Some(&format!("Bearer {token}")), NOW)
            .unwrap();
        assert_eq!(p.actor, "repo:company/monorepo:ref:refs/heads/main");
        let mut with_email = claims();
        with_email["email"] = "alice@company.com".into();
        let p = a
            .authenticate(
                Some(&format!("bearer {}", jwt(&key, "ES256", &with_email))),
                NOW,
            )
            .unwrap();
        assert_eq!(p.actor, "alice@company.com");
        assert!(
            p.names
                .contains(&"repo:company/monorepo:ref:refs/heads/main".to_owned())
        );
    }

    #[test]
    fn static_tokens_are_matched_by_their_sha256() {
        let a = authenticator(&keypair());
        assert_eq!(
            a.authenticate(Some("Bearer robot-secret"), NOW)
                .unwrap()
                .actor,
            "deploy-bot"
        );
        let e = a
            .authenticate(Some("Bearer robot-secreT"), NOW)
            .unwrap_err();
        assert!(!e.to_string().contains("robot-secreT"), "{e}");
        assert_eq!(a.authenticate(None, NOW).unwrap_err(), AuthError::Missing);
    }

    #[test]
    fn expired_foreign_tampered_and_unsigned_tokens_are_refused_without_echoing_them() {
        let key = keypair();
        let a = authenticator(&key);
        let check = |claims: &Value, alg: &str, signer: &EcdsaKeyPair, want: &str| {
            let token = jwt(signer, alg, claims);
            let e = a
                .authenticate(Some(&format!("Bearer {token}")), NOW)
                .unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
            assert!(!e.to_string().contains(&token[..20]), "{e}");
        };
        let mut c = claims();
        c["exp"] = (NOW - 3600).into();
        check(&c, "ES256", &key, "expired");
        let mut c = claims();
        c["aud"] = "someone-else".into();
        check(&c, "ES256", &key, "expected releasectl");
        let mut c = claims();
        c["iss"] = "https://evil.example".into();
        check(&c, "ES256", &key, "not a configured issuer");
        check(&claims(), "ES256", &keypair(), "does not verify");
        check(&claims(), "HS256", &key, "expected RS256 or ES256");
    }

    fn jwk(key: &EcdsaKeyPair) -> Value {
        let point = key.public_key().as_ref();
        serde_json::json!({"kty": "EC", "crv": "P-256", "kid": "k1",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])})
    }

    #[test]
    fn a_jwks_file_is_read_again_when_it_changes_and_a_broken_one_keeps_the_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        let (old, new) = (keypair(), keypair());
        let write = |text: String, secs: u64| {
            std::fs::write(&path, text).unwrap();
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
                .unwrap();
        };
        write(serde_json::json!({"keys": [jwk(&old)]}).to_string(), 1000);
        let config = Config {
            issuers: vec![Issuer {
                issuer: "https://idp.example".into(),
                audience: "releasectl".into(),
                jwks: Jwks::File(path.clone()),
            }],
            ..Config::default()
        };
        let a = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(Authenticator::load(&config))
            .unwrap();
        let bearer = |key: &EcdsaKeyPair| format!("Bearer {}", jwt(key, "ES256", &claims()));
        assert!(a.authenticate(Some(&bearer(&old)), NOW).is_ok());
        assert!(a.authenticate(Some(&bearer(&new)), NOW).is_err());
        write(serde_json::json!({"keys": [jwk(&new)]}).to_string(), 2000);
        assert!(a.authenticate(Some(&bearer(&new)), NOW).is_ok());
        assert!(a.authenticate(Some(&bearer(&old)), NOW).is_err());
        write("{not json".into(), 3000);
        assert!(a.authenticate(Some(&bearer(&new)), NOW).is_ok());
    }

    #[test]
    fn permissions_match_the_actor_or_the_subject_by_glob() {
        let p = Principal {
            actor: "alice@company.com".into(),
            names: vec![
                "alice@company.com".into(),
                "repo:company/monorepo:ref:refs/heads/main".into(),
            ],
        };
        let policy = crate::policy::parse(
            "environments.yaml",
            b"environments:\n  prod:\n    deployers: [\"repo:company/*:ref:refs/heads/main\"]\n  dev:\n    deployers: [bob@company.com]\n",
        )
        .unwrap();
        let prod = policy.get(&"prod".parse().unwrap()).unwrap();
        let dev = policy.get(&"dev".parse().unwrap()).unwrap();
        assert!(p.allowed(prod.deployers.as_deref()));
        assert!(!p.allowed(dev.deployers.as_deref()));
        assert!(p.allowed(policy.release_creators.as_deref()));
    }
}
