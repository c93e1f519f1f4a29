//! Where the time of a cold start went, logged once after the first result is posted
//! (`cold start` at INFO; `lamp-bench` reports the medians of its fields, by name).

use std::time::Duration;

use super::runtime::ms;
use crate::function::InitTimings;

/// Init's share of a cold start.
#[derive(Debug, Default, Clone, Copy)]
pub struct ColdStart {
    /// `main` → settings read (logging; the async runtime starts after it, while init runs).
    pub startup: Duration,
    /// The steps of [`crate::function::Function::load`].
    pub init: InitTimings,
    /// `main` → ready to poll.
    pub ready: Duration,
}

impl ColdStart {
    /// One line from `main` to the first result posted, with the first invocation's
    /// instantiation and handling.
    pub fn log(&self, request_id: &str, instantiate: Duration, duration: Duration) {
        let f = |d: Duration| format!("{:.3}", ms(d));
        let init = &self.init;
        tracing::info!(
            request_id = %request_id,
            startup_ms = %f(self.startup),
            resolve_ms = %f(init.resolve),
            engine_ms = %f(init.engine),
            load_ms = %f(init.load),
            link_ms = %f(init.link),
            sandbox_ms = %f(init.sandbox),
            snapshot_ms = %f(init.snapshot),
            init_ms = %f(self.ready),
            instantiate_ms = %f(instantiate),
            handle_ms = %f(duration.saturating_sub(instantiate)),
            total_ms = %f(crate::since_process_start()),
            "cold start"
        );
    }
}
