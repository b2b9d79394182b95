#![no_main]
//! TPM event log (ours and firmware's): parse and replay any bytes without panicking; and a log
//! written from events made of the input parses back to them and replays to the prediction.
use libfuzzer_sys::fuzz_target;
use st_measure::{Bank, Event, EventLog, parse_log, predict, replay};

fuzz_target!(|data: &[u8]| {
    if let Ok(log) = parse_log(data) {
        let r = replay(&log);
        for bank in r.pcrs.banks() {
            for (_, v) in r.pcrs.pcrs(bank) {
                assert_eq!(v.len(), bank.digest_len());
            }
        }
    }

    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let banks: Vec<Bank> = Bank::ALL
        .into_iter()
        .enumerate()
        .filter(|(i, _)| sel & (1 << i) != 0)
        .map(|(_, b)| b)
        .collect();
    if banks.is_empty() {
        // A log must list at least one algorithm; EventLog::new(&[]) is documented as invalid.
        return;
    }
    let events: Vec<Event> = rest
        .chunks(17)
        .map(|c| Event {
            pcr: u32::from(c[0] % 24),
            // EV_NO_ACTION (3) is not extended, so prediction would differ: use 4 instead.
            event_type: if c[0] & 0x80 != 0 { 0xa000_0000 } else { 4 },
            data: c[1..].to_vec(),
            measured: Bank::Sha256.hash(c).try_into().expect("32 bytes"),
        })
        .collect();
    let mut log = EventLog::new(&banks);
    for e in &events {
        log.push(e);
    }
    let parsed = parse_log(log.as_bytes()).expect("our own log parses");
    assert_eq!(parsed.events.len(), events.len());
    assert_eq!(replay(&parsed).pcrs, predict(&events, &banks));
});
