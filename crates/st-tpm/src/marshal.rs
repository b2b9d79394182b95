//! TPM 2.0 marshalling: a command writer and a bounded response reader.
//!
//! Everything on the wire is big-endian. A command is a 10-byte header (`tag u16`,
//! `commandSize u32` for the whole command, `commandCode u32`), the handles, for a command with
//! sessions the authorization area (`authorizationSize u32` then the sessions), then the
//! parameters. A response is `tag | responseSize | responseCode`, then on success the response
//! handles, for `TPM_ST_SESSIONS` a `parameterSize u32`, the parameters and one session
//! response per command session.
//!
//! [`CommandWriter`] builds commands; [`Response::open`] checks a response's framing and hands
//! out a [`Reader`] over its parameters. Every read is checked against the bytes that remain and
//! fails with an [`Error::Malformed`] naming the command and the field.

use crate::CommandCode;
use crate::error::{Error, Problem};
use crate::rc::ResponseCode;

/// `TPM_ST_NO_SESSIONS`: a command or response without an authorization area.
pub const TPM_ST_NO_SESSIONS: u16 = 0x8001;
/// `TPM_ST_SESSIONS`: a command or response with an authorization area.
pub const TPM_ST_SESSIONS: u16 = 0x8002;
/// `TPM_ST_RSP_COMMAND`: the tag of a TPM 1.2-style error response (bad command tag).
pub const TPM_ST_RSP_COMMAND: u16 = 0x00c4;
/// `TPM_RS_PW`: the password authorization session handle.
pub const TPM_RS_PW: u32 = 0x4000_0009;
/// Size of the command and response header.
pub const HEADER_SIZE: usize = 10;
/// Largest response accepted (`TPM_MAX_COMMAND_SIZE` of the PC client platform; what a
/// device read returns at most).
pub const MAX_RESPONSE_SIZE: usize = 4096;
/// Largest TPM2B buffer any response of ours may carry (a caller-side cap; the largest TPM2B
/// in the TPM 2.0 structures, `TPM2B_MAX_BUFFER`/`TPM2B_PUBLIC`, stays below this).
pub const MAX_TPM2B: usize = 4096;

/// A password session's authorization: the session handle [`TPM_RS_PW`], an empty nonce,
/// `continueSession` set and the password as the HMAC field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordSession<'a> {
    /// The authorization value (empty for the empty password).
    pub password: &'a [u8],
}

/// `continueSession` (bit 0 of `TPMA_SESSION`).
const ATTR_CONTINUE_SESSION: u8 = 0x01;

/// One session of a command's authorization area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session<'a> {
    /// A password session ([`TPM_RS_PW`]) with this authorization value.
    Password(PasswordSession<'a>),
    /// A policy session whose policy is already satisfied (no `PolicyAuthValue` or
    /// `PolicyPassword`): empty nonce and HMAC. Unless `continue_session`, the TPM flushes it
    /// when the command succeeds.
    Policy {
        /// The session handle (`TPM_HT_POLICY_SESSION`).
        handle: u32,
        /// `continueSession`: keep the session after the command.
        continue_session: bool,
    },
}

/// Builds one command. Created with [`CommandWriter::new`], filled with handles, sessions and
/// parameters in wire order, then [`CommandWriter::finish`] patches `commandSize`.
#[derive(Debug)]
pub struct CommandWriter {
    command: CommandCode,
    buf: Vec<u8>,
    sessions: usize,
}

impl CommandWriter {
    /// Starts a command: `tag` is [`TPM_ST_NO_SESSIONS`] or [`TPM_ST_SESSIONS`].
    pub fn new(tag: u16, command: CommandCode) -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&tag.to_be_bytes());
        buf.extend_from_slice(&0u32.to_be_bytes());
        buf.extend_from_slice(&command.0.to_be_bytes());
        Self {
            command,
            buf,
            sessions: 0,
        }
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Appends a big-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends a big-endian `u32` (also handles).
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Appends raw bytes (fixed-size fields such as a digest in `TPMT_HA`).
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// Appends a `TPM2B`: a `u16` size then the bytes. `field` names the parameter in the
    /// error when the bytes are longer than a `u16` can say.
    pub fn tpm2b(&mut self, field: &'static str, v: &[u8]) -> Result<&mut Self, Error> {
        let len = u16::try_from(v.len()).map_err(|_| Error::InvalidArgument {
            command: self.command,
            field,
            problem: Problem::TooLarge {
                len: v.len(),
                max: usize::from(u16::MAX),
            },
        })?;
        self.u16(len);
        self.buf.extend_from_slice(v);
        Ok(self)
    }

    /// Appends the authorization area with the given password sessions: `authorizationSize`
    /// then each `TPMS_AUTH_COMMAND`. Call it after the handles, before the parameters.
    pub fn password_sessions(
        &mut self,
        sessions: &[PasswordSession<'_>],
    ) -> Result<&mut Self, Error> {
        let start = self.buf.len();
        self.u32(0);
        for s in sessions {
            self.auth_command(&Session::Password(*s))?;
        }
        self.finish_sessions(start, sessions.len())
    }

    /// Appends the authorization area with the given sessions, in handle order (one per
    /// handle that needs authorization). Call it after the handles, before the parameters.
    pub fn sessions(&mut self, sessions: &[Session<'_>]) -> Result<&mut Self, Error> {
        let start = self.buf.len();
        self.u32(0);
        for s in sessions {
            self.auth_command(s)?;
        }
        self.finish_sessions(start, sessions.len())
    }

    /// One `TPMS_AUTH_COMMAND`.
    fn auth_command(&mut self, session: &Session<'_>) -> Result<(), Error> {
        match session {
            Session::Password(p) => {
                self.u32(TPM_RS_PW);
                self.tpm2b("nonceCaller", &[])?;
                self.u8(ATTR_CONTINUE_SESSION);
                self.tpm2b("hmac", p.password)?;
            }
            Session::Policy {
                handle,
                continue_session,
            } => {
                self.u32(*handle);
                self.tpm2b("nonceCaller", &[])?;
                self.u8(if *continue_session {
                    ATTR_CONTINUE_SESSION
                } else {
                    0
                });
                self.tpm2b("hmac", &[])?;
            }
        }
        Ok(())
    }

    /// Patches `authorizationSize` of the area started at `start` and counts its sessions.
    fn finish_sessions(&mut self, start: usize, count: usize) -> Result<&mut Self, Error> {
        let size = self.buf.len() - start - 4;
        let size = u32::try_from(size).map_err(|_| Error::InvalidArgument {
            command: self.command,
            field: "authorizationSize",
            problem: Problem::TooLarge {
                len: size,
                max: MAX_RESPONSE_SIZE,
            },
        })?;
        self.buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
        self.sessions += count;
        Ok(self)
    }

    /// Number of sessions written so far (the response carries one session response each).
    pub fn session_count(&self) -> usize {
        self.sessions
    }

    /// Patches `commandSize` and returns the command bytes.
    pub fn finish(mut self) -> Result<Vec<u8>, Error> {
        let len = self.buf.len();
        if len > MAX_RESPONSE_SIZE {
            return Err(Error::InvalidArgument {
                command: self.command,
                field: "commandSize",
                problem: Problem::TooLarge {
                    len,
                    max: MAX_RESPONSE_SIZE,
                },
            });
        }
        // len <= 4096, so it fits.
        let size = u32::try_from(len).unwrap_or(u32::MAX);
        self.buf[2..6].copy_from_slice(&size.to_be_bytes());
        Ok(self.buf)
    }
}

/// A bounded cursor over response bytes. Every read names its field; a read past the end is a
/// [`Problem::Truncated`] error, never a panic.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    command: CommandCode,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`, part of the response to `command`.
    pub fn new(command: CommandCode, bytes: &'a [u8]) -> Self {
        Self {
            command,
            bytes,
            pos: 0,
        }
    }

    /// The command whose response this is.
    pub fn command(&self) -> CommandCode {
        self.command
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes not yet read, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or(&[])
    }

    /// An [`Error::Malformed`] for `field` of this command.
    pub fn error(&self, field: &'static str, problem: Problem) -> Error {
        Error::Malformed {
            command: self.command,
            field,
            problem,
        }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], Error> {
        let rest = self.bytes.get(self.pos..).unwrap_or(&[]);
        match rest.get(..n) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(self.error(
                field,
                Problem::Truncated {
                    needed: n,
                    remaining: rest.len(),
                },
            )),
        }
    }

    /// One byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, Error> {
        let b = self.take(field, 1)?;
        Ok(b.first().copied().unwrap_or(0))
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, Error> {
        let b = self.take(field, 2)?;
        let mut a = [0u8; 2];
        a.copy_from_slice(b);
        Ok(u16::from_be_bytes(a))
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, Error> {
        let b = self.take(field, 4)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_be_bytes(a))
    }

    /// A `TPM2B`: `u16` size then that many bytes, the size at most `max`.
    pub fn tpm2b(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], Error> {
        let len = usize::from(self.u16(field)?);
        if len > max {
            return Err(self.error(field, Problem::TooLarge { len, max }));
        }
        self.take(field, len)
    }

    /// A `u32` list count (`TPML_*.count`), at most `max`.
    pub fn count(&mut self, field: &'static str, max: usize) -> Result<usize, Error> {
        let n = self.u32(field)?;
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n > max {
            return Err(self.error(field, Problem::TooMany { count: n, max }));
        }
        Ok(n)
    }

    /// A sub-reader over the next `n` bytes (a sized structure such as `TPM2B_NV_PUBLIC`).
    pub fn sub(&mut self, field: &'static str, n: usize) -> Result<Self, Error> {
        let bytes = self.take(field, n)?;
        Ok(Self::new(self.command, bytes))
    }

    /// Fails unless every byte was read: `field` names what should have ended.
    pub fn end(&self, field: &'static str) -> Result<(), Error> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(self.error(field, Problem::TrailingBytes { extra })),
        }
    }
}

/// A successful response whose framing was checked: its handles, and a reader over its
/// parameters (exactly `parameterSize` bytes for a response with sessions).
#[derive(Debug)]
pub struct Response<'a> {
    /// The response handles (for example the object handle of `TPM2_CreatePrimary`).
    pub handles: Vec<u32>,
    /// The response parameters.
    pub params: Reader<'a>,
}

/// Largest number of handles in any TPM 2.0 response.
const MAX_RESPONSE_HANDLES: usize = 3;

impl<'a> Response<'a> {
    /// Checks the framing of a response to `command`: at least a header, `responseSize` equal
    /// to the bytes received (at most [`MAX_RESPONSE_SIZE`]), a known tag, a zero response
    /// code (else [`Error::Tpm`]), then `handles` response handles; for a command sent with
    /// `sessions` sessions (tag `TPM_ST_SESSIONS`), `parameterSize` within the bytes left and
    /// exactly one well-formed session response per session after the parameters.
    pub fn open(
        command: CommandCode,
        bytes: &'a [u8],
        handles: usize,
        sessions: usize,
    ) -> Result<Self, Error> {
        let mut r = Reader::new(command, bytes);
        if bytes.len() > MAX_RESPONSE_SIZE {
            return Err(r.error(
                "responseSize",
                Problem::TooLarge {
                    len: bytes.len(),
                    max: MAX_RESPONSE_SIZE,
                },
            ));
        }
        let tag = r.u16("tag")?;
        let size = r.u32("responseSize")?;
        let rc = r.u32("responseCode")?;
        if usize::try_from(size).ok() != Some(bytes.len()) {
            return Err(r.error(
                "responseSize",
                Problem::Mismatch {
                    expected: bytes.len() as u64,
                    found: u64::from(size),
                },
            ));
        }
        if rc != 0 {
            return Err(Error::Tpm {
                command,
                rc: ResponseCode(rc),
            });
        }
        let expected_tag = if sessions == 0 {
            TPM_ST_NO_SESSIONS
        } else {
            TPM_ST_SESSIONS
        };
        if tag != expected_tag {
            return Err(r.error(
                "tag",
                Problem::Mismatch {
                    expected: u64::from(expected_tag),
                    found: u64::from(tag),
                },
            ));
        }
        if handles > MAX_RESPONSE_HANDLES {
            return Err(r.error(
                "handles",
                Problem::TooMany {
                    count: handles,
                    max: MAX_RESPONSE_HANDLES,
                },
            ));
        }
        let mut hs = Vec::with_capacity(handles);
        for _ in 0..handles {
            hs.push(r.u32("handle")?);
        }
        if sessions == 0 {
            let rest = r.remaining();
            let params = r.sub("parameters", rest)?;
            return Ok(Self {
                handles: hs,
                params,
            });
        }
        let psize = r.u32("parameterSize")?;
        let psize = usize::try_from(psize).unwrap_or(usize::MAX);
        if psize > r.remaining() {
            return Err(r.error(
                "parameterSize",
                Problem::Truncated {
                    needed: psize,
                    remaining: r.remaining(),
                },
            ));
        }
        let params = r.sub("parameters", psize)?;
        for _ in 0..sessions {
            r.tpm2b("session nonceTPM", 64)?;
            r.u8("session attributes")?;
            r.tpm2b("session hmac", 64)?;
        }
        r.end("sessions")?;
        Ok(Self {
            handles: hs,
            params,
        })
    }
}
