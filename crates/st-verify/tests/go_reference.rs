//! The Go reference's own vectors get the reference's signature verdicts (found / valid).
//! The archive-structure half of the verdicts is checked through `stmgr ospkg verify`.

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
    let expected: serde_json_lite::Cases =
        serde_json_lite::parse(&std::fs::read_to_string(dir.join("expected.json")).unwrap());
    let roots =
        SigningRoots::from_pem(&std::fs::read(dir.join("keys/root.cert.pem")).unwrap()).unwrap();
    assert!(!expected.is_empty());
    for case in expected {
        let json = std::fs::read(dir.join(format!("cases/{}.json", case.name))).unwrap();
        let zip = std::fs::read(dir.join(format!("cases/{}.zip", case.name))).unwrap();
        let descriptor = match Descriptor::from_json(&json) {
            Ok(d) => d,
            Err(e) => {
                // 14 (truncated JSON) and 16 (signatures without certificates) stop here.
                assert!(
                    case.found.is_none(),
                    "{}: unexpected parse error {e}",
                    case.name
                );
                assert_eq!(case.expected, "reject", "{}", case.name);
                continue;
            }
        };
        let threshold = Threshold::AtLeast(SignatureThreshold::new(case.threshold).unwrap());
        let report = check_signatures(
            &descriptor,
            &ArchiveDigest::of(&zip),
            &roots,
            threshold,
            NOW,
        );
        assert_eq!(Some(report.found()), case.found, "{}: {report}", case.name);
        assert_eq!(Some(report.valid()), case.valid, "{}: {report}", case.name);
        let met = report.threshold_met();
        match case.stage.as_deref() {
            Some("threshold") => assert!(!met, "{}", case.name),
            _ => assert!(met, "{}: {report}", case.name),
        }
    }
}

/// Tiny reader for expected.json without pulling serde into this crate's dev-deps.
mod serde_json_lite {
    pub struct Case {
        pub name: String,
        pub threshold: u32,
        pub expected: String,
        pub stage: Option<String>,
        pub found: Option<usize>,
        pub valid: Option<usize>,
    }
    pub type Cases = Vec<Case>;

    fn field<'a>(obj: &'a str, key: &str) -> Option<&'a str> {
        let start = obj.find(&format!("\"{key}\":"))? + key.len() + 3;
        let rest = obj[start..].trim_start();
        let end = rest.find([',', '\n', '}']).unwrap_or(rest.len());
        Some(rest[..end].trim().trim_matches('"'))
    }

    pub fn parse(text: &str) -> Cases {
        let cases = &text[text.find("\"cases\"").unwrap()..];
        cases
            .split('{')
            .skip(1)
            .map(|obj| Case {
                name: field(obj, "name").unwrap().to_string(),
                threshold: field(obj, "threshold").unwrap().parse().unwrap(),
                expected: field(obj, "expected").unwrap().to_string(),
                stage: field(obj, "stage").map(str::to_string),
                found: field(obj, "found").map(|v| v.parse().unwrap()),
                valid: field(obj, "valid").map(|v| v.parse().unwrap()),
            })
            .collect()
    }
}
