//! PHP: where its two builds are found, and the PHP CLI (`host php`).
//!
//! `php.wasm` (or the `php.cwasm` made from it) is the handler component that runs PHP
//! scripts as Lambda handlers; `php-cli.wasm` is the command-line interpreter, a `wasi:cli`
//! command component, for PHP's own test suite. Both are looked up the same way ([`find_runtime`],
//! [`find_cli`]): what the user names, then the layers (the runtime only), then where a
//! development build puts them.
//!
//! [`snapshot`] makes the per-deployment snapshot: PHP with the function's code compiled in;
//! [`watch`] tells `host serve` whether that code changed since.

pub mod cli;
pub mod snapshot;
pub mod watch;
#[cfg(feature = "wizer")]
pub mod wizer;

use std::path::{Path, PathBuf};

use crate::resolve::LAYER_DIR;

/// Environment variable that points at a PHP runtime component, overriding the lookup.
pub const PHP_RUNTIME_ENV: &str = "LAMP_PHP_RUNTIME";
/// Environment variable that points at `php-cli.wasm` (read by `host php --php-cli`).
pub const PHP_CLI_ENV: &str = "LAMP_PHP_CLI";

/// The PHP runtime component: `explicit` (`--php-runtime`), else `$LAMP_PHP_RUNTIME`, else
/// `php.cwasm`, `php.wasm` or `php.wasm.xz` in the layers' `lamp/` folder, then in the places
/// a development build puts it. On failure, every path tried.
pub fn find_runtime(explicit: Option<&Path>, layers_root: &Path) -> Result<PathBuf, Vec<PathBuf>> {
    let from_env = std::env::var_os(PHP_RUNTIME_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    if let Some(path) = explicit.map(Path::to_path_buf).or(from_env) {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(vec![path])
        };
    }
    let mut dirs = vec![layers_root.join(LAYER_DIR)];
    dirs.extend(development_dirs());
    first_file(&dirs, &["php.cwasm", "php.wasm", "php.wasm.xz"])
}

/// `php-cli.wasm`: `explicit` (`--php-cli`, or `$LAMP_PHP_CLI`), else where a development
/// build puts it. On failure, every path tried.
pub fn find_cli(explicit: Option<&Path>) -> Result<PathBuf, Vec<PathBuf>> {
    match explicit {
        Some(path) if path.is_file() => Ok(path.to_path_buf()),
        Some(path) => Err(vec![path.to_path_buf()]),
        None => first_file(&development_dirs(), &["php-cli.wasm"]),
    }
}

/// Where PHP guests see the CA certificates they trust: OpenSSL's `OPENSSLDIR` in our build
/// (guests/php/libs.sh), so `cert.pem` in it is the default file of PHP's streams, mysqlnd
/// and every other OpenSSL user, with no configuration.
pub const GUEST_SSL_DIR: &str = "/etc/ssl";

/// The folder holding the `cert.pem` that PHP guests see as [`GUEST_SSL_DIR`] (read-only): the
/// `ssl/` beside the PHP component `beside`, else in the layers' `lamp/` folder (the php layer
/// ships `lamp/ssl/cert.pem`), else where a development build puts it. `None` when there is
/// none: TLS peers then fail verification unless the script names its own CA file.
pub fn find_ssl_dir(beside: &Path, layers_root: &Path) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = beside.parent().map(Path::to_path_buf).into_iter().collect();
    dirs.push(layers_root.join(LAYER_DIR));
    dirs.extend(development_dirs());
    first_file(&dirs, &["ssl/cert.pem"])
        .ok()
        .and_then(|cert| cert.parent().map(Path::to_path_buf))
}

/// Where a development build has PHP: beside the host binary, the `guests/php/dist` of the
/// checkout the binary sits in (`target/{debug,release}/host`), and in a debug build the
/// checkout it was built from (a release build, which a layer ships, carries no path of the
/// machine that built it), then `guests/php/dist` under the current directory.
fn development_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        if let Some(repo) = exe_dir.parent().and_then(Path::parent) {
            dirs.push(exe_dir.clone());
            dirs.push(repo.join("guests/php/dist"));
        } else {
            dirs.push(exe_dir);
        }
    }
    #[cfg(debug_assertions)]
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests/php/dist"));
    dirs.push(PathBuf::from("guests/php/dist"));
    dirs
}

/// The first of `names` that is a file in the first of `dirs` that has one.
fn first_file(dirs: &[PathBuf], names: &[&str]) -> Result<PathBuf, Vec<PathBuf>> {
    let mut tried = Vec::new();
    for dir in dirs {
        for name in names {
            let path = dir.join(name);
            if path.is_file() {
                return Ok(path);
            }
            tried.push(path);
        }
    }
    Err(tried)
}

/// Paths tried, for an error message: `` `a`, `b` ``.
pub fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| format!("`{}`", p.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layers_come_before_the_development_build() {
        let layers = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(layers.path().join("lamp")).unwrap();
        std::fs::write(layers.path().join("lamp/php.wasm.xz"), b"").unwrap();
        // A LAMP_PHP_RUNTIME in the environment of the test run would win over the layers.
        if std::env::var_os(PHP_RUNTIME_ENV).is_none() {
            assert_eq!(
                find_runtime(None, layers.path()).unwrap(),
                layers.path().join("lamp/php.wasm.xz")
            );
        }
        let missing = layers.path().join("nope.wasm");
        assert_eq!(
            find_runtime(Some(&missing), layers.path()),
            Err(vec![missing])
        );
    }

    #[test]
    fn the_ca_folder_beside_the_runtime_comes_before_the_layers() {
        let layers = tempfile::tempdir().unwrap();
        let lamp = layers.path().join("lamp");
        std::fs::create_dir_all(lamp.join("ssl")).unwrap();
        std::fs::write(lamp.join("ssl/cert.pem"), b"").unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let runtime = elsewhere.path().join("php.cwasm");
        assert_eq!(
            find_ssl_dir(&runtime, layers.path()),
            Some(lamp.join("ssl")),
            "no ssl/ beside the runtime: the layers' one"
        );
        std::fs::create_dir_all(elsewhere.path().join("ssl")).unwrap();
        std::fs::write(elsewhere.path().join("ssl/cert.pem"), b"").unwrap();
        assert_eq!(
            find_ssl_dir(&runtime, layers.path()),
            Some(elsewhere.path().join("ssl"))
        );
    }
}
