//! The README's map of `host/src` against the tree: a file added, moved or removed without the
//! map saying so fails here.

use std::collections::BTreeSet;
use std::path::Path;

/// The rows of the table under `### Inside \`host/src\``: (path, what it says).
fn layout_rows() -> Vec<(String, String)> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let section = readme
        .split("### Inside `host/src`")
        .nth(1)
        .expect("README.md has no `### Inside `host/src`` section");
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|row| {
            let cells: Vec<&str> = row.trim_matches('|').split(" | ").collect();
            (
                cells[0].trim().trim_matches('`').to_string(),
                cells[1].to_string(),
            )
        })
        .collect()
}

#[test]
fn the_readme_layout_table_matches_host_src() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let rows = layout_rows();
    let listed: BTreeSet<String> = rows.iter().map(|(path, _)| path.clone()).collect();
    let mut present = BTreeSet::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let name = if entry.path().is_dir() {
            format!("{name}/")
        } else {
            name
        };
        if name != "lib.rs" {
            present.insert(name);
        }
    }
    assert_eq!(listed, present, "README.md's host/src table vs the tree");
    // A folder's row names each of its files but mod.rs.
    for (dir, what) in rows.iter().filter(|(path, _)| path.ends_with('/')) {
        for file in std::fs::read_dir(src.join(dir)).unwrap() {
            let file = file.unwrap().file_name().to_string_lossy().into_owned();
            if file != "mod.rs" && dir != "commands/" {
                assert!(
                    what.contains(&format!("`{file}`")),
                    "README.md's row for {dir} does not mention {file}: {what}"
                );
            }
        }
    }
}
