//! stprov: provisions a System Transparency platform (issue 8 §5; st-reference §9).
//!
//! * [`cli`]: the reference's commands and flags (clap), Go's single-dash long flags.
//! * [`config`]: flags to a checked [`st_format::HostConfig`], by the reference's rules (pure).
//! * [`netsetup`]: picks the interface(s) and brings the network up with `st_host::net`.
//! * [`urlcheck`]: HEAD over HTTPS for every OS package URL (stboot's transport and TLS
//!   roots), retried with backoff until a deadline.
//! * [`nvram`]: the EFI variables through efivarfs, with clear errors (no UEFI, not mounted,
//!   not root).
//! * [`secrets`], [`protocol`]: the one-time-password protocol of `remote run` / `local run`,
//!   wire compatible with the reference.
//! * [`offline`]: the same variables written into an OVMF variable store file.
//! * [`commands`]: each subcommand, start to end.
//!
//! Every failure is a [`Failure`], whose kind decides the exit code (see `docs/stprov.md`).

pub mod cli;
pub mod commands;
pub mod config;
pub mod netsetup;
pub mod nvram;
pub mod offline;
pub mod protocol;
pub mod secrets;
pub mod urlcheck;

/// Why a command failed; the variant decides the exit code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Bad flags or an invalid value (the flag or field is named). Exit code 2.
    #[error("{0}")]
    Usage(String),
    /// The network could not be set up. Exit code 3.
    #[error("network: {0}")]
    Network(String),
    /// An OS package URL failed its check. Exit code 4.
    #[error("{0}")]
    Url(String),
    /// EFI variables are unavailable or a write failed. Exit code 5.
    #[error("EFI NVRAM: {0}")]
    Efi(String),
    /// The one-time-password exchange failed. Exit code 6.
    #[error("{0}")]
    Protocol(String),
    /// Anything else (files, ...). Exit code 1.
    #[error("{0}")]
    Other(String),
}

impl Failure {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Other(_) => 1,
            Self::Usage(_) => 2,
            Self::Network(_) => 3,
            Self::Url(_) => 4,
            Self::Efi(_) => 5,
            Self::Protocol(_) => 6,
        }
    }
}
