//! The TCG PC Client crypto-agile event log: writer, bounded parser and replay.
//!
//! Layout (TCG PC Client Platform Firmware Profile, all integers little-endian):
//!
//! * First event, in the SHA-1 format `TCG_PCClientPCREvent`: PCR 0, type `EV_NO_ACTION` (3),
//!   20 zero bytes, `u32` data size, then `TCG_EfiSpecIdEvent`: `"Spec ID Event03\0"`,
//!   platformClass `u32`, specVersionMinor, specVersionMajor, specErrata, uintnSize (`u8`
//!   each), numberOfAlgorithms `u32`, that many `{algorithmId u16, digestSize u16}`,
//!   vendorInfoSize `u8`, vendorInfo.
//! * Then `TCG_PCR_EVENT2` records: PCR `u32`, type `u32`, digest count `u32`, that many
//!   `{hashAlg u16, digest[size from the header]}`, data size `u32`, data.
//!
//! Our writer lists exactly the banks it was given in the header and puts one digest per bank
//! in every event: the digest extended into that bank, so the log replays to the PCRs (the
//! reference logs `SHA-256(content)` although it extends `SHA-256(SHA-256(content))`).

use crate::bank::{Bank, MAX_DIGEST_LEN};
use crate::layout::Event;
use crate::pcr::PcrValues;

/// `EV_NO_ACTION`: logged, never extended.
pub const EV_NO_ACTION: u32 = 3;

const SPEC_ID_SIGNATURE: &[u8; 16] = b"Spec ID Event03\0";
const STARTUP_LOCALITY_SIGNATURE: &[u8; 16] = b"StartupLocality\0";

/// Caps applied while parsing a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Largest log accepted. Firmware logs are tens of KiB (OVMF with four banks: 7 KiB); ours
    /// are a few KiB plus the descriptor and certificates.
    pub max_bytes: usize,
    /// Most events (the header not counted).
    pub max_events: usize,
    /// Largest event data (a descriptor is at most 1 MiB, an EFI variable event a few KiB).
    pub max_event_data: usize,
    /// Accept a SHA-1 log (no Spec ID header) as well as a crypto-agile one.
    pub allow_sha1_log: bool,
}

impl Default for LogLimits {
    fn default() -> Self {
        Self {
            max_bytes: 16 << 20,
            max_events: 65_536,
            max_event_data: 4 << 20,
            allow_sha1_log: true,
        }
    }
}

/// Most algorithms a Spec ID header may list (the TPM spec defines about a dozen hashes).
pub const MAX_ALGORITHMS: u32 = 16;

/// Writes our event log: the Spec ID header for the banks, then one record per event.
#[derive(Debug, Clone)]
pub struct EventLog {
    banks: Vec<Bank>,
    bytes: Vec<u8>,
}

impl EventLog {
    /// A log whose header lists `banks` (duplicates dropped, order kept) and whose events will
    /// carry one digest for each. `banks` must not be empty: a header listing no algorithm is
    /// invalid (parsers, ours and Linux's, reject it); a TPM always has an active bank.
    pub fn new(banks: &[Bank]) -> Self {
        let mut unique: Vec<Bank> = Vec::with_capacity(banks.len());
        for &b in banks {
            if !unique.contains(&b) {
                unique.push(b);
            }
        }
        let mut spec = Vec::with_capacity(29 + 4 * unique.len());
        spec.extend_from_slice(SPEC_ID_SIGNATURE);
        spec.extend_from_slice(&0u32.to_le_bytes()); // platformClass: client (as the reference)
        spec.extend_from_slice(&[0, 2, 2, 2]); // spec 2.0 errata 2, uintnSize 2 (64-bit UINTN)
        spec.extend_from_slice(&(unique.len() as u32).to_le_bytes());
        for b in &unique {
            spec.extend_from_slice(&b.alg_id().to_le_bytes());
            spec.extend_from_slice(&(b.digest_len() as u16).to_le_bytes());
        }
        spec.push(0); // no vendor info
        let mut bytes = Vec::with_capacity(32 + spec.len());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&EV_NO_ACTION.to_le_bytes());
        bytes.extend_from_slice(&[0; 20]);
        bytes.extend_from_slice(&(spec.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&spec);
        Self {
            banks: unique,
            bytes,
        }
    }

    /// Append an event with its digest for every bank of the header.
    pub fn push(&mut self, event: &Event) {
        self.bytes.extend_from_slice(&event.pcr.to_le_bytes());
        self.bytes
            .extend_from_slice(&event.event_type.to_le_bytes());
        self.bytes
            .extend_from_slice(&(self.banks.len() as u32).to_le_bytes());
        for &b in &self.banks {
            self.bytes.extend_from_slice(&b.alg_id().to_le_bytes());
            self.bytes.extend_from_slice(&event.digest(b));
        }
        self.bytes
            .extend_from_slice(&(event.data.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(&event.data);
    }

    /// The banks of the header, in order.
    pub fn banks(&self) -> &[Bank] {
        &self.banks
    }

    /// The log so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The log so far, copied.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }
}

/// One `{algorithmId, digestSize}` entry of the Spec ID header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlgorithmSize {
    /// TPM algorithm id.
    pub alg_id: u16,
    /// Its digest size in bytes.
    pub digest_size: u16,
}

/// The `TCG_EfiSpecIdEvent` of a crypto-agile log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecIdHeader {
    /// platformClass (0 client, 1 server).
    pub platform_class: u32,
    /// specVersionMajor.
    pub spec_version_major: u8,
    /// specVersionMinor.
    pub spec_version_minor: u8,
    /// specErrata.
    pub spec_errata: u8,
    /// uintnSize (1: 32-bit, 2: 64-bit UINTN).
    pub uintn_size: u8,
    /// The algorithms events carry digests for, with their sizes, in header order.
    pub algorithms: Vec<AlgorithmSize>,
    /// vendorInfo.
    pub vendor_info: Vec<u8>,
}

/// One digest of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDigest {
    /// TPM algorithm id.
    pub alg_id: u16,
    /// The digest.
    pub digest: Vec<u8>,
}

/// One `TCG_PCR_EVENT2` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    /// Byte offset of the record in the log.
    pub offset: usize,
    /// PCR index.
    pub pcr: u32,
    /// Event type.
    pub event_type: u32,
    /// The digests, in log order.
    pub digests: Vec<LogDigest>,
    /// Event data.
    pub data: Vec<u8>,
}

impl LogEvent {
    /// The digest for `alg_id`, if the event carries one.
    pub fn digest(&self, alg_id: u16) -> Option<&[u8]> {
        self.digests
            .iter()
            .find(|d| d.alg_id == alg_id)
            .map(|d| d.digest.as_slice())
    }

    /// The locality of a `StartupLocality` `EV_NO_ACTION` event (the starting value of PCR 0).
    pub fn startup_locality(&self) -> Option<u8> {
        if self.event_type != EV_NO_ACTION {
            return None;
        }
        match self.data.split_first_chunk::<16>() {
            Some((sig, [locality])) if sig == STARTUP_LOCALITY_SIGNATURE => Some(*locality),
            _ => None,
        }
    }
}

/// A parsed log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLog {
    /// The Spec ID header (first event) of a crypto-agile log; `None` for a SHA-1 log (the TPM
    /// 1.2 layout some firmware still writes: every record `TCG_PCClientPCREvent` with one
    /// SHA-1 digest).
    pub header: Option<SpecIdHeader>,
    /// The records after it.
    pub events: Vec<LogEvent>,
    /// Zero bytes after the last record (a log copied from a fixed-size firmware area).
    pub trailing_zeros: usize,
}

/// Why a log was rejected: where, which field, what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event log: offset {offset}: {field}: {kind}")]
pub struct LogError {
    /// Byte offset of the field.
    pub offset: usize,
    /// The field (`spec id: numberOfAlgorithms`, `event 3: digest count`, ...).
    pub field: String,
    /// What is wrong.
    pub kind: LogErrorKind,
}

/// What is wrong with a log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogErrorKind {
    /// The log is larger than [`LogLimits::max_bytes`].
    #[error("log is {size} bytes, over the {max}-byte limit")]
    LogTooLarge {
        /// Actual size.
        size: usize,
        /// The cap.
        max: usize,
    },
    /// The log ends inside the field.
    #[error("truncated: {needed} bytes needed, {available} left")]
    Truncated {
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// A crypto-agile log was required ([`LogLimits::allow_sha1_log`] is false) and the first
    /// event is not a Spec ID Event03.
    #[error("not a crypto-agile log: first event is not \"Spec ID Event03\"")]
    NotCryptoAgile,
    /// A header field has a value the format forbids.
    #[error("{found}, expected {expected}")]
    Unexpected {
        /// The value found.
        found: u64,
        /// The value required.
        expected: u64,
    },
    /// A field that must be all zero bytes is not.
    #[error("must be all zero bytes")]
    NotZero,
    /// More algorithms in the header than [`MAX_ALGORITHMS`], or none.
    #[error("{count} algorithms (1 to {max} allowed)")]
    AlgorithmCount {
        /// Count found.
        count: u32,
        /// The cap.
        max: u32,
    },
    /// A digest size of 0 or over 64, or the wrong size for an algorithm we know.
    #[error("algorithm 0x{alg_id:04x}: digest size {size} is invalid{}", expected.map(|e| format!(" (expected {e})")).unwrap_or_default())]
    DigestSize {
        /// The algorithm.
        alg_id: u16,
        /// The size claimed.
        size: u16,
        /// The size the algorithm has, when we know it.
        expected: Option<usize>,
    },
    /// The same algorithm twice (in the header or in one event).
    #[error("algorithm 0x{alg_id:04x} listed twice")]
    DuplicateAlgorithm {
        /// The algorithm.
        alg_id: u16,
    },
    /// An event carries a digest for an algorithm the header does not list (its size is
    /// unknown, so the rest of the log cannot be read).
    #[error("algorithm 0x{alg_id:04x} is not listed in the Spec ID header")]
    AlgorithmNotInHeader {
        /// The algorithm.
        alg_id: u16,
    },
    /// An event has more digests than the header lists algorithms.
    #[error("{count} digests, but the header lists {max} algorithms")]
    DigestCount {
        /// Count found.
        count: u32,
        /// Algorithms in the header.
        max: usize,
    },
    /// Event data over [`LogLimits::max_event_data`].
    #[error("event data of {size} bytes, over the {max}-byte limit")]
    EventTooLarge {
        /// Size claimed.
        size: u32,
        /// The cap.
        max: usize,
    },
    /// More events than [`LogLimits::max_events`].
    #[error("more than {max} events")]
    TooManyEvents {
        /// The cap.
        max: usize,
    },
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, field: impl Into<String>, kind: LogErrorKind) -> LogError {
        LogError {
            offset: self.pos,
            field: field.into(),
            kind,
        }
    }
    fn take(&mut self, n: usize, field: &dyn Fn() -> String) -> Result<&'a [u8], LogError> {
        let available = self.bytes.len() - self.pos.min(self.bytes.len());
        match self.bytes.get(self.pos..).and_then(|rest| rest.get(..n)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(self.err(
                field(),
                LogErrorKind::Truncated {
                    needed: n,
                    available,
                },
            )),
        }
    }
    fn array<const N: usize>(&mut self, field: &dyn Fn() -> String) -> Result<[u8; N], LogError> {
        let s = self.take(N, field)?;
        let mut a = [0; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u8(&mut self, field: &dyn Fn() -> String) -> Result<u8, LogError> {
        Ok(self.array::<1>(field)?[0])
    }
    fn u16(&mut self, field: &dyn Fn() -> String) -> Result<u16, LogError> {
        self.array(field).map(u16::from_le_bytes)
    }
    fn u32(&mut self, field: &dyn Fn() -> String) -> Result<u32, LogError> {
        self.array(field).map(u32::from_le_bytes)
    }
    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }
}

fn named(s: &'static str) -> impl Fn() -> String {
    move || s.to_string()
}

/// Parse a crypto-agile log (ours, or the firmware's
/// `/sys/kernel/security/tpm0/binary_bios_measurements`) with the default [`LogLimits`].
pub fn parse_log(bytes: &[u8]) -> Result<ParsedLog, LogError> {
    parse_log_with(bytes, &LogLimits::default())
}

/// Parse a crypto-agile log with explicit caps.
pub fn parse_log_with(bytes: &[u8], limits: &LogLimits) -> Result<ParsedLog, LogError> {
    let mut r = Reader { bytes, pos: 0 };
    if bytes.len() > limits.max_bytes {
        return Err(r.err(
            "log",
            LogErrorKind::LogTooLarge {
                size: bytes.len(),
                max: limits.max_bytes,
            },
        ));
    }
    let header = match parse_header(&mut r) {
        Ok(h) => Some(h),
        Err(LogError {
            kind: LogErrorKind::NotCryptoAgile,
            ..
        }) if limits.allow_sha1_log => {
            r.pos = 0;
            None
        }
        Err(e) => return Err(e),
    };
    let mut events = Vec::new();
    let mut trailing_zeros = 0;
    loop {
        let rest = r.rest();
        if rest.is_empty() {
            break;
        }
        if rest.iter().all(|&b| b == 0) {
            trailing_zeros = rest.len();
            break;
        }
        if events.len() >= limits.max_events {
            return Err(r.err(
                format!("event {}", events.len() + 1),
                LogErrorKind::TooManyEvents {
                    max: limits.max_events,
                },
            ));
        }
        let n = events.len() + 1;
        events.push(match &header {
            Some(h) => parse_event(&mut r, h, n, limits)?,
            None => parse_sha1_event(&mut r, n, limits)?,
        });
    }
    Ok(ParsedLog {
        header,
        events,
        trailing_zeros,
    })
}

fn event_data(r: &mut Reader<'_>, n: usize, limits: &LogLimits) -> Result<Vec<u8>, LogError> {
    let size_at = r.pos;
    let size = r.u32(&|| format!("event {n}: eventSize"))?;
    if size as usize > limits.max_event_data {
        r.pos = size_at;
        return Err(r.err(
            format!("event {n}: eventSize"),
            LogErrorKind::EventTooLarge {
                size,
                max: limits.max_event_data,
            },
        ));
    }
    Ok(r.take(size as usize, &|| format!("event {n}: event data"))?
        .to_vec())
}

fn parse_sha1_event(
    r: &mut Reader<'_>,
    n: usize,
    limits: &LogLimits,
) -> Result<LogEvent, LogError> {
    let offset = r.pos;
    let pcr = r.u32(&|| format!("event {n}: pcrIndex"))?;
    let event_type = r.u32(&|| format!("event {n}: eventType"))?;
    let digest = r.take(20, &|| format!("event {n}: digest"))?.to_vec();
    let data = event_data(r, n, limits)?;
    Ok(LogEvent {
        offset,
        pcr,
        event_type,
        digests: vec![LogDigest {
            alg_id: Bank::Sha1.alg_id(),
            digest,
        }],
        data,
    })
}

fn expect(r: &Reader<'_>, field: &str, found: u64, expected: u64) -> Result<(), LogError> {
    if found == expected {
        Ok(())
    } else {
        Err(LogError {
            offset: r.pos,
            field: field.to_string(),
            kind: LogErrorKind::Unexpected { found, expected },
        })
    }
}

fn parse_header(r: &mut Reader<'_>) -> Result<SpecIdHeader, LogError> {
    let start = r.pos;
    let pcr = r.u32(&named("spec id: pcrIndex"))?;
    let event_type = r.u32(&named("spec id: eventType"))?;
    let digest = r.array::<20>(&named("spec id: digest"))?;
    let size_at = r.pos;
    let size = r.u32(&named("spec id: eventSize"))?;
    let sig_at = r.pos;
    let signature = r.array::<16>(&named("spec id: signature"));
    if event_type != EV_NO_ACTION || signature.as_ref().ok() != Some(SPEC_ID_SIGNATURE) {
        return Err(LogError {
            offset: start,
            field: "spec id".into(),
            kind: LogErrorKind::NotCryptoAgile,
        });
    }
    r.pos = start;
    expect(r, "spec id: pcrIndex", u64::from(pcr), 0)?;
    if digest != [0; 20] {
        r.pos = start + 8;
        return Err(r.err("spec id: digest", LogErrorKind::NotZero));
    }
    r.pos = sig_at + 16;
    let platform_class = r.u32(&named("spec id: platformClass"))?;
    let spec_version_minor = r.u8(&named("spec id: specVersionMinor"))?;
    let spec_version_major = r.u8(&named("spec id: specVersionMajor"))?;
    let spec_errata = r.u8(&named("spec id: specErrata"))?;
    let uintn_size = r.u8(&named("spec id: uintnSize"))?;
    let count_at = r.pos;
    let count = r.u32(&named("spec id: numberOfAlgorithms"))?;
    if count == 0 || count > MAX_ALGORITHMS {
        r.pos = count_at;
        return Err(r.err(
            "spec id: numberOfAlgorithms",
            LogErrorKind::AlgorithmCount {
                count,
                max: MAX_ALGORITHMS,
            },
        ));
    }
    let mut algorithms: Vec<AlgorithmSize> = Vec::with_capacity(count as usize);
    for i in 0..count {
        let at = r.pos;
        let alg_id = r.u16(&|| format!("spec id: digestSizes[{i}].algorithmId"))?;
        let digest_size = r.u16(&|| format!("spec id: digestSizes[{i}].digestSize"))?;
        let field = || format!("spec id: digestSizes[{i}]");
        let expected = Bank::from_alg_id(alg_id).map(Bank::digest_len);
        if digest_size == 0
            || usize::from(digest_size) > MAX_DIGEST_LEN
            || expected.is_some_and(|e| e != usize::from(digest_size))
        {
            r.pos = at;
            return Err(r.err(
                field(),
                LogErrorKind::DigestSize {
                    alg_id,
                    size: digest_size,
                    expected,
                },
            ));
        }
        if algorithms.iter().any(|a| a.alg_id == alg_id) {
            r.pos = at;
            return Err(r.err(field(), LogErrorKind::DuplicateAlgorithm { alg_id }));
        }
        algorithms.push(AlgorithmSize {
            alg_id,
            digest_size,
        });
    }
    let vendor_size = r.u8(&named("spec id: vendorInfoSize"))?;
    let vendor_info = r
        .take(usize::from(vendor_size), &named("spec id: vendorInfo"))?
        .to_vec();
    let used = r.pos - sig_at;
    if used as u64 != u64::from(size) {
        r.pos = size_at;
        return Err(r.err(
            "spec id: eventSize",
            LogErrorKind::Unexpected {
                found: u64::from(size),
                expected: used as u64,
            },
        ));
    }
    Ok(SpecIdHeader {
        platform_class,
        spec_version_major,
        spec_version_minor,
        spec_errata,
        uintn_size,
        algorithms,
        vendor_info,
    })
}

fn parse_event(
    r: &mut Reader<'_>,
    header: &SpecIdHeader,
    n: usize,
    limits: &LogLimits,
) -> Result<LogEvent, LogError> {
    let offset = r.pos;
    let pcr = r.u32(&|| format!("event {n}: pcrIndex"))?;
    let event_type = r.u32(&|| format!("event {n}: eventType"))?;
    let count_at = r.pos;
    let count = r.u32(&|| format!("event {n}: digest count"))?;
    if count as usize > header.algorithms.len() {
        r.pos = count_at;
        return Err(r.err(
            format!("event {n}: digest count"),
            LogErrorKind::DigestCount {
                count,
                max: header.algorithms.len(),
            },
        ));
    }
    let mut digests: Vec<LogDigest> = Vec::with_capacity(count as usize);
    for i in 0..count {
        let at = r.pos;
        let alg_id = r.u16(&|| format!("event {n}: digests[{i}].hashAlg"))?;
        let Some(size) = header
            .algorithms
            .iter()
            .find(|a| a.alg_id == alg_id)
            .map(|a| a.digest_size)
        else {
            r.pos = at;
            return Err(r.err(
                format!("event {n}: digests[{i}].hashAlg"),
                LogErrorKind::AlgorithmNotInHeader { alg_id },
            ));
        };
        if digests.iter().any(|d| d.alg_id == alg_id) {
            r.pos = at;
            return Err(r.err(
                format!("event {n}: digests[{i}].hashAlg"),
                LogErrorKind::DuplicateAlgorithm { alg_id },
            ));
        }
        let digest = r
            .take(usize::from(size), &|| {
                format!("event {n}: digests[{i}].digest")
            })?
            .to_vec();
        digests.push(LogDigest { alg_id, digest });
    }
    let data = event_data(r, n, limits)?;
    Ok(LogEvent {
        offset,
        pcr,
        event_type,
        digests,
        data,
    })
}

/// What a log implies for the PCRs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// Values per bank for every PCR the log extends, for each header algorithm we can compute
    /// and every event carries a digest for.
    pub pcrs: PcrValues,
    /// Header algorithms we cannot compute (SM3, SHA3, ...): not replayed.
    pub unsupported_algorithms: Vec<u16>,
    /// Banks left out because some extending event carries no digest for them (a replay
    /// would be wrong, so none is given).
    pub incomplete_banks: Vec<Bank>,
    /// Locality of a `StartupLocality` event, which sets PCR 0's starting value.
    pub startup_locality: Option<u8>,
}

/// Replay a parsed log: for each bank, every PCR from zeros (PCR 0 from the startup locality
/// when the log records one), extended with each event's digest in order. `EV_NO_ACTION`
/// events are not extended.
pub fn replay(log: &ParsedLog) -> Replay {
    let mut pcrs = PcrValues::default();
    let mut unsupported_algorithms = Vec::new();
    let mut incomplete_banks = Vec::new();
    let mut banks = Vec::new();
    match &log.header {
        Some(h) => {
            for a in &h.algorithms {
                match Bank::from_alg_id(a.alg_id) {
                    Some(b) => banks.push(b),
                    None => unsupported_algorithms.push(a.alg_id),
                }
            }
        }
        None => banks.push(Bank::Sha1),
    }
    let mut startup_locality = None;
    for &bank in &banks {
        pcrs.add_bank(bank);
        for e in &log.events {
            if e.event_type == EV_NO_ACTION {
                if let Some(loc) = e.startup_locality() {
                    startup_locality = Some(loc);
                    if !pcrs.has(bank, 0) {
                        let mut v = bank.zeros();
                        if let Some(last) = v.last_mut() {
                            *last = loc;
                        }
                        pcrs.set(bank, 0, v);
                    }
                }
                continue;
            }
            match e.digest(bank.alg_id()) {
                Some(d) => pcrs.extend(bank, e.pcr, d),
                None => {
                    incomplete_banks.push(bank);
                    pcrs.remove_bank(bank);
                    break;
                }
            }
        }
    }
    Replay {
        pcrs,
        unsupported_algorithms,
        incomplete_banks,
        startup_locality,
    }
}

/// The TCG name of an event type (`EV_SEPARATOR`, `EV_EFI_VARIABLE_BOOT`, ...) or of one of
/// the layout's types (`ST_OSPKG_ARCHIVE`, ...); `None` when unknown.
pub fn event_type_name(event_type: u32) -> Option<&'static str> {
    Some(match event_type {
        0x0000_0000 => "EV_PREBOOT_CERT",
        0x0000_0001 => "EV_POST_CODE",
        0x0000_0002 => "EV_UNUSED",
        0x0000_0003 => "EV_NO_ACTION",
        0x0000_0004 => "EV_SEPARATOR",
        0x0000_0005 => "EV_ACTION",
        0x0000_0006 => "EV_EVENT_TAG",
        0x0000_0007 => "EV_S_CRTM_CONTENTS",
        0x0000_0008 => "EV_S_CRTM_VERSION",
        0x0000_0009 => "EV_CPU_MICROCODE",
        0x0000_000A => "EV_PLATFORM_CONFIG_FLAGS",
        0x0000_000B => "EV_TABLE_OF_DEVICES",
        0x0000_000C => "EV_COMPACT_HASH",
        0x0000_000D => "EV_IPL",
        0x0000_000E => "EV_IPL_PARTITION_DATA",
        0x0000_000F => "EV_NONHOST_CODE",
        0x0000_0010 => "EV_NONHOST_CONFIG",
        0x0000_0011 => "EV_NONHOST_INFO",
        0x0000_0012 => "EV_OMIT_BOOT_DEVICE_EVENTS",
        0x0000_0013 => "EV_POST_CODE2",
        0x8000_0001 => "EV_EFI_VARIABLE_DRIVER_CONFIG",
        0x8000_0002 => "EV_EFI_VARIABLE_BOOT",
        0x8000_0003 => "EV_EFI_BOOT_SERVICES_APPLICATION",
        0x8000_0004 => "EV_EFI_BOOT_SERVICES_DRIVER",
        0x8000_0005 => "EV_EFI_RUNTIME_SERVICES_DRIVER",
        0x8000_0006 => "EV_EFI_GPT_EVENT",
        0x8000_0007 => "EV_EFI_ACTION",
        0x8000_0008 => "EV_EFI_PLATFORM_FIRMWARE_BLOB",
        0x8000_0009 => "EV_EFI_HANDOFF_TABLES",
        0x8000_000A => "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
        0x8000_000B => "EV_EFI_HANDOFF_TABLES2",
        0x8000_000C => "EV_EFI_VARIABLE_BOOT2",
        0x8000_000D => "EV_EFI_GPT_EVENT2",
        0x8000_0010 => "EV_EFI_HCRTM_EVENT",
        0x8000_00E0 => "EV_EFI_VARIABLE_AUTHORITY",
        0x8000_00E1 => "EV_EFI_SPDM_FIRMWARE_BLOB",
        0x8000_00E2 => "EV_EFI_SPDM_FIRMWARE_CONFIG",
        0xa000_0000 => "ST_OSPKG_ARCHIVE",
        0xa000_0001 => "ST_OSPKG_DESCRIPTOR",
        0xa000_0002 => "ST_TRUST_POLICY",
        0xa000_0003 => "ST_SIGNING_ROOT",
        0xa000_0004 => "ST_TLS_ROOTS",
        0xa000_0005 => "ST_IDENTITY",
        0xa000_0006 => "ST_SIGSUM_POLICY",
        _ => return None,
    })
}
