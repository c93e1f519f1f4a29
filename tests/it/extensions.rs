//! The extensions built with C libraries, through the real binary: zlib, SQLite (pdo_sqlite,
//! sqlite3) in the function's `/tmp`, OpenSSL with the CA certificates the host shows PHP
//! guests as `/etc/ssl` (MySQL, which needs a server, is in `mysql.rs`), libxml2's family (dom,
//! simplexml, xml, xmlreader, xmlwriter), sodium, zip (libzip), gd (libpng, libjpeg-turbo,
//! libwebp, FreeType) and curl (libcurl, under the outbound network policy); and those without
//! one (iconv, bcmath, exif, fileinfo). PHP's own tests of each run in guests/php/run-phpt.sh;
//! these check what a handler sees: the sandbox's files and network, the snapshot's random state.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::php::{host_php, host_run, php_cwasm, task as tree};
use crate::util::*;
use crate::web::{Serve, client};

#[test]
fn host_php_lists_every_extension_that_is_in() {
    let dir = tempfile::tempdir().unwrap();
    let out = host_php(&["-m"], None, dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let modules: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    for ext in [
        "bcmath",
        "curl",
        "dom",
        "exif",
        "fileinfo",
        "gd",
        "iconv",
        "libxml",
        "mysqli",
        "mysqlnd",
        "openssl",
        "PDO",
        "pdo_mysql",
        "pdo_sqlite",
        "session",
        "SimpleXML",
        "sodium",
        "sqlite3",
        "xml",
        "xmlreader",
        "xmlwriter",
        "zip",
        "zlib",
    ] {
        assert!(
            modules.iter().any(|m| m == ext),
            "{ext} missing:\n{}",
            stdout(&out)
        );
    }
}

#[test]
fn zlib_compresses_and_its_stream_wrapper_writes_and_reads_tmp() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
$text = str_repeat("lamp ", 10000);
$packed = gzcompress($text, 9);
$file = sys_get_temp_dir() . '/zlib-' . getmypid() . '.gz';
file_put_contents("compress.zlib://$file", $text);
echo strlen($packed) < 200 ? 'small' : 'big', ' ',
     gzuncompress($packed) === $text ? 'same' : 'different', ' ',
     file_get_contents("compress.zlib://$file") === $text ? 'wrapper' : 'no wrapper', ' ',
     gzdecode(file_get_contents($file)) === $text ? 'gzip' : 'not gzip';
unlink($file);
"#;
    let out = host_php(&["-r", script], None, dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "small same wrapper gzip");
}

/// The C library's iconv behaves as glibc's where PHP and libxml2 rely on it (musl's wrote
/// `*` for a character the target charset has not, so the XML had `*` and iconv() returned
/// text): the expected strings are native php8.2's on glibc.
#[test]
fn iconv_fails_on_what_the_target_charset_has_not_and_libxml2_writes_a_character_reference() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
$d = new DOMDocument('1.0', 'windows-1252');
$d->appendChild($d->createElement('p', "caf\u{E9} \u{65E5}"));
echo bin2hex(strstr($d->saveXML(), '<p>')), ' ',
     var_export(@iconv('CP850', 'ISO-8859-1', "M\xC3\x89D"), true), ' ',
     iconv('UTF-8', 'ASCII//TRANSLIT', "a\u{65E5}b"), ' ',
     iconv('UTF-8', 'UTF-8//IGNORE', "a\xC3\xC3\xB8b"), ' ',
     bin2hex(iconv('UTF-8', 'ISO-2022-JP', "\u{65E5}\u{672C}ab\u{65E5}"));
"#;
    let out = host_php(&["-r", script], None, dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    // windows-1252: "<p>caf\xE9 &#26085;</p>\n"
    assert_eq!(
        stdout(&out),
        "3c703e636166e920262332363038353b3c2f703e0a false a?b a\u{f8}b 1b2442467c4b5c1b284261621b2442467c1b2842"
    );
}

/// A web app writing to one SQLite database in its `/tmp` with PDO and reading it with the
/// sqlite3 extension. `?id=N` inserts N; `?count` answers rows and distinct ids;
/// `?hold=S` takes the write lock and sleeps S seconds inside the transaction.
const SQLITE_APP: &str = r#"<?php
$db = new PDO('sqlite:' . sys_get_temp_dir() . '/app.sqlite', null, null, [
    PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
    PDO::ATTR_TIMEOUT => (int) ($_GET['busy'] ?? 30),
]);
$db->exec('CREATE TABLE IF NOT EXISTS hits (id INTEGER NOT NULL, at TEXT)');
if (isset($_GET['id'])) {
    $insert = $db->prepare('INSERT INTO hits (id, at) VALUES (?, ?)');
    $insert->execute([(int) $_GET['id'], date('c')]);
    echo 'inserted ', $_GET['id'];
} elseif (isset($_GET['hold'])) {
    $db->beginTransaction();
    $db->exec('INSERT INTO hits (id) VALUES (-1)');
    sleep((int) $_GET['hold']);
    $db->commit();
    echo 'held';
} else {
    $lite = new SQLite3(sys_get_temp_dir() . '/app.sqlite', SQLITE3_OPEN_READONLY);
    $lite->busyTimeout(30000);
    $row = $lite->querySingle('SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS d FROM hits WHERE id >= 0', true);
    echo json_encode(['rows' => $row['n'], 'distinct' => $row['d'],
        'version' => SQLite3::version()['versionString']]);
}
"#;

#[test]
fn sqlite_in_tmp_is_shared_by_concurrent_requests_without_losing_a_row() {
    let app = tree(&[("public/index.php", SQLITE_APP)]);
    let serve = Serve::start(&app.path().join("public"), &["--concurrency", "8"]);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let base = serve.url("/");
            std::thread::spawn(move || {
                let http = client();
                let mut wrong = Vec::new();
                for i in 0..25 {
                    let id = t * 25 + i;
                    let response = http.get(format!("{base}?id={id}")).send().unwrap();
                    let status = response.status().as_u16();
                    let body = response.text().unwrap();
                    if (status, body.as_str()) != (200, format!("inserted {id}").as_str()) {
                        wrong.push(format!("?id={id}: {status} {body}"));
                    }
                }
                wrong
            })
        })
        .collect();
    let wrong: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(wrong.is_empty(), "{wrong:?}\n{}", serve.log());
    let body = client().get(serve.url("/")).send().unwrap().text().unwrap();
    let counts: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}\n{}", serve.log()));
    assert_eq!(counts["rows"], 200, "{body}");
    assert_eq!(counts["distinct"], 200, "{body}");
    assert_eq!(counts["version"], "3.40.1", "{body}");
}

#[test]
fn a_lock_left_by_a_request_stopped_at_its_deadline_is_broken_once_stale() {
    let app = tree(&[("public/index.php", SQLITE_APP)]);
    let serve = Serve::start(
        &app.path().join("public"),
        &[
            "--timeout",
            "2",
            "--env",
            "LAMP_SQLITE_STALE_LOCK_SECONDS=4",
        ],
    );
    let http = client();
    assert_eq!(
        http.get(serve.url("/?id=1"))
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "inserted 1"
    );
    // Stopped at 2 s inside its transaction: its lock directory stays behind.
    let held = http.get(serve.url("/?hold=60")).send().unwrap();
    assert_eq!(held.status().as_u16(), 504, "{}", serve.log());
    let stopped = Instant::now();
    // Right after, the database is locked (a 1 s busy timeout, then PDO's error) ...
    let busy = http.get(serve.url("/?id=2&busy=1")).send().unwrap();
    let status = busy.status().as_u16();
    let body = busy.text().unwrap();
    assert!(
        status == 500 && serve.log_has("database is locked"),
        "{status} {body}\n{}",
        serve.log()
    );
    // ... and once the lock is older than LAMP_SQLITE_STALE_LOCK_SECONDS it is taken as
    // abandoned: the hot journal is rolled back and the insert goes through.
    std::thread::sleep(Duration::from_secs(5).saturating_sub(stopped.elapsed()));
    assert_eq!(
        http.get(serve.url("/?id=3"))
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "inserted 3",
        "{}",
        serve.log()
    );
    let body = http.get(serve.url("/")).send().unwrap().text().unwrap();
    let counts: serde_json::Value = serde_json::from_str(&body).unwrap();
    // 1 and 3; the stopped request's row was rolled back with its transaction.
    assert_eq!(counts["rows"], 2, "{body}");
}

// --- TLS --------------------------------------------------------------------------------------

/// A throwaway CA and a certificate it signed for 127.0.0.1 and localhost, made with the
/// `openssl` command.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let openssl = |args: &[&str]| {
            crate::util::openssl(dir.path(), args);
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=lamp test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            dir.path().join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ]);
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// `openssl s_server -www` on a free loopback port: answers each HTTPS GET with a status page.
struct TlsServer {
    child: Child,
    port: u16,
}

impl TlsServer {
    fn start(pki: &Pki) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("openssl")
            .args(["s_server", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(pki.path("server.pem"))
            .arg("-key")
            .arg(pki.path("server.key"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // It prints ACCEPT once listening (after a line or two about its settings); what it
        // prints later is drained so that it never blocks on a full pipe.
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut said = String::new();
        while !said.contains("ACCEPT") {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                panic!("openssl s_server ended before listening: {said}");
            }
            said.push_str(&line);
        }
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Self { child, port }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PHP handler that fetches `url` over HTTPS with the CA file `$event['cafile']` (default:
/// OpenSSL's, i.e. the bundle) and says what happened.
const HTTPS_HANDLER: &str = r#"<?php
function index($event) {
    $ssl = ['verify_peer' => true];
    if (isset($event['cafile'])) { $ssl['cafile'] = $event['cafile']; }
    $context = stream_context_create(['ssl' => $ssl, 'http' => ['timeout' => 10]]);
    $errors = [];
    set_error_handler(function ($no, $message) use (&$errors) { $errors[] = $message; return true; });
    $body = file_get_contents($event['url'], false, $context);
    restore_error_handler();
    $locations = openssl_get_cert_locations();
    return [
        'body' => $body === false ? null : substr($body, 0, 200),
        'error' => implode("\n", $errors),
        'default_cert_file' => $locations['default_cert_file'],
        'bundle_certificates' => substr_count((string) @file_get_contents($locations['default_cert_file']), 'BEGIN CERTIFICATE'),
    ];
}
"#;

/// `host run` of the handler `root/src/index.php` on `event` with `flags`: its result and the
/// host's log.
fn invoke(root: &Path, event: serde_json::Value, flags: &[&str]) -> (serde_json::Value, String) {
    let out = host()
        .arg("run")
        .arg(root.join("src/index.php"))
        .arg("--php-runtime")
        .arg(php_cwasm())
        .arg("--event")
        .arg(event.to_string())
        .args(flags)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let result =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    (result, stderr(&out))
}

/// A TLS server certified by a throwaway CA, and what a handler needs to reach it: its URL,
/// the `--allow-outbound` rule, and the `--dir` that shows the CA's folder as `/ca`.
struct TlsSite {
    _pki: Pki,
    _server: TlsServer,
    url: String,
    allow: String,
    ca_dir: String,
}

impl TlsSite {
    fn start() -> Self {
        let pki = Pki::new();
        let server = TlsServer::start(&pki);
        Self {
            url: format!("https://127.0.0.1:{}/", server.port),
            allow: format!("127.0.0.1:{}", server.port),
            ca_dir: format!("{}::/ca", pki.dir.path().display()),
            _pki: pki,
            _server: server,
        }
    }

    /// The result of the handler in `root` for the site's URL: verified against the bundle,
    /// or, with `ca_field`, against the test CA, whose path the event gives in that field.
    fn fetch(&self, root: &Path, ca_field: Option<&str>) -> serde_json::Value {
        let mut event = serde_json::json!({ "url": self.url });
        let mut flags = vec!["--allow-outbound", self.allow.as_str()];
        if let Some(field) = ca_field {
            event[field] = "/ca/ca.pem".into();
            flags.extend(["--dir", self.ca_dir.as_str()]);
        }
        invoke(root, event, &flags).0
    }
}

/// Whether the handler's `body` is the page of `openssl s_server -www`.
fn is_s_server_page(result: &serde_json::Value) -> bool {
    result["body"]
        .as_str()
        .unwrap_or_default()
        .contains("s_server")
}

#[test]
fn https_streams_verify_the_peer_against_the_ca_bundle_or_the_ca_given() {
    let site = TlsSite::start();
    let root = tree(&[("src/index.php", HTTPS_HANDLER)]);

    // The bundle (Mozilla's roots) does not know the test CA: verification fails.
    let result = site.fetch(root.path(), None);
    assert_eq!(result["default_cert_file"], "/etc/ssl/cert.pem", "{result}");
    let bundle = result["bundle_certificates"].as_u64().unwrap();
    assert!(bundle > 100, "{result}");
    assert!(result["body"].is_null(), "{result}");
    assert!(
        result["error"]
            .as_str()
            .unwrap()
            .contains("certificate verify failed"),
        "{result}"
    );

    // With the test CA the handshake completes and the page arrives.
    let result = site.fetch(root.path(), Some("cafile"));
    assert!(is_s_server_page(&result), "{result}");
}

// --- curl -------------------------------------------------------------------------------------

/// A PHP handler making the one curl request its event describes (`url`, `post` fields,
/// `cainfo`) and saying what curl answered.
const CURL_HANDLER: &str = r#"<?php
function index($event) {
    $ch = curl_init($event['url']);
    curl_setopt_array($ch, [CURLOPT_RETURNTRANSFER => true, CURLOPT_TIMEOUT => 10,
        CURLOPT_HTTPHEADER => ['X-Lamp: curl']]);
    if (isset($event['post'])) { curl_setopt($ch, CURLOPT_POSTFIELDS, $event['post']); }
    if (isset($event['cainfo'])) { curl_setopt($ch, CURLOPT_CAINFO, $event['cainfo']); }
    $body = curl_exec($ch);
    return ['errno' => curl_errno($ch), 'error' => curl_error($ch),
        'status' => curl_getinfo($ch, CURLINFO_RESPONSE_CODE),
        'body' => $body === false ? null : $body];
}
"#;

/// libcurl connects through the libc's sockets, so wasi:sockets and the host's policy: a GET and
/// a POST reach the allowed server (which saw the method, the header and the form), by address
/// and by name, and a server that no rule allows is a connection error in PHP and the host's
/// WARN naming it.
#[test]
fn curl_gets_and_posts_where_the_policy_allows_and_fails_to_connect_elsewhere() {
    let (server, other) = (
        crate::vendor::EchoServer::start(),
        crate::vendor::EchoServer::start(),
    );
    let root = tree(&[("src/index.php", CURL_HANDLER)]);
    let allow = ["--allow-outbound", &server.rule()];
    let seen = |result: &serde_json::Value| -> serde_json::Value {
        assert_eq!(result["errno"], 0, "{result}");
        assert_eq!(result["status"], 200, "{result}");
        serde_json::from_str(result["body"].as_str().unwrap()).unwrap()
    };
    let header = |seen: &serde_json::Value, name: &str| -> Option<String> {
        seen["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0] == name)
            .map(|h| h[1].as_str().unwrap().to_string())
    };

    let (result, _) = invoke(
        root.path(),
        serde_json::json!({ "url": format!("{}/echo?q=wasm", server.base()) }),
        &allow,
    );
    let get = seen(&result);
    assert_eq!(get["method"], "GET", "{get}");
    assert_eq!(get["target"], "/echo?q=wasm", "{get}");
    assert_eq!(header(&get, "x-lamp").as_deref(), Some("curl"), "{get}");

    let (result, _) = invoke(
        root.path(),
        serde_json::json!({ "url": format!("{}/echo", server.base()), "post": "name=lamp&n=2" }),
        &allow,
    );
    let post = seen(&result);
    assert_eq!(post["method"], "POST", "{post}");
    assert_eq!(post["body"], "name=lamp&n=2", "{post}");
    assert_eq!(
        header(&post, "content-type").as_deref(),
        Some("application/x-www-form-urlencoded"),
        "{post}"
    );

    // By name: curl asks the host for `localhost` like any name (libs/curl/), so that the name
    // rule opens the addresses it resolves to.
    let by_name = format!("localhost:{}", server.port);
    let (result, _) = invoke(
        root.path(),
        serde_json::json!({ "url": format!("http://{by_name}/echo") }),
        &["--allow-outbound", &by_name],
    );
    assert_eq!(seen(&result)["method"], "GET", "{result}");

    let (result, log) = invoke(
        root.path(),
        serde_json::json!({ "url": format!("{}/echo", other.base()) }),
        &allow,
    );
    // CURLE_COULDNT_CONNECT
    assert_eq!(result["errno"], 7, "{result}");
    assert!(result["body"].is_null(), "{result}");
    assert!(
        log.contains(&other.rule()) && log.contains("--allow-outbound"),
        "the host's WARN should name the destination and the flag: {log}"
    );
}

/// curl verifies peers against the bundle PHP's OpenSSL uses (`/etc/ssl/cert.pem`) with no
/// configuration: a server certified by a test CA fails verification, and is fetched with
/// `CURLOPT_CAINFO` naming that CA.
#[test]
fn curl_https_verifies_the_peer_against_the_ca_bundle_or_the_ca_given() {
    let site = TlsSite::start();
    let root = tree(&[("src/index.php", CURL_HANDLER)]);

    let result = site.fetch(root.path(), None);
    // CURLE_PEER_FAILED_VERIFICATION: the bundle was read (a missing one is CURLE_SSL_CACERT_BADFILE).
    assert_eq!(result["errno"], 60, "{result}");

    let result = site.fetch(root.path(), Some("cainfo"));
    assert_eq!(result["errno"], 0, "{result}");
    assert!(is_s_server_page(&result), "{result}");
}

/// Every instance starts from one pre-initialised snapshot: a random generator seeded before
/// it was taken would give every instance the same numbers.
#[test]
fn random_bytes_of_openssl_php_and_sodium_differ_between_instances() {
    let root = tree(&[(
        "src/index.php",
        r#"<?php
function index($event) {
    return [bin2hex(openssl_random_pseudo_bytes(16)), bin2hex(random_bytes(16)),
        bin2hex(sodium_crypto_secretbox_keygen())];
}
"#,
    )]);
    let draw = || {
        let out = host()
            .arg("run")
            .arg(root.path().join("src/index.php"))
            .arg("--php-runtime")
            .arg(php_cwasm())
            .args(["--event", "{}"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str::<Vec<String>>(&stdout(&out)).unwrap()
    };
    let (first, second) = (draw(), draw());
    assert_eq!(first[0].len(), 32, "{first:?}");
    assert_ne!(
        first[0], second[0],
        "openssl_random_pseudo_bytes repeated itself"
    );
    assert_ne!(first[1], second[1], "random_bytes repeated itself");
    assert_eq!(first[2].len(), 64, "{first:?}");
    assert_ne!(
        first[2], second[2],
        "libsodium's randombytes repeated itself"
    );
}

/// libxml2's family in a handler: a document from the task root read by DOM (with XPath),
/// SimpleXML, the SAX parser of ext/xml and XMLReader; one written by XMLWriter to `/tmp` and
/// read back. libxml2 reads files through PHP's streams, so it sees only what the sandbox
/// grants: a file outside the task root is not there for it.
#[test]
fn the_xml_extensions_read_and_write_documents_within_the_sandbox() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.xml");
    std::fs::write(&secret, "<secret>host file</secret>").unwrap();
    let root = tree(&[
        (
            "src/catalog.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?>
<catalog><book id="1" lang="fr"><title>Café</title><price>12.50</price></book>
<book id="2"><title>Lamp</title><price>7.25</price></book></catalog>
"#,
        ),
        (
            "src/index.php",
            r#"<?php
function index($event) {
    $file = __DIR__ . '/catalog.xml';
    $dom = new DOMDocument();
    $dom->load($file);
    $xpath = new DOMXPath($dom);
    $titles = [];
    foreach ($xpath->query('//book[@id]/title') as $t) { $titles[] = $t->textContent; }
    $sum = $xpath->evaluate('sum(//price)');

    $simple = simplexml_load_file($file);
    $french = (string) $simple->xpath('//book[@lang="fr"]/title')[0];

    $elements = 0;
    $sax = xml_parser_create();
    xml_set_element_handler($sax, function () use (&$elements) { $elements++; }, null);
    xml_parse($sax, file_get_contents($file), true);

    $reader = XMLReader::open($file);
    $ids = [];
    while ($reader->read()) {
        if ($reader->nodeType === XMLReader::ELEMENT && $reader->name === 'book') {
            $ids[] = $reader->getAttribute('id');
        }
    }

    $out = sys_get_temp_dir() . '/written.xml';
    $w = new XMLWriter();
    $w->openUri($out);
    $w->startDocument('1.0', 'UTF-8');
    $w->startElement('order');
    $w->writeAttribute('count', (string) count($titles));
    $w->writeElement('total', (string) $sum);
    $w->endElement();
    $w->endDocument();
    $w->flush();
    $back = simplexml_load_file($out);

    $outside = @(new DOMDocument())->load($event['outside']);
    $error = libxml_get_last_error();
    return [
        'titles' => $titles, 'sum' => $sum, 'french' => $french, 'elements' => $elements,
        'ids' => $ids, 'written' => [(string) $back['count'], (string) $back->total],
        'outside' => $outside, 'error' => $error ? trim($error->message) : null,
    ];
}
"#,
        ),
    ]);
    let event = serde_json::json!({ "outside": secret }).to_string();
    let out = host_run(root.path(), "src/index.php", &event, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(got["titles"], serde_json::json!(["Café", "Lamp"]), "{got}");
    assert_eq!(got["sum"], 19.75, "{got}");
    assert_eq!(got["french"], "Café", "{got}");
    assert_eq!(got["elements"], 7, "{got}");
    assert_eq!(got["ids"], serde_json::json!(["1", "2"]), "{got}");
    assert_eq!(got["written"], serde_json::json!(["2", "19.75"]), "{got}");
    assert_eq!(
        got["outside"], false,
        "a file outside the sandbox was read: {got}"
    );
    assert!(
        got["error"]
            .as_str()
            .unwrap_or("")
            .contains("failed to load"),
        "{got}"
    );
}

/// The extensions without a library of their own, and sodium, answer as their definitions say:
/// figures worked out by hand or by another implementation (Python's hashlib for BLAKE2b),
/// not by our PHP.
#[test]
fn sodium_iconv_bcmath_exif_and_fileinfo_answer_as_their_definitions_say() {
    let root = tree(&[(
        "src/index.php",
        r#"<?php
function index($event) {
    $pair = sodium_crypto_box_keypair();
    $sealed = sodium_crypto_box_seal('for your eyes', sodium_crypto_box_publickey($pair));
    $sign = sodium_crypto_sign_keypair();
    $signature = sodium_crypto_sign_detached('signed', sodium_crypto_sign_secretkey($sign));
    $finfo = new finfo(FILEINFO_MIME_TYPE);
    $png = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    file_put_contents(sys_get_temp_dir() . '/dot.png', $png);
    return [
        'blake2b' => bin2hex(sodium_crypto_generichash('abc')),
        'sealed' => sodium_crypto_box_seal_open($sealed, $pair),
        'verified' => sodium_crypto_sign_verify_detached($signature, 'signed', sodium_crypto_sign_publickey($sign)),
        'forged' => sodium_crypto_sign_verify_detached($signature, 'signeD', sodium_crypto_sign_publickey($sign)),
        'latin1' => bin2hex(iconv('UTF-8', 'ISO-8859-1', "caf\u{e9}")),
        'utf8' => iconv('ISO-8859-1', 'UTF-8', "caf\xe9"),
        'strlen' => iconv_strlen("caf\u{e9}", 'UTF-8'),
        'sum' => bcadd('12345678901234567890', '98765432109876543210'),
        'third' => bcdiv('1', '3', 20),
        'pow' => bcpow('2', '100'),
        'mime' => [$finfo->buffer($png), $finfo->buffer("%PDF-1.4\n"), $finfo->buffer('<?xml version="1.0"?><a/>')],
        'imagetype' => exif_imagetype(sys_get_temp_dir() . '/dot.png'),
        'tag' => exif_tagname(0x010F),
    ];
}
"#,
    )]);
    let out = host_run(root.path(), "src/index.php", "{}", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let blake2b = Command::new("python3")
        .args([
            "-c",
            "import hashlib; print(hashlib.blake2b(b'abc', digest_size=32).hexdigest())",
        ])
        .output()
        .expect("python3 computes the reference BLAKE2b");
    assert_eq!(got["blake2b"], stdout(&blake2b).trim(), "{got}");
    assert_eq!(got["sealed"], "for your eyes", "{got}");
    assert_eq!(got["verified"], true, "{got}");
    assert_eq!(got["forged"], false, "{got}");
    assert_eq!(got["latin1"], "636166e9", "{got}");
    assert_eq!(got["utf8"], "café", "{got}");
    assert_eq!(got["strlen"], 4, "{got}");
    assert_eq!(got["sum"], "111111111011111111100", "{got}");
    assert_eq!(got["third"], "0.33333333333333333333", "{got}");
    assert_eq!(got["pow"], "1267650600228229401496703205376", "{got}");
    assert_eq!(
        got["mime"],
        serde_json::json!(["image/png", "application/pdf", "text/xml"]),
        "{got}"
    );
    assert_eq!(got["imagetype"], 3, "IMAGETYPE_PNG: {got}");
    assert_eq!(got["tag"], "Make", "{got}");
}

/// gd in a handler: an image drawn in two colours, written as PNG, JPEG and WebP (lossless and
/// lossy) to a folder the host granted (`--dir`), read back with getimagesize and
/// imagecreatefrom*, and checked from outside with file(1); text in DejaVu Sans (Debian's
/// fonts-dejavu-core, deployed with the function) rendered by FreeType, all of its ink inside
/// the box gd reports, and twice as wide for twice the text or twice the size.
#[test]
fn gd_writes_reads_png_jpeg_and_webp_and_renders_truetype_text() {
    let font = Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf");
    assert!(
        font.is_file(),
        "{} missing: run scripts/setup.sh (fonts-dejavu-core)",
        font.display()
    );
    let root = tree(&[(
        "src/index.php",
        r#"<?php
function index($event) {
    $im = imagecreatetruecolor(64, 32);
    imagefilledrectangle($im, 0, 0, 31, 31, imagecolorallocate($im, 255, 0, 0));
    imagefilledrectangle($im, 32, 0, 63, 31, imagecolorallocate($im, 0, 0, 255));
    $written = [
        'a.png' => imagepng($im, '/out/a.png'),
        'a.jpg' => imagejpeg($im, '/out/a.jpg', 90),
        'lossless.webp' => imagewebp($im, '/out/lossless.webp', IMG_WEBP_LOSSLESS),
        'lossy.webp' => imagewebp($im, '/out/lossy.webp', 80),
    ];
    $read = [];
    foreach (['a.png' => 'imagecreatefrompng', 'a.jpg' => 'imagecreatefromjpeg',
              'lossless.webp' => 'imagecreatefromwebp', 'lossy.webp' => 'imagecreatefromwebp'] as $name => $open) {
        $size = getimagesize("/out/$name");
        $back = $open("/out/$name");
        $rgb = fn ($x, $y) => array_values(array_slice(imagecolorsforindex($back, imagecolorat($back, $x, $y)), 0, 3));
        $read[$name] = ['size' => [$size[0], $size[1], $size['mime']], 'left' => $rgb(8, 16), 'right' => $rgb(56, 16)];
    }

    // Black text on white; ink is any pixel that is not white.
    $font = __DIR__ . '/DejaVuSans.ttf';
    $render = function (float $points, string $text) use ($font) {
        $im = imagecreatetruecolor(400, 100);
        imagefilledrectangle($im, 0, 0, 399, 99, imagecolorallocate($im, 255, 255, 255));
        $box = imagettftext($im, $points, 0, 10, 70, imagecolorallocate($im, 0, 0, 0), $font, $text);
        [$left, $right] = [min($box[0], $box[6]), max($box[2], $box[4])];
        [$top, $bottom] = [min($box[5], $box[7]), max($box[1], $box[3])];
        $inside = $outside = 0;
        for ($y = 0; $y < 100; $y++) {
            for ($x = 0; $x < 400; $x++) {
                if ((imagecolorat($im, $x, $y) & 0xFFFFFF) === 0xFFFFFF) { continue; }
                $in = $x >= $left - 1 && $x <= $right + 1 && $y >= $top - 1 && $y <= $bottom + 1;
                $in ? $inside++ : $outside++;
            }
        }
        return ['width' => $right - $left, 'inside' => $inside, 'outside' => $outside,
            'bbox' => imagettfbbox($points, 0, $font, $text), 'box' => $box];
    };
    $info = gd_info();
    return ['written' => $written, 'read' => $read,
        'text' => $render(20, 'Lamp'), 'twice' => $render(20, 'LampLamp'), 'bigger' => $render(40, 'Lamp'),
        'support' => [$info['PNG Support'], $info['JPEG Support'], $info['WebP Support'], $info['FreeType Support']]];
}
"#,
    )]);
    std::fs::copy(font, root.path().join("src/DejaVuSans.ttf")).unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let grant = format!("{}::/out", out_dir.path().display());
    let out = host_run(root.path(), "src/index.php", "{}", &["--dir", &grant]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got: serde_json::Value =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    assert_eq!(
        got["support"],
        serde_json::json!([true, true, true, true]),
        "{got}"
    );
    let near = |rgb: &serde_json::Value, want: [i64; 3], tolerance: i64| {
        let rgb: Vec<i64> = rgb
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_i64().unwrap())
            .collect();
        rgb.iter()
            .zip(want)
            .all(|(c, w)| (c - w).abs() <= tolerance)
    };
    for (name, mime, tolerance) in [
        ("a.png", "image/png", 0),
        ("a.jpg", "image/jpeg", 8),
        ("lossless.webp", "image/webp", 0),
        ("lossy.webp", "image/webp", 8),
    ] {
        assert_eq!(got["written"][name], true, "{got}");
        let read = &got["read"][name];
        assert_eq!(
            read["size"],
            serde_json::json!([64, 32, mime]),
            "{name}: {got}"
        );
        assert!(
            near(&read["left"], [255, 0, 0], tolerance),
            "{name}: {read}"
        );
        assert!(
            near(&read["right"], [0, 0, 255], tolerance),
            "{name}: {read}"
        );
        // From outside the sandbox: what file(1) makes of the bytes gd wrote.
        let described = Command::new("file")
            .arg("-b")
            .arg(out_dir.path().join(name))
            .output()
            .expect("file(1) describes the images");
        let described = stdout(&described);
        let kind = match mime {
            "image/png" => "PNG image data, 64 x 32",
            "image/jpeg" => "JPEG image data",
            _ => "Web/P image",
        };
        assert!(described.contains(kind), "{name}: {described}");
        let size = if mime == "image/webp" {
            // file(1) gives no size for lossless WebP: read it from the header.
            let (w, h) = webp_size(&std::fs::read(out_dir.path().join(name)).unwrap());
            format!("{w}x{h}")
        } else {
            described.replace(" x ", "x")
        };
        assert!(size.contains("64x32"), "{name}: {described} ({size})");
    }

    let text = &got["text"];
    for render in ["text", "twice", "bigger"] {
        let r = &got[render];
        assert!(r["inside"].as_i64().unwrap() > 50, "{render}: {r}");
        assert_eq!(r["outside"], 0, "{render}: ink outside the box: {r}");
        // imagettftext's box is imagettfbbox's moved to where the text was drawn (10, 70).
        let moved: Vec<i64> = r["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_i64().unwrap() + if i % 2 == 0 { 10 } else { 70 })
            .collect();
        assert_eq!(r["box"], serde_json::json!(moved), "{render}: {r}");
    }
    let width = |r: &serde_json::Value| r["width"].as_f64().unwrap();
    for wider in ["twice", "bigger"] {
        let ratio = width(&got[wider]) / width(text);
        assert!((1.8..2.2).contains(&ratio), "{wider}: {ratio}: {got}");
    }
}

/// The width and height in a WebP file's header: its VP8 (lossy) or VP8L (lossless) chunk.
fn webp_size(bytes: &[u8]) -> (u32, u32) {
    assert!(
        bytes.len() > 30 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP",
        "not WebP"
    );
    let le16 = |i: usize| u32::from(bytes[i]) | (u32::from(bytes[i + 1]) << 8);
    match &bytes[12..16] {
        // Frame tag (3 bytes), start code 9d 01 2a, then 14-bit width and height.
        b"VP8 " => (le16(26) & 0x3fff, le16(28) & 0x3fff),
        // Signature 0x2f, then width - 1 and height - 1 in 14 bits each.
        b"VP8L" => {
            let bits = u32::from_le_bytes(bytes[21..25].try_into().unwrap());
            ((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1)
        }
        other => panic!("unexpected WebP chunk {other:?}"),
    }
}

/// ZipArchive in a handler reads an archive Python's zipfile wrote into a granted folder, and
/// writes one there (deflated, stored, a folder, an AES-encrypted entry) that zipfile then
/// reads from outside.
#[test]
fn zip_archives_written_by_python_open_in_php_and_php_s_open_in_python() {
    let shared = tempfile::tempdir().unwrap();
    let python = |code: &str| {
        let out = Command::new("python3")
            .arg("-c")
            .arg(code)
            .arg(shared.path())
            .output()
            .expect("python3 runs");
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str::<serde_json::Value>(&stdout(&out))
            .unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
    };
    let made = python(
        r#"
import hashlib, json, sys, zipfile
files = {'hello.txt': b'hello from python\n' * 50, 'dir/data.bin': bytes(range(256)) * 4}
with zipfile.ZipFile(sys.argv[1] + '/from-python.zip', 'w') as z:
    z.writestr('hello.txt', files['hello.txt'], compress_type=zipfile.ZIP_DEFLATED)
    z.writestr('dir/data.bin', files['dir/data.bin'], compress_type=zipfile.ZIP_STORED)
print(json.dumps({name: hashlib.md5(data).hexdigest() for name, data in files.items()}))
"#,
    );
    let root = tree(&[(
        "src/index.php",
        r#"<?php
function index($event) {
    $in = new ZipArchive();
    $opened = $in->open('/shared/from-python.zip');
    $read = [];
    for ($i = 0; $i < $in->numFiles; $i++) {
        $name = $in->getNameIndex($i);
        $read[$name] = md5($in->getFromName($name));
    }
    $extracted = $in->extractTo('/tmp/unpacked');
    $in->close();

    $out = new ZipArchive();
    $created = $out->open('/shared/from-php.zip', ZipArchive::CREATE | ZipArchive::EXCL);
    $out->addFromString('readme.txt', str_repeat("lamp\n", 1000));
    $out->setCompressionName('readme.txt', ZipArchive::CM_DEFLATE, 9);
    $out->addFromString('raw.txt', 'stored as is');
    $out->setCompressionName('raw.txt', ZipArchive::CM_STORE);
    $out->addEmptyDir('empty');
    $out->addFromString('secret.txt', 'only with the password');
    $out->setEncryptionName('secret.txt', ZipArchive::EM_AES_256, 'lamp');
    $closed = $out->close();

    $again = new ZipArchive();
    $again->open('/shared/from-php.zip');
    $again->setPassword('lamp');
    return ['opened' => $opened, 'read' => $read, 'extracted' => $extracted,
        'unpacked' => md5_file('/tmp/unpacked/hello.txt'), 'created' => $created, 'closed' => $closed,
        'secret' => $again->getFromName('secret.txt'), 'readme' => md5(str_repeat("lamp\n", 1000)),
        'libzip' => ZipArchive::LIBZIP_VERSION];
}
"#,
    )]);
    let grant = format!("{}::/shared", shared.path().display());
    let out = host_run(root.path(), "src/index.php", "{}", &["--dir", &grant]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got: serde_json::Value =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    assert_eq!(got["opened"], true, "{got}");
    assert_eq!(got["read"], made, "{got}");
    assert_eq!(got["extracted"], true, "{got}");
    assert_eq!(got["unpacked"], made["hello.txt"], "{got}");
    assert_eq!(got["created"], true, "{got}");
    assert_eq!(got["closed"], true, "{got}");
    assert_eq!(got["secret"], "only with the password", "{got}");
    assert_eq!(got["libzip"], "1.7.3", "{got}");

    let seen = python(
        r#"
import hashlib, json, sys, zipfile
with zipfile.ZipFile(sys.argv[1] + '/from-php.zip') as z:
    info = {i.filename: {'method': i.compress_type, 'encrypted': bool(i.flag_bits & 1), 'size': i.file_size}
            for i in z.infolist()}
    info['readme.txt']['md5'] = hashlib.md5(z.read('readme.txt')).hexdigest()
    info['raw.txt']['text'] = z.read('raw.txt').decode()
print(json.dumps(info))
"#,
    );
    let names: Vec<&String> = seen.as_object().unwrap().keys().collect();
    assert_eq!(
        names,
        ["empty/", "raw.txt", "readme.txt", "secret.txt"],
        "{seen}"
    );
    assert_eq!(seen["readme.txt"]["method"], 8, "deflate: {seen}");
    assert_eq!(seen["readme.txt"]["md5"], got["readme"], "{seen}");
    assert_eq!(seen["readme.txt"]["size"], 5000, "{seen}");
    assert_eq!(seen["raw.txt"]["method"], 0, "stored: {seen}");
    assert_eq!(seen["raw.txt"]["text"], "stored as is", "{seen}");
    assert_eq!(seen["secret.txt"]["encrypted"], true, "{seen}");
    assert_eq!(seen["secret.txt"]["method"], 99, "WinZip AES: {seen}");
}
