//! Who we are to a registry: the credentials we hold, the challenges (`WWW-Authenticate`) that
//! a 401 carries, and the bearer tokens a token service sells for them.
//!
//! Invariants:
//! - No credential or token ever appears in an error or a log line: they travel only in header
//!   values marked sensitive, and messages name hosts, scopes and statuses.
//! - Credentials go to a token service (a `Bearer` challenge's `realm`) only over https, or
//!   when the registry itself was named insecure (then everything is plain HTTP by choice).
//!   A plain-HTTP realm named by a TLS registry could be anyone's, so that is refused rather
//!   than tried anonymously (an anonymous token would only fail later, less clearly).
//! - A token is bought per scope and kept for the run; one purchase per scope is under way at
//!   a time, so parallel requests that meet the same challenge wait for one token.
//! - `Basic` challenges are answered with the credentials as they are; a token from the
//!   environment or the docker config is sent as it is and never exchanged.
//! - A refresh token (docker config `identitytoken`) goes only to a `Bearer` challenge's token
//!   service, exchanged by the OAuth2 flow Docker Distribution documents (`POST realm`, form
//!   `grant_type=refresh_token&service=…&scope=…&refresh_token=…`), under the same https rule.

use std::collections::HashMap;

use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, HeaderValue};

use super::OciError;
use super::transport::{Attempt, Failure, Transport};
use crate::credentials::Credentials;

/// The biggest token reply we read.
const TOKEN_REPLY_CAP: u64 = 64 * 1024;

/// What a request needs to be allowed to do in its repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Pull,
    /// Uploads; `pull` is asked for too, since an upload reads (blob `HEAD`).
    Push,
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, PartialEq, Eq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// The credentials for one repository and the tokens bought with them.
pub struct Auth {
    repository: String,
    creds: Option<Credentials>,
    tokens: tokio::sync::Mutex<HashMap<Scope, HeaderValue>>,
}

/// The token service's reply; deliberately not `Debug`, it holds the token.
#[derive(serde::Deserialize)]
struct TokenReply {
    token: Option<String>,
    access_token: Option<String>,
}

impl Auth {
    #[must_use]
    pub fn new(repository: &str, creds: Option<Credentials>) -> Self {
        Self {
            repository: repository.to_owned(),
            creds,
            tokens: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// `repository:<name>:pull` or `repository:<name>:pull,push`.
    fn scope_text(&self, scope: Scope) -> String {
        let actions = match scope {
            Scope::Pull => "pull",
            Scope::Push => "pull,push",
        };
        format!("repository:{}:{actions}", self.repository)
    }

    /// The `Authorization` to send first for `scope`: the token bought for it, else the
    /// credentials as they are (sent up front, as docker does), else nothing.
    pub async fn header(&self, scope: Scope) -> Option<HeaderValue> {
        if let Some(token) = self.tokens.lock().await.get(&scope) {
            return Some(token.clone());
        }
        match &self.creds {
            Some(Credentials::Basic { username, password }) => {
                Some(basic(username, password.expose()))
            }
            Some(Credentials::Token(t)) => bearer(t.expose()),
            // A refresh token is for the token service only: wait for the challenge.
            Some(Credentials::RefreshToken(_)) | None => None,
        }
    }

    /// Answers a 401 whose challenge is `challenge`, after `sent` was refused: the
    /// `Authorization` to try once more, or why there is nothing left to try.
    pub async fn answer(
        &self,
        transport: &Transport,
        challenge: Option<&str>,
        scope: Scope,
        sent: Option<&HeaderValue>,
        what: &str,
    ) -> Attempt<HeaderValue> {
        let refused = || {
            Failure::Final(OciError::Unauthorized {
                what: what.to_owned(),
                host: transport.host().to_owned(),
                status: 401,
            })
        };
        match challenge.and_then(parse_challenge) {
            Some(Challenge::Bearer { realm, service }) => {
                if matches!(self.creds, Some(Credentials::Token(_))) {
                    return Err(refused());
                }
                let mut tokens = self.tokens.lock().await;
                // Another request may have bought the token while this one waited.
                if let Some(token) = tokens.get(&scope)
                    && Some(token) != sent
                {
                    return Ok(token.clone());
                }
                let token = self
                    .buy_token(transport, &realm, service.as_deref(), scope, what)
                    .await?;
                tokens.insert(scope, token.clone());
                Ok(token)
            }
            Some(Challenge::Basic) => match &self.creds {
                Some(Credentials::Basic { username, password }) => {
                    let header = basic(username, password.expose());
                    if sent == Some(&header) {
                        Err(refused())
                    } else {
                        Ok(header)
                    }
                }
                _ => Err(refused()),
            },
            None => Err(refused()),
        }
    }

    /// Asks the token service at `realm` for a token for `scope`.
    async fn buy_token(
        &self,
        transport: &Transport,
        realm: &str,
        service: Option<&str>,
        scope: Scope,
        what: &str,
    ) -> Attempt<HeaderValue> {
        let failed = |reason: String| {
            Failure::Final(OciError::Token {
                what: what.to_owned(),
                host: transport.host().to_owned(),
                reason,
            })
        };
        let mut url = match reqwest::Url::parse(realm) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => url,
            _ => return Err(failed("its token realm is not an http(s) URL".into())),
        };
        let origin = url.origin().ascii_serialization();
        let scope_text = self.scope_text(scope);
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            query.append_pair("scope", &scope_text);
        }
        if matches!(
            self.creds,
            Some(Credentials::Basic { .. } | Credentials::RefreshToken(_))
        ) && !may_send_credentials(&url, transport.is_insecure())
        {
            return Err(failed(format!(
                "its token service {origin} is plain HTTP; credentials are sent there only \
                 over https, or with --insecure-registry {}",
                transport.host()
            )));
        }
        let http = transport.http().await?;
        let request = match &self.creds {
            Some(Credentials::Basic { username, password }) => http
                .get(url.clone())
                .header(AUTHORIZATION, basic(username, password.expose())),
            Some(Credentials::RefreshToken(refresh)) => {
                let form = refresh_form(service, &scope_text, refresh.expose());
                url.set_query(None);
                http.post(url.clone())
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(form)
            }
            _ => http.get(url.clone()),
        };
        crate::log::debug(&format!(
            "{what}: asking {origin} for a token ({scope_text})"
        ));
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return transport.transport_failure(what, &e),
        };
        match response.status().as_u16() {
            200..=299 => {}
            401 | 403 | 429 | 500..=599 => return transport.refusal(what, response).await,
            status => {
                return Err(failed(format!(
                    "the token service {origin} answered {status}"
                )));
            }
        }
        let reply = transport
            .read_capped(response, what, TOKEN_REPLY_CAP)
            .await?;
        let reply: TokenReply = serde_json::from_slice(&reply.body).map_err(|_| {
            failed(format!(
                "the token service {origin} answered with something that is not token JSON"
            ))
        })?;
        let token = [reply.token, reply.access_token]
            .into_iter()
            .flatten()
            .find(|t| !t.is_empty())
            .ok_or_else(|| {
                failed(format!(
                    "the token service {origin} answered without a token"
                ))
            })?;
        bearer(&token).ok_or_else(|| {
            failed(format!(
                "the token service {origin} answered with a token that is not header-safe"
            ))
        })
    }
}

/// The OAuth2 form that exchanges `refresh_token` for an access token to `scope`.
fn refresh_form(service: Option<&str>, scope: &str, refresh_token: &str) -> String {
    // `Url`'s query serializer is the form encoding (`application/x-www-form-urlencoded`).
    let mut url = reqwest::Url::parse("http://form.invalid/").expect("a constant URL");
    {
        let mut form = url.query_pairs_mut();
        form.append_pair("grant_type", "refresh_token");
        if let Some(service) = service {
            form.append_pair("service", service);
        }
        form.append_pair("scope", scope);
        form.append_pair("client_id", "releasectl");
        form.append_pair("refresh_token", refresh_token);
    }
    url.query().unwrap_or_default().to_owned()
}

/// Whether credentials may go to the token service at `realm`: over https, or when the
/// registry itself was named insecure (its credentials travel in the clear anyway).
fn may_send_credentials(realm: &reqwest::Url, registry_insecure: bool) -> bool {
    realm.scheme() == "https" || registry_insecure
}

/// Parses the first challenge of a `WWW-Authenticate` value we can answer.
fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let find = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    Some(Challenge::Bearer {
        realm: find("realm")?,
        service: find("service"),
    })
}

/// `key="quoted, value",key=token` pairs, with `\"` escapes inside quotes.
fn parse_params(text: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ',' || c.is_whitespace()).is_some() {}
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ','))
            .collect::<String>()
            .trim()
            .to_owned();
        if key.is_empty() && chars.peek().is_none() {
            return params;
        }
        if chars.next_if_eq(&'=').is_none() {
            continue;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let value = if chars.next_if_eq(&'"').is_some() {
            let mut value = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
            value
        } else {
            std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_owned()
        };
        params.push((key, value));
    }
}

fn basic(username: &str, password: &str) -> HeaderValue {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    let mut v =
        HeaderValue::from_str(&format!("Basic {encoded}")).expect("base64 is a valid header");
    v.set_sensitive(true);
    v
}

/// `Bearer <token>`, or `None` when the token holds bytes no header may carry.
fn bearer(token: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    v.set_sensitive(true);
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_challenge_gives_its_realm_and_service_with_commas_inside_quotes() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token?a=1,b=2",service="registry.example",scope="repository:x:pull""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.example/token?a=1,b=2".into(),
                service: Some("registry.example".into()),
            })
        );
    }

    #[test]
    fn a_basic_challenge_is_recognised_and_unknown_schemes_are_not() {
        assert_eq!(
            parse_challenge(r#"Basic realm="registry""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None, "no realm");
    }

    #[test]
    fn unquoted_and_escaped_parameters_are_read() {
        assert_eq!(
            parse_params(r#"realm=http://t/x , service="a\"b""#),
            vec![
                ("realm".to_owned(), "http://t/x".to_owned()),
                ("service".to_owned(), "a\"b".to_owned())
            ]
        );
    }

    #[test]
    fn credentials_go_to_a_plain_http_realm_only_for_an_insecure_registry() {
        let http = reqwest::Url::parse("http://auth.example/token").unwrap();
        let https = reqwest::Url::parse("https://auth.example/token").unwrap();
        assert!(may_send_credentials(&https, false));
        assert!(!may_send_credentials(&http, false));
        assert!(may_send_credentials(&http, true));
    }

    #[test]
    fn a_token_that_cannot_be_a_header_is_refused_rather_than_mangled() {
        assert!(bearer("ok.token-1").is_some());
        assert!(bearer("bad\ntoken").is_none());
    }

    #[test]
    fn the_refresh_token_form_is_url_encoded_with_service_and_scope() {
        let form = refresh_form(Some("x.azurecr.io"), "repository:a/b:pull", "tok+en/=&x");
        assert_eq!(
            form,
            "grant_type=refresh_token&service=x.azurecr.io&scope=repository%3Aa%2Fb%3Apull&client_id=releasectl&refresh_token=tok%2Ben%2F%3D%26x"
        );
    }

    #[tokio::test]
    async fn a_refresh_token_is_never_sent_to_the_registry_itself() {
        let auth = Auth::new(
            "a/b",
            Some(Credentials::RefreshToken(crate::credentials::Secret::new(
                "r".into(),
            ))),
        );
        assert_eq!(auth.header(Scope::Pull).await, None);
    }
}
