//! Remote attestation, the verifier side (issue 10, `docs/attestation.md`).
//!
//! A verifier asks the agent in a booted System Transparency OS for its keys ([`Keys`]), makes
//! a credential for the AK under the EK ([`challenge`], software `TPM2_MakeCredential`), and
//! gets back an [`Attestation`]: a TPM quote over PCRs 0-7 and 12-15, the event logs, the
//! descriptor and the binding of the service keys. [`verify()`] decides it against the
//! [`Expectations`] (the nonce and secret sent, the TPM vendor CAs, the trust policy, and
//! optionally a Sigsum policy, a release list and the service key the client is about to
//! use) and explains the result: a [`Verdict`] with its one-line summary and reasons, or the
//! first [`Refusal`], naming what did not match.
//!
//! ```text
//! EK certificate -> vendor CA; EK certificate key == ek_public
//! AK: restricted, sign, fixedTPM, fixedParent, sensitiveDataOrigin; quote signed by it
//! extraData == SHA-256("st-attest-v1\0" || nonce || secret || SHA-256(binding))
//!     (fresh; only the EK's TPM could recover secret, and only for this AK's name)
//! pcrDigest == H(PCR values given), exactly the selected sha256 PCRs (12-15 required)
//! firmware log replays to PCRs 0-7 (or they are reported unchecked)
//! stboot's log replays to PCRs 12-14, and is stboot's layout, in order
//! PCR 15 == the binding statement extended once
//! descriptor and archive are PCR 12's; PCR 13 is the expected trust policy
//! the descriptor's signatures meet the threshold over the archive's SHA-256
//! [Sigsum-logged under the given policy] [on the release list] [service key bound]
//! ```
//!
//! No network, filesystem or clock: every input is passed in, time included.

#![forbid(unsafe_code)]

pub mod binding;
pub mod credential;
pub mod ekcert;
pub mod message;
pub mod tpm;
mod verify;

pub use binding::{BINDING_PCR, Binding, BindingError, ReleaseList, ServiceKey};
pub use credential::{Credential, CredentialError, CredentialRandomness, make_credential};
pub use ekcert::{CaError, VendorCas};
pub use message::{Attestation, ChallengeError, Keys, MessageError, QuoteRequest, challenge};
pub use st_verify::UnixTime;
pub use verify::{
    AK_REQUIRED, Expectations, FIRMWARE_PCRS, FirmwarePcrs, LoggedAt, REQUIRED_PCRS, Refusal,
    TrustExpectation, Verdict, binding_pcr, qualifying_data, verify,
};
