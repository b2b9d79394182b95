//! `cargo xtask bench-attest`: the time to verify one attestation (st-attest's example
//! verify_bench on the committed real swtpm quote, release build); prints a table.

use crate::util;

pub(crate) fn run() -> anyhow::Result<()> {
    let mut c = util::cargo();
    c.args([
        "run",
        "--quiet",
        "--locked",
        "--release",
        "-p",
        "st-attest",
        "--example",
        "verify_bench",
    ]);
    util::run(&mut c)
}
