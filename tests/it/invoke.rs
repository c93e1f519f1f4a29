//! Many invocations in one host process, through the library: a guest that fails takes only
//! its own invocation down, and each invocation starts from a clean instance.

use std::time::Duration;

use host::engine::block_on;
use host::error::LambdaError;
use host::function::{Function, FunctionSpec};
use host::lambda::api::NextEvent;
use test_artifacts as guests;

use crate::util::component;

/// The function of a built guest, as `host run` would load it (64 MB, uncached).
pub fn function(guest: &'static str, timeout: Duration) -> Function {
    let mut spec = FunctionSpec::local(component(guest));
    spec.config.memory_mb = 64;
    spec.config.timeout = timeout;
    spec.cache = None;
    Function::load(spec).unwrap_or_else(|e| panic!("{guest}: {e}"))
}

fn invoke(function: &Function, event: &str) -> Result<String, LambdaError> {
    let event = NextEvent::local(event, function.config.timeout);
    block_on(function.invoke(&event)).unwrap().result
}

#[test]
fn the_host_survives_every_kind_of_failure() {
    let second = Duration::from_secs(1);
    let hello = function(guests::HELLO_RUST, second);
    let failing = [
        (guests::FIXTURE_PANIC, "Runtime.Trap"),
        (guests::FIXTURE_LOOP, "Sandbox.Timedout"),
        (guests::FIXTURE_HOG, "Runtime.OutOfMemory"),
        (guests::FIXTURE_ERROR, "Fixture.Failed"),
    ];
    for (fixture, expected) in failing {
        let failing = function(fixture, second);
        for _ in 0..2 {
            let err = invoke(&failing, "{}").unwrap_err();
            assert_eq!(err.error_type, expected, "{fixture}: {err}");
            assert_eq!(
                invoke(&hello, r#"{"name":"again"}"#).unwrap(),
                "Hello, again"
            );
        }
    }
}

#[test]
fn global_state_does_not_survive_an_invocation() {
    let state = function(guests::FIXTURE_STATE, Duration::from_secs(5));
    for _ in 0..5 {
        let response = invoke(&state, "{}").unwrap();
        assert_eq!(response, r#"{"invocations":1}"#);
    }
}

#[test]
fn an_event_of_the_wrong_shape_is_a_typed_error() {
    let hello = function(guests::HELLO_RUST, Duration::from_secs(5));
    let err = invoke(&hello, r#"{"nom":"x"}"#).unwrap_err();
    assert_eq!(err.error_type, "Runtime.InvalidEvent");
    assert!(err.error_message.contains("missing field `name`"), "{err}");
}
