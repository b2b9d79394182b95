//! Just enough HTTP/1.1 for the agent's few endpoints: one bounded request per connection
//! (request line, headers, a `Content-Length` body), one response, then the connection closes.

use std::io::{self, BufRead, Write};

/// Longest request line or header line.
pub const MAX_LINE: usize = 8 << 10;
/// Most header lines.
pub const MAX_HEADERS: usize = 64;

/// A request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without query.
    pub path: String,
    /// The body (empty without `Content-Length`).
    pub body: Vec<u8>,
}

/// Why a request was not read.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The connection failed or closed early.
    #[error("reading the request: {0}")]
    Io(#[from] io::Error),
    /// Not a request we can parse (the text says what).
    #[error("bad request: {0}")]
    Bad(&'static str),
    /// The body is over the cap.
    #[error("request body of {0} bytes is over the limit")]
    TooLarge(u64),
}

fn line<R: BufRead>(r: &mut R) -> Result<String, HttpError> {
    let mut buf = Vec::new();
    let n = io::Read::take(&mut *r, MAX_LINE as u64 + 1).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Err(HttpError::Bad("connection closed before the request"));
    }
    if buf.len() > MAX_LINE || !buf.ends_with(b"\n") {
        return Err(HttpError::Bad("line too long"));
    }
    let text = String::from_utf8(buf).map_err(|_| HttpError::Bad("not UTF-8"))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

/// Read one request, refusing bodies over `max_body` bytes.
pub fn read_request<R: BufRead>(r: &mut R, max_body: usize) -> Result<Request, HttpError> {
    let first = line(r)?;
    let mut parts = first.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Bad("request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Bad("not HTTP/1.x"));
    }
    let path = target.split('?').next().unwrap_or_default().to_owned();
    let mut length: Option<u64> = None;
    for _ in 0..=MAX_HEADERS {
        let h = line(r)?;
        if h.is_empty() {
            let len = length.unwrap_or(0);
            if len > max_body as u64 {
                return Err(HttpError::TooLarge(len));
            }
            let mut body = vec![0u8; usize::try_from(len).unwrap_or(0)];
            io::Read::read_exact(r, &mut body)?;
            return Ok(Request {
                method: method.to_owned(),
                path,
                body,
            });
        }
        let (name, value) = h.split_once(':').ok_or(HttpError::Bad("header line"))?;
        if name.eq_ignore_ascii_case("content-length") {
            if length.is_some() {
                return Err(HttpError::Bad("two Content-Length headers"));
            }
            length = Some(
                value
                    .trim()
                    .parse()
                    .map_err(|_| HttpError::Bad("Content-Length"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::Bad("Transfer-Encoding is not supported"));
        }
    }
    Err(HttpError::Bad("too many headers"))
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `application/json` or `text/plain`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// 200 with a JSON body.
    pub fn json(value: &serde_json::Value) -> Self {
        Self {
            status: 200,
            content_type: "application/json",
            body: format!("{value:#}\n").into_bytes(),
        }
    }
    /// An error status with a one-line text body (the reason).
    pub fn error(status: u16, reason: impl std::fmt::Display) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: format!("{reason}\n").into_bytes(),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

/// Write `resp` and close the exchange (`Connection: close`).
pub fn write_response<W: Write>(w: &mut W, resp: &Response) -> io::Result<()> {
    write!(
        w,
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len()
    )?;
    w.write_all(&resp.body)?;
    w.flush()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(text: &[u8], max: usize) -> Result<Request, HttpError> {
        read_request(&mut io::BufReader::new(text), max)
    }

    #[test]
    fn requests_are_parsed_and_bounded() {
        let r = parse(
            b"POST /st/attest/v1/quote?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody",
            10,
        )
        .unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/st/attest/v1/quote")
        );
        assert_eq!(r.body, b"body");
        let r = parse(b"GET /k HTTP/1.0\r\n\r\n", 10).unwrap();
        assert!(r.body.is_empty());
        assert!(matches!(
            parse(b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 10),
            Err(HttpError::TooLarge(11))
        ));
        for bad in [
            &b"GET /\r\n\r\n"[..],
            b"GET / SPDY/3\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"",
        ] {
            assert!(matches!(parse(bad, 10), Err(HttpError::Bad(_))), "{bad:?}");
        }
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_LINE));
        assert!(matches!(parse(long.as_bytes(), 10), Err(HttpError::Bad(_))));
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "A: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert!(matches!(parse(many.as_bytes(), 10), Err(HttpError::Bad(_))));
        // A body shorter than announced is an I/O error, not a short body.
        assert!(matches!(
            parse(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", 10),
            Err(HttpError::Io(_))
        ));
    }

    #[test]
    fn responses_carry_length_and_close() {
        let mut out = Vec::new();
        write_response(&mut out, &Response::error(404, "no such path")).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        assert!(text.contains("Content-Length: 13\r\n"));
        assert!(text.ends_with("\r\n\r\nno such path\n"));
    }
}
