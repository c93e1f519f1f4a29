//! `componentize`: core wasm32-wasip1 reactor module + WASI adapter -> component.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Args;
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wit_component::ComponentEncoder;

/// Makes a component of a core module that carries its world in a `component-type` custom
/// section (from `<world>_component_type.o`), adapting its WASI preview 1 imports to
/// preview 2 with wasmtime's reactor adapter.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  lamp-php-tool componentize php-core.wasm -o php.wasm")]
pub struct Componentize {
    /// The core module.
    input: PathBuf,
    /// Where to write the component.
    #[arg(short, long)]
    output: PathBuf,
}

impl Componentize {
    pub fn execute(self) -> Result<()> {
        let module = std::fs::read(&self.input)
            .with_context(|| format!("failed to read {}", self.input.display()))?;
        let component = ComponentEncoder::default()
            .validate(true)
            .module(&module)
            .with_context(|| format!("failed to decode {}", self.input.display()))?
            .adapter(
                WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
            .context("failed to load the WASI preview 1 reactor adapter")?
            .encode()
            .with_context(|| format!("failed to make a component of {}", self.input.display()))?;
        std::fs::write(&self.output, component)
            .with_context(|| format!("failed to write {}", self.output.display()))?;
        Ok(())
    }
}
