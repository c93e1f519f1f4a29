//! A guest's stdout and stderr, turned into log lines of the host tagged with the request id
//! (Lambda's shape: the function's output is its log). The last lines are kept for the
//! message of a trap: a Rust panic prints its message on stderr just before it traps.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Longest line kept whole; a longer one is logged in pieces of this size.
const MAX_LINE: usize = 64 << 10;

/// A guest's stdout or stderr, turned into log lines tagged with the request id.
#[derive(Clone)]
pub struct LogStream {
    inner: Arc<Mutex<LineBuffer>>,
}

struct LineBuffer {
    request_id: String,
    stream: &'static str,
    pending: Vec<u8>,
    /// The last lines written, up to [`TAIL_LINES`].
    tail: std::collections::VecDeque<String>,
}

/// Lines of output kept for error messages.
const TAIL_LINES: usize = 8;

impl LineBuffer {
    fn push(&mut self, mut bytes: &[u8]) {
        while let Some(newline) = bytes.iter().position(|&b| b == b'\n') {
            self.pending.extend_from_slice(&bytes[..newline]);
            self.emit();
            bytes = &bytes[newline + 1..];
        }
        self.pending.extend_from_slice(bytes);
        while self.pending.len() >= MAX_LINE {
            let rest = self.pending.split_off(MAX_LINE);
            self.emit();
            self.pending = rest;
        }
    }

    fn emit(&mut self) {
        let line = String::from_utf8_lossy(&self.pending);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        tracing::info!(target: "guest", request_id = %self.request_id, stream = self.stream, "{line}");
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_string());
        self.pending.clear();
    }
}

impl Drop for LineBuffer {
    /// The last line of a guest that did not end its output with a newline.
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            self.emit();
        }
    }
}

impl LogStream {
    pub fn new(request_id: &str, stream: &'static str) -> Self {
        let buffer = LineBuffer {
            request_id: request_id.to_string(),
            stream,
            pending: Vec::new(),
            tail: Default::default(),
        };
        Self {
            inner: Arc::new(Mutex::new(buffer)),
        }
    }

    fn push(&self, bytes: &[u8]) {
        self.lock().push(bytes);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LineBuffer> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The last lines written (the unfinished one included), oldest first.
    pub fn tail(&self) -> Vec<String> {
        let buffer = self.lock();
        let mut lines: Vec<String> = buffer.tail.iter().cloned().collect();
        if !buffer.pending.is_empty() {
            lines.push(String::from_utf8_lossy(&buffer.pending).into_owned());
        }
        lines
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl OutputStream for LogStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(1 << 20)
    }
}

#[async_trait::async_trait]
impl Pollable for LogStream {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LogStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
