//! `wizer`: pre-initialises a wasm32-wasip1 core module with `wasmtime-wizer`.
//!
//! The init function runs with an empty WASI context (no arguments, environment, files or
//! preopens; stdout/stderr inherited so start-up messages are seen), then linear memory and
//! globals are snapshotted into the module's data segments.

use std::path::PathBuf;

use anyhow::{Context as _, Result, anyhow};
use clap::Args;
use wasmtime::{Config, Engine, Linker, Store};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wizer::Wizer;

/// Runs `--init-func` of a core module once and writes the snapshot as a new module, without
/// the init function and `_initialize` (their work is done).
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  lamp-php-tool wizer php-core.wasm -o php-core.wizened.wasm --init-func lamp_init"
)]
pub struct WizerCommand {
    /// The core module (a WASI reactor).
    input: PathBuf,
    /// Where to write the pre-initialised module.
    #[arg(short, long)]
    output: PathBuf,
    /// The exported `[] -> []` function that initialises the module.
    #[arg(long, default_value = "wizer-initialize")]
    init_func: String,
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

        let wasi = WasiCtxBuilder::new()
            .inherit_stdout()
            .inherit_stderr()
            .build_p1();
        let mut store = Store::new(&engine, wasi);
        let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
        p1::add_to_linker_async(&mut linker, |cx| cx)
            .map_err(|e| anyhow!("{e:?}"))
            .context("failed to add WASI to the linker")?;

        let mut wizer = Wizer::new();
        wizer.init_func(&self.init_func);

        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .context("failed to start a tokio runtime")?;
        let snapshot = runtime
            .block_on(wizer.run(&mut store, &wasm, async |store, module| {
                linker.instantiate_async(store, module).await
            }))
            .map_err(|e| anyhow!("{e:?}"))
            .with_context(|| format!("failed to pre-initialise {}", self.input.display()))?;

        std::fs::write(&self.output, snapshot)
            .with_context(|| format!("failed to write {}", self.output.display()))?;
        Ok(())
    }
}
