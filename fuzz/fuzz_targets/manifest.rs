#![no_main]
//! manifest.json: parse; on success the re-serialised bytes parse to the same value.
use libfuzzer_sys::fuzz_target;
use st_format::Manifest;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::from_json(data) {
        let json = m.to_json();
        // Pretty-printing can push an input that sat just under the size cap over it.
        if json.len() <= st_format::limits::MAX_MANIFEST_BYTES {
            assert_eq!(Manifest::from_json(&json).expect("round trip"), m);
        }
    }
});
