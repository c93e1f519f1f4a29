//! A `wasi:http/incoming-handler` component answering one HTTP request in a fresh instance:
//! the handler contract of `wasmtime serve` and Spin, so that a component from any wasi:http
//! toolchain runs unmodified behind `host serve` and Lambda's HTTP events.
//!
//! The response body is collected whole (API Gateway buffers it too), up to its 6 MB limit,
//! while the guest writes it; the invocation's limits are [`super::Run`]'s.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

use super::{Context, GuestError, HandlerComponent, Outcome, Run, incompatible};
use crate::error::types;
use crate::sandbox::SandboxConfig;
use crate::web::MAX_BODY;

impl HandlerComponent {
    /// Answers `request` in a fresh instance of a `wasi:http` handler ([`Self::is_http`]);
    /// `https` is the scheme the client used.
    pub async fn handle_http(
        &self,
        request: http::Request<Bytes>,
        https: bool,
        context: &Context,
        sandbox: &SandboxConfig,
        timeout: Duration,
    ) -> Outcome<http::Response<Bytes>> {
        let run = match Run::start(&self.engine, context, sandbox, timeout) {
            Ok(run) => run,
            Err(outcome) => return outcome,
        };
        let Some(pre) = &self.http else {
            let message = format!(
                "`{}` does not export `wasi:http/incoming-handler`",
                self.path.display()
            );
            return run.finish(Ok(Err(incompatible(message))), sandbox.memory_limit);
        };
        let scheme = if https { Scheme::Https } else { Scheme::Http };
        run.call(sandbox.memory_limit, async |store, instantiated| {
            let proxy = pre.instantiate_async(&mut *store).await?;
            *instantiated = Some(Instant::now());
            let body = request.map(|body| {
                Full::new(body).map_err(|never| -> wasmtime_wasi_http::Error { match never {} })
            });
            let incoming = store.data_mut().http().new_incoming_request(scheme, body)?;
            let (sender, receiver) = tokio::sync::oneshot::channel();
            let out = store.data_mut().http().new_response_outparam(sender)?;
            let call = proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut *store, incoming, out);
            // The guest may set the response and write its body before `handle` returns, or
            // after (a body written by a task of its own): both sides progress together.
            let receive = receive(receiver);
            tokio::pin!(call, receive);
            tokio::select! {
                called = &mut call => {
                    called?;
                    Ok(receive.await)
                }
                // A response the host gave up on (too large, broken off) is the outcome: the
                // guest, still writing, would only trap on the closed stream.
                received = &mut receive => {
                    if received.is_ok() {
                        call.await?;
                    }
                    Ok(received)
                }
            }
        })
        .await
    }
}

type Sent = Result<
    hyper::Response<wasmtime_wasi_http::p2::body::HyperOutgoingBody>,
    wasmtime_wasi_http::p2::bindings::http::types::ErrorCode,
>;

/// The response the guest sets, with its body read to the end (at most [`MAX_BODY`]).
async fn receive(
    receiver: tokio::sync::oneshot::Receiver<Sent>,
) -> Result<http::Response<Bytes>, GuestError> {
    let failed = |error_type: &str, message: String| GuestError {
        error_type: error_type.into(),
        error_message: message,
        stack_trace: Vec::new(),
    };
    let response = match receiver.await {
        Ok(Ok(response)) => response,
        Ok(Err(code)) => {
            return Err(failed(
                types::HANDLER_ERROR,
                format!("the handler answered with an error instead of a response: {code:?}"),
            ));
        }
        Err(_) => {
            return Err(failed(
                types::INTERNAL,
                "the handler returned without setting a response (`response-outparam.set`)".into(),
            ));
        }
    };
    let (parts, body) = response.into_parts();
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(http::Response::from_parts(parts, collected.to_bytes())),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(failed(
            types::RESPONSE_TOO_LARGE,
            format!(
                "the response body is over API Gateway's 6 MB limit ({MAX_BODY} bytes): page \
                 the result, or serve large files from S3"
            ),
        )),
        Err(e) => Err(failed(
            types::HANDLER_ERROR,
            format!("the handler's response body broke off: {e}"),
        )),
    }
}
