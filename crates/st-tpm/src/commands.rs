//! One builder and one parser per TPM 2.0 command.
//!
//! `<name>_command(..)` returns the command bytes; `parse_<name>(response, ..)` checks the whole
//! response (framing, every length, counts, that the TPM answered what was asked) and returns
//! its value. [`Tpm`](crate::Tpm) pairs them over a transport; the parsers are public so they
//! can be tested and fuzzed with canned bytes. A new command is one more pair here and one
//! method on `Tpm`.

use crate::error::{Error, Problem};
use crate::marshal::{
    CommandWriter, PasswordSession, Reader, Response, TPM_ST_NO_SESSIONS, TPM_ST_SESSIONS,
};
use crate::{AlgId, CommandCode};

/// `TPM_CAP_PCRS`: the PCR banks and which PCRs each has.
pub const TPM_CAP_PCRS: u32 = 0x0000_0005;
/// `TPM_CAP_TPM_PROPERTIES`: fixed and variable TPM properties (`TPM_PT_*`).
pub const TPM_CAP_TPM_PROPERTIES: u32 = 0x0000_0006;
/// `TPM_PT_NV_BUFFER_MAX`: the largest data size of one `TPM2_NV_Read`/`TPM2_NV_Write`.
pub const TPM_PT_NV_BUFFER_MAX: u32 = 0x0000_012c;

/// Most banks a TPM reports (`HASH_COUNT` is far lower on real TPMs).
pub const MAX_BANKS: usize = 16;
/// Largest `sizeofSelect` accepted (`PCR_SELECT_MAX` is 3 on PC client TPMs: 24 PCRs).
pub const MAX_PCR_SELECT: usize = 32;
/// Highest PCR index a command takes here.
pub const MAX_PCR: u32 = 31;
/// Largest digest (sha512).
pub const MAX_DIGEST: usize = 64;
/// Most properties accepted in one `TPM_CAP_TPM_PROPERTIES` answer.
pub const MAX_PROPERTIES: usize = 256;
/// Largest `authPolicy` of an NV index (a digest).
const MAX_AUTH_POLICY: usize = MAX_DIGEST;
/// Largest `TPM2B_NAME` (algorithm id + digest).
const MAX_NAME: usize = 2 + MAX_DIGEST;

/// `TPM_SU`: the argument of `TPM2_Startup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupType {
    /// `TPM_SU_CLEAR`: a fresh start (PCRs reset).
    Clear,
    /// `TPM_SU_STATE`: resume the state saved by `TPM2_Shutdown(STATE)`.
    State,
}

/// `TPM2_Startup(startupType)`.
pub fn startup_command(su: StartupType) -> Result<Vec<u8>, Error> {
    let mut w = CommandWriter::new(TPM_ST_NO_SESSIONS, CommandCode::STARTUP);
    w.u16(match su {
        StartupType::Clear => 0x0000,
        StartupType::State => 0x0001,
    });
    w.finish()
}

/// Parses the (empty) response to `TPM2_Startup`.
pub fn parse_startup(response: &[u8]) -> Result<(), Error> {
    let r = Response::open(CommandCode::STARTUP, response, 0, 0)?;
    r.params.end("parameters")
}

/// `TPM2_GetRandom(bytesRequested)`.
pub fn get_random_command(bytes: u16) -> Result<Vec<u8>, Error> {
    let mut w = CommandWriter::new(TPM_ST_NO_SESSIONS, CommandCode::GET_RANDOM);
    w.u16(bytes);
    w.finish()
}

/// Parses the response to `TPM2_GetRandom`: at most `requested` bytes (a TPM returns at most
/// a digest's worth per call).
pub fn parse_get_random(response: &[u8], requested: u16) -> Result<Vec<u8>, Error> {
    let mut p = Response::open(CommandCode::GET_RANDOM, response, 0, 0)?.params;
    let max = usize::from(requested).min(MAX_DIGEST);
    let bytes = p.tpm2b("randomBytes", max)?;
    p.end("parameters")?;
    Ok(bytes.to_vec())
}

/// `TPM2_GetCapability(capability, property, propertyCount)`.
pub fn get_capability_command(
    capability: u32,
    property: u32,
    count: u32,
) -> Result<Vec<u8>, Error> {
    let mut w = CommandWriter::new(TPM_ST_NO_SESSIONS, CommandCode::GET_CAPABILITY);
    w.u32(capability).u32(property).u32(count);
    w.finish()
}

/// Opens a `TPM2_GetCapability` response and checks that it answers `capability`.
fn open_capability<'a>(response: &'a [u8], capability: u32) -> Result<Reader<'a>, Error> {
    let mut p = Response::open(CommandCode::GET_CAPABILITY, response, 0, 0)?.params;
    let more = p.u8("moreData")?;
    if more > 1 {
        return Err(p.error("moreData", Problem::Invalid("not a TPMI_YES_NO (0 or 1)")));
    }
    let cap = p.u32("capability")?;
    if cap != capability {
        return Err(p.error(
            "capability",
            Problem::Mismatch {
                expected: u64::from(capability),
                found: u64::from(cap),
            },
        ));
    }
    Ok(p)
}

/// One `TPMS_PCR_SELECTION`: a bank and its PCR bitmap (PCR n is bit `n % 8` of byte `n / 8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrSelection {
    /// The bank's hash algorithm.
    pub alg: AlgId,
    /// The bitmap (`pcrSelect`, `sizeofSelect` bytes).
    pub select: Vec<u8>,
}

impl PcrSelection {
    /// Whether any PCR is selected (for `TPM_CAP_PCRS`: the bank is active).
    pub fn any(&self) -> bool {
        self.select.iter().any(|b| *b != 0)
    }

    /// Whether exactly PCR `pcr` and no other is selected.
    pub fn is_only(&self, pcr: u32) -> bool {
        let byte = usize::try_from(pcr / 8).unwrap_or(usize::MAX);
        let bit = 1u8 << (pcr % 8);
        self.select
            .iter()
            .enumerate()
            .all(|(i, b)| *b == if i == byte { bit } else { 0 })
            && byte < self.select.len()
    }
}

/// Reads a `TPML_PCR_SELECTION`.
fn read_pcr_selections(p: &mut Reader<'_>) -> Result<Vec<PcrSelection>, Error> {
    let n = p.count("TPML_PCR_SELECTION.count", MAX_BANKS)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let alg = AlgId(p.u16("TPMS_PCR_SELECTION.hash")?);
        let size = usize::from(p.u8("TPMS_PCR_SELECTION.sizeofSelect")?);
        if size > MAX_PCR_SELECT {
            return Err(p.error(
                "TPMS_PCR_SELECTION.sizeofSelect",
                Problem::TooLarge {
                    len: size,
                    max: MAX_PCR_SELECT,
                },
            ));
        }
        let select = p.take("TPMS_PCR_SELECTION.pcrSelect", size)?.to_vec();
        out.push(PcrSelection { alg, select });
    }
    Ok(out)
}

/// `TPM2_GetCapability(TPM_CAP_PCRS, 0, 1)`: the PCR banks.
pub fn get_pcr_banks_command() -> Result<Vec<u8>, Error> {
    get_capability_command(TPM_CAP_PCRS, 0, 1)
}

/// Parses the response to [`get_pcr_banks_command`]: every bank the TPM reports, active or
/// not, each algorithm at most once.
pub fn parse_pcr_banks(response: &[u8]) -> Result<Vec<PcrSelection>, Error> {
    let mut p = open_capability(response, TPM_CAP_PCRS)?;
    let banks = read_pcr_selections(&mut p)?;
    p.end("parameters")?;
    for (i, b) in banks.iter().enumerate() {
        if banks.iter().take(i).any(|o| o.alg == b.alg) {
            return Err(p.error(
                "TPMS_PCR_SELECTION.hash",
                Problem::Invalid("a bank listed twice"),
            ));
        }
    }
    Ok(banks)
}

/// Parses the response to [`get_pcr_banks_command`] into the active banks (those with any PCR
/// selected), in the TPM's order.
pub fn parse_active_pcr_banks(response: &[u8]) -> Result<Vec<AlgId>, Error> {
    Ok(parse_pcr_banks(response)?
        .into_iter()
        .filter(PcrSelection::any)
        .map(|b| b.alg)
        .collect())
}

/// `TPM2_GetCapability(TPM_CAP_TPM_PROPERTIES, property, 1)`.
pub fn get_tpm_property_command(property: u32) -> Result<Vec<u8>, Error> {
    get_capability_command(TPM_CAP_TPM_PROPERTIES, property, 1)
}

/// Parses a `TPM_CAP_TPM_PROPERTIES` response into `(property, value)` pairs. The TPM lists
/// properties from the one asked for onwards, so a pair for another property means the one
/// asked for is not there.
pub fn parse_tpm_properties(response: &[u8]) -> Result<Vec<(u32, u32)>, Error> {
    let mut p = open_capability(response, TPM_CAP_TPM_PROPERTIES)?;
    let n = p.count("TPML_TAGGED_TPM_PROPERTY.count", MAX_PROPERTIES)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let prop = p.u32("TPMS_TAGGED_PROPERTY.property")?;
        let value = p.u32("TPMS_TAGGED_PROPERTY.value")?;
        out.push((prop, value));
    }
    p.end("parameters")?;
    Ok(out)
}

/// Parses the response to [`get_tpm_property_command`]: the value of `property`, `None` when
/// the TPM does not report it.
pub fn parse_tpm_property(response: &[u8], property: u32) -> Result<Option<u32>, Error> {
    Ok(parse_tpm_properties(response)?
        .into_iter()
        .find(|(p, _)| *p == property)
        .map(|(_, v)| v))
}

/// Checks a PCR index for `command`.
fn check_pcr(command: CommandCode, pcr: u32) -> Result<(), Error> {
    if pcr > MAX_PCR {
        return Err(Error::InvalidArgument {
            command,
            field: "pcr",
            problem: Problem::TooLarge {
                len: usize::try_from(pcr).unwrap_or(usize::MAX),
                max: MAX_PCR as usize,
            },
        });
    }
    Ok(())
}

/// The `pcrSelect` bitmap selecting `pcr` alone (3 bytes for PCRs 0..23, as the PC client
/// TPMs expect).
fn pcr_bitmap(pcr: u32) -> Vec<u8> {
    let byte = (pcr / 8) as usize;
    let mut v = vec![0u8; (byte + 1).max(3)];
    if let Some(b) = v.get_mut(byte) {
        *b = 1 << (pcr % 8);
    }
    v
}

/// `TPM2_PCR_Read` of one PCR in one bank.
pub fn pcr_read_command(pcr: u32, alg: AlgId) -> Result<Vec<u8>, Error> {
    check_pcr(CommandCode::PCR_READ, pcr)?;
    let bitmap = pcr_bitmap(pcr);
    let mut w = CommandWriter::new(TPM_ST_NO_SESSIONS, CommandCode::PCR_READ);
    // bitmap is at most 4 bytes.
    w.u32(1).u16(alg.0).u8(bitmap.len() as u8).bytes(&bitmap);
    w.finish()
}

/// Parses the response to [`pcr_read_command`]: the selection echoed must be exactly the PCR
/// and bank asked for and the one digest the bank's size; an empty answer (what a TPM returns
/// for an inactive bank) is [`Error::PcrNotReturned`].
pub fn parse_pcr_read(response: &[u8], pcr: u32, alg: AlgId) -> Result<Vec<u8>, Error> {
    let mut p = Response::open(CommandCode::PCR_READ, response, 0, 0)?.params;
    let _update_counter = p.u32("pcrUpdateCounter")?;
    let selections = read_pcr_selections(&mut p)?;
    let n = p.count("TPML_DIGEST.count", 8)?;
    let mut digests = Vec::with_capacity(n);
    for _ in 0..n {
        digests.push(p.tpm2b("TPML_DIGEST.digests", MAX_DIGEST)?);
    }
    p.end("parameters")?;
    if digests.is_empty() && selections.iter().all(|s| !s.any()) {
        return Err(Error::PcrNotReturned { pcr, alg });
    }
    let [sel] = selections.as_slice() else {
        return Err(p.error(
            "pcrSelectionOut",
            Problem::Mismatch {
                expected: 1,
                found: selections.len() as u64,
            },
        ));
    };
    if sel.alg != alg {
        return Err(p.error(
            "pcrSelectionOut.hash",
            Problem::Mismatch {
                expected: u64::from(alg.0),
                found: u64::from(sel.alg.0),
            },
        ));
    }
    if !sel.is_only(pcr) {
        return Err(p.error(
            "pcrSelectionOut.pcrSelect",
            Problem::Invalid("not the one PCR asked for"),
        ));
    }
    let [digest] = digests.as_slice() else {
        return Err(p.error(
            "pcrValues.count",
            Problem::Mismatch {
                expected: 1,
                found: digests.len() as u64,
            },
        ));
    };
    if let Some(size) = alg.digest_size()
        && digest.len() != size
    {
        return Err(p.error(
            "pcrValues.digests",
            Problem::Mismatch {
                expected: size as u64,
                found: digest.len() as u64,
            },
        ));
    }
    Ok(digest.to_vec())
}

/// `TPM2_PCR_Extend(pcr, digests)` authorised by the empty password: one `TPMT_HA` per
/// `(bank, digest)`. Every digest must have its algorithm's size; at least one, each bank once.
pub fn pcr_extend_command(pcr: u32, digests: &[(AlgId, &[u8])]) -> Result<Vec<u8>, Error> {
    let cc = CommandCode::PCR_EXTEND;
    check_pcr(cc, pcr)?;
    let invalid = |problem| Error::InvalidArgument {
        command: cc,
        field: "digests",
        problem,
    };
    if digests.is_empty() {
        return Err(invalid(Problem::Invalid(
            "no digest: nothing would be extended",
        )));
    }
    if digests.len() > MAX_BANKS {
        return Err(invalid(Problem::TooMany {
            count: digests.len(),
            max: MAX_BANKS,
        }));
    }
    for (i, (alg, d)) in digests.iter().enumerate() {
        let Some(size) = alg.digest_size() else {
            return Err(invalid(Problem::Invalid(
                "a hash algorithm of unknown digest size",
            )));
        };
        if d.len() != size {
            return Err(invalid(Problem::Mismatch {
                expected: size as u64,
                found: d.len() as u64,
            }));
        }
        if digests.iter().take(i).any(|(a, _)| a == alg) {
            return Err(invalid(Problem::Invalid("a bank given twice")));
        }
    }
    let mut w = CommandWriter::new(TPM_ST_SESSIONS, cc);
    w.u32(pcr);
    w.password_sessions(&[PasswordSession { password: &[] }])?;
    w.u32(digests.len() as u32);
    for (alg, d) in digests {
        w.u16(alg.0).bytes(d);
    }
    w.finish()
}

/// Parses the (empty) response to [`pcr_extend_command`].
pub fn parse_pcr_extend(response: &[u8]) -> Result<(), Error> {
    let r = Response::open(CommandCode::PCR_EXTEND, response, 0, 1)?;
    r.params.end("parameters")
}

/// `TPMA_NV_AUTHREAD`: the index's own authorization value allows reading.
pub const TPMA_NV_AUTHREAD: u32 = 1 << 18;
/// `TPMA_NV_WRITTEN`: the index has been written.
pub const TPMA_NV_WRITTEN: u32 = 1 << 29;

/// The public area of an NV index (`TPMS_NV_PUBLIC`) and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvPublic {
    /// `nvIndex`.
    pub index: u32,
    /// `nameAlg`.
    pub name_alg: AlgId,
    /// `attributes` (`TPMA_NV`).
    pub attributes: u32,
    /// `authPolicy`.
    pub auth_policy: Vec<u8>,
    /// `dataSize`: the index's size in bytes.
    pub data_size: u16,
    /// `nvName`.
    pub name: Vec<u8>,
}

impl NvPublic {
    /// Whether the index has been written (`TPMA_NV_WRITTEN`); reading an unwritten index
    /// fails with `TPM_RC_NV_UNINITIALIZED`.
    pub fn written(&self) -> bool {
        self.attributes & TPMA_NV_WRITTEN != 0
    }
}

/// `TPM2_NV_ReadPublic(nvIndex)`.
pub fn nv_read_public_command(index: u32) -> Result<Vec<u8>, Error> {
    let mut w = CommandWriter::new(TPM_ST_NO_SESSIONS, CommandCode::NV_READ_PUBLIC);
    w.u32(index);
    w.finish()
}

/// Parses the response to [`nv_read_public_command`]; the public area must describe `index`
/// and fill its `TPM2B_NV_PUBLIC` size exactly.
pub fn parse_nv_read_public(response: &[u8], index: u32) -> Result<NvPublic, Error> {
    let mut p = Response::open(CommandCode::NV_READ_PUBLIC, response, 0, 0)?.params;
    let size = usize::from(p.u16("TPM2B_NV_PUBLIC.size")?);
    let mut s = p.sub("TPM2B_NV_PUBLIC", size)?;
    let got = s.u32("nvPublic.nvIndex")?;
    if got != index {
        return Err(s.error(
            "nvPublic.nvIndex",
            Problem::Mismatch {
                expected: u64::from(index),
                found: u64::from(got),
            },
        ));
    }
    let name_alg = AlgId(s.u16("nvPublic.nameAlg")?);
    let attributes = s.u32("nvPublic.attributes")?;
    let auth_policy = s.tpm2b("nvPublic.authPolicy", MAX_AUTH_POLICY)?.to_vec();
    let data_size = s.u16("nvPublic.dataSize")?;
    s.end("TPM2B_NV_PUBLIC")?;
    let name = p.tpm2b("nvName", MAX_NAME)?.to_vec();
    p.end("parameters")?;
    Ok(NvPublic {
        index: got,
        name_alg,
        attributes,
        auth_policy,
        data_size,
        name,
    })
}

/// `TPM2_NV_Read(authHandle, nvIndex, size, offset)` authorised by `password` (a password
/// session for `auth`, which is the index itself or a hierarchy).
pub fn nv_read_command(
    auth: u32,
    index: u32,
    password: &[u8],
    offset: u16,
    size: u16,
) -> Result<Vec<u8>, Error> {
    let mut w = CommandWriter::new(TPM_ST_SESSIONS, CommandCode::NV_READ);
    w.u32(auth).u32(index);
    w.password_sessions(&[PasswordSession { password }])?;
    w.u16(size).u16(offset);
    w.finish()
}

/// Parses the response to [`nv_read_command`]: exactly `size` bytes.
pub fn parse_nv_read(response: &[u8], size: u16) -> Result<Vec<u8>, Error> {
    let mut p = Response::open(CommandCode::NV_READ, response, 0, 1)?.params;
    let data = p.tpm2b("data", usize::from(size))?;
    if data.len() != usize::from(size) {
        return Err(p.error(
            "data",
            Problem::Mismatch {
                expected: u64::from(size),
                found: data.len() as u64,
            },
        ));
    }
    p.end("parameters")?;
    Ok(data.to_vec())
}
