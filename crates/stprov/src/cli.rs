//! Command line: the reference's subcommands and flags (short and long; Go's single-dash long
//! spelling `-ip` is accepted too, see [`go_style_args`]), plus a few of our own, each marked
//! in its help.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};

/// Default DNS servers (the reference's `DefDNS`).
pub const DEFAULT_DNS: &str = "9.9.9.9,149.112.112.112";
/// Default OS package URL template (the reference's `DefTemplateURL`).
pub const DEFAULT_URL: &str = "https://user:password@stpackage.example.org/os-stable.json";
/// Default host name, and the domain a `-h` prefix gets (the reference's `DefHostname`).
pub const DEFAULT_HOSTNAME: &str = "localhost.local";
/// Default basic-auth user and password filled into `user:password` in URLs.
pub const DEFAULT_USER: &str = "stboot";
/// See [`DEFAULT_USER`].
pub const DEFAULT_PASSWORD: &str = "stboot";
/// Default port of `remote run` / `local run`.
pub const DEFAULT_PORT: u16 = 2009;
/// Default allowed source network of `remote run`.
pub const DEFAULT_ALLOWED: &str = "127.0.0.1/32";
/// Where the TLS roots for the URL checks are read from.
pub const DEFAULT_TLS_ROOTS: &str = "/etc/trust_policy/tls_roots.pem";
/// Environment variable naming a directory used instead of efivarfs (tests only).
pub const EFIVARFS_ENV: &str = "STPROV_EFIVARFS";

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  other failure (a file could not be read or written, ...)
  2  usage: bad flags or an invalid value (the flag is named)
  3  network setup failed
  4  an OS package URL check failed (the URL and the reason are named)
  5  EFI variables: no efivarfs, not root, or the firmware refused the write
  6  remote run / local run: the one-time-password exchange failed

Output: log lines go to stderr; `local run` prints key=value lines on stdout.
See docs/stprov.md.";

/// stprov: provisions a System Transparency platform.
#[derive(Debug, Parser)]
#[command(
    name = "stprov",
    version,
    disable_help_flag = true,
    about = "Provision a System Transparency platform: host config and host name into EFI NVRAM",
    long_about = "Provision a System Transparency platform.\n\n\
        `stprov remote static|dhcp` runs on the platform (in a provisioning OS): it brings up \
        the network, checks that every OS package URL answers an HTTPS HEAD request with 200 \
        (trusting the TLS roots of the trust policy), and writes the host config (STHostConfig) \
        and the host name (STHostName) into EFI NVRAM, where stboot reads them.\n\n\
        `stprov remote run` and `stprov local run` then exchange entropy over HTTPS \
        authenticated by a one-time password, and the platform stores its SSH host key \
        (STHostKey).\n\n\
        `stprov offline` writes the same variables into an OVMF variable store file instead, so \
        a VM is provisioned before its first boot.",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// Print help.
    #[arg(long, global = true, action = ArgAction::Help)]
    help: Option<bool>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once, never moved around
pub enum Command {
    /// On the platform: configure and check the network, write NVRAM, or serve `local run`.
    #[command(subcommand, disable_help_flag = true)]
    Remote(Remote),
    /// On the operator's machine: contribute entropy to `remote run`, print the result.
    #[command(subcommand, disable_help_flag = true)]
    Local(Local),
    /// Offline: write or show the ST variables in an OVMF variable store file.
    #[command(subcommand, disable_help_flag = true)]
    Offline(Offline),
    /// Print the version.
    #[command(disable_help_flag = true)]
    Version,
}

/// `stprov remote ...`.
#[derive(Debug, Subcommand)]
pub enum Remote {
    /// Static addressing: configure, check the OS package URLs, write STHostConfig and
    /// STHostName.
    #[command(disable_help_flag = true, after_help = EXIT_CODES)]
    Static(StaticArgs),
    /// DHCP: configure, check the OS package URLs, write STHostConfig and STHostName.
    #[command(disable_help_flag = true, after_help = EXIT_CODES)]
    Dhcp(DhcpArgs),
    /// Wait for `stprov local run`, then store the SSH host key derived from both sides'
    /// entropy (STHostKey).
    #[command(disable_help_flag = true, after_help = EXIT_CODES)]
    Run(RemoteRunArgs),
}

/// `stprov local ...`.
#[derive(Debug, Subcommand)]
pub enum Local {
    /// Contribute entropy to `stprov remote run` at IP:PORT and commit. Prints
    /// `publickey=`, `fingerprint=`, `hostname=` and `ip=` lines on stdout (in no fixed order;
    /// ignore keys you do not know).
    #[command(disable_help_flag = true, after_help = EXIT_CODES)]
    Run(LocalRunArgs),
}

/// `stprov offline ...`.
#[derive(Debug, Subcommand)]
pub enum Offline {
    /// Write STHostConfig (from a host config JSON file, validated) and STHostName into an
    /// OVMF variable store file (OVMF_VARS*.fd), as the firmware would store them.
    #[command(disable_help_flag = true, after_help = EXIT_CODES)]
    Write(OfflineWriteArgs),
    /// List the variables of an OVMF variable store file and print the ST ones.
    #[command(disable_help_flag = true, after_help = EXIT_CODES)]
    Show(OfflineShowArgs),
}

/// Flags of `remote static` and `remote dhcp`.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// DNS server IP addresses (default: 9.9.9.9 and 149.112.112.112).
    #[arg(
        short = 'd',
        long = "dns",
        value_delimiter = ',',
        action = ArgAction::Append,
        help = "DNS server IP addresses (repeat, or comma-separated) [default: 9.9.9.9,149.112.112.112]"
    )]
    pub dns: Vec<String>,
    /// MAC address of the network interface to use (e.g. aa:bb:cc:dd:ee:ff).
    #[arg(short = 'm', long = "mac")]
    pub mac: Option<String>,
    /// Name of the network interface to use (e.g. eth0).
    #[arg(short = 'I', long = "interface")]
    pub interface: Option<String>,
    /// Host name prefix: the host name becomes HOST.localhost.local.
    #[arg(short = 'h', long = "host")]
    pub host: Option<String>,
    /// Full host name (e.g. host.example.org).
    #[arg(short = 'H', long = "full-host")]
    pub full_host: Option<String>,
    /// OS package descriptor URLs, in order of preference (default: [`DEFAULT_URL`]).
    #[arg(
        short = 'r',
        long = "url",
        value_delimiter = ',',
        action = ArgAction::Append,
        help = "OS package descriptor URLs, in order of preference (repeat, or comma-separated). \
                The first `user:password` in each is replaced by -u and -p \
                [default: https://user:password@stpackage.example.org/os-stable.json]"
    )]
    pub url: Vec<String>,
    /// User name for `user:password` in URLs.
    #[arg(short = 'u', long = "user", default_value = DEFAULT_USER)]
    pub user: String,
    /// Password for `user:password` in URLs.
    #[arg(short = 'p', long = "pass", default_value = DEFAULT_PASSWORD)]
    pub pass: String,
    /// How long to wait for a link (carrier) on each interface, Go duration syntax.
    #[arg(short = 'w', long = "wait", default_value = "4s", value_parser = parse_duration)]
    pub wait: Duration,
    /// Proceed despite failed sanity checks (URL checks, gateway outside the network), logging
    /// what was ignored.
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// (stprov-rs) TLS roots for the URL checks; an absent file means no HTTPS URL can pass.
    #[arg(long = "tls-roots", default_value = DEFAULT_TLS_ROOTS)]
    pub tls_roots: PathBuf,
    /// (stprov-rs) Give up the URL checks after this long in all (retrying with backoff:
    /// switches often forward nothing for ~30 s after link-up).
    #[arg(long = "check-deadline", default_value = "120s", value_parser = parse_duration)]
    pub check_deadline: Duration,
    /// Tests only: a directory used instead of efivarfs (also $STPROV_EFIVARFS).
    #[arg(long = "efivarfs", hide = true)]
    pub efivarfs: Option<PathBuf>,
    /// Tests only: where the DNS servers are written instead of /etc/resolv.conf.
    #[arg(long = "resolv-conf", hide = true, default_value = "/etc/resolv.conf")]
    pub resolv_conf: PathBuf,
    /// Tests only: the network is already up; configure nothing.
    #[arg(long = "no-network-setup", hide = true)]
    pub no_network_setup: bool,
}

/// `remote static`.
#[derive(Debug, Args)]
pub struct StaticArgs {
    /// Host address in CIDR notation (e.g. 10.0.2.10/26; `m` may stand for `/`).
    #[arg(short = 'i', long = "ip")]
    pub ip: Option<String>,
    /// Gateway IP address [default: the first address of the host's network].
    #[arg(short = 'g', long = "gateway")]
    pub gateway: Option<String>,
    /// Default the gateway to the last usable address of the host's network instead.
    #[arg(short = 'x', long = "try-last-gateway")]
    pub try_last_gateway: bool,
    /// Pick the interface automatically (stprov-rs: the first with a carrier; the gateway is
    /// not pinged).
    #[arg(short = 'A', long = "autodetect")]
    pub autodetect: bool,
    /// Bond every interface with a carrier into bond0.
    #[arg(short = 'B', long = "bonding-auto")]
    pub bonding_auto: bool,
    /// Interface to bond into bond0 (repeat, or comma-separated).
    #[arg(short = 'b', long = "bonding", value_delimiter = ',', action = ArgAction::Append)]
    pub bonding: Vec<String>,
    /// Bonding mode: balance-rr, active-backup, balance-xor, broadcast, 802.3ad, balance-tlb,
    /// balance-alb.
    #[arg(short = 'M', long = "bonding-mode", default_value = "balance-rr")]
    pub bonding_mode: String,
    /// Flags shared with `remote dhcp`.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `remote dhcp`.
#[derive(Debug, Args)]
pub struct DhcpArgs {
    /// Flags shared with `remote static`.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `remote run`.
#[derive(Debug, Args)]
pub struct RemoteRunArgs {
    /// The one-time password (shared with the operator running `local run`).
    #[arg(short = 'o', long = "otp")]
    pub otp: Option<String>,
    /// Address to listen on.
    #[arg(short = 'i', long = "ip", default_value = "0.0.0.0")]
    pub ip: String,
    /// Port to listen on.
    #[arg(short = 'p', long = "port", default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Source addresses allowed to connect, CIDR (a bare address means /32 or /128; `m` may
    /// stand for `/`; repeat, or comma-separated) [default: 127.0.0.1/32].
    #[arg(short = 'a', long = "allow", value_delimiter = ',', action = ArgAction::Append)]
    pub allow: Vec<String>,
    /// (stprov-rs) Commit without asking for Enter on stdin.
    #[arg(long = "yes")]
    pub yes: bool,
    /// Tests only: a directory used instead of efivarfs (also $STPROV_EFIVARFS).
    #[arg(long = "efivarfs", hide = true)]
    pub efivarfs: Option<PathBuf>,
}

/// `local run`.
#[derive(Debug, Args)]
pub struct LocalRunArgs {
    /// The one-time password shown to (or chosen by) the remote operator.
    #[arg(short = 'o', long = "otp")]
    pub otp: Option<String>,
    /// Address of `stprov remote run` (e.g. 10.0.2.10).
    #[arg(short = 'i', long = "ip")]
    pub ip: Option<String>,
    /// Port of `stprov remote run`.
    #[arg(short = 'p', long = "port", default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Secure Boot PK (.auth, self-signed).
    #[arg(long = "pk")]
    pub pk: Option<PathBuf>,
    /// Secure Boot KEK (.auth, signed by PK).
    #[arg(long = "kek")]
    pub kek: Option<PathBuf>,
    /// Secure Boot db (.auth, signed by KEK).
    #[arg(long = "db")]
    pub db: Option<PathBuf>,
    /// Secure Boot dbx (.auth, signed by KEK; optional).
    #[arg(long = "dbx")]
    pub dbx: Option<PathBuf>,
    /// Do not ask the firmware to boot into its menu next time (after Secure Boot keys).
    #[arg(short = 'n', long = "no-uefi-menu-reboot")]
    pub no_uefi_menu_reboot: bool,
    /// (stprov-rs) Give up after this long without an answer.
    #[arg(long = "timeout", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// `offline write`.
#[derive(Debug, Args)]
pub struct OfflineWriteArgs {
    /// The variable store file to write (e.g. a VM's copy of OVMF_VARS_4M.fd); replaced
    /// atomically.
    #[arg(long = "vars")]
    pub vars: PathBuf,
    /// Read the store from this file instead (e.g. /usr/share/OVMF/OVMF_VARS_4M.fd), so that
    /// --vars is a fresh copy.
    #[arg(long = "from")]
    pub from: Option<PathBuf>,
    /// Host config JSON to store as STHostConfig (checked as stboot checks it).
    #[arg(long = "host-config")]
    pub host_config: Option<PathBuf>,
    /// Host name to store as STHostName.
    #[arg(long = "hostname")]
    pub hostname: Option<String>,
}

/// `offline show`.
#[derive(Debug, Args)]
pub struct OfflineShowArgs {
    /// The variable store file.
    #[arg(long = "vars")]
    pub vars: PathBuf,
}

/// Go-style duration: a sequence of decimal numbers with units `h`, `m`, `s`, `ms`, `us`,
/// `ns` (e.g. `4s`, `1m30s`, `500ms`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?} (examples: 4s, 500ms, 1m30s)");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(num_len);
        let value: f64 = num.parse().map_err(|_| bad())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = tail;
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// Long flag names that Go's flag package also accepts with a single dash (`-ip`).
const LONG_FLAGS: &[&str] = &[
    "dns",
    "mac",
    "interface",
    "host",
    "full-host",
    "url",
    "user",
    "pass",
    "wait",
    "force",
    "ip",
    "gateway",
    "try-last-gateway",
    "autodetect",
    "bonding-auto",
    "bonding",
    "bonding-mode",
    "otp",
    "port",
    "allow",
    "pk",
    "kek",
    "db",
    "dbx",
    "no-uefi-menu-reboot",
];

/// Rewrites Go's single-dash long flags (`-ip 10.0.0.1`, `-url=...`) to `--ip`, so both
/// spellings of the reference work. Only the reference's flag names are rewritten; anything
/// after `--` is left alone.
pub fn go_style_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = false;
    for a in args {
        if rest {
            out.push(a);
            continue;
        }
        if a == "--" {
            rest = true;
            out.push(a);
            continue;
        }
        let rewritten = a
            .strip_prefix('-')
            .filter(|r| !r.starts_with('-') && r.len() > 1)
            .filter(|r| LONG_FLAGS.contains(&r.split('=').next().unwrap_or_default()))
            .map(|r| format!("--{r}"));
        out.push(rewritten.unwrap_or(a));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_in_go_syntax() {
        assert_eq!(parse_duration("4s").unwrap(), Duration::from_secs(4));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "4", "s", "4x", "-1s", "4s5"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn go_single_dash_long_flags_are_accepted() {
        let args = go_style_args(
            [
                "stprov",
                "remote",
                "static",
                "-ip",
                "10.0.0.2/24",
                "-url=https://a/b",
                "-h",
                "x",
            ]
            .map(String::from),
        );
        assert_eq!(
            args,
            [
                "stprov",
                "remote",
                "static",
                "--ip",
                "10.0.0.2/24",
                "--url=https://a/b",
                "-h",
                "x"
            ]
        );
        let cli = Cli::try_parse_from(args).unwrap();
        let Command::Remote(Remote::Static(s)) = cli.command else {
            panic!("not remote static");
        };
        assert_eq!(s.ip.as_deref(), Some("10.0.0.2/24"));
        assert_eq!(s.common.host.as_deref(), Some("x"));
        assert_eq!(s.common.url, ["https://a/b"]);
        assert_eq!(s.common.wait, Duration::from_secs(4));
        // Unknown single-dash words are not touched.
        assert_eq!(go_style_args(["-xyz".to_string()]), ["-xyz"]);
        assert_eq!(
            go_style_args(["--", "-ip"].map(String::from)),
            ["--", "-ip"]
        );
    }

    #[test]
    fn repeated_and_comma_separated_values() {
        let cli = Cli::try_parse_from([
            "stprov",
            "remote",
            "dhcp",
            "-d",
            "1.1.1.1,8.8.8.8",
            "-d",
            "9.9.9.9",
            "-r",
            "https://a/x",
        ])
        .unwrap();
        let Command::Remote(Remote::Dhcp(d)) = cli.command else {
            panic!("not remote dhcp");
        };
        assert_eq!(d.common.dns, ["1.1.1.1", "8.8.8.8", "9.9.9.9"]);
        assert_eq!(d.common.url, ["https://a/x"]);
    }
}
