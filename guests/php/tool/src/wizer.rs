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

use anyhow::{Context as _, Result};
use clap::Args;
use wasmtime_wasi::WasiCtxBuilder;

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

impl WizerCommand {
    pub fn execute(self) -> Result<()> {
        let wasm = std::fs::read(&self.input)
            .with_context(|| format!("failed to read {}", self.input.display()))?;
        let ctx = WasiCtxBuilder::new()
            .inherit_stdout()
            .inherit_stderr()
            .build();
        // The host's pre-initialisation, which also makes the per-deployment snapshots.
        let snapshot = host::php::wizer::pre_initialise(&wasm, &self.init_func, ctx, true, None)
            .with_context(|| format!("failed to pre-initialise {}", self.input.display()))?;
        std::fs::write(&self.output, snapshot)
            .with_context(|| format!("failed to write {}", self.output.display()))?;
        Ok(())
    }
}
