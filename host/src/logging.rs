//! Logging, configured in one place.
//!
//! Lambda mode honours `AWS_LAMBDA_LOG_FORMAT` (`Text` or `JSON`) and `AWS_LAMBDA_LOG_LEVEL`;
//! the CLI takes `-v` (debug) or `-vv` (trace) before the command (`host -v run ...`). Both
//! write to stderr. Lines carry the request id when there is one: text as
//! `TIMESTAMP\tREQUEST_ID\tLEVEL\tMESSAGE` (Lambda's own text shape), JSON as one object per
//! line with `timestamp`, `level`, `requestId` and `message`.

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Output shape of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Sets up the global subscriber. Safe to call more than once (later calls do nothing).
pub fn init(format: LogFormat, level: Level) {
    use tracing_subscriber::layer::SubscriberExt as _;
    // Our own lines (and the guests') at `level`; the libraries' only when they warn, or
    // DEBUG would be mostly hyper's connection pool.
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(level.min(Level::WARN))
        .with_target("host", level)
        .with_target("guest", level);
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .event_format(LambdaFormat { format })
        .finish()
        .with(filter);
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Reads `AWS_LAMBDA_LOG_FORMAT` and `AWS_LAMBDA_LOG_LEVEL` (Lambda's names: TRACE, DEBUG,
/// INFO, WARN, ERROR, FATAL; default INFO).
pub fn init_from_lambda_env() {
    let format = match std::env::var("AWS_LAMBDA_LOG_FORMAT") {
        Ok(v) if v.eq_ignore_ascii_case("json") => LogFormat::Json,
        _ => LogFormat::Text,
    };
    let level = match std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .map(|v| v.to_ascii_uppercase())
        .as_deref()
    {
        Ok("TRACE") => Level::TRACE,
        Ok("DEBUG") => Level::DEBUG,
        Ok("WARN") => Level::WARN,
        Ok("ERROR") | Ok("FATAL") => Level::ERROR,
        _ => Level::INFO,
    };
    init(format, level);
}

struct LambdaFormat {
    format: LogFormat,
}

/// Collects an event's fields: `message` and `request_id` by name, the rest as `k=v`.
#[derive(Default)]
struct Fields {
    message: String,
    request_id: Option<String>,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_string(),
            "request_id" => self.request_id = Some(value.to_string()),
            name => {
                let _ = write!(self.rest, " {name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "request_id" => self.request_id = Some(format!("{value:?}")),
            name => {
                let _ = write!(self.rest, " {name}={value:?}");
            }
        }
    }
}

impl<S, N> FormatEvent<S, N> for LambdaFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let timestamp = timestamp_now();
        let level = event.metadata().level();
        // Guest output is the guest's own text; host lines say where they come from.
        let message = if event.metadata().target() == "guest" {
            fields.message
        } else {
            format!("{}{}", fields.message, fields.rest)
        };
        match self.format {
            LogFormat::Text => {
                let id = fields.request_id.as_deref().unwrap_or("-");
                writeln!(writer, "{timestamp}\t{id}\t{level}\t{message}")
            }
            LogFormat::Json => {
                let mut object = serde_json::Map::new();
                object.insert("timestamp".into(), timestamp.into());
                object.insert("level".into(), level.as_str().into());
                if let Some(id) = fields.request_id {
                    object.insert("requestId".into(), id.into());
                }
                object.insert("message".into(), message.into());
                writeln!(writer, "{}", serde_json::Value::Object(object))
            }
        }
    }
}

/// RFC 3339 UTC, as tracing-subscriber's system-time formatter writes it.
fn timestamp_now() -> String {
    let mut out = String::new();
    let _ = SystemTime.format_time(&mut Writer::new(&mut out));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamp_has_rfc3339_shape() {
        let ts = super::timestamp_now();
        assert!(
            ts.starts_with("20") && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
            "{ts}"
        );
    }
}
