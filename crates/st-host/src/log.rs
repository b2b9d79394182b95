//! Console logging in the reference's format, and the panic hook.
//!
//! Lines look like `stboot: [INFO] message`, optionally prefixed by the time since boot,
//! `[   5.123] stboot: [INFO] message`. Each record becomes exactly one `write(2)` of one line to
//! the console fd (stderr), so lines from several threads never interleave, and a failed write
//! is ignored: logging must never take PID 1 down.

use std::fmt::Write as _;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// The prefix of every line, as in the Go reference.
pub const PREFIX: &str = "stboot: ";

/// The reference's tag for `level`. `TRACE` shares `[DEBUG]`, the reference's most verbose
/// level.
pub fn level_tag(level: Level) -> &'static str {
    match level {
        Level::Error => "[ERROR]",
        Level::Warn => "[WARN]",
        Level::Info => "[INFO]",
        Level::Debug | Level::Trace => "[DEBUG]",
    }
}

/// Formats one log line, newline included: `[uptime] stboot: [LEVEL] message`.
///
/// Control characters in the message other than newline and tab are escaped (`\x1b`), so a
/// logged string from the network cannot drive the terminal.
pub fn format_line(
    level: Level,
    message: std::fmt::Arguments<'_>,
    uptime: Option<Duration>,
) -> String {
    let mut raw = String::new();
    // Writing into a String cannot fail.
    let _ = raw.write_fmt(message);
    let mut line = String::with_capacity(raw.len() + 32);
    if let Some(uptime) = uptime {
        let _ = write!(
            line,
            "[{:>4}.{:03}] ",
            uptime.as_secs(),
            uptime.subsec_millis()
        );
    }
    line.push_str(PREFIX);
    line.push_str(level_tag(level));
    line.push(' ');
    for c in raw.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            let _ = write!(line, "\\x{:02x}", u32::from(c));
        } else {
            line.push(c);
        }
    }
    line.push('\n');
    line
}

/// A [`Log`] writing one line per record to a console fd (stderr by default).
#[derive(Debug)]
pub struct ConsoleLogger {
    fd: RawFd,
    level: AtomicUsize,
    with_uptime: AtomicBool,
}

impl ConsoleLogger {
    /// A logger for stderr passing records up to `level`.
    pub const fn new(level: LevelFilter, with_uptime: bool) -> Self {
        Self::with_fd(libc::STDERR_FILENO, level, with_uptime)
    }

    /// A logger writing to `fd`, which it does not own (e.g. an fd of `/dev/kmsg`, or a pipe in
    /// tests).
    pub const fn with_fd(fd: RawFd, level: LevelFilter, with_uptime: bool) -> Self {
        Self {
            fd,
            level: AtomicUsize::new(level as usize),
            with_uptime: AtomicBool::new(with_uptime),
        }
    }

    /// Changes the level this logger passes.
    pub fn set_level(&self, level: LevelFilter) {
        self.level.store(level as usize, Ordering::Relaxed);
    }

    /// The level this logger passes.
    pub fn level(&self) -> LevelFilter {
        const LEVELS: [LevelFilter; 6] = [
            LevelFilter::Off,
            LevelFilter::Error,
            LevelFilter::Warn,
            LevelFilter::Info,
            LevelFilter::Debug,
            LevelFilter::Trace,
        ];
        let i = self.level.load(Ordering::Relaxed);
        LEVELS.get(i).copied().unwrap_or(LevelFilter::Trace)
    }

    /// Turns the uptime prefix on or off.
    pub fn set_uptime(&self, with_uptime: bool) {
        self.with_uptime.store(with_uptime, Ordering::Relaxed);
    }

    fn line(&self, level: Level, message: std::fmt::Arguments<'_>) -> String {
        let uptime = self
            .with_uptime
            .load(Ordering::Relaxed)
            .then(crate::sys::uptime);
        format_line(level, message, uptime)
    }
}

impl Log for ConsoleLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            write_line(self.fd, &self.line(record.level(), *record.args()));
        }
    }

    fn flush(&self) {}
}

/// Writes `line` with as few `write(2)` calls as the kernel allows (one, except after a
/// partial write), ignoring errors.
fn write_line(fd: RawFd, line: &str) {
    let mut bytes = line.as_bytes();
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a valid readable buffer of `bytes.len()` bytes. A closed or invalid
        // fd only makes write(2) fail with EBADF.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        match usize::try_from(n) {
            Ok(0) => return,
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(_) => {
                if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                    return;
                }
            }
        }
    }
}

static LOGGER: ConsoleLogger = ConsoleLogger::new(LevelFilter::Info, false);
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Installs the global stderr [`ConsoleLogger`] with `level` and the uptime prefix on or off.
///
/// Calling it again only changes the settings. Fails if another logger was installed first.
pub fn init(level: LevelFilter, with_uptime: bool) -> Result<(), log::SetLoggerError> {
    LOGGER.set_level(level);
    LOGGER.set_uptime(with_uptime);
    if !INSTALLED.load(Ordering::Acquire) {
        log::set_logger(&LOGGER)?;
        INSTALLED.store(true, Ordering::Release);
    }
    log::set_max_level(level);
    Ok(())
}

/// Changes the level of the global logger (e.g. after reading `stboot.loglevel=` from the
/// kernel command line).
pub fn set_level(level: LevelFilter) {
    LOGGER.set_level(level);
    log::set_max_level(level);
}

/// Installs a panic hook that logs the panic message and location at ERROR, then calls
/// `on_panic` (stboot's recovery: PID 1 must never exit).
///
/// With `panic = "abort"` the hook still runs first, and because `on_panic` never returns, the
/// abort never happens. A panic inside `on_panic` aborts (and the kernel panics, PID 1 having
/// died).
pub fn install_panic_hook(on_panic: fn() -> !) {
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload_as_str()
            .unwrap_or("(non-string panic payload)");
        let location = info
            .location()
            .map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let text = format!("panic{location}: {message}");
        if INSTALLED.load(Ordering::Acquire) || log::max_level() != LevelFilter::Off {
            log::error!("{text}");
        } else {
            // No logger listening: stderr must still show it.
            write_line(
                libc::STDERR_FILENO,
                &format_line(Level::Error, format_args!("{text}"), None),
            );
        }
        on_panic()
    }));
}
