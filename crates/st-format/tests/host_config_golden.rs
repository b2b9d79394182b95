//! Golden tests for host configs: every file under `testdata/hostconfig/` is a case.
//!
//! * `valid/NAME.json` must parse, and its canonical output must equal `valid/NAME.expected.json`
//!   byte for byte; the expected file must itself parse to the same value and be a fixed point.
//! * `invalid/NAME.json` must be rejected with an error whose message contains the text of
//!   `invalid/NAME.error.txt` (trailing newline ignored).
//!
//! `UPDATE_GOLDEN=1 cargo test -p st-format --test host_config_golden` rewrites every
//! `*.expected.json` and writes the full error message into any missing `*.error.txt`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use st_format::HostConfig;
use std::fs;
use std::path::{Path, PathBuf};

fn dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/hostconfig")
        .join(kind)
}

fn update() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

/// The `NAME.json` inputs of a directory, sorted, excluding `*.expected.json`.
fn inputs(kind: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.ends_with(".json") && !n.ends_with(".expected.json")
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no golden inputs in {kind}");
    v
}

fn companion(input: &Path, suffix: &str) -> PathBuf {
    let stem = input.file_stem().unwrap().to_string_lossy().into_owned();
    input.with_file_name(format!("{stem}{suffix}"))
}

#[test]
fn valid_host_configs() {
    let mut failures = Vec::new();
    for input in inputs("valid") {
        let name = input.display().to_string();
        let cfg = match HostConfig::from_json(&fs::read(&input).unwrap()) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{name}: rejected: {e}"));
                continue;
            }
        };
        let out = cfg.to_json_pretty();
        let expected_path = companion(&input, ".expected.json");
        if update() {
            fs::write(&expected_path, &out).unwrap();
        }
        let Ok(expected) = fs::read(&expected_path) else {
            failures.push(format!("{name}: missing {}", expected_path.display()));
            continue;
        };
        if out != expected {
            failures.push(format!(
                "{name}: canonical output differs from {}:\n{}",
                expected_path.display(),
                String::from_utf8_lossy(&out)
            ));
            continue;
        }
        // Round trip: the canonical form parses to the same value and is a fixed point.
        match HostConfig::from_json(&expected) {
            Ok(again) if again == cfg => {
                if again.to_json_pretty() != expected {
                    failures.push(format!("{name}: canonical form is not a fixed point"));
                }
            }
            other => failures.push(format!("{name}: canonical form re-parses to {other:?}")),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

#[test]
fn invalid_host_configs() {
    let mut failures = Vec::new();
    for input in inputs("invalid") {
        let name = input.display().to_string();
        let err = match HostConfig::from_json(&fs::read(&input).unwrap()) {
            Ok(c) => {
                failures.push(format!("{name}: accepted: {c:?}"));
                continue;
            }
            Err(e) => e.to_string(),
        };
        let want_path = companion(&input, ".error.txt");
        if update() && !want_path.exists() {
            fs::write(&want_path, format!("{err}\n")).unwrap();
        }
        let Ok(want) = fs::read_to_string(&want_path) else {
            failures.push(format!("{name}: missing {}", want_path.display()));
            continue;
        };
        let want = want.trim_end_matches('\n');
        if want.is_empty() || !err.contains(want) {
            failures.push(format!("{name}: error {err:?} does not contain {want:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Every companion file belongs to an input (catches typos in golden file names).
#[test]
fn no_orphan_golden_files() {
    for (kind, suffix) in [("valid", ".expected.json"), ("invalid", ".error.txt")] {
        for e in fs::read_dir(dir(kind)).unwrap() {
            let p = e.unwrap().path();
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            if let Some(stem) = n.strip_suffix(suffix) {
                assert!(
                    p.with_file_name(format!("{stem}.json")).exists(),
                    "orphan golden file {}",
                    p.display()
                );
            } else {
                assert!(n.ends_with(".json"), "unexpected file {}", p.display());
            }
        }
    }
}
