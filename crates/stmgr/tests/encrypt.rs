//! `stmgr ospkg encrypt` and `stmgr keygen age`, and interop with Debian's `age` CLI both ways.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{ok, refused, stdout, stmgr, stmgr_line};

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

/// A plaintext OS package `os.{json,zip}` (a 300 kB initramfs: several age chunks) in a fresh
/// directory.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("vmlinuz"), b"kernel bytes kernel bytes").unwrap();
    let initrd: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(d.join("initrd.img"), initrd).unwrap();
    ok(stmgr_line(
        d,
        "ospkg create --kernel vmlinuz --initramfs initrd.img --cmdline console=ttyS0 --url os.zip --out os",
    ));
    dir
}

/// `program ARGS` in `dir`, which must succeed; a missing tool names its Debian package.
fn tool(dir: &Path, program: &str, args: &[&str]) -> Output {
    let o = Command::new(program)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "this test needs `{program}` (Debian package age; `cargo xtask test` installs it): {e}"
            )
        });
    assert!(
        o.status.success(),
        "{program} {args:?}: {}",
        common::stderr(&o)
    );
    o
}

fn read(d: &Path, name: &str) -> Vec<u8> {
    std::fs::read(d.join(name)).unwrap()
}

fn identities(d: &Path, name: &str) -> st_age::Identities {
    st_age::Identities::parse(&read(d, name)).unwrap()
}

/// `stmgr keygen age --out NAME`; returns the recipient it printed.
fn keygen(d: &Path, name: &str) -> String {
    let o = ok(stmgr(d, &["keygen", "age", "--out", name]));
    stdout(&o).trim().to_string()
}

#[test]
fn keygen_age_writes_a_private_identity_and_prints_its_recipient() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let recipient = keygen(d, "decryption_identities");
    assert!(recipient.starts_with("age1"), "{recipient}");
    let meta = std::fs::metadata(d.join("decryption_identities")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let ids = identities(d, "decryption_identities");
    assert_eq!(ids.recipients().next().unwrap().to_string(), recipient);
    let text = String::from_utf8(read(d, "decryption_identities")).unwrap();
    assert!(
        text.contains(&format!("# public key: {recipient}")),
        "{text}"
    );
    // Not overwritten without --force.
    refused(
        stmgr(d, &["keygen", "age", "--out", "decryption_identities"]),
        "--force",
    );
    let again = ok(stmgr(
        d,
        &["keygen", "age", "--out", "decryption_identities", "--force"],
    ));
    assert_ne!(stdout(&again).trim(), recipient);
}

#[test]
fn encrypt_round_trip_with_st_age() {
    let dir = setup();
    let d = dir.path();
    let r1 = keygen(d, "id1");
    let r2 = keygen(d, "id2");
    std::fs::write(d.join("recipients"), format!("# second operator\n{r2}\n")).unwrap();
    ok(stmgr(
        d,
        &[
            "ospkg",
            "encrypt",
            "--ospkg",
            "os.json",
            "--recipient",
            &r1,
            "--recipients-file",
            "recipients",
            "--out-dir",
            "enc",
        ],
    ));
    for name in ["os.json", "os.zip"] {
        let cipher = read(d, &format!("enc/{name}"));
        assert!(st_age::is_encrypted(&cipher), "{name}");
        for id in ["id1", "id2"] {
            let plain = st_age::decrypt_to_vec(&identities(d, id), &cipher, 1 << 30).unwrap();
            assert_eq!(plain, read(d, name), "{name} with {id}");
        }
    }
    // The descriptor is unchanged inside: os_pkg_url stays.
    let plain =
        st_age::decrypt_to_vec(&identities(d, "id1"), &read(d, "enc/os.json"), 1 << 20).unwrap();
    assert!(String::from_utf8(plain).unwrap().contains("\"os.zip\""));
}

#[test]
fn encrypt_refusals() {
    let dir = setup();
    let d = dir.path();
    let r = keygen(d, "id");
    let enc = |extra: &[&str]| {
        let mut args = vec!["ospkg", "encrypt", "--ospkg", "os", "--out-dir", "enc"];
        args.extend_from_slice(extra);
        stmgr(d, &args)
    };
    refused(enc(&[]), "no recipient");
    refused(
        enc(&["--recipient", "ssh-ed25519 AAAAC3Nz"]),
        "SSH keys are not supported",
    );
    refused(enc(&["--recipient", &r.to_uppercase()]), "--recipient");
    std::fs::write(d.join("bad-recipients"), format!("{r}\nage1nope\n")).unwrap();
    refused(enc(&["--recipients-file", "bad-recipients"]), "line 2");
    ok(enc(&["--recipient", &r]));
    // Outputs exist: not overwritten without --force.
    refused(enc(&["--recipient", &r]), "--force");
    ok(enc(&["--recipient", &r, "--force"]));
    // An encrypted package is not encrypted again.
    refused(
        stmgr(
            d,
            &[
                "ospkg",
                "encrypt",
                "--ospkg",
                "enc/os.zip",
                "--recipient",
                &r,
                "--out-dir",
                "twice",
            ],
        ),
        "already age-encrypted",
    );
    // A descriptor that is not one.
    std::fs::write(d.join("junk.json"), b"not json").unwrap();
    std::fs::write(d.join("junk.zip"), b"PK").unwrap();
    refused(
        stmgr(
            d,
            &[
                "ospkg",
                "encrypt",
                "--ospkg",
                "junk",
                "--recipient",
                &r,
                "--out-dir",
                "j",
            ],
        ),
        "descriptor",
    );
}

#[test]
fn help_says_where_the_identity_goes() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in [
        &["ospkg", "encrypt", "--help"][..],
        &["keygen", "age", "--help"][..],
    ] {
        let o = ok(stmgr(dir.path(), cmd));
        let text = stdout(&o);
        assert!(text.contains("decryption_identities"), "{cmd:?}: {text}");
        assert!(text.contains("trust policy directory"), "{cmd:?}: {text}");
    }
}

/// Ours encrypt, Debian's age decrypts; age encrypts (-r, -R, age-keygen keys), ours decrypt;
/// age's armor is refused by name.
#[test]
fn interop_with_the_age_cli() {
    let dir = setup();
    let d = dir.path();
    let version = tool(d, "age", &["--version"]);
    eprintln!("age {}", stdout(&version).trim());

    // stmgr encrypts to a key from stmgr keygen age and to one from age-keygen.
    let ours = keygen(d, "ours.txt");
    tool(d, "age-keygen", &["-o", "theirs.txt"]);
    let theirs = tool(d, "age-keygen", &["-y", "theirs.txt"]);
    let theirs = stdout(&theirs).trim().to_string();
    ok(stmgr(
        d,
        &[
            "ospkg",
            "encrypt",
            "--ospkg",
            "os",
            "--recipient",
            &ours,
            "--recipient",
            &theirs,
            "--out-dir",
            "enc",
        ],
    ));
    for key in ["ours.txt", "theirs.txt"] {
        for name in ["os.json", "os.zip"] {
            let out = format!("dec-{key}-{name}");
            tool(
                d,
                "age",
                &["-d", "-i", key, "-o", &out, &format!("enc/{name}")],
            );
            assert_eq!(read(d, &out), read(d, name), "age -d -i {key} enc/{name}");
        }
    }

    // age encrypts (-r, and -R with a recipients file), st-age decrypts with either key.
    std::fs::write(
        d.join("recipients.txt"),
        format!("# both\n{ours}\n{theirs}\n"),
    )
    .unwrap();
    tool(d, "age", &["-e", "-r", &ours, "-o", "r.age", "os.zip"]);
    tool(
        d,
        "age",
        &["-e", "-R", "recipients.txt", "-o", "rr.age", "os.zip"],
    );
    for (file, keys) in [
        ("r.age", &["ours.txt"][..]),
        ("rr.age", &["ours.txt", "theirs.txt"][..]),
    ] {
        for key in keys {
            let plain =
                st_age::decrypt_to_vec(&identities(d, key), &read(d, file), 1 << 30).unwrap();
            assert_eq!(plain, read(d, "os.zip"), "{file} with {key}");
        }
    }
    // Both identity files in one (as decryption_identities may hold): still decrypts.
    let both = [read(d, "theirs.txt"), read(d, "ours.txt")].concat();
    let ids = st_age::Identities::parse(&both).unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(
        st_age::decrypt_to_vec(&ids, &read(d, "r.age"), 1 << 30).unwrap(),
        read(d, "os.zip")
    );

    // Empty input, and a file of exactly one chunk.
    std::fs::write(d.join("empty"), b"").unwrap();
    std::fs::write(d.join("chunk"), vec![3u8; st_age::CHUNK]).unwrap();
    for name in ["empty", "chunk"] {
        tool(
            d,
            "age",
            &["-e", "-r", &ours, "-o", &format!("{name}.age"), name],
        );
        let plain = st_age::decrypt_to_vec(
            &identities(d, "ours.txt"),
            &read(d, &format!("{name}.age")),
            1 << 20,
        )
        .unwrap();
        assert_eq!(plain, read(d, name), "{name}");
    }

    // Armored: refused by name (stboot downloads binary files; Go's age.Decrypt reads no armor).
    tool(
        d,
        "age",
        &["-e", "-a", "-r", &ours, "-o", "a.age", "os.json"],
    );
    let err =
        st_age::decrypt_to_vec(&identities(d, "ours.txt"), &read(d, "a.age"), 1 << 20).unwrap_err();
    assert_eq!(err, st_age::AgeError::Armored);
    refused(
        stmgr(
            d,
            &[
                "ospkg",
                "encrypt",
                "--ospkg",
                "a.json",
                "--recipient",
                &ours,
                "--out-dir",
                "x",
            ],
        ),
        "a.json",
    );
    // The wrong identity: age says no, and so do we.
    let wrong = st_age::decrypt_to_vec(&identities(d, "theirs.txt"), &read(d, "r.age"), 1 << 30)
        .unwrap_err();
    assert!(
        matches!(
            wrong,
            st_age::AgeError::NoIdentityMatches {
                identities: 1,
                x25519_stanzas: 1,
                ..
            }
        ),
        "{wrong}"
    );
}
