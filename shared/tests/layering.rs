//! The layers of `shared/src` stay in order: `records` (the records the ports carry) below both
//! `ports` and `domain`, so that neither of those imports the other in a circle
//! (`src/records/mod.rs`). A port or a record that names `domain`, a record that names `ports`,
//! or a record that names `config` (which reaches `domain`) fails here with the file and the line.
//!
//! Reads the source text, so it also catches a path written out in full (`crate::domain::x::Y`)
//! and the grouped form (`use crate::{domain::x, ...}`), not only a `use` line.

use std::fs;
use std::path::{Path, PathBuf};

/// A forbidden name in the files of one directory.
struct Rule {
    /// Under `src/`.
    dir: &'static str,
    /// The module that directory must not reach.
    module: &'static str,
    /// Text that reaches it (`super::domain` also covers `super::super::domain`).
    patterns: &'static [&'static str],
}

const RULES: &[Rule] = &[
    Rule {
        dir: "ports",
        module: "domain",
        patterns: &["crate::domain", "super::domain"],
    },
    Rule {
        dir: "records",
        module: "domain",
        patterns: &["crate::domain", "super::domain"],
    },
    Rule {
        dir: "records",
        module: "ports",
        patterns: &["crate::ports", "super::ports"],
    },
    // `config` reaches `domain` (the key checks of onboarding), so a record that named it
    // would be above `domain` again, one step removed.
    Rule {
        dir: "records",
        module: "config",
        patterns: &["crate::config", "super::config"],
    },
];

/// Every `.rs` file under `dir`, in name order.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

/// Whether a `use crate::{...}` statement (whitespace removed) names `module` at its top level
/// or in a nested group.
fn grouped_use_names(statement: &str, module: &str) -> bool {
    let Some(group) = statement.split_once("crate::{").map(|(_, rest)| rest) else {
        return false;
    };
    [format!("{{{module}::"), format!(",{module}::")]
        .iter()
        .any(|p| format!("{{{group}").contains(p.as_str()))
}

/// Each line of `text` that reaches `rule.module`, as "path:line: text".
fn offending_lines(root: &Path, path: &Path, text: &str, rule: &Rule) -> Vec<String> {
    let shown = path
        .strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let direct = rule.patterns.iter().any(|p| line.contains(p));
        let trimmed = line.trim_start();
        let grouped = !direct
            && (trimmed.starts_with("use ")
                || (trimmed.starts_with("pub") && trimmed.contains(" use ")))
            && {
                // The whole statement, up to the line with its `;`, without whitespace.
                let end = lines[i..]
                    .iter()
                    .position(|l| l.contains(';'))
                    .map_or(lines.len(), |n| i + n + 1);
                let statement: String = lines[i..end]
                    .concat()
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect();
                grouped_use_names(&statement, rule.module)
            };
        if direct || grouped {
            found.push(format!(
                "{shown}:{}: {} (src/{} must not import `{}`)",
                i + 1,
                line.trim(),
                rule.dir,
                rule.module
            ));
        }
    }
    found
}

#[test]
fn ports_and_records_never_import_the_layers_above_them() {
    // Cargo sets `CARGO_MANIFEST_DIR` for the test's run too: that one is this checkout's. The
    // compiled-in one is wherever the binary was built, and a clone at another path that shares
    // the build cache reuses the binary (cargo's fingerprints do not hold the absolute path):
    // `bin/test` here ran a binary built by CI's clone, and found no `src/ports` there.
    let root = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let root = root.as_path();
    let mut offences = Vec::new();
    for rule in RULES {
        for path in rust_files(&root.join("src").join(rule.dir)) {
            let text = fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            offences.extend(offending_lines(root, &path, &text, rule));
        }
    }
    assert!(
        offences.is_empty(),
        "{} import(s) against the layering (records below ports and domain; see \
         src/records/mod.rs). Move the type into `records` and import it from there:\n{}",
        offences.len(),
        offences.join("\n")
    );
}

#[test]
fn the_check_sees_every_form_of_import() {
    let rule = RULES
        .iter()
        .find(|r| r.dir == "records" && r.module == "domain")
        .expect("the records/domain rule");
    let root = Path::new("/x");
    let path = Path::new("/x/src/records/a.rs");
    let hits = |text: &str| offending_lines(root, path, text, rule).len();
    assert_eq!(hits("use crate::domain::onboarding::CustomerRecord;"), 1);
    assert_eq!(hits("    field: crate::domain::x::Y,"), 1);
    assert_eq!(hits("use super::super::domain::x::Y;"), 1);
    assert_eq!(
        hits("use crate::{\n    models::a::B,\n    domain::x::Y,\n};"),
        1
    );
    assert_eq!(hits("use crate::{domain::x, models::y};"), 1);
    assert_eq!(hits("use crate::{models::{a, b}, domain::x};"), 1);
    assert_eq!(hits("pub(crate) use crate::{domain::x};"), 1);
    assert_eq!(hits("use crate::records::matching::MatchStatus;"), 0);
    assert_eq!(hits("//! The rules are in `domain::alert_policy`."), 0);
    assert_eq!(hits("use crate::{models::x, records::y};"), 0);
    assert_eq!(
        offending_lines(root, path, "use crate::domain::x;", rule),
        vec!["src/records/a.rs:1: use crate::domain::x; (src/records must not import `domain`)"]
    );
}
