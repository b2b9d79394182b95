#![no_main]
//! An OVMF variable store file (stprov offline): parse, set a variable, re-parse.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    st_format::efi_varstore::fuzz_varstore(data);
});
