//! The TPM character device as an [`st_tpm::Transport`].
//!
//! `/dev/tpmrm0` (the kernel's resource manager: several users, transient objects flushed) is
//! preferred, `/dev/tpm0` (one user at a time) the fallback. The kernel takes a whole command in
//! one `write(2)` and returns the whole response in one `read(2)`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};

/// The devices tried, in order.
pub const DEVICES: [&str; 2] = ["/dev/tpmrm0", "/dev/tpm0"];

/// Largest response read (`TPM_MAX_COMMAND_SIZE` of the PC client platform).
pub const MAX_RESPONSE: usize = 4096;

/// A failed TPM device operation; the message names the device.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// Opening, writing to or reading from the device failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// `opening`, `writing to` or `reading from`.
        op: &'static str,
        /// The device.
        path: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The device took only part of the command.
    #[error("writing to {path}: short write of {written} of {len} bytes")]
    ShortWrite {
        /// The device.
        path: &'static str,
        /// Bytes written.
        written: usize,
        /// Bytes of the command.
        len: usize,
    },
    /// The device returned nothing.
    #[error("reading from {path}: empty response")]
    EmptyResponse {
        /// The device.
        path: &'static str,
    },
}

/// An open TPM device.
#[derive(Debug)]
pub struct Device {
    file: File,
    path: &'static str,
}

impl Device {
    /// Opens `/dev/tpmrm0`, else `/dev/tpm0` (read-write, close-on-exec). `None` when neither
    /// exists; an error when one exists but cannot be opened (a busy `/dev/tpm0`, no
    /// permission).
    pub fn open() -> Result<Option<Self>, DeviceError> {
        Self::open_first(&DEVICES)
    }

    /// The first of `paths` that exists, opened; `None` when none exists; the error of the
    /// first that exists but cannot be opened (no fall-through to the next).
    fn open_first(paths: &[&'static str]) -> Result<Option<Self>, DeviceError> {
        for &path in paths {
            match Self::open_path(path) {
                Ok(d) => return Ok(Some(d)),
                Err(DeviceError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Opens the TPM device at `path` (read-write, close-on-exec: std opens every file with
    /// `O_CLOEXEC`).
    pub fn open_path(path: &'static str) -> Result<Self, DeviceError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|source| DeviceError::Io {
                op: "opening",
                path,
                source,
            })?;
        Ok(Self { file, path })
    }

    /// The device's path.
    pub fn path(&self) -> &'static str {
        self.path
    }

    /// Sends one command and reads its response: one write, one read of at most
    /// [`MAX_RESPONSE`] bytes (each retried on `EINTR`).
    pub fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>, DeviceError> {
        let path = self.path;
        let written =
            retry_eintr(|| self.file.write(command)).map_err(|source| DeviceError::Io {
                op: "writing to",
                path,
                source,
            })?;
        if written != command.len() {
            return Err(DeviceError::ShortWrite {
                path,
                written,
                len: command.len(),
            });
        }
        let mut buf = vec![0u8; MAX_RESPONSE];
        let n = retry_eintr(|| self.file.read(&mut buf)).map_err(|source| DeviceError::Io {
            op: "reading from",
            path,
            source,
        })?;
        if n == 0 {
            return Err(DeviceError::EmptyResponse { path });
        }
        buf.truncate(n);
        Ok(buf)
    }
}

fn retry_eintr<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

impl st_tpm::Transport for Device {
    fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>, st_tpm::TransportError> {
        Ok(Self::transact(self, command)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_first_existing() {
        let d = Device::open_first(&["/nonexistent/tpmrm0", "/dev/null"])
            .unwrap()
            .unwrap();
        assert_eq!(d.path(), "/dev/null");
        assert!(
            Device::open_first(&["/nonexistent/a", "/nonexistent/b"])
                .unwrap()
                .is_none()
        );
        // One exists but cannot be opened read-write: that error, not the next device.
        let e = Device::open_first(&["/", "/dev/null"]).unwrap_err();
        assert!(e.to_string().starts_with("opening /: "), "{e}");
    }

    #[test]
    fn errors_name_the_device() {
        let e = Device::open_path("/nonexistent/tpm0").unwrap_err();
        assert!(
            matches!(&e, DeviceError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
        );
        assert!(
            e.to_string().starts_with("opening /nonexistent/tpm0: "),
            "{e}"
        );
        // /dev/null takes the command and answers nothing.
        let mut d = Device::open_path("/dev/null").unwrap();
        let e = d
            .transact(&[0x80, 0x01, 0, 0, 0, 10, 0, 0, 1, 0x7b])
            .unwrap_err();
        assert_eq!(e.to_string(), "reading from /dev/null: empty response");
        // As a transport, the client names the command and keeps the device's message.
        let mut tpm = st_tpm::Tpm::new(d);
        let e = tpm.get_random(8).unwrap_err();
        assert_eq!(
            e.to_string(),
            "TPM2_GetRandom: reading from /dev/null: empty response"
        );
        // /dev/full refuses the write.
        let mut d = Device::open_path("/dev/full").unwrap();
        let e = d
            .transact(&[0x80, 0x01, 0, 0, 0, 10, 0, 0, 1, 0x7b])
            .unwrap_err();
        assert!(e.to_string().starts_with("writing to /dev/full: "), "{e}");
    }
}
