//! Deterministic zips: entries sorted by name, every timestamp 1980-01-01 00:00:00 (the
//! earliest a zip can hold), unix permissions fixed per entry, no directory entries and no
//! extra fields, so the same inputs always give the same bytes (and the same layer hash
//! on AWS). Also unpacking, as Lambda does it, for the tests.

use std::fs::File;
use std::io::{BufWriter, Read as _, Write as _};
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

/// Mode of a file Lambda should execute (`bootstrap`).
pub const EXECUTABLE: u32 = 0o755;
/// Mode of every other file.
pub const REGULAR: u32 = 0o644;

/// How an entry's bytes go into the zip. Only these two: they are what every unzip, Lambda's
/// included, reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// Deflated as small as zopfli makes it in one iteration: 3% smaller than zlib's best
    /// (0.3 MB of the layers), at about 1 MB/s.
    Deflate,
    /// Deflated by zlib at its best level: for many small text files, where zopfli costs far
    /// more than its 1 MB/s (vendor.zip's 560 KB of PHP: 7.5 s, against 0.1 s) for 2.5% (4.5 KB).
    DeflateQuick,
    /// As they are, for bytes compressed already (an `.xz`).
    Store,
}

/// One file in a zip.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path inside the zip, `/`-separated, relative (e.g. `lamp/php.wasm.xz`).
    pub name: String,
    /// Unix permission bits.
    pub mode: u32,
    pub data: Vec<u8>,
    pub packing: Packing,
}

impl Entry {
    /// An entry to deflate.
    pub fn new(name: impl Into<String>, mode: u32, data: Vec<u8>) -> Self {
        Self {
            name: name.into(),
            mode,
            data,
            packing: Packing::Deflate,
        }
    }

    /// Reads `path` from disk into an entry named `name`, to deflate.
    pub fn from_file(name: impl Into<String>, path: &Path, mode: u32) -> Result<Self> {
        let data =
            std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))?;
        Ok(Self::new(name, mode, data))
    }
}

/// zip's compression level 10 is zopfli with one iteration (1-9 are zlib's levels); more
/// iterations gain under 0.5% for many times the time.
const ZOPFLI_ONE_ITERATION: i64 = 10;
/// zlib's best level.
const ZLIB_BEST: i64 = 9;

/// Writes `entries` to `out` deterministically (via a temporary file and a rename, so an
/// interrupted build never leaves a half zip under the final name).
pub fn write_zip(out: &Path, mut entries: Vec<Entry>) -> Result<()> {
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = entries.windows(2).find(|w| w[0].name == w[1].name) {
        bail!("two entries named `{}` in `{}`", w[0].name, out.display());
    }
    let dir = out.parent().unwrap_or(Path::new("."));
    let temp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("failed to create a temporary file in `{}`", dir.display()))?;
    let mut zip = ZipWriter::new(BufWriter::new(temp.reopen()?));
    for entry in &entries {
        let options = match entry.packing {
            Packing::Deflate => SimpleFileOptions::default()
                .compression_method(CompressionMethod::Deflated)
                .compression_level(Some(ZOPFLI_ONE_ITERATION)),
            Packing::DeflateQuick => SimpleFileOptions::default()
                .compression_method(CompressionMethod::Deflated)
                .compression_level(Some(ZLIB_BEST)),
            Packing::Store => {
                SimpleFileOptions::default().compression_method(CompressionMethod::Stored)
            }
        };
        let options = options
            .last_modified_time(DateTime::default())
            .unix_permissions(entry.mode)
            .large_file(entry.data.len() as u64 >= u32::MAX as u64);
        zip.start_file(entry.name.as_str(), options)
            .with_context(|| format!("failed to add `{}` to `{}`", entry.name, out.display()))?;
        zip.write_all(&entry.data)?;
    }
    zip.finish()?.flush()?;
    temp.persist(out)
        .with_context(|| format!("failed to write `{}`", out.display()))?;
    Ok(())
}

/// Name and unix mode (permission bits only) of every entry, in the zip's order.
pub fn list(zip: &Path) -> Result<Vec<(String, u32)>> {
    let mut archive = open(zip)?;
    (0..archive.len())
        .map(|i| {
            let file = archive.by_index(i)?;
            Ok((
                file.name().to_string(),
                file.unix_mode().unwrap_or(0) & 0o7777,
            ))
        })
        .collect()
}

/// Unpacks `zip` into `dir` with each entry's permissions, as Lambda unpacks a layer into
/// `/opt` or the function's code into `/var/task`.
pub fn unpack(zip: &Path, dir: &Path) -> Result<()> {
    let mut archive = open(zip)?;
    for i in 0..archive.len() {
        let mut file = archive.by_index(i)?;
        let Some(relative) = file.enclosed_name() else {
            bail!(
                "`{}` in `{}` escapes the folder",
                file.name(),
                zip.display()
            );
        };
        let path = dir.join(relative);
        if file.is_dir() {
            std::fs::create_dir_all(&path)?;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut data = Vec::with_capacity(file.size() as usize);
        file.read_to_end(&mut data)?;
        std::fs::write(&path, data)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
        if let Some(mode) = file.unix_mode() {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7777))?;
        }
    }
    Ok(())
}

fn open(zip: &Path) -> Result<ZipArchive<File>> {
    let file = File::open(zip).with_context(|| format!("failed to open `{}`", zip.display()))?;
    ZipArchive::new(file).with_context(|| format!("`{}` is not a zip", zip.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<Entry> {
        vec![
            Entry::new("b/z.txt", REGULAR, b"zzz".to_vec()),
            Entry::new("bootstrap", EXECUTABLE, vec![7; 10_000]),
            Entry {
                packing: Packing::Store,
                ..Entry::new("a.txt", REGULAR, b"aaa".to_vec())
            },
            Entry {
                packing: Packing::DeflateQuick,
                ..Entry::new("c.php", REGULAR, b"<?php echo 1;\n".repeat(50))
            },
        ]
    }

    #[test]
    fn same_entries_in_any_order_give_the_same_bytes_sorted_with_modes() {
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = (dir.path().join("1.zip"), dir.path().join("2.zip"));
        write_zip(&one, entries()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let mut reversed = entries();
        reversed.reverse();
        write_zip(&two, reversed).unwrap();
        assert_eq!(std::fs::read(&one).unwrap(), std::fs::read(&two).unwrap());
        assert_eq!(
            list(&one).unwrap(),
            [
                ("a.txt".to_string(), 0o644),
                ("b/z.txt".into(), 0o644),
                ("bootstrap".into(), 0o755),
                ("c.php".into(), 0o644)
            ]
        );
        let mut archive = open(&one).unwrap();
        for i in 0..archive.len() {
            let file = archive.by_index(i).unwrap();
            let t = file.last_modified().unwrap();
            assert_eq!(
                (t.year(), t.month(), t.day(), t.hour(), t.minute()),
                (1980, 1, 1, 0, 0)
            );
        }
        let methods: Vec<_> = (0..archive.len())
            .map(|i| archive.by_index(i).unwrap().compression())
            .collect();
        assert_eq!(
            methods,
            [
                CompressionMethod::Stored,
                CompressionMethod::Deflated,
                CompressionMethod::Deflated,
                CompressionMethod::Deflated
            ]
        );
    }

    #[test]
    fn unpack_restores_contents_and_modes() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let zip = dir.path().join("x.zip");
        write_zip(&zip, entries()).unwrap();
        let out = dir.path().join("out");
        unpack(&zip, &out).unwrap();
        assert_eq!(std::fs::read(out.join("b/z.txt")).unwrap(), b"zzz");
        let mode = |p: &str| std::fs::metadata(out.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("bootstrap"), 0o755);
        assert_eq!(mode("a.txt"), 0o644);
    }

    #[test]
    fn duplicate_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = entries();
        e.push(e[0].clone());
        let err = write_zip(&dir.path().join("d.zip"), e).unwrap_err();
        assert!(
            err.to_string().contains("two entries named `b/z.txt`"),
            "{err}"
        );
    }
}
