//! The attestation agent (issue 10, docs/attestation.md): runs in the booted OS package, makes
//! the boot's service keys in RAM, extends their binding into PCR 15, answers attestation
//! requests with a TPM quote, the event logs and the descriptor stboot handed over, and starts
//! the service only after an authorised go-ahead.
//!
//! The request handling ([`agent`]) is independent of sockets and the TPM device, so it is
//! tested with a fake; [`tpm`] is the device, [`serve`] the TLS listener, [`run`] the start-up.

pub mod agent;
pub mod binding;
pub mod http;
pub mod keys;
pub mod run;
pub mod serve;
pub mod tpm;
