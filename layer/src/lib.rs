//! Building wasm-lamp's Lambda layers and example functions as deterministic zips.
//!
//! | zip              | contents                                   | unpacked at  |
//! |------------------|--------------------------------------------|--------------|
//! | `runtime.zip`    | `bootstrap` (static musl `host`, 0755)     | `/opt`       |
//! | `php.zip`        | `lamp/php.cwasm`, `lamp/php.wasm.xz`       | `/opt`       |
//! | `vendor.zip`     | `vendor/autoload.php`, `vendor/lamp/...`   | `/opt`       |
//! | `hello-php.zip`  | `src/index.php` (`_HANDLER=index`)         | `/var/task`  |
//! | `hello-rust.zip` | `hello.wasm` (`_HANDLER=hello`)            | `/var/task`  |
//!
//! `php.cwasm` is compiled by the very `bootstrap` that ships in `runtime.zip`: a `.cwasm`
//! only loads into the wasmtime version and engine settings that made it (the loader falls
//! back to compiling `php.wasm` when they differ, which costs seconds of cold start). That
//! fallback is the only reader of `php.wasm`, so it ships as xz: 1.5 MB instead of 2.1 MB
//! deflated, for ~0.2 s of unpacking on a path that compiles for seconds anyway.

pub mod archive;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail, ensure};
use sha2::{Digest as _, Sha256};

use archive::{EXECUTABLE, Entry, Packing, REGULAR, write_zip};

/// The target the bootstrap is built for: statically linked, so it runs on any Lambda image.
pub const BOOTSTRAP_TARGET: &str = "x86_64-unknown-linux-musl";

/// Every zip this crate builds, in the order it builds them.
pub const ZIPS: [&str; 5] = ["runtime", "php", "vendor", "hello-php", "hello-rust"];

/// Where the inputs of the zips are.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The `host` binary built for [`BOOTSTRAP_TARGET`] with the `layer` profile (Cargo.toml).
    pub bootstrap: PathBuf,
    /// The PHP runtime component (`make php`).
    pub php_wasm: PathBuf,
    /// The folder packed as `vendor/` (autoloader and libraries).
    pub vendor: PathBuf,
    /// The PHP example's handler script.
    pub hello_php: PathBuf,
    /// The Rust example's component (`cargo build -p test-artifacts`).
    pub hello_rust: PathBuf,
}

impl Inputs {
    /// The inputs where a build of the repository at `root` puts them.
    pub fn in_workspace(root: &Path) -> Self {
        Self {
            bootstrap: root
                .join("target")
                .join(BOOTSTRAP_TARGET)
                .join("layer/host"),
            php_wasm: root.join("guests/php/dist/php.wasm"),
            vendor: root.join("layer/vendor"),
            hello_php: root.join("examples/hello-php/src/index.php"),
            hello_rust: root.join("target/guests/wasm32-wasip2/release/hello_rust.wasm"),
        }
    }

    /// Fails with what to run when an input is missing, before any work is done.
    pub fn check(&self) -> Result<()> {
        let hints = [
            (
                &self.bootstrap,
                format!(
                    "build it with `cargo build --profile layer --target {BOOTSTRAP_TARGET} -p host`"
                ),
            ),
            (&self.php_wasm, "build it with `make php`".to_string()),
            (
                &self.vendor,
                "it is part of the repository (layer/vendor)".to_string(),
            ),
            (
                &self.hello_php,
                "it is part of the repository (examples/hello-php)".to_string(),
            ),
            (
                &self.hello_rust,
                "build it with `cargo build -p test-artifacts`".to_string(),
            ),
        ];
        for (path, hint) in hints {
            ensure!(
                path.exists(),
                "`{}` does not exist; {hint} (`make layers` does all of it)",
                path.display()
            );
        }
        ensure_static(&self.bootstrap)
    }
}

/// One zip built: where, how big, its sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
}

/// Builds every zip of [`ZIPS`] into `out` (created if needed), each on its own thread (zopfli
/// and xz take tens of seconds for the big ones).
pub fn build_all(inputs: &Inputs, out: &Path) -> Result<Vec<Built>> {
    inputs.check()?;
    std::fs::create_dir_all(out)
        .with_context(|| format!("failed to create `{}`", out.display()))?;
    std::thread::scope(|scope| {
        let builds: Vec<_> = ZIPS
            .iter()
            .map(|name| scope.spawn(move || build(inputs, name, out)))
            .collect();
        builds
            .into_iter()
            .map(|b| {
                b.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// Builds the zip `name` (one of [`ZIPS`]) into `out/NAME.zip`.
pub fn build(inputs: &Inputs, name: &str, out: &Path) -> Result<Built> {
    let entries = match name {
        "runtime" => vec![Entry::from_file(
            "bootstrap",
            &inputs.bootstrap,
            EXECUTABLE,
        )?],
        "php" => vec![
            Entry::new(
                "lamp/php.cwasm",
                REGULAR,
                precompile(&inputs.bootstrap, &inputs.php_wasm)?,
            ),
            Entry {
                packing: Packing::Store,
                ..Entry::new("lamp/php.wasm.xz", REGULAR, xz_compress(&inputs.php_wasm)?)
            },
        ],
        "vendor" => tree(&inputs.vendor, "vendor")?,
        "hello-php" => vec![Entry::from_file(
            "src/index.php",
            &inputs.hello_php,
            REGULAR,
        )?],
        "hello-rust" => vec![Entry::from_file("hello.wasm", &inputs.hello_rust, REGULAR)?],
        other => bail!("no zip named `{other}`; the zips are {}", ZIPS.join(", ")),
    };
    let path = out.join(format!("{name}.zip"));
    write_zip(&path, entries).with_context(|| format!("failed to build `{}`", path.display()))?;
    let bytes = std::fs::read(&path)?;
    Ok(Built {
        name: name.to_string(),
        size: bytes.len() as u64,
        sha256: sha256_hex(&bytes),
        path,
    })
}

/// Lowercase hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `bootstrap compile WASM -o CWASM`, with the same binary the runtime layer ships.
fn precompile(bootstrap: &Path, wasm: &Path) -> Result<Vec<u8>> {
    let dir = tempfile::tempdir()?;
    let cwasm = dir.path().join("php.cwasm");
    let output = Command::new(bootstrap)
        .arg("compile")
        .arg(wasm)
        .arg("-o")
        .arg(&cwasm)
        .output()
        .with_context(|| format!("failed to run `{}`", bootstrap.display()))?;
    ensure!(
        output.status.success(),
        "`{} compile {}` failed ({}):\n{}",
        bootstrap.display(),
        wasm.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(&cwasm).with_context(|| format!("failed to read `{}`", cwasm.display()))
}

/// The file at `path`, xz-compressed at the highest preset, with a dictionary only as large as
/// the file needs (the preset's 64 MiB would be what the unpacking bootstrap allocates).
pub fn xz_compress(path: &Path) -> Result<Vec<u8>> {
    use liblzma::stream::{Check, Filters, LzmaOptions, PRESET_EXTREME, Stream};
    use std::io::Write as _;
    let data =
        std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))?;
    let mut options = LzmaOptions::new_preset(9 | PRESET_EXTREME)?;
    let dict_size = (data.len() as u32)
        .next_power_of_two()
        .clamp(1 << 20, 64 << 20);
    options.dict_size(dict_size);
    let mut filters = Filters::new();
    filters.lzma2(&options);
    let stream = Stream::new_stream_encoder(&filters, Check::Crc64)?;
    let mut encoder = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
    encoder.write_all(&data)?;
    Ok(encoder.finish()?)
}

/// Every file under `dir`, named `prefix/RELATIVE`, mode 0644. Symlinks and other special
/// files are refused: a layer holds plain files only.
fn tree(dir: &Path, prefix: &str) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), prefix.to_string())];
    while let Some((dir, name)) = stack.pop() {
        for item in std::fs::read_dir(&dir)
            .with_context(|| format!("failed to read `{}`", dir.display()))?
        {
            let item = item?;
            let file_name = item
                .file_name()
                .into_string()
                .map_err(|n| anyhow::anyhow!("non-UTF-8 file name {n:?} in `{}`", dir.display()))?;
            let kind = item.file_type()?;
            let child = format!("{name}/{file_name}");
            if kind.is_dir() {
                stack.push((item.path(), child));
            } else if kind.is_file() {
                entries.push(Entry::from_file(child, &item.path(), REGULAR)?);
            } else {
                bail!(
                    "`{}` is neither a file nor a folder; layers hold plain files",
                    item.path().display()
                );
            }
        }
    }
    Ok(entries)
}

/// Refuses a dynamically linked bootstrap: Lambda's provided.al2023 image would run it, but
/// against whatever libc it has, which is what the static build avoids. An ELF file is
/// dynamically linked iff it has a `PT_INTERP` program header.
pub fn ensure_static(binary: &Path) -> Result<()> {
    let bytes =
        std::fs::read(binary).with_context(|| format!("failed to read `{}`", binary.display()))?;
    ensure!(
        bytes.len() > 0x40 && bytes[..4] == *b"\x7fELF" && bytes[4] == 2 && bytes[5] == 1,
        "`{}` is not a 64-bit little-endian ELF executable",
        binary.display()
    );
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(bytes[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let header = bytes
            .get(at..at + 4)
            .context("truncated ELF program headers")?;
        if u32::from_le_bytes(header.try_into().unwrap()) == PT_INTERP {
            bail!(
                "`{}` is dynamically linked; build the bootstrap with `--target {BOOTSTRAP_TARGET}`",
                binary.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamically_linked_binary_is_refused() {
        // The test binary itself is built for the gnu target: it has an interpreter.
        let exe = std::env::current_exe().unwrap();
        let err = ensure_static(&exe).unwrap_err();
        assert!(err.to_string().contains("dynamically linked"), "{err}");
        assert!(ensure_static(Path::new("Cargo.toml")).is_err());
    }

    #[test]
    fn the_vendor_tree_is_named_under_vendor_with_regular_modes() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut entries = tree(&root.join("vendor"), "vendor").unwrap();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let names: Vec<_> = entries.iter().map(|e| (e.name.as_str(), e.mode)).collect();
        assert_eq!(
            names,
            [
                ("vendor/autoload.php", 0o644),
                ("vendor/lamp/greeting/src/Greeter.php", 0o644)
            ]
        );
    }
}
