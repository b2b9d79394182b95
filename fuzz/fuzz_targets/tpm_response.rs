#![no_main]
//! TPM responses come from a device stboot does not control: every response parser, and the
//! client's multi-command reads fed from a sequence of responses; the attestation commands'
//! parsers and the client's credential activation (four commands) too.
use libfuzzer_sys::fuzz_target;
use st_tpm::commands::*;
use st_tpm::keys::*;
use st_tpm::{AlgId, Tpm, Transport, TransportError};

/// Answers each command with the next chunk of the input: a u16 length, then that many bytes.
struct Replay<'a>(&'a [u8]);

impl Transport for Replay<'_> {
    fn transact(&mut self, _command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let [a, b, rest @ ..] = self.0 else {
            return Err("input exhausted".into());
        };
        let n = usize::from(u16::from_be_bytes([*a, *b])).min(rest.len());
        let (chunk, rest) = rest.split_at(n);
        self.0 = rest;
        Ok(chunk.to_vec())
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_startup(data);
    let _ = parse_get_random(data, 32);
    let _ = parse_pcr_banks(data);
    let _ = parse_active_pcr_banks(data);
    let _ = parse_tpm_properties(data);
    let _ = parse_tpm_property(data, TPM_PT_NV_BUFFER_MAX);
    let _ = parse_pcr_extend(data);
    for alg in [AlgId::SHA1, AlgId::SHA256, AlgId::SHA512, AlgId(0x4242)] {
        if let Ok(d) = parse_pcr_read(data, 12, alg) {
            assert!(alg.digest_size().is_none_or(|n| n == d.len()));
        }
    }
    if let Ok(p) = parse_nv_read_public(data, 0x0142_0001) {
        assert_eq!(p.index, 0x0142_0001);
    }
    if let Ok(d) = parse_nv_read(data, 16) {
        assert_eq!(d.len(), 16);
    }

    let mut tpm = Tpm::new(Replay(data));
    if let Ok(Some(content)) = tpm.nv_read_all(0x0142_0001) {
        assert!(content.len() <= usize::from(u16::MAX));
    }
    let mut tpm = Tpm::new(Replay(data));
    let _ = tpm.active_pcr_banks();
    let _ = tpm.pcr_read(12, AlgId::SHA256);

    for template in [Template::ek_rsa2048(), Template::ak_p256()] {
        if let Ok(k) = parse_create_primary(data, &template) {
            // The public area is the template with unique filled in, size prefix included.
            let fixed = template.public_area().len() - if k.public.len() > 300 { 258 } else { 23 };
            assert_eq!(
                k.public_area().get(..fixed),
                template.public_area().get(..fixed)
            );
            assert_eq!(k.name.len(), 34);
        }
    }
    if let Ok(o) = parse_read_public(data) {
        assert!(o.public.len() >= 2);
    }
    let _ = parse_flush_context(data);
    if let Ok(s) = parse_start_auth_session(data) {
        assert_eq!(s.handle >> 24, 0x03);
    }
    let _ = parse_policy_secret(data);
    let _ = parse_activate_credential(data);
    let nonce = [0xab; 32];
    if let Ok(q) = parse_quote(data, &nonce) {
        assert_eq!(q.attest.get(..4), Some(&[0xff, 0x54, 0x43, 0x47][..]));
    }
    let mut tpm = Tpm::new(Replay(data));
    let (id, enc) = ([0, 2, 1, 1], [0, 2, 2, 2]);
    let _ = tpm.activate_credential(0x8000_0001, 0x8000_0000, &id, &enc);
    let _ = tpm.quote(0x8000_0001, &nonce, &[0, 7, 15]);
});
