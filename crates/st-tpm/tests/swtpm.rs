#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The client against a real TPM: swtpm (Debian packages swtpm, swtpm-tools), its raw TPM
//! command channel over TCP, cross-checked with tpm2-tools where they can say the same thing.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ring::digest;
use st_tpm::{AlgId, Error, ResponseCode, StartupType, Tpm, Transport, TransportError};

/// Fails the test, naming the Debian package, when `program` is not on `PATH`.
fn require_tool(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()));
    assert!(
        found,
        "this test needs `{program}` (Debian package {package}; `cargo xtask test` installs it)"
    );
}

/// swtpm's server channel: raw TPM commands and responses, one at a time. Records the command
/// code and response code of each exchange.
struct Tcp(TcpStream, Vec<(u32, u32)>);

impl Transport for Tcp {
    fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.0.write_all(command)?;
        let mut header = [0u8; 10];
        self.0.read_exact(&mut header)?;
        let size = u32::from_be_bytes(header[2..6].try_into()?) as usize;
        if !(10..=4096).contains(&size) {
            return Err(format!("responseSize {size}").into());
        }
        let mut response = header.to_vec();
        response.resize(size, 0);
        self.0.read_exact(&mut response[10..])?;
        let cc = u32::from_be_bytes(command[6..10].try_into()?);
        self.1
            .push((cc, u32::from_be_bytes(header[6..10].try_into()?)));
        Ok(response)
    }
}

/// A swtpm process on two free local ports with its own state directory; killed on drop.
struct Swtpm {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// Which banks to allocate in the fresh state (swtpm_setup), or none: swtpm's own default.
fn swtpm(banks: Option<&str>, startup: bool) -> Swtpm {
    require_tool("swtpm", "swtpm");
    let dir = tempfile::tempdir().unwrap();
    if let Some(banks) = banks {
        require_tool("swtpm_setup", "swtpm-tools");
        let out = Command::new("swtpm_setup")
            .args(["--tpm2", "--overwrite", "--pcr-banks", banks, "--tpmstate"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "swtpm_setup: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    spawn(dir, startup)
}

/// A swtpm whose state swtpm_setup made with an RSA and an ECC EK, their certificates
/// (`--create-ek-cert`, RSA at NV 0x01c00002) and a platform certificate, signed by
/// swtpm_localca with a CA of its own in the state's temp directory (config files there too:
/// nothing global is read or written), sha256 bank only.
fn swtpm_with_ek_cert() -> Swtpm {
    require_tool("swtpm", "swtpm");
    require_tool("swtpm_setup", "swtpm-tools");
    require_tool("swtpm_localca", "swtpm-tools");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("ca")).unwrap();
    let ca = d.join("ca");
    std::fs::write(
        d.join("swtpm-localca.conf"),
        format!(
            "statedir = {ca}\nsigningkey = {ca}/signkey.pem\nissuercert = {ca}/issuercert.pem\n\
             certserial = {ca}/certserial\n",
            ca = ca.display()
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("swtpm-localca.options"),
        "--platform-manufacturer st-tpm-test\n--platform-version 2.1\n--platform-model swtpm\n",
    )
    .unwrap();
    std::fs::write(
        d.join("swtpm_setup.conf"),
        format!(
            "create_certs_tool = /usr/bin/swtpm_localca\n\
             create_certs_tool_config = {d}/swtpm-localca.conf\n\
             create_certs_tool_options = {d}/swtpm-localca.options\n\
             active_pcr_banks = sha256\n",
            d = d.display()
        ),
    )
    .unwrap();
    let out = Command::new("swtpm_setup")
        .args([
            "--tpm2",
            "--create-ek-cert",
            "--create-platform-cert",
            "--overwrite",
        ])
        .arg("--config")
        .arg(d.join("swtpm_setup.conf"))
        .arg("--tpmstate")
        .arg(d)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "swtpm_setup: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    spawn(dir, true)
}

/// Starts swtpm on the state in `dir`.
fn spawn(dir: tempfile::TempDir, startup: bool) -> Swtpm {
    // Two free ports; another process may take one in between, so try a few times.
    for _ in 0..5 {
        let (port, ctrl) = free_ports();
        let flags = if startup {
            "not-need-init,startup-clear"
        } else {
            "not-need-init"
        };
        let mut child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--flags", flags])
            .arg("--server")
            .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={ctrl},bindaddr=127.0.0.1"))
            .arg("--tpmstate")
            .arg(format!("dir={}", dir.path().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                eprintln!("swtpm exited ({status}): {err}; retrying on other ports");
                break;
            }
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                return Swtpm { child, port, dir };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("swtpm did not start");
}

/// Two free consecutive ports: tpm2-tools' swtpm TCTI finds the control channel at the
/// server port + 1.
fn free_ports() -> (u16, u16) {
    loop {
        let a = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = a.local_addr().unwrap().port();
        if port < u16::MAX && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)).is_ok() {
            return (port, port + 1);
        }
    }
}

impl Swtpm {
    /// A client on a new connection (swtpm serves one connection at a time: drop it before
    /// running tpm2-tools).
    fn client(&self) -> Tpm<Tcp> {
        let s = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Tpm::new(Tcp(s, Vec::new()))
    }

    /// Runs a tpm2-tools program against this swtpm and returns its stdout.
    fn tpm2(&self, program: &str, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        let out = self.tpm2_output(program, args, stdin);
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Runs a tpm2-tools program against this swtpm, whatever its outcome.
    fn tpm2_output(&self, program: &str, args: &[&str], stdin: &[u8]) -> std::process::Output {
        require_tool(program, "tpm2-tools");
        let mut child = Command::new(program)
            .args(args)
            .env(
                "TPM2TOOLS_TCTI",
                format!("swtpm:host=127.0.0.1,port={}", self.port),
            )
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn algorithm(alg: AlgId) -> &'static digest::Algorithm {
    match alg {
        AlgId::SHA1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        AlgId::SHA256 => &digest::SHA256,
        AlgId::SHA384 => &digest::SHA384,
        AlgId::SHA512 => &digest::SHA512,
        other => panic!("no hash for {other}"),
    }
}

/// `PCR_new = H(PCR_old || digest)`, from a zero PCR.
fn chain(alg: AlgId, digests: &[Vec<u8>]) -> Vec<u8> {
    let a = algorithm(alg);
    let mut pcr = vec![0u8; a.output_len()];
    for d in digests {
        let mut ctx = digest::Context::new(a);
        ctx.update(&pcr);
        ctx.update(d);
        pcr = ctx.finish().as_ref().to_vec();
    }
    pcr
}

fn hash(alg: AlgId, data: &[u8]) -> Vec<u8> {
    digest::digest(algorithm(alg), data).as_ref().to_vec()
}

const ALL_BANKS: [AlgId; 4] = [AlgId::SHA1, AlgId::SHA256, AlgId::SHA384, AlgId::SHA512];

#[test]
fn active_banks_as_allocated() {
    let tpm = swtpm(Some("sha1,sha256,sha384,sha512"), true);
    assert_eq!(tpm.client().active_pcr_banks().unwrap(), ALL_BANKS);
    let banks = tpm.client().pcr_banks().unwrap();
    assert!(
        banks.iter().all(|b| b.select == [0xff, 0xff, 0xff]),
        "{banks:?}"
    );

    let tpm = swtpm(Some("sha256"), true);
    assert_eq!(tpm.client().active_pcr_banks().unwrap(), [AlgId::SHA256]);
    // The other banks are still listed, with nothing allocated, and read as not active.
    assert_eq!(tpm.client().pcr_banks().unwrap().len(), 4);
    let e = tpm.client().pcr_read(12, AlgId::SHA384).unwrap_err();
    assert!(
        matches!(
            e,
            Error::PcrNotReturned {
                pcr: 12,
                alg: AlgId::SHA384
            }
        ),
        "{e}"
    );
    // A digest for a bank that is not allocated is ignored (TPM 2.0 Part 3, PCR_Extend):
    // the extend succeeds, the allocated bank moves, the other still reads as not active.
    let mut c = tpm.client();
    let (d384, d256) = (hash(AlgId::SHA384, b"x"), hash(AlgId::SHA256, b"x"));
    c.pcr_extend(12, &[(AlgId::SHA384, &d384), (AlgId::SHA256, &d256)])
        .unwrap();
    assert_eq!(
        c.pcr_read(12, AlgId::SHA256).unwrap(),
        chain(AlgId::SHA256, &[d256])
    );
    assert!(matches!(
        c.pcr_read(12, AlgId::SHA384),
        Err(Error::PcrNotReturned { .. })
    ));
}

#[test]
fn extend_every_bank_then_read() {
    let tpm = swtpm(Some("sha1,sha256,sha384,sha512"), true);
    let mut c = tpm.client();
    let banks = c.active_pcr_banks().unwrap();
    assert_eq!(banks, ALL_BANKS);
    for bank in &banks {
        assert_eq!(
            c.pcr_read(12, *bank).unwrap(),
            vec![0; bank.digest_size().unwrap()]
        );
    }
    let events: [&[u8]; 2] = [b"archive", b"descriptor"];
    for event in events {
        let digests: Vec<(AlgId, Vec<u8>)> = banks.iter().map(|b| (*b, hash(*b, event))).collect();
        let refs: Vec<(AlgId, &[u8])> = digests.iter().map(|(a, d)| (*a, d.as_slice())).collect();
        c.pcr_extend(12, &refs).unwrap();
    }
    for bank in &banks {
        let expected = chain(*bank, &events.map(|e| hash(*bank, e)));
        assert_eq!(c.pcr_read(12, *bank).unwrap(), expected, "PCR 12 in {bank}");
        assert_eq!(
            c.pcr_read(13, *bank).unwrap(),
            vec![0; expected.len()],
            "PCR 13 untouched"
        );
    }
    let sha256 = c.pcr_read(12, AlgId::SHA256).unwrap();
    drop(c);

    // tpm2-tools reads the same value.
    let out = tpm.path("pcr12.bin");
    tpm.tpm2(
        "tpm2_pcrread",
        &["sha256:12", "-o", out.to_str().unwrap()],
        &[],
    );
    assert_eq!(std::fs::read(&out).unwrap(), sha256);

    // One bank only: the others stay where they were.
    let mut c = tpm.client();
    let before = c.pcr_read(12, AlgId::SHA1).unwrap();
    c.pcr_extend(12, &[(AlgId::SHA256, &hash(AlgId::SHA256, b"more"))])
        .unwrap();
    assert_eq!(c.pcr_read(12, AlgId::SHA1).unwrap(), before);
    assert_ne!(c.pcr_read(12, AlgId::SHA256).unwrap(), sha256);
}

/// Defines NV index `index` of `size` bytes readable with its own (empty) auth, as an
/// operator would for the identity.
fn nvdefine(tpm: &Swtpm, index: &str, size: usize) {
    tpm.tpm2(
        "tpm2_nvdefine",
        &[
            index,
            "-C",
            "o",
            "-s",
            &size.to_string(),
            "-a",
            "ownerwrite|ownerread|authwrite|authread",
        ],
        &[],
    );
}

fn nvwrite(tpm: &Swtpm, index: &str, data: &[u8]) {
    let file = tpm.path("nv.bin");
    std::fs::write(&file, data).unwrap();
    tpm.tpm2(
        "tpm2_nvwrite",
        &[index, "-C", "o", "-i", file.to_str().unwrap()],
        &[],
    );
}

#[test]
fn nv_identity_index() {
    let tpm = swtpm(None, true);
    // Absent: None, not an error.
    assert_eq!(tpm.client().nv_read_all(0x0142_0001).unwrap(), None);
    assert_eq!(tpm.client().nv_read_public(0x0142_0001).unwrap(), None);

    nvdefine(&tpm, "0x01420001", 16);
    // Defined, never written: the TPM's error, decoded.
    let public = tpm.client().nv_read_public(0x0142_0001).unwrap().unwrap();
    assert_eq!((public.data_size, public.written()), (16, false));
    let e = tpm.client().nv_read_all(0x0142_0001).unwrap_err();
    assert_eq!(
        e.response_code(),
        Some(ResponseCode::NV_UNINITIALIZED),
        "{e}"
    );

    let identity = b"rack-7-server-42";
    nvwrite(&tpm, "0x01420001", identity);
    let mut c = tpm.client();
    assert!(c.nv_read_public(0x0142_0001).unwrap().unwrap().written());
    assert_eq!(
        c.nv_read_all(0x0142_0001).unwrap().as_deref(),
        Some(&identity[..])
    );
    assert_eq!(
        c.nv_buffer_max().unwrap(),
        1024,
        "swtpm's TPM_PT_NV_BUFFER_MAX"
    );
    let name = c.nv_read_public(0x0142_0001).unwrap().unwrap().name;
    drop(c);
    // The name tpm2-tools reports for it.
    let text = String::from_utf8(tpm.tpm2("tpm2_nvreadpublic", &["0x01420001"], &[])).unwrap();
    let hexname: String = name.iter().map(|b| format!("{b:02x}")).collect();
    assert!(text.contains(&format!("name: {hexname}")), "{text}");
}

#[test]
fn nv_read_in_chunks() {
    let tpm = swtpm(None, true);
    let data: Vec<u8> = (0..2000u32).map(|i| (i * 7 + i / 256) as u8).collect();
    nvdefine(&tpm, "0x01500010", data.len());
    nvwrite(&tpm, "0x01500010", &data);
    // 2000 bytes (swtpm allows at most 2048 per index): NV_Reads of 1024 and 976.
    let mut c = tpm.client();
    assert_eq!(c.nv_read_all(0x0150_0010).unwrap(), Some(data));
    let nv_reads: Vec<u32> = c
        .transport()
        .1
        .iter()
        .filter(|(cc, _)| *cc == 0x14e)
        .map(|(_, rc)| *rc)
        .collect();
    // swtpm answers the first NV_Read after a write with TPM_RC_RETRY (0x922); the client
    // sends it again.
    eprintln!("NV_Read response codes: {nv_reads:x?}");
    assert_eq!(
        nv_reads.iter().filter(|rc| **rc == 0).count(),
        2,
        "{nv_reads:x?}"
    );
}

#[test]
fn startup_and_random() {
    let tpm = swtpm(None, false);
    let mut c = tpm.client();
    let e = c.get_random(8).unwrap_err();
    assert_eq!(e.response_code(), Some(ResponseCode::INITIALIZE), "{e}");
    c.startup(StartupType::Clear).unwrap();
    let e = c.startup(StartupType::Clear).unwrap_err();
    assert_eq!(e.response_code(), Some(ResponseCode::INITIALIZE), "{e}");
    let a = c.get_random(16).unwrap();
    let b = c.get_random(16).unwrap();
    assert_eq!((a.len(), b.len()), (16, 16));
    assert_ne!(a, b);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs a program (not a tpm2-tools one against the TPM) and returns its stdout.
fn run(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `TPM_RH_ENDORSEMENT`-hierarchy persistent EK that swtpm_setup made from the same template.
const SWTPM_SETUP_EK: u32 = 0x8101_0001;

#[test]
fn ek_from_the_default_template_is_the_certified_key() {
    let tpm = swtpm_with_ek_cert();
    let mut c = tpm.client();
    let ek = c.create_ek_rsa().unwrap();
    let cert = c
        .ek_certificate_rsa()
        .unwrap()
        .expect("EK certificate index");
    // The TPM's own copy reads the same, and so does the EK swtpm_setup made and persisted.
    let read = c.read_public(ek.handle).unwrap();
    assert_eq!(
        (read.public.as_slice(), read.name.as_slice()),
        (&ek.public[..], &ek.name[..])
    );
    assert_eq!(c.read_public(SWTPM_SETUP_EK).unwrap().public, ek.public);
    assert_eq!(ek.public.len(), 2 + 314, "RSA-2048 TPM2B_PUBLIC");
    assert_eq!(ek.name.len(), 34);
    c.flush(ek.handle).unwrap();
    // Flushed: the handle refers to nothing (TPM_RC_REFERENCE_H0).
    let e = c.read_public(ek.handle).unwrap_err();
    assert_eq!(e.response_code().map(|rc| rc.0), Some(0x910), "{e}");
    drop(c);

    // openssl: the certificate's key; tpm2_print: our TPM2B_PUBLIC as PEM. The same key.
    std::fs::write(tpm.path("ek.der"), &cert).unwrap();
    std::fs::write(tpm.path("ek.pub"), &ek.public).unwrap();
    let cert_key = run(
        "openssl",
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            tpm.path("ek.der").to_str().unwrap(),
            "-noout",
            "-pubkey",
        ],
    );
    let our_key = tpm.tpm2(
        "tpm2_print",
        &[
            "-t",
            "TPM2B_PUBLIC",
            "-f",
            "pem",
            tpm.path("ek.pub").to_str().unwrap(),
        ],
        &[],
    );
    assert!(String::from_utf8_lossy(&cert_key).contains("BEGIN PUBLIC KEY"));
    assert_eq!(
        String::from_utf8_lossy(&our_key),
        String::from_utf8_lossy(&cert_key)
    );
    // And the modulus directly: the last 256 bytes of the public area.
    let modulus = run(
        "openssl",
        &[
            "x509",
            "-inform",
            "DER",
            "-in",
            tpm.path("ek.der").to_str().unwrap(),
            "-noout",
            "-modulus",
        ],
    );
    assert_eq!(
        String::from_utf8(modulus).unwrap().trim().to_lowercase(),
        format!("modulus={}", hex(&ek.public[ek.public.len() - 256..]))
    );
}

#[test]
fn ak_is_deterministic_until_clear() {
    let tpm = swtpm_with_ek_cert();
    let mut c = tpm.client();
    let a = c.create_ak_p256().unwrap();
    let b = c.create_ak_p256().unwrap();
    assert_ne!(a.handle, b.handle);
    assert_eq!((&a.public, &a.name), (&b.public, &b.name));
    c.flush(a.handle).unwrap();
    c.flush(b.handle).unwrap();
    let again = c.create_ak_p256().unwrap();
    assert_eq!(again.public, a.public);
    c.flush(again.handle).unwrap();
    // Another unique label (the agent's per-boot AK): another key; the same label: the same.
    let boot1 = c.create_ak_p256_unique(&[1; 32]).unwrap();
    let boot2 = c.create_ak_p256_unique(&[2; 32]).unwrap();
    assert_ne!(boot1.name, boot2.name);
    assert_ne!(boot1.name, a.name);
    let boot1_again = c.create_ak_p256_unique(&[1; 32]).unwrap();
    assert_eq!(boot1_again.name, boot1.name);
    for k in [boot1, boot2, boot1_again] {
        c.flush(k.handle).unwrap();
    }
    let ek = c.create_ek_rsa().unwrap();
    c.flush(ek.handle).unwrap();
    drop(c);

    // tpm2-tools reads the template we meant.
    std::fs::write(tpm.path("ak.pub"), &a.public).unwrap();
    let yaml = String::from_utf8(tpm.tpm2(
        "tpm2_print",
        &["-t", "TPM2B_PUBLIC", tpm.path("ak.pub").to_str().unwrap()],
        &[],
    ))
    .unwrap();
    for want in [
        "value: fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign",
        "type:\n  value: ecc",
        "curve-id:\n  value: NIST p256",
        "scheme:\n  value: ecdsa",
        "scheme-halg:\n  value: sha256",
    ] {
        assert!(yaml.contains(want), "{want:?} not in\n{yaml}");
    }

    // TPM2_Clear makes a new owner seed: another AK. The endorsement seed stays: same EK.
    tpm.tpm2("tpm2_clear", &[], &[]);
    let mut c = tpm.client();
    let after = c.create_ak_p256().unwrap();
    assert_ne!(after.public, a.public);
    assert_ne!(after.name, a.name);
    let ek_after = c.create_ek_rsa().unwrap();
    assert_eq!(ek_after.public, ek.public);
}

/// tpm2_makecredential's output file: magic, version, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET.
fn split_credential(file: &[u8]) -> (Vec<u8>, Vec<u8>) {
    assert_eq!(&file[..8], &[0xba, 0xdc, 0xc0, 0xde, 0, 0, 0, 1]);
    let rest = &file[8..];
    let n = 2 + u16::from_be_bytes([rest[0], rest[1]]) as usize;
    let (id, secret) = rest.split_at(n);
    let m = 2 + u16::from_be_bytes([secret[0], secret[1]]) as usize;
    assert_eq!(secret.len(), m);
    (id.to_vec(), secret.to_vec())
}

/// `tpm2_makecredential --tcti none` (in software) for `name` under the EK public `ek.pub`.
fn make_credential(tpm: &Swtpm, name: &[u8], secret: &[u8]) -> (Vec<u8>, Vec<u8>) {
    std::fs::write(tpm.path("secret.bin"), secret).unwrap();
    let out = tpm.path("cred.bin");
    let _ = std::fs::remove_file(&out);
    tpm.tpm2(
        "tpm2_makecredential",
        &[
            "--tcti",
            "none",
            "-u",
            tpm.path("ek.pub").to_str().unwrap(),
            "-s",
            tpm.path("secret.bin").to_str().unwrap(),
            "-n",
            &hex(name),
            "-o",
            out.to_str().unwrap(),
        ],
        &[],
    );
    split_credential(&std::fs::read(out).unwrap())
}

#[test]
fn activate_a_credential_from_tpm2_makecredential() {
    let tpm = swtpm_with_ek_cert();
    let mut c = tpm.client();
    let ek = c.create_ek_rsa().unwrap();
    let ak = c.create_ak_p256().unwrap();
    std::fs::write(tpm.path("ek.pub"), &ek.public).unwrap();
    let secret = hash(AlgId::SHA256, b"the verifier's secret");
    let (id, enc) = make_credential(&tpm, &ak.name, &secret);
    assert_eq!(
        c.activate_credential(ak.handle, ek.handle, &id, &enc)
            .unwrap(),
        secret
    );

    // Made for another name (the EK's): the TPM refuses (TPM_RC_INTEGRITY on the blob).
    // Five times over: each failed attempt's policy session is flushed, or swtpm's few
    // session slots would run out before the good one below.
    let (bad_id, bad_enc) = make_credential(&tpm, &ek.name, &secret);
    for _ in 0..5 {
        let e = c
            .activate_credential(ak.handle, ek.handle, &bad_id, &bad_enc)
            .unwrap_err();
        assert!(matches!(e, Error::Tpm { .. }), "{e}");
        assert_eq!(
            e.response_code().map(|rc| rc.base()),
            Some(0x09f),
            "TPM_RC_INTEGRITY: {e}"
        );
    }
    // A secret for another EK's seed does not decrypt either; cut one: refused before sending.
    let e = c
        .activate_credential(ak.handle, ek.handle, &id, &enc[..enc.len() - 1])
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidArgument {
                field: "secret",
                ..
            }
        ),
        "{e}"
    );
    // The keys the other way round: the AK cannot decrypt the seed.
    let e = c
        .activate_credential(ek.handle, ak.handle, &id, &enc)
        .unwrap_err();
    assert!(matches!(e, Error::Tpm { .. }), "{e}");
    let (id2, enc2) = make_credential(&tpm, &ak.name, b"0123456789abcdef");
    assert_eq!(
        c.activate_credential(ak.handle, ek.handle, &id2, &enc2)
            .unwrap(),
        b"0123456789abcdef"
    );
}

const QUOTED: [u32; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 12, 13, 14, 15];

#[test]
fn quote_verifies_with_tpm2_checkquote() {
    let tpm = swtpm_with_ek_cert();
    let mut c = tpm.client();
    c.pcr_extend(15, &[(AlgId::SHA256, &hash(AlgId::SHA256, b"binding"))])
        .unwrap();
    let ak = c.create_ak_p256().unwrap();
    let nonce = hash(AlgId::SHA256, b"nonce");
    let q = c.quote(ak.handle, &nonce, &QUOTED).unwrap();
    assert_eq!(&q.attest[..6], &[0xff, 0x54, 0x43, 0x47, 0x80, 0x18]);
    // TPMT_SIGNATURE: ECDSA, sha256, r and s of 32 bytes.
    assert_eq!(&q.signature[..6], &[0x00, 0x18, 0x00, 0x0b, 0x00, 0x20]);
    assert_eq!(q.signature.len(), 2 + 2 + 34 + 34);

    // ring agrees: ECDSA P-256 SHA-256 over the attest by the AK's point.
    let area = &ak.public[2..];
    let point = &area[area.len() - 68..];
    let (x, y) = (&point[2..34], &point[36..68]);
    let key = [&[4u8][..], x, y].concat();
    let sig = [&q.signature[6..38], &q.signature[40..72]].concat();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &key)
        .verify(&q.attest, &sig)
        .unwrap();
    let q2 = c.quote(ak.handle, &nonce[..16], &[15]).unwrap();
    drop(c);

    let file = |name: &str, bytes: &[u8]| {
        let p = tpm.path(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    };
    let (akf, msg, sigf) = (
        file("ak.pub", &ak.public),
        file("attest.bin", &q.attest),
        file("sig.bin", &q.signature),
    );
    let list = "sha256:0,1,2,3,4,5,6,7,12,13,14,15";
    let pcrs = tpm.path("pcrs.bin").to_str().unwrap().to_string();
    // tpm2-tools' own serialized PCR file (selection and values): checkquote 5.4 fails to
    // read plain values with `-l` for this selection.
    tpm.tpm2(
        "tpm2_pcrread",
        &[list, "-F", "serialized", "-o", &pcrs],
        &[],
    );
    let check = |nonce: &[u8], msg: &str, sig: &str| {
        tpm.tpm2_output(
            "tpm2_checkquote",
            &[
                "-u",
                &akf,
                "-m",
                msg,
                "-s",
                sig,
                "-f",
                &pcrs,
                "-g",
                "sha256",
                "-q",
                &hex(nonce),
            ],
            &[],
        )
    };
    let ok = check(&nonce, &msg, &sigf);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // A wrong nonce, another quote's signature, or PCRs that moved: refused.
    assert!(
        !check(&hash(AlgId::SHA256, b"other"), &msg, &sigf)
            .status
            .success()
    );
    let (msg2, sig2) = (
        file("attest2.bin", &q2.attest),
        file("sig2.bin", &q2.signature),
    );
    assert!(!check(&nonce, &msg, &sig2).status.success());
    assert!(!check(&nonce, &msg2, &sigf).status.success());
    let mut c = tpm.client();
    c.pcr_extend(15, &[(AlgId::SHA256, &hash(AlgId::SHA256, b"later"))])
        .unwrap();
    drop(c);
    tpm.tpm2(
        "tpm2_pcrread",
        &[list, "-F", "serialized", "-o", &pcrs],
        &[],
    );
    assert!(!check(&nonce, &msg, &sigf).status.success());
}
