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
