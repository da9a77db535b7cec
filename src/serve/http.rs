//! Answers and request bodies: every answer is JSON (snake_case keys); an error answer is
//! `{"error": {"status", "kind", "message", "object"?, "expected"?, "actual"?}}` and, for a
//! policy refusal, the decision report the CLI prints with `-o json`.
//!
//! Invariants: a body is read only up to the limit (413 beyond, nothing done); a body that is
//! not one JSON object of the request's type (malformed, a duplicate key, an unknown field)
//! is refused with 400 before any work; no answer carries a token.

use bytes::Bytes;
use http::StatusCode;
use http_body_util::BodyExt as _;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::exit::Exit;

/// A status and a JSON body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    #[must_use]
    pub fn ok(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body,
        }
    }

    #[must_use]
    pub fn error(status: StatusCode, kind: &str, message: &str) -> Self {
        Self {
            status,
            body: json!({"error": {
                "status": status.as_u16(),
                "kind": kind,
                "message": crate::text::printable(message, 4000),
            }}),
        }
    }

    /// An error about one object: what was expected and what was found.
    #[must_use]
    pub fn mismatch(
        status: StatusCode,
        kind: &str,
        object: &str,
        expected: &str,
        actual: &str,
    ) -> Self {
        let mut r = Self::error(
            status,
            kind,
            &format!("{object}: expected {expected}, found {actual}"),
        );
        r.body["error"]["object"] = object.into();
        r.body["error"]["expected"] = expected.into();
        r.body["error"]["actual"] = crate::text::printable(actual, 400).into();
        r
    }

    #[must_use]
    pub fn unavailable(message: &str) -> Self {
        Self::error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    #[must_use]
    pub fn internal(message: &str) -> Self {
        Self::error(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    #[must_use]
    pub fn not_found(path: &str) -> Self {
        Self::mismatch(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("path {}", crate::text::excerpt(path)),
            "an endpoint of /openapi.json",
            "no such endpoint",
        )
    }

    /// A domain error, by its exit class: usage 400, verification 422, policy 422,
    /// conflict 409, remote and unhealthy 502, anything else 500.
    #[must_use]
    pub fn from_error(e: &crate::exit::Error) -> Self {
        let (status, kind) = match e.exit() {
            Exit::Usage => (StatusCode::BAD_REQUEST, "invalid_input"),
            Exit::Verify => (StatusCode::UNPROCESSABLE_ENTITY, "verification_failed"),
            Exit::Policy => (StatusCode::UNPROCESSABLE_ENTITY, "refused"),
            Exit::Conflict => (StatusCode::CONFLICT, "conflict"),
            Exit::Remote => (StatusCode::BAD_GATEWAY, "remote_failure"),
            Exit::Unhealthy => (StatusCode::BAD_GATEWAY, "unhealthy"),
            Exit::Success | Exit::Other => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        Self::error(status, kind, &e.to_string())
    }
}

/// Reads at most `limit` bytes of `body`.
pub async fn read_body(body: hyper::body::Incoming, limit: u64) -> Result<Bytes, Reply> {
    let limited = http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Reply::mismatch(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "request body",
            &format!("at most {limit} bytes"),
            "more",
        )),
        Err(e) => Err(Reply::error(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            &format!("cannot read the request body: {e}"),
        )),
    }
}

/// Parses a request body as `T`: one JSON object, no duplicate key, no unknown field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Reply> {
    let bad = |why: String| {
        Reply::mismatch(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "request body",
            "a JSON object of the request's fields",
            &why,
        )
    };
    let text = std::str::from_utf8(bytes).map_err(|_| bad("bytes that are not UTF-8".into()))?;
    let value = crate::yaml::json_value(text).map_err(|e| bad(e.to_string()))?;
    if !value.is_object() {
        return Err(bad(format!("a JSON {}", kind_of(&value))));
    }
    serde_json::from_value(value).map_err(|e| bad(e.to_string()))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        environment: String,
    }

    #[test]
    fn unknown_fields_duplicates_and_non_objects_are_400_naming_the_problem() {
        for (text, needle) in [
            (
                r#"{"environment":"dev","force":true}"#,
                "unknown field `force`",
            ),
            (r#"{"environment":"dev","environment":"prod"}"#, "duplicate"),
            ("[1]", "a JSON array"),
            ("{", "EOF"),
        ] {
            let e = parse_json::<Body>(text.as_bytes()).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert!(e.body.to_string().contains(needle), "{text}: {}", e.body);
        }
        assert_eq!(
            parse_json::<Body>(br#"{"environment":"dev"}"#)
                .unwrap()
                .environment,
            "dev"
        );
    }
}
