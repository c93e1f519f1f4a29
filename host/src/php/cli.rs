//! `host php`: PHP's CLI (`php-cli.wasm`, a `wasi:cli/command` component) run like a native
//! `php`, with the current directory and `/tmp` mapped in.
//!
//! It exists for PHP's own test suite (`guests/php/run-phpt.sh` runs `run-tests.php` with this
//! as the PHP under test) and for trying PHP code locally. `run-tests.php` starts it hundreds
//! of times, so the compiled component goes through the compile cache (Cranelift needs ~1.5 s
//! for PHP; mapping the cached code takes milliseconds).
//!
//! The guest runs through wasmtime-wasi's async preview 2 bindings on a current-thread tokio
//! runtime, like every other guest of the host. Its network is what `--allow-outbound` opens
//! (`crate::sandbox::net`), nothing by default.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow};
use wasmtime::component::{Component, Instance, Linker, ResourceTable, TypedFunc};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::component::cache::{Cache, Compiled};
use crate::component::loader::read_wasm;
use crate::engine::{self, EngineOptions};
use crate::sandbox::env::{self, Mode};
use crate::sandbox::net::{self, HasOutbound, Outbound, PolicedLookupView};
use crate::sandbox::{NetPolicy, nodelay};

/// Runs `wasm` with PHP's arguments `args`, the guest environment `given` (`--env`), the
/// directories `dirs` (`--allow-dir`, absolute) and the network `policy` (`--allow-outbound`);
/// returns PHP's exit status. Runs on the calling thread: give it a guest-sized stack.
pub fn run(
    wasm: &Path,
    args: &[String],
    given: Vec<(String, String)>,
    dirs: &[PathBuf],
    policy: Arc<NetPolicy>,
) -> Result<u8> {
    let engine = engine::build_engine(EngineOptions { max_instances: 1 })?;
    let component = load_component(&engine, wasm)?;
    run_command(&engine, &component, wasi(wasm, args, given, dirs)?, policy)
        .with_context(|| format!("failed to run {}", wasm.display()))
}

/// The store's data for one run of the CLI.
pub struct CliState {
    /// Arguments, environment, stdio and preopens of this run.
    ctx: WasiCtx,
    /// The guest's WASI resources (streams, descriptors, sockets).
    table: ResourceTable,
    /// Where the guest may connect.
    outbound: Arc<Outbound>,
}

impl HasOutbound for CliState {
    fn policed_lookup(&mut self) -> PolicedLookupView<'_> {
        PolicedLookupView::new(&mut self.ctx, &mut self.table, &self.outbound)
    }
}

impl WasiView for CliState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Runs a `wasi:cli/command` component to its end and returns its exit status: 0 when `run`
/// returns `ok`, 1 for `err`, else the status it passed to `wasi:cli/exit` (PHP exits with
/// `exit-with-code`, so a fatal error's 255 arrives as 255: `guests/php/compat/exit.c`).
/// Shared with `lamp-php-tool cli`, which brings its own engine.
pub fn run_command(
    engine: &Engine,
    component: &Component,
    wasi: WasiCtxBuilder,
    policy: Arc<NetPolicy>,
) -> Result<u8> {
    let mut wasi = wasi;
    let outbound = Outbound::new(policy, "php");
    outbound.configure(&mut wasi);
    let state = CliState {
        ctx: wasi.build(),
        table: ResourceTable::new(),
        outbound,
    };
    let mut store = Store::new(engine, state);
    // The engine interrupts on epochs (for Lambda deadlines); a CLI run has no deadline.
    store.set_epoch_deadline(u64::MAX / 2);
    let linker = linker(engine)?;
    let outcome = crate::engine::guest_runtime()?.block_on(async {
        let instance = linker
            .instantiate_async(&mut store, component)
            .await
            .map_err(|e| anyhow!("{e:?}"))
            .context("failed to instantiate the command")?;
        let run = run_func(&mut store, &instance, component)?;
        Ok::<_, anyhow::Error>(run.call_async(&mut store, ()).await.map(|(r,)| r))
    })?;
    match outcome {
        Ok(Ok(())) => Ok(0),
        Ok(Err(())) => Ok(1),
        Err(err) => match err.downcast_ref::<I32Exit>() {
            Some(I32Exit(status)) => Ok(*status as u8),
            None => Err(anyhow!("{err:?}").context("php trapped")),
        },
    }
}

/// `run` of the command's `wasi:cli/run@0.2.x` export. Looked up by hand: the generated
/// `Command` bindings ask for exactly the version wasmtime-wasi was built with (0.2.12), while
/// wasi-libc's `crt1-command.o` (and ours) export `wasi:cli/run@0.2.0`.
fn run_func(
    store: &mut Store<CliState>,
    instance: &Instance,
    component: &Component,
) -> Result<TypedFunc<(), (Result<(), ()>,)>> {
    let engine = store.engine().clone();
    let name = component
        .component_type()
        .exports(&engine)
        .map(|(name, _)| name)
        .find(|name| name.starts_with("wasi:cli/run@0.2."))
        .ok_or_else(|| anyhow!("not a command: it exports no `wasi:cli/run@0.2.x`"))?
        .to_string();
    let interface = instance
        .get_export_index(&mut *store, None, &name)
        .ok_or_else(|| anyhow!("`{name}` is not an instance"))?;
    let func = instance
        .get_export_index(&mut *store, Some(&interface), "run")
        .ok_or_else(|| anyhow!("`{name}` has no `run`"))?;
    instance
        .get_typed_func(&mut *store, func)
        .map_err(|e| anyhow!("{e:?}"))
        .with_context(|| format!("`{name}#run` is not `func() -> result`"))
}

/// WASI preview 2 (wasmtime-wasi's async bindings), as every `wasi:cli/command` needs.
pub fn linker(engine: &Engine) -> Result<Linker<CliState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .and_then(|()| net::add_lookup_to_linker(&mut linker))
        .and_then(|()| nodelay::add_to_linker(&mut linker))
        .map_err(|e| anyhow!("{e:?}"))
        .context("failed to add WASI to the linker")?;
    Ok(linker)
}

/// The compiled component, through the compile cache when there is one: a file it has
/// compiled before is mapped without being read (see `FileId`; PHP's CLI is 20 MB, and its test
/// suite starts it thousands of times).
fn load_component(engine: &Engine, wasm: &Path) -> Result<Component> {
    let failed = |e: wasmtime::Error| {
        anyhow!("{e:?}").context(format!("failed to compile {}", wasm.display()))
    };
    let Some(cache) = Cache::default_for(false) else {
        return <Component as Compiled>::compile(engine, &read_wasm(wasm)?).map_err(failed);
    };
    let id = cache.file_id::<Component>(engine, wasm);
    if let Some((component, _)) = id.as_ref().and_then(|id| cache.get_known(engine, id)) {
        return Ok(component);
    }
    let (component, cached) = cache
        .get_or_compile::<Component>(engine, &read_wasm(wasm)?)
        .map_err(failed)?;
    if let (Some(id), Some(file)) = (&id, cached.file()) {
        cache.remember(id, file);
    }
    Ok(component)
}

/// The guest's WASI world: the host's stdio, PHP's arguments, the environment the policy
/// gives, the current directory read-write at its own absolute path and as `.`, `/tmp`, the
/// granted `dirs` read-write at their own paths, and the CA certificates read-only as
/// handlers see them.
fn wasi(
    wasm: &Path,
    args: &[String],
    given: Vec<(String, String)>,
    dirs: &[PathBuf],
) -> Result<WasiCtxBuilder> {
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
    // PHP starts there (guests/php/compat/crt_command.c): getcwd() and open_basedir=. as natively.
    wasi.initial_cwd(cwd_guest);
    // `.` first: wasi-libc resolves relative paths against the preopen named `.`, absolute
    // ones against the longest matching preopen.
    let mut maps = vec![(cwd.clone(), ".")];
    // wasi-libc looks an absolute path up in the preopen with the longest matching prefix, and
    // the host refuses `..` out of a preopen: when a granted directory holds the current one,
    // the current one is reached through it, so that `cwd/..` stays inside.
    if cwd_guest != "/" && !dirs.iter().any(|dir| cwd.starts_with(dir)) {
        maps.push((cwd.clone(), cwd_guest));
    }
    if cwd_guest != "/tmp" {
        maps.push((std::env::temp_dir(), "/tmp"));
    }
    for dir in dirs {
        let guest = dir
            .to_str()
            .ok_or_else(|| anyhow!("--allow-dir {}: the path is not UTF-8", dir.display()))?;
        maps.push((dir.clone(), guest));
    }
    for (host, guest) in maps {
        wasi.preopened_dir(&host, guest, FsPerms::ReadWrite)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("failed to map {}", host.display()))?;
    }
    let layers_root = Path::new(crate::resolve::GUEST_LAYERS_ROOT);
    if let Some(ssl) = super::find_ssl_dir(wasm, layers_root) {
        wasi.preopened_dir(&ssl, super::GUEST_SSL_DIR, FsPerms::ReadOnly)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("failed to map {}", ssl.display()))?;
    }
    Ok(wasi)
}
