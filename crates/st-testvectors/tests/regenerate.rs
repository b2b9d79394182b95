//! The committed `testdata/vectors/` must equal a fresh generation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

fn committed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vectors")
}

#[test]
fn committed_vectors_are_current() {
    if let Err(e) = st_testvectors::check(&committed()) {
        panic!("{e}");
    }
}

#[test]
fn generate_writes_the_same_files() {
    let dir =
        std::env::temp_dir().join(format!("st-testvectors-regenerate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    st_testvectors::generate(&dir).unwrap();
    // A stale extra file is removed by the next generation.
    std::fs::write(dir.join("cases/stale"), b"x").unwrap();
    st_testvectors::generate(&dir).unwrap();
    let result = st_testvectors::check(&dir);
    // And the generated tree equals the committed one, file by file.
    let diff = compare(&dir, &committed());
    let _ = std::fs::remove_dir_all(&dir);
    result.unwrap();
    if let Some(d) = diff {
        panic!("{d}\nrun `cargo xtask gen-vectors`");
    }
}

fn list(root: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

fn compare(fresh: &std::path::Path, committed: &std::path::Path) -> Option<String> {
    let a = list(fresh);
    let b = list(committed);
    for p in &a {
        if !b.contains(p) {
            return Some(format!("missing from testdata/vectors: {}", p.display()));
        }
        if std::fs::read(fresh.join(p)).ok() != std::fs::read(committed.join(p)).ok() {
            return Some(format!("differs: testdata/vectors/{}", p.display()));
        }
    }
    b.iter()
        .find(|p| !a.contains(p))
        .map(|p| format!("extra file in testdata/vectors: {}", p.display()))
}
