//! The command line: one module per subcommand, each a clap struct with an `execute` method
//! that hands over to the library; flags shared by several commands are flattened from here.

pub mod bootstrap;
pub mod compile;
pub mod php;
pub mod run;
#[cfg(feature = "serve")]
pub mod serve;

use std::process::ExitCode;

use anyhow::Result;
use clap::{ArgAction, Args, Parser, Subcommand};

use crate::logging::{self, LogFormat};

/// Runs PHP and Rust AWS Lambda handlers as sandboxed WebAssembly components.
///
/// Locally, `host run` invokes a handler once on an event. Deployed in a Lambda layer as
/// `bootstrap`, the same binary is a Lambda custom runtime.
#[derive(Debug, Parser)]
#[command(name = "host", version, propagate_version = true, after_help = EXAMPLES)]
pub struct Cli {
    /// More log lines on stderr: -v for debug (what was loaded from where, and how long it
    /// took), -vv for trace. Given before the command (`host -v run ...`), so that `host php -v`
    /// stays PHP's. The bootstrap reads AWS_LAMBDA_LOG_LEVEL instead.
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Shown after `host --help`; `tests/it/cli.rs` checks that each of these parses.
pub const EXAMPLES: &str = "Examples:
  host run examples/hello-php/src/index.php --event '{\"name\":\"world\"}'
  host run hello.wasm --event-file event.json --memory 256 --timeout 10
  host serve examples/lamp-app/public --listen 127.0.0.1:8080
  host compile hello.wasm -o hello.cwasm
  host php -r 'echo PHP_VERSION, PHP_EOL;'
  AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001 _HANDLER=index host bootstrap";

#[derive(Debug, Subcommand)]
pub enum Command {
    Run(run::RunCommand),
    #[cfg(feature = "serve")]
    Serve(serve::ServeCommand),
    Compile(compile::CompileCommand),
    Php(php::PhpCommand),
    Bootstrap(bootstrap::BootstrapCommand),
}

impl Command {
    pub fn execute(self) -> Result<ExitCode> {
        match self {
            Command::Run(c) => c.execute(),
            #[cfg(feature = "serve")]
            Command::Serve(c) => c.execute(),
            Command::Compile(c) => c.execute(),
            Command::Php(c) => c.execute(),
            Command::Bootstrap(c) => c.execute(),
        }
    }

    /// Sets up logging: the bootstrap as Lambda says (`AWS_LAMBDA_LOG_FORMAT`,
    /// `AWS_LAMBDA_LOG_LEVEL`), the other commands as `-v` says.
    pub fn init_logging(&self, verbose: u8) {
        let level = match verbose {
            0 => tracing::Level::INFO,
            1 => tracing::Level::DEBUG,
            _ => tracing::Level::TRACE,
        };
        match self {
            Command::Bootstrap(_) => logging::init_from_lambda_env(),
            _ => logging::init(LogFormat::Text, level),
        }
    }
}

/// What a guest may see and reach, beyond nothing: the flags of the commands that run one.
#[derive(Debug, Default, Args)]
pub struct GuestFlags {
    /// An environment variable for the guest, as NAME=VALUE (repeatable). Nothing of the
    /// host's own environment is passed (see `host/src/sandbox/env.rs`).
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// A destination the guest may connect to, as HOST:PORT (repeatable): a name
    /// (db.internal:3306), a wildcard (*.amazonaws.com:443), an IP ([::1]:8080), a network
    /// (10.0.0.0/16:5432) or * for any host; PORT may be *. Without it the guest has no
    /// network (see `host/src/sandbox/net.rs`).
    #[arg(long = "allow-outbound", value_name = "HOST:PORT")]
    pub allow_outbound: Vec<String>,
}

impl GuestFlags {
    /// The variables, checked.
    pub fn pairs(&self) -> Result<Vec<(String, String)>> {
        crate::sandbox::env::parse_pairs(&self.env)
    }

    /// The network policy, checked.
    pub fn outbound(&self) -> Result<crate::sandbox::NetPolicy> {
        crate::sandbox::NetPolicy::parse(
            self.allow_outbound.iter().map(String::as_str),
            "--allow-outbound",
        )
    }
}

/// The limits of each invocation, for the commands that run a function.
#[derive(Debug, Default, Args)]
pub struct LimitFlags {
    /// Memory size in MB [default: AWS_LAMBDA_FUNCTION_MEMORY_SIZE, else 128].
    #[arg(long, value_name = "MB", value_parser = clap::value_parser!(u32).range(1..=10_240))]
    pub memory: Option<u32>,
    /// Timeout in seconds, fractions allowed [default: 3 for `run`, as Lambda's; 30 for
    /// `serve`, as API Gateway's].
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
}

impl LimitFlags {
    /// Sets the function's memory and timeout from the flags that were given.
    pub fn apply(&self, config: &mut crate::function::FunctionConfig) -> Result<()> {
        match self.timeout {
            Some(secs) if secs.is_finite() && secs > 0.0 => {
                config.timeout = std::time::Duration::from_secs_f64(secs)
            }
            Some(secs) => anyhow::bail!("--timeout {secs}: give a positive number of seconds"),
            None => {}
        }
        if let Some(mb) = self.memory {
            config.memory_mb = mb;
        }
        Ok(())
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
