//! stboot entry point: PID 1 in the stboot image, or `stboot --dry-run` on an ordinary machine.

use std::process::ExitCode;

const USAGE: &str = "\
stboot: the System Transparency bootloader.

As PID 1 (the /init of the stboot image) it takes no arguments; options come from the kernel
command line as stboot.<key>=<value> (loglevel, recovery, recovery_delay, deadline, retries,
backoff, http_timeout, carrier_timeout, min_rate, rate_window, round_backoff_max, tpm,
provision_window); docs/stboot.md lists them.

Usage on an ordinary Linux machine (same code, without network setup and kexec):
  stboot --dry-run --trust-policy DIR [--host-config FILE] [--initramfs-root DIR] [--option KEY=VALUE]...

  --trust-policy DIR     trust_policy.json, ospkg_signing_root.pem, tls_roots.pem
  --host-config FILE     host config JSON (without it: the provisioning fallback)
  --initramfs-root DIR   where ospkg/<name>.{json,zip} live for the initramfs fetch method
  --option KEY=VALUE     a stboot.<KEY> option, e.g. --option loglevel=debug

With the network fetch method --dry-run prints the network plan (interfaces in order, static or
DHCP, bond, DNS servers) without applying it.

Exit status of --dry-run: 0 when a package verified (it prints what it would boot), 1 when
nothing could be booted, 2 on a usage error.";

fn main() -> ExitCode {
    if std::process::id() == 1 {
        stboot::platform::pid1();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    match stboot::platform::DryRunArgs::parse(&args) {
        Ok(Some(a)) => stboot::platform::dry_run(&a),
        Ok(None) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("stboot: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
