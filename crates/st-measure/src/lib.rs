//! What stboot measures into the TPM, and the event log that records it.
//!
//! One pure crate computes the measurements: stboot extends them, `stmgr measure predict`
//! predicts them, a verifier replays them. Layout v1 (`docs/measurements.md`) is the Go
//! reference's layout: six events into PCRs 12, 13 and 14, with the reference's event types,
//! event data and sha256 values; the difference is that every bank is extended and the log
//! carries the digests actually extended, so it replays.
//!
//! ```
//! use st_measure::{Bank, EventLog, parse_log, predict, replay};
//! # let events: Vec<st_measure::Event> = Vec::new();
//! // let events = st_measure::events(&inputs);
//! let banks = [Bank::Sha1, Bank::Sha256];
//! let mut log = EventLog::new(&banks);
//! for e in &events {
//!     log.push(e); // and extend e.digest(bank) into PCR e.pcr of each bank
//! }
//! let replayed = replay(&parse_log(log.as_bytes()).unwrap());
//! assert_eq!(replayed.pcrs, predict(&events, &banks));
//! ```
//!
//! No device, filesystem or clock: inputs are bytes and parsed types.

mod bank;
mod eventlog;
mod layout;
mod pcr;
mod stub;

pub use bank::{Bank, MAX_DIGEST_LEN, hex};
pub use eventlog::{
    AlgorithmSize, EV_NO_ACTION, EventLog, LogDigest, LogError, LogErrorKind, LogEvent, LogLimits,
    MAX_ALGORITHMS, ParsedLog, Replay, SpecIdHeader, event_type_name, parse_log, parse_log_with,
    replay,
};
pub use layout::{
    AUTHORITY_PCR, ArchiveSource, DETAIL_PCR, Event, EventKind, IDENTITY_NV_INDEX, IDENTITY_PCR,
    INITRAMFS_ARCHIVE_NAME, Inputs, LAYOUT_VERSION, archive_name_from_url_path,
    descriptor_event_data, events, identity_from_nv,
};
pub use pcr::{PcrValues, predict};
pub use stub::{STUB_SECTIONS_PCR, systemd_stub_pcr11};
