//! System Transparency 1.x wire formats.
//!
//! # Design overview
//!
//! Every document an operator or a provisioning server hands to stboot is parsed here, once,
//! from bytes into checked types ("parse, don't validate"). A value of [`Descriptor`],
//! [`Manifest`], [`TrustPolicy`], [`HostConfig`] or [`ArchiveIndex`] has passed every structural
//! rule of its format; nothing downstream re-checks them.
//!
//! This crate does no network IO, touches no filesystem and never reads the clock. Inputs are
//! byte slices (or a [`ReadAt`] source for archives too big to hold in memory); outputs are typed
//! values or typed errors that name the field at fault. All parsers are bounded: see [`limits`].
//!
//! Writers produce the exact bytes the Go reference (stmgr) produces, so packages made by either
//! implementation are interchangeable.

pub mod archive;
pub mod descriptor;
pub mod efi_varstore;
pub mod go_ahead;
pub mod gojson;
pub mod host_config;
pub mod image;
pub mod limits;
pub mod manifest;
pub mod trust_policy;
pub mod url_template;

pub use archive::{ArchiveError, ArchiveIndex, ArchiveWriter, ReadAt};
pub use descriptor::{Descriptor, DescriptorError, SignatureEntry};
pub use host_config::{
    Bonding, BondingMode, HostConfig, HostConfigError, IpCidr, IpCidrError, MacAddr, MacAddrError,
    NetworkInterface, NetworkMode, OsPkgPointer, OsPkgPointerError,
};
pub use manifest::{Manifest, ManifestError};
pub use trust_policy::{FetchMethod, SignatureThreshold, TrustPolicy, TrustPolicyError};
pub use url_template::{AuthToken, CredentialError, Identity, UrlTemplate, UrlTemplateError};
