//! A failed guest call, classified: what Lambda should see when the handler did not return.
//!
//! In order: `exit()` (`Runtime.ExitError`), the deadline (`Sandbox.Timedout`), a refused memory
//! growth (`Runtime.OutOfMemory`: the trap after it is its consequence, whatever it says), a
//! stack overflow, a Rust panic (its message is on the guest's stderr), any other trap.

use std::time::Duration;

use wasmtime::{Trap, WasmBacktrace};

use crate::error::{LambdaError, types};
use crate::sandbox::State;

/// Turns a trap or host error from a guest call into the error Lambda should see. `state` is
/// the invocation's (its limiter and stderr); `timeout` and `memory_limit` go into messages.
pub(super) fn classify(
    err: &wasmtime::Error,
    state: &State,
    timeout: Duration,
    memory_limit: usize,
) -> LambdaError {
    if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return LambdaError::new(
            types::EXIT,
            format!(
                "the handler called exit({}) instead of returning a result",
                exit.0
            ),
        );
    }
    let trap = err.downcast_ref::<Trap>();
    if trap == Some(&Trap::Interrupt) {
        return LambdaError::new(
            types::TIMEOUT,
            format!("Task timed out after {:.2} seconds", timeout.as_secs_f64()),
        );
    }
    let stack_trace = wasm_stack_trace(err);
    let error = if state.limiter.refused() {
        LambdaError::new(
            types::OUT_OF_MEMORY,
            format!(
                "the handler ran out of memory: it needed more than its {} MB; raise the function's memory size (`--memory`)",
                memory_limit >> 20
            ),
        )
    } else if trap == Some(&Trap::StackOverflow) {
        LambdaError::new(
            types::STACK_OVERFLOW,
            "the handler overflowed its stack (deep or endless recursion)",
        )
    } else if let Some(panic) = panic_message(&state.stderr.tail()) {
        LambdaError::new(types::TRAP, panic)
    } else {
        let message = match trap {
            Some(trap) => format!("the handler trapped: {trap}"),
            None => format!("{err:#}"),
        };
        LambdaError::new(types::TRAP, message)
    };
    error.with_stack_trace(stack_trace)
}

/// The wasm frames of the failure, innermost first, as `module!function` with Rust names
/// demangled.
fn wasm_stack_trace(err: &wasmtime::Error) -> Vec<String> {
    let Some(backtrace) = err.downcast_ref::<WasmBacktrace>() else {
        return Vec::new();
    };
    backtrace
        .frames()
        .iter()
        .map(|frame| {
            let func = frame
                .func_name()
                .map(|name| format!("{:#}", rustc_demangle::demangle(name)))
                .unwrap_or_else(|| format!("<func {}>", frame.func_index()));
            match frame.module().name() {
                Some(module) => format!("{module}!{func}"),
                None => func,
            }
        })
        .collect()
}

/// A Rust panic prints `panicked at FILE:LINE:COL:` and then its message before it traps:
/// `the handler panicked at FILE:LINE:COL: MESSAGE`, from the last lines of stderr.
fn panic_message(stderr_tail: &[String]) -> Option<String> {
    let at = stderr_tail
        .iter()
        .rposition(|line| line.contains("panicked at"))?;
    let location = stderr_tail[at]
        .split("panicked at ")
        .nth(1)
        .unwrap_or("")
        .trim_end_matches(':');
    let message: Vec<&str> = stderr_tail[at + 1..]
        .iter()
        .map(String::as_str)
        .take_while(|line| !line.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    Some(format!(
        "the handler panicked at {location}: {}",
        message.join("\n")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_message_is_found_in_the_stderr_tail() {
        let tail: Vec<String> = [
            "some output",
            "thread '<unnamed>' panicked at src/lib.rs:4:5:",
            "this handler always panics",
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
        ]
        .map(String::from)
        .into();
        assert_eq!(
            panic_message(&tail).as_deref(),
            Some("the handler panicked at src/lib.rs:4:5: this handler always panics")
        );
        assert_eq!(panic_message(&tail[..1]), None);
    }
}
