//! The real TPM behind [`AttestTpm`]: `/dev/tpmrm0` (else `/dev/tpm0`) through st-tpm. The EK
//! (the same key on every call: its certificate certifies it) and a new AK for this boot
//! (random bytes in its template) are made once at start and stay loaded while the agent runs;
//! closing the device flushes them.

use st_tpm::{AlgId, CreatedKey, Tpm};

use crate::agent::AttestTpm;

/// The agent's TPM: the device, the EK and AK, and the EK certificate if the TPM has one.
pub struct DeviceTpm {
    tpm: Tpm<st_host::tpm::Device>,
    ek: CreatedKey,
    ak: CreatedKey,
    ek_certificate: Option<Vec<u8>>,
}

impl DeviceTpm {
    /// Open the device and make the keys.
    pub fn open() -> Result<Self, String> {
        let device = st_host::tpm::Device::open()
            .map_err(|e| format!("TPM: {e}"))?
            .ok_or("no TPM (/dev/tpmrm0, /dev/tpm0): nothing to attest with")?;
        let mut tpm = Tpm::new(device);
        let ek = tpm
            .create_ek_rsa()
            .map_err(|e| format!("creating the endorsement key: {e}"))?;
        // A new AK every boot: random bytes in the template's unique field.
        let mut label = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut label)
            .map_err(|_| "no randomness for the attestation key".to_owned())?;
        let ak = tpm
            .create_ak_p256_unique(&label)
            .map_err(|e| format!("creating the attestation key: {e}"))?;
        let ek_certificate = tpm
            .ek_certificate_rsa()
            .map_err(|e| format!("reading the EK certificate: {e}"))?;
        if ek_certificate.is_none() {
            eprintln!("st-agent: the TPM has no EK certificate (NV 0x01c00002)");
        }
        Ok(Self {
            tpm,
            ek,
            ak,
            ek_certificate,
        })
    }

    /// The AK's TPM name.
    pub fn ak_name(&self) -> &[u8] {
        &self.ak.name
    }

    /// Extend `pcr` in every active bank with `H_bank(digest)` (as stboot extends its events,
    /// so the sha256 bank gets SHA-256(digest)).
    pub fn extend_binding(&mut self, pcr: u32, digest: &[u8; 32]) -> Result<(), String> {
        let banks = self
            .tpm
            .active_pcr_banks()
            .map_err(|e| format!("reading the PCR banks: {e}"))?;
        let digests: Vec<(AlgId, Vec<u8>)> = banks
            .iter()
            .filter_map(|alg| st_measure::Bank::from_alg_id(alg.0).map(|b| (*alg, b.hash(digest))))
            .collect();
        let refs: Vec<(AlgId, &[u8])> = digests.iter().map(|(a, d)| (*a, d.as_slice())).collect();
        self.tpm
            .pcr_extend(pcr, &refs)
            .map_err(|e| format!("extending PCR {pcr}: {e}"))
    }
}

impl AttestTpm for DeviceTpm {
    fn ek_public(&self) -> &[u8] {
        &self.ek.public
    }
    fn ek_certificate(&self) -> Option<&[u8]> {
        self.ek_certificate.as_deref()
    }
    fn ak_public(&self) -> &[u8] {
        &self.ak.public
    }
    fn activate_credential(
        &mut self,
        credential_blob: &[u8],
        encrypted_secret: &[u8],
    ) -> Result<Vec<u8>, String> {
        self.tpm
            .activate_credential(
                self.ak.handle,
                self.ek.handle,
                credential_blob,
                encrypted_secret,
            )
            .map_err(|e| e.to_string())
    }
    fn quote(
        &mut self,
        qualifying_data: &[u8],
        pcrs: &[u32],
    ) -> Result<(Vec<u8>, Vec<u8>), String> {
        self.tpm
            .quote(self.ak.handle, qualifying_data, pcrs)
            .map(|q| (q.attest, q.signature))
            .map_err(|e| e.to_string())
    }
    fn read_pcr(&mut self, pcr: u32) -> Result<Vec<u8>, String> {
        self.tpm
            .pcr_read(pcr, AlgId::SHA256)
            .map_err(|e| e.to_string())
    }
}
