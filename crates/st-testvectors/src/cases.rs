//! The scenarios.

use crate::ExpectedCase;
use crate::pki::{self, Signer, Twist};
use crate::zip::{self, Entry};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rcgen::ExtendedKeyUsagePurpose;
use serde::Serialize;
use st_format::{
    Descriptor, FetchMethod, Manifest, SignatureEntry, SignatureThreshold, TrustPolicy,
};
use st_verify::ArchiveDigest;
use std::collections::BTreeMap;

mod sigsum;

type Result<T> = std::result::Result<T, String>;

pub(crate) const KERNEL: &[u8; 32] = b"DUMMY-KERNEL-bzImage-0123456789\n";
pub(crate) const INITRAMFS: &[u8; 32] = b"DUMMY-INITRAMFS-cpio-0123456789\n";
const EVIL_KERNEL: &[u8; 32] = b"EVIL-KERNEL-bzImage-0123456789!\n";
const KERNEL_PATH: &str = "boot/vmlinuz";
const INITRAMFS_PATH: &str = "boot/initramfs.cpio";

pub(crate) struct Case {
    pub row: ExpectedCase,
    pub description: &'static str,
    pub zip: Vec<u8>,
    pub json: Vec<u8>,
}

pub(crate) struct Built {
    pub trust: BTreeMap<String, Vec<u8>>,
    pub cases: Vec<Case>,
}

struct Pki {
    root: Signer,
    other_root: Signer,
    other_signer: Signer,
    s1: Signer,
    s1_alt: Signer,
    /// signer1's key, certified by other-root.
    s1_other_root: Signer,
    s2: Signer,
    s3: Signer,
    expired: Signer,
    future: Signer,
    ca_leaf: Signer,
    eku_code: Signer,
    eku_server: Signer,
    ecdsa: Signer,
    critical: Signer,
    no_digital_signature: Signer,
    impostor_signer: Signer,
}

fn make_pki() -> Result<Pki> {
    let root = pki::root("root")?;
    let other_root = pki::root("other-root")?;
    let good = pki::good_opts;
    Ok(Pki {
        other_signer: pki::leaf("other-signer", &other_root, &good("other-signer")?)?,
        s1: pki::leaf("signer1", &root, &good("signer1")?)?,
        s1_alt: pki::leaf("signer1", &root, &good("signer1-second-certificate")?)?,
        s1_other_root: pki::leaf("signer1", &other_root, &good("signer1-under-other-root")?)?,
        s2: pki::leaf("signer2", &root, &good("signer2")?)?,
        s3: pki::leaf("signer3", &root, &good("signer3")?)?,
        expired: pki::leaf(
            "expired-signer",
            &root,
            &pki::opts(
                "expired-signer",
                "2020-01-01T00:00:00Z",
                "2021-01-01T00:00:00Z",
            )?,
        )?,
        future: pki::leaf(
            "future-signer",
            &root,
            &pki::opts(
                "future-signer",
                "2090-01-01T00:00:00Z",
                "2099-12-31T23:59:59Z",
            )?,
        )?,
        ca_leaf: pki::custom_leaf("ca-signer", &root, Some(Twist::Ca), None)?,
        eku_code: pki::custom_leaf(
            "eku-code-signing-signer",
            &root,
            Some(Twist::Eku(vec![ExtendedKeyUsagePurpose::CodeSigning])),
            None,
        )?,
        eku_server: pki::custom_leaf(
            "eku-server-auth-signer",
            &root,
            Some(Twist::Eku(vec![ExtendedKeyUsagePurpose::ServerAuth])),
            None,
        )?,
        ecdsa: pki::custom_leaf("ecdsa-p256-signer", &root, None, Some(&pki::P256_SPKI_DER))?,
        critical: pki::custom_leaf(
            "unknown-critical-signer",
            &root,
            Some(Twist::UnknownCritical),
            None,
        )?,
        no_digital_signature: pki::custom_leaf(
            "no-digital-signature-signer",
            &root,
            Some(Twist::NoDigitalSignature),
            None,
        )?,
        impostor_signer: pki::leaf(
            "impostor-signer",
            &pki::impostor_root("impostor-root", &root)?,
            &good("impostor-signer")?,
        )?,
        root,
        other_root,
    })
}

fn trust_files(p: &Pki) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut t = BTreeMap::new();
    let mut put = |name: &str, s: &Signer| {
        t.insert(format!("trust/{name}.pem"), s.cert.as_bytes().to_vec());
        if let Some(k) = &s.key {
            t.insert(
                format!("trust/{name}.key.pem"),
                k.to_pkcs8_pem().into_bytes(),
            );
        }
    };
    put("root", &p.root);
    put("other-root", &p.other_root);
    put("signer1", &p.s1);
    put("signer2", &p.s2);
    put("signer3", &p.s3);
    for n in [1u32, 2] {
        let th = SignatureThreshold::new(n).ok_or("threshold")?;
        let policy = TrustPolicy::new(th, FetchMethod::Network);
        t.insert(
            format!("trust/policy-{n}/trust_policy.json"),
            policy.to_pretty_json(),
        );
        t.insert(
            format!("trust/policy-{n}/ospkg_signing_root.pem"),
            p.root.cert.as_bytes().to_vec(),
        );
        // ST 1.3: several signing roots in one file.
        t.insert(
            format!("trust/two-roots-{n}/trust_policy.json"),
            policy.to_pretty_json(),
        );
        t.insert(
            format!("trust/two-roots-{n}/ospkg_signing_root.pem"),
            [p.root.cert.as_bytes(), p.other_root.cert.as_bytes()].concat(),
        );
    }
    Ok(t)
}

fn manifest(name: &str) -> Result<Vec<u8>> {
    manifest_for(name, KERNEL_PATH)
}

fn manifest_for(name: &str, kernel: &str) -> Result<Vec<u8>> {
    Ok(Manifest::new(
        format!("vector {name}"),
        kernel,
        INITRAMFS_PATH,
        "console=ttyS0",
    )
    .map_err(|e| e.to_string())?
    .to_json())
}

/// `boot/`, kernel, initramfs, manifest: the reference layout.
fn standard_entries(name: &str) -> Result<Vec<Entry>> {
    Ok(vec![
        Entry::dir("boot/"),
        Entry::deflated(KERNEL_PATH, KERNEL),
        Entry::deflated(INITRAMFS_PATH, INITRAMFS),
        Entry::deflated("manifest.json", &manifest(name)?),
    ])
}

fn key_of(s: &Signer) -> Result<&st_sign::SigningKey> {
    s.key.as_ref().ok_or_else(|| "signer without key".into())
}

/// Descriptor with `entries` (certificate PEM, signature).
fn descriptor(entries: Vec<(&Signer, Vec<u8>)>) -> Result<Vec<u8>> {
    let mut d = Descriptor::unsigned("").map_err(|e| e.to_string())?;
    for (s, sig) in entries {
        d.push(SignatureEntry::new(s.cert.as_bytes().to_vec(), sig).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    Ok(d.to_json())
}

fn sig(s: &Signer, zip: &[u8]) -> Result<Vec<u8>> {
    Ok(key_of(s)?.sign(ArchiveDigest::of(zip).as_bytes()).to_vec())
}

/// Descriptor with a good signature by each signer.
fn signed(zip: &[u8], signers: &[&Signer]) -> Result<Vec<u8>> {
    let mut e = Vec::new();
    for s in signers {
        e.push((*s, sig(s, zip)?));
    }
    descriptor(e)
}

/// A descriptor written field by field (for shapes `Descriptor` refuses to hold).
fn raw_descriptor(certificates: Vec<String>, signatures: Vec<String>) -> Vec<u8> {
    #[derive(Serialize)]
    struct Raw {
        version: i64,
        os_pkg_url: String,
        certificates: Vec<String>,
        signatures: Vec<String>,
    }
    st_format::gojson::to_pretty(&Raw {
        version: 1,
        os_pkg_url: String::new(),
        certificates,
        signatures,
    })
}

#[derive(Clone, Copy)]
enum Verdict {
    Accept(u32, u32),
    Threshold(u32, u32),
    Descriptor,
    /// Archive stage; signatures are fine (found 1, valid 1).
    Archive,
}

struct Spec {
    name: &'static str,
    /// The trust policy directory under `trust/`.
    policy: String,
    verdict: Verdict,
    reason: Option<&'static str>,
    reference: Option<&'static str>,
    description: &'static str,
}

fn case(spec: Spec, zip: Vec<u8>, json: Vec<u8>) -> Case {
    let (expected, stage, found, valid) = match spec.verdict {
        Verdict::Accept(f, v) => ("accept", None, Some(f), Some(v)),
        Verdict::Threshold(f, v) => ("reject", Some("threshold"), Some(f), Some(v)),
        Verdict::Descriptor => ("reject", Some("descriptor"), None, None),
        Verdict::Archive => ("reject", Some("archive"), Some(1), Some(1)),
    };
    Case {
        row: ExpectedCase {
            name: spec.name.into(),
            policy: spec.policy,
            expected: expected.into(),
            stage: stage.map(Into::into),
            found,
            valid,
            reason: spec.reason.map(Into::into),
            reference: spec.reference.map(Into::into),
        },
        description: spec.description,
        zip,
        json,
    }
}

/// A normal package signed by `signers`.
fn plain(spec: Spec, signers: &[&Signer]) -> Result<Case> {
    let zip = zip::build(&standard_entries(spec.name)?);
    let json = signed(&zip, signers)?;
    Ok(case(spec, zip, json))
}

/// An archive-stage case: `entries` signed properly by signer1.
fn archive_case(spec: Spec, p: &Pki, zip: Vec<u8>) -> Result<Case> {
    let json = signed(&zip, &[&p.s1])?;
    Ok(case(spec, zip, json))
}

/// The same case judged under `trust/two-roots-<threshold>/` (root and other-root).
fn under_two_roots(mut s: Spec, threshold: u32) -> Spec {
    s.policy = format!("two-roots-{threshold}");
    s
}

fn spec(
    name: &'static str,
    policy: u32,
    verdict: Verdict,
    reason: Option<&'static str>,
    reference: Option<&'static str>,
    description: &'static str,
) -> Spec {
    Spec {
        name,
        policy: format!("policy-{policy}"),
        verdict,
        reason,
        reference,
        description,
    }
}

#[allow(clippy::too_many_lines, clippy::vec_init_then_push)]
pub(crate) fn build() -> Result<Built> {
    use Verdict::{Accept, Archive, Descriptor as Desc, Threshold};
    let p = make_pki()?;
    let mut trust = trust_files(&p)?;
    let sigsum_keys = sigsum::keys()?;
    sigsum::trust_files(&p, &sigsum_keys, &mut trust)?;
    let mut cases = Vec::new();

    cases.push(plain(
        spec(
            "good-1-of-1",
            1,
            Accept(1, 1),
            None,
            None,
            "signer1 signs; threshold 1.",
        ),
        &[&p.s1],
    )?);
    cases.push(plain(
        spec(
            "good-2-of-3",
            2,
            Accept(2, 2),
            None,
            None,
            "signer1 and signer3 sign (signer2 does not); threshold 2.",
        ),
        &[&p.s1, &p.s3],
    )?);
    cases.push(plain(
        spec(
            "root-signs-directly",
            1,
            Accept(1, 1),
            None,
            None,
            "The root certificate and key sign the package themselves (allowed: chain length 1).",
        ),
        &[&p.root],
    )?);
    cases.push(plain(
        spec(
            "threshold-minus-one",
            2,
            Threshold(1, 1),
            Some("threshold"),
            None,
            "Only signer2 signs; threshold 2.",
        ),
        &[&p.s2],
    )?);
    cases.push(plain(
        spec("one-key-two-certificates", 2, Threshold(2, 1), Some("same signing key"),
            Some("accepts (valid 2): it de-duplicates by certificate bytes, not by key"),
            "Two different certificates (different serials) for signer1's key both sign; one key counts once."),
        &[&p.s1, &p.s1_alt],
    )?);
    cases.push(plain(
        spec(
            "same-certificate-twice",
            2,
            Threshold(2, 1),
            Some("same signing key"),
            None,
            "signer1's certificate and signature appear twice; counts once.",
        ),
        &[&p.s1, &p.s1],
    )?);
    cases.push(plain(
        under_two_roots(
            spec(
                "second-root-signer",
                1,
                Accept(1, 1),
                None,
                None,
                "Two signing roots (root, other-root); the only signer chains to the second.",
            ),
            1,
        ),
        &[&p.other_signer],
    )?);
    cases.push(plain(
        under_two_roots(
            spec(
                "one-signer-under-each-root",
                2,
                Accept(2, 2),
                None,
                None,
                "Two signing roots, threshold 2: signer1 under root and other-signer under other-root.",
            ),
            2,
        ),
        &[&p.s1, &p.other_signer],
    )?);
    cases.push(plain(
        under_two_roots(
            spec(
                "same-key-under-two-roots",
                2,
                Threshold(2, 1),
                Some("same signing key"),
                None,
                "Two signing roots, threshold 2: signer1's key certified by each root signs twice; one key counts once.",
            ),
            2,
        ),
        &[&p.s1, &p.s1_other_root],
    )?);
    cases.push(plain(
        spec(
            "certificate-from-other-root",
            1,
            Threshold(1, 0),
            Some("not issued by any signing root"),
            None,
            "A leaf issued by an unrelated root (other-root) signs.",
        ),
        &[&p.other_signer],
    )?);
    cases.push(plain(
        spec(
            "expired-certificate",
            1,
            Threshold(1, 0),
            Some("expired"),
            None,
            "Leaf issued by root, valid 2020-01-01..2021-01-01 only.",
        ),
        &[&p.expired],
    )?);
    cases.push(plain(
        spec(
            "not-yet-valid-certificate",
            1,
            Threshold(1, 0),
            Some("not valid before"),
            None,
            "Leaf issued by root, valid 2090-01-01..2099-12-31 only.",
        ),
        &[&p.future],
    )?);
    cases.push(plain(
        spec("ca-certificate-as-signer", 1, Threshold(1, 0), Some("CA"),
            Some("accepts: Go x509 lets a CA certificate be the leaf"),
            "A CA:TRUE certificate issued by root (an intermediate) signs; only roots and non-CA leaves may sign."),
        &[&p.ca_leaf],
    )?);
    cases.push(plain(
        spec("eku-code-signing-only", 1, Accept(1, 1), None,
            Some("rejects: Go x509.Verify requires serverAuth (or any) when an EKU extension is present"),
            "Leaf with extendedKeyUsage = codeSigning only."),
        &[&p.eku_code],
    )?);
    cases.push(plain(
        spec(
            "eku-server-auth-only",
            1,
            Threshold(1, 0),
            Some("extendedKeyUsage"),
            Some("accepts: serverAuth is Go's default required usage"),
            "Leaf with extendedKeyUsage = serverAuth only.",
        ),
        &[&p.eku_server],
    )?);
    {
        let s = spec(
            "non-ed25519-certificate",
            1,
            Threshold(1, 0),
            Some("Ed25519"),
            None,
            "ECDSA P-256 leaf issued by root; its signature is 64 junk bytes.",
        );
        let zip = zip::build(&standard_entries(s.name)?);
        let junk = [pki::derive("junk/0"), pki::derive("junk/1")].concat();
        let json = descriptor(vec![(&p.ecdsa, junk)])?;
        cases.push(case(s, zip, json));
    }
    cases.push(plain(
        spec("unknown-critical-extension", 1, Threshold(1, 0), Some("critical"), None,
            "Leaf issued by root carrying an unknown extension (OID 1.3.6.1.4.1.99999.42.1) marked critical."),
        &[&p.critical],
    )?);
    cases.push(plain(
        spec(
            "key-usage-without-digital-signature",
            1,
            Threshold(1, 0),
            Some("keyUsage"),
            Some("accepts: Go x509.Verify does not check keyUsage"),
            "Leaf issued by root whose keyUsage is contentCommitment only (no digitalSignature).",
        ),
        &[&p.no_digital_signature],
    )?);
    cases.push(plain(
        spec("issuer-name-collision", 1, Threshold(1, 0), Some("not issued by any signing root"), None,
            "Leaf issued by an impostor CA that carries the real root's subject name but its own key."),
        &[&p.impostor_signer],
    )?);
    {
        let s = spec(
            "unsigned",
            1,
            Threshold(0, 0),
            Some("threshold"),
            None,
            "Descriptor with \"certificates\": null, \"signatures\": null (as ospkg create writes it).",
        );
        let zip = zip::build(&standard_entries(s.name)?);
        let json = descriptor(Vec::new())?;
        cases.push(case(s, zip, json));
    }
    {
        let s = spec(
            "tampered-byte",
            1,
            Threshold(1, 0),
            Some("does not verify"),
            None,
            "signer1 signs, then one bit (XOR 0x01) of the middle byte of the zip is flipped.",
        );
        let mut zip = zip::build(&standard_entries(s.name)?);
        let json = signed(&zip, &[&p.s1])?;
        let mid = zip.len() / 2;
        if let Some(b) = zip.get_mut(mid) {
            *b ^= 0x01;
        }
        cases.push(case(s, zip, json));
    }
    {
        let s = spec(
            "bad-signature-then-good-same-key",
            1,
            Accept(2, 1),
            None,
            Some(
                "rejects (valid 0): it marks the certificate used before checking the signature, so the good signature is skipped as a duplicate",
            ),
            "Entry 0: signer1's certificate with a signature over another digest; entry 1: signer1's certificate with the right signature.",
        );
        let zip = zip::build(&standard_entries(s.name)?);
        let wrong = key_of(&p.s1)?
            .sign(ArchiveDigest::of(b"some other archive").as_bytes())
            .to_vec();
        let json = descriptor(vec![(&p.s1, wrong), (&p.s1, sig(&p.s1, &zip)?)])?;
        cases.push(case(s, zip, json));
    }
    {
        let s = spec(
            "signature-wrong-length",
            1,
            Threshold(1, 0),
            Some("64"),
            None,
            "signer1's good signature truncated to 63 bytes.",
        );
        let zip = zip::build(&standard_entries(s.name)?);
        let mut good = sig(&p.s1, &zip)?;
        good.truncate(63);
        let json = descriptor(vec![(&p.s1, good)])?;
        cases.push(case(s, zip, json));
    }
    {
        let s = spec(
            "more-signatures-than-certificates",
            1,
            Desc,
            Some("signatures"),
            Some("panics: index out of range (no length check)"),
            "Descriptor with 1 certificate and 2 signatures (both by signer1 over the archive).",
        );
        let zip = zip::build(&standard_entries(s.name)?);
        let good = B64.encode(sig(&p.s1, &zip)?);
        let json = raw_descriptor(vec![B64.encode(&p.s1.cert)], vec![good.clone(), good]);
        cases.push(case(s, zip, json));
    }
    {
        let s = spec(
            "certificate-is-base64-of-der",
            1,
            Desc,
            Some("PEM"),
            None,
            "certificates[0] is base64 of the DER, not base64 of the PEM text.",
        );
        let zip = zip::build(&standard_entries(s.name)?);
        let der = pem::parse(p.s1.cert.as_bytes()).map_err(|e| e.to_string())?;
        let json = raw_descriptor(
            vec![B64.encode(der.contents())],
            vec![B64.encode(sig(&p.s1, &zip)?)],
        );
        cases.push(case(s, zip, json));
    }
    {
        let s = spec(
            "oversized-descriptor",
            1,
            Desc,
            Some("limit"),
            Some("accepts: no size limits"),
            "A valid descriptor signed by signer1, padded with trailing spaces to 1 MiB + 1 bytes.",
        );
        let zip = zip::build(&standard_entries(s.name)?);
        let mut json = signed(&zip, &[&p.s1])?;
        json.resize((1 << 20) + 1, b' ');
        cases.push(case(s, zip, json));
    }
    {
        let s = spec(
            "duplicate-manifest",
            1,
            Archive,
            Some("more than once"),
            Some("accepts: the first matching entry wins, the second manifest is ignored"),
            "Two manifest.json entries; the second names boot/evil-vmlinuz (present). Signed properly.",
        );
        let mut e = standard_entries(s.name)?;
        e.insert(3, Entry::deflated("boot/evil-vmlinuz", EVIL_KERNEL));
        e.push(Entry::deflated(
            "manifest.json",
            &manifest_for(s.name, "boot/evil-vmlinuz")?,
        ));
        cases.push(archive_case(s, &p, zip::build(&e))?);
    }
    {
        let s = spec(
            "path-traversal",
            1,
            Archive,
            Some("component"),
            Some("accepts: only the manifest's entries are read, nothing is extracted to disk"),
            "Extra entry named ../../etc/evil. Signed properly.",
        );
        let mut e = standard_entries(s.name)?;
        e.push(Entry::deflated("../../etc/evil", b"evil\n"));
        cases.push(archive_case(s, &p, zip::build(&e))?);
    }
    {
        let s = spec(
            "absolute-path",
            1,
            Archive,
            Some("absolute path"),
            Some("accepts: only the manifest's entries are read"),
            "Extra entry named /etc/evil. Signed properly.",
        );
        let mut e = standard_entries(s.name)?;
        e.push(Entry::deflated("/etc/evil", b"evil\n"));
        cases.push(archive_case(s, &p, zip::build(&e))?);
    }
    {
        let s = spec(
            "zip-bomb",
            1,
            Archive,
            Some("compression ratio"),
            Some("accepts after inflating 256 MiB into memory: no size limits"),
            "The kernel entry is 256 MiB of zeros deflated to about 256 KiB (ratio about 1000:1). Signed properly.",
        );
        let mut e = standard_entries(s.name)?;
        let (data, crc) = zip::deflate_zeros(1 << 20, 256);
        e[1] = Entry::raw(
            KERNEL_PATH,
            zip::DEFLATE,
            zip::FLAG_DATA_DESCRIPTOR,
            data,
            crc,
            256 << 20,
        );
        cases.push(archive_case(s, &p, zip::build(&e))?);
    }
    {
        let s = spec(
            "local-central-name-mismatch",
            1,
            Archive,
            Some("local header name differs"),
            Some("accepts: Go reads names from the central directory only"),
            "The kernel's local header says boot/vmlinux, its central directory entry boot/vmlinuz. Signed properly.",
        );
        let mut e = standard_entries(s.name)?;
        e[1].local_name = b"boot/vmlinux".to_vec();
        cases.push(archive_case(s, &p, zip::build(&e))?);
    }
    {
        let s = spec(
            "local-central-method-mismatch",
            1,
            Archive,
            Some("compression method differs"),
            Some("accepts: Go uses the central directory's method"),
            "The kernel's local header says stored, its central directory entry deflate (the data is deflate). Signed properly.",
        );
        let mut e = standard_entries(s.name)?;
        e[1].local_method = zip::STORED;
        cases.push(archive_case(s, &p, zip::build(&e))?);
    }
    {
        let s = spec(
            "missing-kernel",
            1,
            Archive,
            Some("boot/vmlinuz"),
            None,
            "The manifest names boot/vmlinuz, which is not in the archive. Signed properly.",
        );
        let mut e = standard_entries(s.name)?;
        e.remove(1);
        cases.push(archive_case(s, &p, zip::build(&e))?);
    }
    {
        let s = spec(
            "empty-kernel",
            1,
            Archive,
            Some("length zero"),
            None,
            "boot/vmlinuz is a 0-byte entry. Signed properly.",
        );
        let mut e = standard_entries(s.name)?;
        e[1] = Entry::deflated(KERNEL_PATH, b"");
        cases.push(archive_case(s, &p, zip::build(&e))?);
    }
    {
        let s = spec(
            "manifest-version-2",
            1,
            Archive,
            Some("version"),
            None,
            "manifest.json says \"version\": 2. Signed properly.",
        );
        let mut e = standard_entries(s.name)?;
        let m = format!(
            "{{\n  \"version\": 2,\n  \"label\": \"vector {}\",\n  \"kernel\": \"{KERNEL_PATH}\",\n  \"initramfs\": \"{INITRAMFS_PATH}\",\n  \"cmdline\": \"console=ttyS0\"\n}}",
            s.name
        );
        e[3] = Entry::deflated("manifest.json", m.as_bytes());
        cases.push(archive_case(s, &p, zip::build(&e))?);
    }
    {
        let s = spec(
            "encrypted-entry",
            1,
            Archive,
            Some("encrypted entries"),
            Some(
                "probably accepts: Go archive/zip does not check the encryption flag (the data is plain deflate)",
            ),
            "The kernel entry has general-purpose flag bit 0 (encrypted) set, locally and centrally. Signed properly.",
        );
        let mut e = standard_entries(s.name)?;
        e[1] = e[1]
            .clone()
            .with_flags(zip::FLAG_DATA_DESCRIPTOR | zip::FLAG_ENCRYPTED);
        cases.push(archive_case(s, &p, zip::build(&e))?);
    }
    {
        let s = spec(
            "bad-crc-in-extra-file",
            1,
            Archive,
            Some("boot/README"),
            Some(
                "accepts: only the kernel, initramfs and manifest are read, so no other CRC is checked",
            ),
            "A third file boot/README (neither kernel nor initramfs) whose declared CRC-32 is wrong. Signed properly. stmgr and stboot both inflate every entry.",
        );
        let mut e = standard_entries(s.name)?;
        let mut extra = Entry::deflated("boot/README", b"not the kernel\n");
        extra.crc ^= 1;
        e.insert(3, extra);
        cases.push(archive_case(s, &p, zip::build(&e))?);
    }
    {
        let s = spec(
            "directory-deflate-trailing-junk",
            1,
            Archive,
            Some("bytes after the end of the deflate stream"),
            Some("accepts: directory entries are never read"),
            "The boot/ directory entry is deflated: the empty stream 03 00 followed by 4 junk bytes. Signed properly.",
        );
        let mut e = standard_entries(s.name)?;
        e[0] = Entry::raw("boot/", zip::DEFLATE, 0, b"\x03\x00JUNK".to_vec(), 0, 0);
        cases.push(archive_case(s, &p, zip::build(&e))?);
    }
    {
        let s = spec(
            "cmdline-with-nul",
            1,
            Archive,
            Some("has a NUL character at byte 13"),
            Some("accepts; kexec_file_load then fails (EINVAL), after the download"),
            "manifest.json's cmdline is \"console=ttyS0\\u0000init=/bin/sh\": the kernel would see the line end at the NUL. Signed properly.",
        );
        let mut e = standard_entries(s.name)?;
        let m = format!(
            "{{\n  \"version\": 1,\n  \"label\": \"vector {}\",\n  \"kernel\": \"{KERNEL_PATH}\",\n  \"initramfs\": \"{INITRAMFS_PATH}\",\n  \"cmdline\": \"console=ttyS0\\u0000init=/bin/sh\"\n}}",
            s.name
        );
        e[3] = Entry::deflated("manifest.json", m.as_bytes());
        cases.push(archive_case(s, &p, zip::build(&e))?);
    }
    {
        let s = spec(
            "cmdline-too-long",
            1,
            Archive,
            Some("is 2017 bytes, over the 2016 bytes kexec can pass"),
            Some(
                "accepts; kexec_file_load then fails (EINVAL: the x86_64 bzImage loader allows 2016 bytes)",
            ),
            "manifest.json's cmdline is 2017 bytes (console=ttyS0 and padding). Signed properly.",
        );
        let mut e = standard_entries(s.name)?;
        let cmdline = format!("console=ttyS0 {}", "x".repeat(2017 - 14));
        let m = format!(
            "{{\n  \"version\": 1,\n  \"label\": \"vector {}\",\n  \"kernel\": \"{KERNEL_PATH}\",\n  \"initramfs\": \"{INITRAMFS_PATH}\",\n  \"cmdline\": \"{cmdline}\"\n}}",
            s.name
        );
        e[3] = Entry::deflated("manifest.json", m.as_bytes());
        cases.push(archive_case(s, &p, zip::build(&e))?);
    }
    {
        let s = spec(
            "entry-over-2-gib",
            1,
            Archive,
            Some("2147483649 bytes uncompressed, over the 2147483648-byte limit"),
            Some(
                "rejects only when reading the kernel: its data ends after 32 bytes (unexpected EOF); no size limits",
            ),
            "The kernel entry declares 2 GiB + 1 bytes uncompressed (its data is the 32-byte kernel). Signed properly. stmgr ospkg sign refuses to sign such an archive.",
        );
        let mut e = standard_entries(s.name)?;
        e[1].uncompressed_size = (2 << 30) + 1;
        cases.push(archive_case(s, &p, zip::build(&e))?);
    }
    {
        let s = spec(
            "base64-line-breaks",
            1,
            Accept(1, 1),
            None,
            Some("accepts: Go's base64.StdEncoding skips \\r and \\n"),
            "signer1 signs; in the descriptor the certificate and signature base64 are wrapped at 76 characters with \\r\\n.",
        );
        let zip = zip::build(&standard_entries(s.name)?);
        let json = raw_descriptor(
            vec![wrap76(&B64.encode(&p.s1.cert), "\r\n")],
            vec![wrap76(&B64.encode(sig(&p.s1, &zip)?), "\r\n")],
        );
        cases.push(case(s, zip, json));
    }
    {
        let s = spec(
            "base64-with-spaces",
            1,
            Desc,
            Some("not standard base64"),
            None,
            "signer1 signs; the certificate base64 is wrapped at 76 characters with spaces (only \\r and \\n may be skipped).",
        );
        let zip = zip::build(&standard_entries(s.name)?);
        let json = raw_descriptor(
            vec![wrap76(&B64.encode(&p.s1.cert), " ")],
            vec![B64.encode(sig(&p.s1, &zip)?)],
        );
        cases.push(case(s, zip, json));
    }
    cases.extend(sigsum::cases(&p, &sigsum_keys, &mut trust)?);
    Ok(Built { trust, cases })
}

/// `text` cut into lines of 76 characters, each followed by `sep` (as `base64 -w76` does).
fn wrap76(text: &str, sep: &str) -> String {
    text.as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned() + sep)
        .collect()
}
