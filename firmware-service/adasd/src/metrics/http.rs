//! The endpoint's HTTP/1.1 server: one thread on `std::net`, one connection at a time
//! (scrapers come every few seconds), `Connection: close` after each response.
//!
//! A request head is at most [`MAX_HEAD_BYTES`] and must arrive within the configured timeout
//! (overall, not per read, so a client that trickles bytes is cut off too). The listener is
//! polled, so that stopping never depends on a connection arriving. An address that cannot
//! be bound is logged and tried again every [`REBIND_EVERY`]; the pipeline never waits for
//! any of this.

use super::text::CONTENT_TYPE;
use super::Metrics;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest request head read (request line and headers); a longer one is refused with 431.
pub const MAX_HEAD_BYTES: usize = 8192;
/// How often the listener is checked for a connection and the thread for a stop request.
const POLL: Duration = Duration::from_millis(50);
/// How often an address that could not be bound is tried again.
const REBIND_EVERY: Duration = Duration::from_secs(10);

/// The running server; dropping it stops the thread (within [`POLL`]).
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts the thread that binds `addr` and serves `metrics`.
    pub fn start(addr: SocketAddr, timeout: Duration, metrics: Metrics) -> std::io::Result<Server> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("adasd-metrics".into())
            .spawn(move || run(addr, timeout, &metrics, &stopped))?;
        Ok(Server {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sleeps up to `d` in [`POLL`] steps; false once a stop was requested.
fn pause(d: Duration, stop: &AtomicBool) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(POLL.min(until.saturating_duration_since(Instant::now())));
    }
    !stop.load(Ordering::SeqCst)
}

fn run(addr: SocketAddr, timeout: Duration, metrics: &Metrics, stop: &AtomicBool) {
    let Some(listener) = bind(addr, stop) else {
        return;
    };
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if let Err(e) = serve(stream, timeout, metrics) {
                    tracing::debug!(%peer, "metrics request: {e}");
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                pause(POLL, stop);
            }
            Err(e) => {
                // Out of file descriptors and the like: the next poll tries again.
                tracing::warn!("metrics endpoint: accept failed: {e}");
                pause(POLL, stop);
            }
        }
    }
}

/// The listener, non-blocking; retried every [`REBIND_EVERY`] until bound or stopped.
fn bind(addr: SocketAddr, stop: &AtomicBool) -> Option<TcpListener> {
    let mut failed_before = false;
    loop {
        match TcpListener::bind(addr).and_then(|l| l.set_nonblocking(true).map(|()| l)) {
            Ok(listener) => {
                let bound = listener.local_addr().unwrap_or(addr);
                let log = if failed_before {
                    "metrics endpoint: listening now"
                } else {
                    "metrics endpoint: listening"
                };
                tracing::info!(
                    "{log} on http://{bound}/metrics and http://{bound}/healthz ([metrics] listen)"
                );
                return Some(listener);
            }
            Err(e) => {
                if !failed_before {
                    tracing::error!(
                        "metrics endpoint: cannot listen on {addr}: {e} ({}); retrying every {} s, \
                         the pipeline goes on",
                        bind_hint(e.kind()),
                        REBIND_EVERY.as_secs()
                    );
                    failed_before = true;
                }
                if !pause(REBIND_EVERY, stop) {
                    return None;
                }
            }
        }
    }
}

/// What to do about a bind error.
pub fn bind_hint(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::AddrInUse => "another process has this port: stop it or choose another port",
        ErrorKind::PermissionDenied => {
            "ports below 1024 need privileges the service does not have: use 9108 or another \
             port above 1023"
        }
        ErrorKind::AddrNotAvailable => "no interface of this machine has this address",
        ErrorKind::Unsupported => {
            "IP sockets are not allowed here (systemd's RestrictAddressFamilies?): see \
             docs/METRICS.md"
        }
        _ => "check [metrics] listen",
    }
}

/// One connection: read the head, answer, close.
fn serve(mut stream: TcpStream, timeout: Duration, metrics: &Metrics) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(timeout))?;
    let response = match read_head(&mut stream, Instant::now() + timeout)? {
        Head::Complete(head) => respond(route(&head), metrics),
        Head::TooLarge => Response::text(
            431,
            "Request Header Fields Too Large",
            "request too large\n",
        ),
        Head::Closed => return Ok(()),
        Head::TimedOut => Response::text(408, "Request Timeout", "request not received in time\n"),
    };
    stream.write_all(&response.bytes())?;
    stream.flush()?;
    // Closing with unread input would reset the connection; the request is complete here, so
    // only a client that sent more than its head loses that.
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

enum Head {
    Complete(Vec<u8>),
    TooLarge,
    Closed,
    TimedOut,
}

/// Reads until the blank line that ends a request head, within `deadline`.
fn read_head(stream: &mut TcpStream, deadline: Instant) -> std::io::Result<Head> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        if let Some(end) = head_end(&head) {
            head.truncate(end);
            return Ok(Head::Complete(head));
        }
        if head.len() > MAX_HEAD_BYTES {
            return Ok(Head::TooLarge);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Head::TimedOut);
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => return Ok(Head::Closed),
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ok(Head::TimedOut)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Where the head ends (CRLF CRLF, or bare LF LF as tolerant servers accept).
fn head_end(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = bytes.windows(2).position(|w| w == b"\n\n");
    crlf.into_iter().chain(lf).min()
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Metrics { head_only: bool },
    Health { head_only: bool },
    NotFound,
    MethodNotAllowed,
    BadRequest,
}

/// The route of a request head (its first line: `METHOD PATH HTTP/1.x`).
pub fn route(head: &[u8]) -> Route {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let Ok(line) = std::str::from_utf8(line) else {
        return Route::BadRequest;
    };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") {
        return Route::BadRequest;
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Route::MethodNotAllowed,
    };
    // The query (`?…`) changes nothing here.
    match target.split('?').next().unwrap_or_default() {
        "/metrics" => Route::Metrics { head_only },
        "/healthz" => Route::Health { head_only },
        _ => Route::NotFound,
    }
}

struct Response {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    body: String,
    head_only: bool,
}

impl Response {
    fn text(status: u16, reason: &'static str, body: impl Into<String>) -> Response {
        Response {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
            head_only: false,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let allow = if self.status == 405 {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        };
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
             {allow}Connection: close\r\n\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        if !self.head_only {
            out.extend_from_slice(self.body.as_bytes());
        }
        out
    }
}

fn respond(route: Route, metrics: &Metrics) -> Response {
    match route {
        Route::Metrics { head_only } => Response {
            status: 200,
            reason: "OK",
            content_type: CONTENT_TYPE,
            body: metrics.exposition(),
            head_only,
        },
        Route::Health { head_only } => {
            let health = metrics.health();
            let mut r = if health.ok {
                Response::text(200, "OK", health.text + "\n")
            } else {
                Response::text(503, "Service Unavailable", health.text + "\n")
            };
            r.head_only = head_only;
            r
        }
        Route::NotFound => {
            Response::text(404, "Not Found", "not found: try /metrics or /healthz\n")
        }
        Route::MethodNotAllowed => Response::text(405, "Method Not Allowed", "only GET and HEAD\n"),
        Route::BadRequest => Response::text(400, "Bad Request", "not an HTTP/1.x request\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_routed_by_method_and_path() {
        let r = |head: &str| route(head.as_bytes());
        assert_eq!(
            r("GET /metrics HTTP/1.1\r\nHost: x\r\n"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(
            r("HEAD /healthz?verbose=1 HTTP/1.0"),
            Route::Health { head_only: true }
        );
        assert_eq!(r("GET / HTTP/1.1"), Route::NotFound);
        assert_eq!(r("GET /metrics/ HTTP/1.1"), Route::NotFound);
        assert_eq!(r("POST /metrics HTTP/1.1"), Route::MethodNotAllowed);
        assert_eq!(r("GET /metrics"), Route::BadRequest);
        assert_eq!(r("GET /metrics HTTP/2"), Route::BadRequest);
        assert_eq!(r("GET  /metrics HTTP/1.1"), Route::BadRequest);
        assert_eq!(route(b"\xff\xfe /metrics HTTP/1.1"), Route::BadRequest);
    }

    #[test]
    fn a_head_ends_at_the_first_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"), Some(20));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(14));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }

    #[test]
    fn responses_carry_length_type_and_close_and_head_has_no_body() {
        let mut r = Response::text(405, "Method Not Allowed", "only GET and HEAD\n");
        let text = String::from_utf8(r.bytes()).unwrap_or_default();
        assert!(
            text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{text}"
        );
        assert!(text.contains("Content-Length: 18\r\n"), "{text}");
        assert!(text.contains("Allow: GET, HEAD\r\n"), "{text}");
        assert!(text.contains("Connection: close\r\n\r\nonly GET"), "{text}");
        r.head_only = true;
        let text = String::from_utf8(r.bytes()).unwrap_or_default();
        assert!(text.ends_with("Content-Length: 18\r\nCache-Control: no-store\r\nAllow: GET, HEAD\r\nConnection: close\r\n\r\n"), "{text}");
    }
}
