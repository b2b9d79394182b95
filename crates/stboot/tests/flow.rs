//! The boot flow against a fake environment: real packages (the scenario vectors), real
//! verification, fake servers. Proves the fallback, retry and rejection rules without a VM.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use st_format::HostConfig;
use st_verify::UnixTime;
use stboot::fetch::{FetchError, Fetched, Redactor, Sink, Transport};
use stboot::flow::{self, Env};
use stboot::options::Options;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};
use url::Url;

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vectors")
}

/// What a fake server answers for one URL, in order of requests (the last answer repeats).
#[derive(Clone)]
enum Answer {
    Body(Vec<u8>),
    /// The body, as if it came from this URL after a redirect.
    BodyFrom(&'static str, Vec<u8>),
    Fail(fn() -> FetchError),
}

#[derive(Default)]
struct Server {
    answers: HashMap<String, Vec<Answer>>,
    log: Vec<String>,
}

struct FakeTransport(Rc<RefCell<Server>>);

impl Transport for FakeTransport {
    fn get(
        &mut self,
        url: &Url,
        max: u64,
        _: Instant,
        sink: &mut dyn Sink,
    ) -> Result<Fetched, FetchError> {
        let mut s = self.0.borrow_mut();
        s.log.push(url.to_string());
        let n = s.log.iter().filter(|u| *u == url.as_str()).count();
        let answers = s
            .answers
            .get(url.as_str())
            .cloned()
            .unwrap_or_else(|| vec![Answer::Fail(|| FetchError::Status(404))]);
        let (from, b) = match answers.get(n - 1).or(answers.last()).cloned().unwrap() {
            Answer::Body(b) => (url.clone(), b),
            Answer::BodyFrom(from, b) => (Url::parse(from).unwrap(), b),
            Answer::Fail(f) => return Err(f()),
        };
        if b.len() as u64 > max {
            return Err(FetchError::TooLarge {
                size: b.len() as u64,
                max,
            });
        }
        sink.expect(b.len() as u64).unwrap();
        // As the real transport: a sink that refuses the body ends the fetch with its reason.
        sink.write_all(&b)
            .map_err(|e| FetchError::Other(e.to_string()))?;
        Ok(Fetched {
            len: b.len() as u64,
            url: from,
        })
    }
}

struct FakeEnv {
    policy: &'static str,
    tls: bool,
    host_config: Option<Vec<u8>>,
    efi: Option<Vec<u8>>,
    files: HashMap<String, Vec<u8>>,
    server: Rc<RefCell<Server>>,
    network_calls: usize,
    cap: u64,
    sleeps: Vec<Duration>,
    /// Pauses really sleep (otherwise they are only recorded).
    real_sleep: bool,
    /// `tls_roots.pem` instead of the vectors' root.
    tls_pem: Option<Vec<u8>>,
    /// The boot tail: what happened, in order, and the extracted images.
    steps: Vec<String>,
    kernel: Vec<u8>,
    initramfs: Vec<u8>,
    fail_load: bool,
    /// The initramfs buffer refuses writes.
    full_disk: bool,
    full: Full,
    tpm: Option<FakeTpm>,
    /// `trust_policy.json` instead of the vector's.
    policy_json: Option<Vec<u8>>,
    /// `decryption_identities` (age), when set.
    identities: Option<Vec<u8>>,
}

/// A buffer that is always full.
struct Full;

impl std::io::Write for Full {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("ENOSPC"))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl FakeEnv {
    fn new(host_config: &str) -> Self {
        Self {
            policy: "policy-1",
            tls: true,
            host_config: Some(host_config.as_bytes().to_vec()),
            efi: None,
            files: HashMap::new(),
            server: Rc::default(),
            network_calls: 0,
            cap: flow::MAX_ARCHIVE_BYTES,
            sleeps: Vec::new(),
            real_sleep: false,
            tls_pem: None,
            steps: Vec::new(),
            kernel: Vec::new(),
            initramfs: Vec::new(),
            fail_load: false,
            full_disk: false,
            full: Full,
            tpm: None,
            policy_json: None,
            identities: None,
        }
    }
    fn serve(&self, url: &str, answers: Vec<Answer>) {
        self.server
            .borrow_mut()
            .answers
            .insert(url.to_string(), answers);
    }
    fn requests(&self) -> Vec<String> {
        self.server.borrow().log.clone()
    }
}

impl Env for FakeEnv {
    fn trust_policy_file(&self, name: &str, _: usize) -> Result<Option<Vec<u8>>, flow::EnvError> {
        if name == "tls_roots.pem" {
            // Any valid certificate will do: the fake transport does no TLS.
            if let Some(pem) = &self.tls_pem {
                return Ok(Some(pem.clone()));
            }
            return Ok(self
                .tls
                .then(|| std::fs::read(vectors().join("trust/root.pem")).unwrap()));
        }
        if name == "trust_policy.json"
            && let Some(json) = &self.policy_json
        {
            return Ok(Some(json.clone()));
        }
        if name == "decryption_identities" {
            return Ok(self.identities.clone());
        }
        Ok(std::fs::read(vectors().join("trust").join(self.policy).join(name)).ok())
    }
    fn initramfs_host_config(&self) -> Result<Option<Vec<u8>>, flow::EnvError> {
        Ok(self.host_config.clone())
    }
    fn efi_host_config(&self) -> Result<Option<Vec<u8>>, flow::EnvError> {
        Ok(self.efi.clone())
    }
    fn initramfs_file(&self, path: &str, _: u64) -> Result<Option<Vec<u8>>, flow::EnvError> {
        Ok(self.files.get(path).cloned())
    }
    fn setup_network(&mut self, _: &HostConfig, _: &Options) -> Result<String, flow::EnvError> {
        self.network_calls += 1;
        Ok("fake network".into())
    }
    fn transport(&mut self, _: &[Vec<u8>], _: &Options, _: &Redactor) -> Box<dyn Transport> {
        Box::new(FakeTransport(self.server.clone()))
    }
    fn sleep(&mut self, d: Duration) {
        self.sleeps.push(d);
        if self.real_sleep {
            std::thread::sleep(d);
        }
    }
    fn now(&self) -> UnixTime {
        UnixTime::parse_rfc3339("2026-01-01T00:00:00Z").unwrap()
    }
    fn archive_cap(&self) -> u64 {
        self.cap
    }
    fn image_buffers(&mut self) -> Result<[&mut dyn std::io::Write; 2], flow::EnvError> {
        self.steps.push("buffers".into());
        self.kernel.clear();
        self.initramfs.clear();
        if self.full_disk {
            return Ok([&mut self.kernel, &mut self.full]);
        }
        Ok([&mut self.kernel, &mut self.initramfs])
    }
    fn kexec_load(&mut self, cmdline: &str) -> Result<(), flow::EnvError> {
        self.steps.push(format!(
            "load kernel={} initramfs={} cmdline={cmdline}",
            self.kernel.len(),
            self.initramfs.len()
        ));
        match self.fail_load {
            true => Err("EINVAL".into()),
            false => Ok(()),
        }
    }
    fn kexec_exec(&mut self) -> flow::EnvError {
        self.steps.push("exec".into());
        "kexec returned".into()
    }
    fn tpm(&mut self) -> Result<Option<&mut dyn flow::Tpm>, flow::EnvError> {
        Ok(self.tpm.as_mut().map(|t| t as &mut dyn flow::Tpm))
    }
}

/// A TPM in memory: PCRs per (bank, index), an NV index, and an extend that can fail.
#[derive(Default)]
struct FakeTpm {
    banks: Vec<u16>,
    pcrs: std::collections::BTreeMap<(u16, u32), Vec<u8>>,
    nv: Option<Vec<u8>>,
    fail_extend_of: Option<u32>,
    steps: Rc<RefCell<Vec<String>>>,
}

impl flow::Tpm for FakeTpm {
    fn name(&self) -> String {
        "/dev/faketpm".into()
    }
    fn active_banks(&mut self) -> Result<Vec<u16>, flow::EnvError> {
        Ok(self.banks.clone())
    }
    fn extend(&mut self, pcr: u32, digests: &[(u16, &[u8])]) -> Result<(), flow::EnvError> {
        self.steps.borrow_mut().push(format!("extend {pcr}"));
        if self.fail_extend_of == Some(pcr) {
            return Err("TPM_RC_LOCALITY".into());
        }
        for (alg, d) in digests {
            let bank = st_measure::Bank::from_alg_id(*alg).unwrap();
            let old = self.pcrs.get(&(*alg, pcr)).cloned().unwrap_or(bank.zeros());
            self.pcrs.insert((*alg, pcr), bank.extend(&old, d));
        }
        Ok(())
    }
    fn read_pcr(&mut self, pcr: u32, alg: u16) -> Result<Vec<u8>, flow::EnvError> {
        let bank = st_measure::Bank::from_alg_id(alg).unwrap();
        Ok(self.pcrs.get(&(alg, pcr)).cloned().unwrap_or(bank.zeros()))
    }
    fn read_nv(&mut self, _: u32) -> Result<Option<Vec<u8>>, flow::EnvError> {
        Ok(self.nv.clone())
    }
}

/// A scenario vector's descriptor with `os_pkg_url` set, and its archive.
fn package(case: &str, os_pkg_url: &str) -> (Vec<u8>, Vec<u8>) {
    let dir = vectors().join("cases").join(case);
    let mut d: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("ospkg.json")).unwrap()).unwrap();
    d["os_pkg_url"] = os_pkg_url.into();
    (
        serde_json::to_vec(&d).unwrap(),
        std::fs::read(dir.join("ospkg.zip")).unwrap(),
    )
}

fn host_config(pointer: &str) -> String {
    format!(
        r#"{{"network_mode":"dhcp","ospkg_pointer":"{pointer}","identity":"node7","authentication":"s3cret"}}"#
    )
}

/// Options for the fake: no pause between attempts, and a deadline that ends after the first
/// round (the fake's pauses do not sleep, so only the clock of the test itself moves).
fn opts() -> Options {
    Options {
        backoff: Duration::ZERO,
        deadline: Duration::from_millis(400),
        ..Options::default()
    }
}

/// Every log line of this process, so tests can check what reached the console.
fn logged() -> Vec<String> {
    LOGGER.lines.lock().unwrap().clone()
}

struct Capture {
    lines: std::sync::Mutex<Vec<String>>,
}

static LOGGER: Capture = Capture {
    lines: std::sync::Mutex::new(Vec::new()),
};

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.lines.lock().unwrap().push(record.args().to_string());
    }
    fn flush(&self) {}
}

fn capture_logs() {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Debug);
}

#[test]
fn happy_path_boots_the_first_server() {
    let env = &mut FakeEnv::new(&host_config(
        "https://a.example/os.json,https://b.example/os.json",
    ));
    let (json, zip) = package("good-1-of-1", "https://a.example/os.zip");
    let json_bytes = json.clone();
    env.serve("https://a.example/os.json", vec![Answer::Body(json)]);
    env.serve("https://a.example/os.zip", vec![Answer::Body(zip.clone())]);
    let ready = flow::run(env, &opts()).unwrap();
    assert_eq!(ready.source, "https://a.example/os.zip");
    assert_eq!(
        ready.verified.digest(),
        st_verify::ArchiveDigest::of(&zip),
        "the package holds the bytes that were verified"
    );
    assert_eq!(ready.verified.archive_len(), zip.len() as u64);
    assert_eq!(ready.descriptor_bytes, json_bytes);
    assert_eq!(ready.verified.report().valid(), 1);
    assert_eq!(
        env.requests(),
        ["https://a.example/os.json", "https://a.example/os.zip"]
    );
    assert_eq!(env.network_calls, 1);
}

#[test]
fn relative_os_pkg_url_resolves_against_the_descriptor() {
    let env = &mut FakeEnv::new(&host_config("https://a.example/dir/os.json"));
    let (json, zip) = package("good-1-of-1", "../pkgs/os.zip");
    env.serve("https://a.example/dir/os.json", vec![Answer::Body(json)]);
    env.serve("https://a.example/pkgs/os.zip", vec![Answer::Body(zip)]);
    assert_eq!(
        flow::run(env, &opts()).unwrap().source,
        "https://a.example/pkgs/os.zip"
    );
}

#[test]
fn id_and_auth_are_filled_in() {
    let env = &mut FakeEnv::new(&host_config("https://u:$AUTH@a.example/$ID/os.json"));
    let (json, zip) = package("good-1-of-1", "os.zip");
    env.serve(
        "https://u:s3cret@a.example/node7/os.json",
        vec![Answer::Body(json)],
    );
    env.serve(
        "https://u:s3cret@a.example/node7/os.zip",
        vec![Answer::Body(zip)],
    );
    capture_logs();
    let ready = flow::run(env, &opts()).unwrap();
    // Credentials never reach the logs or the summary.
    assert!(!ready.source.contains("s3cret"), "{}", ready.source);
    assert!(logged().iter().all(|l| !l.contains("s3cret")));
}

/// `$AUTH` in the path or query (not only `user:password@`) is hidden everywhere: log lines,
/// the failure summary, the source named for a boot.
#[test]
fn auth_in_path_or_query_never_reaches_the_console() {
    capture_logs();
    let env = &mut FakeEnv::new(&host_config(
        "https://a.example/$ID/$AUTH/os.json,https://b.example/os.json?token=$AUTH",
    ));
    let f = flow::run(env, &opts()).err().unwrap();
    assert_eq!(
        env.requests(),
        [
            "https://a.example/node7/s3cret/os.json",
            "https://b.example/os.json?token=s3cret"
        ]
    );
    let summary = f.to_string();
    assert!(
        summary.contains("https://a.example/node7/REDACTED/os.json"),
        "{summary}"
    );
    assert!(summary.contains("token=REDACTED"), "{summary}");
    assert!(!summary.contains("s3cret"), "{summary}");
    let lines = logged();
    assert!(
        lines.iter().any(|l| l.contains("node7/REDACTED")),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| !l.contains("s3cret")), "{lines:?}");

    let env = &mut FakeEnv::new(&host_config("https://a.example/$AUTH/os.json"));
    let (json, zip) = package("good-1-of-1", "os.zip");
    env.serve("https://a.example/s3cret/os.json", vec![Answer::Body(json)]);
    env.serve("https://a.example/s3cret/os.zip", vec![Answer::Body(zip)]);
    let ready = flow::run(env, &opts()).unwrap();
    assert_eq!(ready.source, "https://a.example/REDACTED/os.zip");
    assert!(logged().iter().all(|l| !l.contains("s3cret")));
}

/// The source named for a boot is where the bytes came from, after redirects.
#[test]
fn the_source_is_the_url_the_bytes_came_from() {
    let env = &mut FakeEnv::new(&host_config("https://a.example/os.json"));
    let (json, zip) = package("good-1-of-1", "os.zip");
    env.serve("https://a.example/os.json", vec![Answer::Body(json)]);
    env.serve(
        "https://a.example/os.zip",
        vec![Answer::BodyFrom("https://mirror.example/x/os.zip", zip)],
    );
    assert_eq!(
        flow::run(env, &opts()).unwrap().source,
        "https://mirror.example/x/os.zip"
    );
}

/// Every URL failed: the list is tried again after a pause (the network may be forwarding
/// nothing yet), until one works.
#[test]
fn when_every_url_fails_the_list_is_tried_again_after_a_pause() {
    let env = &mut FakeEnv::new(&host_config(
        "https://a.example/os.json,https://b.example/os.json",
    ));
    let (json, zip) = package("good-1-of-1", "os.zip");
    env.serve(
        "https://b.example/os.json",
        vec![
            Answer::Fail(|| FetchError::Connect("no route to host".into())),
            Answer::Fail(|| FetchError::Tls("unknown issuer".into())),
            Answer::Body(json),
        ],
    );
    env.serve("https://b.example/os.zip", vec![Answer::Body(zip)]);
    let o = Options {
        backoff: Duration::from_secs(2),
        attempts_per_url: 1,
        deadline: Duration::from_secs(600),
        ..Options::default()
    };
    let ready = flow::run(env, &o).unwrap();
    assert_eq!(ready.source, "https://b.example/os.zip");
    // Two failed rounds, two pauses: 2 s then 4 s, each scaled by jitter into [1/2, 1].
    assert_eq!(env.sleeps.len(), 2, "{:?}", env.sleeps);
    assert!(
        (Duration::from_secs(1)..=Duration::from_secs(2)).contains(&env.sleeps[0]),
        "{:?}",
        env.sleeps
    );
    assert!(
        (Duration::from_secs(2)..=Duration::from_secs(4)).contains(&env.sleeps[1]),
        "{:?}",
        env.sleeps
    );
    assert_eq!(
        env.requests()
            .iter()
            .filter(|u| u.contains("a.example"))
            .count(),
        3,
        "a.example is asked once per round"
    );
}

/// Rounds stop at the deadline; the summary names each URL's last error and its round.
#[test]
fn rounds_end_at_the_deadline_with_each_urls_last_error() {
    let env = &mut FakeEnv::new(&host_config("https://a.example/os.json"));
    env.real_sleep = true;
    let o = Options {
        backoff: Duration::from_secs(1),
        deadline: Duration::from_secs(2),
        ..Options::default()
    };
    let start = Instant::now();
    let f = flow::run(env, &o).err().unwrap();
    // Pauses of 0.5-1 s, then 1-2 s: one or two fit into 2 s, and the flow ends on time.
    assert!((1..=2).contains(&env.sleeps.len()), "{:?}", env.sleeps);
    assert!(
        start.elapsed() < Duration::from_millis(2500),
        "{:?}",
        start.elapsed()
    );
    assert!(
        env.requests().len() == env.sleeps.len() + 1,
        "{:?}",
        env.requests()
    );
    assert!(
        f.error
            .to_string()
            .contains("round(s) before the 2 s deadline"),
        "{f}"
    );
    assert_eq!(f.attempts.len(), 1, "{f}");
    assert!(f.attempts[0].contains("404"), "{f}");
}

/// When the next retry would pass the deadline, the real error is reported, not "deadline".
#[test]
fn the_real_error_is_reported_when_no_retry_fits_before_the_deadline() {
    let env = &mut FakeEnv::new(&host_config("https://a.example/os.json"));
    env.serve(
        "https://a.example/os.json",
        vec![Answer::Fail(|| FetchError::Status(500))],
    );
    let o = Options {
        backoff: Duration::from_secs(30),
        deadline: Duration::from_secs(5),
        ..Options::default()
    };
    let f = flow::run(env, &o).err().unwrap();
    assert!(f.attempts[0].contains("HTTP status 500"), "{f}");
    assert!(!f.attempts[0].contains("deadline passed"), "{f}");
    assert_eq!(env.requests().len(), 1);
}

#[test]
fn failing_and_tampered_servers_fall_through_to_the_next() {
    let env = &mut FakeEnv::new(&host_config(
        "https://down.example/os.json,https://tampered.example/os.json,https://good.example/os.json",
    ));
    env.serve(
        "https://down.example/os.json",
        vec![Answer::Fail(|| FetchError::Tls("unknown issuer".into()))],
    );
    let (json, zip) = package("tampered-byte", "os.zip");
    env.serve("https://tampered.example/os.json", vec![Answer::Body(json)]);
    env.serve("https://tampered.example/os.zip", vec![Answer::Body(zip)]);
    let (json, zip) = package("good-1-of-1", "os.zip");
    env.serve("https://good.example/os.json", vec![Answer::Body(json)]);
    env.serve("https://good.example/os.zip", vec![Answer::Body(zip)]);
    let ready = flow::run(env, &opts()).unwrap();
    assert_eq!(ready.source, "https://good.example/os.zip");
    // The TLS failure is not retried.
    assert_eq!(
        env.requests().iter().filter(|u| u.contains("down")).count(),
        1
    );
}

#[test]
fn transient_failures_are_retried_then_succeed() {
    let env = &mut FakeEnv::new(&host_config("https://a.example/os.json"));
    let (json, zip) = package("good-1-of-1", "os.zip");
    env.serve(
        "https://a.example/os.json",
        vec![
            Answer::Fail(|| FetchError::Connect("refused".into())),
            Answer::Fail(|| FetchError::Status(503)),
            Answer::Body(json),
        ],
    );
    env.serve("https://a.example/os.zip", vec![Answer::Body(zip)]);
    flow::run(env, &opts()).unwrap();
    assert_eq!(
        env.requests()
            .iter()
            .filter(|u| u.ends_with("os.json"))
            .count(),
        3
    );
}

#[test]
fn nothing_boots_when_every_server_fails_and_each_reason_is_listed() {
    let env = &mut FakeEnv::new(&host_config(
        "https://a.example/os.json,https://b.example/os.json,https://c.example/os.json,http://d.example/os.json",
    ));
    env.policy = "policy-2";
    let (json, zip) = package("good-1-of-1", "os.zip");
    env.serve("https://a.example/os.json", vec![Answer::Body(json)]);
    env.serve("https://a.example/os.zip", vec![Answer::Body(zip)]);
    env.serve(
        "https://b.example/os.json",
        vec![Answer::Fail(|| FetchError::Truncated {
            got: 5,
            expected: 10,
        })],
    );
    env.serve(
        "https://c.example/os.json",
        vec![Answer::Fail(|| FetchError::Timeout("no response".into()))],
    );
    let Err(f) = flow::run(env, &opts()) else {
        panic!("a package below the threshold was accepted")
    };
    assert_eq!(f.attempts.len(), 4, "{f}");
    assert!(
        f.attempts[0].contains("1 valid of 1 signatures, 2 required"),
        "{f}"
    );
    assert!(f.attempts[1].contains("truncated"), "{f}");
    assert!(f.attempts[2].contains("timed out"), "{f}");
    assert!(f.attempts[3].contains("404"), "{f}");
}

#[test]
fn https_without_tls_roots_is_refused_before_any_request() {
    let env = &mut FakeEnv::new(&host_config("https://a.example/os.json"));
    env.tls = false;
    let f = flow::run(env, &opts()).err().unwrap();
    assert!(f.attempts[0].contains("no usable TLS root"), "{f}");
    assert!(env.requests().is_empty());
}

#[test]
fn archive_stage_rejections_are_reported() {
    let env = &mut FakeEnv::new(&host_config("https://a.example/os.json"));
    let (json, zip) = package("duplicate-manifest", "os.zip");
    env.serve("https://a.example/os.json", vec![Answer::Body(json)]);
    env.serve("https://a.example/os.zip", vec![Answer::Body(zip)]);
    let f = flow::run(env, &opts()).err().unwrap();
    assert!(f.attempts[0].contains("more than once"), "{f}");
}

#[test]
fn initramfs_method_and_provisioning_fallback() {
    let (json, zip) = package("good-1-of-1", "");
    let mut env = FakeEnv::new("");
    env.host_config = None;
    env.files
        .insert("ospkg/provision.json".into(), json.clone());
    env.files.insert("ospkg/provision.zip".into(), zip.clone());
    let ready = flow::run(&mut env, &opts()).unwrap();
    assert_eq!(ready.source, "/ospkg/provision.zip");
    assert_eq!(
        env.network_calls, 0,
        "the initramfs method needs no network"
    );
    assert!(env.requests().is_empty());
}

#[test]
fn a_broken_initramfs_host_config_does_not_hide_the_efi_one() {
    let mut env = FakeEnv::new(r#"{"network_mode":"static"}"#);
    env.efi = Some(host_config("https://a.example/os.json").into_bytes());
    let (json, zip) = package("good-1-of-1", "os.zip");
    env.serve("https://a.example/os.json", vec![Answer::Body(json)]);
    env.serve("https://a.example/os.zip", vec![Answer::Body(zip)]);
    flow::run(&mut env, &opts()).unwrap();
    // Both broken: nothing boots, both problems named.
    let mut env = FakeEnv::new(r#"{"network_mode":"static"}"#);
    env.efi = Some(b"{".to_vec());
    let f = flow::run(&mut env, &opts()).err().unwrap();
    assert!(
        f.attempts.len() == 2 && f.attempts[0].contains("host_configuration.json"),
        "{f}"
    );
}

#[test]
fn oversized_descriptor_is_cut_off() {
    let env = &mut FakeEnv::new(&host_config("https://a.example/os.json"));
    env.serve(
        "https://a.example/os.json",
        vec![Answer::Body(vec![b' '; (1 << 20) + 1])],
    );
    let f = flow::run(env, &opts()).err().unwrap();
    assert!(f.attempts[0].contains("limit"), "{f}");
}

#[test]
fn past_the_deadline_no_url_is_tried() {
    let env = &mut FakeEnv::new(&host_config(
        "https://a.example/os.json,https://b.example/os.json",
    ));
    let (json, zip) = package("good-1-of-1", "os.zip");
    env.serve("https://a.example/os.json", vec![Answer::Body(json)]);
    env.serve("https://a.example/os.zip", vec![Answer::Body(zip)]);
    let opts = Options {
        deadline: Duration::ZERO,
        ..opts()
    };
    let f = flow::run(env, &opts).err().unwrap();
    assert_eq!(f.attempts.len(), 2, "{f}");
    assert!(f.attempts.iter().all(|a| a.contains("deadline")), "{f}");
    assert!(env.requests().is_empty());
}

#[test]
fn an_archive_larger_than_the_machine_can_boot_is_refused() {
    let env = &mut FakeEnv::new(&host_config("https://a.example/os.json"));
    env.cap = 100;
    let (json, zip) = package("good-1-of-1", "os.zip");
    env.serve("https://a.example/os.json", vec![Answer::Body(json)]);
    env.serve("https://a.example/os.zip", vec![Answer::Body(zip)]);
    let f = flow::run(env, &opts()).err().unwrap();
    assert!(f.attempts[0].contains("over the 100-byte limit"), "{f}");
}

/// A CA certificate valid from `from` to `to` (years), as PEM.
fn ca_pem(from: i32, to: i32) -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(rcgen::DnType::CommonName, format!("CA {from}-{to}"));
    p.not_before = rcgen::date_time_ymd(from, 1, 1);
    p.not_after = rcgen::date_time_ymd(to, 1, 1);
    p.self_signed(&key).unwrap().pem().into_bytes()
}

/// As the reference (Go checks every certificate of a chain, the root too): an expired or not
/// yet valid certificate in tls_roots.pem is not trusted; the valid ones still are.
#[test]
fn expired_or_future_tls_roots_are_not_trusted() {
    capture_logs();
    let env = &mut FakeEnv::new(&host_config("https://a.example/os.json"));
    env.tls_pem = Some([ca_pem(2010, 2020), ca_pem(2030, 2040)].concat());
    let f = flow::run(env, &opts()).err().unwrap();
    assert!(f.attempts[0].contains("no usable TLS root"), "{f}");
    assert!(env.requests().is_empty());
    let lines = logged();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("certificate 0: CN=CA 2010-2020") && l.contains("expired")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("certificate 1: CN=CA 2030-2040") && l.contains("not valid before")),
        "{lines:?}"
    );
    // One valid root beside the expired one: HTTPS goes ahead.
    let env = &mut FakeEnv::new(&host_config("https://a.example/os.json"));
    env.tls_pem = Some([ca_pem(2010, 2020), ca_pem(2020, 2040)].concat());
    let (json, zip) = package("good-1-of-1", "os.zip");
    env.serve("https://a.example/os.json", vec![Answer::Body(json)]);
    env.serve("https://a.example/os.zip", vec![Answer::Body(zip)]);
    flow::run(env, &opts()).unwrap();
}

// The boot tail: extract -> load -> exec, in that order, and nothing after a failed step.

/// The archive [`ready_env`] serves.
fn env_zip_for_measured() -> Vec<u8> {
    package("good-1-of-1", "https://a.example/os.zip").1
}

fn ready_env() -> (FakeEnv, flow::Ready) {
    let mut env = FakeEnv::new(&host_config("https://a.example/os.json"));
    let (json, zip) = package("good-1-of-1", "https://a.example/os.zip");
    env.serve("https://a.example/os.json", vec![Answer::Body(json)]);
    env.serve("https://a.example/os.zip", vec![Answer::Body(zip)]);
    let ready = flow::run(&mut env, &opts()).unwrap();
    (env, ready)
}

#[test]
fn the_boot_tail_extracts_then_loads_then_executes() {
    let (mut env, ready) = ready_env();
    let kernel_len = ready.verified.layout().kernel().uncompressed_size();
    let f = flow::boot(&mut env, ready, &opts(), Instant::now());
    assert_eq!(f.stage(), flow::Stage::Kexec, "{f}");
    assert_eq!(f.to_string(), "kexec: kexec returned");
    assert_eq!(env.steps.len(), 3, "{:?}", env.steps);
    assert_eq!(env.steps[0], "buffers");
    assert!(
        env.steps[1].starts_with(&format!("load kernel={kernel_len} initramfs=")),
        "{:?}",
        env.steps
    );
    assert_eq!(env.steps[2], "exec");
    assert_eq!(env.kernel.len() as u64, kernel_len);
}

#[test]
fn a_failed_kexec_load_never_executes() {
    let (mut env, ready) = ready_env();
    env.fail_load = true;
    let f = flow::boot(&mut env, ready, &opts(), Instant::now());
    assert_eq!(f.stage(), flow::Stage::KexecLoad);
    assert_eq!(f.to_string(), "kexec load: EINVAL");
    assert!(!env.steps.iter().any(|s| s == "exec"), "{:?}", env.steps);
}

#[test]
fn a_failed_extraction_never_loads() {
    let (mut env, ready) = ready_env();
    env.full_disk = true;
    let f = flow::boot(&mut env, ready, &opts(), Instant::now());
    assert_eq!(f.stage(), flow::Stage::Extract, "{f}");
    assert!(
        f.to_string()
            .starts_with("https://a.example/os.zip: extracting boot/initramfs"),
        "{f}"
    );
    assert_eq!(env.steps, ["buffers"]);
}

fn with_tpm(env: &mut FakeEnv) -> Rc<RefCell<Vec<String>>> {
    let steps = Rc::new(RefCell::new(Vec::new()));
    env.tpm = Some(FakeTpm {
        banks: vec![0x0004, 0x000b, 0x000c],
        nv: Some(b"\0node-7\0\0".to_vec()),
        steps: steps.clone(),
        ..FakeTpm::default()
    });
    steps
}

#[test]
fn measured_before_kexec_in_every_bank_and_the_log_replays_to_the_pcrs() {
    let (mut env, ready) = ready_env();
    let tpm_steps = with_tpm(&mut env);
    let f = flow::boot(&mut env, ready, &opts(), Instant::now());
    assert_eq!(f.stage(), flow::Stage::Kexec, "{f}");
    // Six extends (12, 12, 13, 13, 13, 14), all before the images were even extracted.
    assert_eq!(
        *tpm_steps.borrow(),
        [
            "extend 12",
            "extend 12",
            "extend 13",
            "extend 13",
            "extend 13",
            "extend 14"
        ]
    );
    assert_eq!(env.steps[0], "buffers");
    // The event log went to the OS as a second cpio archive after the initramfs.
    let kernel_len = env.kernel.len();
    assert!(kernel_len > 0);
    let init = &env.initramfs;
    let tail_start = find_hand_off(init);
    assert_eq!(
        tail_start % 4,
        0,
        "the appended archive starts 4-byte aligned"
    );
    let entries = st_image::cpio::read_archive(&init[tail_start..]).unwrap();
    let log = entries
        .iter()
        .find(|e| e.name == "stboot/eventlog.bin")
        .expect("the event log in the OS initramfs");
    let identity = entries
        .iter()
        .find(|e| e.name == "stboot/identity")
        .unwrap();
    assert_eq!(
        identity.data, b"node-7",
        "NUL bytes trimmed as the reference does"
    );
    // The descriptor as received, for an attestation agent: its hash is the descriptor event's.
    let descriptor = entries
        .iter()
        .find(|e| e.name == "stboot/descriptor.json")
        .expect("the descriptor in the OS initramfs");
    let parsed = st_measure::parse_log(log.data).unwrap();
    let event = parsed
        .events
        .iter()
        .find(|e| e.event_type == 0xa000_0001)
        .unwrap();
    let archive = entries
        .iter()
        .find(|e| e.name == "stboot/archive.sha256")
        .expect("the archive digest in the OS initramfs");
    assert_eq!(
        String::from_utf8_lossy(archive.data),
        format!(
            "{}\n",
            st_verify::ArchiveDigest::of(&env_zip_for_measured())
        )
    );
    let measured = *st_verify::ArchiveDigest::of(descriptor.data).as_bytes();
    assert_eq!(
        event.digest(st_measure::Bank::Sha256.alg_id()),
        Some(st_measure::Bank::Sha256.hash(&measured).as_slice())
    );
    let replayed = st_measure::replay(&st_measure::parse_log(log.data).unwrap());
    let tpm = env.tpm.as_ref().unwrap();
    for bank in [
        st_measure::Bank::Sha1,
        st_measure::Bank::Sha256,
        st_measure::Bank::Sha384,
    ] {
        for pcr in [12, 13, 14] {
            assert_eq!(
                replayed.pcrs.get(bank, pcr).unwrap(),
                tpm.pcrs[&(bank.alg_id(), pcr)].as_slice(),
                "{bank:?} PCR {pcr}: the log replays to what the TPM holds"
            );
        }
    }
}

/// Where the appended archive starts: after the OS initramfs (a cpio of its own).
fn find_hand_off(init: &[u8]) -> usize {
    let needle = b"stboot\0";
    let name_at = init
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the hand-off directory entry");
    // The newc header is 110 bytes before the name.
    name_at - 110
}

#[test]
fn a_required_tpm_that_is_absent_boots_nothing() {
    let (mut env, ready) = ready_env();
    let mut o = opts();
    o.tpm = stboot::options::TpmPolicy::Required;
    let f = flow::boot(&mut env, ready, &o, Instant::now());
    assert_eq!(f.stage(), flow::Stage::Measure, "{f}");
    assert!(f.to_string().contains("stboot.tpm=required"), "{f}");
    assert!(
        env.steps.is_empty(),
        "nothing extracted or loaded: {:?}",
        env.steps
    );
}

#[test]
fn a_tpm_error_while_extending_never_boots() {
    let (mut env, ready) = ready_env();
    with_tpm(&mut env);
    if let Some(t) = env.tpm.as_mut() {
        t.fail_extend_of = Some(13);
    }
    let f = flow::boot(&mut env, ready, &opts(), Instant::now());
    assert_eq!(f.stage(), flow::Stage::Measure, "{f}");
    assert_eq!(
        f.to_string(),
        "TPM /dev/faketpm: extending PCR 13 (0xa0000002): TPM_RC_LOCALITY"
    );
    assert!(env.steps.is_empty(), "{:?}", env.steps);
}

#[test]
fn a_trust_policy_that_requires_a_tpm_boots_nothing_without_one() {
    let mut env = FakeEnv::new(&host_config("https://a.example/os.json"));
    env.policy_json = Some(
        br#"{"ospkg_signature_threshold":1,"ospkg_fetch_method":"network","tpm_required":true}"#
            .to_vec(),
    );
    let (json, zip) = package("good-1-of-1", "https://a.example/os.zip");
    env.serve("https://a.example/os.json", vec![Answer::Body(json)]);
    env.serve("https://a.example/os.zip", vec![Answer::Body(zip)]);
    let ready = flow::run(&mut env, &opts()).unwrap();
    let f = flow::boot(&mut env, ready, &opts(), Instant::now());
    assert_eq!(f.stage(), flow::Stage::Measure, "{f}");
    assert_eq!(
        f.to_string(),
        "no TPM, but the trust policy (tpm_required) requires one: nothing boots unmeasured"
    );
    assert!(env.steps.is_empty(), "{:?}", env.steps);
}

/// ST 1.3: `ospkg_signing_root.pem` with two roots; a package signed only under the second
/// boots, and PCR 13's signing-root event covers both roots in file order.
#[test]
fn a_package_signed_under_the_second_of_two_roots_boots_measured_over_both() {
    let mut env = FakeEnv::new(&host_config("https://a.example/os.json"));
    env.policy = "two-roots-1";
    let (json, zip) = package("second-root-signer", "https://a.example/os.zip");
    env.serve("https://a.example/os.json", vec![Answer::Body(json)]);
    env.serve("https://a.example/os.zip", vec![Answer::Body(zip)]);
    let ready = flow::run(&mut env, &opts()).unwrap();
    assert_eq!(ready.verified.report().valid(), 1);
    assert_eq!(ready.trust.dir.roots().len(), 2);
    with_tpm(&mut env);
    let f = flow::boot(&mut env, ready, &opts(), Instant::now());
    assert_eq!(f.stage(), flow::Stage::Kexec, "{f}");
    let init = &env.initramfs;
    let entries = st_image::cpio::read_archive(&init[find_hand_off(init)..]).unwrap();
    let log = entries
        .iter()
        .find(|e| e.name == "stboot/eventlog.bin")
        .unwrap();
    let parsed = st_measure::parse_log(log.data).unwrap();
    let roots_event = parsed
        .events
        .iter()
        .find(|e| e.event_type == 0xa000_0003)
        .expect("the signing-root event");
    let pem = |name: &str| std::fs::read(vectors().join("trust").join(name)).unwrap();
    let der = |bytes: Vec<u8>| st_verify::parse_certificate_pems(&bytes).unwrap().remove(0);
    assert_eq!(
        roots_event.data,
        [der(pem("root.pem")), der(pem("other-root.pem"))].concat()
    );
}

/// Provisioning mode: normal boot fails (every server down); the image's
/// `ospkg/provision.{json,zip}` is verified like any package and is what boots; measured with
/// the initramfs method, as the reference measures the provisioning fallback.
#[test]
fn a_failed_normal_boot_falls_back_to_the_provisioning_package() {
    let mut env = FakeEnv::new(&host_config("https://a.example/os.json"));
    let f = flow::run(&mut env, &opts()).err().unwrap();
    assert!(f.allows_provisioning(), "{f}");
    assert!(!flow::has_provisioning_package(&env));
    assert!(flow::provisioning(&mut env).unwrap().is_none());

    let (json, zip) = package("good-1-of-1", "");
    env.files.insert("ospkg/provision.json".into(), json);
    env.files.insert("ospkg/provision.zip".into(), zip);
    assert!(flow::has_provisioning_package(&env));
    let ready = flow::provisioning(&mut env).unwrap().unwrap();
    assert_eq!(ready.source, "/ospkg/provision.zip");
    assert_eq!(ready.fetch_method, st_format::FetchMethod::Initramfs);
    assert_eq!(ready.archive_name, None);

    // A provisioning package that does not verify is refused like any other.
    let (json, zip) = package("threshold-minus-one", "");
    env.files.insert("ospkg/provision.json".into(), json);
    env.files.insert("ospkg/provision.zip".into(), zip);
    env.policy = "policy-2";
    let f = flow::provisioning(&mut env).err().unwrap();
    assert_eq!(f.stage(), flow::Stage::Initramfs, "{f}");
    assert!(
        f.to_string()
            .contains("1 valid of 1 signatures, 2 required"),
        "{f}"
    );
}

#[test]
fn no_provisioning_after_a_broken_trust_policy() {
    let mut env = FakeEnv::new(&host_config("https://a.example/os.json"));
    env.policy_json = Some(b"{}".to_vec());
    let f = flow::run(&mut env, &opts()).err().unwrap();
    assert_eq!(f.stage(), flow::Stage::TrustPolicy);
    assert!(!f.allows_provisioning());
}

fn run_fails(env: &mut FakeEnv) -> flow::Failure {
    match flow::run(env, &opts()) {
        Ok(_) => panic!("the package was accepted"),
        Err(f) => f,
    }
}

/// An age identity made from a seed, and its identity file.
fn age_identity(seed: u8) -> (st_age::Identity, Vec<u8>) {
    let mut random = |b: &mut [u8]| b.iter_mut().for_each(|x| *x = seed);
    let id = st_age::Identity::generate(&mut random);
    let file = format!("# test identity\n{}\n", id.to_secret_string().as_str()).into_bytes();
    (id, file)
}

fn age_encrypt(to: &st_age::Identity, plain: &[u8]) -> Vec<u8> {
    let mut n = 0u8;
    let mut random = |b: &mut [u8]| {
        b.iter_mut().for_each(|x| {
            n = n.wrapping_add(13);
            *x = n;
        })
    };
    st_age::encrypt(&[*to.recipient()], plain, Vec::new(), &mut random).unwrap()
}

#[test]
fn encrypted_packages_are_decrypted_on_arrival_and_verified_as_plaintext() {
    let env = &mut FakeEnv::new(&host_config("https://a.example/os.json"));
    let (id, file) = age_identity(9);
    env.identities = Some(file);
    let (json, zip) = package("good-1-of-1", "https://a.example/os.zip");
    env.serve(
        "https://a.example/os.json",
        vec![Answer::Body(age_encrypt(&id, &json))],
    );
    env.serve(
        "https://a.example/os.zip",
        vec![Answer::Body(age_encrypt(&id, &zip))],
    );
    let ready = flow::run(env, &opts()).unwrap();
    // What is verified, and later measured, is the plaintext: as if it was never encrypted.
    assert_eq!(ready.verified.digest(), st_verify::ArchiveDigest::of(&zip));
    assert_eq!(ready.verified.archive_len(), zip.len() as u64);
    assert_eq!(ready.descriptor_bytes, json);
    assert_eq!(ready.verified.report().valid(), 1);
}

#[test]
fn encrypted_packages_without_the_right_identity_boot_nothing_and_say_why() {
    let (id, _) = age_identity(10);
    let (json, zip) = package("good-1-of-1", "https://a.example/os.zip");
    let (ejson, ezip) = (age_encrypt(&id, &json), age_encrypt(&id, &zip));
    // No identities in the trust policy directory.
    let env = &mut FakeEnv::new(&host_config("https://a.example/os.json"));
    env.serve(
        "https://a.example/os.json",
        vec![Answer::Body(ejson.clone())],
    );
    let f = run_fails(env);
    assert_eq!(f.stage(), flow::Stage::Fetch, "{f}");
    assert!(
        f.attempts[0]
            .contains("age-encrypted, but the trust policy directory has no decryption_identities"),
        "{f}"
    );
    // Another machine's identity.
    let env = &mut FakeEnv::new(&host_config("https://a.example/os.json"));
    env.identities = Some(age_identity(11).1);
    env.serve("https://a.example/os.json", vec![Answer::Body(ejson)]);
    let f = run_fails(env);
    assert!(f.attempts[0].contains("descriptor: decrypting"), "{f}");
    // A plaintext descriptor, but the archive is encrypted to someone else.
    let env = &mut FakeEnv::new(&host_config("https://a.example/os.json"));
    env.identities = Some(age_identity(11).1);
    env.serve("https://a.example/os.json", vec![Answer::Body(json)]);
    env.serve("https://a.example/os.zip", vec![Answer::Body(ezip)]);
    let f = run_fails(env);
    assert!(f.attempts[0].contains("decrypting"), "{f}");
    assert!(!f.attempts[0].contains("storing body"), "{f}");
}

#[test]
fn tampered_or_truncated_ciphertext_falls_through_to_the_next_server() {
    let (id, file) = age_identity(12);
    let (json, zip) = package("good-1-of-1", "os.zip");
    let ezip = age_encrypt(&id, &zip);
    let mut tampered = ezip.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 0x40;
    let truncated = ezip[..ezip.len() - 1].to_vec();
    let env = &mut FakeEnv::new(&host_config(
        "https://a.example/os.json,https://b.example/os.json,https://c.example/os.json",
    ));
    env.identities = Some(file);
    for (host, body) in [("a", tampered), ("b", truncated), ("c", ezip)] {
        env.serve(
            &format!("https://{host}.example/os.json"),
            vec![Answer::Body(age_encrypt(&id, &json))],
        );
        env.serve(
            &format!("https://{host}.example/os.zip"),
            vec![Answer::Body(body)],
        );
    }
    let ready = flow::run(env, &opts()).unwrap();
    assert_eq!(ready.source, "https://c.example/os.zip");
    assert_eq!(ready.verified.digest(), st_verify::ArchiveDigest::of(&zip));
}

#[test]
fn an_encrypted_package_in_the_image_is_refused_by_name() {
    let (id, file) = age_identity(13);
    let (json, zip) = package("good-1-of-1", "provision.zip");
    let env = &mut FakeEnv::new(r#"{"network_mode":"dhcp","ospkg_pointer":"provision.zip"}"#);
    env.identities = Some(file);
    env.files
        .insert("ospkg/provision.json".into(), age_encrypt(&id, &json));
    env.files.insert("ospkg/provision.zip".into(), zip);
    let f = run_fails(env);
    assert!(
        f.to_string()
            .contains("only downloaded OS packages are decrypted"),
        "{f}"
    );
}

/// A Sigsum-logged package under a directory with `ospkg_trust_policy`: the policy file is a
/// seventh event into PCR 13 (after the TLS roots), and the log replays to the TPM's values.
#[test]
fn the_sigsum_policy_is_measured_into_pcr_13() {
    let mut env = FakeEnv::new(&host_config("https://a.example/os.json"));
    env.policy = "sigsum-1";
    let (json, zip) = package("sigsum-logged", "https://a.example/os.zip");
    env.serve("https://a.example/os.json", vec![Answer::Body(json)]);
    env.serve("https://a.example/os.zip", vec![Answer::Body(zip)]);
    let ready = flow::run(&mut env, &opts()).unwrap();
    let tpm_steps = with_tpm(&mut env);
    let f = flow::boot(&mut env, ready, &opts(), Instant::now());
    assert_eq!(f.stage(), flow::Stage::Kexec, "{f}");
    assert_eq!(
        *tpm_steps.borrow(),
        [
            "extend 12",
            "extend 12",
            "extend 13",
            "extend 13",
            "extend 13",
            "extend 13",
            "extend 14"
        ]
    );
    let init = &env.initramfs;
    let entries = st_image::cpio::read_archive(&init[find_hand_off(init)..]).unwrap();
    let log = entries
        .iter()
        .find(|e| e.name == "stboot/eventlog.bin")
        .unwrap();
    let parsed = st_measure::parse_log(log.data).unwrap();
    let policy = std::fs::read(vectors().join("trust/sigsum-1/ospkg_trust_policy")).unwrap();
    assert!(
        parsed
            .events
            .iter()
            .any(|e| e.event_type == 0xa000_0006 && e.pcr == 13 && e.data == policy),
        "the Sigsum policy event is in the log"
    );
    let replayed = st_measure::replay(&parsed);
    let tpm = env.tpm.as_ref().unwrap();
    assert_eq!(
        replayed.pcrs.get(st_measure::Bank::Sha256, 13).unwrap(),
        tpm.pcrs[&(st_measure::Bank::Sha256.alg_id(), 13)].as_slice()
    );
}

// Sigsum-logged OS packages (ST 1.3): the scenario vectors' real proofs (`cases/sigsum-*`,
// `cases/plain-when-logging-required`) under their trust directories (`trust/sigsum-1`,
// `trust/sigsum-required-1`: the test log's Sigsum policy, 2-of-3 witnesses).

const SIGSUM_ARCHIVE_URL: &str = "https://a.example/os.zip";

/// The vectors' `case` served at a.example under the trust directory `trust`.
fn sigsum_env(trust: &'static str, case: &str) -> FakeEnv {
    let mut env = FakeEnv::new(&host_config("https://a.example/os.json"));
    env.policy = trust;
    let (json, zip) = package(case, SIGSUM_ARCHIVE_URL);
    env.serve("https://a.example/os.json", vec![Answer::Body(json)]);
    env.serve(SIGSUM_ARCHIVE_URL, vec![Answer::Body(zip)]);
    env
}

/// Accepted, the one signature a Sigsum proof that counted, logged as the vectors' log wrote
/// it (6 leaves, the package's at index 3, witnesses 1 and 2 cosigned).
fn assert_logged(trust: &'static str, case: &str) {
    let env = &mut sigsum_env(trust, case);
    let ready = flow::run(env, &opts()).unwrap_or_else(|f| panic!("{trust}/{case}: {f}"));
    assert_eq!(ready.source, SIGSUM_ARCHIVE_URL);
    let report = ready.verified.report();
    assert_eq!((report.valid(), report.found()), (1, 1));
    let o = &report.outcomes[0];
    assert_eq!(o.kind, st_verify::SignatureKind::SigsumProof);
    assert!(o.verdict.is_ok(), "{:?}", o.verdict);
    let logged = o
        .logged
        .as_ref()
        .expect("a counted proof says what was logged");
    assert_eq!((logged.tree_size, logged.leaf_index), (6, 3));
    assert_eq!(
        logged.witnesses,
        ["witness-1.example.org", "witness-2.example.org"]
    );
    // The log is the policy's (named by the hash of the key on its `log` line).
    let policy_text = std::fs::read(
        vectors()
            .join("trust")
            .join(trust)
            .join("ospkg_trust_policy"),
    );
    let policy = st_verify::st_sigsum::Policy::parse(&policy_text.unwrap()).unwrap();
    assert_eq!(policy.logs().len(), 1);
    assert_eq!(logged.log, policy.logs()[0].key_hash);
    assert_eq!(
        logged.log_url.as_deref(),
        Some("https://log.example.org/test")
    );
}

/// Refused at the fetch stage (every URL failed), the attempt naming `reason`.
fn assert_refused(trust: &'static str, case: &str, reason: &str) {
    let env = &mut sigsum_env(trust, case);
    let f = flow::run(env, &opts()).map(|r| r.source).unwrap_err();
    assert_eq!(f.stage(), flow::Stage::Fetch, "{f}");
    assert!(!f.attempts.is_empty(), "{f}");
    for a in &f.attempts {
        assert!(
            a.contains(SIGSUM_ARCHIVE_URL)
                && a.contains("rejected: 0 valid of 1 signatures, 1 required"),
            "{a}"
        );
        assert!(a.contains(reason), "{a} lacks {reason:?}");
    }
}

#[test]
fn sigsum_logged_package_is_accepted() {
    assert_logged("sigsum-1", "sigsum-logged");
}

#[test]
fn sigsum_logged_package_is_accepted_when_logging_is_required() {
    assert_logged("sigsum-required-1", "sigsum-logged-when-logging-required");
}

#[test]
fn plain_signature_is_refused_as_not_logged_when_logging_is_required() {
    assert_refused(
        "sigsum-required-1",
        "plain-when-logging-required",
        "signature 0: a valid plain signature, but the trust policy requires Sigsum-logged \
         signatures (ospkg_sigsum_required) and this one is not logged",
    );
}

#[test]
fn attack_proof_with_too_few_witnesses_is_refused() {
    assert_refused(
        "sigsum-1",
        "sigsum-quorum-not-met",
        "witness quorum not met",
    );
}

#[test]
fn attack_proof_for_another_archive_is_refused() {
    assert_refused(
        "sigsum-1",
        "sigsum-proof-for-another-archive",
        "made for another message",
    );
}

#[test]
fn proof_without_a_sigsum_policy_does_not_count() {
    assert_refused("policy-1", "sigsum-no-policy", "no ospkg_trust_policy");
}
