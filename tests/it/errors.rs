//! One list of error types (`host::error::types::ALL`), held against the three places that give
//! them: the host (`host/src`), the PHP runtime (`guests/php/runtime`) and the Rust SDK
//! (`guests/sdk`). A type spelled in one of them and missing from the list, or a listed type
//! nobody gives, fails here; so does a failure named differently by PHP and by the SDK.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use host::error::types;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The files below `dir` (relative to the repository) whose name ends in one of `exts`.
fn sources(dir: &str, exts: &[&str]) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut stack = vec![repo().join(dir)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if exts.iter().any(|ext| path.to_string_lossy().ends_with(ext)) {
                let text = std::fs::read_to_string(&path).unwrap();
                found.push((path, text));
            }
        }
    }
    assert!(!found.is_empty(), "no sources in {dir}");
    found
}

/// Every quoted `Runtime.X`, `Sandbox.X` or `Handler.X` in `text` (either quote).
fn quoted_types(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for quote in ['"', '\''] {
        for (i, _) in text.match_indices(quote) {
            let rest = &text[i + 1..];
            let Some(end) = rest.find(quote) else {
                continue;
            };
            let word = &rest[..end];
            let shaped = ["Runtime.", "Sandbox.", "Handler."].iter().any(|category| {
                word.strip_prefix(category).is_some_and(|reason| {
                    !reason.is_empty() && reason.chars().all(|c| c.is_ascii_alphanumeric())
                })
            });
            if shaped {
                found.insert(word.to_string());
            }
        }
    }
    found
}

/// The types quoted in the sources below `dir`, with the file each was first seen in.
fn given_in(dir: &str, exts: &[&str], skip: Option<&str>) -> Vec<(String, PathBuf)> {
    let mut given = Vec::new();
    for (path, text) in sources(dir, exts) {
        if skip.is_some_and(|s| path.ends_with(s)) {
            continue;
        }
        given.extend(quoted_types(&text).into_iter().map(|t| (t, path.clone())));
    }
    given
}

/// The host's types: the constants of `types` its code uses (outside error.rs, which lists
/// them), plus any type it spells out.
fn given_by_host() -> Vec<(String, PathBuf)> {
    let list = std::fs::read_to_string(repo().join("host/src/error.rs")).unwrap();
    let mut given = given_in("host/src", &[".rs"], Some("error.rs"));
    for (path, text) in sources("host/src", &[".rs"]) {
        for line in list.lines().filter(|l| l.contains("pub const ")) {
            let Some((name, value)) = line
                .trim()
                .strip_prefix("pub const ")
                .and_then(|l| l.split_once(": &str = \""))
            else {
                continue;
            };
            if !path.ends_with("error.rs") && text.contains(&format!("types::{name}")) {
                given.push((value.trim_end_matches("\";").to_string(), path.clone()));
            }
        }
    }
    given
}

#[test]
fn host_php_runtime_and_sdk_give_only_listed_types_and_every_listed_type_is_given() {
    let php = given_in("guests/php/runtime", &[".c", ".php"], None);
    let sdk = given_in("guests/sdk/src", &[".rs"], None);
    let host = given_by_host();
    let listed: BTreeSet<&str> = types::ALL.iter().copied().collect();
    for (error_type, path) in php.iter().chain(&sdk).chain(&host) {
        assert!(
            listed.contains(error_type.as_str()),
            "{} gives `{error_type}`, which is not in host/src/error.rs's list; add it there \
             (with what it means) or use a listed type",
            path.display()
        );
    }
    let given: BTreeSet<&str> = php
        .iter()
        .chain(&sdk)
        .chain(&host)
        .map(|(t, _)| t.as_str())
        .collect();
    for error_type in &listed {
        assert!(
            given.contains(error_type),
            "`{error_type}` is listed but neither the host, the PHP runtime nor the SDK gives it"
        );
    }
}

/// The failures both guest runtimes can have carry the same name in both.
#[test]
fn php_and_the_sdk_name_the_same_failures_alike() {
    let php: BTreeSet<String> = given_in("guests/php/runtime", &[".c", ".php"], None)
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    let sdk: BTreeSet<String> = given_in("guests/sdk/src", &[".rs"], None)
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    for shared in [types::INVALID_EVENT, types::MARSHAL] {
        assert!(
            php.contains(shared),
            "the PHP runtime does not give {shared}"
        );
        assert!(sdk.contains(shared), "the SDK does not give {shared}");
    }
}

#[test]
fn the_scanner_finds_quoted_types_only() {
    let found = quoted_types(
        r#"x("Runtime.Trap") 'Sandbox.Timedout' "Runtime.Bad Type" "Runtime." Handler.Error"#,
    );
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["Runtime.Trap", "Sandbox.Timedout"]
    );
}
