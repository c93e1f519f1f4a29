//! The tests' private MariaDB (`mariadb()`): one instance per test process, the shared one of
//! `test-mariadb` (tests/mariadb: a temporary datadir, a free loopback port, TLS with a
//! throwaway CA, the users [`USER`] and [`TLS_USER`]), started by the first test that asks and
//! gone with the test process. Without Debian's `mariadb-server` the tests that use it fail,
//! saying to run scripts/setup.sh.
//!
//! The tests here prove the instance itself, with native PHP (`php8.2` and `php8.2-mysql`) as
//! the client; tests/it/mysql.rs drives it from PHP in the sandbox.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
pub(crate) use test_mariadb::{DATABASE, MariaDb, TLS_USER, USER};
use test_mariadb::{START_TIMEOUT, running};

/// The test process's instance, started by the first test that asks; a panic with the reason
/// (and what to install) when it cannot start.
pub(crate) fn mariadb() -> &'static MariaDb {
    test_mariadb::shared().unwrap_or_else(|e| panic!("the private MariaDB: {e:#}"))
}

/// Native PHP (`php8.2` with `php8.2-mysql`) as the client: `code` run with the instance's
/// logins in `$db` (`$db['user']`, `$db['tls']`, each with `host`, `port`, ...) and the CA
/// file's path in `$ca`; its output, or a panic with its errors.
fn native_php(code: &str) -> String {
    let db = mariadb();
    let setup = format!(
        "$db = json_decode('{}', true); $ca = '{}';",
        json!({"user": db.login(DATABASE, USER), "tls": db.login(DATABASE, TLS_USER)}),
        db.ca_dir().join("ca.pem").display()
    );
    let mut cmd = Command::new("php8.2");
    cmd.arg("-r").arg(format!("{setup} {code}"));
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("php8.2 (native) is needed as the reference client: run scripts/setup.sh ({e})")
    });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "native PHP failed ({}); if a driver is missing, run scripts/setup.sh (php8.2-mysql):\n\
         {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The harness, proved with a client that is not ours: PDO and mysqli of native PHP reach the
/// instance over TCP with the users' passwords, TLS verifies against the CA, the TLS user is
/// refused in the clear, and a wrong password is refused with the server's message.
#[test]
fn native_php_connects_with_the_users_over_tcp_and_tls() {
    let out = native_php(
        r#"
        $dsn = fn ($l) => "mysql:host={$l['host']};port={$l['port']};dbname={$l['dbname']}";
        $pdo = new PDO($dsn($db['user']), $db['user']['user'], $db['user']['password']);
        echo implode(',', $pdo->query('SELECT name FROM items ORDER BY id')->fetchAll(PDO::FETCH_COLUMN)), "\n";
        echo $pdo->query('SELECT CURRENT_USER()')->fetchColumn(), "\n";
        $tls = new PDO($dsn($db['tls']), $db['tls']['user'], $db['tls']['password'], [
            PDO::MYSQL_ATTR_SSL_CA => $ca,
            PDO::MYSQL_ATTR_SSL_VERIFY_SERVER_CERT => true,
        ]);
        echo $tls->query("SHOW SESSION STATUS LIKE 'Ssl_version'")->fetch(PDO::FETCH_NUM)[1], "\n";
        foreach ([[$db['tls'], $db['tls']['password']], [$db['user'], 'wrong']] as [$l, $password]) {
            try {
                new PDO($dsn($l), $l['user'], $password);
                echo "connected\n";
            } catch (PDOException $e) {
                echo $e->getMessage(), "\n";
            }
        }
        $m = new mysqli($db['user']['host'], $db['user']['user'], $db['user']['password'],
            $db['user']['dbname'], $db['user']['port']);
        echo $m->query('SELECT COUNT(*) FROM items')->fetch_row()[0], "\n";
        "#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert_eq!(lines[0], "apple,pear");
    assert_eq!(lines[1], "lamp@%");
    assert!(lines[2].starts_with("TLSv1."), "{out}");
    assert_eq!(
        lines[3],
        "SQLSTATE[HY000] [1045] Access denied for user 'lamp_tls'@'127.0.0.1' (using password: YES)"
    );
    assert_eq!(
        lines[4],
        "SQLSTATE[HY000] [1045] Access denied for user 'lamp'@'127.0.0.1' (using password: YES)"
    );
    assert_eq!(lines[5], "2");
}

/// The server's certificate is checked, not just accepted: a CA that did not sign it fails.
#[test]
fn native_php_refuses_the_server_certificate_under_another_ca() {
    let out = native_php(
        r#"
        $l = $db['tls'];
        try {
            new PDO("mysql:host={$l['host']};port={$l['port']}", $l['user'], $l['password'], [
                PDO::MYSQL_ATTR_SSL_CA => '/etc/ssl/certs/ca-certificates.crt',
                PDO::MYSQL_ATTR_SSL_VERIFY_SERVER_CERT => true,
            ]);
            echo "connected";
        } catch (PDOException $e) {
            echo $e->getMessage();
        }
        "#,
    );
    assert!(out.contains("Cannot connect to MySQL using SSL"), "{out}");
}

/// A database from `database()` is empty and the users' to fill.
#[test]
fn a_fresh_database_is_the_users_to_fill() {
    let db = mariadb();
    let database = db.database("fresh").unwrap();
    let code = format!("$name = '{database}';")
        + r#"
        $l = $db['user'];
        $pdo = new PDO("mysql:host={$l['host']};port={$l['port']};dbname=$name", $l['user'], $l['password']);
        echo $pdo->query('SHOW TABLES')->rowCount();
        $pdo->exec('CREATE TABLE t (n INT)');
        echo $pdo->exec('INSERT INTO t VALUES (7), (8)');
        "#;
    assert_eq!(native_php(&code), "02");
    assert_eq!(
        db.sql(&database, "SELECT SUM(n) FROM t").unwrap(),
        "15
"
    );
    // Dropped and made again: empty.
    assert_eq!(db.database("fresh").unwrap(), database);
    assert_eq!(db.sql(&database, "SHOW TABLES").unwrap(), "");
}

/// Also run as a child process by `the_server_ends_with_the_test_process`: with
/// `LAMP_MARIADB_REPORT` set it writes the server's pid and directory there, and with
/// `LAMP_MARIADB_HANG` it then waits to be killed.
#[test]
fn the_instance_answers_on_its_socket_and_as_root_nowhere_else() {
    let db = mariadb();
    assert_eq!(
        db.sql(DATABASE, "SELECT name FROM items ORDER BY id")
            .unwrap(),
        "apple\npear\n"
    );
    // root only through the socket; the users only from anywhere (their '%').
    assert_eq!(
        db.sql(
            "",
            "SELECT User, Host FROM mysql.global_priv WHERE User <> 'mariadb.sys' ORDER BY User"
        )
        .unwrap(),
        "lamp\t%\nlamp_tls\t%\nroot\tlocalhost\n"
    );
    if let Some(report) = std::env::var_os("LAMP_MARIADB_REPORT") {
        let pid = std::fs::read_to_string(db.dir().join("mariadbd.pid")).unwrap();
        std::fs::write(report, format!("{}\n{}\n", pid.trim(), db.dir().display())).unwrap();
        if std::env::var_os("LAMP_MARIADB_HANG").is_some() {
            std::thread::sleep(Duration::from_secs(600));
        }
    }
}

/// mariadbd does not outlive the test process, whether that ends normally or is killed:
/// the test binary is run again for one test, which reports its server; then the server
/// and its directory must be gone.
#[test]
fn the_server_ends_with_the_test_process() {
    for hang in [false, true] {
        let report = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "mariadb::the_instance_answers_on_its_socket_and_as_root_nowhere_else",
            "--exact",
            "--test-threads=1",
        ])
        .env("LAMP_MARIADB_REPORT", report.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        if hang {
            cmd.env("LAMP_MARIADB_HANG", "1");
        }
        let mut child = cmd.spawn().unwrap();
        let deadline = Instant::now() + START_TIMEOUT;
        let reported = loop {
            let exited = child.try_wait().unwrap().is_some();
            let text = std::fs::read_to_string(report.path()).unwrap();
            if text.lines().count() == 2 {
                break text;
            }
            if exited || Instant::now() > deadline {
                let out = child.wait_with_output().unwrap();
                panic!(
                    "the child test did not report its server:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let (pid, dir) = reported.trim().split_once('\n').unwrap();
        let pid: u32 = pid.parse().unwrap();
        let mariadbd = || is_mariadbd(pid);
        if hang {
            assert!(mariadbd(), "mariadbd {pid} is not running");
            child.kill().unwrap();
        }
        let status = child.wait().unwrap();
        assert!(hang || status.success(), "the child test failed: {status}");
        let ended = Instant::now();
        while mariadbd() || Path::new(dir).exists() {
            assert!(
                ended.elapsed() < Duration::from_secs(10),
                "mariadbd {pid} (running: {}) or {dir} (exists: {}) outlived its test process \
                 by 10 s (killed: {hang})",
                mariadbd(),
                Path::new(dir).exists()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!(
            "mariadbd and its directory gone {:?} after the test process (killed: {hang})",
            ended.elapsed()
        );
    }
}

/// An instance of one's own (`MariaDb::start`, as lamp-bench has it) is gone, server and
/// directory, by the time its drop returns.
#[test]
fn an_instance_of_ones_own_is_gone_once_dropped() {
    let db = MariaDb::start().unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        db.sql(DATABASE, "SELECT name FROM items ORDER BY id")
            .unwrap(),
        "apple\npear\n"
    );
    let (pid, dir) = (db.pid(), db.dir().to_path_buf());
    assert!(is_mariadbd(pid), "mariadbd {pid} is not running");
    drop(db);
    assert!(!is_mariadbd(pid), "mariadbd {pid} outlived its drop");
    assert!(!dir.exists(), "{} outlived its drop", dir.display());
}

/// Whether `pid` is a running mariadbd: by its name too, since once it is gone its pid may be
/// another process's.
fn is_mariadbd(pid: u32) -> bool {
    running(pid)
        && std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|comm| comm.trim() == "mariadbd")
}
