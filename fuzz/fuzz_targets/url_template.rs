#![no_main]
//! `$ID`/`$AUTH` URL templates.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    st_format::url_template::fuzz_url_template(data);
});
