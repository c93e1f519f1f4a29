//! A memo of the layer build's slow pure steps: a zip from its entries (zopfli: ~1 MB/s, so
//! minutes for the two 36 MB `php.cwasm` and the 11 MB bootstrap) and `php.wasm.xz` from
//! `php.wasm` (a minute at xz's highest preset). Each result is kept under a key that hashes
//! everything it depends on (the entries' names, modes, packing and bytes; the code that
//! writes them; `Cargo.lock`, for the zip, zopfli and liblzma versions), so a hit is the very
//! file the step would write. What can differ between builds, compiling `php.cwasm`, is always
//! done again: a second build of the same inputs (`make layers` again, or the test that
//! rebuilds every zip and compares it with dist/'s) redoes the compiles and checks their bytes
//! in seconds instead of minutes. `LAMP_LAYER_MEMO=0` turns it off, for proving the steps
//! themselves deterministic.
//!
//! Kept in `$LAMP_CACHE/layer-memo`; a build removes what no build has used for a week.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};
use sha2::{Digest as _, Sha256};

use crate::archive::Entry;

/// What makes a result what it is besides its input bytes: the code of the step (this crate's
/// sources that hold the zip and xz settings) and the versions of the libraries doing it.
const CODE: [&str; 3] = [
    include_str!("archive.rs"),
    include_str!("lib.rs"),
    include_str!("../../Cargo.lock"),
];

/// Entries not used for this long are removed by the next build.
const KEEP_UNUSED: Duration = Duration::from_secs(7 * 24 * 3600);

/// A memo folder, or none when `LAMP_LAYER_MEMO=0`.
#[derive(Debug, Clone)]
pub struct Memo {
    dir: Option<PathBuf>,
}

impl Memo {
    /// The memo under `lamp_cache` (wasm-lamp's cache folder).
    pub fn in_cache(lamp_cache: &Path) -> Self {
        let off = std::env::var_os("LAMP_LAYER_MEMO").is_some_and(|v| v == "0");
        Self {
            dir: (!off).then(|| lamp_cache.join("layer-memo")),
        }
    }

    /// The key of the zip of `entries` (in any order: the zip is written sorted).
    pub fn zip_key(entries: &[Entry]) -> String {
        let mut sorted: Vec<&Entry> = entries.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        let mut sha = code_hash("zip");
        for entry in sorted {
            for part in [entry.name.as_bytes(), &Sha256::digest(&entry.data)] {
                sha.update((part.len() as u64).to_le_bytes());
                sha.update(part);
            }
            sha.update(entry.mode.to_le_bytes());
            sha.update([entry.packing as u8]);
        }
        format!("zip-{}", hex(&sha.finalize()))
    }

    /// The key of the xz compression of `data`.
    pub fn xz_key(data: &[u8]) -> String {
        let mut sha = code_hash("xz");
        sha.update(Sha256::digest(data));
        format!("xz-{}", hex(&sha.finalize()))
    }

    /// Writes to `out` what is kept under `key`, if anything is; marks it used.
    pub fn copy_to(&self, key: &str, out: &Path) -> Result<bool> {
        let Some(file) = self.file(key).filter(|f| f.is_file()) else {
            return Ok(false);
        };
        let dir = out.parent().unwrap_or(Path::new("."));
        let temp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("failed to create a temporary file in `{}`", dir.display()))?;
        std::fs::copy(&file, temp.path())
            .with_context(|| format!("failed to copy `{}`", file.display()))?;
        temp.persist(out)
            .with_context(|| format!("failed to write `{}`", out.display()))?;
        touch(&file);
        Ok(true)
    }

    /// The bytes kept under `key`, if any; marks them used.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let file = self.file(key)?;
        let bytes = std::fs::read(&file).ok()?;
        touch(&file);
        Some(bytes)
    }

    /// Keeps `bytes` under `key`. A memo that cannot be written only costs time next build, so
    /// a failure is said and ignored.
    pub fn put(&self, key: &str, bytes: &[u8]) {
        let (Some(dir), Some(file)) = (&self.dir, self.file(key)) else {
            return;
        };
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| tempfile::NamedTempFile::new_in(dir))
            .and_then(|temp| {
                std::fs::write(temp.path(), bytes)?;
                temp.persist(&file).map_err(|e| e.error)
            });
        if let Err(e) = written {
            eprintln!("lamp-layer: could not keep `{}`: {e}", file.display());
        }
    }

    /// Removes the entries no build has used for [`KEEP_UNUSED`].
    pub fn prune(&self) {
        let Some(entries) = self.dir.as_ref().and_then(|d| std::fs::read_dir(d).ok()) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let unused = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| now.duration_since(modified).ok());
            if unused.is_some_and(|d| d > KEEP_UNUSED) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    fn file(&self, key: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(key))
    }
}

fn code_hash(step: &str) -> Sha256 {
    let mut sha = Sha256::new();
    sha.update(step);
    for code in CODE {
        sha.update(Sha256::digest(code));
    }
    sha
}

/// Marks a memo file used now (its modification time: what [`Memo::prune`] reads).
fn touch(file: &Path) {
    let _ = File::options()
        .write(true)
        .open(file)
        .and_then(|f| f.set_modified(SystemTime::now()));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{Packing, REGULAR};

    #[test]
    fn the_zip_key_depends_on_every_part_of_an_entry_but_not_the_order() {
        let a = Entry::new("a", REGULAR, b"one".to_vec());
        let b = Entry::new("b", REGULAR, b"two".to_vec());
        let key = Memo::zip_key(&[a.clone(), b.clone()]);
        assert_eq!(key, Memo::zip_key(&[b.clone(), a.clone()]));
        let changed = [
            Entry::new("a2", REGULAR, b"one".to_vec()),
            Entry::new("a", 0o755, b"one".to_vec()),
            Entry::new("a", REGULAR, b"one!".to_vec()),
            Entry {
                packing: Packing::Store,
                ..a.clone()
            },
        ];
        for other in changed {
            assert_ne!(key, Memo::zip_key(&[other.clone(), b.clone()]), "{other:?}");
        }
        assert_ne!(Memo::xz_key(b"one"), Memo::xz_key(b"two"));
    }

    #[test]
    fn kept_bytes_come_back_and_a_week_unused_goes() {
        let cache = tempfile::tempdir().unwrap();
        let memo = Memo::in_cache(cache.path());
        assert_eq!(memo.get("k"), None);
        memo.put("k", b"bytes");
        memo.put("old", b"old");
        assert_eq!(memo.get("k").as_deref(), Some(&b"bytes"[..]));
        let out = cache.path().join("out.zip");
        assert!(memo.copy_to("k", &out).unwrap());
        assert_eq!(std::fs::read(&out).unwrap(), b"bytes");
        assert!(!memo.copy_to("missing", &out).unwrap());
        let old = memo.file("old").unwrap();
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(SystemTime::now() - KEEP_UNUSED - Duration::from_secs(60))
            .unwrap();
        memo.prune();
        assert!(!old.exists());
        assert_eq!(memo.get("k").as_deref(), Some(&b"bytes"[..]));
    }
}
