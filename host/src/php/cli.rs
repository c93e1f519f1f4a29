//! `host php`: PHP's CLI (`php-cli.wasm`, a wasm32-wasip1 core module) run like a native `php`,
//! with the current directory and `/tmp` mapped in.
//!
//! It exists for PHP's own test suite (`guests/php/run-phpt.sh` runs `run-tests.php` with this
//! as the PHP under test) and for trying PHP code locally. `run-tests.php` starts it hundreds
//! of times, so the compiled module goes through the compile cache (Cranelift needs ~1.5 s for
//! PHP; mapping the cached code takes milliseconds).

use std::path::Path;

use anyhow::{Context as _, Result, anyhow};
use wasmtime::{Caller, Engine, Linker, Module, Store};
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use crate::component::cache::{Cache, Compiled};
use crate::component::loader::read_wasm;
use crate::engine::{self, EngineOptions};
use crate::sandbox::env::{self, Mode};

/// Runs `wasm` with PHP's arguments `args` and the guest environment `given` (`--env`);
/// returns PHP's exit status. Runs on the calling thread: give it a guest-sized stack.
pub fn run(wasm: &Path, args: &[String], given: Vec<(String, String)>) -> Result<u8> {
    let engine = engine::build_engine(EngineOptions { max_instances: 1 })?;
    let module = load_module(&engine, wasm)?;
    let mut store = Store::new(&engine, wasi(args, given)?.build_p1());
    // The engine interrupts on epochs (for Lambda deadlines); a CLI run has no deadline.
    store.set_epoch_deadline(u64::MAX / 2);
    let instance = linker(&engine)?
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

/// The compiled module, through the compile cache when there is one.
fn load_module(engine: &Engine, wasm: &Path) -> Result<Module> {
    let bytes = read_wasm(wasm)?;
    let compiled = match Cache::default_for(false) {
        Some(cache) => cache
            .get_or_compile::<Module>(engine, &bytes)
            .map(|(m, _)| m),
        None => <Module as Compiled>::compile(engine, &bytes),
    };
    compiled
        .map_err(|e| anyhow!("{e:?}"))
        .with_context(|| format!("failed to compile {}", wasm.display()))
}

/// The guest's WASI world: the host's stdio, PHP's arguments, the environment the policy
/// gives, the current directory read-write at its own absolute path and as `.`, and `/tmp`.
fn wasi(args: &[String], given: Vec<(String, String)>) -> Result<WasiCtxBuilder> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stdio()
        // Synchronous, one guest: file system calls may block this thread (see sandbox/mod.rs).
        .allow_blocking_current_thread(true)
        .arg("php")
        .args(args)
        .envs(&env::guest_env(
            Mode::PhpCli,
            [],
            env::php_cli_standard(),
            given,
        ));
    let cwd = std::env::current_dir().context("failed to read the current directory")?;
    let cwd_guest = cwd
        .to_str()
        .ok_or_else(|| anyhow!("the current directory is not UTF-8"))?;
    // `.` first: wasi-libc resolves relative paths against the preopen named `.`, absolute
    // ones against the longest matching preopen.
    let mut maps = vec![(cwd.clone(), ".")];
    if cwd_guest != "/" {
        maps.push((cwd.clone(), cwd_guest));
    }
    if cwd_guest != "/tmp" {
        maps.push((std::env::temp_dir(), "/tmp"));
    }
    for (host, guest) in maps {
        wasi.preopened_dir(&host, guest, FsPerms::ReadWrite)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("failed to map {}", host.display()))?;
    }
    Ok(wasi)
}

/// WASI preview 1, with `proc_exit` that keeps PHP's exit status: wasmtime-wasi turns
/// statuses >= 126 into an error rather than an `I32Exit`, and PHP exits 255 on fatal errors,
/// which run-tests.php checks.
pub fn linker(engine: &Engine) -> Result<Linker<WasiP1Ctx>> {
    let mut linker: Linker<WasiP1Ctx> = Linker::new(engine);
    p1::add_to_linker_sync(&mut linker, |cx| cx)
        .map_err(|e| anyhow!("{e:?}"))
        .context("failed to add WASI to the linker")?;
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
    Ok(linker)
}
