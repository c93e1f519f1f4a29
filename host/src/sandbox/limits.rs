//! The memory cap of one invocation: a `ResourceLimiter` that counts the guest's linear
//! memory, refuses growth past the function's memory size, and remembers that it did so a
//! trap after it is reported as `Runtime.OutOfMemory`.

use wasmtime::ResourceLimiter;

/// Counts the guest's linear memory and refuses growth past the limit, so a guest that
/// allocates without end fails with `Runtime.OutOfMemory` instead of taking the host down.
#[derive(Debug, Default)]
pub struct MemoryLimiter {
    limit: usize,
    /// Bytes of linear memory the guest holds now (memories never shrink, so also the peak).
    used: usize,
    /// Set when a growth was refused: a trap after that is reported as out of memory.
    refused: bool,
}

impl MemoryLimiter {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// Peak linear memory of this invocation, in bytes.
    pub fn peak(&self) -> usize {
        self.used
    }

    /// Whether the guest asked for more memory than its limit.
    pub fn refused(&self) -> bool {
        self.refused
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Called with current = 0 when a memory is created, so `used` covers initial sizes too.
        let growth = desired.saturating_sub(current);
        if self.used.saturating_add(growth) > self.limit {
            self.refused = true;
            return Ok(false);
        }
        self.used += growth;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million is far beyond any real handler.
        Ok(desired <= 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_counts_initial_memory_and_refuses_past_the_limit() {
        let mut limiter = MemoryLimiter::new(10 << 20);
        assert!(limiter.memory_growing(0, 4 << 20, None).unwrap());
        assert!(limiter.memory_growing(4 << 20, 8 << 20, None).unwrap());
        assert!(!limiter.memory_growing(8 << 20, 12 << 20, None).unwrap());
        assert!(limiter.refused());
        assert_eq!(limiter.peak(), 8 << 20);
    }
}
