//! `host serve`'s server: the local API Gateway in front of one function, or of the functions
//! of a SAM template, each reached by its routes ([`super::template`]).
//!
//! Every request is answered the way it would be on Lambda behind API Gateway: a web app's
//! request goes through [`Function::respond`] (the same routing and PHP request the bootstrap
//! uses for an HTTP event); a JSON handler gets the request as an HTTP API (2.0) event and its
//! result is read as API Gateway reads a proxy result. Each request runs in a fresh instance,
//! at most `concurrency` at once (the pooling allocator has that many slots).
//!
//! Static files (the assets prefix, and files of a web app's document root) are served by
//! `tower-http`'s `ServeDir`: content types, `ETag`/`Last-Modified`, 304s, HEAD, ranges.
//!
//! Errors are API Gateway's: a handler error is a 502 `{"message":"Internal Server Error"}`,
//! a timeout a 504, a body over 6 MB a 413; hyper answers malformed HTTP with a 400 and too
//! many or too large headers with a 431. The cause goes to the log, never to the client. One
//! access-log line per request. A request runs to its end even when its client goes away, as
//! on Lambda. Shutdown (Ctrl-C, SIGTERM) finishes requests in flight.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;
use tower_http::services::ServeDir;

use super::event::{read_proxy_result, to_http_v2_event};
use super::route::Route;
use super::template::{self, RouteKey};
use super::{Client, MAX_BODY};
use crate::error::{LambdaError, types};
use crate::function::Function;
use crate::lambda::api::NextEvent;

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// How `host serve` serves.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    /// Requests run at once; more wait for a free slot.
    pub concurrency: usize,
    /// Path prefix served from the static folder without the function (`/assets`).
    pub assets_prefix: String,
    /// The folder the prefix maps to (its path under it, as in the URL).
    pub static_root: Option<PathBuf>,
    /// How long requests in flight may take to finish at shutdown.
    pub grace: Duration,
}

/// A function behind the server, and the routes that reach it.
pub struct Mounted {
    /// Its name in logs (the template's logical id, or the target's file name).
    pub name: String,
    pub function: Function,
    pub routes: Vec<RouteKey>,
}

struct Served {
    mounted: Mounted,
    /// A web app's document root, for its static files.
    web_files: Option<ServeDir>,
}

struct Server {
    functions: Vec<Served>,
    options: Options,
    slots: Semaphore,
    static_files: Option<ServeDir>,
    /// Every request's task, which outlives its connection (see `connect`): shutdown waits
    /// for these too, not only for the connections.
    requests: TaskTracker,
}

/// Serves until `shutdown` completes, then lets requests in flight finish (up to the grace
/// period).
pub async fn serve(
    functions: Vec<Mounted>,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let listener = TcpListener::bind(options.listen).await.with_context(|| {
        format!(
            "failed to listen on {}; is another server using it? pass --listen with a free address",
            options.listen
        )
    })?;
    let local = listener.local_addr()?;
    let static_files = options.static_root.as_ref().map(ServeDir::new);
    let functions = functions
        .into_iter()
        .map(|mounted| Served {
            web_files: mounted
                .function
                .web_root()
                .map(|root| ServeDir::new(&root.host)),
            mounted,
        })
        .collect();
    let server = Arc::new(Server {
        slots: Semaphore::new(options.concurrency.max(1)),
        static_files,
        functions,
        options,
        requests: TaskTracker::new(),
    });
    tracing::info!(
        "listening on http://{local} ({} at a time; static files under {})",
        server.options.concurrency,
        server.options.assets_prefix
    );
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of descriptors, say: keep serving the connections we have.
                        tracing::warn!("failed to accept a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                connect(&server, &graceful, stream, peer);
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: finishing the requests in flight");
    let grace = server.options.grace;
    // The connections first (their requests finish and answer), then the requests whose
    // client has gone: the runtime stopping under one would cut it off in the middle.
    server.requests.close();
    let finished = async {
        graceful.shutdown().await;
        server.requests.wait().await;
    };
    if tokio::time::timeout(grace, finished).await.is_err() {
        tracing::warn!("requests still running after {grace:?}; stopping anyway");
    }
    Ok(())
}

/// Serves one connection (HTTP/1.1, keep-alive) on its own task, watched for shutdown.
fn connect(
    server: &Arc<Server>,
    graceful: &GracefulShutdown,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
) {
    let server = server.clone();
    let service = service_fn(move |request| {
        let server = server.clone();
        let requests = server.requests.clone();
        async move {
            // A task of its own, so the request runs to its end when the client goes away (the
            // connection drops this future): Lambda finishes an invocation whatever happens to
            // its caller, and a guest dropped midway would leave behind what it holds, such as
            // a SQLite lock directory in the function's /tmp.
            let response = requests
                .spawn(server.handle(request, peer))
                .await
                .unwrap_or_else(|e| {
                    tracing::error!("request from {peer} failed: {e}");
                    message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
                });
            Ok::<_, Infallible>(response)
        }
    });
    let connection = http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(TokioIo::new(stream), service);
    let connection = graceful.watch(connection);
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("connection from {peer}: {e}");
        }
    });
}

impl Server {
    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let started = Instant::now();
        let request_id = uuid::Uuid::new_v4().to_string();
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let response = self.answer(request, peer, &request_id).await;
        let bytes = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .or_else(|| hyper::body::Body::size_hint(response.body()).exact())
            .unwrap_or(0);
        tracing::info!(
            target: "host::access",
            request_id = %request_id,
            "{peer} {method} {path} {} {bytes} {:.2}ms",
            response.status().as_u16(),
            started.elapsed().as_secs_f64() * 1e3
        );
        response
    }

    /// Static files first (no function runs), then the function the route picks.
    async fn answer(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
        request_id: &str,
    ) -> Response<Body> {
        let path = request.uri().path();
        if let Some(files) = &self.static_files
            && under_prefix(path, &self.options.assets_prefix)
            && !path.ends_with(".php")
        {
            return serve_file(files, request).await;
        }
        let routes = self
            .functions
            .iter()
            .enumerate()
            .flat_map(|(i, f)| f.mounted.routes.iter().map(move |r| (i, r)));
        let Some(index) = template::pick(routes, request.method().as_str(), path) else {
            return message(StatusCode::NOT_FOUND, "Not Found");
        };
        let served = &self.functions[index];
        // A web app's route is looked up once: a static file is sent from here, a script's
        // route goes on to the function.
        let route = served
            .mounted
            .function
            .web_root()
            .map(|root| root.route(path));
        if let (Some(Route::Static(_)), Some(files)) = (&route, &served.web_files) {
            return serve_file(files, request).await;
        }
        let request = match read_body(request).await {
            Ok(request) => request,
            Err(response) => return response,
        };
        let _slot = self
            .slots
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let result = invoke(&served.mounted.function, route, &request, peer, request_id).await;
        to_response(&served.mounted.name, result, request_id)
    }
}

/// The request with its body read, or the error response: 413 past 6 MB (by its
/// `Content-Length`, before reading, or while reading), 400 when the body breaks off.
async fn read_body(request: Request<Incoming>) -> Result<Request<Bytes>, Response<Body>> {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY as u64) {
        return Err(too_large());
    }
    let (parts, body) = request.into_parts();
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(Request::from_parts(parts, collected.to_bytes())),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Err(e) => {
            tracing::debug!("failed to read the request body: {e}");
            Err(message(StatusCode::BAD_REQUEST, "Bad Request"))
        }
    }
}

/// Runs the request through the function: a web app (which has a `route`) or a `wasi:http`
/// handler directly, a JSON handler as a 2.0 event whose result is read as API Gateway reads
/// it.
async fn invoke(
    function: &Function,
    route: Option<Route>,
    request: &Request<Bytes>,
    peer: SocketAddr,
    request_id: &str,
) -> Result<Response<Bytes>, LambdaError> {
    let event = NextEvent {
        request_id: request_id.to_string(),
        ..NextEvent::local(String::new(), function.config.timeout)
    };
    if let Some(route) = route {
        let client = Client {
            ip: Some(peer.ip().to_string()),
        };
        return function
            .respond(route, request, &client, &event)
            .await
            .result;
    }
    if function.handler.is_http() {
        let client = Client {
            ip: Some(peer.ip().to_string()),
        };
        return function.handle_http(request, &client, &event).await.result;
    }
    let event = NextEvent {
        body: to_http_v2_event(request, &peer.ip().to_string(), request_id).to_string(),
        ..event
    };
    let result = function.invoke(&event).await.result?;
    read_proxy_result(&result).map_err(|e| LambdaError::new(types::INTERNAL, e))
}

/// The client's response: the function's, or API Gateway's error for what went wrong (the
/// cause in the log only).
fn to_response(
    name: &str,
    result: Result<Response<Bytes>, LambdaError>,
    request_id: &str,
) -> Response<Body> {
    match result {
        Ok(response) if response.body().len() > MAX_BODY => {
            tracing::error!(
                request_id = %request_id,
                "{name}: the response body is {} bytes, over API Gateway's 6 MB limit ({MAX_BODY} \
                 bytes): page the result, or serve large files from S3 (the static folder here)",
                response.body().len()
            );
            message(StatusCode::BAD_GATEWAY, "Internal Server Error")
        }
        Ok(response) => response.map(|body| {
            Full::new(body)
                .map_err(|never| match never {})
                .boxed_unsync()
        }),
        Err(error) => {
            tracing::error!(
                request_id = %request_id,
                "{name}: {}: {}",
                error.error_type,
                error.error_message
            );
            if error.error_type == types::TIMEOUT {
                message(StatusCode::GATEWAY_TIMEOUT, "Endpoint request timed out")
            } else {
                message(StatusCode::BAD_GATEWAY, "Internal Server Error")
            }
        }
    }
}

fn under_prefix(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    !prefix.is_empty()
        && path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

async fn serve_file(files: &ServeDir, request: Request<Incoming>) -> Response<Body> {
    let (parts, _) = request.into_parts();
    let request = Request::from_parts(parts, http_body_util::Empty::<Bytes>::new());
    match files.clone().oneshot(request).await {
        Ok(response) => response.map(|body| body.boxed_unsync()),
        Err(never) => match never {},
    }
}

fn too_large() -> Response<Body> {
    message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large")
}

/// API Gateway's error body: `{"message":"..."}`.
fn message(status: StatusCode, text: &str) -> Response<Body> {
    let body = serde_json::json!({ "message": text }).to_string();
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .header(CONTENT_LENGTH, body.len())
        .body(
            Full::new(Bytes::from(body))
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .expect("a valid response")
}
