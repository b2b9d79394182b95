//! Console logging in the reference's format, and the panic hook.
//!
//! Lines look like `stboot: [INFO] message`, optionally prefixed by the time since boot,
//! `[   5.123] stboot: [INFO] message`. Each record becomes exactly one `write(2)` of one line to
//! the console fd (stderr), so lines from several threads never interleave, and a failed write
//! is ignored: logging must never take PID 1 down. Control and other non-printable characters
//! in a message are escaped ([`escape`]), so one record is always one line.

use std::borrow::Cow;
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
/// The message goes through [`escape`], so a record is always exactly one console line and a
/// logged string from the network (a DHCP server's NAK text, say) can neither forge a second
/// `stboot: [INFO] ...` line nor drive the terminal.
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
    escape_into(&mut line, &raw);
    line.push('\n');
    line
}

/// Whether `c` must not reach the console as is: every control character (C0 including
/// newline, tab and CR, DEL, C1 including NEL), and the invisible format characters that break
/// or reorder lines or hide text: line and paragraph separators (U+2028, U+2029), bidi
/// controls (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069), zero-width characters
/// (U+180E, U+200B..U+200D, U+2060..U+2064, U+FEFF), interlinear annotation (U+FFF9..U+FFFB)
/// and tag characters (U+E0000..U+E007F).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{e0000}'..='\u{e007f}'
        )
}

/// Appends `s` to `out` with every character [`needs_escape`] flags written as an escape:
/// `\n`, `\r`, `\t`, `\x1b` below U+0100, `\u{2028}` above. Other text, backslashes
/// included, is copied as is.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        if !needs_escape(c) {
            out.push(c);
            continue;
        }
        // Writing into a String cannot fail.
        let _ = match c {
            '\n' => out.write_str("\\n"),
            '\r' => out.write_str("\\r"),
            '\t' => out.write_str("\\t"),
            c if u32::from(c) < 0x100 => write!(out, "\\x{:02x}", u32::from(c)),
            c => write!(out, "\\u{{{:x}}}", u32::from(c)),
        };
    }
}

/// `s` with control and other non-printable characters escaped as in [`format_line`] (one
/// line, nothing that drives a terminal); borrowed when there is nothing to escape.
///
/// For text from the network that may also be shown outside the logger, e.g. inside an error
/// message a binary prints.
pub fn escape(s: &str) -> Cow<'_, str> {
    if s.chars().any(needs_escape) {
        let mut out = String::with_capacity(s.len() + 8);
        escape_into(&mut out, s);
        Cow::Owned(out)
    } else {
        Cow::Borrowed(s)
    }
}

/// Server-sent text for a log line or an error message: [`escape`]d and cut to `max` characters
/// (`...` marks the cut).
pub fn escape_cut(s: &str, max: usize) -> String {
    let mut chars = s.chars();
    let head: String = chars.by_ref().take(max).collect();
    let cut = if chars.next().is_some() { "..." } else { "" };
    format!("{}{cut}", escape(&head))
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
        // Records are one line each (newlines are escaped), so a multi-line panic message
        // (`assert_eq!`'s left/right) is logged one record per line.
        let logger = INSTALLED.load(Ordering::Acquire) || log::max_level() != LevelFilter::Off;
        for part in text.lines() {
            if logger {
                log::error!("{part}");
            } else {
                // No logger listening: stderr must still show it.
                write_line(
                    libc::STDERR_FILENO,
                    &format_line(Level::Error, format_args!("{part}"), None),
                );
            }
        }
        on_panic()
    }));
}
