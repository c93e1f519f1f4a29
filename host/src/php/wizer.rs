//! Pre-initialisation with wizer (wasmtime-wizer's `run_component`): the per-deployment PHP
//! snapshots ([`super::snapshot`]) and the PHP build's `lamp-init` step (lamp-php-tool's
//! `wizer`). Behind the `wizer` feature: the layers' bootstrap, which only starts from
//! snapshots, is built without it.

use anyhow::{Context as _, Result, anyhow, bail};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Config, Engine, OptLevel, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wizer::Wizer;

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
/// long; the result is the same).
pub fn pre_initialise(
    wasm: &[u8],
    init_func: &str,
    ctx: WasiCtx,
    optimise: bool,
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
    let mut wizer = Wizer::new();
    wizer.init_func(init_func).keep_init_func(true);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start a tokio runtime")?;
    let (snapshot, _) = runtime
        .block_on(
            wizer.run_component(&mut store, wasm, async |store, component| {
                linker.instantiate_async(store, component).await
            }),
        )
        .map_err(|e| anyhow!("{e:?}"))
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
