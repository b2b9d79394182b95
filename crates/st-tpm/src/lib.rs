//! TPM 2.0 commands with our own marshalling, no C TSS.
//!
//! The device is a [`Transport`]: one command's bytes in, one response's bytes out (st-host
//! provides `/dev/tpmrm0`; the tests a TCP socket to swtpm). [`Tpm`] is the client: one method
//! per command, built and parsed by the pairs in [`commands`] on top of the bounded writer and
//! reader in [`marshal`]. Every response length is checked against the bytes that remain,
//! every count has a cap, and every error names the command and the field; TPM response codes
//! come back as a decoded [`ResponseCode`].
//!
//! What stboot needs: [`Tpm::active_pcr_banks`], [`Tpm::pcr_extend`] (one digest per active
//! bank), [`Tpm::pcr_read`] and [`Tpm::nv_read_all`] (the identity index `0x01420001`, read
//! as the Go reference does: authorised by the index itself with the empty password).
//!
//! What the attestation agent needs ([`keys`]): [`Tpm::create_ek_rsa`] and
//! [`Tpm::ek_certificate_rsa`] (the TCG default RSA EK and its certificate),
//! [`Tpm::create_ak_p256`] (a primary restricted ECDSA P-256 signing key, deterministic until
//! `TPM2_Clear`), [`Tpm::activate_credential`], [`Tpm::quote`], [`Tpm::read_public`] and
//! [`Tpm::flush`]. stboot calls none of them; LTO leaves them out of its binary.
//!
//! Pure: no file, socket or clock.

use core::fmt;

pub mod commands;
mod error;
pub mod keys;
pub mod marshal;
mod rc;

pub use commands::{NvPublic, PcrSelection, StartupType};
pub use error::{Error, Problem, TransportError};
pub use keys::{CreatedKey, ObjectPublic, PolicySession, Quote, Template};
pub use rc::{ResponseCode, Subject};

/// Sends one command to a TPM and returns its response.
pub trait Transport {
    /// Sends `command` (a whole command, header included) and returns the whole response.
    fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError>;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transact(command)
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transact(command)
    }
}

/// A TPM command code (`TPM_CC`). Displays as the command's name (`TPM2_PCR_Extend`), or
/// `TPM_CC 0x131` when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommandCode(pub u32);

impl CommandCode {
    /// `TPM_CC_CreatePrimary`.
    pub const CREATE_PRIMARY: Self = Self(0x0000_0131);
    /// `TPM_CC_ActivateCredential`.
    pub const ACTIVATE_CREDENTIAL: Self = Self(0x0000_0147);
    /// `TPM_CC_PolicySecret`.
    pub const POLICY_SECRET: Self = Self(0x0000_0151);
    /// `TPM_CC_Quote`.
    pub const QUOTE: Self = Self(0x0000_0158);
    /// `TPM_CC_FlushContext`.
    pub const FLUSH_CONTEXT: Self = Self(0x0000_0165);
    /// `TPM_CC_ReadPublic`.
    pub const READ_PUBLIC: Self = Self(0x0000_0173);
    /// `TPM_CC_StartAuthSession`.
    pub const START_AUTH_SESSION: Self = Self(0x0000_0176);
    /// `TPM_CC_Startup`.
    pub const STARTUP: Self = Self(0x0000_0144);
    /// `TPM_CC_NV_Read`.
    pub const NV_READ: Self = Self(0x0000_014e);
    /// `TPM_CC_NV_ReadPublic`.
    pub const NV_READ_PUBLIC: Self = Self(0x0000_0169);
    /// `TPM_CC_GetCapability`.
    pub const GET_CAPABILITY: Self = Self(0x0000_017a);
    /// `TPM_CC_GetRandom`.
    pub const GET_RANDOM: Self = Self(0x0000_017b);
    /// `TPM_CC_PCR_Read`.
    pub const PCR_READ: Self = Self(0x0000_017e);
    /// `TPM_CC_PCR_Extend`.
    pub const PCR_EXTEND: Self = Self(0x0000_0182);

    /// The command's name (`PCR_Extend`), when known.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::CREATE_PRIMARY => "CreatePrimary",
            Self::ACTIVATE_CREDENTIAL => "ActivateCredential",
            Self::POLICY_SECRET => "PolicySecret",
            Self::QUOTE => "Quote",
            Self::FLUSH_CONTEXT => "FlushContext",
            Self::READ_PUBLIC => "ReadPublic",
            Self::START_AUTH_SESSION => "StartAuthSession",
            Self::STARTUP => "Startup",
            Self::NV_READ => "NV_Read",
            Self::NV_READ_PUBLIC => "NV_ReadPublic",
            Self::GET_CAPABILITY => "GetCapability",
            Self::GET_RANDOM => "GetRandom",
            Self::PCR_READ => "PCR_Read",
            Self::PCR_EXTEND => "PCR_Extend",
            _ => return None,
        })
    }
}

impl fmt::Display for CommandCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "TPM2_{n}"),
            None => write!(f, "TPM_CC {:#x}", self.0),
        }
    }
}

/// A TPM algorithm identifier (`TPM_ALG_ID`); for PCR banks, a hash algorithm. Displays as
/// `sha256`, or `alg 0x0042` when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlgId(pub u16);

impl AlgId {
    /// `TPM_ALG_SHA1`.
    pub const SHA1: Self = Self(0x0004);
    /// `TPM_ALG_SHA256`.
    pub const SHA256: Self = Self(0x000b);
    /// `TPM_ALG_SHA384`.
    pub const SHA384: Self = Self(0x000c);
    /// `TPM_ALG_SHA512`.
    pub const SHA512: Self = Self(0x000d);
    /// `TPM_ALG_SM3_256`.
    pub const SM3_256: Self = Self(0x0012);
    /// `TPM_ALG_SHA3_256`.
    pub const SHA3_256: Self = Self(0x0027);
    /// `TPM_ALG_SHA3_384`.
    pub const SHA3_384: Self = Self(0x0028);
    /// `TPM_ALG_SHA3_512`.
    pub const SHA3_512: Self = Self(0x0029);

    /// The digest size of a hash algorithm, `None` when it is not a known hash.
    pub fn digest_size(self) -> Option<usize> {
        Some(match self {
            Self::SHA1 => 20,
            Self::SHA256 | Self::SM3_256 | Self::SHA3_256 => 32,
            Self::SHA384 | Self::SHA3_384 => 48,
            Self::SHA512 | Self::SHA3_512 => 64,
            _ => return None,
        })
    }

    /// The algorithm's lower-case name (`sha256`), when known.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::SHA1 => "sha1",
            Self::SHA256 => "sha256",
            Self::SHA384 => "sha384",
            Self::SHA512 => "sha512",
            Self::SM3_256 => "sm3_256",
            Self::SHA3_256 => "sha3_256",
            Self::SHA3_384 => "sha3_384",
            Self::SHA3_512 => "sha3_512",
            _ => return None,
        })
    }
}

impl fmt::Display for AlgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "alg {:#06x}", self.0),
        }
    }
}

/// `TPM_PT_NV_BUFFER_MAX` assumed when the TPM does not report it.
pub const DEFAULT_NV_BUFFER_MAX: u16 = 512;
/// Largest NV chunk read at once, whatever the TPM reports (its response must fit the
/// 4096-byte response buffer with room for the header and session).
pub const MAX_NV_CHUNK: u16 = 2048;
/// How often a command answered with `TPM_RC_RETRY` is sent again before giving up.
const RETRIES: usize = 4;

/// A TPM 2.0 client over a [`Transport`].
#[derive(Debug)]
pub struct Tpm<T: Transport> {
    transport: T,
    nv_buffer_max: Option<u16>,
}

impl<T: Transport> Tpm<T> {
    /// A client sending its commands through `transport`.
    pub fn new(transport: T) -> Self {
        Self {
            transport,
            nv_buffer_max: None,
        }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport, mutably.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Gives the transport back.
    pub fn into_transport(self) -> T {
        self.transport
    }

    /// Sends `command` (code `cc`) and returns the raw response; sends it again (up to a few
    /// times) while the TPM answers `TPM_RC_RETRY`, which means the command was not run.
    pub fn run(&mut self, cc: CommandCode, command: &[u8]) -> Result<Vec<u8>, Error> {
        let mut attempt = 0;
        loop {
            let response = self
                .transport
                .transact(command)
                .map_err(|source| Error::Transport {
                    command: cc,
                    source,
                })?;
            let rc = response
                .get(6..10)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_be_bytes);
            attempt += 1;
            if rc != Some(ResponseCode::RETRY.0) || attempt > RETRIES {
                return Ok(response);
            }
        }
    }

    /// `TPM2_Startup`. Needed only where no firmware has started the TPM (swtpm in tests);
    /// a started TPM answers `TPM_RC_INITIALIZE`.
    pub fn startup(&mut self, su: StartupType) -> Result<(), Error> {
        let c = commands::startup_command(su)?;
        let r = self.run(CommandCode::STARTUP, &c)?;
        commands::parse_startup(&r)
    }

    /// `TPM2_GetRandom`: up to `bytes` random bytes (a TPM gives at most one digest's worth,
    /// often 32 or 64 bytes, per call).
    pub fn get_random(&mut self, bytes: u16) -> Result<Vec<u8>, Error> {
        let c = commands::get_random_command(bytes)?;
        let r = self.run(CommandCode::GET_RANDOM, &c)?;
        commands::parse_get_random(&r, bytes)
    }

    /// Every PCR bank the TPM reports, with its PCR bitmap (`TPM_CAP_PCRS`).
    pub fn pcr_banks(&mut self) -> Result<Vec<PcrSelection>, Error> {
        let c = commands::get_pcr_banks_command()?;
        let r = self.run(CommandCode::GET_CAPABILITY, &c)?;
        commands::parse_pcr_banks(&r)
    }

    /// The active PCR banks (any PCR allocated), in the TPM's order.
    pub fn active_pcr_banks(&mut self) -> Result<Vec<AlgId>, Error> {
        let c = commands::get_pcr_banks_command()?;
        let r = self.run(CommandCode::GET_CAPABILITY, &c)?;
        commands::parse_active_pcr_banks(&r)
    }

    /// The value of TPM property `property` (`TPM_PT_*`), `None` when the TPM does not
    /// report it.
    pub fn tpm_property(&mut self, property: u32) -> Result<Option<u32>, Error> {
        let c = commands::get_tpm_property_command(property)?;
        let r = self.run(CommandCode::GET_CAPABILITY, &c)?;
        commands::parse_tpm_property(&r, property)
    }

    /// `TPM2_PCR_Extend` of PCR `pcr` with one digest per bank, authorised by the empty
    /// password. Banks not listed are left alone: give one digest for every active bank.
    pub fn pcr_extend(&mut self, pcr: u32, digests: &[(AlgId, &[u8])]) -> Result<(), Error> {
        let c = commands::pcr_extend_command(pcr, digests)?;
        let r = self.run(CommandCode::PCR_EXTEND, &c)?;
        commands::parse_pcr_extend(&r)
    }

    /// `TPM2_PCR_Read` of PCR `pcr` in bank `alg`: its digest.
    pub fn pcr_read(&mut self, pcr: u32, alg: AlgId) -> Result<Vec<u8>, Error> {
        let c = commands::pcr_read_command(pcr, alg)?;
        let r = self.run(CommandCode::PCR_READ, &c)?;
        commands::parse_pcr_read(&r, pcr, alg)
    }

    /// `TPM2_NV_ReadPublic`: the index's public area, `None` when the index is not defined
    /// (the TPM answers `TPM_RC_HANDLE` for its handle).
    pub fn nv_read_public(&mut self, index: u32) -> Result<Option<NvPublic>, Error> {
        let c = commands::nv_read_public_command(index)?;
        let r = self.run(CommandCode::NV_READ_PUBLIC, &c)?;
        match commands::parse_nv_read_public(&r, index) {
            Ok(p) => Ok(Some(p)),
            Err(Error::Tpm { rc, .. }) if rc == ResponseCode::HANDLE_1 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `TPM2_NV_Read` of `size` bytes at `offset`, authorised by `auth` (the index itself or
    /// a hierarchy) with `password`. `size` must not exceed [`Tpm::nv_buffer_max`].
    pub fn nv_read(
        &mut self,
        auth: u32,
        index: u32,
        password: &[u8],
        offset: u16,
        size: u16,
    ) -> Result<Vec<u8>, Error> {
        let c = commands::nv_read_command(auth, index, password, offset, size)?;
        let r = self.run(CommandCode::NV_READ, &c)?;
        commands::parse_nv_read(&r, size)
    }

    /// The largest NV read at once: `TPM_PT_NV_BUFFER_MAX`, or [`DEFAULT_NV_BUFFER_MAX`] when
    /// the TPM does not report it (or reports 0), at most [`MAX_NV_CHUNK`]. Asked once.
    pub fn nv_buffer_max(&mut self) -> Result<u16, Error> {
        if let Some(v) = self.nv_buffer_max {
            return Ok(v);
        }
        let v = match self.tpm_property(commands::TPM_PT_NV_BUFFER_MAX)? {
            None | Some(0) => DEFAULT_NV_BUFFER_MAX,
            Some(v) => u16::try_from(v).unwrap_or(u16::MAX).min(MAX_NV_CHUNK),
        };
        self.nv_buffer_max = Some(v);
        Ok(v)
    }

    /// The whole content of NV index `index`, `None` when it is not defined. Read as the Go
    /// reference reads the identity index: authorised by the index itself with the empty
    /// password, in chunks of [`Tpm::nv_buffer_max`] bytes. An index defined but never
    /// written fails with `TPM_RC_NV_UNINITIALIZED`.
    pub fn nv_read_all(&mut self, index: u32) -> Result<Option<Vec<u8>>, Error> {
        let Some(public) = self.nv_read_public(index)? else {
            return Ok(None);
        };
        let chunk = self.nv_buffer_max()?;
        let total = public.data_size;
        let mut out = Vec::with_capacity(usize::from(total));
        let mut offset: u16 = 0;
        while offset < total {
            let size = chunk.min(total - offset);
            let data = self.nv_read(index, index, &[], offset, size)?;
            out.extend_from_slice(&data);
            offset += size;
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests;
