//! STUB: replaced by the host config work.
#![allow(missing_docs)]
#[derive(Debug, thiserror::Error)]
#[error("host config stub")]
pub struct HostConfigError;
pub struct HostConfig;
