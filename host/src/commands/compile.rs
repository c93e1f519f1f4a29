//! `host compile`: ahead-of-time compilation of a handler component to a `.cwasm`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Args;

use crate::component::loader::{CodeSource, load_component};
use crate::engine;

/// Compiles a handler component ahead of time, so that loading it takes milliseconds.
///
/// The output only loads into a host with the same wasmtime version and engine settings;
/// `host run` and the bootstrap refuse (with a message) one that does not match.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  host compile hello.wasm -o hello.cwasm\n  host run hello.cwasm --event '{}'"
)]
pub struct CompileCommand {
    /// The component to compile (.wasm).
    pub module: PathBuf,
    /// Where to write the precompiled component.
    #[arg(short, long)]
    pub output: PathBuf,
}

impl CompileCommand {
    pub fn execute(self) -> Result<ExitCode> {
        let engine = engine::build_engine(engine::EngineOptions::default())?;
        let (component, source) = load_component(&engine, &self.module)?;
        anyhow::ensure!(
            source == CodeSource::Compiled,
            "`{}` is already precompiled; give the .wasm it was made from",
            self.module.display()
        );
        let bytes = component
            .serialize()
            .map_err(anyhow::Error::from)
            .context("failed to serialize the compiled component")?;
        std::fs::write(&self.output, &bytes)
            .with_context(|| format!("failed to write `{}`", self.output.display()))?;
        eprintln!("wrote {} ({} bytes)", self.output.display(), bytes.len());
        Ok(ExitCode::SUCCESS)
    }
}
