//! The per-deployment PHP snapshot (host/src/php/snapshot.rs, guests/php/runtime/lamp_preload.c)
//! through `host serve`: the app's code is compiled once, at start, and each request is served
//! from it; what one request declares or sets is gone in the next; a changed file is compiled
//! again; PHP's semantics (hoisting, redeclaration errors, parse errors) are those of a plain
//! compile, checked against native php8.2 on the same scripts.

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use mock_runtime::{Event, MockRuntime, Outcome};
use serde_json::Value;

use crate::php::task;
use crate::web::{Serve, client};

/// The front controller: includes in every form, a class used before its declaration (early
/// binding), a static counter, what an autoloader asks of the file system about the code
/// (answered from the snapshot while the host vouches for it), and what the snapshot served
/// (`lamp_preload_status`, absent natively).
const INDEX: &str = r#"<?php
$early = new Early();
require __DIR__ . '/../lib/greet.php';
require_once __DIR__ . '/../lib/Counter.php';
include_once __DIR__ . '/../lib/./Child.php';
if (($_GET['do'] ?? '') === 'twice') { require __DIR__ . '/../lib/greet.php'; }
if (($_GET['do'] ?? '') === 'broken') { require __DIR__ . '/../lib/broken.php'; }
header('Content-Type: application/json');
echo json_encode([
    'greeting' => greet('world'),
    'counter' => Counter::next(),
    'child' => (new Child)->who(),
    'declared_early' => $early instanceof Early,
    'unused_declared' => function_exists('unused_fn') || class_exists('UnusedClass', false),
    'included' => array_map('basename', get_included_files()),
    'status' => function_exists('lamp_preload_status') ? lamp_preload_status() : null,
    'uri' => $_SERVER['REQUEST_URI'] ?? null,
    'method' => Counter::method(),
    'memory_limit' => ini_get('memory_limit'),
    'lib_is_file' => is_file(__DIR__ . '/../lib/greet.php'),
    'lib_exists' => file_exists(__DIR__ . '/../lib/greet.php'),
    'lib_size' => filesize(__DIR__ . '/../lib/greet.php'),
    'lib_mtime' => filemtime(__DIR__ . '/../lib/greet.php'),
    'lib_is_dir' => is_dir(__DIR__ . '/../lib'),
    'lib_missing' => is_file(dirname(__DIR__) . '/lib/missing.php'),
    'cwd' => basename(getcwd()),
]);
class Early {}
"#;

/// The app, with a comment of its own in the front controller: its snapshot is built by this
/// test, never found in the cache from an earlier run.
fn app() -> tempfile::TempDir {
    let nonce = format!(
        "{INDEX}// {:?} {}\n",
        std::time::SystemTime::now(),
        std::process::id()
    );
    task(&[
        ("public/index.php", nonce.as_str()),
        (
            "lib/greet.php",
            "<?php function greet(string $who): string { return \"Hello, $who\"; }\n",
        ),
        (
            "lib/Counter.php",
            "<?php class Counter { private static int $n = 0; static function next(): int { return ++self::$n; }\n  static function method(): string { return $_SERVER['REQUEST_METHOD'] ?? 'none'; } }\n",
        ),
        (
            "lib/Child.php",
            "<?php $made = new Child();\nclass Child extends ArrayObject { function who() { return 'child of ' . get_parent_class($this); } }\n",
        ),
        (
            "lib/unused.php",
            "<?php function unused_fn() {} class UnusedClass {}\n",
        ),
        ("lib/broken.php", "<?php this is not php\n"),
    ])
}

fn get(serve: &Serve, path: &str) -> (u16, String) {
    let response = client().get(serve.url(path)).send().unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

fn page(serve: &Serve) -> Value {
    let (status, body) = get(serve, "/");
    assert_eq!(status, 200, "{body}\n{}", serve.log());
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}\n{}", serve.log()))
}

/// What native php8.2 prints for the page.
fn native(root: &Path) -> Value {
    let out = Command::new("php8.2")
        .args(["-n", "public/index.php"])
        .current_dir(root)
        .output()
        .expect("php8.2 (apt install php8.2-cli)");
    let body = String::from_utf8_lossy(&out.stdout).into_owned();
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn serve_runs_each_request_from_the_snapshot_of_the_apps_code() {
    let app = app();
    let serve = Serve::start(&app.path().join("public"), &["--env", "X=1"]);
    assert!(
        serve.log_has("compiled the function's PHP code into a snapshot files=5 skipped=1"),
        "{}",
        serve.log()
    );
    assert!(
        serve.log_has("snapshot: skipped /var/task/lib/broken.php: syntax error"),
        "{}",
        serve.log()
    );

    let first = page(&serve);
    let status = &first["status"];
    assert_eq!(status["files"], 5, "{first}");
    assert_eq!(
        status["hits"], 4,
        "every include from the snapshot: {first}"
    );
    assert_eq!(status["misses"], 0, "{first}");
    assert_eq!(status["stale"], 0, "{first}");

    // $_SERVER, filled when first named by a compile, is there though nothing was compiled.
    assert_eq!(first["uri"], "/", "{first}");
    assert_eq!(first["method"], "GET", "{first}");
    // The function's memory limit (128 MB: PHP gets half of what PHP itself leaves, 16 to
    // 64 MB of it, php.rs's memory test), not the preload's none (-1).
    let limit: u64 = first["memory_limit"]
        .as_str()
        .and_then(|l| l.strip_suffix('M'))
        .and_then(|mb| mb.parse().ok())
        .unwrap_or_else(|| panic!("memory_limit: {first}"));
    assert!((32..=56).contains(&limit), "{first}");

    // The same page as native PHP's (on the command line: no request), but for what only ours
    // has.
    let mut ours = first.clone();
    let mut theirs = native(app.path());
    // The script's directory is the request's (PHP-FPM's chdir), not the command line's.
    assert_eq!(first["cwd"], "public", "{first}");
    for key in ["status", "uri", "method", "memory_limit", "cwd"] {
        ours.as_object_mut().unwrap().remove(key);
        theirs.as_object_mut().unwrap().remove(key);
    }
    assert_eq!(ours, theirs);
    assert_eq!(ours["counter"], 1);
    assert_eq!(ours["declared_early"], true);
    assert_eq!(ours["unused_declared"], false);
    assert_eq!(ours["lib_is_file"], true);
    assert_eq!(ours["lib_is_dir"], true);
    assert_eq!(ours["lib_missing"], false);

    // Nothing of one request in the next: the static counter starts again.
    assert_eq!(page(&serve)["counter"], 1);

    // A file included twice: PHP's own error, as compiling it again would give.
    let (status, _) = get(&serve, "/?do=twice");
    assert_eq!(status, 500);
    assert!(
        serve
            .log_has("Cannot redeclare greet() (previously declared in /var/task/lib/greet.php:1)"),
        "{}",
        serve.log()
    );
    // The file that did not compile for the snapshot: its parse error, when a request includes it.
    let (status, _) = get(&serve, "/?do=broken");
    assert_eq!(status, 500);
    assert!(
        serve.log_has("syntax error, unexpected identifier"),
        "{}",
        serve.log()
    );

    // A changed file is compiled again, never served stale; the others still come from the
    // snapshot.
    std::fs::write(
        app.path().join("lib/greet.php"),
        "<?php function greet(string $who): string { return \"Hi, $who!\"; }\n",
    )
    .unwrap();
    let changed = page(&serve);
    assert_eq!(changed["greeting"], "Hi, world!");
    assert_eq!(changed["status"]["stale"], 1, "{changed}");
    assert_eq!(changed["status"]["hits"], 3, "{changed}");
    // Its size is the new one: the file system is asked again once the code changed.
    let size = std::fs::metadata(app.path().join("lib/greet.php"))
        .unwrap()
        .len();
    assert_eq!(changed["lib_size"], size, "{changed}");
}

/// The file system calls `host serve` makes while it serves `path` once (`strace` on the
/// server): one line each, as strace prints them.
fn file_calls(serve: &Serve, path: &str) -> Vec<String> {
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut strace = Command::new("strace")
        .args([
            "-f",
            "-e",
            "trace=openat,openat2,statx,newfstatat,readlinkat",
            "-o",
        ])
        .arg(out.path())
        .args(["-p", &serve.pid().to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("strace (scripts/setup.sh installs it)");
    // Attached to every thread before the request: strace says so on stderr.
    let mut said = String::new();
    let mut stderr = strace.stderr.take().unwrap();
    let mut byte = [0u8; 1];
    while !said.contains(" attached") {
        assert_eq!(stderr.read(&mut byte).unwrap(), 1, "strace: {said}");
        said.push(byte[0] as char);
    }
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    std::thread::sleep(Duration::from_millis(200));
    let (status, body) = get(serve, path);
    assert_eq!(status, 200, "{body}\n{}", serve.log());
    std::thread::sleep(Duration::from_millis(200));
    let _ = Command::new("kill").arg(strace.id().to_string()).status();
    strace.wait().unwrap();
    std::fs::read_to_string(out.path())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn includes_from_the_snapshot_touch_no_file_while_the_code_is_unchanged() {
    let app = app();
    let serve = Serve::start(&app.path().join("public"), &[]);
    page(&serve);
    let libs = ["lib/greet.php", "lib/Counter.php", "lib/Child.php"];
    let calls = file_calls(&serve, "/");
    let all = calls.join("\n");
    assert!(
        all.contains("public/index.php"),
        "strace saw the request: {all}"
    );
    // PHP resolved none of `__DIR__ . '/../lib/...'` itself (a realpath is an lstat per
    // component), include_once/require_once opened nothing, with the host watching the code
    // nothing was checked, and is_file(), file_exists(), filesize(), is_dir() of the code and
    // the chdir() to the script's directory were answered from the snapshot.
    assert!(!all.contains("../lib"), "{all}");
    assert!(!all.contains("\"public\""), "{all}");
    assert!(!all.contains("\"lib\""), "{all}");
    assert!(all.contains("lib/missing.php"), "{all}");
    assert!(!all.contains("lib/./"), "{all}");
    for file in libs {
        assert!(!all.contains(file), "{file}: {all}");
    }
    // The instance's preopened folders (/tmp, the task root, PHP's certificates) are the
    // descriptors the function opened once, not opened again by path.
    let opens_folder = |c: &String| c.contains("openat(AT_FDCWD, \"/") && c.contains("O_DIRECTORY");
    assert!(!calls.iter().any(opens_folder), "{all}");

    // Once a file changed, every include is checked (one stat each) and the changed one
    // compiled again: opened and read.
    std::fs::write(
        app.path().join("lib/greet.php"),
        "<?php function greet(string $who): string { return \"Hi, $who!\"; }\n",
    )
    .unwrap();
    let calls = file_calls(&serve, "/");
    // ...and its folders opened again (one may have been replaced).
    assert!(calls.iter().any(opens_folder), "{calls:#?}");
    for file in libs {
        let named: Vec<&String> = calls.iter().filter(|c| c.contains(file)).collect();
        let checks = named
            .iter()
            .filter(|c| c.contains("O_PATH") || c.contains("statx("))
            .count();
        let opened = named.len() - checks;
        if file == "lib/greet.php" {
            // Checked, then compiled as PHP compiles any file (its realpath included).
            assert_eq!(opened, 1, "{file}: {named:#?}");
        } else {
            // One stat by the guest: cap-std's is an `O_PATH` open without following
            // symlinks, then one that follows.
            assert!(
                (1..=2).contains(&checks) && opened == 0,
                "{file}: {named:#?}"
            );
        }
    }
    assert_eq!(page(&serve)["greeting"], "Hi, world!");
}

#[test]
fn without_the_snapshot_every_include_is_compiled() {
    let app = app();
    let serve = Serve::start(&app.path().join("public"), &["--no-snapshot"]);
    let page = page(&serve);
    assert_eq!(page["greeting"], "Hello, world");
    let status = &page["status"];
    assert_eq!(status["files"], 0, "{page}");
    assert_eq!(status["hits"], 0, "{page}");
    assert!(!serve.log().contains("snapshot"), "{}", serve.log());
}

/// A JSON handler that says what the snapshot served, and what a previous invocation left.
const HANDLER: &str = r#"<?php
require_once __DIR__ . '/../lib/Greeter.php';
function index($event) {
    $before = $GLOBALS['seen'] ?? 'clean';
    $GLOBALS['seen'] = 'leaked';
    return ['greeting' => Greeter::greet($event['name']), 'before' => $before,
        'status' => lamp_preload_status()];
}
"#;

pub(crate) fn handler_task() -> tempfile::TempDir {
    task(&[
        ("src/index.php", HANDLER),
        (
            "lib/Greeter.php",
            "<?php class Greeter { static function greet($n) { return \"Hello, $n\"; } }\n",
        ),
    ])
}

pub(crate) fn compile(dir: &Path) {
    let out = crate::util::host()
        .arg("compile")
        .arg(dir)
        .args([
            "--php-runtime".as_ref(),
            crate::php::dist("php.wasm").as_os_str(),
        ])
        .output()
        .unwrap();
    let said = crate::util::stderr(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("2 .php files compiled"), "{said}");
    assert!(dir.join(".lamp/php-snapshot.cwasm").is_file());
}

#[test]
fn host_compile_puts_the_snapshot_in_the_function_and_the_bootstrap_starts_from_it() {
    let task = handler_task();
    compile(task.path());

    let mock = MockRuntime::start();
    let layers = tempfile::tempdir().unwrap();
    let run = |mock: &MockRuntime| {
        Command::new(env!("CARGO_BIN_EXE_host"))
            .arg("bootstrap")
            .env("AWS_LAMBDA_RUNTIME_API", mock.address())
            .env("_HANDLER", "index")
            .env("LAMBDA_TASK_ROOT", task.path())
            .env("LAMP_LAYERS_ROOT", layers.path())
            .env("LAMP_PHP_RUNTIME", crate::php::dist("php.wasm"))
            .env_remove("AWS_LAMBDA_MAX_CONCURRENCY")
            .env_remove("AWS_LAMBDA_LOG_FORMAT")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut bootstrap = run(&mock);
    for id in ["snap-1", "snap-2"] {
        mock.push(Event::new(
            id,
            r#"{"name":"snapshot"}"#,
            Duration::from_secs(60),
        ));
    }
    let outcomes = mock.wait_for_outcomes(2, Duration::from_secs(120));
    let _ = bootstrap.kill();
    let mut log = String::new();
    let _ = bootstrap.stderr.take().unwrap().read_to_string(&mut log);
    let _ = bootstrap.wait();
    for id in ["snap-1", "snap-2"] {
        let Outcome::Response(body) = &outcomes[id] else {
            panic!("{id}: {:?}\n{log}", outcomes[id]);
        };
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["greeting"], "Hello, snapshot");
        assert_eq!(
            v["before"], "clean",
            "a global leaked into the next invocation"
        );
        assert_eq!(v["status"]["files"], 2, "{body}\n{log}");
        assert_eq!(v["status"]["hits"], 2, "{body}");
        assert_eq!(v["status"]["misses"], 0, "{body}");
    }
    assert!(!log.contains("WARN"), "{log}");

    // Code changed after `host compile`: the snapshot is not used, and the log says what to do.
    std::fs::write(
        task.path().join("lib/Greeter.php"),
        "<?php class Greeter { static function greet($n) { return \"Hi, $n\"; } }\n",
    )
    .unwrap();
    let out = crate::util::host()
        .args([
            "run".as_ref(),
            task.path().join("src/index.php").as_os_str(),
        ])
        .args(["--event", r#"{"name":"again"}"#, "--php-runtime"])
        .arg(crate::php::php_cwasm())
        .output()
        .unwrap();
    let said = crate::util::stderr(&out);
    let v: Value = serde_json::from_str(crate::util::stdout(&out).trim()).unwrap();
    assert_eq!(v["greeting"], "Hi, again");
    assert_eq!(v["status"]["files"], 0);
    assert!(
        said.contains("was made from other code") && said.contains("run `host compile`"),
        "{said}"
    );
}

/// The snapshot of an app's code is wizer's output of wizer's output (php.wasm): the first
/// pass's 10,000 active data segments come back as empty passive ones, which wasmtime would set
/// up in every instance (~30 us a request). What the host compiles has none left
/// (host/src/component/slim.rs).
#[test]
fn the_snapshot_compiled_sets_up_no_empty_data_segments() {
    use host::component::slim;
    use host::php::snapshot::{self, Deployment, Validate};
    use host::sandbox::DirMapping;

    let app = task(&[
        ("public/index.php", "<?php echo 'hi';\n"),
        ("lib/a.php", "<?php function a() {}\n"),
    ]);
    let roots = [DirMapping::read_only(app.path(), "/var/task")];
    let deployment = Deployment::scan(&roots).unwrap();
    let wasm = std::fs::read(crate::php::dist("php.wasm")).unwrap();
    let (built, preloaded) =
        snapshot::build(&wasm, &deployment, &roots, Validate::Never, None).unwrap();
    assert_eq!(preloaded.compiled, 2, "{preloaded:?}");
    let before = slim::empty_passive_data_segments(&built).unwrap();
    assert!(before > 1_000, "wizer left {before} empty passive segments");
    let slimmed = slim::slim(&built).unwrap();
    assert_eq!(slim::empty_passive_data_segments(&slimmed).unwrap(), 0);
}

/// wizer's run compiles the runtime it instruments, the same bytes for every snapshot of one
/// runtime: the second snapshot maps that compile from the cache instead of doing it again
/// (about half of a snapshot's time).
#[test]
fn the_snapshot_run_compiles_the_runtime_once() {
    use host::component::cache::Cache;
    use host::php::snapshot::{self, Deployment, Validate};
    use host::sandbox::DirMapping;
    use std::os::unix::fs::MetadataExt as _;

    let wasm = std::fs::read(crate::php::dist("php.wasm")).unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(cache_dir.path());
    // The cache's files and their inodes (the cache replaces a file by renaming a new one).
    let cached = || -> Vec<(std::path::PathBuf, u64)> {
        let mut files: Vec<_> = std::fs::read_dir(cache_dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| (p.clone(), p.metadata().unwrap().ino()))
            .collect();
        files.sort();
        files
    };
    let mut after = Vec::new();
    for (n, code) in ["<?php echo 'one';\n", "<?php echo 'two';\n"]
        .iter()
        .enumerate()
    {
        let app = task(&[("public/index.php", code)]);
        let roots = [DirMapping::read_only(app.path(), "/var/task")];
        let deployment = Deployment::scan(&roots).unwrap();
        let (_, preloaded) =
            snapshot::build(&wasm, &deployment, &roots, Validate::Never, Some(&cache)).unwrap();
        assert_eq!(preloaded.compiled, 1, "snapshot {n}: {preloaded:?}");
        after.push(cached());
    }
    assert_eq!(
        after[0].len(),
        1,
        "one compiled runtime in the cache: {:?}",
        after[0]
    );
    assert_eq!(
        after[0], after[1],
        "the second snapshot compiled the runtime again"
    );
}

/// Cranelift's incremental cache (host/src/component/functions.rs): a snapshot holds the
/// runtime's functions, so the snapshot of other code compiles only the few that differ and
/// adds a pack a fraction of the first one's size.
#[test]
fn a_second_snapshot_compiles_only_the_functions_the_first_had_not() {
    let cache = tempfile::tempdir().unwrap();
    let packs = || -> Vec<u64> {
        let Ok(dir) = std::fs::read_dir(cache.path().join("cwasm/functions")) else {
            return Vec::new();
        };
        let mut packs: Vec<(std::time::SystemTime, u64)> = dir
            .map(|e| e.unwrap().metadata().unwrap())
            .map(|m| (m.modified().unwrap(), m.len()))
            .collect();
        packs.sort();
        packs.into_iter().map(|(_, size)| size).collect()
    };
    for code in ["<?php echo 'one';\n", "<?php echo 'two';\n"] {
        let app = task(&[("src/index.php", code)]);
        let out = crate::util::host()
            .env("LAMP_CACHE", cache.path())
            .arg("compile")
            .arg(app.path())
            .args([
                "--php-runtime".as_ref(),
                crate::php::dist("php.wasm").as_os_str(),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", crate::util::stderr(&out));
    }
    let packs = packs();
    assert_eq!(packs.len(), 2, "one pack per snapshot compile: {packs:?}");
    assert!(
        packs[0] > 10 << 20,
        "the first compile kept PHP's functions: {packs:?}"
    );
    assert!(
        packs[1] < packs[0] / 4,
        "the second compile found most functions in the first's pack: {packs:?}"
    );
}
