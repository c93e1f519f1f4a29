//! The Lambda Runtime API: one small type per endpoint, and the client.
//!
//! <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>: `GET invocation/next`
//! (a long poll, so no timeout), `POST invocation/{id}/response`, `POST invocation/{id}/error`
//! and `POST init/error`. Local emulators differ from Lambda, so the client is liberal: the
//! address may be `host:port` or a URL with a scheme and a path prefix, and any 2xx is success.

use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::deadline::epoch_ms;
use crate::error::LambdaError;

const API_VERSION: &str = "2018-06-01";

/// An event and the headers that come with it: from `GET /invocation/next`, or made up for a
/// local invocation ([`NextEvent::local`]). What [`crate::function::Function::invoke`] takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextEvent {
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// `Lambda-Runtime-Deadline-Ms`, when present and a plausible epoch time.
    pub deadline_ms: Option<u64>,
    /// The raw header value when it was present but not plausible, to warn about.
    pub bad_deadline: Option<String>,
    pub invoked_function_arn: String,
    pub trace_id: Option<String>,
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
    pub body: String,
}

impl NextEvent {
    /// An event for a local invocation (`host run`, tests): a fresh request id and a deadline
    /// `timeout` from now; the rest of the headers absent, as from an emulator.
    pub fn local(body: impl Into<String>, timeout: Duration) -> Self {
        Self {
            request_id: uuid::Uuid::new_v4().to_string(),
            deadline_ms: Some(epoch_ms(SystemTime::now() + timeout)),
            bad_deadline: None,
            invoked_function_arn: String::new(),
            trace_id: None,
            client_context: None,
            cognito_identity: None,
            body: body.into(),
        }
    }
}

/// `GET /runtime/invocation/next`.
pub struct NextEventRequest;

/// `POST /runtime/invocation/{id}/response`.
pub struct EventResponseRequest<'a> {
    pub request_id: &'a str,
    pub body: &'a str,
}

/// `POST /runtime/invocation/{id}/error`.
pub struct EventErrorRequest<'a> {
    pub request_id: &'a str,
    pub error: &'a LambdaError,
}

/// `POST /runtime/init/error`.
pub struct InitErrorRequest<'a> {
    pub error: &'a LambdaError,
}

/// Something that becomes one HTTP request to the Runtime API.
pub trait IntoRequest {
    fn into_request(self, base: &str) -> Request<Full<Bytes>>;
}

fn post(uri: String, body: String, error_type: Option<&str>) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(error_type) = error_type {
        builder = builder.header("Lambda-Runtime-Function-Error-Type", error_type);
    }
    builder
        .body(Full::new(Bytes::from(body)))
        .expect("a request of valid parts")
}

impl IntoRequest for NextEventRequest {
    fn into_request(self, base: &str) -> Request<Full<Bytes>> {
        Request::builder()
            .method(Method::GET)
            .uri(format!("{base}/{API_VERSION}/runtime/invocation/next"))
            .body(Full::new(Bytes::new()))
            .expect("a request of valid parts")
    }
}

impl IntoRequest for EventResponseRequest<'_> {
    fn into_request(self, base: &str) -> Request<Full<Bytes>> {
        let uri = format!(
            "{base}/{API_VERSION}/runtime/invocation/{}/response",
            self.request_id
        );
        post(uri, self.body.to_string(), None)
    }
}

impl IntoRequest for EventErrorRequest<'_> {
    fn into_request(self, base: &str) -> Request<Full<Bytes>> {
        let uri = format!(
            "{base}/{API_VERSION}/runtime/invocation/{}/error",
            self.request_id
        );
        post(uri, self.error.to_json(), Some(&self.error.error_type))
    }
}

impl IntoRequest for InitErrorRequest<'_> {
    fn into_request(self, base: &str) -> Request<Full<Bytes>> {
        let uri = format!("{base}/{API_VERSION}/runtime/init/error");
        post(uri, self.error.to_json(), Some(&self.error.error_type))
    }
}

/// What a post came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostOutcome {
    /// 2xx.
    Accepted,
    /// 413: the payload is over the API's limit.
    TooLarge,
    /// Another 4xx: the API refuses this post (e.g. a second result for one id); the body says why.
    Rejected(StatusCode, String),
}

/// Where the poll loop sends what it has to say: the Runtime API ([`RuntimeApi`]), or a
/// recorder in tests, which can turn each request into its HTTP form to check it.
pub trait Poster: Send + Sync + 'static {
    fn post<R: IntoRequest + Send>(
        &self,
        request: R,
    ) -> impl Future<Output = Result<PostOutcome>> + Send;
}

impl Poster for RuntimeApi {
    fn post<R: IntoRequest + Send>(
        &self,
        request: R,
    ) -> impl Future<Output = Result<PostOutcome>> + Send {
        RuntimeApi::post(self, request)
    }
}

/// The Runtime API client. Cheap to clone; connections are pooled.
#[derive(Clone)]
pub struct RuntimeApi {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl RuntimeApi {
    /// `address` is `AWS_LAMBDA_RUNTIME_API`: `host:port`, or `http://host:port[/prefix]`.
    pub fn new(address: &str) -> Result<Self> {
        let address = address.trim().trim_end_matches('/');
        if address.is_empty() {
            bail!(
                "AWS_LAMBDA_RUNTIME_API is empty; set it to the Runtime API's host:port, e.g. 127.0.0.1:9001"
            );
        }
        let base = if address.contains("://") {
            address.to_string()
        } else {
            format!("http://{address}")
        };
        if base.starts_with("https://") {
            bail!(
                "AWS_LAMBDA_RUNTIME_API `{address}` uses https; the Runtime API is plain http on a local address"
            );
        }
        base.parse::<hyper::Uri>().with_context(|| {
            format!("AWS_LAMBDA_RUNTIME_API `{address}` is not a host:port or http URL")
        })?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(Self { base, client })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        request: impl IntoRequest,
    ) -> Result<(StatusCode, hyper::HeaderMap, Bytes)> {
        let request = request.into_request(&self.base);
        let uri = request.uri().clone();
        let response = self
            .client
            .request(request)
            .await
            .with_context(|| format!("request to {uri} failed"))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .with_context(|| format!("reading the answer of {uri} failed"))?
            .to_bytes();
        Ok((parts.status, parts.headers, body))
    }

    /// Waits for the next event (no timeout: this is a long poll).
    pub async fn next_event(&self) -> Result<NextEvent> {
        let (status, headers, body) = self.send(NextEventRequest).await?;
        if !status.is_success() {
            bail!(
                "/invocation/next answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let request_id = header("lambda-runtime-aws-request-id")
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                anyhow!("/invocation/next answered without a Lambda-Runtime-Aws-Request-Id header")
            })?;
        let raw_deadline = header("lambda-runtime-deadline-ms");
        let deadline_ms = raw_deadline.as_deref().and_then(plausible_deadline);
        Ok(NextEvent {
            request_id,
            bad_deadline: raw_deadline.filter(|_| deadline_ms.is_none()),
            deadline_ms,
            invoked_function_arn: header("lambda-runtime-invoked-function-arn").unwrap_or_default(),
            trace_id: header("lambda-runtime-trace-id"),
            client_context: header("lambda-runtime-client-context"),
            cognito_identity: header("lambda-runtime-cognito-identity"),
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    /// Posts a request whose answer is only a status.
    pub async fn post(&self, request: impl IntoRequest) -> Result<PostOutcome> {
        let (status, _, body) = self.send(request).await?;
        Ok(match status {
            s if s.is_success() => PostOutcome::Accepted,
            StatusCode::PAYLOAD_TOO_LARGE => PostOutcome::TooLarge,
            s if s.is_client_error() => {
                PostOutcome::Rejected(s, String::from_utf8_lossy(&body).into_owned())
            }
            s => bail!(
                "the Runtime API answered {s}: {}",
                String::from_utf8_lossy(&body)
            ),
        })
    }
}

/// A deadline header is used only if it is an epoch time in milliseconds within a day of now;
/// emulators have sent seconds, zero, or nothing at all.
fn plausible_deadline(raw: &str) -> Option<u64> {
    let ms: u64 = raw.trim().parse().ok()?;
    let now = epoch_ms(SystemTime::now());
    const DAY_MS: u64 = 86_400_000;
    (ms + DAY_MS > now && ms < now + DAY_MS).then_some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_forms() {
        assert_eq!(
            RuntimeApi::new("127.0.0.1:9001").unwrap().base(),
            "http://127.0.0.1:9001"
        );
        assert_eq!(
            RuntimeApi::new("http://localhost:8080/prefix/")
                .unwrap()
                .base(),
            "http://localhost:8080/prefix"
        );
        assert!(RuntimeApi::new("").is_err());
    }

    #[test]
    fn deadlines_must_be_plausible() {
        let now = epoch_ms(SystemTime::now());
        assert_eq!(
            plausible_deadline(&(now + 3000).to_string()),
            Some(now + 3000)
        );
        assert_eq!(
            plausible_deadline(&(now / 1000 + 3).to_string()),
            None,
            "seconds, not ms"
        );
        assert_eq!(plausible_deadline("0"), None);
        assert_eq!(plausible_deadline("soon"), None);
    }

    #[test]
    fn error_post_carries_the_type_header() {
        let error = LambdaError::new("Runtime.Trap", "boom");
        let request = EventErrorRequest {
            request_id: "id-1",
            error: &error,
        }
        .into_request("http://h:1");
        assert_eq!(
            request.uri(),
            "http://h:1/2018-06-01/runtime/invocation/id-1/error"
        );
        assert_eq!(
            request.headers()["Lambda-Runtime-Function-Error-Type"],
            "Runtime.Trap"
        );
    }
}
