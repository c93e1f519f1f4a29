//! A private MariaDB for the tests (`mariadb()`): one unprivileged instance per test process,
//! started on first use from Debian's `mariadb-server` (scripts/setup.sh installs it; without
//! it the tests fail and say so). Its data live in a temporary directory, it listens on a free
//! loopback port (and its own socket file, for the tests' admin client), it speaks TLS with a
//! throwaway CA, and it has real users with passwords: [`USER`] (`mysql_native_password`) and
//! [`TLS_USER`], whose account requires TLS. It ends with the test process: stopped by an exit
//! handler when that exits, killed by a watchdog when it is killed. The system's own MariaDB
//! service is never used.
//!
//! The tests here prove the instance itself, with native PHP (`php8.2` and `php8.2-mysql`) as
//! the client; tests/it/mysql.rs drives it from PHP in the sandbox.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::web::free_port;

/// The ordinary user: `mysql_native_password` (MariaDB's default, and what mysqlnd can use
/// without TLS), all privileges on the databases named `lamp%`.
pub(crate) const USER: &str = "lamp";
/// A user whose account `REQUIRE`s SSL: refused on a plain connection.
pub(crate) const TLS_USER: &str = "lamp_tls";
/// The database created at start, with a table `items` of two rows (apple, pear).
pub(crate) const DATABASE: &str = "lamp";

/// Longest wait for the server to say it is ready for connections (it takes ~0.1 s here).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The running instance.
pub(crate) struct MariaDb {
    /// The TCP port on 127.0.0.1.
    pub(crate) port: u16,
    /// The instance's directory: data, socket, keys, error log. Removed by the watchdog.
    dir: PathBuf,
    /// Random per instance, so nothing else on the machine knows them.
    password: String,
    tls_password: String,
    /// The watchdog, holding the write end of its stdin: never written, closed when this
    /// process exits or is gone, which is what the watchdog waits for.
    watchdog: Mutex<Child>,
}

/// The test process's instance, started by the first test that asks.
pub(crate) fn mariadb() -> &'static MariaDb {
    INSTANCE.get_or_init(|| {
        let instance = MariaDb::start();
        stop_at_exit();
        instance
    })
}

static INSTANCE: OnceLock<MariaDb> = OnceLock::new();

/// Stops the instance when the test process exits normally (libtest's end runs the C exit
/// handlers), so that `cargo test` returns only once mariadbd is gone and its directory
/// removed. The watchdog alone would do it a few milliseconds after the process is gone,
/// racing whoever looks right after; it stays for the ends that run no handler (a kill, an
/// abort).
#[allow(unsafe_code)]
fn stop_at_exit() {
    extern "C" fn stop() {
        // No unwinding out of an exit handler: nothing here may panic.
        if let Some(Ok(mut watchdog)) = INSTANCE.get().map(|db| db.watchdog.try_lock()) {
            drop(watchdog.stdin.take());
            let _ = watchdog.wait();
        }
    }
    // SAFETY: `stop` is a plain function that cannot unwind; atexit only records it.
    let status = unsafe { libc::atexit(stop) };
    assert_eq!(status, 0, "atexit failed to register the MariaDB stop");
}

impl MariaDb {
    /// `127.0.0.1:PORT`, as `--allow-outbound` takes it.
    pub(crate) fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A directory holding only `ca.pem`, the CA that signed the server's certificate (for
    /// `--dir CA_DIR::/certs`; the keys live elsewhere).
    pub(crate) fn ca_dir(&self) -> PathBuf {
        self.dir.join("ca")
    }

    pub(crate) fn password(&self, user: &str) -> &str {
        match user {
            USER => &self.password,
            TLS_USER => &self.tls_password,
            _ => panic!("no user {user} in the test instance"),
        }
    }

    /// How a client reaches `database` as `user` over TCP: `host` (an IP: mysqlnd takes
    /// `localhost` for its Unix socket), `port`, `dbname`, `user`, `password`.
    pub(crate) fn login(&self, database: &str, user: &str) -> Value {
        json!({
            "host": "127.0.0.1",
            "port": self.port,
            "dbname": database,
            "user": user,
            "password": self.password(user),
        })
    }

    /// A new empty database `lamp_NAME` (dropped first if a previous test left one), on
    /// which both users have all privileges; its name.
    pub(crate) fn database(&self, name: &str) -> String {
        let database = format!("lamp_{name}");
        self.sql(
            "",
            &format!("DROP DATABASE IF EXISTS `{database}`; CREATE DATABASE `{database}`;"),
        );
        database
    }

    /// Runs `sql` as root over the socket (in `database` unless empty) with the `mariadb`
    /// client; its output, tab-separated, one line a row, no column names. Panics on an error.
    pub(crate) fn sql(&self, database: &str, sql: &str) -> String {
        let mut cmd = Command::new(tool("mariadb"));
        cmd.arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["--user=root", "--batch", "--skip-column-names"])
            .arg("--default-character-set=utf8mb4");
        if !database.is_empty() {
            cmd.arg(format!("--database={database}"));
        }
        let out = pipe(cmd, sql);
        assert!(
            out.status.success(),
            "mariadb client failed on `{}`: {}",
            sql.chars().take(200).collect::<String>(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The server's error log so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("mariadb.sock")
    }

    /// Ends the instance now, as the end of the test process would: closes the watchdog's
    /// stdin and waits for it to kill mariadbd and remove the directory.
    fn stop(self) {
        let mut watchdog = self.watchdog.into_inner().unwrap();
        drop(watchdog.stdin.take());
        let _ = watchdog.wait();
    }

    fn start() -> Self {
        let started = Instant::now();
        // The port is free when picked, but another process may take it before mariadbd binds
        // it: then start again, on another.
        for _ in 0..5 {
            match Self::try_start() {
                Ok(instance) => {
                    eprintln!(
                        "mariadb: private instance on {} ready in {:?} ({})",
                        instance.address(),
                        started.elapsed(),
                        instance.dir.display()
                    );
                    return instance;
                }
                Err(Start::PortTaken(log)) => eprintln!("mariadb: port taken, retrying:\n{log}"),
            }
        }
        panic!("mariadbd could not bind a free port in 5 attempts");
    }

    fn try_start() -> Result<Self, Start> {
        let mariadbd = tool("mariadbd");
        let dir = tempfile::Builder::new()
            .prefix("lamp-mariadb-")
            .tempdir()
            .unwrap()
            .keep();
        // mariadbd refuses to run as root unless told to be that user (CI runs as root).
        let as_root = std::fs::metadata(&dir).unwrap().uid() == 0;
        let user: &[&str] = if as_root { &["--user=root"] } else { &[] };
        // This datadir lives for one test run: a redo log smaller than the 96 MB default, and
        // no fsync (on a machine busy writing, mariadb-install-db waits seconds for them).
        let innodb = [
            "--innodb-log-file-size=16M",
            "--innodb-buffer-pool-size=64M",
            "--innodb-flush-method=nosync",
            "--skip-innodb-doublewrite",
        ];

        let data = dir.join("data");
        let mut install = Command::new(tool("mariadb-install-db"));
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            // root without a password, reachable only through the socket in our 0700 dir;
            // init.sql drops the root accounts on TCP hosts.
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ])
            .args(user)
            .args(innodb);
        let out = install.output().unwrap();
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        assert!(
            out.status.success(),
            "mariadb-install-db failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );

        std::fs::create_dir(dir.join("ca")).unwrap();
        certificates(&dir);
        let password = format!("lamp-{}", uuid::Uuid::new_v4().simple());
        let tls_password = format!("tls-{}", uuid::Uuid::new_v4().simple());
        std::fs::write(dir.join("init.sql"), init_sql(&password, &tls_password)).unwrap();

        let port = free_port();
        let path = |name: &str| dir.join(name).display().to_string();
        let mut args: Vec<String> = vec![
            "--no-defaults".into(),
            format!("--datadir={}", data.display()),
            format!("--socket={}", path("mariadb.sock")),
            format!("--pid-file={}", path("mariadbd.pid")),
            format!("--log-error={}", path("error.log")),
            format!("--tmpdir={}", dir.display()),
            format!("--init-file={}", path("init.sql")),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".into(),
            "--skip-name-resolve".into(),
            format!("--ssl-ca={}", path("ca/ca.pem")),
            format!("--ssl-cert={}", path("server.pem")),
            format!("--ssl-key={}", path("server.key")),
            // --no-defaults leaves the compiled-in latin1; Debian's config says utf8mb4.
            "--character-set-server=utf8mb4".into(),
            "--collation-server=utf8mb4_unicode_ci".into(),
            // No fsync per commit: the tests commit thousands of single-row transactions, and
            // these data need not survive a crash of the machine.
            "--innodb-flush-log-at-trx-commit=2".into(),
        ];
        args.extend(user.iter().chain(&innodb).map(|s| s.to_string()));

        let mut watchdog = Command::new("sh")
            .args(["-c", WATCHDOG, "lamp-mariadb-watchdog"])
            .arg(&dir)
            .arg(&mariadbd)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("failed to start sh for the mariadbd watchdog");
        let mut pid = String::new();
        BufReader::new(watchdog.stdout.take().unwrap())
            .read_line(&mut pid)
            .unwrap();
        let pid: u32 = pid
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the mariadbd watchdog said `{pid}`, not a pid"));
        let instance = Self {
            port,
            dir,
            password,
            tls_password,
            watchdog: Mutex::new(watchdog),
        };

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let log = instance.log();
            if log.contains("ready for connections") {
                return Ok(instance);
            }
            if !running(pid) {
                instance.stop();
                if log.contains("Bind on TCP/IP port") {
                    return Err(Start::PortTaken(log));
                }
                panic!("mariadbd exited while starting; its error log:\n{log}");
            }
            if Instant::now() > deadline {
                instance.stop();
                panic!("mariadbd did not get ready in {START_TIMEOUT:?}; its error log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

enum Start {
    /// Another process bound the port first; the server's error log.
    PortTaken(String),
}

/// Started by `sh -c` with the instance's directory and mariadbd's command line. It starts
/// mariadbd as its own child (so that it can reap it: a killed orphan would stay a zombie
/// where PID 1 does not reap), says its pid, then reads its stdin: a pipe whose only writer
/// is the test process, so the read returns (EOF) the moment that process is gone, whether
/// it exited, panicked or was killed. Then mariadbd is killed outright (its data are thrown
/// away: no clean shutdown needed) and the directory removed. Ctrl-C and the like reach the
/// whole process group: ignored here, so that the end of the test process decides.
const WATCHDOG: &str = r#"
trap '' INT HUP TERM QUIT
dir=$1; shift
"$@" </dev/null >/dev/null 2>&1 &
server=$!
echo "$server"
read -r _ || :
kill -KILL "$server" 2>/dev/null
wait "$server"
rm -rf "$dir"
"#;

/// The accounts and data the tests expect. Runs at every start of the server, before it takes
/// connections (`--init-file`).
fn init_sql(password: &str, tls_password: &str) -> String {
    format!(
        "-- mariadb-install-db's root accounts on 127.0.0.1, ::1 and the host name have no
-- password: root is for the socket only.
DELETE FROM mysql.global_priv WHERE User = 'root' AND Host <> 'localhost';
DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';
FLUSH PRIVILEGES;
CREATE USER '{USER}'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('{password}');
CREATE USER '{TLS_USER}'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('{tls_password}')
  REQUIRE SSL;
GRANT ALL PRIVILEGES ON `lamp%`.* TO '{USER}'@'%', '{TLS_USER}'@'%';
CREATE DATABASE {DATABASE};
CREATE TABLE {DATABASE}.items (
  id INT AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(100) NOT NULL
);
INSERT INTO {DATABASE}.items (name) VALUES ('apple'), ('pear');
"
    )
}

/// A throwaway CA (`ca/ca.pem`) and the server's key and certificate signed by it, for
/// 127.0.0.1 and localhost (mysqlnd checks the name it connected to against the certificate).
/// A minimal OpenSSL config, so that the system's openssl.cnf changes nothing.
fn certificates(dir: &Path) {
    std::fs::write(
        dir.join("openssl.cnf"),
        "[req]\ndistinguished_name = dn\n[dn]\n",
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new(tool("openssl"))
            .current_dir(dir)
            .args(["req", "-config", "openssl.cnf", "-x509", "-days", "2"])
            // P-256: generated in a millisecond, where an RSA key takes up to a second.
            .args([
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl req {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "-keyout",
        "ca.key",
        "-out",
        "ca/ca.pem",
        "-subj",
        "/CN=wasm-lamp test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&[
        "-keyout",
        "server.key",
        "-out",
        "server.pem",
        "-subj",
        "/CN=127.0.0.1",
        "-CA",
        "ca/ca.pem",
        "-CAkey",
        "ca.key",
        "-addext",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "-addext",
        "basicConstraints=CA:FALSE",
        "-addext",
        "extendedKeyUsage=serverAuth",
    ]);
}

/// An installed program: on PATH, or in /usr/sbin where Debian puts mariadbd (not on a user's
/// PATH). Panics with what to install when it is missing.
fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed (looked on PATH and in /usr/sbin): run \
                 scripts/setup.sh, which installs Debian's mariadb-server, mariadb-client, \
                 openssl and php8.2-mysql for the MySQL tests"
            )
        })
}

/// Whether process `pid` is alive: not gone, not a zombie waiting for its parent.
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the command name, which is in parentheses.
        let state = stat.rsplit(')').next().unwrap_or("").trim_start();
        !state.starts_with(['Z', 'X'])
    })
}

/// Runs `cmd` with `input` on its stdin; its output.
fn pipe(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("failed to start {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    // A writer thread: a big input and a big output would otherwise block each other.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    out
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
    let database = db.database("fresh");
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
        db.sql(&database, "SELECT SUM(n) FROM t"),
        "15
"
    );
    // Dropped and made again: empty.
    assert_eq!(db.database("fresh"), database);
    assert_eq!(db.sql(&database, "SHOW TABLES"), "");
}

/// Also run as a child process by `the_server_ends_with_the_test_process`: with
/// `LAMP_MARIADB_REPORT` set it writes the server's pid and directory there, and with
/// `LAMP_MARIADB_HANG` it then waits to be killed.
#[test]
fn the_instance_answers_on_its_socket_and_as_root_nowhere_else() {
    let db = mariadb();
    assert_eq!(
        db.sql(DATABASE, "SELECT name FROM items ORDER BY id"),
        "apple\npear\n"
    );
    // root only through the socket; the users only from anywhere (their '%').
    assert_eq!(
        db.sql(
            "",
            "SELECT User, Host FROM mysql.global_priv WHERE User <> 'mariadb.sys' ORDER BY User"
        ),
        "lamp\t%\nlamp_tls\t%\nroot\tlocalhost\n"
    );
    if let Some(report) = std::env::var_os("LAMP_MARIADB_REPORT") {
        let pid = std::fs::read_to_string(db.dir.join("mariadbd.pid")).unwrap();
        std::fs::write(report, format!("{}\n{}\n", pid.trim(), db.dir.display())).unwrap();
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
        // By its name too: once gone, its pid may be another process's.
        let mariadbd = || {
            running(pid)
                && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|comm| comm.trim() == "mariadbd")
        };
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
