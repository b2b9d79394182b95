#![no_main]
//! DHCP replies come from the network before anything is verified: parse and lease.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    st_host::net::fuzz_dhcp_reply(data);
});
