//! `stmgr measure predict` (the TPM measurements stboot will make for an OS package) and
//! `stmgr eventlog show | replay` (read a TPM event log, ours or the firmware's).

use crate::files::{self, FileSource, OspkgPaths};
use anyhow::{Context as _, Result, anyhow, bail};
use clap::{Args, Subcommand};
use st_format::limits::{MAX_DESCRIPTOR_BYTES, MAX_HOST_CONFIG_BYTES};
use st_format::{Descriptor, FetchMethod, HostConfig, TrustPolicy};
use st_measure::{
    ArchiveSource, Bank, EV_NO_ACTION, Inputs, LogEvent, LogLimits, ParsedLog, PcrValues, Replay,
    event_type_name, hex,
};
use std::path::{Path, PathBuf};

/// `stmgr measure` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum MeasureCommand {
    /// Predict the PCR 12, 13 and 14 values and the event list stboot produces when it boots
    /// this OS package with this trust policy (measurement layout v1, docs/measurements.md).
    ///
    /// PCR 12: the archive (its SHA-256; log data: its file name, or "OS package from
    /// initramfs") and the descriptor (SHA-256 of its bytes). PCR 13: the trust policy's
    /// compact JSON, the signing roots' DER, the TLS roots' DER. PCR 14: the identity. Every
    /// bank gets H_bank(SHA-256(content)); PCRs start from zero (a UKI's systemd-stub may have
    /// extended PCR 12 before stboot runs: see the docs). The package is not verified here
    /// (stmgr ospkg verify does that); stboot measures only verified packages.
    Predict(PredictArgs),
}

/// `stmgr eventlog` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum EventlogCommand {
    /// List the events of a TPM event log: the crypto-agile layout stboot writes or firmware
    /// provides (/sys/kernel/security/tpm0/binary_bios_measurements), or a SHA-1 log.
    Show(EventlogArgs),
    /// Replay a TPM event log: the PCR values it implies, per bank (from zero; PCR 0 from the
    /// StartupLocality event when there is one). Banks we cannot compute (SM3, SHA3) are
    /// listed and skipped, as is a bank some event carries no digest for.
    Replay(EventlogArgs),
}

#[derive(Args, Debug)]
pub(crate) struct PredictArgs {
    /// The OS package: NAME.zip, NAME.json or NAME (both files are read).
    #[arg(long, value_name = "FILE")]
    pub(crate) ospkg: PathBuf,
    /// Trust policy directory as in the stboot image: trust_policy.json,
    /// ospkg_signing_root.pem and, optionally, tls_roots.pem.
    #[arg(long, value_name = "DIR")]
    pub(crate) trust_policy: PathBuf,
    /// The platform identity stboot reads from TPM NV index 0x01420001 (NUL bytes at both
    /// ends removed) [default: empty, as when the index is absent].
    #[arg(long, value_name = "STRING", default_value = "")]
    pub(crate) identity: String,
    /// The fetch method stboot uses [default: the trust policy's]. stboot measures the
    /// trust policy with the method in effect, e.g. initramfs for the provisioning fallback.
    #[arg(
        long,
        value_enum,
        value_name = "METHOD",
        conflicts_with = "host_config"
    )]
    pub(crate) fetch_method: Option<FetchMethodArg>,
    /// The host config stboot boots with: the fetch method in effect follows from it and the
    /// trust policy (initramfs when its ospkg_pointer is provision.zip, as in the reference).
    #[arg(long, value_name = "FILE")]
    pub(crate) host_config: Option<PathBuf>,
    /// Archive file name logged for a network fetch [default: the last path segment of the
    /// descriptor's os_pkg_url, percent-decoded]. Only the log data depends on it, no PCR.
    #[arg(long, value_name = "NAME")]
    pub(crate) archive_name: Option<String>,
    /// PCR bank to predict; repeat for more [default: sha1, sha256, sha384, sha512].
    #[arg(long = "bank", value_name = "ALG", value_parser = parse_bank)]
    pub(crate) banks: Vec<Bank>,
    /// Also write the event log stboot would write for these banks (TCG crypto-agile layout)
    /// to FILE, e.g. to compare with the log a booted OS received.
    #[arg(long, value_name = "FILE")]
    pub(crate) log_out: Option<PathBuf>,
    /// The stboot UKI (`stmgr uki create`): also predict PCR 11 as Debian's systemd-stub 252
    /// leaves it (its sections, docs/uefi.md). PCR 12 is predicted from zero: the stub extends
    /// it only when the firmware passes load options.
    #[arg(long, value_name = "FILE")]
    pub(crate) uki: Option<PathBuf>,
    /// Print JSON on stdout instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `--fetch-method` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FetchMethodArg {
    /// Downloaded from the host config's URLs.
    Network,
    /// From /ospkg/ in the stboot image.
    Initramfs,
}

#[derive(Args, Debug)]
pub(crate) struct EventlogArgs {
    /// The event log file (binary).
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// Print JSON on stdout instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

fn parse_bank(s: &str) -> Result<Bank, String> {
    Bank::from_name(s).ok_or_else(|| format!("{s:?}: not one of sha1, sha256, sha384, sha512"))
}

/// The archive name stboot logs for a network fetch: the last segment of the resolved
/// `os_pkg_url` path (a relative URL keeps its last segment whatever the descriptor's URL).
fn network_archive_name(descriptor: &Descriptor, json: &Path) -> Result<Vec<u8>> {
    let raw = descriptor.os_pkg_url();
    if raw.is_empty() {
        bail!(
            "descriptor {}: field \"os_pkg_url\" is empty, so the network fetch method cannot \
             download the archive; give --archive-name or --fetch-method initramfs",
            json.display()
        );
    }
    let url = url::Url::parse(raw)
        .or_else(|_| url::Url::parse("https://descriptor.invalid/").and_then(|base| base.join(raw)))
        .with_context(|| {
            format!(
                "descriptor {}: field \"os_pkg_url\" {raw:?}",
                json.display()
            )
        })?;
    Ok(st_measure::archive_name_from_url_path(url.path()))
}

pub(crate) fn predict(a: &PredictArgs) -> Result<()> {
    let OspkgPaths { zip, json } = files::ospkg_paths(&a.ospkg)?;
    let descriptor_bytes = files::read_capped(&json, "descriptor", MAX_DESCRIPTOR_BYTES)?;
    let descriptor = Descriptor::from_json(&descriptor_bytes)
        .with_context(|| format!("descriptor {}", json.display()))?;
    let trust = files::load_trust_dir(&a.trust_policy)?;
    let fetch_method = match (a.fetch_method, &a.host_config) {
        (Some(FetchMethodArg::Network), _) => FetchMethod::Network,
        (Some(FetchMethodArg::Initramfs), _) => FetchMethod::Initramfs,
        (None, Some(path)) => {
            let bytes = files::read_capped(path, "host config", MAX_HOST_CONFIG_BYTES)?;
            let config = HostConfig::from_json(&bytes)
                .with_context(|| format!("host config {}", path.display()))?;
            st_format::image::effective_fetch_method(trust.policy(), &config)
        }
        (None, None) => trust.policy().fetch_method(),
    };
    let policy = TrustPolicy::new(trust.policy().threshold(), fetch_method);
    let name = match (fetch_method, &a.archive_name) {
        (FetchMethod::Initramfs, _) => None,
        (FetchMethod::Network, Some(n)) => Some(n.as_bytes().to_vec()),
        (FetchMethod::Network, None) => Some(network_archive_name(&descriptor, &json)?),
    };
    let src = FileSource::open(&zip)?;
    let bar = files::progress_bar(st_format::ReadAt::len(&src), "hash");
    let archive_sha256 = st_verify::hash_archive(&src, &|n| bar.set_position(n))
        .with_context(|| format!("reading archive {}", zip.display()))?;
    bar.finish_and_clear();
    let signing_roots: Vec<&[u8]> = trust.roots().ders().collect();
    let tls_roots: Vec<&[u8]> = trust.tls_roots().iter().map(Vec::as_slice).collect();
    let events = st_measure::events(&Inputs {
        archive_sha256: *archive_sha256.as_bytes(),
        archive_source: match &name {
            Some(file_name) => ArchiveSource::Network { file_name },
            None => ArchiveSource::Initramfs,
        },
        descriptor_bytes: &descriptor_bytes,
        descriptor: &descriptor,
        trust_policy: &policy,
        signing_roots: &signing_roots,
        tls_roots: &tls_roots,
        identity: a.identity.as_bytes(),
        sigsum_policy: trust.sigsum_policy_text(),
    });
    let banks: Vec<Bank> = if a.banks.is_empty() {
        Bank::ALL.to_vec()
    } else {
        let mut b = a.banks.clone();
        b.sort();
        b.dedup();
        b
    };
    let mut pcrs = st_measure::predict(&events, &banks);
    if let Some(path) = &a.uki {
        let bytes = files::read_capped(path, "UKI", crate::uki::MAX_UKI_BYTES)?;
        let h = st_image::pe::PeHeaders::parse(&bytes)
            .with_context(|| format!("UKI {}", path.display()))?;
        if h.section(".linux").is_none() {
            anyhow::bail!("UKI {}: no .linux section: not a UKI", path.display());
        }
        pcrs.merge(crate::uki::stub_pcr11(&h, &bytes, &banks));
    }
    if let Some(path) = &a.log_out {
        let mut log = st_measure::EventLog::new(&banks);
        for e in &events {
            log.push(e);
        }
        files::write_bytes(path, "event log", log.as_bytes())?;
    }
    if a.json {
        let events: Vec<serde_json::Value> = events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let digests: serde_json::Map<String, serde_json::Value> = banks
                    .iter()
                    .map(|b| (b.name().to_string(), hex(&e.digest(*b)).into()))
                    .collect();
                let mut v = serde_json::json!({
                    "index": i + 1,
                    "pcr": e.pcr,
                    "type": format!("0x{:08x}", e.event_type),
                    "kind": e.kind().map(|k| k.name()),
                    "measured_sha256": hex(&e.measured),
                    "digests": digests,
                    "data_size": e.data.len(),
                    "data_hex": hex(&e.data),
                });
                if let (Ok(text), Some(obj)) = (std::str::from_utf8(&e.data), v.as_object_mut()) {
                    obj.insert("data_text".into(), text.into());
                }
                v
            })
            .collect();
        let out = serde_json::json!({
            "layout": st_measure::LAYOUT_VERSION,
            "banks": banks.iter().map(|b| b.name()).collect::<Vec<_>>(),
            "events": events,
            "pcrs": pcrs_json(&pcrs),
        });
        println!("{out:#}");
        return Ok(());
    }
    println!(
        "measurement layout v{} (docs/measurements.md); PCRs from zero",
        st_measure::LAYOUT_VERSION
    );
    for (i, e) in events.iter().enumerate() {
        print_event_line(i + 1, None, e.pcr, e.event_type, &e.data);
        println!("  measured sha256(content) {}", hex(&e.measured));
        for &b in &banks {
            println!("  {:<6} {}", b.name(), hex(&e.digest(b)));
        }
    }
    print_pcrs(&pcrs);
    Ok(())
}

fn pcrs_json(pcrs: &PcrValues) -> serde_json::Value {
    let banks: serde_json::Map<String, serde_json::Value> = pcrs
        .banks()
        .map(|b| {
            let values: serde_json::Map<String, serde_json::Value> = pcrs
                .pcrs(b)
                .map(|(pcr, v)| (pcr.to_string(), hex(v).into()))
                .collect();
            (b.name().to_string(), values.into())
        })
        .collect();
    banks.into()
}

fn print_pcrs(pcrs: &PcrValues) {
    let mut rows: Vec<(u32, Bank, &[u8])> = pcrs
        .banks()
        .flat_map(|b| pcrs.pcrs(b).map(move |(pcr, v)| (pcr, b, v)))
        .collect();
    rows.sort_by_key(|(pcr, b, _)| (*pcr, *b));
    for (pcr, b, v) in rows {
        println!("PCR {pcr:<2} {:<6} {}", b.name(), hex(v));
    }
}

/// A short, printable rendering of event data: text when it is printable, else hex.
fn preview(data: &[u8]) -> String {
    const MAX: usize = 64;
    let printable = |b: &u8| b.is_ascii_graphic() || matches!(b, b' ' | b'\n' | b'\t');
    let text = data.strip_suffix(b"\0").unwrap_or(data);
    if !text.is_empty() && text.iter().all(printable) {
        let shown = String::from_utf8_lossy(text.get(..MAX).unwrap_or(text)).into_owned();
        let more = if text.len() > MAX { "..." } else { "" };
        return format!("{shown:?}{more}");
    }
    let shown = hex(data.get(..32).unwrap_or(data));
    let more = if data.len() > 32 { "..." } else { "" };
    format!("{shown}{more}")
}

fn type_label(event_type: u32) -> String {
    match event_type_name(event_type) {
        Some(n) => format!("0x{event_type:08x} {n}"),
        None => format!("0x{event_type:08x}"),
    }
}

fn print_event_line(n: usize, offset: Option<usize>, pcr: u32, event_type: u32, data: &[u8]) {
    let at = offset.map(|o| format!(" @ {o}")).unwrap_or_default();
    println!(
        "event {n}{at}: PCR {pcr} {}, {} bytes: {}",
        type_label(event_type),
        data.len(),
        preview(data)
    );
}

fn alg_name(alg_id: u16) -> String {
    Bank::from_alg_id(alg_id).map_or_else(|| format!("0x{alg_id:04x}"), |b| b.name().to_string())
}

fn read_log(path: &Path) -> Result<ParsedLog> {
    let limits = LogLimits::default();
    let bytes = files::read_capped(path, "event log", limits.max_bytes)?;
    st_measure::parse_log_with(&bytes, &limits)
        .with_context(|| format!("event log {}", path.display()))
}

fn event_json(n: usize, e: &LogEvent) -> serde_json::Value {
    let digests: serde_json::Map<String, serde_json::Value> = e
        .digests
        .iter()
        .map(|d| (alg_name(d.alg_id), hex(&d.digest).into()))
        .collect();
    serde_json::json!({
        "index": n,
        "offset": e.offset,
        "pcr": e.pcr,
        "type": format!("0x{:08x}", e.event_type),
        "type_name": event_type_name(e.event_type),
        "extended": e.event_type != EV_NO_ACTION,
        "digests": digests,
        "data_size": e.data.len(),
        "data_hex": hex(&e.data),
    })
}

pub(crate) fn show(a: &EventlogArgs) -> Result<()> {
    let log = read_log(&a.file)?;
    if a.json {
        let header = log.header.as_ref().map(|h| {
            serde_json::json!({
                "platform_class": h.platform_class,
                "spec_version": format!("{}.{}", h.spec_version_major, h.spec_version_minor),
                "spec_errata": h.spec_errata,
                "uintn_size": h.uintn_size,
                "algorithms": h.algorithms.iter().map(|x| serde_json::json!({
                    "alg_id": format!("0x{:04x}", x.alg_id),
                    "name": alg_name(x.alg_id),
                    "digest_size": x.digest_size,
                })).collect::<Vec<_>>(),
                "vendor_info_hex": hex(&h.vendor_info),
            })
        });
        let out = serde_json::json!({
            "format": if log.header.is_some() { "crypto-agile" } else { "sha1" },
            "header": header,
            "events": log.events.iter().enumerate().map(|(i, e)| event_json(i + 1, e)).collect::<Vec<_>>(),
            "trailing_zero_bytes": log.trailing_zeros,
        });
        println!("{out:#}");
        return Ok(());
    }
    match &log.header {
        Some(h) => {
            let algs: Vec<String> = h
                .algorithms
                .iter()
                .map(|x| {
                    format!(
                        "{} (0x{:04x}, {} bytes)",
                        alg_name(x.alg_id),
                        x.alg_id,
                        x.digest_size
                    )
                })
                .collect();
            println!(
                "crypto-agile log: spec {}.{} errata {}, platform class {}, uintn size {}, \
                 algorithms: {}; {} events",
                h.spec_version_major,
                h.spec_version_minor,
                h.spec_errata,
                h.platform_class,
                h.uintn_size,
                algs.join(", "),
                log.events.len()
            );
        }
        None => println!("SHA-1 log (no Spec ID header); {} events", log.events.len()),
    }
    for (i, e) in log.events.iter().enumerate() {
        print_event_line(i + 1, Some(e.offset), e.pcr, e.event_type, &e.data);
        if let Some(loc) = e.startup_locality() {
            println!("  startup locality {loc} (PCR 0 starts at ...{loc:02x})");
        } else if e.event_type == EV_NO_ACTION {
            println!("  (not extended)");
        }
        for d in &e.digests {
            println!("  {:<6} {}", alg_name(d.alg_id), hex(&d.digest));
        }
    }
    if log.trailing_zeros > 0 {
        println!("{} zero bytes after the last event", log.trailing_zeros);
    }
    Ok(())
}

pub(crate) fn replay(a: &EventlogArgs) -> Result<()> {
    let log = read_log(&a.file)?;
    let Replay {
        pcrs,
        unsupported_algorithms,
        incomplete_banks,
        startup_locality,
    } = st_measure::replay(&log);
    if a.json {
        let out = serde_json::json!({
            "pcrs": pcrs_json(&pcrs),
            "unsupported_algorithms": unsupported_algorithms.iter().map(|x| format!("0x{x:04x}")).collect::<Vec<_>>(),
            "incomplete_banks": incomplete_banks.iter().map(|b| b.name()).collect::<Vec<_>>(),
            "startup_locality": startup_locality,
        });
        println!("{out:#}");
        return Ok(());
    }
    print_pcrs(&pcrs);
    for x in &unsupported_algorithms {
        println!("algorithm 0x{x:04x}: not replayed (cannot compute this hash)");
    }
    for b in &incomplete_banks {
        println!("{b}: not replayed (an event carries no {b} digest)");
    }
    if let Some(loc) = startup_locality {
        println!("startup locality {loc}: PCR 0 started at ...{loc:02x}");
    }
    if pcrs.banks().next().is_none() {
        return Err(anyhow!(
            "event log {}: no bank could be replayed",
            a.file.display()
        ));
    }
    Ok(())
}
