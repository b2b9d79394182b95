//! Checks that every OS package URL answers `HEAD` with 200, as the reference does before it
//! writes anything, over stboot's own transport (`stboot::fetch::HttpTransport`: rustls trusting
//! exactly `tls_roots.pem`, redirects checked, HTTPS never downgraded).
//!
//! Unlike the reference, a failure that may pass is retried with backoff until a deadline: right
//! after link-up many switches forward nothing for ~30 s (spanning tree), and DNS or the server
//! may not answer yet. A TLS failure, a 4xx status or a refused redirect is final at once.

use std::path::Path;
use std::time::{Duration, Instant};

use stboot::fetch::{FetchError, Headed, HttpTransport, Redactor};
use url::Url;

use crate::Failure;

/// Longest `tls_roots.pem` read.
const MAX_ROOTS_FILE: u64 = 1 << 20;

/// How the checks are timed.
#[derive(Debug, Clone, Copy)]
pub struct CheckTiming {
    /// All checks end by then.
    pub deadline: Duration,
    /// Each attempt: connect, TLS, answer.
    pub attempt_timeout: Duration,
    /// First pause between attempts (doubling up to [`CheckTiming::max_backoff`]).
    pub backoff: Duration,
    /// Longest pause.
    pub max_backoff: Duration,
}

impl CheckTiming {
    /// Attempts of 10 s, pauses 1 s doubling up to 8 s, within `deadline`.
    pub fn within(deadline: Duration) -> Self {
        Self {
            deadline,
            attempt_timeout: Duration::from_secs(10),
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(8),
        }
    }
}

/// Whether a failure may go away by itself (network not forwarding yet, server busy).
pub fn may_pass_later(e: &FetchError) -> bool {
    match e {
        FetchError::Connect(_) | FetchError::Timeout(_) | FetchError::Other(_) => true,
        FetchError::Status(s) => *s >= 500 || *s == 429 || *s == 408,
        _ => false,
    }
}

/// The certificates of `path` usable now (DER); empty when the file is absent (then only
/// `http://` URLs can pass). An unreadable or malformed file is an error naming it.
pub fn read_tls_roots(path: &Path, now: st_verify::UnixTime) -> Result<Vec<Vec<u8>>, Failure> {
    use std::io::Read as _;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            log::warn!(
                "{}: absent; HTTPS URLs cannot be checked (no TLS roots)",
                path.display()
            );
            return Ok(Vec::new());
        }
        Err(e) => return Err(Failure::Other(format!("{}: {e}", path.display()))),
    };
    let mut bytes = Vec::new();
    file.take(MAX_ROOTS_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::Other(format!("{}: {e}", path.display())))?;
    if bytes.len() as u64 > MAX_ROOTS_FILE {
        return Err(Failure::Other(format!(
            "{}: larger than {MAX_ROOTS_FILE} bytes",
            path.display()
        )));
    }
    let ders = st_verify::parse_certificate_pems(&bytes)
        .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
    let total = ders.len();
    let usable = stboot::tls::usable_roots(&path.display().to_string(), ders, now);
    log::info!(
        "{}: {} of {total} certificate(s) usable as TLS roots",
        path.display(),
        usable.len()
    );
    Ok(usable)
}

/// One URL's outcome.
#[derive(Debug)]
pub struct Checked {
    /// The URL as logged (credentials hidden).
    pub shown: String,
    /// What the server said, or the last failure.
    pub result: Result<Headed, FetchError>,
    /// Attempts made.
    pub attempts: u32,
}

/// `HEAD` every URL in order, each retried while its failure may pass, all within
/// `timing.deadline`.
pub fn check_all(urls: &[Url], tls_roots: &[Vec<u8>], timing: CheckTiming) -> Vec<Checked> {
    let redactor = Redactor::new(urls.iter().filter_map(|u| u.password().map(str::to_owned)));
    let transport =
        HttpTransport::new(tls_roots, timing.attempt_timeout).with_redactor(redactor.clone());
    let deadline = Instant::now() + timing.deadline;
    urls.iter()
        .map(|url| {
            let shown = redactor.url(url);
            let mut wait = timing.backoff;
            let mut attempts = 0;
            loop {
                attempts += 1;
                let result = transport.head(url, deadline);
                match &result {
                    Ok(h) => log::info!(
                        "{shown}: HEAD 200 (content-length {}, content-type {:?})",
                        h.content_length
                            .map_or_else(|| "unknown".to_owned(), |n| n.to_string()),
                        h.content_type.as_deref().unwrap_or("")
                    ),
                    Err(e) if may_pass_later(e) && Instant::now() + wait < deadline => {
                        log::warn!(
                            "{shown}: attempt {attempts}: {}; retrying in {} s",
                            redactor.text(&e.to_string()),
                            wait.as_secs_f32()
                        );
                        std::thread::sleep(wait);
                        wait = (wait * 2).min(timing.max_backoff);
                        continue;
                    }
                    Err(_) => {}
                }
                let result = result.map_err(|e| match e {
                    FetchError::Connect(m) => FetchError::Connect(redactor.text(&m)),
                    FetchError::Tls(m) => FetchError::Tls(redactor.text(&m)),
                    FetchError::Timeout(m) => FetchError::Timeout(redactor.text(&m)),
                    FetchError::Other(m) => FetchError::Other(redactor.text(&m)),
                    FetchError::Redirect(m) => FetchError::Redirect(redactor.text(&m)),
                    other => other,
                });
                break Checked {
                    shown,
                    result,
                    attempts,
                };
            }
        })
        .collect()
}

/// The failures of [`check_all`] as one [`Failure::Url`] (each URL and why), or `Ok` when all
/// passed. With `force`, failures are logged and ignored, as the reference's `-f`.
pub fn judge(checked: &[Checked], force: bool, no_roots: bool) -> Result<(), Failure> {
    let failed: Vec<String> = checked
        .iter()
        .filter_map(|c| {
            c.result.as_ref().err().map(|e| {
                let hint = match e {
                    FetchError::Tls(_) if no_roots => " (no usable TLS roots: see --tls-roots)",
                    FetchError::Tls(_) => " (is the server's certificate issued by tls_roots.pem?)",
                    _ => "",
                };
                format!(
                    "{}: HEAD failed after {} attempt(s): {e}{hint}",
                    c.shown, c.attempts
                )
            })
        })
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    if force {
        for f in &failed {
            log::warn!("force: ignoring: {f}");
        }
        return Ok(());
    }
    Err(Failure::Url(format!(
        "OS package URL check failed (nothing written; -f to write anyway):\n  {}",
        failed.join("\n  ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_retried() {
        assert!(may_pass_later(&FetchError::Connect("refused".into())));
        assert!(may_pass_later(&FetchError::Timeout("t".into())));
        assert!(may_pass_later(&FetchError::Status(503)));
        assert!(!may_pass_later(&FetchError::Status(404)));
        assert!(!may_pass_later(&FetchError::Tls("unknown issuer".into())));
        assert!(!may_pass_later(&FetchError::Redirect("to http".into())));
    }

    /// A port nothing listens on: retried until the deadline, then reported with the URL and
    /// the reason, credentials hidden.
    #[test]
    fn unreachable_url_is_named_with_the_reason() {
        let sock = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        drop(sock);
        let url = Url::parse(&format!("http://alice:pw@127.0.0.1:{port}/os.json")).unwrap();
        let timing = CheckTiming {
            deadline: Duration::from_millis(700),
            attempt_timeout: Duration::from_millis(300),
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(200),
        };
        let t0 = Instant::now();
        let checked = check_all(&[url], &[], timing);
        assert!(t0.elapsed() < Duration::from_secs(3));
        assert!(checked[0].attempts >= 2, "{checked:?}");
        let e = judge(&checked, false, false).unwrap_err();
        let text = e.to_string();
        assert_eq!(e.exit_code(), 4);
        assert!(
            text.contains(&format!(
                "http://REDACTED@127.0.0.1:{port}/os.json: HEAD failed"
            )),
            "{text}"
        );
        assert!(text.contains("cannot connect"), "{text}");
        assert!(!text.contains("pw"), "{text}");
        assert!(judge(&checked, true, false).is_ok());
    }
}
