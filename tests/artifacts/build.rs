//! Builds the guests/ workspace for `wasm32-wasip2` and writes `artifacts.rs`: one path
//! constant per component. Runs in its own target directory with the host's rustflags
//! stripped, so nothing of the host build (coverage, sanitizers, linkers) leaks into wasm.
//! When the wasm target is missing, the build still succeeds and every use of an artifact
//! panics with the command that fixes it.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.join("../..").canonicalize().unwrap();
    let guests = root.join("guests");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let target_dir = root.join("target/guests");

    for watched in [
        "guests/Cargo.toml",
        "guests/sdk",
        "guests/hello-rust",
        "guests/fixtures",
        "examples/lamp-app/rust",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let members = guest_members(&guests);
    let problem = if !target_installed() {
        Some(format!(
            "the Rust target {TARGET} is not installed; run `rustup target add {TARGET}` (or `make setup`)"
        ))
    } else {
        build_guests(&guests, &target_dir).err()
    };
    if let Some(problem) = &problem {
        println!("cargo:warning=guest components not built: {problem}");
    }

    let mut code = String::new();
    code.push_str(&format!("/// Why the guests are missing, if they are.\npub const PROBLEM: Option<&str> = {problem:?};\n"));
    for (crate_name, lib_name) in &members {
        let path = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{lib_name}.wasm"));
        let constant = crate_name.to_uppercase().replace('-', "_");
        code.push_str(&format!(
            "/// `{crate_name}` built as a component.\npub const {constant}: &str = {:?};\n",
            path.display().to_string()
        ));
    }
    std::fs::write(out_dir.join("artifacts.rs"), code).unwrap();
}

/// Each guest crate's package name and the file stem its cdylib gets.
fn guest_members(guests: &Path) -> Vec<(String, String)> {
    let mut dirs = vec![
        guests.join("hello-rust"),
        guests.join("../examples/lamp-app/rust"),
    ];
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(guests.join("fixtures"))
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    fixtures.sort();
    dirs.extend(
        fixtures
            .into_iter()
            .filter(|d| d.join("Cargo.toml").is_file()),
    );
    dirs.iter()
        .map(|dir| {
            let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
            let name = manifest
                .lines()
                .find_map(|line| {
                    line.trim()
                        .strip_prefix("name = ")
                        .map(|n| n.trim_matches('"').to_string())
                })
                .expect("a guest Cargo.toml names its package");
            let lib = name.replace('-', "_");
            (name, lib)
        })
        .collect()
}

fn target_installed() -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc).args(["--print", "sysroot"]).output();
    match sysroot {
        Ok(out) => {
            let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
            Path::new(&sysroot)
                .join("lib/rustlib")
                .join(TARGET)
                .is_dir()
        }
        Err(_) => false,
    }
}

fn build_guests(guests: &Path, target_dir: &Path) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(guests)
        .args([
            "build",
            "--release",
            "--workspace",
            "--target",
            TARGET,
            "--target-dir",
        ])
        .arg(target_dir);
    // The outer build's settings are for the host; none of them apply to wasm guests.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_") && key != "CARGO_HOME"
            || key == "RUSTFLAGS"
            || key == "RUSTC_WRAPPER"
            || key == "RUSTC_WORKSPACE_WRAPPER"
        {
            cmd.env_remove(key.as_ref());
        }
    }
    let status = cmd
        .status()
        .map_err(|e| format!("failed to run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`cargo build --target {TARGET}` in guests/ failed ({status}); run it there to see why"
        ))
    }
}
