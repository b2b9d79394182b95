//! Signing through ssh-agent: `--key` given as an `ssh-ed25519 AAAA...` public key line means
//! "the agent at $SSH_AUTH_SOCK holds the private key" (as in the Go stmgr). Agent protocol:
//! draft-miller-ssh-agent, SSH_AGENTC_SIGN_REQUEST (13) -> SSH_AGENT_SIGN_RESPONSE (14).

use anyhow::{Context as _, Result, bail};
use st_sign::{Ed25519Signer, SignError};
use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

const SIGN_REQUEST: u8 = 13;
const SIGN_RESPONSE: u8 = 14;
const FAILURE: u8 = 5;
/// Largest agent reply accepted (a signature response is about 100 bytes).
const MAX_REPLY: usize = 64 << 10;

/// An Ed25519 key held by ssh-agent.
pub(crate) struct AgentKey {
    public: [u8; 32],
    socket: PathBuf,
}

fn string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn take<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = u32::from_be_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    let s = buf.get(4..4 + len)?;
    *buf = &buf[4 + len..];
    Some(s)
}

/// True when a key file is an OpenSSH public key line (the agent case).
pub(crate) fn is_public_key_line(bytes: &[u8]) -> bool {
    bytes.trim_ascii_start().starts_with(b"ssh-ed25519 ")
}

impl AgentKey {
    /// The agent key for this public key line; the agent socket from `$SSH_AUTH_SOCK`.
    pub(crate) fn new(public_line: &[u8]) -> Result<Self> {
        let public = st_sign::parse_public_key(public_line)?;
        let socket = std::env::var_os("SSH_AUTH_SOCK")
            .map(PathBuf::from)
            .context("the key is an ssh-ed25519 public key, so ssh-agent must sign, but SSH_AUTH_SOCK is not set")?;
        Ok(Self { public, socket })
    }

    fn request(&self, msg: &[u8]) -> Result<[u8; 64]> {
        let mut blob = Vec::new();
        string(&mut blob, b"ssh-ed25519");
        string(&mut blob, &self.public);
        let mut body = vec![SIGN_REQUEST];
        string(&mut body, &blob);
        string(&mut body, msg);
        body.extend_from_slice(&0u32.to_be_bytes());
        let mut frame = Vec::new();
        string(&mut frame, &body);
        let mut s = UnixStream::connect(&self.socket)
            .with_context(|| format!("ssh-agent at {}", self.socket.display()))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        s.write_all(&frame)?;
        let mut len = [0u8; 4];
        s.read_exact(&mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 || len > MAX_REPLY {
            bail!("ssh-agent sent a {len}-byte reply");
        }
        let mut reply = vec![0u8; len];
        s.read_exact(&mut reply)?;
        match reply[0] {
            SIGN_RESPONSE => {}
            FAILURE => bail!("ssh-agent refused to sign: is the key added (ssh-add)?"),
            other => bail!("ssh-agent answered with message type {other}"),
        }
        let mut rest = &reply[1..];
        let mut sig = take(&mut rest).context("ssh-agent reply: no signature")?;
        let kind = take(&mut sig).context("ssh-agent signature: no type")?;
        let raw = take(&mut sig).context("ssh-agent signature: no data")?;
        if kind != b"ssh-ed25519" {
            bail!("ssh-agent signature is {}", String::from_utf8_lossy(kind));
        }
        raw.try_into()
            .ok()
            .context("ssh-agent signature is not 64 bytes")
    }
}

impl Ed25519Signer for AgentKey {
    fn public(&self) -> [u8; 32] {
        self.public
    }
    fn sign_message(&self, msg: &[u8]) -> Result<[u8; 64], SignError> {
        self.request(msg)
            .map_err(|e| SignError::Signer(format!("{e:#}")))
    }
}
