//! `st-agent`: the attestation agent of an OS package (docs/attestation.md). Started by the OS
//! package's init; stays in the foreground.

use std::process::ExitCode;

const USAGE: &str = "\
st-agent: attest this boot and start the service only after an authorised go-ahead.

Usage: st-agent [--listen ADDR:PORT] [--config DIR]

  --listen ADDR:PORT  where to answer attestation requests over HTTPS (default 0.0.0.0:8443)
  --config DIR        the deploy policy: DIR/deploy_root.pem (staff roots) and
                      DIR/deploy_threshold (a number); default /etc/st-agent. Without it the
                      agent attests but accepts no go-ahead.

At start it makes the boot's service keys in RAM (WireGuard X25519, the TLS key of its
endpoint), the TPM's endorsement and attestation keys, extends PCR 15 with the binding of the
keys, and waits. Exit status: 1 when it cannot start (no TPM, the TPM refuses, the port is
taken), 2 on a usage error.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match st_agent::run::Args::parse(&args) {
        Ok(Some(a)) => st_agent::run::main(&a),
        Ok(None) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("st-agent: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
