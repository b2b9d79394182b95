//! The C2SP CCTV age test vectors (`testdata/cctv`, see its README) against st-age.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;

use ring::digest::{SHA256, digest};
use st_age::{AgeError, Decryptor, Identities, Identity, KeyError, Truncation, is_armored};

fn open_released(ids: &Identities, file: &[u8]) -> (Vec<u8>, Result<(), AgeError>) {
    let mut out = Vec::new();
    let mut d = Decryptor::new(ids, &mut out);
    let _ = d.write_all(file);
    let r = d.finish().map(|_| ());
    (out, r)
}

fn open_bytewise(ids: &Identities, file: &[u8]) -> Result<Vec<u8>, AgeError> {
    let mut d = Decryptor::new(ids, Vec::new());
    for b in file {
        if d.write(std::slice::from_ref(b)).is_err() {
            break;
        }
    }
    d.finish()
}

struct Vector {
    name: String,
    expect: String,
    payload: Option<String>,
    identities: Vec<String>,
    passphrase: bool,
    armored: bool,
    file: Vec<u8>,
}

fn vectors() -> Vec<Vector> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cctv");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "README.md" {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let split = bytes.windows(2).position(|w| w == b"\n\n").unwrap();
        let head = std::str::from_utf8(&bytes[..split]).unwrap();
        let mut v = Vector {
            name,
            expect: String::new(),
            payload: None,
            identities: vec![],
            passphrase: false,
            armored: false,
            file: bytes[split + 2..].to_vec(),
        };
        let mut compressed = false;
        for line in head.lines() {
            let (k, val) = line.split_once(": ").unwrap();
            match k {
                "expect" => v.expect = val.to_owned(),
                "payload" => v.payload = Some(val.to_owned()),
                "identity" => v.identities.push(val.to_owned()),
                "passphrase" => v.passphrase = true,
                "armored" => v.armored = val == "yes",
                "compressed" => compressed = val == "zlib",
                _ => {}
            }
        }
        if compressed {
            let mut plain = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::ZlibDecoder::new(&v.file[..]),
                &mut plain,
            )
            .unwrap();
            v.file = plain;
        }
        out.push(v);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn cctv_vectors() {
    let all = vectors();
    assert!(all.len() > 140, "{} vectors", all.len());
    let (mut decrypted, mut refused) = (0, 0);
    for v in &all {
        let x25519: Vec<Identity> = v
            .identities
            .iter()
            .filter_map(|s| Identity::parse(s).ok())
            .collect();
        for s in &v.identities {
            if s.starts_with("AGE-SECRET-KEY-PQ-") {
                assert_eq!(
                    Identity::parse(s).unwrap_err(),
                    KeyError::PostQuantum,
                    "{}",
                    v.name
                );
            }
        }
        let only_pq = x25519.is_empty() && !v.identities.is_empty();
        let ids = if x25519.is_empty() {
            Identities::new(vec![Identity::generate(&mut |b: &mut [u8]| b.fill(7))]).unwrap()
        } else {
            Identities::new(x25519).unwrap()
        };
        let (released, r) = open_released(&ids, &v.file);
        let name = &v.name;
        if v.armored {
            assert!(r.is_err(), "{name}: armor is refused");
            if is_armored(&v.file) {
                assert_eq!(r, Err(AgeError::Armored), "{name}");
            }
            refused += 1;
            continue;
        }
        if v.passphrase {
            assert!(
                matches!(
                    r,
                    Err(AgeError::PassphraseNotSupported | AgeError::MalformedHeader { .. })
                ) || (v.expect == "no match"
                    && matches!(r, Err(AgeError::NoIdentityMatches { .. }))),
                "{name}: {r:?}"
            );
            refused += 1;
            continue;
        }
        if only_pq {
            // Post-quantum stanzas are skipped: nothing of ours matches, or the header is bad.
            assert!(r.is_err(), "{name}");
            refused += 1;
            continue;
        }
        let hash = hex(digest(&SHA256, &released).as_ref());
        match v.expect.as_str() {
            "success" => {
                assert_eq!(r, Ok(()), "{name}");
                decrypted += 1;
            }
            "no match" => assert!(
                matches!(r, Err(AgeError::NoIdentityMatches { .. })),
                "{name}: {r:?}"
            ),
            "HMAC failure" => assert_eq!(r, Err(AgeError::BadHeaderMac), "{name}"),
            "header failure" => assert!(
                matches!(
                    r,
                    Err(AgeError::MalformedHeader { .. }
                        | AgeError::LowOrderShare { .. }
                        | AgeError::Truncated(Truncation::Header | Truncation::Nonce)
                        | AgeError::UnsupportedVersion(_)
                        | AgeError::NotAgeFile
                        | AgeError::Empty)
                ),
                "{name}: {r:?}"
            ),
            "payload failure" => assert!(
                matches!(
                    r,
                    Err(AgeError::ChunkAuthentication { .. }
                        | AgeError::TrailingData { .. }
                        | AgeError::Truncated(Truncation::Payload { .. })
                        | AgeError::EmptyLastChunk { .. })
                ),
                "{name}: {r:?}"
            ),
            other => panic!("{name}: unknown expectation {other}"),
        }
        if let Some(p) = &v.payload {
            assert_eq!(&hash, p, "{name}: released plaintext");
        } else {
            assert!(
                released.is_empty(),
                "{name}: released plaintext without a payload hash"
            );
        }
        if v.file.len() < 100_000 {
            let bytewise = open_bytewise(&ids, &v.file);
            assert_eq!(bytewise.is_ok(), r.is_ok(), "{name}: byte-at-a-time");
        }
    }
    // 14 X25519 successes; the other 4 need a post-quantum identity.
    assert!(
        decrypted == 14 && refused > 40,
        "{decrypted} decrypted, {refused} refused"
    );
}
