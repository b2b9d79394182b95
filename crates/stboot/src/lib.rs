//! stboot: the System Transparency bootloader.
//!
//! As PID 1 of a LinuxBoot initramfs it loads its trust policy and host config, brings up the
//! network, fetches an OS package from the provisioning servers in order, verifies it with the
//! same code `stmgr ospkg verify` runs (`st-verify`), and kexecs the kernel. Nothing that failed
//! verification is ever booted; when every server failed, it prints why for each and recovers
//! (reboot after a pause, or power off).
//!
//! * [`flow`]: the boot flow over an [`flow::Env`] (effects), testable with a fake.
//! * [`fetch`]: HTTP(S) with pinned roots, size caps, retries, deadline.
//! * [`tls`]: rustls trusting exactly `tls_roots.pem`, by the reference's rules.
//! * [`options`]: `stboot.<key>=<value>` options from the kernel command line.
//! * [`platform`]: the real effects (st-host) and the final kexec; `--dry-run` support.

pub mod decrypt;
pub mod fetch;
pub mod flow;
pub mod options;
pub mod platform;
pub mod tls;
