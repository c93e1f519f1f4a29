//! wasm-lamp's host: runs Lambda handlers as sandboxed WebAssembly components.
//!
//! The binary (`main.rs`) only parses arguments and dispatches to [`commands`]; everything
//! else lives here so that tests can drive it in-process.

pub mod commands;
pub mod context;
pub mod engine;
pub mod error;
pub mod handler;
pub mod loader;
pub mod logging;
pub mod report;
pub mod resolve;
pub mod runtime_api;
pub mod sandbox;
