//! Helpers shared by the integration tests.

use std::path::Path;
use std::process::{Command, Output};

pub use test_artifacts::component;

/// The `host` binary under test.
pub fn host() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host"));
    cmd.env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
    cmd
}

/// Runs `host run MODULE ARGS...` and returns its output.
pub fn run(module: &Path, args: &[&str]) -> Output {
    host()
        .arg("run")
        .arg(module)
        .args(args)
        .output()
        .expect("failed to start host")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The JSON error `host run` prints on stderr (the first line that parses as one).
pub fn error_json(output: &Output) -> serde_json::Value {
    stderr(output)
        .lines()
        .find_map(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .filter(|v| v.get("errorType").is_some())
        })
        .unwrap_or_else(|| panic!("no error JSON on stderr:\n{}", stderr(output)))
}

/// The REPORT line's fields, by name.
pub fn report(output: &Output) -> std::collections::HashMap<String, String> {
    let text = stderr(output);
    let line = text
        .lines()
        .find(|l| l.starts_with("REPORT RequestId: "))
        .unwrap_or_else(|| panic!("no REPORT line on stderr:\n{text}"));
    line.trim_start_matches("REPORT ")
        .split('\t')
        .filter_map(|field| field.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runs Debian's `openssl` command with `args` in `dir`; its stdout, or a panic with its stderr.
pub fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command is needed (Debian's openssl package; scripts/setup.sh)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
