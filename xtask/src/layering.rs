//! Layering check: the pure libraries (`st-format`, `st-verify`) stay free of
//! I/O stacks and of ambient clocks, so that they can be fuzzed, tested with
//! fixed inputs, and used unchanged by both `stmgr` and `stboot`.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::util::{cargo, output, root, say};

/// The crates that must stay pure.
const PURE_CRATES: &[&str] = &["st-format", "st-verify"];

/// Crates that must not appear in the normal (non-build, non-dev) dependency
/// tree of a pure crate.
const BANNED_DEPS: &[&str] = &["tokio", "reqwest", "hyper", "ureq", "libc"];

/// `libc` is tolerated only when every path to it goes through these crates.
///
/// Why: `ring` (signature verification and SHA-256) normal-depends on
/// `getrandom` 0.2, which on Linux depends on `libc` to call `getrandom(2)`.
/// `st-verify` only verifies signatures and hashes, so that code is never
/// reached from it, but the dependency edge exists. Any other route to
/// `libc` (an HTTP client, an async runtime, a crate doing file I/O) is a
/// layering violation.
const LIBC_ALLOWED_VIA: &[&str] = &["getrandom", "ring"];

/// Source patterns that must not occur in a pure crate's `src/`.
///
/// `std::net` itself is allowed for its plain address types (`IpAddr`,
/// `Ipv4Addr`, `SocketAddr`, ...: parsing and printing, no I/O; the host
/// config needs them). Sockets are caught by name instead, and a glob import
/// `std::net::*` is refused because it would hide them.
const BANNED_PATTERNS: &[&str] = &[
    "std::fs",
    "std::net::*",
    "TcpStream",
    "TcpListener",
    "UdpSocket",
    "ToSocketAddrs",
    "SystemTime::now",
    "Instant::now",
];

/// Runs the whole layering check, printing what it found.
pub(crate) fn check() -> Result<()> {
    let mut problems = Vec::new();
    for krate in PURE_CRATES {
        problems.extend(check_deps(krate)?);
        problems.extend(check_sources(krate)?);
    }
    if problems.is_empty() {
        say!("layering: ok");
        return Ok(());
    }
    for p in &problems {
        say!("layering: VIOLATION: {p}");
    }
    bail!("{} layering violation(s)", problems.len());
}

/// Crate names (without versions and markers) from `cargo tree --prefix none`
/// or `--prefix depth` output. With `--prefix depth`, returns (depth, name).
fn tree_names(tree: &str) -> Vec<(usize, String)> {
    tree.lines()
        .filter_map(|line| {
            let line = line.trim();
            let digits = line.chars().take_while(char::is_ascii_digit).count();
            let depth = line[..digits].parse().unwrap_or(0);
            let name = line[digits..].split_whitespace().next()?;
            Some((depth, name.to_owned()))
        })
        .collect()
}

fn check_deps(krate: &str) -> Result<Vec<String>> {
    let tree = output(cargo().args(["tree", "-p", krate, "-e", "normal", "--prefix", "none"]))
        .with_context(|| format!("cargo tree for {krate}"))?;
    let names: BTreeSet<String> = tree_names(&tree).into_iter().map(|(_, n)| n).collect();
    say!(
        "layering: {krate}: {} crates in the normal dependency tree",
        names.len()
    );

    let mut problems = Vec::new();
    for banned in BANNED_DEPS {
        if !names.contains(*banned) {
            continue;
        }
        if *banned == "libc" {
            // Who pulls libc in? Walk the inverted tree; every crate on the
            // way back to `krate` must be on the allow list.
            let inv = output(cargo().args([
                "tree", "-p", krate, "-e", "normal", "-i", "libc", "--prefix", "depth",
            ]))?;
            let via: BTreeSet<String> = tree_names(&inv)
                .into_iter()
                .filter(|(depth, name)| {
                    *depth > 0 && name != krate && !PURE_CRATES.contains(&name.as_str())
                })
                .map(|(_, n)| n)
                .collect();
            let bad: Vec<&String> = via
                .iter()
                .filter(|n| !LIBC_ALLOWED_VIA.contains(&n.as_str()))
                .collect();
            let via_list = via.iter().cloned().collect::<Vec<_>>().join(", ");
            if bad.is_empty() {
                say!(
                    "layering: {krate}: libc present only via [{via_list}] (allowed: ring -> getrandom -> libc)"
                );
            } else {
                problems.push(format!(
                    "{krate} depends on libc via [{via_list}]; only [{}] are allowed",
                    LIBC_ALLOWED_VIA.join(", ")
                ));
            }
        } else {
            problems.push(format!("{krate} depends on banned crate `{banned}`"));
        }
    }
    Ok(problems)
}

fn check_sources(krate: &str) -> Result<Vec<String>> {
    let dir = root().join("crates").join(krate).join("src");
    let mut files = Vec::new();
    collect_rs(&dir, &mut files)?;
    let mut problems = Vec::new();
    for file in &files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let rel = file
            .strip_prefix(root())
            .unwrap_or(file)
            .display()
            .to_string();
        problems.extend(scan_source(&rel, &text));
    }
    say!(
        "layering: {krate}: scanned {} source files for {}",
        files.len(),
        BANNED_PATTERNS.join(", ")
    );
    Ok(problems)
}

/// Finds banned patterns in one file, ignoring `//` comments. Also catches
/// grouped imports such as `use std::{fs, io};`.
fn scan_source(rel: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut in_std_group = false;
    for (n, raw) in text.lines().enumerate() {
        let code = raw.split("//").next().unwrap_or("");
        for pat in BANNED_PATTERNS {
            if code.contains(pat) {
                problems.push(format!("{rel}:{}: uses `{pat}`: {}", n + 1, raw.trim()));
            }
        }
        let mut rest = code;
        if let Some(pos) = code.find("std::{") {
            in_std_group = true;
            rest = &code[pos + "std::{".len()..];
        }
        if in_std_group {
            let group = rest.split('}').next().unwrap_or("");
            for tok in group.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                if tok == "fs" {
                    problems.push(format!(
                        "{rel}:{}: imports `std::{tok}`: {}",
                        n + 1,
                        raw.trim()
                    ));
                }
            }
            if rest.contains('}') {
                in_std_group = false;
            }
        }
    }
    problems
}

fn collect_rs(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect_rs(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_names_parses_both_prefix_styles() {
        let none = "ring v0.17.14\nlibc v0.2.1 (*)\nst-verify v0.1.0 (/x)\n";
        let names: Vec<String> = tree_names(none).into_iter().map(|(_, n)| n).collect();
        assert_eq!(names, ["ring", "libc", "st-verify"]);
        let depth = "0libc v0.2.191\n1getrandom v0.2.17\n2ring v0.17.14\n3st-verify v0.1.0 (/x)\n";
        let got = tree_names(depth);
        assert_eq!(got[1], (1, "getrandom".to_owned()));
        assert_eq!(got[3], (3, "st-verify".to_owned()));
    }

    #[test]
    fn scan_finds_direct_and_grouped_uses() {
        let src = "use std::fs::File;\n// std::fs in a comment is fine\nuse std::{\n    io,\n    net::TcpStream,\n    fs,\n};\nlet t = std::time::Instant::now();\nuse std::{fmt, str};\nuse std::net::{IpAddr, Ipv4Addr};\n";
        let found = scan_source("x.rs", src);
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(found[0].contains("x.rs:1"));
        assert!(found[1].contains("x.rs:5") && found[1].contains("TcpStream"));
        assert!(found[2].contains("x.rs:6") && found[2].contains("std::fs"));
        assert!(found[3].contains("Instant::now"));
    }
}
