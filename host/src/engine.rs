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

/// Wasm stack per invocation. The default 512 KiB traps PHP around JSON nesting depth 2000
/// (`json_encode`/`json_decode` recurse natively); 16 MiB took it past 10,000 on this machine.
pub const MAX_WASM_STACK: usize = 16 << 20;

/// Largest linear memory a guest may reach: all a 32-bit memory can address (Lambda's largest
/// function, 10,240 MB, is more than a wasm32 guest can use). It must not exceed wasmtime's
/// memory reservation (4 GiB on 64-bit hosts), or the pooling allocator refuses the config.
/// The per-invocation limit from `--memory` is enforced below this by the store's limiter.
pub const MAX_MEMORY_BYTES: usize = 4 << 30;

/// Bytes of each linear memory slot kept resident between instances (see `pooling_config`).
/// With PAGEMAP_SCAN only the pages an instance dirtied are copied back, so this can be
/// large (a PHP invocation dirties a few hundred KiB; 16 MiB covers a busy one). Without
/// it the whole range is copied back after every instance, so it stays small.
fn linear_memory_keep_resident() -> usize {
    if kernel_has_pagemap_scan() {
        16 << 20
    } else {
        1 << 20
    }
}

/// PAGEMAP_SCAN arrived in Linux 6.7.
fn kernel_has_pagemap_scan() -> bool {
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

/// The compile-affecting settings, shared by every engine we make (so `.cwasm` files agree).
fn base_config() -> Config {
    let mut config = Config::new();
    config
        // Handlers are components of the `lamp:handler` world.
        .wasm_component_model(true)
        // PHP's zend_try/zend_bailout are setjmp/longjmp, which clang lowers to wasm
        // exceptions (exnref); Rust guests do not need them but pay nothing for them.
        .wasm_exceptions(true)
        // Deadlines: a guest that loops forever is stopped at the next epoch check.
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        // wasmtime insists on this even for synchronous calls, which never use it.
        .async_stack_size(MAX_WASM_STACK + (1 << 20))
        // Trap messages carry function names: they become the Lambda error's stack trace.
        .wasm_backtrace_max_frames(std::num::NonZeroUsize::new(64))
        // Those names come from the frames' functions; the map from every native instruction
        // back to its wasm offset is not used, and it is a large part of a `.cwasm`.
        .generate_address_map(false)
        // Nor are the ELF symbol table (for `objdump` and profilers) and the `.eh_frame` of every
        // function (for native unwinders; wasmtime walks wasm frames by frame pointers): together
        // 240 KB of a zipped php.cwasm, and registering the unwind info costs every cold start.
        .debug_symbols(false)
        .native_unwind_info(false)
        .cranelift_opt_level(OptLevel::Speed)
        // A fresh instance per invocation maps the initial memory image copy-on-write
        // instead of copying data segments: PHP's 3 MB of data costs a page fault per touch.
        .memory_init_cow(true);
    config
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
        // Guests run synchronously, so async stacks are never used, but the pool sets up
        // `total_stacks` of them (1,000 by default: ~1.7 ms of every cold start).
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
    let engine = match pooled_engine(options) {
        Ok(engine) => engine,
        Err(err) => {
            tracing::warn!(
                "the pooling allocator is unavailable ({err:#}); allocating instances on demand, which is slower"
            );
            Engine::new(&base_config())
                .map_err(anyhow::Error::from)
                .context("failed to create the wasmtime engine")?
        }
    };
    start_epoch_ticker(&engine);
    Ok(engine)
}

/// The engine with the pooling allocator, or why it cannot be made here.
fn pooled_engine(options: EngineOptions) -> Result<Engine> {
    let mut pooled = base_config();
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

/// Epoch ticks for a duration, rounded up, at least one.
pub fn ticks_for(duration: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos();
    (duration.as_nanos().div_ceil(tick)).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pooling settings must be valid: a bad one silently costs every invocation.
    #[test]
    fn the_pooling_allocator_accepts_our_settings() {
        pooled_engine(EngineOptions::default()).unwrap();
        pooled_engine(EngineOptions { max_instances: 64 }).unwrap();
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(kernel_version("6.18.44-fc-v595\n"), (6, 18));
        assert_eq!(kernel_version("5.10.227-219.884.amzn2.x86_64"), (5, 10));
        assert_eq!(kernel_version("6.7"), (6, 7));
        assert_eq!(kernel_version("garbage"), (0, 0));
    }

    #[test]
    fn ticks_round_up() {
        assert_eq!(ticks_for(Duration::from_millis(1)), 1);
        assert_eq!(ticks_for(Duration::from_millis(10)), 1);
        assert_eq!(ticks_for(Duration::from_millis(11)), 2);
        assert_eq!(ticks_for(Duration::from_secs(3)), 300);
    }
}

/// Native stack for threads that run guests: wasm frames live on the calling thread's stack,
/// so it must hold [`MAX_WASM_STACK`] plus the host's own frames, or a deep guest would hit
/// the thread's guard page instead of a clean `Runtime.StackOverflow` trap.
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
