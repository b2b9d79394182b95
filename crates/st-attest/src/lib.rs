//! Remote attestation, the verifier side (issue 10, `docs/attestation.md`). Work in progress.
#![forbid(unsafe_code)]
