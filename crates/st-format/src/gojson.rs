//! JSON output byte-compatible with Go's `encoding/json`.
//!
//! The Go reference writes its descriptors, manifests and host configs with
//! `json.MarshalIndent(v, "", "  ")`. serde_json's pretty printer already produces the same
//! layout (two-space indent, `"key": value`, `[]` for empty arrays); the one difference is
//! string escaping: Go escapes `<`, `>` and `&` (and U+2028, U+2029) as `\u003c`-style
//! sequences. [`GoFormatter`] adds that, so our files are the reference's bytes.

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};
use std::io;

/// A serde_json formatter that escapes strings the way Go's `encoding/json` does.
pub struct GoFormatter<F> {
    inner: F,
}

impl<F: Formatter> Formatter for GoFormatter<F> {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escape = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escape.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    // Everything else is delegated unchanged.
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.inner.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.inner.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.inner.end_object_value(w)
    }
}

/// `json.MarshalIndent(v, "", "  ")`: pretty, two-space indent, Go escaping, no trailing newline.
pub fn to_pretty<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    write(value, PrettyFormatter::with_indent(b"  "))
}

/// `json.Marshal(v)`: compact, Go escaping.
pub fn to_compact<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    write(value, CompactFormatter)
}

fn write<T: Serialize + ?Sized, F: Formatter>(value: &T, inner: F) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter { inner });
    // Serialising our own plain structs (strings, integers, vectors, string-keyed maps) into a
    // Vec cannot fail: there is no IO error and no non-string map key.
    if value.serialize(&mut ser).is_err() {
        out.clear();
        out.extend_from_slice(b"null");
    }
    out
}

/// Parse a JSON document that must be an object into `T`. serde's derived structs also accept
/// a JSON array (`[1, "network"]` as a positional struct); ST documents are always objects, so
/// anything else is refused before serde sees it.
pub(crate) fn from_object<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    let first = bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first != Some(&b'{') {
        return Err("expected a JSON object".into());
    }
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        let v = serde_json::json!({"url": "https://a/b?x=1&y=<2>\u{2028}", "n": null, "l": []});
        assert_eq!(
            String::from_utf8(to_compact(&v)).unwrap(),
            r#"{"l":[],"n":null,"url":"https://a/b?x=1\u0026y=\u003c2\u003e\u2028"}"#
        );
    }

    #[test]
    fn pretty_layout_matches_marshal_indent() {
        let v = serde_json::json!({"a": [1, 2], "b": "x"});
        assert_eq!(
            String::from_utf8(to_pretty(&v)).unwrap(),
            "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": \"x\"\n}"
        );
    }
}
