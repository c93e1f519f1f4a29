//! A private MariaDB for the tests and the benchmark: an unprivileged instance of Debian's
//! `mariadb-server` (scripts/setup.sh installs it; without it [`MariaDb::start`] fails and says
//! so). Its data live in a temporary directory, it listens on a free loopback port (and its own
//! socket file, for the admin client of [`MariaDb::sql`]), it speaks TLS with a throwaway CA,
//! and it has real users with passwords: [`USER`] (`mysql_native_password`) and [`TLS_USER`],
//! whose account requires TLS. The system's own MariaDB service is never used.
//!
//! An instance never outlives its process: a watchdog kills mariadbd and removes its directory
//! the moment the process is gone, however it ended (exit, panic, kill). [`MariaDb::start`]
//! gives an instance of one's own, also stopped when it is dropped (lamp-bench); [`shared`] the
//! process's one, started by the first caller and stopped by an exit handler (the integration
//! tests: one instance per test process, whichever tests run).

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::{Value, json};

/// The ordinary user: `mysql_native_password` (MariaDB's default, and what mysqlnd can use
/// without TLS), all privileges on the databases named `lamp%`.
pub const USER: &str = "lamp";
/// A user whose account `REQUIRE`s SSL: refused on a plain connection.
pub const TLS_USER: &str = "lamp_tls";
/// The database created at start, with a table `items` of two rows (apple, pear).
pub const DATABASE: &str = "lamp";

/// Longest wait for the server to say it is ready for connections (it takes ~0.1 s here).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// What to do about a missing program.
const SETUP: &str = "run scripts/setup.sh, which installs Debian's mariadb-server, \
                     mariadb-client, openssl and php8.2-mysql for the MySQL tests and benchmarks";

/// A running instance.
pub struct MariaDb {
    /// The TCP port on 127.0.0.1.
    port: u16,
    /// The instance's directory: data, socket, keys, error log. Removed by the watchdog.
    dir: PathBuf,
    /// mariadbd's process id.
    pid: u32,
    /// Random per instance, so nothing else on the machine knows them.
    password: String,
    tls_password: String,
    /// The watchdog, holding the write end of its stdin: never written, closed when this
    /// process exits or is gone (or the instance is dropped), which is what the watchdog
    /// waits for. In a mutex so that the exit handler can take it from the shared instance.
    watchdog: Mutex<Child>,
}

/// The process's instance, started by the first caller (later ones wait for it and share it)
/// and stopped when the process exits. A failed start is not remembered: the next caller
/// tries again, and gets the same error if nothing changed.
pub fn shared() -> Result<&'static MariaDb> {
    static STARTING: Mutex<()> = Mutex::new(());
    if let Some(instance) = SHARED.get() {
        return Ok(instance);
    }
    let _one_at_a_time = STARTING.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(instance) = SHARED.get() {
        return Ok(instance);
    }
    let instance = MariaDb::start()?;
    stop_at_exit()?;
    Ok(SHARED.get_or_init(|| instance))
}

static SHARED: OnceLock<MariaDb> = OnceLock::new();

/// Stops the shared instance when the process exits normally (libtest's end runs the C exit
/// handlers), so that `cargo test` returns only once mariadbd is gone and its directory
/// removed. The watchdog alone would do it a few milliseconds after the process is gone,
/// racing whoever looks right after; it stays for the ends that run no handler (a kill, an
/// abort). Called once: by the start of the shared instance.
#[allow(unsafe_code)]
fn stop_at_exit() -> Result<()> {
    extern "C" fn stop() {
        // No unwinding out of an exit handler: nothing here may panic.
        if let Some(Ok(mut watchdog)) = SHARED.get().map(|db| db.watchdog.try_lock()) {
            end(&mut watchdog);
        }
    }
    // SAFETY: `stop` is a plain function that cannot unwind; atexit only records it.
    let status = unsafe { libc::atexit(stop) };
    if status != 0 {
        bail!("atexit failed ({status}) to register the MariaDB stop");
    }
    Ok(())
}

/// Ends an instance: closes its watchdog's stdin and waits for the watchdog to kill mariadbd
/// and remove the directory.
fn end(watchdog: &mut Child) {
    drop(watchdog.stdin.take());
    let _ = watchdog.wait();
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        end(self
            .watchdog
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner));
    }
}

impl MariaDb {
    /// Starts an instance of one's own, stopped when it is dropped or the process ends. Fails
    /// with what to install when mariadbd, its tools or openssl are missing, and with the
    /// server's error log when it does not start.
    pub fn start() -> Result<Self> {
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
                    return Ok(instance);
                }
                Err(Start::PortTaken(log)) => eprintln!("mariadb: port taken, retrying:\n{log}"),
                Err(Start::Failed(error)) => return Err(error),
            }
        }
        bail!("mariadbd could not bind a free port in 5 attempts")
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, as `--allow-outbound` takes it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The instance's directory (data, socket, keys, logs); gone once the instance is.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// mariadbd's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// A directory holding only `ca.pem`, the CA that signed the server's certificate (for
    /// `--dir CA_DIR::/certs`; the keys live elsewhere).
    pub fn ca_dir(&self) -> PathBuf {
        self.dir.join("ca")
    }

    /// The password of [`USER`] or [`TLS_USER`]; panics for another name.
    pub fn password(&self, user: &str) -> &str {
        match user {
            USER => &self.password,
            TLS_USER => &self.tls_password,
            _ => panic!("no user {user} in the private MariaDB"),
        }
    }

    /// How a client reaches `database` as `user` over TCP: `host` (an IP: mysqlnd takes
    /// `localhost` for its Unix socket), `port`, `dbname`, `user`, `password`.
    pub fn login(&self, database: &str, user: &str) -> Value {
        json!({
            "host": "127.0.0.1",
            "port": self.port,
            "dbname": database,
            "user": user,
            "password": self.password(user),
        })
    }

    /// A new empty database `lamp_NAME` (dropped first if an earlier user left one), on which
    /// both users have all privileges; its name.
    pub fn database(&self, name: &str) -> Result<String> {
        let database = format!("lamp_{name}");
        self.sql(
            "",
            &format!("DROP DATABASE IF EXISTS `{database}`; CREATE DATABASE `{database}`;"),
        )?;
        Ok(database)
    }

    /// Runs `sql` as root over the socket (in `database` unless empty) with the `mariadb`
    /// client; its output, tab-separated, one line a row, no column names.
    pub fn sql(&self, database: &str, sql: &str) -> Result<String> {
        let mut cmd = Command::new(tool("mariadb")?);
        cmd.arg("--no-defaults")
            .arg(format!(
                "--socket={}",
                self.dir.join("mariadb.sock").display()
            ))
            .args(["--user=root", "--batch", "--skip-column-names"])
            .arg("--default-character-set=utf8mb4");
        if !database.is_empty() {
            cmd.arg(format!("--database={database}"));
        }
        let out = pipe(cmd, sql)?;
        if !out.status.success() {
            bail!(
                "mariadb client failed on `{}`: {}",
                sql.chars().take(200).collect::<String>(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8(out.stdout).context("the mariadb client's output is not UTF-8")
    }

    /// The server's error log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    fn try_start() -> Result<Self, Start> {
        let mariadbd = tool("mariadbd")?;
        let install_db = tool("mariadb-install-db")?;
        // Removed on an early return; the watchdog's to remove once it runs.
        let temp = tempfile::Builder::new()
            .prefix("lamp-mariadb-")
            .tempdir()
            .context("failed to create the MariaDB instance's directory")?;
        let dir = temp.path().to_path_buf();
        // mariadbd refuses to run as root unless told to be that user (CI runs as root).
        let as_root = std::fs::metadata(&dir)
            .with_context(|| format!("failed to read {}", dir.display()))?
            .uid()
            == 0;
        let user: &[&str] = if as_root { &["--user=root"] } else { &[] };
        // This datadir lives for one run: a redo log smaller than the 96 MB default, and no
        // fsync (on a machine busy writing, mariadb-install-db waits seconds for them).
        let innodb = [
            "--innodb-log-file-size=16M",
            "--innodb-buffer-pool-size=64M",
            "--innodb-flush-method=nosync",
            "--skip-innodb-doublewrite",
        ];

        let data = dir.join("data");
        let mut install = Command::new(&install_db);
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
        let out = install
            .output()
            .with_context(|| format!("failed to run {}", install_db.display()))?;
        if !out.status.success() {
            return Err(anyhow!(
                "mariadb-install-db failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }

        certificates(&dir)?;
        let password = format!("lamp-{}", uuid::Uuid::new_v4().simple());
        let tls_password = format!("tls-{}", uuid::Uuid::new_v4().simple());
        std::fs::write(dir.join("init.sql"), init_sql(&password, &tls_password))
            .context("failed to write init.sql")?;

        let port = free_port()?;
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
            .context("failed to start sh for the mariadbd watchdog")?;
        let said = watchdog.stdout.take();
        let mut instance = Self {
            port,
            dir: temp.keep(),
            pid: 0,
            password,
            tls_password,
            watchdog: Mutex::new(watchdog),
        };
        // From here an error drops `instance`, which stops the watchdog.
        let mut pid = String::new();
        if let Some(said) = said {
            BufReader::new(said)
                .read_line(&mut pid)
                .context("failed to read mariadbd's pid from its watchdog")?;
        }
        instance.pid = pid
            .trim()
            .parse()
            .with_context(|| format!("the mariadbd watchdog said `{pid}`, not a pid"))?;

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let log = instance.log();
            if log.contains("ready for connections") {
                return Ok(instance);
            }
            if !running(instance.pid) {
                drop(instance);
                if log.contains("Bind on TCP/IP port") {
                    return Err(Start::PortTaken(log));
                }
                return Err(
                    anyhow!("mariadbd exited while starting; its error log:\n{log}").into(),
                );
            }
            if Instant::now() > deadline {
                drop(instance);
                return Err(anyhow!(
                    "mariadbd did not get ready in {START_TIMEOUT:?}; its error log:\n{log}"
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Why an attempt to start failed.
enum Start {
    /// Another process bound the port first; the server's error log.
    PortTaken(String),
    /// Anything else: no second attempt.
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for Start {
    fn from(error: anyhow::Error) -> Self {
        Self::Failed(error)
    }
}

/// Started by `sh -c` with the instance's directory and mariadbd's command line. It starts
/// mariadbd as its own child (so that it can reap it: a killed orphan would stay a zombie
/// where PID 1 does not reap), says its pid, then reads its stdin: a pipe whose only writer
/// is the owning process, so the read returns (EOF) the moment that process is gone, whether
/// it exited, panicked or was killed, or it closed the pipe. Then mariadbd is killed outright
/// (its data are thrown away: no clean shutdown needed) and the directory removed. Ctrl-C and
/// the like reach the whole process group: ignored here, so that the end of the owning
/// process decides.
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

/// The accounts and data every instance starts with. Runs at every start of the server,
/// before it takes connections (`--init-file`).
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
fn certificates(dir: &Path) -> Result<()> {
    std::fs::create_dir(dir.join("ca")).context("failed to create ca/")?;
    std::fs::write(
        dir.join("openssl.cnf"),
        "[req]\ndistinguished_name = dn\n[dn]\n",
    )
    .context("failed to write openssl.cnf")?;
    let openssl = tool("openssl")?;
    let req = |args: &[&str]| {
        let out = Command::new(&openssl)
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
            .with_context(|| format!("failed to run {}", openssl.display()))?;
        if !out.status.success() {
            bail!(
                "openssl req {args:?} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    };
    req(&[
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
    ])?;
    req(&[
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
    ])
}

/// An installed program: on PATH, or in /usr/sbin where Debian puts mariadbd (not on a user's
/// PATH); an error saying what to install when it is missing.
fn tool(name: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .with_context(|| {
            format!("`{name}` is not installed (looked on PATH and in /usr/sbin): {SETUP}")
        })
}

/// A port free on loopback now.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("failed to find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Whether process `pid` is alive: not gone, not a zombie waiting for its parent.
pub fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the command name, which is in parentheses.
        let state = stat.rsplit(')').next().unwrap_or("").trim_start();
        !state.starts_with(['Z', 'X'])
    })
}

/// Runs `cmd` with `input` on its stdin; its output.
fn pipe(mut cmd: Command, input: &str) -> Result<Output> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("failed to start {cmd:?}"))?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    let input = input.to_string();
    // A writer thread: a big input and a big output would otherwise block each other.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child
        .wait_with_output()
        .with_context(|| format!("failed to wait for {cmd:?}"))?;
    let written = writer
        .join()
        .map_err(|_| anyhow!("the writer thread of {cmd:?} panicked"))?;
    // The client may stop reading early when it fails; its status says why.
    if out.status.success() {
        written.with_context(|| format!("failed to write to {cmd:?}"))?;
    }
    Ok(out)
}
