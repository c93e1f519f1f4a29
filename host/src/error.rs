//! Errors at the Lambda boundary: every failure of an invocation or of init becomes a
//! [`LambdaError`], serialized as Lambda's `{"errorType", "errorMessage", "stackTrace"}`;
//! a failure before the first event (resolving, loading, linking) is an [`InitError`].
//!
//! [`types`] is the one list of the error types wasm-lamp itself gives: the host's, the PHP
//! runtime's (`guests/php/runtime`) and the Rust SDK's (`guests/sdk`). A handler's own errors
//! (an exception's class, `Error::new("Order.NotFound", ..)`) are its business and not listed.
//! `tests/it/errors.rs` reads all three sources and fails on a type that is not in the list.

use serde::{Deserialize, Serialize};

/// Every error type wasm-lamp gives, as `Category.Reason`: `Runtime.*` when the runtime (host,
/// PHP runtime or SDK) could not run the handler or deliver its result, `Sandbox.*` when the
/// sandbox stopped it, `Handler.*` for a handler's error that has no type of its own.
pub mod types {
    /// No handler matches `_HANDLER`, or the file given to `host run` does not exist.
    pub const NO_SUCH_HANDLER: &str = "Runtime.NoSuchHandler";
    /// The handler file is not a wasm component we can load (not wasm, a core module, corrupt).
    pub const INVALID_HANDLER: &str = "Runtime.InvalidHandler";
    /// The component is valid but not of the `lamp:handler` world, or imports what we lack.
    pub const INCOMPATIBLE_HANDLER: &str = "Runtime.IncompatibleHandler";
    /// The guest trapped (a Rust panic is a trap too); the stack trace is the wasm backtrace.
    pub const TRAP: &str = "Runtime.Trap";
    /// The guest needed more linear memory than the function's memory size allows.
    pub const OUT_OF_MEMORY: &str = "Runtime.OutOfMemory";
    /// The guest overflowed its wasm stack (deep or endless recursion).
    pub const STACK_OVERFLOW: &str = "Runtime.StackOverflow";
    /// The guest called `exit` instead of returning.
    pub const EXIT: &str = "Runtime.ExitError";
    /// The invocation ran past its deadline.
    pub const TIMEOUT: &str = "Sandbox.Timedout";
    /// The handler's response was too large for the Runtime API.
    pub const RESPONSE_TOO_LARGE: &str = "Runtime.ResponseSizeTooLarge";
    /// The host could not set up the sandbox (a directory vanished, say).
    pub const SANDBOX: &str = "Runtime.SandboxError";
    /// The event is not JSON, or not of the shape the handler takes (PHP runtime, SDK).
    pub const INVALID_EVENT: &str = "Runtime.InvalidEvent";
    /// The handler's result cannot be encoded as JSON (PHP runtime, SDK). Lambda's managed
    /// runtimes use this name for the same failure.
    pub const MARSHAL: &str = "Runtime.MarshalError";
    /// A PHP fatal error (`E_ERROR`, `E_USER_ERROR`, memory_limit exhausted, ...).
    pub const PHP_FATAL: &str = "Runtime.PhpFatalError";
    /// The PHP runtime could not start PHP (a broken build).
    pub const PHP_STARTUP: &str = "Runtime.PhpStartupError";
    /// The PHP runtime failed in its own code (a bug of ours, not of the handler).
    pub const INTERNAL: &str = "Runtime.InternalError";
    /// A Rust handler's error converted with `?` from a standard error (SDK).
    pub const HANDLER_ERROR: &str = "Handler.Error";

    /// The whole list, for the test that holds the host, the PHP runtime and the SDK to it.
    pub const ALL: &[&str] = &[
        NO_SUCH_HANDLER,
        INVALID_HANDLER,
        INCOMPATIBLE_HANDLER,
        TRAP,
        OUT_OF_MEMORY,
        STACK_OVERFLOW,
        EXIT,
        TIMEOUT,
        RESPONSE_TOO_LARGE,
        SANDBOX,
        INVALID_EVENT,
        MARSHAL,
        PHP_FATAL,
        PHP_STARTUP,
        INTERNAL,
        HANDLER_ERROR,
    ];
}

/// A failure to resolve, load or link a handler, with the Lambda error type it is reported as
/// (`/runtime/init/error` in the bootstrap; one line and exit status 2 in `host run`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct InitError {
    pub error_type: &'static str,
    pub message: String,
}

impl InitError {
    pub fn new(error_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            error_type,
            message: message.into(),
        }
    }

    pub fn to_lambda_error(&self) -> LambdaError {
        LambdaError::new(self.error_type, self.message.clone())
    }
}

/// A failed invocation as Lambda reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LambdaError {
    pub error_type: String,
    pub error_message: String,
    #[serde(default)]
    pub stack_trace: Vec<String>,
}

impl LambdaError {
    pub fn new(error_type: impl Into<String>, error_message: impl Into<String>) -> Self {
        Self {
            error_type: error_type.into(),
            error_message: error_message.into(),
            stack_trace: Vec::new(),
        }
    }

    pub fn with_stack_trace(mut self, stack_trace: Vec<String>) -> Self {
        self.stack_trace = stack_trace;
        self
    }

    /// The JSON body Lambda expects.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a struct of strings always serializes")
    }
}

impl std::fmt::Display for LambdaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error_type, self.error_message)
    }
}

impl std::error::Error for LambdaError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_in_lambda_shape() {
        let err = LambdaError::new("Runtime.Trap", "boom").with_stack_trace(vec!["f".into()]);
        assert_eq!(
            err.to_json(),
            r#"{"errorType":"Runtime.Trap","errorMessage":"boom","stackTrace":["f"]}"#
        );
    }
}
