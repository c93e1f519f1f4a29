//! PHP web apps: `host serve` spoken to by real HTTP clients, the same app under native
//! `php -S` for comparison, and Lambda's HTTP events (the `aws_lambda_events` fixtures)
//! through the bootstrap against the mock Runtime API.
//!
//! Like tests/it/php.rs these need `make php`; they fail, not skip, without it.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mock_runtime::{Event, MockRuntime, Outcome};
use reqwest::blocking::{Client, multipart};
use reqwest::header;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::php::{php_cwasm, serve_cache};

/// Dumps what PHP saw of the request, as JSON; `?do=...` makes it do something else.
const DUMP: &str = r#"<?php
$do = $_GET['do'] ?? '';
if ($do === 'cookies') {
    setcookie('first', 'one');
    setcookie('second', 'two', ['path' => '/', 'httponly' => true]);
    header('X-Repeated: a');
    header('X-Repeated: b', false);
    http_response_code(201);
    echo 'cookies set';
    return;
}
if ($do === 'redirect') { header('Location: /elsewhere'); exit; }
if ($do === 'exit') { echo 'before exit'; exit(3); echo 'after exit'; }
if ($do === 'fatal') { echo 'partial'; undefined_function_here(); }
if ($do === 'throw') { throw new RuntimeException('secret detail'); }
if ($do === 'loop') { while (true) {} }
if ($do === 'sleep') { sleep(60); echo 'woke'; return; }
if ($do === 'slow') { usleep(1500000); echo 'finished'; return; }
if ($do === 'write') { usleep(1000000); file_put_contents('/tmp/written', 'yes'); echo 'written'; return; }
if ($do === 'written') { echo file_exists('/tmp/written') ? 'written' : 'not yet'; return; }
if ($do === 'session') {
    session_start();
    $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
    echo $_SESSION['n'];
    return;
}
if ($do === 'binary') {
    header('Content-Type: application/octet-stream');
    echo implode('', array_map('chr', range(0, 255)));
    return;
}
if ($do === 'big') { echo str_repeat('x', 7 * 1024 * 1024); return; }
header('Content-Type: application/json');
$files = [];
foreach ($_FILES as $name => $f) {
    $files[$name] = ['name' => $f['name'], 'size' => $f['size'], 'error' => $f['error'],
        'sha256' => is_uploaded_file($f['tmp_name']) ? hash_file('sha256', $f['tmp_name']) : null];
}
$server = [];
foreach (['REQUEST_METHOD', 'REQUEST_URI', 'QUERY_STRING', 'SCRIPT_NAME', 'SCRIPT_FILENAME',
    'PATH_INFO', 'PHP_SELF', 'DOCUMENT_ROOT', 'REMOTE_ADDR', 'SERVER_NAME', 'SERVER_PORT',
    'CONTENT_TYPE', 'CONTENT_LENGTH', 'HTTP_X_CUSTOM', 'HTTP_HOST', 'HTTPS'] as $k) {
    $server[$k] = $_SERVER[$k] ?? null;
}
echo json_encode([
    'get' => $_GET, 'post' => $_POST, 'cookie' => $_COOKIE, 'request' => $_REQUEST,
    'files' => $files, 'server' => $server, 'input' => file_get_contents('php://input'),
    'headers' => array_change_key_case(getallheaders()), 'cwd' => getcwd(),
    'time' => is_float($_SERVER['REQUEST_TIME_FLOAT']) && $_SERVER['REQUEST_TIME'] > 1700000000,
    'ob_level' => ob_get_level(),
]);
"#;

/// A document root with the dump script as its front controller, other scripts, assets.
fn app() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("public");
    for (path, contents) in [
        ("index.php", DUMP),
        (
            "sub/page.php",
            "<?php echo 'page ', $_SERVER['SCRIPT_NAME'], ' ', $_SERVER['PATH_INFO'] ?? '-';",
        ),
        ("sub/index.php", "<?php echo 'sub index';"),
        ("assets/site.css", "body { color: red }\n"),
        ("hello.txt", "static text\n"),
    ] {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    std::fs::write(root.join("assets/blob.bin"), blob()).unwrap();
    std::fs::write(
        dir.path().join("secret.php"),
        "<?php echo 'outside the document root';",
    )
    .unwrap();
    dir
}

/// 300 KB of every byte value, for binary round trips.
fn blob() -> Vec<u8> {
    (0..300 * 1024).map(|i| (i * 7 % 256) as u8).collect()
}

/// `host serve` on a free port; stopped (SIGTERM) when dropped.
pub(crate) struct Serve {
    child: Child,
    pub(crate) base: String,
    log: Arc<Mutex<String>>,
}

impl Serve {
    pub(crate) fn start(root: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_host"))
            .arg("serve")
            .arg(root)
            .args(["--listen", "127.0.0.1:0", "--php-runtime"])
            .arg(php_cwasm())
            .args(args)
            .env("LAMP_CACHE", serve_cache())
            .env_remove("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
            .env_remove("LAMP_PHP_RUNTIME")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    let _ = tx.send(addr);
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("host serve did not start:\n{}", log.lock().unwrap()));
        Self {
            child,
            base: format!("http://{addr}"),
            log,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's minor page faults so far (all its threads), from /proc.
    pub(crate) fn minor_faults(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Field 10, counted after the command name, which is in parentheses.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        fields[7].parse().unwrap()
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (a little) for a log line holding `needle`: the log is read by another thread.
    pub(crate) fn log_has(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

pub(crate) fn client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn dump(response: reqwest::blocking::Response) -> Value {
    let status = response.status();
    let text = response.text().unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn serve_gives_php_the_request_as_php_fpm_would() {
    let app = app();
    let serve = Serve::start(&app.path().join("public"), &[]);
    let http = client();

    let got = dump(
        http.get(serve.url("/blog/7?a=1&b[]=2&b[]=3&c.d=4&e=%C3%A9"))
            .header("x-custom", "one")
            .header(header::COOKIE, "k1=v1; k2=v%202")
            .send()
            .unwrap(),
    );
    assert_eq!(
        got["get"],
        json!({"a": "1", "b": ["2", "3"], "c_d": "4", "e": "é"})
    );
    assert_eq!(got["cookie"], json!({"k1": "v1", "k2": "v 2"}));
    let server = &got["server"];
    assert_eq!(server["REQUEST_METHOD"], "GET");
    assert_eq!(
        server["REQUEST_URI"],
        "/blog/7?a=1&b[]=2&b[]=3&c.d=4&e=%C3%A9"
    );
    assert_eq!(server["QUERY_STRING"], "a=1&b[]=2&b[]=3&c.d=4&e=%C3%A9");
    assert_eq!(server["SCRIPT_NAME"], "/index.php");
    assert_eq!(server["SCRIPT_FILENAME"], "/var/task/public/index.php");
    assert_eq!(server["DOCUMENT_ROOT"], "/var/task/public");
    assert_eq!(server["REMOTE_ADDR"], "127.0.0.1");
    assert_eq!(server["SERVER_NAME"], "127.0.0.1");
    assert_eq!(
        server["SERVER_PORT"],
        serve.base.rsplit(':').next().unwrap()
    );
    assert_eq!(server["HTTP_X_CUSTOM"], "one");
    assert_eq!(got["headers"]["x-custom"], "one");
    assert_eq!(
        got["cwd"], "/var/task/public",
        "PHP-FPM runs a script in its folder"
    );
    assert_eq!(got["time"], true);
    assert_eq!(
        got["ob_level"], 1,
        "output_buffering=4096 as in php.ini-production"
    );

    // A form post, and $_REQUEST = GET + POST (+ cookies, as request_order says).
    let got = dump(
        http.post(serve.url("/form?q=1"))
            .form(&[("name", "Ada"), ("list[]", "x"), ("list[]", "y")])
            .send()
            .unwrap(),
    );
    assert_eq!(got["post"], json!({"name": "Ada", "list": ["x", "y"]}));
    assert_eq!(got["request"]["q"], "1");
    assert_eq!(got["request"]["name"], "Ada");
    assert_eq!(
        got["server"]["CONTENT_TYPE"],
        "application/x-www-form-urlencoded"
    );

    // An upload: $_FILES with the bytes in /tmp, an ordinary field beside it.
    let bytes = blob();
    let form = multipart::Form::new().text("title", "report").part(
        "upload",
        multipart::Part::bytes(bytes.clone()).file_name("report.bin"),
    );
    let got = dump(
        http.post(serve.url("/upload"))
            .multipart(form)
            .send()
            .unwrap(),
    );
    assert_eq!(got["post"], json!({"title": "report"}));
    assert_eq!(got["files"]["upload"]["name"], "report.bin");
    assert_eq!(got["files"]["upload"]["size"], bytes.len());
    assert_eq!(
        got["files"]["upload"]["sha256"],
        hex(&Sha256::digest(&bytes))
    );

    // A JSON body with PUT: php://input, no $_POST.
    let got = dump(
        http.put(serve.url("/api"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(r#"{"x":1}"#)
            .send()
            .unwrap(),
    );
    assert_eq!(got["input"], r#"{"x":1}"#);
    assert_eq!(got["post"], json!([]));
    assert_eq!(got["server"]["REQUEST_METHOD"], "PUT");
}

#[test]
fn serve_answers_with_what_the_page_set() {
    let app = app();
    let serve = Serve::start(&app.path().join("public"), &[]);
    let http = client();

    let response = http.get(serve.url("/?do=cookies")).send().unwrap();
    assert_eq!(response.status(), 201);
    let cookies: Vec<_> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .collect();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(cookies[0].to_str().unwrap().starts_with("first=one"));
    assert!(cookies[1].to_str().unwrap().contains("HttpOnly"));
    let repeated: Vec<_> = response.headers().get_all("x-repeated").iter().collect();
    assert_eq!(repeated, ["a", "b"]);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );

    let response = http.get(serve.url("/?do=redirect")).send().unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()[header::LOCATION], "/elsewhere");
    let response = http
        .post(serve.url("/?do=redirect"))
        .form(&[("a", "b")])
        .send()
        .unwrap();
    assert_eq!(response.status(), 303, "HTTP/1.1 redirect after POST");

    let response = http.get(serve.url("/?do=exit")).send().unwrap();
    assert_eq!(response.status(), 200, "exit() ends a page normally");
    assert_eq!(response.text().unwrap(), "before exit");

    for what in ["fatal", "throw"] {
        let response = http.get(serve.url(&format!("/?do={what}"))).send().unwrap();
        assert_eq!(response.status(), 500, "{what}");
        let body = response.text().unwrap();
        assert!(
            !body.contains("secret detail") && !body.contains("undefined_function_here"),
            "{body}"
        );
    }
    assert!(
        serve.log_has("secret detail"),
        "the error goes to the log:\n{}",
        serve.log()
    );

    let response = http.get(serve.url("/?do=binary")).send().unwrap();
    assert_eq!(
        response.bytes().unwrap().to_vec(),
        (0..=255u8).collect::<Vec<_>>()
    );

    let response = http.head(serve.url("/?do=cookies")).send().unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .count(),
        2
    );
    assert_eq!(response.bytes().unwrap().len(), 0, "HEAD has no body");

    // Sessions persist between requests through the cookie, in the shared /tmp.
    let counts: Vec<String> = (0..3)
        .map(|_| {
            http.get(serve.url("/?do=session"))
                .send()
                .unwrap()
                .text()
                .unwrap()
        })
        .collect();
    assert_eq!(counts, ["1", "2", "3"]);
    let other = client();
    assert_eq!(
        other
            .get(serve.url("/?do=session"))
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "1"
    );
}

#[test]
fn serve_routes_like_try_files_and_serves_static_files() {
    let app = app();
    let serve = Serve::start(&app.path().join("public"), &[]);
    let http = client();

    let text = |path: &str| http.get(serve.url(path)).send().unwrap().text().unwrap();
    assert_eq!(text("/sub/page.php"), "page /sub/page.php -");
    assert_eq!(
        text("/sub/page.php/extra/info"),
        "page /sub/page.php /extra/info"
    );
    assert_eq!(text("/sub/"), "sub index");
    assert_eq!(text("/hello.txt"), "static text\n");
    let dumped: Value = serde_json::from_str(&text("/../secret.php")).unwrap();
    assert_eq!(
        dumped["server"]["SCRIPT_NAME"], "/index.php",
        "nothing outside the root"
    );

    let response = http.get(serve.url("/assets/site.css")).send().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/css");
    let modified = response.headers()[header::LAST_MODIFIED].clone();
    let response = http
        .get(serve.url("/assets/site.css"))
        .header(header::IF_MODIFIED_SINCE, modified)
        .send()
        .unwrap();
    assert_eq!(response.status(), 304);
    let response = http
        .get(serve.url("/assets/blob.bin"))
        .header(header::RANGE, "bytes=10-19")
        .send()
        .unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(response.bytes().unwrap().to_vec(), blob()[10..20].to_vec());
    let response = http.get(serve.url("/assets/blob.bin")).send().unwrap();
    assert_eq!(
        response.bytes().unwrap().to_vec(),
        blob(),
        "binary download byte for byte"
    );
    let response = http.get(serve.url("/assets/missing.css")).send().unwrap();
    assert_eq!(response.status(), 404);
    assert!(serve.log_has("GET /assets/site.css 200"), "{}", serve.log());
}

#[test]
fn serve_survives_bad_requests_and_answers_each_with_its_status() {
    let app = app();
    let serve = Serve::start(&app.path().join("public"), &["--timeout", "2"]);
    let http = client();

    let response = http.get(serve.url("/?do=loop")).send().unwrap();
    assert_eq!(response.status(), 504);
    // Blocked in a host call (a 60 s sleep) rather than computing: stopped at 2 s all the same.
    let started = Instant::now();
    let response = http.get(serve.url("/?do=sleep")).send().unwrap();
    assert_eq!(response.status(), 504);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the sleeping page was not stopped at its deadline: {:?}",
        started.elapsed()
    );
    let response = http
        .post(serve.url("/"))
        .body(vec![b'a'; 7 * 1024 * 1024])
        .send();
    // The server may answer 413 before the body is sent, or close the connection.
    if let Ok(response) = response {
        assert_eq!(response.status(), 413);
    }
    let response = http.get(serve.url("/?do=big")).send().unwrap();
    assert_eq!(response.status(), 502, "a response over 6 MB");
    assert!(serve.log_has("6 MB"), "{}", serve.log());

    let addr = serve.base.trim_start_matches("http://").to_string();
    let raw = |request: &[u8]| {
        let mut stream = TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.write_all(request).unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    };
    assert!(raw(b"NOT HTTP AT ALL\r\n\r\n").starts_with("HTTP/1.1 400"));
    let mut flood = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..2000 {
        flood.extend_from_slice(format!("x-h{i}: {}\r\n", "v".repeat(50)).as_bytes());
    }
    flood.extend_from_slice(b"\r\n");
    let answer = raw(&flood);
    assert!(
        answer.starts_with("HTTP/1.1 431") || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );

    // And the next request is served.
    assert_eq!(
        dump(http.get(serve.url("/after")).send().unwrap())["server"]["REQUEST_URI"],
        "/after"
    );
}

#[test]
fn ten_thousand_requests_with_faults_from_16_connections_are_all_answered() {
    let app = app();
    let serve = Serve::start(&app.path().join("public"), &["--timeout", "1"]);
    let total = 10_000;
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let statuses = Arc::new(Mutex::new(std::collections::HashMap::<u16, usize>::new()));
    let mut rss = Vec::new();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..16 {
            let (next, statuses, serve) = (next.clone(), statuses.clone(), &serve);
            scope.spawn(move || {
                let http = client();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let (path, expect) = match i % 10 {
                        0 => ("/?do=fatal", 500),
                        1 => ("/assets/site.css", 200),
                        2 => ("/?do=cookies", 201),
                        3 if i % 1000 == 3 => ("/?do=loop", 504),
                        _ => ("/x", 200),
                    };
                    let response = http.get(serve.url(path)).send().unwrap();
                    let status = response.status().as_u16();
                    let _ = response.bytes().unwrap();
                    assert_eq!(status, expect, "{path}");
                    *statuses.lock().unwrap().entry(status).or_default() += 1;
                }
            });
        }
        while next.load(std::sync::atomic::Ordering::Relaxed) < total {
            rss.push(serve.rss_kb());
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    let answered: usize = statuses.lock().unwrap().values().sum();
    assert_eq!(answered, total, "{:?}", statuses.lock().unwrap());
    eprintln!(
        "{total} requests in {:?}; RSS samples (KB): {rss:?}",
        started.elapsed()
    );
    // Flat: the second half of the run does not grow beyond the first half's peak by much.
    let half = rss.len() / 2;
    if half > 0 {
        let first = rss[..half].iter().max().unwrap();
        let last = rss[half..].iter().max().unwrap();
        assert!(
            *last < first + 64 * 1024,
            "RSS grew from {first} KB to {last} KB"
        );
    }
}

/// SIGTERM (or Ctrl-C) stops accepting and lets the requests in flight finish.
#[test]
fn shutdown_finishes_requests_in_flight() {
    let app = app();
    let mut serve = Serve::start(&app.path().join("public"), &[]);
    let url = serve.url("/?do=slow");
    let slow = std::thread::spawn(move || {
        let response = client().get(url).send().unwrap();
        (response.status(), response.text().unwrap())
    });
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill")
        .arg(serve.child.id().to_string())
        .status();
    let (status, body) = slow.join().unwrap();
    assert_eq!((status.as_u16(), body.as_str()), (200, "finished"));
    let exit = serve.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}\n{}", serve.log());
    assert!(TcpStream::connect(serve.base.trim_start_matches("http://")).is_err());
}

/// A client that goes away does not stop its request: the invocation runs to its end, as
/// behind API Gateway. Dropped halfway, an instance would leave behind what it holds (a SQLite
/// lock directory kept the database busy for every request after it).
#[test]
fn a_request_runs_to_its_end_when_its_client_goes_away() {
    let app = app();
    let serve = Serve::start(&app.path().join("public"), &[]);
    send_and_leave(&serve, "/?do=write");
    let http = client();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = http
            .get(serve.url("/?do=written"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        if body == "written" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the request stopped with its client ({body}):\n{}",
            serve.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends `GET path` and goes away 300 ms later, while `?do=write` is still in its sleep.
fn send_and_leave(serve: &Serve, path: &str) {
    let mut stream = TcpStream::connect(serve.base.trim_start_matches("http://")).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
}

/// Nor does shutdown stop a request whose client has gone: it is waited for like the others
/// (before, the runtime stopped under it, and its pending file writes panicked).
#[test]
fn shutdown_finishes_a_request_whose_client_has_gone() {
    let app = app();
    let mut serve = Serve::start(&app.path().join("public"), &[]);
    send_and_leave(&serve, "/?do=write");
    std::thread::sleep(Duration::from_millis(100));
    let _ = Command::new("kill")
        .arg(serve.child.id().to_string())
        .status();
    let exit = serve.child.wait().unwrap();
    let log = serve.log();
    assert!(exit.success(), "{exit:?}\n{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        log.lines().any(|line| line.contains(" GET / 200 ")),
        "the request did not finish:\n{log}"
    );
}

/// The same requests through native `php -S` and `host serve`, on the same dump script:
/// what PHP sees must be the same (but for what differs by design: the paths of the root).
#[test]
fn superglobals_match_native_php_s() {
    let app = app();
    let root = app.path().join("public");
    let serve = Serve::start(&root, &[]);
    let port = free_port();
    let mut native = Command::new("php8.2")
        .args(["-n", "-S", &format!("127.0.0.1:{port}"), "-t"])
        .arg(&root)
        .arg(root.join("index.php"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("php8.2 (native, from apt) is needed as the peer");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "php -S did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let http = client();
    let bytes = blob();
    type Request<'a> = Box<dyn Fn(&str) -> reqwest::blocking::RequestBuilder + 'a>;
    let requests: Vec<Request> = vec![
        Box::new(|base| http.get(format!("{base}/p/q?a=1&b[]=2&b[]=3&c.d=4&e=%C3%A9&f"))),
        Box::new(|base| {
            http.post(format!("{base}/form?x=y"))
                .header(header::COOKIE, "a=1; b=two%20words")
                .form(&[
                    ("name", "Ada"),
                    ("list[]", "x"),
                    ("list[]", "y"),
                    ("n.m", "dot"),
                ])
        }),
        Box::new(|base| {
            let form = multipart::Form::new().text("title", "t").part(
                "upload",
                multipart::Part::bytes(bytes.clone()).file_name("f.bin"),
            );
            http.post(format!("{base}/upload")).multipart(form)
        }),
        Box::new(|base| {
            http.patch(format!("{base}/api"))
                .header("x-custom", "v")
                .header(header::CONTENT_TYPE, "application/json")
                .body("{\"k\":[1,2]}")
        }),
    ];
    let strip = |mut v: Value| {
        for k in [
            "SCRIPT_FILENAME",
            "DOCUMENT_ROOT",
            "SERVER_PORT",
            "HTTP_HOST",
            "SERVER_NAME",
        ] {
            v["server"][k] = Value::Null;
        }
        v["headers"]["host"] = Value::Null;
        // php -S hands its router script the whole path as PATH_INFO (and PHP_SELF); nginx's
        // `try_files ... /index.php?$args`, which we follow, gives the front controller none.
        v["server"]["PATH_INFO"] = Value::Null;
        v["server"]["PHP_SELF"] = Value::Null;
        // nginx's fastcgi_params always pass QUERY_STRING, empty or not; php -S only a
        // non-empty one.
        if v["server"]["QUERY_STRING"].is_null() {
            v["server"]["QUERY_STRING"] = json!("");
        }
        // Each multipart request has a boundary of its own.
        for (section, key) in [("server", "CONTENT_TYPE"), ("headers", "content-type")] {
            let content_type = &mut v[section][key];
            if let Some(text) = content_type.as_str() {
                *content_type = json!(text.split("; boundary=").next().unwrap());
            }
        }
        v["cwd"] = Value::Null;
        v["ob_level"] = Value::Null; // php -S -n has output_buffering off
        v
    };
    for (i, request) in requests.iter().enumerate() {
        let ours = strip(dump(request(&serve.base).send().unwrap()));
        let theirs = strip(dump(
            request(&format!("http://127.0.0.1:{port}")).send().unwrap(),
        ));
        assert_eq!(ours, theirs, "request {i}: host serve vs php -S");
    }
    let _ = native.kill();
    let _ = native.wait();
}

/// Each kind of HTTP event, from `aws_lambda_events`'s fixtures, through the bootstrap:
/// the page sees the request, and the response has the shape of that kind.
#[test]
fn http_events_through_the_bootstrap_answer_in_their_own_shape() {
    let app = app();
    let mock = MockRuntime::start();
    let log = tempfile::NamedTempFile::new().unwrap();
    let layers = tempfile::tempdir().unwrap();
    let mut runtime = Command::new(env!("CARGO_BIN_EXE_host"))
        .arg("bootstrap")
        .env("AWS_LAMBDA_RUNTIME_API", mock.address())
        .env("_HANDLER", "public/index.php")
        .env("LAMBDA_TASK_ROOT", app.path())
        .env("LAMP_LAYERS_ROOT", layers.path())
        .env("LAMP_PHP_RUNTIME", php_cwasm())
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env_remove("AWS_LAMBDA_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let fixtures = [
        ("v1", "example-apigw-request.json"),
        (
            "v1-multi",
            "example-apigw-request-multi-value-parameters.json",
        ),
        ("v2", "example-apigw-v2-request-no-authorizer.json"),
        ("alb", "example-alb-lambda-target-request-headers-only.json"),
        (
            "alb-multi",
            "example-alb-lambda-target-request-multivalue-headers.json",
        ),
    ];
    for (id, file) in fixtures {
        mock.push(Event::new(id, fixture(file), Duration::from_secs(60)));
    }
    // A cookie-setting page through 2.0 and 1.0; a POST with a base64 body.
    let mut v2: Value =
        serde_json::from_str(&fixture("example-apigw-v2-request-no-authorizer.json")).unwrap();
    v2["rawQueryString"] = json!("do=cookies");
    mock.push(Event::new(
        "v2-cookies",
        v2.to_string(),
        Duration::from_secs(60),
    ));
    let mut v1: Value = serde_json::from_str(&fixture("example-apigw-request.json")).unwrap();
    v1["queryStringParameters"] = json!({"do": "cookies"});
    v1["multiValueQueryStringParameters"] = json!({"do": ["cookies"]});
    mock.push(Event::new(
        "v1-cookies",
        v1.to_string(),
        Duration::from_secs(60),
    ));
    let mut post = v2.clone();
    post["rawQueryString"] = json!("");
    post["requestContext"]["http"]["method"] = json!("POST");
    post["headers"]["content-type"] = json!("application/x-www-form-urlencoded");
    post["body"] = json!(base64_encode(b"name=Ada&n=%C3%A9"));
    post["isBase64Encoded"] = json!(true);
    mock.push(Event::new(
        "v2-post",
        post.to_string(),
        Duration::from_secs(60),
    ));
    mock.push(Event::new(
        "not-http",
        r#"{"name":"world"}"#,
        Duration::from_secs(60),
    ));

    let outcomes = mock.wait_for_outcomes(fixtures.len() + 4, Duration::from_secs(300));
    let _ = runtime.kill();
    let _ = runtime.wait();
    let logs = std::fs::read_to_string(log.path()).unwrap();
    let response = |id: &str| -> Value {
        match &outcomes[id] {
            Outcome::Response(body) => serde_json::from_str(body).unwrap(),
            other => panic!("{id}: {other:?}\n{logs}"),
        }
    };
    let page = |r: &Value| -> Value { serde_json::from_str(r["body"].as_str().unwrap()).unwrap() };

    let v1 = response("v1");
    assert_eq!(v1["statusCode"], 200);
    assert!(
        v1["multiValueHeaders"]["content-type"][0]
            .as_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(v1["isBase64Encoded"], false);
    assert_eq!(page(&v1)["server"]["REQUEST_METHOD"], "POST");
    assert_eq!(
        page(&v1)["server"]["REQUEST_URI"]
            .as_str()
            .unwrap()
            .split('?')
            .next(),
        Some("/hello/world")
    );
    let multi = page(&response("v1-multi"));
    assert!(
        multi["get"].as_object().is_some_and(|g| !g.is_empty()),
        "{multi}"
    );

    let v2 = response("v2");
    assert!(
        v2.get("cookies").is_some() && v2.get("multiValueHeaders").is_none(),
        "{v2}"
    );
    let seen = page(&v2);
    assert!(
        seen["server"]["REMOTE_ADDR"]
            .as_str()
            .unwrap()
            .contains('.'),
        "{seen}"
    );

    let alb = response("alb");
    assert_eq!(alb["statusDescription"], "200 OK");
    assert!(
        alb.get("headers").is_some() && alb.get("multiValueHeaders").is_none(),
        "{alb}"
    );
    let alb_multi = response("alb-multi");
    assert!(alb_multi.get("multiValueHeaders").is_some(), "{alb_multi}");

    let cookies = response("v2-cookies");
    assert_eq!(cookies["statusCode"], 201);
    assert_eq!(cookies["cookies"].as_array().unwrap().len(), 2, "{cookies}");
    assert!(cookies["headers"].get("set-cookie").is_none());
    let cookies = response("v1-cookies");
    assert_eq!(
        cookies["multiValueHeaders"]["set-cookie"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{cookies}"
    );
    assert_eq!(
        cookies["multiValueHeaders"]["x-repeated"],
        json!(["a", "b"])
    );

    let posted = page(&response("v2-post"));
    assert_eq!(posted["post"], json!({"name": "Ada", "n": "é"}));

    assert_invalid_event(&outcomes["not-http"], "HTTP events");
}

/// The outcome is a `Runtime.InvalidEvent` whose message says `says`.
pub(crate) fn assert_invalid_event(outcome: &Outcome, says: &str) {
    match outcome {
        Outcome::Error { error_type, body } => {
            assert_eq!(
                error_type.as_deref(),
                Some("Runtime.InvalidEvent"),
                "{body}"
            );
            assert!(body.contains(says), "{body}");
        }
        other => panic!("not an invalid event: {other:?}"),
    }
}

/// A fixture of the `aws_lambda_events` crate, from its source in the cargo registry.
pub(crate) fn fixture(name: &str) -> String {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        // This platform's packages only: without the filter, cargo wants every platform's
        // (Windows' too), which a build on Linux never downloaded, and offline it fails.
        let out = Command::new(env!("CARGO"))
            .args([
                "metadata",
                "--format-version",
                "1",
                "--offline",
                "--filter-platform",
            ])
            .arg(format!("{}-unknown-linux-gnu", std::env::consts::ARCH))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        let metadata: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "cargo metadata: {e}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let manifest = metadata["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "aws_lambda_events")
            .expect("aws_lambda_events is a dependency")["manifest_path"]
            .as_str()
            .unwrap()
            .to_string();
        Path::new(&manifest).parent().unwrap().join("src/fixtures")
    });
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `host serve template.yaml`: the SAM template's functions on their routes, with the
/// template's settings; a JSON handler (the Rust echo fixture) gets 2.0 events.
#[test]
fn serve_a_sam_template_routes_to_each_function() {
    let app = app();
    std::fs::copy(
        crate::util::component(test_artifacts::FIXTURE_ECHO),
        app.path().join("echo.wasm"),
    )
    .unwrap();
    let template = app.path().join("template.yaml");
    std::fs::write(
        &template,
        r#"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: provided.al2023
    Timeout: 5
    Environment:
      Variables: {STAGE: local-test}
Resources:
  Web:
    Type: AWS::Serverless::Function
    Properties:
      Handler: public/index.php
      Layers: [!Ref PhpLayer]
      Events:
        All: {Type: HttpApi}
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      Handler: echo
      Events:
        Get: {Type: HttpApi, Properties: {Path: "/echo/{proxy+}", Method: GET}}
"#,
    )
    .unwrap();
    let serve = Serve::start(&template, &[]);
    let http = client();

    let page = dump(http.get(serve.url("/blog?x=1")).send().unwrap());
    assert_eq!(page["server"]["SCRIPT_NAME"], "/index.php");
    let response = http.get(serve.url("/assets/site.css")).send().unwrap();
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/css");

    let response = http
        .get(serve.url("/echo/a/b?y=1"))
        .header("x-h", "v")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let echoed: Value = serde_json::from_str(&response.text().unwrap()).unwrap();
    let event = &echoed["event"];
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["rawPath"], "/echo/a/b");
    assert_eq!(event["rawQueryString"], "y=1");
    assert_eq!(event["headers"]["x-h"], "v");
    assert_eq!(
        echoed["env"]["STAGE"], "local-test",
        "the template's environment"
    );
    // POST is not a route of Echo: the web app's catch-all answers it.
    let page = dump(
        http.post(serve.url("/echo/a"))
            .form(&[("k", "v")])
            .send()
            .unwrap(),
    );
    assert_eq!(page["post"]["k"], "v");
}

/// What a web page costs per request against the seed's JSON handler, in-process (sandbox,
/// instance, the call), same machine, same run: the median of each over 300, interleaved.
/// `cargo test --release -p host --test it web::page_time -- --ignored --nocapture`
#[test]
#[ignore = "a measurement: run it explicitly"]
fn page_time() {
    use host::engine;
    use host::function::{Code, Function, FunctionSpec};
    use host::lambda::api::NextEvent;

    let app = tempfile::tempdir().unwrap();
    std::fs::write(
        app.path().join("index.php"),
        "<?php\necho 'Hello, ', $_GET['name'] ?? 'world';\n",
    )
    .unwrap();
    let mut spec = FunctionSpec::local(app.path());
    spec.code = Code::WebRoot {
        dir: app.path().to_path_buf(),
        php_runtime: Some(php_cwasm().to_path_buf()),
    };
    let web = Function::load(spec).unwrap();
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello-php/src/index.php");
    let mut spec = FunctionSpec::local(&seed);
    spec.code = Code::File {
        path: seed,
        php_function: None,
        php_runtime: Some(php_cwasm().to_path_buf()),
    };
    let json = Function::load(spec).unwrap();
    let request = http::Request::get("/?name=world")
        .header("host", "localhost")
        .body(bytes::Bytes::new())
        .unwrap();
    let (mut pages, mut handlers) = (Vec::new(), Vec::new());
    for _ in 0..300 {
        let event = NextEvent::local(String::new(), Duration::from_secs(10));
        let route = web.web_root().unwrap().route("/");
        let outcome =
            engine::block_on(web.respond(route, &request, &host::web::Client::default(), &event))
                .unwrap();
        assert_eq!(outcome.result.unwrap().body().as_ref(), b"Hello, world");
        pages.push(outcome.duration);
        let event = NextEvent::local(r#"{"name":"world"}"#, Duration::from_secs(10));
        let outcome = engine::block_on(json.invoke(&event)).unwrap();
        assert_eq!(outcome.result.unwrap(), "Hello, world");
        handlers.push(outcome.duration);
    }
    pages.sort();
    handlers.sort();
    let (page, handler) = (pages[150], handlers[150]);
    println!(
        "web page: median {page:?} (p90 {:?}); JSON handler: median {handler:?} (p90 {:?}); difference {:.3} ms",
        pages[270],
        handlers[270],
        (page.as_secs_f64() - handler.as_secs_f64()) * 1e3
    );
}

/// `host serve examples/lamp-app`: the folder with no index.php serves its SAM template.
#[test]
fn serving_the_example_apps_folder_serves_its_template() {
    let app = example_app();
    let serve = Serve::start(app.path(), &[]);
    assert!(
        serve.log().contains("serving its SAM template"),
        "{}",
        serve.log()
    );
    let http = client();
    // The Rust route exists only in the template.
    let rust = http.get(serve.url("/rust/hello?name=Ada")).send().unwrap();
    assert_eq!(rust.status(), 200, "{}", serve.log());
    let hello = http
        .get(serve.url("/hello"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(hello.contains("<p>Hello, world</p>"), "{hello}");
}

/// The seed's architecture, examples/lamp-app, as `make serve` runs it (its SAM template):
/// pages, a form with a session-stored CSRF token, a cookie, redirect-after-POST, an upload,
/// static assets.
#[test]
fn the_example_app_works_through_its_template() {
    let app = example_app();
    let serve = Serve::start(&app.path().join("template.yaml"), &[]);
    let http = client();
    let get = |path: &str| http.get(serve.url(path)).send().unwrap();

    let home = get("/");
    assert_eq!(home.status(), 200);
    assert!(home.text().unwrap().contains("/assets/site.css"));
    // The Rust route, a wasi:http component of its own function.
    let rust: Value =
        serde_json::from_str(&get("/rust/hello?name=Ada%20L").text().unwrap()).unwrap();
    assert_eq!(rust, json!({"greeting": "Hello, Ada L", "from": "rust"}));
    let css = get("/assets/site.css");
    assert_eq!(css.headers()[header::CONTENT_TYPE], "text/css");
    assert_eq!(get("/nowhere").status(), 404);
    assert!(
        get("/hello")
            .text()
            .unwrap()
            .contains("<p>Hello, world</p>")
    );

    let form = get("/guestbook").text().unwrap();
    let token = form
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF token in the form:\n{form}"))
        .to_string();
    let forged = http
        .post(serve.url("/guestbook"))
        .form(&[("csrf", "forged"), ("name", "Mallory"), ("message", "hi")])
        .send()
        .unwrap();
    assert_eq!(forged.status(), 403);
    let posted = http
        .post(serve.url("/guestbook"))
        .form(&[
            ("csrf", token.as_str()),
            ("name", "Ada"),
            ("message", "Hello <b>wasm</b>"),
        ])
        .send()
        .unwrap();
    assert_eq!(posted.status(), 303, "redirect after POST");
    assert_eq!(posted.headers()[header::LOCATION], "/");
    let home = get("/").text().unwrap();
    assert!(
        home.contains("Welcome back, Ada"),
        "the author cookie:\n{home}"
    );
    assert!(
        home.contains("Hello &lt;b&gt;wasm&lt;/b&gt;"),
        "the entry, escaped:\n{home}"
    );

    let bytes = blob();
    let upload = multipart::Form::new().part(
        "file",
        multipart::Part::bytes(bytes.clone()).file_name("data.bin"),
    );
    let page = http
        .post(serve.url("/upload"))
        .multipart(upload)
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().unwrap();
    assert!(page.contains(&hex(&Sha256::digest(&bytes))), "{page}");
}

/// The example app's guestbook in MySQL, configured as on Lambda: the template's parameters
/// (their defaults, as `host serve` reads them) set the DSN, the user and the function's own
/// `LAMP_ALLOW_OUTBOUND`; nothing is passed on the command line.
#[test]
fn the_example_app_keeps_its_guestbook_in_mysql_when_the_template_says_so() {
    let db = crate::mariadb::mariadb();
    let database = db.database("example_app").unwrap();
    let app = example_app();
    let template = app.path().join("template.yaml");
    let mut text = std::fs::read_to_string(&template).unwrap();
    for (parameter, value) in [
        (
            "DbDsn",
            format!("mysql:host=127.0.0.1;port={};dbname={database}", db.port()),
        ),
        ("DbUser", crate::mariadb::USER.to_string()),
        ("DbPassword", db.password(crate::mariadb::USER).to_string()),
        ("AllowOutbound", db.address()),
    ] {
        let declared = format!("  {parameter}:\n    Type: String\n    Default: \"\"");
        assert!(text.contains(&declared), "template.yaml: {parameter}");
        text = text.replace(
            &declared,
            &format!("  {parameter}:\n    Type: String\n    Default: \"{value}\""),
        );
    }
    std::fs::write(&template, text).unwrap();
    let serve = Serve::start(&template, &[]);
    let http = client();
    let form = http
        .get(serve.url("/guestbook"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let token = form
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF token in the form:\n{form}\n{}", serve.log()))
        .to_string();
    let posted = http
        .post(serve.url("/guestbook"))
        .form(&[
            ("csrf", token.as_str()),
            ("name", "Ada"),
            ("message", "stored in MySQL"),
        ])
        .send()
        .unwrap();
    assert_eq!(posted.status(), 303, "{}", serve.log());
    let info: Value = serde_json::from_str(
        &http
            .get(serve.url("/api/info"))
            .send()
            .unwrap()
            .text()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(info["database"], "mysql", "{info}");
    assert_eq!(info["guestbook_entries"], 1, "{info}");
    // The row is in the server, not in a SQLite file of the sandbox.
    assert_eq!(
        db.sql(&database, "SELECT name, message FROM guestbook")
            .unwrap()
            .trim(),
        "Ada\tstored in MySQL"
    );
}

/// A copy of examples/lamp-app with its Rust route built where the template expects it (`make
/// serve` puts it there too).
fn example_app() -> tempfile::TempDir {
    let app = tempfile::tempdir().unwrap();
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/lamp-app"),
        app.path(),
    );
    std::fs::copy(
        crate::util::component(test_artifacts::LAMP_APP_RUST),
        app.path().join("rust/hello.wasm"),
    )
    .unwrap();
    app
}

/// Copies the files under `from` (not `target/` folders) into `to`, symbolic links followed:
/// the sandbox refuses a link leading out of the folder it maps.
pub(crate) fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let (source, dest) = (entry.path(), to.join(entry.file_name()));
        if source.is_dir() {
            if entry.file_name() != "target" {
                std::fs::create_dir_all(&dest).unwrap();
                copy_tree(&source, &dest);
            }
        } else {
            std::fs::copy(&source, &dest).unwrap();
        }
    }
}
