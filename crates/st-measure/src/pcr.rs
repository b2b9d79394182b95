//! PCR values per bank, and the prediction of what the layout's events leave in them.

use crate::bank::Bank;
use crate::layout::Event;
use std::collections::BTreeMap;

/// PCR values, per bank, per PCR index. Only PCRs something was extended into are present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PcrValues {
    banks: BTreeMap<Bank, BTreeMap<u32, Vec<u8>>>,
}

impl PcrValues {
    /// The value of `pcr` in `bank`, if anything was extended into it.
    pub fn get(&self, bank: Bank, pcr: u32) -> Option<&[u8]> {
        self.banks.get(&bank)?.get(&pcr).map(Vec::as_slice)
    }

    /// The banks present, in algorithm-id order.
    pub fn banks(&self) -> impl Iterator<Item = Bank> + '_ {
        self.banks.keys().copied()
    }

    /// The PCRs of `bank` with their values, by PCR index.
    pub fn pcrs(&self, bank: Bank) -> impl Iterator<Item = (u32, &[u8])> + '_ {
        self.banks
            .get(&bank)
            .into_iter()
            .flat_map(|m| m.iter().map(|(pcr, v)| (*pcr, v.as_slice())))
    }

    /// Make `bank` present (with no PCRs yet).
    pub(crate) fn add_bank(&mut self, bank: Bank) {
        self.banks.entry(bank).or_default();
    }

    /// Drop `bank`.
    pub(crate) fn remove_bank(&mut self, bank: Bank) {
        self.banks.remove(&bank);
    }

    /// Take `other`'s values too (a PCR in both: `other`'s value wins).
    pub fn merge(&mut self, other: Self) {
        for (bank, pcrs) in other.banks {
            self.banks.entry(bank).or_default().extend(pcrs);
        }
    }

    /// Set the starting value of `pcr` (before any extend).
    pub(crate) fn set(&mut self, bank: Bank, pcr: u32, value: Vec<u8>) {
        self.banks.entry(bank).or_default().insert(pcr, value);
    }

    /// Whether `pcr` of `bank` has a value yet.
    pub(crate) fn has(&self, bank: Bank, pcr: u32) -> bool {
        self.get(bank, pcr).is_some()
    }

    /// Extend `pcr` of `bank` with `digest`, from zeros if it has no value yet.
    pub(crate) fn extend(&mut self, bank: Bank, pcr: u32, digest: &[u8]) {
        let slot = self
            .banks
            .entry(bank)
            .or_default()
            .entry(pcr)
            .or_insert_with(|| bank.zeros());
        *slot = bank.extend(slot, digest);
    }
}

/// The PCR values the events leave in each of `banks`, every PCR starting from zeros (as PCRs
/// 12-14 do after a reset, unless something before stboot, such as systemd-stub in a UKI,
/// extended them).
pub fn predict(events: &[Event], banks: &[Bank]) -> PcrValues {
    let mut out = PcrValues::default();
    for &bank in banks {
        out.add_bank(bank);
        for e in events {
            out.extend(bank, e.pcr, &e.digest(bank));
        }
    }
    out
}
