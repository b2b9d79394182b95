//! `stattest`: a third party's check of a System Transparency server (issue 10,
//! docs/attestation.md). The verification itself is the pure `st-attest` crate; this crate
//! talks to the agent.

pub mod check;
pub mod client;
