//! Many invocations in one host process, through the library: a guest that fails takes only
//! its own invocation down, and each invocation starts from a clean instance.

use std::time::Duration;

use host::context::FunctionConfig;
use host::engine::{EngineOptions, build_engine, on_guest_stack};
use host::handler::HandlerComponent;
use host::sandbox::SandboxConfig;
use test_artifacts as guests;

use crate::util::component;

fn sandbox(memory_mb: usize) -> SandboxConfig {
    SandboxConfig {
        env: Vec::new(),
        dirs: Vec::new(),
        memory_limit: memory_mb << 20,
    }
}

fn invoke(
    handler: &HandlerComponent,
    event: &str,
    memory_mb: usize,
    timeout: Duration,
) -> Result<String, host::error::LambdaError> {
    let context =
        FunctionConfig::from_env("test").local_context(uuid::Uuid::new_v4().to_string(), timeout);
    on_guest_stack(|| handler.invoke(event, &context, &sandbox(memory_mb), timeout)).result
}

#[test]
fn the_host_survives_every_kind_of_failure() {
    let engine = build_engine(EngineOptions::default()).unwrap();
    let hello = HandlerComponent::load(&engine, component(guests::HELLO_RUST)).unwrap();
    let second = Duration::from_secs(1);
    let failing = [
        (guests::FIXTURE_PANIC, "Runtime.Trap"),
        (guests::FIXTURE_LOOP, "Sandbox.Timedout"),
        (guests::FIXTURE_HOG, "Runtime.OutOfMemory"),
        (guests::FIXTURE_ERROR, "Fixture.Failed"),
    ];
    for (fixture, expected) in failing {
        let handler = HandlerComponent::load(&engine, component(fixture)).unwrap();
        for _ in 0..2 {
            let err = invoke(&handler, "{}", 64, second).unwrap_err();
            assert_eq!(err.error_type, expected, "{fixture}: {err}");
            assert_eq!(
                invoke(&hello, r#"{"name":"again"}"#, 64, second).unwrap(),
                "Hello, again"
            );
        }
    }
}

#[test]
fn global_state_does_not_survive_an_invocation() {
    let engine = build_engine(EngineOptions::default()).unwrap();
    let state = HandlerComponent::load(&engine, component(guests::FIXTURE_STATE)).unwrap();
    for _ in 0..5 {
        let response = invoke(&state, "{}", 64, Duration::from_secs(5)).unwrap();
        assert_eq!(response, r#"{"invocations":1}"#);
    }
}

#[test]
fn an_event_of_the_wrong_shape_is_a_typed_error() {
    let engine = build_engine(EngineOptions::default()).unwrap();
    let hello = HandlerComponent::load(&engine, component(guests::HELLO_RUST)).unwrap();
    let err = invoke(&hello, r#"{"nom":"x"}"#, 64, Duration::from_secs(5)).unwrap_err();
    assert_eq!(err.error_type, "Handler.InvalidEvent");
    assert!(err.error_message.contains("missing field `name`"), "{err}");
}
