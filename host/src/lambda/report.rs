//! Lambda's `REPORT` line, from measured figures.

use std::fmt;
use std::time::Duration;

/// The figures of one invocation, shown as Lambda shows them.
pub struct Report<'a> {
    pub request_id: &'a str,
    pub duration: Duration,
    pub memory_mb: u32,
    /// Peak linear memory of the guest, in bytes.
    pub peak_memory: usize,
    /// Loading and compiling the handler; only on the first invocation of an environment.
    pub init_duration: Option<Duration>,
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.duration.as_secs_f64() * 1000.0;
        // Lambda bills whole milliseconds, rounded up.
        let billed = (self.duration.as_nanos().div_ceil(1_000_000)).max(1);
        let used_mb = self.peak_memory.div_ceil(1 << 20);
        write!(
            f,
            "REPORT RequestId: {}\tDuration: {ms:.2} ms\tBilled Duration: {billed} ms\tMemory Size: {} MB\tMax Memory Used: {used_mb} MB",
            self.request_id, self.memory_mb
        )?;
        if let Some(init) = self.init_duration {
            write!(f, "\tInit Duration: {:.2} ms", init.as_secs_f64() * 1000.0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_has_lambda_shape() {
        let report = Report {
            request_id: "abc",
            duration: Duration::from_micros(1500),
            memory_mb: 128,
            peak_memory: (3 << 20) + 1,
            init_duration: Some(Duration::from_millis(7)),
        };
        assert_eq!(
            report.to_string(),
            "REPORT RequestId: abc\tDuration: 1.50 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 4 MB\tInit Duration: 7.00 ms"
        );
    }
}
