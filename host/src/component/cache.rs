//! The one compile cache: what the host compiled, kept as `.cwasm` files so the next start
//! maps it in milliseconds instead of compiling again (PHP takes Cranelift seconds).
//!
//! Used by `host run`, the bootstrap (a `.wasm` handler, or the fallback when a shipped `.cwasm`
//! is refused) and `host php` (PHP's CLI, a core module). One key: the sha256 of the wasm bytes,
//! the kind of code and the engine's compatibility hash, so a different wasmtime or engine
//! setting gives another file, never a wrong one. One directory, [`default_dir`].

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

/// Code the cache can hold: a component (handlers) or a core module (the PHP CLI).
pub trait Compiled: Sized {
    /// Part of the key, so a component and a module of the same bytes never meet.
    const KIND: &'static str;
    fn compile(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Self>;
    fn serialize(&self) -> wasmtime::Result<Vec<u8>>;
    /// Maps a file this host wrote with [`Compiled::serialize`].
    fn deserialize_file(engine: &Engine, path: &Path) -> wasmtime::Result<Self>;
}

/// Components and modules have the same three functions under the same names.
macro_rules! compiled {
    ($type:ty, $kind:literal) => {
        impl Compiled for $type {
            const KIND: &'static str = $kind;
            fn compile(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Self> {
                <$type>::new(engine, wasm)
            }
            fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
                <$type>::serialize(self)
            }
            fn deserialize_file(engine: &Engine, path: &Path) -> wasmtime::Result<Self> {
                // SAFETY: wasmtime trusts a `.cwasm` to hold code it wrote. The files mapped
                // here come from `host compile`, our own layer build, or this cache; loading
                // checks the header, the wasmtime version and the engine settings first.
                #[allow(unsafe_code)]
                unsafe {
                    <$type>::deserialize_file(engine, path)
                }
            }
        }
    };
}

compiled!(Component, "component");
compiled!(Module, "module");

/// `$LAMP_CACHE/cwasm` if `LAMP_CACHE` is set (wasm-lamp's cache root, which
/// `guests/php/build.sh` also uses for its downloads); else, in the Lambda runtime,
/// `$TMPDIR/lamp/cache` (only `/tmp` is writable there, and it lasts as long as the execution
/// environment); else `$XDG_CACHE_HOME/wasm-lamp/cwasm` or `~/.cache/wasm-lamp/cwasm`. `None`
/// when none is known.
pub fn default_dir(lambda: bool) -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("LAMP_CACHE") {
        return Some(PathBuf::from(dir).join("cwasm"));
    }
    if lambda {
        return Some(std::env::temp_dir().join("lamp").join("cache"));
    }
    let base = var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("wasm-lamp").join("cwasm"))
}

/// A cache directory (created when the first file is written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The cache at [`default_dir`], if there is one.
    pub fn default_for(lambda: bool) -> Option<Self> {
        default_dir(lambda).map(Self::new)
    }

    /// Where the code compiled from `wasm` is (or would be) kept.
    pub fn file_for<T: Compiled>(&self, engine: &Engine, wasm: &[u8]) -> PathBuf {
        let mut sha = Sha256::new();
        sha.update(wasm);
        sha.update(T::KIND);
        sha.update(crate::engine::code_hash(engine).to_le_bytes());
        self.dir.join(format!("{}.cwasm", key_of(sha)))
    }

    /// The wasm file at `path` as it is on disk now, if it can be read: see [`FileId`].
    pub fn file_id<T: Compiled>(&self, engine: &Engine, path: &Path) -> Option<FileId> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::metadata(path).ok()?;
        let mut sha = Sha256::new();
        for n in [
            meta.dev(),
            meta.ino(),
            meta.size(),
            meta.mtime() as u64,
            meta.mtime_nsec() as u64,
            meta.ctime() as u64,
            meta.ctime_nsec() as u64,
        ] {
            sha.update(n.to_le_bytes());
        }
        sha.update(T::KIND);
        sha.update(crate::engine::code_hash(engine).to_le_bytes());
        Some(FileId(key_of(sha)))
    }

    /// The code compiled earlier from the file `id` describes, and its file, if this cache
    /// remembers that file ([`Cache::remember`]) and still holds its code.
    pub fn get_known<T: Compiled>(&self, engine: &Engine, id: &FileId) -> Option<(T, PathBuf)> {
        let name = std::fs::read_to_string(self.dir.join(KNOWN).join(&id.0)).ok()?;
        let is_key = |key: &str| key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit());
        if !name.strip_suffix(".cwasm").is_some_and(is_key) {
            return None;
        }
        let file = self.dir.join(name);
        self.get(engine, &file).map(|code| (code, file))
    }

    /// Remembers that the file `id` describes compiles to `cwasm`, a file of this cache. `id`
    /// must have been taken before the file was read: if it changed since, its id has too.
    pub fn remember(&self, id: &FileId, cwasm: &Path) {
        let Some(name) = cwasm.file_name().and_then(|n| n.to_str()) else {
            return;
        };
        let known = self.dir.join(KNOWN);
        if let Err(e) = write_atomically(&known, &known.join(&id.0), name.as_bytes()) {
            tracing::debug!(
                "could not remember `{}` in the cache: {e:#}",
                cwasm.display()
            );
        }
    }

    /// The code kept in `file`, if it is there and this engine accepts it.
    /// The file `name` in the cache's directory (for code with a key of its own).
    pub fn file_named(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn get<T: Compiled>(&self, engine: &Engine, file: &Path) -> Option<T> {
        if !file.is_file() {
            return None;
        }
        T::deserialize_file(engine, file)
            .inspect_err(|e| tracing::warn!("ignoring the cached `{}`: {e:#}", file.display()))
            .ok()
    }

    /// Keeps `code` in `file`; a cache that cannot be written only costs time, so a failure is
    /// a warning.
    pub fn put<T: Compiled>(&self, code: &T, file: &Path) -> Option<PathBuf> {
        let written = code
            .serialize()
            .map_err(anyhow::Error::from)
            .and_then(|bytes| write_atomically(&self.dir, file, &bytes));
        match written {
            Ok(()) => Some(file.to_path_buf()),
            Err(e) => {
                tracing::warn!(
                    "could not cache the compiled code at `{}`: {e:#}",
                    file.display()
                );
                None
            }
        }
    }

    /// Marks `file` used now (its modification time, which [`Cache::keep_recent`] reads).
    pub fn touch(&self, file: &Path) {
        let _ = std::fs::File::options()
            .write(true)
            .open(file)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
    }

    /// Removes all but the `keep` most recently used (or written) files of this cache whose
    /// names start with `prefix`: for code that is made anew for every change of its inputs
    /// (the PHP snapshots: ~40 MB each, one per edit of an app's code before `host serve`),
    /// which would otherwise fill the disk. A process that has one of them mapped keeps it.
    pub fn keep_recent(&self, prefix: &str, keep: usize) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".cwasm"))
            })
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        files.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
        for (_, path) in files.into_iter().skip(keep) {
            tracing::debug!("removing `{}`, the least recently used", path.display());
            let _ = std::fs::remove_file(path);
        }
    }

    /// The cached code for `wasm`, or `wasm` compiled now and cached; says which.
    pub fn get_or_compile<T: Compiled>(
        &self,
        engine: &Engine,
        wasm: &[u8],
    ) -> wasmtime::Result<(T, Cached)> {
        let file = self.file_for::<T>(engine, wasm);
        if let Some(code) = self.get(engine, &file) {
            return Ok((code, Cached::Hit(file)));
        }
        let code = T::compile(engine, wasm);
        crate::engine::compiled();
        let code = code?;
        let kept = self.put(&code, &file);
        Ok((code, Cached::Compiled(kept)))
    }
}

/// The folder of the cache's [`FileId`] entries, each a file holding a `.cwasm`'s name.
const KNOWN: &str = "known";

/// A wasm file as it is on disk, without reading it: its device and inode, size, and
/// modification and change times, with the kind of code and the engine as in the key of its
/// compiled code. Any write to a file sets its change time (which, unlike the modification
/// time, nothing but the clock can set back), so while the id is the same the bytes are too,
/// and the cache can map the code it compiled from them without reading and hashing them again:
/// for PHP's 20 MB CLI that was ~40% of a `host php` start, paid by every test PHP's own test
/// suite runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileId(String);

/// The first 16 bytes of a digest, in hex: the cache's keys.
fn key_of(sha: Sha256) -> String {
    sha.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes through a temporary file in `dir` renamed to `file`, so that a concurrent or
/// interrupted start never maps half a file.
fn write_atomically(dir: &Path, file: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let temp = tempfile::NamedTempFile::new_in(dir)?;
    std::fs::write(temp.path(), bytes)?;
    temp.persist(file)?;
    Ok(())
}

/// Where [`Cache::get_or_compile`]'s code came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// Mapped from this cache file.
    Hit(PathBuf),
    /// Compiled now, and kept at this file if writing it worked.
    Compiled(Option<PathBuf>),
}

impl Cached {
    /// The cache file that holds the code, if there is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Cached::Hit(file) | Cached::Compiled(Some(file)) => Some(file),
            Cached::Compiled(None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_most_recently_used_of_a_kind_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let now = std::time::SystemTime::now();
        for (age, name) in [
            (3, "s-a.cwasm"),
            (2, "s-b.cwasm"),
            (1, "s-c.cwasm"),
            (9, "other.cwasm"),
        ] {
            let file = dir.path().join(name);
            std::fs::write(&file, name).unwrap();
            std::fs::File::options()
                .write(true)
                .open(&file)
                .unwrap()
                .set_modified(now - std::time::Duration::from_secs(age * 60))
                .unwrap();
        }
        // The oldest, used now, becomes the most recent.
        cache.touch(&dir.path().join("s-a.cwasm"));
        cache.keep_recent("s-", 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["other.cwasm", "s-a.cwasm", "s-c.cwasm"]);
    }

    #[test]
    fn the_key_depends_on_the_bytes_and_the_kind() {
        let engine = Engine::default();
        let cache = Cache::new("/c");
        let a = cache.file_for::<Component>(&engine, b"a");
        assert_eq!(a, cache.file_for::<Component>(&engine, b"a"));
        assert_ne!(a, cache.file_for::<Component>(&engine, b"b"));
        assert_ne!(a, cache.file_for::<Module>(&engine, b"a"));
        assert!(a.starts_with("/c") && a.extension().is_some_and(|e| e == "cwasm"));
    }

    #[test]
    fn a_module_is_compiled_once_then_mapped_from_the_cache() {
        let engine = Engine::default();
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("nested"));
        let wasm = wat::parse_str("(module (func (export \"f\")))").unwrap();
        let (_, first) = cache.get_or_compile::<Module>(&engine, &wasm).unwrap();
        let Cached::Compiled(Some(file)) = first else {
            panic!("{first:?}")
        };
        let (_, second) = cache.get_or_compile::<Module>(&engine, &wasm).unwrap();
        assert_eq!(second, Cached::Hit(file));
    }

    #[test]
    fn a_file_compiled_before_is_found_by_its_id_and_a_rewritten_one_is_not() {
        let engine = Engine::default();
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("cache"));
        let path = dir.path().join("m.wasm");
        let module = |export: &str| wat::parse_str(format!("(module (func (export {export:?})))"));
        std::fs::write(&path, module("a").unwrap()).unwrap();
        let id = cache.file_id::<Module>(&engine, &path).unwrap();
        assert!(cache.get_known::<Module>(&engine, &id).is_none());

        let bytes = std::fs::read(&path).unwrap();
        let (_, cached) = cache.get_or_compile::<Module>(&engine, &bytes).unwrap();
        cache.remember(&id, cached.file().unwrap());
        let (known, file) = cache.get_known::<Module>(&engine, &id).unwrap();
        assert_eq!(Some(file.as_path()), cached.file());
        assert!(known.get_export("a").is_some());
        assert_ne!(Some(id.clone()), cache.file_id::<Component>(&engine, &path));

        // The same size, other code: another id, of which the cache knows nothing.
        std::fs::write(&path, module("b").unwrap()).unwrap();
        let rewritten = cache.file_id::<Module>(&engine, &path).unwrap();
        assert_ne!(rewritten, id);
        assert!(cache.get_known::<Module>(&engine, &rewritten).is_none());

        // An entry naming anything but a cache file is not followed.
        std::fs::write(dir.path().join("cache/known").join(&id.0), "../m.wasm").unwrap();
        assert!(cache.get_known::<Module>(&engine, &id).is_none());
    }
}
