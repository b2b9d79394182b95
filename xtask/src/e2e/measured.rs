//! Measured boot scenarios: stboot extends the layout's events into swtpm's PCRs, hands its
//! event log to the OS, and the OS prints PCRs 12-14 of every bank and the log. The harness
//! checks: read from the TPM == `stmgr measure predict` == `stmgr eventlog replay` of the log
//! the OS got == the values stboot printed; a changed package moves PCR 12 only, a changed trust
//! policy PCR 13 only; a required TPM that is absent boots nothing.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;

use super::Ctx;
use super::hostconfig::HostConfigJson;
use super::qemu::Vm;
use super::run::{Outcome, Serve, Served, StbootImage, StbootRun};
use super::swtpm::{Swtpm, SwtpmSpec};
use crate::util::{cmd, output};

/// bank -> PCR index -> lower-case hex.
pub(super) type Pcrs = BTreeMap<String, BTreeMap<u32, String>>;

/// The banks of the measured scenarios (and `cargo xtask demo --uefi`).
pub(super) const BANKS: &[&str] = &["sha1", "sha256", "sha384", "sha512"];
/// The identity written into NV index 0x01420001 of the measured scenarios' swtpm.
pub(super) const IDENTITY: &[u8] = b"node-7";

/// What the test OS reported.
pub(super) struct Seen {
    /// PCRs 12-14 per bank (`E2E-PCR` lines).
    pub(super) pcrs: Pcrs,
    /// stboot's event log (`E2E-EVENTLOG`).
    pub(super) log: Vec<u8>,
    /// The identity stboot measured (`E2E-IDENTITY`).
    pub(super) identity: Vec<u8>,
}

/// Parses the test OS's `E2E-PCR`, `E2E-EVENTLOG` and `E2E-IDENTITY` lines.
pub(super) fn seen(vm: &Vm) -> Result<Seen> {
    let lines = vm.lines();
    let mut pcrs = Pcrs::new();
    let (mut log, mut identity) = (None, None);
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.decode(s.trim());
    for l in &lines {
        if let Some(rest) = l.split("E2E-PCR ").nth(1) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            if let [bank, pcr, value] = f[..] {
                pcrs.entry(bank.to_owned())
                    .or_default()
                    .insert(pcr.parse()?, value.to_ascii_lowercase());
            }
        } else if let Some(rest) = l.split("E2E-EVENTLOG ").nth(1) {
            log = Some(b64(rest).context("E2E-EVENTLOG is not base64")?);
        } else if let Some(rest) = l.split("E2E-IDENTITY").nth(1) {
            identity = Some(b64(rest).context("E2E-IDENTITY is not base64")?);
        }
    }
    let Some(log) = log else {
        bail!(
            "the OS printed no event log (see {})",
            vm.serial_log().display()
        )
    };
    Ok(Seen {
        pcrs,
        log,
        identity: identity.unwrap_or_default(),
    })
}

/// `pcrs` of a `stmgr measure predict|eventlog replay --json` output, PCRs 12-14.
pub(super) fn json_pcrs(text: &str) -> Result<Pcrs> {
    let mut all = json_all_pcrs(text)?;
    for values in all.values_mut() {
        values.retain(|pcr, _| (12..=14).contains(pcr));
    }
    all.retain(|_, values| !values.is_empty());
    Ok(all)
}

/// Every PCR in `pcrs` of a `stmgr measure predict|eventlog replay --json` output.
fn json_all_pcrs(text: &str) -> Result<Pcrs> {
    let v: serde_json::Value = serde_json::from_str(text)?;
    let mut out = Pcrs::new();
    let banks = v["pcrs"].as_object().context("no \"pcrs\" object")?;
    for (bank, values) in banks {
        let values = values
            .as_object()
            .with_context(|| format!("\"pcrs\".{bank} is not an object"))?;
        for (pcr, hex) in values {
            let pcr: u32 = pcr
                .parse()
                .with_context(|| format!("\"pcrs\".{bank}: PCR {pcr:?}"))?;
            let hex = hex
                .as_str()
                .with_context(|| format!("\"pcrs\".{bank}.{pcr} is not a string"))?;
            out.entry(bank.clone())
                .or_default()
                .insert(pcr, hex.to_ascii_lowercase());
        }
    }
    Ok(out)
}

/// `stmgr measure predict --json` for every bank of [`BANKS`]: PCRs 12-14.
pub(super) fn predict(
    ctx: &Ctx<'_>,
    descriptor: &Path,
    trust: &Path,
    identity: &[u8],
) -> Result<Pcrs> {
    let mut c = cmd(ctx.stmgr()?);
    c.args(["measure", "predict", "--json", "--ospkg"])
        .arg(descriptor)
        .arg("--trust-policy")
        .arg(trust)
        .arg("--identity")
        .arg(String::from_utf8_lossy(identity).as_ref());
    for b in BANKS {
        c.args(["--bank", b]);
    }
    json_pcrs(&output(&mut c)?)
}

/// `stmgr eventlog replay --json` of `log` (written to `ctx.dir/<name>`): PCRs 12-14.
pub(super) fn replay(ctx: &Ctx<'_>, log: &[u8], name: &str) -> Result<Pcrs> {
    let file = ctx.path(name);
    fs::write(&file, log)?;
    json_pcrs(&output(
        cmd(ctx.stmgr()?)
            .args(["eventlog", "replay", "--json"])
            .arg(&file),
    )?)
}

fn tpm(ctx: &Ctx<'_>, sub: &str) -> Result<Swtpm> {
    Swtpm::start(
        ctx,
        sub,
        &SwtpmSpec {
            banks: BANKS,
            identity: Some(IDENTITY),
            firmware_starts: false,
        },
    )
}

/// One measured boot of `img` under SeaBIOS; returns what the OS saw, checked by
/// [`check_measured`].
fn measured_run(ctx: &Ctx<'_>, img: &Path, descriptor: &Path, tag: &str) -> Result<Pcrs> {
    let tpm = tpm(ctx, &format!("swtpm-{tag}"))?;
    let vm = StbootRun::new(ctx, img).extra_qemu(tpm.qemu_args()).run()?;
    check_measured(ctx, &vm, descriptor, &ctx.path("trust"), IDENTITY, tag)
}

/// After a measured boot with a TPM of the banks [`BANKS`] holding `identity`: the OS saw
/// that identity and PCRs 12-14 in every bank, which equal `stmgr measure predict` for
/// `descriptor` under the trust policy directory `trust` (from zero), the replay of the event
/// log the OS got (written to `eventlog-<tag>.bin`), and stboot's own ST:MEASURED lines.
/// Returns the PCRs.
pub(super) fn check_measured(
    ctx: &Ctx<'_>,
    vm: &Vm,
    descriptor: &Path,
    trust: &Path,
    identity: &[u8],
    tag: &str,
) -> Result<Pcrs> {
    let seen = seen(vm)?;
    ensure!(seen.identity == identity, "identity {:?}", seen.identity);
    for bank in BANKS {
        ensure!(
            seen.pcrs.get(*bank).is_some_and(|p| p.len() == 3),
            "the OS shows no PCRs 12-14 for bank {bank}: {:?}",
            seen.pcrs
        );
    }
    let predicted = predict(ctx, descriptor, trust, identity)?;
    ensure!(
        predicted == seen.pcrs,
        "stmgr measure predict\n  {predicted:?}\nbut the TPM holds\n  {:?}",
        seen.pcrs
    );
    let replayed = replay(ctx, &seen.log, &format!("eventlog-{tag}.bin"))?;
    ensure!(
        replayed == seen.pcrs,
        "the event log the OS got replays to\n  {replayed:?}\nbut the TPM holds\n  {:?}",
        seen.pcrs
    );
    let sha256 = &seen.pcrs["sha256"];
    vm.ensure_line(&format!(
        "sha256 pcr12={} pcr13={} pcr14={}",
        sha256[&12], sha256[&13], sha256[&14]
    ))?;
    vm.ensure_line("ST:MEASURED 6 events into /dev/tpmrm0 (sha1,sha256,sha384,sha512)")?;
    Ok(seen.pcrs)
}

/// The firmware's event log the booted OS printed (`E2E-FWLOG`), written to `ctx.dir/<name>`:
/// the file and its size; `None` when the OS printed none.
pub(crate) fn firmware_log(
    ctx: &Ctx<'_>,
    vm: &Vm,
    name: &str,
) -> Result<Option<(std::path::PathBuf, usize)>> {
    let lines = vm.lines();
    let Some(b64) = lines.iter().find_map(|l| l.split("E2E-FWLOG ").nth(1)) else {
        return Ok(None);
    };
    let log = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .context("E2E-FWLOG is not base64")?;
    let file = ctx.path(name);
    fs::write(&file, &log)?;
    Ok(Some((file, log.len())))
}

/// The firmware's own TPM event log as the booted OS read it from securityfs (`E2E-FWLOG`,
/// still there after stboot's kexec under UEFI), written to `ctx.dir/<name>`: every PCR its
/// events extend, per bank (`stmgr eventlog replay`; a PCR it does not list had no event
/// before the OS started). `None` when the OS printed no firmware log.
pub(super) fn firmware_log_pcrs(ctx: &Ctx<'_>, vm: &Vm, name: &str) -> Result<Option<Pcrs>> {
    let Some((file, _)) = firmware_log(ctx, vm, name)? else {
        return Ok(None);
    };
    json_all_pcrs(&output(
        cmd(ctx.stmgr()?)
            .args(["eventlog", "replay", "--json"])
            .arg(&file),
    )?)
    .map(Some)
}

fn image(
    ctx: &Ctx<'_>,
    s: &Served,
    trust_changed: bool,
    pointer: &str,
) -> Result<std::path::PathBuf> {
    let mut trust = s.trust();
    if trust_changed {
        // A second signing root (ST 1.3): still verifies, but the policy is another one.
        let other = ctx.signing_keys("other-keys")?;
        trust = trust.also_signing_root(&other.root_cert);
    }
    StbootImage::new(ctx, trust)
        .host_config(&HostConfigJson::slirp().pointer(pointer))
        .build()
}

/// swtpm with four banks and an identity: predicted == TPM == replayed log, in every bank;
/// a second OS package changes PCR 12 only; a second signing root changes PCR 13 only.
pub(crate) fn measured_boot(ctx: &Ctx<'_>) -> Result<()> {
    let s = Serve::new(ctx).start()?;
    let url = s.nginx.https_url("/os.json")?;
    let first = measured_run(
        ctx,
        &image(ctx, &s, false, &url)?,
        &s.www.join("os.json"),
        "a",
    )?;

    // Another package (another command line) from the same server and policy.
    let pkg = ctx.test_ospkg("os2", "os2.zip", "e2e.variant=2", &[&s.keys])?;
    fs::copy(&pkg.json, s.www.join("os2.json"))?;
    fs::copy(&pkg.zip, s.www.join("os2.zip"))?;
    let url2 = s.nginx.https_url("/os2.json")?;
    let second = measured_run(
        ctx,
        &image(ctx, &s, false, &url2)?,
        &s.www.join("os2.json"),
        "b",
    )?;
    changed_only(&first, &second, 12, "another OS package")?;

    // The first package under a trust policy with a second signing root.
    let third = measured_run(
        ctx,
        &image(ctx, &s, true, &url)?,
        &s.www.join("os.json"),
        "c",
    )?;
    changed_only(&first, &third, 13, "another trust policy")?;
    Ok(())
}

fn changed_only(a: &Pcrs, b: &Pcrs, pcr: u32, what: &str) -> Result<()> {
    for (bank, values) in a {
        for (i, v) in values {
            let other = &b[bank][i];
            if *i == pcr {
                ensure!(v != other, "{what}: {bank} PCR {i} did not change");
            } else {
                ensure!(v == other, "{what}: {bank} PCR {i} changed too");
            }
        }
    }
    Ok(())
}

/// `stboot.tpm=required` on a machine without a TPM: nothing boots, the stage is named.
pub(crate) fn tpm_required_absent(ctx: &Ctx<'_>) -> Result<()> {
    let s = Serve::new(ctx).start()?;
    let img = image(ctx, &s, false, &s.nginx.https_url("/os.json")?)?;
    let vm = StbootRun::new(ctx, &img)
        .append("stboot.tpm=required")
        .expect(Outcome::NothingBooted)
        .run()?;
    vm.ensure_line("ST:FAILED stage=measure")?;
    vm.ensure_line("no TPM, but stboot.tpm=required requires one")?;
    ensure!(
        !s.nginx.access_log().is_empty(),
        "the package was fetched and verified before measuring"
    );
    Ok(())
}
