//! Remote attestation end to end (issue 10, docs/attestation.md): a Sigsum-logged package
//! whose test OS runs the attestation agent boots on a swtpm with an EK certificate; on the
//! host `stattest check` accepts the attestation (and refuses it under another trust policy), a
//! go-ahead for another boot and one with too few signatures are refused, and after two staff
//! members ran `stmgr deploy authorize` the agent starts serving; after a power cycle the agent
//! waits again and the old go-ahead is refused.
//!
//! One story ([`story`]) told two ways through [`Narrate`]: the e2e scenario `attestation` logs
//! it, `cargo xtask demo --attest` numbers its steps and shows each step's key output. The
//! assertions are the same for both. `cargo xtask bench-attest --guest` reuses the boot
//! ([`boot`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use super::hostconfig::HostConfigJson;
use super::nginx::free_port;
use super::ospkg::Cpio;
use super::qemu::Vm;
use super::run::{Serve, Served, StbootImage, StbootRun, TrustPolicy, VERIFIED};
use super::stboot::{build_agent, build_stattest};
use super::swtpm::{Swtpm, VendorCa};
use super::{Ctx, SigningKeys};
use crate::util::{cmd, run, say};

/// How [`story`] is told.
pub(crate) trait Narrate {
    /// A step is about to run: one short line saying what it does.
    fn step(&mut self, what: &str);
    /// A key result of the step (a verdict, a refusal's reason, a console line).
    fn show(&mut self, what: &str);
}

/// The number of [`Narrate::step`] calls [`story`] makes.
pub(crate) const STORY_STEPS: u32 = 13;

/// The e2e scenario's telling: numbered step lines in the log; the results are logged anyway
/// (every host command's output by [`attempt`], the console markers by `wait_for`).
struct Log(u32);

impl Narrate for Log {
    fn step(&mut self, what: &str) {
        self.0 += 1;
        say!("e2e: attestation step {}/{STORY_STEPS}: {what}", self.0);
    }
    fn show(&mut self, _: &str) {}
}

/// Runs `c`, returning (success, stdout + stderr).
fn attempt(c: &mut Command) -> Result<(bool, String)> {
    let out = c.output().context("running a host command")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    say!("e2e: {}", text.trim_end().replace('\n', "\ne2e:   "));
    Ok((out.status.success(), text))
}

/// The first line of `text` starting with `prefix` (trimmed), or the last non-empty line.
fn key_line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with(prefix))
        .or_else(|| text.lines().map(str::trim).rfind(|l| !l.is_empty()))
        .unwrap_or("")
}

/// A refusal's reason as `stattest` printed it (without its `stattest: ` prefix).
fn reason(text: &str) -> &str {
    let l = key_line(text, "stattest: ");
    l.strip_prefix("stattest: ").unwrap_or(l)
}

/// A refused go-ahead's reason: the agent's HTTP status and answer.
fn go_ahead_refusal(text: &str) -> &str {
    after(reason(text), ": go-ahead: ")
}

/// A console line containing `marker`, waiting up to `within` for it (`None` then: only what
/// is shown depends on it, not an assertion).
pub(crate) fn console_line(vm: &Vm, marker: &str, within: Duration) -> Option<String> {
    let until = Instant::now() + within;
    loop {
        if let Some(l) = vm.lines().into_iter().find(|l| l.contains(marker)) {
            return Some(l);
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The text after `marker` in `line` (the line itself if it is not there).
fn after<'a>(line: &'a str, marker: &str) -> &'a str {
    line.split_once(marker).map_or(line, |(_, r)| r.trim())
}

/// A second staff member under the same deploy root.
fn second_staff(ctx: &Ctx<'_>, staff: &SigningKeys) -> Result<(PathBuf, PathBuf)> {
    let dir = ctx.path("staff");
    let (cert, key) = (dir.join("b.pem"), dir.join("b.key"));
    run(cmd(ctx.stmgr()?)
        .args(["keygen", "certificate", "--root-cert"])
        .arg(&staff.root_cert)
        .arg("--root-key")
        .arg(&staff.root_key)
        .arg("--cert-out")
        .arg(&cert)
        .arg("--key-out")
        .arg(&key))?;
    Ok((cert, key))
}

/// The subject name (`CN=...`) of a staff certificate, as the agent names who authorised.
fn staff_name(cert: &Path) -> Result<String> {
    let der = st_sign::single_certificate_der(&fs::read(cert)?)
        .with_context(|| format!("certificate {}", cert.display()))?;
    let key = st_verify::certificate_ed25519_key(&der)
        .map_err(anyhow::Error::msg)?
        .with_context(|| format!("certificate {}: not an Ed25519 key", cert.display()))?;
    Ok(format!("CN={}", st_sign::key_common_name(&key)))
}

/// The attestation guest, booted and waiting for a go-ahead.
pub(crate) struct Guest {
    /// nginx and the package (kept alive while the guest runs).
    pub(crate) served: Served,
    /// The stboot image.
    pub(crate) image: PathBuf,
    /// The trust policy directory stboot has (what `stattest check` gets).
    pub(crate) trust_dir: PathBuf,
    /// The swtpm the guest uses.
    pub(crate) tpm: Swtpm,
    /// The vendor CA of the EK certificate.
    pub(crate) ca: VendorCa,
    /// The running guest.
    pub(crate) vm: Vm,
    /// The agent's address on the host (`127.0.0.1:PORT`, a slirp forward to its 8443).
    pub(crate) agent: String,
    /// Staff member A (the deploy root is `staff.root_cert`).
    pub(crate) staff: SigningKeys,
    /// Staff member B: certificate and key.
    pub(crate) staff_b: (PathBuf, PathBuf),
    /// The agent's binary (static musl).
    pub(crate) agent_binary: PathBuf,
}

/// `--vendor-ca` for both of the CA's certificates.
pub(crate) fn vendor_args(c: &mut Command, ca: &VendorCa) {
    c.arg("--vendor-ca")
        .arg(&ca.root)
        .arg("--vendor-ca")
        .arg(&ca.intermediate);
}

/// Boots a guest with the agent on a swtpm and forwards a fresh host port to it; returns the
/// VM once the agent's `ST-AGENT: waiting` line is on the console.
fn boot_vm(ctx: &Ctx<'_>, image: &Path, tpm: &Swtpm, sub: Option<&str>) -> Result<(Vm, String)> {
    let port = free_port()?;
    let r = StbootRun::new(ctx, image)
        .extra_qemu(tpm.qemu_args())
        .hostfwd(&format!("tcp:127.0.0.1:{port}-:8443"))
        .timeout(Duration::from_secs(300));
    let mut vm = match sub {
        Some(sub) => r.start_in(sub)?,
        None => r.start()?,
    };
    vm.wait_for("ST-AGENT: waiting", Duration::from_secs(120))?;
    Ok((vm, format!("127.0.0.1:{port}")))
}

/// Shows the agent's start-up lines: waiting (binding digest), its AK name, its memory.
fn show_agent_start(vm: &Vm, n: &mut dyn Narrate) -> Option<String> {
    let lines = vm.lines();
    let find = |m: &str| lines.iter().rfind(|l| l.contains(m)).cloned();
    if let Some(l) = find("ST-AGENT: waiting") {
        n.show(after(&l, "ST-AGENT: ").trim());
    }
    let ak = console_line(vm, "ak-name ", Duration::from_secs(5))
        .map(|l| after(&l, "ak-name ").to_owned());
    if let Some(ak) = &ak {
        n.show(&format!("  AK name {ak} (made in this boot)"));
    }
    if let Some(l) = console_line(vm, "st-agent: resident memory", Duration::from_secs(5)) {
        n.show(&format!("  {}", after(&l, "st-agent: ")));
    }
    ak
}

/// Steps 1-3 of the story: keys, the package with the agent, the stboot image, the boot on a
/// swtpm with an EK certificate, until the agent waits.
pub(crate) fn boot(ctx: &Ctx<'_>, n: &mut dyn Narrate) -> Result<Guest> {
    n.step(
        "making keys (OS package signing root and signer, a deploy root with staff members A and B), \
         building the agent, the Sigsum-logged OS package whose test OS runs /bin/st-agent, nginx (HTTPS)",
    );
    let staff = ctx.signing_keys("staff")?;
    let staff_b = second_staff(ctx, &staff)?;
    let agent_binary = build_agent()?;
    let mut files = Cpio::new();
    files
        .dir("etc")
        .dir("etc/st-agent")
        .file("bin/st-agent", 0o755, &fs::read(&agent_binary)?)
        .file(
            "etc/st-agent/deploy_root.pem",
            0o644,
            &fs::read(&staff.root_cert)?,
        )
        .file("etc/st-agent/deploy_threshold", 0o644, b"2\n");
    let served = Serve::new(ctx)
        .sigsum_logged()
        .os("e2e.agent=1", files)
        .start()?;
    n.show(&format!(
        "OS package {} with /bin/st-agent ({} bytes, static), Sigsum proof {}; go-ahead: 2 staff \
         signatures under {}",
        served.pkg.zip.display(),
        fs::metadata(&agent_binary)?.len(),
        served
            .sigsum
            .as_ref()
            .map_or_else(|| "?".to_owned(), |s| s.proof.display().to_string()),
        staff.root_cert.display()
    ));

    n.step("building stboot and the stboot image (trust policy, host config: the package's URL)");
    let trust = served.trust();
    let image = StbootImage::new(ctx, trust)
        .host_config(&HostConfigJson::slirp().pointer(&served.nginx.https_url("/os.json")?))
        .build()?;
    let trust_dir = ctx.path("trust");
    n.show(&format!(
        "stboot image {}, trust policy {}",
        image.display(),
        trust_dir.display()
    ));

    n.step(
        "booting it in QEMU on a swtpm with an EK certificate (a vendor CA of this run); \
         the agent makes its keys, extends PCR 15 and waits (TCG: allow a minute)",
    );
    let (tpm, ca) = Swtpm::start_with_ek_certificate(ctx, "tpm")?;
    let (vm, agent) = boot_vm(ctx, &image, &tpm, None)?;
    if let Some(l) = vm.lines().iter().find(|l| l.contains(VERIFIED)) {
        n.show(&format!("stboot: {}", after(l, VERIFIED)));
    }
    show_agent_start(&vm, n);
    n.show(&format!("agent reachable as {agent}"));
    Ok(Guest {
        served,
        image,
        trust_dir,
        tpm,
        ca,
        vm,
        agent,
        staff,
        staff_b,
        agent_binary,
    })
}

/// The e2e scenario: the whole story, logged.
pub(crate) fn attestation(ctx: &Ctx<'_>) -> Result<()> {
    story(ctx, &mut Log(0))
}

/// `tpm2_checkquote` on the quote of a saved attestation: the AK public (TPM2B_PUBLIC) to PEM
/// with `tpm2_print`, the signature over TPMS_ATTEST and its qualifying data (which
/// `stattest check` already found to be its own nonce and secret) checked by tpm2-tools; a
/// flipped byte of the qualifying data must make it fail.
fn checkquote(ctx: &Ctx<'_>, saved: &Path) -> Result<String> {
    let att = st_attest::Attestation::from_json(&fs::read(saved)?)
        .map_err(|e| anyhow::anyhow!("{}: {e}", saved.display()))?;
    let quote =
        st_attest::tpm::Quote::parse(&att.attest).map_err(|e| anyhow::anyhow!("attest: {e}"))?;
    let dir = ctx.path("checkquote");
    fs::create_dir_all(&dir)?;
    let (msg, sig, public) = (
        dir.join("quote.msg"),
        dir.join("quote.sig"),
        dir.join("ak.pub"),
    );
    fs::write(&msg, &att.attest)?;
    fs::write(&sig, &att.signature)?;
    fs::write(&public, &att.ak_public)?;
    let pem = crate::util::output(
        cmd("tpm2_print")
            .args(["-t", "TPM2B_PUBLIC", "-f", "pem"])
            .arg(&public),
    )?;
    let pem_file = dir.join("ak.pem");
    fs::write(&pem_file, pem)?;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let run_check = |q: &str| {
        cmd("tpm2_checkquote")
            .arg("-u")
            .arg(&pem_file)
            .arg("-m")
            .arg(&msg)
            .arg("-s")
            .arg(&sig)
            .args(["-q", q])
            .output()
            .map(|o| o.status.success())
    };
    let good = hex(&quote.extra_data);
    ensure!(run_check(&good)?, "tpm2_checkquote refused the quote");
    let mut wrong = quote.extra_data.clone();
    if let Some(b) = wrong.first_mut() {
        *b ^= 1;
    }
    ensure!(
        !run_check(&hex(&wrong))?,
        "tpm2_checkquote accepted the quote for other qualifying data"
    );
    Ok(format!(
        "tpm2_checkquote: signature by the AK and qualifying data {good} verified (another value refused)"
    ))
}

/// The whole story; every step asserts what it shows.
pub(crate) fn story(ctx: &Ctx<'_>, n: &mut dyn Narrate) -> Result<()> {
    let Guest {
        served: s,
        image: img,
        trust_dir,
        tpm,
        ca,
        mut vm,
        agent,
        staff,
        staff_b: (b_cert, b_key),
        agent_binary: _,
    } = boot(ctx, n)?;
    let stattest = build_stattest()?;
    let check_cmd = |agent: &str| {
        let mut c = cmd(&stattest);
        c.args(["check", "--agent", agent, "--trust-policy"])
            .arg(&trust_dir);
        vendor_args(&mut c, &ca);
        c
    };

    n.step(
        "a third party checks the server: stattest check (EK certificate chain, credential \
         activation, fresh quote, event logs replayed, package signatures and Sigsum, TLS key bound)",
    );
    let saved = ctx.path("attestation.json");
    let (ok, text) = attempt(check_cmd(&agent).arg("--out").arg(&saved))?;
    ensure!(
        ok && text.contains("accepted: "),
        "stattest check refused the server: {text}"
    );
    n.show(key_line(&text, "accepted: "));

    n.step(
        "a standard tool checks the same quote: tpm2_checkquote (AK public as PEM via tpm2_print)",
    );
    n.show(&checkquote(ctx, &saved)?);

    n.step("the same check under another trust policy (another OS package signing root)");
    let other = ctx.signing_keys("other-root")?;
    let other_dir = TrustPolicy::network(&other.root_cert)
        .tls_roots(&s.pki.ca_cert)
        .write(ctx, "other-trust")?;
    let mut wrong = cmd(&stattest);
    wrong
        .args(["check", "--agent", &agent, "--trust-policy"])
        .arg(&other_dir);
    vendor_args(&mut wrong, &ca);
    let (ok, text) = attempt(&mut wrong)?;
    ensure!(
        !ok && text.contains("refused"),
        "another trust policy was accepted: {text}"
    );
    n.show(reason(&text));

    n.step(
        "staff member A signs a go-ahead (stmgr deploy authorize attests first), posted with 1 of \
         the 2 signatures needed",
    );
    let go_ahead = ctx.path("go-ahead.json");
    let authorize = |key: &Path, cert: &Path| -> Result<String> {
        let mut c = cmd(ctx.stmgr()?);
        c.args(["deploy", "authorize", "--key"])
            .arg(key)
            .arg("--cert")
            .arg(cert)
            .args(["--agent", &agent, "--trust-policy"])
            .arg(&trust_dir)
            .arg("--go-ahead")
            .arg(&go_ahead);
        vendor_args(&mut c, &ca);
        let (ok, text) = attempt(&mut c)?;
        if !ok {
            bail!("stmgr deploy authorize failed: {text}");
        }
        Ok(key_line(&text, "stmgr: signed").to_owned())
    };
    n.show(&authorize(&staff.key, &staff.cert)?);
    let post = |agent: &str, file: &Path| -> Result<(bool, String)> {
        attempt(
            cmd(&stattest)
                .args(["go-ahead", "--agent", agent, "--file"])
                .arg(file),
        )
    };
    let (ok, text) = post(&agent, &go_ahead)?;
    ensure!(
        !ok && text.contains("1 of 1 signatures valid, 2 required"),
        "{text}"
    );
    n.show(go_ahead_refusal(&text));

    n.step("a go-ahead for another boot (its statement names another AK) is posted");
    let mut other_boot: serde_json::Value = serde_json::from_slice(&fs::read(&go_ahead)?)?;
    let statement = other_boot["statement"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut lines: Vec<String> = statement.lines().map(str::to_owned).collect();
    if let Some(l) = lines.get_mut(1) {
        *l = format!("ak-name 000b{}", "ab".repeat(32));
    }
    other_boot["statement"] = format!("{}\n", lines.join("\n")).into();
    let other_file = ctx.path("go-ahead-other-boot.json");
    fs::write(&other_file, serde_json::to_vec(&other_boot)?)?;
    let (ok, text) = post(&agent, &other_file)?;
    ensure!(!ok && text.contains("another attestation key"), "{text}");
    n.show(go_ahead_refusal(&text));

    n.step("staff member B signs too; the go-ahead is posted");
    n.show(&authorize(&b_key, &b_cert)?);
    let (ok, text) = post(&agent, &go_ahead)?;
    ensure!(ok && text.contains("serving"), "{text}");
    if let Some(l) = text.lines().find(|l| l.contains("serving")) {
        n.show(&format!("the agent answered: {}", l.trim()));
    }
    let (line, _) = vm.wait_for("ST-AGENT: serving: go-ahead by", Duration::from_secs(60))?;
    let by = after(&line, "go-ahead by ");
    let (a, b) = (staff_name(&staff.cert)?, staff_name(&b_cert)?);
    ensure!(
        by.split(", ").any(|x| x == a) && by.split(", ").any(|x| x == b),
        "the agent says it was authorised by {by}, not by staff members A ({a}) and B ({b})"
    );
    n.show(&format!(
        "the agent: serving: go-ahead by staff member A ({a}) and B ({b})"
    ));

    n.step("a client checks again before using the service: still this boot, still bound");
    let (ok, text) = attempt(&mut check_cmd(&agent))?;
    ensure!(ok && text.contains("accepted: "), "{text}");
    n.show(key_line(&text, "accepted: "));

    n.step(
        "power cycle (same TPM, PCRs reset): stboot boots again, the agent makes new keys and a \
         new AK and waits again",
    );
    let old_ak = vm
        .lines()
        .iter()
        .find(|l| l.contains("ak-name "))
        .map(|l| after(l, "ak-name ").to_owned());
    drop(vm);
    drop(tpm);
    let tpm = Swtpm::resume(ctx, "tpm")?;
    let (vm, agent2) = boot_vm(ctx, &img, &tpm, Some("reboot"))?;
    let new_ak = show_agent_start(&vm, n);
    if let (Some(old), Some(new)) = (&old_ak, &new_ak) {
        ensure!(old != new, "the same AK after a power cycle: {old}");
        n.show("  another AK than the first boot's");
    }

    n.step("the old go-ahead is posted to the new boot");
    let (ok, text) = post(&agent2, &go_ahead)?;
    ensure!(!ok && text.contains("another attestation key"), "{text}");
    n.show(go_ahead_refusal(&text));

    n.step("stattest check of the new boot");
    let (ok, text) = attempt(&mut check_cmd(&agent2))?;
    ensure!(
        ok && text.contains("accepted: "),
        "after the reboot: {text}"
    );
    n.show(key_line(&text, "accepted: "));
    ensure!(
        !vm.has_line("ST-AGENT: serving"),
        "the agent served after a reboot without a new go-ahead"
    );
    n.show("the agent is still waiting: no go-ahead for this boot");
    drop(vm);
    drop(s);
    Ok(())
}
