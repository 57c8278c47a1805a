//! The HTTP side of `/metrics`: just enough HTTP/1.1 for a scraper (Prometheus, curl), one
//! request per connection. What a client on the network can make it spend is bounded: a few
//! connections at once ([`MAX_CONNECTIONS`]; more wait in the listen backlog), a request head
//! of [`MAX_HEAD`] bytes read within [`READ_LIMIT`] (a client that trickles bytes is cut off,
//! not waited for), and the answer written within [`WRITE_LIMIT`].

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    task::JoinSet,
    time::timeout,
};
use tracing::{debug, warn};

use crate::metrics::Snapshot;

/// Connections served at once. A scrape takes milliseconds; Prometheus keeps one at a time
/// per target, so a few leave room for curl and a second server.
const MAX_CONNECTIONS: usize = 8;
/// Longest request head (request line and headers) read; Prometheus sends about 300 bytes.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client has to send its whole request head.
const READ_LIMIT: Duration = Duration::from_secs(10);
/// How long a client has to take the whole answer.
const WRITE_LIMIT: Duration = Duration::from_secs(10);
/// While accepting keeps failing (out of file descriptors), it is logged at most this often.
const RELOG_EVERY: Duration = Duration::from_secs(60);

/// `Content-Type` of the Prometheus text format, version 0.0.4.
const METRICS_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
const TEXT_TYPE: &str = "text/plain; charset=utf-8";

/// Accepts and answers connections on `listener` with instance `name`'s metrics until the task
/// running it is aborted, which aborts the connections being served too.
pub(super) async fn serve(listener: TcpListener, name: Arc<str>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    let mut logged: Option<Instant> = None;
    loop {
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        while connections.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                if logged.is_none_or(|at| at.elapsed() >= RELOG_EVERY) {
                    warn!("metrics: accepting a connection: {e}");
                    logged = Some(Instant::now());
                }
                // Out of descriptors, say: give the ones in use a moment to close.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let name = name.clone();
        connections.spawn(async move {
            answer(stream, &name).await;
            drop(slot);
        });
    }
}

/// Reads one request from `stream` and answers it; the connection is closed afterwards.
async fn answer(mut stream: TcpStream, name: &str) {
    let response = match timeout(READ_LIMIT, read_head(&mut stream)).await {
        Err(_) => Response::text("408 Request Timeout", "the request took too long\n"),
        Ok(Head::TooLarge) => Response::text(
            "431 Request Header Fields Too Large",
            "the request head is too large\n",
        ),
        // Nothing to answer: the client went away.
        Ok(Head::Closed) => return,
        Ok(Head::Complete(head)) => match route(&head) {
            Route::Metrics { head_only } => Response {
                head_only,
                ..metrics(name).await
            },
            Route::NotFound => Response::text("404 Not Found", "not found: see /metrics\n"),
            Route::MethodNotAllowed => Response {
                extra: "Allow: GET, HEAD\r\n",
                ..Response::text("405 Method Not Allowed", "only GET and HEAD\n")
            },
            Route::BadRequest => Response::text("400 Bad Request", "not an HTTP/1 request\n"),
        },
    };
    let written = timeout(WRITE_LIMIT, async {
        stream.write_all(&response.bytes()).await?;
        stream.shutdown().await
    })
    .await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => debug!("metrics: answering a client: {e}"),
        Err(_) => debug!("metrics: a client did not take its answer in time"),
    }
}

/// The metrics of instance `name`, read now, off the runtime's threads (reading the maps is
/// a system call per entry).
async fn metrics(name: &str) -> Response {
    let name = name.to_string();
    let read = tokio::task::spawn_blocking(move || Snapshot::read(&name).map(Snapshot::to_text));
    match read.await {
        Ok(Ok(text)) => Response {
            status: "200 OK",
            content_type: METRICS_TYPE,
            body: text.into_bytes(),
            head_only: false,
            extra: "",
        },
        Ok(Err(e)) => {
            warn!("metrics: reading the instance's maps: {e:#}");
            Response::text(
                "500 Internal Server Error",
                &format!("reading the instance's maps: {e:#}\n"),
            )
        }
        Err(e) => Response::text(
            "500 Internal Server Error",
            &format!("reading the instance's maps: {e}\n"),
        ),
    }
}

/// What was read of a request.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// The request head, up to its blank line.
    Complete(Vec<u8>),
    /// Longer than [`MAX_HEAD`] without its end.
    TooLarge,
    /// The client closed the connection (or it failed) before the head ended.
    Closed,
}

/// Reads up to the blank line that ends a request head.
async fn read_head(stream: &mut TcpStream) -> Head {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return Head::Closed,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = head_end(&buf) {
            buf.truncate(end);
            return Head::Complete(buf);
        }
        if buf.len() >= MAX_HEAD {
            return Head::TooLarge;
        }
    }
}

/// Where the head in `buf` ends: after `\r\n\r\n`, or `\n\n` from a lenient client.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics { head_only: bool },
    NotFound,
    MethodNotAllowed,
    BadRequest,
}

/// The request line of `head` decides: `GET` or `HEAD` of `/metrics` (any query string, which
/// Prometheus may add from a scrape job's `params`), in HTTP/1.0 or 1.1.
fn route(head: &[u8]) -> Route {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let Ok(line) = std::str::from_utf8(line) else {
        return Route::BadRequest;
    };
    let mut words = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Route::BadRequest;
    };
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") || !target.starts_with('/') {
        return Route::BadRequest;
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Route::MethodNotAllowed,
    };
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    if path == "/metrics" {
        Route::Metrics { head_only }
    } else {
        Route::NotFound
    }
}

/// An answer, sent with `Connection: close`.
struct Response {
    status: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    /// HEAD: the headers (with the body's length) without the body.
    head_only: bool,
    /// More header lines, each ending in CRLF.
    extra: &'static str,
}

impl Response {
    fn text(status: &'static str, body: &str) -> Self {
        Self {
            status,
            content_type: TEXT_TYPE,
            body: body.as_bytes().to_vec(),
            head_only: false,
            extra: "",
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
            self.status,
            self.content_type,
            self.body.len(),
            self.extra
        )
        .into_bytes();
        if !self.head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_request_line() {
        let r = |line: &str| route(format!("{line}\r\nHost: x\r\n\r\n").as_bytes());
        assert_eq!(
            r("GET /metrics HTTP/1.1"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(
            r("HEAD /metrics HTTP/1.0"),
            Route::Metrics { head_only: true }
        );
        assert_eq!(
            r("GET /metrics?name=x HTTP/1.1"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(r("GET / HTTP/1.1"), Route::NotFound);
        assert_eq!(r("GET /metrics/ HTTP/1.1"), Route::NotFound);
        assert_eq!(r("GET /metricsx HTTP/1.1"), Route::NotFound);
        assert_eq!(r("POST /metrics HTTP/1.1"), Route::MethodNotAllowed);
        for bad in [
            "GET /metrics",
            "GET /metrics HTTP/2",
            "GET  /metrics HTTP/1.1",
            "GET metrics HTTP/1.1",
            "",
        ] {
            assert_eq!(r(bad), Route::BadRequest, "{bad:?}");
        }
        assert_eq!(route(b"GET /\xff HTTP/1.1\r\n\r\n"), Route::BadRequest);
    }

    #[test]
    fn a_head_ends_at_its_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }

    #[test]
    fn answers_carry_their_length_and_close() {
        let r = Response::text("404 Not Found", "nope\n");
        assert_eq!(
            String::from_utf8(r.bytes()).unwrap(),
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 5\r\nConnection: close\r\n\r\nnope\n"
        );
        let head = Response {
            head_only: true,
            ..Response::text("200 OK", "abc")
        };
        assert!(
            String::from_utf8(head.bytes())
                .unwrap()
                .ends_with("Content-Length: 3\r\nConnection: close\r\n\r\n")
        );
    }

    /// A server on a port of its own, answering for an instance that does not exist: the
    /// HTTP side alone.
    async fn server() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        (
            addr,
            tokio::spawn(serve(listener, "no-such-instance".into())),
        )
    }

    async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_http_and_bounds_what_clients_send() {
        let (addr, task) = server().await;
        let out = exchange(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(out.starts_with("HTTP/1.1 404 Not Found\r\n"), "{out}");
        let out = exchange(addr, b"DELETE /metrics HTTP/1.1\r\n\r\n").await;
        assert!(out.starts_with("HTTP/1.1 405 "), "{out}");
        assert!(out.contains("\r\nAllow: GET, HEAD\r\n"), "{out}");
        // No instance behind it: the scrape fails, saying why, and the server goes on.
        let out = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(out.starts_with("HTTP/1.1 500 "), "{out}");
        let huge = [b'a'; MAX_HEAD + 10];
        let mut request = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        request.extend_from_slice(&huge);
        let out = exchange(addr, &request).await;
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        task.abort();
    }

    /// Clients that connect and send nothing hold every slot only until their time is up:
    /// the next client is answered then.
    #[tokio::test(start_paused = true)]
    async fn silent_clients_are_cut_off() {
        let (addr, task) = server().await;
        let mut idle = Vec::new();
        for _ in 0..MAX_CONNECTIONS + 2 {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        let answered = tokio::spawn(exchange(addr, b"GET / HTTP/1.1\r\n\r\n"));
        // Paused time: advances as soon as every task waits, so this takes no real time.
        let out = tokio::time::timeout(READ_LIMIT * 3, answered)
            .await
            .expect("answered once the idle clients timed out")
            .unwrap();
        assert!(out.starts_with("HTTP/1.1 404 "), "{out}");
        let mut first = idle.remove(0);
        let mut got = String::new();
        first.read_to_string(&mut got).await.unwrap();
        assert!(got.starts_with("HTTP/1.1 408 "), "{got}");
        task.abort();
    }
}
