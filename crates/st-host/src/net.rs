//! STUB: filled in by the net work.
#![allow(missing_docs)]
use std::time::Duration;
#[derive(Default)]
pub struct NetOptions {
    pub carrier_timeout: Duration,
}
pub struct NetSummary {
    pub interface: String,
    pub address: std::net::IpAddr,
    pub prefix: u8,
    pub gateway: Option<std::net::IpAddr>,
    pub dns: Vec<std::net::IpAddr>,
    pub mode: &'static str,
}
pub fn configure(_: &st_format::HostConfig, _: &NetOptions) -> Result<NetSummary, String> {
    Err("stub".into())
}
