//! The UEFI variable store of an edk2/OVMF `*_VARS.fd` file, read and written offline: so a
//! fleet image or a test VM gets its `STHostConfig` and `STHostName` before its first boot.
//!
//! Layout (little-endian; uefi-tpm-recipe.md §4.2, edk2 `MdeModulePkg/Include/Guid/
//! VariableFormat.h` and `PiFirmwareVolume.h`):
//!
//! * firmware volume header: 16 zero bytes, the file system GUID (must be
//!   `EFI_SYSTEM_NV_DATA_FV_GUID`), `FvLength` u64 at 0x20, `_FVH` at 0x28, `HeaderLength` u16
//!   at 0x30;
//! * at `HeaderLength`, the variable store header: the format GUID (must be
//!   `gEfiAuthenticatedVariableGuid`, the layout OVMF uses), `Size` u32, `Format` 0x5A
//!   (formatted), `State` 0xFE (healthy), 6 reserved bytes;
//! * then, 4-byte aligned, one record per variable: a 60-byte authenticated variable header
//!   (`StartId` 0x55AA, `State`, attributes, monotonic count, time stamp, public-key index,
//!   `NameSize`, `DataSize`, vendor GUID), the UTF-16LE name with its NUL, the data. Free space is
//!   0xFF up to `HeaderLength + Size`.
//!
//! A record's `State` only ever loses bits (flash semantics): `0x3F` is a live variable,
//! `0x3E` one whose replacement was being written, anything with bit 1 clear (`0x3D`, `0x3C`)
//! deleted. Replacing a variable clears bit 1 of the old record and appends a new one, as the
//! firmware does; nothing else in the store is checksummed. The parser is bounded by the file:
//! every record is at least 60 bytes, every length is checked against the store's end.

use std::fmt;
use std::str::FromStr;

/// Largest variable store file accepted (OVMF's are 128 KiB, 528 KiB or 2 MiB).
pub const MAX_STORE_FILE_BYTES: usize = 64 << 20;

/// Largest record (header + name + data) written: OVMF's `PcdMaxVariableSize` for its 4 MiB
/// build (0x8400); the firmware ignores larger records. (The 2 MiB build allows 0x2000.)
pub const MAX_RECORD_BYTES: usize = 0x8400;

/// `EFI_SYSTEM_NV_DATA_FV_GUID` (fff12b8d-7696-4c8b-a985-2747075b4f50) as stored.
const NV_DATA_FV_GUID: [u8; 16] = [
    0x8d, 0x2b, 0xf1, 0xff, 0x96, 0x76, 0x8b, 0x4c, 0xa9, 0x85, 0x27, 0x47, 0x07, 0x5b, 0x4f, 0x50,
];
/// `gEfiAuthenticatedVariableGuid` (aaf32c78-947b-439a-a180-2e144ec37792) as stored.
const AUTH_VARIABLE_GUID: [u8; 16] = [
    0x78, 0x2c, 0xf3, 0xaa, 0x7b, 0x94, 0x9a, 0x43, 0xa1, 0x80, 0x2e, 0x14, 0x4e, 0xc3, 0x77, 0x92,
];
/// `gEfiVariableGuid`: the older, non-authenticated layout (not supported).
const PLAIN_VARIABLE_GUID: [u8; 16] = [
    0x16, 0x36, 0xcf, 0xdd, 0x75, 0x32, 0x64, 0x41, 0x98, 0xb6, 0xfe, 0x85, 0x70, 0x7f, 0xfe, 0x7d,
];
const STORE_HEADER: usize = 28;
const RECORD_HEADER: usize = 60;
const START_ID: [u8; 2] = [0xaa, 0x55];
const STATE_ADDED: u8 = 0x3f;
const STATE_ADDED_IN_TRANSITION: u8 = 0x3e;
const DELETED_BIT: u8 = 0x02;
/// Longest variable name accepted, in UTF-16 code units (edk2 has no fixed limit; real names
/// are short).
const MAX_NAME_UNITS: usize = 1024;

/// An EFI GUID, stored as the firmware stores it (first three fields little-endian).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EfiGuid([u8; 16]);

impl EfiGuid {
    /// The GUID with these bytes as stored.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }
    /// The bytes as stored.
    pub fn bytes(&self) -> [u8; 16] {
        self.0
    }
}

/// A GUID that is not `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hex digits).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid GUID {0:?}: expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")]
pub struct GuidError(pub String);

impl FromStr for EfiGuid {
    type Err = GuidError;
    fn from_str(s: &str) -> Result<Self, GuidError> {
        let bad = || GuidError(s.to_owned());
        let b = s.as_bytes();
        if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b.get(i) != Some(&b'-')) {
            return Err(bad());
        }
        let hex: String = s.chars().filter(|c| *c != '-').collect();
        let mut raw = [0u8; 16];
        for (i, byte) in raw.iter_mut().enumerate() {
            let pair = hex.get(2 * i..2 * i + 2).ok_or_else(bad)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        // Data1 (u32), Data2 (u16), Data3 (u16) are little-endian in memory; Data4 as written.
        raw[0..4].reverse();
        raw[4..6].reverse();
        raw[6..8].reverse();
        Ok(Self(raw))
    }
}

impl fmt::Display for EfiGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-",
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9]
        )?;
        b[10..].iter().try_for_each(|x| write!(f, "{x:02x}"))
    }
}

impl fmt::Debug for EfiGuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EfiGuid({self})")
    }
}

/// Why a variable store was rejected or could not take a variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VarStoreError {
    /// The file is larger than [`MAX_STORE_FILE_BYTES`].
    #[error("{size} bytes, over the {max}-byte limit for a variable store")]
    TooLarge {
        /// File size.
        size: usize,
        /// The cap.
        max: usize,
    },
    /// The firmware volume header is wrong (field named).
    #[error("not an edk2 variable store: firmware volume header: {0}")]
    FvHeader(String),
    /// The variable store header is wrong (field named).
    #[error("variable store header at offset {offset:#x}: {reason}")]
    StoreHeader {
        /// Where the header is.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// A variable record is malformed.
    #[error("variable record at offset {offset:#x}: {reason}")]
    Record {
        /// Where the record starts.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// The variable name is empty, too long, or contains NUL.
    #[error("invalid variable name {0:?}")]
    Name(String),
    /// The new record is over [`MAX_RECORD_BYTES`].
    #[error("variable {name}: record of {size} bytes, over the firmware's {max}-byte limit")]
    RecordTooLarge {
        /// The variable.
        name: String,
        /// Header + name + data.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not enough free space left in the store.
    #[error("variable {name}: store full: {needed} bytes needed, {free} free")]
    Full {
        /// The variable.
        name: String,
        /// Bytes the record needs.
        needed: usize,
        /// Bytes free.
        free: usize,
    },
}

/// One record of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarRecord {
    /// The variable name.
    pub name: String,
    /// The vendor GUID.
    pub guid: EfiGuid,
    /// `EFI_VARIABLE_*` attribute bits.
    pub attributes: u32,
    /// The raw `State` byte.
    pub state: u8,
    /// The value.
    pub data: Vec<u8>,
    /// Offset of the record in the file.
    pub offset: usize,
}

impl VarRecord {
    /// Whether the firmware treats this record as the variable's current value.
    pub fn is_live(&self) -> bool {
        matches!(self.state, STATE_ADDED | STATE_ADDED_IN_TRANSITION)
    }
}

/// A parsed variable store file, which can take new variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarStore {
    bytes: Vec<u8>,
    records: Vec<VarRecord>,
    /// First byte after the last record (aligned): where the next record goes.
    free: usize,
    /// End of the variable store (`HeaderLength + Size`).
    end: usize,
}

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(usize::from(u16::from_le_bytes([s[0], s[1]])))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let s: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(s))
}

fn align4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|v| v & !3)
}

fn utf16_name(name: &str) -> Result<Vec<u8>, VarStoreError> {
    let units: Vec<u16> = name.encode_utf16().collect();
    if units.is_empty() || units.len() > MAX_NAME_UNITS || units.contains(&0) {
        return Err(VarStoreError::Name(name.to_owned()));
    }
    Ok(units
        .into_iter()
        .chain([0])
        .flat_map(u16::to_le_bytes)
        .collect())
}

impl VarStore {
    /// Parses a `*_VARS.fd` file (the whole file, as QEMU's pflash unit 1 takes it).
    pub fn parse(bytes: Vec<u8>) -> Result<Self, VarStoreError> {
        if bytes.len() > MAX_STORE_FILE_BYTES {
            return Err(VarStoreError::TooLarge {
                size: bytes.len(),
                max: MAX_STORE_FILE_BYTES,
            });
        }
        let fv = |r: &str| VarStoreError::FvHeader(r.to_owned());
        if bytes.get(0x28..0x2c) != Some(b"_FVH") {
            return Err(fv("no _FVH signature at 0x28"));
        }
        if bytes.get(0x10..0x20) != Some(&NV_DATA_FV_GUID[..]) {
            return Err(fv(
                "FileSystemGuid is not EFI_SYSTEM_NV_DATA_FV_GUID (not a variable store)",
            ));
        }
        let fv_len = u64_at(&bytes, 0x20).ok_or_else(|| fv("truncated"))?;
        if usize::try_from(fv_len).map_or(true, |l| l > bytes.len()) {
            return Err(fv(&format!(
                "FvLength {fv_len:#x} is larger than the file ({:#x})",
                bytes.len()
            )));
        }
        let store = u16_at(&bytes, 0x30).ok_or_else(|| fv("truncated"))?;
        let sh = |reason: String| VarStoreError::StoreHeader {
            offset: store,
            reason,
        };
        let guid = bytes
            .get(store..store + 16)
            .ok_or_else(|| sh("truncated".into()))?;
        if guid == PLAIN_VARIABLE_GUID {
            return Err(sh(
                "non-authenticated variable store (gEfiVariableGuid): only the authenticated \
                 layout OVMF uses is supported"
                    .into(),
            ));
        }
        if guid != AUTH_VARIABLE_GUID {
            return Err(sh("format GUID is not gEfiAuthenticatedVariableGuid".into()));
        }
        let size = u32_at(&bytes, store + 16).ok_or_else(|| sh("truncated".into()))?;
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| store.checked_add(s))
            .filter(|&e| e <= bytes.len() && e >= store + STORE_HEADER)
            .ok_or_else(|| sh(format!("Size {size:#x} does not fit the file")))?;
        match (bytes.get(store + 20), bytes.get(store + 21)) {
            (Some(0x5a), Some(0xfe)) => {}
            (Some(f), Some(s)) => {
                return Err(sh(format!(
                    "Format {f:#04x} / State {s:#04x}, expected 0x5a (formatted) / 0xfe (healthy)"
                )));
            }
            _ => return Err(sh("truncated".into())),
        }
        let mut records = Vec::new();
        let mut at = align4(store + STORE_HEADER).ok_or_else(|| sh("truncated".into()))?;
        while at + RECORD_HEADER <= end && bytes.get(at..at + 2) == Some(&START_ID[..]) {
            let rec = |reason: String| VarStoreError::Record { offset: at, reason };
            let state = bytes.get(at + 2).copied().unwrap_or(0xff);
            let attributes = u32_at(&bytes, at + 4).ok_or_else(|| rec("truncated".into()))?;
            let name_size = u32_at(&bytes, at + 36).ok_or_else(|| rec("truncated".into()))?;
            let data_size = u32_at(&bytes, at + 40).ok_or_else(|| rec("truncated".into()))?;
            let guid: [u8; 16] = bytes
                .get(at + 44..at + 60)
                .and_then(|g| g.try_into().ok())
                .ok_or_else(|| rec("truncated".into()))?;
            let (name_size, data_size) = (name_size as usize, data_size as usize);
            let name_end = (at + RECORD_HEADER)
                .checked_add(name_size)
                .filter(|&e| e <= end)
                .ok_or_else(|| rec(format!("NameSize {name_size} runs past the store")))?;
            let data_end = name_end
                .checked_add(data_size)
                .filter(|&e| e <= end)
                .ok_or_else(|| rec(format!("DataSize {data_size} runs past the store")))?;
            let raw_name = bytes.get(at + RECORD_HEADER..name_end).unwrap_or_default();
            let name = decode_name(raw_name).map_err(rec)?;
            records.push(VarRecord {
                name,
                guid: EfiGuid(guid),
                attributes,
                state,
                data: bytes.get(name_end..data_end).unwrap_or_default().to_vec(),
                offset: at,
            });
            at = align4(data_end).ok_or_else(|| rec("truncated".into()))?;
        }
        let free = at.min(end);
        if let Some(i) = bytes
            .get(free..end)
            .and_then(|f| f.iter().position(|&b| b != 0xff))
        {
            return Err(VarStoreError::Record {
                offset: free + i,
                reason: "neither a variable record nor free space (0xFF)".into(),
            });
        }
        Ok(Self {
            bytes,
            records,
            free,
            end,
        })
    }

    /// Every record, deleted ones included, in store order.
    pub fn records(&self) -> &[VarRecord] {
        &self.records
    }

    /// The live value of `name` under `guid`.
    pub fn get(&self, name: &str, guid: &EfiGuid) -> Option<&VarRecord> {
        self.records
            .iter()
            .rev()
            .find(|r| r.is_live() && r.name == name && r.guid == *guid)
    }

    /// Bytes left for new records.
    pub fn free_bytes(&self) -> usize {
        self.end - self.free
    }

    /// Sets `name` under `guid`: marks every live record of it deleted and appends a new one,
    /// as the firmware does on `SetVariable`. Time-based authenticated variables are not
    /// supported (their fields are written as zero), which suits the ST variables (NV|BS|RT).
    pub fn set(
        &mut self,
        name: &str,
        guid: &EfiGuid,
        attributes: u32,
        data: &[u8],
    ) -> Result<(), VarStoreError> {
        let name16 = utf16_name(name)?;
        let size = RECORD_HEADER + name16.len() + data.len();
        if size > MAX_RECORD_BYTES {
            return Err(VarStoreError::RecordTooLarge {
                name: name.to_owned(),
                size,
                max: MAX_RECORD_BYTES,
            });
        }
        let needed = align4(size).unwrap_or(usize::MAX);
        if needed > self.free_bytes() {
            return Err(VarStoreError::Full {
                name: name.to_owned(),
                needed,
                free: self.free_bytes(),
            });
        }
        // Sizes below MAX_RECORD_BYTES fit u32.
        let as_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
        let mut rec = Vec::with_capacity(size);
        rec.extend_from_slice(&START_ID);
        rec.push(STATE_ADDED);
        rec.push(0);
        rec.extend_from_slice(&attributes.to_le_bytes());
        rec.extend_from_slice(&[0; 8 + 16 + 4]); // MonotonicCount, TimeStamp, PubKeyIndex
        rec.extend_from_slice(&as_u32(name16.len()));
        rec.extend_from_slice(&as_u32(data.len()));
        rec.extend_from_slice(&guid.0);
        rec.extend_from_slice(&name16);
        rec.extend_from_slice(data);

        for r in self
            .records
            .iter_mut()
            .filter(|r| r.is_live() && r.name == name && r.guid == *guid)
        {
            r.state &= !DELETED_BIT;
            if let Some(b) = self.bytes.get_mut(r.offset + 2) {
                *b = r.state;
            }
        }
        let at = self.free;
        if let Some(slot) = self.bytes.get_mut(at..at + rec.len()) {
            slot.copy_from_slice(&rec);
        }
        self.records.push(VarRecord {
            name: name.to_owned(),
            guid: *guid,
            attributes,
            state: STATE_ADDED,
            data: data.to_vec(),
            offset: at,
        });
        self.free = (at + needed).min(self.end);
        Ok(())
    }

    /// The file bytes, with every change made.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

fn decode_name(raw: &[u8]) -> Result<String, String> {
    if raw.len() < 2 || !raw.len().is_multiple_of(2) || raw.len() > 2 * (MAX_NAME_UNITS + 1) {
        return Err(format!(
            "NameSize {} is not a valid UTF-16 name size",
            raw.len()
        ));
    }
    let units: Vec<u16> = raw
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    match units.split_last() {
        Some((0, name)) if !name.contains(&0) => {
            String::from_utf16(name).map_err(|_| "name is not valid UTF-16".to_owned())
        }
        _ => Err("name is not NUL-terminated (or has an inner NUL)".to_owned()),
    }
}

/// Fuzz entry: parse a variable store, set a variable, and re-parse the result, which must
/// hold it.
#[doc(hidden)]
pub fn fuzz_varstore(data: &[u8]) {
    let guid = EfiGuid([7; 16]);
    if let Ok(mut store) = VarStore::parse(data.to_vec()) {
        let _ = store.records().len();
        if store.set("Fuzz", &guid, 7, b"value").is_ok() {
            let again = VarStore::parse(store.into_bytes());
            assert!(again.is_ok_and(|s| s.get("Fuzz", &guid).is_some_and(|r| r.data == b"value")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ST: &str = "f401f2c1-b005-4be0-8cee-f2e5945bcbe7";

    /// A minimal store: FV header (0x48 bytes), store header, `size` bytes of store in all.
    fn empty_store(size: u32) -> Vec<u8> {
        let mut b = vec![0u8; 0x48];
        b[0x10..0x20].copy_from_slice(&NV_DATA_FV_GUID);
        let total = 0x48 + size as usize;
        b[0x20..0x28].copy_from_slice(&(total as u64).to_le_bytes());
        b[0x28..0x2c].copy_from_slice(b"_FVH");
        b[0x30..0x32].copy_from_slice(&0x48u16.to_le_bytes());
        b.extend_from_slice(&AUTH_VARIABLE_GUID);
        b.extend_from_slice(&size.to_le_bytes());
        b.extend_from_slice(&[0x5a, 0xfe, 0, 0, 0, 0, 0, 0]);
        b.resize(total, 0xff);
        b
    }

    #[test]
    fn guid_round_trips_in_mixed_endian() {
        let g: EfiGuid = ST.parse().unwrap();
        assert_eq!(
            g.bytes(),
            [
                0xc1, 0xf2, 0x01, 0xf4, 0x05, 0xb0, 0xe0, 0x4b, 0x8c, 0xee, 0xf2, 0xe5, 0x94, 0x5b,
                0xcb, 0xe7
            ]
        );
        assert_eq!(g.to_string(), ST);
        assert_eq!(
            "F401F2C1-B005-4BE0-8CEE-F2E5945BCBE7"
                .parse::<EfiGuid>()
                .unwrap(),
            g
        );
        for bad in [
            "",
            "f401f2c1b0054be08ceef2e5945bcbe7",
            "g401f2c1-b005-4be0-8cee-f2e5945bcbe7",
        ] {
            assert!(bad.parse::<EfiGuid>().is_err(), "{bad}");
        }
    }

    #[test]
    fn set_appends_and_replaces_like_the_firmware() {
        let guid: EfiGuid = ST.parse().unwrap();
        let mut s = VarStore::parse(empty_store(0x1000)).unwrap();
        assert!(s.records().is_empty());
        s.set("STHostConfig", &guid, 7, b"{\"a\":1}").unwrap();
        s.set("STHostName", &guid, 7, b"host.example").unwrap();
        s.set("STHostConfig", &guid, 7, b"{\"a\":2}").unwrap();
        let bytes = s.into_bytes();
        // First record right after the store header, in the layout the recipe records.
        assert_eq!(&bytes[0x64..0x68], &[0xaa, 0x55, 0x3d, 0x00]); // replaced: deleted
        assert_eq!(&bytes[0x68..0x6c], &7u32.to_le_bytes());
        assert_eq!(&bytes[0x64 + 36..0x64 + 40], &26u32.to_le_bytes()); // "STHostConfig\0"
        assert_eq!(&bytes[0x64 + 44..0x64 + 60], &guid.bytes());

        let again = VarStore::parse(bytes).unwrap();
        assert_eq!(again.records().len(), 3);
        assert_eq!(
            again.get("STHostConfig", &guid).unwrap().data,
            b"{\"a\":2}".to_vec()
        );
        assert_eq!(
            again.get("STHostName", &guid).unwrap().data,
            b"host.example".to_vec()
        );
        assert!(again.get("STHostName", &EfiGuid([0; 16])).is_none());
        assert_eq!(again.records().iter().filter(|r| r.is_live()).count(), 2);
        assert_eq!(again.records()[1].offset % 4, 0);
    }

    #[test]
    fn full_store_and_oversized_records_are_refused() {
        let guid: EfiGuid = ST.parse().unwrap();
        let mut s = VarStore::parse(empty_store(0x100)).unwrap();
        let err = s.set("Big", &guid, 7, &[0; 0x200]).unwrap_err();
        assert!(matches!(err, VarStoreError::Full { .. }), "{err}");
        let mut s = VarStore::parse(empty_store(0x10000)).unwrap();
        let err = s.set("Big", &guid, 7, &[0; MAX_RECORD_BYTES]).unwrap_err();
        assert!(matches!(err, VarStoreError::RecordTooLarge { .. }), "{err}");
        assert!(matches!(
            s.set("", &guid, 7, b"x"),
            Err(VarStoreError::Name(_))
        ));
        assert!(matches!(
            s.set("a\0b", &guid, 7, b"x"),
            Err(VarStoreError::Name(_))
        ));
    }

    #[test]
    fn malformed_stores_are_rejected_with_the_field() {
        let good = empty_store(0x400);
        let mut no_fvh = good.clone();
        no_fvh[0x28] = b'X';
        assert!(matches!(
            VarStore::parse(no_fvh),
            Err(VarStoreError::FvHeader(_))
        ));
        let mut plain = good.clone();
        plain[0x48..0x58].copy_from_slice(&PLAIN_VARIABLE_GUID);
        let e = VarStore::parse(plain).unwrap_err();
        assert!(e.to_string().contains("non-authenticated"), "{e}");
        let mut big = good.clone();
        big[0x58..0x5c].copy_from_slice(&0x10_0000u32.to_le_bytes());
        assert!(matches!(
            VarStore::parse(big),
            Err(VarStoreError::StoreHeader { .. })
        ));
        // A record whose DataSize runs past the end of the store.
        let guid: EfiGuid = ST.parse().unwrap();
        let mut s = VarStore::parse(good.clone()).unwrap();
        s.set("V", &guid, 7, b"x").unwrap();
        let mut bytes = s.into_bytes();
        bytes[0x64 + 40..0x64 + 44].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        let e = VarStore::parse(bytes).unwrap_err();
        assert!(e.to_string().contains("DataSize"), "{e}");
        // Garbage in the free space.
        let mut junk = good;
        junk[0x200] = 0;
        let e = VarStore::parse(junk).unwrap_err();
        assert!(e.to_string().contains("offset 0x200"), "{e}");
    }

    /// The real OVMF store from Debian's `ovmf` package, when installed: parsed, written to,
    /// re-parsed, and its pre-existing variables kept.
    #[test]
    fn debian_ovmf_vars_take_the_st_variables() {
        let Ok(pristine) = std::fs::read("/usr/share/OVMF/OVMF_VARS_4M.fd") else {
            eprintln!("skipped: /usr/share/OVMF/OVMF_VARS_4M.fd absent (apt-get install ovmf)");
            return;
        };
        let guid: EfiGuid = ST.parse().unwrap();
        let mut s = VarStore::parse(pristine.clone()).unwrap();
        let before = s.records().len();
        s.set("STHostConfig", &guid, 7, b"{}").unwrap();
        let out = s.into_bytes();
        assert_eq!(out.len(), pristine.len());
        let again = VarStore::parse(out.clone()).unwrap();
        assert_eq!(again.records().len(), before + 1);
        assert_eq!(
            again.get("STHostConfig", &guid).unwrap().data,
            b"{}".to_vec()
        );
        // Only the new record differs from the pristine file.
        let at = again.get("STHostConfig", &guid).unwrap().offset;
        assert_eq!(out[..at], pristine[..at]);
        assert_eq!(out[at + 88..], pristine[at + 88..]);
    }
}
