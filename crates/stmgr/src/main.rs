//! `stmgr`: the System Transparency operator tool.
//!
//! Exit codes: 0 verified or valid; 1 rejected or invalid input (reason on stderr); 2 command
//! line misuse.

mod agent;
mod cli;
mod deploy;
mod encrypt;
mod files;
mod image;
mod keygen;
mod measure;
mod ospkg;
mod sigsum;
mod uki;

use clap::Parser as _;
use std::process::ExitCode;

/// Rust ignores SIGPIPE, so `println!` into a closed pipe (`stmgr ... | head`) panics. Such a
/// reader has all it wanted: end quietly with the shell's status for SIGPIPE (128 + 13) instead
/// of printing a panic.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let args = cli::normalize_legacy_flags(std::env::args_os());
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print and exit 0; real misuse exits 2.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("stmgr: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    use cli::{Command, KeygenCommand, OspkgCommand};
    match cli.command {
        Command::Ospkg { command } => match command {
            OspkgCommand::Create(a) => ospkg::create(&a).map(|()| ExitCode::SUCCESS),
            OspkgCommand::Sign(a) => ospkg::sign(&a).map(|()| ExitCode::SUCCESS),
            OspkgCommand::Sigsum(a) => sigsum::attach(&a).map(|()| ExitCode::SUCCESS),
            OspkgCommand::Verify(a) => ospkg::verify(&a),
            OspkgCommand::Encrypt(a) => encrypt::encrypt(&a).map(|()| ExitCode::SUCCESS),
        },
        Command::Keygen {
            command: KeygenCommand::Certificate(a),
        } => keygen::certificate(&a).map(|()| ExitCode::SUCCESS),
        Command::Keygen {
            command: KeygenCommand::Age(a),
        } => encrypt::keygen(&a).map(|()| ExitCode::SUCCESS),
        Command::Trustpolicy {
            command: cli::CheckCommand::Check(a),
        } => {
            let bytes = files::check_input(&a, "trust policy")?;
            let policy = st_format::TrustPolicy::from_json(&bytes)?;
            println!("{}", String::from_utf8_lossy(&policy.to_pretty_json()));
            Ok(ExitCode::SUCCESS)
        }
        Command::Image { command } => match command {
            cli::ImageCommand::Initramfs(a) => image::initramfs(&a).map(|()| ExitCode::SUCCESS),
            // A PE image (a UKI) is listed by sections, anything else as an initramfs.
            cli::ImageCommand::Inspect(a) if uki::is_pe_file(&a.file) => {
                uki::inspect_file(&a.file).map(|()| ExitCode::SUCCESS)
            }
            cli::ImageCommand::Inspect(a) => image::inspect(&a).map(|()| ExitCode::SUCCESS),
        },
        Command::Measure {
            command: measure::MeasureCommand::Predict(a),
        } => measure::predict(&a).map(|()| ExitCode::SUCCESS),
        Command::Eventlog { command } => match command {
            measure::EventlogCommand::Show(a) => measure::show(&a).map(|()| ExitCode::SUCCESS),
            measure::EventlogCommand::Replay(a) => measure::replay(&a).map(|()| ExitCode::SUCCESS),
        },
        Command::Deploy {
            command: deploy::DeployCommand::Authorize(a),
        } => deploy::authorize(&a).map(|()| ExitCode::SUCCESS),
        Command::Uki { command } => match command {
            uki::UkiCommand::Create(a) => uki::create(&a).map(|()| ExitCode::SUCCESS),
            uki::UkiCommand::ToIso(a) => uki::to_iso(&a).map(|()| ExitCode::SUCCESS),
        },
        Command::Hostconfig {
            command: cli::CheckCommand::Check(a),
        } => {
            let bytes = files::check_input(&a, "host config")?;
            let config = st_format::HostConfig::from_json(&bytes)?;
            println!("{}", String::from_utf8_lossy(&config.to_json_pretty()));
            Ok(ExitCode::SUCCESS)
        }
    }
}
