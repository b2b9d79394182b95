#![no_main]
//! Descriptor JSON: parse; on success the re-serialised bytes parse to the same value.
use libfuzzer_sys::fuzz_target;
use st_format::Descriptor;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = Descriptor::from_json(data) {
        let json = d.to_json();
        // Pretty-printing can push an input that sat just under the size cap over it.
        if json.len() > st_format::limits::MAX_DESCRIPTOR_BYTES {
            return;
        }
        let again = Descriptor::from_json(&json).expect("re-serialised descriptor parses");
        assert_eq!(d, again);
    }
});
