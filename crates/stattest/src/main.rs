//! `stattest`: check what a System Transparency server runs, from outside (docs/attestation.md).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Check a System Transparency server's attestation.
///
/// Exit status: 0 accepted, 1 refused or unreachable (the reason on stderr), 2 usage error.
#[derive(Parser, Debug)]
#[command(name = "stattest", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Attest the server now (fresh nonce, credential activation, quote) and verify: the TPM,
    /// the event logs against the PCRs, the OS package (signatures, Sigsum, release list) and
    /// that the TLS key of this connection (and --wireguard-key) is the one bound.
    Check {
        #[command(flatten)]
        trust: stattest::check::TrustArgs,
        /// Also require this WireGuard public key (base64) to be the one bound.
        #[arg(long, value_name = "BASE64")]
        wireguard_key: Option<String>,
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
        /// Write the attestation received to this file.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Print how long each part took on stderr (`stattest: timings: load .. ms, keys ..,
        /// challenge .., quote .., verify .., total ..`).
        #[arg(long)]
        timings: bool,
    },
    /// Post a go-ahead (made with `stmgr deploy authorize`) to the agent.
    GoAhead {
        /// The agent, HOST:PORT.
        #[arg(long)]
        agent: String,
        /// The go-ahead file.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Cmd::Check {
            trust: t,
            wireguard_key,
            json,
            out,
            timings,
        } => {
            let wg = match wireguard_key {
                Some(k) => Some(stattest::check::wireguard_key(&k)?),
                None => None,
            };
            let checked = stattest::check::check(&t.agent, &t.trust(), wg)?;
            if timings {
                eprintln!("stattest: timings: {}", checked.timings.line());
            }
            if let Some(out) = out {
                std::fs::write(&out, &checked.attestation_json)
                    .map_err(|e| format!("{}: {e}", out.display()))?;
            }
            if json {
                println!("{:#}", checked.verdict.to_json());
            } else {
                println!("accepted: {}", checked.verdict.summary());
                for r in &checked.verdict.reasons {
                    println!("  {r}");
                }
            }
            Ok(())
        }
        Cmd::GoAhead { agent, file } => {
            let body = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let client = stattest::client::AgentClient::new(&agent)?;
            let reply = client.request("POST", "/st/attest/v1/go-ahead", Some(&body))?;
            let text = String::from_utf8_lossy(&reply.body);
            if reply.status == 200 {
                println!("{}", text.trim_end());
                Ok(())
            } else {
                Err(format!(
                    "{agent}: go-ahead: HTTP {}: {}",
                    reply.status,
                    text.trim_end()
                ))
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stattest: {e}");
            ExitCode::from(1)
        }
    }
}
