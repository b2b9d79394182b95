//! The attestation agent played by a real TPM: swtpm (with an EK certificate from
//! swtpm_localca) driven by tpm2-tools. It measures like stboot (st_measure's events and log),
//! binds like the agent (PCR 15), recovers the verifier's secret with
//! `tpm2_activatecredential` and quotes with `tpm2_quote`.

use super::*;
use st_attest::{Binding, Credential, Keys};
use st_measure::{ArchiveSource, Bank, Event, EventLog, Inputs};
use std::io::Read;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Fails the test, naming the Debian package, when `program` is not on `PATH`.
pub fn require_tool(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()));
    assert!(
        found,
        "this test needs `{program}` (Debian package {package}; `cargo xtask test` installs it)"
    );
}

/// A swtpm process with a fresh state (EK certificate by the CA in `ca`); killed on drop.
pub struct Swtpm {
    child: Child,
    port: u16,
    pub dir: tempfile::TempDir,
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_ports() -> (u16, u16) {
    loop {
        let a = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = a.local_addr().unwrap().port();
        if port < u16::MAX && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)).is_ok() {
            return (port, port + 1);
        }
    }
}

/// A local CA for swtpm_localca in `ca` (created on first use, shared by every TPM made with
/// it, as a vendor's CA is).
pub fn swtpm_with_ek_cert(ca: &Path) -> Swtpm {
    for (p, pkg) in [
        ("swtpm", "swtpm"),
        ("swtpm_setup", "swtpm-tools"),
        ("swtpm_localca", "swtpm-tools"),
        ("tpm2_createek", "tpm2-tools"),
    ] {
        require_tool(p, pkg);
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
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
        d.join("swtpm_setup.conf"),
        format!(
            "create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = {}\n\
             create_certs_tool_options = /etc/swtpm-localca.options\n",
            d.join("swtpm-localca.conf").display()
        ),
    )
    .unwrap();
    let out = Command::new("swtpm_setup")
        .args([
            "--tpm2",
            "--create-ek-cert",
            "--pcr-banks",
            "sha256",
            "--config",
        ])
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
    for _ in 0..5 {
        let (port, ctrl) = free_ports();
        let mut child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--flags", "not-need-init,startup-clear"])
            .arg("--server")
            .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={ctrl},bindaddr=127.0.0.1"))
            .arg("--tpmstate")
            .arg(format!("dir={}", d.display()))
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
            if let Ok(s) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
                drop(s);
                return Swtpm { child, port, dir };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("swtpm did not start");
}

const EK_HANDLE: &str = "0x81010001";
const AK_HANDLE: &str = "0x81010002";

impl Swtpm {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Run a tpm2-tools command against this TPM; `Err(stderr)` when it fails.
    pub fn try_tool(&self, args: &[&str]) -> Result<Vec<u8>, String> {
        let out = Command::new(args[0])
            .args(&args[1..])
            .env(
                "TPM2TOOLS_TCTI",
                format!("swtpm:host=127.0.0.1,port={}", self.port),
            )
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(format!(
                "{}: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    pub fn tool(&self, args: &[&str]) -> Vec<u8> {
        self.try_tool(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A power cycle (swtpm's control channel, as a reboot): PCRs back to their reset
    /// values, then TPM2_Startup(CLEAR). Persistent keys stay.
    pub fn reset(&self) {
        let out = Command::new("swtpm_ioctl")
            .args(["--tcp", &format!("127.0.0.1:{}", self.port + 1), "-i"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "swtpm_ioctl -i: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.tool(&["tpm2_startup", "-c"]);
    }

    fn flush(&self) {
        self.tool(&["tpm2_flushcontext", "-t"]);
        self.tool(&["tpm2_flushcontext", "-s"]);
    }

    /// The EK (RSA-2048, the TCG default template, which swtpm_setup certified and made
    /// persistent) and an AK
    /// (ECC P-256, ECDSA-SHA256), both made persistent.
    pub fn make_keys(&self) {
        // swtpm_setup --create-ek-cert left the RSA EK persistent at 0x81010001.
        self.tool(&["tpm2_readpublic", "-c", EK_HANDLE, "-o", "ek.pub"]);
        self.flush();
        self.tool(&[
            "tpm2_createak",
            "-C",
            EK_HANDLE,
            "-c",
            "ak.ctx",
            "-G",
            "ecc",
            "-g",
            "sha256",
            "-s",
            "ecdsa",
            "-u",
            "ak.pub",
            "-n",
            "ak.name",
        ]);
        self.tool(&["tpm2_evictcontrol", "-c", "ak.ctx", AK_HANDLE]);
        self.flush();
        self.tool(&["tpm2_nvread", "0x01c00002", "-o", "ek.der"]);
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    pub fn extend(&self, pcr: u32, digest: &[u8]) {
        self.tool(&[
            "tpm2_pcrextend",
            &format!("{pcr}:sha256={}", st_measure::hex(digest)),
        ]);
    }

    /// `tpm2_activatecredential` of the AK under the EK with a PolicySecret(endorsement)
    /// session: the recovered secret.
    pub fn activate(&self, credential: &Credential) -> Result<Vec<u8>, String> {
        let mut file = 0xBADC_C0DEu32.to_be_bytes().to_vec();
        file.extend_from_slice(&1u32.to_be_bytes());
        file.extend_from_slice(&credential.id_object);
        file.extend_from_slice(&credential.encrypted_secret);
        std::fs::write(self.path("cred.bin"), file).unwrap();
        let _ = std::fs::remove_file(self.path("secret.bin"));
        self.tool(&[
            "tpm2_startauthsession",
            "--policy-session",
            "-S",
            "session.ctx",
        ]);
        self.tool(&["tpm2_policysecret", "-S", "session.ctx", "-c", "e"]);
        let r = self.try_tool(&[
            "tpm2_activatecredential",
            "-c",
            AK_HANDLE,
            "-C",
            EK_HANDLE,
            "-i",
            "cred.bin",
            "-o",
            "secret.bin",
            "-P",
            "session:session.ctx",
        ]);
        let _ = self.try_tool(&["tpm2_flushcontext", "session.ctx"]);
        self.flush();
        r.map(|_| self.read("secret.bin"))
    }

    /// `tpm2_quote` over PCRs 0-7, 12-15 (sha256) with `qualifying`; checked with
    /// `tpm2_checkquote`. Returns (TPMS_ATTEST, TPMT_SIGNATURE, PCR values).
    pub fn quote(&self, qualifying: &[u8]) -> QuoteOut {
        let q = st_measure::hex(qualifying);
        let sel = "sha256:0,1,2,3,4,5,6,7,12,13,14,15";
        self.tool(&[
            "tpm2_quote",
            "-c",
            AK_HANDLE,
            "-l",
            sel,
            "-q",
            &q,
            "-m",
            "quote.msg",
            "-s",
            "quote.sig",
            "-o",
            "quote.pcrs",
            "-g",
            "sha256",
        ]);
        self.flush();
        self.tool(&[
            "tpm2_checkquote",
            "-u",
            "ak.pub",
            "-m",
            "quote.msg",
            "-s",
            "quote.sig",
            "-f",
            "quote.pcrs",
            "-g",
            "sha256",
            "-q",
            &q,
        ]);
        self.tool(&["tpm2_pcrread", sel, "-o", "pcrs.bin"]);
        let values = self.read("pcrs.bin");
        let pcrs = [0u32, 1, 2, 3, 4, 5, 6, 7, 12, 13, 14, 15]
            .iter()
            .zip(values.chunks(32))
            .map(|(p, v)| (*p, v.to_vec()))
            .collect();
        (self.read("quote.msg"), self.read("quote.sig"), pcrs)
    }
}

/// TPMS_ATTEST, TPMT_SIGNATURE, the PCR values.
pub type QuoteOut = (Vec<u8>, Vec<u8>, Vec<(u32, Vec<u8>)>);

/// The os_pkg_url of every fixture's descriptor.
pub const OS_PKG_URL: &str = "https://ospkg.example/ospkg/os-1.zip";

/// What one boot measured and logged.
pub struct Boot {
    pub stboot_log: Vec<u8>,
    pub firmware_log: Option<Vec<u8>>,
    pub descriptor: Vec<u8>,
    pub archive_sha256: [u8; 32],
}

/// Measure like firmware (a small log: CRTM version, a boot application, separators) and like
/// stboot (st_measure's events for `case` under trust `trust`), extending the real PCRs.
pub fn measure(tpm: &Swtpm, case: &str, trust: &str, firmware: bool) -> Boot {
    let (archive, descriptor) = package(case);
    // Where the package is served (the vectors leave os_pkg_url empty; the signatures cover
    // only the archive, so the descriptor may say where it lives).
    let descriptor = String::from_utf8(descriptor)
        .unwrap()
        .replace(
            r#""os_pkg_url": """#,
            &format!(r#""os_pkg_url": "{OS_PKG_URL}""#),
        )
        .into_bytes();
    let dir = trust_dir(trust);
    let parsed = st_format::Descriptor::from_json(&descriptor).unwrap();
    let roots: Vec<&[u8]> = dir.roots().ders().collect();
    let tls: Vec<&[u8]> = dir.tls_roots().iter().map(Vec::as_slice).collect();
    let archive_sha256 = sha256(&archive);
    let events = st_measure::events(&Inputs {
        archive_sha256,
        archive_source: ArchiveSource::Network {
            file_name: &st_measure::archive_name_from_url_path("/ospkg/os-1.zip"),
        },
        descriptor_bytes: &descriptor,
        descriptor: &parsed,
        trust_policy: dir.policy(),
        signing_roots: &roots,
        tls_roots: &tls,
        identity: b"host-1",
        sigsum_policy: dir.sigsum_policy_text(),
    });
    let firmware_log = firmware.then(|| {
        let fw: Vec<Event> = [
            (0u32, 0x0000_0008u32, b"swtpm test firmware 1.0".to_vec()),
            (4, 0x8000_0003, b"\\EFI\\BOOT\\BOOTX64.EFI".to_vec()),
        ]
        .into_iter()
        .chain((0..8).map(|p| (p, 0x0000_0004, vec![0u8; 4])))
        .map(|(pcr, event_type, data)| Event {
            pcr,
            event_type,
            measured: sha256(&data),
            data,
        })
        .collect();
        let mut log = EventLog::new(&[Bank::Sha256]);
        for e in &fw {
            tpm.extend(e.pcr, &e.digest(Bank::Sha256));
            log.push(e);
        }
        log.to_bytes()
    });
    let mut log = EventLog::new(&[Bank::Sha256]);
    for e in &events {
        tpm.extend(e.pcr, &e.digest(Bank::Sha256));
        log.push(e);
    }
    Boot {
        stboot_log: log.to_bytes(),
        firmware_log,
        descriptor,
        archive_sha256,
    }
}

/// The agent's binding for this TPM's AK, extended into PCR 15.
pub fn bind(tpm: &Swtpm, ak_name: &[u8]) -> String {
    let b = Binding {
        ak_name: ak_name.to_vec(),
        wireguard: sha256(b"fixture wireguard key"),
        tls_spki_sha256: sha256(b"fixture tls spki"),
    };
    let statement = format!(
        "st-attest-binding-v1\nak-name {}\nwireguard {}\ntls-spki-sha256 {}\n",
        st_measure::hex(&b.ak_name),
        st_attest::ServiceKey::WireGuard(b.wireguard)
            .to_string()
            .trim_start_matches("wireguard:"),
        st_measure::hex(&b.tls_spki_sha256)
    );
    assert_eq!(Binding::parse(&statement).unwrap(), b);
    tpm.extend(15, &sha256(&sha256(statement.as_bytes())));
    statement
}

impl Swtpm {
    pub fn keys(&self, binding: &str) -> Keys {
        Keys {
            ek_public: self.read("ek.pub"),
            ek_certificate: Some(self.read("ek.der")),
            ak_public: self.read("ak.pub"),
            binding: binding.to_string(),
        }
    }
}
