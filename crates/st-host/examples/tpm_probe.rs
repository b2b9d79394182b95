//! Exercise the TPM device path: open `/dev/tpmrm0` (else `/dev/tpm0`), list the active PCR
//! banks, extend PCR 16 (the debug PCR) in every bank, read it back, and read NV index
//! `0x01420001`. Prints `key=value` lines; exits 1 on any error.
//!
//! As `/init` of an initramfs (PID 1) it first mounts `/proc`, `/sys` and `/dev`, and powers
//! off at the end, so it can run as the whole userland of a QEMU guest with swtpm. Used for
//! manual checks of [`st_host::tpm::Device`] against a kernel TPM driver.

use std::process::ExitCode;

use st_host::tpm::Device;
use st_tpm::{AlgId, Tpm};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn probe() -> Result<(), String> {
    let Some(device) = Device::open().map_err(|e| e.to_string())? else {
        println!("tpm=absent");
        return Ok(());
    };
    println!("tpm={}", device.path());
    let mut tpm = Tpm::new(device);
    let banks = tpm.active_pcr_banks().map_err(|e| e.to_string())?;
    let names: Vec<String> = banks.iter().map(AlgId::to_string).collect();
    println!("banks={}", names.join(","));
    // One digest per bank: bytes 0..size, so the expected value is easy to recompute.
    let digests: Vec<(AlgId, Vec<u8>)> = banks
        .iter()
        .filter_map(|b| b.digest_size().map(|n| (*b, (0..n as u8).collect())))
        .collect();
    let refs: Vec<(AlgId, &[u8])> = digests.iter().map(|(a, d)| (*a, d.as_slice())).collect();
    for bank in &banks {
        let v = tpm.pcr_read(16, *bank).map_err(|e| e.to_string())?;
        println!("pcr16.{bank}.before={}", hex(&v));
    }
    tpm.pcr_extend(16, &refs).map_err(|e| e.to_string())?;
    for bank in &banks {
        let v = tpm.pcr_read(16, *bank).map_err(|e| e.to_string())?;
        println!("pcr16.{bank}.after={}", hex(&v));
    }
    match tpm.nv_read_all(0x0142_0001).map_err(|e| e.to_string())? {
        None => println!("nv.0x01420001=absent"),
        Some(d) => println!("nv.0x01420001={}", hex(&d)),
    }
    Ok(())
}

fn main() -> ExitCode {
    let pid1 = std::process::id() == 1;
    if pid1 && let Err(e) = st_host::sys::mount_pseudo_filesystems() {
        println!("tpm_probe: mounting: {e}");
    }
    let code = match probe() {
        Ok(()) => {
            println!("TPM-PROBE-OK");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("TPM-PROBE-FAILED: {e}");
            ExitCode::FAILURE
        }
    };
    if pid1 {
        st_host::sys::sync();
        let e = st_host::sys::poweroff();
        println!("tpm_probe: poweroff: {e}");
    }
    code
}
