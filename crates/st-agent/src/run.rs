//! The binary's start-up: keys, TPM, binding, evidence, deploy policy, listener.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::agent::{Agent, DeployPolicy, Evidence};
use crate::binding::{BINDING_PCR, Binding};
use crate::keys::ServiceKeys;
use crate::tpm::DeviceTpm;

/// Command-line arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// `--listen`.
    pub listen: String,
    /// `--config`.
    pub config: PathBuf,
}

impl Args {
    /// Parse; `Ok(None)` for `--help`.
    pub fn parse(args: &[String]) -> Result<Option<Self>, String> {
        let mut a = Self {
            listen: "0.0.0.0:8443".into(),
            config: PathBuf::from("/etc/st-agent"),
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match flag.as_str() {
                "-h" | "--help" => return Ok(None),
                "--listen" => a.listen = value("--listen")?,
                "--config" => a.config = PathBuf::from(value("--config")?),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(Some(a))
    }
}

/// Files stboot handed over, and the firmware's log.
const STBOOT_EVENT_LOG: &str = "/stboot/eventlog.bin";
const STBOOT_DESCRIPTOR: &str = "/stboot/descriptor.json";
const STBOOT_ARCHIVE_SHA256: &str = "/stboot/archive.sha256";
const FIRMWARE_EVENT_LOG: &str = "/sys/kernel/security/tpm0/binary_bios_measurements";

fn read_optional(path: &str, what: &str) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("st-agent: no {what} ({path}: {e})");
            None
        }
    }
}

/// The deploy policy from `dir`, when present: `Ok(None)` without `deploy_root.pem`.
pub fn deploy_policy(dir: &Path) -> Result<Option<DeployPolicy>, String> {
    let roots_path = dir.join("deploy_root.pem");
    let pem = match std::fs::read(&roots_path) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", roots_path.display())),
    };
    let roots = st_verify::SigningRoots::from_pem(&pem)
        .map_err(|e| format!("{}: {e}", roots_path.display()))?;
    let t_path = dir.join("deploy_threshold");
    let text =
        std::fs::read_to_string(&t_path).map_err(|e| format!("{}: {e}", t_path.display()))?;
    let threshold = text
        .trim()
        .parse::<u32>()
        .ok()
        .and_then(st_format::SignatureThreshold::new)
        .ok_or_else(|| format!("{}: a number from 1 to 64", t_path.display()))?;
    Ok(Some(DeployPolicy { roots, threshold }))
}

fn now() -> st_verify::UnixTime {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    st_verify::UnixTime::from_secs(secs)
}

/// This process's resident memory (`VmRSS` of /proc/self/status), for the figures.
fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Start and serve; returns only on failure.
pub fn main(args: &Args) -> ExitCode {
    match start(args) {
        Ok(e) => {
            eprintln!("st-agent: listener stopped: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("st-agent: {e}");
            ExitCode::from(1)
        }
    }
}

fn start(args: &Args) -> Result<std::io::Error, String> {
    let keys = ServiceKeys::generate().map_err(|e| e.to_string())?;
    let mut tpm = DeviceTpm::open()?;
    let binding = Binding {
        ak_name: tpm.ak_name().to_vec(),
        wireguard: keys.wireguard_public,
        tls_spki_sha256: keys.tls_spki_sha256,
    };
    tpm.extend_binding(BINDING_PCR, &binding.digest())?;
    let evidence = Evidence {
        stboot_event_log: read_optional(STBOOT_EVENT_LOG, "stboot event log"),
        descriptor: read_optional(STBOOT_DESCRIPTOR, "OS package descriptor"),
        firmware_event_log: read_optional(FIRMWARE_EVENT_LOG, "firmware event log"),
        archive_sha256: read_optional(STBOOT_ARCHIVE_SHA256, "archive digest")
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned()),
    };
    let deploy = deploy_policy(&args.config)?;
    let has_deploy = deploy.is_some();
    let mut agent = Agent::new(tpm, binding.clone(), evidence);
    if let Some(d) = deploy {
        agent = agent.with_deploy_policy(d, Box::new(now));
    }
    let tls = crate::serve::tls_config(&keys).map_err(|e| format!("TLS: {e}"))?;
    let listener = std::net::TcpListener::bind(&args.listen)
        .map_err(|e| format!("listening on {}: {e}", args.listen))?;
    eprintln!(
        "ST-AGENT: waiting on {} (binding sha256 {}, PCR {BINDING_PCR}; go-ahead {})",
        args.listen,
        hex(&binding.digest()),
        if has_deploy {
            "by the deploy policy"
        } else {
            "impossible: no deploy policy"
        }
    );
    eprintln!("ST-AGENT: binding\n{}", binding.statement().trim_end());
    if let Some(rss) = resident_kib() {
        eprintln!("st-agent: resident memory {rss} KiB (VmRSS)");
    }
    Ok(crate::serve::serve(&mut agent, &listener, &tls))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Option<Args>, String> {
        Args::parse(&list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn arguments_and_the_deploy_policy_files() {
        let a = args(&["--listen", "127.0.0.1:9", "--config", "/x"])
            .unwrap()
            .unwrap();
        assert_eq!(
            (a.listen.as_str(), a.config.as_path()),
            ("127.0.0.1:9", Path::new("/x"))
        );
        assert_eq!(args(&["--help"]).unwrap(), None);
        assert!(args(&["--listen"]).unwrap_err().contains("needs a value"));
        assert!(args(&["--bogus"]).unwrap_err().contains("unknown argument"));

        let dir = std::env::temp_dir().join(format!("st-agent-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(
            deploy_policy(&dir).unwrap().is_none(),
            "no root file: no policy"
        );
        let key = st_sign::SigningKey::from_seed(&[3; 32]).unwrap();
        let opts = st_sign::CertOptions {
            not_before: st_verify::UnixTime::from_secs(0),
            not_after: st_verify::UnixTime::from_secs(4_000_000_000),
            serial: [1; 16],
        };
        std::fs::write(
            dir.join("deploy_root.pem"),
            st_sign::make_root(&key, &opts).unwrap(),
        )
        .unwrap();
        let e = deploy_policy(&dir).err().unwrap();
        assert!(e.contains("deploy_threshold"), "{e}");
        std::fs::write(dir.join("deploy_threshold"), "0\n").unwrap();
        assert!(deploy_policy(&dir).err().unwrap().contains("1 to 64"));
        std::fs::write(dir.join("deploy_threshold"), "2\n").unwrap();
        let p = deploy_policy(&dir).unwrap().unwrap();
        assert_eq!(p.threshold.get(), 2);
        assert_eq!(p.roots.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
