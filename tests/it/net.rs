//! The outbound network policy, through the real binary: a Rust guest (`fixture-net`, std::net
//! over wasi:sockets) connecting to servers on loopback under `host run --allow-outbound` and
//! the bootstrap's `LAMP_ALLOW_OUTBOUND`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mock_runtime::{Event, MockRuntime, Outcome};
use serde_json::Value;
use test_artifacts as guests;

use crate::util::*;

/// A server on a free loopback port that answers each connection with what it read,
/// uppercased, then closes; or, when `silent`, reads and never answers.
pub(crate) fn server(silent: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || answer(&mut stream, silent));
        }
    });
    port
}

fn answer(stream: &mut TcpStream, silent: bool) {
    if silent {
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
        std::thread::sleep(Duration::from_secs(120));
        return;
    }
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    let _ = stream.write_all(text.to_uppercase().as_bytes());
}

/// `host run` of the net fixture on `event` with `flags`: the result JSON and the log.
fn reach(event: &str, flags: &[&str]) -> (Value, String) {
    let mut args = vec!["--event", event];
    args.extend_from_slice(flags);
    let out = run(component(guests::FIXTURE_NET), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let result =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    (result, stderr(&out))
}

fn connect(target: &str) -> String {
    format!(r#"{{"connect":"{target}","send":"hello"}}"#)
}

#[test]
fn without_a_rule_the_guest_has_no_network_and_the_log_says_how_to_allow_it() {
    let port = server(false);
    let (result, log) = reach(&connect(&format!("127.0.0.1:{port}")), &[]);
    assert!(result["error"].is_string(), "{result}");
    assert!(
        log.contains(&format!("127.0.0.1:{port}")) && log.contains("--allow-outbound"),
        "the WARN line should name the destination and the flag: {log}"
    );
    let (result, _) = reach(r#"{"lookup":"localhost"}"#, &[]);
    assert!(result["error"].is_string(), "{result}");
}

#[test]
fn an_allowed_address_is_reachable_and_nothing_else() {
    let (allowed, other) = (server(false), server(false));
    let rule = format!("127.0.0.1:{allowed}");
    let (result, _) = reach(&connect(&rule), &["--allow-outbound", &rule]);
    assert_eq!(result["reply"], "HELLO", "{result}");
    let (result, log) = reach(
        &connect(&format!("127.0.0.1:{other}")),
        &["--allow-outbound", &rule],
    );
    assert!(result["error"].is_string(), "{result}");
    assert!(log.contains(&format!("127.0.0.1:{other}")), "{log}");
    // A network and a wildcard port allow both.
    for rule in ["127.0.0.0/8:*", "*:*"] {
        let (result, _) = reach(
            &connect(&format!("127.0.0.1:{other}")),
            &["--allow-outbound", rule],
        );
        assert_eq!(result["reply"], "HELLO", "{rule}: {result}");
    }
}

#[test]
fn a_name_rule_allows_that_name_and_no_lookup_of_any_other() {
    let port = server(false);
    let rule = format!("localhost:{port}");
    let (result, _) = reach(&connect(&rule), &["--allow-outbound", &rule]);
    assert_eq!(result["reply"], "HELLO", "{result}");
    // Other names are refused before any resolver sees them.
    let (result, log) = reach(
        r#"{"lookup":"not-allowed.example"}"#,
        &["--allow-outbound", &rule],
    );
    assert!(result["error"].is_string(), "{result}");
    assert!(
        log.contains("lookup of `not-allowed.example`"),
        "the refused lookup should be logged: {log}"
    );
    // The name rule does not open its address to a connection by number.
    let (result, _) = reach(
        &connect(&format!("127.0.0.1:{port}")),
        &["--allow-outbound", &rule],
    );
    assert!(result["error"].is_string(), "{result}");
}

#[test]
fn the_metadata_service_is_never_reachable() {
    for target in ["169.254.169.254:80", "[fd00:ec2::254]:80"] {
        let (result, log) = reach(&connect(target), &["--allow-outbound", "*:*"]);
        assert!(result["error"].is_string(), "{target}: {result}");
        assert!(log.contains("never reachable"), "{target}: {log}");
    }
}

#[test]
fn bad_rules_are_refused_with_the_flag_named() {
    for rule in ["nohost", "db:99999", "10.0.0.0/40:5432", "bad name:80"] {
        let out = run(
            component(guests::FIXTURE_NET),
            &["--event", "{}", "--allow-outbound", rule],
        );
        assert!(!out.status.success(), "{rule} was accepted");
        assert!(
            stderr(&out).contains(&format!("--allow-outbound `{rule}`")),
            "{rule}: {}",
            stderr(&out)
        );
    }
}

/// A guest blocked reading a socket that never answers ends at its deadline.
#[test]
fn a_guest_blocked_on_a_silent_peer_is_stopped_at_its_deadline() {
    let port = server(true);
    let target = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let out = run(
        component(guests::FIXTURE_NET),
        &[
            "--event",
            &format!(r#"{{"connect":"{target}"}}"#),
            "--allow-outbound",
            &target,
            "--timeout",
            "1",
        ],
    );
    assert_eq!(
        error_json(&out)["errorType"],
        "Sandbox.Timedout",
        "{}",
        stderr(&out)
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "ran {:?}, past its 1 s deadline",
        started.elapsed()
    );
}

/// Under the bootstrap, `LAMP_ALLOW_OUTBOUND` is the policy, and the Runtime API stays out of
/// reach even when a rule covers its address.
#[test]
fn the_bootstrap_takes_its_rules_from_the_environment_and_never_reaches_the_runtime_api() {
    let mock = MockRuntime::start();
    let port = server(false);
    let task = tempfile::tempdir().unwrap();
    std::fs::copy(component(guests::FIXTURE_NET), task.path().join("net.wasm")).unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_host"))
        .arg("bootstrap")
        .env("AWS_LAMBDA_RUNTIME_API", mock.address())
        .env("_HANDLER", "net")
        .env("LAMBDA_TASK_ROOT", task.path())
        .env("LAMP_LAYERS_ROOT", task.path())
        .env("LAMP_ALLOW_OUTBOUND", "127.0.0.1:*")
        .env_remove("AWS_LAMBDA_MAX_CONCURRENCY")
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let deadline = Duration::from_secs(20);
    mock.push(Event::new(
        "server",
        connect(&format!("127.0.0.1:{port}")),
        deadline,
    ));
    mock.push(Event::new("api", connect(&mock.address()), deadline));
    let outcomes = mock.wait_for_outcomes(2, Duration::from_secs(60));
    let _ = child.kill();
    let _ = child.wait();
    let body = |id: &str| match &outcomes[id] {
        Outcome::Response(body) => serde_json::from_str::<Value>(body).unwrap(),
        other => panic!("{id}: {other:?}"),
    };
    assert_eq!(body("server")["reply"], "HELLO");
    assert!(body("api")["error"].is_string(), "{}", body("api"));
    let log = std::fs::read_to_string(log.path()).unwrap();
    assert!(log.contains("Runtime API"), "{log}");
}

/// PHP (built on the wasm32-wasip2 libc's sockets) under the same policy: `file_get_contents`
/// of an allowed `http://` URL by IP and by name, and the refused ones with PHP's ordinary
/// errors and the host's WARN.
#[test]
fn php_streams_reach_what_the_policy_allows() {
    let port = crate::http::pong_server();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("get.php");
    std::fs::write(
        &script,
        r#"<?php function get($e) {
            $r = @file_get_contents('http://' . $e['to'] . '/ping');
            return $r === false ? 'error: ' . error_get_last()['message'] : $r;
        }"#,
    )
    .unwrap();
    let get = |to: &str, rule: Option<&str>| {
        let event = format!(r#"{{"to":"{to}"}}"#);
        let mut args = vec!["--event", event.as_str()];
        if let Some(rule) = rule {
            args.extend(["--allow-outbound", rule]);
        }
        let out = run(&script, &args);
        assert!(out.status.success(), "{}", stderr(&out));
        (stdout(&out), stderr(&out))
    };
    let ip = format!("127.0.0.1:{port}");
    let name = format!("localhost:{port}");
    assert_eq!(get(&ip, Some(&ip)).0, "pong");
    assert_eq!(get(&name, Some(&name)).0, "pong");
    let (refused, log) = get(&ip, None);
    assert!(refused.contains("Permission denied"), "{refused}");
    assert!(
        log.contains(&ip) && log.contains("--allow-outbound"),
        "{log}"
    );
    let (unknown, log) = get("not-allowed.example:80", Some(&name));
    assert!(
        unknown.starts_with("error:") && unknown.contains("getaddrinfo"),
        "{unknown}"
    );
    assert!(log.contains("lookup of `not-allowed.example`"), "{log}");
}

/// `host php` takes the same policy: nothing without `--allow-outbound`.
#[test]
fn host_php_reaches_what_the_policy_allows() {
    let port = crate::http::pong_server();
    let target = format!("127.0.0.1:{port}");
    let code =
        format!("$r = @file_get_contents('http://{target}/'); echo $r === false ? 'refused' : $r;");
    let php = |flags: &[&str]| {
        let out = host()
            .arg("php")
            .args(flags)
            .args(["-r", &code])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    assert_eq!(php(&["--allow-outbound", &target]), "pong");
    assert_eq!(php(&[]), "refused");
}

/// A PHP server under `host php`: it prints where it listens, greets the one client it accepts,
/// and answers its line uppercased.
const PHP_SERVER: &str = r#"
$server = stream_socket_server($argv[1], $errno, $errstr);
if (!$server) { echo "no server: $errstr\n"; exit(3); }
echo stream_socket_get_name($server, false), "\n";
$client = stream_socket_accept($server, 20);
fwrite($client, "hello from php\n");
fwrite($client, strtoupper(fgets($client)));
"#;

/// `host php` running [`PHP_SERVER`] on `uri` with `flags`, its stdout piped.
fn php_server(uri: &str, flags: &[&str]) -> std::process::Child {
    host()
        .arg("php")
        .args(flags)
        .args(["-r", PHP_SERVER, "--", uri])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Without `--allow-listen` a guest cannot listen: PHP's own error, and a WARN line that
/// names the setting.
#[test]
fn host_php_listens_only_where_allowed() {
    let out = php_server("tcp://127.0.0.1:0", &[])
        .wait_with_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(
            "stream_socket_server(): Unable to connect to tcp://127.0.0.1:0 (Permission denied)"
        ),
        "{}",
        stdout(&out)
    );
    let log = stderr(&out);
    assert!(
        log.contains("WARN\trefused to let the guest listen on 127.0.0.1:0")
            && log.contains("add `127.0.0.1:0` with --allow-listen"),
        "{log}"
    );

    // A grant for one port opens that port, not another.
    let (granted, other) = (free_port(), free_port());
    let rule = format!("127.0.0.1:{granted}");
    let out = php_server(
        &format!("tcp://127.0.0.1:{other}"),
        &["--allow-listen", &rule],
    )
    .wait_with_output()
    .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("add `127.0.0.1:{other}` with --allow-listen")),
        "{}",
        stderr(&out)
    );
    let mut server = php_server(&format!("tcp://{rule}"), &["--allow-listen", &rule]);
    assert_eq!(talk_to(&mut server), rule);
}

/// With `--allow-listen 127.0.0.1:0` the guest listens on a port the system picks; a native
/// client and a second `host php` (under `--allow-outbound`) reach it, both ways.
#[test]
fn host_php_serves_on_an_allowed_ephemeral_port() {
    let grant = ["--allow-listen", "127.0.0.1:0"];
    let mut server = php_server("tcp://127.0.0.1:0", &grant);
    let address = talk_to(&mut server);
    assert!(
        address.starts_with("127.0.0.1:") && !address.ends_with(":0"),
        "{address}"
    );

    let mut server = php_server("tcp://127.0.0.1:0", &grant);
    let address = first_line(&mut server);
    let client = host()
        .args(["php", "--allow-outbound", &address, "-r"])
        .arg(format!(
            r#"$c = stream_socket_client("tcp://{address}", $e, $s, 10);
               echo fgets($c); fwrite($c, "from another guest\n"); echo fgets($c);"#
        ))
        .output()
        .unwrap();
    assert!(client.status.success(), "{}", stderr(&client));
    assert_eq!(stdout(&client), "hello from php\nFROM ANOTHER GUEST\n");
    let out = server.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The server's first line: where it listens.
fn first_line(server: &mut std::process::Child) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8];
    let stdout = server.stdout.as_mut().unwrap();
    while stdout.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    String::from_utf8(line).unwrap()
}

/// Connects to the server natively, checks the exchange both ways, and returns its address.
fn talk_to(server: &mut std::process::Child) -> String {
    let address = first_line(server);
    let mut stream = TcpStream::connect(&address).unwrap_or_else(|e| panic!("{address}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(b"from rust\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    assert_eq!(text, "hello from php\nFROM RUST\n");
    let status = server.wait().unwrap();
    assert!(status.success());
    address
}

/// No UDP: a datagram socket is refused its first use, with a WARN. Making one is allowed, as
/// PHP probes for IPv6 with it (a refusal there turned IPv6 off for the whole process, and
/// `[::1]` was unreachable even where allowed): the IPv6 loopback is reachable where allowed.
#[test]
fn host_php_has_no_udp_and_reaches_an_allowed_ipv6_address() {
    let php = |flags: &[&str], code: &str| {
        let out = host()
            .arg("php")
            .args(flags)
            .args(["-r", code])
            .output()
            .unwrap();
        (stdout(&out), stderr(&out))
    };
    let (udp, log) = php(
        &["--allow-outbound", "127.0.0.1:*"],
        r#"$s = @stream_socket_client("udp://127.0.0.1:9", $errno, $error);
           echo $s ? (@fwrite($s, "datagram") ? "sent" : "not sent") : "error: $error";"#,
    );
    assert!(
        udp.starts_with("error:") || udp == "not sent",
        "{udp}\n{log}"
    );
    assert!(log.contains("the sandbox has no UDP"), "{log}");

    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        eprintln!("skipped the IPv6 half: this machine has no IPv6 loopback");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let _ = stream.write_all(b"hello over IPv6\n");
        }
    });
    let code = format!(
        r#"$s = stream_socket_client("tcp://[::1]:{port}", $errno, $error, 10);
           echo $s ? fgets($s) : "error: $error";"#
    );
    let (reached, log) = php(&["--allow-outbound", &format!("[::1]:{port}")], &code);
    assert_eq!(reached, "hello over IPv6\n", "{log}");
}

/// A guest that polls a non-blocking socket in a loop, never waiting in a host call (as a
/// non-blocking TLS handshake does: `while (0 === stream_socket_enable_crypto(...))`), sees
/// data arrive: the host's I/O runs beside it. Under `host php` it did not, and such a loop
/// never ended.
#[test]
fn host_php_sees_data_arrive_while_it_polls_without_waiting() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            std::thread::sleep(Duration::from_millis(200));
            let _ = stream.write_all(b"late\n");
            std::thread::sleep(Duration::from_secs(5));
        }
    });
    let code = format!(
        r#"$s = stream_socket_client("tcp://127.0.0.1:{port}", $errno, $error, 5);
           stream_set_blocking($s, false);
           $started = microtime(true);
           $polls = 0;
           while (($data = fread($s, 100)) === '' && microtime(true) - $started < 10) {{ $polls++; }}
           echo $data === '' ? "nothing after $polls polls" : $data;"#
    );
    let out = host()
        .arg("php")
        .args([
            "--allow-outbound",
            &format!("127.0.0.1:{port}"),
            "-r",
            &code,
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "late\n", "{}", stderr(&out));
}
