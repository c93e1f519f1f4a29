//! A handler component: loaded and linked once, instantiated fresh for every invocation.
//!
//! [`loader`] turns a `.wasm`, `.wasm.xz` or `.cwasm` file into a `Component` (compiling at
//! most once, thanks to the [`cache`]); [`HandlerComponent::link`] makes its `InstancePre`
//! (WASI is all a handler may import); [`HandlerComponent::invoke`] makes a new `Store` and
//! instance per event, enforces its memory and time limits, and turns whatever goes wrong
//! into a [`LambdaError`] ([`failure`]); nothing a guest does can fail the host.
//!
//! A per-deployment snapshot of PHP (an opcode cache made at cold start) would sit beside the
//! loader: another way of obtaining the code, cached the same way.

pub mod cache;
mod failure;
#[cfg(feature = "incremental")]
pub mod functions;
mod http;
pub mod loader;
pub mod slim;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::error::{InitError, LambdaError, types};
use crate::sandbox::{SandboxConfig, State, net, nodelay};

wasmtime::component::bindgen!({
    path: "../wit/handler.wit",
    world: "handler",
    exports: { default: async },
});

pub use lamp::handler::types::Error as GuestError;

/// The PHP runtime's world: a handler that also serves web requests (`lamp:handler/web`).
mod web_world {
    wasmtime::component::bindgen!({
        path: "../wit/handler.wit",
        world: "web-handler",
        exports: { default: async },
        with: { "lamp:handler/types": super::lamp::handler::types },
    });
}

pub use web_world::exports::lamp::handler::web::{Request as WebRequest, Response as WebResponse};

/// A loaded, linked handler, ready to be instantiated per invocation.
pub struct HandlerComponent {
    engine: wasmtime::Engine,
    /// Set when the component exports `lamp:handler/handler` (JSON events).
    pre: Option<HandlerPre<State>>,
    /// Set when the component also exports `lamp:handler/web` (the PHP runtime).
    web: Option<web_world::WebHandlerPre<State>>,
    /// Set when the component exports `wasi:http/incoming-handler` (HTTP requests).
    http: Option<ProxyPre<State>>,
    path: PathBuf,
    /// Time spent linking (WASI into the linker, `instantiate_pre`, export type checks).
    link_time: Duration,
}

/// What one invocation produced.
#[derive(Debug)]
pub struct Outcome<T = String> {
    /// The response body, or the error to report.
    pub result: Result<T, LambdaError>,
    /// Wall time of instantiation plus the `handle` call.
    pub duration: Duration,
    /// The part of `duration` spent making the sandbox, store and instance.
    pub instantiate: Duration,
    /// Peak linear memory of the guest, in bytes.
    pub peak_memory: usize,
}

impl HandlerComponent {
    /// What the host provides a handler: WASI 0.2 (wasi:http included), and nothing else.
    /// Independent of any component, so that it can be built while the component loads.
    pub fn linker(engine: &wasmtime::Engine) -> Result<Linker<State>, InitError> {
        let mut linker = Linker::<State>::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
            .and_then(|()| net::add_lookup_to_linker(&mut linker))
            .and_then(|()| nodelay::add_to_linker(&mut linker))
            .map_err(|e| InitError::new(types::SANDBOX, format!("failed to set up WASI: {e:#}")))?;
        Ok(linker)
    }

    /// Links `component` (read from `path`, named in errors) with `linker` ([`Self::linker`]).
    /// It must export `lamp:handler/handler` or `wasi:http/incoming-handler`.
    pub fn link(
        linker: &Linker<State>,
        component: Component,
        path: &Path,
    ) -> Result<Self, InitError> {
        let started = Instant::now();
        let shown = path.display();
        let instance_pre = linker.instantiate_pre(&component).map_err(|e| {
            InitError::new(
                types::INCOMPATIBLE_HANDLER,
                format!(
                    "`{shown}` imports something the host does not provide ({e:#}); a handler may \
                     import only WASI 0.2 (wasi:cli, wasi:clocks, wasi:filesystem, wasi:http, wasi:io, \
                     wasi:random, wasi:sockets)"
                ),
            )
        })?;
        let web = web_world::WebHandlerPre::new(instance_pre.clone()).ok();
        let http = ProxyPre::new(instance_pre.clone()).ok();
        let pre = match HandlerPre::new(instance_pre) {
            Ok(pre) => Some(pre),
            Err(_) if http.is_some() => None,
            Err(e) => {
                return Err(InitError::new(
                    types::INCOMPATIBLE_HANDLER,
                    format!(
                        "`{shown}` is not a handler ({e:#}): it must export \
                         `lamp:handler/handler@0.1.0` (`handle: func(event: string, context: \
                         context) -> result<string, error>`, wit/handler.wit) for JSON events, or \
                         `wasi:http/incoming-handler@0.2` for HTTP requests"
                    ),
                ));
            }
        };
        Ok(Self {
            engine: linker.engine().clone(),
            pre,
            web,
            http,
            path: path.to_path_buf(),
            link_time: started.elapsed(),
        })
    }

    /// The file the code came from (the `.wasm` a cached `.cwasm` was compiled from).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long linking took when the handler was loaded.
    pub fn link_time(&self) -> Duration {
        self.link_time
    }

    /// Whether the component serves web requests ([`Self::serve`]).
    pub fn is_web(&self) -> bool {
        self.web.is_some()
    }

    /// Whether the component is a `wasi:http` handler ([`Self::handle_http`]).
    pub fn is_http(&self) -> bool {
        self.http.is_some()
    }

    /// Runs one invocation in a fresh instance, ended at `timeout` whatever the guest is
    /// doing (computing, or blocked in a host call such as a sleep or a socket read).
    pub async fn invoke(
        &self,
        event: &str,
        context: &Context,
        sandbox: &SandboxConfig,
        timeout: Duration,
    ) -> Outcome {
        let run = match Run::start(&self.engine, context, sandbox, timeout) {
            Ok(run) => run,
            Err(outcome) => return outcome,
        };
        let Some(pre) = &self.pre else {
            let message = format!(
                "`{}` is a wasi:http handler: it answers HTTP requests (API Gateway, ALB and \
                 Function URL events, `host serve`), not JSON events",
                self.path.display()
            );
            return run.finish(Ok(Err(incompatible(message))), sandbox.memory_limit);
        };
        run.call(sandbox.memory_limit, async |store, instantiated| {
            let handler = pre.instantiate_async(&mut *store).await?;
            *instantiated = Some(Instant::now());
            handler.call_handle(&mut *store, event, context).await
        })
        .await
    }

    /// Serves one web request in a fresh instance (the component must be [`Self::is_web`]),
    /// with the same limits as [`Self::invoke`].
    pub async fn serve(
        &self,
        request: &WebRequest,
        context: &Context,
        sandbox: &SandboxConfig,
        timeout: Duration,
    ) -> Outcome<WebResponse> {
        let run = match Run::start(&self.engine, context, sandbox, timeout) {
            Ok(run) => run,
            Err(outcome) => return outcome,
        };
        let Some(web) = &self.web else {
            let message = format!(
                "`{}` does not export `lamp:handler/web`, so it cannot serve web requests",
                self.path.display()
            );
            return run.finish(Ok(Err(incompatible(message))), sandbox.memory_limit);
        };
        run.call(sandbox.memory_limit, async |store, instantiated| {
            let handler = web.instantiate_async(&mut *store).await?;
            *instantiated = Some(Instant::now());
            handler
                .lamp_handler_web()
                .call_serve(&mut *store, request, context)
                .await
        })
        .await
    }
}

/// The error of a call the component cannot take.
fn incompatible(message: String) -> GuestError {
    GuestError {
        error_type: types::INCOMPATIBLE_HANDLER.into(),
        error_message: message,
        stack_trace: Vec::new(),
    }
}

/// One invocation's store, from its start to its [`Outcome`].
struct Run {
    store: Store<State>,
    started: Instant,
    /// When the instance was ready (the call began).
    instantiated: Option<Instant>,
    timeout: Duration,
}

impl Run {
    /// A new store with the invocation's limits: the memory cap, and the deadline for code
    /// that computes (checked at every epoch tick, where the guest also yields to the other
    /// tasks of the thread); [`within`] bounds the rest. The error is the invocation's outcome.
    fn start<T>(
        engine: &wasmtime::Engine,
        context: &Context,
        sandbox: &SandboxConfig,
        timeout: Duration,
    ) -> Result<Self, Outcome<T>> {
        let started = Instant::now();
        let state = State::new(sandbox, &context.request_id).map_err(|e| {
            let elapsed = started.elapsed();
            Outcome {
                result: Err(LambdaError::new(types::SANDBOX, format!("{e:#}"))),
                duration: elapsed,
                instantiate: elapsed,
                peak_memory: 0,
            }
        })?;
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.limiter);
        let deadline = started + timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                return Ok(UpdateDeadline::Interrupt);
            }
            // tokio's yield lets the thread's timers and other tasks run before the guest
            // goes on (an immediate re-wake would not).
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });
        Ok(Self {
            store,
            started,
            instantiated: None,
            timeout,
        })
    }

    /// Makes the guest call `call` (given the store, and where to note when the instance was
    /// ready) within the deadline, and returns its outcome.
    async fn call<T>(
        mut self,
        memory_limit: usize,
        call: impl AsyncFnOnce(
            &mut Store<State>,
            &mut Option<Instant>,
        ) -> wasmtime::Result<Result<T, GuestError>>,
    ) -> Outcome<T> {
        let called = within(self.timeout, call(&mut self.store, &mut self.instantiated)).await;
        self.finish(called, memory_limit)
    }

    /// The outcome of the call: its result, or whatever went wrong as a [`LambdaError`].
    fn finish<T>(
        self,
        called: wasmtime::Result<Result<T, GuestError>>,
        memory_limit: usize,
    ) -> Outcome<T> {
        let duration = self.started.elapsed();
        let instantiate = self.instantiated.map_or(duration, |at| at - self.started);
        let state = self.store.data();
        let result = match called {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(guest)) => Err(LambdaError {
                error_type: guest.error_type,
                error_message: guest.error_message,
                stack_trace: guest.stack_trace,
            }),
            Err(err) => Err(failure::classify(&err, state, self.timeout, memory_limit)),
        };
        Outcome {
            result,
            duration,
            instantiate,
            peak_memory: state.limiter.peak(),
        }
    }
}

/// Runs a guest call until `timeout`. A guest blocked in a host call (a sleep, a socket read,
/// a name lookup) never reaches an epoch check; here its future is dropped at the deadline,
/// which unwinds the guest and releases what the host call held, and the call ends as an
/// interrupt, like a guest stopped at an epoch check.
async fn within<T>(
    timeout: Duration,
    call: impl Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<T> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result,
        Err(_elapsed) => Err(wasmtime::Error::new(Trap::Interrupt)),
    }
}
