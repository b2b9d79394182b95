//! Errors of the TPM client: each names the command and, for bad responses, the field.

use core::fmt;

use crate::rc::ResponseCode;
use crate::{AlgId, CommandCode};

/// The error a [`Transport`](crate::Transport) returns: whatever the device or socket said,
/// boxed so the client does not depend on the transport's error type (st-host's device error
/// names the device path).
pub type TransportError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failed TPM command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The command could not be sent or its response not received.
    #[error("{command}: {source}")]
    Transport {
        /// The command.
        command: CommandCode,
        /// The transport's error.
        #[source]
        source: TransportError,
    },
    /// The TPM answered with a nonzero response code.
    #[error("{command}: the TPM answered {rc}")]
    Tpm {
        /// The command.
        command: CommandCode,
        /// The response code.
        rc: ResponseCode,
    },
    /// The response does not parse, or says something other than what was asked.
    #[error("{command} response: {field}: {problem}")]
    Malformed {
        /// The command.
        command: CommandCode,
        /// The response field.
        field: &'static str,
        /// What is wrong with it.
        problem: Problem,
    },
    /// A caller's argument cannot be encoded or is not meaningful for the command.
    #[error("{command}: argument {field}: {problem}")]
    InvalidArgument {
        /// The command.
        command: CommandCode,
        /// The argument.
        field: &'static str,
        /// What is wrong with it.
        problem: Problem,
    },
    /// `TPM2_PCR_Read` succeeded but returned no value for the PCR: the bank is not active.
    #[error(
        "TPM2_PCR_Read: the TPM returned no value for PCR {pcr} in bank {alg} (bank not active)"
    )]
    PcrNotReturned {
        /// The PCR index asked for.
        pcr: u32,
        /// The bank asked for.
        alg: AlgId,
    },
}

impl Error {
    /// The TPM's response code, when the TPM answered with an error.
    pub fn response_code(&self) -> Option<ResponseCode> {
        match self {
            Self::Tpm { rc, .. } => Some(*rc),
            _ => None,
        }
    }
}

/// What is wrong with a field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The field needs more bytes than remain.
    Truncated {
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left.
        remaining: usize,
    },
    /// A length is above its cap.
    TooLarge {
        /// The length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// A count is above its cap.
    TooMany {
        /// The count.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// Bytes left over after the structure.
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// A value other than the one expected.
    Mismatch {
        /// What was expected.
        expected: u64,
        /// What was found.
        found: u64,
    },
    /// Anything else, said in words.
    Invalid(&'static str),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, remaining } => {
                write!(f, "needs {needed} bytes, {remaining} left")
            }
            Self::TooLarge { len, max } => write!(f, "length {len} is over the limit of {max}"),
            Self::TooMany { count, max } => write!(f, "count {count} is over the limit of {max}"),
            Self::TrailingBytes { extra } => write!(f, "{extra} unexpected bytes after it"),
            Self::Mismatch { expected, found } => {
                write!(f, "expected {expected:#x}, found {found:#x}")
            }
            Self::Invalid(what) => f.write_str(what),
        }
    }
}
