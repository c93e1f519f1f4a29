//! MySQL from sandboxed PHP: handlers using PDO (`pdo_mysql`) and `mysqli` over mysqlnd, run by
//! the real `host` binary (`host run`, `host serve`, the bootstrap against the mock Runtime
//! API) against the tests' private MariaDB (tests/it/mariadb.rs), reached through
//! `--allow-outbound`. What the PHP sees is checked, and what reached the server is checked
//! with the server's own client.
//!
//! These need `make php` with mysqlnd, mysqli, pdo_mysql and openssl in `php.wasm`; without
//! them they fail with PHP's own error (`could not find driver`), they do not skip.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use mock_runtime::{Event, MockRuntime, Outcome};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::bootstrap::Function;
use crate::mariadb::{DATABASE, MariaDb, TLS_USER, USER, mariadb};
use crate::php::{host_run, php_cwasm, task};
use crate::util::{error_json, stderr, stdout};
use crate::web::{Serve, client, free_port};

/// The handlers, one PHP function each (`host run --function NAME`). Connection settings come
/// in the event's `db` (`host`, `port`, `dbname`, `user`, `password`) or, as a deployed
/// function has them, from the environment (`DB_HOST`, ...); `ssl_ca` asks for TLS.
const HANDLERS: &str = r#"<?php
function settings(array $event): array {
    return $event['db'] ?? [
        'host' => getenv('DB_HOST'), 'port' => (int) getenv('DB_PORT'),
        'dbname' => getenv('DB_NAME'), 'user' => getenv('DB_USER'),
        'password' => getenv('DB_PASSWORD'),
    ];
}

function pdo_connect(array $event): PDO {
    $db = settings($event);
    $options = [
        PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
        PDO::ATTR_EMULATE_PREPARES => false,    // the server's prepared statements
        PDO::ATTR_TIMEOUT => 20,               // connect timeout, seconds
    ];
    if (isset($event['ssl_ca'])) {
        $options[PDO::MYSQL_ATTR_SSL_CA] = $event['ssl_ca'];
        $options[PDO::MYSQL_ATTR_SSL_VERIFY_SERVER_CERT] = true;
    }
    $dsn = "mysql:host={$db['host']};port={$db['port']};dbname={$db['dbname']};charset=utf8mb4";
    return new PDO($dsn, $db['user'], $db['password'], $options);
}

function mysqli_connect_to(array $event): mysqli {
    $db = settings($event);
    mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
    $m = mysqli_init();
    $m->options(MYSQLI_OPT_CONNECT_TIMEOUT, 20);
    $m->options(MYSQLI_OPT_INT_AND_FLOAT_NATIVE, true);   // ints as PDO gives them
    $flags = 0;
    if (isset($event['ssl_ca'])) {
        $m->ssl_set(null, null, $event['ssl_ca'], null, null);
        $m->options(MYSQLI_OPT_SSL_VERIFY_SERVER_CERT, true);
        $flags = MYSQLI_CLIENT_SSL;
    }
    $m->real_connect($db['host'], $db['user'], $db['password'], $db['dbname'], $db['port'], null, $flags);
    $m->set_charset('utf8mb4');
    return $m;
}

// What the server said it is, to PDO and to mysqli (a connection each; tests/it/mysql_auth.rs).
function server_info($event) {
    return [
        'pdo' => pdo_connect($event)->getAttribute(PDO::ATTR_SERVER_VERSION),
        'mysqli' => mysqli_connect_to($event)->server_info,
    ];
}

// Who the server says we are, over what, and the seed table.
function whoami($event) {
    $pdo = pdo_connect($event);
    return [
        'user' => $pdo->query('SELECT CURRENT_USER()')->fetchColumn(),
        'tls' => $pdo->query("SHOW SESSION STATUS LIKE 'Ssl_version'")->fetch(PDO::FETCH_NUM)[1],
        'items' => $pdo->query('SELECT name FROM items ORDER BY id')->fetchAll(PDO::FETCH_COLUMN),
    ];
}

function whoami_mysqli($event) {
    $m = mysqli_connect_to($event);
    return [
        'user' => $m->query('SELECT CURRENT_USER()')->fetch_row()[0],
        'tls' => $m->query("SHOW SESSION STATUS LIKE 'Ssl_version'")->fetch_row()[1],
        'items' => array_column($m->query('SELECT name FROM items ORDER BY id')->fetch_all(), 0),
    ];
}

// Insert $event['rows'] ([name, qty] each), read the first back, add 10 to the second's qty,
// delete the third, delete a name that is not there; the ids, counts and rows seen.
function crud_pdo($event) {
    $pdo = pdo_connect($event);
    [$first, $second, $third] = array_column($event['rows'], 0);
    $insert = $pdo->prepare('INSERT INTO items (name, qty) VALUES (:name, :qty)');
    $ids = [];
    foreach ($event['rows'] as [$name, $qty]) {
        $insert->execute(['name' => $name, 'qty' => $qty]);
        $ids[] = (int) $pdo->lastInsertId();
    }
    $select = $pdo->prepare('SELECT id, name, qty FROM items WHERE name = ?');
    $select->execute([$first]);
    $read = $select->fetch(PDO::FETCH_ASSOC);
    $update = $pdo->prepare('UPDATE items SET qty = qty + ? WHERE name = ?');
    $update->execute([10, $second]);
    $delete = $pdo->prepare('DELETE FROM items WHERE name = ?');
    $delete->execute([$third]);
    $deleted = $delete->rowCount();
    $delete->execute(['nobody']);
    return [
        'ids' => $ids, 'read' => $read, 'updated' => $update->rowCount(),
        'deleted' => [$deleted, $delete->rowCount()],
        'rows' => $pdo->query('SELECT id, name, qty FROM items ORDER BY id')->fetchAll(PDO::FETCH_ASSOC),
    ];
}

function crud_mysqli($event) {
    $m = mysqli_connect_to($event);
    [$first, $second, $third] = array_column($event['rows'], 0);
    $insert = $m->prepare('INSERT INTO items (name, qty) VALUES (?, ?)');
    $ids = [];
    foreach ($event['rows'] as [$name, $qty]) {
        $insert->bind_param('si', $name, $qty);
        $insert->execute();
        $ids[] = $insert->insert_id;
    }
    $select = $m->prepare('SELECT id, name, qty FROM items WHERE name = ?');
    $select->bind_param('s', $first);
    $select->execute();
    $read = $select->get_result()->fetch_assoc();
    $update = $m->prepare('UPDATE items SET qty = qty + ? WHERE name = ?');
    $add = 10;
    $update->bind_param('is', $add, $second);
    $update->execute();
    $delete = $m->prepare('DELETE FROM items WHERE name = ?');
    $delete->bind_param('s', $name);
    $name = $third;
    $delete->execute();
    $deleted = $delete->affected_rows;
    $name = 'nobody';
    $delete->execute();
    return [
        'ids' => $ids, 'read' => $read, 'updated' => $update->affected_rows,
        'deleted' => [$deleted, $delete->affected_rows],
        'rows' => $m->query('SELECT id, name, qty FROM items ORDER BY id')->fetch_all(MYSQLI_ASSOC),
    ];
}

// A rolled-back transaction, one rolled back on a failed statement, one committed; what this
// session and another one saw along the way.
function transaction($event) {
    $pdo = pdo_connect($event);
    $other = pdo_connect($event);
    $count = fn (PDO $session) => (int) $session->query('SELECT COUNT(*) FROM items')->fetchColumn();
    $insert = $pdo->prepare('INSERT INTO items (name, qty) VALUES (?, ?)');
    $seen = [];
    $pdo->beginTransaction();
    $insert->execute(['rolled back', 1]);
    $seen['inside'] = $count($pdo);
    $seen['other session'] = $count($other);
    $pdo->rollBack();
    $seen['after rollback'] = $count($pdo);
    try {
        $pdo->beginTransaction();
        $insert->execute(['also rolled back', 2]);
        $insert->execute(['also rolled back', 3]);     // names are unique
        $pdo->commit();
    } catch (PDOException $e) {
        $pdo->rollBack();
        $seen['failed statement'] = $e->getCode();
    }
    $pdo->beginTransaction();
    $insert->execute(['committed', 4]);
    $pdo->commit();
    $seen['other session after commit'] = $count($other);
    $seen['in transaction'] = $pdo->inTransaction();
    return $seen;
}

// Every row of `big`, in id order: how many, and the SHA-256 of "id:name\n" for each.
function big_pdo($event) {
    $rows = pdo_connect($event)->query('SELECT id, name FROM big ORDER BY id');   // buffered
    return checksum(fn () => $rows->fetch(PDO::FETCH_NUM));
}

function big_mysqli($event) {
    // Streamed: the connection must outlive the result (freed first, it would cut it off).
    $m = mysqli_connect_to($event);
    $rows = $m->query('SELECT id, name FROM big ORDER BY id', MYSQLI_USE_RESULT);
    return checksum(fn () => $rows->fetch_row());
}

function checksum(callable $next): array {
    $hash = hash_init('sha256');
    $count = 0;
    while ($row = $next()) {
        hash_update($hash, "$row[0]:$row[1]\n");
        $count++;
    }
    return ['count' => $count, 'sha256' => hash_final($hash)];
}

// One row into `hits` for ($event['client'], $event['seq']), with when this invocation started
// and when the server inserted it; the new id.
function insert($event) {
    $started = microtime(true);
    $pdo = pdo_connect($event);
    $pdo->prepare('INSERT INTO hits (client, seq, started, inserted)
        VALUES (?, ?, ?, UNIX_TIMESTAMP(NOW(6)))')
        ->execute([$event['client'], $event['seq'], $started]);
    return (int) $pdo->lastInsertId();
}
"#;

/// The web app's front controller (`public/index.php`): the handlers as pages, settings from
/// the environment (`host serve --env`).
const PAGE: &str = r#"<?php
require __DIR__ . '/../index.php';
header('Content-Type: application/json');
switch ($_GET['do'] ?? '') {
    case 'insert':
        echo insert(['client' => (int) $_GET['client'], 'seq' => (int) $_GET['seq']]);
        break;
    case 'silent':
        $db = settings([]);
        $db['port'] = (int) getenv('SILENT_PORT');
        pdo_connect(['db' => $db]);
        echo 'connected';
        break;
    default:
        echo json_encode(whoami([]));
}
"#;

/// A task root holding the handlers (`index.php`) and the page (`public/index.php`).
fn app() -> tempfile::TempDir {
    task(&[("index.php", HANDLERS), ("public/index.php", PAGE)])
}

/// `host run` of handler `function` on `event` with `args`; the elapsed time too.
pub(crate) fn run(function: &str, event: &Value, args: &[&str]) -> (Output, Duration) {
    let app = app();
    let mut all = vec!["--function", function];
    all.extend_from_slice(args);
    php_cwasm(); // compiled once per process: not part of any invocation's time
    let started = Instant::now();
    let out = host_run(app.path(), "index.php", &event.to_string(), &all);
    (out, started.elapsed())
}

/// The handler's result as JSON, or a panic with the log.
pub(crate) fn result(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "the handler failed{}:\n{}",
        missing_extensions(out),
        stderr(out)
    );
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

/// The handler's error JSON, checking it failed with `error_type`.
pub(crate) fn failure(out: &Output, error_type: &str) -> Value {
    let error = error_json(out);
    assert_eq!(
        error["errorType"],
        error_type,
        "{}\n{}",
        missing_extensions(out),
        stderr(out)
    );
    error
}

/// What to do when PHP's error says php.wasm lacks the extensions these tests use.
fn missing_extensions(out: &Output) -> &'static str {
    // Unescaped: the message is in the log as text and in the error JSON.
    let log = stderr(out).replace('\\', "");
    let missing = [
        "could not find driver",
        "Class \"PDO\" not found",
        "Class \"mysqli\" not found",
        "undefined function mysqli_",
    ];
    if missing.iter().any(|m| log.contains(m)) {
        " (php.wasm lacks pdo_mysql or mysqli: rebuild it with `make php`, guests/php/build.sh)"
    } else {
        ""
    }
}

/// `items` in a fresh database `lamp_NAME`: unique names, as an application would have them.
pub(crate) fn items_database(db: &MariaDb, name: &str) -> String {
    let database = db.database(name).unwrap();
    db.sql(
        &database,
        "CREATE TABLE items (
            id INT AUTO_INCREMENT PRIMARY KEY,
            name VARCHAR(100) NOT NULL UNIQUE,
            qty INT NOT NULL
        )",
    )
    .unwrap();
    database
}

fn crud(api: &str) {
    let db = mariadb();
    let database = items_database(db, &format!("crud_{api}"));
    // A quote, a multi-byte name and an injection attempt: parameters, never SQL text.
    let rows = json!([
        ["apple", 1],
        ["O'Brien \"🍐\" é", 2],
        ["x'); DROP TABLE items; --", 3]
    ]);
    let event = json!({"db": db.login(&database, USER), "rows": rows});
    let (out, _) = run(
        &format!("crud_{api}"),
        &event,
        &["--allow-outbound", &db.address()],
    );
    let got = result(&out);
    let ids: Vec<i64> = serde_json::from_value(got["ids"].clone()).unwrap();
    assert_eq!(ids.len(), 3, "{got}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{got}");
    assert_eq!(
        got["read"],
        json!({"id": ids[0], "name": "apple", "qty": 1}),
        "{got}"
    );
    assert_eq!(got["updated"], 1, "{got}");
    assert_eq!(got["deleted"], json!([1, 0]), "{got}");
    assert_eq!(
        got["rows"],
        json!([
            {"id": ids[0], "name": "apple", "qty": 1},
            {"id": ids[1], "name": "O'Brien \"🍐\" é", "qty": 12},
        ]),
        "{got}"
    );
    // What the server holds, by its own client.
    assert_eq!(
        db.sql(&database, "SELECT id, name, qty FROM items ORDER BY id")
            .unwrap(),
        format!("{}\tapple\t1\n{}\tO'Brien \"🍐\" é\t12\n", ids[0], ids[1])
    );
}

#[test]
fn crud_with_prepared_statements_through_pdo() {
    crud("pdo");
}

#[test]
fn crud_with_prepared_statements_through_mysqli() {
    crud("mysqli");
}

#[test]
fn a_transaction_rolls_back_and_commits() {
    let db = mariadb();
    let database = items_database(db, "transaction");
    let event = json!({"db": db.login(&database, USER)});
    let (out, _) = run("transaction", &event, &["--allow-outbound", &db.address()]);
    assert_eq!(
        result(&out),
        json!({
            "inside": 1,
            "other session": 0,
            "after rollback": 0,
            "failed statement": "23000",
            "other session after commit": 1,
            "in transaction": false,
        })
    );
    assert_eq!(
        db.sql(&database, "SELECT name, qty FROM items").unwrap(),
        "committed\t4\n"
    );
}

/// 10,000 rows inserted by the test come back complete and in order, buffered (PDO) and
/// streamed (mysqli's `MYSQLI_USE_RESULT`).
#[test]
fn ten_thousand_rows_come_back_whole() {
    const ROWS: usize = 10_000;
    let db = mariadb();
    let database = db.database("big").unwrap();
    db.sql(
        &database,
        "CREATE TABLE big (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL)",
    )
    .unwrap();
    let name = |i: usize| format!("row {i} é {:08x}", (i as u64 * 2_654_435_761) % (1 << 32));
    let mut sql = String::new();
    let mut expected = Sha256::new();
    for chunk in (1..=ROWS).collect::<Vec<_>>().chunks(1000) {
        let values: Vec<String> = chunk
            .iter()
            .map(|&i| format!("({i}, '{}')", name(i)))
            .collect();
        sql.push_str(&format!("INSERT INTO big VALUES {};\n", values.join(",")));
    }
    for i in 1..=ROWS {
        expected.update(format!("{i}:{}\n", name(i)));
    }
    db.sql(&database, &sql).unwrap();
    let expected = json!({"count": ROWS, "sha256": hex(&expected.finalize())});
    for api in ["pdo", "mysqli"] {
        let event = json!({"db": db.login(&database, USER)});
        let (out, took) = run(
            &format!("big_{api}"),
            &event,
            &["--allow-outbound", &db.address()],
        );
        assert_eq!(result(&out), expected, "{api}");
        eprintln!("{ROWS} rows through {api} in {took:?} (host run, all of it)");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_wrong_password_is_the_server_s_access_denied_as_the_handler_s_error() {
    let db = mariadb();
    let mut login = db.login(DATABASE, USER);
    login["password"] = json!("wrong");
    let (out, _) = run(
        "whoami",
        &json!({"db": login}),
        &["--allow-outbound", &db.address()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let error = failure(&out, "PDOException");
    assert_eq!(
        error["errorMessage"],
        "SQLSTATE[HY000] [1045] Access denied for user 'lamp'@'127.0.0.1' (using password: YES)"
    );
}

/// An event with the ordinary user's login, but for `port` on 127.0.0.1, where some other
/// server (or none) is.
fn to_port(db: &MariaDb, port: u16) -> Value {
    let mut login = db.login(DATABASE, USER);
    login["port"] = json!(port);
    json!({"db": login})
}

/// Nothing listens on the port: refused at once, not after the 20 s connect timeout.
#[test]
fn an_unreachable_port_fails_fast_with_a_connection_error() {
    let db = mariadb();
    let port = free_port();
    let target = format!("127.0.0.1:{port}");
    let (out, took) = run(
        "whoami",
        &to_port(db, port),
        &["--allow-outbound", &target, "--timeout", "30"],
    );
    let error = failure(&out, "PDOException");
    let message = error["errorMessage"].as_str().unwrap();
    assert!(
        message.starts_with("SQLSTATE[HY000] [2002] ") && message.contains("refused"),
        "{message}"
    );
    assert!(
        took < Duration::from_secs(5),
        "took {took:?} to fail (the connect timeout is 20 s)"
    );
}

/// The instance is up, but no rule allows it: PHP gets a connection error, and the host's WARN
/// names the destination and the flag that would allow it.
#[test]
fn a_destination_not_allowed_is_a_connection_error_and_a_warning() {
    let db = mariadb();
    let (out, _) = run("whoami", &json!({"db": db.login(DATABASE, USER)}), &[]);
    let error = failure(&out, "PDOException");
    let message = error["errorMessage"].as_str().unwrap();
    assert!(message.starts_with("SQLSTATE[HY000] [2002] "), "{message}");
    let log = stderr(&out);
    let warning = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains(&db.address()))
        .unwrap_or_else(|| panic!("no WARN naming {}:\n{log}", db.address()));
    assert!(warning.contains("--allow-outbound"), "{warning}");
}

/// The user whose account requires TLS gets in over TLS, the server's certificate verified
/// against the CA mounted with `--dir`, through PDO and mysqli; in the clear it is refused.
#[test]
fn the_tls_user_connects_over_tls_and_is_refused_without() {
    let db = mariadb();
    let mount = format!("{}::/certs", db.ca_dir().display());
    let event = json!({"db": db.login(DATABASE, TLS_USER), "ssl_ca": "/certs/ca.pem"});
    for function in ["whoami", "whoami_mysqli"] {
        let (out, _) = run(
            function,
            &event,
            &["--allow-outbound", &db.address(), "--dir", &mount],
        );
        let got = result(&out);
        assert_eq!(got["user"], "lamp_tls@%", "{function}: {got}");
        assert!(
            got["tls"].as_str().unwrap().starts_with("TLSv1."),
            "{function}: {got}"
        );
        assert_eq!(got["items"], json!(["apple", "pear"]), "{function}: {got}");
    }
    let (out, _) = run(
        "whoami",
        &json!({"db": db.login(DATABASE, TLS_USER)}),
        &["--allow-outbound", &db.address()],
    );
    let error = failure(&out, "PDOException");
    assert_eq!(
        error["errorMessage"],
        "SQLSTATE[HY000] [1045] Access denied for user 'lamp_tls'@'127.0.0.1' (using password: YES)"
    );
}

/// mysqlnd waiting for the greeting of a server that accepted the connection and never
/// speaks: the invocation ends at its 2 s deadline, not mysqlnd's (a day by default).
#[test]
fn a_server_that_never_answers_ends_at_the_deadline() {
    let db = mariadb();
    let silent = crate::net::server(true);
    let target = format!("127.0.0.1:{silent}");
    let (out, took) = run(
        "whoami",
        &to_port(db, silent),
        &["--allow-outbound", &target, "--timeout", "2"],
    );
    failure(&out, "Sandbox.Timedout");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "ended after {took:?}, not at its 2 s deadline"
    );
}

/// The same through `host serve`: a 504 at the deadline, and the next request is served.
#[test]
fn serve_answers_504_for_a_silent_server_then_serves_the_next_request() {
    let db = mariadb();
    let silent = crate::net::server(true);
    let (_app, serve) = serve(
        db,
        DATABASE,
        &[
            "--timeout",
            "2",
            "--allow-outbound",
            "127.0.0.1:*",
            "--env",
            &format!("SILENT_PORT={silent}"),
        ],
    );
    let http = client();
    let started = Instant::now();
    let response = http.get(serve.url("/?do=silent")).send().unwrap();
    let took = started.elapsed();
    assert_eq!(response.status(), 504, "{}", serve.log());
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "504 after {took:?}"
    );
    let response = http.get(serve.url("/")).send().unwrap();
    assert_eq!(response.status(), 200, "{}", serve.log());
    let got: Value = serde_json::from_str(&response.text().unwrap()).unwrap();
    assert_eq!(got["user"], "lamp@%", "{got}");
}

/// And through the bootstrap: `Sandbox.Timedout` for that event, the next one answered.
#[test]
fn the_bootstrap_times_out_on_a_silent_server_then_serves_the_next_event() {
    let db = mariadb();
    let silent = crate::net::server(true);
    let mock = MockRuntime::start();
    let (function, mut cmd) = php_function(&mock, "whoami");
    cmd.env("LAMP_ALLOW_OUTBOUND", "127.0.0.1:*");
    let runtime = function.start(cmd);
    mock.push(Event::new(
        "silent",
        to_port(db, silent).to_string(),
        Duration::from_secs(2),
    ));
    mock.push(Event::new(
        "after",
        json!({"db": db.login(DATABASE, USER)}).to_string(),
        Duration::from_secs(20),
    ));
    let outcomes = mock.wait_for_outcomes(2, Duration::from_secs(60));
    assert!(
        matches!(&outcomes["silent"], Outcome::Error { error_type: Some(t), .. } if t == "Sandbox.Timedout"),
        "{:?}\n{}",
        outcomes.get("silent"),
        runtime.stderr()
    );
    let Outcome::Response(body) = &outcomes["after"] else {
        panic!("{:?}\n{}", outcomes["after"], runtime.stderr())
    };
    let got: Value = serde_json::from_str(body).unwrap();
    assert_eq!(got["user"], "lamp@%", "{got}");
}

/// A function for the bootstrap with the handlers in its task root, and its command for
/// `_HANDLER=index.FUNCTION` with the precompiled PHP runtime.
fn php_function(mock: &MockRuntime, function: &str) -> (Function, Command) {
    let php = Function::echo();
    std::fs::write(php.task.path().join("index.php"), HANDLERS).unwrap();
    let mut cmd = php.command(mock, &format!("index.{function}"));
    cmd.env("LAMP_PHP_RUNTIME", php_cwasm());
    (php, cmd)
}

/// `host serve` of the app's `public` folder with `args`, and the settings to reach
/// `database` as the ordinary user in its environment.
fn serve(db: &MariaDb, database: &str, args: &[&str]) -> (tempfile::TempDir, Serve) {
    let app = app();
    let env: Vec<String> = settings_env(db, database)
        .into_iter()
        .flat_map(|(k, v)| ["--env".to_string(), format!("{k}={v}")])
        .collect();
    let args: Vec<&str> = args
        .iter()
        .copied()
        .chain(env.iter().map(String::as_str))
        .collect();
    let serve = Serve::start(&app.path().join("public"), &args);
    (app, serve)
}

fn settings_env(db: &MariaDb, database: &str) -> Vec<(&'static str, String)> {
    vec![
        ("DB_HOST", "127.0.0.1".into()),
        ("DB_PORT", db.port().to_string()),
        ("DB_NAME", database.into()),
        ("DB_USER", USER.into()),
        ("DB_PASSWORD", db.password(USER).into()),
    ]
}

const CLIENTS: usize = 8;
const INSERTS: usize = 1000;

/// `hits` in a fresh database `lamp_NAME`, deliberately without a unique key: a duplicate
/// insert shows as a second row.
fn hits_database(db: &MariaDb, name: &str) -> String {
    let database = db.database(name).unwrap();
    db.sql(
        &database,
        "CREATE TABLE hits (
            id INT AUTO_INCREMENT PRIMARY KEY,
            client INT NOT NULL,
            seq INT NOT NULL,
            started DOUBLE NOT NULL,
            inserted DOUBLE NOT NULL
        )",
    )
    .unwrap();
    database
}

/// Every (client, seq) of the 1,000 inserts is in `hits` exactly once, and some invocations
/// overlapped (one started before another's row was in).
fn assert_all_inserted_once(db: &MariaDb, database: &str) {
    let rows = db
        .sql(
            database,
            "SELECT client, seq, started, inserted FROM hits ORDER BY client, seq",
        )
        .unwrap();
    let mut seen: Vec<(usize, usize)> = Vec::new();
    let mut spans: Vec<(f64, f64)> = Vec::new();
    for line in rows.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        seen.push((fields[0].parse().unwrap(), fields[1].parse().unwrap()));
        spans.push((fields[2].parse().unwrap(), fields[3].parse().unwrap()));
    }
    let expected: Vec<(usize, usize)> = (0..CLIENTS)
        .flat_map(|c| (0..INSERTS / CLIENTS).map(move |s| (c, s)))
        .collect();
    assert_eq!(seen.len(), INSERTS, "rows in hits");
    assert_eq!(seen, expected, "every (client, seq) once");
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(
        spans.windows(2).any(|w| w[1].0 < w[0].1),
        "no two invocations overlapped"
    );
}

/// 8 clients hitting an inserting page through `host serve --concurrency 8`.
#[test]
fn a_thousand_inserts_from_eight_concurrent_requests_through_serve() {
    let db = mariadb();
    let database = hits_database(db, "serve_hits");
    let (_app, serve) = serve(
        db,
        &database,
        &["--concurrency", "8", "--allow-outbound", &db.address()],
    );
    let started = Instant::now();
    // Each client stops at its first failure; the first of those is reported, with the log.
    let failures: Vec<String> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let serve = &serve;
                scope.spawn(move || {
                    let http = client();
                    for s in 0..INSERTS / CLIENTS {
                        let url = serve.url(&format!("/?do=insert&client={c}&seq={s}"));
                        let response = http.get(url).send().map_err(|e| e.to_string())?;
                        let status = response.status();
                        if status != 200 {
                            let body = response.text().unwrap_or_default();
                            return Err(format!("client {c} seq {s}: {status} {body}"));
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        clients
            .into_iter()
            .filter_map(|client| client.join().unwrap().err())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{}
{}",
        failures[0],
        serve.log()
    );
    eprintln!(
        "{INSERTS} inserting requests through serve in {:?}",
        started.elapsed()
    );
    assert_all_inserted_once(db, &database);
}

/// 1,000 inserting events through the bootstrap with `AWS_LAMBDA_MAX_CONCURRENCY=8`.
#[test]
fn a_thousand_inserts_from_eight_concurrent_invocations_through_the_bootstrap() {
    let db = mariadb();
    let database = hits_database(db, "bootstrap_hits");
    let mock = MockRuntime::start();
    let (function, mut cmd) = php_function(&mock, "insert");
    cmd.env("AWS_LAMBDA_MAX_CONCURRENCY", CLIENTS.to_string())
        .env("LAMP_ALLOW_OUTBOUND", db.address())
        .envs(settings_env(db, &database));
    let runtime = function.start(cmd);
    let started = Instant::now();
    for c in 0..CLIENTS {
        for s in 0..INSERTS / CLIENTS {
            mock.push(Event::new(
                format!("insert-{c}-{s}"),
                json!({"client": c, "seq": s}).to_string(),
                Duration::from_secs(30),
            ));
        }
    }
    let outcomes = mock.wait_for_outcomes(INSERTS, Duration::from_secs(300));
    eprintln!(
        "{INSERTS} inserting events through the bootstrap in {:?}",
        started.elapsed()
    );
    let failed: Vec<_> = outcomes
        .iter()
        .filter(|(_, o)| !matches!(o, Outcome::Response(_)))
        .take(3)
        .collect();
    assert!(failed.is_empty(), "{failed:?}\n{}", runtime.stderr());
    assert_eq!(outcomes.len(), INSERTS);
    assert_all_inserted_once(db, &database);
}
