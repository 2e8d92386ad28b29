//! A provisioning server that misbehaves on purpose
//! (`integration-tests/hostile-server.py`, real TLS on 127.0.0.1), a signed package
//! it serves, and the trust anchors to fetch and verify it. Shared by
//! `tests/fetch_hostile.rs` and `benches/hostile.rs`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use reqwest::Url;
use stboot::keys;
use stboot::ospkg::{self, PackagePaths};

pub struct Env {
    _dir: tempfile::TempDir,
    pub www: PathBuf,
    pub tls_ca_der: Vec<u8>,
    pub signing_root_der: Vec<u8>,
    pub tls_port: u16,
    pub http_port: u16,
    pub silent_port: u16,
    _server: Server,
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl is installed");
    assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// A TLS CA and a server certificate for 127.0.0.1, made by openssl in `d`
/// (`ca.pem`, `server.pem`, `server.key`); returns the CA's DER.
pub fn make_tls(d: &Path) -> Vec<u8> {
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=hostile test CA",
            "-days",
            "2",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(d.join("san.cnf"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n").unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.cnf",
            "-out",
            "server.pem",
        ],
    );
    keys::load_certificate(&d.join("ca.pem")).unwrap()
}

pub fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let tls_ca_der = make_tls(d);

        // signing PKI and a signed package with a pretend bzImage
        let (signing_root_der, leaves) = signing_pki(2);
        let www = d.join("www");
        std::fs::create_dir(&www).unwrap();
        let mut kernel = b"kernel ".repeat(200_000);
        kernel[0x202..0x206].copy_from_slice(b"HdrS");
        std::fs::write(d.join("vmlinuz"), &kernel).unwrap();
        std::fs::write(d.join("initrd"), b"initramfs ".repeat(30_000)).unwrap();
        let paths = PackagePaths::from_arg(&www.join("pkg")).unwrap();
        ospkg::create(&paths, &d.join("vmlinuz"), &d.join("initrd"), "console=ttyS0", "hostile test", "pkg.zip", None)
            .unwrap();
        for (k, leaf) in &leaves {
            stboot::sign::sign(&paths, k, leaf).unwrap();
        }

        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("integration-tests/hostile-server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--tls-port", "0", "--http-port", "0", "--silent-port", "0", "--lifetime", "900"])
            .arg("--cert")
            .arg(d.join("server.pem"))
            .arg("--key")
            .arg(d.join("server.key"))
            .arg("--root")
            .arg(&www)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs the hostile server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let ports: Vec<u16> = line.split_whitespace().skip(1).map(|p| p.parse().unwrap()).collect();
        assert_eq!(ports.len(), 3, "hostile server said {line:?}");
        Env {
            _dir: dir,
            www,
            tls_ca_der,
            signing_root_der,
            tls_port: ports[0],
            http_port: ports[1],
            silent_port: ports[2],
            _server: Server(child),
        }
    })
}

/// A fetcher as stboot makes one, with `stall` as the stall timeout, the default retry
/// policy, `tls_roots` pinned and archives up to `max_archive` bytes, staging into
/// `stage`.
pub fn fetcher_with(
    stage: &Path,
    stall: std::time::Duration,
    tls_roots: &[Vec<u8>],
    max_archive: u64,
) -> stboot::fetch::Fetcher {
    use std::time::{Duration, Instant};
    let settings = stboot::fetch::Settings {
        stall_timeout: stall,
        retry: stboot::fetch::RetryPolicy::default(),
        deadline: Instant::now() + Duration::from_secs(3600),
        max_archive,
        max_archive_why: format!("at most {max_archive} bytes (the test's limit)"),
        identity: None,
        proxies: Default::default(),
    };
    stboot::fetch::Fetcher::new(tls_roots, settings, stage).unwrap()
}

/// What the server's bookkeeping endpoint `/count...` or `/ua...` answers.
fn ask(path: &str) -> String {
    let e = env();
    let client = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_der(&e.tls_ca_der).unwrap())
        .build()
        .unwrap();
    client.get(format!("https://127.0.0.1:{}{path}", e.tls_port)).send().unwrap().text().unwrap()
}

/// The User-Agent of the server's last request for `/MODE/NAME` (`path`).
pub fn user_agent(path: &str) -> String {
    ask(&format!("/ua{path}"))
}

/// The `Range` and `If-Range` headers of each request the server had for
/// `/MODE/NAME` (`path`), as "RANGE IF-RANGE" ("-" for none).
pub fn ranges(path: &str) -> Vec<String> {
    ask(&format!("/ranges{path}")).lines().map(str::to_string).collect()
}

/// How many requests the server has had for `/MODE/NAME` (`path`).
pub fn requests(path: &str) -> u64 {
    ask(&format!("/count{path}")).trim().parse().unwrap()
}

pub fn url(mode: &str) -> Url {
    Url::parse(&format!("https://127.0.0.1:{}/{mode}/pkg.json", env().tls_port)).unwrap()
}

/// The URL of every hostile behaviour, with a short name.
pub fn behaviours() -> Vec<(&'static str, Url)> {
    let mut v: Vec<(&'static str, Url)> = [
        ("headers never come", "stall-headers"),
        ("descriptor: 1 byte every 5 s", "stall-body"),
        ("archive at 100 bytes/s", "trickle"),
        ("endless descriptor", "desc-endless"),
        ("50 MB descriptor", "desc-huge"),
        ("endless archive", "endless"),
        ("huge Content-Length", "huge-length"),
        ("reset mid-body", "reset"),
        ("empty archive", "empty"),
        ("Content-Length 1000 past the body", "long-length"),
        ("8 MB response header", "huge-header"),
        ("redirect to file://", "to-file"),
        ("redirect loop", "redirect-loop"),
        ("https -> http redirect", "to-http"),
        ("redirect to a name not in the cert", "to-other-name"),
        ("404", "status-404"),
        ("503", "status-503"),
    ]
    .into_iter()
    .map(|(n, m)| (n, url(m)))
    .collect();
    v.push((
        "TLS handshake never completes",
        Url::parse(&format!("https://127.0.0.1:{}/x.json", env().silent_port)).unwrap(),
    ));
    v
}

/// nginx in the foreground with configuration `conf` and prefix `prefix`, listening
/// on 127.0.0.1:`port` (for the benchmarks); stopped on drop.
#[allow(dead_code)]
pub struct NginxProcess {
    child: std::process::Child,
}

#[allow(dead_code)]
impl NginxProcess {
    /// Starts it and waits until the port takes connections.
    pub fn start(conf: &Path, prefix: &Path, port: u16) -> NginxProcess {
        use std::process::{Command, Stdio};
        let child = Command::new("nginx")
            .arg("-c")
            .arg(conf)
            .arg("-p")
            .arg(prefix)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx is installed (scripts/setup.sh)");
        let mut nginx = NginxProcess { child };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return nginx;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = nginx.child.kill();
        panic!("nginx ({}) did not start on port {port}", conf.display());
    }
}

impl Drop for NginxProcess {
    /// SIGTERM, so that the master stops its worker too (SIGKILL left it running).
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

/// A fresh signing root (DER) and `n` leaf keys with their certificates (DER): the
/// hostile server's package and the benchmarks' packages are signed by these.
#[allow(dead_code)]
pub fn signing_pki(n: usize) -> (Vec<u8>, Vec<(stboot::keys::Key, Vec<u8>)>) {
    use stboot::keys;
    let v = keys::Validity::from_args(None, None, 2).unwrap();
    let root_key = keys::generate_key();
    let root = keys::pem_to_der(&keys::root_certificate(&root_key, &v).unwrap()).unwrap();
    let leaves = (0..n)
        .map(|_| {
            let k = keys::generate_key();
            let c = keys::pem_to_der(&keys::leaf_certificate(&k, &root, &root_key, &v).unwrap()).unwrap();
            (keys::Key::Local(k), c)
        })
        .collect();
    (root, leaves)
}
