//! `stmgr measure predict` and `stmgr eventlog show | replay` through the command line: the
//! prediction for a package made by the Go reference, its log replaying to the same values,
//! firmware-style logs, and errors naming the file and field.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::{fails, ok, stderr, stdout, stmgr_line};

use std::path::{Path, PathBuf};
use std::process::Output;

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap()
}

fn go_vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/go-reference")
}

/// The Go reference's 01-good-1sig package and a trust policy dir: its root, threshold 1,
/// initramfs, and two TLS roots.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let g = go_vectors();
    for ext in ["zip", "json"] {
        std::fs::copy(
            g.join(format!("cases/01-good-1sig.{ext}")),
            d.join(format!("os.{ext}")),
        )
        .unwrap();
    }
    std::fs::create_dir(d.join("policy")).unwrap();
    std::fs::copy(
        g.join("policy-threshold-1.json"),
        d.join("policy/trust_policy.json"),
    )
    .unwrap();
    std::fs::copy(
        g.join("keys/root.cert.pem"),
        d.join("policy/ospkg_signing_root.pem"),
    )
    .unwrap();
    let tls = [
        std::fs::read(g.join("keys/rogue-root.cert.pem")).unwrap(),
        std::fs::read(g.join("keys/signer1.cert.pem")).unwrap(),
    ]
    .concat();
    std::fs::write(d.join("policy/tls_roots.pem"), tls).unwrap();
    dir
}

/// Values computed outside this code (Python hashlib, openssl) for this package and policy;
/// the same as in st-measure's tests/reference.rs.
const SHA256_PCR12: &str = "bc706b23a28685557d791b5d5da087c451bf3c4f969034655cc94855018880cc";
const SHA256_PCR13: &str = "b470d18bcb1bd0b64d387138f6885c0886db1b31c0d25ec4131a88b55f79fc21";
const SHA256_PCR14: &str = "74aa00c4eb447a2e2367f3fb20f6406f5927d8cff2aab617206b6f9c4fdbb233";

#[test]
fn predict_gives_the_pinned_values_and_its_log_replays_to_them() {
    let dir = setup();
    let d = dir.path();
    let o = ok(stmgr_line(
        d,
        "measure predict --ospkg os.zip --trust-policy policy --identity host-1 --json --log-out os.log",
    ));
    let p = json(&o);
    assert_eq!(p["layout"], 1);
    assert_eq!(p["pcrs"]["sha256"]["12"], SHA256_PCR12);
    assert_eq!(p["pcrs"]["sha256"]["13"], SHA256_PCR13);
    assert_eq!(p["pcrs"]["sha256"]["14"], SHA256_PCR14);
    assert_eq!(
        p["pcrs"]["sha1"]["12"],
        "ad52c30779441d0916411e944f3f3a55c2fe1c70"
    );
    assert_eq!(p["banks"].as_array().unwrap().len(), 4);
    let events = p["events"].as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "0xa0000000",
            "0xa0000001",
            "0xa0000002",
            "0xa0000003",
            "0xa0000004",
            "0xa0000005"
        ]
    );
    assert_eq!(events[0]["data_text"], "OS package from initramfs");
    assert_eq!(
        events[1]["data_text"].as_str().unwrap().as_bytes(),
        std::fs::read(d.join("os.json")).unwrap()
    );
    assert_eq!(
        events[2]["data_text"],
        r#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":"initramfs"}"#
    );
    assert_eq!(events[5]["data_text"], "host-1");

    // The log it wrote replays to the same PCRs.
    let r = json(&ok(stmgr_line(d, "eventlog replay os.log --json")));
    assert_eq!(r["pcrs"], p["pcrs"]);
    assert_eq!(r["unsupported_algorithms"], serde_json::json!([]));
    assert_eq!(r["incomplete_banks"], serde_json::json!([]));

    // The text forms.
    let text = stdout(&ok(stmgr_line(
        d,
        "measure predict --ospkg os --trust-policy policy --identity host-1",
    )));
    assert!(text.starts_with("measurement layout v1"), "{text}");
    assert!(
        text.contains(&format!("PCR 12 sha256 {SHA256_PCR12}")),
        "{text}"
    );
    let show = stdout(&ok(stmgr_line(d, "eventlog show os.log")));
    assert!(show.contains("algorithms: sha1 (0x0004, 20 bytes), sha256 (0x000b, 32 bytes)"));
    assert!(
        show.contains("PCR 13 0xa0000002 ST_TRUST_POLICY, 64 bytes"),
        "{show}"
    );
    let replay = stdout(&ok(stmgr_line(d, "eventlog replay os.log")));
    assert!(
        replay.contains(&format!("PCR 14 sha256 {SHA256_PCR14}")),
        "{replay}"
    );
    let shown = json(&ok(stmgr_line(d, "eventlog show os.log --json")));
    assert_eq!(shown["format"], "crypto-agile");
    assert_eq!(shown["events"].as_array().unwrap().len(), 6);
    assert_eq!(shown["events"][0]["offset"], 77);
}

#[test]
fn banks_fetch_method_and_archive_name() {
    let dir = setup();
    let d = dir.path();
    let p = json(&ok(stmgr_line(
        d,
        "measure predict --ospkg os.json --trust-policy policy --bank sha256 --bank sha384 --json",
    )));
    let banks: Vec<&str> = p["pcrs"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(banks, ["sha256", "sha384"]);
    // Network with an empty os_pkg_url: there is no name to log.
    let err = fails(stmgr_line(
        d,
        "measure predict --ospkg os --trust-policy policy --fetch-method network",
    ));
    assert!(
        err.contains("os.json: field \"os_pkg_url\" is empty"),
        "{err}"
    );
    let net = json(&ok(stmgr_line(
        d,
        "measure predict --ospkg os --trust-policy policy --fetch-method network --archive-name a.zip --json",
    )));
    assert_eq!(net["events"][0]["data_text"], "a.zip");
    assert_eq!(
        net["events"][2]["data_text"],
        r#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":"network"}"#
    );
    // The fetch method is measured (PCR 13); the archive name is not (PCR 12 unchanged).
    let init = json(&ok(stmgr_line(
        d,
        "measure predict --ospkg os --trust-policy policy --json",
    )));
    assert_eq!(net["pcrs"]["sha256"]["12"], init["pcrs"]["sha256"]["12"]);
    assert_ne!(net["pcrs"]["sha256"]["13"], init["pcrs"]["sha256"]["13"]);
    // A host config whose pointer is the provisioning fallback's forces initramfs.
    std::fs::write(
        d.join("policy/trust_policy.json"),
        r#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":"network"}"#,
    )
    .unwrap();
    let hc = |pointer: &str| {
        format!(
            r#"{{"network_mode":"dhcp","host_ip":null,"gateway":null,"dns":null,"network_interfaces":null,"ospkg_pointer":"{pointer}","identity":null,"authentication":null,"bonding_mode":null,"bond_name":null}}"#
        )
    };
    std::fs::write(d.join("prov.json"), hc("provision.zip")).unwrap();
    std::fs::write(d.join("net-hc.json"), hc("https://example.org/os.json")).unwrap();
    let prov = json(&ok(stmgr_line(
        d,
        "measure predict --ospkg os --trust-policy policy --host-config prov.json --json",
    )));
    assert_eq!(prov["events"][0]["data_text"], "OS package from initramfs");
    assert_eq!(prov["pcrs"], init["pcrs"]);
    let err = fails(stmgr_line(
        d,
        "measure predict --ospkg os --trust-policy policy --host-config net-hc.json",
    ));
    assert!(err.contains("os_pkg_url\" is empty"), "{err}");
    let o = stmgr_line(
        d,
        "measure predict --ospkg os --trust-policy policy --host-config prov.json --fetch-method network",
    );
    assert_eq!(o.status.code(), Some(2));
    // Without tls_roots.pem the TLS roots event is over nothing.
    std::fs::remove_file(d.join("policy/tls_roots.pem")).unwrap();
    let none = json(&ok(stmgr_line(
        d,
        "measure predict --ospkg os --trust-policy policy --fetch-method initramfs --json",
    )));
    assert_eq!(none["events"][4]["data_size"], 0);
    assert_eq!(
        none["events"][4]["measured_sha256"],
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn archive_name_from_a_descriptor_url() {
    let dir = setup();
    let d = dir.path();
    // A descriptor with an os_pkg_url (unsigned: predict does not verify).
    std::fs::write(
        d.join("net.json"),
        r#"{"version":1,"os_pkg_url":"https://example.org/pkgs/my%20os.zip?x=1","certificates":null,"signatures":null}"#,
    )
    .unwrap();
    std::fs::copy(d.join("os.zip"), d.join("net.zip")).unwrap();
    let p = json(&ok(stmgr_line(
        d,
        "measure predict --ospkg net --trust-policy policy --fetch-method network --json",
    )));
    assert_eq!(p["events"][0]["data_text"], "my os.zip");
    assert_eq!(
        p["events"][1]["data_text"],
        "{\n  \"version\": 1,\n  \"os_pkg_url\": \"https://example.org/pkgs/my%20os.zip?x=1\",\n  \
         \"certificates\": null,\n  \"signatures\": null\n}"
    );
}

#[test]
fn errors_name_file_and_field() {
    let dir = setup();
    let d = dir.path();
    std::fs::write(
        d.join("policy/trust_policy.json"),
        r#"{"ospkg_signature_threshold":0,"ospkg_fetch_method":"network"}"#,
    )
    .unwrap();
    let err = fails(stmgr_line(
        d,
        "measure predict --ospkg os --trust-policy policy",
    ));
    assert!(
        err.contains("trust policy directory policy")
            && err.contains("trust_policy.json")
            && err.contains("ospkg_signature_threshold"),
        "{err}"
    );
    let err = fails(stmgr_line(
        d,
        "measure predict --ospkg nothere --trust-policy policy",
    ));
    assert!(err.contains("nothere.json"), "{err}");
    let o = stmgr_line(
        d,
        "measure predict --ospkg os --trust-policy policy --bank md5",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not one of sha1, sha256, sha384, sha512"));

    std::fs::write(d.join("bad.log"), [0u8; 10]).unwrap();
    let err = fails(stmgr_line(d, "eventlog show bad.log"));
    assert!(
        err.contains("event log bad.log") && err.contains("offset 8: spec id: digest: truncated"),
        "{err}"
    );
    // A crypto-agile header whose event size is wrong.
    let mut log = st_measure::EventLog::new(&[st_measure::Bank::Sha256]).to_bytes();
    log[28] = 34;
    std::fs::write(d.join("bad2.log"), &log).unwrap();
    let err = fails(stmgr_line(d, "eventlog replay bad2.log"));
    assert!(
        err.contains("offset 28: spec id: eventSize: 34, expected 33"),
        "{err}"
    );
}

/// A firmware-style log: a StartupLocality event, an algorithm we cannot compute (SM3_256),
/// events into PCR 0 and 7.
#[test]
fn firmware_style_log() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut b = Vec::new();
    let mut spec = b"Spec ID Event03\0".to_vec();
    spec.extend(0u32.to_le_bytes());
    spec.extend([0, 2, 0, 2]);
    spec.extend(2u32.to_le_bytes());
    spec.extend([0x0b, 0, 32, 0, 0x12, 0, 32, 0, 0]);
    b.extend(0u32.to_le_bytes());
    b.extend(3u32.to_le_bytes());
    b.extend([0; 20]);
    b.extend((spec.len() as u32).to_le_bytes());
    b.extend(&spec);
    let mut push = |pcr: u32, t: u32, sha256: &[u8], data: &[u8]| {
        b.extend(pcr.to_le_bytes());
        b.extend(t.to_le_bytes());
        b.extend(2u32.to_le_bytes());
        b.extend(0x0bu16.to_le_bytes());
        b.extend(sha256);
        b.extend(0x12u16.to_le_bytes());
        b.extend([0x11; 32]);
        b.extend((data.len() as u32).to_le_bytes());
        b.extend(data);
    };
    push(0, 3, &[0; 32], b"StartupLocality\0\x03");
    let sep = st_measure::Bank::Sha256.hash(&[0; 4]);
    push(7, 4, &sep, &[0; 4]);
    std::fs::write(d.join("fw.log"), &b).unwrap();
    let r = json(&ok(stmgr_line(d, "eventlog replay fw.log --json")));
    assert_eq!(r["unsupported_algorithms"], serde_json::json!(["0x0012"]));
    assert_eq!(r["startup_locality"], 3);
    let want = st_measure::hex(&st_measure::Bank::Sha256.extend(&[0; 32], &sep));
    assert_eq!(r["pcrs"]["sha256"]["7"], want.as_str());
    let show = stdout(&ok(stmgr_line(d, "eventlog show fw.log")));
    assert!(show.contains("0x0012 (0x0012, 32 bytes)"), "{show}");
    assert!(show.contains("startup locality 3"), "{show}");
    assert!(
        show.contains("PCR 7 0x00000004 EV_SEPARATOR, 4 bytes"),
        "{show}"
    );
}

#[test]
fn help_describes_the_commands() {
    let d = Path::new(".");
    let help = stdout(&ok(stmgr_line(d, "measure predict --help")));
    for want in [
        "--ospkg",
        "--trust-policy",
        "--identity",
        "--json",
        "--bank",
        "0x01420001",
    ] {
        assert!(help.contains(want), "{want}: {help}");
    }
    let help = stdout(&ok(stmgr_line(d, "eventlog --help")));
    assert!(help.contains("show") && help.contains("replay"), "{help}");
}

/// `--uki`: PCR 11 as systemd-stub 252 leaves it, in every bank asked for, the sha256 value the
/// one `stmgr image inspect` prints (checked against an independent computation in uki.rs and
/// against a real TPM in the e2e scenario uefi-uki-tpm); PCRs 12-14 are unchanged.
#[test]
fn predict_with_a_uki_adds_the_stubs_pcr11() {
    const STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";
    assert!(
        Path::new(STUB).is_file(),
        "this test needs {STUB} (Debian package systemd-boot-efi; `cargo xtask test` installs it)"
    );
    let dir = setup();
    let d = dir.path();
    std::fs::write(d.join("vmlinuz"), vec![7u8; 40_000]).unwrap();
    std::fs::write(d.join("initrd"), vec![9u8; 5_000]).unwrap();
    ok(stmgr_line(
        d,
        "uki create --format uki --kernel vmlinuz --initramfs initrd --cmdline console=ttyS0 --out st",
    ));
    let inspect = stdout(&ok(stmgr_line(d, "image inspect st.uki")));
    let pcr11 = inspect
        .lines()
        .find_map(|l| l.strip_prefix("PCR 11 (sha256) after systemd-stub 252: "))
        .expect("inspect predicts PCR 11")
        .to_owned();
    let plain: serde_json::Value = serde_json::from_str(&stdout(&ok(stmgr_line(
        d,
        "measure predict --ospkg os --trust-policy policy --json",
    ))))
    .unwrap();
    let with: serde_json::Value = serde_json::from_str(&stdout(&ok(stmgr_line(
        d,
        "measure predict --ospkg os --trust-policy policy --uki st.uki --json",
    ))))
    .unwrap();
    assert_eq!(with["pcrs"]["sha256"]["11"], pcr11.as_str());
    for bank in ["sha1", "sha256", "sha384", "sha512"] {
        assert!(with["pcrs"][bank]["11"].is_string(), "{bank}: {with}");
        for pcr in ["12", "13", "14"] {
            assert_eq!(with["pcrs"][bank][pcr], plain["pcrs"][bank][pcr]);
        }
    }
    let e = fails(stmgr_line(
        d,
        "measure predict --ospkg os --trust-policy policy --uki vmlinuz",
    ));
    assert!(e.contains("UKI vmlinuz"), "{e}");
}
