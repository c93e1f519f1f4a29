//! HTTP events: API Gateway REST (payload 1.0), HTTP API (2.0), Function URL (2.0's shape) and
//! ALB events, parsed with `aws_lambda_events`, mapped to one [`http::Request`] and back.
//!
//! What each kind carries where (and where they disagree) is in `../shared/notes/http-events.md`;
//! the rules kept here, each from AWS's documentation of that integration:
//! - 1.0 and ALB give the query as maps (1.0 URL-decoded, ALB not); 2.0 gives `rawQueryString`.
//!   The maps are re-encoded, keys sorted (their order is lost in the event).
//! - 2.0 carries cookies in `cookies[]`, not in a header; they become one `Cookie` header.
//! - 2.0's `rawPath` holds the stage (`/prod/...`) unless it is `$default`: it is removed.
//! - Responses: 1.0 `multiValueHeaders`; 2.0 `cookies[]` for `Set-Cookie`; ALB
//!   `statusDescription` and multi-value headers only when the request had them.
//! - Bodies are base64 when their content type is not text (as `lambda_http` decides).

use aws_lambda_events::alb::AlbTargetGroupRequest;
use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use aws_lambda_events::query_map::QueryMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, COOKIE, HOST, SET_COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response};
use serde_json::{Map, Value, json};

/// The kind of HTTP event, which decides the shape of the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// API Gateway REST API, payload format 1.0.
    RestV1,
    /// API Gateway HTTP API (payload 2.0) or a Lambda Function URL.
    HttpV2,
    /// An Application Load Balancer target; `multi_value` when the target group has
    /// multi-value headers on (the request came with `multiValueHeaders`).
    Alb { multi_value: bool },
}

/// An HTTP event as a request, plus what the request line and headers do not say.
#[derive(Debug)]
pub struct HttpEvent {
    pub kind: EventKind,
    /// Method, path and query (stage removed), headers, body (base64 decoded).
    pub request: Request<Bytes>,
    /// The client's address, as the event gives it.
    pub source_ip: Option<String>,
}

/// Whether `event` is an HTTP event, and which: `None` for any other event (S3, SQS, a
/// direct invoke), which JSON handlers take as they are.
pub fn kind_of(event: &Value) -> Option<EventKind> {
    let context = event.get("requestContext")?.as_object()?;
    if context.contains_key("elb") {
        let multi_value = event
            .get("multiValueHeaders")
            .is_some_and(|h| h.as_object().is_some_and(|m| !m.is_empty()));
        return Some(EventKind::Alb { multi_value });
    }
    if event.get("version").and_then(Value::as_str) == Some("2.0") && context.contains_key("http") {
        return Some(EventKind::HttpV2);
    }
    if event.get("httpMethod").is_some() {
        return Some(EventKind::RestV1);
    }
    None
}

impl HttpEvent {
    /// Parses `event` if it is an HTTP event; `Some(Err)` names what is malformed in one.
    pub fn parse(event: &Value) -> Option<Result<Self, String>> {
        let kind = kind_of(event)?;
        let parsed = match kind {
            EventKind::RestV1 => serde_json::from_value(event.clone())
                .map_err(|e| format!("not a valid API Gateway REST (1.0) event: {e}"))
                .and_then(from_rest_v1),
            EventKind::HttpV2 => serde_json::from_value(event.clone())
                .map_err(|e| format!("not a valid HTTP API (2.0) or Function URL event: {e}"))
                .and_then(from_http_v2),
            EventKind::Alb { multi_value } => serde_json::from_value(event.clone())
                .map_err(|e| format!("not a valid ALB event: {e}"))
                .and_then(|alb| from_alb(alb, multi_value)),
        };
        Some(parsed)
    }
}

fn from_rest_v1(event: ApiGatewayProxyRequest) -> Result<HttpEvent, String> {
    let path = event.path.clone().unwrap_or_else(|| "/".into());
    let params = if event.multi_value_query_string_parameters.is_empty() {
        &event.query_string_parameters
    } else {
        &event.multi_value_query_string_parameters
    };
    let query = encode_query(params, true);
    let headers = pick_headers(&event.headers, &event.multi_value_headers);
    let body = decode_body(event.body.as_deref(), event.is_base64_encoded)?;
    let request = build(event.http_method, &path, &query, headers, body)?;
    Ok(HttpEvent {
        kind: EventKind::RestV1,
        request,
        source_ip: event.request_context.identity.source_ip,
    })
}

fn from_http_v2(event: ApiGatewayV2httpRequest) -> Result<HttpEvent, String> {
    let context = &event.request_context;
    let raw_path = event
        .raw_path
        .clone()
        .or_else(|| context.http.path.clone())
        .unwrap_or_else(|| "/".into());
    let path = strip_stage(&raw_path, context.stage.as_deref());
    let query = event.raw_query_string.clone().unwrap_or_default();
    let mut headers = event.headers.clone();
    if let Some(cookies) = event.cookies.as_ref().filter(|c| !c.is_empty()) {
        let joined = HeaderValue::from_str(&cookies.join("; "))
            .map_err(|e| format!("a cookie of the event is not a valid header value: {e}"))?;
        headers.insert(COOKIE, joined);
    }
    let body = decode_body(event.body.as_deref(), event.is_base64_encoded)?;
    let request = build(context.http.method.clone(), &path, &query, headers, body)?;
    Ok(HttpEvent {
        kind: EventKind::HttpV2,
        request,
        source_ip: context.http.source_ip.clone(),
    })
}

fn from_alb(event: AlbTargetGroupRequest, multi_value: bool) -> Result<HttpEvent, String> {
    let path = event.path.clone().unwrap_or_else(|| "/".into());
    let params = if multi_value {
        &event.multi_value_query_string_parameters
    } else {
        &event.query_string_parameters
    };
    // An ALB passes the query's keys and values as the client sent them (still encoded).
    let query = encode_query(params, false);
    let headers = pick_headers(&event.headers, &event.multi_value_headers);
    // Behind an ALB the client is the first address of X-Forwarded-For.
    let source_ip = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_string());
    let body = decode_body(event.body.as_deref(), event.is_base64_encoded)?;
    let request = build(event.http_method, &path, &query, headers, body)?;
    Ok(HttpEvent {
        kind: EventKind::Alb { multi_value },
        request,
        source_ip,
    })
}

/// `multiValueHeaders` when the event has them (they hold every value), else `headers`.
fn pick_headers(single: &HeaderMap, multi: &HeaderMap) -> HeaderMap {
    if multi.is_empty() {
        single.clone()
    } else {
        multi.clone()
    }
}

/// HTTP API puts the stage in front of the path unless the stage is `$default`.
fn strip_stage(path: &str, stage: Option<&str>) -> String {
    match stage {
        Some(stage) if stage != "$default" && !stage.is_empty() => {
            let prefix = format!("/{stage}");
            match path.strip_prefix(&prefix) {
                Some("") => "/".into(),
                Some(rest) if rest.starts_with('/') => rest.into(),
                _ => path.into(),
            }
        }
        _ => path.into(),
    }
}

/// A query string from a map of values, keys sorted; `encode` when the map holds decoded text.
fn encode_query(params: &QueryMap, encode: bool) -> String {
    let mut pairs: Vec<(&str, &str)> = params.iter().collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let part = |s: &str| {
        if encode {
            percent_encode(s)
        } else {
            s.to_string()
        }
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", part(k), part(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// RFC 3986: everything but unreserved characters percent-encoded.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for byte in s.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn decode_body(body: Option<&str>, base64: bool) -> Result<Bytes, String> {
    match body {
        None => Ok(Bytes::new()),
        Some(text) if base64 => BASE64
            .decode(text)
            .map(Bytes::from)
            .map_err(|e| format!("the event's body is marked base64 but does not decode: {e}")),
        Some(text) => Ok(Bytes::copy_from_slice(text.as_bytes())),
    }
}

fn build(
    method: Method,
    path: &str,
    query: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Request<Bytes>, String> {
    let uri = if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    };
    let mut request = Request::builder()
        .method(method)
        .uri(&uri)
        .body(body)
        .map_err(|e| format!("the event's path and query `{uri}` are not a valid URI: {e}"))?;
    *request.headers_mut() = headers;
    Ok(request)
}

/// The response in the shape the event's integration expects.
pub fn to_event_response(kind: EventKind, response: &Response<Bytes>) -> Value {
    let (body, base64) = encode_body(response);
    let status = response.status();
    let mut out = Map::new();
    out.insert("statusCode".into(), json!(status.as_u16()));
    match kind {
        EventKind::RestV1 => {
            out.insert("headers".into(), single_headers(response.headers(), false));
            out.insert(
                "multiValueHeaders".into(),
                multi_headers(response.headers()),
            );
        }
        EventKind::HttpV2 => {
            out.insert("headers".into(), single_headers(response.headers(), true));
            let cookies = text_values(response.headers(), &SET_COOKIE);
            out.insert("cookies".into(), json!(cookies));
        }
        EventKind::Alb { multi_value } => {
            let description = format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("Unknown")
            );
            out.insert("statusDescription".into(), json!(description));
            if multi_value {
                out.insert(
                    "multiValueHeaders".into(),
                    multi_headers(response.headers()),
                );
            } else {
                out.insert("headers".into(), single_headers(response.headers(), false));
            }
        }
    }
    out.insert("body".into(), json!(body));
    out.insert("isBase64Encoded".into(), json!(base64));
    Value::Object(out)
}

/// One value per name: repeated headers joined by `, ` (all but `Set-Cookie`, which cannot
/// be joined: with `skip_cookies` it is left out, for 2.0's `cookies[]`; else the last wins).
fn single_headers(headers: &HeaderMap, skip_cookies: bool) -> Value {
    let mut out = Map::new();
    for name in headers.keys() {
        if name == SET_COOKIE {
            if !skip_cookies && let Some(last) = headers.get_all(name).iter().next_back() {
                out.insert(
                    name.as_str().into(),
                    json!(last.to_str().unwrap_or_default()),
                );
            }
            continue;
        }
        let joined = text_values(headers, name).join(", ");
        out.insert(name.as_str().into(), json!(joined));
    }
    Value::Object(out)
}

fn multi_headers(headers: &HeaderMap) -> Value {
    let mut out = Map::new();
    for name in headers.keys() {
        out.insert(name.as_str().into(), json!(text_values(headers, name)));
    }
    Value::Object(out)
}

/// Every value of header `name` that is text, in order.
fn text_values<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// The body as text, or base64 when its content type is binary (or it is not UTF-8).
fn encode_body(response: &Response<Bytes>) -> (String, bool) {
    let body = response.body();
    if is_text(response.headers())
        && let Ok(text) = std::str::from_utf8(body)
    {
        return (text.to_string(), false);
    }
    if body.is_empty() {
        return (String::new(), false);
    }
    (BASE64.encode(body), true)
}

/// Text content types, as `lambda_http` decides: `text/*`, JSON, JavaScript, XML, YAML and
/// their `+json`/`+xml`/`+yaml` kin; anything with a `Content-Encoding` is binary. A response
/// without a content type is text if it is UTF-8.
pub fn is_text(headers: &HeaderMap) -> bool {
    if headers.contains_key(CONTENT_ENCODING) {
        return false;
    }
    let Some(content_type) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime.starts_with("text/")
        || matches!(
            mime.as_str(),
            "application/json"
                | "application/javascript"
                | "application/xml"
                | "application/yaml"
                | "application/x-www-form-urlencoded"
        )
        || mime.ends_with("+json")
        || mime.ends_with("+xml")
        || mime.ends_with("+yaml")
}

/// What API Gateway (HTTP API, 2.0) makes of a JSON handler's result: an object with
/// `statusCode` is a response (headers, `multiValueHeaders`, `cookies`, base64 body); any other
/// JSON is a 200 `application/json` body (a JSON string: its text).
pub fn read_proxy_result(result: &str) -> Result<Response<Bytes>, String> {
    let value: Value = match serde_json::from_str(result) {
        Ok(value) => value,
        Err(_) => return Ok(plain(result.to_string())),
    };
    let Some(object) = value.as_object().filter(|o| o.contains_key("statusCode")) else {
        return Ok(match value {
            Value::String(text) => plain(text),
            _ => plain(result.to_string()),
        });
    };
    let status = object
        .get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| http::StatusCode::from_u16(s).ok())
        .ok_or("the handler's `statusCode` is not an HTTP status")?;
    let mut builder = Response::builder().status(status);
    let headers = builder.headers_mut().expect("a fresh builder has headers");
    let mut add = |name: &str, value: &Value| -> Result<(), String> {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| format!("the handler's header name `{name}` is invalid: {e}"))?;
        let value = HeaderValue::from_str(&text)
            .map_err(|e| format!("the handler's header `{name}` has an invalid value: {e}"))?;
        headers.append(name, value);
        Ok(())
    };
    let multi = object.get("multiValueHeaders").and_then(Value::as_object);
    if let Some(map) = object.get("headers").and_then(Value::as_object) {
        for (name, value) in map {
            if !multi.is_some_and(|m| m.keys().any(|k| k.eq_ignore_ascii_case(name))) {
                add(name, value)?;
            }
        }
    }
    for (name, values) in multi.into_iter().flatten() {
        for value in values.as_array().into_iter().flatten() {
            add(name, value)?;
        }
    }
    for cookie in object
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        add("set-cookie", cookie)?;
    }
    let body = object
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let base64 = object
        .get("isBase64Encoded")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let body = decode_body(Some(body), base64)?;
    builder
        .body(body)
        .map_err(|e| format!("the handler's response is not valid HTTP: {e}"))
}

fn plain(body: String) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The request as an HTTP API (2.0) event, for a JSON handler behind `host serve`.
pub fn to_http_v2_event(request: &Request<Bytes>, source_ip: &str, request_id: &str) -> Value {
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for name in request.headers().keys() {
        let values = text_values(request.headers(), name);
        if name == COOKIE {
            cookies.extend(
                values
                    .iter()
                    .flat_map(|v| v.split("; "))
                    .map(str::to_string),
            );
            continue;
        }
        headers.insert(name.as_str().into(), json!(values.join(",")));
    }
    let host = request
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let body = request.body();
    let (body, base64) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_string(), false),
        Err(_) => (BASE64.encode(body), true),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request.uri().path(),
        "rawQueryString": request.uri().query().unwrap_or_default(),
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split('.').next().unwrap_or(host),
            "http": {
                "method": request.method().as_str(),
                "path": request.uri().path(),
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": request.headers().get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default(),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": now.as_millis() as u64,
        },
        "isBase64Encoded": base64,
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !body.is_empty() {
        event["body"] = json!(body);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(event: Value) -> HttpEvent {
        HttpEvent::parse(&event)
            .expect("an HTTP event")
            .expect("valid")
    }

    fn v2(raw_path: &str, stage: &str) -> Value {
        json!({
            "version": "2.0", "routeKey": "$default", "rawPath": raw_path,
            "rawQueryString": "a.b=1&c[]=2&c[]=3&d=%20x", "cookies": ["s=1", "t=2"],
            "headers": {"host": "example.com", "x-dup": "a,b"},
            "requestContext": {"stage": stage, "timeEpoch": 0,
                "http": {"method": "GET", "path": raw_path, "sourceIp": "203.0.113.7"}},
            "isBase64Encoded": false
        })
    }

    #[test]
    fn http_api_keeps_the_raw_query_joins_cookies_and_drops_the_stage() {
        let event = parse(v2("/prod/blog/7", "prod"));
        assert_eq!(event.kind, EventKind::HttpV2);
        assert_eq!(
            event.request.uri().to_string(),
            "/blog/7?a.b=1&c[]=2&c[]=3&d=%20x"
        );
        assert_eq!(event.request.headers()["cookie"], "s=1; t=2");
        assert_eq!(event.source_ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(parse(v2("/prod", "prod")).request.uri().path(), "/");
        assert_eq!(
            parse(v2("/production/x", "prod")).request.uri().path(),
            "/production/x"
        );
        assert_eq!(
            parse(v2("/prod/x", "$default")).request.uri().path(),
            "/prod/x"
        );
    }

    #[test]
    fn rest_api_rebuilds_the_query_from_every_value() {
        let event = parse(json!({
            "httpMethod": "POST", "path": "/form", "resource": "/{proxy+}",
            "queryStringParameters": {"k": "2"},
            "multiValueQueryStringParameters": {"k": ["1", "2"], "a b": ["é"]},
            "headers": {"x-one": "last"}, "multiValueHeaders": {"x-one": ["first", "last"]},
            "requestContext": {"stage": "prod", "httpMethod": "POST", "requestTimeEpoch": 0,
                "identity": {"sourceIp": "198.51.100.1"}},
            "body": "bmFtZT1BZGE=", "isBase64Encoded": true
        }));
        assert_eq!(event.kind, EventKind::RestV1);
        assert_eq!(event.request.uri().query(), Some("a%20b=%C3%A9&k=1&k=2"));
        let values: Vec<_> = event.request.headers().get_all("x-one").iter().collect();
        assert_eq!(values, ["first", "last"]);
        assert_eq!(event.request.body().as_ref(), b"name=Ada");
    }

    #[test]
    fn alb_keeps_its_still_encoded_query_and_answers_in_its_header_mode() {
        let event = json!({
            "httpMethod": "GET", "path": "/", "queryStringParameters": {"q": "a%20b"},
            "headers": {"x-forwarded-for": "192.0.2.9, 10.0.0.1"},
            "requestContext": {"elb": {"targetGroupArn": "arn"}}, "isBase64Encoded": false
        });
        let parsed = parse(event);
        assert_eq!(parsed.kind, EventKind::Alb { multi_value: false });
        assert_eq!(parsed.request.uri().query(), Some("q=a%20b"));
        assert_eq!(parsed.source_ip.as_deref(), Some("192.0.2.9"));

        let response = Response::builder()
            .status(404)
            .header("set-cookie", "a=1")
            .header("set-cookie", "b=2")
            .header("content-type", "image/png")
            .body(Bytes::from_static(&[0x89, b'P', b'N', b'G']))
            .unwrap();
        let single = to_event_response(EventKind::Alb { multi_value: false }, &response);
        assert_eq!(single["statusDescription"], "404 Not Found");
        assert_eq!(single["isBase64Encoded"], true);
        assert_eq!(single["body"], "iVBORw==");
        let multi = to_event_response(EventKind::Alb { multi_value: true }, &response);
        assert_eq!(
            multi["multiValueHeaders"]["set-cookie"],
            json!(["a=1", "b=2"])
        );
        let v2 = to_event_response(EventKind::HttpV2, &response);
        assert_eq!(v2["cookies"], json!(["a=1", "b=2"]));
        assert!(v2["headers"].get("set-cookie").is_none());
    }

    #[test]
    fn other_events_are_not_http_events() {
        for event in [
            json!({"name": "world"}),
            json!({"Records": [{"eventSource": "aws:sqs"}]}),
            json!({"requestContext": {"stage": "x"}}),
        ] {
            assert!(HttpEvent::parse(&event).is_none(), "{event}");
        }
    }

    #[test]
    fn text_or_binary_is_decided_by_the_content_type() {
        let headers = |pairs: &[(&str, &str)]| {
            let mut map = HeaderMap::new();
            for (k, v) in pairs {
                map.append(
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            map
        };
        assert!(is_text(&headers(&[(
            "content-type",
            "text/html; charset=UTF-8"
        )])));
        assert!(is_text(&headers(&[(
            "content-type",
            "application/vnd.api+json"
        )])));
        assert!(!is_text(&headers(&[("content-type", "image/webp")])));
        assert!(!is_text(&headers(&[
            ("content-type", "text/html"),
            ("content-encoding", "gzip")
        ])));
    }

    #[test]
    fn proxy_results_are_read_as_api_gateway_reads_them() {
        let response = read_proxy_result("\"Hello, world\"").unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.body().as_ref(), b"Hello, world");
        assert_eq!(response.headers()["content-type"], "application/json");
        let response = read_proxy_result(r#"{"a":1}"#).unwrap();
        assert_eq!(response.body().as_ref(), br#"{"a":1}"#);
        let response = read_proxy_result(
            r#"{"statusCode":201,"headers":{"x":"1"},"multiValueHeaders":{"y":["2","3"]},
               "cookies":["c=1"],"body":"aGk=","isBase64Encoded":true}"#,
        )
        .unwrap();
        assert_eq!(response.status(), 201);
        assert_eq!(response.headers()["x"], "1");
        assert_eq!(response.headers().get_all("y").iter().count(), 2);
        assert_eq!(response.headers()["set-cookie"], "c=1");
        assert_eq!(response.body().as_ref(), b"hi");
        assert!(read_proxy_result(r#"{"statusCode":"nope"}"#).is_err());
    }
}
