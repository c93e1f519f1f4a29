//! Real applications, unmodified, through `host serve` against the tests' private MariaDB,
//! spoken to as a browser would (a cookie jar, their forms, their CSRF tokens and nonces, their
//! redirects):
//!
//! - Debian's Adminer (the `adminer` package, 4.8.1: a database admin app, one compiled PHP
//!   file of 470 KB with its plugins).
//! - Debian's WordPress (the `wordpress` package, 6.1, with its default theme from
//!   `wordpress-theme-twentytwentythree`: 959 PHP files), from its installer to a published post.
//!
//! Adminer is deployed as the package deploys it: Apache's `Alias /adminer /etc/adminer` with
//! `DirectoryIndex conf.php`, that `conf.php` (the package's configuration: its plugins, then
//! `include ADMINER_DIR . "/adminer.php"`) being the front controller. Here it is
//! `public/index.php`, with the package's files copied beside `public/` (the sandbox maps the
//! task root only), and the one line a user would change: `ADMINER_DIR`, where they are.
//! The whole package is copied, as a user would deploy it: 151 files compiled into the snapshot,
//! 9 MB of compiled code, which is how engine.rs's `MAX_DENSE_IMAGE_BYTES` came to be.
//!
//! WordPress is deployed as the package's Apache example has it, `DocumentRoot
//! /usr/share/wordpress/` with `Alias /wp-content /var/lib/wordpress/wp-content`, both copied
//! into one folder, with the `wp-config.php` a user writes from the package's
//! `wp-config-sample.php` (below, [`wordpress`]).
//!
//! These need `adminer`, `wordpress` (scripts/setup.sh) and `make php`; they fail, not skip,
//! without them.

use std::path::Path;
use std::time::Instant;

use reqwest::Url;
use reqwest::blocking::{Client, Response, multipart};
use reqwest::header;
use serde_json::{Value, json};

use crate::mariadb::{MariaDb, USER, mariadb};
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

/// A fresh instance per request starts in a pooling slot whose memory the previous instance
/// dirtied: wasmtime copies those pages back from the image in place (PAGEMAP_SCAN, Linux 6.7+)
/// rather than unmapping them to be faulted in again. Adminer's login page dirties more than
/// the 32 separate runs of pages that wasmtime 48 scanned before it gave up and unmapped the
/// rest (patches/wasmtime/pagemap-scan-past-32-regions.patch): 309 faults per request without
/// the patch, none with it.
#[test]
fn adminer_pages_reuse_their_slots_memory_without_page_faults() {
    if !host::engine::kernel_has_pagemap_scan() {
        eprintln!(
            "skipped: this kernel has no PAGEMAP_SCAN (Linux 6.7+): wasmtime resets by unmapping"
        );
        return;
    }
    let app = adminer();
    php_cwasm(); // compiled once per test process: not part of the app's start
    let serve = Serve::start(&app.path().join("public"), &[]);
    let client = client();
    let login = |client: &Client| {
        let (status, body) = page(client.get(serve.url("/")).send().unwrap());
        assert_eq!(status, 200, "{body}");
        assert_login_page(&body);
    };
    // Every slot (2 instances at a time) has served the page: what they dirtied is resident.
    for _ in 0..10 {
        login(&client);
    }
    let before = serve.minor_faults();
    let requests = 50;
    for _ in 0..requests {
        login(&client);
    }
    let faults = serve.minor_faults() - before;
    assert!(
        faults < requests,
        "{faults} page faults in {requests} requests of the same page: the instances' memory \
         is unmapped and faulted in again"
    );
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

/// What Debian's `wordpress` installs: the code, the content folder its `wp-config.php` sets as
/// `WP_CONTENT_DIR` (plugins and themes are links back into the code), and the sample
/// configuration.
const WORDPRESS: &str = "/usr/share/wordpress";
const WP_CONTENT: &str = "/var/lib/wordpress/wp-content";
const WP_CONFIG_SAMPLE: &str = "/usr/share/wordpress/wp-config-sample.php";

/// The blog the installer makes, its administrator and the post they write.
const BLOG: &str = "Sandboxed Words";
const ADMIN: &str = "editor";
const ADMIN_EMAIL: &str = "editor@example.com";
const PASSWORD: &str = "correct horse battery staple";
const POST_TITLE: &str = "Written in the sandbox";
const POST_TEXT: &str = "Published through the REST API, as the block editor saves.";

/// A document root with WordPress deployed against `database` as [`USER`]: the package's
/// files (symbolic links followed: some lead to /etc and /usr/share/javascript, outside the one
/// folder the sandbox maps), its content folder as `wp-content/`, and in place of Debian's
/// `wp-config.php` (which reads `/etc/wordpress/config-HOST.php`, also outside) the one a user
/// writes from the package's `wp-config-sample.php`: the database's settings, eight keys and
/// salts of their own, everything else as the sample has it (`$table_prefix = 'wp_'`, `ABSPATH`,
/// `require_once ABSPATH . 'wp-settings.php'`).
fn wordpress(db: &MariaDb, database: &str) -> tempfile::TempDir {
    let mut config = std::fs::read_to_string(WP_CONFIG_SAMPLE).unwrap_or_else(|e| {
        panic!("{WP_CONFIG_SAMPLE}: {e} (install Debian's wordpress: scripts/setup.sh)")
    });
    let root = tempfile::tempdir().unwrap();
    copy_tree(Path::new(WORDPRESS), root.path());
    copy_tree(Path::new(WP_CONTENT), &root.path().join("wp-content"));
    for (setting, value) in [
        ("'DB_NAME', 'database_name_here'", database.to_string()),
        ("'DB_USER', 'username_here'", USER.to_string()),
        (
            "'DB_PASSWORD', 'password_here'",
            db.password(USER).to_string(),
        ),
        ("'DB_HOST', 'localhost'", db.address()),
    ] {
        assert!(
            config.contains(setting),
            "{WP_CONFIG_SAMPLE} changed:\n{config}"
        );
        let name = &setting[..setting.find(',').unwrap()];
        config = config.replace(setting, &format!("{name}, '{value}'"));
    }
    const PHRASE: &str = "'put your unique phrase here'";
    assert_eq!(config.matches(PHRASE).count(), 8, "{config}");
    while config.contains(PHRASE) {
        let salt = format!(
            "'{}{}'",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        config = config.replacen(PHRASE, &salt, 1);
    }
    std::fs::write(root.path().join("wp-config.php"), config).unwrap();
    root
}

/// The text of `page` between `start` and the next `end`, or a panic with the page.
fn between<'a>(page: &'a str, start: &str, end: &str) -> &'a str {
    page.find(start)
        .map(|at| &page[at + start.len()..])
        .and_then(|rest| Some(&rest[..rest.find(end)?]))
        .unwrap_or_else(|| panic!("no {start:?}...{end:?} in:\n{page}"))
}

/// WordPress's login form: a browser posts the test cookie's flag with it.
fn wp_login(password: &str) -> [(&'static str, &str); 4] {
    [
        ("log", ADMIN),
        ("pwd", password),
        ("wp-submit", "Log In"),
        ("testcookie", "1"),
    ]
}

/// The names of the cookies a response sets.
fn cookies_set(response: &Response) -> Vec<String> {
    response.cookies().map(|c| c.name().to_string()).collect()
}

/// The dashboard without a session: a redirect to the login page, which leads back there.
fn assert_sent_to_login(http: &Client, serve: &Serve, why: &str) {
    let to = location(&http.get(serve.url("/wp-admin/")).send().unwrap());
    assert_eq!(to.path(), "/wp-login.php", "{why}: {to}");
    let back = to.query_pairs().find(|(k, _)| k == "redirect_to");
    assert_eq!(
        back.map(|(_, v)| v.into_owned()),
        Some(serve.url("/wp-admin/")),
        "{why}: {to}"
    );
}

/// A post published through WordPress's REST API as the block editor does it (the logged-in
/// cookie and the `X-WP-Nonce` the editor's page gives), with or without the nonce: the status
/// and the JSON answer.
fn publish(http: &Client, api: &Value, nonce: Option<&str>) -> (u16, Value) {
    let root = api["root"].as_str().unwrap();
    let post = json!({
        "title": POST_TITLE,
        "content": format!("<!-- wp:paragraph -->\n<p>{POST_TEXT}</p>\n<!-- /wp:paragraph -->"),
        "status": "publish",
    });
    let mut request = http
        .post(format!("{root}wp/v2/posts"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(post.to_string());
    if let Some(nonce) = nonce {
        request = request.header("X-WP-Nonce", nonce);
    }
    let (status, body) = page(request.send().unwrap());
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (status, json)
}

/// WordPress through `host serve`, as a new site's owner drives it: the installer (its page,
/// then its form, which creates the tables, the administrator and the first post), the blog's
/// front page in its default theme, a wrong password refused (without WordPress's test cookie,
/// then with it), a login whose cookies carry the session to the dashboard, a post published
/// through the REST API with the editor's nonce (refused without it) that then shows on the
/// front page and its own, and a logout. What each step did is checked in the server too.
#[test]
fn wordpress_installs_logs_in_and_publishes_through_serve() {
    let db = mariadb();
    let database = db.database("wordpress").unwrap();
    let app = wordpress(db, &database);
    php_cwasm(); // compiled once per test process: not part of the app's start
    // With the snapshot, as `host serve` runs by default. Building it takes about as long as
    // for a one-file app (on 2 busy cores: 50 s, and 44 s for one file; most of it is wizer's
    // run of PHP and the compile of the result, whatever the app), and the pages then take
    // 3.5 s instead of 10 s: the test costs some 40 s more than with `--no-snapshot`, for the
    // one check of the preload against an app this large, whose pluggable functions and
    // classes are declared conditionally.
    let started = Instant::now();
    let serve = Serve::start(app.path(), &["--allow-outbound", &db.address()]);
    eprintln!(
        "host serve of WordPress listening after {:?}",
        started.elapsed()
    );
    // Every file of WordPress parses in our PHP (a file that does not is skipped, with a WARN).
    assert!(
        serve
            .log()
            .lines()
            .any(|l| l.contains("into a snapshot files=959 skipped=0 ")),
        "{}",
        serve.log()
    );
    let started = Instant::now();
    let http = client();
    let url = |path: &str| serve.url(path);
    let sql = |query: &str| db.sql(&database, query).unwrap();

    // Not installed yet: every page leads to the installer.
    let response = http.get(url("/")).send().unwrap();
    assert_eq!(location(&response).as_str(), url("/wp-admin/install.php"));
    let (status, body) = page(http.get(url("/wp-admin/install.php")).send().unwrap());
    assert_eq!(status, 200, "{body}\n{}", serve.log());
    for needle in [
        "<title>WordPress &rsaquo; Installation</title>",
        "<h1>Welcome</h1>",
        "<form id=\"setup\" method=\"post\" action=\"install.php?step=2\"",
        "<input name=\"weblog_title\" type=\"text\"",
        "<input type=\"password\" name=\"admin_password\"",
    ] {
        assert!(body.contains(needle), "no {needle:?} in:\n{body}");
    }
    assert_eq!(
        sql("SHOW TABLES"),
        "",
        "the installer's page creates nothing"
    );

    // The installer's form: the tables, the options, the administrator, the first post.
    let (status, body) = page(
        http.post(url("/wp-admin/install.php?step=2"))
            .form(&[
                ("weblog_title", BLOG),
                ("user_name", ADMIN),
                ("admin_password", PASSWORD),
                ("admin_password2", PASSWORD),
                ("admin_email", ADMIN_EMAIL),
                ("blog_public", "0"),
                ("Submit", "Install WordPress"),
                ("language", ""),
            ])
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}\n{}", serve.log());
    for needle in [
        "<h1>Success!</h1>",
        "<p>WordPress has been installed. Thank you, and enjoy!</p>",
        &format!("<th>Username</th>\n\t\t<td>{ADMIN}</td>"),
        &format!(
            "<a href=\"{}\" class=\"button button-large\">Log In</a>",
            url("/wp-login.php")
        ),
    ] {
        assert!(body.contains(needle), "no {needle:?} in:\n{body}");
    }
    assert_eq!(
        sql(
            "SELECT option_value FROM wp_options WHERE option_name IN ('blogname', 'siteurl', \
             'template') ORDER BY option_name"
        ),
        format!("{BLOG}\n{}\ntwentytwentythree\n", serve.base)
    );
    let user = sql("SELECT user_login, user_email, user_pass FROM wp_users");
    let fields: Vec<&str> = user.trim_end().split('\t').collect();
    assert_eq!(fields[..2], [ADMIN, ADMIN_EMAIL], "{user}");
    assert!(
        fields[2].starts_with("$P$B") && fields[2].len() == 34,
        "the password as WordPress's phpass hash: {user}"
    );

    // The front page, in the default theme: the blog's name and the installer's first post.
    let (status, body) = page(http.get(url("/")).send().unwrap());
    assert_eq!(status, 200, "{body}\n{}", serve.log());
    assert!(body.contains(&format!("<title>{BLOG}</title>")), "{body}");
    assert!(
        body.contains(&format!(
            "<a href=\"{}/?p=1\" target=\"_self\" >Hello world!</a>",
            serve.base
        )),
        "{body}"
    );
    assert!(
        body.contains("wp-content/themes/twentytwentythree/"),
        "{body}"
    );

    // A wrong password, refused: first without the test cookie (no login page seen), which
    // WordPress answers about cookies, then as a browser sends it, answered about the password.
    let stranger = client();
    let (status, body) = page(
        stranger
            .post(url("/wp-login.php"))
            .form(&wp_login("not the password"))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
    assert!(
        body.contains("Cookies are blocked or not supported by your browser."),
        "{body}"
    );
    let response = stranger.get(url("/wp-login.php")).send().unwrap();
    assert_eq!(cookies_set(&response), ["wordpress_test_cookie"]);
    let (status, body) = page(response);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("<form name=\"loginform\" id=\"loginform\""),
        "{body}"
    );
    let response = stranger
        .post(url("/wp-login.php"))
        .form(&wp_login("not the password"))
        .send()
        .unwrap();
    assert_eq!(
        cookies_set(&response),
        ["wordpress_test_cookie"],
        "the test cookie again, no session"
    );
    let (status, body) = page(response);
    assert_eq!(status, 200);
    assert!(
        body.contains(&format!(
            "<strong>Error:</strong> The password you entered for the username \
             <strong>{ADMIN}</strong> is incorrect."
        )),
        "{body}"
    );
    assert_sent_to_login(&stranger, &serve, "the dashboard is closed to them");

    // The login: WordPress's cookies, which the next requests carry to the dashboard.
    let response = http.get(url("/wp-login.php")).send().unwrap();
    assert_eq!(response.status(), 200);
    let response = http
        .post(url("/wp-login.php"))
        .form(&wp_login(PASSWORD))
        .send()
        .unwrap();
    assert_eq!(location(&response).as_str(), url("/wp-admin/"));
    let cookies = cookies_set(&response);
    for prefix in [
        "wordpress_test_cookie",
        "wordpress_",
        "wordpress_logged_in_",
    ] {
        assert!(
            cookies.iter().any(|c| c.starts_with(prefix)),
            "no {prefix}* in {cookies:?}"
        );
    }
    let (status, body) = page(http.get(url("/wp-admin/")).send().unwrap());
    assert_eq!(status, 200, "{body}\n{}", serve.log());
    for needle in [
        format!("<title>Dashboard &lsaquo; {BLOG} &#8212; WordPress</title>"),
        "<h1>Dashboard</h1>".to_string(),
        format!("Howdy, <span class=\"display-name\">{ADMIN}</span>"),
    ] {
        assert!(body.contains(&needle), "no {needle:?} in:\n{body}");
    }
    // The admin bar's link: `...action=logout&#038;_wpnonce=NONCE'` (and `"` in the menu).
    let nonce: String = body
        .split("/wp-login.php?action=logout&#038;_wpnonce=")
        .nth(1)
        .map(|rest| {
            rest.chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect()
        })
        .unwrap_or_else(|| panic!("no logout link in:\n{body}"));
    let logout = url(&format!("/wp-login.php?action=logout&_wpnonce={nonce}"));

    // A post, as the block editor publishes it: its page gives the REST API's root and nonce.
    let (status, body) = page(http.get(url("/wp-admin/post-new.php")).send().unwrap());
    assert_eq!(status, 200, "{body}\n{}", serve.log());
    assert!(
        body.contains(&format!(
            "<title>Add New Post &lsaquo; {BLOG} &#8212; WordPress</title>"
        )),
        "{body}"
    );
    let api: Value = serde_json::from_str(between(&body, "var wpApiSettings = ", ";\n")).unwrap();
    // Without the nonce the cookie does not count (WordPress's CSRF defence), and nothing is made.
    let (status, answer) = publish(&http, &api, None);
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["code"], "rest_cannot_create", "{answer}");
    let (status, answer) = publish(&http, &api, api["nonce"].as_str());
    assert_eq!(status, 201, "{answer}\n{}", serve.log());
    assert_eq!(answer["status"], "publish", "{answer}");
    assert_eq!(answer["title"]["raw"], POST_TITLE, "{answer}");
    let id = answer["id"].as_u64().unwrap();
    let link = format!("{}/?p={id}", serve.base);
    assert_eq!(answer["link"], link.as_str(), "{answer}");
    assert_eq!(
        sql(&format!(
            "SELECT p.post_title, p.post_status, u.user_login FROM wp_posts p \
             JOIN wp_users u ON u.ID = p.post_author WHERE p.ID = {id}"
        )),
        format!("{POST_TITLE}\tpublish\t{ADMIN}\n")
    );
    assert_eq!(
        sql(&format!(
            "SELECT COUNT(*) FROM wp_posts WHERE post_title = '{POST_TITLE}'"
        )),
        "1\n",
        "one post: the request without the nonce made none"
    );

    // On the front page, for anyone, and on its own page.
    let (status, body) = page(client().get(url("/")).send().unwrap());
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!(
            "<a href=\"{link}\" target=\"_self\" >{POST_TITLE}</a>"
        )),
        "{body}"
    );
    let (status, body) = page(client().get(&link).send().unwrap());
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!("<title>{POST_TITLE} &#8211; {BLOG}</title>")),
        "{body}"
    );
    assert!(body.contains(&format!("<p>{POST_TEXT}</p>")), "{body}");

    // The logout (the dashboard's link, with its nonce) ends the session.
    let response = http.get(logout).send().unwrap();
    assert!(
        location(&response)
            .as_str()
            .starts_with(&url("/wp-login.php?loggedout=true")),
        "{}",
        serve.log()
    );
    assert_sent_to_login(&http, &serve, "logged out");
    eprintln!(
        "WordPress's pages through host serve in {:?}",
        started.elapsed()
    );

    // PHP's messages are log lines of their own (`PHP Warning:  ...`). WordPress gives two,
    // Debian's own: its patch to the installer (Debian #430781) stores `$upload_path` and
    // `$upload_url_path`, which only a site's config could define (not even the package's
    // `setup-mysql` writes them), so every install warns, native PHP's too, and the two
    // options are left empty, their default.
    let log = serve.log();
    let php: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once("\tPHP ").map(|(_, m)| m))
        .collect();
    assert_eq!(
        php,
        [
            "Warning:  Undefined variable $upload_path in /var/task/wp-admin/install.php on line 417",
            "Warning:  Undefined variable $upload_url_path in /var/task/wp-admin/install.php on line 418",
        ],
        "{log}"
    );
    // The host's warnings are what WordPress tried beyond the database, refused by the network
    // policy: requests to the site itself (the installer's test of pretty permalinks, the front
    // page's cron) and to api.wordpress.org (the admin's update checks). WordPress goes on
    // without them, as it does behind a firewall.
    for line in log
        .lines()
        .filter(|l| l.contains("\tWARN\t") || l.contains("\tERROR\t"))
    {
        assert!(line.contains("\tWARN\trefused the guest's "), "{log}");
    }
}
