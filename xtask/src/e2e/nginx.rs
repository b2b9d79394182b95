//! nginx as the provisioning server: a foreground child (`daemon off; master_process off;`) with
//! a generated config, logs, pid and temp dirs all in one directory, listening on 127.0.0.1
//! (the guest reaches it as 10.0.2.2 through slirp). Killed on drop.

use std::fmt::Write as _;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util::say;

/// The host's loopback as seen from a slirp guest.
pub(crate) const GUEST_HOST: &str = "10.0.2.2";

/// Certificate chain and key for the HTTPS listener.
#[derive(Clone, Debug)]
pub(crate) struct TlsFiles {
    /// PEM certificate (chain), leaf first.
    pub(crate) cert: PathBuf,
    /// PEM private key.
    pub(crate) key: PathBuf,
}

/// What to serve.
#[derive(Clone, Debug)]
pub(crate) struct NginxConfig {
    /// Document root.
    pub(crate) root: PathBuf,
    /// HTTPS listener with these files.
    pub(crate) tls: Option<TlsFiles>,
    /// Also a plain HTTP listener.
    pub(crate) plain_http: bool,
    /// Extra directives inside every `server { }` block, e.g.
    /// `location = /os.zip { return 404; }` or `limit_rate 100k;`.
    pub(crate) server_extra: String,
}

impl NginxConfig {
    /// Plain HTTP only, serving `root`.
    pub(crate) fn http(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
            tls: None,
            plain_http: true,
            server_extra: String::new(),
        }
    }

    /// HTTPS only, serving `root`.
    pub(crate) fn https(root: &Path, tls: TlsFiles) -> Self {
        Self {
            root: root.to_owned(),
            tls: Some(tls),
            plain_http: false,
            server_extra: String::new(),
        }
    }
}

/// One access log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AccessEntry {
    /// HTTP status sent.
    pub(crate) status: u16,
    /// GET, HEAD, ...
    pub(crate) method: String,
    /// Request URI as sent (path and query).
    pub(crate) uri: String,
    /// Body bytes sent.
    pub(crate) bytes: u64,
    /// `https` or `http`.
    pub(crate) scheme: String,
}

/// A running nginx.
pub(crate) struct Nginx {
    child: Child,
    dir: PathBuf,
    /// Port of the HTTPS listener on 127.0.0.1.
    pub(crate) https_port: Option<u16>,
    /// Port of the plain HTTP listener on 127.0.0.1.
    pub(crate) http_port: Option<u16>,
}

/// A free TCP port on 127.0.0.1 (bound and released: a small race we accept).
pub(crate) fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn nginx_binary() -> PathBuf {
    let sbin = Path::new("/usr/sbin/nginx");
    if sbin.is_file() {
        sbin.to_owned()
    } else {
        PathBuf::from("nginx")
    }
}

impl Nginx {
    /// Writes `dir/nginx.conf` and starts nginx; returns once every listener accepts.
    pub(crate) fn start(dir: &Path, cfg: &NginxConfig) -> Result<Self> {
        if cfg.tls.is_none() && !cfg.plain_http {
            bail!("nginx: neither TLS nor plain HTTP requested");
        }
        fs::create_dir_all(dir.join("tmp"))?;
        let dir = fs::canonicalize(dir)?;
        let root = fs::canonicalize(&cfg.root)
            .with_context(|| format!("nginx root {}", cfg.root.display()))?;
        let https_port = cfg.tls.as_ref().map(|_| free_port()).transpose()?;
        let http_port = if cfg.plain_http {
            Some(free_port()?)
        } else {
            None
        };
        let d = dir.display();
        let mut conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log info;\nevents {{ worker_connections 64; }}\nhttp {{\n\
             \x20 types {{ application/json json; application/zip zip; text/plain txt; }}\n\
             \x20 default_type application/octet-stream;\n\
             \x20 log_format e2e '$status $request_method $request_uri $body_bytes_sent $scheme';\n\
             \x20 access_log {d}/access.log e2e;\n\
             \x20 client_body_temp_path {d}/tmp/body;\n  proxy_temp_path {d}/tmp/proxy;\n\
             \x20 fastcgi_temp_path {d}/tmp/fastcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n\
             \x20 scgi_temp_path {d}/tmp/scgi;\n  sendfile on;\n  keepalive_timeout 10;\n"
        );
        if let (Some(port), Some(tls)) = (https_port, &cfg.tls) {
            let cert = fs::canonicalize(&tls.cert)?;
            let key = fs::canonicalize(&tls.key)?;
            let _ = write!(
                conf,
                "  server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {};\n    \
                 ssl_certificate_key {};\n    ssl_protocols TLSv1.2 TLSv1.3;\n    root {};\n    {}\n  }}\n",
                cert.display(),
                key.display(),
                root.display(),
                cfg.server_extra
            );
        }
        if let Some(port) = http_port {
            let _ = write!(
                conf,
                "  server {{\n    listen 127.0.0.1:{port};\n    root {};\n    {}\n  }}\n",
                root.display(),
                cfg.server_extra
            );
        }
        conf.push_str("}\n");
        let conf_path = dir.join("nginx.conf");
        fs::write(&conf_path, conf)?;

        let mut child = Command::new(nginx_binary())
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("could not start nginx (apt-get install nginx)")?;
        let deadline = Instant::now() + Duration::from_secs(15);
        for port in https_port.iter().chain(http_port.iter()) {
            loop {
                if TcpStream::connect(("127.0.0.1", *port)).is_ok() {
                    break;
                }
                if let Some(status) = child.try_wait()? {
                    let log = fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                    bail!("nginx exited ({status}) at startup:\n{log}");
                }
                if Instant::now() > deadline {
                    child.kill().ok();
                    child.wait().ok();
                    bail!("nginx did not listen on 127.0.0.1:{port} within 15s");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        say!(
            "e2e: nginx up (https {:?}, http {:?}) serving {}",
            https_port,
            http_port,
            root.display()
        );
        Ok(Self {
            child,
            dir,
            https_port,
            http_port,
        })
    }

    /// `https://10.0.2.2:<port><path>` (`path` starts with `/`).
    pub(crate) fn https_url(&self, path: &str) -> Result<String> {
        let port = self.https_port.context("nginx has no HTTPS listener")?;
        Ok(format!("https://{GUEST_HOST}:{port}{path}"))
    }

    /// `http://10.0.2.2:<port><path>` (`path` starts with `/`).
    pub(crate) fn http_url(&self, path: &str) -> Result<String> {
        let port = self.http_port.context("nginx has no plain HTTP listener")?;
        Ok(format!("http://{GUEST_HOST}:{port}{path}"))
    }

    /// Whether nginx answered `GET <uri>` (path and query as sent) with 200.
    pub(crate) fn served(&self, uri: &str) -> bool {
        self.access_log()
            .iter()
            .any(|e| e.status == 200 && e.method == "GET" && e.uri == uri)
    }

    /// The requests logged so far (empty if none).
    pub(crate) fn access_log(&self) -> Vec<AccessEntry> {
        let text = fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        text.lines().filter_map(parse_access).collect()
    }
}

fn parse_access(line: &str) -> Option<AccessEntry> {
    let mut f = line.split(' ');
    Some(AccessEntry {
        status: f.next()?.parse().ok()?,
        method: f.next()?.to_owned(),
        uri: f.next()?.to_owned(),
        bytes: f.next()?.parse().ok()?,
        scheme: f.next().unwrap_or("").to_owned(),
    })
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
