//! Authenticode signatures for PE images (UEFI Secure Boot): the image digest, the PKCS#7
//! `SignedData` around it (hand-written DER), and the certificate table that carries it.
//!
//! The digest is SHA-256 over the headers without the CheckSum field and the certificate
//! table's directory entry, then every section's raw data in file order, then any bytes after
//! the sections up to the certificate table. The `SignedData` (version 1) holds one
//! `SpcIndirectDataContent` (an `SpcPeImageData` with an empty flags bit string and the
//! customary `<<<Obsolete>>>` file link, and the digest), the signer's certificate, and one
//! `SignerInfo` (issuer and serial number, SHA-256, authenticated attributes contentType and
//! messageDigest, an RSA PKCS#1 v1.5 signature over them). The signature itself is made by the
//! caller's closure, so nothing here needs a key or randomness.

use crate::pe::{self, OPT_CHECKSUM, PeError, PeHeaders};
use std::ops::Range;

/// Why an image could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// Not a PE image this reader accepts.
    #[error(transparent)]
    Pe(#[from] PeError),
    /// The image already carries a certificate table.
    #[error("the PE image is already signed")]
    AlreadySigned,
    /// The image has no certificate table directory entry.
    #[error("the PE image has no certificate table directory entry")]
    NoCertificateDirectory,
    /// Section raw data overlaps the headers or the file is shorter than a header says.
    #[error("the PE image's {0} is outside the file")]
    Layout(&'static str),
    /// The certificate is not DER this writer can take apart.
    #[error("signing certificate: {0}")]
    Certificate(&'static str),
    /// The signer failed.
    #[error("signing: {0}")]
    Signer(String),
}

/// The byte ranges of `file` that the Authenticode digest covers, in order.
pub fn digest_ranges(file: &[u8], h: &PeHeaders) -> Result<Vec<Range<usize>>, SignError> {
    let sum = h.checksum_offset();
    let dir = h
        .certificate_directory_offset()
        .ok_or(SignError::NoCertificateDirectory)?;
    let headers = h.size_of_headers as usize;
    if !(sum + 4 <= dir && dir + 8 <= headers && headers <= file.len()) {
        return Err(SignError::Layout("header"));
    }
    let mut ranges = vec![0..sum, sum + 4..dir, dir + 8..headers];
    let mut sections: Vec<&pe::Section> = h.sections.iter().filter(|s| s.raw_size > 0).collect();
    sections.sort_by_key(|s| s.raw_offset);
    let mut hashed = headers;
    for s in sections {
        let start = s.raw_offset as usize;
        let end = start + s.raw_size as usize;
        if end > file.len() {
            return Err(SignError::Layout("section data"));
        }
        ranges.push(start..end);
        hashed = hashed.max(end);
    }
    let cert = h.directory(pe::DIR_CERTIFICATE);
    let end = file.len() - (cert.size as usize).min(file.len());
    if end > hashed {
        ranges.push(hashed..end);
    }
    Ok(ranges)
}

// --- DER ----------------------------------------------------------------------------------

fn der_len(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes: Vec<u8> = len
        .to_be_bytes()
        .iter()
        .copied()
        .skip_while(|&b| b == 0)
        .collect();
    let mut v = vec![0x80 | bytes.len() as u8];
    v.extend(bytes);
    v
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend(der_len(content.len()));
    v.extend_from_slice(content);
    v
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn set(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x31, &parts.concat())
}

fn oid(encoded: &[u8]) -> Vec<u8> {
    tlv(0x06, encoded)
}

const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
const OID_CONTENT_TYPE: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
const OID_MESSAGE_DIGEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
/// 1.3.6.1.4.1.311.2.1.4 SPC_INDIRECT_DATA_OBJID
const OID_SPC_INDIRECT_DATA: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x04];
/// 1.3.6.1.4.1.311.2.1.15 SPC_PE_IMAGE_DATAOBJ
const OID_SPC_PE_IMAGE_DATA: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x0f];

fn alg(oid_bytes: &[u8]) -> Vec<u8> {
    seq(&[&oid(oid_bytes), &[0x05, 0x00]])
}

/// A DER element: (tag, whole element, content).
fn read_tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, head) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = head.checked_add(len)?;
    Some((tag, b.get(..end)?, b.get(head..end)?))
}

/// The issuer Name and serial number INTEGER (whole DER elements) of a certificate.
pub fn issuer_and_serial(cert: &[u8]) -> Result<(Vec<u8>, Vec<u8>), SignError> {
    let f = tbs_fields(cert)?;
    Ok((f.issuer, f.serial))
}

/// The subjectPublicKey bits of a certificate (for RSA: the DER RSAPublicKey), to check that
/// a signing key belongs to it.
pub fn subject_public_key(cert: &[u8]) -> Result<Vec<u8>, SignError> {
    let spki = tbs_fields(cert)?.spki;
    let bad = SignError::Certificate;
    let (_, _, spki_content) = read_tlv(&spki).ok_or(bad("bad subjectPublicKeyInfo"))?;
    let (_, alg, _) = read_tlv(spki_content).ok_or(bad("bad subjectPublicKeyInfo"))?;
    let (tag, _, bits) = read_tlv(spki_content.get(alg.len()..).unwrap_or_default())
        .ok_or(bad("no subjectPublicKey"))?;
    match (tag, bits.split_first()) {
        (0x03, Some((0, key))) => Ok(key.to_vec()),
        _ => Err(bad("subjectPublicKey is not a whole-byte BIT STRING")),
    }
}

struct TbsFields {
    serial: Vec<u8>,
    issuer: Vec<u8>,
    spki: Vec<u8>,
}

fn tbs_fields(cert: &[u8]) -> Result<TbsFields, SignError> {
    let bad = SignError::Certificate;
    let (tag, _, cert_content) = read_tlv(cert).ok_or(bad("not DER"))?;
    if tag != 0x30 {
        return Err(bad("not a SEQUENCE"));
    }
    let (tag, _, tbs) = read_tlv(cert_content).ok_or(bad("no tbsCertificate"))?;
    if tag != 0x30 {
        return Err(bad("tbsCertificate is not a SEQUENCE"));
    }
    let mut rest = tbs;
    let mut next = || -> Result<(u8, Vec<u8>), SignError> {
        let (tag, whole, _) = read_tlv(rest).ok_or(bad("truncated tbsCertificate"))?;
        rest = rest.get(whole.len()..).unwrap_or_default();
        Ok((tag, whole.to_vec()))
    };
    let (mut tag, mut el) = next()?;
    if tag == 0xa0 {
        (tag, el) = next()?; // [0] version
    }
    if tag != 0x02 {
        return Err(bad("no serial number"));
    }
    let serial = el;
    let (_, _signature_alg) = next()?;
    let (tag, issuer) = next()?;
    if tag != 0x30 {
        return Err(bad("no issuer name"));
    }
    let (_, _validity) = next()?;
    let (_, _subject) = next()?;
    let (tag, spki) = next()?;
    if tag != 0x30 {
        return Err(bad("no subjectPublicKeyInfo"));
    }
    Ok(TbsFields {
        serial,
        issuer,
        spki,
    })
}

/// The `SpcIndirectDataContent` for an image digest.
fn indirect_data(digest: &[u8; 32]) -> Vec<u8> {
    // "<<<Obsolete>>>" as a BMPString, [0] IMPLICIT, inside [2] (file) inside [0] EXPLICIT.
    let obsolete: Vec<u8> = "<<<Obsolete>>>"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    let link = tlv(0xa0, &tlv(0xa2, &tlv(0x80, &obsolete)));
    let pe_image_data = seq(&[&[0x03, 0x01, 0x00], &link]);
    let data = seq(&[&oid(OID_SPC_PE_IMAGE_DATA), &pe_image_data]);
    let message_digest = seq(&[&alg(OID_SHA256), &tlv(0x04, digest)]);
    seq(&[&data, &message_digest])
}

/// Content of a DER element (after its tag and length).
fn content(element: &[u8]) -> &[u8] {
    read_tlv(element).map(|(_, _, c)| c).unwrap_or_default()
}

/// The DER PKCS#7 `ContentInfo` (SignedData) for an image `digest`, signed by the holder of
/// `cert` (DER). `sha256` hashes; `sign` returns the RSA PKCS#1 v1.5 SHA-256 signature of the
/// bytes it is given (the DER of the authenticated attributes).
pub fn signed_data(
    digest: &[u8; 32],
    cert: &[u8],
    sha256: impl Fn(&[u8]) -> [u8; 32],
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, String>,
) -> Result<Vec<u8>, SignError> {
    let (issuer, serial) = issuer_and_serial(cert)?;
    let idc = indirect_data(digest);
    // messageDigest covers the content of SpcIndirectDataContent, without its tag and length.
    let idc_hash = sha256(content(&idc));
    let attrs = [
        seq(&[&oid(OID_CONTENT_TYPE), &set(&[&oid(OID_SPC_INDIRECT_DATA)])]),
        seq(&[&oid(OID_MESSAGE_DIGEST), &set(&[&tlv(0x04, &idc_hash)])]),
    ];
    // DER SET OF: elements in ascending byte order.
    let mut sorted: Vec<&Vec<u8>> = attrs.iter().collect();
    sorted.sort();
    let attr_bytes: Vec<u8> = sorted.iter().flat_map(|a| a.iter().copied()).collect();
    let signature = sign(&tlv(0x31, &attr_bytes)).map_err(SignError::Signer)?;
    let signer_info = seq(&[
        &[0x02, 0x01, 0x01],
        &seq(&[&issuer, &serial]),
        &alg(OID_SHA256),
        &tlv(0xa0, &attr_bytes),
        &alg(OID_RSA),
        &tlv(0x04, &signature),
    ]);
    let signed = seq(&[
        &[0x02, 0x01, 0x01],
        &set(&[&alg(OID_SHA256)]),
        &seq(&[&oid(OID_SPC_INDIRECT_DATA), &tlv(0xa0, &idc)]),
        &tlv(0xa0, cert),
        &set(&[&signer_info]),
    ]);
    Ok(seq(&[&oid(OID_SIGNED_DATA), &tlv(0xa0, &signed)]))
}

/// Signs `file` (an unsigned PE image): appends a certificate table holding one
/// `WIN_CERTIFICATE` (revision 2.0, PKCS#7 SignedData), points data directory 4 at it and
/// updates the CheckSum. `sha256` and `sign` as in [`signed_data`].
pub fn sign(
    file: &[u8],
    cert: &[u8],
    sha256: impl Fn(&[u8]) -> [u8; 32],
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, String>,
) -> Result<Vec<u8>, SignError> {
    let h = PeHeaders::parse(file)?;
    if h.directory(pe::DIR_CERTIFICATE).size != 0 {
        return Err(SignError::AlreadySigned);
    }
    let dir = h
        .certificate_directory_offset()
        .ok_or(SignError::NoCertificateDirectory)?;
    // The table starts 8-byte aligned at the end of the file.
    let mut out = file.to_vec();
    out.resize(file.len().next_multiple_of(8), 0);
    let ranges = digest_ranges(&out, &h)?;
    let mut image = Vec::new();
    for r in &ranges {
        image.extend_from_slice(out.get(r.clone()).unwrap_or_default());
    }
    let digest = sha256(&image);
    let pkcs7 = signed_data(&digest, cert, &sha256, sign)?;
    let table_len = (8 + pkcs7.len()).next_multiple_of(8);
    let at = out.len();
    let (Ok(at32), Ok(len32)) = (u32::try_from(at), u32::try_from(table_len)) else {
        return Err(SignError::Layout("certificate table"));
    };
    out.extend_from_slice(&len32.to_le_bytes());
    out.extend_from_slice(&0x0200u16.to_le_bytes()); // WIN_CERT_REVISION_2_0
    out.extend_from_slice(&0x0002u16.to_le_bytes()); // WIN_CERT_TYPE_PKCS_SIGNED_DATA
    out.extend_from_slice(&pkcs7);
    out.resize(at + table_len, 0);
    if let Some(d) = out.get_mut(dir..dir + 8) {
        d[..4].copy_from_slice(&at32.to_le_bytes());
        d[4..].copy_from_slice(&len32.to_le_bytes());
    }
    let sum_at = h.optional_offset + OPT_CHECKSUM;
    let sum = pe::checksum(&out, sum_at);
    if let Some(d) = out.get_mut(sum_at..sum_at + 4) {
        d.copy_from_slice(&sum.to_le_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn der_lengths() {
        assert_eq!(der_len(5), [5]);
        assert_eq!(der_len(0x80), [0x81, 0x80]);
        assert_eq!(der_len(0x1234), [0x82, 0x12, 0x34]);
        let long = tlv(0x04, &[0u8; 300]);
        let (tag, whole, c) = read_tlv(&long).unwrap();
        assert_eq!((tag, whole.len(), c.len()), (0x04, 304, 300));
    }

    #[test]
    fn ranges_skip_checksum_and_certificate_entry() {
        let Ok(stub) = std::fs::read(crate::uki::DEBIAN_STUB_PATH) else {
            return;
        };
        let h = PeHeaders::parse(&stub).unwrap();
        let r = digest_ranges(&stub, &h).unwrap();
        let sum = h.checksum_offset();
        let dir = h.certificate_directory_offset().unwrap();
        assert_eq!(r[0], 0..sum);
        assert_eq!(r[1], sum + 4..dir);
        assert_eq!(r[2].start, dir + 8);
        // The stub's trailing symbol table is hashed after the sections.
        let last = r.last().unwrap();
        assert_eq!(last.end, stub.len());
    }
}
