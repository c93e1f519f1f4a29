//! `host run`: one invocation of a handler on one event, locally, as Lambda would run it:
//! a [`Function`] loaded from the file, invoked once on a local event.

use std::io::{IsTerminal as _, Read as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::Args;

use super::{GuestFlags, LimitFlags};
use crate::engine;
use crate::function::{Code, Function, FunctionSpec};
use crate::lambda::api::NextEvent;
use crate::lambda::report::Report;
use crate::sandbox::DirMapping;

/// Invokes a handler once on an event, in a fresh sandbox, and prints its result.
///
/// The result goes to stdout exactly as the handler returned it. On error, the error goes to
/// stderr as Lambda's JSON (`errorType`, `errorMessage`, `stackTrace`) and the exit status
/// is 1; bad input (a missing file, malformed JSON, ...) exits with 2. Either way a Lambda
/// `REPORT` line follows on stderr.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  host run hello.wasm --event '{\"name\":\"world\"}'
  host run examples/hello-php/src/index.php --event '{\"name\":\"world\"}'
  echo '{\"name\":\"world\"}' | host run hello.cwasm --memory 256 --timeout 10
  host run handler.wasm --event-file event.json --env STAGE=dev --dir ./data::/data")]
pub struct RunCommand {
    /// The handler: a component (.wasm, or .cwasm from `host compile`) or a PHP script (.php).
    pub module: PathBuf,
    /// The event, as JSON text.
    #[arg(long, conflicts_with = "event_file")]
    pub event: Option<String>,
    /// A file holding the event JSON. Without --event or --event-file, stdin is read
    /// (or `{}` when stdin is a terminal or empty).
    #[arg(long, value_name = "PATH")]
    pub event_file: Option<PathBuf>,
    #[command(flatten)]
    pub limits: LimitFlags,
    #[command(flatten)]
    pub env: GuestFlags,
    /// A host directory the handler may read and write, as HOST or HOST::GUEST.
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    pub dirs: Vec<String>,
    /// The PHP function to call [default: the script's name, e.g. `index` for index.php].
    #[arg(long, value_name = "NAME")]
    pub function: Option<String>,
    /// The PHP runtime component [default: $LAMP_PHP_RUNTIME, the layers, the build output].
    #[arg(long, value_name = "PATH")]
    pub php_runtime: Option<PathBuf>,
}

impl RunCommand {
    pub fn execute(self) -> Result<ExitCode> {
        let event = self.read_event()?;
        let spec = self.spec()?;
        let init_started = Instant::now();
        let function = Function::load(spec)?;
        let init_duration = init_started.elapsed();
        let event = NextEvent::local(event, function.config.timeout);
        let outcome = engine::block_on(function.invoke(&event))?;
        let status = match &outcome.result {
            Ok(response) => {
                print!("{response}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("{}", error.to_json());
                ExitCode::from(1)
            }
        };
        let report = Report {
            request_id: &event.request_id,
            duration: outcome.duration,
            memory_mb: function.config.memory_mb,
            peak_memory: outcome.peak_memory,
            init_duration: Some(init_duration),
        };
        eprintln!("{report}");
        Ok(status)
    }

    /// The function the flags describe.
    fn spec(&self) -> Result<FunctionSpec> {
        let mut spec = FunctionSpec::local(&self.module);
        spec.env = self.env.pairs()?;
        spec.outbound = self.env.outbound()?;
        spec.dirs = self
            .dirs
            .iter()
            .map(|d| DirMapping::parse(d))
            .collect::<Result<Vec<_>>>()?;
        self.limits.apply(&mut spec.config)?;
        if let Code::File {
            php_function,
            php_runtime,
            ..
        } = &mut spec.code
        {
            php_function.clone_from(&self.function);
            php_runtime.clone_from(&self.php_runtime);
        }
        Ok(spec)
    }

    fn read_event(&self) -> Result<String> {
        let (event, origin) = if let Some(event) = &self.event {
            (event.clone(), "--event".to_string())
        } else if let Some(path) = &self.event_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("failed to read the event file `{}`", path.display()))?;
            (text, format!("--event-file {}", path.display()))
        } else if std::io::stdin().is_terminal() {
            ("{}".to_string(), "the default event".to_string())
        } else {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("failed to read the event from stdin")?;
            if text.trim().is_empty() {
                // Nothing piped in (CI, cron): the same as a terminal.
                ("{}".to_string(), "the default event".to_string())
            } else {
                (text, "stdin".to_string())
            }
        };
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&event) {
            bail!(
                "the event from {origin} is not valid JSON ({e}); pass a JSON document, e.g. --event '{{\"name\":\"world\"}}'"
            );
        }
        Ok(event)
    }
}
