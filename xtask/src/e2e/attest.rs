//! Remote attestation end to end (issue 10, docs/attestation.md): a Sigsum-logged package
//! whose test OS runs the attestation agent boots on a swtpm with an EK certificate; on the
//! host `stattest check` accepts the attestation (and refuses it under another trust policy), a
//! go-ahead for another boot and one with too few signatures are refused, and after two staff
//! members ran `stmgr deploy authorize` the agent starts serving.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};

use super::hostconfig::HostConfigJson;
use super::nginx::free_port;
use super::ospkg::Cpio;
use super::run::{Serve, StbootImage, StbootRun, TrustPolicy};
use super::stboot::{build_agent, build_stattest};
use super::swtpm::Swtpm;
use super::{Ctx, SigningKeys};
use crate::util::{cmd, run, say};

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

/// A second staff member under the same deploy root.
fn second_staff(
    ctx: &Ctx<'_>,
    staff: &SigningKeys,
) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
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

/// The whole story, one step per console line.
pub(crate) fn attestation(ctx: &Ctx<'_>) -> Result<()> {
    let staff = ctx.signing_keys("staff")?;
    let (b_cert, b_key) = second_staff(ctx, &staff)?;
    let mut files = Cpio::new();
    files
        .dir("etc")
        .dir("etc/st-agent")
        .file("bin/st-agent", 0o755, &fs::read(build_agent()?)?)
        .file(
            "etc/st-agent/deploy_root.pem",
            0o644,
            &fs::read(&staff.root_cert)?,
        )
        .file("etc/st-agent/deploy_threshold", 0o644, b"2\n");
    let s = Serve::new(ctx)
        .sigsum_logged()
        .os("e2e.agent=1", files)
        .start()?;
    let trust = s.trust();
    let img = StbootImage::new(ctx, trust)
        .host_config(&HostConfigJson::slirp().pointer(&s.nginx.https_url("/os.json")?))
        .build()?;
    let trust_dir = ctx.path("trust");
    let (tpm, ca) = Swtpm::start_with_ek_certificate(ctx, "tpm")?;
    let port = free_port()?;
    let agent = format!("127.0.0.1:{port}");
    let mut vm = StbootRun::new(ctx, &img)
        .extra_qemu(tpm.qemu_args())
        .hostfwd(&format!("tcp:127.0.0.1:{port}-:8443"))
        .timeout(Duration::from_secs(300))
        .start()?;
    vm.wait_for("ST-AGENT: waiting", Duration::from_secs(120))?;
    let stattest = build_stattest()?;
    let vendor = |c: &mut Command| {
        c.arg("--vendor-ca")
            .arg(&ca.root)
            .arg("--vendor-ca")
            .arg(&ca.intermediate);
    };
    // 1. A third party checks the server.
    let mut check = cmd(&stattest);
    check
        .args(["check", "--agent", &agent, "--trust-policy"])
        .arg(&trust_dir);
    vendor(&mut check);
    let (ok, text) = attempt(&mut check)?;
    ensure!(
        ok && text.contains("accepted: "),
        "stattest check refused the server: {text}"
    );
    // 2. Under another trust policy (another signing root) it is refused.
    let other = ctx.signing_keys("other-root")?;
    let other_dir = TrustPolicy::network(&other.root_cert)
        .tls_roots(&s.pki.ca_cert)
        .write(ctx, "other-trust")?;
    let mut wrong = cmd(&stattest);
    wrong
        .args(["check", "--agent", &agent, "--trust-policy"])
        .arg(&other_dir);
    vendor(&mut wrong);
    let (ok, text) = attempt(&mut wrong)?;
    ensure!(
        !ok && text.contains("refused"),
        "another trust policy was accepted: {text}"
    );
    // 3. One staff signature is not enough; a go-ahead for another boot is refused.
    let go_ahead = ctx.path("go-ahead.json");
    let authorize = |key: &Path, cert: &Path| -> Result<()> {
        let mut c = cmd(ctx.stmgr()?);
        c.args(["deploy", "authorize", "--key"])
            .arg(key)
            .arg("--cert")
            .arg(cert)
            .args(["--agent", &agent, "--trust-policy"])
            .arg(&trust_dir)
            .arg("--go-ahead")
            .arg(&go_ahead);
        vendor(&mut c);
        run(&mut c)
    };
    authorize(&staff.key, &staff.cert)?;
    let post = |file: &Path| -> Result<(bool, String)> {
        attempt(
            cmd(&stattest)
                .args(["go-ahead", "--agent", &agent, "--file"])
                .arg(file),
        )
    };
    let (ok, text) = post(&go_ahead)?;
    ensure!(
        !ok && text.contains("1 of 1 signatures valid, 2 required"),
        "{text}"
    );
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
    let (ok, text) = post(&other_file)?;
    ensure!(!ok && text.contains("another attestation key"), "{text}");
    // 4. The second staff member signs; the agent starts serving.
    authorize(&b_key, &b_cert)?;
    let (ok, text) = post(&go_ahead)?;
    ensure!(ok && text.contains("serving"), "{text}");
    vm.wait_for("ST-AGENT: serving: go-ahead by", Duration::from_secs(60))?;
    // 5. A client checks again before using the service: still this boot, still bound.
    let (ok, text) = attempt(&mut check)?;
    ensure!(ok && text.contains("accepted: "), "{text}");
    // 6. Power cycle (same TPM): new keys, a new AK, waiting again; the old go-ahead is for
    // another boot.
    drop(vm);
    drop(tpm);
    let tpm = Swtpm::resume(ctx, "tpm")?;
    let port2 = free_port()?;
    let agent2 = format!("127.0.0.1:{port2}");
    let mut vm = StbootRun::new(ctx, &img)
        .extra_qemu(tpm.qemu_args())
        .hostfwd(&format!("tcp:127.0.0.1:{port2}-:8443"))
        .timeout(Duration::from_secs(300))
        .start_in("reboot")?;
    vm.wait_for("ST-AGENT: waiting", Duration::from_secs(120))?;
    let (ok, text) = attempt(
        cmd(&stattest)
            .args(["go-ahead", "--agent", &agent2, "--file"])
            .arg(&go_ahead),
    )?;
    ensure!(!ok && text.contains("another attestation key"), "{text}");
    let mut check2 = cmd(&stattest);
    check2
        .args(["check", "--agent", &agent2, "--trust-policy"])
        .arg(&trust_dir);
    vendor(&mut check2);
    let (ok, text) = attempt(&mut check2)?;
    ensure!(
        ok && text.contains("accepted: "),
        "after the reboot: {text}"
    );
    ensure!(
        !vm.has_line("ST-AGENT: serving"),
        "the agent served after a reboot without a new go-ahead"
    );
    drop(vm);
    Ok(())
}
