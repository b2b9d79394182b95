#![no_main]
//! Kernel netlink replies: message framing, link info, error messages.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    st_host::net::fuzz_netlink(data);
});
