//! The binding statement: the boot's service keys and its attestation key, in the text form
//! that is measured into the binding PCR and covered by every quote (docs/attestation.md).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// The PCR the agent extends with the binding statement.
pub const BINDING_PCR: u32 = 15;

/// What one boot of the agent is: made once at start, never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The attestation key's TPM name (nameAlg || digest).
    pub ak_name: Vec<u8>,
    /// The service's WireGuard (X25519) public key.
    pub wireguard: [u8; 32],
    /// SHA-256 of the DER SubjectPublicKeyInfo of the agent's TLS key.
    pub tls_spki_sha256: [u8; 32],
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Binding {
    /// The statement's bytes: four lines, each ending in `\n`.
    pub fn statement(&self) -> String {
        format!(
            "st-attest-binding-v1\nak-name {}\nwireguard {}\ntls-spki-sha256 {}\n",
            hex(&self.ak_name),
            B64.encode(self.wireguard),
            hex(&self.tls_spki_sha256)
        )
    }

    /// SHA-256 of the statement: what is extended into [`BINDING_PCR`] (as `H_bank(this)` in
    /// each bank) and hashed into every quote's qualifying data.
    pub fn digest(&self) -> [u8; 32] {
        sha256(self.statement().as_bytes())
    }
}

/// SHA-256.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, data).as_ref());
    out
}

/// The quote's qualifying data: `SHA-256("st-attest-v1\0" || nonce || secret ||
/// SHA-256(binding))`.
pub fn qualifying_data(nonce: &[u8], secret: &[u8], binding_digest: &[u8; 32]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"st-attest-v1\0");
    ctx.update(nonce);
    ctx.update(secret);
    ctx.update(binding_digest);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_is_four_lines_in_the_documented_form() {
        let b = Binding {
            ak_name: vec![0x00, 0x0b, 0xaa],
            wireguard: [1; 32],
            tls_spki_sha256: [2; 32],
        };
        let s = b.statement();
        let lines: Vec<&str> = s.split_terminator('\n').collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], "st-attest-binding-v1");
        assert_eq!(lines[1], "ak-name 000baa");
        assert_eq!(lines[2], format!("wireguard {}", B64.encode([1u8; 32])));
        assert_eq!(lines[3], format!("tls-spki-sha256 {}", "02".repeat(32)));
        assert!(s.ends_with('\n'));
        assert_eq!(b.digest(), sha256(s.as_bytes()));
        // Every input changes the qualifying data.
        let q = qualifying_data(b"n", b"s", &b.digest());
        assert_ne!(q, qualifying_data(b"m", b"s", &b.digest()));
        assert_ne!(q, qualifying_data(b"n", b"t", &b.digest()));
        assert_ne!(q, qualifying_data(b"n", b"s", &[0; 32]));
    }
}
