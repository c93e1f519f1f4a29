//! lamp-app's `/rust/*` routes: a plain `wasi:http/incoming-handler` component (the `wasi`
//! crate, as for `wasmtime serve` or Spin), deployed as its own Lambda function beside the PHP
//! app and routed by the same SAM template.
//!
//! `GET /rust/hello?name=NAME` → `{"greeting": "Hello, NAME", "from": "rust"}`; any other
//! path under `/rust/` → 404 JSON.

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

struct Route;

wasi::http::proxy::export!(Route);

impl Guest for Route {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path_and_query = request.path_with_query().unwrap_or_default();
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query.as_str(), ""));
        let (status, json) = match path {
            "/rust/hello" => {
                let name = query
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("name="))
                    .map(decode)
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "world".into());
                let greeting = format!("Hello, {name}");
                (200, serde_json::json!({ "greeting": greeting, "from": "rust" }))
            }
            _ => (404, serde_json::json!({ "error": format!("no route {path}") })),
        };
        respond(out, status, json.to_string().as_bytes());
    }
}

fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let headers = Fields::new();
    headers
        .append("content-type", b"application/json")
        .expect("a valid header");
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).expect("a valid status");
    let outgoing = response.body().expect("the body, once");
    ResponseOutparam::set(out, Ok(response));
    let stream = outgoing.write().expect("the body's stream, once");
    stream
        .blocking_write_and_flush(body)
        .expect("the client reads the body");
    drop(stream);
    OutgoingBody::finish(outgoing, None).expect("the body ends");
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 2;
            }
            (byte, _) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
