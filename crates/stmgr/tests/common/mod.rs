//! What every stmgr command-line test needs: run the binary, read its output, assert its exit
//! status. (Each test file uses part of it.)

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

/// `stmgr ARGS` in `dir`.
pub(crate) fn stmgr(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stmgr"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

/// `stmgr` with arguments given as one line (for arguments without spaces).
pub(crate) fn stmgr_line(dir: &Path, line: &str) -> Output {
    stmgr(dir, &line.split_whitespace().collect::<Vec<_>>())
}

/// The exit status (-1 when killed by a signal).
pub(crate) fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Standard error as text.
pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Standard output as text.
pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Exit status 0; returns the output.
#[track_caller]
pub(crate) fn ok(o: Output) -> Output {
    assert_eq!(code(&o), 0, "stderr: {}", stderr(&o));
    o
}

/// Exit status 1; returns standard error.
#[track_caller]
pub(crate) fn fails(o: Output) -> String {
    assert_eq!(code(&o), 1, "stdout: {}", stdout(&o));
    stderr(&o)
}

/// Exit status 1 and a message containing `want`.
#[track_caller]
pub(crate) fn refused(o: Output, want: &str) {
    let e = stderr(&o);
    assert_eq!(code(&o), 1, "stderr: {e}");
    assert!(e.contains(want), "{e:?} lacks {want:?}");
}
