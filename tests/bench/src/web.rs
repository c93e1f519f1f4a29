//! Web rows: one PHP web app (`examples/lamp-app`) behind three servers, one after the other
//! in the same run, loaded by `wrk` on loopback with the same settings: `host serve` (ours,
//! each request in a fresh instance), nginx + PHP-FPM (how a LAMP stack serves PHP, with
//! opcache) and `php -S` (PHP's built-in server, with opcache). Each server is started from
//! private configuration files in a temp dir, as the current user, checked to answer the
//! pages correctly, then measured: a short warm-up run, then the measured run, per page.
//! The servers are started here for the other rows too (`framework.rs`, `mysql.rs`), which
//! also use the variants without the compiled code kept between requests: `host serve
//! --no-snapshot` and PHP-FPM without opcache.
//!
//! A missing peer binary skips that peer with its reason in the table; ours failing is an
//! error.

use std::fmt;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::{Args, ValueEnum};

use crate::Row;

/// The pages measured, each with a text its body must contain (a server that answers with
/// an error page, or with another page, is not measured: the home page links to `/hello` with
/// the text "Hello, world").
const PAGES: [(&str, &str); 2] = [("/hello", "<p>Hello, world</p>"), ("/", "<h1>Welcome")];

/// Flags of the web rows (`wrk`'s are also read from the environment).
#[derive(Debug, Args)]
pub struct WebArgs {
    /// Only the web, framework and MySQL rows: skip the Runtime API and interpreter rows.
    #[arg(long, conflicts_with = "no_web")]
    pub web_only: bool,
    /// Skip the web rows, and the framework and MySQL rows (web pages too).
    #[arg(long)]
    pub no_web: bool,
    /// The servers of the web rows.
    #[arg(long, value_delimiter = ',', default_value = "host,nginx,php-s")]
    pub web_servers: Vec<Server>,
    /// Seconds of each measured `wrk` run [default: 5; with --quick 2].
    #[arg(long, env = "LAMP_BENCH_WRK_SECONDS", value_name = "S")]
    pub wrk_seconds: Option<u32>,
    /// `wrk`'s open connections.
    #[arg(
        long,
        env = "LAMP_BENCH_WRK_CONNECTIONS",
        default_value_t = 16,
        value_name = "N"
    )]
    pub wrk_connections: u32,
    /// `wrk`'s threads.
    #[arg(
        long,
        env = "LAMP_BENCH_WRK_THREADS",
        default_value_t = 2,
        value_name = "N"
    )]
    pub wrk_threads: u32,
    /// The web app's document root.
    #[arg(long, default_value = "examples/lamp-app/public", value_name = "DIR")]
    pub web_root: PathBuf,
    /// `wrk`.
    #[arg(long, default_value = "wrk", value_name = "PROGRAM")]
    pub wrk: String,
    /// nginx (also looked up in /usr/sbin, which a non-root PATH often lacks).
    #[arg(long, default_value = "nginx", value_name = "PROGRAM")]
    pub nginx: String,
    /// PHP-FPM.
    #[arg(long, default_value = "php-fpm8.2", value_name = "PROGRAM")]
    pub php_fpm: String,
}

impl WebArgs {
    /// Seconds of each measured `wrk` run.
    pub fn seconds(&self, quick: bool) -> u32 {
        self.wrk_seconds.unwrap_or(if quick { 2 } else { 5 })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Server {
    /// `host serve DIR`: the app's PHP files compiled into a snapshot at start.
    Host,
    /// `host serve DIR --no-snapshot`: every request compiles the files it includes.
    HostNoSnapshot,
    /// nginx + PHP-FPM with opcache.
    Nginx,
    /// nginx + PHP-FPM without opcache: every request compiles the files it includes.
    NginxNoOpcache,
    /// `php -S`.
    PhpS,
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Host => "host serve (ours)",
            Self::HostNoSnapshot => "host serve --no-snapshot (ours)",
            Self::Nginx => "nginx + php-fpm, opcache (peer)",
            Self::NginxNoOpcache => "nginx + php-fpm, no opcache (peer)",
            Self::PhpS => "php -S, opcache (peer)",
        })
    }
}

/// What the rows need from the rest of the benchmark.
pub struct Setup<'a> {
    pub host: &'a Path,
    /// Native PHP, for `php -S`.
    pub php: &'a str,
    /// The PHP runtime `host serve` loads (the run's precompiled `php.cwasm`).
    pub php_runtime: &'a Path,
    pub quick: bool,
}

/// A PHP app to serve, and what it needs beyond PHP itself.
pub struct App<'a> {
    /// The document root; its `index.php` is the front controller.
    pub root: &'a Path,
    /// A page that answers 200 once the server is up.
    pub ready: &'a str,
    /// The environment of the app's PHP code (`host serve --env`, PHP-FPM's `env[...]`).
    pub env: Vec<(String, String)>,
    /// Where the app connects (`host serve --allow-outbound`; native PHP is not sandboxed).
    pub allow_outbound: Vec<String>,
    /// Native PHP's shared modules to load beyond opcache and PDO SQLite, in order (the wasm
    /// runtime has them built in).
    pub extensions: &'a [&'a str],
}

/// One `wrk` run's figures.
pub struct Load {
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    requests: u64,
    /// Responses that were not 2xx or 3xx.
    non_2xx: u64,
    /// Socket errors by kind (connect, read, write, timeout), those that happened.
    socket_errors: Vec<(String, u64)>,
}

impl Load {
    /// What went wrong, for the row's note; `None` when nothing did.
    pub fn errors_note(&self) -> Option<String> {
        let read = self
            .socket_errors
            .iter()
            .find_map(|(kind, n)| (kind == "read").then_some(*n))
            .unwrap_or(0);
        // A server without keep-alive (`php -S`) closes every connection after its response;
        // wrk counts each close as a read error and opens a new connection.
        if self.non_2xx == 0 && self.socket_errors.len() == 1 && read * 10 >= self.requests * 9 {
            return Some("no keep-alive: a connection per request".into());
        }
        let mut errors: Vec<String> = self
            .socket_errors
            .iter()
            .map(|(kind, n)| format!("{n} {kind} errors"))
            .collect();
        if self.non_2xx > 0 {
            errors.insert(0, format!("{} non-2xx/3xx", self.non_2xx));
        }
        (!errors.is_empty()).then(|| {
            format!(
                "errors: {} (of {} requests)",
                errors.join(", "),
                self.requests
            )
        })
    }
}

/// The web rows: per page, each server's requests/s, p50 and p99.
pub fn rows(args: &WebArgs, setup: &Setup<'_>) -> Result<Vec<Row>> {
    if args.no_web {
        return Ok(Vec::new());
    }
    let seconds = args.seconds(setup.quick);
    let wrk_settings = format!(
        "wrk -t{} -c{} -d{seconds}s",
        args.wrk_threads, args.wrk_connections
    );
    let Some(wrk) = find_program(&args.wrk) else {
        let reason = format!("`{}` not found (apt-get install wrk)", args.wrk);
        eprintln!("web rows skipped: {reason}");
        return Ok(vec![note_row("web rows", &format!("skipped: {reason}"))]);
    };
    let root = std::fs::canonicalize(&args.web_root)
        .with_context(|| format!("failed to find the web app `{}`", args.web_root.display()))?;
    let app = App {
        root: &root,
        ready: "/hello",
        env: Vec::new(),
        allow_outbound: Vec::new(),
        extensions: &[],
    };
    let cores = cores();

    // Per server: its loads per page, or why it was skipped.
    let mut results: Vec<(Server, Result<Vec<Load>, String>)> = Vec::new();
    for &server in &args.web_servers {
        let work = tempfile::Builder::new().prefix("lamp-web-").tempdir()?;
        let running = match start(server, args, setup, &app, work.path(), cores)? {
            Ok(running) => running,
            Err(reason) => {
                results.push((server, Err(reason)));
                continue;
            }
        };
        let loads = load_pages(&running, &wrk, args, seconds);
        drop(running);
        // The servers' logs stay for a look when something went wrong.
        let loads =
            loads.with_context(|| format!("{server} (logs in {})", work.keep().display()))?;
        results.push((server, Ok(loads)));
    }

    let mut rows = Vec::new();
    for (i, (page, _)) in PAGES.iter().enumerate() {
        let ours = results.iter().find_map(|(server, result)| match result {
            Ok(loads) if *server == Server::Host => Some(loads[i].per_second),
            _ => None,
        });
        for (server, result) in &results {
            let name = format!("web GET {page}, {server}");
            let load = match result {
                Ok(loads) => &loads[i],
                Err(reason) => {
                    if i == 0 {
                        eprintln!("web rows: {server} skipped: {reason}");
                    }
                    rows.push(note_row(&name, &format!("skipped: {reason}")));
                    continue;
                }
            };
            let compared = ours
                .filter(|_| *server != Server::Host)
                .map(|ours| format!("ours {:.2}x of it", ours / load.per_second));
            rows.push(load_row(name, load, compared));
        }
    }
    rows.push(note_row(
        "web rows: load",
        &format!(
            "{wrk_settings} --latency per page and server, after a 1 s warm-up; {cores} cores"
        ),
    ));
    Ok(rows)
}

/// Each page of [`PAGES`] on a running server: its answer checked, then a warm-up and the
/// measured `wrk` run.
fn load_pages(running: &Running, wrk: &Path, args: &WebArgs, seconds: u32) -> Result<Vec<Load>> {
    let (threads, connections) = (args.wrk_threads, args.wrk_connections);
    let mut loads = Vec::new();
    for (page, marker) in PAGES {
        let (status, body) =
            http_get(running.address, page).with_context(|| format!("GET {page} failed"))?;
        if status != 200 || !body.contains(marker) {
            bail!("GET {page} answered {status}, without `{marker}`:\n{body}");
        }
        let url = format!("http://{}{page}", running.address);
        // Warm-up: caches, pools, connections.
        run_wrk(wrk, threads, connections, 1, &url)?;
        loads.push(run_wrk(wrk, threads, connections, seconds, &url)?);
    }
    Ok(loads)
}

/// The machine's cores: the servers' concurrency.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// A server's row for a page under load: p50, p99, requests/s, then `compared` (ours against
/// it) and what went wrong, if anything.
pub fn load_row(name: String, load: &Load, compared: Option<String>) -> Row {
    let mut note = format!("{:.0} req/s", load.per_second);
    for extra in [compared, load.errors_note()].into_iter().flatten() {
        note.push_str(&format!("; {extra}"));
    }
    Row {
        name,
        median: format!("{:.3} ms", load.p50_ms),
        p99: format!("{:.3} ms", load.p99_ms),
        ratio: note,
    }
}

/// Where the time of a request goes, printed after the table: per server, the p50 of each
/// step's page at one connection, each step adding to the one before.
#[derive(Default)]
pub struct Breakdown {
    /// What it breaks down, e.g. "MySQL request".
    pub what: &'static str,
    /// `wrk`'s settings for it.
    pub load: String,
    /// Each step's label (its page, and what it adds).
    pub steps: Vec<&'static str>,
    /// Per server measured: the p50 of each step's page, in ms.
    pub measured: Vec<(Server, Vec<f64>)>,
    /// The last row: its label, and the step whose page is the one measured under load.
    pub total: (String, usize),
}

impl Breakdown {
    /// The p50s of `steps` of each server measured in `results`.
    pub fn measured<M>(
        results: &[(Server, Result<M, String>)],
        steps: impl Fn(&M) -> &[f64],
    ) -> Vec<(Server, Vec<f64>)> {
        results
            .iter()
            .filter_map(|(server, measured)| {
                Some((*server, steps(measured.as_ref().ok()?).to_vec()))
            })
            .collect()
    }

    /// Per server, the steps' differences, then the total (nothing when no server was
    /// measured).
    pub fn print(&self) {
        if self.measured.is_empty() {
            return;
        }
        println!();
        println!(
            "{} breakdown (p50 at one connection, `{}`, ms):",
            self.what, self.load
        );
        println!();
        let names: Vec<String> = self.measured.iter().map(|(s, _)| s.to_string()).collect();
        println!("| step | {} |", names.join(" | "));
        println!("| --- |{}", " --- |".repeat(names.len()));
        for (i, what) in self.steps.iter().enumerate() {
            let values: Vec<String> = self
                .measured
                .iter()
                .map(|(_, p50s)| {
                    let before = if i == 0 { 0.0 } else { p50s[i - 1] };
                    format!("{:.3}", p50s[i] - before)
                })
                .collect();
            println!("| {what} | {} |", values.join(" | "));
        }
        let (label, step) = &self.total;
        let totals: Vec<String> = self
            .measured
            .iter()
            .map(|(_, p50s)| format!("{:.3}", p50s[*step]))
            .collect();
        println!("| {label} | {} |", totals.join(" | "));
    }
}

/// A row with only a note.
pub fn note_row(name: &str, note: &str) -> Row {
    Row {
        name: name.into(),
        median: String::new(),
        p99: String::new(),
        ratio: note.into(),
    }
}

/// Starts `server` for `app`, with its files in `work` and `cores` requests at once; the
/// reason when a peer cannot run here (a missing binary, a failed start), an error when ours
/// cannot.
pub fn start(
    server: Server,
    args: &WebArgs,
    setup: &Setup<'_>,
    app: &App<'_>,
    work: &Path,
    cores: usize,
) -> Result<Result<Running, String>> {
    Ok(match server {
        Server::Host => Ok(start_host(setup, app, work, cores, true)?),
        Server::HostNoSnapshot => Ok(start_host(setup, app, work, cores, false)?),
        Server::Nginx => start_nginx_fpm(args, setup, app, work, cores, true),
        Server::NginxNoOpcache => start_nginx_fpm(args, setup, app, work, cores, false),
        Server::PhpS => start_php_s(setup, app, work, cores),
    })
}

/// A server started for the benchmark; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Running {
    pub address: SocketAddr,
    /// The processes, stopped in order (nginx before the PHP-FPM it talks to).
    children: Vec<Child>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for child in &mut self.children {
            // The whole family, workers included: `php -S` leaves its forked workers running
            // when only the parent is stopped. They stay in our process group, so a Ctrl-C of
            // the benchmark stops them too.
            let mut family = vec![child.id()];
            family.extend(descendants(child.id()));
            signal("-TERM", &family);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            let left: Vec<u32> = family
                .into_iter()
                .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
                .collect();
            signal("-KILL", &left);
        }
    }
}

/// The processes `pid` started, and theirs, from `/proc/PID/task/*/children`.
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten();
    for task in tasks.flatten() {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            found.push(child);
            found.extend(descendants(child));
        }
    }
    found
}

fn signal(signal: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(signal)
        .args(pids.iter().map(u32::to_string))
        .stderr(Stdio::null())
        .status();
}

/// `host serve ROOT --listen 127.0.0.1:0`: the address is read back from its
/// `listening on http://ADDR` line; its log (one access line per request) goes to a file.
/// With `snapshot`, the app's code is compiled into a snapshot at start, into a cache of its
/// own in `work` (`LAMP_CACHE`): the user's cache may hold one made from the same contents
/// with other mtimes, whose every file the guest would compile again when included.
fn start_host(
    setup: &Setup<'_>,
    app: &App<'_>,
    work: &Path,
    cores: usize,
    snapshot: bool,
) -> Result<Running> {
    let log = work.join("host.log");
    let tmp = work.join("tmp");
    std::fs::create_dir_all(&tmp)?;
    let mut cmd = Command::new(setup.host);
    cmd.arg("serve")
        .arg(app.root)
        .args(["--listen", "127.0.0.1:0"])
        .args(["--concurrency", &cores.to_string()])
        .arg("--php-runtime")
        .arg(setup.php_runtime);
    if !snapshot {
        cmd.arg("--no-snapshot");
    }
    for (name, value) in &app.env {
        cmd.arg("--env").arg(format!("{name}={value}"));
    }
    for rule in &app.allow_outbound {
        cmd.args(["--allow-outbound", rule]);
    }
    cmd.env("TMPDIR", &tmp)
        .env("LAMP_CACHE", work.join("cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?);
    let child = cmd
        .spawn()
        .with_context(|| format!("failed to start {cmd:?}"))?;
    let mut running = Running {
        address: SocketAddr::from(([127, 0, 0, 1], 0)),
        children: vec![child],
    };
    // A debug host compiling PHP on a busy machine takes a while.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(address) = text
            .split("listening on http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
        {
            running.address = address
                .parse()
                .with_context(|| format!("`host serve` logged an odd address `{address}`"))?;
            return Ok(running);
        }
        if let Ok(Some(status)) = running.children[0].try_wait() {
            bail!("{cmd:?} exited ({status}) before listening:\n{text}");
        }
        if Instant::now() > deadline {
            bail!("{cmd:?} did not log `listening on` within 300 s:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// nginx in front of PHP-FPM, both from generated configuration files in `work` and run in
/// the foreground as the current user. nginx: `try_files $uri $uri/ /index.php?$args`,
/// FastCGI to a unix socket, a worker per core; PHP-FPM: a static pool of one child per core,
/// no php.ini (`-n`) but opcache (unless not `opcache`) and php.ini-production's output
/// buffering, the app's environment as the pool's `env[...]` (PHP-FPM clears the rest). As
/// root, both are told to keep root as their workers' user (the defaults, nobody and
/// www-data, could not read a checkout under /root nor connect to the socket).
fn start_nginx_fpm(
    args: &WebArgs,
    setup: &Setup<'_>,
    app: &App<'_>,
    work: &Path,
    cores: usize,
    opcache: bool,
) -> Result<Running, String> {
    let root = app.root;
    let nginx = find_program(&args.nginx)
        .ok_or_else(|| format!("`{}` not found (apt-get install nginx-light)", args.nginx))?;
    let fpm = find_program(&args.php_fpm)
        .ok_or_else(|| format!("`{}` not found (apt-get install php8.2-fpm)", args.php_fpm))?;
    let is_root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let port = free_port().map_err(|e| format!("no free port: {e}"))?;
    let w = work.display();
    let socket = work.join("fpm.sock");
    let tmp = work.join("tmp");
    let write = |name: &str, text: String| {
        std::fs::write(work.join(name), text).map_err(|e| format!("failed to write {name}: {e}"))
    };
    std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
    write(
        "php-fpm.conf",
        format!(
            "[global]\n\
             pid = {w}/fpm.pid\n\
             error_log = {w}/fpm-error.log\n\
             daemonize = no\n\
             [www]\n\
             {user}\
             listen = {socket}\n\
             pm = static\n\
             pm.max_children = {cores}\n\
             {env}",
            user = if is_root { "user = root\n" } else { "" },
            socket = socket.display(),
            env = app
                .env
                .iter()
                .map(|(name, value)| format!("env[{name}] = \"{value}\"\n"))
                .collect::<String>(),
        ),
    )?;
    write(
        "nginx.conf",
        format!(
            "daemon off;\n\
             {user}\
             worker_processes {cores};\n\
             pid {w}/nginx.pid;\n\
             error_log {w}/nginx-error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n\
             \x20 include /etc/nginx/mime.types;\n\
             \x20 default_type application/octet-stream;\n\
             \x20 access_log {w}/nginx-access.log;\n\
             \x20 client_body_temp_path {w}/nginx-body;\n\
             \x20 fastcgi_temp_path {w}/nginx-fastcgi;\n\
             \x20 proxy_temp_path {w}/nginx-proxy;\n\
             \x20 scgi_temp_path {w}/nginx-scgi;\n\
             \x20 uwsgi_temp_path {w}/nginx-uwsgi;\n\
             \x20 server {{\n\
             \x20   listen 127.0.0.1:{port};\n\
             \x20   root {root};\n\
             \x20   index index.php;\n\
             \x20   location / {{ try_files $uri $uri/ /index.php?$args; }}\n\
             \x20   location ~ \\.php$ {{\n\
             \x20     try_files $uri =404;\n\
             \x20     include /etc/nginx/fastcgi_params;\n\
             \x20     fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n\
             \x20     fastcgi_pass unix:{socket};\n\
             \x20   }}\n\
             \x20 }}\n\
             }}\n",
            user = if is_root { "user root;\n" } else { "" },
            root = root.display(),
            socket = socket.display(),
        ),
    )?;
    let mut fpm_cmd = Command::new(&fpm);
    fpm_cmd
        .arg("-n")
        .arg("-y")
        .arg(work.join("php-fpm.conf"))
        .arg("-F");
    if is_root {
        fpm_cmd.arg("-R");
    }
    fpm_cmd.args(php_ini(setup, app, work, &tmp, opcache)?);
    let nginx_error = work.join("nginx-error.log");
    let mut nginx_cmd = Command::new(&nginx);
    nginx_cmd
        .arg("-p")
        .arg(work)
        // Without -e nginx first opens /var/log/nginx/error.log, which a non-root user cannot.
        .arg("-e")
        .arg(&nginx_error)
        .arg("-c")
        .arg(work.join("nginx.conf"));
    let mut running = Running {
        address: SocketAddr::from(([127, 0, 0, 1], port)),
        children: Vec::new(),
    };
    // nginx first in `children`: it is stopped before the PHP-FPM behind it.
    let fpm_child = spawn_logged(&mut fpm_cmd, &work.join("fpm.out")).map_err(|e| e.to_string())?;
    let nginx_child =
        spawn_logged(&mut nginx_cmd, &work.join("nginx.out")).map_err(|e| e.to_string())?;
    running.children = vec![nginx_child, fpm_child];
    wait_until_answering(&mut running, app.ready, work).map_err(|e| format!("{e:#}"))?;
    Ok(running)
}

/// `php -S` with the front controller as its router script, one worker per core
/// (`PHP_CLI_SERVER_WORKERS`; by default it serves one request at a time), the same ini as
/// PHP-FPM.
fn start_php_s(
    setup: &Setup<'_>,
    app: &App<'_>,
    work: &Path,
    cores: usize,
) -> Result<Running, String> {
    let root = app.root;
    let php = find_program(setup.php)
        .ok_or_else(|| format!("`{}` not found (apt-get install php8.2-cli)", setup.php))?;
    let port = free_port().map_err(|e| format!("no free port: {e}"))?;
    let tmp = work.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(php);
    cmd.arg("-n")
        .args(php_ini(setup, app, work, &tmp, true)?)
        .arg("-S")
        .arg(format!("127.0.0.1:{port}"))
        .arg("-t")
        .arg(root)
        .arg(root.join("index.php"))
        .env("PHP_CLI_SERVER_WORKERS", cores.to_string())
        .envs(app.env.iter().map(|(name, value)| (name, value)));
    let child = spawn_logged(&mut cmd, &work.join("php-s.log")).map_err(|e| e.to_string())?;
    let mut running = Running {
        address: SocketAddr::from(([127, 0, 0, 1], port)),
        children: vec![child],
    };
    wait_until_answering(&mut running, app.ready, work).map_err(|e| format!("{e:#}"))?;
    Ok(running)
}

/// The native peers' ini, on top of no php.ini (`-n`): opcache on (as every production PHP
/// has it; off only for the peer that measures PHP without it), php.ini-production's output
/// buffering (also the wasm runtime's), temp files and sessions in the run's temp dir, errors
/// to a file; PDO with SQLite, the app's default database, and the app's own extensions
/// (Debian builds them as shared modules: php8.2-sqlite3, php8.2-mysql, php8.2-mbstring). A
/// module of the app's that is not installed is the reason to skip the peer.
fn php_ini(
    setup: &Setup<'_>,
    app: &App<'_>,
    work: &Path,
    tmp: &Path,
    opcache: bool,
) -> Result<Vec<String>, String> {
    missing_extension(setup.php, app.extensions)?;
    let extensions = ["pdo", "pdo_sqlite"].iter().chain(app.extensions);
    let opcache = if opcache {
        vec![
            "zend_extension=opcache".to_string(),
            "opcache.enable=1".to_string(),
        ]
    } else {
        Vec::new()
    };
    Ok(opcache
        .into_iter()
        .chain(extensions.map(|name| format!("extension={name}")))
        .chain([
            "output_buffering=4096".to_string(),
            format!("sys_temp_dir={}", tmp.display()),
            format!("session.save_path={}", tmp.display()),
            format!("error_log={}", work.join("php-error.log").display()),
        ])
        .flat_map(|setting| ["-d".to_string(), setting])
        .collect())
}

/// Why native `php` cannot load `extensions` (a module missing from its extension folder).
pub fn missing_extension(php: &str, extensions: &[&str]) -> Result<(), String> {
    if extensions.is_empty() {
        return Ok(());
    }
    let out = Command::new(php)
        .args(["-n", "-r", "echo PHP_EXTENSION_DIR;"])
        .output()
        .map_err(|e| format!("failed to run `{php}`: {e}"))?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    match extensions
        .iter()
        .find(|name| !dir.join(format!("{name}.so")).is_file())
    {
        Some(missing) => Err(format!(
            "PHP's `{missing}` module is not in {} (scripts/setup.sh installs Debian's \
             php8.2-mysql, php8.2-sqlite3 and, with php-twig, php8.2-mbstring)",
            dir.display()
        )),
        None => Ok(()),
    }
}

fn spawn_logged(cmd: &mut Command, log: &Path) -> Result<Child> {
    let file = std::fs::File::create(log)?;
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("failed to start {cmd:?}"))
}

/// Polls `path` until the server answers 200, for up to 10 s.
fn wait_until_answering(running: &mut Running, path: &str, work: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok((200, _)) = http_get(running.address, path) {
            return Ok(());
        }
        for child in &mut running.children {
            if let Ok(Some(status)) = child.try_wait() {
                bail!(
                    "exited ({status}) before answering; logs in {}",
                    work.display()
                );
            }
        }
        if Instant::now() > deadline {
            bail!(
                "no 200 for GET {path} within 10 s; logs in {}",
                work.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One HTTP/1.0 GET (no keep-alive, no chunked body to decode): status and body.
pub fn http_get(address: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    // One write: `php -S` may drop a connection whose request arrives in pieces.
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("not an HTTP response from {address}: {response:.200}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_string();
    Ok((status, body))
}

/// A port free on loopback now (the peers take a port, not port 0).
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `name` if it is a path, else the first match in PATH and the sbin folders.
pub fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Path::new(name).is_file().then(|| PathBuf::from(name));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// `wrk` on `url` with `threads` and `connections` for `seconds`, and its report.
pub fn run_wrk(
    wrk: &Path,
    threads: u32,
    connections: u32,
    seconds: u32,
    url: &str,
) -> Result<Load> {
    let mut cmd = Command::new(wrk);
    cmd.arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("--latency")
        .arg(url);
    let out = cmd
        .output()
        .with_context(|| format!("failed to run {cmd:?}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_wrk(&text).with_context(|| format!("unexpected output of {cmd:?}:\n{text}"))
}

/// The figures of `wrk --latency`'s report.
fn parse_wrk(text: &str) -> Result<Load> {
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(prefix))
            .map(str::trim)
    };
    let per_second: f64 = field("Requests/sec:").context("no Requests/sec")?.parse()?;
    let p50_ms = parse_duration_ms(field("50%").context("no 50% latency")?)?;
    let p99_ms = parse_duration_ms(field("99%").context("no 99% latency")?)?;
    // "  12345 requests in 5.00s, 3.10MB read"
    let requests = text
        .lines()
        .find(|line| line.contains(" requests in "))
        .and_then(|line| line.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .context("no request count")?;
    if requests == 0 {
        bail!("no request was answered");
    }
    let non_2xx = field("Non-2xx or 3xx responses:").map_or(Ok(0), str::parse)?;
    // "Socket errors: connect 0, read 12, write 0, timeout 0"
    let mut socket_errors = Vec::new();
    for part in field("Socket errors:").unwrap_or_default().split(',') {
        if let Some((kind, n)) = part.trim().split_once(' ') {
            let n: u64 = n.parse()?;
            if n > 0 {
                socket_errors.push((kind.to_string(), n));
            }
        }
    }
    Ok(Load {
        per_second,
        p50_ms,
        p99_ms,
        requests,
        non_2xx,
        socket_errors,
    })
}

/// `812.00us`, `1.04ms`, `1.20s`, `2.00m` in ms.
fn parse_duration_ms(text: &str) -> Result<f64> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .with_context(|| format!("no unit in `{text}`"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse()?;
    let scale = match unit {
        "us" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        "h" => 3600e3,
        _ => bail!("unknown unit in `{text}`"),
    };
    Ok(number * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_latency_report() {
        let report = "Running 3s test @ http://127.0.0.1:8111/hello
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.06ms  800.63us  11.68ms   92.25%
    Req/Sec     8.40k     1.97k   11.35k    61.67%
  Latency Distribution
     50%  819.00us
     75%    1.04ms
     90%    1.63ms
     99%    4.79ms
  50155 requests in 3.00s, 12.63MB read
  Socket errors: connect 0, read 3, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  16711.36
Transfer/sec:      4.21MB
";
        let load = parse_wrk(report).unwrap();
        assert_eq!(load.per_second, 16711.36);
        assert!((load.p50_ms - 0.819).abs() < 1e-9);
        assert!((load.p99_ms - 4.79).abs() < 1e-9);
        assert_eq!(load.requests, 50155);
        assert_eq!(
            load.errors_note().unwrap(),
            "errors: 7 non-2xx/3xx, 3 read errors, 1 timeout errors (of 50155 requests)"
        );
        let closing = Load {
            non_2xx: 0,
            socket_errors: vec![("read".into(), 50155)],
            ..load
        };
        assert_eq!(
            closing.errors_note().unwrap(),
            "no keep-alive: a connection per request"
        );
        assert_eq!(parse_duration_ms("1.20s").unwrap(), 1200.0);
    }
}
