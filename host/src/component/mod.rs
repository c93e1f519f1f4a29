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
pub mod loader;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmtime::Store;
use wasmtime::component::{Component, Linker};

use crate::engine::ticks_for;
use crate::error::{InitError, LambdaError, types};
use crate::sandbox::{SandboxConfig, State};

wasmtime::component::bindgen!({
    path: "../wit/handler.wit",
    world: "handler",
});

pub use lamp::handler::types::Error as GuestError;

/// The PHP runtime's world: a handler that also serves web requests (`lamp:handler/web`).
mod web_world {
    wasmtime::component::bindgen!({
        path: "../wit/handler.wit",
        world: "web-handler",
        with: { "lamp:handler/types": super::lamp::handler::types },
    });
}

pub use web_world::exports::lamp::handler::web::{Request as WebRequest, Response as WebResponse};

/// A loaded, linked handler, ready to be instantiated per invocation.
pub struct HandlerComponent {
    engine: wasmtime::Engine,
    pre: HandlerPre<State>,
    /// Set when the component also exports `lamp:handler/web` (the PHP runtime).
    web: Option<web_world::WebHandlerPre<State>>,
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
    /// Links `component` (read from `path`, named in errors) against what the host provides:
    /// WASI 0.2, and nothing else.
    pub fn link(
        engine: &wasmtime::Engine,
        component: Component,
        path: &Path,
    ) -> Result<Self, InitError> {
        let started = Instant::now();
        let shown = path.display();
        let mut linker = Linker::<State>::new(engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| InitError::new(types::SANDBOX, format!("failed to set up WASI: {e:#}")))?;
        let instance_pre = linker.instantiate_pre(&component).map_err(|e| {
            InitError::new(
                types::INCOMPATIBLE_HANDLER,
                format!(
                    "`{shown}` imports something the host does not provide ({e:#}); a handler may \
                     import only WASI 0.2 (wasi:cli, wasi:clocks, wasi:filesystem, wasi:io, wasi:random)"
                ),
            )
        })?;
        let web = web_world::WebHandlerPre::new(instance_pre.clone()).ok();
        let pre = HandlerPre::new(instance_pre).map_err(|e| {
            InitError::new(
                types::INCOMPATIBLE_HANDLER,
                format!(
                    "`{shown}` is not a handler of world `lamp:handler/handler@0.1.0` ({e:#}); it must \
                     export `handle: func(event: string, context: context) -> result<string, error>` \
                     as declared in wit/handler.wit"
                ),
            )
        })?;
        Ok(Self {
            engine: engine.clone(),
            pre,
            web,
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

    /// Runs one invocation in a fresh instance. Must run on a thread with a native stack larger
    /// than [`crate::engine::MAX_WASM_STACK`] (see [`crate::engine::on_guest_stack`]).
    pub fn invoke(
        &self,
        event: &str,
        context: &Context,
        sandbox: &SandboxConfig,
        timeout: Duration,
    ) -> Outcome {
        self.in_fresh_instance(context, sandbox, timeout, |store, instantiated| {
            let handler = self.pre.instantiate(&mut *store)?;
            *instantiated = Some(Instant::now());
            handler.call_handle(store, event, context)
        })
    }

    /// Serves one web request in a fresh instance (the component must be [`Self::is_web`]).
    pub fn serve(
        &self,
        request: &WebRequest,
        context: &Context,
        sandbox: &SandboxConfig,
        timeout: Duration,
    ) -> Outcome<WebResponse> {
        self.in_fresh_instance(context, sandbox, timeout, |store, instantiated| {
            let Some(web) = &self.web else {
                return Ok(Err(GuestError {
                    error_type: types::INCOMPATIBLE_HANDLER.into(),
                    error_message: format!(
                        "`{}` does not export `lamp:handler/web`, so it cannot serve web requests",
                        self.path.display()
                    ),
                    stack_trace: Vec::new(),
                }));
            };
            let handler = web.instantiate(&mut *store)?;
            *instantiated = Some(Instant::now());
            handler
                .lamp_handler_web()
                .call_serve(store, request, context)
        })
    }

    /// A new store and instance for one call, with the invocation's limits; whatever goes
    /// wrong becomes a [`LambdaError`].
    fn in_fresh_instance<T>(
        &self,
        context: &Context,
        sandbox: &SandboxConfig,
        timeout: Duration,
        call: impl FnOnce(
            &mut Store<State>,
            &mut Option<Instant>,
        ) -> wasmtime::Result<Result<T, GuestError>>,
    ) -> Outcome<T> {
        let started = Instant::now();
        let state = match State::new(sandbox, &context.request_id) {
            Ok(state) => state,
            Err(e) => {
                let elapsed = started.elapsed();
                return Outcome {
                    result: Err(LambdaError::new(types::SANDBOX, format!("{e:#}"))),
                    duration: elapsed,
                    instantiate: elapsed,
                    peak_memory: 0,
                };
            }
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(ticks_for(timeout));
        store.epoch_deadline_trap();

        let mut instantiated = None;
        let called = call(&mut store, &mut instantiated);
        let duration = started.elapsed();
        let instantiate = instantiated.map_or(duration, |at| at - started);
        let state = store.data();
        let result = match called {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(guest)) => Err(LambdaError {
                error_type: guest.error_type,
                error_message: guest.error_message,
                stack_trace: guest.stack_trace,
            }),
            Err(err) => Err(failure::classify(
                &err,
                state,
                timeout,
                sandbox.memory_limit,
            )),
        };
        Outcome {
            result,
            duration,
            instantiate,
            peak_memory: state.limiter.peak(),
        }
    }
}
