//! Round trips, boundaries, every rejection (attack-named), and the C2SP CCTV vectors.

use std::io::Write;

use ring::digest::{SHA256, digest};

use super::*;

/// A deterministic "random" source: SHA-256 of a seed and a counter. Its first 16 bytes are
/// the file key of the first file encrypted with it.
fn rng(seed: u8) -> impl FnMut(&mut [u8]) {
    let mut counter = 0u64;
    move |buf: &mut [u8]| {
        for chunk in buf.chunks_mut(32) {
            counter += 1;
            let mut input = vec![seed];
            input.extend_from_slice(&counter.to_be_bytes());
            chunk.copy_from_slice(&digest(&SHA256, &input).as_ref()[..chunk.len()]);
        }
    }
}

fn file_key_of(seed: u8) -> [u8; 16] {
    let mut k = [0u8; 16];
    rng(seed)(&mut k);
    k
}

fn identity(seed: u8) -> Identity {
    Identity::generate(&mut rng(seed.wrapping_add(100)))
}

fn ids(list: &[&Identity]) -> Identities {
    Identities::new(list.iter().map(|i| (*i).clone()).collect()).unwrap()
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 65536) as u8)
        .collect()
}

fn seal(to: &[&Identity], data: &[u8], seed: u8) -> Vec<u8> {
    let recipients: Vec<Recipient> = to.iter().map(|i| *i.recipient()).collect();
    encrypt(&recipients, data, Vec::new(), &mut rng(seed)).unwrap()
}

fn open(ids: &Identities, file: &[u8]) -> Result<Vec<u8>, AgeError> {
    let mut d = Decryptor::new(ids, Vec::new());
    let _ = d.write_all(file);
    d.finish()
}

/// Decrypts, and returns the plaintext released before the outcome too.
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

/// Where the header's `---` ends, and where the payload nonce starts.
fn header_split(file: &[u8]) -> (usize, usize) {
    let dashes = file.windows(4).position(|w| w == b"\n---").unwrap() + 4;
    let nl = dashes + file[dashes..].iter().position(|&b| b == b'\n').unwrap() + 1;
    (dashes, nl)
}

/// The file with its header (up to `---`) replaced by `head` and the MAC made with `key`.
fn remac(head: &[u8], key: &[u8; 16], rest: &[u8]) -> Vec<u8> {
    let mac_key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        header::hkdf32(key, b"", b"header").as_slice(),
    );
    let tag = ring::hmac::sign(&mac_key, head);
    let mut out = head.to_vec();
    out.push(b' ');
    out.extend_from_slice(header::b64_encode(tag.as_ref()).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(rest);
    out
}

/// `file` with `stanza` (text with its LFs) inserted before the MAC line, re-MACed.
fn with_stanza(file: &[u8], seed: u8, stanza: &str) -> Vec<u8> {
    let (dashes, nl) = header_split(file);
    let mut head = file[..dashes - 3].to_vec();
    head.extend_from_slice(stanza.as_bytes());
    head.extend_from_slice(b"---");
    remac(&head, &file_key_of(seed), &file[nl..])
}

// ---- keys

const SPEC_IDENTITY: &str =
    "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
const SPEC_RECIPIENT: &str = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";

#[test]
fn spec_identity_gives_spec_recipient() {
    let id = Identity::parse(SPEC_IDENTITY).unwrap();
    assert_eq!(id.recipient().to_string(), SPEC_RECIPIENT);
    assert_eq!(Recipient::parse(SPEC_RECIPIENT).unwrap(), *id.recipient());
    assert_eq!(id.to_secret_string().as_str(), SPEC_IDENTITY);
}

#[test]
fn debug_never_shows_the_secret() {
    let id = Identity::parse(SPEC_IDENTITY).unwrap();
    let all = Identities::new(vec![id.clone()]).unwrap();
    for s in [format!("{id:?}"), format!("{all:?}")] {
        assert!(s.contains(SPEC_RECIPIENT), "{s}");
        assert!(!s.to_ascii_uppercase().contains("AGE-SECRET-KEY"), "{s}");
        assert!(!s.contains("GFPYYSJZ"), "{s}");
    }
}

#[test]
fn identities_file_with_comments_blank_lines_and_crlf() {
    let a = identity(1);
    let b = identity(2);
    let text = format!(
        "# created: 2026-01-01T00:00:00Z\n# public key: {}\n{}\n\n# second\r\n{}\r\n",
        a.recipient(),
        a.to_secret_string().as_str(),
        b.to_secret_string().as_str()
    );
    let parsed = Identities::parse(text.as_bytes()).unwrap();
    assert_eq!(parsed.len(), 2);
    let r: Vec<_> = parsed.recipients().copied().collect();
    assert_eq!(r, vec![*a.recipient(), *b.recipient()]);
}

#[test]
fn attack_identities_file_errors_name_the_line_not_the_secret() {
    let good = identity(1).to_secret_string();
    let mut bad = good.to_string();
    bad.replace_range(20..21, if &bad[20..21] == "Q" { "P" } else { "Q" });
    let text = format!("# c\n{}\n{bad}\n", good.as_str());
    let err = Identities::parse(text.as_bytes()).unwrap_err();
    assert!(
        matches!(
            err,
            KeyFileError::Key {
                line: 3,
                error: KeyError::Bech32(Bech32Error::Checksum)
            }
        ),
        "{err:?}"
    );
    assert!(!err.to_string().contains(&bad[16..]), "{err}");
    assert!(err.to_string().starts_with("line 3: "), "{err}");
}

#[test]
fn attack_identities_file_rejections() {
    assert_eq!(Identities::parse(b"").unwrap_err(), KeyFileError::Empty);
    assert_eq!(
        Identities::parse(b"# only a comment\n\n").unwrap_err(),
        KeyFileError::Empty
    );
    assert_eq!(
        Identities::parse(b"\xff\xfe\n").unwrap_err(),
        KeyFileError::NotUtf8 { line: 1 }
    );
    let lower = identity(3).to_secret_string().to_ascii_lowercase();
    assert!(matches!(
        Identities::parse(lower.as_bytes()).unwrap_err(),
        KeyFileError::Key {
            line: 1,
            error: KeyError::WrongType { .. }
        }
    ));
    let pq = "AGE-SECRET-KEY-PQ-1HZLGZUPT4ETPKDEV8HSGFDCYZ4E522W0A7PU2LHT8EH9W6YLNC3SW78XKG";
    assert_eq!(
        Identities::parse(pq.as_bytes()).unwrap_err(),
        KeyFileError::Key {
            line: 1,
            error: KeyError::PostQuantum
        }
    );
    let spaced = format!(" {}", identity(3).to_secret_string().as_str());
    assert!(matches!(
        Identities::parse(spaced.as_bytes()),
        Err(KeyFileError::Key { line: 1, .. })
    ));
    let many: String = (0..=MAX_IDENTITIES as u8)
        .map(|i| format!("{}\n", identity(i).to_secret_string().as_str()))
        .collect();
    assert_eq!(
        Identities::parse(many.as_bytes()).unwrap_err(),
        KeyFileError::TooMany {
            max: MAX_IDENTITIES
        }
    );
    assert!(matches!(
        Identities::parse(&vec![b'#'; MAX_KEY_FILE + 1]).unwrap_err(),
        KeyFileError::TooLarge { .. }
    ));
    // A recipient where an identity belongs.
    assert!(matches!(
        Identities::parse(SPEC_RECIPIENT.as_bytes()).unwrap_err(),
        KeyFileError::Key {
            line: 1,
            error: KeyError::WrongType { .. }
        }
    ));
}

#[test]
fn attack_recipient_rejections() {
    assert!(matches!(
        Recipient::parse(&SPEC_RECIPIENT.to_ascii_uppercase()),
        Err(KeyError::WrongType { .. })
    ));
    assert_eq!(
        Recipient::parse("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"),
        Err(KeyError::Ssh)
    );
    let pq = bech32::encode("age1pq", &[1; 1216], false);
    assert_eq!(Recipient::parse(&pq), Err(KeyError::PostQuantum));
    let plugin = bech32::encode("age1yubikey", &[1; 33], false);
    assert_eq!(Recipient::parse(&plugin), Err(KeyError::Plugin));
    let short = bech32::encode("age", &[1; 31], false);
    assert_eq!(Recipient::parse(&short), Err(KeyError::Length(31)));
    assert!(matches!(
        Recipient::parse(SPEC_IDENTITY),
        Err(KeyError::WrongType { .. })
    ));
}

#[test]
fn recipients_file() {
    let a = *identity(1).recipient();
    let b = *identity(2).recipient();
    let text = format!("# ops\n{a}\n\n{b}\n");
    assert_eq!(parse_recipients(text.as_bytes()).unwrap(), vec![a, b]);
    let bad = format!("{a}\nssh-ed25519 AAAA x@y\n");
    assert_eq!(
        parse_recipients(bad.as_bytes()).unwrap_err(),
        KeyFileError::Key {
            line: 2,
            error: KeyError::Ssh
        }
    );
    assert_eq!(parse_recipients(b"#\n").unwrap_err(), KeyFileError::Empty);
}

// ---- round trips and boundaries

#[test]
fn round_trip_at_chunk_boundaries() {
    let id = identity(1);
    let all = ids(&[&id]);
    for len in [
        0,
        1,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        2 * CHUNK,
        3 * CHUNK,
        3 * CHUNK + 7,
    ] {
        let data = plaintext(len);
        let file = seal(&[&id], &data, 9);
        let chunks = if len == 0 { 1 } else { len.div_ceil(CHUNK) };
        let (_, nl) = header_split(&file);
        assert_eq!(file.len(), nl + 16 + len + 16 * chunks, "len {len}");
        assert_eq!(open(&all, &file).unwrap(), data, "len {len}");
        assert_eq!(decrypt_to_vec(&all, &file, len).unwrap(), data, "len {len}");
        // The size a Content-Length predicts, once the header is in.
        let mut d = Decryptor::new(&all, Vec::new());
        d.write_all(&file[..nl]).unwrap();
        assert!(d.header_done());
        assert_eq!(
            d.plaintext_len(file.len() as u64),
            Some(len as u64),
            "len {len}"
        );
        let base = (nl + 16) as u64;
        assert_eq!(d.plaintext_len(base + 16), Some(0));
        assert_eq!(d.plaintext_len(base + 5), None, "shorter than a tag");
        assert_eq!(
            d.plaintext_len(base + (CHUNK + 16 + 10) as u64),
            None,
            "second chunk shorter than a tag"
        );
        assert_eq!(d.plaintext_len(base - 1), None);
    }
}

#[test]
fn byte_at_a_time_and_odd_splits_give_the_same_plaintext() {
    let id = identity(1);
    let all = ids(&[&id]);
    for len in [0, 5, CHUNK, 2 * CHUNK + 3] {
        let data = plaintext(len);
        let file = seal(&[&id], &data, 4);
        assert_eq!(open_bytewise(&all, &file).unwrap(), data, "len {len}");
        let mut d = Decryptor::new(&all, Vec::new());
        for piece in file.chunks(7919) {
            d.write_all(piece).unwrap();
        }
        assert_eq!(d.finish().unwrap(), data);
        // The encryptor too: byte-at-a-time writes give the same file as one write.
        let r = [*id.recipient()];
        let mut e = Encryptor::new(&r, Vec::new(), &mut rng(4)).unwrap();
        for b in &data {
            e.write_all(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!(e.finish().unwrap(), file, "len {len}");
    }
}

#[test]
fn plaintext_is_released_chunk_by_chunk() {
    let id = identity(1);
    let all = ids(&[&id]);
    let data = plaintext(3 * CHUNK);
    let file = seal(&[&id], &data, 2);
    let (_, nl) = header_split(&file);
    let mut out = Vec::new();
    let mut d = Decryptor::new(&all, &mut out);
    // A whole first chunk is not released until a byte of the next one shows it is not final.
    d.write_all(&file[..nl + 16 + CHUNK + 16]).unwrap();
    assert_eq!(d.get_ref().len(), 0);
    d.write_all(&file[nl + 16 + CHUNK + 16..][..1]).unwrap();
    assert_eq!(d.get_ref().len(), CHUNK);
    d.write_all(&file[nl + 16 + CHUNK + 17..]).unwrap();
    assert_eq!(d.get_ref().len(), 2 * CHUNK);
    d.finish().unwrap();
    assert_eq!(out, data);
}

#[test]
fn several_identities_and_several_recipients() {
    let (a, b, c) = (identity(1), identity(2), identity(3));
    let data = plaintext(1000);
    let file = seal(&[&a, &b], &data, 5);
    for who in [ids(&[&a]), ids(&[&b]), ids(&[&c, &b]), ids(&[&c, &a, &b])] {
        assert_eq!(open(&who, &file).unwrap(), data, "{who:?}");
    }
    assert_eq!(
        open(&ids(&[&c]), &file).unwrap_err(),
        AgeError::NoIdentityMatches {
            identities: 1,
            x25519_stanzas: 2,
            other_types: vec![]
        }
    );
}

#[test]
fn unknown_stanzas_are_skipped() {
    let id = identity(1);
    let data = plaintext(100);
    let file = seal(&[&id], &data, 6);
    let grease = with_stanza(
        &file,
        6,
        "-> grease-1 a b\nAAAA\n-> mlkem768x25519 Zm9v\n\n",
    );
    assert_eq!(open(&ids(&[&id]), &grease).unwrap(), data);
    let err = open(&ids(&[&identity(2)]), &grease).unwrap_err();
    assert_eq!(
        err,
        AgeError::NoIdentityMatches {
            identities: 1,
            x25519_stanzas: 1,
            other_types: vec!["grease-1".into(), "mlkem768x25519".into()]
        }
    );
    assert!(
        err.to_string()
            .contains("1 identities tried against 1 X25519 stanzas"),
        "{err}"
    );
}

#[test]
fn encryptor_refuses_no_and_low_order_recipients() {
    assert!(matches!(
        encrypt(&[], &b"x"[..], Vec::new(), &mut rng(1)),
        Err(EncryptError::NoRecipients)
    ));
    // The identity point (0) is of low order.
    let zero = Recipient::parse(&bech32::encode("age", &[0; 32], false)).unwrap();
    assert!(matches!(
        encrypt(&[zero], &b"x"[..], Vec::new(), &mut rng(1)),
        Err(EncryptError::LowOrderRecipient(_))
    ));
}

#[test]
fn detection() {
    let file = seal(&[&identity(1)], b"{}", 1);
    assert!(is_encrypted(&file));
    assert!(is_encrypted(&file[..22]));
    assert!(!is_encrypted(&file[..21]));
    assert!(!is_encrypted(b"{\"os_pkg_url\": 1}"));
    assert!(!is_encrypted(b"PK\x03\x04"));
    assert!(is_armored(b"\n -----BEGIN AGE ENCRYPTED FILE-----\n"));
    assert!(!is_armored(&file));
}

// ---- rejections

fn one() -> (Identity, Identities) {
    let id = identity(1);
    let all = ids(&[&id]);
    (id, all)
}

#[test]
fn attack_wrong_identity() {
    let (id, _) = one();
    let file = seal(&[&id], b"secret", 1);
    let err = open(&ids(&[&identity(7), &identity(8)]), &file).unwrap_err();
    assert_eq!(
        err,
        AgeError::NoIdentityMatches {
            identities: 2,
            x25519_stanzas: 1,
            other_types: vec![]
        }
    );
}

#[test]
fn attack_plaintext_and_foreign_inputs() {
    let (_, all) = one();
    assert_eq!(open(&all, b"").unwrap_err(), AgeError::Empty);
    assert_eq!(
        open(&all, b"{\"version\":1}").unwrap_err(),
        AgeError::NotAgeFile
    );
    assert_eq!(
        open(&all, b"PK\x03\x04\x14\x00").unwrap_err(),
        AgeError::NotAgeFile
    );
    assert_eq!(
        open_bytewise(&all, b"{\"version\":1}").unwrap_err(),
        AgeError::NotAgeFile
    );
    assert_eq!(
        open(&all, b"age-encryption.org/v2\n-> X\n\n--- x\n").unwrap_err(),
        AgeError::UnsupportedVersion("v2".into())
    );
    assert!(matches!(
        open(&all, b"age-encryption.org/v1\r\n").unwrap_err(),
        AgeError::MalformedHeader { line: 1, .. }
    ));
}

#[test]
fn attack_armored_input_is_refused() {
    let (id, all) = one();
    let file = seal(&[&id], b"secret", 1);
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &file);
    let armored =
        format!("-----BEGIN AGE ENCRYPTED FILE-----\n{b64}\n-----END AGE ENCRYPTED FILE-----\n");
    assert_eq!(
        open(&all, armored.as_bytes()).unwrap_err(),
        AgeError::Armored
    );
    assert_eq!(
        open_bytewise(&all, armored.as_bytes()).unwrap_err(),
        AgeError::Armored
    );
    assert!(AgeError::Armored.to_string().contains("armor"));
}

#[test]
fn attack_passphrase_file() {
    let (_, all) = one();
    let scrypt = b"age-encryption.org/v1\n-> scrypt ajMFur+EJLGaohv/dLRGnw 18\n8SHBz/ldWnjyGFQqfjat6uNBarWqqEMDS7W8X7+Xq5Q\n--- yp4Z0lV1LEdkm1+uDCuPUV+9hIXbPKrBXKQ/f5Y03As\n";
    let err = open(&all, scrypt).unwrap_err();
    assert_eq!(err, AgeError::PassphraseNotSupported);
    assert!(
        err.to_string()
            .contains("passphrase (scrypt) encrypted files are not supported")
    );
}

#[test]
fn attack_scrypt_stanza_beside_x25519() {
    let (id, all) = one();
    let file = seal(&[&id], b"secret", 1);
    let mixed = with_stanza(
        &file,
        1,
        "-> scrypt ajMFur+EJLGaohv/dLRGnw 18\n8SHBz/ldWnjyGFQqfjat6uNBarWqqEMDS7W8X7+Xq5Q\n",
    );
    assert_eq!(
        open(&all, &mixed).unwrap_err(),
        AgeError::MalformedHeader {
            line: 4,
            reason: "an scrypt stanza must be the only stanza"
        }
    );
}

#[test]
fn attack_header_changed_after_encryption_fails_mac() {
    let (id, all) = one();
    let file = seal(&[&id], b"secret", 1);
    // A stanza added without knowing the file key: the MAC no longer covers the header.
    let (dashes, _) = header_split(&file);
    let mut added = file[..dashes - 3].to_vec();
    added.extend_from_slice(b"-> grease\n\n");
    added.extend_from_slice(&file[dashes - 3..]);
    assert_eq!(open(&all, &added).unwrap_err(), AgeError::BadHeaderMac);
    // A MAC of the right form but wrong value.
    let mut bad = file.clone();
    bad[dashes + 5] = if bad[dashes + 5] == b'A' { b'B' } else { b'A' };
    assert!(matches!(
        open(&all, &bad).unwrap_err(),
        AgeError::BadHeaderMac | AgeError::MalformedHeader { .. }
    ));
}

#[test]
fn attack_malformed_headers() {
    let (id, all) = one();
    let file = seal(&[&id], b"secret", 1);
    let text = String::from_utf8_lossy(&file[..header_split(&file).1]).into_owned();
    let stanza_line = text.lines().nth(1).unwrap().to_owned();
    let body_line = text.lines().nth(2).unwrap().to_owned();
    let cases: Vec<(String, usize)> = vec![
        // Extra argument.
        (
            text.replace(&stanza_line, &format!("{stanza_line} extra")),
            2,
        ),
        // Padding in the share.
        (text.replace(&stanza_line, &format!("{stanza_line}=")), 2),
        // Double space: empty argument.
        (text.replace("-> X25519 ", "-> X25519  "), 2),
        // No type.
        (text.replace(&stanza_line, "-> "), 2),
        // A short share.
        (text.replace(&stanza_line, "-> X25519 AAAA"), 2),
        // Body too long for the X25519 type (two lines).
        (
            text.replace(&body_line, &format!("{}\nAAAA", "A".repeat(64))),
            2,
        ),
        // Body line over 64 columns.
        (text.replace(&body_line, &"A".repeat(68)), 3),
        // Non-canonical body base64 (last character's unused bits set).
        (
            text.replace(
                &body_line,
                &format!("{}{}", &body_line[..42], flip_bits(&body_line[42..])),
            ),
            3,
        ),
        // A line that is neither stanza nor MAC.
        (
            text.replacen(&stanza_line, &format!("garbage\n{stanza_line}"), 1),
            2,
        ),
        // MAC line without its space.
        (text.replace("--- ", "---"), 4),
        // MAC not 32 bytes.
        (text.replace("--- ", "--- AAAA"), 4),
    ];
    for (i, (header, line)) in cases.into_iter().enumerate() {
        let mut bad = header.into_bytes();
        bad.extend_from_slice(&file[header_split(&file).1..]);
        match open(&all, &bad) {
            Err(AgeError::MalformedHeader { line: l, .. }) => assert_eq!(l, line, "case {i}"),
            other => panic!("case {i}: {other:?}"),
        }
    }
}

/// Sets the low bit of a base64 character whose unused bits must be zero.
fn flip_bits(last: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let c = last.as_bytes()[0];
    let i = ALPHABET.iter().position(|&x| x == c).unwrap();
    char::from(ALPHABET[i | 1]).to_string() + &last[1..]
}

#[test]
fn attack_low_order_share() {
    let (id, all) = one();
    let file = seal(&[&id], b"secret", 1);
    let zero_share = with_stanza(
        &file,
        1,
        &format!("-> X25519 {}\n{}\n", "A".repeat(43), "A".repeat(43)),
    );
    // The malicious stanza comes after ours: our identity matches the first one... but every
    // stanza is tried with the first identity in order, so put it first to be reached.
    let (dashes, nl) = header_split(&file);
    let text = &file[..dashes - 3];
    let mut head = b"age-encryption.org/v1\n".to_vec();
    head.extend_from_slice(
        format!("-> X25519 {}\n{}\n", "A".repeat(43), "A".repeat(43)).as_bytes(),
    );
    head.extend_from_slice(&text[22..]);
    head.extend_from_slice(b"---");
    let first = remac(&head, &file_key_of(1), &file[nl..]);
    assert_eq!(
        open(&all, &first).unwrap_err(),
        AgeError::LowOrderShare { line: 2 }
    );
    // After a stanza that matches, it is not reached.
    assert_eq!(open(&all, &zero_share).unwrap(), b"secret");
}

#[test]
fn attack_header_over_cap_and_too_many_stanzas() {
    let (_, all) = one();
    let mut big = b"age-encryption.org/v1\n".to_vec();
    big.extend(std::iter::repeat_n(b'A', MAX_HEADER));
    assert_eq!(open(&all, &big).unwrap_err(), AgeError::HeaderTooLarge);
    let mut many = b"age-encryption.org/v1\n".to_vec();
    for _ in 0..=MAX_STANZAS {
        many.extend_from_slice(b"-> grease\n\n");
    }
    many.extend_from_slice(b"--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
    assert_eq!(open(&all, &many).unwrap_err(), AgeError::TooManyStanzas);
}

#[test]
fn attack_truncation_everywhere() {
    let (id, all) = one();
    let data = plaintext(2 * CHUNK + 100);
    let file = seal(&[&id], &data, 3);
    let (_, nl) = header_split(&file);
    let payload = nl + 16;
    let cases = [
        (10, AgeError::Truncated(Truncation::Header)),
        (nl - 1, AgeError::Truncated(Truncation::Header)),
        (nl, AgeError::Truncated(Truncation::Nonce)),
        (nl + 15, AgeError::Truncated(Truncation::Nonce)),
        (
            payload,
            AgeError::Truncated(Truncation::Payload { chunks: 0 }),
        ),
        (
            payload + 15,
            AgeError::Truncated(Truncation::Payload { chunks: 0 }),
        ),
        (payload + CHUNK, AgeError::ChunkAuthentication { chunk: 0 }),
        // Cut exactly after a full chunk: it authenticates as non-final.
        (
            payload + CHUNK + 16,
            AgeError::Truncated(Truncation::Payload { chunks: 1 }),
        ),
        (
            payload + 2 * (CHUNK + 16),
            AgeError::Truncated(Truncation::Payload { chunks: 2 }),
        ),
        (
            payload + 2 * (CHUNK + 16) + 10,
            AgeError::Truncated(Truncation::Payload { chunks: 2 }),
        ),
        (file.len() - 1, AgeError::ChunkAuthentication { chunk: 2 }),
    ];
    for (cut, want) in cases {
        let (released, r) = open_released(&all, &file[..cut]);
        assert_eq!(r.unwrap_err(), want, "cut at {cut}");
        // Whatever was released is a prefix of the plaintext, whole chunks only.
        assert_eq!(&data[..released.len()], &released[..], "cut at {cut}");
        assert_eq!(released.len() % CHUNK, 0, "cut at {cut}");
        if let AgeError::Truncated(Truncation::Payload { chunks }) = want {
            assert_eq!(released.len(), chunks as usize * CHUNK, "cut at {cut}");
        }
    }
}

#[test]
fn attack_tampered_chunk_releases_nothing_of_it() {
    let (id, all) = one();
    let data = plaintext(3 * CHUNK - 10);
    let file = seal(&[&id], &data, 3);
    let payload = header_split(&file).1 + 16;
    for chunk in 0..3u64 {
        let mut bad = file.clone();
        bad[payload + chunk as usize * (CHUNK + 16) + 5] ^= 1;
        let (released, r) = open_released(&all, &bad);
        assert_eq!(r.unwrap_err(), AgeError::ChunkAuthentication { chunk });
        assert_eq!(released, &data[..chunk as usize * CHUNK]);
    }
    // The tag itself.
    let mut bad = file.clone();
    *bad.last_mut().unwrap() ^= 0x80;
    assert_eq!(
        open(&all, &bad).unwrap_err(),
        AgeError::ChunkAuthentication { chunk: 2 }
    );
    // The payload nonce: the payload key changes, chunk 0 fails.
    let mut bad = file.clone();
    bad[payload - 1] ^= 1;
    assert_eq!(
        open(&all, &bad).unwrap_err(),
        AgeError::ChunkAuthentication { chunk: 0 }
    );
}

#[test]
fn attack_data_after_the_final_chunk() {
    let (id, all) = one();
    // After a short final chunk the bytes run together with it: it no longer authenticates.
    let data = plaintext(100);
    let mut file = seal(&[&id], &data, 3);
    file.extend_from_slice(b"trailing");
    let (released, r) = open_released(&all, &file);
    assert_eq!(r.unwrap_err(), AgeError::ChunkAuthentication { chunk: 0 });
    assert!(released.is_empty());
    // After a full-size final chunk they are seen as such.
    for extra in [&b"x"[..], &[0u8; 100_000][..]] {
        let data = plaintext(2 * CHUNK);
        let mut file = seal(&[&id], &data, 3);
        file.extend_from_slice(extra);
        let (released, r) = open_released(&all, &file);
        assert_eq!(r.unwrap_err(), AgeError::TrailingData { chunk: 1 });
        assert_eq!(released, data);
        assert_eq!(
            open_bytewise(&all, &file).unwrap_err(),
            AgeError::TrailingData { chunk: 1 }
        );
    }
}

/// A file whose payload is given chunk by chunk (plaintext, final flag), sealed with the
/// right key: for the chunk-structure rules the encryptor never breaks.
fn craft(id: &Identity, chunks: &[(&[u8], bool)]) -> Vec<u8> {
    let file = seal(&[id], b"", 8);
    let (_, nl) = header_split(&file);
    let mut out = file[..nl + 16].to_vec();
    let nonce: [u8; 16] = file[nl..nl + 16].try_into().unwrap();
    let key = header::aead_key(&header::hkdf32(&file_key_of(8), &nonce, b"payload")).unwrap();
    for (i, (plain, last)) in chunks.iter().enumerate() {
        let mut n = [0u8; 12];
        n[3..11].copy_from_slice(&(i as u64).to_be_bytes());
        n[11] = u8::from(*last);
        let mut buf = plain.to_vec();
        key.seal_in_place_append_tag(
            ring::aead::Nonce::assume_unique_for_key(n),
            ring::aead::Aad::empty(),
            &mut buf,
        )
        .unwrap();
        out.extend_from_slice(&buf);
    }
    out
}

#[test]
fn attack_chunk_structure_rules() {
    let (id, all) = one();
    let full = plaintext(CHUNK);
    // Sanity: the crafted form of a valid file decrypts.
    assert_eq!(
        open(&all, &craft(&id, &[(&full, false), (b"ab", true)]))
            .unwrap()
            .len(),
        CHUNK + 2
    );
    // An empty final chunk after a full one.
    assert_eq!(
        open(&all, &craft(&id, &[(&full, false), (b"", true)])).unwrap_err(),
        AgeError::EmptyLastChunk { chunk: 1 }
    );
    // A final-flagged chunk followed by another chunk.
    assert_eq!(
        open(&all, &craft(&id, &[(&full, true), (b"ab", true)])).unwrap_err(),
        AgeError::TrailingData { chunk: 0 }
    );
    // A short chunk not flagged final.
    assert_eq!(
        open(&all, &craft(&id, &[(b"ab", false)])).unwrap_err(),
        AgeError::ChunkAuthentication { chunk: 0 }
    );
    // Chunks swapped.
    let a = plaintext(CHUNK);
    let file = craft(&id, &[(&a, false), (&a, false), (b"end", true)]);
    let payload = header_split(&file).1 + 16;
    let mut swapped = file[..payload].to_vec();
    swapped.extend_from_slice(&file[payload + CHUNK + 16..payload + 2 * (CHUNK + 16)]);
    swapped.extend_from_slice(&file[payload..payload + CHUNK + 16]);
    swapped.extend_from_slice(&file[payload + 2 * (CHUNK + 16)..]);
    assert_eq!(
        open(&all, &swapped).unwrap_err(),
        AgeError::ChunkAuthentication { chunk: 0 }
    );
}

#[test]
fn attack_plaintext_over_the_callers_cap() {
    let (id, all) = one();
    let file = seal(&[&id], &plaintext(CHUNK + 1), 3);
    assert_eq!(
        decrypt_to_vec(&all, &file, CHUNK).unwrap_err(),
        AgeError::TooLarge { max: CHUNK }
    );
    assert_eq!(
        decrypt_to_vec(&all, &file, CHUNK + 1).unwrap().len(),
        CHUNK + 1
    );
}

#[test]
fn errors_after_the_first_stick() {
    let (_, all) = one();
    let mut d = Decryptor::new(&all, Vec::new());
    let e = d.write(b"{not age").unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    assert!(d.write(b"age-encryption.org/v1\n").is_err());
    assert_eq!(d.finish().unwrap_err(), AgeError::NotAgeFile);
}
