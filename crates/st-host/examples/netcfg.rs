//! Run stboot's network setup for a host config and print what was configured.
//!
//! ```text
//! netcfg HOST_CONFIG.json [--resolv-conf PATH] [--carrier-timeout SECS]
//!        [--dhcp-tries N] [--dhcp-timeout SECS]
//! ```
//!
//! Prints the [`st_host::net::NetSummary`] on stdout and progress on stderr; exits 1 on failure.
//! Used by the network-namespace tests; it changes the network of the namespace it runs in.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use st_host::net::{NetOptions, configure};

struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        // Escaped as stboot's console logger does: one record, one line.
        let msg = r.args().to_string();
        eprintln!("netcfg: [{}] {}", r.level(), st_host::log::escape(&msg));
    }
    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

fn secs(v: &str) -> Result<Duration, String> {
    v.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("bad number of seconds: {v}"))
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut config = None;
    let mut opts = NetOptions::default();
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--resolv-conf" => opts.resolv_conf = PathBuf::from(value()?),
            "--carrier-timeout" => opts.carrier_timeout = secs(&value()?)?,
            "--dhcp-timeout" => opts.dhcp.per_try = secs(&value()?)?,
            "--dhcp-tries" => {
                let v = value()?;
                opts.dhcp.tries = v.parse().map_err(|_| format!("bad number: {v}"))?;
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ if config.is_none() => config = Some(PathBuf::from(a)),
            _ => return Err("more than one host config given".to_owned()),
        }
    }
    let config = config.ok_or("usage: netcfg HOST_CONFIG.json [--resolv-conf PATH] [--carrier-timeout SECS] [--dhcp-tries N] [--dhcp-timeout SECS]")?;
    let bytes = std::fs::read(&config).map_err(|e| format!("reading {}: {e}", config.display()))?;
    let hc = st_format::HostConfig::from_json(&bytes)
        .map_err(|e| format!("{}: {e}", config.display()))?;
    let summary = configure(&hc, &opts).map_err(|e| e.to_string())?;
    print!("{summary}");
    Ok(())
}

fn main() -> ExitCode {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netcfg: error: {}", st_host::log::escape(&e));
            ExitCode::FAILURE
        }
    }
}
