#![no_main]
//! trust_policy.json: parse; the canonical form parses to the same value.
use libfuzzer_sys::fuzz_target;
use st_format::TrustPolicy;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = TrustPolicy::from_json(data) {
        assert_eq!(
            TrustPolicy::from_json(&p.to_canonical_json()).expect("round trip"),
            p
        );
    }
});
