//! `wizer`: pre-initialises a component with `wasmtime-wizer` (`Wizer::run_component`).
//!
//! The init function (a component export, `[] -> []`) runs with an empty WASI context (no
//! arguments, environment, files, preopens or network; stdout/stderr inherited so start-up
//! messages are seen), then the linear memory and globals of the component's core instances
//! are snapshotted into their data segments.
//!
//! The init export stays in the result (`keep_init_func`): wasmtime-wizer 48 removes the core
//! module's export but not the component's lift of it, which leaves an invalid component. The
//! init function must therefore do nothing when called again.
//!
//! Resource handles are not part of a snapshot: every instance of the result starts with
//! empty handle tables. A handle the guest still holds in memory after the init function
//! (wasi-libc caches stdio streams and preopened directories lazily) would be stale in every
//! instance, so the init function must drop them all; the host's table being empty afterwards
//! is checked here, and a leftover fails the build.

use std::path::PathBuf;

use anyhow::{Context as _, Result, anyhow, bail};
use clap::Args;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wizer::Wizer;

/// Runs `--init-func` of a component once and writes the snapshot as a new component.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  lamp-php-tool wizer php-handler.wasm -o php.wasm --init-func lamp-init"
)]
pub struct WizerCommand {
    /// The component.
    input: PathBuf,
    /// Where to write the pre-initialised component.
    #[arg(short, long)]
    output: PathBuf,
    /// The exported `func()` that initialises the component.
    #[arg(long, default_value = "wizer-initialize")]
    init_func: String,
}

/// The store's data while the init function runs.
struct InitState {
    /// Nothing but inherited stdout and stderr.
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

impl WizerCommand {
    pub fn execute(self) -> Result<()> {
        let wasm = std::fs::read(&self.input)
            .with_context(|| format!("failed to read {}", self.input.display()))?;

        let mut config = Config::new();
        // PHP's zend_try/zend_bailout are setjmp/longjmp lowered to wasm exceptions.
        config.wasm_exceptions(true);
        // PHP's start-up recurses little, but the default 512 KiB is tight for C code built
        // with an 8 MiB shadow stack in mind.
        config.max_wasm_stack(16 << 20);
        config.async_stack_size(17 << 20);
        let engine = Engine::new(&config)
            .map_err(|e| anyhow!("{e:?}"))
            .context("failed to create the wasmtime engine")?;

        let state = InitState {
            ctx: WasiCtxBuilder::new()
                .inherit_stdout()
                .inherit_stderr()
                .build(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&engine, state);
        let mut linker: Linker<InitState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| anyhow!("{e:?}"))
            .context("failed to add WASI to the linker")?;

        let mut wizer = Wizer::new();
        wizer.init_func(&self.init_func).keep_init_func(true);

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("failed to start a tokio runtime")?;
        let (snapshot, _) = runtime
            .block_on(
                wizer.run_component(&mut store, &wasm, async |store, component| {
                    linker.instantiate_async(store, component).await
                }),
            )
            .map_err(|e| anyhow!("{e:?}"))
            .with_context(|| format!("failed to pre-initialise {}", self.input.display()))?;

        if !store.data().table.is_empty() {
            bail!(
                "`{}` left WASI resources open (stdio streams, preopened directories, files or \
                 sockets): their handles would be stale in every instance of the snapshot; \
                 drop them before it returns",
                self.init_func
            );
        }

        std::fs::write(&self.output, snapshot)
            .with_context(|| format!("failed to write {}", self.output.display()))?;
        Ok(())
    }
}
