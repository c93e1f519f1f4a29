//! `host php`: the PHP CLI (`guests/php/dist/php-cli.wasm`, a wasm32-wasip1 core module) run
//! like a native `php`, with the current directory and `/tmp` mapped in.
//!
//! It exists for PHP's own test suite (`guests/php/run-phpt.sh` runs `run-tests.php` with this
//! as the PHP under test) and for trying PHP code locally. `run-tests.php` starts it hundreds
//! of times, so the compiled module is cached as a `.cwasm` (Cranelift needs ~1.5 s for PHP;
//! loading the cached code takes milliseconds).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::UNIX_EPOCH;

use anyhow::{Context as _, Result, anyhow, bail};
use clap::Args;
use wasmtime::{Caller, Engine, Linker, Module, Store};
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use crate::engine::{self, EngineOptions};

/// Runs the PHP interpreter (compiled to WebAssembly) like `php`.
///
/// The guest sees the current directory read-write at its own absolute path (so absolute
/// paths work as on the host) and as `.`, plus `/tmp`. It gets only the environment given
/// with `--env`, and `TMPDIR=/tmp`. The exit status is PHP's.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  host php -r 'var_dump(PHP_INT_SIZE, PHP_VERSION);'
  host php script.php arg1 arg2
  echo '<?php echo 1 + 1;' | host php
  LAMP_PHP_CLI=guests/php/dist/php-cli.wasm host php -v")]
pub struct PhpCommand {
    /// php-cli.wasm to run. Default: `$LAMP_PHP_CLI`, then `php-cli.wasm` next to the host
    /// binary, then `guests/php/dist/php-cli.wasm` of the source tree the binary was built in.
    #[arg(long, value_name = "PATH", env = "LAMP_PHP_CLI")]
    pub php_cli: Option<PathBuf>,

    /// Environment variable for the guest, as NAME=VALUE (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,

    /// Arguments for php, as for php-cli.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

impl PhpCommand {
    pub fn execute(self) -> Result<ExitCode> {
        let wasm = find_php_cli(self.php_cli.as_deref())?;
        // Deep PHP recursion runs on the calling thread's stack: give it room.
        let status = engine::on_guest_stack(move || run(&wasm, &self.args, &self.env))?;
        Ok(ExitCode::from(status))
    }
}

/// Where php-cli.wasm is, in the documented order.
fn find_php_cli(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        if path.is_file() {
            return Ok(path.to_path_buf());
        }
        bail!("php-cli wasm {} not found", path.display());
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            candidates.push(dir.join("php-cli.wasm"));
        }
    }
    // A dev build also finds the one in its own checkout; a release build (what a layer ships)
    // carries no path of the machine that built it.
    #[cfg(debug_assertions)]
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests/php/dist/php-cli.wasm"));
    candidates.push(PathBuf::from("guests/php/dist/php-cli.wasm"));
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        anyhow!("php-cli.wasm not found: build it with `make php` or pass --php-cli PATH (or set LAMP_PHP_CLI)")
    })
}

fn run(wasm: &Path, args: &[String], env: &[String]) -> Result<u8> {
    let engine = engine::build_engine(EngineOptions { max_instances: 1 })?;
    let module = load_module(&engine, wasm)?;

    let cwd = std::env::current_dir().context("failed to read the current directory")?;
    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stdio()
        // Synchronous, one guest: file system calls may block this thread (see sandbox.rs).
        .allow_blocking_current_thread(true)
        .arg("php")
        .args(args)
        .env("TMPDIR", "/tmp");
    for pair in env {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| anyhow!("--env {pair}: expected NAME=VALUE"))?;
        wasi.env(name, value);
    }
    let cwd_guest = cwd
        .to_str()
        .ok_or_else(|| anyhow!("the current directory is not UTF-8"))?;
    // `.` first: wasi-libc resolves relative paths against the preopen named `.`, absolute
    // ones against the longest matching preopen.
    wasi.preopened_dir(&cwd, ".", FsPerms::ReadWrite)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("failed to map {}", cwd.display()))?;
    if cwd_guest != "/" {
        wasi.preopened_dir(&cwd, cwd_guest, FsPerms::ReadWrite)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("failed to map {}", cwd.display()))?;
    }
    if cwd_guest != "/tmp" {
        let tmp = std::env::temp_dir();
        wasi.preopened_dir(&tmp, "/tmp", FsPerms::ReadWrite)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("failed to map {}", tmp.display()))?;
    }

    let mut store = Store::new(&engine, wasi.build_p1());
    // The engine interrupts on epochs (for Lambda deadlines); a CLI run has no deadline.
    store.set_epoch_deadline(u64::MAX / 2);

    let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
    p1::add_to_linker_sync(&mut linker, |cx| cx)
        .map_err(|e| anyhow!("{e:?}"))
        .context("failed to add WASI to the linker")?;
    // wasmtime-wasi turns proc_exit statuses >= 126 into an error rather than an I32Exit;
    // PHP exits 255 on fatal errors, and run-tests.php checks it.
    linker.allow_shadowing(true);
    linker
        .func_wrap(
            "wasi_snapshot_preview1",
            "proc_exit",
            |_caller: Caller<'_, WasiP1Ctx>, status: i32| -> Result<(), wasmtime::Error> {
                Err(wasmtime::Error::new(I32Exit(status)))
            },
        )
        .map_err(|e| anyhow!("{e:?}"))?;

    let instance = linker
        .instantiate(&mut store, &module)
        .map_err(|e| anyhow!("{e:?}"))
        .with_context(|| format!("failed to instantiate {}", wasm.display()))?;
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .map_err(|e| anyhow!("{e:?}"))
        .context("php-cli.wasm has no _start")?;
    match start.call(&mut store, ()) {
        Ok(()) => Ok(0),
        Err(err) => match err.downcast_ref::<I32Exit>() {
            Some(I32Exit(status)) => Ok(*status as u8),
            None => Err(anyhow!("{err:?}").context("php trapped")),
        },
    }
}

/// The compiled module, from a `.cwasm` cache keyed by the wasm file (path, size, mtime) and
/// the engine's compatibility hash; compiled and stored on a miss.
fn load_module(engine: &Engine, wasm: &Path) -> Result<Module> {
    let meta =
        std::fs::metadata(wasm).with_context(|| format!("failed to read {}", wasm.display()))?;
    let mut hasher = DefaultHasher::new();
    std::fs::canonicalize(wasm)
        .unwrap_or_else(|_| wasm.to_path_buf())
        .hash(&mut hasher);
    meta.len().hash(&mut hasher);
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .hash(&mut hasher);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let dir = cache_dir().join("cwasm");
    let cached = dir.join(format!("php-cli-{:016x}.cwasm", hasher.finish()));

    if cached.is_file() {
        #[allow(unsafe_code)]
        // SAFETY: the file was written by `Module::serialize` below, into our own cache
        // directory, under a name that includes this engine's compatibility hash.
        match unsafe { Module::deserialize_file(engine, &cached) } {
            Ok(module) => return Ok(module),
            Err(err) => tracing::debug!("ignoring {}: {err:#}", cached.display()),
        }
    }
    let module = Module::from_file(engine, wasm)
        .map_err(|e| anyhow!("{e:?}"))
        .with_context(|| format!("failed to compile {}", wasm.display()))?;
    // Best effort: a read-only cache only costs time.
    if let Ok(bytes) = module.serialize() {
        let tmp = dir.join(format!(".tmp-{}", std::process::id()));
        if std::fs::create_dir_all(&dir).is_ok() && std::fs::write(&tmp, bytes).is_ok() {
            let _ = std::fs::rename(&tmp, &cached);
        }
    }
    Ok(module)
}

/// `$LAMP_CACHE`, else `$XDG_CACHE_HOME/wasm-lamp`, else `~/.cache/wasm-lamp`.
fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LAMP_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("wasm-lamp");
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache/wasm-lamp"))
        .unwrap_or_else(|| std::env::temp_dir().join("wasm-lamp-cache"))
}
