//! Running one QEMU guest: serial console captured line by line (to `serial.log` and memory),
//! a hard timeout enforced by a watchdog thread, and a guard that kills QEMU when dropped.
//!
//! Networking: every NIC is a `virtio-net-pci` device. With [`NetTopology::SlirpPerNic`] (the
//! default) each NIC has its **own** slirp (`-netdev user`), so every NIC independently sees the
//! host's loopback as 10.0.2.2, DHCP hands out 10.0.2.15 on each, and a NIC can be unplugged from
//! the network without affecting the others; good for bonding (active-backup) and for
//! "interface by MAC" tests. With [`NetTopology::SharedHub`] all NICs and one slirp hang off a
//! QEMU hub (`-netdev hubport,hubid=0`), i.e. one broadcast domain, like NICs on the same switch.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util::{render, say};

/// The accelerator. KVM hangs on the nested-virtualisation hosts we develop on, so TCG is the
/// default; `E2E_ACCEL=kvm` or `--accel kvm` opts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Accel {
    /// Software emulation (`-accel tcg -cpu qemu64`).
    Tcg,
    /// Hardware virtualisation (`-accel kvm -cpu host`).
    Kvm,
}

impl Accel {
    /// Default hard timeout per boot.
    pub(crate) fn default_timeout(self) -> Duration {
        match self {
            Self::Tcg => Duration::from_secs(120),
            Self::Kvm => Duration::from_secs(30),
        }
    }
}

/// How several NICs are connected (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum NetTopology {
    /// One slirp per NIC.
    #[default]
    SlirpPerNic,
    /// One slirp and all NICs on one QEMU hub.
    SharedHub,
}

/// What to boot and how.
#[derive(Clone, Debug)]
pub(crate) struct VmConfig {
    /// bzImage.
    pub(crate) kernel: PathBuf,
    /// Initramfs (`.cpio.gz`).
    pub(crate) initrd: PathBuf,
    /// Kernel command line; `console=ttyS0 panic=-1` are always prepended.
    pub(crate) append: String,
    /// Guest RAM.
    pub(crate) memory_mib: u32,
    /// MAC addresses of the virtio NICs, in PCI order (eth0, eth1, ...). Empty: `-nic none`.
    pub(crate) nics: Vec<String>,
    /// How the NICs are connected.
    pub(crate) topology: NetTopology,
    /// slirp host forwards into the guest, on the first NIC's slirp (or the shared one), each
    /// as QEMU's `hostfwd=` value, e.g. `tcp:127.0.0.1:5555-:2009`.
    pub(crate) hostfwd: Vec<String>,
    /// Hard timeout from QEMU start; `None`: the accelerator's default.
    pub(crate) timeout: Option<Duration>,
    /// A console line containing one of these fails [`Vm::wait_for`] at once.
    pub(crate) fail_markers: Vec<String>,
    /// Further QEMU arguments, appended as given.
    pub(crate) extra_args: Vec<String>,
    /// Also print every console line to stdout as it arrives (`cargo xtask demo`).
    pub(crate) echo: bool,
    /// Pass `kernel`, `initrd` and `append` to QEMU (`-kernel -initrd -append`); false when
    /// the firmware boots from a disk or CD-ROM in `extra_args` (a UKI has its own).
    pub(crate) direct_kernel: bool,
    /// Keys typed on the serial console: when a console line contains the text, the bytes are
    /// written to the guest's serial input once (QEMU's stdin), e.g. Ctrl-C in stboot's
    /// provisioning window. Empty: stdin is `/dev/null`.
    pub(crate) console_input: Vec<(String, Vec<u8>)>,
}

impl VmConfig {
    /// Defaults: 1024 MiB, no NIC, fail on "Kernel panic".
    pub(crate) fn new(kernel: &Path, initrd: &Path, append: &str) -> Self {
        Self {
            kernel: kernel.to_owned(),
            initrd: initrd.to_owned(),
            append: append.to_owned(),
            memory_mib: 1024,
            nics: Vec::new(),
            topology: NetTopology::default(),
            hostfwd: Vec::new(),
            timeout: None,
            fail_markers: vec!["Kernel panic".to_owned()],
            extra_args: Vec::new(),
            echo: false,
            direct_kernel: true,
            console_input: Vec::new(),
        }
    }
}

/// The `n`-th test MAC address: `52:54:00:e2:e0:<n>` (QEMU's locally administered prefix).
pub(crate) fn test_mac(n: u8) -> String {
    format!("52:54:00:e2:e0:{n:02x}")
}

/// VMs run one at a time: TCG uses several host threads, so parallel guests gain nothing on two
/// cores and make the timing-sensitive ones flaky.
static VM_LOCK: Mutex<()> = Mutex::new(());

#[derive(Default)]
struct State {
    /// (time since QEMU start, line without the line ending).
    lines: Vec<(Duration, String)>,
    /// QEMU closed its stdout.
    eof: bool,
    exit: Option<ExitStatus>,
    timed_out: bool,
}

type Shared = Arc<(Mutex<State>, Condvar)>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running guest. Dropping it kills QEMU.
pub(crate) struct Vm {
    child: Arc<Mutex<Child>>,
    shared: Shared,
    started: Instant,
    timeout: Duration,
    cursor: usize,
    fail_markers: Vec<String>,
    serial_log: PathBuf,
    stderr_log: PathBuf,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    _serial: MutexGuard<'static, ()>,
}

/// The emulated CPU model under TCG: `E2E_CPU` (e.g. `max`, with CLMUL/SSE4.2/AES), else
/// `qemu64`, the model the Go reference's figures were taken with.
pub(crate) fn tcg_cpu() -> String {
    std::env::var("E2E_CPU").unwrap_or_else(|_| "qemu64".to_owned())
}

/// Guest vCPUs: `E2E_SMP` (benchmarks), else 1, as in the scenarios and the Go reference's
/// figures.
pub(crate) fn guest_cpus() -> String {
    std::env::var("E2E_SMP").unwrap_or_else(|_| "1".to_owned())
}

/// The guest kernel's command line for `append`: `console=ttyS0 panic=-1` first.
pub(crate) fn kernel_cmdline(append: &str) -> String {
    format!("console=ttyS0 panic=-1 {append}")
        .trim_end()
        .to_owned()
}

impl Vm {
    /// Starts QEMU; the console goes to `dir/serial.log`, QEMU's stderr to `dir/qemu.stderr`.
    pub(crate) fn start(cfg: &VmConfig, accel: Accel, dir: &Path) -> Result<Self> {
        let serial_guard = VM_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        std::fs::create_dir_all(dir)?;
        let mut qemu = Command::new("qemu-system-x86_64");
        match accel {
            Accel::Tcg => qemu.args(["-accel", "tcg", "-cpu", &tcg_cpu()]),
            Accel::Kvm => qemu.args(["-accel", "kvm", "-cpu", "host"]),
        };
        qemu.args(["-m", &cfg.memory_mib.to_string(), "-smp", &guest_cpus()])
            .args(["-nographic", "-no-reboot"]);
        if cfg.direct_kernel {
            qemu.arg("-kernel")
                .arg(&cfg.kernel)
                .arg("-initrd")
                .arg(&cfg.initrd)
                .arg("-append")
                .arg(kernel_cmdline(&cfg.append));
        }
        if cfg.nics.is_empty() {
            qemu.args(["-nic", "none"]);
        } else {
            let fwd: String = cfg
                .hostfwd
                .iter()
                .map(|f| format!(",hostfwd={f}"))
                .collect();
            if cfg.topology == NetTopology::SharedHub {
                qemu.args(["-netdev", &format!("user,id=slirp0{fwd}")]);
                qemu.args(["-netdev", "hubport,id=hub-slirp,hubid=0,netdev=slirp0"]);
            }
            for (i, mac) in cfg.nics.iter().enumerate() {
                let netdev = match cfg.topology {
                    NetTopology::SlirpPerNic if i == 0 => format!("user,id=n{i}{fwd}"),
                    NetTopology::SlirpPerNic => format!("user,id=n{i}"),
                    NetTopology::SharedHub => format!("hubport,id=n{i},hubid=0"),
                };
                qemu.args(["-netdev", &netdev]);
                qemu.args([
                    "-device",
                    &format!("virtio-net-pci,netdev=n{i},romfile=,mac={mac}"),
                ]);
            }
        }
        qemu.args(&cfg.extra_args);
        // E2E_MEM_PREALLOC=1 backs all guest RAM on the host before the guest starts, so that
        // the first touch of a guest page does not cost a host page fault (benchmarks: real
        // machines have their RAM).
        if std::env::var_os("E2E_MEM_PREALLOC").is_some_and(|v| v == "1") {
            qemu.arg("-mem-prealloc");
        }
        let typing = !cfg.console_input.is_empty();
        qemu.stdin(if typing {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

        let serial_log = dir.join("serial.log");
        let stderr_log = dir.join("qemu.stderr");
        let mut log = File::create(&serial_log)?;
        writeln!(log, "# {}", render(&qemu))?;
        say!("e2e: $ {}", render(&qemu));

        let timeout = cfg.timeout.unwrap_or_else(|| accel.default_timeout());
        let started = Instant::now();
        let mut child = qemu
            .spawn()
            .context("could not start qemu-system-x86_64 (apt-get install qemu-system-x86)")?;
        let stdout = child.stdout.take().context("qemu stdout")?;
        let stderr = child.stderr.take().context("qemu stderr")?;
        let keys = Keys {
            stdin: child.stdin.take(),
            pending: cfg.console_input.clone(),
        };
        let child = Arc::new(Mutex::new(child));
        let shared: Shared = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));

        let mut threads = Vec::new();
        {
            let shared = shared.clone();
            let echo = cfg.echo;
            threads.push(std::thread::spawn(move || {
                read_console(stdout, log, started, &shared, echo, keys);
            }));
        }
        {
            let path = stderr_log.clone();
            threads.push(std::thread::spawn(move || {
                if let Ok(mut f) = File::create(path) {
                    let mut stderr = stderr;
                    std::io::copy(&mut stderr, &mut f).ok();
                }
            }));
        }
        {
            let (child, shared, stop) = (child.clone(), shared.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                watchdog(&child, &shared, &stop, started + timeout);
            }));
        }
        Ok(Self {
            child,
            shared,
            started,
            timeout,
            cursor: 0,
            fail_markers: cfg.fail_markers.clone(),
            serial_log,
            stderr_log,
            stop,
            threads,
            _serial: serial_guard,
        })
    }

    /// Path of the console log.
    pub(crate) fn serial_log(&self) -> &Path {
        &self.serial_log
    }

    /// Time since QEMU was started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// All console lines so far.
    pub(crate) fn lines(&self) -> Vec<String> {
        let (m, _) = &*self.shared;
        lock(m).lines.iter().map(|(_, l)| l.clone()).collect()
    }

    /// Whether a console line so far contains `text`.
    pub(crate) fn has_line(&self, text: &str) -> bool {
        let (m, _) = &*self.shared;
        lock(m).lines.iter().any(|(_, l)| l.contains(text))
    }

    /// Fails unless a console line so far contains `text` (naming the serial log).
    pub(crate) fn ensure_line(&self, text: &str) -> Result<()> {
        if !self.has_line(text) {
            bail!(
                "serial console lacks {text:?} (see {})",
                self.serial_log.display()
            );
        }
        Ok(())
    }

    /// Every console line so far with its time since QEMU start.
    pub(crate) fn timed_lines(&self) -> Vec<(Duration, String)> {
        let (m, _) = &*self.shared;
        lock(m).lines.clone()
    }

    /// Waits until a console line after the previous match contains `marker`; returns that line
    /// and its time since QEMU start. Successive calls therefore assert an ordered sequence.
    /// Fails on a fail marker, when QEMU exits first, on `timeout`, or at the hard timeout.
    pub(crate) fn wait_for(
        &mut self,
        marker: &str,
        timeout: Duration,
    ) -> Result<(String, Duration)> {
        let deadline = Instant::now() + timeout;
        let (m, cv) = &*self.shared;
        let mut st = lock(m);
        loop {
            while self.cursor < st.lines.len() {
                let (at, line) = &st.lines[self.cursor];
                self.cursor += 1;
                if line.contains(marker) {
                    say!("e2e: {:6.2}s  {marker:?} seen", at.as_secs_f64());
                    return Ok((line.clone(), *at));
                }
                if let Some(f) = self.fail_markers.iter().find(|f| line.contains(f.as_str())) {
                    bail!(
                        "console shows {f:?} at {:.2}s while waiting for {marker:?}: {line}\n{}",
                        at.as_secs_f64(),
                        self.tail(&st)
                    );
                }
            }
            if st.timed_out {
                bail!(
                    "hard timeout ({}s) while waiting for {marker:?}; QEMU killed\n{}",
                    self.timeout.as_secs(),
                    self.tail(&st)
                );
            }
            if st.eof && st.exit.is_some() {
                bail!(
                    "QEMU exited ({}) before {marker:?}\n{}",
                    describe(st.exit),
                    self.tail(&st)
                );
            }
            let now = Instant::now();
            if now >= deadline {
                bail!(
                    "{marker:?} not seen within {:.0}s\n{}",
                    timeout.as_secs_f64(),
                    self.tail(&st)
                );
            }
            let step = (deadline - now).min(Duration::from_millis(250));
            st = cv
                .wait_timeout(st, step)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits for QEMU to exit (the guest powered off, rebooted or panicked: `-no-reboot`).
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let (m, cv) = &*self.shared;
        let mut st = lock(m);
        loop {
            if st.timed_out {
                bail!(
                    "hard timeout ({}s) while waiting for QEMU to exit; killed\n{}",
                    self.timeout.as_secs(),
                    self.tail(&st)
                );
            }
            if let Some(status) = st.exit {
                say!(
                    "e2e: {:6.2}s  QEMU exited ({status})",
                    self.started.elapsed().as_secs_f64()
                );
                return Ok(status);
            }
            let now = Instant::now();
            if now >= deadline {
                bail!(
                    "QEMU still running after {:.0}s\n{}",
                    timeout.as_secs_f64(),
                    self.tail(&st)
                );
            }
            let step = (deadline - now).min(Duration::from_millis(250));
            st = cv
                .wait_timeout(st, step)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits for QEMU to exit with status 0 (the guest powered off cleanly).
    pub(crate) fn wait_poweroff(&mut self, timeout: Duration) -> Result<()> {
        let status = self.wait_exit(timeout)?;
        if !status.success() {
            bail!("QEMU exited with {status}");
        }
        Ok(())
    }

    /// The last console lines and QEMU's stderr, for error messages.
    fn tail(&self, st: &State) -> String {
        let mut out = format!("--- last console lines ({}):\n", self.serial_log.display());
        let from = st.lines.len().saturating_sub(25);
        for (at, line) in &st.lines[from..] {
            let _ = writeln!(out, "[{:7.2}] {line}", at.as_secs_f64());
        }
        if let Ok(err) = std::fs::read_to_string(&self.stderr_log)
            && !err.trim().is_empty()
        {
            let _ = write!(out, "--- qemu stderr:\n{}", err.trim_end());
        }
        out
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        {
            let mut child = lock(&self.child);
            child.kill().ok();
            child.wait().ok();
        }
        for t in self.threads.drain(..) {
            t.join().ok();
        }
    }
}

fn describe(status: Option<ExitStatus>) -> String {
    status.map_or_else(|| "status unknown".to_owned(), |s| s.to_string())
}

/// Console lines longer than this are cut when echoed (the test OS prints base64 event logs of
/// many kilobytes on one line); `serial.log` keeps them whole.
const ECHO_MAX: usize = 400;

/// Prints a console line for [`VmConfig::echo`], cut at [`ECHO_MAX`] characters.
fn echo_line(line: &str) {
    match line.char_indices().nth(ECHO_MAX) {
        None => println!("  | {line}"),
        Some(_) => {
            let head: String = line.chars().take(100).collect();
            let n = line.chars().count();
            println!("  | {head}... ({n} characters, whole in serial.log)");
        }
    }
}

/// What is still to be typed on the console, and where to type it.
struct Keys {
    stdin: Option<std::process::ChildStdin>,
    pending: Vec<(String, Vec<u8>)>,
}

impl Keys {
    /// Type the bytes of every pending trigger `line` contains (once each).
    fn on_line(&mut self, line: &str, log: &mut File, at: Duration) {
        let Some(stdin) = self.stdin.as_mut() else {
            return;
        };
        let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(trigger, _)| line.contains(trigger.as_str()));
        self.pending = rest;
        for (trigger, bytes) in due {
            let sent = stdin.write_all(&bytes).and_then(|()| stdin.flush());
            let _ = writeln!(
                log,
                "[{:7.2}] # e2e typed {bytes:?} on {trigger:?}: {}",
                at.as_secs_f64(),
                if sent.is_ok() { "sent" } else { "FAILED" }
            );
        }
    }
}

fn read_console(
    stdout: impl Read,
    mut log: File,
    started: Instant,
    shared: &Shared,
    echo: bool,
    mut keys: Keys,
) {
    let mut reader = BufReader::new(stdout);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let at = started.elapsed();
                let line = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\r', '\n'])
                    .to_owned();
                let _ = writeln!(log, "[{:7.2}] {line}", at.as_secs_f64());
                keys.on_line(&line, &mut log, at);
                if echo {
                    echo_line(&line);
                }
                let (m, cv) = &**shared;
                lock(m).lines.push((at, line));
                cv.notify_all();
            }
        }
    }
    log.flush().ok();
    let (m, cv) = &**shared;
    lock(m).eof = true;
    cv.notify_all();
}

fn watchdog(child: &Mutex<Child>, shared: &Shared, stop: &AtomicBool, deadline: Instant) {
    let (m, cv) = &**shared;
    loop {
        let status = lock(child).try_wait();
        match status {
            Ok(Some(status)) => {
                lock(m).exit = Some(status);
                cv.notify_all();
                return;
            }
            Ok(None) => {}
            Err(_) => return,
        }
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if Instant::now() >= deadline {
            let status = {
                let mut c = lock(child);
                c.kill().ok();
                c.wait().ok()
            };
            let mut st = lock(m);
            st.timed_out = true;
            st.exit = status;
            cv.notify_all();
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
