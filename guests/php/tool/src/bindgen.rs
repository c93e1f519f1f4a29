//! `bindgen-c`: generates the C bindings of a WIT world with `wit-bindgen-c`.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Args;
use wit_bindgen_core::Files;
use wit_parser::Resolve;

/// Writes the C bindings of a WIT world: `<world>.c`, `<world>.h` and
/// `<world>_component_type.o` (the world's type as a custom section, for componentizing).
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  lamp-php-tool bindgen-c --wit wit/handler.wit --world handler --out-dir target/php/glue"
)]
pub struct BindgenC {
    /// A WIT file or a directory of WIT files.
    #[arg(long)]
    wit: PathBuf,
    /// The world to generate bindings for.
    #[arg(long)]
    world: String,
    /// Where to write the files (created if missing).
    #[arg(long)]
    out_dir: PathBuf,
}

impl BindgenC {
    pub fn execute(self) -> Result<()> {
        let mut resolve = Resolve::default();
        let (package, _) = resolve
            .push_path(&self.wit)
            .with_context(|| format!("failed to parse WIT at {}", self.wit.display()))?;
        let world = resolve
            .select_world(&[package], Some(&self.world))
            .with_context(|| {
                format!(
                    "failed to find world `{}` in {}",
                    self.world,
                    self.wit.display()
                )
            })?;

        let mut files = Files::default();
        wit_bindgen_c::Opts::default()
            .build()
            .generate(&resolve, world, &mut files)
            .context("failed to generate C bindings")?;

        std::fs::create_dir_all(&self.out_dir)
            .with_context(|| format!("failed to create {}", self.out_dir.display()))?;
        for (name, contents) in files.iter() {
            let path = self.out_dir.join(name);
            std::fs::write(&path, contents)
                .with_context(|| format!("failed to write {}", path.display()))?;
        }
        Ok(())
    }
}
