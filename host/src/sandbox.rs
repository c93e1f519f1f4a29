//! The guest's world: what one invocation may see and use.
//!
//! A sandbox has no host environment unless it is passed on purpose, no network, the handler's
//! directories read-only, and a private writable `/tmp`. Its memory is capped by a
//! [`MemoryLimiter`] and its stdout/stderr become log lines of the host, tagged with the
//! request id ([`LogStream`]).

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use anyhow::{Context as _, Result};
use bytes::Bytes;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// A host directory the guest sees at `guest` (an absolute guest path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirMapping {
    pub host: PathBuf,
    pub guest: String,
    pub writable: bool,
}

impl DirMapping {
    /// Parses `HOST[::GUEST]` as given to `--dir`; without `::GUEST` the guest path is the
    /// host path. Directories given this way are writable, like `wasmtime run --dir`.
    pub fn parse(spec: &str) -> Result<Self> {
        let (host, guest) = match spec.split_once("::") {
            Some((host, guest)) => (host, guest.to_string()),
            None => (spec, spec.to_string()),
        };
        let host = PathBuf::from(host);
        anyhow::ensure!(
            host.is_dir(),
            "`--dir {spec}`: `{}` is not a directory; give an existing directory, optionally as HOST::GUEST",
            host.display()
        );
        Ok(Self {
            host,
            guest,
            writable: true,
        })
    }

    pub fn read_only(host: impl Into<PathBuf>, guest: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            guest: guest.into(),
            writable: false,
        }
    }
}

/// Everything that shapes one invocation's WASI world.
#[derive(Debug, Clone, Default)]
pub struct SandboxConfig {
    /// The guest's environment, exactly; nothing of the host's leaks in.
    pub env: Vec<(String, String)>,
    /// Directories the guest may open; nothing else of the host filesystem exists for it.
    pub dirs: Vec<DirMapping>,
    /// Memory cap for all the guest's linear memories together, in bytes.
    pub memory_limit: usize,
}

/// Counts the guest's linear memory and refuses growth past the limit, so a guest that
/// allocates without end fails with `Runtime.OutOfMemory` instead of taking the host down.
#[derive(Debug, Default)]
pub struct MemoryLimiter {
    limit: usize,
    /// Bytes of linear memory the guest holds now (memories never shrink, so also the peak).
    used: usize,
    /// Set when a growth was refused: a trap after that is reported as out of memory.
    refused: bool,
}

impl MemoryLimiter {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// Peak linear memory of this invocation, in bytes.
    pub fn peak(&self) -> usize {
        self.used
    }

    /// Whether the guest asked for more memory than its limit.
    pub fn refused(&self) -> bool {
        self.refused
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Called with current = 0 when a memory is created, so `used` covers initial sizes too.
        let growth = desired.saturating_sub(current);
        if self.used.saturating_add(growth) > self.limit {
            self.refused = true;
            return Ok(false);
        }
        self.used += growth;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million is far beyond any real handler.
        Ok(desired <= 1_000_000)
    }
}

/// Host state of one store: one invocation.
pub struct State {
    /// The guest's WASI world, built from a [`SandboxConfig`].
    pub wasi: WasiCtx,
    /// Handles of WASI resources (files, streams) the guest holds.
    pub table: ResourceTable,
    /// The memory cap and peak of this invocation.
    pub limiter: MemoryLimiter,
    /// The guest's stderr, for the message of a trap (a Rust panic prints its message there).
    pub stderr: LogStream,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl State {
    /// Builds the state for one invocation; guest output is logged under `request_id`.
    pub fn new(config: &SandboxConfig, request_id: &str) -> Result<Self> {
        let stderr = LogStream::new(request_id, "stderr");
        let mut wasi = WasiCtxBuilder::new();
        wasi.envs(&config.env)
            .stdout(LogStream::new(request_id, "stdout"))
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            // Guests run synchronously on threads of their own: file system calls block that
            // thread instead of a round trip through tokio's blocking pool (~4x faster stat).
            .allow_blocking_current_thread(true);
        for dir in &config.dirs {
            let perms = if dir.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            wasi.preopened_dir(&dir.host, &dir.guest, perms)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!(
                        "failed to open `{}` for the guest as `{}`",
                        dir.host.display(),
                        dir.guest
                    )
                })?;
        }
        Ok(Self {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(config.memory_limit),
            stderr,
        })
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_counts_initial_memory_and_refuses_past_the_limit() {
        let mut limiter = MemoryLimiter::new(10 << 20);
        assert!(limiter.memory_growing(0, 4 << 20, None).unwrap());
        assert!(limiter.memory_growing(4 << 20, 8 << 20, None).unwrap());
        assert!(!limiter.memory_growing(8 << 20, 12 << 20, None).unwrap());
        assert!(limiter.refused());
        assert_eq!(limiter.peak(), 8 << 20);
    }

    #[test]
    fn dir_spec_splits_host_and_guest() {
        let dir = DirMapping::parse("/tmp::/data").unwrap();
        assert_eq!(dir.host, PathBuf::from("/tmp"));
        assert_eq!(dir.guest, "/data");
        assert!(DirMapping::parse("/no/such/dir").is_err());
    }
}
