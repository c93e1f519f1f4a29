//! Loading handler code fast: a `.cwasm` made by a compatible engine is mapped as it is;
//! anything else is compiled once and the result kept in the [`Cache`], so the next start maps
//! it instead. Every error is an [`InitError`] that names the file and says what to do.
//!
//! A refused `.cwasm` falls back to `NAME.wasm` beside it, or `NAME.wasm.xz`: the optional
//! `php-fallback.zip` layer ships PHP's component xz-compressed, since only this fallback ever
//! reads it. The fallback costs seconds of cold start, so it is a warning that says why and how
//! to avoid it; without one, the refusal is the error, saying what would replace the file.

use std::fmt;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Instant;

use wasmtime::component::Component;
use wasmtime::{Engine, Precompiled};

use super::cache::{Cache, Cached, Compiled};
use crate::error::{InitError, types};

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
    /// The PHP runtime with the function's code compiled in ([`crate::php::snapshot`]).
    Snapshot(PathBuf),
}

impl fmt::Display for LoadPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadPath::Shipped(p) => write!(f, "loaded precompiled `{}`", p.display()),
            LoadPath::Snapshot(p) => write!(
                f,
                "loaded the PHP snapshot of the function's code, `{}`",
                p.display()
            ),
            LoadPath::Cached { wasm, cwasm } => write!(
                f,
                "loaded `{}` compiled earlier, from `{}`",
                wasm.display(),
                cwasm.display()
            ),
            LoadPath::Compiled { wasm, cached } => {
                write!(f, "compiled `{}`", wasm.display())?;
                match cached {
                    Some(p) => write!(f, ", cached at `{}`", p.display()),
                    None => Ok(()),
                }
            }
        }
    }
}

/// A loaded component and how it was obtained.
pub struct Loaded {
    pub component: Component,
    /// The file the code came from (for a refused `.cwasm`, the `.wasm` it fell back to).
    pub path: PathBuf,
    pub how: LoadPath,
}

/// Whether the component was compiled from wasm or mapped from precompiled code: what
/// `host compile` needs to know of a [`LoadPath`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeSource {
    Compiled,
    Precompiled,
}

/// Loads `path` (`.wasm`, `.wasm.xz` or `.cwasm`), using and filling `cache`.
pub fn load(engine: &Engine, path: &Path, cache: Option<&Cache>) -> Result<Loaded, InitError> {
    if path.extension().is_none_or(|e| e != "cwasm") {
        return from_wasm(engine, path, cache, None);
    }
    let started = Instant::now();
    let refusal = match load_file(engine, path) {
        Ok(component) => {
            tracing::debug!(path = %path.display(), elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "mapped precompiled handler");
            let how = LoadPath::Shipped(path.to_path_buf());
            let path = path.to_path_buf();
            return Ok(Loaded {
                component,
                path,
                how,
            });
        }
        Err(refusal) => refusal,
    };
    let Some(wasm) = ["wasm", "wasm.xz"]
        .map(|ext| path.with_extension(ext))
        .into_iter()
        .find(|p| p.is_file())
    else {
        return Err(refusal.without_fallback());
    };
    from_wasm(engine, &wasm, cache, Some(&refusal))
}

/// Loads a component without a cache, saying whether it was compiled (`host compile`).
pub fn load_component(engine: &Engine, path: &Path) -> Result<(Component, CodeSource), InitError> {
    let loaded = load(engine, path, None)?;
    let source = match loaded.how {
        LoadPath::Compiled { .. } => CodeSource::Compiled,
        _ => CodeSource::Precompiled,
    };
    Ok((loaded.component, source))
}

/// Why a `.cwasm` could not be used: the error to report if nothing else can be loaded, and
/// the reason wasmtime gave, for the fallback's warning.
struct Refusal {
    cwasm: PathBuf,
    reason: String,
    error: InitError,
}

impl Refusal {
    /// The error when nothing beside the `.cwasm` can replace it: says what would (the php
    /// layer's is `php-fallback.zip`, optional since it is rarely needed and 3.4 MB).
    fn without_fallback(self) -> InitError {
        let mut error = self.error;
        let wasm = self.cwasm.with_extension("wasm");
        error.message.push_str(&format!(
            "; or put `{}` (or `.wasm.xz`) beside it, to have it compiled at cold start instead",
            wasm.display()
        ));
        if self.cwasm.file_name().is_some_and(|n| n == "php.cwasm") {
            error.message.push_str(
                " (for the php layer: use `runtime.zip` and `php.zip` of one build, or add the \
                 layer `php-fallback.zip`, which holds `lamp/php.wasm.xz`)",
            );
        }
        error
    }
}

/// Compiles (or, from the cache, maps) the wasm at `wasm`; `refused` is the `.cwasm` this
/// replaces, if any.
fn from_wasm(
    engine: &Engine,
    wasm: &Path,
    cache: Option<&Cache>,
    refused: Option<&Refusal>,
) -> Result<Loaded, InitError> {
    check_handler_file(wasm)?;
    let started = Instant::now();
    // A file this cache has compiled before is mapped without being read (see `FileId`).
    let id = cache.and_then(|cache| Some((cache, cache.file_id::<Component>(engine, wasm)?)));
    let known = id
        .as_ref()
        .and_then(|(cache, id)| cache.get_known(engine, id));
    let (component, how) = match known {
        Some((component, cwasm)) => {
            let wasm = wasm.to_path_buf();
            (component, LoadPath::Cached { wasm, cwasm })
        }
        None => {
            let bytes = read_wasm(wasm)?;
            let (component, how) = match Engine::detect_precompiled(&bytes) {
                // Precompiled code under another name: mapped from the file, not compiled.
                Some(_) => {
                    let component = load_file(engine, wasm).map_err(|r| r.error)?;
                    (component, LoadPath::Shipped(wasm.to_path_buf()))
                }
                None => compile_cached(engine, &bytes, wasm, cache)?,
            };
            if let (
                Some((cache, id)),
                LoadPath::Cached { cwasm, .. }
                | LoadPath::Compiled {
                    cached: Some(cwasm),
                    ..
                },
            ) = (&id, &how)
            {
                cache.remember(id, cwasm);
            }
            (component, how)
        }
    };
    if let Some(refusal) = refused {
        warn_fallback(refusal, &how, started.elapsed().as_secs_f64() * 1e3);
    }
    let path = wasm.to_path_buf();
    Ok(Loaded {
        component,
        path,
        how,
    })
}

fn compile_cached(
    engine: &Engine,
    bytes: &[u8],
    wasm: &Path,
    cache: Option<&Cache>,
) -> Result<(Component, LoadPath), InitError> {
    check_component_bytes(bytes, wasm)?;
    let invalid = |e: wasmtime::Error| {
        InitError::new(
            types::INVALID_HANDLER,
            format!("`{}` is not a valid component: {e:#}", wasm.display()),
        )
    };
    let wasm = wasm.to_path_buf();
    let Some(cache) = cache else {
        let component = <Component as Compiled>::compile(engine, bytes).map_err(invalid)?;
        return Ok((component, LoadPath::Compiled { wasm, cached: None }));
    };
    let (component, cached) = cache.get_or_compile(engine, bytes).map_err(invalid)?;
    let how = match cached {
        Cached::Hit(cwasm) => LoadPath::Cached { wasm, cwasm },
        Cached::Compiled(cached) => LoadPath::Compiled { wasm, cached },
    };
    Ok((component, how))
}

/// The warning of a refused `.cwasm`: the reason, what it cost, and how to avoid it.
fn warn_fallback(refusal: &Refusal, how: &LoadPath, elapsed_ms: f64) {
    let cwasm = refusal.cwasm.display();
    let instead = match how {
        LoadPath::Compiled { wasm, .. } => format!(
            "compiling `{}` instead took {elapsed_ms:.0} ms",
            wasm.display()
        ),
        other => format!("{other} instead"),
    };
    tracing::warn!(
        "`{cwasm}` cannot be used here: {}; {instead}. To start without compiling, rebuild the \
         layer with `make layers` (its .cwasm is compiled for the documented CPU baseline) or \
         precompile for this machine with `host compile` (see `host compile --help` for --target)",
        refusal.reason
    );
}

/// Fails with `Runtime.NoSuchHandler` unless `path` is a file, saying what to give instead.
pub fn check_handler_file(path: &Path) -> Result<(), InitError> {
    if path.is_file() {
        return Ok(());
    }
    let what = if path.exists() {
        "is not a file"
    } else {
        "does not exist"
    };
    Err(InitError::new(
        types::NO_SUCH_HANDLER,
        format!(
            "handler `{}` {what}; give the path of a handler component (.wasm or .cwasm) or PHP script (.php)",
            path.display()
        ),
    ))
}

/// Maps a precompiled component file, or compiles a file of wasm bytes, uncached.
fn load_file(engine: &Engine, path: &Path) -> Result<Component, Refusal> {
    let refusal = |error: InitError| Refusal {
        cwasm: path.to_path_buf(),
        reason: error.message.clone(),
        error,
    };
    check_handler_file(path).map_err(refusal)?;
    let shown = path.display();
    match Engine::detect_precompiled_file(path) {
        Ok(Some(Precompiled::Component)) => {
            return <Component as Compiled>::deserialize_file(engine, path).map_err(|e| Refusal {
                cwasm: path.to_path_buf(),
                reason: format!("{e:#}"),
                error: InitError::new(
                    types::INVALID_HANDLER,
                    format!(
                        "`{shown}` was precompiled by an incompatible engine ({e:#}); recompile it \
                             with this host: `host compile HANDLER.wasm -o {shown}`"
                    ),
                ),
            });
        }
        Ok(Some(Precompiled::Module)) => {
            return Err(refusal(InitError::new(
                types::INVALID_HANDLER,
                format!(
                    "`{shown}` is a precompiled core module, not a component; precompile the handler component with `host compile`"
                ),
            )));
        }
        Ok(None) | Err(_) => {}
    }
    let bytes = read_wasm(path).map_err(refusal)?;
    check_component_bytes(&bytes, path).map_err(refusal)?;
    let component = <Component as Compiled>::compile(engine, &bytes).map_err(|e| {
        refusal(InitError::new(
            types::INVALID_HANDLER,
            format!("`{shown}` is not a valid component: {e:#}"),
        ))
    })?;
    Ok(component)
}

const WASM_MAGIC: &[u8] = b"\0asm";
/// The layer/version field of the preamble: 1 for core modules, 0x1000d for components.
const CORE_MODULE_VERSION: [u8; 4] = [1, 0, 0, 0];

/// Refuses bytes that are not a component, saying what to give instead.
fn check_component_bytes(bytes: &[u8], path: &Path) -> Result<(), InitError> {
    let shown = path.display();
    if !bytes.starts_with(WASM_MAGIC) {
        return Err(InitError::new(
            types::INVALID_HANDLER,
            format!(
                "`{shown}` is not a WebAssembly file (it does not start with `\\0asm`); give a handler component built for wasm32-wasip2, or a `.cwasm` from `host compile`"
            ),
        ));
    }
    if bytes.get(4..8) == Some(&CORE_MODULE_VERSION[..]) {
        return Err(InitError::new(
            types::INVALID_HANDLER,
            format!(
                "`{shown}` is a core wasm module, not a component; build Rust handlers for `wasm32-wasip2` with the lamp-handler SDK, or wrap a wasip1 module with `wasm-tools component new --adapt`"
            ),
        ));
    }
    Ok(())
}

/// The bytes of a `.wasm`, unpacked if the file is a `.wasm.xz`.
pub fn read_wasm(path: &Path) -> Result<Vec<u8>, InitError> {
    let shown = path.display();
    let unreadable = |e: std::io::Error| {
        InitError::new(
            types::NO_SUCH_HANDLER,
            format!("failed to read `{shown}`: {e}"),
        )
    };
    if path.extension().is_none_or(|e| e != "xz") {
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
