//! `cargo xtask bench-sigsum`: time to parse and verify a Sigsum proof (st-sigsum, release
//! build); prints the table recorded in docs/benchmarks.md.

use crate::util;

pub(crate) fn run() -> anyhow::Result<()> {
    let mut c = util::cargo();
    c.args([
        "run",
        "--quiet",
        "--locked",
        "--release",
        "-p",
        "st-sigsum",
        "--features",
        "testlog",
        "--example",
        "verify_bench",
    ]);
    util::run(&mut c)
}
