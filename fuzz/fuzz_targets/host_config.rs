#![no_main]
//! Host config JSON (all legacy spellings): parse, re-serialise, re-parse.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    st_format::host_config::fuzz_host_config(data);
});
