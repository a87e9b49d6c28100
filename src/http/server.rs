//! The HTTP server under the axum router: our own accept loop on hyper's HTTP/1
//! connection, so that no client can hold the service, or its shutdown, forever.
//!
//! Every connection is in one phase at a time, and each phase but one has a deadline
//! (all in `[server]` of `config.toml`). As in Go's `net/http`, a new connection must
//! send its first request head within the header timeout; only a connection that has
//! been answered may wait the (longer) idle timeout for its next request.
//!
//! | phase | from | deadline |
//! |---|---|---|
//! | head | accept, or the first byte of a later request | `header_read_timeout_secs` |
//! | idle | the end of an answer (keep-alive) | `idle_timeout_secs` |
//! | handling | the head is read; the handler runs | none (handlers bound themselves) |
//! | responding | the answer's head is ready | `request_timeout_secs` |
//!
//! A connection past its deadline is closed. While handling, the request *body* must
//! have arrived `request_timeout_secs` after the head; a body that has not is cut off
//! and the request answered 408, never 200. Connections are capped
//! (`max_connections`: beyond it the service stops accepting until one closes) and so
//! are requests in flight (`max_requests_in_flight`: beyond it 503 with `Retry-After`).
//!
//! Shutdown: stop accepting, close every connection that is idle or mid-head at once,
//! let the ones handling or answering a request finish it within `shutdown_grace_secs`,
//! then cut off whatever is left. A cut-off request is never answered, so a webhook
//! answered 200 was stored and one that was not answered will be sent again.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};

use crate::config::ServerConfig;
use crate::locks::lock;

/// The server's timeouts and caps.
#[derive(Debug, Clone)]
pub struct Limits {
    /// From accept (or a later request's first byte) to the end of the request head.
    pub header_read_timeout: Duration,
    /// From the end of a request's head to the end of its body; also the most an
    /// answer may take to be written.
    pub request_timeout: Duration,
    /// How long an answered (keep-alive) connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Requests being handled at once.
    pub max_requests_in_flight: usize,
    /// How long requests being handled at shutdown may take to finish.
    pub shutdown_grace: Duration,
}

impl Limits {
    /// The limits of `[server]`.
    pub fn from_config(server: &ServerConfig) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(server.header_read_timeout_secs),
            request_timeout: Duration::from_secs(server.request_timeout_secs),
            idle_timeout: Duration::from_secs(server.idle_timeout_secs),
            max_connections: server.max_connections,
            max_requests_in_flight: server.max_requests_in_flight,
            shutdown_grace: Duration::from_secs(server.shutdown_grace_secs),
        }
    }
}

/// After an accept error (e.g. out of file descriptors), wait this long before the next.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// What every connection of one server shares.
struct Shared {
    router: Router,
    limits: Limits,
    in_flight: Arc<Semaphore>,
}

/// Serves `router` on `listener` under `limits` until `shutdown` completes, then shuts
/// down as the module documentation says. Returns once every connection is closed
/// (at most `limits.shutdown_grace` after `shutdown`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let shared = Arc::new(Shared {
        router,
        in_flight: Arc::new(Semaphore::new(limits.max_requests_in_flight.max(1))),
        limits,
    });
    let (stop, stopping) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut at_cap_logged = false;
    tokio::pin!(shutdown);
    loop {
        while tasks.try_join_next().is_some() {}
        let permit = match connections.clone().try_acquire_owned() {
            Ok(permit) => {
                at_cap_logged = false;
                permit
            }
            Err(_) => {
                if !at_cap_logged {
                    tracing::warn!(
                        max_connections = shared.limits.max_connections,
                        "connection cap reached: not accepting until a connection closes"
                    );
                    at_cap_logged = true;
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    permit = connections.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                }
            }
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                tracing::warn!(error = %error, "accept failed");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let stopping = stopping.clone();
        tasks.spawn(async move {
            connection(stream, shared, stopping).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let grace = shared.limits.shutdown_grace;
    let drained =
        tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            connections = tasks.len(),
            grace_secs = grace.as_secs_f64(),
            "requests still running after the shutdown grace are cut off unanswered"
        );
        tasks.shutdown().await;
    }
    Ok(())
}

/// Serves one connection until it ends, misses a deadline, or shutdown closes it.
async fn connection(stream: TcpStream, shared: Arc<Shared>, mut stopping: watch::Receiver<bool>) {
    let clock = Arc::new(Clock::new());
    let io = TokioIo::new(Watched {
        io: stream,
        clock: clock.clone(),
    });
    let service = {
        let shared = shared.clone();
        let clock = clock.clone();
        hyper::service::service_fn(move |request| {
            let shared = shared.clone();
            let clock = clock.clone();
            async move { Ok::<_, Infallible>(handle(&shared, &clock, request).await) }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Our clock keeps the header deadline (hyper's would also cut idle connections).
    builder.header_read_timeout(None);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(error = %error, "connection ended with an error");
                }
                return;
            }
            phase = clock.expired(&shared.limits) => {
                tracing::debug!(phase, "connection closed: deadline passed");
                return;
            }
            _ = stopping.wait_for(|stop| *stop), if !draining => {
                draining = true;
                if clock.waiting_for_a_request() {
                    return;
                }
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Runs one request through the router, with the in-flight cap and the body deadline.
async fn handle(shared: &Shared, clock: &Arc<Clock>, request: Request<Incoming>) -> Response<Body> {
    clock.set(Phase::Handling);
    let response = match shared.in_flight.clone().try_acquire_owned() {
        Err(_) => refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "too many requests in flight; retry later".into(),
            Some("1"),
        ),
        Ok(permit) => {
            let timeout = shared.limits.request_timeout;
            let expired = Arc::new(AtomicBool::new(false));
            let request = request.map(|body| {
                if http_body::Body::is_end_stream(&body) {
                    Body::new(body)
                } else {
                    Body::new(DeadlineBody {
                        inner: body,
                        sleep: Box::pin(tokio::time::sleep(timeout)),
                        expired: expired.clone(),
                    })
                }
            });
            let mut router = shared.router.clone();
            let response = match tower_service::Service::call(&mut router, request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            drop(permit);
            if expired.load(Ordering::Relaxed) {
                refusal(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    format!(
                        "the request body did not arrive within {} s",
                        timeout.as_secs()
                    ),
                    None,
                )
            } else {
                response
            }
        }
    };
    clock.set(Phase::Responding(Instant::now()));
    let done = Done(clock.clone());
    response.map(|inner| Body::new(Tracked { inner, _done: done }))
}

/// A JSON error answer after which the connection closes (its request body may be
/// unread).
fn refusal(
    status: StatusCode,
    code: &str,
    message: String,
    retry_after: Option<&'static str>,
) -> Response<Body> {
    let body = serde_json::json!({"error": code, "message": message}).to_string();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    if let Some(seconds) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
    }
    response
}

/// Where a connection is in its request cycle (see the module documentation).
#[derive(Debug, Clone, Copy)]
enum Phase {
    Idle(Instant),
    Head(Instant),
    Handling,
    Responding(Instant),
}

/// A connection's phase, changed by its reader, its handler and its answer.
struct Clock {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Clock {
    fn new() -> Self {
        Self {
            phase: Mutex::new(Phase::Head(Instant::now())),
            changed: Notify::new(),
        }
    }

    fn set(&self, phase: Phase) {
        *lock(&self.phase) = phase;
        self.changed.notify_one();
    }

    /// Bytes arrived: an idle connection has started a request.
    fn bytes_read(&self) {
        let mut phase = lock(&self.phase);
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }

    /// The answer is written (or abandoned): the connection waits for its next request.
    /// Only from `Responding`, so a late drop never hides a request being handled.
    fn answer_done(&self) {
        let mut phase = lock(&self.phase);
        if let Phase::Responding(_) = *phase {
            *phase = Phase::Idle(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }

    /// Whether no request is being handled or answered (closing loses nothing).
    fn waiting_for_a_request(&self) -> bool {
        matches!(*lock(&self.phase), Phase::Idle(_) | Phase::Head(_))
    }

    /// The current deadline and the name of its phase.
    fn deadline(&self, limits: &Limits) -> Option<(Instant, &'static str)> {
        match *lock(&self.phase) {
            Phase::Idle(since) => Some((since + limits.idle_timeout, "idle")),
            Phase::Head(since) => Some((since + limits.header_read_timeout, "head")),
            Phase::Handling => None,
            Phase::Responding(since) => Some((since + limits.request_timeout, "responding")),
        }
    }

    /// Completes (with the phase's name) once the connection is past its deadline.
    async fn expired(&self, limits: &Limits) -> &'static str {
        loop {
            let changed = self.changed.notified();
            match self.deadline(limits) {
                None => changed.await,
                Some((deadline, phase)) => {
                    if deadline <= Instant::now() {
                        return phase;
                    }
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {}
                        () = changed => {}
                    }
                }
            }
        }
    }
}

/// The connection's socket, telling its clock when bytes arrive.
struct Watched {
    io: TcpStream,
    clock: Arc<Clock>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.bytes_read();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The request body did not arrive within `request_timeout_secs`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

/// A request body that fails once its deadline has passed (and says so in `expired`).
struct DeadlineBody {
    inner: Incoming,
    sleep: Pin<Box<Sleep>>,
    expired: Arc<AtomicBool>,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(BodyTimedOut.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Marks the connection idle when the answer's body is dropped (written or abandoned).
struct Done(Arc<Clock>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.answer_done();
    }
}

/// An answer's body that marks the connection idle once it is done.
struct Tracked {
    inner: Body,
    _done: Done,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, post};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Generous bound for "soon" under a loaded test machine.
    const SOON: Duration = Duration::from_secs(10);

    fn limits() -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            max_connections: 100,
            max_requests_in_flight: 100,
            shutdown_grace: Duration::from_secs(5),
        }
    }

    /// A running server: `/ok`, `POST /echo` (answers the body's length) and `/hold`
    /// (answers once `release` is notified).
    struct Running {
        addr: std::net::SocketAddr,
        release: Arc<Notify>,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        served: tokio::task::JoinHandle<io::Result<()>>,
    }

    async fn start(limits: Limits) -> Running {
        let release = Arc::new(Notify::new());
        let held = release.clone();
        let router = Router::new()
            .route("/ok", get(|| async { "ok" }))
            .route(
                "/echo",
                post(|body: Bytes| async move { body.len().to_string() }),
            )
            .route(
                "/hold",
                get(move || {
                    let held = held.clone();
                    async move {
                        held.notified().await;
                        "released"
                    }
                }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(serve(listener, router, limits, async move {
            let _ = stopped.await;
        }));
        Running {
            addr,
            release,
            stop: Some(stop),
            served,
        }
    }

    async fn connect(running: &Running) -> TcpStream {
        TcpStream::connect(running.addr).await.unwrap()
    }

    /// Reads until the server closes the connection (or `SOON` passes: `None`).
    async fn read_to_close(stream: &mut TcpStream) -> Option<String> {
        let mut text = Vec::new();
        match tokio::time::timeout(SOON, stream.read_to_end(&mut text)).await {
            Ok(_) => Some(String::from_utf8_lossy(&text).into_owned()),
            Err(_) => None,
        }
    }

    /// Reads one answer's head (up to the blank line).
    async fn read_head(stream: &mut TcpStream) -> String {
        let mut text = Vec::new();
        let mut byte = [0u8; 1];
        tokio::time::timeout(SOON, async {
            while !text.ends_with(b"\r\n\r\n") {
                if stream.read(&mut byte).await.unwrap() == 0 {
                    break;
                }
                text.push(byte[0]);
            }
        })
        .await
        .expect("an answer");
        String::from_utf8_lossy(&text).into_owned()
    }

    const GET_OK: &[u8] = b"GET /ok HTTP/1.1\r\nhost: x\r\n\r\n";

    #[tokio::test]
    async fn a_half_head_is_closed_after_the_header_timeout() {
        let running = start(Limits {
            header_read_timeout: Duration::from_millis(300),
            ..limits()
        })
        .await;
        let mut stream = connect(&running).await;
        stream
            .write_all(b"GET /ok HTTP/1.1\r\nhost:")
            .await
            .unwrap();
        let started = Instant::now();
        let answer = read_to_close(&mut stream).await.expect("closed");
        assert!(answer.is_empty(), "no answer to half a head: {answer:?}");
        assert!(started.elapsed() >= Duration::from_millis(250));
    }

    #[tokio::test]
    async fn a_new_connection_that_sends_nothing_gets_the_header_timeout() {
        let running = start(Limits {
            header_read_timeout: Duration::from_millis(300),
            ..limits()
        })
        .await;
        let mut stream = connect(&running).await;
        let started = Instant::now();
        assert_eq!(read_to_close(&mut stream).await.as_deref(), Some(""));
        assert!(started.elapsed() >= Duration::from_millis(250));
    }

    #[tokio::test]
    async fn an_answered_connection_gets_the_idle_timeout_not_the_header_one() {
        let running = start(Limits {
            header_read_timeout: Duration::from_millis(200),
            idle_timeout: Duration::from_millis(1500),
            ..limits()
        })
        .await;
        let mut stream = connect(&running).await;
        stream.write_all(GET_OK).await.unwrap();
        assert!(read_head(&mut stream).await.starts_with("HTTP/1.1 200"));
        let mut body = [0u8; 2];
        stream.read_exact(&mut body).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        stream.write_all(GET_OK).await.unwrap();
        let head = read_head(&mut stream).await;
        assert!(
            head.starts_with("HTTP/1.1 200"),
            "kept alive past the header timeout: {head}"
        );
        let started = Instant::now();
        let rest = read_to_close(&mut stream).await.expect("closed when idle");
        assert_eq!(rest, "ok", "the body, then the close");
        assert!(started.elapsed() >= Duration::from_millis(1000));
    }

    #[tokio::test]
    async fn a_body_that_stops_arriving_is_answered_408() {
        let running = start(Limits {
            request_timeout: Duration::from_millis(300),
            ..limits()
        })
        .await;
        let mut stream = connect(&running).await;
        stream
            .write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123456789")
            .await
            .unwrap();
        let answer = read_to_close(&mut stream)
            .await
            .expect("answered and closed");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("request_timeout"), "{answer}");
        // A whole body in time is answered as usual.
        let mut stream = connect(&running).await;
        stream
            .write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc")
            .await
            .unwrap();
        assert!(read_head(&mut stream).await.starts_with("HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn requests_beyond_the_in_flight_cap_get_503_with_retry_after() {
        let running = start(Limits {
            max_requests_in_flight: 1,
            ..limits()
        })
        .await;
        let mut held = connect(&running).await;
        held.write_all(b"GET /hold HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let deadline = Instant::now() + SOON;
        let refused = loop {
            let mut stream = connect(&running).await;
            stream.write_all(GET_OK).await.unwrap();
            let head = read_head(&mut stream).await;
            if head.starts_with("HTTP/1.1 503") {
                break head;
            }
            // The held request may not have reached its handler yet.
            assert!(Instant::now() < deadline, "never refused: {head}");
            tokio::task::yield_now().await;
        };
        assert!(
            refused.to_lowercase().contains("retry-after: 1"),
            "{refused}"
        );
        running.release.notify_one();
        assert!(read_head(&mut held).await.starts_with("HTTP/1.1 200"));
        let mut stream = connect(&running).await;
        stream.write_all(GET_OK).await.unwrap();
        assert!(read_head(&mut stream).await.starts_with("HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn beyond_the_connection_cap_new_connections_wait() {
        let running = start(Limits {
            max_connections: 1,
            ..limits()
        })
        .await;
        let mut first = connect(&running).await;
        first.write_all(GET_OK).await.unwrap();
        assert!(read_head(&mut first).await.starts_with("HTTP/1.1 200"));
        let mut second = connect(&running).await;
        second.write_all(GET_OK).await.unwrap();
        let mut byte = [0u8; 1];
        let early = tokio::time::timeout(Duration::from_millis(300), second.read(&mut byte)).await;
        assert!(early.is_err(), "not served while the first is open");
        drop(first);
        assert!(read_head(&mut second).await.starts_with("HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn shutdown_closes_idle_connections_and_cuts_off_what_outlasts_the_grace() {
        let mut running = start(Limits {
            shutdown_grace: Duration::from_secs(3),
            ..limits()
        })
        .await;
        let mut idle = connect(&running).await;
        let mut half = connect(&running).await;
        half.write_all(b"GET /ok HT").await.unwrap();
        let mut held = connect(&running).await;
        held.write_all(b"GET /hold HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        // Let the held request reach its handler.
        let mut probe = connect(&running).await;
        probe.write_all(GET_OK).await.unwrap();
        assert!(read_head(&mut probe).await.starts_with("HTTP/1.1 200"));
        drop(probe);
        let started = Instant::now();
        let _ = running.stop.take().map(|stop| stop.send(()));
        assert_eq!(read_to_close(&mut idle).await.as_deref(), Some(""));
        assert_eq!(read_to_close(&mut half).await.as_deref(), Some(""));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "idle connections close at once"
        );
        let cut = read_to_close(&mut held).await.expect("cut off");
        assert!(cut.is_empty(), "never answered: {cut:?}");
        tokio::time::timeout(SOON, &mut running.served)
            .await
            .expect("serve returns after the grace")
            .unwrap()
            .unwrap();
        assert!(
            TcpStream::connect(running.addr).await.is_err(),
            "no longer accepting"
        );
    }

    #[tokio::test]
    async fn a_request_running_at_shutdown_is_answered_within_the_grace() {
        let mut running = start(limits()).await;
        let mut held = connect(&running).await;
        held.write_all(b"GET /hold HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut probe = connect(&running).await;
        probe.write_all(GET_OK).await.unwrap();
        assert!(read_head(&mut probe).await.starts_with("HTTP/1.1 200"));
        let _ = running.stop.take().map(|stop| stop.send(()));
        tokio::time::sleep(Duration::from_millis(100)).await;
        running.release.notify_one();
        let answer = read_to_close(&mut held)
            .await
            .expect("answered, then closed");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("released"), "{answer}");
        tokio::time::timeout(SOON, &mut running.served)
            .await
            .expect("serve returns")
            .unwrap()
            .unwrap();
    }
}
