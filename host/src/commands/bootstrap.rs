//! `host bootstrap`: the Lambda custom runtime ([`crate::lambda::run`]).

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::lambda::{self, settings::Settings};

/// Serves invocations from the Lambda Runtime API until stopped.
///
/// Configured by the environment Lambda sets: AWS_LAMBDA_RUNTIME_API, _HANDLER,
/// LAMBDA_TASK_ROOT (default /var/task), AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
/// AWS_LAMBDA_MAX_CONCURRENCY, AWS_LAMBDA_LOG_FORMAT, AWS_LAMBDA_LOG_LEVEL; and by ours:
/// LAMP_LAYERS_ROOT (default /opt), LAMP_TIMEOUT (seconds, when the Runtime API gives no
/// usable deadline; default 3), LAMP_NEXT_RETRY_SECONDS (how long `/next` may fail before
/// the runtime gives up; default 60), LAMP_CACHE (compiled code goes to its cwasm/; default $TMPDIR/lamp/cache),
/// LAMP_ALLOW_OUTBOUND (where guests may connect, HOST:PORT,...; default nowhere),
/// LAMP_GUEST_CREDENTIALS (1: guests see the role's credentials; default not).
#[derive(Debug, Default, Args)]
#[command(after_help = "Example, against any Runtime API emulator on port 9001:
  AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001 LAMBDA_TASK_ROOT=examples/hello-php \\
  LAMP_LAYERS_ROOT=dist/opt _HANDLER=index host bootstrap")]
pub struct BootstrapCommand {}

impl BootstrapCommand {
    pub fn execute(self) -> Result<ExitCode> {
        lambda::run(Settings::from_env()?)
    }
}
