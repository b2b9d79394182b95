//! Bech32 (BIP 173) as age uses it: no length limit, one case per string, the checksum over the
//! lower-case form. Only what keys need: decode to bytes, encode bytes.

use std::fmt;

const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const GENERATOR: [u32; 5] = [
    0x3b6a_57b2,
    0x2650_8e6d,
    0x1ea1_19fa,
    0x3d42_33dd,
    0x2a14_62b3,
];
/// Checksum characters at the end of the data part.
const CHECKSUM_LEN: usize = 6;

/// Why a string is not Bech32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bech32Error {
    /// Both upper- and lower-case letters.
    MixedCase,
    /// No `1` separator with a non-empty prefix before it and six checksum characters after it.
    Separator,
    /// A character outside the Bech32 alphabet (or not printable ASCII in the prefix).
    Character,
    /// The checksum does not match.
    Checksum,
    /// The data does not end in zero padding of less than 5 bits.
    Padding,
}

impl fmt::Display for Bech32Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MixedCase => "mixed upper and lower case",
            Self::Separator => "no '1' separator at a valid position",
            Self::Character => "a character outside the Bech32 alphabet",
            Self::Checksum => "wrong checksum (a typo, or a truncated key)",
            Self::Padding => "invalid padding bits",
        })
    }
}

fn polymod(values: impl IntoIterator<Item = u8>) -> u32 {
    let mut chk: u32 = 1;
    for v in values {
        let top = chk >> 25;
        chk = ((chk & 0x01ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GENERATOR.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

/// The HRP as the checksum sees it (lower case).
fn hrp_expand(hrp: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let high = hrp.iter().map(|c| c.to_ascii_lowercase() >> 5);
    let low = hrp.iter().map(|c| c.to_ascii_lowercase() & 31);
    high.chain(std::iter::once(0)).chain(low)
}

/// Decodes `s` into its human-readable prefix (in the case it was written in) and its bytes.
pub(crate) fn decode(s: &str) -> Result<(&str, Vec<u8>), Bech32Error> {
    let bytes = s.as_bytes();
    let lower = bytes.iter().any(u8::is_ascii_lowercase);
    let upper = bytes.iter().any(u8::is_ascii_uppercase);
    if lower && upper {
        return Err(Bech32Error::MixedCase);
    }
    let pos = bytes
        .iter()
        .rposition(|&c| c == b'1')
        .ok_or(Bech32Error::Separator)?;
    if pos < 1 || pos + 1 + CHECKSUM_LEN > bytes.len() {
        return Err(Bech32Error::Separator);
    }
    let (hrp, rest) = bytes.split_at(pos);
    if !hrp.iter().all(|c| (33..=126).contains(c)) {
        return Err(Bech32Error::Character);
    }
    let mut data = Vec::with_capacity(rest.len());
    for c in rest.iter().skip(1) {
        let lc = c.to_ascii_lowercase();
        let d = CHARSET
            .iter()
            .position(|&x| x == lc)
            .ok_or(Bech32Error::Character)?;
        // The alphabet has 32 characters: the position fits in 5 bits.
        data.push(d as u8);
    }
    if polymod(hrp_expand(hrp).chain(data.iter().copied())) != 1 {
        return Err(Bech32Error::Checksum);
    }
    let payload = data
        .get(..data.len() - CHECKSUM_LEN)
        .ok_or(Bech32Error::Separator)?;
    let out = from_5bit(payload)?;
    // `hrp` is a prefix of a `str` that ends before an ASCII '1', so it is valid UTF-8.
    let hrp = s.get(..pos).ok_or(Bech32Error::Character)?;
    Ok((hrp, out))
}

fn from_5bit(data: &[u8]) -> Result<Vec<u8>, Bech32Error> {
    let mut out = Vec::with_capacity(data.len() * 5 / 8);
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for &v in data {
        acc = ((acc << 5) | u32::from(v)) & 0xffff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if bits >= 5 || (acc << (8 - bits)) & 0xff != 0 {
        return Err(Bech32Error::Padding);
    }
    Ok(out)
}

/// Encodes `data` under `hrp` (given in lower case), in upper case if `upper`.
pub(crate) fn encode(hrp: &str, data: &[u8], upper: bool) -> String {
    let mut values = Vec::with_capacity(data.len() * 8 / 5 + 1);
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for &b in data {
        acc = ((acc << 8) | u32::from(b)) & 0xffff;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            values.push(((acc >> bits) & 31) as u8);
        }
    }
    if bits > 0 {
        values.push(((acc << (5 - bits)) & 31) as u8);
    }
    let hrp_lower = hrp.to_ascii_lowercase();
    let chk = polymod(
        hrp_expand(hrp_lower.as_bytes())
            .chain(values.iter().copied())
            .chain([0u8; CHECKSUM_LEN]),
    ) ^ 1;
    let mut s = String::with_capacity(hrp.len() + 1 + values.len() + CHECKSUM_LEN);
    s.push_str(&hrp_lower);
    s.push('1');
    let checksum = (0..CHECKSUM_LEN).map(|i| ((chk >> (5 * (5 - i))) & 31) as u8);
    for v in values.iter().copied().chain(checksum) {
        s.push(char::from(CHARSET[usize::from(v & 31)]));
    }
    if upper { s.to_ascii_uppercase() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bip173_valid_checksums() {
        for s in [
            "A12UEL5L",
            "a12uel5l",
            "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
            "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
            "?1ezyfcl",
        ] {
            let pos = s.rfind('1').unwrap();
            let data = s[pos + 1..].bytes().map(|c| {
                CHARSET
                    .iter()
                    .position(|&x| x == c.to_ascii_lowercase())
                    .unwrap() as u8
            });
            assert_eq!(
                polymod(hrp_expand(&s.as_bytes()[..pos]).chain(data)),
                1,
                "{s}"
            );
        }
        assert_eq!(decode("A12UEL5L"), Ok(("A", vec![])));
        assert_eq!(
            decode("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw").map(|(_, d)| d.len()),
            Ok(20)
        );
    }

    #[test]
    fn round_trip_and_case() {
        let data: Vec<u8> = (0..32).collect();
        let lower = encode("age", &data, false);
        assert!(lower.starts_with("age1"));
        assert_eq!(decode(&lower), Ok(("age", data.clone())));
        let upper = encode("age-secret-key-", &data, true);
        assert!(upper.starts_with("AGE-SECRET-KEY-1"));
        assert_eq!(decode(&upper), Ok(("AGE-SECRET-KEY-", data)));
    }

    #[test]
    fn attack_mixed_case_rejected() {
        let s = encode("age", &[1, 2, 3], false);
        let mixed = format!("A{}", &s[1..]);
        assert_eq!(decode(&mixed), Err(Bech32Error::MixedCase));
    }

    #[test]
    fn attack_flipped_character_fails_checksum() {
        let s = encode("age", &[7; 32], false);
        let mut b = s.into_bytes();
        let i = b.len() - 10;
        b[i] = if b[i] == b'q' { b'p' } else { b'q' };
        assert_eq!(
            decode(std::str::from_utf8(&b).unwrap()),
            Err(Bech32Error::Checksum)
        );
    }

    #[test]
    fn attack_bad_characters_and_separator() {
        assert_eq!(decode("age1b"), Err(Bech32Error::Separator));
        assert_eq!(decode("noseparator"), Err(Bech32Error::Separator));
        assert_eq!(decode("age1qqqqqqqqqbqqq"), Err(Bech32Error::Character));
    }
}
