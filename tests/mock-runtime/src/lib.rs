//! A mock AWS Lambda Runtime API for tests and benchmarks.
//!
//! It queues events, serves them from `GET /2018-06-01/runtime/invocation/next` (a long poll
//! that waits for the next event), and records every request it receives. Like Lambda, it
//! answers `400` to a second result for the same request id, `413` to a response over 6 MB,
//! and `202` otherwise. Faults can be injected to test a runtime's retries: answers of
//! `500`, connections closed mid-request, and a late start (connections refused until then).
//!
//! It runs on its own thread with its own tokio runtime, so tests can drive it from sync code.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::Notify;

/// Lambda's limit for a synchronous response payload.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// One event to hand out, with the headers `/next` will carry.
#[derive(Debug, Clone)]
pub struct Event {
    pub request_id: String,
    pub body: String,
    /// `Lambda-Runtime-Deadline-Ms`; `None` leaves the header out.
    pub deadline_ms: Option<String>,
    pub function_arn: String,
    pub trace_id: Option<String>,
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
}

impl Event {
    /// An event with a deadline `timeout` from now and the usual headers.
    pub fn new(request_id: impl Into<String>, body: impl Into<String>, timeout: Duration) -> Self {
        let deadline = SystemTime::now() + timeout;
        let ms = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis();
        Self {
            request_id: request_id.into(),
            body: body.into(),
            deadline_ms: Some(ms.to_string()),
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:mock".into(),
            trace_id: None,
            client_context: None,
            cognito_identity: None,
        }
    }
}

/// A request the mock received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Bytes,
    pub status: u16,
    pub at: Instant,
}

/// What the runtime reported for one request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Response(String),
    /// The error body and the `Lambda-Runtime-Function-Error-Type` header.
    Error {
        body: String,
        error_type: Option<String>,
    },
}

/// A fault to inject into upcoming requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer `500 Internal Server Error`.
    Status500,
    /// Close the connection without answering.
    Close,
    /// Handle the request as usual, then close the connection without answering: the
    /// runtime cannot know its post arrived, retries it, and gets `400` for the retry.
    HandleThenClose,
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<Event>,
    /// Events handed out and not yet answered, by request id, with when they were handed out.
    in_flight: HashMap<String, Instant>,
    outcomes: HashMap<String, Outcome>,
    /// (request id, handed out at, answered at) for each answered event, in answer order.
    timings: Vec<(String, Instant, Instant)>,
    init_errors: Vec<Recorded>,
    requests: Vec<Recorded>,
    /// Faults for the next requests (to any path but `/next` when `spare_next`).
    faults: VecDeque<Fault>,
    faults_on_next: bool,
    record_requests: bool,
}

struct Shared {
    inner: Mutex<Inner>,
    /// Wakes `/next` long polls when an event is queued.
    queued: Notify,
    /// Wakes test threads waiting for outcomes.
    answered: Condvar,
}

/// A running mock Runtime API. Stops when dropped.
pub struct MockRuntime {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MockRuntime {
    /// Starts the server on a free loopback port.
    pub fn start() -> Self {
        Self::start_after(Duration::ZERO)
    }

    /// Starts the server, but refuses connections for `delay` first (the port is chosen now).
    pub fn start_after(delay: Duration) -> Self {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = probe.local_addr().unwrap();
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                record_requests: true,
                ..Inner::default()
            }),
            queued: Notify::new(),
            answered: Condvar::new(),
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let server_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("mock-runtime-api".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let listener = if delay.is_zero() {
                        probe.set_nonblocking(true).unwrap();
                        tokio::net::TcpListener::from_std(probe).unwrap()
                    } else {
                        drop(probe);
                        ready_tx.send(()).ok();
                        tokio::time::sleep(delay).await;
                        tokio::net::TcpListener::bind(addr)
                            .await
                            .expect("re-bind the mock's port")
                    };
                    ready_tx.send(()).ok();
                    serve(listener, server_shared, rx).await;
                });
            })
            .unwrap();
        ready_rx.recv().unwrap();
        Self {
            addr,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `host:port`, as `AWS_LAMBDA_RUNTIME_API` gives it.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Stops recording every request (benchmarks: keeps memory flat over many events).
    pub fn set_recording(&self, on: bool) {
        self.lock().record_requests = on;
    }

    pub fn push(&self, event: Event) {
        self.lock().queue.push_back(event);
        self.shared.queued.notify_waiters();
        self.shared.queued.notify_one();
    }

    /// Injects faults into the next requests; `include_next` makes `/next` subject to them too.
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>, include_next: bool) {
        let mut inner = self.lock();
        inner.faults.extend(faults);
        inner.faults_on_next = include_next;
    }

    /// Waits until `count` events have an outcome, or `timeout` passes; returns the outcomes.
    pub fn wait_for_outcomes(&self, count: usize, timeout: Duration) -> HashMap<String, Outcome> {
        let deadline = Instant::now() + timeout;
        let mut inner = self.lock();
        while inner.outcomes.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            inner = self.shared.answered.wait_timeout(inner, left).unwrap().0;
        }
        inner.outcomes.clone()
    }

    /// Waits until an init error arrives, or `timeout` passes.
    pub fn wait_for_init_error(&self, timeout: Duration) -> Option<Recorded> {
        let deadline = Instant::now() + timeout;
        let mut inner = self.lock();
        while inner.init_errors.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            inner = self.shared.answered.wait_timeout(inner, left).unwrap().0;
        }
        inner.init_errors.first().cloned()
    }

    pub fn outcomes(&self) -> HashMap<String, Outcome> {
        self.lock().outcomes.clone()
    }

    /// For each answered event: request id, when `/next` handed it out, when it was answered.
    pub fn timings(&self) -> Vec<(String, Instant, Instant)> {
        self.lock().timings.clone()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    pub fn init_errors(&self) -> Vec<Recorded> {
        self.lock().init_errors.clone()
    }

    /// Events queued and not yet handed out.
    pub fn pending(&self) -> usize {
        self.lock().queue.len()
    }

    /// Requests to `/next` received so far (a runtime that still polls keeps adding to it).
    pub fn next_polls(&self) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.path.ends_with("/invocation/next"))
            .count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for MockRuntime {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            tx.send(()).ok();
        }
        if let Some(thread) = self.thread.take() {
            thread.join().ok();
        }
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                stream.set_nodelay(true).ok();
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(req, shared.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, body: &str) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
}

/// Error type used to make hyper drop the connection without an answer.
#[derive(Debug)]
struct CloseConnection;
impl std::fmt::Display for CloseConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fault: connection closed")
    }
}
impl std::error::Error for CloseConnection {}

async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> Result<Reply, CloseConnection> {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let headers: HashMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let body = match req.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Err(CloseConnection),
    };
    let is_next = path.ends_with("/runtime/invocation/next");

    let fault = {
        let mut inner = shared.inner.lock().unwrap();
        if !is_next || inner.faults_on_next {
            inner.faults.pop_front()
        } else {
            None
        }
    };
    let record = |status: u16| Recorded {
        method: method.clone(),
        path: path.clone(),
        headers: headers.clone(),
        body: body.clone(),
        status,
        at: Instant::now(),
    };
    match fault {
        Some(Fault::Status500) => {
            shared.inner.lock().unwrap().requests.push(record(500));
            return Ok(reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"errorType":"ServiceException"}"#,
            ));
        }
        Some(Fault::Close) => {
            shared.inner.lock().unwrap().requests.push(record(0));
            return Err(CloseConnection);
        }
        Some(Fault::HandleThenClose) | None => {}
    }

    if is_next && method == "GET" {
        {
            let mut inner = shared.inner.lock().unwrap();
            if inner.record_requests {
                inner.requests.push(record(200));
            }
        }
        let event = loop {
            let notified = shared.queued.notified();
            if let Some(event) = {
                let mut inner = shared.inner.lock().unwrap();
                let event = inner.queue.pop_front();
                if let Some(event) = &event {
                    inner
                        .in_flight
                        .insert(event.request_id.clone(), Instant::now());
                }
                event
            } {
                break event;
            }
            notified.await;
        };
        let mut response = Response::builder()
            .status(StatusCode::OK)
            .header("Lambda-Runtime-Aws-Request-Id", &event.request_id)
            .header("Lambda-Runtime-Invoked-Function-Arn", &event.function_arn)
            .header("Content-Type", "application/json");
        if let Some(deadline) = &event.deadline_ms {
            response = response.header("Lambda-Runtime-Deadline-Ms", deadline);
        }
        for (name, value) in [
            ("Lambda-Runtime-Trace-Id", &event.trace_id),
            ("Lambda-Runtime-Client-Context", &event.client_context),
            ("Lambda-Runtime-Cognito-Identity", &event.cognito_identity),
        ] {
            if let Some(value) = value {
                response = response.header(name, value);
            }
        }
        return Ok(response.body(Full::new(Bytes::from(event.body))).unwrap());
    }

    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (status, text) = match segments.as_slice() {
        [_, "runtime", "init", "error"] if method == "POST" => {
            shared.inner.lock().unwrap().init_errors.push(record(202));
            shared.answered.notify_all();
            (StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        [
            _,
            "runtime",
            "invocation",
            id,
            kind @ ("response" | "error"),
        ] if method == "POST" => {
            let mut inner = shared.inner.lock().unwrap();
            let id = id.to_string();
            let (status, text) = if inner.outcomes.contains_key(&id)
                || !inner.in_flight.contains_key(&id)
            {
                (
                    StatusCode::BAD_REQUEST,
                    r#"{"errorType":"InvalidStateTransition","errorMessage":"no invocation in flight with this id"}"#,
                )
            } else if *kind == "response" && body.len() > MAX_RESPONSE_BYTES {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    r#"{"errorType":"RequestEntityTooLarge","errorMessage":"response too large"}"#,
                )
            } else {
                let text = String::from_utf8_lossy(&body).into_owned();
                let outcome = if *kind == "response" {
                    Outcome::Response(text)
                } else {
                    Outcome::Error {
                        body: text,
                        error_type: headers.get("lambda-runtime-function-error-type").cloned(),
                    }
                };
                let handed_out = inner.in_flight.remove(&id).unwrap();
                inner.timings.push((id.clone(), handed_out, Instant::now()));
                inner.outcomes.insert(id, outcome);
                (StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
            };
            if inner.record_requests || status != StatusCode::ACCEPTED {
                inner.requests.push(record(status.as_u16()));
            }
            drop(inner);
            shared.answered.notify_all();
            (status, text)
        }
        _ => {
            shared.inner.lock().unwrap().requests.push(record(404));
            (StatusCode::NOT_FOUND, r#"{"errorType":"NotFound"}"#)
        }
    };
    if fault == Some(Fault::HandleThenClose) {
        return Err(CloseConnection);
    }
    Ok(reply(status, text))
}
