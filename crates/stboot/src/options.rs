//! stboot's own options: from the kernel command line (`stboot.<key>=<value>`, split by
//! `st_host::sys::CmdlineOptions` with the kernel's quoting rules) when it runs as PID 1, or from
//! flags in `--dry-run` mode. Unknown keys are logged and ignored; bad values are
//! errors naming the key, so a typo never silently changes behaviour.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// What to do when no OS package could be booted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Reboot after the delay, as the reference does (the machine tries again from scratch).
    Reboot,
    /// Power off after the delay (tests, or operators who want a machine to stay down).
    Poweroff,
}

/// Whether a boot needs a TPM (`stboot.tpm=auto|required`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TpmPolicy {
    /// Measure when a TPM is present; without one, log it and boot unmeasured (the reference).
    Auto,
    /// Without a working TPM nothing boots.
    Required,
}

/// Tunables of a boot. Defaults follow the reference where it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Log level (`stboot.loglevel=error|warn|info|debug`).
    pub log_level: log::LevelFilter,
    /// Recovery action (`stboot.recovery=reboot|poweroff`).
    pub recovery: Recovery,
    /// Pause before the recovery action (`stboot.recovery_delay=SECONDS`); reference: 6 s.
    pub recovery_delay: Duration,
    /// Deadline for the whole fetch phase over all URLs (`stboot.deadline=SECONDS`); reference:
    /// 20 minutes.
    pub deadline: Duration,
    /// Attempts per URL for transient failures (`stboot.retries=N`).
    pub attempts_per_url: u32,
    /// First backoff between attempts, doubled each time (`stboot.backoff=SECONDS`).
    pub backoff: Duration,
    /// Time allowed to connect and receive the response headers (`stboot.http_timeout=SECONDS`);
    /// a server that accepts and then stalls costs at most this much.
    pub http_timeout: Duration,
    /// Time to wait for a network link to come up (`stboot.carrier_timeout=SECONDS`).
    pub carrier_timeout: Duration,
    /// Slowest body accepted, on average over [`Options::rate_window`], in bytes per second
    /// (`stboot.min_rate=BYTES`; 0: no minimum). A server that trickles is left after one window.
    pub min_rate: u64,
    /// The window the minimum rate is averaged over (`stboot.rate_window=SECONDS`).
    pub rate_window: Duration,
    /// Longest pause between rounds over the URL list (`stboot.round_backoff_max=SECONDS`).
    /// Rounds start `stboot.backoff` apart (at least 1 s) and double up to this, with jitter.
    pub round_backoff_max: Duration,
    /// TPM requirement (`stboot.tpm=auto|required`). A TPM that is present but fails is always
    /// a failure; this decides only what the absence of one means.
    pub tpm: TpmPolicy,
    /// How long the console offers Ctrl-C to boot the image's provisioning package instead of
    /// the normal one (`stboot.provision_window=SECONDS`; 0: no window). Only offered when the
    /// image carries a provisioning package and the console is a terminal.
    pub provision_window: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            log_level: log::LevelFilter::Info,
            recovery: Recovery::Reboot,
            recovery_delay: Duration::from_secs(6),
            deadline: Duration::from_secs(20 * 60),
            attempts_per_url: 3,
            backoff: Duration::from_secs(1),
            http_timeout: Duration::from_secs(30),
            carrier_timeout: Duration::from_secs(30),
            min_rate: 64 * 1024,
            rate_window: Duration::from_secs(30),
            round_backoff_max: Duration::from_secs(60),
            tpm: TpmPolicy::Auto,
            provision_window: Duration::from_secs(3),
        }
    }
}

/// A bad option value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionError {
    /// The key (without the `stboot.` prefix).
    pub key: String,
    /// The offending value.
    pub value: String,
    /// What was expected.
    pub expected: &'static str,
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "option stboot.{}={:?}: expected {}",
            self.key, self.value, self.expected
        )
    }
}

fn seconds(key: &str, value: &str) -> Result<Duration, OptionError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|s| *s <= 24 * 3600)
        .map(Duration::from_secs)
        .ok_or_else(|| OptionError {
            key: key.into(),
            value: value.into(),
            expected: "whole seconds (0 to 86400)",
        })
}

impl Options {
    /// Options from `stboot.` key/values. Returns the options and the unknown keys.
    pub fn from_map(map: &BTreeMap<String, String>) -> Result<(Self, Vec<String>), OptionError> {
        let mut o = Self::default();
        let mut unknown = Vec::new();
        for (k, v) in map {
            let bad = |expected| OptionError {
                key: k.clone(),
                value: v.clone(),
                expected,
            };
            match k.as_str() {
                "loglevel" => {
                    o.log_level = match v.as_str() {
                        "error" | "e" => log::LevelFilter::Error,
                        "warn" | "w" => log::LevelFilter::Warn,
                        "info" | "i" => log::LevelFilter::Info,
                        "debug" | "d" => log::LevelFilter::Debug,
                        _ => return Err(bad("error, warn, info or debug")),
                    }
                }
                "recovery" => {
                    o.recovery = match v.as_str() {
                        "reboot" => Recovery::Reboot,
                        "poweroff" => Recovery::Poweroff,
                        _ => return Err(bad("reboot or poweroff")),
                    }
                }
                "tpm" => {
                    o.tpm = match v.as_str() {
                        "auto" => TpmPolicy::Auto,
                        "required" => TpmPolicy::Required,
                        _ => return Err(bad("auto or required")),
                    }
                }
                "recovery_delay" => o.recovery_delay = seconds(k, v)?,
                "deadline" => o.deadline = seconds(k, v)?,
                "backoff" => o.backoff = seconds(k, v)?,
                "http_timeout" => o.http_timeout = seconds(k, v)?,
                "carrier_timeout" => o.carrier_timeout = seconds(k, v)?,
                "rate_window" => o.rate_window = seconds(k, v)?,
                "round_backoff_max" => o.round_backoff_max = seconds(k, v)?,
                "provision_window" => {
                    o.provision_window = seconds(k, v)
                        .ok()
                        .filter(|d| *d <= Duration::from_secs(600))
                        .ok_or_else(|| bad("whole seconds (0 to 600)"))?;
                }
                "min_rate" => {
                    o.min_rate = v
                        .parse()
                        .ok()
                        .filter(|n| *n <= 1 << 40)
                        .ok_or_else(|| bad("bytes per second (0 to 2^40)"))?;
                }
                "retries" => {
                    o.attempts_per_url = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=100).contains(n))
                        .ok_or_else(|| bad("1 to 100"))?;
                }
                _ => unknown.push(k.clone()),
            }
        }
        if o.http_timeout.is_zero() {
            o.http_timeout = Duration::from_secs(1);
        }
        if o.rate_window.is_zero() {
            o.rate_window = Duration::from_secs(1);
        }
        Ok((o, unknown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The map as `st_host::sys::CmdlineOptions` makes it from the kernel command line (its
    /// splitting and quoting are tested in st-host).
    #[test]
    fn options_from_the_command_line_map() {
        let m = BTreeMap::from(
            [
                ("loglevel", "debug"),
                ("recovery", "poweroff"),
                ("provision_window", "0"),
                ("flag", ""),
                ("x", "a b"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let (o, unknown) = Options::from_map(&m).unwrap();
        assert_eq!(o.log_level, log::LevelFilter::Debug);
        assert_eq!(o.recovery, Recovery::Poweroff);
        assert_eq!(o.provision_window, Duration::ZERO);
        assert_eq!(Options::default().provision_window, Duration::from_secs(3));
        assert_eq!(unknown, vec!["flag".to_string(), "x".to_string()]);
    }

    #[test]
    fn bad_values_name_the_key() {
        for (k, v) in [
            ("loglevel", "loud"),
            ("deadline", "-1"),
            ("retries", "0"),
            ("recovery", "halt"),
            ("tpm", "yes"),
            ("provision_window", "601"),
        ] {
            let m = BTreeMap::from([(k.to_string(), v.to_string())]);
            let e = Options::from_map(&m).unwrap_err().to_string();
            assert!(e.contains(&format!("stboot.{k}")), "{e}");
        }
    }
}
