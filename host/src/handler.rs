//! A handler component: loaded and linked once, instantiated fresh for every invocation.
//!
//! [`HandlerComponent::load`] turns a `.wasm` or `.cwasm` file into an `InstancePre` (all
//! compiling, type-checking and linking happens here, at init). [`HandlerComponent::invoke`]
//! makes a new `Store` and instance per event, enforces its memory and time limits, and turns
//! whatever goes wrong into a [`LambdaError`]; nothing a guest does can fail the host.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Precompiled, Store, Trap, WasmBacktrace};

use crate::engine::ticks_for;
use crate::error::{LambdaError, types};
use crate::sandbox::{SandboxConfig, State};

wasmtime::component::bindgen!({
    path: "../wit/handler.wit",
    world: "handler",
});

pub use lamp::handler::types::Error as GuestError;

/// A failure to load or link a handler, with the Lambda error type it is reported as.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct InitError {
    pub error_type: &'static str,
    pub message: String,
}

impl InitError {
    pub(crate) fn new(error_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            error_type,
            message: message.into(),
        }
    }

    pub fn to_lambda_error(&self) -> LambdaError {
        LambdaError::new(self.error_type, self.message.clone())
    }
}

/// How the component's code was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeSource {
    /// Compiled from a `.wasm` file now.
    Compiled,
    /// Mapped from a `.cwasm` file made by `host compile`.
    Precompiled,
}

/// A loaded, linked handler, ready to be instantiated per invocation.
pub struct HandlerComponent {
    engine: Engine,
    pre: HandlerPre<State>,
    component: Component,
    path: PathBuf,
    source: CodeSource,
    /// Time spent linking (WASI into the linker, `instantiate_pre`, export type checks).
    link_time: Duration,
}

/// What one invocation produced.
#[derive(Debug)]
pub struct Outcome {
    /// The response body, or the error to report.
    pub result: Result<String, LambdaError>,
    /// Wall time of instantiation plus the `handle` call.
    pub duration: Duration,
    /// The part of `duration` spent making the sandbox, store and instance.
    pub instantiate: Duration,
    /// Peak linear memory of the guest, in bytes.
    pub peak_memory: usize,
}

const WASM_MAGIC: &[u8] = b"\0asm";
/// The layer/version field of the preamble: 1 for core modules, 0x1000d for components.
const CORE_MODULE_VERSION: [u8; 4] = [1, 0, 0, 0];

impl HandlerComponent {
    /// Loads a handler from a `.wasm` component or a `.cwasm` written by `host compile`.
    pub fn load(engine: &Engine, path: &Path) -> Result<Self, InitError> {
        let (component, source) = load_component(engine, path)?;
        Self::from_component(engine, component, path, source)
    }

    /// Links a component already in memory (see [`load_component`]).
    pub fn from_component(
        engine: &Engine,
        component: Component,
        path: &Path,
        source: CodeSource,
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
            component,
            path: path.to_path_buf(),
            source,
            link_time: started.elapsed(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn source(&self) -> CodeSource {
        self.source
    }

    /// How long linking took when the handler was loaded.
    pub fn link_time(&self) -> Duration {
        self.link_time
    }

    pub fn component(&self) -> &Component {
        &self.component
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

        let instance = self.pre.instantiate(&mut store);
        let instantiate = started.elapsed();
        let called = instance.and_then(|handler| handler.call_handle(&mut store, event, context));
        let duration = started.elapsed();
        let limiter = &store.data().limiter;
        let stderr_tail = store.data().stderr.tail();
        let result = match called {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(guest)) => Err(LambdaError {
                error_type: guest.error_type,
                error_message: guest.error_message,
                stack_trace: guest.stack_trace,
            }),
            Err(err) => Err(classify_failure(
                &err,
                limiter.refused(),
                timeout,
                sandbox.memory_limit,
                &stderr_tail,
            )),
        };
        Outcome {
            result,
            duration,
            instantiate,
            peak_memory: limiter.peak(),
        }
    }
}

/// Fails with `Runtime.NoSuchHandler` unless `path` is a file, saying what to give instead.
pub fn check_handler_file(path: &Path) -> Result<(), InitError> {
    if path.is_file() {
        return Ok(());
    }
    let what = if path.exists() {
        "is not a file"
    } else {
        "does not exist"
    };
    Err(InitError::new(
        types::NO_SUCH_HANDLER,
        format!(
            "handler `{}` {what}; give the path of a handler component (.wasm or .cwasm) or PHP script (.php)",
            path.display()
        ),
    ))
}

/// Reads and compiles (or maps) a component file, with errors that say what to do.
pub fn load_component(engine: &Engine, path: &Path) -> Result<(Component, CodeSource), InitError> {
    let shown = path.display();
    check_handler_file(path)?;
    match Engine::detect_precompiled_file(path) {
        Ok(Some(Precompiled::Component)) => {
            // SAFETY: wasmtime trusts a `.cwasm` to contain code it wrote. The header was checked
            // just above, and deserialization verifies the engine version and settings; the
            // files we load come from `host compile` or from our own layer build.
            #[allow(unsafe_code)]
            let component = unsafe { Component::deserialize_file(engine, path) }.map_err(|e| {
                InitError::new(
                    types::INVALID_HANDLER,
                    format!(
                        "`{shown}` was precompiled by an incompatible engine ({e:#}); recompile it \
                         with this host: `host compile HANDLER.wasm -o {shown}`"
                    ),
                )
            })?;
            return Ok((component, CodeSource::Precompiled));
        }
        Ok(Some(Precompiled::Module)) => {
            return Err(InitError::new(
                types::INVALID_HANDLER,
                format!(
                    "`{shown}` is a precompiled core module, not a component; precompile the handler component with `host compile`"
                ),
            ));
        }
        Ok(None) | Err(_) => {}
    }
    let bytes = std::fs::read(path).map_err(|e| {
        InitError::new(
            types::NO_SUCH_HANDLER,
            format!("failed to read `{shown}`: {e}"),
        )
    })?;
    Ok((
        compile_component(engine, &bytes, path)?,
        CodeSource::Compiled,
    ))
}

/// Compiles the wasm `bytes` read from `path`, with errors that say what to give instead.
pub fn compile_component(
    engine: &Engine,
    bytes: &[u8],
    path: &Path,
) -> Result<Component, InitError> {
    let shown = path.display();
    if !bytes.starts_with(WASM_MAGIC) {
        return Err(InitError::new(
            types::INVALID_HANDLER,
            format!(
                "`{shown}` is not a WebAssembly file (it does not start with `\\0asm`); give a handler component built for wasm32-wasip2, or a `.cwasm` from `host compile`"
            ),
        ));
    }
    if bytes.get(4..8) == Some(&CORE_MODULE_VERSION[..]) {
        return Err(InitError::new(
            types::INVALID_HANDLER,
            format!(
                "`{shown}` is a core wasm module, not a component; build Rust handlers for `wasm32-wasip2` with the lamp-handler SDK, or wrap a wasip1 module with `wasm-tools component new --adapt`"
            ),
        ));
    }
    Component::new(engine, bytes).map_err(|e| {
        InitError::new(
            types::INVALID_HANDLER,
            format!("`{shown}` is not a valid component: {e:#}"),
        )
    })
}

/// Turns a trap or host error from a guest call into the error Lambda should see.
fn classify_failure(
    err: &wasmtime::Error,
    memory_refused: bool,
    timeout: Duration,
    memory_limit: usize,
    stderr_tail: &[String],
) -> LambdaError {
    let stack_trace = err
        .downcast_ref::<WasmBacktrace>()
        .map(|bt| {
            bt.frames()
                .iter()
                .map(|frame| {
                    let func = frame
                        .func_name()
                        .map(|name| format!("{:#}", rustc_demangle::demangle(name)))
                        .unwrap_or_else(|| format!("<func {}>", frame.func_index()));
                    match frame.module().name() {
                        Some(module) => format!("{module}!{func}"),
                        None => func,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return LambdaError::new(
            types::EXIT,
            format!(
                "the handler called exit({}) instead of returning a result",
                exit.0
            ),
        );
    }
    let trap = err.downcast_ref::<Trap>();
    if trap == Some(&Trap::Interrupt) {
        return LambdaError::new(
            types::TIMEOUT,
            format!("Task timed out after {:.2} seconds", timeout.as_secs_f64()),
        );
    }
    if memory_refused {
        return LambdaError::new(
            types::OUT_OF_MEMORY,
            format!(
                "the handler ran out of memory: it needed more than its {} MB; raise the function's memory size (`--memory`)",
                memory_limit >> 20
            ),
        )
        .with_stack_trace(stack_trace);
    }
    if trap == Some(&Trap::StackOverflow) {
        return LambdaError::new(
            types::STACK_OVERFLOW,
            "the handler overflowed its stack (deep or endless recursion)",
        )
        .with_stack_trace(stack_trace);
    }
    // A Rust panic prints `panicked at FILE:LINE:COL:` and then its message before it traps.
    if let Some(at) = stderr_tail
        .iter()
        .rposition(|line| line.contains("panicked at"))
    {
        let location = stderr_tail[at]
            .split("panicked at ")
            .nth(1)
            .unwrap_or("")
            .trim_end_matches(':');
        let message: Vec<&str> = stderr_tail[at + 1..]
            .iter()
            .map(String::as_str)
            .take_while(|line| !line.starts_with("note: run with `RUST_BACKTRACE"))
            .collect();
        return LambdaError::new(
            types::TRAP,
            format!("the handler panicked at {location}: {}", message.join("\n")),
        )
        .with_stack_trace(stack_trace);
    }
    let message = match trap {
        Some(trap) => format!("the handler trapped: {trap}"),
        None => format!("{err:#}"),
    };
    LambdaError::new(types::TRAP, message).with_stack_trace(stack_trace)
}
