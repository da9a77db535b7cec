//! `releasectl serve` with OIDC ID tokens: an ES256 issuer whose JWKS is served over HTTP and
//! an RS256 issuer whose JWKS is a file (its key made by `openssl`), tokens signed here with
//! `ring`. A good token proves its `email` (else `sub`), matched by `deployers` globs; an
//! expired token, one for another audience, one of an unknown issuer and one signed by another
//! key each answer 401 and write nothing.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair,
    RsaPublicKeyComponents,
};
use serde_json::{Value, json};

use crate::support::cmd::Cmd;
use crate::support::fake_server::{Action, FakeServer};
use crate::support::serve::Served;
use crate::support::setup::PROJECT;
use crate::support::world::World;

const GITHUB: &str = "https://token.actions.example";
const DEX: &str = "https://dex.example";
const SUB: &str = "repo:company/monorepo:ref:refs/heads/main";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

enum Signer {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl Signer {
    fn ec() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Self::Ec(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .unwrap(),
        )
    }

    /// A 2048-bit RSA key made by `openssl genpkey` (ring cannot make one), as RSAPrivateKey DER.
    fn rsa() -> Self {
        let dir = crate::support::temp_dir();
        let der = dir.path().join("key.der");
        Cmd::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-outform",
                "DER",
                "-out",
            ])
            .arg(&der)
            .run()
            .assert_success();
        Self::Rsa(RsaKeyPair::from_der(&std::fs::read(der).unwrap()).unwrap())
    }

    fn jwk(&self, kid: &str) -> Value {
        match self {
            Self::Ec(k) => {
                let p = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(&p[1..33]), "y": b64(&p[33..])})
            }
            Self::Rsa(k) => {
                let c: RsaPublicKeyComponents<Vec<u8>> = k.public().into();
                json!({"kty": "RSA", "kid": kid, "n": b64(&c.n), "e": b64(&c.e)})
            }
        }
    }

    fn token(&self, kid: &str, claims: &Value) -> String {
        let alg = match self {
            Self::Ec(_) => "ES256",
            Self::Rsa(_) => "RS256",
        };
        let signed = format!(
            "{}.{}",
            b64(json!({"alg": alg, "kid": kid, "typ": "JWT"})
                .to_string()
                .as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let rng = SystemRandom::new();
        let sig = match self {
            Self::Ec(k) => k.sign(&rng, signed.as_bytes()).unwrap().as_ref().to_vec(),
            Self::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, signed.as_bytes(), &mut sig)
                    .unwrap();
                sig
            }
        };
        format!("{signed}.{}", b64(&sig))
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

fn claims(iss: &str, extra: &Value) -> Value {
    let mut c =
        json!({"iss": iss, "aud": "releasectl", "sub": SUB, "iat": now(), "exp": now() + 600});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

#[test]
fn oidc_tokens_of_configured_issuers_authenticate_and_every_other_token_is_refused() {
    let world = World::new(
        "environments:\n  dev:\n    deployers: [\"repo:company/monorepo:ref:refs/heads/*\", carol@company.com]\n    promotion_policy: {allowed_branches: [\"*\"]}\n",
    );
    let release = world.main_release("oidc");
    let github = Signer::ec();
    let dex = Signer::rsa();
    let jwks = json!({"keys": [github.jwk("gh1")]});
    let idp = FakeServer::start(move |_| Action::json(200, &jwks));
    let dir = crate::support::temp_dir();
    std::fs::write(
        dir.path().join("dex.json"),
        json!({"keys": [dex.jwk("dex1")]}).to_string(),
    )
    .unwrap();
    let config = format!(
        "issuers:\n  - {{issuer: \"{GITHUB}\", audience: releasectl, jwks_url: \"{}\"}}\n  - {{issuer: \"{DEX}\", audience: releasectl, jwks_file: \"{}\"}}\n",
        idp.url("/jwks"),
        dir.path().join("dex.json").display()
    );
    let served = Served::start(&world, &world.url, &config);
    let deploy = |token: &str| {
        let body = json!({"environment": "dev", "project": PROJECT, "release_id": release.tag});
        served.raw(
            "POST",
            "/v1/deployments",
            Some(token),
            body.to_string().as_bytes(),
        )
    };
    // Refused, each naming why, none writing, none echoing the token.
    let other_key = Signer::ec();
    let cases = [
        (
            github.token("gh1", &claims(GITHUB, &json!({"exp": now() - 3600}))),
            "expired at",
        ),
        (
            github.token("gh1", &claims(GITHUB, &json!({"aud": "another-service"}))),
            "expected releasectl",
        ),
        (
            github.token("gh1", &claims("https://evil.example", &json!({}))),
            "not a configured issuer",
        ),
        (
            other_key.token("gh1", &claims(GITHUB, &json!({}))),
            "does not verify",
        ),
        (dex.token("gh1", &claims(DEX, &json!({}))), "no key"),
    ];
    for (token, why) in &cases {
        let (status, answer) = world.writes_nothing(|| deploy(token));
        assert_eq!(status, 401, "{why}: {answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(why),
            "{why}: {answer}"
        );
        assert!(
            !answer.to_string().contains(token.as_str()) && !served.log().contains(token.as_str())
        );
    }
    // A person of the RS256 issuer, allowed by identity: the actor is the email.
    let carol = dex.token(
        "dex1",
        &claims(DEX, &json!({"email": "carol@company.com", "sub": "CiQ3"})),
    );
    let (status, answer) = deploy(&carol);
    assert_eq!(
        (status, answer["result"].clone()),
        (200, json!("deployed")),
        "{answer}"
    );
    assert_eq!(
        world.remote.git_ok(&["log", "-1", "--format=%ae"]).trim(),
        "carol@company.com"
    );
    // A pipeline of the ES256 issuer, allowed by its sub claim's glob: the actor is the sub.
    let pipeline = github.token("gh1", &claims(GITHUB, &json!({})));
    let body = json!({"environment": "dev", "project": PROJECT, "release_id": release.tag, "dry_run": true});
    let (status, answer) = served.raw(
        "POST",
        "/v1/deployments",
        Some(&pipeline),
        body.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{answer}");
    // A person the deployers do not list.
    let dave = dex.token(
        "dex1",
        &claims(DEX, &json!({"email": "dave@company.com", "sub": "CiQ4"})),
    );
    let (status, answer) = world.writes_nothing(|| deploy(&dave));
    assert_eq!(
        (status, answer["error"]["actual"].clone()),
        (403, json!("dave@company.com")),
        "{answer}"
    );
    assert_eq!(
        idp.requests_to("/jwks").len(),
        1,
        "the JWKS is read once, at start"
    );
}

/// A stand-in IdP whose JWKS (or failure) can be changed while the server runs.
struct Idp {
    server: FakeServer,
    answer: std::sync::Arc<std::sync::Mutex<Option<Value>>>,
}

impl Idp {
    fn start(jwks: &Value) -> Self {
        let answer = std::sync::Arc::new(std::sync::Mutex::new(Some(jwks.clone())));
        let shared = std::sync::Arc::clone(&answer);
        let server = FakeServer::start(move |_| match &*shared.lock().unwrap() {
            Some(jwks) => Action::json(200, jwks),
            None => Action::status(500),
        });
        Self { server, answer }
    }

    /// Serves `jwks` from now on (`None`: answers 500).
    fn set(&self, jwks: Option<Value>) {
        *self.answer.lock().unwrap() = jwks;
    }

    fn reads(&self) -> usize {
        self.server.requests_to("/jwks").len()
    }
}

fn read_as(served: &Served, token: &str) -> u16 {
    served
        .raw(
            "GET",
            &format!("/v1/releases/company/monorepo/{PROJECT}"),
            Some(token),
            b"",
        )
        .0
}

#[test]
fn a_rotated_key_is_accepted_without_a_restart_and_unknown_kids_refresh_at_most_once_a_while() {
    let world = World::example();
    world.main_release("rotation");
    let (old, new) = (Signer::ec(), Signer::ec());
    let idp = Idp::start(&json!({"keys": [old.jwk("2026-01")]}));
    let config = format!(
        "issuers:\n  - {{issuer: \"{GITHUB}\", audience: releasectl, jwks_url: \"{}\"}}\n",
        idp.server.url("/jwks")
    );
    let served = Served::start(&world, &world.url, &config);
    assert_eq!(
        read_as(&served, &old.token("2026-01", &claims(GITHUB, &json!({})))),
        200
    );
    assert_eq!(idp.reads(), 1);
    // The IdP rotates: the old key is gone, a new one signs.
    idp.set(Some(json!({"keys": [new.jwk("2026-02")]})));
    let fresh = new.token("2026-02", &claims(GITHUB, &json!({})));
    assert_eq!(read_as(&served, &fresh), 200);
    assert_eq!(idp.reads(), 2, "the unknown kid read the JWKS again");
    // Random kids read it no more (30 s between such reads by default): each a 401.
    for i in 0..20 {
        let forged = new.token(&format!("random-{i}"), &claims(GITHUB, &json!({})));
        let (status, answer) = served.raw(
            "GET",
            &format!("/v1/releases/company/monorepo/{PROJECT}"),
            Some(&forged),
            b"",
        );
        assert_eq!(status, 401, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("no key random-")
        );
    }
    assert_eq!(
        idp.reads(),
        2,
        "random kids made the server read the JWKS again"
    );
    // The rotated-out key is refused; the new one goes on working.
    assert_eq!(
        read_as(&served, &old.token("2026-01", &claims(GITHUB, &json!({})))),
        401
    );
    assert_eq!(read_as(&served, &fresh), 200);
}

#[test]
fn the_jwks_url_is_read_again_periodically_and_a_failed_read_keeps_the_keys() {
    let world = World::example();
    world.main_release("refresh");
    let (first, second) = (Signer::ec(), Signer::ec());
    let idp = Idp::start(&json!({"keys": [first.jwk("a")]}));
    let config = format!(
        "jwks_refresh: 1s\njwks_unknown_kid_interval: 1h\nissuers:\n  - {{issuer: \"{GITHUB}\", audience: releasectl, jwks_url: \"{}\"}}\n",
        idp.server.url("/jwks")
    );
    let served = Served::start(&world, &world.url, &config);
    let token_a = first.token("a", &claims(GITHUB, &json!({})));
    // Spend the unknown-kid read (allowed once an hour here): later keys come only from the
    // periodic refresh.
    assert_eq!(
        read_as(&served, &second.token("b", &claims(GITHUB, &json!({})))),
        401
    );
    // The IdP fails: the keys read before stay, a warning is logged.
    idp.set(None);
    let before = idp.reads();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while idp.reads() < before + 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(idp.reads() >= before + 2, "no periodic read in 10 s");
    assert_eq!(read_as(&served, &token_a), 200);
    let log = served.log();
    assert!(
        log.contains("cannot refresh the keys of issuer https://token.actions.example")
            && log.contains("keeping the 1 keys read before"),
        "{log}"
    );
    assert!(!log.contains(&token_a), "a token reached the log");
    // The IdP rotates to b: the next periodic read brings it in.
    idp.set(Some(json!({"keys": [second.jwk("b")]})));
    let token_b = second.token("b", &claims(GITHUB, &json!({})));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while read_as(&served, &token_b) != 200 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(read_as(&served, &token_b), 200);
    assert_eq!(read_as(&served, &token_a), 401);
}
