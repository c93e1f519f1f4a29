//! `vendor.zip`: the PHP libraries a handler loads with `require '/opt/vendor/autoload.php';`.
//! They are Debian 12's packages of Guzzle and its dependencies, pinned in
//! `layer/vendor/debian-packages.txt`; their `/usr/share/php` is laid out under `vendor/` as
//! Debian lays it out (one folder per namespace: `vendor/GuzzleHttp/Client.php`,
//! `vendor/Psr/Http/Message/...`), with one autoloader written for the layer,
//! `layer/vendor/autoload.php`, instead of Debian's per-package ones (which find each other
//! through an include_path with /usr/share/php in it).
//!
//! Beside the code, `vendor/debian/packages.txt` says what is in the layer (Composer name and
//! version, Debian package and version), and `vendor/debian/copyright/PACKAGE` is each
//! package's Debian copyright file: the libraries' licences ask that their notices go with
//! every copy.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, ensure};

use crate::archive::{Entry, Packing, REGULAR};
use crate::debian::{self, Pin, Relation};

/// The pins file, in the vendor input folder.
pub const PINS: &str = "debian-packages.txt";
/// The autoloader, in the vendor input folder; `vendor/autoload.php` in the zip.
pub const AUTOLOADER: &str = "autoload.php";

/// What the packages may depend on without it being pinned: the php layer's PHP has it.
/// An extension package (php-mbstring, php-xml, ...) goes here only if that PHP is built with
/// the extension (guests/php/README.md).
const PROVIDED_BY_THE_RUNTIME: &[&str] = &[
    // Debian's configuration of its PHP (/etc/php, the session cleaner): nothing a library
    // loads.
    "php-common",
    // Built into PHP 8.
    "php-json",
];

/// The entries of `vendor.zip`: the autoloader and the pinned packages' libraries from
/// `dir` (`layer/vendor`), the `.deb`s from `lamp_cache` or fetched into it.
pub fn entries(dir: &Path, lamp_cache: &Path) -> Result<Vec<Entry>> {
    let pins_file = dir.join(PINS);
    let pins = debian::read_pins(&pins_file)?;
    let debs = debian::fetch(&pins, lamp_cache).with_context(|| {
        format!(
            "failed to fetch the packages pinned in `{}`",
            pins_file.display()
        )
    })?;
    let mut packages = Vec::new();
    for (pin, deb) in pins.iter().zip(&debs) {
        packages.push(Package::read(pin, deb)?);
    }
    check_dependencies(&packages)
        .with_context(|| format!("the packages of `{}` are incomplete", pins_file.display()))?;
    let mut entries = library_entries(dir, &pins_file, &packages, &debs)?;
    for entry in &mut entries {
        entry.packing = Packing::DeflateQuick;
    }
    Ok(entries)
}

/// The files of the zip: the autoloader, each package's library, copyright, the manifest.
fn library_entries(
    dir: &Path,
    pins_file: &Path,
    packages: &[Package],
    debs: &[PathBuf],
) -> Result<Vec<Entry>> {
    let mut entries = vec![Entry::from_file(
        format!("vendor/{AUTOLOADER}"),
        &dir.join(AUTOLOADER),
        REGULAR,
    )?];
    let mut manifest = String::from(
        "# The PHP libraries in this layer: Composer name and version, and the Debian 12 package\n\
         # they come from (lamp-layer, from layer/vendor/debian-packages.txt).\n",
    );
    for (package, deb) in packages.iter().zip(debs) {
        let unpacked = tempfile::tempdir()?;
        debian::unpack(deb, unpacked.path())?;
        let root = unpacked.path();
        let php = root.join("usr/share/php");
        ensure!(
            php.is_dir(),
            "`{}` installs nothing in /usr/share/php: it is no PHP library; take it out of `{}`",
            package.pin.package,
            pins_file.display()
        );
        entries.extend(
            crate::tree(&php, "vendor")?
                .into_iter()
                .filter(|e| !is_debian_autoloader(&e.name)),
        );
        let name = &package.pin.package;
        entries.push(Entry::from_file(
            format!("vendor/debian/copyright/{name}"),
            &root.join(format!("usr/share/doc/{name}/copyright")),
            REGULAR,
        )?);
        manifest.push_str(&format!(
            "{} {} {name} {}\n",
            composer_name(root, name),
            upstream_version(&package.pin.version),
            package.pin.version
        ));
    }
    entries.push(Entry::new(
        "vendor/debian/packages.txt",
        REGULAR,
        manifest.into_bytes(),
    ));
    Ok(entries)
}

/// The autoloaders Debian's tools (phpab, pkg-php-tools) generate for each package:
/// `autoload.php` and `*-autoload.php` (`Psr/Http/Message/factory-autoload.php`). They require
/// each other by include_path and are replaced by the layer's one.
fn is_debian_autoloader(name: &str) -> bool {
    let file = name.rsplit('/').next().unwrap_or(name);
    file == "autoload.php" || file.ends_with("-autoload.php")
}

/// The Composer name pkg-php-tools records for `package` (`guzzlehttp/guzzle`), or `-`.
fn composer_name(root: &Path, package: &str) -> String {
    let recorded = std::fs::read_to_string(
        root.join("usr/share/pkg-php-tools/autoloaders")
            .join(package),
    )
    .unwrap_or_default();
    match recorded.split_whitespace().collect::<Vec<_>>()[..] {
        [vendor, project, ..] => format!("{vendor}/{project}"),
        _ => "-".into(),
    }
}

/// A Debian version's upstream part: no epoch, no Debian revision (`2.4.5-1+deb12u1` → `2.4.5`).
fn upstream_version(version: &str) -> &str {
    let version = version.split_once(':').map_or(version, |(_, v)| v);
    version.rsplit_once('-').map_or(version, |(v, _)| v)
}

/// A pinned package and what its control file says.
struct Package<'a> {
    pin: &'a Pin,
    /// `Depends` and `Pre-Depends`.
    depends: Vec<Vec<Relation>>,
    /// `Provides`: virtual packages, with a version when given.
    provides: Vec<Relation>,
}

impl<'a> Package<'a> {
    /// Reads `deb`'s control file, which must be the pinned package and version.
    fn read(pin: &'a Pin, deb: &Path) -> Result<Self> {
        let control = debian::control(deb)?;
        let field = |name: &str| {
            control
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .unwrap_or_default()
        };
        ensure!(
            field("Package") == pin.package && field("Version") == pin.version,
            "`{}` is {} {}, not the pinned {} {}",
            deb.display(),
            field("Package"),
            field("Version"),
            pin.package,
            pin.version
        );
        let mut depends = debian::relations(field("Pre-Depends"));
        depends.extend(debian::relations(field("Depends")));
        let provides = debian::relations(field("Provides"))
            .into_iter()
            .flatten()
            .collect();
        Ok(Self {
            pin,
            depends,
            provides,
        })
    }
}

/// Every dependency of every package is pinned in a version it accepts, provided by a pinned
/// package, or provided by the runtime; else the error names each one missing and what to do.
fn check_dependencies(packages: &[Package]) -> Result<()> {
    let mut problems = Vec::new();
    for package in packages {
        for alternatives in &package.depends {
            let mut satisfied = false;
            for wanted in alternatives {
                if satisfies(packages, wanted)? {
                    satisfied = true;
                    break;
                }
            }
            if !satisfied {
                let shown: Vec<String> = alternatives.iter().map(show).collect();
                let pinned: Vec<String> = alternatives
                    .iter()
                    .filter_map(|w| packages.iter().find(|p| p.pin.package == w.package))
                    .map(|p| format!("{} {}", p.pin.package, p.pin.version))
                    .collect();
                problems.push(if pinned.is_empty() {
                    // Named without versions: `p (>= 1), p (<< 2~~)` is one thing to add, and
                    // the pinned version is checked against both once it is there.
                    let names: Vec<&str> =
                        alternatives.iter().map(|w| w.package.as_str()).collect();
                    format!(
                        "`{}` depends on `{}`, which is not pinned: add it (`apt-cache show {}`), \
                         or, if it is a PHP extension the php layer's PHP has, list it in \
                         PROVIDED_BY_THE_RUNTIME (layer/src/vendor.rs)",
                        package.pin.package,
                        names.join(" | "),
                        names[0]
                    )
                } else {
                    format!(
                        "`{}` depends on `{}`, but the pin is {}: pin a version it accepts",
                        package.pin.package,
                        shown.join(" | "),
                        pinned.join(", ")
                    )
                });
            }
        }
    }
    problems.dedup();
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

/// Whether `wanted` is the runtime's, a pinned package in a version it accepts, or a virtual
/// package a pinned one provides (in a version it accepts, when it asks for one).
fn satisfies(packages: &[Package], wanted: &Relation) -> Result<bool> {
    if PROVIDED_BY_THE_RUNTIME.contains(&wanted.package.as_str()) {
        return Ok(true);
    }
    let accepts = |version: Option<&str>| -> Result<bool> {
        match (&wanted.version, version) {
            (None, _) => Ok(true),
            (Some((relation, bound)), Some(version)) => {
                debian::version_satisfies(version, relation, bound)
            }
            // A versioned dependency is not satisfied by an unversioned Provides (Debian policy
            // 7.5).
            (Some(_), None) => Ok(false),
        }
    };
    for package in packages {
        if package.pin.package == wanted.package && accepts(Some(&package.pin.version))? {
            return Ok(true);
        }
        for provided in package
            .provides
            .iter()
            .filter(|p| p.package == wanted.package)
        {
            let version = provided.version.as_ref().map(|(_, v)| v.as_str());
            if accepts(version)? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn show(relation: &Relation) -> String {
    match &relation.version {
        Some((op, version)) => format!("{} ({op} {version})", relation.package),
        None => relation.package.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(package: &str, version: &str) -> Pin {
        Pin {
            package: package.into(),
            version: version.into(),
            sha256: "0".repeat(64),
        }
    }

    fn package<'a>(pin: &'a Pin, depends: &str, provides: &str) -> Package<'a> {
        Package {
            pin,
            depends: debian::relations(depends),
            provides: debian::relations(provides).into_iter().flatten().collect(),
        }
    }

    #[test]
    fn dependencies_must_be_pinned_in_an_accepted_version_or_provided() {
        let (a, b, c) = (
            pin("php-a", "1.5.2-1"),
            pin("php-b", "2.0.0-1"),
            pin("php-c", "1.0-1"),
        );
        let ok = [
            package(
                &a,
                "php-common, php-b (>= 2), php-b (<< 3~~), php-impl (= 1.0)",
                "",
            ),
            package(&b, "php-json", ""),
            package(&c, "", "php-impl (= 1.0)"),
        ];
        check_dependencies(&ok).unwrap();

        let missing = [package(
            &a,
            "php-common, php-x (>= 1) | php-y, php-z (>= 1), php-z (<< 2)",
            "",
        )];
        let err = check_dependencies(&missing).unwrap_err().to_string();
        assert!(
            err.contains("`php-a` depends on `php-x | php-y`, which is not pinned"),
            "{err}"
        );
        assert_eq!(
            err.matches("depends on `php-z`, which is not pinned")
                .count(),
            1,
            "{err}"
        );
        let too_new = [
            package(&a, "php-b (<< 2~~)", ""),
            package(&b, "", ""),
            package(&c, "php-impl (>= 1)", "php-impl"),
        ];
        let err = check_dependencies(&too_new).unwrap_err().to_string();
        assert!(
            err.contains("`php-a` depends on `php-b (<< 2~~)`, but the pin is php-b 2.0.0-1"),
            "{err}"
        );
        assert!(
            err.contains("`php-c` depends on `php-impl`, which is not pinned"),
            "an unversioned Provides does not satisfy a versioned dependency: {err}"
        );
    }

    #[test]
    fn debian_autoloaders_are_told_from_libraries() {
        assert!(is_debian_autoloader("vendor/GuzzleHttp/autoload.php"));
        assert!(is_debian_autoloader(
            "vendor/Psr/Http/Message/factory-autoload.php"
        ));
        assert!(!is_debian_autoloader(
            "vendor/getallheaders/getallheaders.php"
        ));
        assert!(!is_debian_autoloader(
            "vendor/GuzzleHttp/functions_include.php"
        ));
    }

    #[test]
    fn upstream_versions_lose_epoch_and_revision() {
        assert_eq!(upstream_version("2.4.5-1+deb12u1"), "2.4.5");
        assert_eq!(upstream_version("2:8.2+93"), "8.2+93");
        assert_eq!(upstream_version("1.0"), "1.0");
    }
}
