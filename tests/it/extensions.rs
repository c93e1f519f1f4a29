//! The extensions built with C libraries, through the real binary: zlib, SQLite (pdo_sqlite,
//! sqlite3) in the function's `/tmp`, OpenSSL with the CA certificates the host shows PHP
//! guests as `/etc/ssl` (MySQL, which needs a server, is in `mysql.rs`), libxml2's family (dom,
//! simplexml, xml, xmlreader, xmlwriter) and sodium; and those without one (iconv, bcmath,
//! exif, fileinfo). PHP's own tests of each run in guests/php/run-phpt.sh; these check what a
//! handler sees: the sandbox's files, the snapshot's random state.

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
        "dom",
        "exif",
        "fileinfo",
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

fn fetch_https(root: &Path, event: serde_json::Value, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--event".to_string(), event.to_string()];
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = host();
    cmd.arg("run")
        .arg(root.join("src/index.php"))
        .arg("--php-runtime")
        .arg(php_cwasm())
        .args(&args);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

#[test]
fn https_streams_verify_the_peer_against_the_ca_bundle_or_the_ca_given() {
    let pki = Pki::new();
    let server = TlsServer::start(&pki);
    let root = tree(&[("src/index.php", HTTPS_HANDLER)]);
    let url = format!("https://127.0.0.1:{}/", server.port);
    let allow = format!("127.0.0.1:{}", server.port);
    let ca_dir = format!("{}::/ca", pki.dir.path().display());

    // The bundle (Mozilla's roots) does not know the test CA: verification fails.
    let result = fetch_https(
        root.path(),
        serde_json::json!({ "url": url }),
        &["--allow-outbound", &allow],
    );
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
    let result = fetch_https(
        root.path(),
        serde_json::json!({ "url": url, "cafile": "/ca/ca.pem" }),
        &["--allow-outbound", &allow, "--dir", &ca_dir],
    );
    assert!(
        result["body"]
            .as_str()
            .unwrap_or_default()
            .contains("s_server"),
        "{result}"
    );
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
