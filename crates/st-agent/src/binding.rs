//! The binding statement and the quote's qualifying data are the verifier's definitions
//! (`st_attest`), so the agent writes exactly what the verifier reads.

pub use st_attest::binding::{BINDING_PCR, Binding};

/// SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, data).as_ref());
    out
}

/// The quote's qualifying data: `SHA-256("st-attest-v1\0" || nonce || secret ||
/// SHA-256(binding statement))`.
pub fn qualifying_data(nonce: &[u8], secret: &[u8], binding: &Binding) -> [u8; 32] {
    st_attest::qualifying_data(nonce, secret, binding.statement().as_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_input_changes_the_qualifying_data() {
        let b = Binding {
            ak_name: vec![0x00, 0x0b, 0xaa],
            wireguard: [1; 32],
            tls_spki_sha256: [2; 32],
        };
        let mut other = b.clone();
        other.wireguard = [3; 32];
        let q = qualifying_data(b"n", b"s", &b);
        assert_ne!(q, qualifying_data(b"m", b"s", &b));
        assert_ne!(q, qualifying_data(b"n", b"t", &b));
        assert_ne!(q, qualifying_data(b"n", b"s", &other));
        assert_eq!(b.digest(), sha256(b.statement().as_bytes()));
    }
}
