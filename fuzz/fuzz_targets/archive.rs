#![no_main]
//! Zip archive: index, OS package layout, and decompression of every entry.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    st_format::archive::fuzz_archive(data);
});
