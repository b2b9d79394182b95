//! Hex and base64 as the Sigsum formats use them.

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Why hex text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HexError {
    /// A character outside `0-9a-fA-F`, at this byte offset.
    BadDigit(usize),
    /// The text decodes to this many bytes; another number was expected.
    Length(usize),
}

impl std::fmt::Display for HexError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadDigit(at) => write!(f, "not a hex digit at character {}", at + 1),
            Self::Length(n) => write!(f, "{n} bytes of hex"),
        }
    }
}

/// Exactly `N` bytes from hex text, either case (Go `hex.DecodeString` and a length check).
pub(crate) fn unhex<const N: usize>(text: &[u8]) -> Result<[u8; N], HexError> {
    if let Some(at) = text.iter().position(|&c| nibble(c).is_none()) {
        return Err(HexError::BadDigit(at));
    }
    if text.len() != 2 * N {
        return Err(HexError::Length(text.len() / 2));
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let (Some(hi), Some(lo)) = (
            pair.first().copied().and_then(nibble),
            pair.get(1).copied().and_then(nibble),
        ) else {
            return Err(HexError::BadDigit(0));
        };
        *o = (hi << 4) | lo;
    }
    Ok(out)
}

/// Standard padded base64 (RFC 4648 §4), as Go's `base64.StdEncoding` writes it.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sym = |v: u32| char::from(ALPHABET[(v & 63) as usize]);
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let v = (b(0) << 16) | (b(1) << 8) | b(2);
        s.push(sym(v >> 18));
        s.push(sym(v >> 12));
        s.push(if chunk.len() > 1 { sym(v >> 6) } else { '=' });
        s.push(if chunk.len() > 2 { sym(v) } else { '=' });
    }
    s
}

/// A decimal integer as the Sigsum ASCII format allows it (sigsum-go `ascii.IntFromDecimal`):
/// digits only, no sign, no leading zero (except `0` itself), at most 2^63 - 1.
pub(crate) fn decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 19 || (text.len() > 1 && text.first() == Some(&b'0')) {
        return None;
    }
    let mut n: u64 = 0;
    for &c in text {
        let d = c.checked_sub(b'0').filter(|d| *d <= 9)?;
        n = n.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    (n <= i64::MAX as u64).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_accepts_either_case() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(unhex::<3>(b"00ABff"), Ok([0x00, 0xab, 0xff]));
        assert_eq!(unhex::<3>(b"00abf"), Err(HexError::Length(2)));
        assert_eq!(unhex::<2>(b"00abff"), Err(HexError::Length(3)));
        assert_eq!(unhex::<2>(b"0x12"), Err(HexError::BadDigit(1)));
        assert_eq!(unhex::<1>(b" 12"), Err(HexError::BadDigit(0)));
    }

    #[test]
    fn base64_is_the_standard_padded_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn decimals_follow_sigsum_go() {
        assert_eq!(decimal(b"0"), Some(0));
        assert_eq!(decimal(b"381382"), Some(381_382));
        assert_eq!(decimal(b"9223372036854775807"), Some(i64::MAX as u64));
        for bad in [
            &b""[..],
            b"01",
            b"+1",
            b"-1",
            b"1_000",
            b" 1",
            b"9223372036854775808",
            b"99999999999999999999",
        ] {
            assert_eq!(decimal(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
