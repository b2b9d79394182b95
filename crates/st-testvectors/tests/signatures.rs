//! Every case whose verdict falls at the descriptor or signature stage (and every accepted
//! case) gets that verdict from st-format/st-verify; archive-stage cases pass the signature
//! stage (found 1, valid 1).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use st_format::Descriptor;
use st_format::archive::ArchiveLimits;
use st_testvectors::Expected;
use st_verify::{ArchiveDigest, TrustDir, UnixTime, check_policy_signatures};

#[test]
fn signature_stage_verdicts_match_expected_json() {
    let files = st_testvectors::files().unwrap();
    let expected: Expected = serde_json::from_slice(&files["expected.json"]).unwrap();
    let now = UnixTime::parse_rfc3339(&expected.time).unwrap();
    assert!(!expected.cases.is_empty());
    for c in &expected.cases {
        let name = &c.name;
        let policy = format!("trust/{}", c.policy);
        let trust = TrustDir::load(|name, _| {
            Ok::<_, std::io::Error>(files.get(&format!("{policy}/{name}")).cloned())
        })
        .unwrap();
        let limits = ArchiveLimits::default();
        let zip = &files[&format!("cases/{name}/ospkg.zip")];
        let json = &files[&format!("cases/{name}/ospkg.json")];
        let parsed = Descriptor::from_json(json);
        if c.stage.as_deref() == Some("descriptor") {
            let err = parsed.expect_err(name).to_string();
            if let Some(reason) = &c.reason {
                assert!(
                    err.contains(reason.as_str()),
                    "{name}: {err:?} lacks {reason:?}"
                );
            }
            continue;
        }
        let d = parsed.unwrap_or_else(|e| panic!("{name}: descriptor rejected: {e}"));
        let report = check_policy_signatures(
            &d,
            &ArchiveDigest::of(zip),
            &trust.verify_policy(now, &limits),
        );
        let text = report.to_string();
        assert_eq!(
            Some(report.found() as u32),
            c.found,
            "{name}: found\n{text}"
        );
        assert_eq!(
            Some(report.valid() as u32),
            c.valid,
            "{name}: valid\n{text}"
        );
        let threshold_stage = c.stage.as_deref() == Some("threshold");
        assert_eq!(report.threshold_met(), !threshold_stage, "{name}\n{text}");
        assert_eq!(c.expected == "accept", c.stage.is_none(), "{name}");
        if threshold_stage && let Some(reason) = &c.reason {
            assert!(
                text.contains(reason.as_str()),
                "{name}: {text:?} lacks {reason:?}"
            );
        }
    }
}

#[test]
fn names_are_unique_and_stable() {
    let a = st_testvectors::files().unwrap();
    let b = st_testvectors::files().unwrap();
    assert_eq!(a, b);
    let expected: Expected = serde_json::from_slice(&a["expected.json"]).unwrap();
    let mut names: Vec<_> = expected.cases.iter().map(|c| c.name.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), expected.cases.len());
    let readme = String::from_utf8(a["README.md"].clone()).unwrap();
    for n in &names {
        assert!(
            readme.contains(&format!("`{n}`")),
            "{n} missing from README"
        );
    }
}
