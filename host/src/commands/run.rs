//! `host run`: one invocation of a handler on one event, locally, as Lambda would run it.

use std::io::{IsTerminal as _, Read as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Args;

use crate::context::{DEFAULT_TIMEOUT, FunctionConfig};
use crate::engine::{self, EngineOptions};
use crate::loader::load_cached;
use crate::report::Report;
use crate::resolve::{self, GUEST_TASK_ROOT};
use crate::sandbox::{DirMapping, SandboxConfig};

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
    /// Memory size in MB [default: AWS_LAMBDA_FUNCTION_MEMORY_SIZE, else 128].
    #[arg(long, value_name = "MB", value_parser = clap::value_parser!(u32).range(1..=10_240))]
    pub memory: Option<u32>,
    /// Timeout in seconds (fractions allowed) [default: 3].
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// An environment variable for the handler; the host's own environment is not passed.
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
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
        let env = parse_env(&self.env)?;
        let dirs = self
            .dirs
            .iter()
            .map(|d| DirMapping::parse(d))
            .collect::<Result<Vec<_>>>()?;
        let timeout = match self.timeout {
            Some(secs) if secs.is_finite() && secs > 0.0 => Duration::from_secs_f64(secs),
            Some(secs) => bail!("--timeout {secs}: give a positive number of seconds"),
            None => DEFAULT_TIMEOUT,
        };

        let init_started = Instant::now();
        let is_php = self.module.extension().is_some_and(|ext| ext == "php");
        let (component_path, php) = if is_php {
            let php = resolve::php_script(
                &self.module,
                self.function.as_deref(),
                self.php_runtime.as_deref(),
                std::path::Path::new(resolve::GUEST_LAYERS_ROOT),
            )?;
            (php.runtime.clone(), Some(php))
        } else {
            (self.module.clone(), None)
        };
        let engine = engine::build_engine(EngineOptions { max_instances: 1 })?;
        // Compiling PHP takes seconds; the compiled code is cached for the next run.
        let (handler, _) = load_cached(&engine, &component_path, local_cache_dir().as_deref())?;
        let init_duration = init_started.elapsed();

        let name = self
            .module
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut function = FunctionConfig::from_env(&name);
        if let Some(mb) = self.memory {
            function.memory_mb = mb;
        }
        let private_tmp = tempfile::Builder::new()
            .prefix("lamp-tmp-")
            .tempdir()
            .context("failed to create the handler's private /tmp")?;
        let mut sandbox = SandboxConfig {
            env: function.guest_env(&name),
            dirs: vec![DirMapping {
                host: private_tmp.path().into(),
                guest: "/tmp".into(),
                writable: true,
            }],
            memory_limit: (function.memory_mb as usize) << 20,
        };
        match &php {
            Some(php) => {
                sandbox
                    .dirs
                    .push(DirMapping::read_only(&php.task_root, GUEST_TASK_ROOT));
                sandbox.env.extend(php.guest_env());
            }
            None => {
                let dir = self
                    .module
                    .canonicalize()?
                    .parent()
                    .map(PathBuf::from)
                    .unwrap_or_default();
                sandbox
                    .dirs
                    .push(DirMapping::read_only(dir, GUEST_TASK_ROOT));
            }
        }
        sandbox.env.extend(env);
        sandbox.dirs.extend(dirs);

        let request_id = uuid::Uuid::new_v4().to_string();
        let context = function.local_context(request_id.clone(), timeout);
        let outcome =
            engine::on_guest_stack(|| handler.invoke(&event, &context, &sandbox, timeout));
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
            request_id: &request_id,
            duration: outcome.duration,
            memory_mb: function.memory_mb,
            peak_memory: outcome.peak_memory,
            init_duration: Some(init_duration),
        };
        eprintln!("{report}");
        Ok(status)
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

/// Parses `K=V` pairs given to `--env`.
fn parse_env(pairs: &[String]) -> Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("`--env {pair}`: give the variable as NAME=VALUE"),
        })
        .collect()
}

/// Where `host run` caches compiled handlers: `$XDG_CACHE_HOME/wasm-lamp/cwasm`, else
/// `~/.cache/wasm-lamp/cwasm`; none when neither is known.
fn local_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("wasm-lamp").join("cwasm"))
}
