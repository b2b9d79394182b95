//! Both entry points of the acceptance path (`verify` over a random-access source, and
//! `verify_hashed` over a buffer hashed as it arrived) give every scenario vector its expected
//! verdict at its expected stage.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use st_format::Descriptor;
use st_format::archive::ArchiveLimits;
use st_verify::{HashedArchive, TrustDir, UnixTime, VerifyError};
use std::path::PathBuf;

fn stage(result: &Result<st_verify::Verdict, VerifyError>) -> Option<&'static str> {
    match result {
        Ok(_) => None,
        Err(VerifyError::ThresholdNotMet { .. }) => Some("threshold"),
        Err(VerifyError::Archive { .. }) => Some("archive"),
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn both_entry_points_agree_with_the_expected_verdicts() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vectors");
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let now = UnixTime::parse_rfc3339(expected["time"].as_str().unwrap()).unwrap();
    let limits = ArchiveLimits::default();
    let mut checked = 0;
    for case in expected["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let policy_dir = dir.join("trust").join(case["policy"].as_str().unwrap());
        let trust = TrustDir::load(|name, _| match std::fs::read(policy_dir.join(name)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        })
        .unwrap();
        let p = trust.verify_policy(now, &limits);
        let case_dir = dir.join("cases").join(name);
        let Ok(descriptor) =
            Descriptor::from_json(&std::fs::read(case_dir.join("ospkg.json")).unwrap())
        else {
            assert_eq!(case["stage"], "descriptor", "{name}");
            continue;
        };
        let zip = std::fs::read(case_dir.join("ospkg.zip")).unwrap();
        let streamed = st_verify::verify(&descriptor, zip.as_slice(), &p, &|_| {});
        // stboot's path: verify, then extract both entries (which checks their contents).
        let archive = HashedArchive::new(zip.clone());
        let hashed = st_verify::verify_hashed(&descriptor, archive, &p).and_then(|v| {
            let contents = v
                .extract_kernel(&mut std::io::sink())
                .and_then(|_| v.extract_initramfs(&mut std::io::sink()));
            match contents {
                Ok(_) => Ok(v.into_verdict()),
                Err(error) => Err(VerifyError::Archive {
                    report: Box::new(v.report().clone()),
                    error,
                }),
            }
        });
        assert_eq!(stage(&streamed), case["stage"].as_str(), "{name} (verify)");
        assert_eq!(
            stage(&hashed),
            case["stage"].as_str(),
            "{name} (verify_hashed)"
        );
        if let (Ok(a), Ok(b)) = (&streamed, &hashed) {
            assert_eq!(a.report(), b.report(), "{name}");
            assert_eq!(a.digest(), b.digest(), "{name}");
            assert_eq!(a.layout().manifest(), b.layout().manifest(), "{name}");
        }
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} cases reached verification");
}
