//! PCR banks: the hash algorithms a TPM keeps PCRs for, as far as we can compute them.

use ring::digest;
use std::fmt;

/// The largest digest any bank has (SHA-512).
pub const MAX_DIGEST_LEN: usize = 64;

/// A PCR bank whose hash we can compute (with `ring`). Ordered by TPM algorithm id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bank {
    /// `TPM_ALG_SHA1` (0x0004), 20-byte digests.
    Sha1,
    /// `TPM_ALG_SHA256` (0x000B), 32-byte digests: the reference's only bank.
    Sha256,
    /// `TPM_ALG_SHA384` (0x000C), 48-byte digests.
    Sha384,
    /// `TPM_ALG_SHA512` (0x000D), 64-byte digests.
    Sha512,
}

impl Bank {
    /// Every bank we can compute, in algorithm-id order.
    pub const ALL: [Self; 4] = [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512];

    /// The TPM 2.0 algorithm id (`TPM_ALG_ID`).
    pub fn alg_id(self) -> u16 {
        match self {
            Self::Sha1 => 0x0004,
            Self::Sha256 => 0x000B,
            Self::Sha384 => 0x000C,
            Self::Sha512 => 0x000D,
        }
    }

    /// The bank of a TPM algorithm id; `None` for algorithms we cannot compute (SM3, SHA3, ...).
    pub fn from_alg_id(alg_id: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.alg_id() == alg_id)
    }

    /// The bank for a name as tools spell it: `sha1`, `sha256`, `sha384`, `sha512`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        self.algorithm().output_len()
    }

    /// Lower-case name (`sha256`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// The bank's hash of `data`.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.algorithm(), data).as_ref().to_vec()
    }

    /// A PCR extend: `H(old || digest)`, what the TPM computes for `TPM2_PCR_Extend`.
    pub fn extend(self, old: &[u8], digest: &[u8]) -> Vec<u8> {
        let mut ctx = digest::Context::new(self.algorithm());
        ctx.update(old);
        ctx.update(digest);
        ctx.finish().as_ref().to_vec()
    }

    /// The value of a PCR after reset: all zeros.
    pub fn zeros(self) -> Vec<u8> {
        vec![0; self.digest_len()]
    }

    fn algorithm(self) -> &'static digest::Algorithm {
        match self {
            Self::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        }
    }
}

impl fmt::Display for Bank {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_lengths_and_names() {
        let want = [
            (Bank::Sha1, 0x0004, 20, "sha1"),
            (Bank::Sha256, 0x000B, 32, "sha256"),
            (Bank::Sha384, 0x000C, 48, "sha384"),
            (Bank::Sha512, 0x000D, 64, "sha512"),
        ];
        for (bank, id, len, name) in want {
            assert_eq!(bank.alg_id(), id);
            assert_eq!(bank.digest_len(), len);
            assert_eq!(bank.hash(b"").len(), len);
            assert_eq!(Bank::from_alg_id(id), Some(bank));
            assert_eq!(Bank::from_name(name), Some(bank));
            assert_eq!(bank.to_string(), name);
        }
        // SM3_256 and SHA3_256 are valid TPM banks we do not compute.
        assert_eq!(Bank::from_alg_id(0x0012), None);
        assert_eq!(Bank::from_alg_id(0x0027), None);
        assert_eq!(Bank::from_name("SHA256"), None);
    }

    #[test]
    fn known_hashes() {
        // FIPS 180 "abc" test vectors.
        assert_eq!(
            hex(&Bank::Sha1.hash(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(&Bank::Sha256.hash(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // The extend the uefi-tpm-recipe spike measured on swtpm: PCR 12 from zero with
        // sha256("stboot-spike-measurement") gave 82e1c274...1419a628.
        let d = Bank::Sha256.hash(b"stboot-spike-measurement");
        assert!(hex(&d).starts_with("1e891779"));
        let v = Bank::Sha256.extend(&Bank::Sha256.zeros(), &d);
        assert!(hex(&v).starts_with("82e1c274") && hex(&v).ends_with("1419a628"));
    }
}
