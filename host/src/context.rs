//! The function's configuration (from the `AWS_LAMBDA_*` environment, or made up for a local
//! run) and the per-invocation [`Context`] handed to the guest.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::handler::Context;

/// Lambda's default memory size, used when neither `--memory` nor the environment says.
pub const DEFAULT_MEMORY_MB: u32 = 128;
/// Lambda's default timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// What Lambda tells the runtime about the function through its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionConfig {
    pub function_name: String,
    pub function_version: String,
    pub memory_mb: u32,
    pub log_group_name: String,
    pub log_stream_name: String,
    pub region: String,
}

impl FunctionConfig {
    /// Reads the configuration Lambda sets, falling back to local defaults for what is
    /// missing (`default_name` names the function when `AWS_LAMBDA_FUNCTION_NAME` is unset).
    pub fn from_env(default_name: &str) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let function_name =
            var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|| default_name.to_string());
        let memory_mb = var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_MEMORY_MB);
        Self {
            log_group_name: var("AWS_LAMBDA_LOG_GROUP_NAME")
                .unwrap_or_else(|| format!("/aws/lambda/{function_name}")),
            log_stream_name: var("AWS_LAMBDA_LOG_STREAM_NAME")
                .unwrap_or_else(|| "local".to_string()),
            function_version: var("AWS_LAMBDA_FUNCTION_VERSION")
                .unwrap_or_else(|| "$LATEST".to_string()),
            region: var("AWS_REGION").unwrap_or_else(|| "us-east-1".to_string()),
            function_name,
            memory_mb,
        }
    }

    /// The ARN a local invocation pretends to come from.
    pub fn local_arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:000000000000:function:{}",
            self.region, self.function_name
        )
    }

    /// A context for a local invocation that must end within `timeout`.
    pub fn local_context(&self, request_id: String, timeout: Duration) -> Context {
        Context {
            request_id,
            deadline_ms: epoch_ms(SystemTime::now() + timeout),
            invoked_function_arn: self.local_arn(),
            trace_id: None,
            client_context: None,
            cognito_identity: None,
            function_name: self.function_name.clone(),
            function_version: self.function_version.clone(),
            memory_limit_mb: self.memory_mb,
            log_group_name: self.log_group_name.clone(),
            log_stream_name: self.log_stream_name.clone(),
        }
    }

    /// The environment every guest sees: Lambda's documented runtime variables, nothing of
    /// the host's. `handler` is the `_HANDLER` value.
    pub fn guest_env(&self, handler: &str) -> Vec<(String, String)> {
        vec![
            (
                "AWS_LAMBDA_FUNCTION_NAME".into(),
                self.function_name.clone(),
            ),
            (
                "AWS_LAMBDA_FUNCTION_VERSION".into(),
                self.function_version.clone(),
            ),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
                self.memory_mb.to_string(),
            ),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME".into(),
                self.log_group_name.clone(),
            ),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME".into(),
                self.log_stream_name.clone(),
            ),
            ("AWS_REGION".into(), self.region.clone()),
            ("AWS_DEFAULT_REGION".into(), self.region.clone()),
            (
                "LAMBDA_TASK_ROOT".into(),
                crate::resolve::GUEST_TASK_ROOT.into(),
            ),
            ("_HANDLER".into(), handler.into()),
            ("TMPDIR".into(), "/tmp".into()),
            ("TZ".into(), ":UTC".into()),
        ]
    }
}

/// Milliseconds since the Unix epoch.
pub fn epoch_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Time left until a deadline in epoch milliseconds (zero if it has passed).
pub fn remaining(deadline_ms: u64) -> Duration {
    Duration::from_millis(deadline_ms.saturating_sub(epoch_ms(SystemTime::now())))
}
