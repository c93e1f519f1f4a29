//! Loading handler code fast: a `.cwasm` made by a compatible engine is mapped as it is;
//! anything else is compiled once and the result cached on disk (keyed by the wasm's
//! sha256 and the engine's compatibility hash), so the next cold start maps it instead.
//!
//! The wasm a `.cwasm` falls back to is `NAME.wasm` beside it, or `NAME.wasm.xz`: the php
//! layer ships PHP's component xz-compressed, since only this fallback ever reads it.

use std::hash::{Hash as _, Hasher as _};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::types;
use crate::handler::{
    CodeSource, HandlerComponent, InitError, check_handler_file, compile_component, load_component,
};

/// How the code of a handler was obtained, for the logs and the cold-start breakdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadPath {
    /// A `.cwasm` shipped beside the handler (e.g. in the php layer).
    Shipped(PathBuf),
    /// A `.cwasm` this host compiled from `wasm` earlier and cached.
    Cached { wasm: PathBuf, cwasm: PathBuf },
    /// `wasm` compiled now (and cached at `cached`, if writing the cache worked).
    Compiled {
        wasm: PathBuf,
        cached: Option<PathBuf>,
    },
}

/// Loads `path` (`.wasm` or `.cwasm`), using and filling the cache in `cache_dir`.
pub fn load_cached(
    engine: &Engine,
    path: &Path,
    cache_dir: Option<&Path>,
) -> Result<(HandlerComponent, LoadPath), InitError> {
    let started = Instant::now();
    let wasm = if path.extension().is_some_and(|e| e == "cwasm") {
        match load_component(engine, path) {
            Ok((component, source)) => {
                let handler = HandlerComponent::from_component(engine, component, path, source)?;
                tracing::debug!(path = %path.display(), elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "mapped precompiled handler");
                return Ok((handler, LoadPath::Shipped(path.to_path_buf())));
            }
            Err(err) => {
                let Some(wasm) = ["wasm", "wasm.xz"]
                    .map(|ext| path.with_extension(ext))
                    .into_iter()
                    .find(|p| p.is_file())
                else {
                    return Err(err);
                };
                tracing::warn!("{}; compiling `{}` instead", err.message, wasm.display());
                wasm
            }
        }
    } else {
        path.to_path_buf()
    };
    check_handler_file(&wasm)?;
    let bytes = read_wasm(&wasm)?;
    let cache_file = cache_dir.map(|dir| dir.join(format!("{}.cwasm", cache_key(engine, &bytes))));
    if let Some(cached) = cache_file.as_deref().filter(|p| p.is_file()) {
        match load_component(engine, cached) {
            Ok((component, _)) => {
                let handler = HandlerComponent::from_component(
                    engine,
                    component,
                    &wasm,
                    CodeSource::Precompiled,
                )?;
                let cwasm = cached.to_path_buf();
                return Ok((handler, LoadPath::Cached { wasm, cwasm }));
            }
            Err(err) => tracing::warn!(
                "ignoring the cached `{}`: {}",
                cached.display(),
                err.message
            ),
        }
    }
    // The bytes are in hand (and unpacked, for a `.wasm.xz`): compile them, unless they are
    // precompiled code under another name, which `load_component` maps from the file.
    let (component, source) = match Engine::detect_precompiled(&bytes) {
        Some(_) => load_component(engine, &wasm)?,
        None => (
            compile_component(engine, &bytes, &wasm)?,
            CodeSource::Compiled,
        ),
    };
    let cached = cache_file.and_then(|file| match write_cache(&component, &file) {
        Ok(()) => Some(file),
        Err(e) => {
            tracing::warn!(
                "could not cache the compiled handler at `{}`: {e:#}",
                file.display()
            );
            None
        }
    });
    let handler = HandlerComponent::from_component(engine, component, &wasm, source)?;
    Ok((handler, LoadPath::Compiled { wasm, cached }))
}

/// The bytes of a `.wasm`, unpacked if the file is a `.wasm.xz`.
fn read_wasm(path: &Path) -> Result<Vec<u8>, InitError> {
    let shown = path.display();
    let unreadable = |e: std::io::Error| {
        InitError::new(
            types::NO_SUCH_HANDLER,
            format!("failed to read `{shown}`: {e}"),
        )
    };
    if !path.extension().is_some_and(|e| e == "xz") {
        return std::fs::read(path).map_err(unreadable);
    }
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let started = Instant::now();
    let mut bytes = Vec::new();
    lzma_rs::xz_decompress(&mut BufReader::new(file), &mut bytes).map_err(|e| {
        InitError::new(
            types::INVALID_HANDLER,
            format!(
                "failed to read `{shown}`: it is not a valid xz file ({e}); replace it with `xz -9 NAME.wasm`"
            ),
        )
    })?;
    tracing::debug!(path = %shown, bytes = bytes.len(), elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "unpacked");
    Ok(bytes)
}

/// sha256 of the wasm plus the engine's compatibility hash: a different wasmtime or engine
/// setting gives a different file, never a wrong one.
fn cache_key(engine: &Engine, wasm: &[u8]) -> String {
    let mut engine_hasher = std::collections::hash_map::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hasher);
    let mut sha = Sha256::new();
    sha.update(wasm);
    sha.update(engine_hasher.finish().to_le_bytes());
    sha.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes atomically (temp file + rename) so a concurrent or interrupted start never maps half a file.
fn write_cache(component: &Component, file: &Path) -> anyhow::Result<()> {
    let dir = file.parent().expect("cache files live in a directory");
    std::fs::create_dir_all(dir)?;
    let bytes = component.serialize().map_err(anyhow::Error::from)?;
    let temp = tempfile::NamedTempFile::new_in(dir)?;
    std::fs::write(temp.path(), bytes)?;
    temp.persist(file)?;
    Ok(())
}
