//! The one place that owns wasmtime's `Config`.
//!
//! Every path that compiles or loads code (`host run`, `host compile`, `host php`, the bootstrap)
//! builds its engine here: a `.cwasm` only loads into an engine whose settings match the engine
//! that wrote it, so there must be exactly one recipe.

use std::time::Duration;

use anyhow::{Context as _, Result};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig,
};

/// How often the epoch advances. Deadlines are rounded up to whole ticks, so this is the
/// precision of `Sandbox.Timedout`; a tick costs one atomic increment, so 10 ms is cheap.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// PHP's executor polls the deadline itself (guests/php/patches/0013-*): at every jump and
/// function entry it calls this empty function, which our Cranelift
/// (patches/wasmtime-internal-cranelift/) compiles as an inline epoch check, and in return
/// [`EPOCH_POLLED`] gets none at its loop headers, where the SWITCH VM would pay one per
/// opcode: a fifth of an interpreter-bound script (guests/php/README.md). Found by the names
/// in the module's `name` section (component/slim.rs keeps these two).
pub const EPOCH_POLL: &str = "lamp_epoch_poll";
/// The functions that poll [`EPOCH_POLL`] on every path that can repeat: PHP's executor. Only
/// in a module that also has the poll function (a PHP built without the patch keeps its checks).
pub const EPOCH_POLLED: &str = "execute_ex";

/// Wasm stack per invocation. The default 512 KiB traps PHP around JSON nesting depth 2000
/// (`json_encode`/`json_decode` recurse natively); 16 MiB took it past 10,000 on this machine.
pub const MAX_WASM_STACK: usize = 16 << 20;

/// Largest linear memory a guest may reach: all a 32-bit memory can address (Lambda's largest
/// function, 10,240 MB, is more than a wasm32 guest can use). It must not exceed wasmtime's
/// memory reservation (4 GiB on 64-bit hosts), or the pooling allocator refuses the config.
/// The per-invocation limit from `--memory` is enforced below this by the store's limiter.
pub const MAX_MEMORY_BYTES: usize = 4 << 30;

/// The initialised span of a linear memory up to which a compile always makes a copy-on-write
/// image of it. Past wasmtime's default (16 MiB), an image is made only when at least half of
/// the span is data; otherwise every new instance copies each data segment into its memory.
/// A PHP snapshot of a large app is that sparse (its compiled code in Zend MM's 2 MiB chunks,
/// scattered over the heap): with Debian's Adminer deployed (tests/it/apps.rs: 9 MB of
/// compiled code in a span past 16 MiB), every request's instance copied it in, and a page
/// that includes nothing took 9.9 ms instead of 2.3 (debug host; `module_start` copying was
/// half of `perf`'s samples). The zeros in the span cost the `.cwasm` file (that snapshot: 35
/// to 47 MB), not memory: it is mapped, and only the pages an instance touches are read.
/// Bounded so that a module with data segments gigabytes apart does not make the compile
/// allocate them.
const MAX_DENSE_IMAGE_BYTES: u64 = 1 << 30;

/// Bytes of each linear memory slot kept resident between instances (see `pooling_config`).
/// With PAGEMAP_SCAN only the pages an instance dirtied are copied back, so this can be
/// large (a PHP invocation dirties a few hundred KiB; 16 MiB covers a busy one). Without
/// it the whole range is copied back after every instance, so it stays small.
///
/// wasmtime 48 alone copies back at most 32 runs of dirty pages and decommits everything
/// after the 32nd, so a page that dirties more (Adminer's login page, a Twig page) faulted
/// hundreds of pages in again in every instance; our wasmtime (patches/wasmtime/) scans on
/// past 32 runs, up to this budget.
fn linear_memory_keep_resident() -> usize {
    if kernel_has_pagemap_scan() {
        16 << 20
    } else {
        1 << 20
    }
}

/// PAGEMAP_SCAN arrived in Linux 6.7.
pub fn kernel_has_pagemap_scan() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .is_ok_and(|release| kernel_version(&release) >= (6, 7))
}

/// `(major, minor)` of a kernel release string such as `6.1.0-27-amd64`.
fn kernel_version(release: &str) -> (u32, u32) {
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Settings that change what the engine accepts; everything else is fixed here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// Concurrent instances the pooling allocator should have slots for.
    pub max_instances: u32,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self { max_instances: 8 }
    }
}

/// The CPU that compiled code is for.
///
/// Code compiled here to run here (`host run`'s cache, a bootstrap compiling at cold start)
/// uses every feature this CPU has. Code that ships (`host compile`, the php layer's
/// `php.cwasm`) is compiled for a documented baseline that every Lambda host of that
/// architecture has, so that it loads everywhere: the runtime accepts code that needs no more
/// than its CPU has, so a richer CPU still maps it, and the `.cwasm` does not depend on the
/// machine that built it (the same bytes from any builder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeTarget {
    /// This machine, with every CPU feature it has.
    Native,
    /// Lambda's x86_64 baseline: [`X86_64_BASELINE`].
    X86_64,
    /// Lambda's arm64 baseline: [`AARCH64_BASELINE`].
    Aarch64,
}

/// Cranelift's x86 features every Lambda x86_64 host has: x86-64-v3 (Haswell and later Xeons,
/// every AMD EPYC). AWS documents AVX2 as available to x86_64 functions; every CPU with AVX2
/// also has the rest of v3 (BMI1/2, FMA, LZCNT). Not AVX-512: Lambda does not promise it (the
/// build machine here has it, which is how it leaked into shipped code before).
pub const X86_64_BASELINE: &[&str] = &[
    "has_sse3",
    "has_ssse3",
    "has_cmpxchg16b",
    "has_sse41",
    "has_sse42",
    "has_popcnt",
    "has_avx",
    "has_avx2",
    "has_bmi1",
    "has_bmi2",
    "has_fma",
    "has_lzcnt",
];

/// Cranelift's aarch64 features every Lambda arm64 host has. AWS documents arm64 functions as
/// running on Graviton2 (Neoverse N1: Armv8.2 with CRC and crypto), so Armv8.1's atomics
/// (LSE) are there; pointer authentication (Armv8.3) and the optional 8.2 extensions are not
/// promised.
pub const AARCH64_BASELINE: &[&str] = &["has_lse"];

impl CodeTarget {
    /// The Lambda baseline of the architecture this host runs on (what `host compile` makes).
    pub fn lambda_baseline() -> Self {
        if cfg!(target_arch = "aarch64") {
            Self::Aarch64
        } else {
            Self::X86_64
        }
    }

    /// The target triple and the CPU features compiled code may use; `None` for native.
    pub fn triple_and_features(self) -> Option<(&'static str, &'static [&'static str])> {
        match self {
            Self::Native => None,
            Self::X86_64 => Some(("x86_64-unknown-linux-gnu", X86_64_BASELINE)),
            Self::Aarch64 => Some(("aarch64-unknown-linux-gnu", AARCH64_BASELINE)),
        }
    }
}

/// `LAMP_PERFMAP=1` (a developer's switch, for `perf`): wasmtime writes `/tmp/perf-PID.map`
/// naming each compiled guest function, compiled code keeps its ELF symbols, and the PHP
/// snapshots and `host compile` keep the function names they otherwise drop
/// (component/slim.rs), so that `perf report` shows PHP's C functions instead of addresses.
pub fn perfmap() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("LAMP_PERFMAP").is_some_and(|v| v != "0"))
}

/// The compile-affecting settings, shared by every engine we make (so `.cwasm` files agree).
fn base_config(target: CodeTarget) -> Result<Config> {
    let mut config = Config::new();
    if let Some((triple, features)) = target.triple_and_features() {
        // An explicit target turns off the detection of this machine's CPU features; the
        // baseline's are then enabled one by one.
        config.target(triple).map_err(anyhow::Error::from)?;
        for feature in features {
            // SAFETY: executing an instruction the CPU lacks is undefined behaviour, but code
            // compiled with these flags is only ever run after wasmtime's load-time check
            // (`Component::deserialize*`) has found each of them on the running CPU.
            #[allow(unsafe_code)]
            unsafe {
                config.cranelift_flag_enable(feature);
            }
        }
    }
    config
        // Handlers are components of the `lamp:handler` world.
        .wasm_component_model(true)
        // PHP's zend_try/zend_bailout are setjmp/longjmp, which clang lowers to wasm
        // exceptions (exnref); Rust guests do not need them but pay nothing for them.
        .wasm_exceptions(true)
        // No shared memories or atomics for guests. Said here, not left to the default, which
        // follows the crate's features (see the workspace Cargo.toml), so that a `.cwasm` from
        // the full host loads into the layers' bootstrap and the other way round.
        .wasm_threads(false)
        // Deadlines: a guest that loops forever is stopped at the next epoch check.
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        // Handlers are called asynchronously, each call on a stack of this size (from the
        // pool): the wasm stack plus room for the frames of the host calls made on it.
        .async_stack_size(MAX_WASM_STACK + (2 << 20))
        // Trap messages carry function names: they become the Lambda error's stack trace.
        .wasm_backtrace_max_frames(std::num::NonZeroUsize::new(64))
        // Those names come from the frames' functions; the map from every native instruction
        // back to its wasm offset is not used, and it is a large part of a `.cwasm`.
        .generate_address_map(false)
        // Nor are the ELF symbol table (for `objdump` and profilers) and the `.eh_frame` of every
        // function (for native unwinders; wasmtime walks wasm frames by frame pointers): together
        // 240 KB of a zipped php.cwasm, and registering the unwind info costs every cold start.
        .debug_symbols(perfmap())
        .native_unwind_info(false)
        .cranelift_opt_level(OptLevel::Speed)
        // A fresh instance per invocation maps the initial memory image copy-on-write
        // instead of copying data segments: PHP's 3 MB of data costs a page fault per touch.
        .memory_init_cow(true)
        // ...however sparse the image (see `MAX_DENSE_IMAGE_BYTES`).
        .memory_guaranteed_dense_image_size(MAX_DENSE_IMAGE_BYTES);
    poll_where_php_polls(&mut config);
    // Cranelift's incremental cache (component/functions.rs), where the full host has it: the
    // code is the same with it or without.
    #[cfg(feature = "incremental")]
    if let Some(functions) = crate::component::functions::shared() {
        config
            .enable_incremental_compilation(functions)
            .map_err(anyhow::Error::from)?;
    }
    if perfmap() {
        // The perf map is written from the code's ELF symbols (kept above only for it).
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    Ok(config)
}

/// Turns on the translator settings of [`EPOCH_POLL`]: every engine of ours has them, and so
/// does `lamp-php-tool cli`, which compiles PHP as the host does.
pub fn poll_where_php_polls(config: &mut Config) {
    // SAFETY: settings of wasmtime's translator, not of the code's target.
    #[allow(unsafe_code)]
    unsafe {
        config.cranelift_flag_set("wasmtime_epoch_poll", EPOCH_POLL);
        config.cranelift_flag_set("wasmtime_epoch_loop_exempt", EPOCH_POLLED);
    }
}

/// Ends a compile for Cranelift's incremental cache, where the full host has one
/// (component/functions.rs): keeps what the compile added. Call it after each compile.
pub fn compiled() {
    #[cfg(feature = "incremental")]
    crate::component::functions::flush();
}

/// Our change to the code wasmtime's translator makes (see [`EPOCH_POLL`]): a new version of
/// it must not map code the old one compiled.
const TRANSLATOR_PATCH: &str =
    include_str!("../../patches/wasmtime-internal-cranelift/epoch-poll.patch");

/// A hash of everything that decides the code an engine compiles: wasmtime's compatibility
/// hash, plus our translator settings ([`EPOCH_POLL`]), which that hash does not cover. The
/// compile caches' keys (component/cache.rs, php/snapshot.rs).
pub fn code_hash(engine: &Engine) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    (EPOCH_POLL, EPOCH_POLLED, TRANSLATOR_PATCH).hash(&mut hasher);
    hasher.finish()
}

/// What a `.cwasm` was compiled for, as its `.wasmtime.engine` section records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledFor {
    /// The wasmtime version that wrote it.
    pub wasmtime: String,
    /// The target triple.
    pub triple: String,
    /// The CPU features its code may use (Cranelift's `has_*` flags that are on).
    pub features: Vec<String>,
}

impl CompiledFor {
    /// Reads the engine section of a precompiled component or module.
    ///
    /// Its layout is wasmtime's (`engine/serialization.rs`): a format byte (0), the version
    /// string with a one-byte length, then postcard-encoded metadata that starts with the
    /// triple, the shared flags and the ISA flags, each flag a name and a value.
    pub fn read(cwasm: &[u8]) -> Result<Self> {
        use object::{Object as _, ObjectSection as _};
        let file = object::File::parse(cwasm).context("not an ELF file: not a .cwasm")?;
        let section = file
            .section_by_name(".wasmtime.engine")
            .context("no `.wasmtime.engine` section: not a .cwasm")?;
        let data = section
            .data()
            .context("unreadable `.wasmtime.engine` section")?;
        let mut reader = Postcard(data);
        anyhow::ensure!(reader.byte()? == 0, "unknown `.wasmtime.engine` format");
        let version_len = reader.byte()? as usize;
        let wasmtime = String::from_utf8_lossy(reader.take(version_len)?).into_owned();
        let triple = reader.str()?.to_string();
        let _shared_flags = reader.flags()?;
        let features = reader
            .flags()?
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| name.to_string())
            .collect();
        Ok(Self {
            wasmtime,
            triple,
            features,
        })
    }
}

/// Just enough of postcard's encoding to read the start of wasmtime's engine metadata.
struct Postcard<'a>(&'a [u8]);

impl<'a> Postcard<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        anyhow::ensure!(self.0.len() >= n, "truncated `.wasmtime.engine` section");
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    /// An unsigned LEB128 integer, as postcard writes lengths and enum tags.
    fn varint(&mut self) -> Result<usize> {
        let mut value = 0usize;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        anyhow::bail!("malformed integer in `.wasmtime.engine` section")
    }

    fn str(&mut self) -> Result<&'a str> {
        let len = self.varint()?;
        std::str::from_utf8(self.take(len)?).context("malformed `.wasmtime.engine` section")
    }

    /// A list of `(name, FlagValue)`: `Enum(&str)`, `Num(u8)` or `Bool(bool)`; true for
    /// a boolean flag that is on.
    fn flags(&mut self) -> Result<Vec<(&'a str, bool)>> {
        let count = self.varint()?;
        let mut flags = Vec::with_capacity(count.min(256));
        for _ in 0..count {
            let name = self.str()?;
            let on = match self.varint()? {
                0 => self.str().map(|_| false)?,
                1 => self.byte().map(|_| false)?,
                2 => self.byte()? == 1,
                tag => anyhow::bail!("unknown flag value {tag} in `.wasmtime.engine` section"),
            };
            flags.push((name, on));
        }
        Ok(flags)
    }
}

/// The pooling allocator keeps instance slots, memories and tables warm between invocations,
/// which is what makes a fresh instance per event cost microseconds. It reserves address
/// space up front, so it is sized to the concurrency we serve.
fn pooling_config(options: EngineOptions) -> PoolingAllocationConfig {
    let instances = options.max_instances.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(instances)
        // A componentized PHP has the main module, the WASI adapter and small shims.
        .total_core_instances(instances * 8)
        .max_core_instances_per_component(16)
        .total_memories(instances * 4)
        .max_memories_per_component(4)
        .total_tables(instances * 8)
        .max_tables_per_component(8)
        .max_memory_size(MAX_MEMORY_BYTES)
        .max_component_instance_size(1 << 20)
        .max_core_instance_size(1 << 20)
        .table_elements(100_000)
        // One async stack per concurrent call (the pool's default of 1,000 costs ~1.7 ms of
        // every cold start to set up).
        .total_stacks(instances)
        .total_gc_heaps(instances)
        // After an instance, reset the pages it dirtied in place (up to this much) instead of
        // unmapping them, so the next instance does not fault them in again. With
        // PAGEMAP_SCAN (Linux 6.7+) only the dirty pages anywhere in the memory are copied
        // back from the image; without it, the lowest addresses are.
        .linear_memory_keep_resident(linear_memory_keep_resident())
        .table_keep_resident(64 << 10)
        .pagemap_scan(Enabled::Auto);
    pool
}

/// Builds the engine. The pooling allocator is used where the machine lets us reserve its
/// address space (some containers cap virtual memory); otherwise instances are allocated on
/// demand, which is slower per invocation but otherwise the same.
pub fn build_engine(options: EngineOptions) -> Result<Engine> {
    build_engine_for(options, CodeTarget::Native)
}

/// [`build_engine`] compiling for `target` (see [`CodeTarget`]); code compiled for another
/// architecture can only be serialized, not run.
pub fn build_engine_for(options: EngineOptions, target: CodeTarget) -> Result<Engine> {
    if target != CodeTarget::Native {
        // Only compiles (no instances, so no pool); the allocation strategy is not part of
        // what a `.cwasm` records, so the pooled runtime engine still loads its output.
        return Engine::new(&base_config(target)?)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("failed to create a wasmtime engine for {target:?}"));
    }
    let engine = match pooled_engine(options, target) {
        Ok(engine) => engine,
        Err(err) => {
            tracing::warn!(
                "the pooling allocator is unavailable ({err:#}); allocating instances on demand, which is slower"
            );
            Engine::new(&base_config(target)?)
                .map_err(anyhow::Error::from)
                .context("failed to create the wasmtime engine")?
        }
    };
    start_epoch_ticker(&engine);
    Ok(engine)
}

/// The engine with the pooling allocator, or why it cannot be made here.
fn pooled_engine(options: EngineOptions, target: CodeTarget) -> Result<Engine> {
    let mut pooled = base_config(target)?;
    pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(options)));
    Engine::new(&pooled).map_err(anyhow::Error::from)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a background thread for the rest of
/// the engine's life. One ticker per engine; engines are few (one per process in practice).
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("failed to spawn the epoch ticker thread");
}

/// Native stack for threads that call guests synchronously (`host php`): wasm frames live on
/// the calling thread's stack, so it must hold [`MAX_WASM_STACK`] plus the host's own frames,
/// or a deep guest would hit the thread's guard page instead of a clean `Runtime.StackOverflow`
/// trap. Handlers are called asynchronously, on stacks of `async_stack_size` that wasmtime
/// makes for each call.
pub const GUEST_THREAD_STACK: usize = MAX_WASM_STACK + (8 << 20);

/// Runs `f` on a fresh thread with a [`GUEST_THREAD_STACK`] stack and waits for it.
pub fn on_guest_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("guest".into())
            .stack_size(GUEST_THREAD_STACK)
            .spawn_scoped(scope, f)
            .expect("failed to spawn a guest thread")
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Runs `future` to its end on a runtime of its own on this thread: for callers outside any
/// runtime (`host run`, the tests) of what must run inside one (a handler invocation, whose
/// host calls use tokio's timers and I/O).
pub fn block_on<F: Future>(future: F) -> Result<F::Output> {
    Ok(guest_runtime()?.block_on(future))
}

/// A runtime for one guest run by `block_on` on this thread. Its one worker thread drives the
/// I/O and timers while the guest computes: a guest that polls a non-blocking socket in a loop
/// (a TLS handshake, `while (0 === stream_socket_enable_crypto(...))`) makes host calls that
/// never wait, and on a runtime of this thread alone the readiness of its socket would never
/// be updated, so the loop would never end.
pub fn guest_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pooling settings must be valid: a bad one silently costs every invocation.
    #[test]
    fn the_pooling_allocator_accepts_our_settings() {
        pooled_engine(EngineOptions::default(), CodeTarget::Native).unwrap();
        pooled_engine(EngineOptions { max_instances: 64 }, CodeTarget::Native).unwrap();
    }

    /// Compiling for a baseline records exactly its features, whatever this CPU has; the
    /// native engine still loads it.
    #[test]
    fn baseline_code_records_only_the_baseline_and_loads_natively() {
        let wasm = wat::parse_str(
            r#"(component (core module (func (export "f") (param i32) (result i32)
                local.get 0 i32.popcnt)))"#,
        )
        .unwrap();
        let baseline = build_engine_for(EngineOptions::default(), CodeTarget::X86_64).unwrap();
        let cwasm = baseline.precompile_component(&wasm).unwrap();
        let compiled = CompiledFor::read(&cwasm).unwrap();
        assert_eq!(compiled.triple, "x86_64-unknown-linux-gnu");
        let mut expected: Vec<_> = X86_64_BASELINE.iter().map(|f| f.to_string()).collect();
        let mut found = compiled.features.clone();
        expected.sort();
        found.sort();
        assert_eq!(found, expected);
        if cfg!(target_arch = "x86_64") {
            let native = build_engine(EngineOptions::default()).unwrap();
            #[allow(unsafe_code)]
            // SAFETY: the bytes were just made by `precompile_component` above.
            unsafe { wasmtime::component::Component::deserialize(&native, &cwasm) }.unwrap();
        }
    }

    /// An initial memory as sparse as a PHP snapshot of a large app (a little data, far apart,
    /// in a span past wasmtime's 16 MiB) still gets its copy-on-write image: the compiled code
    /// holds the whole span. With wasmtime's default it would not (each instance copying the
    /// segments in), as the second compile shows.
    #[test]
    fn a_sparse_initial_memory_is_still_an_image() {
        let wasm = wat::parse_str(
            r#"(component (core module (memory 400)
                (data (i32.const 0) "first")
                (data (i32.const 25165824) "last")))"#,
        )
        .unwrap();
        let ours = build_engine_for(EngineOptions::default(), CodeTarget::Native).unwrap();
        let imaged = ours.precompile_component(&wasm).unwrap();
        assert!(imaged.len() > 24 << 20, "no image: {} bytes", imaged.len());
        let mut config = base_config(CodeTarget::Native).unwrap();
        config.memory_guaranteed_dense_image_size(16 << 20);
        let default = Engine::new(&config).unwrap();
        let copied = default.precompile_component(&wasm).unwrap();
        assert!(copied.len() < 1 << 20, "an image: {} bytes", copied.len());
    }

    /// PHP's executor checks the deadline where it polls, not at its loop headers (see
    /// [`EPOCH_POLL`]); any other function, or the executor of a module without the poll
    /// function, still checks at every loop header. Here the epoch passes the deadline inside
    /// the function (the import `tick`), after its entry's check.
    #[test]
    fn the_executor_checks_the_deadline_where_it_polls() {
        let body = r#"(param $n i32) (param $poll i32)
            call $tick
            (loop $l
              (if (local.get $poll) (then (call $poll)))
              (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))"#;
        let module = |poll: &str| {
            format!(
                r#"(module (import "host" "tick" (func $tick))
                    (func $poll (@name "{poll}"))
                    (func (@name "{EPOCH_POLLED}") (export "executor") {body})
                    (func (@name "other") (export "other") {body}))"#
            )
        };
        let engine = Engine::new(&base_config(CodeTarget::Native).unwrap()).unwrap();
        let run = |wat: &str, func: &str, poll: bool| -> Result<(), wasmtime::Trap> {
            let module = wasmtime::Module::new(&engine, wat::parse_str(wat).unwrap()).unwrap();
            let mut store = wasmtime::Store::new(&engine, ());
            let tick = wasmtime::Func::wrap(&mut store, |caller: wasmtime::Caller<'_, ()>| {
                caller.engine().increment_epoch();
            });
            let instance = wasmtime::Instance::new(&mut store, &module, &[tick.into()]).unwrap();
            let f = instance
                .get_typed_func::<(i32, i32), ()>(&mut store, func)
                .unwrap();
            store.set_epoch_deadline(1);
            f.call(&mut store, (1000, i32::from(poll)))
                .map_err(|e| *e.downcast_ref::<wasmtime::Trap>().expect("a trap"))
        };
        let ours = module(EPOCH_POLL);
        assert_eq!(
            run(&ours, "executor", false),
            Ok(()),
            "the executor's loop is not checked"
        );
        assert_eq!(
            run(&ours, "executor", true),
            Err(wasmtime::Trap::Interrupt),
            "its poll is"
        );
        assert_eq!(run(&ours, "other", false), Err(wasmtime::Trap::Interrupt));
        let without_poll = module("another_function");
        assert_eq!(
            run(&without_poll, "executor", false),
            Err(wasmtime::Trap::Interrupt),
            "a module without the poll function keeps every check"
        );
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(kernel_version("6.18.44-fc-v595\n"), (6, 18));
        assert_eq!(kernel_version("5.10.227-219.884.amzn2.x86_64"), (5, 10));
        assert_eq!(kernel_version("6.7"), (6, 7));
        assert_eq!(kernel_version("garbage"), (0, 0));
    }
}
