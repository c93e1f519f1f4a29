//! The real binary as a Lambda custom runtime, against the mock Runtime API.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mock_runtime::{Event, Fault, MockRuntime, Outcome};
use test_artifacts as guests;

use crate::util::component;

/// A task root holding the echo fixture as `echo.wasm`, and an empty layers root.
pub(crate) struct Function {
    pub(crate) task: tempfile::TempDir,
    layers: tempfile::TempDir,
}

impl Function {
    pub(crate) fn echo() -> Self {
        let task = tempfile::tempdir().unwrap();
        std::fs::copy(
            component(guests::FIXTURE_ECHO),
            task.path().join("echo.wasm"),
        )
        .unwrap();
        Self {
            task,
            layers: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn command(&self, mock: &MockRuntime, handler: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_host"));
        cmd.arg("bootstrap")
            .env("AWS_LAMBDA_RUNTIME_API", mock.address())
            .env("_HANDLER", handler)
            .env("LAMBDA_TASK_ROOT", self.task.path())
            .env("LAMP_LAYERS_ROOT", self.layers.path())
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "64")
            .env("AWS_LAMBDA_FUNCTION_NAME", "echo-fn")
            .env_remove("AWS_LAMBDA_MAX_CONCURRENCY")
            .env_remove("AWS_LAMBDA_LOG_FORMAT")
            .stdout(Stdio::null());
        cmd
    }

    /// Starts the runtime with its logs going to a file (a pipe nobody reads would fill up
    /// and block the runtime's logging).
    pub(crate) fn start(&self, mut cmd: Command) -> Running {
        let log = tempfile::NamedTempFile::new().unwrap();
        cmd.stderr(log.reopen().unwrap());
        Running(cmd.spawn().unwrap(), log)
    }
}

/// Stops the runtime at the end of a test, whatever happens.
pub(crate) struct Running(Child, tempfile::NamedTempFile);

impl Running {
    fn sigterm(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the runtime did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The runtime's logs so far.
    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(self.1.path()).unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn event(id: String, action: &str, timeout: Duration) -> Event {
    Event::new(id, format!(r#"{{"do":"{action}","ms":30}}"#), timeout)
}

/// Exactly one result per request id, as recorded by the mock.
fn assert_one_result_each(mock: &MockRuntime, ids: &[String]) {
    let mut posts: HashMap<String, usize> = HashMap::new();
    for request in mock.requests() {
        if request.status == 202
            && (request.path.ends_with("/response") || request.path.ends_with("/error"))
        {
            let id = request.path.rsplit('/').nth(1).unwrap().to_string();
            *posts.entry(id).or_default() += 1;
        }
    }
    for id in ids {
        assert_eq!(
            posts.get(id),
            Some(&1),
            "request {id}: {:?} results",
            posts.get(id)
        );
    }
    assert_eq!(posts.len(), ids.len());
}

fn mixed_run(concurrency: usize, count: usize) -> (MockRuntime, Vec<String>) {
    let mock = MockRuntime::start();
    let function = Function::echo();
    let mut cmd = function.command(&mock, "echo");
    cmd.env("AWS_LAMBDA_MAX_CONCURRENCY", concurrency.to_string());
    let mut runtime = function.start(cmd);
    let actions = [
        "ok", "ok", "error", "ok", "trap", "sleep", "ok", "error", "ok", "ok",
    ];
    let mut expected = HashMap::new();
    let mut ids = Vec::new();
    for i in 0..count {
        let id = format!("req-{i:05}");
        // Every 50th event loops and every 50th (offset) runs out of memory: slow, so rarer.
        let action = match i % 50 {
            7 => "loop",
            33 => "oom",
            n => actions[n % actions.len()],
        };
        expected.insert(id.clone(), action);
        let timeout = if action == "loop" {
            Duration::from_millis(300)
        } else {
            Duration::from_secs(20)
        };
        mock.push(event(id.clone(), action, timeout));
        ids.push(id);
    }
    let outcomes = mock.wait_for_outcomes(count, Duration::from_secs(300));
    assert_eq!(
        outcomes.len(),
        count,
        "only {} of {count} events were answered",
        outcomes.len()
    );
    for (id, action) in &expected {
        let outcome = &outcomes[id];
        let want = match *action {
            "error" => Some("Fixture.Failed"),
            "trap" => Some("Runtime.Trap"),
            "loop" => Some("Sandbox.Timedout"),
            "oom" => Some("Runtime.OutOfMemory"),
            _ => None,
        };
        match (want, outcome) {
            (None, Outcome::Response(body)) => {
                assert!(body.contains(&format!(r#""requestId":"{id}""#)), "{body}")
            }
            (Some(want), Outcome::Error { body, error_type }) => {
                assert_eq!(error_type.as_deref(), Some(want), "{id}: {body}");
                let json: serde_json::Value = serde_json::from_str(body).unwrap();
                assert_eq!(json["errorType"], want);
            }
            _ => panic!("{id} ({action}): unexpected {outcome:?}"),
        }
    }
    assert_one_result_each(&mock, &ids);
    // Still polling: the runtime asks for the next event after the last one.
    let deadline = Instant::now() + Duration::from_secs(10);
    while mock.next_polls() <= count {
        assert!(Instant::now() < deadline, "the runtime stopped polling");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        runtime.0.try_wait().unwrap().is_none(),
        "the runtime exited"
    );
    assert!(runtime.sigterm().success());
    (mock, ids)
}

#[test]
fn a_thousand_mixed_events_each_get_exactly_one_result() {
    mixed_run(1, 1000);
}

#[test]
fn with_max_concurrency_four_invocations_overlap_and_none_is_lost() {
    let (mock, _) = mixed_run(4, 1000);
    let mut timings = mock.timings();
    timings.sort_by_key(|t| t.1);
    let overlapping = timings.windows(2).filter(|w| w[1].1 < w[0].2).count();
    assert!(overlapping > 0, "no two invocations overlapped");
}

#[test]
fn every_header_reaches_the_guest_context() {
    let mock = MockRuntime::start();
    let function = Function::echo();
    let _runtime = function.start(function.command(&mock, "echo"));
    let mut e = Event::new("ctx-1", r#"{"hello":"there"}"#, Duration::from_secs(30));
    e.trace_id =
        Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".into());
    e.client_context = Some(r#"{"client":{"app_title":"t"}}"#.into());
    e.cognito_identity = Some(r#"{"cognitoIdentityId":"us-east-1:abc"}"#.into());
    e.function_arn = "arn:aws:lambda:eu-west-1:111122223333:function:echo-fn:prod".into();
    let deadline = e.deadline_ms.clone().unwrap();
    mock.push(e.clone());
    let outcomes = mock.wait_for_outcomes(1, Duration::from_secs(60));
    let Some(Outcome::Response(body)) = outcomes.get("ctx-1") else {
        panic!("{outcomes:?}")
    };
    let echoed: serde_json::Value = serde_json::from_str(body).unwrap();
    let ctx = &echoed["context"];
    assert_eq!(ctx["requestId"], "ctx-1");
    assert_eq!(ctx["deadlineMs"].to_string(), deadline);
    assert_eq!(ctx["invokedFunctionArn"], e.function_arn);
    assert_eq!(ctx["traceId"], e.trace_id.clone().unwrap());
    assert_eq!(ctx["clientContext"], e.client_context.clone().unwrap());
    assert_eq!(ctx["cognitoIdentity"], e.cognito_identity.clone().unwrap());
    assert_eq!(ctx["functionName"], "echo-fn");
    assert_eq!(ctx["memoryLimitMb"], 64);
    assert_eq!(
        echoed["env"]["_X_AMZN_TRACE_ID"],
        e.trace_id.clone().unwrap()
    );
    assert_eq!(echoed["event"]["hello"], "there");
    assert!(
        echoed["env"].get("AWS_LAMBDA_RUNTIME_API").is_none(),
        "the Runtime API address leaked"
    );
}

#[test]
fn a_missing_handler_is_one_init_error_naming_the_paths_tried() {
    let mock = MockRuntime::start();
    let function = Function::echo();
    let mut runtime = function.start(function.command(&mock, "nope"));
    let error = mock
        .wait_for_init_error(Duration::from_secs(60))
        .expect("no init error");
    assert_eq!(
        error.headers["lambda-runtime-function-error-type"],
        "Runtime.NoSuchHandler"
    );
    let body: serde_json::Value = serde_json::from_slice(&error.body).unwrap();
    let message = body["errorMessage"].as_str().unwrap();
    for tried in [
        "nope.cwasm",
        "nope.wasm",
        "lamp/handlers/nope.wasm",
        "nope.php",
        "src/nope.php",
    ] {
        assert!(message.contains(tried), "{tried} not in {message}");
    }
    let status = runtime.0.wait().unwrap();
    assert!(!status.success());
    assert_eq!(mock.init_errors().len(), 1);
    assert_eq!(mock.next_polls(), 0, "polled /next after a failed init");
}

#[test]
fn a_corrupt_handler_is_an_init_error_of_its_own_type() {
    let mock = MockRuntime::start();
    let function = Function::echo();
    std::fs::write(
        function.task.path().join("broken.wasm"),
        b"\0asm\x0d\0\x01\0garbage",
    )
    .unwrap();
    let _runtime = function.start(function.command(&mock, "broken"));
    let error = mock
        .wait_for_init_error(Duration::from_secs(60))
        .expect("no init error");
    assert_eq!(
        error.headers["lambda-runtime-function-error-type"],
        "Runtime.InvalidHandler"
    );
}

#[test]
fn faults_of_the_api_lose_no_event() {
    // Refuses connections for a while, then answers 500s and closes connections.
    let mock = MockRuntime::start_after(Duration::from_millis(700));
    let function = Function::echo();
    let mut runtime = function.start(function.command(&mock, "echo"));
    mock.inject(
        [
            Fault::Status500,
            Fault::Close,
            Fault::Status500,
            Fault::Close,
            Fault::Status500,
            Fault::Close,
        ],
        true,
    );
    let ids: Vec<String> = (0..20).map(|i| format!("fault-{i}")).collect();
    for id in &ids {
        mock.push(event(id.clone(), "ok", Duration::from_secs(30)));
    }
    let outcomes = mock.wait_for_outcomes(ids.len(), Duration::from_secs(120));
    assert_eq!(outcomes.len(), ids.len());
    assert_one_result_each(&mock, &ids);
    assert!(
        runtime.0.try_wait().unwrap().is_none(),
        "the runtime exited"
    );
    assert!(runtime.sigterm().success());
}

#[test]
fn a_post_that_arrived_but_was_not_answered_is_retried_and_the_400_is_logged() {
    let mock = MockRuntime::start();
    let function = Function::echo();
    let runtime = function.start(function.command(&mock, "echo"));
    mock.inject([Fault::HandleThenClose], false);
    mock.push(event("dup-1".into(), "ok", Duration::from_secs(30)));
    mock.push(event("after-1".into(), "ok", Duration::from_secs(30)));
    let outcomes = mock.wait_for_outcomes(2, Duration::from_secs(60));
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    let rejected = mock
        .requests()
        .iter()
        .filter(|r| r.status == 400 && r.path.contains("dup-1"))
        .count();
    assert_eq!(
        rejected, 1,
        "the retried post should have been answered 400"
    );
    let logs = runtime.stderr();
    assert!(
        logs.contains("refused the post (400 Bad Request)"),
        "{logs}"
    );
}

#[test]
fn a_response_too_large_becomes_an_error_for_that_request() {
    let mock = MockRuntime::start();
    let function = Function::echo();
    let _runtime = function.start(function.command(&mock, "echo"));
    let big = "x".repeat(7 << 20);
    mock.push(Event::new(
        "big-1",
        format!(r#"{{"blob":"{big}"}}"#),
        Duration::from_secs(60),
    ));
    mock.push(event("small-1".into(), "ok", Duration::from_secs(30)));
    let outcomes = mock.wait_for_outcomes(2, Duration::from_secs(60));
    match &outcomes["big-1"] {
        Outcome::Error { error_type, .. } => {
            assert_eq!(error_type.as_deref(), Some("Runtime.ResponseSizeTooLarge"))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(outcomes["small-1"], Outcome::Response(_)));
}

#[test]
fn sigterm_finishes_the_invocation_in_flight() {
    let mock = MockRuntime::start();
    let function = Function::echo();
    let mut runtime = function.start(function.command(&mock, "echo"));
    mock.push(Event::new(
        "slow-1",
        r#"{"do":"sleep","ms":1500}"#,
        Duration::from_secs(30),
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    while mock.pending() > 0 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    let status = runtime.sigterm();
    assert!(status.success(), "{status}");
    assert!(
        matches!(mock.outcomes().get("slow-1"), Some(Outcome::Response(_))),
        "{:?}",
        mock.outcomes()
    );
}

/// An invocation blocked in a host call (a 60 s sleep) ends at its 1 s deadline, and the next
/// event is served right after.
#[test]
fn a_sleeping_guest_is_stopped_at_its_deadline_and_the_next_event_served() {
    let mock = MockRuntime::start();
    let function = Function::echo();
    let cmd = function.command(&mock, "echo");
    let _runtime = function.start(cmd);
    let mut sleeper = event("sleeper".into(), "sleep", Duration::from_secs(1));
    sleeper.body = r#"{"do":"nap","ms":60000}"#.into();
    mock.push(sleeper);
    mock.push(event("after".into(), "ok", Duration::from_secs(20)));
    let outcomes = mock.wait_for_outcomes(2, Duration::from_secs(30));
    assert!(
        matches!(&outcomes["sleeper"], Outcome::Error { error_type: Some(t), .. } if t == "Sandbox.Timedout"),
        "{:?}",
        outcomes.get("sleeper")
    );
    assert!(
        matches!(&outcomes["after"], Outcome::Response(_)),
        "{:?}",
        outcomes.get("after")
    );
}

#[test]
fn a_missing_deadline_uses_the_configured_timeout_and_warns_once() {
    let mock = MockRuntime::start();
    let function = Function::echo();
    let mut cmd = function.command(&mock, "echo");
    cmd.env("LAMP_TIMEOUT", "0.5");
    let runtime = function.start(cmd);
    for i in 0..2 {
        let mut e = event(format!("nodl-{i}"), "loop", Duration::from_secs(30));
        e.deadline_ms = Some("17".into());
        mock.push(e);
    }
    let outcomes = mock.wait_for_outcomes(2, Duration::from_secs(60));
    for outcome in outcomes.values() {
        assert!(
            matches!(outcome, Outcome::Error { error_type: Some(t), .. } if t == "Sandbox.Timedout"),
            "{outcome:?}"
        );
    }
    let logs = runtime.stderr();
    assert_eq!(
        logs.matches("is not a plausible epoch time").count(),
        1,
        "{logs}"
    );
}

#[test]
fn json_logs_carry_the_request_id() {
    let mock = MockRuntime::start();
    let function = Function::echo();
    std::fs::copy(
        component(guests::FIXTURE_OUTPUT),
        function.task.path().join("output.wasm"),
    )
    .unwrap();
    let mut cmd = function.command(&mock, "output");
    cmd.env("AWS_LAMBDA_LOG_FORMAT", "JSON");
    let runtime = function.start(cmd);
    mock.push(event("log-1".into(), "ok", Duration::from_secs(30)));
    mock.wait_for_outcomes(1, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(200));
    let logs = runtime.stderr();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let guest = lines
        .iter()
        .find(|l| l["message"] == "to stderr, line one")
        .expect("guest line");
    assert_eq!(guest["requestId"], "log-1");
    assert!(guest["timestamp"].is_string() && guest["level"] == "INFO");
}

#[test]
fn started_as_bootstrap_it_is_the_runtime() {
    let mock = MockRuntime::start();
    let function = Function::echo();
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = dir.path().join("bootstrap");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_host"), &bootstrap).unwrap();
    // Same environment, but started under the name Lambda uses, with no arguments.
    let cmd = function.command(&mock, "echo");
    let mut real = Command::new(&bootstrap);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => real.env(k, v),
            None => real.env_remove(k),
        };
    }
    let _runtime = function.start(real);
    mock.push(event("boot-1".into(), "ok", Duration::from_secs(30)));
    let outcomes = mock.wait_for_outcomes(1, Duration::from_secs(60));
    assert!(matches!(outcomes.get("boot-1"), Some(Outcome::Response(_))));
}

/// The PHP runtime component; `make php` builds it (CI does before `cargo test`).
fn php_runtime() -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests/php/dist/php.wasm");
    assert!(
        path.is_file(),
        "{} is missing: run `make php` before `cargo test`",
        path.display()
    );
    path
}

const SEED_PLUS: &str = r#"<?php
function index($data)
{
    switch ($data['do'] ?? '') {
        case 'throw': throw new RuntimeException('thrown on request');
        case 'fatal': trigger_error('fatal on request', E_USER_ERROR);
        case 'echo': echo "noisy output\n"; error_log('noisy error_log'); return 'quiet';
        case 'set': $GLOBALS['seen'] = 'leaked'; return 'set';
        case 'get': return $GLOBALS['seen'] ?? 'clean';
    }
    return "Hello, " . $data['name'];
}
"#;

#[test]
fn php_handlers_through_the_bootstrap() {
    let mock = MockRuntime::start();
    let function = Function::echo();
    std::fs::create_dir_all(function.task.path().join("src")).unwrap();
    std::fs::write(function.task.path().join("src/index.php"), SEED_PLUS).unwrap();
    let mut cmd = function.command(&mock, "index");
    cmd.env("LAMP_PHP_RUNTIME", php_runtime());
    let runtime = function.start(cmd);
    let events = [
        ("php-hello", r#"{"name":"world"}"#),
        ("php-throw", r#"{"do":"throw"}"#),
        ("php-fatal", r#"{"do":"fatal"}"#),
        ("php-echo", r#"{"do":"echo"}"#),
        ("php-set", r#"{"do":"set"}"#),
        ("php-get", r#"{"do":"get"}"#),
    ];
    for (id, body) in events {
        mock.push(Event::new(id, body, Duration::from_secs(120)));
    }
    let outcomes = mock.wait_for_outcomes(events.len(), Duration::from_secs(300));
    let response = |id: &str| match &outcomes[id] {
        Outcome::Response(body) => body.clone(),
        other => panic!("{id}: {other:?}"),
    };
    let error_type = |id: &str| match &outcomes[id] {
        Outcome::Error { error_type, .. } => error_type.clone().unwrap_or_default(),
        other => panic!("{id}: {other:?}"),
    };
    assert_eq!(response("php-hello"), "Hello, world");
    assert_eq!(error_type("php-throw"), "RuntimeException");
    assert_eq!(error_type("php-fatal"), "Runtime.PhpFatalError");
    assert_eq!(response("php-echo"), "quiet");
    assert_eq!(response("php-set"), "set");
    assert_eq!(
        response("php-get"),
        "clean",
        "a global leaked into the next invocation"
    );
    let logs = runtime.stderr();
    let noisy = logs
        .lines()
        .find(|l| l.contains("noisy output"))
        .unwrap_or_else(|| panic!("{logs}"));
    assert!(noisy.contains("php-echo"), "{noisy}");
}

#[test]
fn bref_style_php_handler_through_the_bootstrap() {
    let mock = MockRuntime::start();
    let function = Function::echo();
    std::fs::write(
        function.task.path().join("bref.php"),
        "<?php\nreturn function ($event, $context) { return ['hi' => $event['name'], 'id' => $context->awsRequestId]; };\n",
    )
    .unwrap();
    let mut cmd = function.command(&mock, "bref");
    cmd.env("LAMP_PHP_RUNTIME", php_runtime());
    let _runtime = function.start(cmd);
    mock.push(Event::new(
        "bref-1",
        r#"{"name":"bref"}"#,
        Duration::from_secs(120),
    ));
    let outcomes = mock.wait_for_outcomes(1, Duration::from_secs(300));
    match &outcomes["bref-1"] {
        Outcome::Response(body) => assert_eq!(body, r#"{"hi":"bref","id":"bref-1"}"#),
        other => panic!("{other:?}"),
    }
}
