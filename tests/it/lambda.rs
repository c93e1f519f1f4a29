//! The poll loop through the library, fed from an in-memory list of events, its posts recorded
//! in memory: no socket, no HTTP server. The mock Runtime API (`bootstrap.rs`) covers the wire.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use host::lambda::api::{IntoRequest, NextEvent, PostOutcome, Poster};
use host::lambda::runtime::{Runtime, run_with_incoming};
use http_body_util::BodyExt as _;
use test_artifacts as guests;

use crate::invoke::function;

/// A post as the Runtime API would have received it.
#[derive(Debug, Clone)]
struct Post {
    path: String,
    error_type: Option<String>,
    body: String,
}

/// Records every post and answers as told: `answers` are used first (one per post), then 202.
#[derive(Default)]
struct Recorder {
    posts: Mutex<Vec<Post>>,
    answers: Mutex<Vec<anyhow::Result<PostOutcome>>>,
}

impl Poster for Recorder {
    async fn post<R: IntoRequest + Send>(&self, request: R) -> anyhow::Result<PostOutcome> {
        let (parts, body) = request.into_request("http://in-memory").into_parts();
        let body: Bytes = body.collect().await.unwrap().to_bytes();
        self.posts.lock().unwrap().push(Post {
            path: parts.uri.path().to_string(),
            error_type: parts
                .headers
                .get("Lambda-Runtime-Function-Error-Type")
                .map(|v| v.to_str().unwrap().to_string()),
            body: String::from_utf8(body.to_vec()).unwrap(),
        });
        let mut answers = self.answers.lock().unwrap();
        if answers.is_empty() {
            Ok(PostOutcome::Accepted)
        } else {
            answers.remove(0)
        }
    }
}

/// An echo-fixture event (`{"do": action}`) with a deadline `timeout` from now.
fn event(id: &str, action: &str, timeout: Duration) -> NextEvent {
    let mut event = NextEvent::local(format!(r#"{{"do":"{action}"}}"#), timeout);
    event.request_id = id.to_string();
    event
}

/// Runs the loop over `events` until the list runs out; returns what was posted.
fn serve(events: Vec<NextEvent>, answers: Vec<anyhow::Result<PostOutcome>>) -> Vec<Post> {
    let function = function(guests::FIXTURE_ECHO, Duration::from_secs(3));
    let recorder = Recorder {
        answers: Mutex::new(answers),
        ..Recorder::default()
    };
    let runtime = Arc::new(Runtime::new(function, recorder, None));
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_stack_size(host::engine::GUEST_THREAD_STACK)
        .enable_all()
        .build()
        .unwrap();
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio
        .block_on(run_with_incoming(runtime.clone(), events.into_iter(), stop))
        .unwrap();
    runtime.poster.posts.lock().unwrap().clone()
}

#[test]
fn success_handler_error_trap_and_timeout_each_get_their_post() {
    let long = Duration::from_secs(30);
    let events = vec![
        event("ok-1", "ok", long),
        event("error-1", "error", long),
        event("trap-1", "trap", long),
        event("loop-1", "loop", Duration::from_millis(300)),
        event("ok-2", "ok", long),
    ];
    let posts = serve(events, Vec::new());
    let paths: Vec<&str> = posts.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/2018-06-01/runtime/invocation/ok-1/response",
            "/2018-06-01/runtime/invocation/error-1/error",
            "/2018-06-01/runtime/invocation/trap-1/error",
            "/2018-06-01/runtime/invocation/loop-1/error",
            "/2018-06-01/runtime/invocation/ok-2/response",
        ]
    );
    let echoed: serde_json::Value = serde_json::from_str(&posts[0].body).unwrap();
    assert_eq!(echoed["context"]["requestId"], "ok-1");
    assert_eq!(echoed["event"]["do"], "ok");
    for (post, want) in
        posts[1..4]
            .iter()
            .zip(["Fixture.Failed", "Runtime.Trap", "Sandbox.Timedout"])
    {
        assert_eq!(post.error_type.as_deref(), Some(want), "{post:?}");
        let body: serde_json::Value = serde_json::from_str(&post.body).unwrap();
        assert_eq!(body["errorType"], want, "{post:?}");
    }
    assert!(posts[2].body.contains("trap on request"), "{:?}", posts[2]);
}

#[test]
fn failed_posts_are_retried_and_a_too_large_response_becomes_an_error() {
    let long = Duration::from_secs(30);
    let events = vec![event("big-1", "ok", long), event("retry-1", "ok", long)];
    let answers = vec![
        // big-1's response: over the limit; its error post is then accepted.
        Ok(PostOutcome::TooLarge),
        Ok(PostOutcome::Accepted),
        // retry-1's response: the connection fails twice, then it goes through.
        Err(anyhow::anyhow!("connection reset")),
        Err(anyhow::anyhow!("connection reset")),
    ];
    let posts = serve(events, answers);
    let summary: Vec<(&str, Option<&str>)> = posts
        .iter()
        .map(|p| (p.path.as_str(), p.error_type.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            ("/2018-06-01/runtime/invocation/big-1/response", None),
            (
                "/2018-06-01/runtime/invocation/big-1/error",
                Some("Runtime.ResponseSizeTooLarge")
            ),
            ("/2018-06-01/runtime/invocation/retry-1/response", None),
            ("/2018-06-01/runtime/invocation/retry-1/response", None),
            ("/2018-06-01/runtime/invocation/retry-1/response", None),
        ]
    );
}
