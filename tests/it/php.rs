//! The PHP guest: the handler component (`guests/php/dist/php.wasm`) through the real `host`
//! binary and through the library, and the PHP CLI (`php-cli.wasm`) through `host php`.
//!
//! These need `make php` (guests/php/build.sh) to have run: without its outputs they fail and
//! say so, they do not skip.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use host::engine;
use host::error::LambdaError;
use host::function::{Code, Function, FunctionSpec};
use host::lambda::api::NextEvent;
use serde_json::{Value, json};

const HOST: &str = env!("CARGO_BIN_EXE_host");
const TIMEOUT: Duration = Duration::from_secs(30);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// A file of the PHP build: in `guests/php/dist`, or in `$LAMP_PHP_DIST` (build.sh's variable)
/// for a build made beside it.
pub(crate) fn dist(name: &str) -> PathBuf {
    let dist = std::env::var_os("LAMP_PHP_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("guests/php/dist"));
    let path = dist.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `make php` (guests/php/build.sh) before `cargo test`",
        path.display()
    );
    path
}

/// php.wasm compiled once per test process with `host compile`, so that each `host run` below
/// maps code instead of compiling PHP again; `php.wasm` is beside it, as in the php layer, for
/// `host serve`'s snapshots of the apps' code.
pub(crate) fn php_cwasm() -> &'static Path {
    static CWASM: OnceLock<PathBuf> = OnceLock::new();
    CWASM.get_or_init(|| {
        let wasm = dist("php.wasm");
        let dir = process_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let beside = dir.join("php.wasm");
        let _ = std::fs::remove_file(&beside);
        std::os::unix::fs::symlink(&wasm, &beside).unwrap();
        let out = dir.join("php.cwasm");
        let status = host()
            .args([
                "compile".as_ref(),
                wasm.as_os_str(),
                "-o".as_ref(),
                out.as_os_str(),
            ])
            .stderr(Stdio::inherit())
            .status()
            .unwrap();
        assert!(status.success(), "host compile {} failed", wasm.display());
        out
    })
}

/// This test process's folder under cargo's temporary folder: its `php.cwasm` and the cache
/// of the snapshots `host serve` makes ([`serve_cache`]). The folders of test processes that
/// are gone are removed when the first test asks for it, so runs do not pile up snapshots
/// (tens of MB each).
fn process_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        for entry in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix("php-it-")
                .map(|rest| rest.trim_end_matches(".cwasm"))
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let path = entry.path();
                let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
            }
        }
        tmp.join(format!("php-it-{}", std::process::id()))
    })
    .clone()
}

/// `LAMP_CACHE` for the `host serve` of tests: this process's own, so the snapshots of the
/// apps under test go when the next run clears [`process_dir`].
pub(crate) fn serve_cache() -> PathBuf {
    process_dir().join("cache")
}

/// A task root holding `files` (path relative to the root, contents).
pub(crate) fn task(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, contents) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    dir
}

/// The `host` binary, without the Lambda environment of whoever runs the tests.
fn host() -> Command {
    let mut cmd = Command::new(HOST);
    cmd.env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .env_remove("AWS_LAMBDA_FUNCTION_NAME")
        .env_remove("LAMP_PHP_RUNTIME")
        .env_remove("LAMP_PHP_CLI");
    cmd
}

/// `host run ROOT/SCRIPT --event EVENT ARGS...` with the precompiled PHP runtime.
pub(crate) fn host_run(root: &Path, script: &str, event: &str, args: &[&str]) -> Output {
    host_run_command(root, script, event, args)
        .output()
        .unwrap()
}

/// The command [`host_run`] runs.
fn host_run_command(root: &Path, script: &str, event: &str, args: &[&str]) -> Command {
    let mut command = host();
    command
        .arg("run")
        .arg(root.join(script))
        .arg("--php-runtime")
        .arg(php_cwasm())
        .args(["--event", event])
        .args(args);
    command
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The error JSON `host run` prints on stderr when the handler fails.
fn cli_error(out: &Output) -> LambdaError {
    let err = stderr(out);
    let line = err
        .lines()
        .find(|l| l.starts_with("{\"errorType\""))
        .unwrap_or_else(|| panic!("no error JSON on stderr:\n{err}"));
    serde_json::from_str(line).unwrap()
}

/// `function` of `script` in the task root `root`, loaded as `host run ROOT/SCRIPT` loads it,
/// with the precompiled runtime (mapping it takes milliseconds).
fn php(root: &Path, script: &str, function: Option<&str>) -> Function {
    let path = root.join(script);
    let mut spec = FunctionSpec::local(&path);
    spec.code = Code::File {
        path,
        php_function: function.map(str::to_string),
        php_runtime: Some(php_cwasm().to_path_buf()),
    };
    spec.config.memory_mb = 128;
    spec.config.timeout = TIMEOUT;
    spec.cache = None;
    Function::load(spec).unwrap_or_else(|e| panic!("{script}: {e}"))
}

/// One invocation of a function on `event`.
fn call(function: &Function, event: &str) -> Result<String, LambdaError> {
    let event = NextEvent::local(event, TIMEOUT);
    engine::block_on(function.invoke(&event)).unwrap().result
}

/// One invocation of `function` of `script` in `root`, in a function of its own.
fn invoke(
    root: &Path,
    script: &str,
    function: Option<&str>,
    event: &str,
) -> Result<String, LambdaError> {
    call(&php(root, script, function), event)
}

/// Sets (or, with `None`, removes) a variable of the function's sandbox template: how one
/// loaded function is pointed at another PHP function or script.
fn set_env(function: &mut Function, name: &str, value: Option<&str>) {
    let env = &mut function.sandbox.env;
    env.retain(|(k, _)| k != name);
    env.extend(value.map(|v| (name.to_string(), v.to_string())));
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

// --- through the binary -------------------------------------------------------------------

#[test]
fn seed_example_prints_hello_world() {
    // As the README says, with the runtime found where `make php` puts it.
    dist("php.wasm");
    let out = host()
        .current_dir(repo())
        .args([
            "run",
            "examples/hello-php/src/index.php",
            "--event",
            r#"{"name":"world"}"#,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr:\n{}", stderr(&out));
    assert_eq!(stdout(&out), "Hello, world");
    assert!(
        stderr(&out).contains("REPORT RequestId: "),
        "stderr:\n{}",
        stderr(&out)
    );
}

#[test]
fn output_and_error_log_are_log_lines_not_the_response() {
    let root = task(&[(
        "src/index.php",
        r#"<?php
function index($event) {
    echo "echoed line\n";
    print "printed line\n";
    error_log("error_log line");
    fwrite(STDERR, "stderr line\n");
    return "the response";
}"#,
    )]);
    assert_responds_and_logs(
        root.path(),
        "the response",
        &[
            "echoed line",
            "printed line",
            "error_log line",
            "stderr line",
        ],
    );
}

/// `host run` of `src/index.php` on `{}`: `response` on stdout, each of `lines` on stderr.
fn assert_responds_and_logs(root: &Path, response: &str, lines: &[&str]) {
    let out = host_run(root, "src/index.php", "{}", &[]);
    assert!(out.status.success(), "stderr:\n{}", stderr(&out));
    assert_eq!(stdout(&out), response);
    let err = stderr(&out);
    for line in lines {
        assert!(err.contains(line), "`{line}` not logged; stderr:\n{err}");
    }
}

#[test]
fn end_of_request_runs_destructors_shutdown_functions_and_flushes_buffers() {
    let root = task(&[(
        "src/index.php",
        r#"<?php
class Noisy {
    public function __construct(private string $name) {}
    public function __destruct() { error_log("destructor of {$this->name} ran"); }
}
$global = new Noisy("a global");
function index($event) {
    register_shutdown_function(function () { error_log("shutdown function ran"); });
    $GLOBALS['kept'] = new Noisy("a kept object");
    ob_start();
    echo "left in an output buffer\n";
    return "the response";
}"#,
    )]);
    assert_responds_and_logs(
        root.path(),
        "the response",
        &[
            "shutdown function ran",
            "destructor of a global ran",
            "destructor of a kept object ran",
            "left in an output buffer",
        ],
    );
}

#[test]
fn memory_limit_follows_the_function_memory_and_php_reports_running_out() {
    let root = task(&[(
        "src/index.php",
        r#"<?php
function index($event) {
    if ($event['grow'] ?? false) {
        $a = [];
        while (true) { $a[] = str_repeat('x', 1 << 20); }
    }
    return ini_get('memory_limit');
}"#,
    )]);
    // Half of what the function's memory leaves after PHP itself, which is measured when the
    // invocation starts (lamp_php.c says why): between 16 and 64 MB.
    let mut limits = Vec::new();
    for memory in [64u64, 256, 1024] {
        let out = host_run(
            root.path(),
            "src/index.php",
            "{}",
            &["--memory", &memory.to_string()],
        );
        assert!(out.status.success(), "stderr:\n{}", stderr(&out));
        let limit: u64 = stdout(&out)
            .strip_suffix('M')
            .and_then(|mb| mb.parse().ok())
            .unwrap_or_else(|| panic!("--memory {memory}: memory_limit {}", stdout(&out)));
        let range = if memory == 64 {
            16..=24
        } else {
            (memory - 64) / 2..=(memory - 16) / 2
        };
        assert!(
            range.contains(&limit),
            "--memory {memory}: memory_limit {limit}M"
        );
        limits.push(limit);
    }
    // Running out is PHP's own fatal error (with the line), not a trap of the sandbox.
    let out = host_run(
        root.path(),
        "src/index.php",
        r#"{"grow":true}"#,
        &["--memory", "256"],
    );
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", stderr(&out));
    let err = cli_error(&out);
    assert_eq!(err.error_type, "Runtime.PhpFatalError", "{err:?}");
    assert!(
        err.error_message.starts_with(&format!(
            "Allowed memory size of {} bytes exhausted",
            limits[1] << 20
        )),
        "{err:?}"
    );
    assert_eq!(err.stack_trace, ["/var/task/src/index.php:5"]);
}

#[test]
fn function_option_picks_the_function() {
    let root = task(&[(
        "src/index.php",
        "<?php function index($e) { return 'index'; } function other($e) { return 'other:' . $e['x']; }",
    )]);
    let out = host_run(root.path(), "src/index.php", r#"{"x":1}"#, &[]);
    assert_eq!(stdout(&out), "index", "stderr:\n{}", stderr(&out));
    let out = host_run(
        root.path(),
        "src/index.php",
        r#"{"x":1}"#,
        &["--function", "other"],
    );
    assert_eq!(stdout(&out), "other:1", "stderr:\n{}", stderr(&out));
    let out = host_run(
        root.path(),
        "src/index.php",
        r#"{"x":1}"#,
        &["--function", "missing"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(cli_error(&out).error_type, "Runtime.NoSuchHandler");
}

#[test]
fn uncaught_exception_is_reported_with_class_message_and_frames() {
    let root = task(&[(
        "src/index.php",
        r#"<?php
function check($name) {
    throw new InvalidArgumentException("bad name: $name");
}
function index($event) {
    check($event['name']);
}"#,
    )]);
    let out = host_run(root.path(), "src/index.php", r#"{"name":"x"}"#, &[]);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    let err = cli_error(&out);
    assert_eq!(err.error_type, "InvalidArgumentException");
    assert_eq!(err.error_message, "bad name: x");
    assert_eq!(err.stack_trace[0], "/var/task/src/index.php:3");
    assert!(
        err.stack_trace
            .iter()
            .any(|f| f.contains("/var/task/src/index.php(6)") && f.contains("check()")),
        "{:?}",
        err.stack_trace
    );
    assert!(
        !err.stack_trace.iter().any(|f| f.contains("lamp-runtime")),
        "runtime frames leak: {:?}",
        err.stack_trace
    );
}

#[test]
fn fatal_error_is_a_php_fatal_error() {
    let root = task(&[(
        "src/index.php",
        r#"<?php
function index($event) {
    register_shutdown_function(function () { error_log("shutdown function ran"); });
    trigger_error("it is broken", E_USER_ERROR);
    return "not reached";
}"#,
    )]);
    let out = host_run(root.path(), "src/index.php", "{}", &[]);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    let err = cli_error(&out);
    assert_eq!(err.error_type, "Runtime.PhpFatalError");
    assert_eq!(err.error_message, "it is broken");
    assert_eq!(err.stack_trace, ["/var/task/src/index.php:4"]);
    assert!(stderr(&out).contains("shutdown function ran"));
}

// --- through the library ----------------------------------------------------------------------

#[test]
fn bref_style_script_returning_a_closure() {
    let root = task(&[(
        "index.php",
        r#"<?php
return function (array $event, Lamp\Context $context): array {
    return ['hello' => $event['name'], 'function' => $context->functionName];
};"#,
    )]);
    // The function name set by the host (the script's name) does not exist: the callable wins.
    let mut function = php(root.path(), "index.php", Some("index"));
    let response = call(&function, r#"{"name":"bref"}"#);
    assert_eq!(
        json(&response.unwrap()),
        json!({"hello": "bref", "function": "index"})
    );
    // No function named at all: the callable.
    set_env(&mut function, "LAMP_PHP_FUNCTION", None);
    let response = call(&function, r#"{"name":"bref"}"#);
    assert_eq!(json(&response.unwrap())["hello"], "bref");
}

#[test]
fn handler_name_with_function_resolves_and_runs() {
    let root = task(&[(
        "src/api.php",
        "<?php function api($e) { return 'api'; } function users($e) { return 'users of ' . $e['team']; }",
    )]);
    let layers = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(layers.path().join("lamp")).unwrap();
    std::fs::copy(php_cwasm(), layers.path().join("lamp/php.cwasm")).unwrap();
    for (name, expected) in [("api.users", "users of red"), ("api", "api")] {
        // As the bootstrap deploys it.
        let mut spec = FunctionSpec::lambda(name, root.path().into(), layers.path().into());
        spec.config.timeout = TIMEOUT;
        let function = Function::load(spec).unwrap_or_else(|e| panic!("{name}: {e}"));
        let result = call(&function, r#"{"team":"red"}"#);
        assert_eq!(result.unwrap(), expected, "_HANDLER={name}");
    }
}

#[test]
fn context_fields_reach_the_handler() {
    let root = task(&[(
        "src/index.php",
        r#"<?php
function index(array $event, Lamp\Context $context) {
    return [
        'requestId' => $context->awsRequestId,
        'getAwsRequestId' => $context->getAwsRequestId(),
        'deadlineMs' => $context->deadlineMs,
        'remaining' => $context->getRemainingTimeInMillis(),
        'arn' => $context->invokedFunctionArn,
        'functionName' => $context->getFunctionName(),
        'version' => $context->functionVersion,
        'memory' => $context->memoryLimitInMb,
        'logGroup' => $context->logGroupName,
        'traceId' => $context->traceId,
        'env' => getenv('AWS_LAMBDA_FUNCTION_NAME'),
    ];
}"#,
    )]);
    let function = php(root.path(), "src/index.php", None);
    let event = NextEvent::local("{}", TIMEOUT);
    let context = function.context(&event);
    let outcome = engine::block_on(function.invoke(&event)).unwrap();
    let got = json(&outcome.result.unwrap());
    assert_eq!(got["requestId"], context.request_id.as_str());
    assert_eq!(got["getAwsRequestId"], context.request_id.as_str());
    assert_eq!(got["deadlineMs"].as_u64(), Some(context.deadline_ms));
    let remaining = got["remaining"].as_u64().unwrap();
    assert!(
        remaining > 0 && remaining <= TIMEOUT.as_millis() as u64,
        "remaining {remaining}"
    );
    assert_eq!(got["arn"], context.invoked_function_arn.as_str());
    assert_eq!(got["functionName"], context.function_name.as_str());
    assert_eq!(got["version"], context.function_version.as_str());
    assert_eq!(got["memory"].as_u64(), Some(context.memory_limit_mb as u64));
    assert_eq!(got["logGroup"], context.log_group_name.as_str());
    assert_eq!(got["traceId"], Value::Null);
    assert_eq!(got["env"], "index");
}

#[test]
fn values_are_json_encoded_and_64_bit_ints_round_trip() {
    let root = task(&[(
        "src/index.php",
        r#"<?php
function index(array $event) {
    return [
        'ts' => $event['ts'],
        'type' => get_debug_type($event['ts']),
        'next' => $event['ts'] + 1,
        'max' => PHP_INT_MAX,
        'size' => PHP_INT_SIZE,
        'nested' => $event['a']['b'][1]['c'],
        'float' => 0.5,
        'list' => [1, 2, 3],
    ];
}"#,
    )]);
    let event = r#"{"ts":1732500000000,"a":{"b":[0,{"c":"deep"}]}}"#;
    let text = invoke(root.path(), "src/index.php", Some("index"), event).unwrap();
    // Exact text: ints stay ints (no `1.7325e12`), no float drift.
    assert!(text.contains(r#""ts":1732500000000"#), "{text}");
    assert_eq!(
        json(&text),
        json!({
            "ts": 1_732_500_000_000u64,
            "type": "int",
            "next": 1_732_500_000_001u64,
            "max": i64::MAX,
            "size": 8,
            "nested": "deep",
            "float": 0.5,
            "list": [1, 2, 3],
        })
    );
    // Scalars are encoded too; strings are returned as they are.
    let root = task(&[(
        "a.php",
        "<?php function a($e) { return $e['n'] * 1000; } function s($e) { return '{not json'; }",
    )]);
    let got = invoke(root.path(), "a.php", Some("a"), r#"{"n":1732500000}"#);
    assert_eq!(got.unwrap(), "1732500000000");
    let got = invoke(root.path(), "a.php", Some("s"), "{}");
    assert_eq!(got.unwrap(), "{not json");
}

#[test]
fn errors_from_php_become_lambda_errors() {
    let root = task(&[(
        "e.php",
        r#"<?php
function undefined_fn($e) { return nope(); }
function user_fatal($e) { trigger_error("user fatal", E_USER_ERROR); }
function type_error($e) { return strlen(); }
function exits($e) { exit(3); }
function memory($e) { ini_set('memory_limit', '32M'); $a = []; while (true) { $a[] = str_repeat('x', 1 << 20); } }
function resource($e) { return fopen('php://memory', 'r'); }
function latin1($e) { return "caf\xe9"; }
function ok($e) { return 'ok'; }
"#,
    )]);
    // One loaded function, pointed at each PHP function in turn.
    let mut function = php(root.path(), "e.php", None);
    let mut run = |f: &str| {
        set_env(&mut function, "LAMP_PHP_FUNCTION", Some(f));
        call(&function, "{}").unwrap_err()
    };

    let err = run("undefined_fn");
    assert_eq!(err.error_type, "Error");
    assert_eq!(err.error_message, "Call to undefined function nope()");
    assert_eq!(err.stack_trace[0], "/var/task/e.php:2");

    let err = run("user_fatal");
    assert_eq!(err.error_type, "Runtime.PhpFatalError");
    assert_eq!(err.error_message, "user fatal");

    assert_eq!(run("type_error").error_type, "ArgumentCountError");

    let err = run("exits");
    assert_eq!(err.error_type, "Runtime.ExitError");
    assert!(err.error_message.contains("status 3"), "{err}");

    let err = run("memory");
    assert_eq!(err.error_type, "Runtime.PhpFatalError");
    assert!(
        err.error_message.starts_with("Allowed memory size"),
        "{err}"
    );

    assert_eq!(run("resource").error_type, "Runtime.MarshalError");
    // A string result is the response as it is: one that is not UTF-8 cannot be.
    let err = run("latin1");
    assert_eq!(err.error_type, "Runtime.MarshalError");
    assert!(err.error_message.contains("not valid UTF-8"), "{err}");

    // The same loaded function still works after all of that.
    set_env(&mut function, "LAMP_PHP_FUNCTION", Some("ok"));
    assert_eq!(call(&function, "{}").unwrap(), "ok");
}

#[test]
fn invalid_event_and_missing_script() {
    let root = task(&[("ok.php", "<?php function ok($e) { return 'ok'; }")]);
    let mut function = php(root.path(), "ok.php", Some("ok"));
    let err = call(&function, "{oops").unwrap_err();
    assert_eq!(err.error_type, "Runtime.InvalidEvent");
    // The runtime's own check, for a script that went away after the host resolved it.
    set_env(&mut function, "LAMP_PHP_SCRIPT", Some("/var/task/gone.php"));
    let err = call(&function, "{}").unwrap_err();
    assert_eq!(err.error_type, "Runtime.NoSuchHandler");
    assert!(err.error_message.contains("/var/task/gone.php"), "{err}");
}

#[test]
fn script_runs_in_the_global_scope() {
    let root = task(&[(
        "index.php",
        r#"<?php
$config = ['greeting' => 'Hi'];
function index($event) {
    global $config;
    return $config['greeting'] . ' ' . $GLOBALS['config']['greeting'];
}"#,
    )]);
    let got = invoke(root.path(), "index.php", Some("index"), "{}");
    assert_eq!(got.unwrap(), "Hi Hi");
}

#[test]
fn no_state_survives_between_invocations() {
    let root = task(&[(
        "src/index.php",
        r#"<?php
$loaded = ($loaded ?? 0) + 1;
function index($event) {
    global $loaded;
    static $calls = 0;
    $calls++;
    $GLOBALS['count'] = ($GLOBALS['count'] ?? 0) + 1;
    $seen = getenv('SEEN') !== false;
    putenv('SEEN=1');
    $tmp = file_exists('/tmp/marker');
    file_put_contents('/tmp/marker', 'x');
    return [$loaded, $calls, $GLOBALS['count'], $seen, $tmp, function_exists('later')];
}
function later() {}
"#,
    )]);
    let function = php(root.path(), "src/index.php", Some("index"));
    for round in 0..3 {
        let got = call(&function, "{}");
        // /tmp is the function's, as on Lambda: it outlives an invocation; nothing else does.
        let tmp = round > 0;
        assert_eq!(json(&got.unwrap()), json!([1, 1, 1, false, tmp, true]));
    }
}

#[test]
fn temporary_files_are_removed_at_the_end_of_each_invocation() {
    let root = task(&[(
        "index.php",
        r#"<?php
function index($event) {
    $before = array_values(array_diff(scandir('/tmp'), ['.', '..']));
    // Neither is ever closed by the handler, and both outlive the call.
    $GLOBALS['kept'][] = $f = tmpfile();
    fwrite($f, str_repeat('x', 100));
    $GLOBALS['kept'][] = $spill = fopen('php://temp/maxmemory:16', 'w+');
    fwrite($spill, str_repeat('y', 100));   // spills to a file in /tmp
    return ['before' => $before, 'during' => count(array_diff(scandir('/tmp'), ['.', '..']))];
}"#,
    )]);
    // One /tmp shared by the invocations, as in the bootstrap.
    let function = php(root.path(), "index.php", Some("index"));
    let tmp = function.tmp_dir();
    for round in 0..2 {
        let response = json(&call(&function, "{}").unwrap());
        assert_eq!(response["before"], serde_json::json!([]), "round {round}");
        assert_eq!(response["during"], 2, "round {round}: {response}");
        let left: Vec<_> = std::fs::read_dir(tmp).unwrap().collect();
        assert!(left.is_empty(), "round {round}: left in /tmp: {left:?}");
    }
}

#[test]
fn filesystem_is_limited_to_task_root_and_tmp() {
    let root = task(&[
        (
            "src/index.php",
            r#"<?php
function index($event) {
    return [
        'task' => file_get_contents('/var/task/data/hello.txt'),
        'relative' => file_get_contents(__DIR__ . '/../data/hello.txt'),
        'etc' => @file_get_contents('/etc/passwd'),
        'root' => @scandir('/'),
        'up' => @file_get_contents('/var/task/../../etc/hostname'),
        'task_write' => @file_put_contents('/var/task/new.txt', 'x'),
        'tmp_write' => file_put_contents('/tmp/out.txt', 'written'),
        'tmp_read' => file_get_contents('/tmp/out.txt'),
        'tempnam' => str_starts_with((string) tempnam(sys_get_temp_dir(), 'x'), '/tmp/'),
    ];
}"#,
        ),
        ("data/hello.txt", "hello from the task root"),
    ]);
    let got = json(&invoke(root.path(), "src/index.php", Some("index"), "{}").unwrap());
    assert_eq!(
        got,
        json!({
            "task": "hello from the task root",
            "relative": "hello from the task root",
            "etc": false,
            "root": false,
            "up": false,
            "task_write": false,
            "tmp_write": 7,
            "tmp_read": "written",
            "tempnam": true,
        })
    );
    assert!(!root.path().join("new.txt").exists());
}

// --- host php -------------------------------------------------------------------------------

pub(crate) fn host_php(args: &[&str], stdin: Option<&str>, cwd: &Path) -> Output {
    host_php_with_tmp(args, stdin, cwd, None)
}

/// [`host_php`] with `tmp` as the host's temporary directory (TMPDIR), which the guest sees as
/// `/tmp`.
fn host_php_with_tmp(args: &[&str], stdin: Option<&str>, cwd: &Path, tmp: Option<&Path>) -> Output {
    let mut command = host();
    if let Some(tmp) = tmp {
        command.env("TMPDIR", tmp);
    }
    let mut child = command
        .arg("php")
        .arg("--php-cli")
        .arg(dist("php-cli.wasm"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

#[test]
fn host_php_is_a_64_bit_php_cli() {
    let dir = tempfile::tempdir().unwrap();
    let out = host_php(
        &["-r", "var_dump(PHP_INT_SIZE, PHP_VERSION);"],
        None,
        dir.path(),
    );
    assert!(out.status.success(), "stderr:\n{}", stderr(&out));
    assert_eq!(stdout(&out), "int(8)\nstring(6) \"8.2.32\"\n");

    assert_eq!(
        host_php(&["-r", "exit(3);"], None, dir.path())
            .status
            .code(),
        Some(3)
    );
    let out = host_php(&["-r", "undefined_function();"], None, dir.path());
    assert_eq!(out.status.code(), Some(255));
    let out = host_php(
        &[
            "-d",
            "display_errors=1",
            "-r",
            "trigger_error('boom', E_USER_ERROR);",
        ],
        None,
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stdout(&out).contains("Fatal error: boom"),
        "{}",
        stdout(&out)
    );

    let out = host_php(&[], Some("<?php echo 6 * 7;"), dir.path());
    assert_eq!(stdout(&out), "42");

    std::fs::write(
        dir.path().join("script.php"),
        "<?php echo implode(',', array_slice($argv, 1)), ' ', ini_get('precision'), ' ', fgets(STDIN);",
    )
    .unwrap();
    let out = host_php(
        &[
            "-n",
            "-d",
            "precision=5",
            "-f",
            "script.php",
            "--",
            "a",
            "b",
        ],
        Some("line"),
        dir.path(),
    );
    assert_eq!(stdout(&out), "a,b 5 line", "stderr:\n{}", stderr(&out));
}

/// The guest sees the current directory and nothing above it, until `--allow-dir` grants a
/// directory that holds it: then `..` climbs out as natively (an app's `public/` requiring
/// `../vendor/autoload.php`), and writes land there.
#[test]
fn host_php_reaches_above_the_current_directory_only_when_granted() {
    // The guest sees the host's temporary directory as /tmp: one beside the app, never above
    // it (as the system's is when the checkout is under /tmp).
    let app = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let host_php =
        |args: &[&str], stdin, cwd: &Path| host_php_with_tmp(args, stdin, cwd, Some(tmp.path()));
    let public = app.path().join("public");
    std::fs::create_dir_all(app.path().join("vendor")).unwrap();
    std::fs::create_dir(&public).unwrap();
    std::fs::write(
        app.path().join("vendor/autoload.php"),
        "<?php return 'autoloaded';",
    )
    .unwrap();
    std::fs::write(
        public.join("index.php"),
        "<?php echo require __DIR__ . '/../vendor/autoload.php', ' ', count(scandir('..')), ' ',
            file_put_contents('../written.txt', 'w');",
    )
    .unwrap();

    let denied = host_php(&["index.php"], None, &public);
    assert!(
        stdout(&denied).contains("Failed opening required"),
        "without a grant, ../vendor must stay out of reach: {}",
        stdout(&denied)
    );
    assert!(!app.path().join("written.txt").exists());

    let granted = host_php(&["--allow-dir", "..", "index.php"], None, &public);
    assert!(granted.status.success(), "stderr:\n{}", stderr(&granted));
    // ., .., public, vendor
    assert_eq!(stdout(&granted), "autoloaded 4 1");
    assert_eq!(
        std::fs::read_to_string(app.path().join("written.txt")).unwrap(),
        "w"
    );

    let missing = host_php(&["--allow-dir", "no-such-dir", "-r", "1;"], None, &public);
    assert_eq!(
        missing.status.code(),
        Some(2),
        "stderr:\n{}",
        stderr(&missing)
    );
    assert!(
        stderr(&missing).contains("--allow-dir no-such-dir: not a directory"),
        "{}",
        stderr(&missing)
    );
}

/// PHP's executor checks the deadline where PHP polls (jumps and calls), not at every opcode
/// (host/src/engine.rs, `EPOCH_POLL`): the build must have both names the compiler looks for,
/// and loops that call nothing, in every shape PHP compiles, must still end at the deadline.
#[test]
fn php_loops_that_call_nothing_stop_at_the_deadline() {
    for wasm in ["php.wasm", "php-cli.wasm"] {
        let names =
            host::component::slim::names_read_by_the_compiler(&std::fs::read(dist(wasm)).unwrap())
                .unwrap();
        assert!(
            names.iter().any(|n| n == engine::EPOCH_POLL)
                && names.iter().any(|n| n == engine::EPOCH_POLLED),
            "{wasm}: the function names {:?} lack PHP's executor or its deadline poll \
             (guests/php/patches/0013-*)",
            names
        );
    }
    let loops = [
        ("while", "while (true) {}"),
        ("for", "for ($i = 0; ; $i++) {}"),
        ("do", "do { $i = ($i ?? 0) + 1; } while ($i > 0);"),
        ("goto", "again: $i = 1; goto again;"),
        (
            "switch",
            "$i = 0; while (true) { switch ($i % 3) { case 0: $i++; break; default: $i = match ($i) { 1 => 2, default => 0 }; } }",
        ),
        (
            "foreach",
            "$a = [1, 2]; while (true) { foreach ($a as $k => $v) { $a[$k] = $v + 1; } }",
        ),
    ];
    for (name, body) in loops {
        let root = task(&[(
            "index.php",
            &format!("<?php function index($e) {{ {body} }}"),
        )]);
        let started = std::time::Instant::now();
        // Killed after a minute: a loop the deadline misses fails the test, not hangs it.
        let mut child = host_run_command(root.path(), "index.php", "{}", &["--timeout", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        while child.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        let elapsed = started.elapsed();
        assert_eq!(
            cli_error(&out).error_type,
            "Sandbox.Timedout",
            "{name}: {}",
            stderr(&out)
        );
        assert!(
            elapsed < Duration::from_secs(20),
            "{name}: ran {elapsed:?} past a 1 s deadline"
        );
    }
}

// --- measurement ------------------------------------------------------------------------------

/// Per-invocation time of the seed handler through the library (load once, then a fresh
/// instance per event), printed as the median of 200 runs; checks every response.
/// `cargo test --release -p host --test it php::invocation_time -- --ignored --nocapture`
#[test]
#[ignore = "a measurement: run it explicitly"]
fn invocation_time() {
    let function = php(&repo().join("examples/hello-php"), "src/index.php", None);
    let faults_before = minor_faults();
    let mut times: Vec<(Duration, Duration)> = (0..200)
        .map(|_| {
            let event = NextEvent::local(r#"{"name":"world"}"#, TIMEOUT);
            let outcome = engine::block_on(function.invoke(&event)).unwrap();
            assert_eq!(outcome.result.unwrap(), "Hello, world");
            (outcome.duration, outcome.instantiate)
        })
        .collect();
    let mut instantiate: Vec<Duration> = times.iter().map(|(_, i)| *i).collect();
    instantiate.sort();
    println!(
        "minor page faults of the process per invocation: {}",
        (minor_faults() - faults_before) / 200
    );
    times.sort();
    println!(
        "php.wasm seed handler: median {:?} (instantiate {:?}), p10 {:?}, p90 {:?} over {} invocations",
        times[times.len() / 2].0,
        instantiate[instantiate.len() / 2],
        times[times.len() / 10].0,
        times[times.len() * 9 / 10].0,
        times.len()
    );
}

/// Minor page faults of this process so far (`/proc/self/stat`, field 10).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after_name = stat.rsplit(')').next().unwrap();
    after_name
        .split_whitespace()
        .nth(7)
        .unwrap()
        .parse()
        .unwrap()
}
