//! `host run` and `host compile` through the real binary.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::*;
use test_artifacts as guests;

#[test]
fn hello_rust_prints_exactly_the_result_and_a_report() {
    let out = run(
        component(guests::HELLO_RUST),
        &["--event", r#"{"name":"world"}"#],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Hello, world");
    let report = report(&out);
    for field in [
        "RequestId",
        "Duration",
        "Billed Duration",
        "Memory Size",
        "Max Memory Used",
        "Init Duration",
    ] {
        assert!(
            report.contains_key(field),
            "REPORT lacks {field}: {report:?}"
        );
    }
    assert_eq!(report["Memory Size"], "128 MB");
}

#[test]
fn event_comes_from_a_file_or_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("event.json");
    std::fs::write(&file, r#"{"name":"file"}"#).unwrap();
    let out = run(
        component(guests::HELLO_RUST),
        &["--event-file", file.to_str().unwrap()],
    );
    assert_eq!(stdout(&out), "Hello, file");

    let mut child = host()
        .arg("run")
        .arg(component(guests::HELLO_RUST))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"name":"stdin"}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "Hello, stdin");
}

#[test]
fn panic_is_a_trap_with_the_panic_message_and_a_backtrace() {
    let out = run(component(guests::FIXTURE_PANIC), &["--event", "{}"]);
    assert_eq!(out.status.code(), Some(1));
    let err = error_json(&out);
    assert_eq!(err["errorType"], "Runtime.Trap");
    assert!(
        err["errorMessage"]
            .as_str()
            .unwrap()
            .contains("this handler always panics"),
        "{err}"
    );
    assert!(!err["stackTrace"].as_array().unwrap().is_empty(), "{err}");
    assert!(report(&out).contains_key("Duration"));
}

/// A guest blocked in a host call never reaches an epoch check: the deadline must hold anyway,
/// for a Rust handler's sleep and a PHP handler's `sleep()` (both 60 s, under a 1 s timeout).
#[test]
fn a_guest_blocked_in_a_sleep_is_stopped_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("index.php");
    std::fs::write(
        &script,
        "<?php function index($e) { sleep(60); return 'woke'; }",
    )
    .unwrap();
    let echo = component(guests::FIXTURE_ECHO);
    // PHP precompiled, so the time measured is the invocation's, not compiling 11 MB of PHP.
    let php = crate::php::php_cwasm().to_str().unwrap();
    for (handler, event, extra) in [
        (Path::new(echo), r#"{"do":"nap","ms":60000}"#, vec![]),
        (script.as_path(), "{}", vec!["--php-runtime", php]),
    ] {
        let mut args = vec!["--timeout", "1", "--event", event];
        args.extend(extra);
        let started = Instant::now();
        let out = run(handler, &args);
        let elapsed = started.elapsed();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = error_json(&out);
        assert_eq!(
            err["errorType"],
            "Sandbox.Timedout",
            "{}",
            handler.display()
        );
        assert!(
            elapsed < Duration::from_secs(30),
            "{}: ran {elapsed:?}, past its 1 s deadline",
            handler.display()
        );
    }
}

#[test]
fn endless_loop_times_out() {
    let started = Instant::now();
    let out = run(component(guests::FIXTURE_LOOP), &["--timeout", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = error_json(&out);
    assert_eq!(err["errorType"], "Sandbox.Timedout");
    assert_eq!(err["errorMessage"], "Task timed out after 1.00 seconds");
    let duration: f64 = report(&out)["Duration"]
        .trim_end_matches(" ms")
        .parse()
        .unwrap();
    assert!(
        duration >= 1000.0,
        "stopped before its deadline: {duration} ms"
    );
    // Not a speed claim: a guard that the process really ended instead of hanging.
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn memory_hog_runs_out_of_its_memory_size() {
    let out = run(component(guests::FIXTURE_HOG), &["--memory", "64"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(error_json(&out)["errorType"], "Runtime.OutOfMemory");
    let report = report(&out);
    assert_eq!(report["Memory Size"], "64 MB");
    let used: u32 = report["Max Memory Used"]
        .trim_end_matches(" MB")
        .parse()
        .unwrap();
    assert!((32..=64).contains(&used), "Max Memory Used {used} MB");
}

#[test]
fn max_memory_used_is_measured() {
    let hog = run(component(guests::FIXTURE_HOG), &["--memory", "100"]);
    let hello = run(
        component(guests::HELLO_RUST),
        &["--event", r#"{"name":"x"}"#, "--memory", "100"],
    );
    let used = |out| -> u32 {
        report(out)["Max Memory Used"]
            .trim_end_matches(" MB")
            .parse()
            .unwrap()
    };
    assert!(
        used(&hog) > used(&hello) + 50,
        "hog {} MB vs hello {} MB",
        used(&hog),
        used(&hello)
    );
}

#[test]
fn handler_error_is_passed_on_as_it_is() {
    let out = run(component(guests::FIXTURE_ERROR), &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = error_json(&out);
    assert_eq!(err["errorType"], "Fixture.Failed");
    assert_eq!(err["errorMessage"], "the fixture failed on purpose");
    assert_eq!(
        err["stackTrace"],
        serde_json::json!(["fixture::handle", "fixture::main"])
    );
}

#[test]
fn guest_output_becomes_log_lines_with_the_request_id() {
    let out = run(component(guests::FIXTURE_OUTPUT), &[]);
    assert!(out.status.success());
    assert_eq!(stdout(&out), "the response");
    let id = report(&out)["RequestId"].clone();
    let logs = stderr(&out);
    for line in [
        "to stdout from",
        "to stderr, line one",
        "to stderr, no newline at the end",
    ] {
        let found = logs
            .lines()
            .find(|l| l.contains(line))
            .unwrap_or_else(|| panic!("no `{line}` in:\n{logs}"));
        assert!(
            found.contains(&id),
            "log line without the request id: {found}"
        );
    }
}

#[test]
fn guest_cannot_read_outside_its_directories() {
    let out = run(component(guests::FIXTURE_ESCAPE), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    for path in [
        "/etc/passwd",
        "/var/task/../../etc/passwd",
        "../../../../etc/passwd",
    ] {
        let outcome = report[path].as_str().unwrap();
        assert!(outcome.starts_with("denied"), "{path}: {outcome}");
    }
    assert_eq!(report["write /tmp"], "ok");
    assert_eq!(report["write /var/task"], "denied");
}

#[test]
fn host_environment_does_not_leak_but_env_flags_pass() {
    let out = host()
        .env("SECRET_OF_THE_HOST", "leaked")
        .args(["run"])
        .arg(component(guests::FIXTURE_ECHO))
        .args(["--env", "STAGE=test"])
        .output()
        .unwrap();
    let echoed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(echoed["env"]["STAGE"], "test");
    assert!(echoed["env"].get("SECRET_OF_THE_HOST").is_none());
    assert_eq!(echoed["env"]["LAMBDA_TASK_ROOT"], "/var/task");
    assert_eq!(echoed["context"]["memoryLimitMb"], 128);
}

/// Bad input: one clear line on stderr, exit status 2, no panic.
fn assert_bad_input(out: &std::process::Output, expect: &str) {
    assert_eq!(out.status.code(), Some(2), "{}", stderr(out));
    let err = stderr(out);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(expect), "expected `{expect}` in: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    assert_eq!(
        err.trim_end()
            .lines()
            .filter(|l| l.starts_with("error: "))
            .count(),
        1,
        "{err}"
    );
}

#[test]
fn bad_input_gets_one_clear_line_and_status_2() {
    let dir = tempfile::tempdir().unwrap();
    assert_bad_input(
        &run(&dir.path().join("missing.wasm"), &[]),
        "does not exist",
    );

    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "hello").unwrap();
    assert_bad_input(&run(&text, &[]), "is not a WebAssembly file");

    let core = dir.path().join("core.wasm");
    std::fs::write(&core, wat::parse_str("(module)").unwrap()).unwrap();
    assert_bad_input(&run(&core, &[]), "is a core wasm module, not a component");

    let other_world = dir.path().join("other.wasm");
    std::fs::write(&other_world, wat::parse_str("(component)").unwrap()).unwrap();
    assert_bad_input(
        &run(&other_world, &[]),
        "is not a handler (no export `handle` found): it must export `lamp:handler/handler@0.1.0`",
    );

    assert_bad_input(
        &run(component(guests::HELLO_RUST), &["--event", "{name: world}"]),
        "is not valid JSON",
    );
    assert_bad_input(
        &run(component(guests::HELLO_RUST), &["--env", "NOEQUALS"]),
        "NAME=VALUE",
    );
}

/// `host compile WASM -o CWASM`, which must succeed.
fn compile(wasm: &Path, cwasm: &Path) {
    let out = host()
        .arg("compile")
        .arg(wasm)
        .arg("-o")
        .arg(cwasm)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn compiled_cwasm_runs_and_an_incompatible_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cwasm = dir.path().join("hello.cwasm");
    compile(component(guests::HELLO_RUST), &cwasm);
    let out = run(&cwasm, &["--event", r#"{"name":"cwasm"}"#]);
    assert_eq!(stdout(&out), "Hello, cwasm");

    // The same file as another wasmtime major version would have written it: the engine
    // section starts with a format byte (0), the version's length and the version ("48").
    let mut bytes = std::fs::read(&cwasm).unwrap();
    let header = b"\x00\x0248";
    let at = bytes
        .windows(header.len())
        .position(|w| w == header)
        .expect("engine version in the cwasm");
    bytes[at + 2..at + 4].copy_from_slice(b"47");
    let old = dir.path().join("old.cwasm");
    std::fs::write(&old, bytes).unwrap();
    assert_bad_input(&run(&old, &[]), "precompiled by an incompatible engine");
}

/// `host compile` keeps a small module's function names (PHP's are dropped: component/slim.rs),
/// so a Rust handler's trap still names its frames.
#[test]
fn a_compiled_rust_handler_keeps_the_names_of_its_frames() {
    let dir = tempfile::tempdir().unwrap();
    let cwasm = dir.path().join("panic.cwasm");
    compile(component(guests::FIXTURE_PANIC), &cwasm);
    let err = error_json(&run(&cwasm, &["--event", "{}"]));
    let frames = err["stackTrace"].as_array().unwrap();
    assert!(
        frames
            .iter()
            .any(|f| f.as_str().unwrap() == "fixture_panic.wasm!std::process::abort"),
        "{err}"
    );
}

/// A component may be given xz-compressed (the php-fallback layer ships PHP so): it is unpacked and
/// compiled. Bytes that are not xz get an error that says so.
#[test]
fn an_xz_compressed_component_runs_and_a_corrupt_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let xz = dir.path().join("hello.wasm.xz");
    let packed = lamp_layer::xz_compress(component(guests::HELLO_RUST)).unwrap();
    std::fs::write(&xz, packed).unwrap();
    let out = run(&xz, &["--event", r#"{"name":"xz"}"#]);
    assert_eq!(stdout(&out), "Hello, xz", "{}", stderr(&out));

    let bad = dir.path().join("bad.wasm.xz");
    std::fs::write(&bad, b"\0asm, but not xz").unwrap();
    assert_bad_input(&run(&bad, &[]), "is not a valid xz file");
}

/// Every example a `--help` shows is a command line `host` accepts, and every command shows
/// some: an example that drifted from the flags fails here.
#[test]
fn every_example_in_help_parses() {
    use clap::Parser as _;
    for command in [
        None,
        Some("run"),
        Some("compile"),
        Some("php"),
        Some("bootstrap"),
    ] {
        let out = host().args(command).arg("--help").output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let examples = example_command_lines(&stdout(&out));
        assert!(
            !examples.is_empty(),
            "`host {} --help` shows no example:\n{}",
            command.unwrap_or(""),
            stdout(&out)
        );
        for words in examples {
            if let Err(e) = host::commands::Cli::try_parse_from(&words) {
                panic!("the example `{}` does not parse:\n{e}", words.join(" "));
            }
        }
    }
}

/// The `host ...` command lines in the text after an `Example` heading, as argument lists:
/// continuation lines joined, environment assignments and what is piped in left out, quotes
/// removed as a shell would.
fn example_command_lines(help: &str) -> Vec<Vec<String>> {
    let Some(at) = help.find("Example") else {
        return Vec::new();
    };
    help[at..]
        .replace("\\\n", " ")
        .lines()
        .filter_map(|line| {
            let command = line.rsplit('|').next()?;
            let words = shell_words(command);
            let start = words.iter().position(|w| w == "host")?;
            Some(words[start..].to_vec())
        })
        .collect()
}

/// Splits a command line as a shell would, for the quoting the examples use ('...' and "...").
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

#[test]
fn shell_words_follow_the_quotes() {
    assert_eq!(
        shell_words(r#"host run x.php --event '{"name":"world"}' --env "A=b c""#),
        [
            "host",
            "run",
            "x.php",
            "--event",
            r#"{"name":"world"}"#,
            "--env",
            "A=b c"
        ]
    );
}

/// `-v` before the command turns on debug lines (what was loaded, from where); without it
/// there are none.
#[test]
fn verbose_flag_adds_debug_lines() {
    let event = r#"{"name":"v"}"#;
    let quiet = run(component(guests::HELLO_RUST), &["--event", event]);
    assert!(!stderr(&quiet).contains("\tDEBUG\t"), "{}", stderr(&quiet));
    let verbose = host()
        .args(["-v", "run"])
        .arg(component(guests::HELLO_RUST))
        .args(["--event", event])
        .output()
        .unwrap();
    assert_eq!(stdout(&verbose), "Hello, v");
    let logs = stderr(&verbose);
    let debug = logs
        .lines()
        .find(|l| l.contains("\tDEBUG\t"))
        .unwrap_or_else(|| panic!("no DEBUG line with -v:\n{logs}"));
    assert!(debug.contains("hello_rust.wasm"), "{debug}");
}
