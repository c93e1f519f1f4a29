//! `lamp-layer`: builds the layer and example zips into a folder and prints their sizes
//! and sha256.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use lamp_layer::{Inputs, ZIPS, build_zips};

/// Builds wasm-lamp's Lambda layers (runtime and php for x86_64 and arm64, vendor) and example
/// functions (hello-php, hello-rust) as deterministic zips: the same inputs give byte-identical
/// files on any machine.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Examples:\n  \
                  cargo run --release -p lamp-layer -- --out dist   # what `make layers` runs, after building the inputs\n  \
                  cargo run --release -p lamp-layer -- --out dist --zip vendor   # vendor.zip alone (needs no build)\n\n\
                  vendor.zip's Debian packages are fetched once, with apt-get, into $LAMP_CACHE/debs \
                  (default ~/.cache/wasm-lamp/debs); LAMP_DEBIAN_MIRROR overrides the system's Debian mirror."
)]
struct Cli {
    /// Folder to write the zips to.
    #[arg(long, default_value = "dist")]
    out: PathBuf,
    /// Build only this zip (repeatable), by name without `.zip` [default: all of them].
    #[arg(long = "zip", value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(ZIPS))]
    zips: Vec<String>,
    /// The repository root, where the inputs are looked for.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/.."))]
    root: PathBuf,
    /// The static x86_64 bootstrap [default: ROOT/target/x86_64-unknown-linux-musl/layer/host].
    #[arg(long)]
    bootstrap: Option<PathBuf>,
    /// The static aarch64 bootstrap [default: ROOT/target/aarch64-unknown-linux-musl/layer/host].
    #[arg(long)]
    bootstrap_arm64: Option<PathBuf>,
    /// The full host, which compiles the other architecture's php.cwasm [default:
    /// ROOT/target/debug/host].
    #[arg(long)]
    cross_compiler: Option<PathBuf>,
    /// The PHP runtime component [default: ROOT/guests/php/dist/php.wasm].
    #[arg(long)]
    php_wasm: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut inputs = Inputs::in_workspace(&cli.root);
    if let Some(path) = cli.bootstrap {
        inputs.bootstrap = path;
    }
    if let Some(path) = cli.bootstrap_arm64 {
        inputs.bootstrap_arm64 = path;
    }
    if let Some(path) = cli.cross_compiler {
        inputs.cross_compiler = path;
    }
    if let Some(path) = cli.php_wasm {
        inputs.php_wasm = path;
    }
    let zips: Vec<&str> = if cli.zips.is_empty() {
        ZIPS.to_vec()
    } else {
        cli.zips.iter().map(String::as_str).collect()
    };
    match build_zips(&inputs, &zips, &cli.out) {
        Ok(built) => {
            for zip in built {
                println!(
                    "{:<40} {:>10} bytes  sha256 {}",
                    zip.path.display(),
                    zip.size,
                    zip.sha256
                );
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err:?}");
            ExitCode::FAILURE
        }
    }
}
