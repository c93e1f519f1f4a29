//! The `host` binary: parse arguments, set up logging, dispatch, print the error chain.

use std::process::ExitCode;

use clap::Parser;
use host::commands::{Cli, Command, bootstrap::BootstrapCommand};

/// The layers' static `bootstrap` (musl): mimalloc instead of musl's malloc, whose frees of
/// whole groups are munmaps. Measured from the layers (BENCHMARKS.md, *The bootstrap's
/// allocator*): a warm PHP invocation 521 -> 355 us, the cold start 6.16 -> 5.59 ms, peak
/// RSS 17.9 -> 18.5 MB. Builds against glibc keep glibc's allocator.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Transparent huge pages off for this process, whatever the machine's setting: with them,
    // each of mimalloc's first allocations faulted in a 2 MiB page (peak RSS 17.5 -> 36 MB,
    // the cold start 0.3 ms slower), and wasmtime resets instance memory by 4 KiB pages.
    #[cfg(target_env = "musl")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    host::mark_process_start();
    // Lambda starts the runtime as `bootstrap` with no arguments: that name, or no subcommand
    // while `AWS_LAMBDA_RUNTIME_API` is set, means runtime mode.
    let invoked_as_bootstrap = std::env::args_os()
        .next()
        .and_then(|argv0| {
            std::path::Path::new(&argv0)
                .file_name()
                .map(|n| n == "bootstrap")
        })
        .unwrap_or(false);
    let (command, verbose) = if invoked_as_bootstrap {
        (Some(Command::Bootstrap(BootstrapCommand::default())), 0)
    } else {
        let cli = Cli::parse();
        (cli.command, cli.verbose)
    };
    let command = match command {
        Some(command) => command,
        None if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() => {
            Command::Bootstrap(BootstrapCommand::default())
        }
        None => {
            eprintln!("error: no subcommand given; see `host --help`");
            return ExitCode::from(2);
        }
    };
    command.init_logging(verbose);
    match command.execute() {
        Ok(code) => code,
        Err(err) => {
            // One line: the error and its causes, so a user sees what to fix without a backtrace.
            let chain: Vec<String> = err.chain().map(ToString::to_string).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::from(2)
        }
    }
}
