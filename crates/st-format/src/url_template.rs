//! Descriptor URL templates: `https://host/$ID/os.json` with `$ID`/`$AUTH` placeholders.
//!
//! The Go reference substitutes `$ID` and `$AUTH` in the host config's `ospkg_pointer` with
//! `strings.ReplaceAll` right before it splits the pointer on `,` and parses each piece as a
//! URL (st-reference §4.3). We parse each piece once into [`UrlTemplate`] segments
//! (literal text, [`Segment::Id`], [`Segment::Auth`]) and check, at parse time, that the
//! template becomes an absolute `http`/`https` URL with a host once the placeholders are filled
//! in. Rendering then only concatenates and re-parses.
//!
//! Placeholder matching is a plain prefix match, exactly like `strings.ReplaceAll`: `$IDX` is
//! `$ID` followed by the literal `X` (so `$IDENTITY` renders as `<identity>ENTITY`), and `$AUTHOR`
//! is `$AUTH` followed by `OR`. A `$` not followed by `ID` or `AUTH` is literal text.

use std::fmt;
use url::Url;

/// Longest identity or authentication value (same bound as the reference).
pub const MAX_CREDENTIAL_LEN: usize = 64;

/// Value substituted for `$ID` when checking a template at parse time.
const PLACEHOLDER_ID: &str = "id";
/// Value substituted for `$AUTH` when checking a template at parse time.
const PLACEHOLDER_AUTH: &str = "auth";

/// Why an `identity` or `authentication` value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The empty string.
    #[error("is empty")]
    Empty,
    /// More than [`MAX_CREDENTIAL_LEN`] bytes.
    #[error("is {len} bytes long, over the {max}-byte limit")]
    TooLong {
        /// Actual length in bytes.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// A character outside `[A-Za-z0-9_-]`. The value itself is not echoed (it may be secret).
    #[error("has a character outside A-Z a-z 0-9 _ - at byte {position}")]
    InvalidChar {
        /// Byte offset of the first offending character.
        position: usize,
    },
}

/// Check the credential charset.
///
/// The reference's regex is `^[A-Za-z_-]+$` (no digits) while its error message says digits are
/// allowed (st-reference §11.12). We follow the message: `[A-Za-z0-9_-]{1,64}`.
fn check_credential(s: &str) -> Result<(), CredentialError> {
    if s.is_empty() {
        return Err(CredentialError::Empty);
    }
    if s.len() > MAX_CREDENTIAL_LEN {
        return Err(CredentialError::TooLong {
            len: s.len(),
            max: MAX_CREDENTIAL_LEN,
        });
    }
    match s
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
    {
        Some(position) => Err(CredentialError::InvalidChar { position }),
        None => Ok(()),
    }
}

/// The host's identity, substituted for `$ID` (host config field `identity`).
///
/// Charset `[A-Za-z0-9_-]`, 1 to 64 bytes. The reference's regex excludes digits although its
/// error message allows them; we accept digits (documented divergence, st-reference §11.12).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity(String);

impl Identity {
    /// Check and wrap an identity.
    pub fn new(s: &str) -> Result<Self, CredentialError> {
        check_credential(s).map(|()| Self(s.to_owned()))
    }
    /// The identity text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A secret substituted for `$AUTH` (host config field `authentication`).
///
/// Same charset as [`Identity`]. `Debug` is redacted and there is no `Display`: the value only
/// leaves through [`AuthToken::expose`] or a rendered URL.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AuthToken(String);

impl AuthToken {
    /// Check and wrap an authentication token.
    pub fn new(s: &str) -> Result<Self, CredentialError> {
        check_credential(s).map(|()| Self(s.to_owned()))
    }
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthToken(<redacted>)")
    }
}

/// Why a URL template was rejected or could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlTemplateError {
    /// The empty string.
    #[error("URL is empty")]
    Empty,
    /// Not a URL at all (after substituting placeholder values).
    #[error("not a valid absolute URL: {reason}")]
    Invalid {
        /// The URL parser's complaint.
        reason: String,
    },
    /// A scheme other than `http` or `https`.
    #[error("scheme \"{scheme}\" is not http or https")]
    Scheme {
        /// The scheme found.
        scheme: String,
    },
    /// The URL has no host.
    #[error("URL has no host")]
    NoHost,
    /// The template uses `$ID` and no identity was given.
    #[error("URL uses $ID but no identity is set")]
    MissingIdentity,
    /// The template uses `$AUTH` and no authentication was given.
    #[error("URL uses $AUTH but no authentication is set")]
    MissingAuth,
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Segment {
    /// Text copied as is.
    Literal(String),
    /// `$ID`: replaced by the identity.
    Id,
    /// `$AUTH`: replaced by the authentication token.
    Auth,
}

/// A checked descriptor URL template.
///
/// `Display` prints the template as written, with `$ID`/`$AUTH` kept (never the secret). Literal
/// text, including any `user:password@` written directly into the URL, is shown unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlTemplate {
    raw: String,
    segments: Vec<Segment>,
}

impl UrlTemplate {
    /// Parse a template and check that it becomes an absolute `http`/`https` URL with a host.
    /// Whitespace and control characters are rejected anywhere in the template.
    pub fn parse(s: &str) -> Result<Self, UrlTemplateError> {
        if s.is_empty() {
            return Err(UrlTemplateError::Empty);
        }
        // The URL parser would silently strip or drop these (WHATWG); Go's parser rejects most
        // of them. Refuse them so the template means what it shows.
        if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlTemplateError::Invalid {
                reason: format!("contains whitespace or control character {c:?}"),
            });
        }
        let segments = split_segments(s);
        let t = Self {
            raw: s.to_owned(),
            segments,
        };
        t.render_str(Some(PLACEHOLDER_ID), Some(PLACEHOLDER_AUTH))?;
        Ok(t)
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The parsed segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Whether `$ID` occurs.
    pub fn uses_id(&self) -> bool {
        self.segments.iter().any(|s| matches!(s, Segment::Id))
    }

    /// Whether `$AUTH` occurs.
    pub fn uses_auth(&self) -> bool {
        self.segments.iter().any(|s| matches!(s, Segment::Auth))
    }

    /// Fill in the placeholders and parse the result. A value is needed only if the template
    /// uses its placeholder.
    pub fn render(
        &self,
        id: Option<&Identity>,
        auth: Option<&AuthToken>,
    ) -> Result<Url, UrlTemplateError> {
        self.render_str(id.map(Identity::as_str), auth.map(AuthToken::expose))
    }

    fn render_str(&self, id: Option<&str>, auth: Option<&str>) -> Result<Url, UrlTemplateError> {
        let mut out = String::with_capacity(self.raw.len() + 2 * MAX_CREDENTIAL_LEN);
        for seg in &self.segments {
            match seg {
                Segment::Literal(l) => out.push_str(l),
                Segment::Id => out.push_str(id.ok_or(UrlTemplateError::MissingIdentity)?),
                Segment::Auth => out.push_str(auth.ok_or(UrlTemplateError::MissingAuth)?),
            }
        }
        let url = Url::parse(&out).map_err(|e| UrlTemplateError::Invalid {
            reason: e.to_string(),
        })?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(UrlTemplateError::Scheme {
                scheme: url.scheme().to_owned(),
            });
        }
        match url.host_str() {
            Some(h) if !h.is_empty() => Ok(url),
            _ => Err(UrlTemplateError::NoHost),
        }
    }
}

impl fmt::Display for UrlTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl std::str::FromStr for UrlTemplate {
    type Err = UrlTemplateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Split into segments, matching `$AUTH` and `$ID` as plain prefixes (like `strings.ReplaceAll`).
fn split_segments(s: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut literal = String::new();
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        literal.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        let (seg, len) = if tail.starts_with("$AUTH") {
            (Some(Segment::Auth), "$AUTH".len())
        } else if tail.starts_with("$ID") {
            (Some(Segment::Id), "$ID".len())
        } else {
            (None, 1)
        };
        match seg {
            Some(seg) => {
                if !literal.is_empty() {
                    segments.push(Segment::Literal(std::mem::take(&mut literal)));
                }
                segments.push(seg);
            }
            None => literal.push('$'),
        }
        rest = &tail[len..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    segments
}

/// Fuzz entry point: parse; on success re-parse the `Display` form and check equality.
#[doc(hidden)]
#[allow(clippy::panic)]
pub fn fuzz_url_template(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = UrlTemplate::parse(s) {
        match UrlTemplate::parse(&t.to_string()) {
            Ok(again) if again == t => {}
            other => panic!("url template round trip mismatch: {t:?} -> {other:?}"),
        }
        let id = Identity::new("A-z_09").ok();
        let auth = AuthToken::new("secret").ok();
        // Rendering must not panic; it may fail for exotic templates (e.g. `$ID` in a port).
        let _ = t.render(id.as_ref(), auth.as_ref());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn id(s: &str) -> Identity {
        Identity::new(s).unwrap()
    }
    fn auth(s: &str) -> AuthToken {
        AuthToken::new(s).unwrap()
    }

    #[test]
    fn substitutes_id_and_auth() {
        let t = UrlTemplate::parse("https://$ID:$AUTH@example.org/$ID/os.json").unwrap();
        assert!(t.uses_id() && t.uses_auth());
        let u = t
            .render(Some(&id("host-1")), Some(&auth("s3cr_et")))
            .unwrap();
        assert_eq!(
            u.as_str(),
            "https://host-1:s3cr_et@example.org/host-1/os.json"
        );
        assert_eq!(
            t.to_string(),
            "https://$ID:$AUTH@example.org/$ID/os.json",
            "Display keeps placeholders"
        );
    }

    #[test]
    fn plain_url_needs_nothing() {
        let t = UrlTemplate::parse("http://10.0.2.2:8080/os.json").unwrap();
        assert!(!t.uses_id() && !t.uses_auth());
        assert_eq!(
            t.render(None, None).unwrap().as_str(),
            "http://10.0.2.2:8080/os.json"
        );
        assert_eq!(
            t.segments(),
            &[Segment::Literal("http://10.0.2.2:8080/os.json".into())]
        );
    }

    #[test]
    fn missing_identity_or_auth() {
        let t = UrlTemplate::parse("https://example.org/$ID/$AUTH").unwrap();
        assert_eq!(
            t.render(None, Some(&auth("a"))),
            Err(UrlTemplateError::MissingIdentity)
        );
        assert_eq!(
            t.render(Some(&id("a")), None),
            Err(UrlTemplateError::MissingAuth)
        );
    }

    #[test]
    fn digits_are_accepted_in_credentials() {
        assert!(Identity::new("host42").is_ok());
        assert!(Identity::new("0123456789").is_ok());
        assert!(AuthToken::new("pa55").is_ok());
    }

    #[test]
    fn bad_credentials() {
        assert_eq!(Identity::new(""), Err(CredentialError::Empty));
        assert_eq!(
            Identity::new("a.b"),
            Err(CredentialError::InvalidChar { position: 1 })
        );
        assert!(Identity::new("a b").is_err());
        assert!(Identity::new("a/b").is_err());
        assert!(Identity::new("ä").is_err());
        assert!(Identity::new(&"a".repeat(64)).is_ok());
        assert_eq!(
            Identity::new(&"a".repeat(65)),
            Err(CredentialError::TooLong { len: 65, max: 64 })
        );
        assert!(AuthToken::new("x$y").is_err());
    }

    #[test]
    fn auth_token_debug_is_redacted() {
        let s = format!("{:?}", auth("hunter2"));
        assert!(!s.contains("hunter2"), "{s}");
    }

    #[test]
    fn id_prefix_match_like_replace_all() {
        let t = UrlTemplate::parse("https://example.org/$IDENTITY/$AUTHOR").unwrap();
        assert_eq!(
            t.segments(),
            &[
                Segment::Literal("https://example.org/".into()),
                Segment::Id,
                Segment::Literal("ENTITY/".into()),
                Segment::Auth,
                Segment::Literal("OR".into()),
            ]
        );
        let u = t.render(Some(&id("x")), Some(&auth("y"))).unwrap();
        assert_eq!(u.as_str(), "https://example.org/xENTITY/yOR");
    }

    #[test]
    fn lone_dollar_is_literal() {
        let t = UrlTemplate::parse("https://example.org/$I$$ID$").unwrap();
        assert_eq!(
            t.segments(),
            &[
                Segment::Literal("https://example.org/$I$".into()),
                Segment::Id,
                Segment::Literal("$".into()),
            ]
        );
        assert!(!t.uses_auth());
    }

    #[test]
    fn bad_scheme() {
        assert_eq!(
            UrlTemplate::parse("ftp://example.org/os.json"),
            Err(UrlTemplateError::Scheme {
                scheme: "ftp".into()
            })
        );
        assert!(matches!(
            UrlTemplate::parse("file:///os.json"),
            Err(UrlTemplateError::Scheme { .. })
        ));
    }

    #[test]
    fn not_a_url() {
        assert_eq!(UrlTemplate::parse(""), Err(UrlTemplateError::Empty));
        assert!(matches!(
            UrlTemplate::parse("example.org/os.json"),
            Err(UrlTemplateError::Invalid { .. })
        ));
        assert!(matches!(
            UrlTemplate::parse("https://"),
            Err(UrlTemplateError::Invalid { .. })
        ));
        for s in [
            " https://a/x",
            "https://a/x ",
            "https://a\n.example/x",
            "https://a/x\ty",
        ] {
            assert!(
                matches!(UrlTemplate::parse(s), Err(UrlTemplateError::Invalid { .. })),
                "{s:?}"
            );
        }
        assert!(matches!(
            UrlTemplate::parse("https://host:$ID/x"),
            Err(UrlTemplateError::Invalid { .. })
        ));
    }

    #[test]
    fn fuzz_helper_smoke() {
        for s in [
            "",
            "https://a/$ID",
            "http://[::1]:80/$AUTH",
            "\u{0}",
            "https://$ID/",
        ] {
            fuzz_url_template(s.as_bytes());
        }
    }
}
