//! `with-mariadb COMMAND [ARG...]`: runs COMMAND beside a private MariaDB (the tests' own, see
//! the library), with the settings of PHP's ext/mysqli and ext/pdo_mysql test suites in its
//! environment, and `LAMP_PHPT_ALLOW_OUTBOUND` letting the PHP under test reach the server.
//! Their user may do anything on that server (the suites create databases, users, procedures).
//! Exits with COMMAND's status; the server is stopped and its data removed however it ends.
//!
//! `make test` runs `guests/php/run-phpt.sh` under it, which then adds those two suites.

use std::process::{Command, ExitCode};

use anyhow::{Context as _, Result, bail};
use test_mariadb::{DATABASE, MariaDb, USER};

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("with-mariadb: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    let Some(program) = args.next() else {
        bail!("usage: with-mariadb COMMAND [ARG...]");
    };
    let db = MariaDb::start()?;
    // The suites create and drop databases of their own (`test`, `mysqli_get_client_stats`),
    // users and procedures: on this throwaway server their user may do all of it.
    db.sql(
        "",
        &format!(
            "GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'%' WITH GRANT OPTION; \
             CREATE DATABASE IF NOT EXISTS test;"
        ),
    )?;
    let (host, port, password) = ("127.0.0.1", db.port().to_string(), db.password(USER));
    let dsn = format!("mysql:host={host};port={port};dbname={DATABASE}");
    let status = Command::new(&program)
        .args(args)
        // ext/mysqli/tests/connect.inc
        .env("MYSQL_TEST_HOST", host)
        .env("MYSQL_TEST_PORT", &port)
        .env("MYSQL_TEST_USER", USER)
        .env("MYSQL_TEST_PASSWD", password)
        .env("MYSQL_TEST_DB", DATABASE)
        .env("MYSQL_TEST_ENGINE", "InnoDB")
        // ext/pdo_mysql/tests/config.inc, and ext/pdo's own tests through pdo_mysql's
        .env("PDO_MYSQL_TEST_DSN", &dsn)
        .env("PDO_MYSQL_TEST_HOST", host)
        .env("PDO_MYSQL_TEST_PORT", &port)
        .env("PDO_MYSQL_TEST_USER", USER)
        .env("PDO_MYSQL_TEST_PASS", password)
        .env("PDO_MYSQL_TEST_ENGINE", "InnoDB")
        .env("LAMP_PHPT_ALLOW_OUTBOUND", db.address())
        .status()
        .with_context(|| format!("failed to run `{}`", program.to_string_lossy()))?;
    drop(db);
    Ok(match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}
