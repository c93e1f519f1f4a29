//! Real applications, unmodified, through `host serve`: Debian's Adminer (the `adminer`
//! package, 4.8.1: a database admin app, one compiled PHP file of 470 KB with its plugins)
//! against the tests' private MariaDB, spoken to as a browser would (a cookie jar, its forms,
//! their CSRF tokens, its redirects).
//!
//! The app is deployed as the package deploys it: Apache's `Alias /adminer /etc/adminer` with
//! `DirectoryIndex conf.php`, that `conf.php` (the package's configuration: its plugins, then
//! `include ADMINER_DIR . "/adminer.php"`) being the front controller. Here it is
//! `public/index.php`, with the package's files copied beside `public/` (the sandbox maps the
//! task root only), and the one line a user would change: `ADMINER_DIR`, where they are.
//! The whole package is copied, as a user would deploy it: 151 files compiled into the snapshot,
//! 9 MB of compiled code, which is how engine.rs's `MAX_DENSE_IMAGE_BYTES` came to be.
//!
//! These need `adminer` (scripts/setup.sh) and `make php`; they fail, not skip, without them.

use std::path::Path;
use std::time::Instant;

use reqwest::Url;
use reqwest::blocking::{Response, multipart};
use reqwest::header;

use crate::mariadb::{USER, mariadb};
use crate::mysql::items_database;
use crate::php::php_cwasm;
use crate::web::{Serve, client, copy_tree};

/// What Debian's `adminer` installs: the app, and the configuration Apache serves.
const ADMINER: &str = "/usr/share/adminer";
const CONF: &str = "/etc/adminer/conf.php";
const ADMINER_DIR: &str = "define('ADMINER_DIR', '/usr/share/adminer');";

/// A task root with Adminer deployed: `adminer/` (the package's files, symbolic links
/// followed) and `public/index.php` (its `conf.php`, `ADMINER_DIR` pointing there).
fn adminer() -> tempfile::TempDir {
    let conf = std::fs::read_to_string(CONF)
        .unwrap_or_else(|e| panic!("{CONF}: {e} (install Debian's adminer: scripts/setup.sh)"));
    assert!(conf.contains(ADMINER_DIR), "{CONF} changed:\n{conf}");
    let app = tempfile::tempdir().unwrap();
    let (code, public) = (app.path().join("adminer"), app.path().join("public"));
    for dir in [&code, &public] {
        std::fs::create_dir_all(dir).unwrap();
    }
    copy_tree(Path::new(ADMINER), &code);
    let conf = conf.replace(
        ADMINER_DIR,
        "define('ADMINER_DIR', dirname(__DIR__) . '/adminer');",
    );
    std::fs::write(public.join("index.php"), conf).unwrap();
    app
}

/// A page as a browser gets it: the status and the text.
fn page(response: Response) -> (u16, String) {
    (response.status().as_u16(), response.text().unwrap())
}

/// Where a redirect of Adminer's leads (its `Location`s are relative: `?server=...`).
fn location(response: &Response) -> Url {
    assert!(
        response.status().is_redirection(),
        "not a redirect: {}",
        response.status()
    );
    let to = response.headers()[header::LOCATION].to_str().unwrap();
    response.url().join(to).unwrap()
}

/// The CSRF token Adminer put in the page's forms (`<input type='hidden' name='token'
/// value='...'>`), or a panic with the page.
fn token(page: &str) -> String {
    ["name='token' value='", "name=\"token\" value=\""]
        .iter()
        .find_map(|start| {
            let rest = &page[page.find(start)? + start.len()..];
            Some(rest[..rest.find(['\'', '"'])?].to_string())
        })
        .unwrap_or_else(|| panic!("no CSRF token in the page:\n{page}"))
}

/// The login form's fields, MySQL driver.
fn login(server: &str, user: &str, password: &str, database: &str) -> Vec<(String, String)> {
    [
        ("auth[driver]", "server"),
        ("auth[server]", server),
        ("auth[username]", user),
        ("auth[password]", password),
        ("auth[db]", database),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The login page with Adminer's real form, and no database view.
fn assert_login_page(page: &str) {
    for needle in [
        "<h2>Login</h2>",
        "<option value=\"server\" selected>MySQL",
        "<input name=\"auth[server]\"",
        "<input type=\"password\" name=\"auth[password]\"",
        "<input type='submit' value='Login'>",
    ] {
        assert!(page.contains(needle), "no {needle:?} in:\n{page}");
    }
    assert!(!page.contains("id='Table-items'"), "{page}");
}

/// Adminer through `host serve`, as a user drives it: the login page (and its assets, which its
/// PHP serves), a wrong password answered with the server's message, a login kept by the
/// session, the database's tables and rows, a SQL command with the form's CSRF token (one
/// without it refused), a SQL file imported by upload, an export, and a logout that ends the
/// session. What each step did is checked in the server too, with its own client.
#[test]
fn adminer_logs_in_runs_sql_and_logs_out_through_serve() {
    let db = mariadb();
    let database = items_database(db, "adminer");
    db.sql(
        &database,
        "INSERT INTO items (name, qty) VALUES ('apple', 3), ('pear', 5)",
    )
    .unwrap();
    let app = adminer();
    php_cwasm(); // compiled once per test process: not part of the app's start
    let started = Instant::now();
    let serve = Serve::start(
        &app.path().join("public"),
        &["--allow-outbound", &db.address()],
    );
    eprintln!(
        "host serve of Adminer listening after {:?}",
        started.elapsed()
    );
    // Every file of the package parses in our PHP (a file that does not is skipped, with a WARN).
    assert!(
        serve
            .log()
            .lines()
            .any(|l| l.contains("into a snapshot") && l.contains(" skipped=0 ")),
        "{}",
        serve.log()
    );
    let started = Instant::now();
    let http = client();
    let server = format!("127.0.0.1:{}", db.port());
    let url = |query: &str| serve.url(&format!("/{query}"));

    // The login page, and Adminer's assets, which its PHP serves from the compiled file.
    let (status, body) = page(http.get(url("")).send().unwrap());
    assert_eq!(status, 200, "{body}\n{}", serve.log());
    assert_login_page(&body);
    let response = http
        .get(url("?file=favicon.ico&version=4.8.1"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "image/x-icon");
    let icon = std::fs::read(format!("{ADMINER}/adminer/static/favicon.ico")).unwrap();
    assert_eq!(
        response.bytes().unwrap().to_vec(),
        icon,
        "the favicon as the package has it (its LZW copy in adminer.php, decompressed)"
    );
    let response = http
        .get(url("?file=default.css&version=4.8.1"))
        .send()
        .unwrap();
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(response.text().unwrap().contains("#menu"));

    // A wrong password: Adminer's login page again, 403, with the server's own message.
    let stranger = client();
    let response = stranger
        .post(url(""))
        .form(&login(&server, USER, "wrong", &database))
        .send()
        .unwrap();
    let (status, body) = page(stranger.get(location(&response)).send().unwrap());
    assert_eq!(status, 403, "{body}");
    assert_login_page(&body);
    assert!(
        body.contains(
            "<div class='error'>Access denied for user &#039;lamp&#039;@&#039;127.0.0.1&#039; \
             (using password: YES)</div>"
        ),
        "{body}"
    );

    // The login: a redirect to the database, which the session keeps open.
    let response = http
        .post(url(""))
        .form(&login(&server, USER, db.password(USER), &database))
        .send()
        .unwrap();
    let server_query = format!("?server=127.0.0.1%3A{}&username={USER}", db.port());
    let db_query = format!("{server_query}&db={database}");
    let home = location(&response);
    assert_eq!(home.as_str(), url(&db_query));
    let (status, body) = page(http.get(home.clone()).send().unwrap());
    assert_eq!(status, 200, "{body}\n{}", serve.log());
    assert!(
        body.contains(&format!(
            "<title>Database: {database} - {server} - Adminer</title>"
        )),
        "{body}"
    );
    assert!(body.contains("id='Table-items'>items</a>"), "{body}");
    assert!(
        body.contains("<input type=\"submit\" name=\"logout\""),
        "{body}"
    );
    let logout_token = token(&body);

    // The server's page: who is logged in, through which extension; then the table's rows.
    let (status, body) = page(http.get(url(&server_query)).send().unwrap());
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Logged as: <b>lamp@127.0.0.1</b>"), "{body}");
    let version = db.sql("", "SELECT VERSION()").unwrap();
    assert!(
        body.contains(&format!(
            "MySQL version: <b>{}</b> through PHP extension <b>MySQLi</b>",
            version.trim()
        )),
        "{body}"
    );
    assert!(
        body.contains(&format!("id='Db-{database}'>{database}</a>")),
        "{body}"
    );
    let (status, body) = page(
        http.get(url(&format!("{db_query}&select=items")))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    for row in ["apple", "pear"] {
        assert!(body.contains(&format!(">{row}</td>")), "no {row}: {body}");
    }

    // A SQL command through the SQL page's form, with its CSRF token.
    let sql = url(&format!("{db_query}&sql="));
    let (status, body) = page(http.get(&sql).send().unwrap());
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<textarea name='query'"), "{body}");
    let query = "CREATE TABLE notes (id INT PRIMARY KEY, body VARCHAR(100));\n\
                 INSERT INTO notes VALUES (1, 'written by Adminer in the sandbox');\n\
                 SELECT body, (SELECT SUM(qty) FROM items) AS qty FROM notes;";
    let form = |token: &str| {
        vec![
            ("query", query.to_string()),
            ("limit", String::new()),
            ("token", token.to_string()),
        ]
    };
    let (status, body) = page(http.post(&sql).form(&form(&token(&body))).send().unwrap());
    assert_eq!(status, 200, "{body}\n{}", serve.log());
    assert!(
        body.contains("Query executed OK, 0 rows affected."),
        "{body}"
    );
    assert!(
        body.contains("Query executed OK, 1 row affected."),
        "{body}"
    );
    assert!(
        body.contains("<td>written by Adminer in the sandbox<td>8"),
        "the SELECT's row: {body}"
    );
    assert_eq!(
        db.sql(&database, "SELECT id, body FROM notes").unwrap(),
        "1\twritten by Adminer in the sandbox\n",
        "the row is in the server"
    );
    // Without its token the same form is refused, and nothing runs.
    let (_, body) = page(
        http.post(&sql)
            .form(&[("query", "DROP TABLE notes"), ("token", "1:1")])
            .send()
            .unwrap(),
    );
    assert!(body.contains("Invalid CSRF token."), "{body}");
    assert_eq!(
        db.sql(&database, "SELECT COUNT(*) FROM notes").unwrap(),
        "1\n"
    );
    // The new table, in the next request's database view.
    let (_, body) = page(http.get(home.clone()).send().unwrap());
    assert!(body.contains("id='Table-notes'>notes</a>"), "{body}");

    // An import: a SQL file uploaded through the import form (`sql_file[]`, into `$_FILES`).
    let import = url(&format!("{db_query}&import="));
    let (status, body) = page(http.get(&import).send().unwrap());
    assert_eq!(status, 200, "{body}");
    let file = "INSERT INTO notes VALUES (2, 'imported');\nUPDATE items SET qty = qty + 1;\n";
    let form = multipart::Form::new()
        .part(
            "sql_file[]",
            multipart::Part::bytes(file.as_bytes().to_vec()).file_name("notes.sql"),
        )
        .text("error_stops", "1")
        .text("token", token(&body));
    let (status, body) = page(http.post(&import).multipart(form).send().unwrap());
    assert_eq!(status, 200, "{body}\n{}", serve.log());
    assert!(
        body.contains("Query executed OK, 2 rows affected."),
        "{body}"
    );
    assert_eq!(
        db.sql(
            &database,
            "SELECT GROUP_CONCAT(body ORDER BY id), (SELECT SUM(qty) FROM items) FROM notes"
        )
        .unwrap(),
        "written by Adminer in the sandbox,imported\t10\n"
    );

    // An export: the database as SQL, the download Adminer makes of it.
    let dump = url(&format!("{db_query}&dump="));
    let (status, body) = page(http.get(&dump).send().unwrap());
    assert_eq!(status, 200, "{body}");
    let response = http
        .post(&dump)
        .form(&[
            ("output", "text"),
            ("format", "sql"),
            ("db_style", ""),
            ("table_style", "DROP+CREATE"),
            ("data_style", "INSERT"),
            ("tables[]", "notes"),
            ("data[]", "notes"),
            ("token", &token(&body)),
        ])
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/plain; charset=utf-8"
    );
    let body = response.text().unwrap();
    for needle in [
        "-- Adminer 4.8.1 MySQL ",
        "DROP TABLE IF EXISTS `notes`;\nCREATE TABLE `notes` (",
        "INSERT INTO `notes` (`id`, `body`) VALUES\n(1,\t'written by Adminer in the sandbox'),\n(2,\t'imported');",
    ] {
        assert!(
            body.contains(needle),
            "no {needle:?} in the export:\n{body}"
        );
    }
    assert!(!body.contains("`items`"), "only what was asked:\n{body}");

    // The logout: back to the login page with Adminer's message, and the database is closed.
    let response = http
        .post(home.clone())
        .form(&[("logout", "Logout"), ("token", &logout_token)])
        .send()
        .unwrap();
    let after = location(&response);
    assert_eq!(
        after.as_str(),
        url(&format!("?server=127.0.0.1%3A{}", db.port()))
    );
    let (status, body) = page(http.get(after).send().unwrap());
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Logout successful."), "{body}");
    assert_login_page(&body);
    let (status, body) = page(http.get(home).send().unwrap());
    assert_eq!(status, 403, "the session no longer logs in: {body}");
    assert_login_page(&body);
    eprintln!(
        "Adminer's pages through host serve in {:?}",
        started.elapsed()
    );
    // PHP's messages are log lines of their own (`PHP Warning:  ...`); Adminer gave none.
    let log = serve.log();
    assert!(
        !log.contains("\tPHP "),
        "no error, warning or notice from PHP:\n{log}"
    );
}
