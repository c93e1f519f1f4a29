//! MySQL rows: what a PHP request that uses a database costs, ours against native PHP-FPM,
//! with the same MariaDB in the same run. One page (`tests/bench/mysql/index.php`) connects
//! with PDO (no persistent connection), runs one prepared statement and closes, under
//! `host serve` (each request in a fresh instance, the database reached through
//! `--allow-outbound`) and under nginx + PHP-FPM (opcache on, Debian's mysqlnd and pdo_mysql
//! loaded explicitly), both started as for the web rows (`web.rs`). The database is a private
//! MariaDB (tests/mariadb) started for these rows and gone with them; only when it cannot start
//! are the rows skipped, with the reason.
//!
//! - select: `GET /select?id=N`, a row of 10,000 by primary key, loaded by `wrk` with the web
//!   rows' settings after every server's answers were checked against the table;
//! - inserts: 1,000 `GET /insert?client=C&seq=S` from 8 clients at once (HTTP/1.0, a
//!   connection each; `--quick`: 200), then each (client, seq) must be in `hits` once;
//! - a breakdown at one connection (`wrk -t1 -c1`): the request without a database, with a
//!   connect and close, with the SELECT, with a second SELECT on the same connection; the
//!   differences say where the time goes.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use test_mariadb::{MariaDb, USER};

use crate::Row;
use crate::web::{self, App, Breakdown, Load, Running, Server, Setup, WebArgs, note_row};

/// Rows in `items`.
const ITEMS: usize = 10_000;
/// The row `wrk` asks for, and its page.
const MEASURED_ID: usize = 4_242;
const MEASURED: &str = "/select?id=4242";
const MEASURED_TWICE: &str = "/select2?id=4242";
/// The concurrent clients of the inserts.
const CLIENTS: usize = 8;
/// The pages of the breakdown, each adding a step to the one before.
const STEPS: [(&str, &str); 4] = [
    ("/none", "`/none`: the request alone, no database"),
    (
        "/connect",
        "`/connect` − `/none`: connect (TCP, greeting, auth) and close",
    ),
    (
        MEASURED,
        "`/select` − `/connect`: prepare, execute, fetch, close the statement",
    ),
    (
        MEASURED_TWICE,
        "`/select2` − `/select`: the same again on that connection (a page's second query)",
    ),
];

/// Flags of the MySQL rows (they also follow the web rows' `wrk` settings and servers).
#[derive(Debug, Args)]
pub struct MysqlArgs {
    /// Skip the MySQL rows.
    #[arg(long)]
    pub no_mysql: bool,
    /// Only the MySQL rows.
    #[arg(long, conflicts_with_all = ["no_mysql", "no_web", "web_only"])]
    pub mysql_only: bool,
}

/// One server's figures.
struct Measured {
    select: Load,
    /// p50 in ms of [`STEPS`]' pages, one connection at a time.
    steps: [f64; STEPS.len()],
    inserts: Inserts,
}

struct Inserts {
    took: Duration,
    requests: usize,
    /// Rows in `hits` afterwards, and distinct (client, seq) among them.
    rows: usize,
    distinct: usize,
}

/// Starts the private MariaDB, measures each server, stops the database: the rows and the
/// breakdown.
pub fn run(args: &MysqlArgs, web: &WebArgs, setup: &Setup<'_>) -> Result<(Vec<Row>, Breakdown)> {
    if args.no_mysql || web.no_web {
        return Ok(Default::default());
    }
    let skipped = |reason: &str| {
        eprintln!("MySQL rows skipped: {reason}");
        let first_line = reason.lines().next().unwrap_or_default();
        let row = note_row("MySQL rows", &format!("skipped: {first_line}"));
        Ok((vec![row], Breakdown::default()))
    };
    let Some(wrk) = web::find_program(&web.wrk) else {
        return skipped(&format!("`{}` not found (apt-get install wrk)", web.wrk));
    };
    let db = match MariaDb::start() {
        Ok(db) => db,
        Err(e) => return skipped(&format!("the private MariaDB could not start: {e:#}")),
    };
    let database = fill(&db)?;
    let root = Path::new("tests/bench/mysql");
    let root = std::fs::canonicalize(root).with_context(|| {
        format!(
            "failed to find the MySQL page `{}` (run lamp-bench from the repository's root)",
            root.display()
        )
    })?;
    let app = App {
        root: &root,
        ready: "/none",
        env: vec![
            ("DB_HOST".into(), "127.0.0.1".into()),
            ("DB_PORT".into(), db.port().to_string()),
            ("DB_NAME".into(), database.clone()),
            ("DB_USER".into(), USER.into()),
            ("DB_PASSWORD".into(), db.password(USER).into()),
        ],
        allow_outbound: vec![db.address()],
        extensions: &["mysqlnd", "pdo_mysql"],
    };
    let cores = web::cores();
    let scale = Scale {
        seconds: web.seconds(setup.quick),
        step_seconds: if setup.quick { 1 } else { 3 },
        inserts: if setup.quick { 200 } else { 1_000 },
    };

    let mut results: Vec<(Server, Result<Measured, String>)> = Vec::new();
    for &server in &web.web_servers {
        if server == Server::PhpS {
            continue;
        }
        let work = tempfile::Builder::new().prefix("lamp-mysql-").tempdir()?;
        let running = match web::start(server, web, setup, &app, work.path(), cores)? {
            Ok(running) => running,
            Err(reason) => {
                eprintln!("MySQL rows: {server} skipped: {reason}");
                results.push((server, Err(reason)));
                continue;
            }
        };
        let measured = measure(&running, &wrk, web, &db, &database, &scale);
        drop(running);
        // The servers' logs stay for a look when something went wrong.
        let measured =
            measured.with_context(|| format!("{server} (logs in {})", work.keep().display()))?;
        results.push((server, Ok(measured)));
    }
    let version = db.sql("", "SELECT VERSION()")?;
    drop(db);

    let mut rows = rows(&results);
    rows.push(note_row(
        "MySQL rows: load",
        &format!(
            "select: wrk -t{} -c{} -d{}s --latency after a 1 s warm-up; inserts: \
             {CLIENTS} clients at once, a connection per request; each server {cores} requests \
             at once; MariaDB {} on loopback, no TLS; PDO without persistent connections, \
             server-side prepared statements",
            web.wrk_threads,
            web.wrk_connections,
            scale.seconds,
            version.trim()
        ),
    ));
    let breakdown = Breakdown {
        what: "MySQL request",
        load: format!("wrk -t1 -c1 -d{}s", scale.step_seconds),
        steps: STEPS.iter().map(|(_, what)| *what).collect(),
        measured: Breakdown::measured(&results, |m| &m.steps),
        // The page the select's load measures: connect, one statement, close.
        total: ("`/select`: all of it".into(), 2),
    };
    Ok((rows, breakdown))
}

/// How much of each measurement.
struct Scale {
    /// Of the select's `wrk` run.
    seconds: u32,
    /// Of each breakdown step's `wrk` run.
    step_seconds: u32,
    /// Inserts in all.
    inserts: usize,
}

/// One running server: its answers checked, the select under load, the breakdown's steps, the
/// inserts.
fn measure(
    running: &Running,
    wrk: &Path,
    web: &WebArgs,
    db: &MariaDb,
    database: &str,
    scale: &Scale,
) -> Result<Measured> {
    check(running).context("wrong answer")?;
    let url = |page: &str| format!("http://{}{page}", running.address);
    let (threads, connections) = (web.wrk_threads, web.wrk_connections);
    // Warm-up: opcache, the instance pool, the server's caches.
    web::run_wrk(wrk, threads, connections, 1, &url(MEASURED))?;
    let select = web::run_wrk(wrk, threads, connections, scale.seconds, &url(MEASURED))?;
    let mut steps = [0.0; STEPS.len()];
    for (step, (page, _)) in steps.iter_mut().zip(STEPS) {
        *step = web::run_wrk(wrk, 1, 1, scale.step_seconds, &url(page))?.p50_ms;
    }
    db.sql(
        database,
        "DROP TABLE IF EXISTS hits;
         CREATE TABLE hits (
             id INT AUTO_INCREMENT PRIMARY KEY,
             client INT NOT NULL,
             seq INT NOT NULL
         );",
    )?;
    let inserts = insert(running, db, database, scale.inserts).context("the inserts")?;
    Ok(Measured {
        select,
        steps,
        inserts,
    })
}

/// A fresh database `lamp_bench` with `items`: `ITEMS` rows (`id`, `name`, `qty`); its name.
fn fill(db: &MariaDb) -> Result<String> {
    let database = db.database("bench")?;
    let mut sql = String::from(
        "CREATE TABLE items (
            id INT PRIMARY KEY,
            name VARCHAR(100) NOT NULL,
            qty INT NOT NULL
        );\n",
    );
    let ids: Vec<usize> = (1..=ITEMS).collect();
    for chunk in ids.chunks(1000) {
        let values: Vec<String> = chunk
            .iter()
            .map(|&id| format!("({id}, 'item {id}', {})", qty(id)))
            .collect();
        sql.push_str(&format!("INSERT INTO items VALUES {};\n", values.join(",")));
    }
    db.sql(&database, &sql)?;
    Ok(database)
}

fn qty(id: usize) -> usize {
    id * 7 % 1000
}

/// What `/select?id=ID` must answer: the row as `json_encode` gives it (ints as ints, as PDO
/// gives them with server-side prepared statements).
fn expected_row(id: usize) -> String {
    format!(r#"{{"id":{id},"name":"item {id}","qty":{}}}"#, qty(id))
}

/// The server answers the pages right: rows by primary key (the measured one, the first, the
/// last), `false` for no row, and the breakdown's pages.
fn check(running: &Running) -> Result<()> {
    let mut expected: Vec<(String, String)> = [MEASURED_ID, 1, ITEMS]
        .iter()
        .map(|&id| (format!("/select?id={id}"), expected_row(id)))
        .collect();
    expected.push((format!("/select?id={}", ITEMS + 1), "false".into()));
    expected.push((MEASURED_TWICE.into(), expected_row(MEASURED_ID)));
    expected.push(("/connect".into(), "connected".into()));
    expected.push(("/none".into(), "none".into()));
    for (page, body) in expected {
        let (status, got) =
            web::http_get(running.address, &page).with_context(|| format!("GET {page} failed"))?;
        if status != 200 || got != body {
            bail!("GET {page} answered {status} `{got}`, not 200 `{body}`");
        }
    }
    Ok(())
}

/// `total` inserts from [`CLIENTS`] clients at once, each sending its share one after the
/// other; then every (client, seq) must be in `hits` exactly once (the table has no unique
/// key: a duplicate would be a second row).
fn insert(running: &Running, db: &MariaDb, database: &str, total: usize) -> Result<Inserts> {
    let address = running.address;
    let per_client = total / CLIENTS;
    let started = Instant::now();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                scope.spawn(move || -> Result<(), String> {
                    for seq in 0..per_client {
                        let page = format!("/insert?client={client}&seq={seq}");
                        let (status, body) = web::http_get(address, &page)
                            .map_err(|e| format!("GET {page}: {e:#}"))?;
                        if status != 200 || body.parse::<u64>().is_err() {
                            return Err(format!("GET {page} answered {status}: {body}"));
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        clients
            .into_iter()
            .filter_map(|client| {
                client
                    .join()
                    .unwrap_or_else(|_| Err("the client thread panicked".into()))
                    .err()
            })
            .collect()
    });
    let took = started.elapsed();
    if let Some(first) = failures.first() {
        bail!(
            "{} of {CLIENTS} clients failed; the first: {first}",
            failures.len()
        );
    }
    let counts = db.sql(
        database,
        &format!(
            "SELECT COUNT(*), COUNT(DISTINCT client, seq), \
             SUM(client < {CLIENTS} AND seq < {per_client}) FROM hits"
        ),
    )?;
    let counts: Vec<usize> = counts
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("odd counts from the server: `{counts}`"))?;
    let requests = per_client * CLIENTS;
    let [rows, distinct, in_range] = counts[..] else {
        bail!("odd counts from the server: {counts:?}");
    };
    if rows != requests || distinct != requests || in_range != requests {
        bail!(
            "{requests} inserts answered, but `hits` holds {rows} rows, {distinct} distinct \
             (client, seq), {in_range} of the clients' (client, seq)"
        );
    }
    Ok(Inserts {
        took,
        requests,
        rows,
        distinct,
    })
}

/// The table's rows: the select per server and ours against the peer, then the inserts.
fn rows(results: &[(Server, Result<Measured, String>)]) -> Vec<Row> {
    let ours = results
        .iter()
        .find_map(|(server, measured)| match measured {
            Ok(measured) if *server == Server::Host => Some(measured),
            _ => None,
        });
    let mut rows = Vec::new();
    let mut inserts = Vec::new();
    let mut ratios = Vec::new();
    for (server, measured) in results {
        let select_name =
            format!("MySQL GET /select (connect, SELECT by primary key, close), {server}");
        let measured = match measured {
            Ok(measured) => measured,
            Err(reason) => {
                rows.push(note_row(&select_name, &format!("skipped: {reason}")));
                continue;
            }
        };
        let peer = ours.filter(|_| *server != Server::Host);
        let load = &measured.select;
        if let Some(ours) = peer {
            ratios.push(ratio_row(*server, ours, measured));
        }
        let compared = peer.map(|ours| {
            format!(
                "ours {:.2}x of it",
                ours.select.per_second / load.per_second
            )
        });
        rows.push(web::load_row(select_name, load, compared));
        let done = &measured.inserts;
        let seconds = done.took.as_secs_f64();
        let mut note = format!(
            "all {} rows there, {} distinct; {:.0} req/s",
            done.rows,
            done.distinct,
            done.requests as f64 / seconds
        );
        if let Some(ours) = peer {
            note.push_str(&format!(
                "; ours took {:.2}x its time",
                ours.inserts.took.as_secs_f64() / seconds
            ));
        }
        inserts.push(Row {
            name: format!(
                "MySQL {} inserts from {CLIENTS} concurrent requests, {server}",
                thousands(done.requests)
            ),
            median: format!("{seconds:.3} s"),
            p99: String::new(),
            ratio: note,
        });
    }
    rows.extend(ratios);
    rows.extend(inserts);
    rows
}

/// `1000` as `1,000`.
fn thousands(n: usize) -> String {
    if n < 1000 {
        n.to_string()
    } else {
        format!("{},{:03}", thousands(n / 1000), n % 1000)
    }
}

/// Ours against a peer on the select: time per request under the same load (the inverse
/// ratio of requests/s) against the goal of 1.5x, and the median latencies.
fn ratio_row(peer: Server, ours: &Measured, theirs: &Measured) -> Row {
    let ratio = theirs.select.per_second / ours.select.per_second;
    Row {
        name: format!("MySQL select, ours / {peer}: time per request (goal: within 1.5x)"),
        median: String::new(),
        p99: String::new(),
        ratio: format!(
            "{ratio:.2}x ({}); median latency {:.2}x",
            if ratio <= 1.5 { "met" } else { "not met" },
            ours.select.p50_ms / theirs.select.p50_ms
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_rows_and_counts_as_the_table_shows_them() {
        assert_eq!(thousands(200), "200");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_005), "1,234,005");
        assert_eq!(
            expected_row(MEASURED_ID),
            r#"{"id":4242,"name":"item 4242","qty":694}"#
        );
        assert_eq!(MEASURED, format!("/select?id={MEASURED_ID}"));
    }
}
