//! The event log: round trips (write -> parse -> replay == predict), firmware-style logs
//! (StartupLocality, an algorithm we cannot compute, EV_NO_ACTION, zero padding), and every
//! rejection naming its offset and field.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use proptest::prelude::*;
use st_measure::{
    Bank, EV_NO_ACTION, Event, EventLog, LogErrorKind, LogLimits, parse_log, parse_log_with,
    predict, replay,
};

fn event(pcr: u32, event_type: u32, data: &[u8]) -> Event {
    Event {
        pcr,
        event_type,
        data: data.to_vec(),
        measured: Bank::Sha256.hash(data).try_into().unwrap(),
    }
}

fn banks_strategy() -> impl Strategy<Value = Vec<Bank>> {
    proptest::sample::subsequence(Bank::ALL.to_vec(), 1..=4).prop_shuffle()
}

proptest! {
    #[test]
    fn write_parse_replay_equals_predict(
        banks in banks_strategy(),
        evs in proptest::collection::vec(
            (0u32..24, any::<u32>(), proptest::collection::vec(any::<u8>(), 0..64)),
            0..12,
        ),
    ) {
        let events: Vec<Event> = evs
            .iter()
            .map(|(pcr, t, d)| event(*pcr, if *t == EV_NO_ACTION { 4 } else { *t }, d))
            .collect();
        let mut log = EventLog::new(&banks);
        for e in &events {
            log.push(e);
        }
        let parsed = parse_log(log.as_bytes()).unwrap();
        prop_assert_eq!(parsed.events.len(), events.len());
        prop_assert_eq!(parsed.header.as_ref().unwrap().algorithms.len(), banks.len());
        for (p, e) in parsed.events.iter().zip(&events) {
            prop_assert_eq!(p.pcr, e.pcr);
            prop_assert_eq!(p.event_type, e.event_type);
            prop_assert_eq!(&p.data, &e.data);
            for &b in &banks {
                let want = e.digest(b);
                prop_assert_eq!(p.digest(b.alg_id()).unwrap(), want.as_slice());
            }
        }
        let r = replay(&parsed);
        prop_assert_eq!(r.pcrs, predict(&events, &banks));
    }

    /// Any bytes: an error or a log, never a panic; a cut log is an error or a prefix.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(l) = parse_log(&bytes) {
            let _ = replay(&l);
        }
    }

    #[test]
    fn every_truncation_is_an_error_naming_the_offset(cut in 0usize..200) {
        let mut log = EventLog::new(&[Bank::Sha256, Bank::Sha1]);
        log.push(&event(12, 0xa000_0000, b"os.zip"));
        log.push(&event(13, 0xa000_0002, b"policy"));
        let bytes = log.to_bytes();
        let cut = cut.min(bytes.len() - 1);
        // Header with two algorithms: 69 bytes; the first record: 78.
        let first_end = 69 + 4 + 4 + 4 + 2 + 32 + 2 + 20 + 4 + 6;
        match parse_log(&bytes[..cut]) {
            // A cut between records is a shorter log.
            Ok(l) => prop_assert!(
                (cut == 69 && l.events.is_empty()) || (cut == first_end && l.events.len() == 1),
                "cut {cut} parsed"
            ),
            Err(e) => {
                prop_assert!(e.offset <= cut, "{e}");
                prop_assert!(
                    matches!(e.kind, LogErrorKind::Truncated { .. } | LogErrorKind::NotCryptoAgile),
                    "{e}"
                );
            }
        }
    }
}

/// A firmware-style log built by hand: header with sha1, sha256 and SM3_256 (0x0012, which we
/// cannot compute), a StartupLocality event of locality 3, a separator into PCR 0 and PCR 7,
/// then zero padding.
fn firmware_log() -> Vec<u8> {
    let mut b = Vec::new();
    let mut spec = b"Spec ID Event03\0".to_vec();
    spec.extend(1u32.to_le_bytes()); // server platform class
    spec.extend([0, 2, 0, 2]);
    spec.extend(3u32.to_le_bytes());
    for (alg, size) in [(0x0004u16, 20u16), (0x000b, 32), (0x0012, 32)] {
        spec.extend(alg.to_le_bytes());
        spec.extend(size.to_le_bytes());
    }
    spec.push(2);
    spec.extend(b"VI");
    b.extend(0u32.to_le_bytes());
    b.extend(3u32.to_le_bytes());
    b.extend([0; 20]);
    b.extend((spec.len() as u32).to_le_bytes());
    b.extend(&spec);
    let mut push = |pcr: u32, t: u32, digests: &[(u16, Vec<u8>)], data: &[u8]| {
        b.extend(pcr.to_le_bytes());
        b.extend(t.to_le_bytes());
        b.extend((digests.len() as u32).to_le_bytes());
        for (alg, d) in digests {
            b.extend(alg.to_le_bytes());
            b.extend(d);
        }
        b.extend((data.len() as u32).to_le_bytes());
        b.extend(data);
    };
    let all = |data: &[u8]| {
        vec![
            (0x0004, Bank::Sha1.hash(data)),
            (0x000b, Bank::Sha256.hash(data)),
            (0x0012, vec![0x5a; 32]),
        ]
    };
    let zeros = vec![
        (0x0004, vec![0; 20]),
        (0x000b, vec![0; 32]),
        (0x0012, vec![0; 32]),
    ];
    let mut loc = b"StartupLocality\0".to_vec();
    loc.push(3);
    push(0, 3, &zeros, &loc);
    push(0, 4, &all(&[0; 4]), &[0; 4]);
    push(7, 4, &all(&[0; 4]), &[0; 4]);
    b.extend([0; 100]);
    b
}

#[test]
fn firmware_style_log_replays_with_locality_and_skips_unknown_banks() {
    let log = parse_log(&firmware_log()).unwrap();
    assert_eq!(log.header.as_ref().unwrap().platform_class, 1);
    assert_eq!(log.header.as_ref().unwrap().vendor_info, b"VI");
    assert_eq!(log.events.len(), 3);
    assert_eq!(log.trailing_zeros, 100);
    assert_eq!(log.events[0].startup_locality(), Some(3));
    let r = replay(&log);
    assert_eq!(r.unsupported_algorithms, [0x0012]);
    assert!(r.incomplete_banks.is_empty());
    assert_eq!(r.startup_locality, Some(3));
    for bank in [Bank::Sha1, Bank::Sha256] {
        let sep = bank.hash(&[0; 4]);
        let mut start = bank.zeros();
        *start.last_mut().unwrap() = 3;
        assert_eq!(r.pcrs.get(bank, 0).unwrap(), bank.extend(&start, &sep));
        assert_eq!(
            r.pcrs.get(bank, 7).unwrap(),
            bank.extend(&bank.zeros(), &sep)
        );
        assert_eq!(r.pcrs.get(bank, 1), None);
    }
    assert_eq!(
        r.pcrs.banks().collect::<Vec<_>>(),
        [Bank::Sha1, Bank::Sha256]
    );
}

#[test]
fn a_bank_missing_from_an_event_is_not_replayed() {
    let mut b = EventLog::new(&[Bank::Sha1, Bank::Sha256]).to_bytes();
    // One event with only the sha256 digest.
    b.extend(12u32.to_le_bytes());
    b.extend(4u32.to_le_bytes());
    b.extend(1u32.to_le_bytes());
    b.extend(0x000bu16.to_le_bytes());
    b.extend(Bank::Sha256.hash(b"x"));
    b.extend(0u32.to_le_bytes());
    let r = replay(&parse_log(&b).unwrap());
    assert_eq!(r.incomplete_banks, [Bank::Sha1]);
    assert_eq!(r.pcrs.banks().collect::<Vec<_>>(), [Bank::Sha256]);
}

#[test]
fn rejections_name_offset_and_field() {
    let good = {
        let mut log = EventLog::new(&[Bank::Sha256]);
        log.push(&event(12, 0xa000_0000, b"os.zip"));
        log.to_bytes()
    };
    // Header: 32 bytes + 16 signature + 8 + 4 count + 4 (one alg) + 1 vendor size = 65.
    assert_eq!(good.len(), 65 + 4 + 4 + 4 + 2 + 32 + 4 + 6);
    let patch = |at: usize, bytes: &[u8]| {
        let mut b = good.clone();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        b
    };
    let cases: Vec<(Vec<u8>, usize, &str, &str)> = vec![
        (patch(4, &[4]), 0, "spec id", "not a crypto-agile log"),
        (patch(32, b"X"), 0, "spec id", "not a crypto-agile log"),
        (patch(0, &[1]), 0, "spec id: pcrIndex", "1, expected 0"),
        (patch(8, &[1]), 8, "spec id: digest", "must be all zero"),
        (
            patch(28, &[34]),
            28,
            "spec id: eventSize",
            "34, expected 33",
        ),
        (
            patch(56, &[0]),
            56,
            "spec id: numberOfAlgorithms",
            "0 algorithms",
        ),
        (
            patch(56, &[17]),
            56,
            "spec id: numberOfAlgorithms",
            "17 algorithms",
        ),
        (
            patch(62, &[20]),
            60,
            "spec id: digestSizes[0]",
            "digest size 20 is invalid (expected 32)",
        ),
        (
            patch(62, &[65]),
            60,
            "spec id: digestSizes[0]",
            "digest size 65",
        ),
        (
            patch(60, &[0x0c]),
            60,
            "spec id: digestSizes[0]",
            "(expected 48)",
        ),
        (
            patch(73, &[2]),
            73,
            "event 1: digest count",
            "2 digests, but the header lists 1",
        ),
        (
            patch(77, &[4]),
            77,
            "event 1: digests[0].hashAlg",
            "0x0004 is not listed",
        ),
        (
            patch(111, &[7]),
            115,
            "event 1: event data",
            "truncated: 7 bytes needed, 6 left",
        ),
        (
            patch(111, &[0, 0, 0x50]),
            111,
            "event 1: eventSize",
            "over the 4194304-byte limit",
        ),
    ];
    let strict = LogLimits {
        allow_sha1_log: false,
        ..LogLimits::default()
    };
    for (bytes, offset, field, msg) in cases {
        let e = parse_log_with(&bytes, &strict).unwrap_err();
        assert_eq!((e.offset, e.field.as_str()), (offset, field), "{e}");
        assert!(e.to_string().contains(msg), "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("event log: offset {offset}: {field}: "))
        );
    }
}

#[test]
fn caps_on_size_and_count() {
    let mut log = EventLog::new(&[Bank::Sha256]);
    for i in 0..5 {
        log.push(&event(12, 4, &[i]));
    }
    let limits = LogLimits {
        max_events: 4,
        ..LogLimits::default()
    };
    let e = parse_log_with(log.as_bytes(), &limits).unwrap_err();
    assert!(
        matches!(e.kind, LogErrorKind::TooManyEvents { max: 4 }),
        "{e}"
    );
    assert_eq!(e.field, "event 5");
    let limits = LogLimits {
        max_bytes: 100,
        ..LogLimits::default()
    };
    let e = parse_log_with(log.as_bytes(), &limits).unwrap_err();
    assert!(
        matches!(e.kind, LogErrorKind::LogTooLarge { max: 100, .. }),
        "{e}"
    );
    assert_eq!(
        parse_log_with(log.as_bytes(), &LogLimits::default())
            .unwrap()
            .events
            .len(),
        5
    );
}

#[test]
fn duplicate_algorithms_are_rejected() {
    let mut b = EventLog::new(&[Bank::Sha256, Bank::Sha256]).to_bytes();
    assert_eq!(b.len(), 65, "the writer drops duplicates");
    // Header listing sha256 twice.
    b[56] = 2;
    b[28] = 37;
    b.truncate(64);
    b.extend([0x0b, 0, 32, 0, 0]);
    let e = parse_log(&b).unwrap_err();
    assert_eq!(e.field, "spec id: digestSizes[1]");
    assert!(matches!(
        e.kind,
        LogErrorKind::DuplicateAlgorithm { alg_id: 0x000b }
    ));
    // An event carrying sha256 twice.
    let mut b = EventLog::new(&[Bank::Sha1, Bank::Sha256]).to_bytes();
    b.extend(12u32.to_le_bytes());
    b.extend(4u32.to_le_bytes());
    b.extend(2u32.to_le_bytes());
    for _ in 0..2 {
        b.extend(0x000bu16.to_le_bytes());
        b.extend([0; 32]);
    }
    b.extend(0u32.to_le_bytes());
    let e = parse_log(&b).unwrap_err();
    assert_eq!(e.field, "event 1: digests[1].hashAlg");
}

#[test]
fn no_action_events_are_logged_but_not_extended() {
    let mut log = EventLog::new(&[Bank::Sha256]);
    log.push(&event(12, EV_NO_ACTION, b"note"));
    let r = replay(&parse_log(log.as_bytes()).unwrap());
    assert_eq!(r.pcrs.get(Bank::Sha256, 12), None);
    assert_eq!(r.startup_locality, None);
}

/// A SHA-1 log (TPM 1.2 layout, no Spec ID header), as some firmware writes: accepted by
/// default and replayed in the sha1 bank; refused when a crypto-agile log is required.
#[test]
fn sha1_log_replays_the_sha1_bank() {
    let mut b = Vec::new();
    let mut push = |pcr: u32, t: u32, digest: &[u8], data: &[u8]| {
        b.extend(pcr.to_le_bytes());
        b.extend(t.to_le_bytes());
        b.extend(digest);
        b.extend((data.len() as u32).to_le_bytes());
        b.extend(data);
    };
    let mut loc = b"StartupLocality\0".to_vec();
    loc.push(3);
    push(0, 3, &[0; 20], &loc);
    push(0, 8, &Bank::Sha1.hash(b"crtm"), b"crtm");
    push(4, 4, &Bank::Sha1.hash(&[0; 4]), &[0; 4]);
    let log = parse_log(&b).unwrap();
    assert!(log.header.is_none());
    assert_eq!(log.events.len(), 3);
    let r = replay(&log);
    assert_eq!(r.startup_locality, Some(3));
    let mut start = [0u8; 20];
    start[19] = 3;
    assert_eq!(
        r.pcrs.get(Bank::Sha1, 0).unwrap(),
        Bank::Sha1.extend(&start, &Bank::Sha1.hash(b"crtm"))
    );
    assert_eq!(r.pcrs.banks().collect::<Vec<_>>(), [Bank::Sha1]);
    let strict = LogLimits {
        allow_sha1_log: false,
        ..LogLimits::default()
    };
    let e = parse_log_with(&b, &strict).unwrap_err();
    assert!(matches!(e.kind, LogErrorKind::NotCryptoAgile), "{e}");
}
