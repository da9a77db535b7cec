//! A minimal HTTP/1.x client for probing test servers: one request, `Connection: close`, read to
//! EOF. Plain HTTP over `TcpStream`; HTTPS through `openssl s_client`, which also proves the
//! server's chain verifies against the test CA for 127.0.0.1.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use super::cmd::Cmd;

/// The first value of header `name` (case-insensitive) among `headers`.
pub fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A parsed response.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names as sent; look them up with [`HttpResponse::header`].
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `Authorization` value for HTTP basic auth.
pub fn basic_auth(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        super::base64(format!("{user}:{pass}").as_bytes())
    )
}

fn request_bytes(host: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        let _ = write!(req, "{k}: {v}\r\n");
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// `GET http://{host}{path}` with extra headers.
pub fn http_get(host: &str, path: &str, headers: &[(&str, &str)]) -> io::Result<HttpResponse> {
    http_request(host, "GET", path, headers)
}

/// One plain-HTTP request without a body.
pub fn http_request(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(&request_bytes(host, method, path, headers))?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "not an HTTP response from {host}: {:?}",
                String::from_utf8_lossy(&raw)
            ),
        )
    })
}

/// `GET https://{host}{path}`, trusting only `ca_pem` and checking the certificate is valid for
/// IP 127.0.0.1. Panics (with openssl's report) if the handshake or verification fails.
pub fn https_get(host: &str, path: &str, headers: &[(&str, &str)], ca_pem: &Path) -> HttpResponse {
    let out = Cmd::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-verify_return_error",
            "-verify_ip",
            "127.0.0.1",
        ])
        .arg("-CAfile")
        .arg(ca_pem)
        .args(["-connect", host])
        .stdin(request_bytes(host, "GET", path, headers))
        .timeout(Duration::from_secs(20))
        .run();
    match parse_response(&out.stdout) {
        Some(resp) => resp,
        None => out.fail(&format!("no HTTPS response from {host}{path}")),
    }
}

/// Parses a complete response (status line, headers, body; chunked bodies are decoded).
pub fn parse_response(raw: &[u8]) -> Option<HttpResponse> {
    let end = find(raw, b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = decode_chunked(&body)?;
    }
    Some(HttpResponse {
        status,
        headers,
        body,
    })
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn decode_chunked(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_str = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}
