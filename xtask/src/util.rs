//! Small helpers shared by the subcommands: locating the repository, running
//! child processes with logging, and timing named steps.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Prints a progress line prefixed with `xtask:`.
macro_rules! say {
    ($($arg:tt)*) => {
        eprintln!("xtask: {}", format_args!($($arg)*))
    };
}
pub(crate) use say;

/// Root of the repository (the directory holding the workspace `Cargo.toml`).
pub(crate) fn root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The cargo target directory (honours `CARGO_TARGET_DIR`).
pub(crate) fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                root().join(dir)
            }
        }
        _ => root().join("target"),
    }
}

/// A `cargo` command for the toolchain that runs xtask, in the repository root.
pub(crate) fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root());
    cmd
}

/// A plain command (looked up in `PATH`), in the repository root.
pub(crate) fn cmd(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(root());
    cmd
}

/// Renders a command line for log output.
pub(crate) fn render(cmd: &Command) -> String {
    let mut out = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        out.push(' ');
        let arg = arg.to_string_lossy();
        if arg.is_empty() || arg.contains([' ', '\'', '"']) {
            out.push_str(&format!("'{}'", arg.replace('\'', r"'\''")));
        } else {
            out.push_str(&arg);
        }
    }
    out
}

/// Runs a command with inherited stdio; fails unless it exits with status 0.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let line = render(cmd);
    say!("$ {line}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed: {status}");
    }
    Ok(())
}

/// Runs a command, capturing stdout; stderr is inherited. Fails on non-zero exit.
pub(crate) fn output(cmd: &mut Command) -> Result<String> {
    let line = render(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not start `{line}`"))?;
    if !out.status.success() {
        bail!("`{line}` failed: {}", out.status);
    }
    String::from_utf8(out.stdout).with_context(|| format!("`{line}` printed non-UTF-8 output"))
}

/// True if the command starts and exits with status 0 (all output discarded).
pub(crate) fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Timings of the steps run so far, for a summary at the end.
#[derive(Default)]
pub(crate) struct Steps {
    done: Vec<(String, Duration)>,
}

impl Steps {
    /// Runs one named step, logging its start and duration. On failure the
    /// error names the step.
    pub(crate) fn run<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        say!("==> {name}");
        let start = Instant::now();
        let result = f();
        let took = start.elapsed();
        match result {
            Ok(v) => {
                say!("<== {name}: ok ({:.1}s)", took.as_secs_f64());
                self.done.push((name.to_owned(), took));
                Ok(v)
            }
            Err(e) => {
                say!("<== {name}: FAILED ({:.1}s)", took.as_secs_f64());
                Err(e.context(format!("step `{name}` failed")))
            }
        }
    }

    /// Prints the per-step timings.
    pub(crate) fn summary(&self) {
        let total: Duration = self.done.iter().map(|(_, d)| *d).sum();
        say!("summary:");
        for (name, took) in &self.done {
            say!("  {:>7.1}s  {name}", took.as_secs_f64());
        }
        say!("  {:>7.1}s  total", total.as_secs_f64());
    }
}
