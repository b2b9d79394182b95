//! Debian packages the demo and the end-to-end suite need, installed when missing.

use anyhow::{Context, Result};

use crate::util::{cmd, run, say, succeeds};

/// (a file the package provides, the package).
const NEEDED: &[(&str, &str)] = &[
    ("/usr/bin/qemu-system-x86_64", "qemu-system-x86"),
    ("/usr/sbin/nginx", "nginx"),
    ("/bin/busybox", "busybox-static"),
    ("/usr/bin/dpkg-deb", "dpkg"),
];

fn as_root(args: &[&str]) -> std::process::Command {
    let root = output_trim(cmd("id").arg("-u")) == "0";
    let mut c = if root { cmd(args[0]) } else { cmd("sudo") };
    if root {
        c.args(&args[1..]);
    } else {
        c.args(args);
    }
    c.env("DEBIAN_FRONTEND", "noninteractive");
    c
}

fn output_trim(c: &mut std::process::Command) -> String {
    crate::util::output(c)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Install whatever of [`NEEDED`] is missing, with apt-get. Handles the one known conflict on
/// these machines: a qemu-utils from bookworm-backports (>= 8) Breaks bookworm's QEMU 7.2, so
/// qemu-utils is then taken from the release QEMU comes from (a downgrade apt must be allowed).
pub(crate) fn ensure() -> Result<()> {
    let missing: Vec<&str> = NEEDED
        .iter()
        .filter(|(file, _)| !std::path::Path::new(file).exists())
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        say!("deps: qemu, nginx, busybox present");
        return Ok(());
    }
    say!("deps: installing {} with apt-get", missing.join(" "));
    run(&mut as_root(&["apt-get", "update"]))?;
    let mut pkgs: Vec<String> = missing.iter().map(|s| (*s).to_owned()).collect();
    let mut extra: Vec<&str> = Vec::new();
    if missing.contains(&"qemu-system-x86") {
        pkgs.push("qemu-utils".into());
        let simulate = {
            let mut c = as_root(&["apt-get", "install", "-s", "--no-install-recommends"]);
            c.args(&pkgs);
            succeeds(&mut c)
        };
        if !simulate {
            let codename =
                output_trim(cmd("sh").args(["-c", ". /etc/os-release && echo $VERSION_CODENAME"]));
            for p in &mut pkgs {
                if p == "qemu-utils" {
                    *p = format!("qemu-utils/{codename}");
                }
            }
            extra.push("--allow-downgrades");
        }
    }
    let mut c = as_root(&["apt-get", "install", "-y", "--no-install-recommends"]);
    c.args(&extra).args(&pkgs);
    run(&mut c).context("apt-get install (see .ci/run for the package list)")
}
