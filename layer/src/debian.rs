//! Debian packages pinned by version and sha256: read from a pins file, fetched with
//! `apt-get download` through a private sources list and state folder (the system's apt
//! configuration is read for its mirror and never changed), kept in a cache, and read with
//! `dpkg-deb`. Mirrors drop superseded versions, so a fetched `.deb` is kept: a build needs
//! the network once, and the pinned hash makes every later build use the very same bytes.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail, ensure};

use crate::sha256_hex;

/// The Debian release the packages come from: the one the build machines run (Debian 12).
pub const SUITE: &str = "bookworm";

/// One package of a pins file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub package: String,
    pub version: String,
    /// sha256 of the `.deb`, lowercase hex.
    pub sha256: String,
}

impl Pin {
    /// The name `apt-get download` gives the file (an epoch's `:` written `%3a`); pins are of
    /// architecture `all`, as PHP libraries are.
    pub fn deb_name(&self) -> String {
        format!(
            "{}_{}_all.deb",
            self.package,
            self.version.replace(':', "%3a")
        )
    }
}

/// Reads a pins file: one `PACKAGE VERSION SHA256` a line; `#` starts a comment.
pub fn read_pins(path: &Path) -> Result<Vec<Pin>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    parse_pins(&text, &path.display().to_string())
}

fn parse_pins(text: &str, origin: &str) -> Result<Vec<Pin>> {
    let mut pins: Vec<Pin> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default();
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let at = format!("{origin}:{}", number + 1);
        let [package, version, sha256] = fields[..] else {
            bail!(
                "{at}: expected `PACKAGE VERSION SHA256`, got `{}` (`apt-cache show PACKAGE` \
                 gives the Version and SHA256)",
                line.trim()
            );
        };
        ensure!(
            sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()),
            "{at}: `{sha256}` is not a sha256 (64 hex digits, as `apt-cache show {package}` \
             gives it)"
        );
        ensure!(
            !pins.iter().any(|p| p.package == package),
            "{at}: `{package}` is pinned twice"
        );
        pins.push(Pin {
            package: package.to_string(),
            version: version.to_string(),
            sha256: sha256.to_ascii_lowercase(),
        });
    }
    ensure!(!pins.is_empty(), "{origin} pins no package");
    Ok(pins)
}

/// The `.deb` of every pin, in their order, from `LAMP_CACHE/debs` or, for those not there yet
/// (or not matching their hash), downloaded into it with apt-get (its private state in
/// `LAMP_CACHE/apt-bookworm`). Holds a lock on the folder meanwhile, so builds in parallel do
/// not download into each other.
pub fn fetch(pins: &[Pin], lamp_cache: &Path) -> Result<Vec<PathBuf>> {
    let cache = &lamp_cache.join("debs");
    std::fs::create_dir_all(cache)
        .with_context(|| format!("failed to create `{}`", cache.display()))?;
    let lock = File::create(cache.join(".lock"))
        .with_context(|| format!("failed to create a lock file in `{}`", cache.display()))?;
    lock.lock()
        .with_context(|| format!("failed to lock `{}`", cache.display()))?;
    let missing: Vec<&Pin> = pins
        .iter()
        .filter(|pin| !matches(pin, &cache.join(pin.deb_name())))
        .collect();
    if !missing.is_empty() {
        download(&missing, cache, &lamp_cache.join(format!("apt-{SUITE}")))?;
    }
    Ok(pins.iter().map(|pin| cache.join(pin.deb_name())).collect())
}

/// Whether `deb` is there with the pinned hash.
fn matches(pin: &Pin, deb: &Path) -> bool {
    std::fs::read(deb).is_ok_and(|bytes| sha256_hex(&bytes) == pin.sha256)
}

/// Downloads `pins` into `cache` through the private apt of [`SUITE`], each checked against its
/// hash before it takes its place (a half-downloaded or wrong file never does).
fn download(pins: &[&Pin], cache: &Path, apt_dir: &Path) -> Result<()> {
    let apt = PrivateApt::new(apt_dir)?;
    eprintln!(
        "fetching {} from Debian {SUITE} ({}) into {}",
        pins.iter()
            .map(|p| format!("{}={}", p.package, p.version))
            .collect::<Vec<_>>()
            .join(" "),
        apt.mirror,
        cache.display()
    );
    apt.update()?;
    let incoming = tempfile::tempdir_in(cache)
        .with_context(|| format!("failed to create a folder in `{}`", cache.display()))?;
    let output = apt
        .command()
        .arg("download")
        .args(pins.iter().map(|p| format!("{}={}", p.package, p.version)))
        .current_dir(incoming.path())
        .output()
        .context("failed to run `apt-get download` (Debian's apt)")?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!(download_failed(pins, &stderr, &apt.mirror, cache));
    }
    for pin in pins {
        let name = pin.deb_name();
        let deb = incoming.path().join(&name);
        let bytes = std::fs::read(&deb).with_context(|| {
            format!(
                "`apt-get download {}={}` wrote no `{name}` (is the package of architecture \
                 `all`, as pins must be?)",
                pin.package, pin.version
            )
        })?;
        let got = sha256_hex(&bytes);
        ensure!(
            got == pin.sha256,
            "`{name}` from {} has sha256 {got}, not the pinned {}: the pin is wrong, or the \
             mirror is",
            apt.mirror,
            pin.sha256
        );
        std::fs::rename(&deb, cache.join(&name))
            .with_context(|| format!("failed to move `{name}` into `{}`", cache.display()))?;
    }
    Ok(())
}

/// What to say when `apt-get download` failed with `stderr`: which pins the mirror has no more
/// and what to do about it, or apt's own words.
fn download_failed(pins: &[&Pin], stderr: &str, mirror: &str, cache: &Path) -> String {
    // apt's words for it: "E: Version '7.4.4-1' for 'php-guzzlehttp-guzzle' was not found".
    let gone: Vec<&Pin> = pins
        .iter()
        .copied()
        .filter(|p| stderr.contains(&format!("'{}' for '{}'", p.version, p.package)))
        .collect();
    if gone.is_empty() {
        return format!(
            "`apt-get download` of {} from {mirror} failed:\n{stderr}",
            pins.iter()
                .map(|p| p.package.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let list = |show: &dyn Fn(&Pin) -> String| gone.iter().map(|p| show(p)).collect::<Vec<_>>();
    format!(
        "{} not on {mirror} any more (mirrors drop superseded versions):\n{stderr}\
         Either pin the version the mirror has now (`apt-cache policy {}`, the SHA256 from \
         `apt-cache show`), or take the pinned one from Debian's snapshot archive: \
         LAMP_DEBIAN_MIRROR=https://snapshot.debian.org/archive/debian/YYYYMMDDT000000Z (a date \
         when it was current), or its .deb ({}) put in `{}` (its hash is checked)",
        list(&|p| format!("{} {}", p.package, p.version)).join(", "),
        list(&|p| p.package.clone()).join(" "),
        list(&|p| format!("https://snapshot.debian.org/binary/{}/", p.package)).join(", "),
        cache.display()
    )
}

/// apt-get with its own sources list, package lists and cache in `dir`, and no dpkg status:
/// downloads need no root and leave the system's apt as it was.
struct PrivateApt {
    dir: PathBuf,
    mirror: String,
}

impl PrivateApt {
    fn new(dir: &Path) -> Result<Self> {
        let mirror = debian_mirror();
        for sub in ["lists/partial", "cache/archives/partial"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("failed to create `{}`", dir.join(sub).display()))?;
        }
        // Signed by Debian's archive key like the system's own sources: the pinned hashes
        // make the bytes certain anyway; the signature makes a bad mirror fail early.
        let line = format!(
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {mirror} {SUITE} main\n"
        );
        let list = dir.join("sources.list");
        std::fs::write(&list, line)
            .with_context(|| format!("failed to write `{}`", list.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            mirror,
        })
    }

    fn command(&self) -> Command {
        let dir = |sub: &str| self.dir.join(sub).display().to_string();
        let mut command = Command::new("apt-get");
        for option in [
            format!("Dir::Etc::SourceList={}", dir("sources.list")),
            "Dir::Etc::SourceParts=-".into(),
            format!("Dir::State::Lists={}", dir("lists")),
            format!("Dir::Cache={}", dir("cache")),
            "Dir::State::status=/dev/null".into(),
            // As root, apt would download as `_apt`, which cannot write to the cache.
            format!("APT::Sandbox::User={}", current_user()),
        ] {
            command.arg("-o").arg(option);
        }
        command.arg("-qq");
        command
    }

    fn update(&self) -> Result<()> {
        let output =
            self.command().arg("update").output().context(
                "failed to run `apt-get update` (Debian's apt; is this a Debian machine?)",
            )?;
        ensure!(
            output.status.success(),
            "`apt-get update` of {} {SUITE} (private lists in `{}`) failed ({}):\n{}",
            self.mirror,
            self.dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }
}

/// `LAMP_DEBIAN_MIRROR`, else the Debian mirror the system's apt uses, else deb.debian.org.
fn debian_mirror() -> String {
    if let Some(mirror) = std::env::var("LAMP_DEBIAN_MIRROR")
        .ok()
        .filter(|m| !m.is_empty())
    {
        return mirror;
    }
    std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.strip_prefix("URIs:"))
        .map(str::trim)
        .find(|uri| uri.starts_with("http") && uri.trim_end_matches('/').ends_with("/debian"))
        .unwrap_or("http://deb.debian.org/debian")
        .to_string()
}

fn current_user() -> String {
    Command::new("id")
        .arg("-un")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "root".into())
}

/// Unpacks the files of `deb` into `dir` (`dpkg-deb -x`).
pub fn unpack(deb: &Path, dir: &Path) -> Result<()> {
    dpkg_deb("-x", deb, Some(dir)).map(drop)
}

/// The control fields of `deb` (`dpkg-deb -f`), continuation lines joined.
pub fn control(deb: &Path) -> Result<Vec<(String, String)>> {
    let stdout = dpkg_deb("-f", deb, None)?;
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in String::from_utf8_lossy(&stdout).lines() {
        match (line.strip_prefix([' ', '\t']), fields.last_mut()) {
            (Some(more), Some((_, value))) => {
                value.push('\n');
                value.push_str(more);
            }
            _ => {
                if let Some((name, value)) = line.split_once(':') {
                    fields.push((name.to_string(), value.trim().to_string()));
                }
            }
        }
    }
    Ok(fields)
}

/// `dpkg-deb ACTION DEB [DIR]`: its output, or its error.
fn dpkg_deb(action: &str, deb: &Path, dir: Option<&Path>) -> Result<Vec<u8>> {
    let output = Command::new("dpkg-deb")
        .arg(action)
        .arg(deb)
        .args(dir)
        .output()
        .context("failed to run `dpkg-deb` (Debian's dpkg)")?;
    ensure!(
        output.status.success(),
        "`dpkg-deb {action} {}` failed ({}):\n{}",
        deb.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(output.stdout)
}

/// One alternative of a relationship field (`Depends`, `Provides`): a package name, and the
/// version relation if any (`>=`, `<<`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub package: String,
    pub version: Option<(String, String)>,
}

/// A relationship field: all of the outer list, each satisfied by any of its alternatives
/// (`a (>= 1), b | c`).
pub fn relations(field: &str) -> Vec<Vec<Relation>> {
    field
        .split(',')
        .map(|all| {
            all.split('|')
                .filter_map(|alternative| {
                    let alternative = alternative.trim();
                    let (name, rest) = alternative
                        .split_once('(')
                        .map_or((alternative, None), |(n, r)| (n, Some(r)));
                    let package = name.trim().split(':').next()?.to_string();
                    let version = rest.and_then(|r| {
                        let r = r.trim_end_matches(')').trim();
                        let split = r.find(|c: char| !"<>=".contains(c))?;
                        Some((r[..split].to_string(), r[split..].trim().to_string()))
                    });
                    (!package.is_empty()).then_some(Relation { package, version })
                })
                .collect::<Vec<_>>()
        })
        .filter(|alternatives| !alternatives.is_empty())
        .collect()
}

/// Whether Debian version `version` satisfies `relation` (`>=`, `<<`, ...) against `other`,
/// as dpkg compares them (`dpkg --compare-versions`).
pub fn version_satisfies(version: &str, relation: &str, other: &str) -> Result<bool> {
    let op = match relation {
        "<<" => "lt",
        "<=" | "<" => "le",
        "=" => "eq",
        ">=" | ">" => "ge",
        ">>" => "gt",
        other => bail!("unknown version relation `{other}`"),
    };
    let status = Command::new("dpkg")
        .args(["--compare-versions", version, op, other])
        .status()
        .context("failed to run `dpkg --compare-versions` (Debian's dpkg)")?;
    Ok(status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_parsed_with_comments_and_refused_when_malformed() {
        let sha = "a".repeat(64);
        let pins = parse_pins(
            &format!("# header\n\nphp-a 1.0-1 {sha}  # why\nphp-b 2:3.0-1+deb12u1 {sha}\n"),
            "pins",
        )
        .unwrap();
        assert_eq!(pins.len(), 2);
        assert_eq!(pins[1].deb_name(), "php-b_2%3a3.0-1+deb12u1_all.deb");
        let err = |text: &str| format!("{:#}", parse_pins(text, "pins").unwrap_err());
        assert!(err("php-a 1.0-1\n").contains("pins:1: expected `PACKAGE VERSION SHA256`"));
        assert!(err("php-a 1.0-1 abc\n").contains("`abc` is not a sha256"));
        assert!(
            err(&format!("php-a 1 {sha}\nphp-a 2 {sha}\n")).contains("`php-a` is pinned twice")
        );
        assert!(err("# nothing\n").contains("pins no package"));
    }

    #[test]
    fn a_version_the_mirror_dropped_is_named_with_what_to_do() {
        let sha = "a".repeat(64);
        let pins =
            parse_pins(&format!("php-a 7.4.4-1 {sha}\nphp-b 1.0-1 {sha}\n"), "pins").unwrap();
        let pins: Vec<&Pin> = pins.iter().collect();
        let said = download_failed(
            &pins,
            "E: Version '7.4.4-1' for 'php-a' was not found\n",
            "http://deb.debian.org/debian",
            Path::new("/cache/debs"),
        );
        assert!(
            said.starts_with("php-a 7.4.4-1 not on http://deb.debian.org/debian any more")
                && said.contains("`apt-cache policy php-a`")
                && said.contains("LAMP_DEBIAN_MIRROR=https://snapshot.debian.org/archive/debian/")
                && said
                    .contains("(https://snapshot.debian.org/binary/php-a/) put in `/cache/debs`"),
            "{said}"
        );
        let said = download_failed(&pins, "E: something else\n", "M", Path::new("/c"));
        assert_eq!(
            said,
            "`apt-get download` of php-a, php-b from M failed:\nE: something else\n"
        );
    }

    #[test]
    fn relations_keep_alternatives_and_versions() {
        let parsed = relations("php-common, php-a (>= 1.5), php-a (<< 2~~), php-b:any | php-c");
        let r = |p: &str, v: Option<(&str, &str)>| Relation {
            package: p.into(),
            version: v.map(|(o, v)| (o.into(), v.into())),
        };
        assert_eq!(
            parsed,
            [
                vec![r("php-common", None)],
                vec![r("php-a", Some((">=", "1.5")))],
                vec![r("php-a", Some(("<<", "2~~")))],
                vec![r("php-b", None), r("php-c", None)],
            ]
        );
    }

    #[test]
    fn versions_compare_as_dpkg_does() {
        assert!(version_satisfies("1.5.2-1", ">=", "1.5").unwrap());
        assert!(version_satisfies("1.5.2-1", "<<", "2~~").unwrap());
        assert!(!version_satisfies("2.0.0-1", "<<", "2~~").unwrap());
        assert!(version_satisfies("2.4.5-1+deb12u1", ">>", "2.4.5-1").unwrap());
    }
}
