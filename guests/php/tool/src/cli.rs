//! `cli`: runs php-cli.wasm like `host php`, with engine settings that can be changed — for
//! profiling (`--perfmap` writes `/tmp/perf-PID.map` so `perf report` names wasm functions)
//! and for measuring what an engine setting costs (epoch checks, Cranelift flags) without
//! touching the host's one engine recipe.
//!
//! The defaults match `host/src/engine.rs` as far as code generation goes (exceptions, epoch
//! interruption, 16 MiB wasm stack, Cranelift `speed`); the component is compiled every run
//! (no `.cwasm` cache), and the compile time is printed on stderr.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, Result, anyhow};
use clap::Args;
use wasmtime::component::Component;
use wasmtime::{Config, Engine, OptLevel, ProfilingStrategy};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// Runs php-cli.wasm with the current directory (read-write, as `.` and at its own path) and
/// `/tmp` mapped, like `host php`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  lamp-php-tool cli dist/php-cli.wasm -- Zend/bench.php
  perf record -g -o perf.data lamp-php-tool cli --perfmap dist/php-cli.wasm -- bench.php
  lamp-php-tool cli --no-epoch dist/php-cli.wasm -- bench.php")]
pub struct CliCommand {
    /// php-cli.wasm
    wasm: PathBuf,
    /// Write /tmp/perf-PID.map for `perf`.
    #[arg(long)]
    perfmap: bool,
    /// Compile without epoch-interruption checks (the host always has them; with them, PHP's
    /// executor polls at jumps and calls, as the host compiles it).
    #[arg(long)]
    no_epoch: bool,
    /// Cranelift flags, NAME=VALUE (repeatable), e.g. `opt_level=speed_and_size`.
    #[arg(long = "cranelift", value_name = "NAME=VALUE")]
    cranelift: Vec<String>,
    /// Arguments for php.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

impl CliCommand {
    pub fn execute(self) -> Result<()> {
        // Deep PHP recursion runs on this thread's stack.
        let status = std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(move || self.run())
            .context("failed to start the guest thread")?
            .join()
            .map_err(|_| anyhow!("the guest thread panicked"))??;
        std::process::exit(i32::from(status));
    }

    fn run(self) -> Result<u8> {
        let mut config = Config::new();
        config
            .wasm_exceptions(true)
            .epoch_interruption(!self.no_epoch)
            .max_wasm_stack(16 << 20)
            .async_stack_size(17 << 20)
            .cranelift_opt_level(OptLevel::Speed);
        if !self.no_epoch {
            // As the host compiles: PHP's executor polls the deadline.
            host::engine::poll_where_php_polls(&mut config);
        }
        if self.perfmap {
            config.profiler(ProfilingStrategy::PerfMap);
        }
        for flag in &self.cranelift {
            let (name, value) = flag
                .split_once('=')
                .ok_or_else(|| anyhow!("--cranelift {flag}: expected NAME=VALUE"))?;
            #[allow(unsafe_code)]
            // SAFETY: a measuring tool; a bad flag fails `Engine::new` or the run, nothing else.
            unsafe {
                config.cranelift_flag_set(name, value);
            }
        }
        let engine = Engine::new(&config).map_err(|e| anyhow!("{e:?}"))?;
        let t = Instant::now();
        let component = Component::from_file(&engine, &self.wasm)
            .map_err(|e| anyhow!("{e:?}"))
            .with_context(|| format!("failed to compile {}", self.wasm.display()))?;
        eprintln!(
            "[lamp-php-tool cli] compiled in {:.2} s",
            t.elapsed().as_secs_f64()
        );

        let cwd = std::env::current_dir()?;
        let cwd_guest = cwd
            .to_str()
            .ok_or_else(|| anyhow!("cwd is not UTF-8"))?
            .to_string();
        let mut wasi = WasiCtxBuilder::new();
        wasi.inherit_stdio()
            .allow_blocking_current_thread(true)
            .arg("php")
            .args(&self.args)
            .env("TMPDIR", "/tmp");
        wasi.preopened_dir(&cwd, ".", FsPerms::ReadWrite)?;
        if cwd_guest != "/" {
            wasi.preopened_dir(&cwd, &cwd_guest, FsPerms::ReadWrite)?;
        }
        if cwd_guest != "/tmp" {
            wasi.preopened_dir(std::env::temp_dir(), "/tmp", FsPerms::ReadWrite)?;
        }
        // The host's own runner: the same WASI, the same exit statuses.
        host::php::cli::run_command(&engine, &component, wasi, Default::default())
    }
}
