//! The attestation agent (issue 10, docs/attestation.md): runs in the booted OS package, makes
//! the boot's service keys in RAM, extends their binding into PCR 15, and answers attestation
//! requests with a TPM quote, the event logs and the descriptor stboot handed over.
//!
//! The request handling ([`agent`]) is independent of sockets and the TPM device, so it is
//! tested with a fake; the binary wires it to `/dev/tpmrm0` and a TLS listener.

pub mod agent;
pub mod binding;
pub mod http;
pub mod keys;
pub mod serve;
