//! `wasi:http/incoming-handler` components (`fixture-http`, written against the `wasi` crate
//! as for `wasmtime serve` or Spin) behind `host serve` and Lambda's HTTP events.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mock_runtime::{Event, MockRuntime, Outcome};
use serde_json::{Value, json};
use test_artifacts as guests;

use crate::util::component;
use crate::web::{Serve, assert_invalid_event, base64_encode, client, fixture};

#[test]
fn serve_runs_a_wasi_http_component_unmodified() {
    let serve = Serve::start(component(guests::FIXTURE_HTTP), &["--timeout", "2"]);
    let http = client();

    let response = http
        .post(serve.url("/echo/path?a.b=1&c[]=2&c[]=3"))
        .header("x-custom", "one")
        .body("hello body")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen: Value = serde_json::from_str(&response.text().unwrap()).unwrap();
    assert_eq!(seen["method"], "Method::Post");
    assert_eq!(
        seen["path"], "/echo/path?a.b=1&c[]=2&c[]=3",
        "the query kept exactly"
    );
    assert_eq!(seen["body"], "hello body");
    let headers = seen["headers"].as_array().unwrap();
    assert!(headers.contains(&json!(["x-custom", "one"])), "{seen}");
    assert!(
        headers.contains(&json!(["x-forwarded-for", "127.0.0.1"])),
        "{seen}"
    );

    let response = http.get(serve.url("/cookies")).send().unwrap();
    assert_eq!(response.status(), 201);
    let cookies: Vec<_> = response.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies.len(), 2, "{cookies:?}");

    let bytes = http
        .get(serve.url("/binary"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(bytes.as_ref(), (0..=255u8).collect::<Vec<_>>());

    // Blocked in the host for 60 s: stopped at its 2 s deadline.
    let started = Instant::now();
    assert_eq!(http.get(serve.url("/sleep")).send().unwrap().status(), 504);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );

    assert_eq!(http.get(serve.url("/trap")).send().unwrap().status(), 502);
    assert!(serve.log_has("trap on request"), "{}", serve.log());
    assert_eq!(http.get(serve.url("/big")).send().unwrap().status(), 502);
    assert!(serve.log_has("6 MB"), "{}", serve.log());
    // And the server goes on.
    assert_eq!(http.get(serve.url("/after")).send().unwrap().status(), 200);
}

#[test]
fn http_events_reach_a_wasi_http_component_through_the_bootstrap() {
    let task = tempfile::tempdir().unwrap();
    std::fs::copy(
        component(guests::FIXTURE_HTTP),
        task.path().join("http.wasm"),
    )
    .unwrap();
    let mock = MockRuntime::start();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut runtime = Command::new(env!("CARGO_BIN_EXE_host"))
        .arg("bootstrap")
        .env("AWS_LAMBDA_RUNTIME_API", mock.address())
        .env("_HANDLER", "http")
        .env("LAMBDA_TASK_ROOT", task.path())
        .env("LAMP_LAYERS_ROOT", task.path())
        .env_remove("AWS_LAMBDA_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let minute = Duration::from_secs(60);
    let v2: Value =
        serde_json::from_str(&fixture("example-apigw-v2-request-no-authorizer.json")).unwrap();
    let with = |path: &str| {
        let mut event = v2.clone();
        event["rawPath"] = json!(path);
        event["requestContext"]["http"]["path"] = json!(path);
        event["rawQueryString"] = json!("");
        event.to_string()
    };
    mock.push(Event::new("v2-cookies", with("/cookies"), minute));
    mock.push(Event::new("v2-binary", with("/binary"), minute));
    let mut post: Value = serde_json::from_str(&with("/echo")).unwrap();
    post["requestContext"]["http"]["method"] = json!("POST");
    post["body"] = json!(base64_encode(b"posted"));
    post["isBase64Encoded"] = json!(true);
    mock.push(Event::new("v2-post", post.to_string(), minute));
    let mut v1: Value = serde_json::from_str(&fixture("example-apigw-request.json")).unwrap();
    v1["path"] = json!("/cookies");
    mock.push(Event::new("v1-cookies", v1.to_string(), minute));
    mock.push(Event::new("not-http", r#"{"name":"world"}"#, minute));

    let outcomes = mock.wait_for_outcomes(5, Duration::from_secs(120));
    let _ = runtime.kill();
    let _ = runtime.wait();
    let logs = std::fs::read_to_string(log.path()).unwrap();
    let response = |id: &str| -> Value {
        match &outcomes[id] {
            Outcome::Response(body) => serde_json::from_str(body).unwrap(),
            other => panic!("{id}: {other:?}\n{logs}"),
        }
    };
    let cookies = response("v2-cookies");
    assert_eq!(cookies["statusCode"], 201, "{cookies}");
    assert_eq!(
        cookies["cookies"].as_array().map(Vec::len),
        Some(2),
        "{cookies}"
    );
    let binary = response("v2-binary");
    assert_eq!(binary["isBase64Encoded"], true, "{binary}");
    assert_eq!(
        binary["body"].as_str().unwrap(),
        base64_encode(&(0..=255u8).collect::<Vec<_>>())
    );
    let posted = response("v2-post");
    let seen: Value = serde_json::from_str(posted["body"].as_str().unwrap()).unwrap();
    assert_eq!(seen["body"], "posted", "{seen}");
    let v1 = response("v1-cookies");
    assert_eq!(
        v1["multiValueHeaders"]["set-cookie"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "{v1}"
    );
    assert_invalid_event(&outcomes["not-http"], "wasi:http handler");
}

/// An HTTP server on a free loopback port answering every request with `pong`.
pub(crate) fn pong_server() -> u16 {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let _ = reader.get_mut().write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\npong",
            );
        }
    });
    port
}

/// Outgoing wasi:http requests follow the network policy, like sockets.
#[test]
fn outgoing_requests_go_only_where_the_policy_allows() {
    let port = pong_server();
    let target = format!("127.0.0.1:{port}");
    let denied = Serve::start(component(guests::FIXTURE_HTTP), &[]);
    let allowed = Serve::start(
        component(guests::FIXTURE_HTTP),
        &["--allow-outbound", &target],
    );
    let http = client();
    let fetch = |serve: &Serve, url: &str| {
        http.get(serve.url(&format!("/fetch?{url}")))
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    let url = format!("http://{target}/ping");
    assert_eq!(fetch(&allowed, &url), "status 200: pong");
    let refused = fetch(&denied, &url);
    assert!(refused.starts_with("error:"), "{refused}");
    assert!(denied.log_has(&target), "{}", denied.log());
    // Another name is never looked up; https is refused with the reason.
    assert!(fetch(&allowed, "http://elsewhere.example/").starts_with("error:"));
    assert!(allowed.log_has("elsewhere.example"), "{}", allowed.log());
    assert!(fetch(&allowed, &format!("https://{target}/")).starts_with("error:"));
    assert!(allowed.log_has("no TLS"), "{}", allowed.log());
}
