//! File handling: capped reads that name the file, OS package path rules, atomic writes.

use crate::cli::CheckArgs;
use anyhow::{Context as _, Result, bail};
use st_format::ReadAt;
use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// Default OS package base name (as the reference).
pub(crate) const DEFAULT_OSPKG_NAME: &str = "system-transparency-os-package";

/// Read a whole file, refusing more than `max` bytes. Errors name the file and what it is.
pub(crate) fn read_capped(path: &Path, what: &str, max: usize) -> Result<Vec<u8>> {
    let file = File::open(path).with_context(|| format!("{what} {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {what} {}", path.display()))?;
    if bytes.len() > max {
        bail!(
            "{what} {}: larger than the {max}-byte limit",
            path.display()
        );
    }
    Ok(bytes)
}

/// A trust policy directory, through the one loader stboot uses too (`st_verify::TrustDir`):
/// the error names the directory and the file.
pub(crate) fn load_trust_dir(dir: &Path) -> Result<st_verify::TrustDir> {
    if !dir.is_dir() {
        bail!("trust policy directory {}: not a directory", dir.display());
    }
    st_verify::TrustDir::load(|name, max| -> std::io::Result<Option<Vec<u8>>> {
        let file = match File::open(dir.join(name)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut bytes = Vec::new();
        file.take(max as u64 + 1).read_to_end(&mut bytes)?;
        Ok(Some(bytes))
    })
    .with_context(|| format!("trust policy directory {}", dir.display()))
}

/// The JSON of a `check` command: the positional argument, or `--file`.
pub(crate) fn check_input(args: &CheckArgs, what: &str) -> Result<Vec<u8>> {
    match (&args.json, &args.file) {
        (Some(json), _) => Ok(json.clone().into_bytes()),
        (None, Some(path)) => read_capped(path, what, 1 << 20),
        (None, None) => bail!("no {what} given"),
    }
}

/// The two files of an OS package.
pub(crate) struct OspkgPaths {
    pub(crate) zip: PathBuf,
    pub(crate) json: PathBuf,
}

/// `PATH`, `PATH.zip` or `PATH.json` -> both files; any other extension is an error.
pub(crate) fn ospkg_paths(path: &Path) -> Result<OspkgPaths> {
    let base = match path.extension().and_then(|e| e.to_str()) {
        None => path.to_path_buf(),
        Some("zip" | "json") => path.with_extension(""),
        Some(other) => bail!(
            "{}: invalid file extension {other:?}; an OS package is NAME.zip + NAME.json",
            path.display()
        ),
    };
    Ok(OspkgPaths {
        zip: base.with_extension("zip"),
        json: base.with_extension("json"),
    })
}

/// The `--out` rule of `ospkg create`: empty -> default name; a directory -> default name in it.
pub(crate) fn create_paths(out: Option<&Path>) -> Result<OspkgPaths> {
    let path = match out {
        None => PathBuf::from(DEFAULT_OSPKG_NAME),
        Some(dir) if dir.is_dir() => dir.join(DEFAULT_OSPKG_NAME),
        Some(path) => path.to_path_buf(),
    };
    if let Some(parent) = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty() && !p.is_dir())
    {
        bail!(
            "--out {}: directory {} does not exist",
            path.display(),
            parent.display()
        );
    }
    ospkg_paths(&path)
}

/// Write `path` atomically (temporary file in the same directory, then rename), mode 0600.
pub(crate) fn write_atomic(
    path: &Path,
    what: &str,
    fill: impl FnOnce(&mut io::BufWriter<File>) -> Result<()>,
) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> Result<()> {
        let file = File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {what} {}", path.display()))?;
        let mut w = io::BufWriter::with_capacity(1 << 20, file);
        fill(&mut w)?;
        // No fsync: like cp, we leave durability to the page cache; the rename still makes the
        // file appear whole or not at all to readers.
        w.into_inner().map_err(|e| e.into_error())?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {what} {}", path.display()))
}

/// Write small bytes atomically, mode 0600.
pub(crate) fn write_bytes(path: &Path, what: &str, bytes: &[u8]) -> Result<()> {
    write_atomic(path, what, |w| Ok(w.write_all(bytes)?))
}

/// An archive file read at random offsets, without loading it.
pub(crate) struct FileSource {
    file: File,
    len: u64,
}

impl FileSource {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("archive {}", path.display()))?;
        let len = file.metadata()?.len();
        Ok(Self { file, len })
    }
}

impl ReadAt for FileSource {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
}

/// A progress bar on stderr for work over `total` bytes, shown only on a terminal and only when
/// the work is big enough to notice.
pub(crate) fn progress_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal as _;
    if total < (64 << 20) || !io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// Reads a file on a second thread, ahead of the consumer, so reading and the consumer's work
/// (compressing, writing) overlap on two cores. Memory: at most `DEPTH + 2` chunks of 1 MiB.
pub(crate) struct ReadAhead {
    chunks: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    spare: std::sync::mpsc::SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
}

impl ReadAhead {
    const CHUNK: usize = 1 << 20;
    const DEPTH: usize = 4;

    pub(crate) fn new(mut file: File) -> Self {
        let (tx, chunks) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(Self::DEPTH);
        let (spare, recycled) = std::sync::mpsc::sync_channel::<Vec<u8>>(Self::DEPTH + 2);
        std::thread::spawn(move || {
            loop {
                let mut buf = recycled.try_recv().unwrap_or_default();
                buf.resize(Self::CHUNK, 0);
                let mut filled = 0;
                let result = loop {
                    match file.read(&mut buf[filled..]) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            filled += n;
                            if filled == buf.len() {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                buf.truncate(filled);
                let last = filled == 0 || result.is_err();
                let msg = result.map(|()| buf);
                // The consumer hung up: stop reading.
                if tx.send(msg).is_err() || last {
                    return;
                }
            }
        });
        Self {
            chunks,
            spare,
            current: Vec::new(),
            pos: 0,
            done: false,
        }
    }
}

impl io::Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.done {
                return Ok(0);
            }
            let next = self
                .chunks
                .recv()
                .map_err(|_| io::Error::other("reader thread ended"))??;
            if next.is_empty() {
                self.done = true;
            }
            let old = std::mem::replace(&mut self.current, next);
            let _ = self.spare.try_send(old);
            self.pos = 0;
        }
        let n = out.len().min(self.current.len() - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
