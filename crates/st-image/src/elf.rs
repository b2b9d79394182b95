//! The few ELF header facts the image builder checks: magic, object type, program interpreter.

/// Object file type (`e_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ElfType {
    /// `ET_REL`: a relocatable object (a kernel module).
    Relocatable,
    /// `ET_EXEC` or `ET_DYN`: a program (static, static-pie or dynamic).
    Executable,
    /// Anything else (core dumps, unknown values).
    Other(u16),
}

/// What the header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ElfFacts {
    pub(crate) kind: ElfType,
    /// The `PT_INTERP` path of a dynamically linked program.
    pub(crate) interpreter: Option<String>,
}

const PT_INTERP: u32 = 3;

struct Reader<'a> {
    bytes: &'a [u8],
    little: bool,
}

impl Reader<'_> {
    fn get<const N: usize>(&self, at: u64) -> Option<[u8; N]> {
        let at = usize::try_from(at).ok()?;
        self.bytes.get(at..at.checked_add(N)?)?.try_into().ok()
    }
    fn u16(&self, at: u64) -> Option<u16> {
        let b = self.get::<2>(at)?;
        Some(if self.little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }
    fn u32(&self, at: u64) -> Option<u32> {
        let b = self.get::<4>(at)?;
        Some(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }
    fn u64(&self, at: u64) -> Option<u64> {
        let b = self.get::<8>(at)?;
        Some(if self.little {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        })
    }
}

/// Parse the ELF header and program headers. `Err` says why the bytes are not ELF.
pub(crate) fn inspect(bytes: &[u8]) -> Result<ElfFacts, &'static str> {
    if bytes.is_empty() {
        return Err("file is empty");
    }
    if !bytes.starts_with(b"\x7fELF") {
        return Err("not an ELF file (no \\x7fELF magic)");
    }
    let truncated = "truncated ELF header";
    let class = *bytes.get(4).ok_or(truncated)?;
    let little = match bytes.get(5) {
        Some(1) => true,
        Some(2) => false,
        Some(_) => return Err("ELF header: unknown byte order"),
        None => return Err(truncated),
    };
    let r = Reader { bytes, little };
    let e_type = r.u16(16).ok_or(truncated)?;
    let kind = match e_type {
        1 => ElfType::Relocatable,
        2 | 3 => ElfType::Executable,
        other => ElfType::Other(other),
    };
    // (phoff, phentsize, phnum, offset of p_offset, offset of p_filesz) per class.
    let (phoff, phentsize, phnum, p_offset_at, p_filesz_at) = match class {
        1 => (
            u64::from(r.u32(28).ok_or(truncated)?),
            r.u16(42).ok_or(truncated)?,
            r.u16(44).ok_or(truncated)?,
            4,
            16,
        ),
        2 => (
            r.u64(32).ok_or(truncated)?,
            r.u16(54).ok_or(truncated)?,
            r.u16(56).ok_or(truncated)?,
            8,
            32,
        ),
        _ => return Err("ELF header: unknown class (not 32 or 64 bit)"),
    };
    let mut interpreter = None;
    for i in 0..u64::from(phnum) {
        let Some(ph) = phoff.checked_add(i * u64::from(phentsize)) else {
            break;
        };
        if r.u32(ph) != Some(PT_INTERP) {
            continue;
        }
        let (off, size) = if class == 1 {
            (
                r.u32(ph + p_offset_at).map(u64::from),
                r.u32(ph + p_filesz_at).map(u64::from),
            )
        } else {
            (r.u64(ph + p_offset_at), r.u64(ph + p_filesz_at))
        };
        let path = off
            .zip(size)
            .and_then(|(off, size)| {
                let start = usize::try_from(off).ok()?;
                let end = start.checked_add(usize::try_from(size).ok()?)?;
                bytes.get(start..end)
            })
            .map(|p| String::from_utf8_lossy(p.split(|&b| b == 0).next().unwrap_or(p)).into_owned())
            .unwrap_or_else(|| "(unreadable)".to_owned());
        interpreter = Some(path);
        break;
    }
    Ok(ElfFacts { kind, interpreter })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rejects_non_elf() {
        assert_eq!(inspect(b""), Err("file is empty"));
        assert!(inspect(b"#!/bin/sh\n").unwrap_err().contains("no \\x7fELF"));
        assert_eq!(inspect(b"\x7fELF"), Err("truncated ELF header"));
    }

    #[test]
    fn reads_the_host_binaries() {
        // Whatever libc the test host has, /bin/true is a dynamically linked program there
        // (Debian); only check what holds everywhere.
        if let Ok(bytes) = std::fs::read("/bin/true") {
            let facts = inspect(&bytes).unwrap();
            assert_eq!(facts.kind, ElfType::Executable);
            if let Some(interp) = facts.interpreter {
                assert!(interp.starts_with('/'), "{interp}");
            }
        }
    }

    #[test]
    fn minimal_static_header() {
        // A 64-bit little-endian ET_EXEC with no program headers.
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[16] = 2;
        assert_eq!(
            inspect(&h).unwrap(),
            ElfFacts {
                kind: ElfType::Executable,
                interpreter: None
            }
        );
        h[16] = 1;
        assert_eq!(inspect(&h).unwrap().kind, ElfType::Relocatable);
        h[4] = 7;
        assert!(inspect(&h).unwrap_err().contains("class"));
    }
}
