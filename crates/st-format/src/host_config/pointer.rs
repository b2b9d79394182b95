//! The host config's `ospkg_pointer`: a list of descriptor URL templates or an initramfs name.

use crate::url_template::{AuthToken, Identity, UrlTemplate, UrlTemplateError};
use std::fmt;

/// The pointer of the provisioning fallback config (st-reference §4.4).
pub const PROVISIONING_POINTER: &str = "provision.zip";

/// Where the OS package is, as written in `ospkg_pointer`.
///
/// The host config does not know the fetch method (that is in the trust policy), so the
/// pointer is interpreted by this rule, fixed at parse time:
///
/// * If **any** comma-separated piece contains `://`, the pointer is a **URL list**: every piece
///   must be an `http`/`https` [`UrlTemplate`]; the first bad piece is an error naming its
///   index. (The reference stops at the first bad URL and silently drops all later ones,
///   st-reference §11.10; we never drop URLs.)
/// * Otherwise it is an **initramfs name** (`my-ospkg.zip`, `some_folder/my-ospkg`), resolved
///   with [`OsPkgPointer::initramfs_paths`]. A network fetch with such a pointer fails at
///   [`OsPkgPointer::urls`] time, not at parse time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsPkgPointer {
    raw: String,
    /// Non-empty exactly when the pointer is a URL list.
    urls: Vec<UrlTemplate>,
}

/// Why an OS package pointer was rejected or cannot be used as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OsPkgPointerError {
    /// The empty string.
    #[error("is empty")]
    Empty,
    /// A piece of a URL list is not a valid descriptor URL.
    #[error("URL at index {index}: {reason}")]
    Url {
        /// Zero-based position in the comma-separated list.
        index: usize,
        /// What is wrong with it (shown in `Display`, deliberately not an error `source`).
        reason: UrlTemplateError,
    },
    /// A network fetch was asked for, but the pointer is an initramfs name.
    #[error("{pointer:?} is not a list of http(s) URLs (no piece contains \"://\")")]
    NotUrlList {
        /// The pointer.
        pointer: String,
    },
    /// An initramfs path was asked for, but the pointer is a URL list.
    #[error("is a URL list, not an initramfs file name")]
    NotFileName,
    /// The initramfs name is unusable as a relative path.
    #[error("initramfs name {name:?}: {reason}")]
    BadFileName {
        /// The name (after placeholder substitution).
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// `$ID` is used but no identity is set.
    #[error("uses $ID but no identity is set")]
    MissingIdentity,
    /// `$AUTH` is used but no authentication is set.
    #[error("uses $AUTH but no authentication is set")]
    MissingAuth,
}

impl OsPkgPointer {
    /// Parse a pointer by the rule in the type's documentation.
    pub fn parse(s: &str) -> Result<Self, OsPkgPointerError> {
        if s.is_empty() {
            return Err(OsPkgPointerError::Empty);
        }
        let mut urls = Vec::new();
        if s.split(',').any(|p| p.contains("://")) {
            for (index, piece) in s.split(',').enumerate() {
                urls.push(
                    UrlTemplate::parse(piece)
                        .map_err(|reason| OsPkgPointerError::Url { index, reason })?,
                );
            }
        }
        Ok(Self {
            raw: s.to_owned(),
            urls,
        })
    }

    /// The provisioning fallback pointer, an initramfs name (no `://`, so no URL parsing).
    pub(crate) fn provisioning() -> Self {
        Self {
            raw: PROVISIONING_POINTER.to_owned(),
            urls: Vec::new(),
        }
    }

    /// The pointer as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether the pointer is a URL list (see the type docs for the rule).
    pub fn is_url_list(&self) -> bool {
        !self.urls.is_empty()
    }

    /// The descriptor URL templates in preference order, or an error for an initramfs name.
    pub fn urls(&self) -> Result<&[UrlTemplate], OsPkgPointerError> {
        if self.urls.is_empty() {
            Err(OsPkgPointerError::NotUrlList {
                pointer: self.raw.clone(),
            })
        } else {
            Ok(&self.urls)
        }
    }

    /// Whether `$ID` occurs anywhere (in a URL list or an initramfs name).
    pub fn uses_id(&self) -> bool {
        self.raw.contains("$ID")
    }

    /// Whether `$AUTH` occurs anywhere.
    pub fn uses_auth(&self) -> bool {
        self.raw.contains("$AUTH")
    }

    /// Initramfs descriptor and archive paths for this name, without placeholder substitution:
    /// `X[.ext]` → (`ospkg/X.json`, `ospkg/X.zip`). Directory parts are kept
    /// (`some_folder/my-ospkg.zip` → `ospkg/some_folder/my-ospkg.json`); the last extension is
    /// replaced, as Go's `filepath.Ext`. Absolute names, empty path components, `.` and `..`
    /// are rejected. Use [`crate::HostConfig::initramfs_paths`] to substitute `$ID`/`$AUTH`.
    pub fn initramfs_paths(&self) -> Result<(String, String), OsPkgPointerError> {
        self.initramfs_paths_with(None, None)
    }

    pub(crate) fn initramfs_paths_with(
        &self,
        id: Option<&Identity>,
        auth: Option<&AuthToken>,
    ) -> Result<(String, String), OsPkgPointerError> {
        if self.is_url_list() {
            return Err(OsPkgPointerError::NotFileName);
        }
        let mut name = self.raw.clone();
        if let Some(id) = id {
            name = name.replace("$ID", id.as_str());
        }
        if let Some(auth) = auth {
            name = name.replace("$AUTH", auth.expose());
        }
        if id.is_none() && name.contains("$ID") {
            return Err(OsPkgPointerError::MissingIdentity);
        }
        if auth.is_none() && name.contains("$AUTH") {
            return Err(OsPkgPointerError::MissingAuth);
        }
        let bad = |reason| OsPkgPointerError::BadFileName {
            name: name.clone(),
            reason,
        };
        if name.starts_with('/') {
            return Err(bad("absolute paths are not allowed"));
        }
        if name.chars().any(char::is_control) {
            return Err(bad("control characters are not allowed"));
        }
        let mut components = name.split('/').peekable();
        let mut stem = String::with_capacity(name.len());
        while let Some(c) = components.next() {
            match c {
                "" => return Err(bad("empty path component")),
                "." | ".." => return Err(bad("'.' and '..' components are not allowed")),
                _ => {}
            }
            if components.peek().is_some() {
                stem.push_str(c);
                stem.push('/');
            } else {
                let base = c.rfind('.').map_or(c, |dot| &c[..dot]);
                if base.is_empty() {
                    return Err(bad("file name is empty once its extension is removed"));
                }
                stem.push_str(base);
            }
        }
        Ok((format!("ospkg/{stem}.json"), format!("ospkg/{stem}.zip")))
    }
}

impl fmt::Display for OsPkgPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn paths(s: &str) -> Result<(String, String), OsPkgPointerError> {
        OsPkgPointer::parse(s).unwrap().initramfs_paths()
    }

    #[test]
    fn initramfs_names_like_upstream() {
        for (p, stem) in [
            ("my-ospkg", "my-ospkg"),
            ("my-ospkg.zip", "my-ospkg"),
            ("my-ospkg.json", "my-ospkg"),
            ("some_folder/my-ospkg.zip", "some_folder/my-ospkg"),
            ("a.b.c", "a.b"),
            ("dir.d/file", "dir.d/file"),
            ("provision.zip", "provision"),
        ] {
            assert_eq!(
                paths(p).unwrap(),
                (format!("ospkg/{stem}.json"), format!("ospkg/{stem}.zip")),
                "{p}"
            );
        }
    }

    #[test]
    fn initramfs_names_rejected() {
        for p in [
            "/abs.zip", "../x.zip", "a/../x", "./x", "a//b", "dir/", ".zip", "a/.json", "x\ny",
        ] {
            assert!(
                matches!(paths(p), Err(OsPkgPointerError::BadFileName { .. })),
                "{p}"
            );
        }
        assert_eq!(
            paths("https://a.example/os.json"),
            Err(OsPkgPointerError::NotFileName)
        );
        assert_eq!(paths("pkg-$ID"), Err(OsPkgPointerError::MissingIdentity));
    }

    #[test]
    fn initramfs_substitution() {
        let p = OsPkgPointer::parse("hosts/$ID.zip").unwrap();
        let id = Identity::new("node7").unwrap();
        assert_eq!(
            p.initramfs_paths_with(Some(&id), None).unwrap().1,
            "ospkg/hosts/node7.zip"
        );
    }

    #[test]
    fn url_list_rule() {
        let p = OsPkgPointer::parse("https://a.example/os.json,http://b.example/os.json").unwrap();
        assert!(p.is_url_list());
        assert_eq!(p.urls().unwrap().len(), 2);

        let p = OsPkgPointer::parse("example.org/os.json").unwrap();
        assert!(!p.is_url_list());
        assert!(matches!(
            p.urls(),
            Err(OsPkgPointerError::NotUrlList { .. })
        ));

        // Any piece with "://" makes it a URL list; then every piece must parse.
        let e = OsPkgPointer::parse("https://a.example/1.json,https://b.example/2.json,foo")
            .unwrap_err();
        assert!(matches!(e, OsPkgPointerError::Url { index: 2, .. }), "{e}");
        assert!(e.to_string().starts_with("URL at index 2: "), "{e}");

        let e = OsPkgPointer::parse("https://a.example/1.json,").unwrap_err();
        assert!(
            matches!(
                e,
                OsPkgPointerError::Url {
                    index: 1,
                    reason: UrlTemplateError::Empty
                }
            ),
            "{e}"
        );
        let e = OsPkgPointer::parse("ftp://a.example/1.json").unwrap_err();
        assert!(e.to_string().contains("scheme \"ftp\""), "{e}");
        assert_eq!(OsPkgPointer::parse(""), Err(OsPkgPointerError::Empty));
    }
}
