//! STUB: replaced by the host config work.
#![allow(missing_docs)]
#[derive(Debug, thiserror::Error)]
#[error("host config stub")]
pub struct HostConfigError;
pub struct HostConfig;
impl HostConfig {
    pub fn from_json(_: &[u8]) -> Result<Self, HostConfigError> {
        Err(HostConfigError)
    }
    pub fn to_json_pretty(&self) -> Vec<u8> {
        Vec::new()
    }
}
