//! What systemd-stub 252 (Debian bookworm's `linuxx64.efi.stub`) measures before stboot runs,
//! when stboot is booted as a UKI (docs/uefi.md): into PCR 11, for each UKI section it measures
//! (in its order, absent ones skipped), the section's name with its NUL, then the section as it
//! is in memory (VirtualSize bytes). The firmware hashes each with every active bank.
//!
//! The caller finds the sections (`st_image::uki::stub_252_pcr11_sections`); this crate reads no
//! PE file.

use crate::bank::Bank;
use crate::pcr::PcrValues;

/// The PCR systemd-stub measures the UKI's sections into.
pub const STUB_SECTIONS_PCR: u32 = 11;

/// PCR 11 in each of `banks` after systemd-stub 252 measured `sections` (`(name, in-memory
/// bytes)`, in the stub's order), from zero.
pub fn systemd_stub_pcr11(sections: &[(&str, &[u8])], banks: &[Bank]) -> PcrValues {
    let mut out = PcrValues::default();
    for &bank in banks {
        out.add_bank(bank);
        for (name, data) in sections {
            let mut name0 = name.as_bytes().to_vec();
            name0.push(0);
            out.extend(bank, STUB_SECTIONS_PCR, &bank.hash(&name0));
            out.extend(bank, STUB_SECTIONS_PCR, &bank.hash(data));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn name_then_contents_per_section() {
        let pcrs = systemd_stub_pcr11(
            &[(".linux", b"kernel"), (".osrel", b"ID=x\n")],
            &[Bank::Sha256],
        );
        // Computed independently: extend(0, H(".linux\0")), extend(H("kernel")), ...
        let h = |d: &[u8]| Bank::Sha256.hash(d);
        let mut v = Bank::Sha256.zeros();
        for d in [&b".linux\0"[..], b"kernel", b".osrel\0", b"ID=x\n"] {
            v = h(&[v.as_slice(), &h(d)].concat());
        }
        assert_eq!(pcrs.get(Bank::Sha256, 11).unwrap(), v.as_slice());
        assert_eq!(pcrs.get(Bank::Sha1, 11), None);
    }
}
