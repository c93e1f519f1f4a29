//! `lamp-php-tool`: the Rust steps of `guests/php/build.sh`.
//!
//! - `bindgen-c`: C bindings (`<world>.c`, `<world>.h`, `<world>_component_type.o`) for a WIT
//!   world, which the PHP runtime glue (`guests/php/runtime/`) implements.
//! - `componentize`: makes a component of a wasm32-wasip2 core module (wit-component, no
//!   adapter), adding the WIT the build needs beyond wasi-libc's.
//! - `wizer`: pre-initialises the handler component (runs PHP's module start-up once at
//!   build time and snapshots memory), so each invocation starts from a started PHP.
//! - `cli`: runs php-cli.wasm with adjustable engine settings, for profiling and measuring.

mod bindgen;
mod cli;
mod componentize;
mod wizer;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Build helpers for the wasm-lamp PHP guest.
#[derive(Debug, Parser)]
#[command(name = "lamp-php-tool", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    BindgenC(bindgen::BindgenC),
    Cli(cli::CliCommand),
    Componentize(componentize::Componentize),
    Wizer(wizer::WizerCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::BindgenC(c) => c.execute(),
        Command::Cli(c) => c.execute(),
        Command::Componentize(c) => c.execute(),
        Command::Wizer(c) => c.execute(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lamp-php-tool: error: {e:?}");
            ExitCode::FAILURE
        }
    }
}
