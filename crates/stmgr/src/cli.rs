//! Command-line definitions. Help text lives next to each flag.

use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

/// System Transparency operator tool: make keys and certificates, create, sign and verify OS
/// packages, and check trust policies and host configs.
///
/// Exit status: 0 when verified or valid, 1 when rejected or the input is invalid (the reason is
/// printed on stderr), 2 when the command line is wrong.
#[derive(Parser, Debug)]
#[command(
    name = "stmgr",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    /// Accepted for compatibility with the Go stmgr (-loglevel); stmgr prints errors and
    /// results only.
    #[arg(long, global = true, value_name = "LEVEL", hide = true)]
    pub(crate) log_level: Option<String>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Create, sign and verify OS packages (NAME.zip + NAME.json).
    Ospkg {
        #[command(subcommand)]
        command: OspkgCommand,
    },
    /// Make Ed25519 keys and X.509 certificates for signing OS packages.
    Keygen {
        #[command(subcommand)]
        command: KeygenCommand,
    },
    /// Check a trust policy (trust_policy.json) and print it normalised.
    Trustpolicy {
        #[command(subcommand)]
        command: CheckCommand,
    },
    /// Check a host config and print it normalised (legacy spellings converted).
    Hostconfig {
        #[command(subcommand)]
        command: CheckCommand,
    },
    /// Build the stboot image (the initramfs whose /init is stboot) and list images.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Build UEFI boot images: a unified kernel image (UKI) on the systemd EFI stub, and a
    /// UEFI-bootable ISO.
    Uki {
        #[command(subcommand)]
        command: crate::uki::UkiCommand,
    },
    /// Predict the TPM measurements (PCR 12, 13, 14) stboot makes for an OS package.
    Measure {
        #[command(subcommand)]
        command: crate::measure::MeasureCommand,
    },
    /// Read a TPM event log (stboot's or the firmware's): list its events, or replay it to
    /// PCR values.
    Eventlog {
        #[command(subcommand)]
        command: crate::measure::EventlogCommand,
    },
    /// Deployment: authorise an attested server to start its service (docs/attestation.md).
    Deploy {
        #[command(subcommand)]
        command: crate::deploy::DeployCommand,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum ImageCommand {
    /// Build the stboot initramfs (cpio newc, gzip by default) with stboot as /init.
    ///
    /// Contents: /init, /dev/console (c 5 1), /etc/trust_policy/{trust_policy.json,
    /// ospkg_signing_root.pem,tls_roots.pem}, /etc/host_configuration.json,
    /// /lib/modules/*.ko with /etc/stboot/modules.order, /ospkg/NAME.{json,zip}, and the
    /// directories stboot mounts on. Every input is checked first. The same inputs always give
    /// the same bytes.
    Initramfs(InitramfsArgs),
    /// List the entries of an initramfs (gzip-compressed or plain cpio newc), or the sections
    /// of a PE image such as a UKI (RVA, sizes, file offsets, SHA-256, and for a UKI the PCR 11
    /// value the systemd stub will extend).
    Inspect(InspectArgs),
}

#[derive(Args, Debug)]
pub(crate) struct InitramfsArgs {
    /// The stboot binary (a static ELF executable); becomes /init.
    #[arg(long, value_name = "FILE")]
    pub(crate) stboot: PathBuf,
    /// Trust policy directory: trust_policy.json, ospkg_signing_root.pem and, optionally,
    /// tls_roots.pem; copied to /etc/trust_policy/.
    #[arg(long, value_name = "DIR")]
    pub(crate) trust_policy: PathBuf,
    /// Host config to put at /etc/host_configuration.json [default: none; stboot then reads
    /// it from elsewhere, e.g. an EFI variable].
    #[arg(long, value_name = "FILE")]
    pub(crate) host_config: Option<PathBuf>,
    /// Kernel module (uncompressed .ko) to put in /lib/modules/; repeat the flag for more.
    /// stboot loads them in the order given here.
    #[arg(long = "module", value_name = "FILE.ko")]
    pub(crate) modules: Vec<PathBuf>,
    /// OS package for the initramfs fetch method (NAME, NAME.zip or NAME.json): copied to
    /// /ospkg/NAME.json and /ospkg/NAME.zip.
    #[arg(long, value_name = "NAME")]
    pub(crate) ospkg: Option<PathBuf>,
    /// Compression of the image (the kernel unpacks gzip).
    #[arg(long, value_enum, value_name = "KIND", default_value = "gzip")]
    pub(crate) compression: ImageCompression,
    /// Output file (written atomically).
    #[arg(long, value_name = "FILE")]
    pub(crate) out: PathBuf,
}

/// `--compression` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ImageCompression {
    /// gzip (level 9, no time stamp or file name).
    Gzip,
    /// Plain cpio newc.
    None,
}

#[derive(Args, Debug)]
pub(crate) struct InspectArgs {
    /// The initramfs or PE image (UKI) file.
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
}

#[derive(Subcommand, Debug)]
pub(crate) enum OspkgCommand {
    /// Create an unsigned OS package from a kernel, an initramfs and a command line.
    ///
    /// Writes OUT.zip (the archive: the kernel and initramfs under boot/ by their file names,
    /// manifest.json) and OUT.json (the descriptor, no signatures yet). The same inputs always
    /// give the same bytes.
    Create(CreateArgs),
    /// Sign an OS package: append a certificate and an Ed25519 signature over SHA-256(archive)
    /// to its descriptor. Refuses a second signature by the same key.
    Sign(SignArgs),
    /// Attach a Sigsum proof (ST 1.3) in place of a signature: log the archive first with
    /// `sigsum-submit -k KEY -p ospkg_trust_policy NAME.zip`, then attach NAME.zip.proof with the
    /// certificate of KEY.
    ///
    /// Checks that the certificate's key is Ed25519, that its SHA-256 is the proof's leaf key
    /// hash and that the leaf signature verifies for SHA-256(archive); refuses a second entry by
    /// the same key. The log, tree head, witness cosignatures and inclusion are checked by
    /// `ospkg verify` and stboot against the trust policy's ospkg_trust_policy.
    Sigsum(crate::sigsum::SigsumArgs),
    /// Verify an OS package exactly as stboot does before booting it: signatures, certificate
    /// chains, threshold, then the archive structure (manifest, kernel, initramfs).
    Verify(VerifyArgs),
    /// Encrypt an OS package with age (st-1.2) to X25519 recipients: writes DIR/NAME.json and
    /// DIR/NAME.zip, each a binary age file that stboot decrypts after download.
    Encrypt(crate::encrypt::EncryptArgs),
}

#[derive(Args, Debug)]
pub(crate) struct CreateArgs {
    /// Linux kernel image (bzImage) to boot.
    #[arg(long, value_name = "FILE")]
    pub(crate) kernel: PathBuf,
    /// Initramfs to boot with the kernel.
    #[arg(long, value_name = "FILE")]
    pub(crate) initramfs: PathBuf,
    /// Kernel command line of the booted OS.
    #[arg(long, value_name = "STRING", default_value = "")]
    pub(crate) cmdline: String,
    /// Where stboot downloads the archive: an http(s) URL, or a URL relative to the
    /// descriptor's own URL (e.g. "os.zip"). May be empty for the initramfs fetch method.
    #[arg(long, value_name = "URL", default_value = "")]
    pub(crate) url: String,
    /// Free-text label, shown when booting.
    #[arg(long, value_name = "STRING", default_value = "")]
    pub(crate) label: String,
    /// Output path: PATH, PATH.zip or PATH.json gives PATH.zip + PATH.json; an existing
    /// directory gives DIR/system-transparency-os-package.{zip,json}.
    #[arg(long, value_name = "PATH")]
    pub(crate) out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct SignArgs {
    /// Private key: PKCS#8 PEM ("PRIVATE KEY") or unencrypted OpenSSH Ed25519 key; or an
    /// `ssh-ed25519 AAAA...` public key line, and ssh-agent ($SSH_AUTH_SOCK) signs with it.
    #[arg(long, value_name = "FILE")]
    pub(crate) key: PathBuf,
    /// Certificate of that key (one PEM CERTIFICATE block).
    #[arg(long, value_name = "FILE")]
    pub(crate) cert: PathBuf,
    /// The OS package: NAME.zip, NAME.json or NAME.
    #[arg(long, value_name = "FILE")]
    pub(crate) ospkg: PathBuf,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("trust").required(true).args(["trust_policy", "root_certs"])))]
pub(crate) struct VerifyArgs {
    /// The OS package: NAME.zip, NAME.json or NAME.
    #[arg(long, value_name = "FILE")]
    pub(crate) ospkg: PathBuf,
    /// Trust policy directory (trust_policy.json + ospkg_signing_root.pem): its threshold
    /// applies.
    #[arg(long, value_name = "DIR")]
    pub(crate) trust_policy: Option<PathBuf>,
    /// Signing root certificates (PEM): every signature present must be valid, and there must
    /// be at least one.
    #[arg(long, value_name = "FILE")]
    pub(crate) root_certs: Option<PathBuf>,
    /// Check certificates at this time (RFC 3339, e.g. 2027-01-01T00:00:00Z) instead of now.
    #[arg(long, value_name = "TIME")]
    pub(crate) at: Option<String>,
    /// Print the result as JSON on stdout (also when rejected).
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum KeygenCommand {
    /// Make an Ed25519 certificate: a self-signed root (--is-ca), or a leaf signed by a root.
    ///
    /// A new key is generated and written to --key-out unless one is given (--root-key for a
    /// root, --leaf-key for a leaf). Without --is-ca and without --root-cert/--root-key a
    /// self-signed root is made, as in the Go stmgr.
    Certificate(CertArgs),
    /// Make an age X25519 identity for encrypted OS packages (stboot's decryption_identities);
    /// prints its recipient (age1...).
    Age(crate::encrypt::AgeKeygenArgs),
}

#[derive(Args, Debug)]
pub(crate) struct CertArgs {
    /// Make a self-signed root (CA) certificate.
    #[arg(long)]
    pub(crate) is_ca: bool,
    /// Root certificate that signs the new leaf (needs --root-key).
    #[arg(long, value_name = "FILE", requires = "root_key")]
    pub(crate) root_cert: Option<PathBuf>,
    /// Root private key: signs the leaf; with --is-ca, the key of the new root.
    #[arg(long, value_name = "FILE")]
    pub(crate) root_key: Option<PathBuf>,
    /// Public key of the leaf (PEM "PUBLIC KEY", or an ssh-ed25519 line); no key is generated.
    #[arg(long, value_name = "FILE")]
    pub(crate) leaf_key: Option<PathBuf>,
    /// Start of validity, RFC 3339 [default: now].
    #[arg(long, value_name = "TIME")]
    pub(crate) not_before: Option<String>,
    /// End of validity, RFC 3339 [default: not-before + 10 years for a root, + 1 year for a
    /// leaf].
    #[arg(long, value_name = "TIME")]
    pub(crate) not_after: Option<String>,
    /// Certificate output [default: rootcert.pem with --is-ca, else cert.pem].
    #[arg(long, value_name = "FILE")]
    pub(crate) cert_out: Option<PathBuf>,
    /// Private key output, when a key is generated [default: rootkey.pem with --is-ca, else
    /// key.pem].
    #[arg(long, value_name = "FILE")]
    pub(crate) key_out: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum CheckCommand {
    /// Parse and check; print the normalised JSON on success.
    Check(CheckArgs),
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["json", "file"])))]
pub(crate) struct CheckArgs {
    /// The JSON document itself (as the Go stmgr takes it).
    pub(crate) json: Option<String>,
    /// Read the JSON document from this file instead.
    #[arg(long, value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
}

/// The Go stmgr's single-dash flags and their names here. Both `-flag value` and `-flag=value`.
const LEGACY_FLAGS: &[(&str, &str)] = &[
    ("ospkg", "ospkg"),
    ("proof", "proof"),
    ("trustPolicy", "trust-policy"),
    ("rootCerts", "root-certs"),
    ("kernel", "kernel"),
    ("initramfs", "initramfs"),
    ("cmdline", "cmdline"),
    ("url", "url"),
    ("out", "out"),
    ("label", "label"),
    ("key", "key"),
    ("cert", "cert"),
    ("isCA", "is-ca"),
    ("rootCert", "root-cert"),
    ("rootKey", "root-key"),
    ("leafKey", "leaf-key"),
    ("validFrom", "not-before"),
    ("validUntil", "not-after"),
    ("certOut", "cert-out"),
    ("keyOut", "key-out"),
    ("loglevel", "log-level"),
    // stmgr uki create / to-iso
    ("osrelease", "os-release"),
    ("format", "format"),
    ("force", "force"),
    ("stub", "stub"),
    ("sbat", "sbat"),
    ("append-sbat", "append-sbat"),
    ("signcert", "sign-cert"),
    ("signkey", "sign-key"),
    ("in", "in"),
];

/// Rewrite the reference's single-dash flags (`-ospkg x`, `-isCA`, `-out=x`) into ours, so
/// operator scripts written for the Go stmgr keep working. Go also accepts `--flag`, which
/// is rewritten the same way when the name is a Go spelling (`--rootCerts`).
pub(crate) fn normalize_legacy_flags(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    args.into_iter()
        .map(|arg| {
            let Some(s) = arg.to_str() else { return arg };
            let body = s.strip_prefix("--").or_else(|| s.strip_prefix('-'));
            let Some(body) = body else { return arg };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            match LEGACY_FLAGS.iter().find(|(go, _)| *go == name) {
                Some((_, ours)) => match value {
                    Some(v) => OsString::from(format!("--{ours}={v}")),
                    None => OsString::from(format!("--{ours}")),
                },
                None => arg,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_flags_map_to_ours() {
        let got = normalize_legacy_flags(
            [
                "stmgr",
                "ospkg",
                "verify",
                "-ospkg",
                "a.zip",
                "-rootCerts=r.pem",
                "--json",
                "-x",
            ]
            .map(OsString::from),
        );
        let want = [
            "stmgr",
            "ospkg",
            "verify",
            "--ospkg",
            "a.zip",
            "--root-certs=r.pem",
            "--json",
            "-x",
        ];
        assert_eq!(got, want.map(OsString::from));
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
