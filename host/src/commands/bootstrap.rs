//! `host bootstrap`: the Lambda custom runtime loop.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

/// Serves invocations from the Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API`) until stopped.
#[derive(Debug, Default, Args)]
pub struct BootstrapCommand {}

impl BootstrapCommand {
    pub fn execute(self) -> Result<ExitCode> {
        anyhow::bail!("bootstrap is not implemented yet")
    }
}
