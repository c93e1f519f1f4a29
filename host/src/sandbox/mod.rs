//! The guest's world: what one invocation may see and use.
//!
//! A sandbox has the environment its [`env`] policy gives it, no network, the handler's
//! directories read-only, and a private writable `/tmp`. Its memory is capped by a
//! [`MemoryLimiter`] and its stdout/stderr become log lines of the host, tagged with the
//! request id ([`LogStream`]). A [`SandboxConfig`] is the template a deployed function keeps;
//! [`State`] is what one invocation's store holds, made from it.
//!
//! Its network is what the [`net`] policy allows: nothing by default.

pub mod env;
mod http;
mod limits;
pub mod net;
pub mod nodelay;
mod output;

pub use limits::MemoryLimiter;
pub use net::NetPolicy;
pub use output::LogStream;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use anyhow::{Context as _, Result};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::filesystem::SharedDir;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

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
    /// The guest's environment, exactly, as [`env::guest_env`] made it.
    pub env: Vec<(String, String)>,
    /// Directories the guest may open; nothing else of the host filesystem exists for it.
    pub dirs: Vec<DirMapping>,
    /// Memory cap for all the guest's linear memories together, in bytes.
    pub memory_limit: usize,
    /// Where the guest may connect.
    pub outbound: Arc<NetPolicy>,
    /// `dirs` opened by the first invocation and shared by the later ones (clones of this
    /// config share it); `Arc::default()` in a clone makes its invocation open them anew.
    pub opened_dirs: Arc<OpenedDirs>,
}

/// A sandbox's directories, opened once and given to every invocation's context as the same
/// descriptors (patches/wasmtime-wasi/: `preopened_shared_dir`) instead of each context opening
/// and closing each path: an `openat` and a `close` per directory per request, ~3% of
/// `host serve`'s time on a hello page. Operations on a directory are relative to its
/// descriptor, so instances sharing one do not see each other. The directory itself stays the
/// one opened first: one replaced on the host (not its files: those are looked up per call)
/// is not followed, which `host serve` handles by dropping the share once its code watch
/// reports a change (function.rs), and which cannot happen to a Lambda task root.
#[derive(Default)]
pub struct OpenedDirs(OnceLock<Arc<[(DirMapping, SharedDir)]>>);

impl std::fmt::Debug for OpenedDirs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("OpenedDirs")
            .field(&self.0.get().map(|d| d.len()))
            .finish()
    }
}

impl OpenedDirs {
    /// `dirs` opened: kept from an earlier call with the same `dirs`, else opened now (and kept
    /// if nothing was yet). A failure is not kept: the next invocation tries again.
    fn get(&self, dirs: &[DirMapping]) -> Result<Arc<[(DirMapping, SharedDir)]>> {
        if let Some(opened) = self.0.get()
            && opened.iter().map(|(dir, _)| dir).eq(dirs)
        {
            return Ok(opened.clone());
        }
        let opened = dirs
            .iter()
            .map(|dir| {
                let perms = if dir.writable {
                    FsPerms::ReadWrite
                } else {
                    FsPerms::ReadOnly
                };
                let shared = SharedDir::open(&dir.host, perms).with_context(|| {
                    format!(
                        "failed to open `{}` for the guest as `{}`",
                        dir.host.display(),
                        dir.guest
                    )
                })?;
                Ok((dir.clone(), shared))
            })
            .collect::<Result<Arc<[_]>>>()?;
        let _ = self.0.set(opened.clone());
        Ok(opened)
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
    /// The network policy, and what this invocation looked up under it.
    pub outbound: Arc<net::Outbound>,
    /// `wasi:http`'s context, and its outgoing requests under the policy.
    pub http: WasiHttpCtx,
    pub http_hooks: http::HttpHooks,
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
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
            // File system calls block the thread the guest runs on instead of a round trip
            // through tokio's blocking pool (~4x faster stat); they are short.
            .allow_blocking_current_thread(true);
        let outbound = net::Outbound::new(config.outbound.clone(), request_id);
        outbound.configure(&mut wasi);
        for (dir, opened) in config.opened_dirs.get(&config.dirs)?.iter() {
            wasi.preopened_shared_dir(opened, &dir.guest);
        }
        Ok(Self {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(config.memory_limit),
            stderr,
            http: WasiHttpCtx::new(),
            http_hooks: http::HttpHooks {
                outbound: outbound.clone(),
            },
            outbound,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_spec_splits_host_and_guest() {
        let dir = DirMapping::parse("/tmp::/data").unwrap();
        assert_eq!(dir.host, PathBuf::from("/tmp"));
        assert_eq!(dir.guest, "/data");
        assert!(DirMapping::parse("/no/such/dir").is_err());
    }
}
