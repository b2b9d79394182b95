//! Keys, sessions and attestation: the device side of remote attestation
//! (`docs/attestation.md`).
//!
//! - `TPM2_CreatePrimary` from two fixed templates ([`Template::ek_rsa2048`], the TCG EK
//!   Credential Profile's default RSA template; [`Template::ak_p256`], our attestation key),
//!   `TPM2_ReadPublic` and `TPM2_FlushContext`;
//! - `TPM2_StartAuthSession` (an unsalted, unbound SHA-256 policy session) and
//!   `TPM2_PolicySecret(TPM_RH_ENDORSEMENT)`, which satisfies the EK's policy;
//! - `TPM2_ActivateCredential` (AK by password, EK by that policy session) and `TPM2_Quote`.
//!
//! As in [`commands`](crate::commands): one builder and one bounded parser per command, then
//! one method on [`Tpm`]. The TPM's structures (`TPM2B_PUBLIC`, `TPMS_ATTEST`,
//! `TPMT_SIGNATURE`) are returned as the TPM sent them; the parsers here read only what they
//! need to check the answer is the one asked for and where each structure ends. Verifying
//! them is the verifier's job (st-attest).

use crate::error::{Error, Problem};
use crate::marshal::{
    CommandWriter, PasswordSession, Reader, Response, Session, TPM_ST_NO_SESSIONS, TPM_ST_SESSIONS,
};
use crate::{AlgId, CommandCode, Tpm, Transport};

/// `TPM_RH_OWNER`: the owner (storage) hierarchy.
pub const TPM_RH_OWNER: u32 = 0x4000_0001;
/// `TPM_RH_NULL`: no handle (an unsalted, unbound session).
pub const TPM_RH_NULL: u32 = 0x4000_0007;
/// `TPM_RH_ENDORSEMENT`: the endorsement hierarchy.
pub const TPM_RH_ENDORSEMENT: u32 = 0x4000_000b;
/// NV index of the RSA-2048 EK certificate (TCG EK Credential Profile, low range).
pub const EK_CERT_RSA_INDEX: u32 = 0x01c0_0002;

/// `TPM_ALG_RSA`.
const ALG_RSA: u16 = 0x0001;
/// `TPM_ALG_AES`.
const ALG_AES: u16 = 0x0006;
/// `TPM_ALG_NULL`.
const ALG_NULL: u16 = 0x0010;
/// `TPM_ALG_ECDSA`.
const ALG_ECDSA: u16 = 0x0018;
/// `TPM_ALG_ECC`.
const ALG_ECC: u16 = 0x0023;
/// `TPM_ALG_CFB`.
const ALG_CFB: u16 = 0x0043;
/// `TPM_ECC_NIST_P256`.
const ECC_NIST_P256: u16 = 0x0003;
/// `TPM_SE_POLICY`.
const SE_POLICY: u8 = 0x01;
/// `TPM_HT_POLICY_SESSION`: the top byte of a policy session handle.
const HT_POLICY_SESSION: u32 = 0x03;
/// `TPM_GENERATED_VALUE`: the magic that starts every `TPMS_ATTEST`.
pub const TPM_GENERATED_VALUE: u32 = 0xff54_4347;
/// `TPM_ST_ATTEST_QUOTE`.
pub const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;

/// `TPMA_OBJECT` bits.
const FIXED_TPM: u32 = 1 << 1;
const FIXED_PARENT: u32 = 1 << 4;
const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
const USER_WITH_AUTH: u32 = 1 << 6;
const ADMIN_WITH_POLICY: u32 = 1 << 7;
const RESTRICTED: u32 = 1 << 16;
const DECRYPT: u32 = 1 << 17;
const SIGN: u32 = 1 << 18;

/// The EK's `authPolicy`: `TPM2_PolicySecret(TPM_RH_ENDORSEMENT)` from a zero SHA-256 policy
/// digest (TCG EK Credential Profile, `PolicyA_SHA256`).
pub const EK_POLICY_SHA256: [u8; 32] = [
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
    0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
];

/// What goes into the AK template's `unique.x`: with a fixed template the TPM derives the
/// same key from the owner seed every time, until `TPM2_Clear` changes the seed. The string
/// is the one upstream's proof of concept names; whether it puts it in the same field (and
/// so derives the same key) is not checked.
pub const AK_LABEL: &[u8] = b"ST-POC-ECC-AK-LABEL";

/// Largest `TPM2B_PUBLIC` accepted (an RSA-4096 key is about 600 bytes).
const MAX_PUBLIC: usize = 1024;
/// Largest `TPM2B_CREATION_DATA` accepted.
const MAX_CREATION_DATA: usize = 1024;
/// Largest `TPM2B_NAME` (algorithm id + digest).
const MAX_NAME: usize = 2 + crate::commands::MAX_DIGEST;
/// Largest `TPM2B_ATTEST` accepted.
const MAX_ATTEST: usize = 2048;
/// Largest qualifying data (`TPM2B_DATA`) given to a quote: one digest.
pub const MAX_QUALIFYING_DATA: usize = crate::commands::MAX_DIGEST;
/// Largest `TPM2B_ID_OBJECT` accepted from a caller (integrity HMAC + encrypted name).
pub const MAX_ID_OBJECT: usize = 256;
/// Largest `TPM2B_ENCRYPTED_SECRET` accepted from a caller (an RSA-4096 ciphertext).
pub const MAX_ENCRYPTED_SECRET: usize = 512;
/// Largest RSA signature or modulus (RSA-4096).
const MAX_RSA_BYTES: usize = 512;
/// Largest ECC coordinate (P-521).
const MAX_ECC_BYTES: usize = 66;
/// Largest `TPM2B_TIMEOUT` (a `UINT64`).
const MAX_TIMEOUT: usize = 8;

/// The `unique` field a public area of a template must come back with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unique {
    /// `TPM2B_PUBLIC_KEY_RSA` of this many bytes (the modulus).
    Rsa(usize),
    /// `TPMS_ECC_POINT` with coordinates of this many bytes.
    Ecc(usize),
}

/// A `TPM2_CreatePrimary` template: the hierarchy and the `TPMT_PUBLIC` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    hierarchy: u32,
    /// `TPMT_PUBLIC` up to (not including) `unique`: the TPM returns it unchanged.
    fixed: Vec<u8>,
    /// The template's `unique` field.
    unique: Vec<u8>,
    returned_unique: Unique,
}

impl Template {
    /// The EK: TCG EK Credential Profile template L-1 (RSA-2048, SHA-256 name, `authPolicy`
    /// [`EK_POLICY_SHA256`], fixedTPM|fixedParent|sensitiveDataOrigin|adminWithPolicy|
    /// restricted|decrypt, AES-128-CFB, exponent 0, a 256-byte zero `unique`) in the
    /// endorsement hierarchy: the key the EK certificate certifies.
    pub fn ek_rsa2048() -> Self {
        let mut w = Vec::with_capacity(64);
        w.extend_from_slice(&ALG_RSA.to_be_bytes());
        w.extend_from_slice(&AlgId::SHA256.0.to_be_bytes());
        let attrs = FIXED_TPM
            | FIXED_PARENT
            | SENSITIVE_DATA_ORIGIN
            | ADMIN_WITH_POLICY
            | RESTRICTED
            | DECRYPT;
        w.extend_from_slice(&attrs.to_be_bytes());
        w.extend_from_slice(&32u16.to_be_bytes());
        w.extend_from_slice(&EK_POLICY_SHA256);
        // TPMS_RSA_PARMS: symmetric AES-128-CFB, scheme NULL, 2048 bits, exponent 0 (2^16+1).
        for v in [ALG_AES, 128, ALG_CFB, ALG_NULL, 2048] {
            w.extend_from_slice(&v.to_be_bytes());
        }
        w.extend_from_slice(&0u32.to_be_bytes());
        let mut unique = Vec::with_capacity(258);
        unique.extend_from_slice(&256u16.to_be_bytes());
        unique.resize(258, 0);
        Self {
            hierarchy: TPM_RH_ENDORSEMENT,
            fixed: w,
            unique,
            returned_unique: Unique::Rsa(256),
        }
    }

    /// The AK: ECC P-256, SHA-256 name, empty `authPolicy`, fixedTPM|fixedParent|
    /// sensitiveDataOrigin|userWithAuth|restricted|sign, scheme ECDSA-SHA256, no KDF,
    /// `unique.x` = [`AK_LABEL`], in the owner hierarchy. A primary key: the same key every
    /// time until the owner seed changes (`TPM2_Clear`), nothing stored on the TPM.
    pub fn ak_p256() -> Self {
        Self::ak_p256_unique(AK_LABEL)
    }

    /// [`Self::ak_p256`] with `label` in `unique.x` instead of the fixed label: a primary key is
    /// derived from the hierarchy's seed and the template, so random bytes here make an AK that
    /// no other boot has (the attestation agent's per-boot AK). At most 32 bytes.
    pub fn ak_p256_unique(label: &[u8]) -> Self {
        let label = label.get(..label.len().min(32)).unwrap_or_default();
        let mut w = Vec::with_capacity(32);
        w.extend_from_slice(&ALG_ECC.to_be_bytes());
        w.extend_from_slice(&AlgId::SHA256.0.to_be_bytes());
        let attrs =
            FIXED_TPM | FIXED_PARENT | SENSITIVE_DATA_ORIGIN | USER_WITH_AUTH | RESTRICTED | SIGN;
        w.extend_from_slice(&attrs.to_be_bytes());
        w.extend_from_slice(&0u16.to_be_bytes());
        // TPMS_ECC_PARMS: symmetric NULL, scheme ECDSA-SHA256, curve P-256, kdf NULL.
        for v in [
            ALG_NULL,
            ALG_ECDSA,
            AlgId::SHA256.0,
            ECC_NIST_P256,
            ALG_NULL,
        ] {
            w.extend_from_slice(&v.to_be_bytes());
        }
        let mut unique = Vec::with_capacity(4 + label.len());
        // At most 32 bytes (checked above).
        unique.extend_from_slice(&(label.len() as u16).to_be_bytes());
        unique.extend_from_slice(label);
        unique.extend_from_slice(&0u16.to_be_bytes());
        Self {
            hierarchy: TPM_RH_OWNER,
            fixed: w,
            unique,
            returned_unique: Unique::Ecc(32),
        }
    }

    /// The hierarchy the key is made in.
    pub fn hierarchy(&self) -> u32 {
        self.hierarchy
    }

    /// The template's `TPMT_PUBLIC` as sent.
    pub fn public_area(&self) -> Vec<u8> {
        [self.fixed.as_slice(), &self.unique].concat()
    }
}

/// A key made by `TPM2_CreatePrimary`: a transient object until [`Tpm::flush`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedKey {
    /// The object handle.
    pub handle: u32,
    /// The `TPM2B_PUBLIC` exactly as the TPM returned it, size prefix included (the format of
    /// tpm2-tools' public files).
    pub public: Vec<u8>,
    /// The object's name (`nameAlg || H(TPMT_PUBLIC)`), as the TPM returned it.
    pub name: Vec<u8>,
}

impl CreatedKey {
    /// The `TPMT_PUBLIC`: [`CreatedKey::public`] without its size prefix.
    pub fn public_area(&self) -> &[u8] {
        self.public.get(2..).unwrap_or(&[])
    }
}

/// An object's public area and name (`TPM2_ReadPublic`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPublic {
    /// The `TPM2B_PUBLIC` exactly as returned, size prefix included.
    pub public: Vec<u8>,
    /// The name.
    pub name: Vec<u8>,
}

/// A policy session started by `TPM2_StartAuthSession`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySession {
    /// The session handle.
    pub handle: u32,
    /// `nonceTPM`.
    pub nonce_tpm: Vec<u8>,
}

/// A quote as the TPM returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The `TPMS_ATTEST` (the contents of the `TPM2B_ATTEST`, without its size): the bytes
    /// that were signed, what `tpm2_quote -m` writes.
    pub attest: Vec<u8>,
    /// The `TPMT_SIGNATURE` exactly as returned (what `tpm2_quote -s` writes).
    pub signature: Vec<u8>,
}

/// An `InvalidArgument` error.
fn invalid(command: CommandCode, field: &'static str, problem: Problem) -> Error {
    Error::InvalidArgument {
        command,
        field,
        problem,
    }
}

/// Reads a `TPM2B_PUBLIC` and returns it whole (size prefix included) and a reader over its
/// `TPMT_PUBLIC`.
fn read_public<'a>(
    p: &mut Reader<'a>,
    field: &'static str,
) -> Result<(&'a [u8], Reader<'a>), Error> {
    let whole = p.rest();
    let size = usize::from(p.u16(field)?);
    if size > MAX_PUBLIC {
        return Err(p.error(
            field,
            Problem::TooLarge {
                len: size,
                max: MAX_PUBLIC,
            },
        ));
    }
    let area = p.sub(field, size)?;
    let whole = whole.get(..2 + size).unwrap_or(&[]);
    Ok((whole, area))
}

/// Reads a name and checks it is `nameAlg || digest` for the public area's `nameAlg`.
fn read_name(p: &mut Reader<'_>, field: &'static str, name_alg: AlgId) -> Result<Vec<u8>, Error> {
    let name = p.tpm2b(field, MAX_NAME)?;
    let Some(size) = name_alg.digest_size() else {
        return Err(p.error(
            field,
            Problem::Invalid("the object's nameAlg is not a hash"),
        ));
    };
    if name.len() != 2 + size {
        return Err(p.error(
            field,
            Problem::Mismatch {
                expected: (2 + size) as u64,
                found: name.len() as u64,
            },
        ));
    }
    if name.get(..2) != Some(&name_alg.0.to_be_bytes()[..]) {
        return Err(p.error(
            field,
            Problem::Invalid("not named with the object's nameAlg"),
        ));
    }
    Ok(name.to_vec())
}

/// The `nameAlg` of a `TPMT_PUBLIC` (its second field).
fn name_alg(area: &Reader<'_>, field: &'static str) -> Result<AlgId, Error> {
    let mut r = area.clone();
    r.u16(field)?;
    Ok(AlgId(r.u16(field)?))
}

/// `TPM2_CreatePrimary(template.hierarchy)` with an empty `userAuth`, no sensitive data, no
/// `outsideInfo` and no creation PCRs, authorised by the hierarchy's empty password.
pub fn create_primary_command(template: &Template) -> Result<Vec<u8>, Error> {
    let cc = CommandCode::CREATE_PRIMARY;
    let mut w = CommandWriter::new(TPM_ST_SESSIONS, cc);
    w.u32(template.hierarchy);
    w.password_sessions(&[PasswordSession { password: &[] }])?;
    // TPM2B_SENSITIVE_CREATE { userAuth: empty, data: empty }.
    w.u16(4).u16(0).u16(0);
    w.tpm2b("inPublic", &template.public_area())?;
    w.u16(0); // outsideInfo
    w.u32(0); // creationPCR: no selection
    w.finish()
}

/// Parses the response to [`create_primary_command`]: the public area must be the template
/// with `unique` filled in (a modulus of the key size, or a point of the curve's size), the
/// name `nameAlg || digest`.
pub fn parse_create_primary(response: &[u8], template: &Template) -> Result<CreatedKey, Error> {
    let r = Response::open(CommandCode::CREATE_PRIMARY, response, 1, 1)?;
    let handle = r.handles.first().copied().unwrap_or(0);
    let mut p = r.params;
    let (public, mut area) = read_public(&mut p, "outPublic")?;
    let alg = name_alg(&area, "outPublic.nameAlg")?;
    let fixed = area.take("outPublic", template.fixed.len())?;
    if fixed != template.fixed.as_slice() {
        return Err(p.error(
            "outPublic",
            Problem::Invalid("not the template asked for (type, attributes or parameters)"),
        ));
    }
    match template.returned_unique {
        Unique::Rsa(n) => {
            let modulus = area.tpm2b("outPublic.unique.rsa", MAX_RSA_BYTES)?;
            check_len(&area, "outPublic.unique.rsa", modulus.len(), n)?;
        }
        Unique::Ecc(n) => {
            for field in ["outPublic.unique.ecc.x", "outPublic.unique.ecc.y"] {
                let c = area.tpm2b(field, MAX_ECC_BYTES)?;
                check_len(&area, field, c.len(), n)?;
            }
        }
    }
    area.end("outPublic")?;
    p.tpm2b("creationData", MAX_CREATION_DATA)?;
    p.tpm2b("creationHash", crate::commands::MAX_DIGEST)?;
    p.u16("creationTicket.tag")?;
    p.u32("creationTicket.hierarchy")?;
    p.tpm2b("creationTicket.digest", crate::commands::MAX_DIGEST)?;
    let name = read_name(&mut p, "name", alg)?;
    p.end("parameters")?;
    Ok(CreatedKey {
        handle,
        public: public.to_vec(),
        name,
    })
}

/// Fails unless a length is the expected one.
fn check_len(
    r: &Reader<'_>,
    field: &'static str,
    len: usize,
    expected: usize,
) -> Result<(), Error> {
    if len != expected {
        return Err(r.error(
            field,
            Problem::Mismatch {
                expected: expected as u64,
                found: len as u64,
            },
        ));
    }
    Ok(())
}

/// `TPM2_ReadPublic(objectHandle)`.
pub fn read_public_command(handle: u32) -> Result<Vec<u8>, Error> {
    let mut w = CommandWriter::new(TPM_ST_NO_SESSIONS, CommandCode::READ_PUBLIC);
    w.u32(handle);
    w.finish()
}

/// Parses the response to [`read_public_command`]: the public area (kept whole), the name
/// (for its `nameAlg`) and the qualified name.
pub fn parse_read_public(response: &[u8]) -> Result<ObjectPublic, Error> {
    let mut p = Response::open(CommandCode::READ_PUBLIC, response, 0, 0)?.params;
    let (public, area) = read_public(&mut p, "outPublic")?;
    let alg = name_alg(&area, "outPublic.nameAlg")?;
    let name = read_name(&mut p, "name", alg)?;
    p.tpm2b("qualifiedName", MAX_NAME)?;
    p.end("parameters")?;
    Ok(ObjectPublic {
        public: public.to_vec(),
        name,
    })
}

/// `TPM2_FlushContext(flushHandle)`: a transient object or a session.
pub fn flush_context_command(handle: u32) -> Result<Vec<u8>, Error> {
    let mut w = CommandWriter::new(TPM_ST_NO_SESSIONS, CommandCode::FLUSH_CONTEXT);
    w.u32(handle);
    w.finish()
}

/// Parses the (empty) response to [`flush_context_command`].
pub fn parse_flush_context(response: &[u8]) -> Result<(), Error> {
    let r = Response::open(CommandCode::FLUSH_CONTEXT, response, 0, 0)?;
    r.params.end("parameters")
}

/// `TPM2_StartAuthSession`: a policy session, no salt (`tpmKey` `TPM_RH_NULL`), unbound,
/// no parameter encryption, SHA-256. `nonce_caller` must be 16 to 32 bytes.
pub fn start_policy_session_command(nonce_caller: &[u8]) -> Result<Vec<u8>, Error> {
    let cc = CommandCode::START_AUTH_SESSION;
    if !(16..=32).contains(&nonce_caller.len()) {
        return Err(invalid(
            cc,
            "nonceCaller",
            Problem::Invalid("must be 16 to 32 bytes (a SHA-256 session)"),
        ));
    }
    let mut w = CommandWriter::new(TPM_ST_NO_SESSIONS, cc);
    w.u32(TPM_RH_NULL).u32(TPM_RH_NULL);
    w.tpm2b("nonceCaller", nonce_caller)?;
    w.u16(0); // encryptedSalt
    w.u8(SE_POLICY);
    w.u16(ALG_NULL); // symmetric
    w.u16(AlgId::SHA256.0);
    w.finish()
}

/// Parses the response to [`start_policy_session_command`]: a policy session handle and
/// `nonceTPM`.
pub fn parse_start_auth_session(response: &[u8]) -> Result<PolicySession, Error> {
    let r = Response::open(CommandCode::START_AUTH_SESSION, response, 1, 0)?;
    let handle = r.handles.first().copied().unwrap_or(0);
    let mut p = r.params;
    if handle >> 24 != HT_POLICY_SESSION {
        return Err(p.error(
            "sessionHandle",
            Problem::Invalid("not a policy session handle"),
        ));
    }
    let nonce_tpm = p.tpm2b("nonceTPM", crate::commands::MAX_DIGEST)?.to_vec();
    p.end("parameters")?;
    Ok(PolicySession { handle, nonce_tpm })
}

/// `TPM2_PolicySecret(TPM_RH_ENDORSEMENT, session)` authorised by the endorsement
/// hierarchy's empty password; no nonce, cpHash or policyRef, no expiration. Extends the
/// session's policy digest with what the EK's `authPolicy` expects.
pub fn policy_secret_endorsement_command(session: u32) -> Result<Vec<u8>, Error> {
    let mut w = CommandWriter::new(TPM_ST_SESSIONS, CommandCode::POLICY_SECRET);
    w.u32(TPM_RH_ENDORSEMENT).u32(session);
    w.password_sessions(&[PasswordSession { password: &[] }])?;
    w.u16(0).u16(0).u16(0); // nonceTPM, cpHashA, policyRef
    w.u32(0); // expiration
    w.finish()
}

/// Parses the response to [`policy_secret_endorsement_command`] (a timeout and a ticket, not
/// used).
pub fn parse_policy_secret(response: &[u8]) -> Result<(), Error> {
    let mut p = Response::open(CommandCode::POLICY_SECRET, response, 0, 1)?.params;
    p.tpm2b("timeout", MAX_TIMEOUT)?;
    p.u16("policyTicket.tag")?;
    p.u32("policyTicket.hierarchy")?;
    p.tpm2b("policyTicket.digest", crate::commands::MAX_DIGEST)?;
    p.end("parameters")
}

/// Checks that `bytes` is one whole `TPM2B` (size prefix included) of at most `max` bytes.
fn check_tpm2b(
    cc: CommandCode,
    field: &'static str,
    bytes: &[u8],
    max: usize,
) -> Result<(), Error> {
    let mut r = Reader::new(cc, bytes);
    let inner = r.tpm2b(field, max).map_err(|_| {
        invalid(
            cc,
            field,
            Problem::Invalid("not a TPM2B (size prefix then that many bytes) within its limit"),
        )
    })?;
    if r.remaining() != 0 {
        return Err(invalid(
            cc,
            field,
            Problem::TrailingBytes {
                extra: r.remaining(),
            },
        ));
    }
    if inner.is_empty() {
        return Err(invalid(cc, field, Problem::Invalid("empty")));
    }
    Ok(())
}

/// `TPM2_ActivateCredential(activateHandle = ak, keyHandle = ek)`: the AK by its empty
/// password (admin role; the AK has no adminWithPolicy), the EK by `session`, a policy
/// session that ran [`policy_secret_endorsement_command`] (flushed by the TPM when the
/// command succeeds). `id_object` and `encrypted_secret` are the whole `TPM2B_ID_OBJECT` and
/// `TPM2B_ENCRYPTED_SECRET`, size prefixes included, as `TPM2_MakeCredential` makes them.
pub fn activate_credential_command(
    ak: u32,
    ek: u32,
    session: u32,
    id_object: &[u8],
    encrypted_secret: &[u8],
) -> Result<Vec<u8>, Error> {
    let cc = CommandCode::ACTIVATE_CREDENTIAL;
    check_tpm2b(cc, "credentialBlob", id_object, MAX_ID_OBJECT)?;
    check_tpm2b(cc, "secret", encrypted_secret, MAX_ENCRYPTED_SECRET)?;
    let mut w = CommandWriter::new(TPM_ST_SESSIONS, cc);
    w.u32(ak).u32(ek);
    w.sessions(&[
        Session::Password(PasswordSession { password: &[] }),
        Session::Policy {
            handle: session,
            continue_session: false,
        },
    ])?;
    w.bytes(id_object).bytes(encrypted_secret);
    w.finish()
}

/// Parses the response to [`activate_credential_command`]: the recovered secret (`certInfo`).
pub fn parse_activate_credential(response: &[u8]) -> Result<Vec<u8>, Error> {
    let mut p = Response::open(CommandCode::ACTIVATE_CREDENTIAL, response, 0, 2)?.params;
    let secret = p.tpm2b("certInfo", crate::commands::MAX_DIGEST)?.to_vec();
    p.end("parameters")?;
    Ok(secret)
}

/// `TPM2_Quote(signHandle = ak)` by the AK's empty password, over `pcrs` of bank `bank`,
/// signed with the key's own scheme (`inScheme` NULL). `qualifying_data` is at most
/// [`MAX_QUALIFYING_DATA`] bytes; at least one PCR, each at most
/// [`MAX_PCR`](crate::commands::MAX_PCR).
pub fn quote_command(
    ak: u32,
    qualifying_data: &[u8],
    bank: AlgId,
    pcrs: &[u32],
) -> Result<Vec<u8>, Error> {
    let cc = CommandCode::QUOTE;
    if qualifying_data.len() > MAX_QUALIFYING_DATA {
        return Err(invalid(
            cc,
            "qualifyingData",
            Problem::TooLarge {
                len: qualifying_data.len(),
                max: MAX_QUALIFYING_DATA,
            },
        ));
    }
    if pcrs.is_empty() {
        return Err(invalid(
            cc,
            "pcrs",
            Problem::Invalid("no PCR: the quote would cover none"),
        ));
    }
    let mut bitmap = vec![0u8; 3];
    for &pcr in pcrs {
        if pcr > crate::commands::MAX_PCR {
            return Err(invalid(
                cc,
                "pcrs",
                Problem::TooLarge {
                    len: usize::try_from(pcr).unwrap_or(usize::MAX),
                    max: crate::commands::MAX_PCR as usize,
                },
            ));
        }
        let byte = (pcr / 8) as usize;
        if bitmap.len() <= byte {
            bitmap.resize(byte + 1, 0);
        }
        if let Some(b) = bitmap.get_mut(byte) {
            *b |= 1 << (pcr % 8);
        }
    }
    let mut w = CommandWriter::new(TPM_ST_SESSIONS, cc);
    w.u32(ak);
    w.password_sessions(&[PasswordSession { password: &[] }])?;
    w.tpm2b("qualifyingData", qualifying_data)?;
    w.u16(ALG_NULL);
    // bitmap is at most 4 bytes.
    w.u32(1).u16(bank.0).u8(bitmap.len() as u8).bytes(&bitmap);
    w.finish()
}

/// Parses the response to [`quote_command`]: a `TPMS_ATTEST` that starts with
/// `TPM_GENERATED_VALUE`, is a quote and carries `qualifying_data` as `extraData`, and a
/// `TPMT_SIGNATURE` of an RSA or ECC scheme that ends the parameters. Both are returned as
/// sent; the rest of the attestation is the verifier's to check.
pub fn parse_quote(response: &[u8], qualifying_data: &[u8]) -> Result<Quote, Error> {
    let mut p = Response::open(CommandCode::QUOTE, response, 0, 1)?.params;
    let attest = p.tpm2b("quoted", MAX_ATTEST)?;
    let mut a = Reader::new(CommandCode::QUOTE, attest);
    let magic = a.u32("quoted.magic")?;
    if magic != TPM_GENERATED_VALUE {
        return Err(a.error(
            "quoted.magic",
            Problem::Mismatch {
                expected: u64::from(TPM_GENERATED_VALUE),
                found: u64::from(magic),
            },
        ));
    }
    let ty = a.u16("quoted.type")?;
    if ty != TPM_ST_ATTEST_QUOTE {
        return Err(a.error(
            "quoted.type",
            Problem::Mismatch {
                expected: u64::from(TPM_ST_ATTEST_QUOTE),
                found: u64::from(ty),
            },
        ));
    }
    a.tpm2b("quoted.qualifiedSigner", MAX_NAME)?;
    let extra = a.tpm2b("quoted.extraData", MAX_QUALIFYING_DATA)?;
    if extra != qualifying_data {
        return Err(a.error(
            "quoted.extraData",
            Problem::Invalid("not the qualifying data asked for"),
        ));
    }
    let signature = p.rest();
    let alg = p.u16("signature.sigAlg")?;
    match alg {
        // RSASSA, RSAPSS: hash, TPM2B_PUBLIC_KEY_RSA.
        0x0014 | 0x0016 => {
            p.u16("signature.hash")?;
            p.tpm2b("signature.sig", MAX_RSA_BYTES)?;
        }
        // ECDSA, ECDAA, SM2, ECSCHNORR: hash, r, s.
        0x0018 | 0x001a | 0x001b | 0x001c => {
            p.u16("signature.hash")?;
            p.tpm2b("signature.signatureR", MAX_ECC_BYTES)?;
            p.tpm2b("signature.signatureS", MAX_ECC_BYTES)?;
        }
        _ => {
            return Err(p.error(
                "signature.sigAlg",
                Problem::Invalid("not an RSA or ECC signature scheme"),
            ));
        }
    }
    p.end("parameters")?;
    let len = signature.len() - p.remaining();
    Ok(Quote {
        attest: attest.to_vec(),
        signature: signature.get(..len).unwrap_or(&[]).to_vec(),
    })
}

impl<T: Transport> Tpm<T> {
    /// `TPM2_CreatePrimary` from `template` in its hierarchy (empty hierarchy password).
    pub fn create_primary(&mut self, template: &Template) -> Result<CreatedKey, Error> {
        let c = create_primary_command(template)?;
        let r = self.run(CommandCode::CREATE_PRIMARY, &c)?;
        parse_create_primary(&r, template)
    }

    /// The EK from the TCG default RSA-2048 template ([`Template::ek_rsa2048`]): the key the
    /// EK certificate at [`EK_CERT_RSA_INDEX`] certifies. Flush it when done.
    pub fn create_ek_rsa(&mut self) -> Result<CreatedKey, Error> {
        self.create_primary(&Template::ek_rsa2048())
    }

    /// The AK ([`Template::ak_p256`]): the same key on every call until `TPM2_Clear`. Flush
    /// it when done.
    pub fn create_ak_p256(&mut self) -> Result<CreatedKey, Error> {
        self.create_primary(&Template::ak_p256())
    }

    /// An AK as [`Self::create_ak_p256`] but unique to `label` ([`Template::ak_p256_unique`]).
    pub fn create_ak_p256_unique(&mut self, label: &[u8]) -> Result<CreatedKey, Error> {
        self.create_primary(&Template::ak_p256_unique(label))
    }

    /// The RSA EK certificate (DER) from NV index [`EK_CERT_RSA_INDEX`], `None` when the
    /// index is not defined.
    pub fn ek_certificate_rsa(&mut self) -> Result<Option<Vec<u8>>, Error> {
        self.nv_read_all(EK_CERT_RSA_INDEX)
    }

    /// `TPM2_ReadPublic`: a loaded object's public area and name.
    pub fn read_public(&mut self, handle: u32) -> Result<ObjectPublic, Error> {
        let c = read_public_command(handle)?;
        let r = self.run(CommandCode::READ_PUBLIC, &c)?;
        parse_read_public(&r)
    }

    /// `TPM2_FlushContext`: unloads a transient object or ends a session.
    pub fn flush(&mut self, handle: u32) -> Result<(), Error> {
        let c = flush_context_command(handle)?;
        let r = self.run(CommandCode::FLUSH_CONTEXT, &c)?;
        parse_flush_context(&r)
    }

    /// `TPM2_StartAuthSession`: an unsalted, unbound SHA-256 policy session with the
    /// caller's nonce (16 to 32 bytes).
    pub fn start_policy_session(&mut self, nonce_caller: &[u8]) -> Result<PolicySession, Error> {
        let c = start_policy_session_command(nonce_caller)?;
        let r = self.run(CommandCode::START_AUTH_SESSION, &c)?;
        parse_start_auth_session(&r)
    }

    /// `TPM2_PolicySecret(TPM_RH_ENDORSEMENT)` on a policy session: afterwards the session
    /// satisfies the EK's policy.
    pub fn policy_secret_endorsement(&mut self, session: u32) -> Result<(), Error> {
        let c = policy_secret_endorsement_command(session)?;
        let r = self.run(CommandCode::POLICY_SECRET, &c)?;
        parse_policy_secret(&r)
    }

    /// `TPM2_ActivateCredential` with a policy session that already satisfies the EK's
    /// policy (see [`activate_credential_command`]).
    pub fn activate_credential_with(
        &mut self,
        ak: u32,
        ek: u32,
        session: u32,
        id_object: &[u8],
        encrypted_secret: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let c = activate_credential_command(ak, ek, session, id_object, encrypted_secret)?;
        let r = self.run(CommandCode::ACTIVATE_CREDENTIAL, &c)?;
        parse_activate_credential(&r)
    }

    /// Recovers the secret of a credential made for `ak`'s name under `ek`: a policy session
    /// (its nonce from `TPM2_GetRandom`), `TPM2_PolicySecret(TPM_RH_ENDORSEMENT)`, then
    /// `TPM2_ActivateCredential`. `id_object` and `encrypted_secret` are the whole
    /// `TPM2B_ID_OBJECT` and `TPM2B_ENCRYPTED_SECRET`. The session is gone afterwards,
    /// whatever the outcome.
    pub fn activate_credential(
        &mut self,
        ak: u32,
        ek: u32,
        id_object: &[u8],
        encrypted_secret: &[u8],
    ) -> Result<Vec<u8>, Error> {
        // Check the arguments before anything is started on the TPM.
        activate_credential_command(ak, ek, 0, id_object, encrypted_secret)?;
        let nonce = self.get_random(16)?;
        if nonce.len() < 16 {
            return Err(Error::Malformed {
                command: CommandCode::GET_RANDOM,
                field: "randomBytes",
                problem: Problem::Mismatch {
                    expected: 16,
                    found: nonce.len() as u64,
                },
            });
        }
        let session = self.start_policy_session(&nonce)?.handle;
        let result = self.policy_secret_endorsement(session).and_then(|()| {
            self.activate_credential_with(ak, ek, session, id_object, encrypted_secret)
        });
        if result.is_err() {
            // Success flushed it (continueSession clear); after a failure it may remain.
            let _ = self.flush(session);
        }
        result
    }

    /// `TPM2_Quote` by `ak` over `pcrs` of the sha256 bank with `qualifying_data` as
    /// `extraData`, signed with the AK's scheme.
    pub fn quote(&mut self, ak: u32, qualifying_data: &[u8], pcrs: &[u32]) -> Result<Quote, Error> {
        let c = quote_command(ak, qualifying_data, AlgId::SHA256, pcrs)?;
        let r = self.run(CommandCode::QUOTE, &c)?;
        parse_quote(&r, qualifying_data)
    }
}
