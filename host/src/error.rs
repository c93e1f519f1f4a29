//! Errors at the Lambda boundary: every failure of an invocation or of init becomes a
//! [`LambdaError`], serialized as Lambda's `{"errorType", "errorMessage", "stackTrace"}`.

use serde::{Deserialize, Serialize};

/// Error types the host itself produces, as `Category.Reason`.
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
