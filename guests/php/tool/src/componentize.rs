//! `componentize`: core wasm32-wasip2 module -> component, with wit-component and no adapter.
//!
//! wasi-libc for wasip2 imports `wasi:*@0.2.0` itself and links its world into the module as a
//! `component-type` custom section, as `bindgen-c`'s `<world>_component_type.o` does for the
//! handler's exports. What neither describes is added here before encoding:
//!
//! - `wasi:cli/exit@0.2.12` with `exit-with-code`, which `guests/php/compat/exit.c` imports so
//!   that PHP's exit statuses (255 after a fatal error) reach the host; wasi-libc's WIT is
//!   0.2.0, whose `exit` takes only ok/err. wit-component imports it only if the module does.
//! - with `--init-export NAME` (repeatable), a component-level `NAME: func()` export of the
//!   core function of that name: wizer's `run_component` runs component exports only.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Args;
use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};
use wit_parser::Resolve;

/// The part of wasi:cli 0.2.12 (as wasmtime-wasi 48 provides it) that compat/exit.c uses.
const WASI_CLI_EXIT: &str = "package wasi:cli@0.2.12;

interface exit {
  exit: func(status: result);
  exit-with-code: func(status-code: u8);
}
";

/// The export of a command, as wasi-libc's `crt1-command.o` describes it (ours,
/// compat/crt_command.c, replaces that object and with it its `component-type` section).
const WASI_CLI_RUN: &str = "package wasi:cli@0.2.0;

interface run {
  run: func() -> result;
}
";

/// The core export of a command's `run`.
const RUN_EXPORT: &str = "wasi:cli/run@0.2.0#run";

/// Makes a component of a core module whose imports and exports are described by its
/// `component-type` custom sections (wasi-libc's and the world's), plus the additions above.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lamp-php-tool componentize sapi/cli/php -o php-cli.wasm
  lamp-php-tool componentize php-handler-core.wasm --init-export lamp-init --init-export lamp-preload -o php-handler.wasm")]
pub struct Componentize {
    /// The core module.
    input: PathBuf,
    /// Where to write the component.
    #[arg(short, long)]
    output: PathBuf,
    /// Also export this `[] -> []` core function from the component (for `wizer`); repeatable.
    #[arg(long, value_name = "NAME")]
    init_export: Vec<String>,
}

impl Componentize {
    pub fn execute(self) -> Result<()> {
        let mut module = std::fs::read(&self.input)
            .with_context(|| format!("failed to read {}", self.input.display()))?;
        let command = exports(&module)?.iter().any(|name| name == RUN_EXPORT);
        let (resolve, world) = extra_world(command, &self.init_export)?;
        embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)
            .context("failed to add the build's WIT to the module")?;
        let component = ComponentEncoder::default()
            .validate(true)
            .module(&module)
            .with_context(|| format!("failed to decode {}", self.input.display()))?
            .encode()
            .with_context(|| format!("failed to make a component of {}", self.input.display()))?;
        std::fs::write(&self.output, component)
            .with_context(|| format!("failed to write {}", self.output.display()))?;
        Ok(())
    }
}

/// The names the core module exports.
fn exports(module: &[u8]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        if let wasmparser::Payload::ExportSection(section) = payload? {
            for export in section {
                names.push(export?.name.to_string());
            }
        }
    }
    Ok(names)
}

/// The world of what this build adds: the exit interface, `wasi:cli/run` for a command, and
/// the init exports asked for.
fn extra_world(command: bool, init_exports: &[String]) -> Result<(Resolve, wit_parser::WorldId)> {
    let mut resolve = Resolve::default();
    resolve
        .push_str("wasi-cli-exit.wit", WASI_CLI_EXIT)
        .context("failed to parse the wasi:cli exit WIT")?;
    let mut export: String = init_exports
        .iter()
        .map(|name| format!("  export {name}: func();\n"))
        .collect();
    if command {
        resolve
            .push_str("wasi-cli-run.wit", WASI_CLI_RUN)
            .context("failed to parse the wasi:cli run WIT")?;
        export.push_str("  export wasi:cli/run@0.2.0;\n");
    }
    let world_wit = format!(
        "package lamp:php-build;\n\nworld extra {{\n  import wasi:cli/exit@0.2.12;\n{export}}}\n"
    );
    let package = resolve
        .push_str("lamp-php-build.wit", &world_wit)
        .context("failed to parse the build's WIT")?;
    let world = resolve
        .select_world(&[package], Some("extra"))
        .context("failed to find the build's world")?;
    Ok((resolve, world))
}
