//! Framework rows: one page of a small application on a framework's libraries, the kind of
//! code most PHP requests run, under four servers in the same run: `host serve` with the
//! app's code compiled into a snapshot at start (our default), `host serve --no-snapshot`,
//! nginx + PHP-FPM with opcache and without it (issue 14's goal: ours with the snapshot
//! within 1.5x of PHP-FPM with opcache, faster than PHP-FPM without).
//!
//! The app (`tests/bench/framework`) is Symfony HttpFoundation and Twig as Debian packages
//! them (php-symfony-http-foundation, php-twig): a front controller that builds a `Request`,
//! routes, renders a template that extends a layout and loops over 20 items through filters,
//! and sends a `Response`. The benchmark deploys it as a production build would, into a temp
//! dir: the packages' trees from /usr/share/php copied to `vendor/` with their layout (and
//! every package their autoloaders require), then Twig's cache warmed by native php8.2 into
//! `var/cache/twig`, which the app reads with `auto_reload` off. Every server then includes
//! the same compiled template classes; none compiles Twig source on a request (checked: the
//! cache holds the same files after the run).
//!
//! Each server is started as for the web rows (`web.rs`), checked to answer each page as
//! native php8.2 renders it, then loaded by `wrk` with the web rows' settings; then each step
//! of the breakdown at one connection. A peer that cannot start, or any server whose answer
//! is wrong, gets a row with the reason instead of figures.

use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context as _, Result, bail};
use clap::Args;

use crate::Row;
use crate::web::{self, App, Breakdown, Load, Running, Server, Setup, WebArgs, note_row};

/// The page measured.
const PAGE: &str = "/";
/// The pages of the breakdown, each adding a step to the one before; the last is [`PAGE`].
const STEPS: [(&str, &str); 3] = [
    ("/ping.php", "`/ping.php`: a PHP file alone, no framework"),
    (
        "/hello?name=lamp",
        "`/hello` − `/ping.php`: autoloaders, `Request`, routing, a text `Response`",
    ),
    (
        PAGE,
        "`/` − `/hello`: Twig: environment, compiled templates, the render",
    ),
];
/// Debian's packages the app uses (folders under /usr/share/php, each with its `autoload.php`);
/// the packages their autoloaders require are copied too.
const PACKAGES: [&str; 2] = ["Twig", "Symfony/Component/HttpFoundation"];
/// Native PHP's shared modules the libraries need (Twig: ctype, mbstring; HttpFoundation:
/// mbstring), loaded by the peers and the warm-up; the wasm runtime has them built in.
const EXTENSIONS: [&str; 2] = ["ctype", "mbstring"];

/// Flags of the framework rows (they also follow the web rows' `wrk` settings).
#[derive(Debug, Args)]
pub struct FrameworkArgs {
    /// Skip the framework rows.
    #[arg(long)]
    pub no_framework: bool,
    /// Only the framework rows.
    #[arg(long, conflicts_with_all = ["no_framework", "no_web", "web_only", "mysql_only"])]
    pub framework_only: bool,
    /// The servers of the framework rows.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "host,host-no-snapshot,nginx,nginx-no-opcache"
    )]
    pub framework_servers: Vec<Server>,
    /// The app's sources (its `public/` is the document root).
    #[arg(long, default_value = "tests/bench/framework", value_name = "DIR")]
    pub framework_app: PathBuf,
    /// Where Debian's PHP libraries are.
    #[arg(long, default_value = "/usr/share/php", value_name = "DIR")]
    pub php_libraries: PathBuf,
}

/// One server's figures.
struct Measured {
    page: Load,
    /// p50 in ms of [`STEPS`]' pages, one connection at a time.
    steps: [f64; STEPS.len()],
}

/// The deployed app: its folder, what it was built from, and what each page must answer.
struct Deployed {
    root: PathBuf,
    /// The packages copied to `vendor/`, and the `.php` files there.
    packages: Vec<String>,
    vendor_files: usize,
    /// Twig's compiled templates after the warm-up, with their mtimes.
    compiled: Vec<(PathBuf, SystemTime)>,
    /// [`PAGE`] as native php8.2 renders it.
    page: String,
}

/// Deploys the app, measures each server: the rows and the breakdown.
pub fn run(
    args: &FrameworkArgs,
    web: &WebArgs,
    setup: &Setup<'_>,
) -> Result<(Vec<Row>, Breakdown)> {
    if args.no_framework || web.no_web {
        return Ok(Default::default());
    }
    let skipped = |reason: &str| {
        eprintln!("framework rows skipped: {reason}");
        let row = note_row("framework rows", &format!("skipped: {reason}"));
        Ok((vec![row], Breakdown::default()))
    };
    let Some(wrk) = web::find_program(&web.wrk) else {
        return skipped(&format!("`{}` not found (apt-get install wrk)", web.wrk));
    };
    let dir = tempfile::Builder::new()
        .prefix("lamp-framework-")
        .tempdir()?;
    let deployed = match deploy(args, setup.php, &dir.path().join("app"))? {
        Ok(deployed) => deployed,
        Err(reason) => return skipped(&reason),
    };
    let app = App {
        root: &deployed.root.join("public"),
        ready: STEPS[0].0,
        env: Vec::new(),
        allow_outbound: Vec::new(),
        extensions: &EXTENSIONS,
    };
    let cores = web::cores();
    let seconds = web.seconds(setup.quick);
    let step_seconds = if setup.quick { 1 } else { 3 };

    let mut results: Vec<(Server, Result<Measured, String>)> = Vec::new();
    for &server in &args.framework_servers {
        let work = tempfile::Builder::new()
            .prefix("lamp-framework-server-")
            .tempdir()?;
        let running = match web::start(server, web, setup, &app, work.path(), cores)? {
            Ok(running) => running,
            Err(reason) => {
                eprintln!("framework rows: {server} skipped: {reason}");
                results.push((server, Err(format!("skipped: {reason}"))));
                continue;
            }
        };
        let measured = measure(&running, &wrk, web, &deployed, seconds, step_seconds);
        drop(running);
        let measured = measured.map_err(|e| {
            // The servers' logs stay for a look.
            let e = format!("failed: {e:#} (logs in {})", work.keep().display());
            eprintln!("framework rows: {server} {e}");
            e
        });
        results.push((server, measured));
    }
    let compiled = compiled_templates(&deployed.root)?;
    if compiled != deployed.compiled {
        bail!(
            "Twig's cache changed while the servers ran ({} compiled templates, then {}, or \
             one written again): a server compiled a template instead of loading the warmed one",
            deployed.compiled.len(),
            compiled.len()
        );
    }

    let mut rows = rows(&results);
    rows.push(note_row(
        "framework rows: load",
        &format!(
            "wrk -t{} -c{} -d{seconds}s --latency on `{PAGE}` after a 1 s warm-up; {cores} \
             cores; the app: {}, {} .php files in vendor/ ({}), {} templates warmed into \
             var/cache/twig by native php8.2",
            web.wrk_threads,
            web.wrk_connections,
            versions(),
            deployed.vendor_files,
            deployed.packages.join(", "),
            deployed.compiled.len(),
        ),
    ));
    let breakdown = Breakdown {
        what: "Framework page",
        load: format!("wrk -t1 -c1 -d{step_seconds}s"),
        steps: STEPS.iter().map(|(_, what)| *what).collect(),
        measured: Breakdown::measured(&results, |m| &m.steps),
        total: (format!("`{PAGE}`: all of it"), STEPS.len() - 1),
    };
    Ok((rows, breakdown))
}

/// One running server: its answers checked, the page under load, the breakdown's steps.
fn measure(
    running: &Running,
    wrk: &Path,
    web: &WebArgs,
    deployed: &Deployed,
    seconds: u32,
    step_seconds: u32,
) -> Result<Measured> {
    check(running, &deployed.page).context("wrong answer")?;
    let url = |page: &str| format!("http://{}{page}", running.address);
    let (threads, connections) = (web.wrk_threads, web.wrk_connections);
    // Warm-up: opcache, the instance pool, the server's caches.
    web::run_wrk(wrk, threads, connections, 1, &url(PAGE))?;
    let page = web::run_wrk(wrk, threads, connections, seconds, &url(PAGE))?;
    let mut steps = [0.0; STEPS.len()];
    for (step, (page, _)) in steps.iter_mut().zip(STEPS) {
        *step = web::run_wrk(wrk, 1, 1, step_seconds, &url(page))?.p50_ms;
    }
    Ok(Measured { page, steps })
}

/// The server answers each page as it must: [`PAGE`] byte for byte as native php8.2 renders
/// it, the other routes with their text (a server that gives the app no `$_SERVER` routes
/// every URL to `/`).
fn check(running: &Running, page: &str) -> Result<()> {
    let expected = [
        (PAGE, 200, page),
        (
            "/hello?name=%3Cb%3Elamp%3C%2Fb%3E",
            200,
            "Hello, <b>lamp</b>",
        ),
        ("/ping.php", 200, "pong"),
        ("/no/such/page", 404, "Not Found"),
    ];
    for (path, status, body) in expected {
        let (got_status, got) =
            web::http_get(running.address, path).with_context(|| format!("GET {path} failed"))?;
        if got_status != status || got != body {
            bail!(
                "GET {path} answered {got_status} with {} bytes, not {status} with {} bytes: \
                 {}",
                got.len(),
                body.len(),
                first_difference(body, &got)
            );
        }
    }
    Ok(())
}

/// Where `got` first differs from `expected`, with a little of each around it.
fn first_difference(expected: &str, got: &str) -> String {
    let at = expected
        .char_indices()
        .zip(got.chars())
        .find(|((_, a), b)| a != b)
        .map_or(expected.len().min(got.len()), |((i, _), _)| i);
    let around = |text: &str| -> String {
        let start = text.floor_char_boundary(at.saturating_sub(40));
        let end = text.ceil_char_boundary((at + 80).min(text.len()));
        text[start..end].replace('\n', "⏎")
    };
    format!(
        "from byte {at}, expected `{}`, got `{}`",
        around(expected),
        around(got)
    )
}

/// The app deployed into `root` as a production build: its sources, the libraries in
/// `vendor/`, Twig's cache warmed; the reason when this machine lacks what it needs.
fn deploy(args: &FrameworkArgs, php: &str, root: &Path) -> Result<Result<Deployed, String>> {
    let Some(php) = web::find_program(php) else {
        return Ok(Err(format!(
            "`{php}` not found (apt-get install php8.2-cli)"
        )));
    };
    if let Err(reason) = web::missing_extension(&php.to_string_lossy(), &EXTENSIONS) {
        return Ok(Err(reason));
    }
    copy_tree(&args.framework_app, root).with_context(|| {
        format!(
            "failed to copy the app `{}` (run lamp-bench from the repository's root)",
            args.framework_app.display()
        )
    })?;
    let packages = match vendor(&args.php_libraries, &root.join("vendor"))? {
        Ok(packages) => packages,
        Err(reason) => return Ok(Err(reason)),
    };
    let vendor_files = php_files(&root.join("vendor"))?;

    let native = |script: &Path| {
        let mut cmd = Command::new(&php);
        cmd.arg("-n");
        for name in EXTENSIONS {
            cmd.args(["-d", &format!("extension={name}")]);
        }
        cmd.arg(script);
        cmd
    };
    let mut warm = native(&root.join("bin/warm-cache.php"));
    let out = warm
        .output()
        .with_context(|| format!("failed to run {warm:?}"))?;
    if !out.status.success() {
        bail!(
            "{warm:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let compiled = compiled_templates(root)?;
    if compiled.is_empty() {
        bail!("{warm:?} left no compiled template in var/cache/twig");
    }

    // The page as PHP's CLI renders it, with the variables a web server would give.
    let index = root.join("public/index.php");
    let mut render = native(&index);
    render
        .env("REQUEST_METHOD", "GET")
        .env("REQUEST_URI", PAGE)
        .env("SCRIPT_NAME", "/index.php")
        .env("SCRIPT_FILENAME", &index)
        .env("DOCUMENT_ROOT", root.join("public"));
    let out = render
        .output()
        .with_context(|| format!("failed to run {render:?}"))?;
    let page = String::from_utf8(out.stdout).context("the page is not UTF-8")?;
    if !out.status.success() || !page.contains("<h1>Catalog</h1>") {
        bail!(
            "{render:?} did not render the catalog ({}):\n{page}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(Ok(Deployed {
        root: root.to_path_buf(),
        packages,
        vendor_files,
        compiled,
        page,
    }))
}

/// Copies [`PACKAGES`] from `libraries` into `vendor` with their layout, and every package
/// their autoloaders require (those they only suggest when installed); the packages copied.
/// The reason when one is not installed.
fn vendor(libraries: &Path, vendor: &Path) -> Result<Result<Vec<String>, String>> {
    let mut todo: Vec<(PathBuf, bool)> = PACKAGES
        .iter()
        .rev()
        .map(|p| (PathBuf::from(p), true))
        .collect();
    let mut copied: Vec<PathBuf> = Vec::new();
    while let Some((package, required)) = todo.pop() {
        if copied.contains(&package) {
            continue;
        }
        let autoload = libraries.join(&package).join("autoload.php");
        if !autoload.is_file() {
            if !required {
                continue;
            }
            return Ok(Err(format!(
                "`{}` is missing (scripts/setup.sh installs Debian's php-twig and \
                 php-symfony-http-foundation)",
                autoload.display()
            )));
        }
        let text = std::fs::read_to_string(&autoload)
            .with_context(|| format!("failed to read `{}`", autoload.display()))?;
        // The guest sees only the app's folder: a path into the system's libraries would
        // load nothing there (and the system's copy, not vendor/'s, natively).
        if text.contains(&*libraries.to_string_lossy()) {
            bail!(
                "`{}` names `{}`: its copy in vendor/ would not be self-contained",
                autoload.display(),
                libraries.display()
            );
        }
        copy_tree(&libraries.join(&package), &vendor.join(&package))?;
        for (path, required) in autoload_requires(&text) {
            let Some(other) = resolve(&package, &path).and_then(|p| Some(p.parent()?.into()))
            else {
                bail!(
                    "`{}` requires `{path}`, outside {}",
                    autoload.display(),
                    libraries.display()
                );
            };
            todo.push((other, required));
        }
        copied.push(package);
    }
    Ok(Ok(copied
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect()))
}

/// The other packages' autoloaders an `autoload.php` of Debian's (pkg-php-tools') loads:
/// `__DIR__`-relative paths ending in `/autoload.php`, and whether each is required (a
/// `require`) or only suggested (an `include` when it exists).
fn autoload_requires(text: &str) -> Vec<(String, bool)> {
    let mut found = Vec::new();
    for line in text.lines() {
        let required = line.trim_start().starts_with("require");
        for part in line.split("__DIR__ . '").skip(1) {
            if let Some((path, _)) = part.split_once('\'')
                && path.ends_with("/autoload.php")
                && !found.iter().any(|(p, _)| p == path)
            {
                found.push((path.to_string(), required));
            }
        }
    }
    found
}

/// `path` (relative to `package`'s folder, as after `__DIR__`) relative to the libraries'
/// folder; `None` when it leaves it.
fn resolve(package: &Path, path: &str) -> Option<PathBuf> {
    let mut resolved = package.to_path_buf();
    for part in Path::new(path.trim_start_matches('/')).components() {
        match part {
            Component::ParentDir => resolved.pop().then_some(())?,
            Component::Normal(name) => resolved.push(name),
            _ => {}
        }
    }
    Some(resolved)
}

/// Copies the folder `from` to `to` (created), following symbolic links.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("failed to create `{}`", to.display()))?;
    let entries =
        std::fs::read_dir(from).with_context(|| format!("failed to list `{}`", from.display()))?;
    for entry in entries {
        let path = entry?.path();
        let target = to.join(path.file_name().context("a nameless entry")?);
        if path.is_dir() {
            copy_tree(&path, &target)?;
        } else {
            std::fs::copy(&path, &target).with_context(|| {
                format!(
                    "failed to copy `{}` to `{}`",
                    path.display(),
                    target.display()
                )
            })?;
        }
    }
    Ok(())
}

/// The `.php` files under `dir`.
fn php_files(dir: &Path) -> Result<usize> {
    let mut n = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            n += php_files(&path)?;
        } else if path.extension().is_some_and(|ext| ext == "php") {
            n += 1;
        }
    }
    Ok(n)
}

/// The files of Twig's cache in the deployed app, sorted, with their mtimes.
fn compiled_templates(root: &Path) -> Result<Vec<(PathBuf, SystemTime)>> {
    let cache = root.join("var/cache/twig");
    let mut files = Vec::new();
    if !cache.is_dir() {
        return Ok(files);
    }
    for dir in std::fs::read_dir(&cache)? {
        let dir = dir?.path();
        if dir.is_dir() {
            for file in std::fs::read_dir(&dir)? {
                let file = file?;
                files.push((file.path(), file.metadata()?.modified()?));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The libraries' Debian versions, for the table (nothing when `dpkg-query` cannot say).
fn versions() -> String {
    let packages = ["php-twig", "php-symfony-http-foundation"];
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Package} ${Version}\\n"])
        .args(packages)
        .output();
    match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .collect::<Vec<_>>()
            .join(", "),
        _ => packages.join(", "),
    }
}

/// A goal for ours against a peer: its text, and whether a ratio of time per request meets it.
type Goal = (&'static str, fn(f64) -> bool);

/// The table's rows: the page per server, then ours against each other server.
fn rows(results: &[(Server, Result<Measured, String>)]) -> Vec<Row> {
    let measured = |wanted: Server| {
        results
            .iter()
            .find_map(|(server, measured)| match measured {
                Ok(measured) if *server == wanted => Some(measured),
                _ => None,
            })
    };
    let ours = measured(Server::Host);
    let mut rows = Vec::new();
    for (server, result) in results {
        let name = format!("framework GET {PAGE}, {server}");
        let load = match result {
            Ok(measured) => &measured.page,
            Err(reason) => {
                rows.push(note_row(&name, reason));
                continue;
            }
        };
        rows.push(web::load_row(name, load, None));
    }
    for (server, _) in results {
        // Issue 14's goals, in time per request: ours at most 1.5x PHP-FPM with opcache, and
        // below PHP-FPM without it.
        let goal: Option<Goal> = match server {
            Server::Host => continue,
            Server::Nginx => Some(("goal: within 1.5x", |ratio| ratio <= 1.5)),
            Server::NginxNoOpcache => Some(("goal: below 1x", |ratio| ratio < 1.0)),
            Server::HostNoSnapshot | Server::PhpS => None,
        };
        let name = format!(
            "framework page, {} / {server}: time per request{}",
            Server::Host,
            goal.map_or(String::new(), |(text, _)| format!(" ({text})"))
        );
        let (Some(ours), Some(theirs)) = (ours, measured(*server)) else {
            let missing = if ours.is_none() {
                Server::Host
            } else {
                *server
            };
            rows.push(note_row(&name, &format!("no figures for {missing}")));
            continue;
        };
        let ratio = theirs.page.per_second / ours.page.per_second;
        let verdict = match goal {
            Some((_, met)) if met(ratio) => " (met)",
            Some(_) => " (not met)",
            None => "",
        };
        rows.push(note_row(
            &name,
            &format!(
                "{ratio:.2}x{verdict}; median latency {:.2}x",
                ours.page.p50_ms / theirs.page.p50_ms
            ),
        ));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_debian_autoloaders_to_the_packages_they_require() {
        // The head of php-symfony-http-foundation's autoload.php (bookworm).
        let text = "<?php\n\n// Require\n\
            require_once __DIR__ . '/../../Contracts/Deprecation/autoload.php';\n\n// Suggest\n\
            if (stream_resolve_include_path(__DIR__ . '/../Mime/autoload.php')) { \
            include_once __DIR__ . '/../Mime/autoload.php'; }\n\
            require __DIR__ . $classes[$cn];\n";
        let found = autoload_requires(text);
        assert_eq!(
            found,
            [
                (
                    "/../../Contracts/Deprecation/autoload.php".to_string(),
                    true
                ),
                ("/../Mime/autoload.php".to_string(), false),
            ]
        );
        let package = Path::new("Symfony/Component/HttpFoundation");
        assert_eq!(
            resolve(package, &found[0].0).unwrap(),
            Path::new("Symfony/Contracts/Deprecation/autoload.php")
        );
        assert_eq!(resolve(Path::new("Twig"), "/../../x/autoload.php"), None);
    }

    #[test]
    fn shows_where_an_answer_differs() {
        assert_eq!(
            first_difference("<h1>Catalog</h1>", "<h1>Welcome</h1>"),
            "from byte 4, expected `<h1>Catalog</h1>`, got `<h1>Welcome</h1>`"
        );
        assert_eq!(
            first_difference("pong", "pon"),
            "from byte 3, expected `pong`, got `pon`"
        );
    }
}
