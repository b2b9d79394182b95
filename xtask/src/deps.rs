//! Debian packages the project needs, installed when missing. The list is
//! `xtask/debian-packages.txt`, shared with `.ci/run`: each package is tagged with the commands
//! that need it (`test`, `demo`).

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::util::{cmd, run, say, succeeds};

/// The shared package list (see the file's header for the format).
const LIST: &str = include_str!("../debian-packages.txt");

/// Who needs a package: a tag in the list's second column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum For {
    /// `cargo xtask test` (and so `.ci/run`): everything the suite runs.
    Test,
    /// `cargo xtask demo` and `cargo xtask bench-boot`: QEMU, nginx, the test OS.
    Demo,
}

impl For {
    fn tag(self) -> &'static str {
        match self {
            Self::Test => "test",
            Self::Demo => "demo",
        }
    }
}

/// The packages of [`LIST`] tagged for `who`, in list order.
fn packages(list: &str, who: For) -> Result<Vec<&str>> {
    let mut out = Vec::new();
    for (n, line) in list.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut cols = line.split_whitespace();
        let (Some(pkg), Some(tags)) = (cols.next(), cols.next()) else {
            bail!(
                "xtask/debian-packages.txt line {}: want `package tags why`",
                n + 1
            );
        };
        if tags.split(',').any(|t| t == who.tag()) {
            out.push(pkg);
        }
    }
    Ok(out)
}

fn as_root(args: &[&str]) -> Command {
    let root = crate::util::output(cmd("id").arg("-u")).is_ok_and(|s| s.trim() == "0");
    let mut c = if root { cmd(args[0]) } else { cmd("sudo") };
    if root {
        c.args(&args[1..]);
    } else {
        c.args(args);
    }
    c.env("DEBIAN_FRONTEND", "noninteractive");
    c
}

/// The packages of `pkgs` that dpkg does not report as installed.
fn missing<'a>(pkgs: &[&'a str]) -> Result<Vec<&'a str>> {
    // Exits 1 when some package is unknown to dpkg; the lines it prints are what counts.
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Package} ${db:Status-Abbrev}\\n"])
        .args(pkgs)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .context("could not run dpkg-query (is this a Debian machine?)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let installed: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            let (name, status) = l.split_once(' ')?;
            // "ii " = wanted install, installed; anything else needs apt.
            status
                .starts_with("ii")
                .then(|| name.split(':').next().unwrap_or(name))
        })
        .collect();
    Ok(pkgs
        .iter()
        .copied()
        .filter(|p| !installed.contains(p))
        .collect())
}

/// Install with apt-get whatever of the packages tagged for `who` is missing. Handles the one
/// known conflict on these machines: a qemu-utils from bookworm-backports (>= 8) Breaks
/// bookworm's QEMU 7.2, so qemu-utils is then taken from the release QEMU comes from (a
/// downgrade apt must be allowed).
pub(crate) fn ensure(who: For) -> Result<()> {
    let wanted = packages(LIST, who)?;
    let missing = missing(&wanted)?;
    if missing.is_empty() {
        say!(
            "deps: the {} Debian packages for `{}` are present",
            wanted.len(),
            who.tag()
        );
        return Ok(());
    }
    say!("deps: installing {} with apt-get", missing.join(" "));
    run(&mut as_root(&["apt-get", "update"]))?;
    let mut pkgs: Vec<String> = missing.iter().map(|s| (*s).to_owned()).collect();
    if missing.contains(&"qemu-system-x86") && !pkgs.iter().any(|p| p == "qemu-utils") {
        pkgs.push("qemu-utils".into());
    }
    let mut extra: Vec<&str> = Vec::new();
    if pkgs.iter().any(|p| p == "qemu-utils") {
        let simulate = {
            let mut c = as_root(&["apt-get", "install", "-s", "--no-install-recommends"]);
            c.args(&pkgs);
            succeeds(&mut c)
        };
        if !simulate {
            let codename = crate::util::output(
                cmd("sh").args(["-c", ". /etc/os-release && echo $VERSION_CODENAME"]),
            )
            .unwrap_or_default();
            for p in &mut pkgs {
                if p == "qemu-utils" {
                    *p = format!("qemu-utils/{}", codename.trim());
                }
            }
            extra.push("--allow-downgrades");
        }
    }
    let mut c = as_root(&["apt-get", "install", "-y", "--no-install-recommends"]);
    c.args(&extra).args(&pkgs);
    run(&mut c).context("apt-get install (the list: xtask/debian-packages.txt)")
}

/// Add the rustup components `cargo xtask test` runs (rustfmt, clippy) when missing. Without
/// rustup (a distribution toolchain) this only checks that the tools answer.
pub(crate) fn ensure_rust_components() -> Result<()> {
    let have = |tool: &str| succeeds(crate::util::cargo().args([tool, "--version"]));
    if have("fmt") && have("clippy") {
        return Ok(());
    }
    if !succeeds(cmd("rustup").arg("--version")) {
        bail!("cargo fmt / cargo clippy are missing and there is no rustup to add them");
    }
    run(cmd("rustup").args(["component", "add", "rustfmt", "clippy"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_parses_and_tags_select() {
        let test = packages(LIST, For::Test).unwrap();
        let demo = packages(LIST, For::Demo).unwrap();
        for p in ["cpio", "dnsmasq-base", "qemu-system-x86", "nginx", "ovmf"] {
            assert!(test.contains(&p), "{p} not tagged test");
        }
        assert!(demo.contains(&"nginx") && !demo.contains(&"cpio"));
        // `cargo xtask demo --uefi`: firmware, TPM, the UKI's stub.
        for p in ["ovmf", "swtpm", "swtpm-tools", "systemd-boot-efi"] {
            assert!(demo.contains(&p), "{p} not tagged demo");
        }
        // Everything the demo needs, the test suite needs too (it runs the same boot).
        assert!(demo.iter().all(|p| test.contains(p)));
    }

    #[test]
    fn a_line_without_tags_is_an_error() {
        let e = packages("# c\n\nfoo\n", For::Test).unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
    }
}
