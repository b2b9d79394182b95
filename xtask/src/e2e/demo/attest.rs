//! `cargo xtask demo --attest`: the remote-attestation story of the e2e scenario `attestation`
//! ([`crate::e2e::attest::story`], the same code and the same assertions), told on the console
//! one numbered step at a time with each step's key output: a Sigsum-logged OS package whose
//! test OS runs the agent boots on a swtpm with an EK certificate; `stattest check` accepts it
//! and refuses it under another trust policy; go-aheads with too few signatures and for another
//! boot are refused; two staff members authorise and the agent serves; after a power cycle the
//! agent has a new AK, waits again and refuses the old go-ahead.

use std::time::Instant;

use anyhow::{Result, ensure};

use super::step_of;
use crate::e2e::Ctx;
use crate::e2e::attest::{Narrate, STORY_STEPS, story};
use crate::util::say;

/// The demo's telling: `demo: [n/of] what` before each step, results indented below it.
struct Demo {
    n: u32,
    of: u32,
    authorised: Option<String>,
}

impl Narrate for Demo {
    fn step(&mut self, what: &str) {
        self.n += 1;
        step_of(self.n, self.of, what);
    }
    fn show(&mut self, what: &str) {
        if let Some(by) = what.strip_prefix("the agent: serving: go-ahead by ") {
            self.authorised = Some(by.to_owned());
        }
        say!("demo:       {what}");
    }
}

/// Run the attestation demo; Ok only when every step went as expected.
pub(super) fn run() -> Result<()> {
    let started = Instant::now();
    let (env, dir) = super::packages_and_kernel(
        2 + STORY_STEPS,
        "qemu, nginx, busybox, swtpm, swtpm-tools",
        "demo-attest",
    )?;
    let ctx = Ctx {
        env: &env,
        dir: dir.clone(),
    };
    let mut demo = Demo {
        n: 2,
        of: 2 + STORY_STEPS,
        authorised: None,
    };
    story(&ctx, &mut demo)?;
    ensure!(
        demo.n == demo.of,
        "the story told {} steps, the demo announced {}",
        demo.n,
        demo.of
    );
    println!(
        "demo: OK: stattest check accepted the boot (EK certificate chain, AK on that TPM, fresh \
         quote, PCRs replayed, OS package signed and Sigsum-logged, TLS key bound) and refused it \
         under another trust policy; go-aheads with 1 of 2 signatures and for another boot were \
         refused; the agent served after the go-ahead by {}; after a power cycle it had a new AK, \
         waited again and refused the old go-ahead; demo took {:.0} s (files in {})",
        demo.authorised.as_deref().unwrap_or("?"),
        started.elapsed().as_secs_f64(),
        dir.display()
    );
    Ok(())
}
