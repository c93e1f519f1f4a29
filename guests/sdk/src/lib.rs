//! Lambda handlers in Rust for wasm-lamp.
//!
//! A handler is a typed function registered with [`handler!`]:
//!
//! ```ignore
//! use lamp_handler::{Context, Error, handler};
//!
//! #[derive(serde::Deserialize)]
//! struct Event { name: String }
//!
//! fn hello(event: Event, _context: &Context) -> Result<String, Error> {
//!     Ok(format!("Hello, {}", event.name))
//! }
//!
//! handler!(hello);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` as a `cdylib`: the result is
//! a component of the `lamp:handler` world that `host run` and the bootstrap run.
//!
//! Error types this SDK gives are those of the host's one list (`host/src/error.rs`, checked
//! by `tests/it/errors.rs`), the same as the PHP runtime's for the same failure: an event that
//! does not deserialize is `Runtime.InvalidEvent`, a response that does not serialize is
//! `Runtime.MarshalError`, and an error converted with `?` is `Handler.Error`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/handler.wit",
        world: "handler",
        pub_export_macro: true,
        export_macro_name: "__export_handler",
        default_bindings_module: "lamp_handler::bindings",
    });
}

use bindings::lamp::handler::types as wit;

/// What Lambda tells about this invocation (see `wit/handler.wit` for each field).
#[derive(Debug, Clone)]
pub struct Context {
    pub request_id: String,
    pub deadline_ms: u64,
    pub invoked_function_arn: String,
    pub trace_id: Option<String>,
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
    pub function_name: String,
    pub function_version: String,
    pub memory_limit_mb: u32,
    pub log_group_name: String,
    pub log_stream_name: String,
}

impl Context {
    /// Time left before the host stops this invocation.
    pub fn remaining_time(&self) -> Duration {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        Duration::from_millis(self.deadline_ms.saturating_sub(now))
    }
}

impl From<wit::Context> for Context {
    fn from(c: wit::Context) -> Self {
        Self {
            request_id: c.request_id,
            deadline_ms: c.deadline_ms,
            invoked_function_arn: c.invoked_function_arn,
            trace_id: c.trace_id,
            client_context: c.client_context,
            cognito_identity: c.cognito_identity,
            function_name: c.function_name,
            function_version: c.function_version,
            memory_limit_mb: c.memory_limit_mb,
            log_group_name: c.log_group_name,
            log_stream_name: c.log_stream_name,
        }
    }
}

/// A failed invocation: Lambda shows `error_type` and `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub error_type: String,
    pub message: String,
    pub stack_trace: Vec<String>,
}

impl Error {
    /// An error of a given type, e.g. `Error::new("Order.NotFound", "no order 42")`.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        Self { error_type: error_type.into(), message: message.into(), stack_trace: Vec::new() }
    }
}

/// Any standard error converts, so `?` works in handlers; its type is `Handler.Error`.
impl<E: std::error::Error> From<E> for Error {
    fn from(err: E) -> Self {
        let mut stack_trace = Vec::new();
        let mut source = err.source();
        while let Some(cause) = source {
            stack_trace.push(format!("caused by: {cause}"));
            source = cause.source();
        }
        Self { error_type: "Handler.Error".into(), message: err.to_string(), stack_trace }
    }
}

/// What a handler may return: text is the response as is, anything else goes out as JSON.
pub trait IntoResponse {
    fn into_response(self) -> Result<String, Error>;
}

impl IntoResponse for String {
    fn into_response(self) -> Result<String, Error> {
        Ok(self)
    }
}

impl IntoResponse for &str {
    fn into_response(self) -> Result<String, Error> {
        Ok(self.to_string())
    }
}

impl IntoResponse for serde_json::Value {
    fn into_response(self) -> Result<String, Error> {
        Ok(self.to_string())
    }
}

/// A response serialized as JSON: `Ok(Json(order))`.
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Result<String, Error> {
        serde_json::to_string(&self.0).map_err(|e| Error::new("Runtime.MarshalError", format!("the response cannot be encoded as JSON: {e}")))
    }
}

#[doc(hidden)]
pub fn __run<E, O, F>(event: String, context: wit::Context, handler: F) -> Result<String, wit::Error>
where
    E: DeserializeOwned,
    O: IntoResponse,
    F: FnOnce(E, &Context) -> Result<O, Error>,
{
    let to_wit = |e: Error| wit::Error { error_type: e.error_type, error_message: e.message, stack_trace: e.stack_trace };
    let event: E = serde_json::from_str(&event).map_err(|e| {
        to_wit(Error::new("Runtime.InvalidEvent", format!("the event does not have the shape this handler expects: {e}")))
    })?;
    let context = Context::from(context);
    handler(event, &context).and_then(IntoResponse::into_response).map_err(to_wit)
}

/// Registers a function `fn(Event, &Context) -> Result<Output, Error>` as the handler of
/// this component. `Event` is any `serde::Deserialize` type (`serde_json::Value` takes
/// anything); `Output` is text, `serde_json::Value` or [`Json`].
#[macro_export]
macro_rules! handler {
    ($function:path) => {
        struct __LampHandler;

        impl $crate::bindings::Guest for __LampHandler {
            fn handle(
                event: ::std::string::String,
                context: $crate::bindings::lamp::handler::types::Context,
            ) -> ::std::result::Result<::std::string::String, $crate::bindings::lamp::handler::types::Error> {
                $crate::__run(event, context, $function)
            }
        }

        $crate::bindings::__export_handler!(__LampHandler);
    };
}
