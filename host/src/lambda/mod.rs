//! The Lambda side: the Runtime API ([`api`], one type per endpoint), the poll loop
//! ([`runtime`], fed by a stream of events), deadlines, the bootstrap's settings, the
//! cold-start breakdown and the `REPORT` line.
//!
//! [`run`] is the bootstrap: init (load the [`Function`]; a failure goes to
//! `/runtime/init/error` and the process exits 1), then `AWS_LAMBDA_MAX_CONCURRENCY` pollers
//! until `SIGTERM`, which lets the invocations in flight finish before exiting 0.

pub mod api;
pub mod cold_start;
pub mod deadline;
pub mod report;
pub mod runtime;
pub mod settings;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use tokio::sync::watch;

use api::InitErrorRequest;
use cold_start::ColdStart;
use runtime::{ApiEvents, Runtime, post_with_retry, run_with_incoming};
use settings::Settings;

use crate::function::Function;

/// Serves invocations from the Runtime API until stopped; the exit status of the runtime.
///
/// The function loads (engine, code, WASI's linker: most of init) on a thread of its own,
/// started before the async runtime, so that the runtime's start-up is not part of the cold
/// start where there is a second core.
pub fn run(settings: Settings) -> Result<ExitCode> {
    let startup = crate::since_process_start();
    let Settings {
        api,
        concurrency,
        next_retry,
        spec,
    } = settings;
    let loading = std::thread::Builder::new()
        .name("init".into())
        .spawn(move || Function::load(spec))
        .context("failed to start the init thread")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(serve(api, concurrency, next_retry, startup, loading))
}

async fn serve(
    api: api::RuntimeApi,
    concurrency: usize,
    next_retry: std::time::Duration,
    startup: std::time::Duration,
    loading: std::thread::JoinHandle<Result<Function, crate::error::InitError>>,
) -> Result<ExitCode> {
    let loaded = tokio::task::spawn_blocking(move || loading.join()).await?;
    let function = match loaded.unwrap_or_else(|panic| std::panic::resume_unwind(panic)) {
        Ok(function) => function,
        Err(error) => {
            let error = error.to_lambda_error();
            tracing::error!("init failed: {error}");
            post_with_retry(&api, "init error", || InitErrorRequest { error: &error }).await;
            return Ok(ExitCode::from(1));
        }
    };
    tracing::info!("{}", function.load_path);
    let ready = crate::since_process_start();
    tracing::info!(
        handler = %function.handler.path().display(),
        concurrency,
        init_ms = format!("{:.2}", runtime::ms(ready)),
        "ready"
    );
    let init = function.timings;
    let cold_start = ColdStart {
        startup,
        init,
        ready,
    };
    let runtime = Arc::new(Runtime::new(function, api.clone(), Some(cold_start)));
    let stop = stop_on_sigterm();
    let mut pollers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let incoming = ApiEvents {
            api: api.clone(),
            give_up_after: next_retry,
        };
        pollers.spawn(run_with_incoming(runtime.clone(), incoming, stop.clone()));
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

/// A flag that turns true on `SIGTERM`.
fn stop_on_sigterm() -> watch::Receiver<bool> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
                tracing::info!("SIGTERM: finishing the invocations in flight, then exiting");
                stop_tx.send(true).ok();
            }
            Err(e) => {
                tracing::warn!(
                    "cannot watch for SIGTERM ({e}); the runtime will stop only when killed"
                );
                // Keep the sender: the pollers run until killed.
                std::future::pending::<()>().await;
            }
        }
    });
    stop_rx
}
