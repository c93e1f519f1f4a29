//! Deadlines as the Runtime API gives them (epoch milliseconds in `Lambda-Runtime-Deadline-Ms`)
//! and the time an invocation may take because of them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::api::NextEvent;

/// How long the invocation of `event` may run: until its deadline, or `fallback` (the
/// function's configured timeout) when it carries none.
pub fn timeout_for(event: &NextEvent, fallback: Duration) -> Duration {
    match event.deadline_ms {
        Some(deadline) => remaining(deadline),
        None => fallback,
    }
}

/// Milliseconds since the Unix epoch.
pub fn epoch_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Time left until a deadline in epoch milliseconds (zero if it has passed).
pub fn remaining(deadline_ms: u64) -> Duration {
    Duration::from_millis(deadline_ms.saturating_sub(epoch_ms(SystemTime::now())))
}
