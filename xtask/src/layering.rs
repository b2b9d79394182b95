//! Layering check: the pure libraries (`st-format`, `st-verify`, `st-sign`,
//! `st-image`) stay free of I/O stacks and of ambient clocks, so that they can
//! be fuzzed, tested with fixed inputs, and used unchanged by both `stmgr` and
//! `stboot`. Their callers pass in bytes and times.
//!
//! One ambient input is allowed: `st-sign` draws a fresh key's seed from the
//! operating system's random generator (`SigningKey::generate`, ring's
//! `SystemRandom`, `getrandom(2)`), which is neither file or socket I/O nor a
//! clock; deterministic keys come from `SigningKey::from_seed`.
//! Test code (`#[cfg(test)]` items) is not scanned: it may read fixtures.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::util::{cargo, output, root, say};

/// The crates that must stay pure.
const PURE_CRATES: &[&str] = &[
    "st-format",
    "st-verify",
    "st-sign",
    "st-image",
    "st-measure",
    "st-tpm",
    "st-sigsum",
    "st-age",
    "st-attest",
];

/// Crates that must not appear in the normal (non-build, non-dev) dependency
/// tree of a pure crate.
const BANNED_DEPS: &[&str] = &["tokio", "reqwest", "hyper", "ureq", "libc"];

/// `libc` is tolerated only when every path to it ends in this chain: `libc`
/// is depended on by `getrandom` alone, and `getrandom` by `ring` alone.
/// Above `ring`, any crate may use it (`st-verify`, `rcgen`, `x509-parser`
/// with rcgen's verification feature).
///
/// Why: `ring` (signatures, SHA-256, key generation) normal-depends on
/// `getrandom` 0.2, which on Linux depends on `libc` to call `getrandom(2)`.
/// `st-verify` only verifies signatures and hashes, so that code is never
/// reached from it; `st-sign` uses it for fresh keys. Any other route to
/// `libc` (an HTTP client, an async runtime, a crate doing file I/O) is a
/// layering violation.
const LIBC_ALLOWED_CHAIN: &[&str] = &["getrandom", "ring"];

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
    // The `time` crate (st-sign builds certificates with it).
    "OffsetDateTime::now",
    "UtcDateTime::now",
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
            // Who pulls libc in? Walk the inverted tree: every path back to
            // `krate` must start libc <- getrandom <- ring.
            let inv = output(cargo().args([
                "tree", "-p", krate, "-e", "normal", "-i", "libc", "--prefix", "depth",
            ]))?;
            let bad = libc_routes_outside_chain(&tree_names(&inv));
            if bad.is_empty() {
                say!("layering: {krate}: libc present only via ring -> getrandom -> libc");
            } else {
                problems.push(format!(
                    "{krate} depends on libc via {}; only {} -> libc is allowed",
                    bad.join(", "),
                    LIBC_ALLOWED_CHAIN
                        .iter()
                        .rev()
                        .copied()
                        .collect::<Vec<_>>()
                        .join(" -> ")
                ));
            }
        } else {
            problems.push(format!("{krate} depends on banned crate `{banned}`"));
        }
    }
    Ok(problems)
}

/// The dependency edges of an inverted `cargo tree -i libc --prefix depth`
/// that leave [`LIBC_ALLOWED_CHAIN`] before its end, as "dependent -> dependency".
fn libc_routes_outside_chain(inverted: &[(usize, String)]) -> Vec<String> {
    let mut stack: Vec<&str> = Vec::new();
    let mut bad = BTreeSet::new();
    for (depth, name) in inverted {
        stack.truncate(*depth);
        // Depth d is a dependent of the crate at depth d - 1; below the end
        // of the chain anything may depend on it.
        if (1..=LIBC_ALLOWED_CHAIN.len()).contains(depth) {
            let on_chain = stack
                .iter()
                .skip(1)
                .zip(LIBC_ALLOWED_CHAIN)
                .all(|(got, want)| got == want);
            if on_chain && LIBC_ALLOWED_CHAIN[depth - 1] != name {
                bad.insert(format!("{name} -> {}", stack[depth - 1]));
            }
        }
        stack.push(name);
    }
    bad.into_iter().collect()
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

/// Finds banned patterns in one file, ignoring `//` comments and
/// `#[cfg(test)]` items (test code may read fixtures; it is not shipped).
/// Also catches grouped imports such as `use std::{fs, io};`.
fn scan_source(rel: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut in_std_group = false;
    let mut test_item = TestItem::default();
    for (n, raw) in text.lines().enumerate() {
        let code = raw.split("//").next().unwrap_or("");
        if test_item.skips(code) {
            continue;
        }
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

/// Tracks a `#[cfg(test)]` item from its attribute to its closing brace (or
/// `;` for `mod tests;`), counting braces outside string and char literals.
#[derive(Default)]
struct TestItem {
    /// Inside the item (or between the attribute and the item's first line).
    active: bool,
    /// Brace depth inside the item.
    depth: usize,
    /// The item's opening brace was seen.
    opened: bool,
}

impl TestItem {
    /// Is this line (without its `//` comment) part of a `#[cfg(test)]` item?
    fn skips(&mut self, code: &str) -> bool {
        if !self.active {
            let attr: String = code.chars().filter(|c| !c.is_whitespace()).collect();
            if !attr.starts_with("#[cfg(test)]") {
                return false;
            }
            *self = Self {
                active: true,
                ..Self::default()
            };
            // The item may follow the attribute on the same line.
            return self.advance(code.split_once(']').map_or("", |(_, rest)| rest));
        }
        self.advance(code)
    }

    fn advance(&mut self, code: &str) -> bool {
        let mut chars = code.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    // Skip the string literal (one line; escapes honoured).
                    while let Some(s) = chars.next() {
                        match s {
                            '\\' => {
                                chars.next();
                            }
                            '"' => break,
                            _ => {}
                        }
                    }
                }
                '\'' => {
                    // A char literal such as '{' or '\\'; a lifetime has no closing quote
                    // within three characters and is left alone.
                    let ahead: Vec<char> = chars.clone().take(3).collect();
                    if ahead.get(1) == Some(&'\'') {
                        chars.nth(1);
                    } else if ahead.first() == Some(&'\\') && ahead.get(2) == Some(&'\'') {
                        chars.nth(2);
                    }
                }
                '{' => {
                    self.depth += 1;
                    self.opened = true;
                }
                '}' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.opened && self.depth == 0 {
                        self.active = false;
                    }
                }
                ';' if !self.opened => self.active = false,
                _ => {}
            }
        }
        true
    }
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

    #[test]
    fn scan_finds_the_time_crates_clock() {
        let src = "let t = time::OffsetDateTime::now_utc();\nlet u = OffsetDateTime::now_local();\nlet f = OffsetDateTime::from_unix_timestamp(0);\n";
        let found = scan_source("sign.rs", src);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found[0].contains("sign.rs:1") && found[0].contains("OffsetDateTime::now"));
        assert!(found[1].contains("sign.rs:2"));
    }

    #[test]
    fn scan_skips_test_items_only() {
        let src = r#"fn a() {}
#[cfg(test)]
mod tests {
    fn braces_in_literals() { let _ = ("}", '}', '{', "\"}"); }
    #[test]
    fn reads_a_fixture() { let _ = std::fs::read("/bin/true"); }
}
fn after() { let _ = std::fs::read("x"); }
#[cfg(test)] mod more;
#[cfg(test)]
use std::fs::File;
fn last() { let _ = std::time::SystemTime::now(); }
"#;
        let found = scan_source("img.rs", src);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found[0].contains("img.rs:8") && found[0].contains("std::fs"));
        assert!(found[1].contains("img.rs:12") && found[1].contains("SystemTime::now"));
    }

    #[test]
    fn libc_through_ring_is_allowed_from_any_crate_above_it() {
        // cargo tree -p st-sign -e normal -i libc --prefix depth
        let tree = "0libc v0.2.191\n1getrandom v0.2.17\n2ring v0.17.14\n3rcgen v0.14.10\n4st-sign v0.1.0 (/x)\n3st-sign v0.1.0 (/x)\n3st-verify v0.1.0 (/x)\n4st-sign v0.1.0 (/x)\n3x509-parser v0.18.1\n4rcgen v0.14.10 (*)\n";
        assert!(libc_routes_outside_chain(&tree_names(tree)).is_empty());
    }

    #[test]
    fn libc_by_another_route_is_a_violation() {
        // An HTTP client using libc directly, and a crate using getrandom without ring.
        let tree = "0libc v0.2.191\n1getrandom v0.2.17\n2ring v0.17.14\n3st-verify v0.1.0 (/x)\n2rand_core v0.6.4\n3st-sign v0.1.0 (/x)\n1socket2 v0.5.7\n2ureq v3.0.0\n3st-sign v0.1.0 (/x)\n";
        let bad = libc_routes_outside_chain(&tree_names(tree));
        assert_eq!(
            bad,
            ["rand_core -> getrandom", "socket2 -> libc"],
            "{bad:#?}"
        );
    }

    #[test]
    fn the_pure_crates_sources_pass() {
        for krate in PURE_CRATES {
            let problems = check_sources(krate).unwrap();
            assert!(problems.is_empty(), "{krate}: {problems:#?}");
        }
    }
}
