//! TPM 2.0 response codes (`TPM_RC`), decoded.
//!
//! Bit 7 picks the format. **Format 1** (bit 7 set) codes concern one handle, session or
//! parameter: the error number is bits 5:0 (`TPM_RC_FMT1` + n), and bit 6 says whether bits 11:8
//! are a parameter number (1..15); otherwise bits 10:8 are a handle number (bit 11 clear) or a
//! session number (bit 11 set). **Format 0** codes: bit 8 set marks a TPM 2.0 code
//! (`TPM_RC_VER1` + n), clear a TPM 1.2 one; bit 10 a vendor code; bit 11 a warning
//! (`TPM_RC_WARN` + n) rather than an error; the number is bits 6:0.

use core::fmt;

/// A TPM response code as returned in a response header (0 is success).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponseCode(pub u32);

/// What a format-1 response code refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The n-th handle of the command (1-based; 0 when unspecified).
    Handle(u8),
    /// The n-th session of the command (1-based; 0 when unspecified).
    Session(u8),
    /// The n-th parameter of the command (1-based).
    Parameter(u8),
}

/// `TPM_RC_FMT1`.
const FMT1: u32 = 0x080;
/// `TPM_RC_VER1`.
const VER1: u32 = 0x100;
/// `TPM_RC_WARN` (with `VER1`).
const WARN: u32 = 0x900;

impl ResponseCode {
    /// `TPM_RC_SUCCESS`.
    pub const SUCCESS: Self = Self(0);
    /// `TPM_RC_INITIALIZE`: `TPM2_Startup` not yet run, or run twice.
    pub const INITIALIZE: Self = Self(VER1);
    /// `TPM_RC_NV_UNINITIALIZED`: an NV index read before it was ever written.
    pub const NV_UNINITIALIZED: Self = Self(VER1 + 0x04a);
    /// `TPM_RC_NV_AUTHORIZATION`: the NV index does not allow this authorization.
    pub const NV_AUTHORIZATION: Self = Self(VER1 + 0x049);
    /// `TPM_RC_RETRY`: the TPM asks to send the command again.
    pub const RETRY: Self = Self(WARN + 0x022);
    /// `TPM_RC_HANDLE` + `TPM_RC_1`: the first handle does not exist or does not fit (what
    /// `TPM2_NV_ReadPublic` answers for an undefined index).
    pub const HANDLE_1: Self = Self(FMT1 + 0x00b + 0x100);

    /// Whether this is a format-1 code (bit 7).
    pub fn is_format1(self) -> bool {
        self.0 & FMT1 != 0
    }

    /// The error number: bits 5:0 for format 1, bits 6:0 for format 0.
    pub fn number(self) -> u32 {
        if self.is_format1() {
            self.0 & 0x3f
        } else {
            self.0 & 0x7f
        }
    }

    /// The code without its handle/session/parameter number: `TPM_RC_FMT1 + n` for format 1,
    /// the code itself for format 0.
    pub fn base(self) -> u32 {
        if self.is_format1() {
            FMT1 | (self.0 & 0x3f)
        } else {
            self.0
        }
    }

    /// For a format-1 code, the handle, session or parameter it refers to.
    pub fn subject(self) -> Option<Subject> {
        if !self.is_format1() {
            return None;
        }
        let hi = ((self.0 >> 8) & 0xf) as u8;
        Some(if self.0 & 0x040 != 0 {
            Subject::Parameter(hi)
        } else if hi & 0x8 != 0 {
            Subject::Session(hi & 0x7)
        } else {
            Subject::Handle(hi & 0x7)
        })
    }

    /// A format-0 warning (`TPM_RC_WARN` + n: try again later, not a failure of the command).
    pub fn is_warning(self) -> bool {
        !self.is_format1() && self.0 & 0x800 != 0 && self.0 & VER1 != 0
    }

    /// A format-0 code defined by the TPM vendor (bit 10).
    pub fn is_vendor(self) -> bool {
        !self.is_format1() && self.0 & 0x400 != 0
    }

    /// A TPM 1.2 code (format 0 with bit 8 clear, nonzero).
    pub fn is_tpm12(self) -> bool {
        self.0 != 0 && !self.is_format1() && self.0 & VER1 == 0
    }

    /// The `TPM_RC_*` name of the code without its number, when it is a known one.
    pub fn name(self) -> Option<&'static str> {
        if self.0 == 0 {
            return Some("TPM_RC_SUCCESS");
        }
        if self.is_format1() {
            return fmt1_name(self.number());
        }
        if self.is_vendor() || self.is_tpm12() || self.0 & !0xfff != 0 {
            return None;
        }
        if self.is_warning() {
            warn_name(self.number())
        } else if self.0 & 0x800 == 0 {
            ver1_name(self.number())
        } else {
            None
        }
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name)?,
            None if self.is_vendor() => f.write_str("vendor-specific code")?,
            None if self.is_tpm12() => f.write_str("TPM 1.2 code")?,
            None if self.is_warning() => write!(f, "unknown warning {:#x}", self.number())?,
            None => write!(f, "unknown code {:#x}", self.base())?,
        }
        match self.subject() {
            Some(Subject::Handle(0)) | Some(Subject::Session(0)) => {}
            Some(Subject::Handle(n)) => write!(f, " (handle {n})")?,
            Some(Subject::Session(n)) => write!(f, " (session {n})")?,
            Some(Subject::Parameter(n)) => write!(f, " (parameter {n})")?,
            None => {}
        }
        if self.is_warning() {
            f.write_str(", warning")?;
        }
        write!(f, " [{:#010x}]", self.0)
    }
}

fn fmt1_name(n: u32) -> Option<&'static str> {
    Some(match n {
        0x01 => "TPM_RC_ASYMMETRIC",
        0x02 => "TPM_RC_ATTRIBUTES",
        0x03 => "TPM_RC_HASH",
        0x04 => "TPM_RC_VALUE",
        0x05 => "TPM_RC_HIERARCHY",
        0x07 => "TPM_RC_KEY_SIZE",
        0x08 => "TPM_RC_MGF",
        0x09 => "TPM_RC_MODE",
        0x0a => "TPM_RC_TYPE",
        0x0b => "TPM_RC_HANDLE",
        0x0c => "TPM_RC_KDF",
        0x0d => "TPM_RC_RANGE",
        0x0e => "TPM_RC_AUTH_FAIL",
        0x0f => "TPM_RC_NONCE",
        0x10 => "TPM_RC_PP",
        0x12 => "TPM_RC_SCHEME",
        0x15 => "TPM_RC_SIZE",
        0x16 => "TPM_RC_SYMMETRIC",
        0x17 => "TPM_RC_TAG",
        0x18 => "TPM_RC_SELECTOR",
        0x1a => "TPM_RC_INSUFFICIENT",
        0x1b => "TPM_RC_SIGNATURE",
        0x1c => "TPM_RC_KEY",
        0x1d => "TPM_RC_POLICY_FAIL",
        0x1f => "TPM_RC_INTEGRITY",
        0x20 => "TPM_RC_TICKET",
        0x21 => "TPM_RC_RESERVED_BITS",
        0x22 => "TPM_RC_BAD_AUTH",
        0x23 => "TPM_RC_EXPIRED",
        0x24 => "TPM_RC_POLICY_CC",
        0x25 => "TPM_RC_BINDING",
        0x26 => "TPM_RC_CURVE",
        0x27 => "TPM_RC_ECC_POINT",
        _ => return None,
    })
}

fn ver1_name(n: u32) -> Option<&'static str> {
    Some(match n {
        0x00 => "TPM_RC_INITIALIZE",
        0x01 => "TPM_RC_FAILURE",
        0x03 => "TPM_RC_SEQUENCE",
        0x0b => "TPM_RC_PRIVATE",
        0x19 => "TPM_RC_HMAC",
        0x20 => "TPM_RC_DISABLED",
        0x21 => "TPM_RC_EXCLUSIVE",
        0x24 => "TPM_RC_AUTH_TYPE",
        0x25 => "TPM_RC_AUTH_MISSING",
        0x26 => "TPM_RC_POLICY",
        0x27 => "TPM_RC_PCR",
        0x28 => "TPM_RC_PCR_CHANGED",
        0x2d => "TPM_RC_UPGRADE",
        0x2e => "TPM_RC_TOO_MANY_CONTEXTS",
        0x2f => "TPM_RC_AUTH_UNAVAILABLE",
        0x30 => "TPM_RC_REBOOT",
        0x31 => "TPM_RC_UNBALANCED",
        0x42 => "TPM_RC_COMMAND_SIZE",
        0x43 => "TPM_RC_COMMAND_CODE",
        0x44 => "TPM_RC_AUTHSIZE",
        0x45 => "TPM_RC_AUTH_CONTEXT",
        0x46 => "TPM_RC_NV_RANGE",
        0x47 => "TPM_RC_NV_SIZE",
        0x48 => "TPM_RC_NV_LOCKED",
        0x49 => "TPM_RC_NV_AUTHORIZATION",
        0x4a => "TPM_RC_NV_UNINITIALIZED",
        0x4b => "TPM_RC_NV_SPACE",
        0x4c => "TPM_RC_NV_DEFINED",
        0x50 => "TPM_RC_BAD_CONTEXT",
        0x51 => "TPM_RC_CPHASH",
        0x52 => "TPM_RC_PARENT",
        0x53 => "TPM_RC_NEEDS_TEST",
        0x54 => "TPM_RC_NO_RESULT",
        0x55 => "TPM_RC_SENSITIVE",
        _ => return None,
    })
}

fn warn_name(n: u32) -> Option<&'static str> {
    Some(match n {
        0x01 => "TPM_RC_CONTEXT_GAP",
        0x02 => "TPM_RC_OBJECT_MEMORY",
        0x03 => "TPM_RC_SESSION_MEMORY",
        0x04 => "TPM_RC_MEMORY",
        0x05 => "TPM_RC_SESSION_HANDLES",
        0x06 => "TPM_RC_OBJECT_HANDLES",
        0x07 => "TPM_RC_LOCALITY",
        0x08 => "TPM_RC_YIELDED",
        0x09 => "TPM_RC_CANCELED",
        0x0a => "TPM_RC_TESTING",
        0x10 => "TPM_RC_REFERENCE_H0",
        0x11 => "TPM_RC_REFERENCE_H1",
        0x12 => "TPM_RC_REFERENCE_H2",
        0x13 => "TPM_RC_REFERENCE_H3",
        0x14 => "TPM_RC_REFERENCE_H4",
        0x15 => "TPM_RC_REFERENCE_H5",
        0x16 => "TPM_RC_REFERENCE_H6",
        0x18 => "TPM_RC_REFERENCE_S0",
        0x19 => "TPM_RC_REFERENCE_S1",
        0x1a => "TPM_RC_REFERENCE_S2",
        0x1b => "TPM_RC_REFERENCE_S3",
        0x1c => "TPM_RC_REFERENCE_S4",
        0x1d => "TPM_RC_REFERENCE_S5",
        0x1e => "TPM_RC_REFERENCE_S6",
        0x20 => "TPM_RC_NV_RATE",
        0x21 => "TPM_RC_LOCKOUT",
        0x22 => "TPM_RC_RETRY",
        0x23 => "TPM_RC_NV_UNAVAILABLE",
        0x7f => "TPM_RC_NOT_USED",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format1_handle() {
        let rc = ResponseCode(0x18b);
        assert!(rc.is_format1());
        assert_eq!(rc.base(), 0x08b);
        assert_eq!(rc.subject(), Some(Subject::Handle(1)));
        assert_eq!(rc, ResponseCode::HANDLE_1);
        assert_eq!(rc.to_string(), "TPM_RC_HANDLE (handle 1) [0x0000018b]");
    }

    #[test]
    fn format1_parameter_and_session() {
        // TPM_RC_VALUE + TPM_RC_P + TPM_RC_2
        let rc = ResponseCode(0x084 | 0x040 | 0x200);
        assert_eq!(rc.subject(), Some(Subject::Parameter(2)));
        assert_eq!(rc.to_string(), "TPM_RC_VALUE (parameter 2) [0x000002c4]");
        // TPM_RC_AUTH_FAIL + TPM_RC_S + TPM_RC_1
        let rc = ResponseCode(0x08e | 0x800 | 0x100);
        assert_eq!(rc.subject(), Some(Subject::Session(1)));
        assert_eq!(rc.to_string(), "TPM_RC_AUTH_FAIL (session 1) [0x0000098e]");
        assert!(
            !rc.is_warning(),
            "bit 11 of a format-1 code is the session flag"
        );
    }

    #[test]
    fn format0() {
        assert_eq!(
            ResponseCode(0x100).to_string(),
            "TPM_RC_INITIALIZE [0x00000100]"
        );
        assert_eq!(
            ResponseCode::NV_UNINITIALIZED.to_string(),
            "TPM_RC_NV_UNINITIALIZED [0x0000014a]"
        );
        let retry = ResponseCode(0x922);
        assert!(retry.is_warning());
        assert_eq!(retry.to_string(), "TPM_RC_RETRY, warning [0x00000922]");
        assert_eq!(
            ResponseCode(0x17f).to_string(),
            "unknown code 0x17f [0x0000017f]"
        );
    }

    #[test]
    fn vendor_and_tpm12() {
        let v = ResponseCode(0x500);
        assert!(v.is_vendor());
        assert_eq!(v.to_string(), "vendor-specific code [0x00000500]");
        let old = ResponseCode(0x1e);
        assert!(old.is_tpm12());
        assert_eq!(old.to_string(), "TPM 1.2 code [0x0000001e]");
    }
}
