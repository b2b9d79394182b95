//! The Go reference's own vectors get the reference's signature verdicts (found / valid).
//! The archive-structure half of the verdicts is checked through `stmgr ospkg verify`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use st_format::{Descriptor, SignatureThreshold};
use st_verify::{ArchiveDigest, SigningRoots, Threshold, UnixTime, check_signatures};
use std::path::PathBuf;

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/go-reference")
}

/// A fixed "now" inside every good certificate's validity (2020..2099).
const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);

#[test]
fn signature_verdicts_match_the_reference() {
    let dir = vectors();
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let expected = expected["cases"].as_array().unwrap();
    let roots =
        SigningRoots::from_pem(&std::fs::read(dir.join("keys/root.cert.pem")).unwrap()).unwrap();
    assert!(!expected.is_empty());
    for case in expected {
        let name = case["name"].as_str().unwrap();
        let found = case["found"].as_u64().map(|n| n as usize);
        let valid = case["valid"].as_u64().map(|n| n as usize);
        let json = std::fs::read(dir.join(format!("cases/{}.json", name))).unwrap();
        let zip = std::fs::read(dir.join(format!("cases/{}.zip", name))).unwrap();
        let descriptor = match Descriptor::from_json(&json) {
            Ok(d) => d,
            Err(e) => {
                // 14 (truncated JSON) and 16 (signatures without certificates) stop here.
                assert!(found.is_none(), "{}: unexpected parse error {e}", name);
                assert_eq!(case["expected"], "reject", "{name}");
                continue;
            }
        };
        let threshold = Threshold::AtLeast(
            SignatureThreshold::new(case["threshold"].as_u64().unwrap() as u32).unwrap(),
        );
        let report = check_signatures(
            &descriptor,
            &ArchiveDigest::of(&zip),
            &roots,
            threshold,
            NOW,
        );
        assert_eq!(Some(report.found()), found, "{}: {report}", name);
        assert_eq!(Some(report.valid()), valid, "{}: {report}", name);
        let met = report.threshold_met();
        match case["stage"].as_str() {
            Some("threshold") => assert!(!met, "{}", name),
            _ => assert!(met, "{}: {report}", name),
        }
    }
}
