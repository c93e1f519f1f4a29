//! The poll loop: events in, one fresh instance each, results out.
//!
//! [`run_with_incoming`] takes its events from an [`Incoming`] source, so tests feed it a list
//! without sockets; the bootstrap feeds it [`ApiEvents`] (`/next`, retried for a bounded time).
//! Each event goes through separate steps: the deadline check ([`Runtime::warn_bad_deadline`]),
//! the invocation on a blocking thread ([`invoke`]: deadline, sandbox and failure
//! classification happen in [`Function::invoke`]), the answer ([`respond`]: a response over
//! the API's limit becomes an error), and every post through [`post_with_retry`].

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::watch;

use super::api::{
    EventErrorRequest, EventResponseRequest, IntoRequest, NextEvent, PostOutcome, Poster,
    RuntimeApi,
};
use super::cold_start::ColdStart;
use crate::error::{LambdaError, types};
use crate::function::Function;

/// A source of events for the loop.
pub trait Incoming: Send {
    /// The next event; `None` when the source has no more (a test's list ran out), an error
    /// when it gave up (the Runtime API has been unreachable for too long).
    fn next_event(&mut self) -> impl Future<Output = Option<Result<NextEvent>>> + Send;
}

/// A list of events, in order (tests).
impl Incoming for std::vec::IntoIter<NextEvent> {
    fn next_event(&mut self) -> impl Future<Output = Option<Result<NextEvent>>> + Send {
        std::future::ready(self.next().map(Ok))
    }
}

/// Events from the Runtime API's `/next`, which is retried with backoff for up to
/// `give_up_after` before the source gives up.
pub struct ApiEvents {
    pub api: RuntimeApi,
    pub give_up_after: Duration,
}

impl Incoming for ApiEvents {
    async fn next_event(&mut self) -> Option<Result<NextEvent>> {
        let failing_since = Instant::now();
        let mut backoff = Backoff::new();
        loop {
            let error = match self.api.next_event().await {
                Ok(event) => return Some(Ok(event)),
                Err(e) => e,
            };
            if failing_since.elapsed() >= self.give_up_after {
                return Some(Err(anyhow::anyhow!(
                    "giving up: /invocation/next has failed for {:.0} s (last: {error:#}); is the Runtime API at {} up?",
                    failing_since.elapsed().as_secs_f64(),
                    self.api.base()
                )));
            }
            tracing::warn!("/invocation/next failed, retrying: {error:#}");
            backoff.wait().await;
        }
    }
}

/// What every poller shares: the function, where results go, and what is logged once.
pub struct Runtime<P> {
    pub function: Function,
    pub poster: P,
    warned_deadline: AtomicBool,
    /// Init's breakdown, until the first invocation logs it with its own.
    cold_start: Mutex<Option<ColdStart>>,
}

impl<P: Poster> Runtime<P> {
    pub fn new(function: Function, poster: P, cold_start: Option<ColdStart>) -> Self {
        Self {
            function,
            poster,
            warned_deadline: AtomicBool::new(false),
            cold_start: Mutex::new(cold_start),
        }
    }

    /// A `Lambda-Runtime-Deadline-Ms` that is not a plausible epoch time is replaced by the
    /// configured timeout; said once, not for every event.
    fn warn_bad_deadline(&self, event: &NextEvent) {
        let Some(raw) = &event.bad_deadline else {
            return;
        };
        if !self.warned_deadline.swap(true, Ordering::Relaxed) {
            tracing::warn!(request_id = %event.request_id, "Lambda-Runtime-Deadline-Ms `{raw}` is not a plausible epoch time in ms; using the configured timeout ({:.1} s) for this and later events", self.function.config.timeout.as_secs_f64());
        }
    }
}

/// One poller: serves events from `incoming` until it ends (`Ok`), gives up (`Err`), or
/// `stop` turns true (after the invocation in flight is answered).
pub async fn run_with_incoming<P: Poster>(
    runtime: Arc<Runtime<P>>,
    mut incoming: impl Incoming,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    loop {
        let stopped = async {
            // A dropped sender never stops the loop: only `true` does.
            if stop.wait_for(|stop| *stop).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let next = tokio::select! {
            biased;
            () = stopped => return Ok(()),
            next = incoming.next_event() => next,
        };
        match next {
            None => return Ok(()),
            Some(Err(e)) => return Err(e),
            Some(Ok(event)) => process(&runtime, event).await,
        }
    }
}

/// One event, start to end.
async fn process<P: Poster>(runtime: &Arc<Runtime<P>>, event: NextEvent) {
    runtime.warn_bad_deadline(&event);
    let request_id = event.request_id.clone();
    let (result, timing) = invoke(runtime, event).await;
    respond(&runtime.poster, &request_id, result).await;
    let cold = runtime.cold_start.lock().unwrap().take();
    if let (Some(cold), Some((instantiate, duration))) = (cold, timing) {
        cold.log(&request_id, instantiate, duration);
    }
}

/// Runs the invocation in a task of its own (a panic in it fails this invocation only);
/// returns its result and, when it ran, (instantiate, duration).
async fn invoke<P: Poster>(
    runtime: &Arc<Runtime<P>>,
    event: NextEvent,
) -> (Result<String, LambdaError>, Option<(Duration, Duration)>) {
    let request_id = event.request_id.clone();
    let invoking = runtime.clone();
    match tokio::spawn(async move { invoking.function.invoke(&event).await }).await {
        Ok(outcome) => {
            tracing::debug!(request_id = %request_id, duration_ms = %format!("{:.3}", ms(outcome.duration)), instantiate_ms = %format!("{:.3}", ms(outcome.instantiate)), peak_mb = outcome.peak_memory >> 20, "invocation done");
            (
                outcome.result,
                Some((outcome.instantiate, outcome.duration)),
            )
        }
        Err(join) => {
            let message = format!("the invocation thread failed: {join}");
            (Err(LambdaError::new(types::SANDBOX, message)), None)
        }
    }
}

/// Posts the response, or the error; a response the API finds too large becomes an error for
/// that request, so the caller learns why instead of waiting for a timeout.
async fn respond(poster: &impl Poster, request_id: &str, result: Result<String, LambdaError>) {
    let error = match result {
        Ok(body) => {
            let posted = post_with_retry(poster, request_id, || EventResponseRequest {
                request_id,
                body: &body,
            })
            .await;
            if posted != Some(PostOutcome::TooLarge) {
                return;
            }
            LambdaError::new(
                types::RESPONSE_TOO_LARGE,
                format!(
                    "the response ({} bytes) is larger than the Runtime API accepts; return less, or store it (e.g. in S3) and return a reference",
                    body.len()
                ),
            )
        }
        Err(error) => {
            tracing::info!(request_id = %request_id, "invocation failed: {error}");
            error
        }
    };
    let make = || EventErrorRequest {
        request_id,
        error: &error,
    };
    post_with_retry(poster, request_id, make).await;
}

/// Posts, retrying connection failures and 5xx with backoff. A 4xx is final: it is logged
/// and the runtime moves on (Lambda answers 400 to a second result for one request id).
pub async fn post_with_retry<R: IntoRequest + Send>(
    poster: &impl Poster,
    what: &str,
    make: impl Fn() -> R,
) -> Option<PostOutcome> {
    const ATTEMPTS: u32 = 8;
    let mut backoff = Backoff::new();
    for attempt in 1..=ATTEMPTS {
        match poster.post(make()).await {
            Ok(PostOutcome::Rejected(status, body)) => {
                tracing::warn!(request_id = %what, "the Runtime API refused the post ({status}): {body}; moving on");
                return Some(PostOutcome::Rejected(status, body));
            }
            Ok(outcome) => return Some(outcome),
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(request_id = %what, "post failed (attempt {attempt} of {ATTEMPTS}), retrying: {e:#}");
                backoff.wait().await;
            }
            Err(e) => {
                tracing::error!(request_id = %what, "post failed {ATTEMPTS} times, giving up on it: {e:#}");
            }
        }
    }
    None
}

/// Exponential backoff from 10 ms, doubling up to 1 s.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Self {
            next: Duration::from_millis(10),
        }
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(Duration::from_secs(1));
    }
}

pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
