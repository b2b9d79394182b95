//! Encrypted OS packages (ST 1.2): a downloaded descriptor or archive that is an age file is
//! decrypted with the trust policy directory's `decryption_identities` right after it
//! arrives, before anything else looks at it. The archive is decrypted as it streams in, one
//! authenticated 64 KiB chunk at a time, straight into the hashing buffer: there is never a
//! second copy of the archive in memory. Signatures, Sigsum proofs and measurements all see the
//! plaintext, exactly as for a package that was never encrypted.
//!
//! A plaintext body is accepted also when identities are configured (encryption protects the
//! package on the server and on the wire, not the machine: the signatures do that), so an
//! operator can roll out images with identities before encrypting the packages. An encrypted
//! body without identities, an ASCII-armored one, or one that fails to decrypt is refused with
//! the reason, and nothing from it is used.

use st_age::{Decryptor, Identities};
use st_verify::{HashedArchive, HashingBuffer};
use std::fmt;
use std::io::{self, Write};

use crate::fetch::Sink;

/// Bytes looked at before deciding whether a body is an age file (its version line is 22
/// bytes; the armor line, after optional whitespace, 34).
const SNIFF: usize = 64;

/// Why an encrypted body was refused. It travels inside the `io::Error` of a sink write, so
/// the fetch can report it as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecryptError(pub String);

impl fmt::Display for DecryptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecryptError {}

fn refused(text: String) -> io::Error {
    io::Error::other(DecryptError(text))
}

/// What a body turned out to be: an age file carries the identities that will decrypt it.
enum Kind<'a> {
    Plain,
    Age(&'a Identities),
}

/// The decision on the first bytes of a body.
fn classify<'a>(
    head: &[u8],
    identities: Option<&'a Identities>,
    what: &str,
) -> Result<Kind<'a>, String> {
    if st_age::is_encrypted(head) {
        identities.map(Kind::Age).ok_or_else(|| {
            format!(
                "{what} is age-encrypted, but the trust policy directory has no \
                 decryption_identities"
            )
        })
    } else if st_age::is_armored(head) {
        Err(format!(
            "{what} is an ASCII-armored age file; only binary age files are decrypted \
             (encrypt without -a / --armor)"
        ))
    } else {
        Ok(Kind::Plain)
    }
}

/// A downloaded descriptor in plaintext: decrypted when it is an age file. Returns the
/// plaintext and whether it was encrypted.
pub fn descriptor_plaintext(
    bytes: Vec<u8>,
    identities: Option<&Identities>,
    max: usize,
) -> Result<(Vec<u8>, bool), String> {
    match classify(&bytes, identities, "descriptor")? {
        Kind::Plain => Ok((bytes, false)),
        Kind::Age(ids) => st_age::decrypt_to_vec(ids, &bytes, max)
            .map(|plain| (plain, true))
            .map_err(|e| format!("descriptor: decrypting: {e}")),
    }
}

enum State<'a> {
    /// Fewer than [`SNIFF`] bytes so far.
    Sniffing(Vec<u8>),
    Plain(Box<HashingBuffer>),
    Age(Box<Decryptor<'a, HashingBuffer>>),
    /// A write failed; every later one fails too.
    Failed(String),
}

/// The download sink of an archive: stores and hashes a plaintext body as it is, decrypts an
/// age-encrypted one chunk by chunk into the same hashing buffer.
pub struct ArchiveSink<'a> {
    identities: Option<&'a Identities>,
    /// Content-Length, when the server sent one: the buffer is reserved once it is known what
    /// the body is (for an encrypted body the ciphertext length bounds the plaintext).
    expected: Option<u64>,
    state: State<'a>,
}

impl<'a> ArchiveSink<'a> {
    /// A sink for one download attempt.
    pub fn new(identities: Option<&'a Identities>) -> Self {
        Self {
            identities,
            expected: None,
            state: State::Sniffing(Vec::new()),
        }
    }

    fn buffer(&self) -> io::Result<HashingBuffer> {
        let mut buf = HashingBuffer::default();
        if let Some(len) = self.expected {
            let n = usize::try_from(len).map_err(|_| io::ErrorKind::OutOfMemory)?;
            buf.try_reserve(n)
                .map_err(|e| io::Error::new(io::ErrorKind::OutOfMemory, e))?;
        }
        Ok(buf)
    }

    /// Leave the sniffing state with the bytes seen so far.
    fn decide(&mut self, head: Vec<u8>) -> io::Result<()> {
        let kind = classify(&head, self.identities, "archive").map_err(refused)?;
        self.state = match kind {
            Kind::Age(ids) => {
                log::info!("archive is age-encrypted: decrypting as it arrives");
                State::Age(Box::new(Decryptor::new(ids, self.buffer()?)))
            }
            Kind::Plain => State::Plain(Box::new(self.buffer()?)),
        };
        self.feed(&head)
    }

    fn feed(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.state {
            State::Sniffing(head) => {
                head.extend_from_slice(data);
                if head.len() >= SNIFF {
                    let head = std::mem::take(head);
                    return self.decide(head);
                }
                Ok(())
            }
            State::Plain(buf) => buf.write_all(data),
            State::Age(d) => d
                .write_all(data)
                .map_err(|e| refused(format!("decrypting: {e}"))),
            State::Failed(why) => Err(refused(why.clone())),
        }
    }

    /// The body is complete: the stored plaintext with its digest, and whether it was
    /// encrypted. A truncated or otherwise broken age file is an error here.
    pub fn finish(mut self) -> Result<(HashedArchive, bool), String> {
        if let State::Sniffing(head) = &mut self.state {
            let head = std::mem::take(head);
            self.decide(head).map_err(|e| e.to_string())?;
        }
        match self.state {
            State::Plain(buf) => buf
                .finish()
                .map(|a| (a, false))
                .map_err(|e| format!("storing: {e}")),
            State::Age(d) => d
                .finish()
                .map_err(|e| format!("decrypting: {e}"))?
                .finish()
                .map(|a| (a, true))
                .map_err(|e| format!("storing: {e}")),
            State::Failed(why) => Err(why),
            State::Sniffing(_) => Err("no body".into()),
        }
    }
}

impl Write for ArchiveSink<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self.feed(data) {
            Ok(()) => Ok(data.len()),
            Err(e) => {
                if !matches!(self.state, State::Failed(_)) {
                    self.state = State::Failed(e.to_string());
                }
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink for ArchiveSink<'_> {
    fn expect(&mut self, len: u64) -> Result<(), String> {
        // Reserved once the first bytes say what the body is (a failure then is a write error).
        usize::try_from(len).map_err(|_| format!("cannot allocate {len} bytes for the body"))?;
        self.expected = Some(len);
        Ok(())
    }

    fn spare(&mut self) -> Option<io::Result<&mut [u8]>> {
        match &mut self.state {
            State::Plain(buf) => Some(buf.spare()),
            _ => None,
        }
    }

    fn commit(&mut self, n: usize) -> io::Result<()> {
        match &mut self.state {
            State::Plain(buf) => buf.commit(n),
            _ => Err(io::Error::other("commit without spare")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use st_age::{Identity, Recipient};

    fn identity(seed: u8) -> Identity {
        let mut random = |b: &mut [u8]| b.iter_mut().for_each(|x| *x = seed);
        Identity::generate(&mut random)
    }

    fn encrypt(to: &Recipient, plain: &[u8]) -> Vec<u8> {
        let mut n = 0u8;
        let mut random = |b: &mut [u8]| {
            b.iter_mut().for_each(|x| {
                n = n.wrapping_add(1);
                *x = n;
            })
        };
        st_age::encrypt(std::slice::from_ref(to), plain, Vec::new(), &mut random).unwrap()
    }

    /// Feed `body` in `piece`-sized writes, as a download would.
    fn download(sink: &mut ArchiveSink<'_>, body: &[u8], piece: usize) -> io::Result<()> {
        body.chunks(piece).try_for_each(|c| sink.write_all(c))
    }

    fn finish_err(sink: ArchiveSink<'_>) -> String {
        match sink.finish() {
            Ok(_) => String::from("(accepted)"),
            Err(e) => e,
        }
    }

    fn plaintext(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn an_encrypted_archive_is_decrypted_as_it_arrives_and_hashed_as_plaintext() {
        let id = identity(1);
        let ids = Identities::new(vec![id.clone()]).unwrap();
        let plain = plaintext(300_000);
        let cipher = encrypt(id.recipient(), &plain);
        for piece in [1, 7, 4096, 65_536 + 16, cipher.len()] {
            let mut sink = ArchiveSink::new(Some(&ids));
            sink.expect(cipher.len() as u64).unwrap();
            download(&mut sink, &cipher, piece).unwrap();
            let (archive, encrypted) = sink.finish().unwrap();
            assert!(encrypted);
            assert_eq!(archive.bytes(), plain);
            assert_eq!(archive.digest(), HashedArchive::new(plain.clone()).digest());
        }
    }

    #[test]
    fn a_plain_archive_is_stored_as_it_is_also_with_identities() {
        let id = identity(2);
        let ids = Identities::new(vec![id]).unwrap();
        let plain = plaintext(100_000);
        for identities in [None, Some(&ids)] {
            let mut sink = ArchiveSink::new(identities);
            download(&mut sink, &plain, 10_000).unwrap();
            let (archive, encrypted) = sink.finish().unwrap();
            assert!(!encrypted);
            assert_eq!(archive.bytes(), plain);
        }
        // A body shorter than the sniffing window.
        let mut sink = ArchiveSink::new(Some(&ids));
        download(&mut sink, b"PK\x05\x06", 1).unwrap();
        assert_eq!(sink.finish().unwrap().0.bytes(), b"PK\x05\x06");
    }

    #[test]
    fn encrypted_without_identities_is_refused() {
        let id = identity(3);
        let cipher = encrypt(id.recipient(), &plaintext(1000));
        let mut sink = ArchiveSink::new(None);
        let e = download(&mut sink, &cipher, 500).unwrap_err();
        assert!(e.to_string().contains("no decryption_identities"), "{e}");
        assert!(finish_err(sink).contains("no decryption_identities"));
        let e = descriptor_plaintext(cipher, None, 1 << 20).unwrap_err();
        assert!(e.contains("descriptor is age-encrypted"), "{e}");
    }

    #[test]
    fn wrong_identity_tampered_and_truncated_archives_are_refused() {
        let right = identity(4);
        let wrong = Identities::new(vec![identity(5)]).unwrap();
        let ids = Identities::new(vec![right.clone()]).unwrap();
        let cipher = encrypt(right.recipient(), &plaintext(200_000));

        let mut sink = ArchiveSink::new(Some(&wrong));
        let e = download(&mut sink, &cipher, 4096).unwrap_err().to_string();
        assert!(e.contains("decrypting"), "{e}");
        assert!(finish_err(sink).contains("decrypting"));

        let mut tampered = cipher.clone();
        let at = tampered.len() - 70_000;
        tampered[at] ^= 1;
        let mut sink = ArchiveSink::new(Some(&ids));
        let wrote = download(&mut sink, &tampered, 4096);
        let e = match wrote {
            Err(e) => e.to_string(),
            Ok(()) => finish_err(sink),
        };
        assert!(e.contains("decrypting"), "{e}");

        let mut sink = ArchiveSink::new(Some(&ids));
        download(&mut sink, &cipher[..cipher.len() - 100], 4096).unwrap();
        let e = finish_err(sink);
        assert!(e.contains("decrypting"), "{e}");
    }

    #[test]
    fn armored_bodies_are_refused_by_name() {
        let ids = Identities::new(vec![identity(6)]).unwrap();
        let armored = b"-----BEGIN AGE ENCRYPTED FILE-----\nYWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOQ==\n-----END AGE ENCRYPTED FILE-----\n";
        let mut sink = ArchiveSink::new(Some(&ids));
        let e = download(&mut sink, armored, 16).unwrap_err().to_string();
        assert!(e.contains("ASCII-armored"), "{e}");
        let e = descriptor_plaintext(armored.to_vec(), Some(&ids), 1 << 20).unwrap_err();
        assert!(e.contains("ASCII-armored"), "{e}");
    }

    #[test]
    fn descriptors_are_decrypted_and_capped() {
        let id = identity(7);
        let ids = Identities::new(vec![id.clone()]).unwrap();
        let json = br#"{"version":1,"os_pkg_url":"x.zip","certificates":null,"signatures":null}"#;
        let cipher = encrypt(id.recipient(), json);
        let (plain, encrypted) = descriptor_plaintext(cipher.clone(), Some(&ids), 1 << 20).unwrap();
        assert!(encrypted);
        assert_eq!(plain, json);
        let e = descriptor_plaintext(cipher, Some(&ids), 10).unwrap_err();
        assert!(e.contains("descriptor: decrypting"), "{e}");
        let (plain, encrypted) = descriptor_plaintext(json.to_vec(), Some(&ids), 1 << 20).unwrap();
        assert!(!encrypted && plain == json);
    }
}
