//! The dashboard (docs/serve.md, "Dashboard"): server-rendered HTML at `/` and under `/ui/`,
//! no JavaScript, every asset in the binary.
//!
//! - [`html`]: escaping and the page frame;
//! - [`matrix`]: the environments × projects matrix;
//! - [`pages`]: the project page (history timeline, actions) and the diff between two
//!   environments;
//! - [`actions`]: approve, deploy and rollback through forms: a dry run first, then the
//!   confirmed write.
//!
//! Invariants: reads and writes go through the API's own routes ([`crate::serve::routes`]), so
//! the dashboard has exactly the API's permissions; a signed-in user's token lives only in an
//! `HttpOnly; SameSite=Strict` cookie (or comes as a Bearer header) and never appears in a
//! page; every POST except sign-in carries a CSRF token derived from the session's token and
//! is refused when its `Origin` is another site's.

pub mod actions;
pub mod html;
pub mod matrix;
pub mod pages;

use std::sync::Arc;

use ::http::{Method, StatusCode};
use sha2::Digest as _;

use self::html::{Viewer, esc, frame};
use super::State;
use super::auth::Principal;
use super::http::Reply;

/// The cookie that carries a signed-in user's token.
pub const COOKIE: &str = "releasectl_session";

/// An HTML answer.
pub struct Page {
    pub status: StatusCode,
    pub body: String,
    /// Extra headers (`set-cookie`, `location`).
    pub headers: Vec<(&'static str, String)>,
}

impl Page {
    fn html(status: StatusCode, body: String) -> Self {
        Self {
            status,
            body,
            headers: Vec::new(),
        }
    }

    fn redirect(to: &str) -> Self {
        Self {
            status: StatusCode::SEE_OTHER,
            body: String::new(),
            headers: vec![("location", to.to_owned())],
        }
    }
}

/// Whether the dashboard answers `method path`.
#[must_use]
pub fn owns(method: &Method, path: &str) -> bool {
    (method == Method::GET && path == "/") || path == "/ui" || path.starts_with("/ui/")
}

/// What one dashboard request carries.
pub struct Asked<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a ::http::HeaderMap,
    pub body: &'a [u8],
}

/// Who is asking: their principal, and the CSRF token of their session.
pub struct Session {
    pub principal: Option<Principal>,
    pub csrf: Option<String>,
}

impl Session {
    fn viewer(&self) -> Viewer<'_> {
        Viewer {
            actor: self.principal.as_ref().map(|p| p.actor.as_str()),
            csrf: self.csrf.as_deref(),
        }
    }
}

/// The CSRF token of a session: a hash of its token (never the token itself).
fn csrf_of(token: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(b"releasectl dashboard csrf\0");
    h.update(token.as_bytes());
    crate::digest::hex(&h.finalize())
}

/// The session's token: the `Authorization: Bearer` header, else the session cookie.
fn token_of(headers: &::http::HeaderMap) -> Option<String> {
    if let Some(h) = headers
        .get(::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        && let Some((scheme, rest)) = h.split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
    {
        return Some(rest.trim().to_owned());
    }
    headers
        .get_all(::http::header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == COOKIE && !v.is_empty()).then(|| v.to_owned())
        })
}

/// Decodes an `application/x-www-form-urlencoded` body or query (`+` is a space).
#[must_use]
pub fn form(text: &str) -> Vec<(String, String)> {
    let decode = |s: &str| -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    match std::str::from_utf8(&bytes[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                    {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    text.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The value of field `name` in a decoded form.
#[must_use]
pub fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Whether `token` can be a cookie value as it is (visible ASCII but `"`, `;`, `,`, `\\`).
fn cookie_safe(token: &str) -> bool {
    token
        .bytes()
        .all(|b| b.is_ascii_graphic() && !b"\";,\\".contains(&b))
}

/// Whether a POST comes from a page of this server: its `Origin` (when sent) names the
/// `Host` it was sent to.
fn same_origin(headers: &::http::HeaderMap) -> bool {
    let Some(origin) = headers
        .get(::http::header::ORIGIN)
        .and_then(|h| h.to_str().ok())
    else {
        return true;
    };
    let host = headers
        .get(::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|o| o == host)
}

/// An error page: `status`, a heading and the message (escaped).
#[must_use]
pub fn error_page(session: &Session, status: StatusCode, message: &str) -> Page {
    Page::html(
        status,
        frame(
            "Error",
            &session.viewer(),
            &format!(
                "<h1>{}</h1><p class=\"error\" id=\"error\">{}</p><p><a href=\"/\">Back to the matrix</a></p>",
                status.as_u16(),
                esc(message)
            ),
        ),
    )
}

/// An API error answer as a page.
#[must_use]
pub fn reply_page(session: &Session, reply: &Reply) -> Page {
    let message = reply.body["error"]["message"]
        .as_str()
        .map_or_else(|| reply.body.to_string(), ToOwned::to_owned);
    error_page(session, reply.status, &message)
}

fn login_page(session: &Session, problem: Option<&str>) -> Page {
    let problem = problem
        .map(|p| format!("<p class=\"error\" id=\"error\">{}</p>", esc(p)))
        .unwrap_or_default();
    Page::html(
        if problem.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        },
        frame(
            "Sign in",
            &session.viewer(),
            &format!(
                "<h1>Sign in</h1>{problem}<form class=\"action\" method=\"post\" action=\"/ui/login\">\
<label>Token <input type=\"password\" name=\"token\" autocomplete=\"off\" required></label>\
<button>Sign in</button></form><p class=\"muted\">A static token or an OIDC ID token; kept in an \
HttpOnly cookie for this site only.</p>"
            ),
        ),
    )
}

/// Answers a dashboard request; the second value is the actor, for the access log.
pub async fn handle(state: &Arc<State>, asked: &Asked<'_>) -> (Page, Option<String>) {
    let now = jiff::Timestamp::now().as_second();
    let token = token_of(asked.headers);
    let principal = match token.as_deref() {
        None => None,
        Some(t) => state
            .auth
            .authenticate_fresh(Some(&format!("Bearer {t}")), now)
            .await
            .ok(),
    };
    let session = Session {
        csrf: principal.as_ref().and(token.as_deref()).map(csrf_of),
        principal,
    };
    let actor = session.principal.as_ref().map(|p| p.actor.clone());
    (
        dispatch(state, asked, &session, token.is_some()).await,
        actor,
    )
}

async fn dispatch(
    state: &Arc<State>,
    asked: &Asked<'_>,
    session: &Session,
    had_token: bool,
) -> Page {
    let is_post = asked.method == Method::POST;
    let fields = if is_post {
        form(std::str::from_utf8(asked.body).unwrap_or_default())
    } else {
        form(asked.query.unwrap_or_default())
    };
    if is_post && !same_origin(asked.headers) {
        return error_page(
            session,
            StatusCode::FORBIDDEN,
            "a form of another site: expected a POST from this dashboard's own pages",
        );
    }
    match (asked.method.clone(), asked.path) {
        (Method::GET, "/ui/login") => return login_page(session, None),
        (Method::POST, "/ui/login") => {
            let token = field(&fields, "token").unwrap_or_default().trim();
            let now = jiff::Timestamp::now().as_second();
            return match state
                .auth
                .authenticate_fresh(Some(&format!("Bearer {token}")), now)
                .await
            {
                Ok(_) if !cookie_safe(token) => login_page(
                    session,
                    Some(
                        "this token holds characters a cookie cannot carry: send it as Authorization: Bearer instead",
                    ),
                ),
                Ok(_) => {
                    let https = asked
                        .headers
                        .get("x-forwarded-proto")
                        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
                    let mut page = Page::redirect("/");
                    page.headers.push((
                        "set-cookie",
                        format!(
                            "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/{}",
                            if https { "; Secure" } else { "" }
                        ),
                    ));
                    page
                }
                Err(e) => login_page(session, Some(&e.to_string())),
            };
        }
        _ => {}
    }
    if is_post && (session.csrf.is_none() || field(&fields, "csrf") != session.csrf.as_deref()) {
        return error_page(
            session,
            StatusCode::FORBIDDEN,
            "a form without this session's CSRF token: sign in and submit the dashboard's own form",
        );
    }
    if session.principal.is_none() && !state.config.anonymous_read {
        if had_token {
            let mut page = login_page(
                session,
                Some("the session's token is no longer valid: sign in again"),
            );
            page.headers.push((
                "set-cookie",
                format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
            ));
            return page;
        }
        return Page::redirect("/ui/login");
    }
    match (asked.method.clone(), asked.path) {
        (Method::POST, "/ui/logout") => {
            let mut page = Page::redirect("/ui/login");
            page.headers.push((
                "set-cookie",
                format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
            ));
            page
        }
        (Method::GET, "/" | "/ui" | "/ui/") => match matrix::load(state).await {
            Ok(m) => Page::html(
                StatusCode::OK,
                frame("Matrix", &session.viewer(), &matrix::render(&m)),
            ),
            Err(r) => reply_page(session, &r),
        },
        (Method::GET, p) if p.starts_with("/ui/project/") => {
            pages::project(state, session, p.trim_start_matches("/ui/project/")).await
        }
        (Method::GET, p) if p.starts_with("/ui/diff/") => {
            pages::diff(state, session, p.trim_start_matches("/ui/diff/"), &fields).await
        }
        (Method::POST, "/ui/preview") => actions::preview(state, session, &fields).await,
        (Method::POST, "/ui/confirm") => actions::confirm(state, session, &fields).await,
        _ => error_page(
            session,
            StatusCode::NOT_FOUND,
            &format!("no dashboard page at {}", crate::text::excerpt(asked.path)),
        ),
    }
}

/// Runs an API route as the session's principal.
pub async fn api(
    state: &Arc<State>,
    session: &Session,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &serde_json::Value,
) -> Reply {
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let call = super::routes::Call {
        method,
        path,
        query,
        body: &bytes,
    };
    super::routes::route(state, &call, session.principal.clone()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_plus_percent_and_keep_malformed_escapes() {
        let f = form("a=x+y%2Fz&b=%E2%9C%93&c=100%&d");
        assert_eq!(field(&f, "a"), Some("x y/z"));
        assert_eq!(field(&f, "b"), Some("✓"));
        assert_eq!(field(&f, "c"), Some("100%"));
        assert_eq!(field(&f, "d"), Some(""));
        assert_eq!(field(&f, "e"), None);
    }

    #[test]
    fn the_token_comes_from_the_bearer_header_before_the_cookie() {
        let mut h = ::http::HeaderMap::new();
        h.insert(
            ::http::header::COOKIE,
            "x=1; releasectl_session=abc".parse().unwrap(),
        );
        assert_eq!(token_of(&h).as_deref(), Some("abc"));
        h.insert(::http::header::AUTHORIZATION, "Bearer xyz".parse().unwrap());
        assert_eq!(token_of(&h).as_deref(), Some("xyz"));
        assert_ne!(csrf_of("xyz"), "xyz");
        assert_eq!(csrf_of("xyz").len(), 64);
    }

    #[test]
    fn only_tokens_a_cookie_carries_as_they_are_go_into_one() {
        assert!(cookie_safe("eyJhbGciOi.eyJzdWIi.sig-_"));
        for t in [
            "a;b",
            "a b",
            "a\r\nSet-Cookie: x",
            "a\"b",
            "a,b",
            "a\\b",
            "é",
        ] {
            assert!(!cookie_safe(t), "{t:?}");
        }
    }

    #[test]
    fn posts_from_another_origin_are_refused() {
        let mut h = ::http::HeaderMap::new();
        h.insert(::http::header::HOST, "127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&h));
        h.insert(
            ::http::header::ORIGIN,
            "http://127.0.0.1:8080".parse().unwrap(),
        );
        assert!(same_origin(&h));
        h.insert(
            ::http::header::ORIGIN,
            "https://evil.example".parse().unwrap(),
        );
        assert!(!same_origin(&h));
    }
}
