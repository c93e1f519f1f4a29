//! One module per subcommand; each is a clap struct with an `execute` method.

pub mod bootstrap;
pub mod compile;
pub mod php;
pub mod run;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Runs PHP and Rust AWS Lambda handlers as sandboxed WebAssembly components.
///
/// Locally, `host run` invokes a handler once on an event. Deployed in a Lambda layer as
/// `bootstrap`, the same binary is a Lambda custom runtime.
#[derive(Debug, Parser)]
#[command(name = "host", version, propagate_version = true, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

const EXAMPLES: &str = "Examples:
  host run examples/hello-php/src/index.php --event '{\"name\":\"world\"}'
  host run hello.wasm --event-file event.json --memory 256 --timeout 10
  host compile hello.wasm -o hello.cwasm
  host php -r 'echo PHP_VERSION, PHP_EOL;'
  AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001 _HANDLER=index host bootstrap";

#[derive(Debug, Subcommand)]
pub enum Command {
    Run(run::RunCommand),
    Compile(compile::CompileCommand),
    Php(php::PhpCommand),
    Bootstrap(bootstrap::BootstrapCommand),
}

impl Command {
    pub fn execute(self) -> Result<ExitCode> {
        match self {
            Command::Run(c) => c.execute(),
            Command::Compile(c) => c.execute(),
            Command::Php(c) => c.execute(),
            Command::Bootstrap(c) => c.execute(),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn verify_cli() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
