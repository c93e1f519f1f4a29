//! Web applications: an HTTP request (from an event, or from `host serve`) answered by a PHP
//! web app the way nginx + PHP-FPM would.
//!
//! [`event`] maps Lambda's HTTP events to an [`http::Request`] and the response back; [`route`]
//! picks the file (`try_files`); [`respond`] runs the script in a fresh instance of the PHP
//! runtime (its `lamp:handler/web` export) or serves a static file, the same way for the
//! bootstrap and for `host serve`.

pub mod event;
pub mod route;
#[cfg(feature = "serve")]
pub mod server;
#[cfg(feature = "serve")]
pub mod template;

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, LAST_MODIFIED};
use http::{Method, Request, Response, StatusCode};

use crate::component::{Context, HandlerComponent, Outcome, WebRequest};
use crate::error::{LambdaError, types};
use crate::sandbox::SandboxConfig;
use route::{DocumentRoot, Route};

/// Largest request or response body API Gateway and Function URLs carry (6 MB).
pub const MAX_BODY: usize = 6 * 1024 * 1024;

/// What the request line does not say about the client.
#[derive(Debug, Clone, Default)]
pub struct Client {
    /// The client's address (`REMOTE_ADDR`); `127.0.0.1` when unknown.
    pub ip: Option<String>,
}

/// Answers `request` for the web app at `root` as `route` (`root.route(path)`, which the
/// caller has to look at anyway) says: a static file, or a script run in a fresh instance of
/// `handler` with `sandbox`'s limits. `code_unchanged`: no file of the PHP snapshot changed
/// since it was made (the guest need not check its includes).
#[allow(clippy::too_many_arguments)]
pub async fn respond(
    handler: &HandlerComponent,
    root: &DocumentRoot,
    route: Route,
    request: &Request<Bytes>,
    client: &Client,
    context: &Context,
    sandbox: &SandboxConfig,
    timeout: Duration,
    code_unchanged: bool,
) -> Outcome<Response<Bytes>> {
    let started = Instant::now();
    let script = match route {
        Route::Static(file) => {
            let result = static_file(&file, request);
            return Outcome {
                result,
                duration: started.elapsed(),
                instantiate: Duration::ZERO,
                peak_memory: 0,
            };
        }
        Route::Script(script) => script,
    };
    let guest_request = guest_request(root, script, request, client, code_unchanged);
    let outcome = handler
        .serve(&guest_request, context, sandbox, timeout)
        .await;
    let result = outcome.result.and_then(|response| {
        let mut builder = Response::builder().status(response.status);
        for (name, value) in &response.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let body = if request.method() == Method::HEAD {
            Bytes::new()
        } else {
            Bytes::from(response.body)
        };
        builder.body(body).map_err(|e| {
            LambdaError::new(
                types::INTERNAL,
                format!("the page's response is not valid HTTP ({e}): check its header() calls"),
            )
        })
    });
    Outcome {
        result,
        duration: outcome.duration,
        instantiate: outcome.instantiate,
        peak_memory: outcome.peak_memory,
    }
}

/// The request as the PHP runtime takes it, with the CGI facts nginx would give PHP-FPM.
fn guest_request(
    root: &DocumentRoot,
    script: route::Script,
    request: &Request<Bytes>,
    client: &Client,
    code_unchanged: bool,
) -> WebRequest {
    let headers = request.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let https = header("x-forwarded-proto").is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let host = header(HOST.as_str()).unwrap_or("localhost");
    let (server_name, host_port) = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(']') || host.starts_with('[') => {
            (name.to_string(), port.parse::<u16>().ok())
        }
        _ => (host.to_string(), None),
    };
    let server_port = header("x-forwarded-port")
        .and_then(|p| p.parse().ok())
        .or(host_port)
        .unwrap_or(if https { 443 } else { 80 });
    let uri = request
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_string(), |pq| pq.as_str().to_string());
    WebRequest {
        method: request.method().as_str().to_string(),
        uri,
        query: request.uri().query().unwrap_or_default().to_string(),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: request.body().to_vec(),
        remote_addr: client.ip.clone().unwrap_or_else(|| "127.0.0.1".into()),
        server_name,
        server_port,
        https,
        document_root: root.guest.clone(),
        script_filename: script.filename,
        script_name: script.name,
        path_info: script.path_info,
        code_unchanged,
    }
}

/// A file of the document root, as a web server sends it (for the bootstrap; `host serve`
/// serves them with `tower-http`, which also answers conditional and range requests).
fn static_file(file: &Path, request: &Request<Bytes>) -> Result<Response<Bytes>, LambdaError> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Ok(Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header("allow", "GET, HEAD")
            .body(Bytes::new())
            .expect("a valid response"));
    }
    let bytes = std::fs::read(file).map_err(|e| {
        LambdaError::new(
            types::SANDBOX,
            format!("failed to read static file `{}`: {e}", file.display()),
        )
    })?;
    let mime = mime_guess::from_path(file).first_or_octet_stream();
    let mut response = Response::builder()
        .header(CONTENT_TYPE, mime.as_ref())
        .header(CONTENT_LENGTH, bytes.len());
    if let Ok(modified) = std::fs::metadata(file).and_then(|m| m.modified()) {
        response = response.header(LAST_MODIFIED, httpdate::fmt_http_date(modified));
    }
    let body = if request.method() == Method::HEAD {
        Bytes::new()
    } else {
        Bytes::from(bytes)
    };
    Ok(response.body(body).expect("a valid response"))
}
