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
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
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
