//! `cargo xtask fuzz`: runs every cargo-fuzz target (or one) for a fixed time.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::util::{cmd, output, root, run, say, succeeds};

/// Flags of `cargo xtask fuzz`.
#[derive(Args, Debug)]
pub(crate) struct FuzzArgs {
    /// Seconds to fuzz each target (libFuzzer `-max_total_time`).
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Only run this target (default: every target `cargo fuzz list` shows).
    target: Option<String>,
}

/// A `cargo +nightly ...` command. Goes through the rustup proxy on `PATH`
/// (not `$CARGO`, which is the stable toolchain's own binary and does not
/// understand `+nightly`).
fn nightly_cargo() -> std::process::Command {
    let mut c = cmd("cargo");
    c.arg("+nightly");
    // Set by rustup for the outer (stable) cargo; `+nightly` wins anyway, but
    // do not let it leak into anything nested.
    c.env_remove("RUSTUP_TOOLCHAIN");
    c
}

/// Runs the fuzz targets.
pub(crate) fn run_fuzz(args: &FuzzArgs) -> Result<()> {
    if !succeeds(cmd("rustup").args(["run", "nightly", "rustc", "--version"])) {
        say!(
            "fuzz: no nightly toolchain here; skipping (install with: rustup toolchain install nightly)"
        );
        return Ok(());
    }
    if !succeeds(nightly_cargo().args(["fuzz", "--version"])) {
        say!("fuzz: cargo-fuzz not found; installing it");
        run(cmd("cargo").args(["install", "cargo-fuzz", "--locked"]))
            .context("installing cargo-fuzz")?;
    }

    let listed = output(nightly_cargo().args(["fuzz", "list"])).context("cargo fuzz list")?;
    let all: Vec<String> = listed
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let targets = match &args.target {
        Some(t) if all.contains(t) => vec![t.clone()],
        Some(t) => bail!("no fuzz target `{t}`; known targets: [{}]", all.join(", ")),
        None => all,
    };
    if targets.is_empty() {
        say!("fuzz: no fuzz targets defined in fuzz/Cargo.toml yet; nothing to do");
        return Ok(());
    }

    let fuzz_dir = root().join("fuzz");
    let mut results = Vec::new();
    for t in &targets {
        say!("fuzz: ==> {t} for {}s", args.seconds);
        let result = fuzz_one(&fuzz_dir, t, args.seconds);
        match &result {
            Ok(()) => say!("fuzz: <== {t}: ok"),
            Err(e) => say!("fuzz: <== {t}: FAILED: {e:#}"),
        }
        results.push((t.clone(), result));
    }

    say!("fuzz: summary:");
    let mut failed = Vec::new();
    for (t, r) in &results {
        match r {
            Ok(()) => say!("  ok      {t}"),
            Err(e) => {
                say!("  FAILED  {t}: {e:#}");
                failed.push(t.as_str());
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        bail!("fuzz target(s) failed: {}", failed.join(", "))
    }
}

fn fuzz_one(fuzz_dir: &Path, target: &str, seconds: u64) -> Result<()> {
    // The first corpus directory is where libFuzzer writes new inputs; the
    // committed seeds are read-only input.
    let corpus = fuzz_dir.join("corpus").join(target);
    std::fs::create_dir_all(&corpus).with_context(|| format!("creating {}", corpus.display()))?;
    copy_vector_seed_files(target, &corpus)?;
    let seeds = fuzz_dir.join("seeds").join(target);
    let artifacts = fuzz_dir.join("artifacts").join(target);
    let before = list_files(&artifacts);

    let mut c = nightly_cargo();
    c.args(["fuzz", "run", "--debug-assertions", target])
        .arg(&corpus);
    if seeds.is_dir() {
        c.arg(&seeds);
    }
    for dir in vector_seeds(target) {
        c.arg(dir);
    }
    // Inputs larger than this are truncated: big enough for every real document and the small
    // archives, small enough to keep executions fast.
    c.arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg("-max_len=131072");
    let result = run(&mut c);

    let new: Vec<PathBuf> = list_files(&artifacts)
        .difference(&before)
        .cloned()
        .collect();
    for a in &new {
        say!("fuzz: {target}: artifact: {}", a.display());
    }
    match (result, new.is_empty()) {
        (Ok(()), true) => Ok(()),
        (Ok(()), false) => bail!("new artifacts written (see above)"),
        (Err(e), true) => Err(e),
        (Err(_), false) => bail!(
            "crash; reproduce with: cargo +nightly fuzz run {target} {}",
            new[0].display()
        ),
    }
}

/// The project's own vectors as read-only seed corpora (libFuzzer reads directories
/// recursively), so every target starts from real documents.
fn vector_seeds(target: &str) -> Vec<PathBuf> {
    let r = root();
    let dirs: &[&str] = match target {
        "descriptor" | "archive" => &["testdata/go-reference/cases", "testdata/vectors/cases"],
        "trust_policy" => &["testdata/go-reference", "testdata/vectors/trust"],
        "host_config" => &["crates/st-format/testdata/hostconfig"],
        "certificate" | "keys" => &["testdata/go-reference/keys", "testdata/vectors/trust"],
        _ => &[],
    };
    dirs.iter()
        .map(|d| r.join(d))
        .filter(|d| d.is_dir())
        .collect()
}

/// Single files of the vectors that seed `target`, where the directories they sit in hold much
/// else (the Sigsum proofs lie next to the cases' archives): copied into the working corpus
/// (`vector-<dir>-<name>`), which libFuzzer reads first.
fn copy_vector_seed_files(target: &str, corpus: &Path) -> Result<()> {
    let r = root();
    // (directory whose subdirectories hold the files, file name in each)
    let globs: &[(&str, &str)] = match target {
        "sigsum" => &[
            ("testdata/vectors/cases", "ospkg.zip.proof"),
            ("testdata/vectors/trust", "ospkg_trust_policy"),
            ("crates", "testdata/hello-sigsum.proof"),
            ("crates", "testdata/sigsum-test-2025-3.policy"),
            ("crates", "testdata/sigsum-generic-2025-1.policy"),
        ],
        _ => &[],
    };
    for (dir, name) in globs {
        let Ok(subdirs) = std::fs::read_dir(r.join(dir)) else {
            continue;
        };
        for sub in subdirs.filter_map(|e| e.ok().map(|e| e.path())) {
            let file = sub.join(name);
            if !file.is_file() {
                continue;
            }
            let stem = sub.file_name().and_then(|n| n.to_str()).unwrap_or("x");
            let base = Path::new(name)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("x");
            let to = corpus.join(format!("vector-{stem}-{base}"));
            std::fs::copy(&file, &to)
                .with_context(|| format!("copying {} to {}", file.display(), to.display()))?;
        }
    }
    Ok(())
}

fn list_files(dir: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}
