//! Canned-byte tests of the builders, parsers and client.

use std::collections::VecDeque;

use crate::commands::*;
use crate::marshal::{MAX_RESPONSE_SIZE, Response};
use crate::*;

/// Answers queued responses in order and records the commands.
#[derive(Default)]
struct Fake {
    responses: VecDeque<Vec<u8>>,
    commands: Vec<Vec<u8>>,
}

impl Transport for Fake {
    fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.commands.push(command.to_vec());
        self.responses
            .pop_front()
            .ok_or_else(|| "no response queued".into())
    }
}

fn tpm(responses: Vec<Vec<u8>>) -> Tpm<Fake> {
    Tpm::new(Fake {
        responses: responses.into(),
        commands: Vec::new(),
    })
}

/// A response with a correct header.
fn resp(tag: u16, rc: u32, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&tag.to_be_bytes());
    v.extend_from_slice(&((10 + body.len()) as u32).to_be_bytes());
    v.extend_from_slice(&rc.to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// A successful TPM_ST_SESSIONS response with one password session answer.
fn session_resp(params: &[u8]) -> Vec<u8> {
    let mut body = (params.len() as u32).to_be_bytes().to_vec();
    body.extend_from_slice(params);
    body.extend_from_slice(&[0, 0, 1, 0, 0]);
    resp(0x8002, 0, &body)
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The TPM_CAP_PCRS answer of a fresh swtpm (uefi-tpm-recipe §5.2).
const FOUR_BANKS: &str = "8001 0000002b 00000000 00 00000005 00000004 0004 03 ffffff 000b 03 ffffff 000c 03 ffffff 000d 03 ffffff";

fn pcr_read_resp(alg: u16, select: &[u8], digest: &[u8]) -> Vec<u8> {
    let mut b = 0x9cu32.to_be_bytes().to_vec();
    b.extend_from_slice(&1u32.to_be_bytes());
    b.extend_from_slice(&alg.to_be_bytes());
    b.push(select.len() as u8);
    b.extend_from_slice(select);
    b.extend_from_slice(&1u32.to_be_bytes());
    b.extend_from_slice(&(digest.len() as u16).to_be_bytes());
    b.extend_from_slice(digest);
    resp(0x8001, 0, &b)
}

fn nv_public_body(index: u32, attributes: u32, data_size: u16) -> Vec<u8> {
    let mut public = index.to_be_bytes().to_vec();
    public.extend_from_slice(&0x000bu16.to_be_bytes());
    public.extend_from_slice(&attributes.to_be_bytes());
    public.extend_from_slice(&[0, 0]);
    public.extend_from_slice(&data_size.to_be_bytes());
    let mut b = (public.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(&public);
    let name = [0u8; 34];
    b.extend_from_slice(&(name.len() as u16).to_be_bytes());
    b.extend_from_slice(&name);
    b
}

fn properties_resp(pairs: &[(u32, u32)]) -> Vec<u8> {
    let mut b = vec![0];
    b.extend_from_slice(&6u32.to_be_bytes());
    b.extend_from_slice(&(pairs.len() as u32).to_be_bytes());
    for (p, v) in pairs {
        b.extend_from_slice(&p.to_be_bytes());
        b.extend_from_slice(&v.to_be_bytes());
    }
    resp(0x8001, 0, &b)
}

/// Every strict prefix of a valid response is rejected with an error, never a panic.
fn every_prefix_fails(bytes: &[u8], parse: impl Fn(&[u8]) -> Result<(), Error>) {
    assert!(parse(bytes).is_ok(), "the full response parses");
    for n in 0..bytes.len() {
        assert!(parse(&bytes[..n]).is_err(), "prefix of {n} bytes accepted");
    }
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert!(parse(&longer).is_err(), "a trailing byte accepted");
    // The same extra byte counted in responseSize: trailing bytes after the parameters.
    let size = (longer.len() as u32).to_be_bytes();
    longer[2..6].copy_from_slice(&size);
    assert!(
        parse(&longer).is_err(),
        "a trailing byte within responseSize accepted"
    );
}

#[test]
fn command_bytes_match_the_recipe() {
    assert_eq!(
        get_pcr_banks_command().unwrap(),
        hex("8001 00000016 0000017a 00000005 00000000 00000001")
    );
    assert_eq!(
        pcr_read_command(12, AlgId::SHA256).unwrap(),
        hex("8001 00000014 0000017e 00000001 000b 03 001000")
    );
    let digest = [0xaau8; 32];
    let mut expected =
        hex("8002 00000041 00000182 0000000c 00000009 40000009 0000 01 0000 00000001 000b");
    expected.extend_from_slice(&digest);
    assert_eq!(
        pcr_extend_command(12, &[(AlgId::SHA256, &digest)]).unwrap(),
        expected
    );
    assert_eq!(
        startup_command(StartupType::Clear).unwrap(),
        hex("8001 0000000c 00000144 0000")
    );
    assert_eq!(
        nv_read_public_command(0x0142_0001).unwrap(),
        hex("8001 0000000e 00000169 01420001")
    );
    assert_eq!(
        nv_read_command(0x0142_0001, 0x0142_0001, &[], 0x0200, 0x0100).unwrap(),
        hex("8002 00000023 0000014e 01420001 01420001 00000009 40000009 0000 01 0000 0100 0200")
    );
    assert_eq!(
        get_tpm_property_command(TPM_PT_NV_BUFFER_MAX).unwrap(),
        hex("8001 00000016 0000017a 00000006 0000012c 00000001")
    );
}

#[test]
fn extend_with_every_bank() {
    let d1 = [1u8; 20];
    let d2 = [2u8; 32];
    let d3 = [3u8; 48];
    let d4 = [4u8; 64];
    let c = pcr_extend_command(
        12,
        &[
            (AlgId::SHA1, &d1),
            (AlgId::SHA256, &d2),
            (AlgId::SHA384, &d3),
            (AlgId::SHA512, &d4),
        ],
    )
    .unwrap();
    assert_eq!(c.len(), 31 + 4 * 2 + 20 + 32 + 48 + 64);
    assert_eq!(
        u32::from_be_bytes(c[2..6].try_into().unwrap()) as usize,
        c.len()
    );
    assert_eq!(&c[27..31], &4u32.to_be_bytes(), "TPML_DIGEST_VALUES.count");
    assert_eq!(&c[31..33], &[0, 4]);
    assert_eq!(&c[33..53], &d1);
}

#[test]
fn extend_arguments_are_checked() {
    let short = [0u8; 31];
    let ok = [0u8; 32];
    for (digests, why) in [
        (vec![], "no digest"),
        (vec![(AlgId::SHA256, &short[..])], "short digest"),
        (vec![(AlgId::SHA1, &ok[..])], "sha1 with 32 bytes"),
        (vec![(AlgId(0x0042), &ok[..])], "unknown algorithm"),
        (
            vec![(AlgId::SHA256, &ok[..]), (AlgId::SHA256, &ok[..])],
            "bank twice",
        ),
    ] {
        let e = pcr_extend_command(12, &digests).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidArgument {
                    field: "digests",
                    ..
                }
            ),
            "{why}: {e}"
        );
    }
    let e = pcr_extend_command(32, &[(AlgId::SHA256, &ok)]).unwrap_err();
    assert!(
        matches!(e, Error::InvalidArgument { field: "pcr", .. }),
        "{e}"
    );
    assert!(pcr_read_command(40, AlgId::SHA256).is_err());
}

#[test]
fn active_banks() {
    let four = hex(FOUR_BANKS);
    assert_eq!(
        parse_active_pcr_banks(&four).unwrap(),
        vec![AlgId::SHA1, AlgId::SHA256, AlgId::SHA384, AlgId::SHA512]
    );
    let sha256_only = hex(
        "8001 0000002b 00000000 00 00000005 00000004 0004 03 000000 000b 03 ffffff 000c 03 000000 000d 03 000000",
    );
    assert_eq!(
        parse_active_pcr_banks(&sha256_only).unwrap(),
        vec![AlgId::SHA256]
    );
    // A selection with a single bit set anywhere makes the bank active.
    let one_bit = hex("8001 00000019 00000000 00 00000005 00000001 000c 03 000080");
    assert_eq!(
        parse_active_pcr_banks(&one_bit).unwrap(),
        vec![AlgId::SHA384]
    );
    every_prefix_fails(&four, |b| parse_active_pcr_banks(b).map(drop));

    let mut t = tpm(vec![four.clone()]);
    assert_eq!(t.active_pcr_banks().unwrap().len(), 4);
    assert_eq!(t.transport().commands[0], get_pcr_banks_command().unwrap());
}

#[test]
fn capability_lies_are_rejected() {
    // count says 0x7fffffff banks.
    let e = parse_pcr_banks(&hex("8001 00000013 00000000 00 00000005 7fffffff")).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Malformed {
                field: "TPML_PCR_SELECTION.count",
                problem: Problem::TooMany { .. },
                ..
            }
        ),
        "{e}"
    );
    // sizeofSelect 200.
    let e =
        parse_pcr_banks(&hex("8001 00000016 00000000 00 00000005 00000001 000b c8")).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Malformed {
                field: "TPMS_PCR_SELECTION.sizeofSelect",
                ..
            }
        ),
        "{e}"
    );
    // sizeofSelect 3 with 2 bytes left.
    let e = parse_pcr_banks(&hex(
        "8001 00000018 00000000 00 00000005 00000001 000b 03 ffff",
    ))
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Malformed {
                problem: Problem::Truncated {
                    needed: 3,
                    remaining: 2
                },
                ..
            }
        ),
        "{e}"
    );
    // The answer to another capability.
    let e = parse_pcr_banks(&hex("8001 00000013 00000000 00 00000006 00000000")).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Malformed {
                field: "capability",
                ..
            }
        ),
        "{e}"
    );
    // A bank listed twice.
    let e = parse_pcr_banks(&hex(
        "8001 0000001f 00000000 00 00000005 00000002 000b 03 ffffff 000b 03 000000",
    ))
    .unwrap_err();
    assert!(e.to_string().contains("twice"), "{e}");
    // responseSize lies (larger, smaller than the bytes).
    let mut four = hex(FOUR_BANKS);
    four[5] = 0x2c;
    let e = parse_pcr_banks(&four).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Malformed {
                field: "responseSize",
                ..
            }
        ),
        "{e}"
    );
    four[5] = 0x2a;
    assert!(parse_pcr_banks(&four).is_err());
    // Over the response size limit.
    let mut huge = resp(0x8001, 0, &vec![0; MAX_RESPONSE_SIZE]);
    huge.truncate(MAX_RESPONSE_SIZE + 1);
    assert!(matches!(
        parse_pcr_banks(&huge).unwrap_err(),
        Error::Malformed {
            field: "responseSize",
            ..
        }
    ));
}

#[test]
fn pcr_read() {
    let digest = [0x5au8; 32];
    let r = pcr_read_resp(0x000b, &[0, 0x10, 0], &digest);
    assert_eq!(r.len(), 62, "the recipe's size");
    assert_eq!(parse_pcr_read(&r, 12, AlgId::SHA256).unwrap(), digest);
    every_prefix_fails(&r, |b| parse_pcr_read(b, 12, AlgId::SHA256).map(drop));

    // The inactive-bank answer from the recipe: rc 0, empty selection, no digest.
    let inactive = hex("8001 0000001c 00000000 00000037 00000001 0004 03 000000 00000000");
    let e = parse_pcr_read(&inactive, 12, AlgId::SHA1).unwrap_err();
    assert!(
        matches!(
            e,
            Error::PcrNotReturned {
                pcr: 12,
                alg: AlgId::SHA1
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "TPM2_PCR_Read: the TPM returned no value for PCR 12 in bank sha1 (bank not active)"
    );

    // Another PCR, another bank, two PCRs, a digest of the wrong size: all rejected.
    for (bad, field) in [
        (
            pcr_read_resp(0x000b, &[0, 0x20, 0], &digest),
            "pcrSelectionOut.pcrSelect",
        ),
        (
            pcr_read_resp(0x000b, &[0, 0x30, 0], &digest),
            "pcrSelectionOut.pcrSelect",
        ),
        (
            pcr_read_resp(0x000c, &[0, 0x10, 0], &[0; 48]),
            "pcrSelectionOut.hash",
        ),
        (
            pcr_read_resp(0x000b, &[0, 0x10, 0], &[0; 20]),
            "pcrValues.digests",
        ),
    ] {
        let e = parse_pcr_read(&bad, 12, AlgId::SHA256).unwrap_err();
        assert!(
            matches!(e, Error::Malformed { field: f, .. } if f == field),
            "{field}: {e}"
        );
    }
    // A digest TPM2B longer than any digest.
    let mut lying = pcr_read_resp(0x000b, &[0, 0x10, 0], &digest);
    lying[28..30].copy_from_slice(&0xffffu16.to_be_bytes());
    let e = parse_pcr_read(&lying, 12, AlgId::SHA256).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Malformed {
                field: "TPML_DIGEST.digests",
                problem: Problem::TooLarge {
                    len: 65535,
                    max: 64
                },
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn pcr_extend_response() {
    let ok = hex("8002 00000013 00000000 00000000 0000 01 0000");
    assert!(parse_pcr_extend(&ok).is_ok());
    every_prefix_fails(&ok, parse_pcr_extend);
    // parameterSize larger than what follows.
    let lying = hex("8002 00000013 00000000 000000ff 0000 01 0000");
    let e = parse_pcr_extend(&lying).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Malformed {
                field: "parameterSize",
                ..
            }
        ),
        "{e}"
    );
    // Session nonce size running past the end.
    let lying = hex("8002 00000013 00000000 00000000 0010 01 0000");
    assert!(parse_pcr_extend(&lying).is_err());
    // A success answered without sessions to a command with sessions.
    let e = parse_pcr_extend(&hex("8001 0000000a 00000000")).unwrap_err();
    assert!(matches!(e, Error::Malformed { field: "tag", .. }), "{e}");

    let mut t = tpm(vec![ok]);
    t.pcr_extend(12, &[(AlgId::SHA256, &[7u8; 32])]).unwrap();
}

#[test]
fn tpm_errors_are_decoded() {
    let e = parse_pcr_extend(&resp(0x8001, 0x0000_0149, &[])).unwrap_err();
    assert_eq!(e.response_code(), Some(ResponseCode::NV_AUTHORIZATION));
    assert_eq!(
        e.to_string(),
        "TPM2_PCR_Extend: the TPM answered TPM_RC_NV_AUTHORIZATION [0x00000149]"
    );
    // A TPM 1.2-style answer to a bad tag.
    let e = parse_startup(&resp(0x00c4, 0x1e, &[])).unwrap_err();
    assert!(e.to_string().contains("TPM 1.2 code"), "{e}");
    let e = parse_startup(&resp(0x8001, 0x100, &[])).unwrap_err();
    assert_eq!(e.response_code(), Some(ResponseCode::INITIALIZE));
}

#[test]
fn transport_errors_name_the_command() {
    let mut t = tpm(vec![]);
    let e = t.pcr_read(12, AlgId::SHA256).unwrap_err();
    assert!(matches!(
        e,
        Error::Transport {
            command: CommandCode::PCR_READ,
            ..
        }
    ));
    assert_eq!(e.to_string(), "TPM2_PCR_Read: no response queued");
}

#[test]
fn retry_is_sent_again() {
    let digest = [9u8; 32];
    let retry = resp(0x8001, 0x922, &[]);
    let mut t = tpm(vec![
        retry.clone(),
        retry.clone(),
        pcr_read_resp(0x000b, &[0, 0x10, 0], &digest),
    ]);
    assert_eq!(t.pcr_read(12, AlgId::SHA256).unwrap(), digest);
    assert_eq!(t.transport().commands.len(), 3);
    // Not forever.
    let mut t = tpm(vec![retry; 10]);
    let e = t.pcr_read(12, AlgId::SHA256).unwrap_err();
    assert_eq!(e.response_code(), Some(ResponseCode::RETRY));
    assert_eq!(t.transport().commands.len(), 5);
}

#[test]
fn nv_read_public() {
    let index = 0x0142_0001;
    let r = resp(
        0x8001,
        0,
        &nv_public_body(index, TPMA_NV_AUTHREAD | TPMA_NV_WRITTEN, 300),
    );
    let p = parse_nv_read_public(&r, index).unwrap();
    assert_eq!(p.index, index);
    assert_eq!(p.name_alg, AlgId::SHA256);
    assert_eq!(p.data_size, 300);
    assert!(p.written());
    assert_eq!(p.name.len(), 34);
    every_prefix_fails(&r, |b| parse_nv_read_public(b, index).map(drop));

    // The public area of another index.
    let e = parse_nv_read_public(&r, index + 1).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Malformed {
                field: "nvPublic.nvIndex",
                ..
            }
        ),
        "{e}"
    );
    // TPM2B_NV_PUBLIC.size larger and smaller than the structure.
    let mut body = nv_public_body(index, 0, 1);
    body[1] += 1;
    assert!(parse_nv_read_public(&resp(0x8001, 0, &body), index).is_err());
    body[1] -= 2;
    let e = parse_nv_read_public(&resp(0x8001, 0, &body), index).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Malformed {
                field: "nvPublic.dataSize",
                ..
            }
        ),
        "{e}"
    );

    // Undefined: TPM_RC_HANDLE for handle 1 -> None; any other error stays an error.
    let mut t = tpm(vec![resp(0x8001, 0x18b, &[]), resp(0x8001, 0x28b, &[])]);
    assert_eq!(t.nv_read_public(index).unwrap(), None);
    assert!(t.nv_read_public(index).is_err());
}

#[test]
fn nv_read_all_in_chunks() {
    let index = 0x0142_0001;
    let content: Vec<u8> = (0..10).collect();
    let mut t = tpm(vec![
        resp(
            0x8001,
            0,
            &nv_public_body(index, TPMA_NV_AUTHREAD | TPMA_NV_WRITTEN, 10),
        ),
        properties_resp(&[(TPM_PT_NV_BUFFER_MAX, 4)]),
        session_resp(&[&[0, 4][..], &content[0..4]].concat()),
        session_resp(&[&[0, 4][..], &content[4..8]].concat()),
        session_resp(&[&[0, 2][..], &content[8..10]].concat()),
    ]);
    assert_eq!(t.nv_read_all(index).unwrap(), Some(content));
    let cmds = &t.transport().commands;
    assert_eq!(cmds.len(), 5);
    // size, offset at the end of each NV_Read.
    assert_eq!(&cmds[2][31..], &[0, 4, 0, 0]);
    assert_eq!(&cmds[3][31..], &[0, 4, 0, 4]);
    assert_eq!(&cmds[4][31..], &[0, 2, 0, 8]);
    // Authorised by the index itself.
    assert_eq!(&cmds[2][10..18], &hex("01420001 01420001"));

    // Absent.
    let mut t = tpm(vec![resp(0x8001, 0x18b, &[])]);
    assert_eq!(t.nv_read_all(index).unwrap(), None);
}

#[test]
fn nv_buffer_max_defaults_and_caps() {
    // The TPM lists the next property it has: NV_BUFFER_MAX is not among them.
    let mut t = tpm(vec![properties_resp(&[(TPM_PT_NV_BUFFER_MAX + 1, 7)])]);
    assert_eq!(t.nv_buffer_max().unwrap(), DEFAULT_NV_BUFFER_MAX);
    assert_eq!(t.nv_buffer_max().unwrap(), DEFAULT_NV_BUFFER_MAX, "cached");
    assert_eq!(t.transport().commands.len(), 1);
    let mut t = tpm(vec![properties_resp(&[])]);
    assert_eq!(t.nv_buffer_max().unwrap(), DEFAULT_NV_BUFFER_MAX);
    let mut t = tpm(vec![properties_resp(&[(TPM_PT_NV_BUFFER_MAX, 0x10_0000)])]);
    assert_eq!(t.nv_buffer_max().unwrap(), MAX_NV_CHUNK);
    every_prefix_fails(&properties_resp(&[(TPM_PT_NV_BUFFER_MAX, 1024)]), |b| {
        parse_tpm_property(b, TPM_PT_NV_BUFFER_MAX).map(drop)
    });
}

#[test]
fn nv_read_response() {
    let r = session_resp(&[0, 3, b'a', b'b', b'c']);
    assert_eq!(parse_nv_read(&r, 3).unwrap(), b"abc");
    every_prefix_fails(&r, |b| parse_nv_read(b, 3).map(drop));
    // Fewer or more bytes than asked for.
    assert!(matches!(
        parse_nv_read(&r, 4).unwrap_err(),
        Error::Malformed { field: "data", .. }
    ));
    assert!(matches!(
        parse_nv_read(&r, 2).unwrap_err(),
        Error::Malformed {
            field: "data",
            problem: Problem::TooLarge { .. },
            ..
        }
    ));
    let e = parse_nv_read(&resp(0x8001, 0x14a, &[]), 3).unwrap_err();
    assert_eq!(
        e.to_string(),
        "TPM2_NV_Read: the TPM answered TPM_RC_NV_UNINITIALIZED [0x0000014a]"
    );
}

#[test]
fn get_random_and_startup() {
    let r = resp(0x8001, 0, &[0, 4, 1, 2, 3, 4]);
    assert_eq!(parse_get_random(&r, 8).unwrap(), [1, 2, 3, 4]);
    assert!(parse_get_random(&r, 3).is_err(), "more than asked for");
    every_prefix_fails(&r, |b| parse_get_random(b, 8).map(drop));
    let ok = resp(0x8001, 0, &[]);
    every_prefix_fails(&ok, parse_startup);
}

#[test]
fn response_handles() {
    let r = resp(0x8001, 0, &[0x80, 0, 0, 1, 0xaa]);
    let mut opened = Response::open(CommandCode(0x131), &r, 1, 0).unwrap();
    assert_eq!(opened.handles, [0x8000_0001]);
    assert_eq!(opened.params.u8("x").unwrap(), 0xaa);
    assert!(Response::open(CommandCode(0x131), &r[..12], 1, 0).is_err());
    let e = opened.params.u8("x").unwrap_err();
    assert_eq!(
        e.to_string(),
        "TPM2_CreatePrimary response: x: needs 1 bytes, 0 left"
    );
}

// ---- keys: CreatePrimary, ReadPublic, sessions, ActivateCredential, Quote ----

use crate::keys::*;

/// The TCG EK Credential Profile's template L-1, field by field.
const EK_TEMPLATE: &str = "0001 000b 000300b2 0020
    837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa
    0006 0080 0043 0010 0800 00000000 0100";

/// A successful TPM_ST_SESSIONS response with `handles`, `params` and `sessions` empty
/// session answers.
fn sessions_resp(handles: &[u32], params: &[u8], sessions: usize) -> Vec<u8> {
    let mut body = Vec::new();
    for h in handles {
        body.extend_from_slice(&h.to_be_bytes());
    }
    body.extend_from_slice(&(params.len() as u32).to_be_bytes());
    body.extend_from_slice(params);
    for _ in 0..sessions {
        body.extend_from_slice(&[0, 0, 1, 0, 0]);
    }
    resp(0x8002, 0, &body)
}

fn tpm2b(bytes: &[u8]) -> Vec<u8> {
    [&(bytes.len() as u16).to_be_bytes()[..], bytes].concat()
}

/// The public area a TPM makes from `template`: the template with `unique` filled in.
fn made_public(template: &Template) -> Vec<u8> {
    let area = template.public_area();
    let mut made = if area.starts_with(&[0x00, 0x01]) {
        let mut v = area[..area.len() - 258].to_vec();
        v.extend_from_slice(&tpm2b(&[0xa5; 256]));
        v
    } else {
        let mut v = area[..area.len() - 4 - AK_LABEL.len()].to_vec();
        v.extend_from_slice(&tpm2b(&[0x11; 32]));
        v.extend_from_slice(&tpm2b(&[0x22; 32]));
        v
    };
    made = tpm2b(&made);
    made
}

/// CreatePrimary parameters: outPublic, creationData, creationHash, creationTicket, name.
fn create_primary_params(public: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = public.to_vec();
    p.extend_from_slice(&tpm2b(&[0; 10])); // creationData (opaque here)
    p.extend_from_slice(&tpm2b(&[0x33; 32])); // creationHash
    p.extend_from_slice(&hex("8021 40000001"));
    p.extend_from_slice(&tpm2b(&[0x44; 32]));
    p.extend_from_slice(&tpm2b(name));
    p
}

fn sha256_name() -> Vec<u8> {
    [&[0x00, 0x0b][..], &[0x55; 32]].concat()
}

#[test]
fn templates_are_the_documented_bytes() {
    let ek = Template::ek_rsa2048();
    assert_eq!(ek.hierarchy(), TPM_RH_ENDORSEMENT);
    let mut want = hex(EK_TEMPLATE);
    want.resize(want.len() + 256, 0);
    assert_eq!(ek.public_area(), want);
    let ak = Template::ak_p256();
    assert_eq!(ak.hierarchy(), TPM_RH_OWNER);
    let mut want = hex("0023 000b 00050072 0000 0010 0018 000b 0003 0010 0013");
    want.extend_from_slice(b"ST-POC-ECC-AK-LABEL");
    want.extend_from_slice(&[0, 0]);
    assert_eq!(ak.public_area(), want);

    let c = create_primary_command(&ak).unwrap();
    let mut want =
        hex("8002 00000000 00000131 40000001 00000009 40000009 0000 01 0000 0004 0000 0000");
    want.extend_from_slice(&tpm2b(&ak.public_area()));
    want.extend_from_slice(&hex("0000 00000000"));
    let n = want.len() as u32;
    want[2..6].copy_from_slice(&n.to_be_bytes());
    assert_eq!(c, want);
}

#[test]
fn create_primary_response() {
    for template in [Template::ek_rsa2048(), Template::ak_p256()] {
        let public = made_public(&template);
        let r = sessions_resp(
            &[0x8000_0000],
            &create_primary_params(&public, &sha256_name()),
            1,
        );
        let key = parse_create_primary(&r, &template).unwrap();
        assert_eq!(key.handle, 0x8000_0000);
        assert_eq!(key.public, public);
        assert_eq!(key.public_area(), &public[2..]);
        assert_eq!(key.name, sha256_name());
        every_prefix_fails(&r, |b| parse_create_primary(b, &template).map(drop));
        // The response to one template is not a key of the other.
        let other = if template == Template::ak_p256() {
            Template::ek_rsa2048()
        } else {
            Template::ak_p256()
        };
        assert!(parse_create_primary(&r, &other).is_err());
    }
}

#[test]
fn create_primary_rejects_a_key_other_than_asked_for() {
    let template = Template::ak_p256();
    let good = made_public(&template);
    let check = |public: &[u8], name: &[u8], field: &str| {
        let r = sessions_resp(&[0x8000_0000], &create_primary_params(public, name), 1);
        match parse_create_primary(&r, &template) {
            Err(Error::Malformed { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{other:?}"),
        }
    };
    // Not restricted (attributes 0x00040072): a key that could sign anything.
    let mut unrestricted = good.clone();
    unrestricted[2 + 4..2 + 8].copy_from_slice(&0x0004_0072u32.to_be_bytes());
    check(&unrestricted, &sha256_name(), "outPublic");
    // A point of the wrong size.
    let mut short = good[..good.len() - 34].to_vec();
    short.extend_from_slice(&tpm2b(&[0x22; 31]));
    let n = (short.len() - 2) as u16;
    short[0..2].copy_from_slice(&n.to_be_bytes());
    check(&short, &sha256_name(), "outPublic.unique.ecc.y");
    // A name of another algorithm or length than the key's nameAlg.
    check(&good, &[&[0x00, 0x04][..], &[0x55; 32]].concat(), "name");
    check(&good, &[&[0x00, 0x0b][..], &[0x55; 20]].concat(), "name");
}

#[test]
fn read_public_and_flush() {
    assert_eq!(
        read_public_command(0x8000_0001).unwrap(),
        hex("8001 0000000e 00000173 80000001")
    );
    let public = made_public(&Template::ek_rsa2048());
    let mut params = public.clone();
    params.extend_from_slice(&tpm2b(&sha256_name()));
    params.extend_from_slice(&tpm2b(&sha256_name()));
    let r = resp(0x8001, 0, &params);
    let o = parse_read_public(&r).unwrap();
    assert_eq!((o.public, o.name), (public, sha256_name()));
    every_prefix_fails(&r, |b| parse_read_public(b).map(drop));
    // flushHandle is a parameter, not a handle.
    assert_eq!(
        flush_context_command(0x0300_0000).unwrap(),
        hex("8001 0000000e 00000165 03000000")
    );
    every_prefix_fails(&resp(0x8001, 0, &[]), parse_flush_context);
}

#[test]
fn policy_session_commands() {
    let nonce = [7u8; 16];
    let c = start_policy_session_command(&nonce).unwrap();
    let mut want = hex("8001 00000000 00000176 40000007 40000007 0010");
    want.extend_from_slice(&nonce);
    want.extend_from_slice(&hex("0000 01 0010 000b"));
    let n = want.len() as u32;
    want[2..6].copy_from_slice(&n.to_be_bytes());
    assert_eq!(c, want);
    for bad in [&[0u8; 15][..], &[0u8; 33]] {
        assert!(matches!(
            start_policy_session_command(bad),
            Err(Error::InvalidArgument {
                field: "nonceCaller",
                ..
            })
        ));
    }
    let mut body = hex("03000000");
    body.extend_from_slice(&tpm2b(&[9; 32]));
    let r = resp(0x8001, 0, &body);
    let s = parse_start_auth_session(&r).unwrap();
    assert_eq!((s.handle, s.nonce_tpm), (0x0300_0000, vec![9; 32]));
    every_prefix_fails(&r, |b| parse_start_auth_session(b).map(drop));
    // An HMAC session (0x02...) is not the policy session asked for.
    let mut hmac = body.clone();
    hmac[0] = 0x02;
    assert!(parse_start_auth_session(&resp(0x8001, 0, &hmac)).is_err());

    let c = policy_secret_endorsement_command(0x0300_0000).unwrap();
    assert_eq!(
        c,
        hex(
            "8002 00000029 00000151 4000000b 03000000 00000009 40000009 0000 01 0000 0000 0000 0000 00000000"
        )
    );
    let r = sessions_resp(&[], &hex("0000 8023 40000007 0000"), 1);
    every_prefix_fails(&r, parse_policy_secret);
}

#[test]
fn activate_credential_command_and_response() {
    let (id, enc) = (tpm2b(&[1; 68]), tpm2b(&[2; 256]));
    let c = activate_credential_command(0x8000_0001, 0x8000_0000, 0x0300_0000, &id, &enc).unwrap();
    // Two sessions: the AK's password, then the EK's policy session without continueSession.
    let mut want = hex(
        "8002 00000000 00000147 80000001 80000000 00000012 40000009 0000 01 0000 03000000 0000 00 0000",
    );
    want.extend_from_slice(&id);
    want.extend_from_slice(&enc);
    let n = want.len() as u32;
    want[2..6].copy_from_slice(&n.to_be_bytes());
    assert_eq!(c, want);
    let r = sessions_resp(&[], &tpm2b(&[3; 32]), 2);
    assert_eq!(parse_activate_credential(&r).unwrap(), [3; 32]);
    every_prefix_fails(&r, |b| parse_activate_credential(b).map(drop));
    // One session answer where two sessions were sent.
    assert!(parse_activate_credential(&sessions_resp(&[], &tpm2b(&[3; 32]), 1)).is_err());
}

#[test]
fn activate_credential_rejects_blobs_that_are_not_one_tpm2b() {
    let (id, enc) = (tpm2b(&[1; 68]), tpm2b(&[2; 256]));
    let cases: [(&[u8], &[u8], &str); 5] = [
        (&id[..id.len() - 1], &enc, "credentialBlob"),
        (&[id.as_slice(), &[0]].concat(), &enc, "credentialBlob"),
        (&id, &[0, 0], "secret"),
        (&id, &tpm2b(&[2; 513]), "secret"),
        (&tpm2b(&[1; 257]), &enc, "credentialBlob"),
    ];
    for (i, e, field) in cases {
        match activate_credential_command(1, 2, 3, i, e) {
            Err(Error::InvalidArgument { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{other:?}"),
        }
        // The client refuses before it starts a session on the TPM.
        let mut t = tpm(vec![]);
        assert!(t.activate_credential(1, 2, i, e).is_err());
        assert!(t.transport().commands.is_empty());
    }
}

#[test]
fn activate_credential_flushes_the_session_after_a_failure() {
    let (id, enc) = (tpm2b(&[1; 68]), tpm2b(&[2; 256]));
    let random = resp(0x8001, 0, &tpm2b(&[5; 16]));
    let mut session = hex("03000001");
    session.extend_from_slice(&tpm2b(&[9; 32]));
    let session = resp(0x8001, 0, &session);
    let secret = sessions_resp(&[], &hex("0000 8023 40000007 0000"), 1);
    // TPM_RC_INTEGRITY + parameter 1.
    let refused = resp(0x8001, 0x1df, &[]);
    let flushed = resp(0x8001, 0, &[]);
    let mut t = tpm(vec![
        random.clone(),
        session.clone(),
        secret.clone(),
        refused,
        flushed,
    ]);
    let e = t
        .activate_credential(0x8000_0001, 0x8000_0000, &id, &enc)
        .unwrap_err();
    assert_eq!(e.response_code(), Some(ResponseCode(0x1df)));
    let sent = &t.transport().commands;
    let codes: Vec<u32> = sent
        .iter()
        .map(|c| u32::from_be_bytes(c[6..10].try_into().unwrap()))
        .collect();
    assert_eq!(codes, [0x17b, 0x176, 0x151, 0x147, 0x165]);
    assert_eq!(sent[4], flush_context_command(0x0300_0001).unwrap());
    // The session nonce is the TPM's random bytes.
    assert_eq!(sent[1], start_policy_session_command(&[5; 16]).unwrap());

    // Success: the TPM flushed the session itself; nothing more is sent.
    let ok = sessions_resp(&[], &tpm2b(&[3; 32]), 2);
    let mut t = tpm(vec![random, session, secret, ok]);
    assert_eq!(
        t.activate_credential(0x8000_0001, 0x8000_0000, &id, &enc)
            .unwrap(),
        [3; 32]
    );
    assert_eq!(t.transport().commands.len(), 4);
}

/// A TPMS_ATTEST head (magic, type, signer, extraData) and some opaque rest.
fn attest(magic: u32, ty: u16, extra: &[u8]) -> Vec<u8> {
    let mut a = magic.to_be_bytes().to_vec();
    a.extend_from_slice(&ty.to_be_bytes());
    a.extend_from_slice(&tpm2b(&sha256_name()));
    a.extend_from_slice(&tpm2b(extra));
    a.extend_from_slice(&[0xcc; 40]);
    a
}

fn ecdsa_signature() -> Vec<u8> {
    let mut s = hex("0018 000b");
    s.extend_from_slice(&tpm2b(&[0x66; 32]));
    s.extend_from_slice(&tpm2b(&[0x77; 32]));
    s
}

fn quote_resp(attest: &[u8], signature: &[u8]) -> Vec<u8> {
    sessions_resp(&[], &[tpm2b(attest), signature.to_vec()].concat(), 1)
}

#[test]
fn quote_command_and_response() {
    let nonce = [0xab; 32];
    let c = quote_command(0x8000_0001, &nonce, AlgId::SHA256, &[0, 7, 12, 15]).unwrap();
    let mut want = hex("8002 00000000 00000158 80000001 00000009 40000009 0000 01 0000 0020");
    want.extend_from_slice(&nonce);
    want.extend_from_slice(&hex("0010 00000001 000b 03 81 90 00"));
    let n = want.len() as u32;
    want[2..6].copy_from_slice(&n.to_be_bytes());
    assert_eq!(c, want);

    let a = attest(TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE, &nonce);
    let r = quote_resp(&a, &ecdsa_signature());
    let q = parse_quote(&r, &nonce).unwrap();
    assert_eq!((q.attest, q.signature), (a.clone(), ecdsa_signature()));
    every_prefix_fails(&r, |b| parse_quote(b, &nonce).map(drop));
    let mut rsa = hex("0014 000b");
    rsa.extend_from_slice(&tpm2b(&[0x88; 256]));
    assert_eq!(
        parse_quote(&quote_resp(&a, &rsa), &nonce)
            .unwrap()
            .signature,
        rsa
    );
}

#[test]
fn quote_arguments_are_checked() {
    let field = |r: Result<Vec<u8>, Error>| match r {
        Err(Error::InvalidArgument { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        field(quote_command(1, &[0; 65], AlgId::SHA256, &[0])),
        "qualifyingData"
    );
    assert_eq!(
        field(quote_command(1, &[0; 32], AlgId::SHA256, &[])),
        "pcrs"
    );
    assert_eq!(
        field(quote_command(1, &[0; 32], AlgId::SHA256, &[32])),
        "pcrs"
    );
    // PCR 31: a 4-byte bitmap.
    let c = quote_command(1, &[], AlgId::SHA256, &[31]).unwrap();
    assert!(c.ends_with(&hex("000b 04 00 00 00 80")));
}

#[test]
fn quote_rejects_an_answer_to_another_question() {
    let nonce = [0xab; 32];
    let sig = ecdsa_signature();
    let field = |r: Vec<u8>| match parse_quote(&r, &nonce) {
        Err(Error::Malformed { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    // A replayed quote over another nonce.
    let other = attest(TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE, &[0xcd; 32]);
    assert_eq!(field(quote_resp(&other, &sig)), "quoted.extraData");
    // Not made by the TPM (no TPM_GENERATED_VALUE), or not a quote (a certify, 0x8017).
    let forged = attest(0x1234_5678, TPM_ST_ATTEST_QUOTE, &nonce);
    assert_eq!(field(quote_resp(&forged, &sig)), "quoted.magic");
    let certify = attest(TPM_GENERATED_VALUE, 0x8017, &nonce);
    assert_eq!(field(quote_resp(&certify, &sig)), "quoted.type");
    // No signature scheme of a signing key (TPM_ALG_NULL), or bytes after the signature.
    let good = attest(TPM_GENERATED_VALUE, TPM_ST_ATTEST_QUOTE, &nonce);
    assert_eq!(field(quote_resp(&good, &hex("0010"))), "signature.sigAlg");
    let long = [sig.as_slice(), &[0]].concat();
    assert_eq!(field(quote_resp(&good, &long)), "parameters");
}
