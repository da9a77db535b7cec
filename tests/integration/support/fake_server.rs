//! A hostile HTTP/1.1 server on 127.0.0.1:0 for fault tests (std only).
//!
//! The test gives a handler `Fn(&Request) -> Action`; the server records every request (method,
//! path, headers, body) before calling it, so a test can assert what the client sent — e.g. that
//! a redirected-to host got no `Authorization` header. Actions can answer normally or misbehave:
//! stall after the headers or mid-body, close mid-body, close without answering, lie about
//! `Content-Length`. Connections are keep-alive, one thread each; everything stops on drop
//! (stalls end early then).

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A request as received.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The request target as sent: path and query (`/v2/x/manifests/sha256:…?n=1`).
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Which TCP connection (0, 1, …) carried it: shows whether the client reused connections.
    pub connection: usize,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        super::http::header_value(&self.headers, name)
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    /// The path without the query string.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or(&self.path)
    }
}

/// A response to send (fully or in part, depending on the [`Action`]).
#[derive(Clone, Debug, Default)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            ..Self::default()
        }
    }

    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Head bytes: status line and headers. `Content-Length` is the body's length unless the
    /// test set `Content-Length` or `Transfer-Encoding` itself (to lie, or to stream).
    fn head(&self, close: bool) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        let has = |n: &str| self.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
        for (k, v) in &self.headers {
            let _ = write!(head, "{k}: {v}\r\n");
        }
        if !has("content-length") && !has("transfer-encoding") {
            let _ = write!(head, "Content-Length: {}\r\n", self.body.len());
        }
        if close && !has("connection") {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        head.into_bytes()
    }
}

/// What the server does with one request.
#[derive(Clone, Debug)]
pub enum Action {
    /// Send the response and keep the connection open.
    Respond(Response),
    /// Send status and headers (announcing the full body), wait, then close without a body.
    StallAfterHeaders { response: Response, stall: Duration },
    /// Send headers and the first `sent` body bytes, wait, then close.
    StallMidBody {
        response: Response,
        sent: usize,
        stall: Duration,
    },
    /// Send headers and the first `sent` body bytes, then close at once (a truncated body).
    CloseMidBody { response: Response, sent: usize },
    /// Read the request, send nothing, keep the connection open for `stall`, then close.
    Hang(Duration),
    /// Close the connection without answering (the client sees EOF/reset).
    Close,
}

impl Action {
    pub fn respond(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Self {
        let mut response = Response::new(status).body(body);
        for (k, v) in headers {
            response = response.header(k, v);
        }
        Action::Respond(response)
    }

    /// An empty response with this status.
    pub fn status(status: u16) -> Self {
        Action::Respond(Response::new(status))
    }

    /// `application/json` body.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self::respond(
            status,
            &[("Content-Type", "application/json")],
            body.to_string(),
        )
    }

    /// A redirect (`301`, `302`, `307`, `308`) to `location`.
    pub fn redirect(status: u16, location: &str) -> Self {
        Self::respond(status, &[("Location", location)], Vec::new())
    }

    /// `429 Too Many Requests` with `Retry-After: secs`.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Self::respond(
            429,
            &[("Retry-After", &retry_after_secs.to_string())],
            Vec::new(),
        )
    }

    /// `401` with a `WWW-Authenticate` challenge.
    pub fn unauthorized(challenge: &str) -> Self {
        Self::respond(401, &[("WWW-Authenticate", challenge)], Vec::new())
    }

    pub fn stall_after_headers(response: Response, stall: Duration) -> Self {
        Action::StallAfterHeaders { response, stall }
    }

    pub fn stall_mid_body(response: Response, sent: usize, stall: Duration) -> Self {
        Action::StallMidBody {
            response,
            sent,
            stall,
        }
    }

    pub fn close_mid_body(response: Response, sent: usize) -> Self {
        Action::CloseMidBody { response, sent }
    }
}

/// A handler that answers with `actions` in turn and repeats the last one forever (e.g.
/// `[500, 500, 200]` for retry tests). Panics if `actions` is empty.
pub fn in_turn(actions: Vec<Action>) -> impl Fn(&Request) -> Action + Send + Sync + 'static {
    assert!(!actions.is_empty(), "in_turn needs at least one action");
    let next = AtomicUsize::new(0);
    move |_req: &Request| {
        let i = next.fetch_add(1, Ordering::SeqCst);
        actions[i.min(actions.len() - 1)].clone()
    }
}

type Handler = dyn Fn(&Request) -> Action + Send + Sync;

struct State {
    handler: Box<Handler>,
    requests: Mutex<Vec<Request>>,
    handler_panics: Mutex<Vec<String>>,
    shutdown: AtomicBool,
    connections: AtomicUsize,
}

impl State {
    fn shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Sleeps up to `d`, returning early if the server is dropped.
    fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.shutting_down() && Instant::now() < end {
            thread::sleep(Duration::from_millis(20).min(end - Instant::now()));
        }
    }
}

/// The running server; stops on drop.
pub struct FakeServer {
    addr: SocketAddr,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

impl FakeServer {
    pub fn start<F>(handler: F) -> Self
    where
        F: Fn(&Request) -> Action + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State {
            handler: Box::new(handler),
            requests: Mutex::new(Vec::new()),
            handler_panics: Mutex::new(Vec::new()),
            shutdown: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
        });
        let accept_state = Arc::clone(&state);
        let accept = thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_state.shutting_down() {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let id = accept_state.connections.fetch_add(1, Ordering::SeqCst);
                let conn_state = Arc::clone(&accept_state);
                thread::spawn(move || {
                    let _ = serve_connection(&conn_state, stream, id);
                });
            }
        });
        Self {
            addr,
            state,
            accept: Some(accept),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.state.requests.lock().expect("lock").clone()
    }

    /// Requests whose path (without query) is `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path_only() == path)
            .collect()
    }

    /// TCP connections accepted so far.
    pub fn connection_count(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Panics if the handler panicked (it answered 500 then): call at the end of a test.
    #[track_caller]
    pub fn assert_handler_ok(&self) {
        let panics = self.state.handler_panics.lock().expect("lock");
        assert!(
            panics.is_empty(),
            "fake server handler panicked: {panics:?}"
        );
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.state.shutdown.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn serve_connection(state: &State, stream: TcpStream, id: usize) -> io::Result<()> {
    // Idle keep-alive connections die after a while rather than pin a thread forever.
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while !state.shutting_down() {
        let Some(request) = read_request(&mut reader, &mut writer, id)? else {
            return Ok(());
        };
        state.requests.lock().expect("lock").push(request.clone());
        let action = match catch_unwind(AssertUnwindSafe(|| (state.handler)(&request))) {
            Ok(action) => action,
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                state.handler_panics.lock().expect("lock").push(msg.clone());
                Action::Respond(Response::new(500).body(format!("handler panicked: {msg}")))
            }
        };
        let head_only = request.method.eq_ignore_ascii_case("HEAD");
        match action {
            Action::Respond(response) => {
                writer.write_all(&response.head(false))?;
                if !head_only {
                    writer.write_all(&response.body)?;
                }
                writer.flush()?;
            }
            Action::StallAfterHeaders { response, stall } => {
                writer.write_all(&response.head(true))?;
                writer.flush()?;
                state.sleep(stall);
                return Ok(());
            }
            Action::StallMidBody {
                response,
                sent,
                stall,
            } => {
                writer.write_all(&response.head(true))?;
                writer.write_all(&response.body[..sent.min(response.body.len())])?;
                writer.flush()?;
                state.sleep(stall);
                return Ok(());
            }
            Action::CloseMidBody { response, sent } => {
                writer.write_all(&response.head(true))?;
                writer.write_all(&response.body[..sent.min(response.body.len())])?;
                writer.flush()?;
                return Ok(());
            }
            Action::Hang(stall) => {
                state.sleep(stall);
                return Ok(());
            }
            Action::Close => return Ok(()),
        }
        if request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        {
            return Ok(());
        }
    }
    Ok(())
}

/// Reads one request; `None` on a clean EOF between requests.
fn read_request(
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
    connection: usize,
) -> io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad request line",
        ));
    };
    let (method, path) = (method.to_owned(), path.to_owned());
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    if find("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let mut body = Vec::new();
    if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size_hex = line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size_hex, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                // Trailers, then the blank line.
                loop {
                    line.clear();
                    if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf)?;
        }
    } else if let Some(len) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(len, 0);
        reader.read_exact(&mut body)?;
    }
    Ok(Some(Request {
        method,
        path,
        headers,
        body,
        connection,
    }))
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}
