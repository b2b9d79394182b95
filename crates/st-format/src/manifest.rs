//! `manifest.json`, the table of contents inside an OS package archive.

use crate::gojson;
use crate::limits::{MAX_CMDLINE_BYTES, MAX_MANIFEST_BYTES};
use serde::{Deserialize, Serialize};

/// The only manifest version ST 1.x defines.
pub const MANIFEST_VERSION: i64 = 1;

/// The entry name of the manifest at the archive root.
pub const MANIFEST_NAME: &str = "manifest.json";

/// A checked OS package manifest: version 1, kernel and initramfs paths that are plain relative
/// archive names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    label: String,
    kernel: String,
    initramfs: String,
    cmdline: String,
}

/// Why a manifest was rejected. The field name is part of every variant's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Larger than [`MAX_MANIFEST_BYTES`].
    #[error("manifest.json: {size} bytes is over the {max}-byte limit")]
    TooLarge {
        /// Actual size.
        size: u64,
        /// The cap.
        max: usize,
    },
    /// Not JSON of the expected shape.
    #[error("manifest.json: invalid JSON: {0}")]
    Json(String),
    /// `version` missing or not 1.
    #[error("manifest.json: field \"version\": {found}, expected 1")]
    Version {
        /// What was found (`missing` when absent).
        found: String,
    },
    /// `kernel` or `initramfs` missing or empty.
    #[error("manifest.json: field \"{field}\" is missing or empty")]
    MissingPath {
        /// `kernel` or `initramfs`.
        field: &'static str,
    },
    /// A path that could never name a safe archive entry.
    #[error("manifest.json: field \"{field}\": {path:?} is not a plain relative archive path")]
    BadPath {
        /// `kernel` or `initramfs`.
        field: &'static str,
        /// The offending path.
        path: String,
    },
    /// `cmdline` over [`MAX_CMDLINE_BYTES`].
    #[error(
        "manifest.json: field \"cmdline\" is {len} bytes, over the {max} bytes kexec can pass \
         to an x86_64 kernel"
    )]
    CmdlineTooLong {
        /// Actual length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// `cmdline` contains a NUL byte, which would end the command line there (kexec refuses it).
    #[error(
        "manifest.json: field \"cmdline\" has a NUL character at byte {offset}; a kernel command \
         line cannot contain one"
    )]
    CmdlineNul {
        /// Byte offset of the first NUL.
        offset: usize,
    },
}

#[derive(Deserialize)]
struct RawManifest {
    #[serde(default)]
    version: Option<i64>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    kernel: Option<String>,
    #[serde(default)]
    initramfs: Option<String>,
    #[serde(default)]
    cmdline: Option<String>,
}

#[derive(Serialize)]
struct OutManifest<'a> {
    version: i64,
    label: &'a str,
    kernel: &'a str,
    initramfs: &'a str,
    cmdline: &'a str,
}

/// True when `path` is a name a strict archive reader can hold: relative, `/`-separated, no
/// empty, `.` or `..` component, no backslash or NUL.
pub fn is_plain_relative_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains('\0')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

impl Manifest {
    /// Build a manifest for `stmgr ospkg create`. Paths are checked as when parsing.
    pub fn new(
        label: impl Into<String>,
        kernel: impl Into<String>,
        initramfs: impl Into<String>,
        cmdline: impl Into<String>,
    ) -> Result<Self, ManifestError> {
        Self::check(
            label.into(),
            kernel.into(),
            initramfs.into(),
            cmdline.into(),
        )
    }

    fn check(
        label: String,
        kernel: String,
        initramfs: String,
        cmdline: String,
    ) -> Result<Self, ManifestError> {
        for (field, path) in [("kernel", &kernel), ("initramfs", &initramfs)] {
            if path.is_empty() {
                return Err(ManifestError::MissingPath { field });
            }
            if !is_plain_relative_path(path) {
                return Err(ManifestError::BadPath {
                    field,
                    path: path.clone(),
                });
            }
        }
        // Other control characters are passed on: the kernel splits parameters at any
        // whitespace (newline and tab included) and takes the rest as it is.
        if let Some(offset) = cmdline.bytes().position(|b| b == 0) {
            return Err(ManifestError::CmdlineNul { offset });
        }
        if cmdline.len() > MAX_CMDLINE_BYTES {
            return Err(ManifestError::CmdlineTooLong {
                len: cmdline.len(),
                max: MAX_CMDLINE_BYTES,
            });
        }
        Ok(Self {
            label,
            kernel,
            initramfs,
            cmdline,
        })
    }

    /// Parse and check `manifest.json` bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge {
                size: bytes.len() as u64,
                max: MAX_MANIFEST_BYTES,
            });
        }
        let raw: RawManifest = gojson::from_object(bytes).map_err(ManifestError::Json)?;
        match raw.version {
            Some(MANIFEST_VERSION) => {}
            Some(v) => {
                return Err(ManifestError::Version {
                    found: v.to_string(),
                });
            }
            None => {
                return Err(ManifestError::Version {
                    found: "missing".into(),
                });
            }
        }
        Self::check(
            raw.label.unwrap_or_default(),
            raw.kernel.unwrap_or_default(),
            raw.initramfs.unwrap_or_default(),
            raw.cmdline.unwrap_or_default(),
        )
    }

    /// The bytes stmgr writes: Go `MarshalIndent` with two spaces, keys in the reference order.
    pub fn to_json(&self) -> Vec<u8> {
        gojson::to_pretty(&OutManifest {
            version: MANIFEST_VERSION,
            label: &self.label,
            kernel: &self.kernel,
            initramfs: &self.initramfs,
            cmdline: &self.cmdline,
        })
    }

    /// Free-text label (debug only).
    pub fn label(&self) -> &str {
        &self.label
    }
    /// Archive path of the kernel.
    pub fn kernel(&self) -> &str {
        &self.kernel
    }
    /// Archive path of the initramfs.
    pub fn initramfs(&self) -> &str {
        &self.initramfs
    }
    /// Kernel command line for the booted OS.
    pub fn cmdline(&self) -> &str {
        &self.cmdline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GO_MANIFEST: &str = "{\n  \"version\": 1,\n  \"label\": \"vector 01-good-1sig\",\n  \"kernel\": \"boot/vmlinuz\",\n  \"initramfs\": \"boot/initramfs.cpio\",\n  \"cmdline\": \"console=ttyS0\"\n}";

    #[test]
    fn round_trips_the_reference_bytes() {
        let m = Manifest::from_json(GO_MANIFEST.as_bytes()).unwrap();
        assert_eq!(m.kernel(), "boot/vmlinuz");
        assert_eq!(m.to_json(), GO_MANIFEST.as_bytes());
    }

    #[test]
    fn rejects_bad_versions_and_paths() {
        let bad = [
            (r#"{"kernel":"k","initramfs":"i"}"#, "version"),
            (r#"{"version":2,"kernel":"k","initramfs":"i"}"#, "version"),
            (r#"{"version":1,"kernel":"","initramfs":"i"}"#, "kernel"),
            (r#"{"version":1,"kernel":"k"}"#, "initramfs"),
            (r#"{"version":1,"kernel":"../k","initramfs":"i"}"#, "kernel"),
            (r#"{"version":1,"kernel":"/k","initramfs":"i"}"#, "kernel"),
            (
                r#"{"version":1,"kernel":"k","initramfs":"a//b"}"#,
                "initramfs",
            ),
            (
                r#"{"version":1,"version":1,"kernel":"k","initramfs":"i"}"#,
                "duplicate",
            ),
        ];
        for (json, field) in bad {
            let err = Manifest::from_json(json.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains(field), "{json}: {err}");
        }
    }

    /// A command line kexec would refuse is refused here, naming the field: a NUL anywhere, or
    /// more than 2016 bytes. Newlines and tabs are whitespace to the kernel and pass.
    #[test]
    fn cmdline_must_be_one_kexec_accepts() {
        let json = |cmdline: &str| {
            serde_json::to_vec(&serde_json::json!({
                "version": 1, "kernel": "k", "initramfs": "i", "cmdline": cmdline,
            }))
            .unwrap()
        };
        let err = Manifest::from_json(&json("console=ttyS0\0 init=/evil"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"cmdline\"") && err.contains("NUL"), "{err}");
        assert!(err.contains("byte 13"), "{err}");
        let longest = "a".repeat(2016);
        assert_eq!(
            Manifest::from_json(&json(&longest)).unwrap().cmdline(),
            longest
        );
        let err = Manifest::from_json(&json(&"a".repeat(2017)))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"cmdline\"") && err.contains("2017 bytes"),
            "{err}"
        );
        // Counted in bytes, not characters.
        assert!(Manifest::from_json(&json(&"é".repeat(1009))).is_err());
        assert!(Manifest::new("", "k", "i", "a\0").is_err());
        assert!(Manifest::new("", "k", "i", "a".repeat(2017)).is_err());
        Manifest::from_json(&json("console=ttyS0\nquiet\tro\r\u{1}")).unwrap();
    }

    #[test]
    fn ignores_unknown_keys_like_go() {
        let m =
            Manifest::from_json(br#"{"version":1,"kernel":"k","initramfs":"i","x":1}"#).unwrap();
        assert_eq!(m.cmdline(), "");
    }
}
