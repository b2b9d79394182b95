//! `cargo xtask test`: the full local/CI check.

use anyhow::Result;
use clap::Args;

use crate::util::{Steps, cargo, say, succeeds};
use crate::{deps, layering};

/// Flags of `cargo xtask test`.
#[derive(Args, Debug)]
pub(crate) struct TestArgs {
    /// Skip `cargo fmt --check`, `cargo clippy` and the rustdoc check.
    #[arg(long)]
    no_lint: bool,
}

/// Runs fmt, clippy, rustdoc, the tests, the layering check, the vector check and the
/// end-to-end hook, in that order, stopping at the first failure.
pub(crate) fn run(args: &TestArgs) -> Result<()> {
    let mut steps = Steps::default();

    // Everything the steps below run (cpio, dnsmasq, QEMU, nginx, ...), so a fresh machine
    // gets a green run from this command alone, not only through `.ci/run`.
    steps.run("install", || {
        deps::ensure(deps::For::Test)?;
        deps::ensure_rust_components()
    })?;

    if args.no_lint {
        say!("--no-lint: skipping fmt, clippy and rustdoc");
    } else {
        steps.run("fmt", || {
            crate::util::run(cargo().args(["fmt", "--all", "--", "--check"]))
        })?;
        steps.run("clippy", || {
            crate::util::run(cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--locked",
                "--",
                "-D",
                "warnings",
            ]))
        })?;
        // Broken intra-doc links and other rustdoc warnings, private items included (the
        // internals are documented for the next reader too).
        steps.run("rustdoc", || {
            crate::util::run(
                cargo()
                    .args([
                        "doc",
                        "--workspace",
                        "--no-deps",
                        "--document-private-items",
                        "--locked",
                    ])
                    .env("RUSTDOCFLAGS", "-D warnings"),
            )
        })?;
    }

    if succeeds(cargo().args(["nextest", "--version"])) {
        steps.run("tests (nextest)", || {
            crate::util::run(cargo().args([
                "nextest",
                "run",
                "--workspace",
                "--locked",
                "--no-tests=warn",
            ]))
        })?;
        // nextest does not run doctests.
        steps.run("doctests", || {
            crate::util::run(cargo().args(["test", "--doc", "--workspace", "--locked"]))
        })?;
    } else {
        say!("cargo-nextest not found; using cargo test");
        steps.run("tests (cargo test)", || {
            crate::util::run(cargo().args(["test", "--workspace", "--locked"]))
        })?;
    }

    steps.run("layering", layering::check)?;
    // The verifier is for clients too (a VPN app, a browser): it must keep building for wasm32.
    steps.run("wasm32 build of st-attest", wasm32_check)?;
    // The committed test vectors are checked against a fresh generation by the
    // `st-testvectors` regenerate test, part of the workspace tests above.
    steps.run("e2e", e2e_check)?;

    steps.summary();
    say!("test: all steps passed");
    Ok(())
}

/// `cargo build -p st-attest --target wasm32-unknown-unknown` (adding the target first).
fn wasm32_check() -> Result<()> {
    const WASM: &str = "wasm32-unknown-unknown";
    let installed =
        crate::util::output(crate::util::cmd("rustup").args(["target", "list", "--installed"]))
            .unwrap_or_default();
    if !installed.lines().any(|l| l.trim() == WASM) {
        crate::util::run(crate::util::cmd("rustup").args(["target", "add", WASM]))?;
    }
    crate::util::run(cargo().args([
        "build",
        "--locked",
        "-p",
        "st-attest",
        "--target",
        WASM,
        "--release",
    ]))
}

/// End-to-end: every `cargo xtask e2e` scenario (QEMU, Debian kernel, nginx with TLS, test OS
/// packages), one after another, all run even after a failure.
fn e2e_check() -> Result<()> {
    crate::e2e::run_all()
}
