//! wasm-lamp's host: runs Lambda handlers as sandboxed WebAssembly components.
//!
//! The binary (`main.rs`) only parses arguments and dispatches to [`commands`]; everything
//! else lives here so that tests can drive it in-process. The way through it:
//! [`function::Function::load`] ([`resolve`] the handler, [`engine`], [`component::loader`],
//! link, [`sandbox`] template), then [`function::Function::invoke`] per event, from `host run`
//! or from [`lambda`]'s poll loop.

pub mod commands;
pub mod component;
pub mod engine;
pub mod error;
pub mod function;
pub mod lambda;
pub mod logging;
pub mod php;
pub mod resolve;
pub mod sandbox;
pub mod web;

/// When `main` started, for the cold-start breakdown the bootstrap logs.
static PROCESS_START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Records the start of the process; `main` calls it first thing (later calls do nothing).
pub fn mark_process_start() {
    PROCESS_START.get_or_init(std::time::Instant::now);
}

/// Time since [`mark_process_start`] (or since the first call of this, if it was never called).
pub fn since_process_start() -> std::time::Duration {
    PROCESS_START.get_or_init(std::time::Instant::now).elapsed()
}
