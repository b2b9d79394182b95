//! `stprov offline`: the ST variables written into an OVMF variable store file
//! (`st_format::efi_varstore`), so a VM or a fleet image is provisioned before its first boot.
//! The host config is checked with stboot's parser and stored in the same compact form
//! `remote static|dhcp` writes.

use std::io::{Read as _, Write as _};
use std::path::Path;

use st_format::HostConfig;
use st_format::efi_varstore::{EfiGuid, MAX_STORE_FILE_BYTES, VarStore};
use st_format::limits::MAX_HOST_CONFIG_BYTES;

use crate::Failure;
use crate::nvram::{HOST_CONFIG, HOST_KEY, HOST_NAME};

/// The ST vendor GUID.
pub fn st_guid() -> EfiGuid {
    // A constant that parses; the fallback is never taken.
    st_host::efi::ST_VENDOR_GUID
        .parse()
        .unwrap_or(EfiGuid::from_bytes([0; 16]))
}

fn read_capped(path: &Path, max: usize) -> Result<Vec<u8>, Failure> {
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::Other(format!("{}: {e}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::Other(format!("{}: {e}", path.display())))?;
    if bytes.len() > max {
        return Err(Failure::Usage(format!(
            "{}: larger than {max} bytes",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Reads and parses a variable store file (the file is named on error).
pub fn load(path: &Path) -> Result<VarStore, Failure> {
    let bytes = read_capped(path, MAX_STORE_FILE_BYTES)?;
    VarStore::parse(bytes).map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))
}

/// Reads and checks a host config file; returns the bytes to store.
pub fn host_config_bytes(path: &Path) -> Result<Vec<u8>, Failure> {
    let bytes = read_capped(path, MAX_HOST_CONFIG_BYTES)?;
    let hc = HostConfig::from_json(&bytes)
        .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
    Ok(hc.to_json_compact())
}

/// Sets the given ST variables in `store`.
pub fn set(
    store: &mut VarStore,
    host_config: Option<&[u8]>,
    hostname: Option<&str>,
) -> Result<(), Failure> {
    let guid = st_guid();
    let attrs = st_host::efi::ATTR_NV_BS_RT;
    let vars = [
        (HOST_NAME, hostname.map(str::as_bytes)),
        (HOST_CONFIG, host_config),
    ];
    for (name, data) in vars {
        if let Some(data) = data {
            store
                .set(name, &guid, attrs, data)
                .map_err(|e| Failure::Usage(e.to_string()))?;
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically (a temporary file beside it, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let err = |e: std::io::Error| Failure::Other(format!("{}: {e}", path.display()));
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.stprov-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(err)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })
}

/// `offline show`: one line per live variable, then the ST variables' contents.
pub fn show(store: &VarStore) -> String {
    let guid = st_guid();
    let mut out = String::new();
    for r in store.records().iter().filter(|r| r.is_live()) {
        out.push_str(&format!(
            "{}-{} attributes={:#x} size={}\n",
            r.name,
            r.guid,
            r.attributes,
            r.data.len()
        ));
    }
    for name in [HOST_CONFIG, HOST_NAME] {
        if let Some(r) = store.get(name, &guid) {
            out.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(&r.data)));
        }
    }
    if store.get(HOST_KEY, &guid).is_some() {
        out.push_str(&format!("{HOST_KEY}: present (not shown)\n"));
    }
    out.push_str(&format!("free bytes: {}\n", store.free_bytes()));
    out
}
