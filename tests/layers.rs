//! Imports go one way: main → app → api → the stages → config → domain (docs/ARCHITECTURE.md,
//! "Layers"). This test reads every `crate::…` path in `src/` and fails, naming the file, the
//! line and the import, when a module reaches one of its own rank or above. A new top-level
//! module must be given a rank here before it can build a green suite.

use std::path::{Path, PathBuf};

/// Every top-level module of the library and its rank: a module may import only modules of a
/// lower rank. The stages are ranked among themselves so that their imports form no cycle.
const LAYERS: &[(&str, u32)] = &[
    // values, no I/O
    ("domain", 0),
    // settings: site files → validated config
    ("config", 1),
    // the one metrics registry, then the node's channel types (which count drops into it)
    ("obs", 2),
    ("queue", 3),
    // stages, lowest first
    ("geo", 4),
    ("sim", 4),
    ("incidents", 5),
    ("ingest", 5),
    ("detect", 6),
    ("registry", 6),
    ("events", 7),
    ("sensors", 7),
    ("telemetry", 7),
    ("auth", 7),
    ("qa", 8),
    ("web", 8),
    // HTTP
    ("api", 9),
    // wiring
    ("app", 10),
];

/// `#[cfg(test)]` harness shared by every module's tests: it may import anything and be
/// imported from anywhere (tests only).
const EXEMPT: &[&str] = &["test_util"];

fn rank(module: &str) -> Option<u32> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, r)| *r)
}

/// The top-level module a file of `src/` belongs to (`None` for the crate roots and the
/// binary's own files, which sit above everything).
fn owner(relative: &Path) -> Option<String> {
    let mut parts = relative.components();
    let first = parts.next()?.as_os_str().to_str()?.to_owned();
    if parts.next().is_none() {
        let stem = first.strip_suffix(".rs")?;
        return match stem {
            "lib" | "main" => None,
            other => Some(other.to_owned()),
        };
    }
    (first != "cli").then_some(first)
}

/// Every `crate::<module>` a source text names, with its line: plain paths and each
/// branch of a `crate::{a::…, b::…}` group.
fn imports(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().last();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // e.g. `sitcenter_crate::` — not ours
            }
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for branch in group[..end].split(',') {
                    let name: String = branch
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        found.push((index + 1, name));
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push((index + 1, name));
                }
            }
        }
    }
    found
}

/// What is wrong with `text`, a file of `module`: one line per import that goes up or
/// sideways, or names a module the table does not know.
fn violations(file: &str, module: &str, text: &str) -> Vec<String> {
    if EXEMPT.contains(&module) {
        return Vec::new();
    }
    let Some(own) = rank(module) else {
        return vec![format!(
            "{file}: module `{module}` has no rank in tests/layers.rs LAYERS: place it in a layer"
        )];
    };
    let mut problems = Vec::new();
    for (line, target) in imports(text) {
        if target == module || EXEMPT.contains(&target.as_str()) || target == "self" {
            continue;
        }
        match rank(&target) {
            Some(r) if r < own => {}
            Some(r) => problems.push(format!(
                "{file}:{line}: `{module}` (rank {own}) imports `crate::{target}` (rank {r}): \
                 imports go down only (main → app → api → stages → config → domain)"
            )),
            None => problems.push(format!(
                "{file}:{line}: `crate::{target}` is not a module in tests/layers.rs LAYERS"
            )),
        }
    }
    problems
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(
        files.len() > 50,
        "found only {} files under src/",
        files.len()
    );
    let mut problems = Vec::new();
    for path in &files {
        let relative = path.strip_prefix(&src).expect("under src");
        let Some(module) = owner(relative) else {
            continue;
        };
        let text = std::fs::read_to_string(path).expect("readable source");
        let shown = format!("src/{}", relative.display());
        problems.extend(violations(&shown, &module, &text));
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn the_check_catches_an_upward_import_a_group_and_an_unranked_module() {
    let upward = "use crate::domain::Frame;\nuse crate::app::Node;\n";
    assert_eq!(
        violations("src/ingest/x.rs", "ingest", upward),
        [
            "src/ingest/x.rs:2: `ingest` (rank 5) imports `crate::app` (rank 10): \
          imports go down only (main → app → api → stages → config → domain)"
        ]
    );
    let grouped = "use crate::{config::CameraConfig, api::ApiState};";
    let found = violations("src/config/x.rs", "config", grouped);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("`crate::api`"), "{found:?}");
    let sideways = "let q = crate::registry::Registry::connect;";
    assert_eq!(violations("src/detect/x.rs", "detect", sideways).len(), 1);
    assert_eq!(
        violations("src/newthing/mod.rs", "newthing", "").len(),
        1,
        "an unranked module must be placed"
    );
    assert!(violations("src/events/x.rs", "events", "use crate::test_util::camera;").is_empty());
    assert_eq!(owner(Path::new("cli/mod.rs")), None);
    assert_eq!(owner(Path::new("main.rs")), None);
    assert_eq!(
        owner(Path::new("ingest/pool.rs")).as_deref(),
        Some("ingest")
    );
}
