//! Pre-initialisation with wizer (wasmtime-wizer's `run_component`): the per-deployment PHP
//! snapshots ([`super::snapshot`]) and the PHP build's `lamp-init` step (lamp-php-tool's
//! `wizer`). Behind the `wizer` feature: the layers' bootstrap, which only starts from
//! snapshots, is built without it.

use anyhow::{Context as _, Result, anyhow, bail};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, OptLevel, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wizer::{WasmtimeWizerComponent, Wizer};

use crate::component::cache::Cache;

/// The store's data while an init function runs.
struct InitState {
    ctx: WasiCtx,
    /// The host side of the guest's resource handles; must be empty after the init function.
    table: ResourceTable,
}

impl WasiView for InitState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Runs the component export `init_func` (a `func()`) of the component `wasm` once, with WASI
/// as `ctx` gives it, and returns the snapshot (wasmtime-wizer's `run_component`): the linear
/// memories and globals of its core instances as data. The export stays in the result
/// (wasmtime-wizer 48 removes the core export but not the component's lift of it, which would
/// leave an invalid component), so it must do nothing when called again.
///
/// A snapshot holds memory, not resources: every instance of it starts with empty handle
/// tables, so a handle the guest still holds after `init_func` would be stale in all of them.
/// The init function must drop them all; a resource left in the host's table is an error.
/// `optimise`: Cranelift's optimisations for the run (worth it when the init function runs
/// long; the result is the same). `cache`: where the compiled instrumented component is kept.
/// wizer's instrumentation of the same component gives the same bytes, so every snapshot of one
/// PHP runtime after the first skips that compile (most of a snapshot's wizer run).
pub fn pre_initialise(
    wasm: &[u8],
    init_func: &str,
    ctx: WasiCtx,
    optimise: bool,
    cache: Option<&Cache>,
) -> Result<Vec<u8>> {
    let mut config = Config::new();
    // PHP's zend_try/zend_bailout are setjmp/longjmp lowered to wasm exceptions.
    config.wasm_exceptions(true);
    // C code is built with an 8 MiB shadow stack in mind; the default 512 KiB is tight.
    config.max_wasm_stack(16 << 20);
    config.async_stack_size(17 << 20);
    if !optimise {
        config.cranelift_opt_level(OptLevel::None);
    }
    let engine = Engine::new(&config)
        .map_err(|e| anyhow!("{e:?}"))
        .context("failed to create the wasmtime engine")?;
    let mut wizer = Wizer::new();
    wizer.init_func(init_func).keep_init_func(true);
    let (cx, instrumented) = wizer
        .instrument_component(wasm)
        .map_err(|e| anyhow!("{e:?}"))
        .context("wizer could not instrument the component")?;
    let component = match cache {
        Some(cache) => cache
            .get_or_compile::<Component>(&engine, &instrumented)
            .map(|(component, cached)| {
                tracing::debug!("the snapshot run's compiled runtime: {cached:?}");
                component
            }),
        None => Component::new(&engine, &instrumented),
    }
    .map_err(|e| anyhow!("{e:?}"))
    .context("failed to compile the component for its snapshot run")?;
    let mut store = Store::new(
        &engine,
        InitState {
            ctx,
            table: ResourceTable::new(),
        },
    );
    let mut linker: Linker<InitState> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(|e| anyhow!("{e:?}"))
        .context("failed to add WASI to the linker")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start a tokio runtime")?;
    let snapshot = runtime
        .block_on(async {
            let instance = linker
                .instantiate_async(&mut store, &component)
                .await
                .map_err(|e| anyhow!("{e:?}"))?;
            let init = instance
                .get_typed_func::<(), ()>(&mut store, init_func)
                .map_err(|e| anyhow!("{e:?}"))
                .with_context(|| {
                    format!("the component has no export `{init_func}` of type `func()`")
                })?;
            init.call_async(&mut store, ())
                .await
                .map_err(|e| anyhow!("{e:?}"))
                .with_context(|| format!("`{init_func}` trapped"))?;
            wizer
                .snapshot_component(
                    &cx,
                    &mut WasmtimeWizerComponent {
                        store: &mut store,
                        instance,
                    },
                )
                .await
                .map_err(|e| anyhow!("{e:?}"))
        })
        .with_context(|| format!("failed to run `{init_func}` for a snapshot"))?;
    if !store.data().table.is_empty() {
        bail!(
            "`{init_func}` left WASI resources open (stdio streams, preopened directories, files \
             or sockets): their handles would be stale in every instance of the snapshot; drop \
             them before it returns"
        );
    }
    Ok(snapshot)
}
