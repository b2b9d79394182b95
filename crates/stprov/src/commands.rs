//! Each subcommand from flags to effects. The order of `remote static|dhcp` is the
//! reference's, with every check that can fail early done first: flags and the host config
//! (nothing touched), NVRAM writable, network up, every URL answers, then the two writes
//! (`STHostName`, `STHostConfig`).

use std::io::{BufRead as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, SystemTime};

use st_format::BondingMode;
use st_verify::UnixTime;
use url::Url;

use crate::Failure;
use crate::cli::{self, CommonArgs, DhcpArgs, LocalRunArgs, OfflineShowArgs, OfflineWriteArgs};
use crate::cli::{RemoteRunArgs, StaticArgs};
use crate::config::{self, Addressing, Interface, Parts};
use crate::netsetup::{self, Selection};
use crate::nvram::{HOST_CONFIG, HOST_KEY, HOST_NAME, Nvram};
use crate::protocol::{self, SecureBootKeys, ServerConfig};
use crate::urlcheck::{self, CheckTiming};

/// EFI global variable GUID (`SetupMode`, `PK`, `KEK`, `OsIndications`).
pub const EFI_GLOBAL_GUID: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";
/// Image security database GUID (`db`, `dbx`).
pub const EFI_IMAGE_SECURITY_GUID: &str = "d719b2cb-3d3a-4596-a3bc-dad00e67656f";
/// NV|BS|RT|TIME_BASED_AUTHENTICATED_WRITE_ACCESS, for the Secure Boot variables.
const ATTR_AUTHENTICATED: u32 = st_host::efi::ATTR_NV_BS_RT | 0x20;

/// The system clock as the verifier's time.
pub fn now() -> UnixTime {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    UnixTime::from_secs(secs)
}

/// `remote static`.
pub fn remote_static(a: &StaticArgs) -> Result<(), Failure> {
    let (cidr, gateway) = config::host_and_gateway(
        a.ip.as_deref(),
        a.gateway.as_deref(),
        a.try_last_gateway,
        a.common.force,
    )?;
    let bonding = if a.bonding.is_empty() && !a.bonding_auto {
        None
    } else {
        Some(BondingMode::from_name(&a.bonding_mode).ok_or_else(|| {
            Failure::Usage(format!(
                "-M/--bonding-mode {:?}: unknown (balance-rr, active-backup, balance-xor, \
                 broadcast, 802.3ad, balance-tlb, balance-alb)",
                a.bonding_mode
            ))
        })?)
    };
    let sel = netsetup::selection(
        a.common.mac.as_deref(),
        a.common.interface.as_deref(),
        a.autodetect,
        a.bonding_auto,
        &a.bonding,
    )?;
    if a.autodetect {
        log::warn!("-A: picking the first interface with a carrier (the gateway is not pinged)");
    }
    provision(&a.common, Addressing::Static(cidr, gateway), sel, bonding)
}

/// `remote dhcp`.
pub fn remote_dhcp(a: &DhcpArgs) -> Result<(), Failure> {
    let sel = netsetup::selection(
        a.common.mac.as_deref(),
        a.common.interface.as_deref(),
        false,
        false,
        &[],
    )?;
    provision(&a.common, Addressing::Dhcp, sel, None)
}

fn urls(c: &CommonArgs) -> Result<Vec<String>, Failure> {
    let templates: Vec<String> = if c.url.is_empty() {
        vec![cli::DEFAULT_URL.to_owned()]
    } else {
        c.url.clone()
    };
    templates
        .iter()
        .filter(|t| !t.is_empty())
        .map(|t| config::construct_url(t, &c.user, &c.pass))
        .collect()
}

/// Interfaces without looking at the machine (`--no-network-setup`): what the flags say.
fn interfaces_as_given(sel: &Selection) -> Result<(Vec<Interface>, bool), Failure> {
    match sel {
        Selection::Mac(m) => Ok((
            vec![Interface {
                name: None,
                mac: Some(*m),
            }],
            false,
        )),
        Selection::Name(n) => Ok((
            vec![Interface {
                name: Some(n.clone()),
                mac: None,
            }],
            false,
        )),
        Selection::Bond(b) => Ok((
            b.iter()
                .map(|n| Interface {
                    name: Some(n.clone()),
                    mac: None,
                })
                .collect(),
            true,
        )),
        _ => Err(Failure::Usage(
            "--no-network-setup needs the interface given with -m, -I or -b".into(),
        )),
    }
}

fn provision(
    c: &CommonArgs,
    addressing: Addressing,
    sel: Selection,
    bonding: Option<BondingMode>,
) -> Result<(), Failure> {
    let hostname = config::host_name(c.host.as_deref(), c.full_host.as_deref())?;
    let dns_values: Vec<String> = if c.dns.is_empty() {
        cli::DEFAULT_DNS.split(',').map(str::to_owned).collect()
    } else {
        c.dns.clone()
    };
    let dns = config::dns_servers(&dns_values)?;
    let urls = urls(c)?;
    let description = config::description(now());
    // Checked once before touching anything, with a placeholder interface.
    let mut parts = Parts {
        addressing,
        dns,
        interfaces: Vec::new(),
        bonding: None,
        urls,
        description,
    };
    config::host_config(&parts)?;

    let nvram = Nvram::open(c.efivarfs.as_deref())?;
    log::info!("EFI variables: {}", nvram.root().display());
    let tls_roots = urlcheck::read_tls_roots(&c.tls_roots, now())?;

    let (interfaces, bonded) = if c.no_network_setup {
        interfaces_as_given(&sel)?
    } else {
        let links = netsetup::links()?;
        netsetup::resolve(&sel, &links, |names| {
            netsetup::links_with_carrier(names, c.wait)
        })?
    };
    parts.interfaces = interfaces;
    parts.bonding = bonding.filter(|_| bonded);
    let hc = config::host_config(&parts)?;
    if c.no_network_setup {
        log::info!("network: left as it is (--no-network-setup)");
    } else {
        netsetup::bring_up(&hc, c.wait, &c.resolv_conf)?;
    }

    let parsed: Vec<Url> = hc
        .descriptor_urls()
        .map_err(|e| Failure::Usage(format!("-r/--url: {e}")))?;
    let checked = urlcheck::check_all(&parsed, &tls_roots, CheckTiming::within(c.check_deadline));
    urlcheck::judge(&checked, c.force, tls_roots.is_empty())?;

    nvram.write(HOST_NAME, hostname.as_bytes())?;
    log::info!("{HOST_NAME}: {hostname:?} written");
    nvram.write(HOST_CONFIG, &hc.to_json_compact())?;
    log::info!("{HOST_CONFIG}: written ({} URL(s))", parsed.len());
    Ok(())
}

fn hexdump(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .enumerate()
        .map(|(i, row)| {
            let hex: Vec<String> = row.iter().map(|b| format!("{b:02X}")).collect();
            format!("{:4}  {}", i * 16, hex.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn secure_boot(nvram: &Nvram, keys: &SecureBootKeys) -> Result<(), (u16, String)> {
    match nvram.read_with("SetupMode", EFI_GLOBAL_GUID) {
        Ok(Some(v)) if v == [1] => {}
        Ok(Some(v)) if v == [0] => return Err((403, "not in Secure Boot setup mode".into())),
        other => log::warn!("SetupMode unreadable ({other:?}); trying to proceed anyway"),
    }
    let writes = [
        ("PK", EFI_GLOBAL_GUID, &keys.pk),
        ("KEK", EFI_GLOBAL_GUID, &keys.kek),
        ("db", EFI_IMAGE_SECURITY_GUID, &keys.db),
        ("dbx", EFI_IMAGE_SECURITY_GUID, &keys.dbx),
    ];
    for (name, guid, data) in writes {
        if name == "dbx" && data.is_empty() {
            continue;
        }
        nvram
            .write_with(name, guid, ATTR_AUTHENTICATED, data)
            .map_err(|e| (400, format!("{name}: {e}")))?;
        log::info!("Secure Boot: {name} written");
    }
    if keys.reboot_into_uefi_menu {
        let old = nvram
            .read_with("OsIndications", EFI_GLOBAL_GUID)
            .ok()
            .flatten()
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map_or(0, u64::from_le_bytes);
        if old & 1 == 0 {
            let new = (old | 1).to_le_bytes();
            match nvram.write_with(
                "OsIndications",
                EFI_GLOBAL_GUID,
                st_host::efi::ATTR_NV_BS_RT,
                &new,
            ) {
                Ok(()) => log::info!("asked the firmware to boot into its menu next time"),
                Err(e) => log::warn!("OsIndications: {e}"),
            }
        }
    }
    Ok(())
}

/// `remote run`.
pub fn remote_run(a: &RemoteRunArgs) -> Result<(), Failure> {
    let otp = a
        .otp
        .clone()
        .filter(|o| !o.is_empty())
        .ok_or_else(|| Failure::Usage("-o/--otp: the one-time password is required".into()))?;
    if a.port == 0 {
        return Err(Failure::Usage("-p/--port 0: not in 1..65535".into()));
    }
    let ip_text = config::decode_safe_cidr(&a.ip);
    let ip: IpAddr = ip_text
        .parse()
        .map_err(|e| Failure::Usage(format!("-i/--ip {ip_text:?}: {e}")))?;
    let allow_values: Vec<String> = if a.allow.is_empty() {
        vec![cli::DEFAULT_ALLOWED.to_owned()]
    } else {
        a.allow.clone()
    };
    let allowed = allow_values
        .iter()
        .map(|s| protocol::parse_allowed(s))
        .collect::<Result<Vec<_>, _>>()?;
    let nvram = Nvram::open(a.efivarfs.as_deref())?;
    let hostname = nvram.read(HOST_NAME)?.ok_or_else(|| {
        Failure::Efi(format!(
            "{HOST_NAME} is not set: run stprov remote static or dhcp first"
        ))
    })?;
    let hostname = String::from_utf8_lossy(&hostname).into_owned();
    let addr = SocketAddr::new(ip, a.port);
    let listener = TcpListener::bind(addr)
        .map_err(|e| Failure::Protocol(format!("listening on {addr}: {e}")))?;
    let shown = listener.local_addr().unwrap_or(addr);
    log::info!(
        "listening on {shown} for stprov local run (allowed from: {})",
        allowed
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let cfg = ServerConfig {
        otp,
        allowed,
        hostname,
        request_timeout: Duration::from_secs(15),
    };
    let mut handler = |keys: &SecureBootKeys| secure_boot(&nvram, keys);
    let served = protocol::serve(&listener, &cfg, &mut handler)?;
    log::info!("received entropy:");
    eprintln!("{}", hexdump(&served.local_entropy));
    log::info!("host key fingerprint {}", served.commit.fingerprint);
    if !a.yes {
        eprint!("Press Enter to commit changes, ctrl+c to abort");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        let n = std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::Other(format!("reading the confirmation: {e}")))?;
        if n == 0 {
            return Err(Failure::Other(
                "no confirmation (stdin closed): nothing written".into(),
            ));
        }
    }
    let key = served.device_secret.host_key();
    nvram.write(HOST_KEY, key.openssh_pem().as_bytes())?;
    log::info!("{HOST_KEY}: SSH host key written");
    Ok(())
}

fn read_optional(flag: &str, p: Option<&Path>) -> Result<Vec<u8>, Failure> {
    match p {
        None => Ok(Vec::new()),
        Some(p) => {
            let meta = std::fs::metadata(p)
                .map_err(|e| Failure::Usage(format!("{flag} {}: {e}", p.display())))?;
            if meta.len() > 4 << 20 {
                return Err(Failure::Usage(format!(
                    "{flag} {}: larger than 4 MiB",
                    p.display()
                )));
            }
            std::fs::read(p).map_err(|e| Failure::Usage(format!("{flag} {}: {e}", p.display())))
        }
    }
}

/// `local run`: prints `key=value` lines on stdout.
pub fn local_run(a: &LocalRunArgs) -> Result<(), Failure> {
    let ip_text = a.ip.clone().ok_or_else(|| {
        Failure::Usage("-i/--ip: the address of stprov remote is required".into())
    })?;
    let otp = a
        .otp
        .clone()
        .filter(|o| !o.is_empty())
        .ok_or_else(|| Failure::Usage("-o/--otp: the one-time password is required".into()))?;
    let ip: IpAddr = ip_text
        .parse()
        .map_err(|e| Failure::Usage(format!("-i/--ip {ip_text:?}: {e}")))?;
    if a.port == 0 {
        return Err(Failure::Usage("-p/--port 0: not in 1..65535".into()));
    }
    let keys = SecureBootKeys {
        pk: read_optional("--pk", a.pk.as_deref())?,
        kek: read_optional("--kek", a.kek.as_deref())?,
        db: read_optional("--db", a.db.as_deref())?,
        dbx: read_optional("--dbx", a.dbx.as_deref())?,
        reboot_into_uefi_menu: !a.no_uefi_menu_reboot,
    };
    let any =
        !(keys.pk.is_empty() && keys.kek.is_empty() && keys.db.is_empty() && keys.dbx.is_empty());
    if any && (keys.pk.is_empty() || keys.kek.is_empty() || keys.db.is_empty()) {
        return Err(Failure::Usage(
            "Secure Boot: --pk, --kek and --db are required together (--dbx is optional)".into(),
        ));
    }
    let client = protocol::Client::new(&otp, SocketAddr::new(ip, a.port), a.timeout)?;
    let entropy = client.add_data(now().as_secs())?;
    if any {
        client.add_secure_boot(&keys)?;
    }
    let commit = client.commit()?;
    log::info!("added entropy:");
    eprintln!("{}", hexdump(&entropy));
    let mut out = std::io::stdout().lock();
    let lines = format!(
        "publickey={}\nfingerprint={}\nhostname={}\nip={ip_text}\n",
        commit.publickey, commit.fingerprint, commit.hostname
    );
    out.write_all(lines.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Other(format!("stdout: {e}")))
}

/// `offline write`.
pub fn offline_write(a: &OfflineWriteArgs) -> Result<(), Failure> {
    if a.host_config.is_none() && a.hostname.is_none() {
        return Err(Failure::Usage(
            "offline write: give --host-config and/or --hostname".into(),
        ));
    }
    let hc = a
        .host_config
        .as_deref()
        .map(crate::offline::host_config_bytes)
        .transpose()?;
    if let Some(h) = &a.hostname {
        config::host_name(None, Some(h))?;
    }
    let source = a.from.as_deref().unwrap_or(&a.vars);
    let mut store = crate::offline::load(source)?;
    crate::offline::set(&mut store, hc.as_deref(), a.hostname.as_deref())
        .map_err(|e| Failure::Usage(format!("{}: {e}", source.display())))?;
    crate::offline::write_atomic(&a.vars, &store.into_bytes())?;
    log::info!("{}: ST variables written", a.vars.display());
    Ok(())
}

/// `offline show`.
pub fn offline_show(a: &OfflineShowArgs) -> Result<(), Failure> {
    let store = crate::offline::load(&a.vars)?;
    print!("{}", crate::offline::show(&store));
    Ok(())
}
