//! `host bootstrap`: the Lambda custom runtime.
//!
//! Init (before the first `/next`): resolve `_HANDLER`, load and link the handler. A failure
//! there is posted to `/runtime/init/error` and the process exits non-zero. Then each of
//! `AWS_LAMBDA_MAX_CONCURRENCY` pollers loops: `/next`, a fresh instance for the event, post
//! the response or the error. Nothing is lost: posts are retried with backoff, a response
//! over the API's limit becomes an error for that request, `/next` failures are retried for
//! a bounded time, and `SIGTERM` lets the invocations in flight finish before exiting 0.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::Args;
use tokio::sync::watch;

use crate::context::{DEFAULT_TIMEOUT, FunctionConfig, remaining};
use crate::engine::{self, EngineOptions};
use crate::error::{LambdaError, types};
use crate::handler::{Context, HandlerComponent, InitError};
use crate::loader::{LoadPath, load_cached};
use crate::resolve::{GUEST_LAYERS_ROOT, GUEST_TASK_ROOT, Resolved, resolve_handler};
use crate::runtime_api::{
    EventErrorRequest, EventResponseRequest, InitErrorRequest, NextEvent, PostOutcome, RuntimeApi,
};
use crate::sandbox::{DirMapping, SandboxConfig};

/// Serves invocations from the Lambda Runtime API until stopped.
///
/// Configured by the environment Lambda sets: AWS_LAMBDA_RUNTIME_API, _HANDLER,
/// LAMBDA_TASK_ROOT (default /var/task), AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
/// AWS_LAMBDA_MAX_CONCURRENCY, AWS_LAMBDA_LOG_FORMAT, AWS_LAMBDA_LOG_LEVEL; and by ours:
/// LAMP_LAYERS_ROOT (default /opt), LAMP_TIMEOUT (seconds, when the Runtime API gives no
/// usable deadline; default 3), LAMP_NEXT_RETRY_SECONDS (how long `/next` may fail before
/// the runtime gives up; default 60).
#[derive(Debug, Default, Args)]
#[command(after_help = "Example, against any Runtime API emulator on port 9001:
  AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001 LAMBDA_TASK_ROOT=examples/hello-php \\
  LAMP_LAYERS_ROOT=dist/opt _HANDLER=index host bootstrap")]
pub struct BootstrapCommand {}

/// Variables of the runtime's environment never passed to guests: credentials (a guest has
/// no network to use them on), the Runtime API address, and the host's own plumbing.
const HIDDEN_ENV: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "PATH",
    "LD_LIBRARY_PATH",
    "HOME",
    "PWD",
    "SHLVL",
    "_",
];

struct Settings {
    api: RuntimeApi,
    handler_name: String,
    task_root: PathBuf,
    layers_root: PathBuf,
    concurrency: usize,
    timeout: Duration,
    next_retry: Duration,
    function: FunctionConfig,
}

impl Settings {
    fn from_env() -> Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let api_address = var("AWS_LAMBDA_RUNTIME_API")
            .context("AWS_LAMBDA_RUNTIME_API is not set; `host bootstrap` runs under Lambda or a Runtime API emulator (use `host run` to invoke a handler locally)")?;
        let seconds = |name: &str, default: Duration| -> Result<Duration> {
            match var(name) {
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .map(Duration::from_secs_f64)
                    .with_context(|| format!("{name}={v} is not a positive number of seconds")),
                None => Ok(default),
            }
        };
        let concurrency = match var("AWS_LAMBDA_MAX_CONCURRENCY") {
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1024).contains(n))
                .with_context(|| {
                    format!("AWS_LAMBDA_MAX_CONCURRENCY={v} is not a number from 1 to 1024")
                })?,
            None => 1,
        };
        let handler_name = var("_HANDLER").unwrap_or_default();
        Ok(Self {
            api: RuntimeApi::new(&api_address)?,
            function: FunctionConfig::from_env(&handler_name),
            task_root: var("LAMBDA_TASK_ROOT")
                .unwrap_or_else(|| GUEST_TASK_ROOT.into())
                .into(),
            layers_root: var("LAMP_LAYERS_ROOT")
                .unwrap_or_else(|| GUEST_LAYERS_ROOT.into())
                .into(),
            timeout: seconds("LAMP_TIMEOUT", DEFAULT_TIMEOUT)?,
            next_retry: seconds("LAMP_NEXT_RETRY_SECONDS", Duration::from_secs(60))?,
            handler_name,
            concurrency,
        })
    }
}

/// Where the time of a cold start went, logged once after the first response is posted
/// (`cold start` at INFO; `lamp-bench` reports the medians).
#[derive(Debug, Default, Clone, Copy)]
struct ColdStart {
    /// `main` → settings read (argument parsing, logging, async runtime).
    startup: Duration,
    /// Finding the handler file from `_HANDLER`.
    resolve: Duration,
    /// Creating the wasmtime engine (and reserving the pooling allocator's slots).
    engine: Duration,
    /// Mapping a `.cwasm` (or compiling a `.wasm`).
    load: Duration,
    /// Linking WASI and building the `InstancePre`.
    link: Duration,
    /// Preparing the sandbox settings (the guests' /tmp, environment, directories).
    sandbox: Duration,
    /// `main` → ready to poll.
    init: Duration,
}

/// What every invocation shares.
struct Runtime {
    settings: Settings,
    handler: HandlerComponent,
    sandbox: SandboxConfig,
    warned_deadline: AtomicBool,
    /// Init's breakdown, until the first invocation logs it with its own.
    cold_start: std::sync::Mutex<Option<ColdStart>>,
    /// Keeps the guests' private /tmp alive for the life of the process.
    _guest_tmp: tempfile::TempDir,
}

impl BootstrapCommand {
    pub fn execute(self) -> Result<ExitCode> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            // Guests run on blocking threads, whose stacks must hold the wasm stack.
            .thread_stack_size(engine::GUEST_THREAD_STACK)
            .enable_all()
            .build()
            .context("failed to start the async runtime")?;
        runtime.block_on(serve())
    }
}

async fn serve() -> Result<ExitCode> {
    let settings = Settings::from_env()?;
    let startup = crate::since_process_start();
    let api = settings.api.clone();
    let runtime = match tokio::task::spawn_blocking(move || init(settings, startup)).await? {
        Ok(runtime) => Arc::new(runtime),
        Err(error) => {
            tracing::error!("init failed: {error}");
            post_with_retry(&api, "init error", || InitErrorRequest { error: &error }).await;
            return Ok(ExitCode::from(1));
        }
    };
    tracing::info!(
        handler = %runtime.handler.path().display(),
        concurrency = runtime.settings.concurrency,
        init_ms = format!("{:.2}", ms(crate::since_process_start())),
        "ready"
    );
    if let Some(cold) = runtime.cold_start.lock().unwrap().as_mut() {
        cold.init = crate::since_process_start();
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_sigterm().await;
        tracing::info!("SIGTERM: finishing the invocations in flight, then exiting");
        stop_tx.send(true).ok();
    });
    let mut pollers = tokio::task::JoinSet::new();
    for _ in 0..runtime.settings.concurrency {
        pollers.spawn(poll(runtime.clone(), stop_rx.clone()));
    }
    let mut status = ExitCode::SUCCESS;
    while let Some(done) = pollers.join_next().await {
        if let Err(e) = done.map_err(anyhow::Error::from).and_then(|r| r) {
            tracing::error!("{e:#}");
            status = ExitCode::from(1);
            pollers.abort_all();
        }
    }
    Ok(status)
}

async fn wait_for_sigterm() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(e) => {
            tracing::warn!(
                "cannot watch for SIGTERM ({e}); the runtime will stop only when killed"
            );
            std::future::pending::<()>().await;
        }
    }
}

/// Resolves and loads the handler: everything slow happens here, before the first event.
fn init(settings: Settings, startup: Duration) -> Result<Runtime, LambdaError> {
    let init_error = |e: InitError| e.to_lambda_error();
    let mut cold = ColdStart {
        startup,
        ..ColdStart::default()
    };
    let mut phase = Instant::now();
    let mut lap = || {
        let now = Instant::now();
        std::mem::replace(&mut phase, now).elapsed()
    };
    let resolved = resolve_handler(
        &settings.handler_name,
        &settings.task_root,
        &settings.layers_root,
    )
    .map_err(init_error)?;
    cold.resolve = lap();
    let engine = engine::build_engine(EngineOptions {
        max_instances: settings.concurrency as u32,
    })
    .map_err(|e| LambdaError::new(types::SANDBOX, format!("{e:#}")))?;
    cold.engine = lap();
    let tmp_root = std::env::temp_dir().join("lamp");
    let component_path = match &resolved {
        Resolved::Component { path } => path.clone(),
        Resolved::Php(php) => php.runtime.clone(),
    };
    let (handler, load_path) =
        load_cached(&engine, &component_path, Some(&tmp_root.join("cache"))).map_err(init_error)?;
    cold.link = handler.link_time();
    cold.load = lap().saturating_sub(cold.link);
    match &load_path {
        LoadPath::Shipped(p) => tracing::info!("loaded precompiled `{}`", p.display()),
        LoadPath::Cached { wasm, cwasm } => tracing::info!(
            "loaded `{}` compiled earlier, from `{}`",
            wasm.display(),
            cwasm.display()
        ),
        LoadPath::Compiled { wasm, cached } => tracing::info!(
            "compiled `{}`{}",
            wasm.display(),
            cached
                .as_ref()
                .map(|p| format!(", cached at `{}`", p.display()))
                .unwrap_or_default()
        ),
    }

    std::fs::create_dir_all(&tmp_root).map_err(|e| {
        LambdaError::new(
            types::SANDBOX,
            format!("failed to create `{}`: {e}", tmp_root.display()),
        )
    })?;
    let guest_tmp = tempfile::Builder::new()
        .prefix("tmp-")
        .tempdir_in(&tmp_root)
        .map_err(|e| {
            LambdaError::new(
                types::SANDBOX,
                format!("failed to create the guests' /tmp: {e}"),
            )
        })?;
    let function = &settings.function;
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| !HIDDEN_ENV.contains(&k.as_str()) && !k.starts_with("LAMP_"))
        .collect();
    let standard = function.guest_env(&settings.handler_name);
    env.retain(|(k, _)| !standard.iter().any(|(s, _)| s == k));
    env.extend(standard);
    let mut dirs = vec![DirMapping {
        host: guest_tmp.path().into(),
        guest: "/tmp".into(),
        writable: true,
    }];
    if settings.task_root.is_dir() {
        dirs.push(DirMapping::read_only(&settings.task_root, GUEST_TASK_ROOT));
    }
    if settings.layers_root.is_dir() {
        dirs.push(DirMapping::read_only(
            &settings.layers_root,
            GUEST_LAYERS_ROOT,
        ));
    }
    if let Resolved::Php(php) = &resolved {
        env.extend(php.guest_env());
    }
    let sandbox = SandboxConfig {
        env,
        dirs,
        memory_limit: (function.memory_mb as usize) << 20,
    };
    cold.sandbox = lap();
    Ok(Runtime {
        settings,
        handler,
        sandbox,
        warned_deadline: AtomicBool::new(false),
        cold_start: std::sync::Mutex::new(Some(cold)),
        _guest_tmp: guest_tmp,
    })
}

/// One poller: `/next`, invoke, post, until told to stop or `/next` fails for too long.
async fn poll(runtime: Arc<Runtime>, mut stop: watch::Receiver<bool>) -> Result<()> {
    let api = &runtime.settings.api;
    let mut failing_since: Option<Instant> = None;
    let mut backoff = Backoff::new();
    loop {
        let next = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => return Ok(()),
            next = api.next_event() => next,
        };
        let event = match next {
            Ok(event) => {
                failing_since = None;
                backoff = Backoff::new();
                event
            }
            Err(e) => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= runtime.settings.next_retry {
                    anyhow::bail!(
                        "giving up: /invocation/next has failed for {:.0} s (last: {e:#}); is the Runtime API at {} up?",
                        since.elapsed().as_secs_f64(),
                        api.base()
                    );
                }
                tracing::warn!("/invocation/next failed, retrying: {e:#}");
                backoff.wait().await;
                continue;
            }
        };
        handle_event(&runtime, event).await;
    }
}

async fn handle_event(runtime: &Arc<Runtime>, event: NextEvent) {
    let settings = &runtime.settings;
    let request_id = event.request_id.clone();
    if let Some(raw) = &event.bad_deadline {
        if !runtime.warned_deadline.swap(true, Ordering::Relaxed) {
            tracing::warn!(request_id = %request_id, "Lambda-Runtime-Deadline-Ms `{raw}` is not a plausible epoch time in ms; using the configured timeout ({:.1} s) for this and later events", settings.timeout.as_secs_f64());
        }
    }
    let timeout = match event.deadline_ms {
        Some(deadline) => remaining(deadline),
        None => settings.timeout,
    };
    let deadline_ms = event
        .deadline_ms
        .unwrap_or_else(|| crate::context::epoch_ms(std::time::SystemTime::now() + timeout));
    let function = &settings.function;
    let context = Context {
        request_id: request_id.clone(),
        deadline_ms,
        invoked_function_arn: if event.invoked_function_arn.is_empty() {
            function.local_arn()
        } else {
            event.invoked_function_arn.clone()
        },
        trace_id: event.trace_id.clone(),
        client_context: event.client_context.clone(),
        cognito_identity: event.cognito_identity.clone(),
        function_name: function.function_name.clone(),
        function_version: function.function_version.clone(),
        memory_limit_mb: function.memory_mb,
        log_group_name: function.log_group_name.clone(),
        log_stream_name: function.log_stream_name.clone(),
    };
    let invoking = runtime.clone();
    let body = event.body;
    let outcome = tokio::task::spawn_blocking(move || {
        // _X_AMZN_TRACE_ID is per invocation: it goes into this sandbox's environment only
        // (setting the process's would race between concurrent invocations).
        let mut sandbox = invoking.sandbox.clone();
        sandbox.env.retain(|(k, _)| k != "_X_AMZN_TRACE_ID");
        if let Some(trace) = &context.trace_id {
            sandbox.env.push(("_X_AMZN_TRACE_ID".into(), trace.clone()));
        }
        invoking.handler.invoke(&body, &context, &sandbox, timeout)
    })
    .await;
    let mut first_invocation = None;
    let result = match outcome {
        Ok(outcome) => {
            tracing::debug!(request_id = %request_id, duration_ms = %format!("{:.3}", ms(outcome.duration)), instantiate_ms = %format!("{:.3}", ms(outcome.instantiate)), peak_mb = outcome.peak_memory >> 20, "invocation done");
            first_invocation = Some((outcome.instantiate, outcome.duration));
            outcome.result
        }
        Err(join) => Err(LambdaError::new(
            types::SANDBOX,
            format!("the invocation thread failed: {join}"),
        )),
    };
    let api = &settings.api;
    match result {
        Ok(response) => {
            let posted = post_with_retry(api, &request_id, || EventResponseRequest {
                request_id: &request_id,
                body: &response,
            })
            .await;
            if posted == Some(PostOutcome::TooLarge) {
                let error = LambdaError::new(
                    types::RESPONSE_TOO_LARGE,
                    format!(
                        "the response ({} bytes) is larger than the Runtime API accepts; return less, or store it (e.g. in S3) and return a reference",
                        response.len()
                    ),
                );
                post_with_retry(api, &request_id, || EventErrorRequest {
                    request_id: &request_id,
                    error: &error,
                })
                .await;
            }
        }
        Err(error) => {
            tracing::info!(request_id = %request_id, "invocation failed: {error}");
            post_with_retry(api, &request_id, || EventErrorRequest {
                request_id: &request_id,
                error: &error,
            })
            .await;
        }
    }
    let cold = runtime.cold_start.lock().unwrap().take();
    if let (Some(cold), Some((instantiate, duration))) = (cold, first_invocation) {
        log_cold_start(&cold, instantiate, duration, &request_id);
    }
}

/// One line with where the cold start went, from `main` to the first result posted.
fn log_cold_start(cold: &ColdStart, instantiate: Duration, duration: Duration, request_id: &str) {
    let f = |d: Duration| format!("{:.3}", ms(d));
    tracing::info!(
        request_id = %request_id,
        startup_ms = %f(cold.startup),
        resolve_ms = %f(cold.resolve),
        engine_ms = %f(cold.engine),
        load_ms = %f(cold.load),
        link_ms = %f(cold.link),
        sandbox_ms = %f(cold.sandbox),
        init_ms = %f(cold.init),
        instantiate_ms = %f(instantiate),
        handle_ms = %f(duration.saturating_sub(instantiate)),
        total_ms = %f(crate::since_process_start()),
        "cold start"
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Posts, retrying connection failures and 5xx with backoff. A 4xx is final: it is logged
/// and the runtime moves on (Lambda answers 400 to a second result for one request id).
async fn post_with_retry<R: crate::runtime_api::IntoRequest>(
    api: &RuntimeApi,
    what: &str,
    make: impl Fn() -> R,
) -> Option<PostOutcome> {
    const ATTEMPTS: u32 = 8;
    let mut backoff = Backoff::new();
    for attempt in 1..=ATTEMPTS {
        match api.post(make()).await {
            Ok(PostOutcome::Rejected(status, body)) => {
                tracing::warn!(request_id = %what, "the Runtime API refused the post ({status}): {body}; moving on");
                return Some(PostOutcome::Rejected(status, body));
            }
            Ok(outcome) => return Some(outcome),
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(request_id = %what, "post failed (attempt {attempt} of {ATTEMPTS}), retrying: {e:#}");
                backoff.wait().await;
            }
            Err(e) => {
                tracing::error!(request_id = %what, "post failed {ATTEMPTS} times, giving up on it: {e:#}");
            }
        }
    }
    None
}

/// Exponential backoff from 10 ms, doubling up to 1 s.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self {
            next: Duration::from_millis(10),
        }
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(Duration::from_secs(1));
    }
}
