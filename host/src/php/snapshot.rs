//! The deployment in the snapshot: PHP with the function's code already compiled.
//!
//! `php.wasm` is a wizer snapshot of PHP started and a request begun (`lamp-init`, at build
//! time). For a function, the host takes one more snapshot of it: wizer runs `lamp-preload`
//! (guests/php/runtime/lamp_preload.c) with the function's directories mapped where its
//! instances see them, which compiles every `.php` file under the task root (and, on Lambda,
//! the layers) and keeps the result. Every instance then starts with that code compiled, as
//! PHP-FPM's workers start with opcache's, and still serves one request and is thrown away,
//! so nothing of one request reaches the next.
//!
//! The snapshot is cached like any compiled code ([`Cache`]), under a key of everything that
//! decides it: the PHP runtime's bytes, the engine, each file's guest path and contents, and
//! whether the guest checks files on include. A changed file gives another key, so a snapshot
//! is never served for other code; under `host serve`, where files change while it runs, the
//! guest also checks each preloaded file's size and mtime when it is included and compiles a
//! changed one as usual ([`Validate::OnInclude`]).
//!
//! Building one takes seconds (wizer, then Cranelift on the result), too long for a Lambda cold
//! start. Most of that is compiling PHP's ~19,000 functions twice, the same for every
//! snapshot of one runtime, so the full host keeps both: wizer's run maps the compiled
//! instrumented runtime from the compile cache ([`super::wizer::pre_initialise`]), and the
//! compile of the result finds all but a few of its functions in Cranelift's incremental cache
//! (component/functions.rs); only the first snapshot of a runtime pays for them.
//! `host compile DIR` builds it at deploy time into the task root's `.lamp/` folder
//! ([`write_prebuilt`]), with the hash of the code it holds; the bootstrap and `host run` use it
//! when that hash is the code's ([`prebuilt`]; the check reads every `.php` file of the task
//! root once per cold start), and say why not otherwise. Such a snapshot carries the PHP runtime
//! it was made from: build it again after updating the php layer.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::component::cache::Cache;
use crate::sandbox::DirMapping;

/// The runtime's export that compiles the deployment (guests/php/runtime/lamp_preload.c).
pub const PRELOAD_EXPORT: &str = "lamp-preload";
/// More `.php` files than this under the roots and no snapshot is made (a tree that large is
/// more likely a mistake, such as a root of `/`, than an application).
pub const MAX_FILES: usize = 20_000;

/// The task root's folder for `host compile`'s snapshot (hidden: never scanned as code).
pub const PREBUILT_DIR: &str = ".lamp";
/// The snapshot in [`PREBUILT_DIR`].
pub const PREBUILT_FILE: &str = "php-snapshot.cwasm";
/// The hash of the code it holds ([`Deployment::code_key`]), beside it.
const PREBUILT_KEY: &str = "php-snapshot.key";

/// The names of the snapshots in the compile cache: `php-snapshot-KEY.cwasm`.
const SNAPSHOT_PREFIX: &str = "php-snapshot-";
/// How many of them the cache keeps (the most recently used; ~40 MB each): one is made for
/// every state of an app's code `host serve` or `host run` starts on.
const SNAPSHOTS_KEPT: usize = 16;

/// Whether the guest checks a preloaded file again when a request includes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validate {
    /// Size and mtime on every include, a changed file compiled again (`host serve`, `host
    /// run`: code being edited).
    OnInclude,
    /// Never: the host checked the code's hash when it chose the snapshot, and the code is
    /// read-only while the function runs (the bootstrap).
    Never,
}

/// A deployment's PHP files: where they are on the host, and their guest paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    files: Vec<(PathBuf, String)>,
}

impl Deployment {
    /// The `.php` files under each root (host directory, guest path), sorted by guest path.
    /// Hidden directories (`.git`) are not entered, nor directories reached through symbolic
    /// links.
    pub fn scan(roots: &[DirMapping]) -> Result<Self> {
        let mut files = Vec::new();
        for root in roots {
            scan_dir(&root.host, root.guest.trim_end_matches('/'), &mut files)?;
        }
        files.sort_by(|a, b| a.1.cmp(&b.1));
        files.dedup_by(|a, b| a.1 == b.1);
        Ok(Self { files })
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// The host folders the files are in, each once.
    pub fn dirs(&self) -> std::collections::BTreeSet<&Path> {
        self.files
            .iter()
            .filter_map(|(host, _)| host.parent())
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The snapshot's cache key: the runtime's bytes, the engine and [`Self::code_key`].
    pub fn key(&self, runtime: &[u8], engine: &Engine, validate: Validate) -> Result<String> {
        let mut sha = Sha256::new();
        // 2: compiled with a copy-on-write image however sparse (engine.rs); 3: slimmed
        // (component/slim.rs). wasmtime's compatibility hash covers neither: snapshots cached
        // before are made again.
        sha.update(b"lamp php snapshot 3\0");
        sha.update(Sha256::digest(runtime));
        sha.update(crate::engine::code_hash(engine).to_le_bytes());
        sha.update(self.code_key(validate)?.as_bytes());
        Ok(hex(&sha.finalize()[..16]))
    }

    /// The hash of the code: every file's guest path and contents, and `validate`; with
    /// [`Validate::OnInclude`] also each file's mtime, which the guest compares on include (a
    /// snapshot of the same code with other mtimes, after a checkout or a copy, would find every
    /// file changed and compile it on each include).
    pub fn code_key(&self, validate: Validate) -> Result<String> {
        let mut sha = Sha256::new();
        sha.update(b"lamp php code 1\0");
        sha.update([u8::from(validate == Validate::OnInclude)]);
        for (host, guest) in &self.files {
            let contents = std::fs::read(host)
                .with_context(|| format!("failed to read `{}`", host.display()))?;
            if validate == Validate::OnInclude {
                let modified = std::fs::metadata(host)
                    .and_then(|m| m.modified())
                    .with_context(|| format!("failed to read the mtime of `{}`", host.display()))?;
                let since = modified
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                sha.update(since.as_secs().to_le_bytes());
                sha.update(since.subsec_nanos().to_le_bytes());
            }
            sha.update((guest.len() as u64).to_le_bytes());
            sha.update(guest.as_bytes());
            sha.update((contents.len() as u64).to_le_bytes());
            sha.update(&contents);
        }
        Ok(hex(&sha.finalize()[..16]))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn scan_dir(dir: &Path, guest: &str, files: &mut Vec<(PathBuf, String)>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("failed to list `{}`", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("failed to list `{}`", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = entry.path();
        let file_type = entry.file_type()?;
        let guest_path = format!("{guest}/{name}");
        if file_type.is_dir() {
            if !name.starts_with('.') {
                scan_dir(&path, &guest_path, files)?;
            }
        } else if name.ends_with(".php") && path.is_file() {
            files.push((path, guest_path));
            if files.len() > MAX_FILES {
                bail!(
                    "more than {MAX_FILES} .php files under `{}`: is that the application's folder?",
                    dir.display()
                );
            }
        }
    }
    Ok(())
}

/// Runs `lamp-preload` under wizer: the snapshot.
#[cfg(feature = "wizer")]
fn run_preload(wasm: &[u8], ctx: wasmtime_wasi::WasiCtx, cache: Option<&Cache>) -> Result<Vec<u8>> {
    super::wizer::pre_initialise(wasm, PRELOAD_EXPORT, ctx, false, cache)
}

/// Without wizer (the layers' bootstrap) there is no making a snapshot, only using one.
#[cfg(not(feature = "wizer"))]
fn run_preload(
    _wasm: &[u8],
    _ctx: wasmtime_wasi::WasiCtx,
    _cache: Option<&Cache>,
) -> Result<Vec<u8>> {
    bail!(
        "this host cannot make snapshots: it was built without the `wizer` feature (the \
         layers' bootstrap is); make one with `host compile DIR` from a full build (`cargo \
         build -p host`), which the bootstrap then starts from"
    )
}

/// What a snapshot build reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preloaded {
    /// Files compiled into the snapshot.
    pub compiled: usize,
    /// What the guest said about the files it skipped (`lamp-preload: skipped PATH: WHY`).
    pub skipped: Vec<String>,
    /// The wizer run and the compile of the result.
    pub took: Duration,
}

/// Where a snapshot came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Cached(PathBuf),
    Built(Preloaded),
}

/// The runtime `runtime` (a `.wasm`, `.wasm.xz` or a `.cwasm` with either beside it) with
/// `deployment` compiled in, for `engine`: from `cache`, or built now (seconds) and cached.
/// `dirs` are the guest's read-only directories (the sandbox template's).
pub fn load(
    engine: &Engine,
    runtime: &Path,
    deployment: &Deployment,
    dirs: &[DirMapping],
    validate: Validate,
    cache: &Cache,
) -> Result<(Component, PathBuf, Source)> {
    let wasm_path = runtime_wasm(runtime)?;
    let wasm = crate::component::loader::read_wasm(&wasm_path).map_err(|e| anyhow!("{e}"))?;
    let key = deployment.key(&wasm, engine, validate)?;
    // With every function name kept for a profiler (engine::perfmap), a file of its own.
    let names = if crate::engine::perfmap() {
        "-names"
    } else {
        ""
    };
    let file = cache.file_named(&format!("{SNAPSHOT_PREFIX}{key}{names}.cwasm"));
    if let Some(component) = cache.get::<Component>(engine, &file) {
        cache.touch(&file);
        return Ok((component, file.clone(), Source::Cached(file)));
    }
    let started = Instant::now();
    let (snapshot, mut report) = build(&wasm, deployment, dirs, validate, Some(cache))?;
    let preloaded = started.elapsed();
    let snapshot = crate::component::slim::slim(&snapshot)?;
    let component = Component::new(engine, &snapshot);
    crate::engine::compiled();
    let component = component
        .map_err(|e| anyhow!("{e:?}"))
        .context("failed to compile the snapshot")?;
    report.took = started.elapsed();
    tracing::debug!(
        preload_ms = preloaded.as_millis() as u64,
        compile_ms = (report.took - preloaded).as_millis() as u64,
        bytes = snapshot.len(),
        "built the PHP snapshot"
    );
    let path = cache.put(&component, &file).unwrap_or(wasm_path);
    cache.keep_recent(SNAPSHOT_PREFIX, SNAPSHOTS_KEPT);
    Ok((component, path, Source::Built(report)))
}

/// `host compile DIR`: the snapshot of the task root `task_root`'s code (seen at `guest_root`)
/// on `runtime`, compiled by `engine`, written to `task_root/.lamp/` with its code's hash.
pub fn write_prebuilt(
    engine: &Engine,
    runtime: &Path,
    task_root: &Path,
    guest_root: &str,
) -> Result<(PathBuf, Preloaded)> {
    let roots = [DirMapping::read_only(task_root, guest_root)];
    let deployment = Deployment::scan(&roots)?;
    if deployment.is_empty() {
        bail!("no .php files under `{}`", task_root.display());
    }
    let wasm =
        crate::component::loader::read_wasm(&runtime_wasm(runtime)?).map_err(|e| anyhow!("{e}"))?;
    let started = Instant::now();
    let (snapshot, mut report) = build(
        &wasm,
        &deployment,
        &roots,
        Validate::Never,
        Cache::default_for(false).as_ref(),
    )?;
    // As `host compile` does (component/slim.rs): no names read at every cold start, no empty
    // data segments set up in every instance.
    let snapshot = crate::component::slim::slim(&snapshot)?;
    let bytes = engine.precompile_component(&snapshot);
    crate::engine::compiled();
    let bytes = bytes
        .map_err(|e| anyhow!("{e:?}"))
        .context("failed to compile the snapshot")?;
    report.took = started.elapsed();
    let dir = task_root.join(PREBUILT_DIR);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("failed to create `{}`", dir.display()))?;
    let file = dir.join(PREBUILT_FILE);
    std::fs::write(&file, &bytes)
        .with_context(|| format!("failed to write `{}`", file.display()))?;
    let key = dir.join(PREBUILT_KEY);
    std::fs::write(&key, deployment.code_key(Validate::Never)?)
        .with_context(|| format!("failed to write `{}`", key.display()))?;
    Ok((file, report))
}

/// The snapshot `host compile` left in `task_root` (seen at `guest_root`), when it holds this
/// code: `None` when there is none, an error saying why when it cannot be used.
pub fn prebuilt(
    engine: &Engine,
    task_root: &Path,
    guest_root: &str,
) -> Option<Result<(Component, PathBuf)>> {
    let dir = task_root.join(PREBUILT_DIR);
    let file = dir.join(PREBUILT_FILE);
    if !file.is_file() {
        return None;
    }
    let check = || -> Result<Component> {
        let wanted = std::fs::read_to_string(dir.join(PREBUILT_KEY))
            .with_context(|| format!("`{}` has no {PREBUILT_KEY} beside it", file.display()))?;
        let deployment = Deployment::scan(&[DirMapping::read_only(task_root, guest_root)])?;
        if deployment.code_key(Validate::Never)? != wanted.trim() {
            bail!(
                "`{}` was made from other code (a .php file changed since `host compile`): run `host compile` on the function's folder again, or delete `{}`",
                file.display(),
                dir.display()
            );
        }
        <Component as crate::component::cache::Compiled>::deserialize_file(engine, &file)
            .map_err(|e| anyhow!("{e:?}"))
            .with_context(|| {
                format!(
                    "`{}` does not load into this host (another wasmtime, engine setting or CPU): run `host compile` on the function's folder with this host",
                    file.display()
                )
            })
    };
    Some(check().map(|component| (component, file)))
}

/// The wasm the snapshot is made from: `runtime` itself, or the `.wasm` or `.wasm.xz` beside a
/// `.cwasm` (the php layer ships both).
fn runtime_wasm(runtime: &Path) -> Result<PathBuf> {
    if runtime.extension().is_none_or(|e| e != "cwasm") {
        return Ok(runtime.to_path_buf());
    }
    ["wasm", "wasm.xz"]
        .map(|ext| runtime.with_extension(ext))
        .into_iter()
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "no `php.wasm` or `php.wasm.xz` beside `{}` to make a snapshot from",
                runtime.display()
            )
        })
}

/// Runs `lamp-preload` on `wasm` (the PHP runtime) over the deployment's files and returns the
/// snapshot, a component. `cache` keeps what the wizer run compiles (the same for every
/// snapshot of `wasm`).
pub fn build(
    wasm: &[u8],
    deployment: &Deployment,
    dirs: &[DirMapping],
    validate: Validate,
    cache: Option<&Cache>,
) -> Result<(Vec<u8>, Preloaded)> {
    let stderr = MemoryOutputPipe::new(1 << 20);
    let mut ctx = WasiCtxBuilder::new();
    ctx.stderr(stderr.clone());
    ctx.inherit_stdout();
    for dir in dirs.iter().filter(|d| !d.writable) {
        ctx.preopened_dir(&dir.host, &dir.guest, FsPerms::ReadOnly)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("failed to map `{}` for the snapshot", dir.host.display()))?;
    }
    let list: Vec<&str> = deployment.files.iter().map(|(_, g)| g.as_str()).collect();
    ctx.env("LAMP_PRELOAD", list.join("\n"));
    ctx.env(
        "LAMP_PRELOAD_VALIDATE",
        if validate == Validate::OnInclude {
            "1"
        } else {
            "0"
        },
    );
    let snapshot = run_preload(wasm, ctx.build(), cache)?;
    let report = String::from_utf8_lossy(&stderr.contents()).into_owned();
    let mut compiled = None;
    let mut skipped = Vec::new();
    for line in report.lines() {
        if let Some(n) = line.strip_prefix("lamp-preload: done ") {
            compiled = n.trim().parse().ok();
        } else if line.starts_with("lamp-preload: skipped ") {
            skipped.push(line["lamp-preload: ".len()..].to_string());
        }
    }
    let Some(compiled) = compiled else {
        bail!(
            "PHP could not compile the deployment's code for the snapshot:\n{}",
            report.trim_end()
        );
    };
    for line in report.lines().filter(|l| !l.starts_with("lamp-preload: ")) {
        tracing::debug!("snapshot: {line}");
    }
    Ok((
        snapshot,
        Preloaded {
            compiled,
            skipped,
            took: Duration::ZERO,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_finds_php_files_but_not_in_hidden_folders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("public")).unwrap();
        std::fs::create_dir_all(root.join(".git/hooks")).unwrap();
        std::fs::write(root.join("public/index.php"), "<?php").unwrap();
        std::fs::write(root.join("public/app.css"), "").unwrap();
        std::fs::write(root.join("lib.php"), "<?php").unwrap();
        std::fs::write(root.join(".git/hooks/x.php"), "<?php").unwrap();
        let found = Deployment::scan(&[DirMapping::read_only(root, "/var/task/")]).unwrap();
        let guest: Vec<&str> = found.files.iter().map(|(_, g)| g.as_str()).collect();
        assert_eq!(guest, ["/var/task/lib.php", "/var/task/public/index.php"]);
    }

    #[test]
    fn the_key_changes_with_a_file_and_with_validation() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.php"), "<?php echo 1;").unwrap();
        let roots = [DirMapping::read_only(dir.path(), "/var/task")];
        let engine = Engine::default();
        let key = |v| {
            Deployment::scan(&roots)
                .unwrap()
                .key(b"php", &engine, v)
                .unwrap()
        };
        let first = key(Validate::Never);
        assert_eq!(first, key(Validate::Never));
        assert_ne!(first, key(Validate::OnInclude));
        let checked = key(Validate::OnInclude);
        // The same contents with another mtime: another snapshot only where mtimes are checked.
        let file = std::fs::File::options()
            .write(true)
            .open(dir.path().join("a.php"))
            .unwrap();
        file.set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000))
            .unwrap();
        assert_eq!(first, key(Validate::Never));
        assert_ne!(checked, key(Validate::OnInclude));
        std::fs::write(dir.path().join("a.php"), "<?php echo 2;").unwrap();
        assert_ne!(first, key(Validate::Never));
    }
}
