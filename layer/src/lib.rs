//! Building wasm-lamp's Lambda layers and example functions as deterministic zips.
//!
//! | zip                 | contents                                         | unpacked at  |
//! |---------------------|--------------------------------------------------|--------------|
//! | `runtime.zip`       | `bootstrap` (static x86_64 musl `host`, 0755)    | `/opt`       |
//! | `php.zip`           | `lamp/php.cwasm` (x86_64), `lamp/ssl/{cert.pem,openssl.cnf}` | `/opt` |
//! | `runtime-arm64.zip` | `bootstrap` (static aarch64 musl `host`, 0755)   | `/opt`       |
//! | `php-arm64.zip`     | `lamp/php.cwasm` (aarch64), `lamp/ssl/{cert.pem,openssl.cnf}` | `/opt` |
//! | `php-fallback.zip`  | `lamp/php.wasm.xz` (optional, both architectures) | `/opt`      |
//! | `vendor.zip`        | Guzzle and its dependencies from Debian 12 under `vendor/`, `vendor/autoload.php` (`vendor.rs`) | `/opt` |
//! | `hello-php.zip`     | `src/index.php` (`_HANDLER=index`)               | `/var/task`  |
//! | `hello-rust.zip`    | `hello.wasm` (`_HANDLER=hello`)                  | `/var/task`  |
//!
//! Each `php.cwasm` is compiled with the engine settings of the `bootstrap` that ships beside
//! it (`host compile --target ARCH`): a `.cwasm` only loads into the wasmtime version and engine
//! settings that made it. The code is for the architecture's Lambda CPU baseline (the host's
//! `engine::X86_64_BASELINE`, `AARCH64_BASELINE`), not for the building machine, so the
//! bytes are the same on any builder and load on every Lambda host. The building machine's
//! own architecture is compiled by its bootstrap; the other one by the full host (`cargo build
//! -p host`, whose `cross` feature links Cranelift's backends for both), which writes the very
//! bytes the other bootstrap writes (tests/it/layers.rs checks it under qemu-user) in seconds
//! instead of the five minutes of PHP's compile under emulation.
//! When a `.cwasm` is refused anyway, the loader falls back to compiling `php.wasm`, which
//! costs seconds of cold start; it is the only reader of that file, so it ships as xz (3.4 MB
//! instead of 4.8 MB by gzip -9, for ~0.4 s of unpacking on a path that compiles for seconds),
//! in a layer of its own: the functions that want that insurance add it, and the pair every
//! PHP function needs stays within its size budget.

pub mod archive;
pub mod debian;
pub mod memo;
pub mod vendor;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail, ensure};
use sha2::{Digest as _, Sha256};

use archive::{EXECUTABLE, Entry, Packing, REGULAR, write_zip};
use memo::Memo;

/// The architectures the layers are built for: Lambda's two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// Both, in the order their zips are listed.
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// The Rust target the bootstrap is built for: statically linked, so it runs on any
    /// Lambda image.
    pub fn bootstrap_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Aarch64 => "aarch64-unknown-linux-musl",
        }
    }

    /// `host compile --target` for this architecture's Lambda CPU baseline.
    pub fn compile_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// The suffix of this architecture's zips: none for x86_64 (the names existing
    /// deployments use), `-arm64` (Lambda's name) for aarch64.
    pub fn zip_suffix(self) -> &'static str {
        match self {
            Arch::X86_64 => "",
            Arch::Aarch64 => "-arm64",
        }
    }

    /// ELF `e_machine`.
    fn elf_machine(self) -> u16 {
        match self {
            Arch::X86_64 => 62,
            Arch::Aarch64 => 183,
        }
    }

    /// Whether this machine is of this architecture.
    pub fn is_this_machines(self) -> bool {
        match self {
            Arch::X86_64 => cfg!(target_arch = "x86_64"),
            Arch::Aarch64 => cfg!(target_arch = "aarch64"),
        }
    }

    /// The command that runs this architecture's binaries here: none on a machine of this
    /// architecture, else qemu-user (Debian's `qemu-user-static`, which `make setup` installs).
    pub fn runner(self) -> Option<&'static str> {
        match self {
            _ if self.is_this_machines() => None,
            Arch::X86_64 => Some("qemu-x86_64-static"),
            Arch::Aarch64 => Some("qemu-aarch64-static"),
        }
    }

    /// The architecture a zip of [`ZIPS`] is for, if it is architecture-specific.
    pub fn of_zip(name: &str) -> Option<Arch> {
        match name {
            "runtime" | "php" => Some(Arch::X86_64),
            "runtime-arm64" | "php-arm64" => Some(Arch::Aarch64),
            _ => None,
        }
    }
}

/// Every zip this crate builds, in the order it builds them.
pub const ZIPS: [&str; 8] = [
    "runtime",
    "php",
    "runtime-arm64",
    "php-arm64",
    "php-fallback",
    "vendor",
    "hello-php",
    "hello-rust",
];

/// Where the inputs of the zips are.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The `host` binary built for [`Arch::X86_64`]'s target with the `layer` profile
    /// (Cargo.toml).
    pub bootstrap: PathBuf,
    /// The same for [`Arch::Aarch64`].
    pub bootstrap_arm64: PathBuf,
    /// The full host (`cargo build -p host`), which compiles the `.cwasm` of the architecture
    /// this machine is not.
    pub cross_compiler: PathBuf,
    /// The PHP runtime component (`make php`).
    pub php_wasm: PathBuf,
    /// The CA certificates PHP trusts (`make php`), shown to PHP guests as `/etc/ssl/cert.pem`.
    pub ca_bundle: PathBuf,
    /// OpenSSL's default configuration (`make php`), shown to PHP guests as
    /// `/etc/ssl/openssl.cnf`.
    pub openssl_cnf: PathBuf,
    /// The vendor layer's folder: the Debian packages it pins (`debian-packages.txt`) and its
    /// autoloader (`autoload.php`).
    pub vendor: PathBuf,
    /// wasm-lamp's download cache (`$LAMP_CACHE`, default `~/.cache/wasm-lamp`), where the
    /// vendor layer's `.deb`s are kept (`debs/`).
    pub lamp_cache: PathBuf,
    /// The PHP example's handler script.
    pub hello_php: PathBuf,
    /// The Rust example's component (`cargo build -p test-artifacts`).
    pub hello_rust: PathBuf,
}

impl Inputs {
    /// The inputs where a build of the repository at `root` puts them.
    pub fn in_workspace(root: &Path) -> Self {
        let bootstrap = |arch: Arch| {
            root.join("target")
                .join(arch.bootstrap_target())
                .join("layer/host")
        };
        Self {
            bootstrap: bootstrap(Arch::X86_64),
            bootstrap_arm64: bootstrap(Arch::Aarch64),
            cross_compiler: root.join("target/debug/host"),
            php_wasm: root.join("guests/php/dist/php.wasm"),
            ca_bundle: root.join("guests/php/dist/ssl/cert.pem"),
            openssl_cnf: root.join("guests/php/dist/ssl/openssl.cnf"),
            vendor: root.join("layer/vendor"),
            lamp_cache: lamp_cache(),
            hello_php: root.join("examples/hello-php/src/index.php"),
            hello_rust: root.join("target/guests/wasm32-wasip2/release/hello_rust.wasm"),
        }
    }

    /// The bootstrap built for `arch`.
    pub fn bootstrap_for(&self, arch: Arch) -> &Path {
        match arch {
            Arch::X86_64 => &self.bootstrap,
            Arch::Aarch64 => &self.bootstrap_arm64,
        }
    }

    /// What compiles `arch`'s `.cwasm`: its bootstrap on a machine of that architecture, else
    /// [`Self::cross_compiler`].
    pub fn compiler_for(&self, arch: Arch) -> &Path {
        if arch.is_this_machines() {
            self.bootstrap_for(arch)
        } else {
            &self.cross_compiler
        }
    }

    /// Fails with what to run when an input of the zips `names` is missing, before any work
    /// is done.
    pub fn check(&self, names: &[&str]) -> Result<()> {
        let build_bootstrap = |arch: Arch| {
            format!(
                "build it with `cargo build --profile layer --target {} -p host --no-default-features` (or `make layers`)",
                arch.bootstrap_target()
            )
        };
        for name in names {
            let arch = Arch::of_zip(name);
            let mut hints = match (*name, arch) {
                (_, Some(arch)) => vec![(self.bootstrap_for(arch), build_bootstrap(arch))],
                _ => vec![],
            };
            hints.extend(match *name {
                "php-fallback" => vec![(
                    self.php_wasm.as_path(),
                    "build it with `make php`".to_string(),
                )],
                "php" | "php-arm64" => vec![
                    (
                        self.compiler_for(arch.expect("php zips have an architecture")),
                        "build it with `cargo build -p host`".to_string(),
                    ),
                    (
                        self.php_wasm.as_path(),
                        "build it with `make php`".to_string(),
                    ),
                    (
                        self.ca_bundle.as_path(),
                        "build it with `make php`".to_string(),
                    ),
                    (
                        self.openssl_cnf.as_path(),
                        "build it with `make php`".to_string(),
                    ),
                ],
                "vendor" => vec![(
                    self.vendor.as_path(),
                    "it is part of the repository (layer/vendor)".to_string(),
                )],
                "hello-php" => vec![(
                    self.hello_php.as_path(),
                    "it is part of the repository (examples/hello-php)".to_string(),
                )],
                "hello-rust" => vec![(
                    self.hello_rust.as_path(),
                    "build it with `cargo build -p test-artifacts`".to_string(),
                )],
                "runtime" | "runtime-arm64" => vec![],
                other => bail!("no zip named `{other}`; the zips are {}", ZIPS.join(", ")),
            });
            for (path, hint) in hints {
                ensure!(
                    path.exists(),
                    "`{}` does not exist; {hint} (`make layers` does all of it)",
                    path.display()
                );
            }
            if let Some(arch) = arch {
                ensure_static(self.bootstrap_for(arch), arch)?;
            }
        }
        Ok(())
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

/// Builds every zip of [`ZIPS`] into `out` (created if needed), each on its own thread (zopfli,
/// xz and compiling PHP take tens of seconds for the big ones).
pub fn build_all(inputs: &Inputs, out: &Path) -> Result<Vec<Built>> {
    build_zips(inputs, &ZIPS, out)
}

/// Builds the zips `names` (of [`ZIPS`]) into `out`, as [`build_all`] does.
pub fn build_zips(inputs: &Inputs, names: &[&str], out: &Path) -> Result<Vec<Built>> {
    inputs.check(names)?;
    std::fs::create_dir_all(out)
        .with_context(|| format!("failed to create `{}`", out.display()))?;
    let builder = Builder::new(inputs);
    builder.memo.prune();
    std::thread::scope(|scope| {
        let builds: Vec<_> = names
            .iter()
            .map(|name| {
                let builder = &builder;
                scope.spawn(move || builder.build(name, out))
            })
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
    Builder::new(inputs).build(name, out)
}

/// Builds zips from the inputs.
struct Builder<'a> {
    inputs: &'a Inputs,
    memo: Memo,
}

impl<'a> Builder<'a> {
    fn new(inputs: &'a Inputs) -> Self {
        Self {
            inputs,
            memo: Memo::in_cache(&inputs.lamp_cache),
        }
    }

    fn build(&self, name: &str, out: &Path) -> Result<Built> {
        let path = out.join(format!("{name}.zip"));
        let failed = || format!("failed to build `{}`", path.display());
        let entries = self.entries(name).with_context(failed)?;
        let key = Memo::zip_key(&entries);
        if !self.memo.copy_to(&key, &path).with_context(failed)? {
            write_zip(&path, entries).with_context(failed)?;
            self.memo.put(&key, &std::fs::read(&path)?);
        }
        let bytes = std::fs::read(&path)?;
        Ok(Built {
            name: name.to_string(),
            size: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
            path,
        })
    }

    /// [`xz_compress`] of `path`, from the memo when it has it.
    fn xz(&self, path: &Path) -> Result<Vec<u8>> {
        let data =
            std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))?;
        let key = Memo::xz_key(&data);
        if let Some(packed) = self.memo.get(&key) {
            return Ok(packed);
        }
        let packed = xz_compress_bytes(&data)?;
        self.memo.put(&key, &packed);
        Ok(packed)
    }

    fn entries(&self, name: &str) -> Result<Vec<Entry>> {
        let inputs = self.inputs;
        Ok(match (name, Arch::of_zip(name)) {
            ("runtime" | "runtime-arm64", Some(arch)) => vec![Entry::from_file(
                "bootstrap",
                inputs.bootstrap_for(arch),
                EXECUTABLE,
            )?],
            ("php" | "php-arm64", Some(arch)) => vec![
                Entry::new(
                    "lamp/php.cwasm",
                    REGULAR,
                    precompile(inputs.compiler_for(arch), arch, &inputs.php_wasm)?,
                ),
                Entry::from_file("lamp/ssl/cert.pem", &inputs.ca_bundle, REGULAR)?,
                Entry::from_file("lamp/ssl/openssl.cnf", &inputs.openssl_cnf, REGULAR)?,
            ],
            ("php-fallback", _) => vec![Entry {
                packing: Packing::Store,
                ..Entry::new("lamp/php.wasm.xz", REGULAR, self.xz(&inputs.php_wasm)?)
            }],
            ("vendor", _) => vendor::entries(&inputs.vendor, &inputs.lamp_cache)?,
            ("hello-php", _) => vec![Entry::from_file(
                "src/index.php",
                &inputs.hello_php,
                REGULAR,
            )?],
            ("hello-rust", _) => {
                vec![Entry::from_file("hello.wasm", &inputs.hello_rust, REGULAR)?]
            }
            (other, _) => bail!("no zip named `{other}`; the zips are {}", ZIPS.join(", ")),
        })
    }
}

/// wasm-lamp's download cache: `$LAMP_CACHE`, else `~/.cache/wasm-lamp` (as
/// guests/php/build.sh has it), else under the temporary folder when there is no home.
pub fn lamp_cache() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    match (var("LAMP_CACHE"), var("HOME")) {
        (Some(cache), _) => cache.into(),
        (None, Some(home)) => Path::new(&home).join(".cache/wasm-lamp"),
        (None, None) => std::env::temp_dir().join("wasm-lamp"),
    }
}

/// Lowercase hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `COMPILER compile WASM -o CWASM --target ARCH`: the bootstrap of `arch`, or the full host
/// for the other architecture ([`Inputs::compiler_for`]).
fn precompile(compiler: &Path, arch: Arch, wasm: &Path) -> Result<Vec<u8>> {
    let dir = tempfile::tempdir()?;
    let cwasm = dir.path().join("php.cwasm");
    let shown = format!(
        "{} compile {} --target {}",
        compiler.display(),
        wasm.display(),
        arch.compile_target()
    );
    let output = Command::new(compiler)
        .arg("compile")
        .arg(wasm)
        .arg("-o")
        .arg(&cwasm)
        .arg("--target")
        .arg(arch.compile_target())
        .output()
        .with_context(|| format!("failed to run `{shown}`"))?;
    ensure!(
        output.status.success(),
        "`{shown}` failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(&cwasm).with_context(|| format!("failed to read `{}`", cwasm.display()))
}

/// The file at `path`, xz-compressed at the highest preset, with a dictionary only as large as
/// the file needs (the preset's 64 MiB would be what the unpacking bootstrap allocates).
pub fn xz_compress(path: &Path) -> Result<Vec<u8>> {
    let data =
        std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))?;
    xz_compress_bytes(&data)
}

/// [`xz_compress`] of bytes already read.
fn xz_compress_bytes(data: &[u8]) -> Result<Vec<u8>> {
    use liblzma::stream::{Check, Filters, LzmaOptions, PRESET_EXTREME, Stream};
    use std::io::Write as _;
    let mut options = LzmaOptions::new_preset(9 | PRESET_EXTREME)?;
    let dict_size = (data.len() as u32)
        .next_power_of_two()
        .clamp(1 << 20, 64 << 20);
    options.dict_size(dict_size);
    let mut filters = Filters::new();
    filters.lzma2(&options);
    let stream = Stream::new_stream_encoder(&filters, Check::Crc64)?;
    let mut encoder = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
    encoder.write_all(data)?;
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

/// Refuses a bootstrap for the wrong architecture or dynamically linked: Lambda's
/// provided.al2023 image would run the latter, but against whatever libc it has, which is what
/// the static build avoids. An ELF file is dynamically linked iff it has a `PT_INTERP` program
/// header.
pub fn ensure_static(binary: &Path, arch: Arch) -> Result<()> {
    let bytes =
        std::fs::read(binary).with_context(|| format!("failed to read `{}`", binary.display()))?;
    ensure!(
        bytes.len() > 0x40 && bytes[..4] == *b"\x7fELF" && bytes[4] == 2 && bytes[5] == 1,
        "`{}` is not a 64-bit little-endian ELF executable",
        binary.display()
    );
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    ensure!(
        u16_at(0x12) == usize::from(arch.elf_machine()),
        "`{}` is not a {arch:?} executable; build it with `--target {}`",
        binary.display(),
        arch.bootstrap_target()
    );
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
                "`{}` is dynamically linked; build the bootstrap with `--target {}`",
                binary.display(),
                arch.bootstrap_target()
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
        let native = if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else {
            Arch::X86_64
        };
        let err = ensure_static(&exe, native).unwrap_err();
        assert!(err.to_string().contains("dynamically linked"), "{err}");
        let other = if native == Arch::X86_64 {
            Arch::Aarch64
        } else {
            Arch::X86_64
        };
        let err = ensure_static(&exe, other).unwrap_err();
        assert!(err.to_string().contains("is not a"), "{err}");
        assert!(ensure_static(Path::new("Cargo.toml"), native).is_err());
    }

    #[test]
    fn a_tree_is_named_under_its_prefix_with_regular_modes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("A/B")).unwrap();
        std::fs::write(dir.path().join("A/B/C.php"), "<?php").unwrap();
        std::fs::write(dir.path().join("f.php"), "<?php").unwrap();
        let mut entries = tree(dir.path(), "vendor").unwrap();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let names: Vec<_> = entries.iter().map(|e| (e.name.as_str(), e.mode)).collect();
        assert_eq!(
            names,
            [("vendor/A/B/C.php", 0o644), ("vendor/f.php", 0o644)]
        );
    }

    #[test]
    fn the_zips_to_build_are_checked_for_their_own_inputs_only() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut inputs = Inputs::in_workspace(&root);
        inputs.bootstrap = root.join("no-such-bootstrap");
        inputs.check(&["vendor", "hello-php"]).unwrap();
        let err = inputs.check(&["runtime"]).unwrap_err().to_string();
        assert!(err.contains("no-such-bootstrap` does not exist"), "{err}");
        let err = inputs.check(&["nope"]).unwrap_err().to_string();
        assert!(err.contains("no zip named `nope`"), "{err}");
    }
}
