//! The stprov binary end to end on this machine: `remote run` against `local run` over
//! loopback (real TLS with the derived certificate), `remote static` against a real HTTPS
//! server trusted through a tls_roots.pem, `offline write` into Debian's OVMF variable store,
//! and the exit codes of the failures. EFI variables go to a temporary directory
//! (`--efivarfs`, for tests only).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;

const BIN: &str = env!("CARGO_BIN_EXE_stprov");
const GUID: &str = "f401f2c1-b005-4be0-8cee-f2e5945bcbe7";

fn var_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}-{GUID}"))
}

fn write_var(dir: &Path, name: &str, data: &[u8]) {
    let mut bytes = 7u32.to_le_bytes().to_vec();
    bytes.extend_from_slice(data);
    std::fs::write(var_file(dir, name), bytes).unwrap();
}

fn read_var(dir: &Path, name: &str) -> Option<Vec<u8>> {
    let bytes = std::fs::read(var_file(dir, name)).ok()?;
    assert_eq!(
        bytes[..4],
        7u32.to_le_bytes(),
        "{name}: attributes NV|BS|RT"
    );
    Some(bytes[4..].to_vec())
}

fn stprov(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("STPROV_EFIVARFS")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `remote run` in the background; returns once it listens.
struct Remote {
    child: std::process::Child,
    log: std::sync::mpsc::Receiver<String>,
}

impl Remote {
    fn start(efi: &Path, otp: &str, port: u16, allow: &str) -> Self {
        let mut child = Command::new(BIN)
            .args([
                "remote",
                "run",
                "-o",
                otp,
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .args(["-a", allow, "--efivarfs"])
            .arg(efi)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                let _ = tx.send(line.clone());
                line.clear();
            }
        });
        let remote = Self { child, log: rx };
        remote.wait_for("listening on");
        remote
    }

    fn wait_for(&self, what: &str) -> String {
        let mut seen = String::new();
        loop {
            match self.log.recv_timeout(Duration::from_secs(20)) {
                Ok(l) => {
                    seen.push_str(&l);
                    if l.contains(what) {
                        return seen;
                    }
                }
                Err(_) => panic!("remote run never logged {what:?}; log so far:\n{seen}"),
            }
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn local_run(otp: &str, port: u16) -> Output {
    stprov(&[
        "local",
        "run",
        "-o",
        otp,
        "-i",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "--timeout",
        "10s",
    ])
}

#[test]
fn remote_run_and_local_run_provision_a_host_key() {
    let efi = tempfile::tempdir().unwrap();
    write_var(efi.path(), "STHostName", b"web1.example.org");
    let port = free_port();
    let otp = "one time password 42";
    let mut remote = Remote::start(efi.path(), otp, port, "127.0.0.0/8");

    // A wrong one-time password: the pinned certificate does not match.
    let wrong = local_run("not the password", port);
    assert_eq!(wrong.status.code(), Some(6), "{}", text(&wrong));
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        err.contains("one-time password may be incorrect"),
        "{}",
        text(&wrong)
    );
    assert!(wrong.stdout.is_empty());

    // The right one.
    let ok = local_run(otp, port);
    assert!(ok.status.success(), "{}", text(&ok));
    let out = String::from_utf8(ok.stdout.clone()).unwrap();
    let kv: std::collections::BTreeMap<&str, &str> =
        out.lines().filter_map(|l| l.split_once('=')).collect();
    assert_eq!(kv.len(), 4, "{out}");
    assert_eq!(kv["hostname"], "web1.example.org");
    assert_eq!(kv["ip"], "127.0.0.1");
    assert!(
        kv["publickey"].starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"),
        "{out}"
    );
    assert!(kv["fingerprint"].starts_with("SHA256:"), "{out}");

    // The remote asks for Enter, then stores the key.
    remote.wait_for("host key fingerprint");
    assert!(
        read_var(efi.path(), "STHostKey").is_none(),
        "written before confirmation"
    );
    remote.child.stdin.take().unwrap().write_all(b"\n").unwrap();
    let status = remote.child.wait().unwrap();
    assert!(status.success());
    let pem = String::from_utf8(read_var(efi.path(), "STHostKey").unwrap()).unwrap();
    assert!(
        pem.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"),
        "{pem}"
    );
    // The stored key is the one local run reported: its public blob is in the file.
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let body = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let blob = base64::engine::general_purpose::STANDARD
        .decode(kv["publickey"].trim_start_matches("ssh-ed25519 "))
        .unwrap();
    assert!(body.windows(blob.len()).any(|w| w == blob.as_slice()));
    // OpenSSH reads the stored key and derives the same public key and fingerprint.
    if Path::new("/usr/bin/ssh-keygen").exists() {
        let key = efi.path().join("host_key");
        std::fs::write(&key, &pem).unwrap();
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let o = Command::new("ssh-keygen")
            .arg("-y")
            .arg("-f")
            .arg(&key)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            format!("{} ospkg@system-transparency", kv["publickey"])
        );
        let o = Command::new("ssh-keygen")
            .arg("-l")
            .arg("-f")
            .arg(&key)
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&o.stdout).contains(kv["fingerprint"]),
            "{}",
            text(&o)
        );
    } else {
        eprintln!("ssh-keygen absent (openssh-client): OpenSSH check skipped");
    }
    let fp = ring::digest::digest(&ring::digest::SHA256, &blob);
    assert_eq!(
        kv["fingerprint"],
        format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(fp)
        )
    );
}

#[test]
fn remote_run_refuses_sources_outside_the_allowed_network_and_needs_a_host_name() {
    let efi = tempfile::tempdir().unwrap();
    // No STHostName yet: remote run says what to do first.
    let o = stprov(&[
        "remote",
        "run",
        "-o",
        "x",
        "-i",
        "127.0.0.1",
        "--efivarfs",
        efi.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(text(&o).contains("STHostName is not set"), "{}", text(&o));

    write_var(efi.path(), "STHostName", b"h");
    let port = free_port();
    let _remote = Remote::start(efi.path(), "pw", port, "10.0.0.0/8");
    let o = local_run("pw", port);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert!(
        text(&o).contains("HTTP 403: Invalid IP address"),
        "{}",
        text(&o)
    );
}

/// A small HTTPS server: HEAD /os.json -> 200, anything else -> 404.
fn https_server() -> (u16, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let pem = cert.pem();
    let der = cert.der().clone();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![der],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || serve_one(config, tcp));
        }
    });
    (port, pem)
}

fn serve_one(config: Arc<rustls::ServerConfig>, tcp: TcpStream) {
    let conn = rustls::ServerConnection::new(config).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let ok = head.starts_with("HEAD /os.json ");
    let reply = if ok {
        "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
    } else {
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    };
    let _ = s.write_all(reply.as_bytes());
    s.conn.send_close_notify();
    let _ = s.flush();
}

#[test]
fn remote_static_checks_urls_over_https_then_writes_both_variables() {
    let (port, pem) = https_server();
    let dir = tempfile::tempdir().unwrap();
    let roots = dir.path().join("tls_roots.pem");
    std::fs::write(&roots, pem).unwrap();
    let efi = tempfile::tempdir().unwrap();
    let url = format!("https://user:password@127.0.0.1:{port}/os.json");
    let base = |efi: &Path, url: &str| -> Vec<String> {
        [
            "remote",
            "static",
            "-ip",
            "10.0.2.10/24",
            "-m",
            "52:54:00:12:34:56",
            "-r",
            url,
            "-u",
            "alice",
            "-p",
            "s3cret",
            "-H",
            "web1.example.org",
            "--tls-roots",
            roots.to_str().unwrap(),
            "--check-deadline",
            "5s",
            "--no-network-setup",
            "--efivarfs",
            efi.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let args = base(efi.path(), &url);
    let o = stprov(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !text(&o).contains("s3cret"),
        "password logged: {}",
        text(&o)
    );
    assert_eq!(
        read_var(efi.path(), "STHostName").unwrap(),
        b"web1.example.org"
    );
    let hc = read_var(efi.path(), "STHostConfig").unwrap();
    let parsed = st_format::HostConfig::from_json(&hc).unwrap();
    assert_eq!(parsed.host_ip().unwrap().to_string(), "10.0.2.10/24");
    assert_eq!(parsed.gateway().unwrap().to_string(), "10.0.2.1");
    assert_eq!(
        parsed.ospkg_pointer().as_str(),
        format!("https://alice:s3cret@127.0.0.1:{port}/os.json")
    );
    assert_eq!(parsed.dns().len(), 2);
    let text_hc = String::from_utf8(hc).unwrap();
    assert!(
        text_hc.contains("\"description\":\"stprov version v"),
        "{text_hc}"
    );
    assert!(
        text_hc.contains("\"mac_address\":\"52:54:00:12:34:56\""),
        "{text_hc}"
    );

    // A URL that answers 404: exit 4, the URL (without credentials) and the reason named,
    // nothing written.
    let efi2 = tempfile::tempdir().unwrap();
    let bad = format!("https://user:password@127.0.0.1:{port}/missing.json");
    let args = base(efi2.path(), &bad);
    let o = stprov(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains(&format!(
            "https://REDACTED@127.0.0.1:{port}/missing.json: HEAD failed"
        )),
        "{t}"
    );
    assert!(t.contains("HTTP status 404"), "{t}");
    assert!(
        std::fs::read_dir(efi2.path()).unwrap().next().is_none(),
        "something was written"
    );

    // -f writes anyway.
    let mut args = base(efi2.path(), &bad);
    args.push("-f".into());
    let o = stprov(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", text(&o));
    assert!(read_var(efi2.path(), "STHostConfig").is_some());

    // Without TLS roots the server cannot be trusted.
    let efi3 = tempfile::tempdir().unwrap();
    let mut args = base(efi3.path(), &url);
    let at = args.iter().position(|a| a == "--tls-roots").unwrap();
    args[at + 1] = dir.path().join("absent.pem").to_string_lossy().into_owned();
    let o = stprov(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("TLS failure"), "{}", text(&o));
}

#[test]
fn invalid_input_and_missing_nvram_have_their_exit_codes() {
    let efi = tempfile::tempdir().unwrap();
    let e = efi.path().to_str().unwrap();
    // No prefix on the host address: usage, the flag named.
    let o = stprov(&[
        "remote",
        "static",
        "-i",
        "10.0.2.10",
        "-m",
        "52:54:00:00:00:01",
        "--efivarfs",
        e,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("-i/--ip \"10.0.2.10\""), "{}", text(&o));
    // An unknown bonding mode.
    let o = stprov(&[
        "remote",
        "static",
        "-i",
        "10.0.2.10/24",
        "-b",
        "eth0",
        "-M",
        "fastest",
        "--efivarfs",
        e,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("-M/--bonding-mode \"fastest\""),
        "{}",
        text(&o)
    );
    // A URL that is not http(s).
    let o = stprov(&[
        "remote",
        "dhcp",
        "-m",
        "52:54:00:00:00:01",
        "-r",
        "ftp://x/y",
        "--efivarfs",
        e,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // No EFI variables directory.
    let o = stprov(&[
        "remote",
        "dhcp",
        "-m",
        "52:54:00:00:00:01",
        "-r",
        "https://a.example/os.json",
        "--efivarfs",
        "/nonexistent/efivars",
    ]);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(text(&o).contains("EFI NVRAM"), "{}", text(&o));
    // Unknown flag: clap's usage error.
    let o = stprov(&["remote", "static", "--frobnicate"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // Help: exit 0, explains the exit codes; -h is the host name, not help.
    let o = stprov(&["remote", "static", "--help"]);
    assert!(o.status.success(), "{}", text(&o));
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(
        help.contains("Exit codes") && help.contains("-h, --host"),
        "{help}"
    );
    assert!(help.contains("--check-deadline"), "{help}");
    assert!(!help.contains("--efivarfs"), "test option shown: {help}");
}

#[test]
fn offline_write_provisions_a_copy_of_debians_ovmf_vars() {
    let pristine = Path::new("/usr/share/OVMF/OVMF_VARS_4M.fd");
    if !pristine.exists() {
        eprintln!(
            "skipped: {} absent (apt-get install ovmf)",
            pristine.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hc = dir.path().join("hc.json");
    std::fs::write(
        &hc,
        br#"{"network_mode":"dhcp","ospkg_pointer":"https://a.example/os.json","dns":"9.9.9.9"}"#,
    )
    .unwrap();
    let vars = dir.path().join("vm_VARS.fd");
    let o = stprov(&[
        "offline",
        "write",
        "--vars",
        vars.to_str().unwrap(),
        "--from",
        pristine.to_str().unwrap(),
        "--host-config",
        hc.to_str().unwrap(),
        "--hostname",
        "vm1.example",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let bytes = std::fs::read(&vars).unwrap();
    assert_eq!(
        bytes.len(),
        std::fs::metadata(pristine).unwrap().len() as usize
    );
    let store = st_format::efi_varstore::VarStore::parse(bytes).unwrap();
    let guid = GUID.parse().unwrap();
    let rec = store.get("STHostConfig", &guid).unwrap();
    assert_eq!(rec.attributes, 7);
    let parsed = st_format::HostConfig::from_json(&rec.data).unwrap();
    assert_eq!(parsed.dns().len(), 1);
    // Stored in the canonical compact form (the legacy "dns" string became a list).
    assert!(String::from_utf8_lossy(&rec.data).contains("\"dns\":[\"9.9.9.9\"]"));
    assert_eq!(store.get("STHostName", &guid).unwrap().data, b"vm1.example");

    // Writing again replaces: one live copy, the old one marked deleted.
    let o = stprov(&[
        "offline",
        "write",
        "--vars",
        vars.to_str().unwrap(),
        "--hostname",
        "vm2.example",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let show = stprov(&["offline", "show", "--vars", vars.to_str().unwrap()]);
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(shown.contains("STHostName: vm2.example"), "{shown}");
    assert!(
        shown.contains(&format!("STHostName-{GUID} attributes=0x7 size=11")),
        "{shown}"
    );
    let store = st_format::efi_varstore::VarStore::parse(std::fs::read(&vars).unwrap()).unwrap();
    assert_eq!(
        store
            .records()
            .iter()
            .filter(|r| r.name == "STHostName")
            .count(),
        2
    );
    assert_eq!(
        store
            .records()
            .iter()
            .filter(|r| r.name == "STHostName" && r.is_live())
            .count(),
        1
    );

    // An invalid host config is refused with the field named, and the file is untouched.
    std::fs::write(
        &hc,
        br#"{"network_mode":"static","ospkg_pointer":"https://a/b"}"#,
    )
    .unwrap();
    let before = std::fs::read(&vars).unwrap();
    let o = stprov(&[
        "offline",
        "write",
        "--vars",
        vars.to_str().unwrap(),
        "--host-config",
        hc.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("host_ip"), "{}", text(&o));
    assert_eq!(std::fs::read(&vars).unwrap(), before);
    // Not a variable store.
    let o = stprov(&["offline", "show", "--vars", hc.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

const GLOBAL: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";
const SECURITY_DB: &str = "d719b2cb-3d3a-4596-a3bc-dad00e67656f";

fn raw_var(dir: &Path, name: &str, guid: &str) -> Option<Vec<u8>> {
    std::fs::read(dir.join(format!("{name}-{guid}"))).ok()
}

#[test]
fn secure_boot_keys_are_written_in_setup_mode_only() {
    let keys = tempfile::tempdir().unwrap();
    for (f, content) in [("pk", "PK-AUTH"), ("kek", "KEK-AUTH"), ("db", "DB-AUTH")] {
        std::fs::write(keys.path().join(f), content).unwrap();
    }
    let key = |f: &str| keys.path().join(f).to_string_lossy().into_owned();
    let local = |port: u16, otp: &str| {
        stprov(&[
            "local",
            "run",
            "-o",
            otp,
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--pk",
            &key("pk"),
            "--kek",
            &key("kek"),
            "--db",
            &key("db"),
        ])
    };

    // Setup mode (SetupMode = 1): PK, KEK, db written as time-based authenticated writes
    // (attributes 0x27); dbx not given, not written; OsIndications bit 0 set.
    let efi = tempfile::tempdir().unwrap();
    write_var(efi.path(), "STHostName", b"sb.example");
    std::fs::write(
        efi.path().join(format!("SetupMode-{GLOBAL}")),
        [6, 0, 0, 0, 1],
    )
    .unwrap();
    let port = free_port();
    let mut remote = Remote::start(efi.path(), "sb", port, "127.0.0.1");
    let o = local(port, "sb");
    assert!(o.status.success(), "{}", text(&o));
    for (name, guid, data) in [
        ("PK", GLOBAL, "PK-AUTH"),
        ("KEK", GLOBAL, "KEK-AUTH"),
        ("db", SECURITY_DB, "DB-AUTH"),
    ] {
        let v = raw_var(efi.path(), name, guid).unwrap_or_else(|| panic!("{name} not written"));
        assert_eq!(v[..4], 0x27u32.to_le_bytes(), "{name} attributes");
        assert_eq!(&v[4..], data.as_bytes());
    }
    assert!(raw_var(efi.path(), "dbx", SECURITY_DB).is_none());
    let ind = raw_var(efi.path(), "OsIndications", GLOBAL).unwrap();
    assert_eq!(ind, [7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    remote.child.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert!(remote.child.wait().unwrap().success());

    // User mode (SetupMode = 0): refused with 403, nothing written.
    let efi = tempfile::tempdir().unwrap();
    write_var(efi.path(), "STHostName", b"sb.example");
    std::fs::write(
        efi.path().join(format!("SetupMode-{GLOBAL}")),
        [6, 0, 0, 0, 0],
    )
    .unwrap();
    let port = free_port();
    let _remote = Remote::start(efi.path(), "sb", port, "127.0.0.1");
    let o = local(port, "sb");
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    assert!(
        text(&o).contains("add-secure-boot: HTTP 403"),
        "{}",
        text(&o)
    );
    assert!(raw_var(efi.path(), "PK", GLOBAL).is_none());

    // PK without KEK and db: refused by local run before any connection.
    let o = stprov(&[
        "local",
        "run",
        "-o",
        "x",
        "-i",
        "127.0.0.1",
        "--pk",
        &key("pk"),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
