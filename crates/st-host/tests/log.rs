//! Tests of `st_host::log`: line format, filtering and the one-write-per-line output.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use log::{Level, LevelFilter, Log, Metadata, Record};
use st_host::log::{ConsoleLogger, format_line, level_tag};

#[test]
fn line_format_matches_the_reference() {
    assert_eq!(
        format_line(Level::Info, format_args!("Host configuration found"), None),
        "stboot: [INFO] Host configuration found\n"
    );
    assert_eq!(
        format_line(Level::Error, format_args!("{} valid", 2), None),
        "stboot: [ERROR] 2 valid\n"
    );
    assert_eq!(
        format_line(Level::Warn, format_args!("w"), None),
        "stboot: [WARN] w\n"
    );
    assert_eq!(
        format_line(Level::Debug, format_args!("d"), None),
        "stboot: [DEBUG] d\n"
    );
    assert_eq!(level_tag(Level::Trace), "[DEBUG]");
}

#[test]
fn line_format_with_uptime() {
    assert_eq!(
        format_line(
            Level::Info,
            format_args!("x"),
            Some(Duration::from_millis(5123))
        ),
        "[   5.123] stboot: [INFO] x\n"
    );
    assert_eq!(
        format_line(
            Level::Info,
            format_args!("x"),
            Some(Duration::from_micros(12_345_999_999))
        ),
        "[12345.999] stboot: [INFO] x\n"
    );
    assert_eq!(
        format_line(Level::Info, format_args!("x"), Some(Duration::ZERO)),
        "[   0.000] stboot: [INFO] x\n"
    );
}

#[test]
fn control_characters_are_escaped() {
    assert_eq!(
        format_line(Level::Info, format_args!("a\x1b[2Jb\r\tc\nd"), None),
        "stboot: [INFO] a\\x1b[2Jb\\r\\tc\\nd\n"
    );
}

/// A DHCP server's NAK text with a newline cannot forge a second console line: every record
/// is exactly one line, control and other non-printable characters escaped.
#[test]
fn one_record_is_one_line() {
    let nak = "try again\nstboot: [INFO] OS package verified\x1b[2J\u{2028}\u{2029}\u{202e}\x7f\0\u{85}\u{feff}\u{e0041}";
    let line = format_line(Level::Warn, format_args!("eth0: DHCPNAK: {nak}"), None);
    assert_eq!(
        line,
        "stboot: [WARN] eth0: DHCPNAK: try again\\nstboot: [INFO] OS package verified\\x1b[2J\\u{2028}\\u{2029}\\u{202e}\\x7f\\x00\\x85\\u{feff}\\u{e0041}\n"
    );
    assert_eq!(line.lines().count(), 1);
    // Printable text, including non-ASCII letters, is left alone.
    assert_eq!(
        format_line(Level::Info, format_args!("Grüße, 日本 \\ ok"), None),
        "stboot: [INFO] Grüße, 日本 \\ ok\n"
    );
    assert_eq!(st_host::log::escape("plain"), "plain");
    assert_eq!(st_host::log::escape("a\nb"), "a\\nb");
}

fn meta(level: Level) -> Metadata<'static> {
    Metadata::builder().level(level).target("stboot").build()
}

#[test]
fn level_filtering() {
    let logger = ConsoleLogger::new(LevelFilter::Info, false);
    assert!(logger.enabled(&meta(Level::Error)));
    assert!(logger.enabled(&meta(Level::Warn)));
    assert!(logger.enabled(&meta(Level::Info)));
    assert!(!logger.enabled(&meta(Level::Debug)));
    logger.set_level(LevelFilter::Debug);
    assert_eq!(logger.level(), LevelFilter::Debug);
    assert!(logger.enabled(&meta(Level::Debug)));
    assert!(!logger.enabled(&meta(Level::Trace)));
    logger.set_level(LevelFilter::Off);
    assert!(!logger.enabled(&meta(Level::Error)));
}

fn pipe() -> (OwnedFd, OwnedFd) {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap()
}

fn log_at(logger: &ConsoleLogger, level: Level, msg: &str) {
    logger.log(
        &Record::builder()
            .level(level)
            .target("stboot")
            .args(format_args!("{msg}"))
            .build(),
    );
}

#[test]
fn logger_writes_filtered_lines_to_its_fd() {
    let (read, write) = pipe();
    let logger = ConsoleLogger::with_fd(write.as_raw_fd(), LevelFilter::Warn, false);
    log_at(&logger, Level::Info, "hidden");
    log_at(&logger, Level::Warn, "shown");
    log_at(&logger, Level::Error, "also shown");
    logger.set_uptime(true);
    log_at(&logger, Level::Error, "with time");
    drop(write);
    let mut out = String::new();
    std::fs::File::from(read).read_to_string(&mut out).unwrap();
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], "stboot: [WARN] shown");
    assert_eq!(lines[1], "stboot: [ERROR] also shown");
    assert!(lines[2].starts_with('[') && lines[2].ends_with("] stboot: [ERROR] with time"));
}

#[test]
fn logger_survives_a_closed_fd() {
    let (read, write) = pipe();
    let fd = write.as_raw_fd();
    drop(write);
    drop(read);
    // EBADF: ignored, no panic.
    let logger = ConsoleLogger::with_fd(fd, LevelFilter::Info, false);
    log_at(&logger, Level::Error, "nobody listens");
}

#[test]
fn lines_from_threads_do_not_interleave() {
    let (read, write) = pipe();
    let logger = std::sync::Arc::new(ConsoleLogger::with_fd(
        write.as_raw_fd(),
        LevelFilter::Info,
        false,
    ));
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        std::fs::File::from(read).read_to_string(&mut out).unwrap();
        out
    });
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let logger = logger.clone();
            std::thread::spawn(move || {
                let msg = format!("thread{t}-").repeat(20);
                for _ in 0..200 {
                    log_at(&logger, Level::Info, &msg);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    drop(logger);
    drop(write);
    let out = reader.join().unwrap();
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines.len(), 800);
    for line in lines {
        let body = line.strip_prefix("stboot: [INFO] ").unwrap();
        let first = &body[..8];
        assert_eq!(body, first.repeat(20), "interleaved: {line}");
    }
}

#[test]
fn escape_cut_escapes_then_marks_the_cut() {
    assert_eq!(st_host::log::escape_cut("a\nb", 10), "a\\nb");
    assert_eq!(st_host::log::escape_cut(&"x".repeat(300), 200).len(), 203);
    assert_eq!(st_host::log::escape_cut("abc", 3), "abc");
}
