//! Cranelift's incremental compilation cache, on disk beside the compile cache: each function
//! Cranelift compiles is kept under Cranelift's key for it (a hash of its IR and of the
//! target's flags), and a function with the same key is then copied instead of optimised,
//! register-allocated and emitted again. The code is the same either way.
//!
//! What it is for: a PHP snapshot (`host serve`, `host run`, `host compile DIR`) is the PHP
//! runtime with new data and the same ~19,000 functions, so every snapshot after the first
//! compiles only the few functions whose code differs, and so does `host serve` when it makes
//! the snapshot again after an edit. Only the full host has it (the `incremental` feature):
//! the layers' bootstrap compiles at most once per cold start.
//!
//! Entries are written in packs, one file per compile (`pack-*.fns`: a magic line, then
//! length-prefixed key and value pairs), not one file per function: a compile of PHP adds
//! ~19,000 of them. The packs' keys are read at a compile's first lookup (a value is read
//! from its pack when it is looked up: the packs are not held in memory) and dropped at its end
//! ([`flush`]), which writes what it added as a new pack, marks the packs it used and removes
//! the least recently used past [`BUDGET`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read as _, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

/// The packs' total size, past which the least recently used go. One compile of PHP for one
/// CPU is ~45 MB; a snapshot adds a few MB.
pub const BUDGET: u64 = 384 << 20;

const MAGIC: &[u8] = b"wasm-lamp cranelift functions 1\n";
const EXTENSION: &str = "fns";

/// The cache every engine of this process shares, when there is a compile cache folder.
static SHARED: OnceLock<Option<Arc<FunctionCache>>> = OnceLock::new();

/// [`SHARED`], made on first use.
pub fn shared() -> Option<Arc<FunctionCache>> {
    SHARED
        .get_or_init(|| {
            super::cache::default_dir(false).map(|dir| Arc::new(FunctionCache::inside(&dir)))
        })
        .clone()
}

/// Ends a compile for [`SHARED`]: see [`FunctionCache::flush`]. Call it after each compile
/// (what a compile adds is otherwise kept in memory until the next call).
pub fn flush() {
    if let Some(Some(cache)) = SHARED.get() {
        cache.flush();
    }
}

/// A folder of packs of compiled functions.
#[derive(Debug)]
pub struct FunctionCache {
    dir: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct Pack {
    path: PathBuf,
    file: File,
    used: bool,
}

#[derive(Debug, Default)]
struct State {
    /// Every key of the packs on disk, read at the first lookup since the last flush: where
    /// its value is (the pack's index in `packs`, the offset and the length).
    known: Option<HashMap<Vec<u8>, (usize, u64, usize)>>,
    /// The packs `known` was read from, open, and whether one of its entries was used.
    packs: Vec<Pack>,
    /// Entries compiled since the last flush.
    added: Vec<(Vec<u8>, Vec<u8>)>,
}

impl FunctionCache {
    /// The function cache inside the compile cache folder `cache_dir`.
    pub fn inside(cache_dir: &Path) -> Self {
        Self {
            dir: cache_dir.join("functions"),
            state: Mutex::default(),
        }
    }

    /// Writes what was compiled since the last call as a new pack, marks the packs that
    /// served a lookup as used now, removes the least recently used past [`BUDGET`], and
    /// forgets the entries read (the next compile reads them again).
    pub fn flush(&self) {
        let (added, used) = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.known = None;
            let used: Vec<PathBuf> = state
                .packs
                .drain(..)
                .filter(|pack| pack.used)
                .map(|pack| pack.path)
                .collect();
            (std::mem::take(&mut state.added), used)
        };
        // Marked as the compile cache marks what it maps (what `prune` reads).
        let packs = super::cache::Cache::new(&self.dir);
        for pack in &used {
            packs.touch(pack);
        }
        if added.is_empty() {
            return;
        }
        if let Err(e) = self.write_pack(&added) {
            tracing::debug!(
                "could not keep {} compiled functions in `{}`: {e:#}",
                added.len(),
                self.dir.display()
            );
        }
        self.prune(BUDGET);
    }

    fn write_pack(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let temp = tempfile::Builder::new()
            .prefix("pack-")
            .suffix(&format!(".{EXTENSION}.tmp"))
            .tempfile_in(&self.dir)?;
        let mut out = BufWriter::new(temp.as_file());
        out.write_all(MAGIC)?;
        for (key, value) in entries {
            for part in [key, value] {
                out.write_all(&(part.len() as u32).to_le_bytes())?;
                out.write_all(part)?;
            }
        }
        out.flush()?;
        drop(out);
        // A name of its own (the time and this process): packs are never written twice, so a
        // compile in another process never reads half of one.
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!("pack-{nanos}-{}.{EXTENSION}", std::process::id());
        temp.persist(self.dir.join(name)).map_err(|e| e.error)?;
        Ok(())
    }

    /// Removes the packs used least recently until the rest fit in `budget` bytes.
    fn prune(&self, budget: u64) {
        let mut packs: Vec<(SystemTime, u64, PathBuf)> = self
            .pack_files()
            .into_iter()
            .filter_map(|path| {
                let meta = path.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), path))
            })
            .collect();
        packs.sort_by_key(|(modified, _, _)| std::cmp::Reverse(*modified));
        let mut total = 0;
        for (_, size, path) in packs {
            total += size;
            if total > budget {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    fn pack_files(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == EXTENSION))
            .collect()
    }

    /// Reads every pack's keys into `state` (a damaged pack up to where it stops making sense).
    fn load(&self, state: &mut State) {
        let mut known = HashMap::new();
        for path in self.pack_files() {
            let Ok(file) = File::open(&path) else {
                continue;
            };
            let index = state.packs.len();
            let read = read_keys(&file, |key, offset, len| {
                known.insert(key, (index, offset, len));
            });
            if let Err(e) = read {
                tracing::debug!("ignoring the rest of `{}`: {e}", path.display());
            }
            state.packs.push(Pack {
                path,
                file,
                used: false,
            });
        }
        state.known = Some(known);
    }
}

/// Calls `entry` with each key of the pack `file`, and where its value is (offset, length).
fn read_keys(file: &File, mut entry: impl FnMut(Vec<u8>, u64, usize)) -> std::io::Result<()> {
    let size = file.metadata()?.len();
    let mut input = BufReader::new(file);
    let mut magic = vec![0; MAGIC.len()];
    input.read_exact(&mut magic)?;
    if magic != MAGIC {
        return Err(std::io::Error::other("not a pack of this version"));
    }
    let mut at = MAGIC.len() as u64;
    let len = |input: &mut BufReader<&File>, at: &mut u64| -> std::io::Result<Option<u64>> {
        let mut len = [0; 4];
        match input.read_exact(&mut len) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            other => other?,
        }
        *at += 4;
        Ok(Some(u32::from_le_bytes(len).into()))
    };
    while let Some(key_len) = len(&mut input, &mut at)? {
        let mut key = vec![0; key_len as usize];
        input.read_exact(&mut key)?;
        at += key_len;
        let value_len = len(&mut input, &mut at)?
            .ok_or_else(|| std::io::Error::other("a key without a value"))?;
        if at + value_len > size {
            return Err(std::io::Error::other("a value cut short"));
        }
        input.seek_relative(value_len as i64)?;
        entry(key, at, value_len as usize);
        at += value_len;
    }
    Ok(())
}

impl wasmtime::CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.known.is_none() {
            self.load(&mut state);
        }
        let (index, offset, len) = *state.known.as_ref()?.get(key)?;
        let pack = &mut state.packs[index];
        let mut value = vec![0; len];
        pack.file.read_exact_at(&mut value, offset).ok()?;
        pack.used = true;
        // Cranelift checks that an entry was written by its own version and compiles the
        // function again if it cannot decode it.
        Some(Cow::Owned(value))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.added.push((key.to_vec(), value));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::CacheStore as _;

    #[test]
    fn what_one_compile_adds_the_next_finds() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FunctionCache::inside(dir.path());
        assert!(cache.get(b"f").is_none());
        assert!(cache.insert(b"f", b"code of f".to_vec()));
        assert!(cache.insert(b"g", Vec::new()));
        cache.flush();
        let again = FunctionCache::inside(dir.path());
        assert_eq!(again.get(b"f").as_deref(), Some(&b"code of f"[..]));
        assert_eq!(again.get(b"g").as_deref(), Some(&b""[..]));
        assert!(again.get(b"h").is_none());
        assert_eq!(cache.pack_files().len(), 1);
    }

    #[test]
    fn a_truncated_pack_gives_what_it_holds_whole() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FunctionCache::inside(dir.path());
        cache.insert(b"whole", b"1234".to_vec());
        cache.insert(b"cut", b"5678".to_vec());
        cache.flush();
        let pack = &cache.pack_files()[0];
        let bytes = std::fs::read(pack).unwrap();
        std::fs::write(pack, &bytes[..bytes.len() - 2]).unwrap();
        let again = FunctionCache::inside(dir.path());
        assert_eq!(again.get(b"whole").as_deref(), Some(&b"1234"[..]));
        assert!(again.get(b"cut").is_none());
    }

    #[test]
    fn past_the_budget_the_least_recently_used_pack_goes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FunctionCache::inside(dir.path());
        for key in [b"old", b"new"] {
            cache.insert(key, vec![0; 1000]);
            cache.flush();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // A lookup in the older pack makes it the more recently used one.
        assert!(cache.get(b"old").is_some());
        cache.flush();
        cache.prune(1500);
        let again = FunctionCache::inside(dir.path());
        assert!(again.get(b"old").is_some());
        assert!(again.get(b"new").is_none());
    }
}
