//! The guest kernel: a Debian `linux-image-*-amd64` package, downloaded with `apt-get download`
//! and unpacked with `dpkg-deb -x` into `target/e2e-cache/linux-<version>/` (kept between runs).
//!
//! The version is pinned ([`PINNED`]); when the archive no longer has it (bookworm-security moves
//! on and old ABI packages disappear) we take whatever `linux-image-amd64` depends on today. A
//! directory given in `E2E_KERNEL_DIR` (an unpacked kernel .deb) is used instead, without apt.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::util::{cmd, output, run, say, succeeds, target_dir};

/// The pinned kernel ABI (`linux-image-<PINNED>`), what `linux-image-amd64` depended on when the
/// harness was written.
pub(crate) const PINNED: &str = "6.1.0-56-amd64";

/// An unpacked Debian kernel package.
#[derive(Debug, Clone)]
pub(crate) struct Kernel {
    /// Kernel release, e.g. `6.1.0-56-amd64`.
    pub(crate) version: String,
    /// The bzImage.
    pub(crate) vmlinuz: PathBuf,
    /// `.../lib/modules/<version>`.
    pub(crate) modules_root: PathBuf,
}

/// Directory holding the cached kernels.
fn cache_dir() -> PathBuf {
    target_dir().join("e2e-cache")
}

/// Finds (or downloads) the kernel.
pub(crate) fn get() -> Result<Kernel> {
    if let Some(dir) = std::env::var_os("E2E_KERNEL_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        let version = only_module_dir(&dir)?;
        say!(
            "e2e: kernel {version} from E2E_KERNEL_DIR={}",
            dir.display()
        );
        return Kernel::from_unpacked(&dir, &version);
    }
    // A cached pin needs no apt at all.
    if let Ok(k) = cached(PINNED) {
        return Ok(k);
    }
    let version = if available(PINNED) {
        PINNED.to_owned()
    } else {
        let v = current_meta_dependency()?;
        say!("e2e: pinned kernel {PINNED} is gone from the archive; using {v}");
        v
    };
    if let Ok(k) = cached(&version) {
        return Ok(k);
    }
    download(&version)?;
    cached(&version)
}

/// A complete cached unpack of `version`.
fn cached(version: &str) -> Result<Kernel> {
    let dir = cache_dir().join(format!("linux-{version}"));
    if !dir.join(".complete").is_file() {
        bail!("kernel {version} not cached in {}", dir.display());
    }
    Kernel::from_unpacked(&dir, version)
}

/// True if apt knows `linux-image-<version>`.
fn available(version: &str) -> bool {
    succeeds(cmd("apt-cache").args(["show", &format!("linux-image-{version}")]))
}

/// The ABI `linux-image-amd64` depends on now (`apt-cache depends`).
fn current_meta_dependency() -> Result<String> {
    let out = output(cmd("apt-cache").args(["depends", "linux-image-amd64"]))?;
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: linux-image-"))
        .find(|v| v.ends_with("-amd64"))
        .map(str::to_owned)
        .context("`apt-cache depends linux-image-amd64` names no linux-image-*-amd64")
}

/// `apt-get download` + `dpkg-deb -x` into the cache.
fn download(version: &str) -> Result<()> {
    let cache = cache_dir();
    let debs = cache.join("debs");
    fs::create_dir_all(&debs)?;
    let package = format!("linux-image-{version}");
    let find_deb = || -> Option<PathBuf> {
        fs::read_dir(&debs)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{package}_")) && n.ends_with(".deb"))
            })
    };
    if find_deb().is_none() {
        say!("e2e: downloading {package} (about 70 MB)");
        run(cmd("apt-get")
            .args(["download", &package])
            .current_dir(&debs))?;
    }
    let deb = find_deb().with_context(|| format!("apt-get download left no {package}_*.deb"))?;
    let dir = cache.join(format!("linux-{version}"));
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    run(cmd("dpkg-deb").arg("-x").arg(&deb).arg(&dir))?;
    Kernel::from_unpacked(&dir, version)?;
    fs::write(dir.join(".complete"), format!("{}\n", deb.display()))?;
    // The unpacked tree is all we need; the .deb is 70 MB.
    fs::remove_file(&deb).ok();
    Ok(())
}

/// The single `lib/modules/<version>` directory of an unpacked package.
fn only_module_dir(dir: &Path) -> Result<String> {
    for lib in ["lib/modules", "usr/lib/modules"] {
        if let Ok(rd) = fs::read_dir(dir.join(lib)) {
            let names: Vec<String> = rd
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                .collect();
            if let [one] = names.as_slice() {
                return Ok(one.clone());
            }
        }
    }
    bail!(
        "{}: expected exactly one lib/modules/<version>",
        dir.display()
    )
}

impl Kernel {
    fn from_unpacked(dir: &Path, version: &str) -> Result<Self> {
        let vmlinuz = dir.join("boot").join(format!("vmlinuz-{version}"));
        if !vmlinuz.is_file() {
            bail!("no {}", vmlinuz.display());
        }
        let modules_root = ["lib/modules", "usr/lib/modules"]
            .iter()
            .map(|l| dir.join(l).join(version))
            .find(|p| p.is_dir())
            .with_context(|| format!("{}: no lib/modules/{version}", dir.display()))?;
        Ok(Self {
            version: version.to_owned(),
            vmlinuz,
            modules_root,
        })
    }

    /// Every `.ko` under the modules root, by module name (`-` normalised to `_`).
    fn module_index(&self) -> Result<BTreeMap<String, PathBuf>> {
        let mut index = BTreeMap::new();
        let mut stack = vec![self.modules_root.join("kernel")];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
                let path = entry?.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Some(stem) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(".ko"))
                {
                    index.insert(normalise(stem), path.clone());
                }
            }
        }
        Ok(index)
    }

    /// The `.ko` files of the named modules and everything they depend on, dependencies first
    /// (the order to `insmod` them in). Dependencies come from each module's `depends=` entry in
    /// `.modinfo`; the package ships no `modules.dep`.
    pub(crate) fn module_closure(&self, names: &[&str]) -> Result<Vec<PathBuf>> {
        let index = self.module_index()?;
        let mut order = Vec::new();
        let mut done = BTreeSet::new();
        for name in names {
            visit(
                &index,
                &normalise(name),
                &mut Vec::new(),
                &mut done,
                &mut order,
            )?;
        }
        Ok(order)
    }
}

/// Depth-first post-order: a module comes after all of its dependencies.
fn visit(
    index: &BTreeMap<String, PathBuf>,
    name: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
    order: &mut Vec<PathBuf>,
) -> Result<()> {
    if done.contains(name) {
        return Ok(());
    }
    if path.iter().any(|p| p == name) {
        bail!("module dependency cycle: {} -> {name}", path.join(" -> "));
    }
    let ko = index
        .get(name)
        .with_context(|| format!("no module {name}.ko (needed via {})", path.join(" -> ")))?;
    let bytes = fs::read(ko).with_context(|| format!("reading {}", ko.display()))?;
    path.push(name.to_owned());
    for dep in modinfo_depends(&bytes) {
        visit(index, &dep, path, done, order)?;
    }
    path.pop();
    done.insert(name.to_owned());
    order.push(ko.clone());
    Ok(())
}

/// The comma-separated `depends=` list of a module: the NUL-terminated string that starts with
/// `depends=` right after a NUL (entries in `.modinfo` are NUL-separated).
pub(crate) fn modinfo_depends(ko: &[u8]) -> Vec<String> {
    const KEY: &[u8] = b"\0depends=";
    let Some(at) = ko.windows(KEY.len()).position(|w| w == KEY) else {
        return Vec::new();
    };
    let rest = &ko[at + KEY.len()..];
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    String::from_utf8_lossy(&rest[..end])
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(normalise)
        .collect()
}

fn normalise(name: &str) -> String {
    name.replace('-', "_")
}
