//! The stboot image contract, written once: where things are inside the image, which files
//! the trust policy directory holds, and the rule that decides how stboot gets its OS package.
//!
//! `st-image` lays the image out by these names, stboot reads it by them (as PID 1 the image
//! is `/`), and `stmgr` checks an operator's directories against them. The trust policy
//! directory is parsed by one loader, `st_verify::TrustDir`.

use crate::host_config::HostConfig;
use crate::trust_policy::{FetchMethod, TrustPolicy};

/// Paths inside the stboot image, relative to its root (`/` when stboot runs as PID 1).
pub mod paths {
    /// stboot itself.
    pub const INIT: &str = "init";
    /// The console device node (c 5 1).
    pub const CONSOLE: &str = "dev/console";
    /// The trust policy directory.
    pub const TRUST_POLICY_DIR: &str = "etc/trust_policy";
    /// The host config of the image (the first place stboot looks).
    pub const HOST_CONFIG: &str = "etc/host_configuration.json";
    /// Kernel modules (flat directory of `.ko` files).
    pub const MODULES_DIR: &str = "lib/modules";
    /// Module load order, one file name a line.
    pub const MODULES_ORDER: &str = "etc/stboot/modules.order";
    /// OS packages carried in the image (initramfs fetch method, provisioning package).
    pub const OSPKG_DIR: &str = "ospkg";
}

/// The files of the trust policy directory, by name.
pub mod trust_files {
    /// Threshold and fetch method (required).
    pub const TRUST_POLICY: &str = "trust_policy.json";
    /// The signing root certificate(s), PEM (required).
    pub const SIGNING_ROOTS: &str = "ospkg_signing_root.pem";
    /// TLS roots for HTTPS provisioning servers, PEM (optional).
    pub const TLS_ROOTS: &str = "tls_roots.pem";
    /// The ST 1.3 Sigsum policy (optional): the logs and witnesses a Sigsum proof in a
    /// descriptor is checked against. Without it, proofs do not count.
    pub const SIGSUM_POLICY: &str = "ospkg_trust_policy";
    /// The ST 1.2 age identities that decrypt downloaded OS packages (optional; secret).
    pub const DECRYPTION_IDENTITIES: &str = "decryption_identities";
}

/// How stboot gets its OS package, given the trust policy and the host config it ended up
/// with (the image's file, the EFI variable, or the provisioning fallback).
///
/// The reference's rule (st-reference §3.1, §4.4): a host config whose `ospkg_pointer` is
/// `provision.zip` (the provisioning fallback's pointer, or an operator's config with that
/// pointer) forces the initramfs method, whatever the trust policy says; otherwise the trust
/// policy's `ospkg_fetch_method` decides.
pub fn effective_fetch_method(policy: &TrustPolicy, host_config: &HostConfig) -> FetchMethod {
    if host_config.is_provisioning_fallback() {
        FetchMethod::Initramfs
    } else {
        policy.fetch_method()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn policy(method: &str) -> TrustPolicy {
        TrustPolicy::from_json(
            format!(r#"{{"ospkg_signature_threshold":1,"ospkg_fetch_method":"{method}"}}"#)
                .as_bytes(),
        )
        .unwrap()
    }

    fn host_config(pointer: &str) -> HostConfig {
        HostConfig::from_json(
            format!(r#"{{"network_mode":"dhcp","ospkg_pointer":"{pointer}"}}"#).as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn the_provisioning_pointer_forces_the_initramfs_method() {
        let fallback = HostConfig::provisioning_fallback();
        assert_eq!(
            effective_fetch_method(&policy("network"), &fallback),
            FetchMethod::Initramfs
        );
        assert_eq!(
            effective_fetch_method(&policy("network"), &host_config("provision.zip")),
            FetchMethod::Initramfs
        );
        assert_eq!(
            effective_fetch_method(&policy("network"), &host_config("https://a.example/x.json")),
            FetchMethod::Network
        );
        assert_eq!(
            effective_fetch_method(&policy("initramfs"), &host_config("x.zip")),
            FetchMethod::Initramfs
        );
    }
}
