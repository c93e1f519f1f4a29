//! The vendor layer (`vendor.zip`: Guzzle and its dependencies from Debian 12's packages, one
//! autoloader) through the real binary: built by lamp-layer as `make layers` builds it,
//! unpacked, and mapped at /opt/vendor for `host run`, where a PHP handler calls an HTTP
//! server of the test on loopback with Guzzle. PHP has the curl extension, so Guzzle uses its
//! curl handlers: libcurl over the sandbox's sockets, under the network policy. The Lambda path (the bootstrap and the unpacked layers) is in `layers.rs`.
//!
//! Building vendor.zip takes its `.deb`s from `$LAMP_CACHE/debs`, or fetches them there with
//! apt-get the first time (the network once). These need `make php` too, as `php.rs` does.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

use lamp_layer::{Inputs, archive};
use serde_json::{Value, json};

use crate::util::{host, stderr, stdout};

/// The test handler making one Guzzle call (`guzzle($event)`), for `host run` and the
/// bootstrap alike.
pub(crate) const GUZZLE_PHP: &str = include_str!("vendor/guzzle.php");
/// The test handler autoloading every class of the layer (`classes()`).
const CLASSES_PHP: &str = include_str!("vendor/classes.php");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// vendor.zip built from the repository's inputs, once per test process.
fn vendor_zip() -> &'static Path {
    static ZIP: OnceLock<PathBuf> = OnceLock::new();
    ZIP.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("vendor-it-{}", std::process::id()));
        let built = lamp_layer::build_zips(&Inputs::in_workspace(&repo()), &["vendor"], &out)
            .unwrap_or_else(|e| panic!("building vendor.zip: {e:?}"));
        built[0].path.clone()
    })
}

/// The layer unpacked as Lambda unpacks it into /opt: the folder holding `vendor/`.
fn vendor_layer() -> &'static Path {
    static OPT: OnceLock<PathBuf> = OnceLock::new();
    OPT.get_or_init(|| {
        let opt = vendor_zip().with_file_name("opt");
        let _ = std::fs::remove_dir_all(&opt);
        archive::unpack(vendor_zip(), &opt).unwrap();
        opt
    })
}

/// What vendor.zip must hold, whoever built it: everything under `vendor/`, mode 0644; the
/// layer's one autoloader and none of Debian's; the libraries where Debian puts them; each
/// pinned package's copyright file and its line in `vendor/debian/packages.txt`.
pub(crate) fn assert_holds_guzzle_from_debian(zip: &Path) {
    let listed = archive::list(zip).unwrap();
    let names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
    for (name, mode) in &listed {
        assert!(name.starts_with("vendor/"), "{name} is outside vendor/");
        assert_eq!(*mode, 0o644, "{name}");
        assert!(
            name == "vendor/autoload.php"
                || !(name.ends_with("/autoload.php") || name.ends_with("-autoload.php")),
            "{name}: Debian's autoloaders are left out"
        );
    }
    for name in [
        "vendor/autoload.php",
        "vendor/GuzzleHttp/Client.php",
        "vendor/GuzzleHttp/Handler/StreamHandler.php",
        "vendor/GuzzleHttp/functions_include.php",
        "vendor/GuzzleHttp/Promise/Promise.php",
        "vendor/GuzzleHttp/Psr7/Request.php",
        "vendor/Psr/Http/Client/ClientInterface.php",
        "vendor/Psr/Http/Message/RequestInterface.php",
        "vendor/Psr/Http/Message/RequestFactoryInterface.php",
        "vendor/getallheaders/getallheaders.php",
        "vendor/Symfony/Contracts/Deprecation/function.php",
    ] {
        assert!(
            names.contains(&name),
            "{name} missing from {}",
            zip.display()
        );
    }
    let pins =
        lamp_layer::debian::read_pins(&repo().join("layer/vendor/debian-packages.txt")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    archive::unpack(zip, dir.path()).unwrap();
    let manifest = std::fs::read_to_string(dir.path().join("vendor/debian/packages.txt")).unwrap();
    for pin in &pins {
        let copyright = format!("vendor/debian/copyright/{}", pin.package);
        assert!(names.contains(&copyright.as_str()), "{copyright} missing");
        assert!(
            manifest
                .lines()
                .any(|l| l.ends_with(&format!(" {} {}", pin.package, pin.version))),
            "{} {} not in packages.txt:\n{manifest}",
            pin.package,
            pin.version
        );
    }
    assert!(
        manifest.contains("guzzlehttp/guzzle 7.4.5 php-guzzlehttp-guzzle 7.4.5-1"),
        "{manifest}"
    );
}

#[test]
fn the_vendor_zip_holds_guzzle_from_debian_with_one_autoloader_and_is_reproducible() {
    assert_holds_guzzle_from_debian(vendor_zip());
    let again = tempfile::tempdir().unwrap();
    let built =
        lamp_layer::build_zips(&Inputs::in_workspace(&repo()), &["vendor"], again.path()).unwrap();
    assert_eq!(
        std::fs::read(&built[0].path).unwrap(),
        std::fs::read(vendor_zip()).unwrap(),
        "two builds of vendor.zip differ"
    );
}

/// `host run TASK/SCRIPT` of a handler `php` with the vendor layer at /opt/vendor.
fn run_with_vendor(script: &str, php: &str, event: &Value, args: &[&str]) -> Output {
    let task = tempfile::tempdir().unwrap();
    let path = task.path().join(script);
    std::fs::write(&path, php).unwrap();
    let vendor = format!("{}::/opt/vendor", vendor_layer().join("vendor").display());
    host()
        .arg("run")
        .arg(&path)
        .arg("--php-runtime")
        .arg(crate::php::php_cwasm())
        .args(["--dir", &vendor, "--event", &event.to_string()])
        .args(args)
        .output()
        .unwrap()
}

fn result(out: &Output) -> Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_str(&stdout(out))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(out), stderr(out)))
}

#[test]
fn every_class_of_the_vendor_layer_autoloads_from_the_file_declaring_it() {
    let out = run_with_vendor("classes.php", CLASSES_PHP, &json!({}), &[]);
    let found = result(&out);
    let loaded = found["loaded"].as_array().unwrap();
    assert!(
        found["failed"].as_array().is_some_and(Vec::is_empty),
        "{}",
        found["failed"]
    );
    // 104 in the layer of 2026-11-27 (Guzzle 7.4.5); a handful for a broken tokenizer walk.
    assert!(loaded.len() > 100, "{loaded:?}");
    for class in [
        "GuzzleHttp\\Client",
        "GuzzleHttp\\Promise\\Promise",
        "GuzzleHttp\\Psr7\\HttpFactory",
        "Psr\\Http\\Client\\ClientInterface",
        "Psr\\Http\\Message\\UriFactoryInterface",
    ] {
        assert!(loaded.contains(&json!(class)), "{class}: {loaded:?}");
    }
    assert_eq!(
        found["functions"],
        json!([
            "GuzzleHttp\\describe_type",
            "GuzzleHttp\\Promise\\promise_for",
            "getallheaders",
            "trigger_deprecation"
        ])
    );
}

/// An HTTP/1.1 server of the test on a free loopback port, one request per connection (Guzzle's
/// stream handler asks for `Connection: close`):
/// - `/echo...`: 200, the request as the server read it (method, target, headers, body) as
///   JSON, with `X-Lamp: vendor` and two `Set-Cookie` headers;
/// - `/status/NNN`: that status, body `status NNN`;
/// - `/redirect`: 302 to `/echo?from=redirect`;
/// - `/silent`: reads the request and never answers.
pub(crate) struct EchoServer {
    pub port: u16,
}

impl EchoServer {
    pub(crate) fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || answer(stream));
            }
        });
        Self { port }
    }

    pub(crate) fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `--allow-outbound` rule (or `LAMP_ALLOW_OUTBOUND`) that reaches it.
    pub(crate) fn rule(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn answer(stream: TcpStream) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((name, value)) = line.trim_end().split_once(':') {
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, extra, body) = if target.starts_with("/echo") {
        let seen = json!({
            "method": method,
            "target": target,
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        });
        (
            200,
            "Content-Type: application/json\r\nX-Lamp: vendor\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n",
            seen.to_string(),
        )
    } else if let Some(code) = target.strip_prefix("/status/") {
        let code: u16 = code.parse().unwrap_or(500);
        (code, "", format!("status {code}"))
    } else if target == "/redirect" {
        (302, "Location: /echo?from=redirect\r\n", String::new())
    } else if target == "/silent" {
        std::thread::sleep(Duration::from_secs(120));
        return;
    } else {
        (404, "", "no such route".into())
    };
    let reason = match status {
        200 => "OK",
        302 => "Found",
        404 => "Not Found",
        503 => "Service Unavailable",
        _ => "Other",
    };
    let _ = reader.get_mut().write_all(
        format!(
            "HTTP/1.1 {status} {reason}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
}

/// The event of one Guzzle call to `base` (the handler's `guzzle($event)`).
pub(crate) fn call(base: &str, method: &str, path: &str, options: Value) -> Value {
    json!({"base": base, "method": method, "path": path, "options": options})
}

/// A GET with a query and a header: the server saw them, Guzzle read status, reason, every
/// header (both cookies) and the body, through curl.
pub(crate) fn get_event(base: &str) -> Value {
    call(
        base,
        "GET",
        "/echo",
        json!({"headers": {"X-Trace": "t-1"}, "query": {"n": 2, "q": "wasm lamp"}}),
    )
}

pub(crate) fn assert_get(got: &Value) {
    assert_eq!(got["exception"], Value::Null, "{got}");
    assert_eq!(got["handler"], "curl", "{got}");
    assert_eq!(
        (got["status"].as_u64(), got["reason"].as_str()),
        (Some(200), Some("OK"))
    );
    assert_eq!(got["headers"]["X-Lamp"], json!(["vendor"]), "{got}");
    assert_eq!(got["headers"]["Set-Cookie"], json!(["a=1", "b=2"]), "{got}");
    let seen: Value = serde_json::from_str(got["body"].as_str().unwrap()).unwrap();
    assert_eq!(seen["method"], "GET");
    assert_eq!(seen["target"], "/echo?n=2&q=wasm%20lamp");
    let headers = seen["headers"].as_array().unwrap();
    assert!(headers.contains(&json!(["x-trace", "t-1"])), "{seen}");
    assert!(
        headers
            .iter()
            .any(|h| h[0] == "user-agent" && h[1].as_str().unwrap().starts_with("GuzzleHttp/7")),
        "{seen}"
    );
}

/// A POST of JSON: the server got the body and its content type. (serde_json keeps an object's
/// keys sorted, so the event's order is the one PHP sees.)
pub(crate) fn post_event(base: &str) -> Value {
    call(
        base,
        "POST",
        "/echo",
        json!({"json": {"n": [1, 2], "name": "world"}}),
    )
}

pub(crate) fn assert_post(got: &Value) {
    assert_eq!(got["status"], 200, "{got}");
    let seen: Value = serde_json::from_str(got["body"].as_str().unwrap()).unwrap();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["body"], r#"{"n":[1,2],"name":"world"}"#);
    let headers = seen["headers"].as_array().unwrap();
    assert!(
        headers.contains(&json!(["content-type", "application/json"])),
        "{seen}"
    );
}

/// A 404: Guzzle's ClientException, with the response.
pub(crate) fn assert_not_found(got: &Value) {
    assert_eq!(
        got["exception"], "GuzzleHttp\\Exception\\ClientException",
        "{got}"
    );
    assert_eq!(got["status"], 404, "{got}");
    assert_eq!(got["body"], "status 404", "{got}");
    assert!(
        got["message"].as_str().unwrap().contains("404 Not Found"),
        "{got}"
    );
}

/// Nothing reached (refused by the peer or by the sandbox): Guzzle's ConnectException, no
/// response.
pub(crate) fn assert_connect_failed(got: &Value) {
    assert_eq!(
        got["exception"], "GuzzleHttp\\Exception\\ConnectException",
        "{got}"
    );
    assert_eq!(got["status"], Value::Null, "{got}");
}

/// The host's WARN for a connection the policy refused names the destination and the setting
/// that would allow it.
pub(crate) fn assert_refusal_logged(log: &str, server: &EchoServer, setting: &str) {
    assert!(
        log.contains(&format!(
            "refused the guest's connection to {}",
            server.rule()
        )) && log.contains(setting),
        "{log}"
    );
}

/// A loopback port nothing listens on.
pub(crate) fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn guzzle(event: &Value, allow: &[&str]) -> Output {
    let mut args = Vec::new();
    for rule in allow {
        args.extend(["--allow-outbound", rule]);
    }
    run_with_vendor("guzzle.php", GUZZLE_PHP, event, &args)
}

/// The result of `event`, with only `server` allowed.
fn guzzle_to(server: &EchoServer, event: &Value) -> Value {
    result(&guzzle(event, &[&server.rule()]))
}

#[test]
fn guzzle_gets_with_a_query_and_reads_status_headers_and_body() {
    let server = EchoServer::start();
    assert_get(&guzzle_to(&server, &get_event(&server.base())));
}

#[test]
fn guzzle_posts_json() {
    let server = EchoServer::start();
    assert_post(&guzzle_to(&server, &post_event(&server.base())));
}

#[test]
fn guzzle_throws_client_and_server_exceptions_with_the_response() {
    let server = EchoServer::start();
    let status = |code: u16| {
        let event = call(&server.base(), "GET", &format!("/status/{code}"), json!({}));
        guzzle_to(&server, &event)
    };
    assert_not_found(&status(404));
    let got = status(503);
    assert_eq!(
        got["exception"], "GuzzleHttp\\Exception\\ServerException",
        "{got}"
    );
    assert_eq!(
        (got["status"].as_u64(), got["body"].as_str()),
        (Some(503), Some("status 503"))
    );
}

#[test]
fn guzzle_follows_a_redirect() {
    let server = EchoServer::start();
    let got = guzzle_to(
        &server,
        &call(&server.base(), "GET", "/redirect", json!({})),
    );
    assert_eq!(got["status"], 200, "{got}");
    let seen: Value = serde_json::from_str(got["body"].as_str().unwrap()).unwrap();
    assert_eq!(seen["target"], "/echo?from=redirect");
}

/// A port the policy allows with nothing listening, and one the policy refuses (the host's WARN
/// names it): both a ConnectException for the handler.
#[test]
fn guzzle_throws_connect_exception_when_nothing_or_the_sandbox_refuses() {
    let closed = format!("127.0.0.1:{}", closed_port());
    let got = result(&guzzle(
        &call(&format!("http://{closed}"), "GET", "/", json!({})),
        &[&closed],
    ));
    assert_connect_failed(&got);

    let server = EchoServer::start();
    let out = guzzle(&get_event(&server.base()), &[&closed]);
    assert_connect_failed(&result(&out));
    assert_refusal_logged(&stderr(&out), &server, "--allow-outbound");
}

/// Guzzle's `timeout` holds on a server that never answers: curl's timeout works on the
/// sandbox's sockets (Guzzle's curl handler reports it as a ConnectException, cURL error 28).
#[test]
fn guzzle_times_out_on_a_silent_server() {
    let server = EchoServer::start();
    let mut event = call(&server.base(), "GET", "/silent", json!({}));
    event["timeout"] = json!(1);
    let got = guzzle_to(&server, &event);
    assert_connect_failed(&got);
    let seconds = got["seconds"].as_f64().unwrap();
    assert!((0.9..5.0).contains(&seconds), "{got}");
}
