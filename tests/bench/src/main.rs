//! `lamp-bench`: our runtime against native PHP, on the same machine in the same run, through
//! the tests' mock Runtime API on loopback. Prints a markdown table of medians and p99s.
//!
//! Rows: cold start (spawn `bootstrap` → first response at the API), warm invocation latency
//! (`/next` served → `/response` received), throughput at concurrency 1 and 2, peak RSS of the
//! runtime process, and `Zend/bench.php` under `host php` against native php8.2. Peers: the
//! seed's PHP bootstrap (peer/bootstrap.php) on native php8.2-cli, long-lived and one process
//! per event. Web rows (`web.rs`): examples/lamp-app under `host serve`, nginx + PHP-FPM and
//! `php -S`, loaded with `wrk`. Framework rows (`framework.rs`): a page of an app on Debian's
//! Symfony HttpFoundation and Twig under `host serve` with and without the snapshot of its
//! code, and nginx + PHP-FPM with and without opcache. MySQL rows (`mysql.rs`): a page that
//! connects to a private MariaDB, runs one statement and closes, under `host serve` and nginx
//! + PHP-FPM.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use mock_runtime::{Event, MockRuntime};

mod framework;
mod mysql;
mod web;

/// Benchmarks the runtime against native PHP peers.
#[derive(Debug, Parser)]
struct Args {
    /// The release `host` binary.
    #[arg(long, default_value = "target/release/host")]
    host: PathBuf,
    /// The runtime the invocation rows start as `bootstrap` (default: `--host`), e.g. the
    /// layers' static build, `target/x86_64-unknown-linux-musl/layer/host` after `make layers`;
    /// `--host` still compiles the code and runs the other rows.
    #[arg(long, value_name = "PATH")]
    bootstrap: Option<PathBuf>,
    /// The PHP handler component.
    #[arg(long, default_value = "guests/php/dist/php.wasm")]
    php_wasm: PathBuf,
    /// The Rust hello component.
    #[arg(
        long,
        default_value = "target/guests/wasm32-wasip2/release/hello_rust.wasm"
    )]
    rust_wasm: PathBuf,
    /// PHP's Zend/bench.php.
    #[arg(long, default_value = "target/php/php-8.2.32/Zend/bench.php")]
    zend_bench: PathBuf,
    /// Native PHP.
    #[arg(long, default_value = "php8.2")]
    php: String,
    /// Few iterations: a smoke run for CI.
    #[arg(long)]
    quick: bool,
    #[command(flatten)]
    web: web::WebArgs,
    #[command(flatten)]
    framework: framework::FrameworkArgs,
    #[command(flatten)]
    mysql: mysql::MysqlArgs,
}

/// What every hello answers (the JSON handlers, the web page, the native peers).
const HELLO: &str = "Hello, world";

struct Sizes {
    cold: usize,
    warm: usize,
    peer_per_process: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let sizes = if args.quick {
        Sizes {
            cold: 5,
            warm: 200,
            peer_per_process: 20,
        }
    } else {
        Sizes {
            cold: 40,
            warm: 2000,
            peer_per_process: 200,
        }
    };
    let root = std::env::current_dir()?;
    let work = tempfile::tempdir()?;

    // Layers as the bootstrap finds them: /opt/lamp/php.cwasm precompiled by this host.
    let layers = work.path().join("opt");
    std::fs::create_dir_all(layers.join("lamp"))?;
    std::fs::copy(&args.php_wasm, layers.join("lamp/php.wasm"))
        .context("php.wasm missing: run `make php`")?;
    run_ok(
        Command::new(&args.host)
            .arg("compile")
            .arg(&args.php_wasm)
            .arg("-o")
            .arg(layers.join("lamp/php.cwasm")),
    )?;
    let php_cwasm = layers.join("lamp/php.cwasm");
    let web_setup = web::Setup {
        host: &args.host,
        php: &args.php,
        php_runtime: &php_cwasm,
        quick: args.quick,
    };
    if args.web.web_only || args.mysql.mysql_only || args.framework.framework_only {
        let mut rows = Vec::new();
        if args.web.web_only {
            rows = web::rows(&args.web, &web_setup)?;
        }
        let mut framework_breakdown = web::Breakdown::default();
        if !args.mysql.mysql_only {
            let (framework_rows, breakdown) =
                framework::run(&args.framework, &args.web, &web_setup)?;
            rows.extend(framework_rows);
            framework_breakdown = breakdown;
        }
        let mut mysql_breakdown = web::Breakdown::default();
        if !args.framework.framework_only {
            let (mysql_rows, breakdown) = mysql::run(&args.mysql, &args.web, &web_setup)?;
            rows.extend(mysql_rows);
            mysql_breakdown = breakdown;
        }
        print_table(&args, &rows)?;
        framework_breakdown.print();
        mysql_breakdown.print();
        return Ok(());
    }
    let php_task = root.join("examples/hello-php");
    // The same function with its code compiled into a snapshot at deploy time (`host compile
    // DIR` writes DIR/.lamp/php-snapshot.cwasm; the bootstrap starts from it).
    let php_snap_task = work.path().join("php-snapshot-task");
    std::fs::create_dir_all(php_snap_task.join("src"))?;
    std::fs::copy(
        php_task.join("src/index.php"),
        php_snap_task.join("src/index.php"),
    )?;
    run_ok(
        Command::new(&args.host)
            .arg("compile")
            .arg(&php_snap_task)
            .arg("--php-runtime")
            .arg(&php_cwasm),
    )?;
    // The seed's hello as a web page (PHP web mode: `_HANDLER` names the script), behind an
    // HTTP API event, with its code in a snapshot like `php_snap_task`'s: the same greeting
    // through the other contract, for the per-request cost of web mode.
    let php_web_task = work.path().join("php-web-task");
    std::fs::create_dir_all(php_web_task.join("public"))?;
    std::fs::write(
        php_web_task.join("public/index.php"),
        "<?php\n\necho 'Hello, ' . $_GET['name'];\n",
    )?;
    run_ok(
        Command::new(&args.host)
            .arg("compile")
            .arg(&php_web_task)
            .arg("--php-runtime")
            .arg(&php_cwasm),
    )?;
    let rust_task = work.path().join("rust-task");
    std::fs::create_dir_all(&rust_task)?;
    run_ok(
        Command::new(&args.host)
            .arg("compile")
            .arg(&args.rust_wasm)
            .arg("-o")
            .arg(rust_task.join("hello.cwasm")),
    )?;

    let bootstrap = args.bootstrap.as_ref().unwrap_or(&args.host);
    let ours = |task: &Path, handler: &str, concurrency: usize| {
        let mut cmd = Command::new(bootstrap);
        cmd.arg("bootstrap")
            .env("LAMBDA_TASK_ROOT", task)
            .env("LAMP_LAYERS_ROOT", &layers)
            .env("_HANDLER", handler)
            .env("AWS_LAMBDA_MAX_CONCURRENCY", concurrency.to_string())
            .env("AWS_LAMBDA_LOG_LEVEL", "ERROR")
            .env("TMPDIR", work.path());
        cmd
    };
    let peer_script = root.join("tests/bench/peer/bootstrap.php");
    let peer = |once: bool| {
        let mut cmd = Command::new(&args.php);
        cmd.arg("-n")
            .arg("-d")
            .arg("extension=curl")
            .arg(&peer_script);
        if once {
            cmd.arg("--once");
        }
        cmd.env("LAMBDA_TASK_ROOT", &php_task)
            .env("_HANDLER", "index");
        cmd
    };

    let mut rows: Vec<Row> = Vec::new();
    let event = r#"{"name":"world"}"#;

    // Cold starts. Ours log their own breakdown (INFO `cold start`), read back per spawn.
    let logs = work.path().join("cold-logs");
    std::fs::create_dir_all(&logs)?;
    let with_breakdown = |mut cmd: Command, name: &str, i: usize| {
        cmd.env("AWS_LAMBDA_LOG_LEVEL", "INFO");
        (cmd, Some(logs.join(format!("{name}-{i}.log"))))
    };
    let php_cold = cold_starts(sizes.cold, event, |i| {
        with_breakdown(ours(&php_task, "index", 1), "php", i)
    })?;
    let php_snap_cold = cold_starts(sizes.cold, event, |i| {
        with_breakdown(ours(&php_snap_task, "index", 1), "php-snapshot", i)
    })?;
    let rust_cold = cold_starts(sizes.cold, event, |i| {
        with_breakdown(ours(&rust_task, "hello", 1), "rust", i)
    })?;
    let native_cold = cold_starts(sizes.cold, event, |_| (peer(false), None))?;
    rows.push(Row::latency(
        "cold start, PHP hello (ours)",
        &php_cold.total,
        Some(&native_cold.total),
    ));
    rows.push(Row::latency(
        "cold start, PHP hello, from the snapshot of its code (ours)",
        &php_snap_cold.total,
        Some(&native_cold.total),
    ));
    rows.push(Row::latency(
        "cold start, Rust hello (ours)",
        &rust_cold.total,
        Some(&native_cold.total),
    ));
    rows.push(Row::latency(
        "cold start, native php8.2 bootstrap (peer)",
        &native_cold.total,
        None,
    ));

    // Warm latency and throughput.
    let native_loop = warm(sizes.warm, event, HELLO, &mut peer(false))?;
    let native_per_process = per_process(sizes.peer_per_process, event, || peer(true))?;
    let php1 = warm(sizes.warm, event, HELLO, &mut ours(&php_task, "index", 1))?;
    let php2 = warm(sizes.warm, event, HELLO, &mut ours(&php_task, "index", 2))?;
    let php_snap1 = warm(
        sizes.warm,
        event,
        HELLO,
        &mut ours(&php_snap_task, "index", 1),
    )?;
    let php_web1 = warm(
        sizes.warm,
        &http_api_event("/", "name=world"),
        HELLO,
        &mut ours(&php_web_task, "public/index.php", 1),
    )?;
    let rust1 = warm(sizes.warm, event, HELLO, &mut ours(&rust_task, "hello", 1))?;
    let rust2 = warm(sizes.warm, event, HELLO, &mut ours(&rust_task, "hello", 2))?;
    rows.push(Row::latency(
        "warm invocation, PHP hello, fresh instance each (ours)",
        &php1.latencies,
        Some(&native_loop.latencies),
    ));
    rows.push(Row::latency(
        "warm invocation, PHP hello, fresh instance each, from the snapshot of its code (ours)",
        &php_snap1.latencies,
        Some(&native_loop.latencies),
    ));
    rows.push(Row::latency(
        "warm invocation, PHP hello as a web page (HTTP API event), fresh instance each, from the snapshot of its code (ours)",
        &php_web1.latencies,
        Some(&native_loop.latencies),
    ));
    rows.push(web::note_row(
        "PHP web mode's cost per invocation over the JSON handler's, both from the snapshot (goal: within 0.1 ms)",
        &web_mode_cost(&php_web1.latencies, &php_snap1.latencies),
    ));
    rows.push(Row::latency(
        "warm invocation, Rust hello, fresh instance each (ours)",
        &rust1.latencies,
        Some(&native_loop.latencies),
    ));
    rows.push(Row::latency(
        "warm invocation, native PHP long-lived loop (peer, state leaks)",
        &native_loop.latencies,
        None,
    ));
    rows.push(Row::latency(
        "invocation, native PHP process per event (peer, isolated)",
        &native_per_process,
        None,
    ));
    rows.push(Row::ratio_only(
        "PHP warm (ours) vs native process per event",
        median(&native_per_process) / median(&php1.latencies),
    ));
    for (name, run) in [
        ("PHP, concurrency 1", &php1),
        ("PHP, concurrency 2", &php2),
        ("PHP from the snapshot, concurrency 1", &php_snap1),
        ("Rust, concurrency 1", &rust1),
        ("Rust, concurrency 2", &rust2),
        ("native PHP loop, 1 process", &native_loop),
    ] {
        rows.push(Row::throughput(
            &format!("throughput, {name}"),
            run.per_second,
            run.peak_rss_kb,
        ));
    }

    // Interpreter speed.
    let ours_bench = time_command(Command::new(&args.host).arg("php").arg(&args.zend_bench))?;
    let native_bench = time_command(Command::new(&args.php).arg("-n").arg(&args.zend_bench))?;
    rows.push(Row::ratio_only(
        &format!(
            "Zend/bench.php: host php {:.2} s vs native {:.2} s (slowdown)",
            ours_bench, native_bench
        ),
        ours_bench / native_bench,
    ));

    rows.extend(web::rows(&args.web, &web_setup)?);
    let (framework_rows, framework_breakdown) =
        framework::run(&args.framework, &args.web, &web_setup)?;
    rows.extend(framework_rows);
    let (mysql_rows, mysql_breakdown) = mysql::run(&args.mysql, &args.web, &web_setup)?;
    rows.extend(mysql_rows);
    print_table(&args, &rows)?;
    print_breakdown(&[
        ("PHP hello", &php_cold),
        ("PHP, snapshot", &php_snap_cold),
        ("Rust hello", &rust_cold),
    ]);
    framework_breakdown.print();
    mysql_breakdown.print();
    Ok(())
}

fn run_ok(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("failed to run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn spawn(cmd: &mut Command, mock: &MockRuntime, stderr: Stdio) -> Result<Child> {
    cmd.env("AWS_LAMBDA_RUNTIME_API", mock.address())
        .stdout(Stdio::null())
        .stderr(stderr);
    cmd.spawn()
        .with_context(|| format!("failed to start {cmd:?}"))
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Cold starts measured from outside, and the runtime's own breakdown when it logs one.
#[derive(Default)]
struct Cold {
    /// Spawn → first response received, in ms.
    total: Vec<f64>,
    /// Spawn → the first `/next` answered by the API, in ms.
    to_next: Vec<f64>,
    /// The `k_ms=v` fields of each spawn's `cold start` log line.
    phases: Vec<Vec<(String, f64)>>,
}

/// Spawn → first response received, `n` times. `make(i)` gives the command and, for a
/// runtime that logs its `cold start` breakdown, the file its stderr goes to.
fn cold_starts(
    n: usize,
    event: &str,
    mut make: impl FnMut(usize) -> (Command, Option<PathBuf>),
) -> Result<Cold> {
    let mut cold = Cold::default();
    for i in 0..n {
        let mock = MockRuntime::start();
        mock.push(Event::new(
            format!("cold-{i}"),
            event,
            Duration::from_secs(30),
        ));
        let (mut cmd, log) = make(i);
        let stderr = match &log {
            Some(log) => Stdio::from(std::fs::File::create(log)?),
            None => Stdio::null(),
        };
        let started = Instant::now();
        let child = spawn(&mut cmd, &mock, stderr)?;
        let outcomes = mock.wait_for_outcomes(1, Duration::from_secs(60));
        let elapsed = started.elapsed();
        // The breakdown is logged just after the response is posted.
        let line = log.as_deref().map(wait_for_cold_start_line);
        stop(child);
        if outcomes.len() != 1 {
            bail!("cold start {i}: no response within 60 s");
        }
        cold.total.push(elapsed.as_secs_f64() * 1e3);
        if let Some((_, handed_out, _)) = mock.timings().first() {
            cold.to_next
                .push(handed_out.duration_since(started).as_secs_f64() * 1e3);
        }
        if let Some(line) = line {
            cold.phases.push(parse_ms_fields(&line?));
        }
    }
    Ok(cold)
}

/// The runtime's `cold start` line from its log file, waiting up to 5 s for it to be written.
fn wait_for_cold_start_line(log: &Path) -> Result<String> {
    let wait = Instant::now();
    loop {
        let text = std::fs::read_to_string(log)?;
        if let Some(line) = text.lines().find(|l| l.contains("cold start")) {
            return Ok(line.to_string());
        }
        if wait.elapsed() >= Duration::from_secs(5) {
            bail!("no `cold start` line in {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The `NAME_ms=VALUE` pairs of a log line.
fn parse_ms_fields(line: &str) -> Vec<(String, f64)> {
    line.split_whitespace()
        .filter_map(|word| {
            let (key, value) = word.split_once('=')?;
            let key = key.strip_suffix("_ms")?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The phases a runtime reports, in order, with what each covers.
const PHASES: [(&str, &str); 11] = [
    (
        "startup",
        "`main` → settings read (logging); the async runtime then starts while init runs",
    ),
    ("resolve", "find the handler from `_HANDLER`"),
    ("engine", "create the engine, reserve the instance pool"),
    ("load", "map the `.cwasm`"),
    (
        "link",
        "build the `InstancePre` (WASI's linker is built meanwhile on another thread)",
    ),
    ("sandbox", "prepare /tmp, environment, directories"),
    (
        "snapshot",
        "find the snapshot of the function's code, check its hash, map it",
    ),
    (
        "init",
        "`main` → ready to poll (the above and what runs between them)",
    ),
    ("instantiate", "first invocation: sandbox, store, instance"),
    ("handle", "first invocation: the `handle` call"),
    ("total", "`main` → first result posted"),
];

fn median_or_dash(values: &[f64]) -> String {
    if values.is_empty() {
        "-".into()
    } else {
        format!("{:.3}", median(values))
    }
}

/// The cold-start breakdown: medians over the spawns, per runtime.
fn print_breakdown(runs: &[(&str, &Cold)]) {
    println!();
    println!("Cold start breakdown (medians over the spawns, ms):");
    println!();
    let names: Vec<&str> = runs.iter().map(|(name, _)| *name).collect();
    println!("| phase | {} |", names.join(" | "));
    println!("| --- |{}", " --- |".repeat(runs.len()));
    let row = |label: &str, values: Vec<String>| println!("| {label} | {} |", values.join(" | "));
    row(
        "spawn → first `/next` answered (exec + init + poll)",
        runs.iter()
            .map(|(_, c)| median_or_dash(&c.to_next))
            .collect(),
    );
    for (key, what) in PHASES {
        row(
            &format!("{key}: {what}"),
            runs.iter()
                .map(|(_, c)| {
                    let values: Vec<f64> = c
                        .phases
                        .iter()
                        .filter_map(|p| p.iter().find(|(k, _)| k == key).map(|(_, v)| *v))
                        .collect();
                    median_or_dash(&values)
                })
                .collect(),
        );
    }
    row(
        "spawn → first response received",
        runs.iter().map(|(_, c)| median_or_dash(&c.total)).collect(),
    );
}

struct Warm {
    latencies: Vec<f64>,
    per_second: f64,
    peak_rss_kb: Option<u64>,
}

/// One runtime serving `n` events queued at once: latency per event, events per second, peak RSS.
/// Every answer must be a response containing `expect` (an error answered fast is no figure).
fn warm(n: usize, event: &str, expect: &str, cmd: &mut Command) -> Result<Warm> {
    let mock = MockRuntime::start();
    mock.set_recording(false);
    // Warm up: the first events pay for init.
    for i in 0..10 {
        mock.push(Event::new(
            format!("warmup-{i}"),
            event,
            Duration::from_secs(60),
        ));
    }
    let child = spawn(cmd, &mock, Stdio::null())?;
    if mock.wait_for_outcomes(10, Duration::from_secs(60)).len() != 10 {
        bail!("{cmd:?} did not answer the warm-up events");
    }
    let before = mock.timings().len();
    let started = Instant::now();
    for i in 0..n {
        mock.push(Event::new(
            format!("warm-{i}"),
            event,
            Duration::from_secs(600),
        ));
    }
    let outcomes = mock.wait_for_outcomes(10 + n, Duration::from_secs(600));
    let got = outcomes.len();
    if let Some((id, wrong)) = outcomes.iter().find(|(_, outcome)| {
        !matches!(outcome, mock_runtime::Outcome::Response(body) if body.contains(expect))
    }) {
        stop(child);
        bail!("{cmd:?} answered event {id} with {wrong:?}, not a response containing {expect:?}");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let peak_rss_kb = peak_rss_kb(child.id());
    stop(child);
    if got != 10 + n {
        bail!("{cmd:?}: only {} of {n} events answered", got - 10);
    }
    let latencies = mock.timings()[before..]
        .iter()
        .map(|(_, out, back)| (*back - *out).as_secs_f64() * 1e3)
        .collect();
    Ok(Warm {
        latencies,
        per_second: n as f64 / elapsed,
        peak_rss_kb,
    })
}

/// An API Gateway HTTP API (payload 2.0) event: `GET path?query` from 127.0.0.1.
fn http_api_event(path: &str, query: &str) -> String {
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"host": "bench.example", "user-agent": "lamp-bench"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "bench.example",
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "lamp-bench"
            },
            "requestId": "bench",
            "routeKey": "$default",
            "stage": "$default",
            "time": "28/Nov/2026:00:00:00 +0000",
            "timeEpoch": 0
        },
        "isBase64Encoded": false
    })
    .to_string()
}

/// The difference of the medians, against the goal of 0.1 ms.
fn web_mode_cost(web: &[f64], json: &[f64]) -> String {
    let extra = median(web) - median(json);
    let verdict = if extra <= 0.1 { "met" } else { "not met" };
    format!("{extra:+.3} ms ({verdict})")
}

/// The process-per-event peer: a fresh PHP process serves each event; the time is from
/// spawning it to its response (what an isolated invocation costs there).
fn per_process(n: usize, event: &str, mut make: impl FnMut() -> Command) -> Result<Vec<f64>> {
    let mock = MockRuntime::start();
    mock.set_recording(false);
    let mut times = Vec::new();
    for i in 0..n {
        mock.push(Event::new(
            format!("proc-{i}"),
            event,
            Duration::from_secs(30),
        ));
        let started = Instant::now();
        let mut child = spawn(&mut make(), &mock, Stdio::null())?;
        if mock.wait_for_outcomes(i + 1, Duration::from_secs(30)).len() != i + 1 {
            bail!("process-per-event peer: no response for event {i}");
        }
        times.push(started.elapsed().as_secs_f64() * 1e3);
        let _ = child.wait();
    }
    Ok(times)
}

fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}

/// Median wall time of three runs, in seconds.
fn time_command(cmd: &mut Command) -> Result<f64> {
    let mut times = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let out = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status()?;
        if !out.success() {
            bail!("{cmd:?} failed");
        }
        times.push(started.elapsed().as_secs_f64());
    }
    Ok(median(&times))
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

struct Row {
    name: String,
    median: String,
    p99: String,
    ratio: String,
}

impl Row {
    fn latency(name: &str, values: &[f64], peer: Option<&[f64]>) -> Self {
        Self {
            name: name.into(),
            median: format!("{:.3} ms", median(values)),
            p99: format!("{:.3} ms", percentile(values, 99.0)),
            ratio: peer
                .map(|p| format!("{:.2}x of peer", median(values) / median(p)))
                .unwrap_or_default(),
        }
    }

    fn throughput(name: &str, per_second: f64, rss_kb: Option<u64>) -> Self {
        Self {
            name: name.into(),
            median: format!("{per_second:.0} events/s"),
            p99: String::new(),
            ratio: rss_kb
                .map(|kb| format!("peak RSS {:.1} MB", kb as f64 / 1024.0))
                .unwrap_or_default(),
        }
    }

    fn ratio_only(name: &str, ratio: f64) -> Self {
        Self {
            name: name.into(),
            median: String::new(),
            p99: String::new(),
            ratio: format!("{ratio:.2}x"),
        }
    }
}

fn print_table(args: &Args, rows: &[Row]) -> Result<()> {
    let php_version = Command::new(&args.php)
        .args(["-r", "echo PHP_VERSION;"])
        .output()?;
    let host_version = Command::new(&args.host).arg("--version").output()?;
    println!(
        "Machine: {} cores; {}; native php {}; wasmtime 48{}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        String::from_utf8_lossy(&host_version.stdout).trim(),
        String::from_utf8_lossy(&php_version.stdout).trim(),
        if args.quick {
            "; --quick run (few samples)"
        } else {
            ""
        }
    );
    if let Some(bootstrap) = &args.bootstrap {
        println!(
            "The invocation rows' runtime: `{}` (`--bootstrap`).",
            bootstrap.display()
        );
    }
    println!();
    println!("| measurement | median | p99 | ratio / note |");
    println!("| --- | --- | --- | --- |");
    for row in rows {
        println!(
            "| {} | {} | {} | {} |",
            row.name, row.median, row.p99, row.ratio
        );
    }
    Ok(())
}
