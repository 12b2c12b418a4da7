//! One-way layers: every `crate::` path a module of `src/` names points at a
//! layer below its own (or into its own module). The order is declared
//! here and in `lib.rs`; a path that points up or sideways fails the test,
//! naming the file, the line and both layers.
//!
//! A `pub use` of a moved path, kept for one release, may point up when the
//! line above it says `// layers: re-export of a moved path`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

use std::path::{Path, PathBuf};

/// Bottom up. Modules of one layer may not import each other (`sideways`),
/// except the leaf layer, whose modules are independent utilities that
/// name each other only for documented reasons: `jcs` checks
/// `limits::MAX_DOCUMENT_BYTES`.
const LAYERS: &[(&str, &[&str])] = &[
    ("leaf", LEAF_ORDER),
    ("contract", &["contract"]),
    ("sim", &["sim"]),
    ("policy", &["policy"]),
    ("usage", &["usage"]),
    ("audit", &["audit"]),
    (
        "top",
        &["breach", "flow", "error", "schema", "fuzzing", "host"],
    ),
];

/// The leaf layer, and within it who may name whom (an order too).
/// `test_rng` (the unit tests' generator) comes first: any test may use it.
const LEAF_ORDER: &[&str] = &[
    "test_rng",
    "limits",
    "time",
    "kind",
    "pg",
    "pool",
    "hugepages",
    "jcs",
];

fn layer_of(module: &str) -> Option<usize> {
    // The root's re-export `crate::Error` is `error::Error`.
    let module = if module == "Error" { "error" } else { module };
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`None` for `lib.rs`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    if first == "lib.rs" {
        return None;
    }
    Some(first.trim_end_matches(".rs").to_string())
}

/// Every `crate::NAME` in code (comments and doc comments skipped).
fn crate_paths(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        let after = &rest[i + "crate::".len()..];
        let ident = |s: &str| -> String {
            s.trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        // `$crate::` is a macro's.
        if before != Some('$') {
            if let Some(group) = after.strip_prefix('{') {
                // `crate::{a, b::c}`: the first name of each member (a group
                // spanning lines is refused by rustfmt's one-line imports
                // of the crate; it would be seen line by line).
                let inner = group.split('}').next().unwrap_or("");
                let mut depth = 0usize;
                let mut start = 0usize;
                for (j, c) in inner.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => depth = depth.saturating_sub(1),
                        ',' if depth == 0 => {
                            out.push(ident(&inner[start..j]));
                            start = j + 1;
                        }
                        _ => {}
                    }
                }
                out.push(ident(&inner[start..]));
            } else {
                out.push(ident(after));
            }
        }
        out.retain(|n| !n.is_empty());
        rest = after;
    }
    out
}

/// Every violation in the tree at `src`.
fn violations(src: &Path) -> Vec<String> {
    let mut all = Vec::new();
    files(src, &mut all);
    all.sort();
    let mut bad = Vec::new();
    for file in &all {
        let Some(module) = module_of(src, file) else {
            continue;
        };
        let rel = file.strip_prefix(src).unwrap().display().to_string();
        let Some(own) = layer_of(&module) else {
            bad.push(format!(
                "src/{rel}: module `{module}` is in no layer of tests/layers.rs"
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        let mut exempt = false;
        for (n, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("// layers: re-export of a moved path") {
                exempt = true;
                continue;
            }
            let this_exempt = exempt && trimmed.starts_with("pub use crate::");
            if !trimmed.starts_with("pub use crate::") || !exempt {
                exempt = exempt && !trimmed.starts_with("pub use");
            }
            if trimmed.starts_with("//") {
                continue;
            }
            for target in crate_paths(line) {
                if target == module {
                    continue;
                }
                let Some(theirs) = layer_of(&target) else {
                    continue; // a macro
                };
                let ok = if own == 0 && theirs == 0 {
                    let a = LEAF_ORDER.iter().position(|m| *m == module);
                    let b = LEAF_ORDER.iter().position(|m| *m == target);
                    b < a
                } else {
                    theirs < own || (own == LAYERS.len() - 1 && theirs == own)
                };
                if !ok && !this_exempt {
                    bad.push(format!(
                        "src/{rel}:{}: `{module}` ({}) imports `crate::{target}` ({}), which is not below it",
                        n + 1,
                        LAYERS[own].0,
                        LAYERS[theirs].0
                    ));
                }
            }
            if this_exempt && !line.contains(';') {
                // a multi-line re-export: stay exempt until it ends
                exempt = true;
            } else if this_exempt {
                exempt = false;
            }
        }
    }
    bad
}

#[test]
fn every_import_points_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let bad = violations(&src);
    assert!(
        bad.is_empty(),
        "imports against the layers:\n{}",
        bad.join("\n")
    );
}

/// The check is not vacuous: a tree with an upward import fails, naming it.
#[test]
fn an_upward_import_is_named() {
    let dir = std::env::temp_dir().join(format!("smm-layers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sim")).unwrap();
    std::fs::write(dir.join("lib.rs"), "pub mod sim;\n").unwrap();
    std::fs::write(
        dir.join("sim/mod.rs"),
        "// crate::audit in a comment is fine\nuse crate::jcs;\nuse crate::audit::AuditBundle;\nuse crate::{limits, usage::Usd};\n",
    )
    .unwrap();
    std::fs::write(dir.join("jcs.rs"), "use crate::limits;\n").unwrap();
    std::fs::write(dir.join("limits.rs"), "use crate::jcs;\n").unwrap();
    let bad = violations(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(bad.len(), 3, "{bad:#?}");
    assert!(
        bad[0].contains("src/limits.rs:1") && bad[0].contains("crate::jcs"),
        "{bad:#?}"
    );
    assert!(
        bad[1].contains("src/sim/mod.rs:3") && bad[1].contains("crate::audit"),
        "{bad:#?}"
    );
    assert!(
        bad[2].contains("src/sim/mod.rs:4") && bad[2].contains("crate::usage"),
        "{bad:#?}"
    );
}
