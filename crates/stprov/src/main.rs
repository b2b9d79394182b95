//! stprov: provisions a System Transparency platform. See `stprov --help` and docs/stprov.md.

use std::process::ExitCode;

use clap::Parser as _;
use stprov::cli::{Cli, Command, Local, Offline, Remote};
use stprov::{Failure, commands};

fn run(cli: &Cli) -> Result<(), Failure> {
    match &cli.command {
        Command::Remote(Remote::Static(a)) => commands::remote_static(a),
        Command::Remote(Remote::Dhcp(a)) => commands::remote_dhcp(a),
        Command::Remote(Remote::Run(a)) => commands::remote_run(a),
        Command::Local(Local::Run(a)) => commands::local_run(a),
        Command::Offline(Offline::Write(a)) => commands::offline_write(a),
        Command::Offline(Offline::Show(a)) => commands::offline_show(a),
        Command::Version => {
            println!("v{}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}

/// Log lines on stderr as `stprov: [LEVEL] message` (escaped to one line, as stboot's).
struct Stderr;

impl log::Log for Stderr {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let text = r.args().to_string();
            eprintln!(
                "stprov: {} {}",
                st_host::log::level_tag(r.level()),
                st_host::log::escape(&text)
            );
        }
    }
    fn flush(&self) {}
}

static LOGGER: Stderr = Stderr;

fn main() -> ExitCode {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
    let args = stprov::cli::go_style_args(std::env::args());
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}
