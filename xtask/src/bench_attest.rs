//! `cargo xtask bench-attest`: the time to verify one attestation (st-attest's example
//! verify_bench on the committed real swtpm quote, release build); prints a table.
//! `--guest [--runs N]`: the round trip against the agent in a QEMU guest on swtpm
//! ([`crate::e2e::attestbench`]).

use crate::util;

/// `cargo xtask bench-attest` options.
#[derive(clap::Args, Debug)]
pub(crate) struct BenchAttestArgs {
    /// Boot the attestation guest (the e2e scenario's: st-agent on swtpm with an EK
    /// certificate) once and time `stattest check` round trips against it: wall clock and the
    /// parts (keys, challenge, quote, verify); also the agent's size and resident memory.
    #[arg(long)]
    pub(crate) guest: bool,
    /// Round trips with `--guest`.
    #[arg(long, default_value_t = 20, requires = "guest")]
    pub(crate) runs: u32,
}

pub(crate) fn run(args: &BenchAttestArgs) -> anyhow::Result<()> {
    if args.guest {
        return crate::e2e::attestbench::run_guest(args.runs);
    }
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
