//! Paths of the guest components built by `build.rs`, for tests and benchmarks.

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));

/// The path of a built component, e.g. `component(HELLO_RUST)`; panics with the fix when the
/// guests could not be built.
pub fn component(path: &'static str) -> &'static std::path::Path {
    if let Some(problem) = PROBLEM {
        panic!("guest components are missing: {problem}");
    }
    std::path::Path::new(path)
}
