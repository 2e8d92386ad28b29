//! Big packages from first byte to "ready to kexec": stboot's own fetch, verify and
//! stage code against nginx over HTTPS on 127.0.0.1, for incompressible packages of
//! 100 MB and 1 GB (`BIGPKG_MB=100,1000`). For each: wall time, throughput, and peak
//! memory (the process's peak RSS, and the peak bytes stboot held on the staging
//! tmpfs), printed next to the limits of this machine (SHA-256 and inflate on one
//! core, loopback TLS download) and the goals. Asserts nothing.
//!
//! Each package is fetched in a child process (this program again, with `--client`),
//! so that its peak RSS is the pipeline's alone. Needs nginx and openssl (the README's
//! test command installs them). `cargo bench --bench bigpkg`

#[path = "../tests/common/hostile.rs"]
mod hostile;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stboot::keys;
use stboot::ospkg::{self, PackagePaths};

const MIB: f64 = (1 << 20) as f64;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--client") {
        return client(&args[2..]);
    }
    let sizes: Vec<u64> = std::env::var("BIGPKG_MB")
        .unwrap_or_else(|_| "100,1000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("BIGPKG_MB: comma-separated sizes in MB"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = hostile::make_tls(d);
    std::fs::write(d.join("ca.der"), &ca).unwrap();
    let www = d.join("www");
    std::fs::create_dir(&www).unwrap();

    // signing root and two leaves
    let (root, leaves) = hostile::signing_pki(2);
    std::fs::write(d.join("root.der"), &root).unwrap();

    let nginx = Nginx::start(d, &www);
    println!("limits on this machine (one core):");
    let sha = sha256_rate();
    println!("  SHA-256 (stboot's sha2, same profile): {:>7.0} MiB/s", sha);
    let mut rows = Vec::new();
    for mb in sizes {
        let name = format!("pkg{mb}");
        let paths = make_package(d, &www, &name, mb * 1_000_000, &leaves);
        let zip_len = std::fs::metadata(&paths.archive).unwrap().len();
        let extracted = extracted_len(&paths);
        let inflate = inflate_rate(&paths);
        let url = format!("https://127.0.0.1:{}/{name}.json", nginx.port);
        let tls = tls_rate(&format!("https://127.0.0.1:{}/{name}.zip", nginx.port), &ca);
        let stage = stage_dir();
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--client", &url])
            .arg(d.join("ca.der"))
            .arg(d.join("root.der"))
            .arg(stage.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "client: {text}{}", String::from_utf8_lossy(&out.stderr));
        let get = |k: &str| -> f64 {
            text.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{k}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("client output lacks {k}: {text}"))
        };
        rows.push(Row {
            mb,
            zip: zip_len,
            extracted,
            wall: get("wall"),
            fetch: get("fetch"),
            verify: get("verify"),
            stage: get("stage"),
            rss: get("rss") as u64,
            tmpfs: get("tmpfs") as u64,
            sha,
            inflate,
            tls,
        });
        let _ = std::fs::remove_file(&paths.archive);
    }
    drop(nginx);
    println!();
    println!(
        "| package | wall (fetch + verify + stage) | throughput | limits: SHA-256 / inflate / TLS | goal: 80 % of the slowest | peak tmpfs | peak RSS | goal: extracted + 8 MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in rows {
        let thr = r.zip as f64 / MIB / r.wall;
        let slowest = r.sha.min(r.inflate).min(r.tls);
        let goal_mem = r.extracted as f64 / MIB + 8.0;
        let peak = (r.tmpfs + r.rss) as f64 / MIB;
        println!(
            "| {} MB ({:.0} MiB zip) | {:.2} s ({:.2} + {:.2} + {:.2}) | {:.0} MiB/s | {:.0} / {:.0} / {:.0} MiB/s | {:.0} MiB/s: {} | {:.0} MiB | {:.0} MiB | {:.0} MiB: {} ({:.0} MiB) |",
            r.mb,
            r.zip as f64 / MIB,
            r.wall,
            r.fetch,
            r.verify,
            r.stage,
            thr,
            r.sha,
            r.inflate,
            r.tls,
            0.8 * slowest,
            if thr >= 0.8 * slowest { "met" } else { "not met" },
            r.tmpfs as f64 / MIB,
            r.rss as f64 / MIB,
            goal_mem,
            if peak <= goal_mem { "met" } else { "not met" },
            peak,
        );
    }
}

struct Row {
    mb: u64,
    zip: u64,
    extracted: u64,
    wall: f64,
    fetch: f64,
    verify: f64,
    stage: f64,
    rss: u64,
    tmpfs: u64,
    sha: f64,
    inflate: f64,
    tls: f64,
}

/// The child: fetch, verify and stage one package as stboot does; print the times,
/// the peak RSS and the peak bytes on the staging directory.
fn client(args: &[String]) {
    let url = reqwest::Url::parse(&args[0]).unwrap();
    let ca = std::fs::read(&args[1]).unwrap();
    let root = std::fs::read(&args[2]).unwrap();
    let stage = PathBuf::from(&args[3]);
    let (peak, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let sampler = {
        let (peak, stop, stage) = (peak.clone(), stop.clone(), stage.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(dir_bytes(&stage), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let budget = stboot::fetch::archive_budget(&stage).bytes;
    let f = hostile::fetcher_with(&stage, Duration::from_secs(10), &[ca], budget);
    let t0 = Instant::now();
    let pkg = f.fetch(&url, 0).unwrap();
    let t1 = Instant::now();
    let anchors = stboot::verify::Anchors::from(std::slice::from_ref(&root));
    let (now, _) = stboot::verify::effective_now();
    let pkg = stboot::verify::verify_package(pkg, anchors, stboot::verify::Threshold::AtLeast(2), now)
        .unwrap_or_else(|r| panic!("{:#}", r.error));
    let t2 = Instant::now();
    let staged = stboot::boot::stage(pkg, &stage, &stboot::fetch::archive_budget(&stage)).unwrap();
    let t3 = Instant::now(); // ready to kexec
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    peak.fetch_max(dir_bytes(&stage), Ordering::Relaxed);
    drop(staged);
    let rss = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap()
        * 1024;
    println!(
        "wall={:.3} fetch={:.3} verify={:.3} stage={:.3} rss={rss} tmpfs={}",
        (t3 - t0).as_secs_f64(),
        (t1 - t0).as_secs_f64(),
        (t2 - t1).as_secs_f64(),
        (t3 - t2).as_secs_f64(),
        peak.load(Ordering::Relaxed)
    );
}

/// Bytes the files directly in `dir` occupy (tmpfs pages).
fn dir_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.blocks() * 512).sum())
        .unwrap_or(0)
}

/// A staging directory on a tmpfs (/dev/shm), as stboot's is; else a temporary one.
fn stage_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("stboot-bench")
        .tempdir_in("/dev/shm")
        .unwrap_or_else(|_| tempfile::tempdir().unwrap())
}

/// A package whose initramfs is `bytes` incompressible bytes (xorshift), with a
/// pretend bzImage, signed by both leaves.
fn make_package(d: &Path, www: &Path, name: &str, bytes: u64, leaves: &[(keys::Key, Vec<u8>)]) -> PackagePaths {
    let mut kernel = b"kernel ".repeat(1 << 20);
    kernel[0x202..0x206].copy_from_slice(b"HdrS");
    std::fs::write(d.join("vmlinuz"), &kernel).unwrap();
    let initrd = d.join("initrd");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&initrd).unwrap());
        let mut x: u64 = 0x9e3779b97f4a7c15 ^ bytes;
        let mut block = vec![0u8; 1 << 20];
        let mut left = bytes;
        while left > 0 {
            for c in block.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
            }
            let n = left.min(block.len() as u64) as usize;
            f.write_all(&block[..n]).unwrap();
            left -= n as u64;
        }
    }
    let paths = PackagePaths::from_arg(&www.join(name)).unwrap();
    ospkg::create(&paths, &d.join("vmlinuz"), &initrd, "console=ttyS0", name, &format!("{name}.zip"), None).unwrap();
    std::fs::remove_file(&initrd).unwrap();
    for (k, c) in leaves {
        stboot::sign::sign(&paths, k, c).unwrap();
    }
    paths
}

fn extracted_len(paths: &PackagePaths) -> u64 {
    let f = std::fs::File::open(&paths.archive).unwrap();
    let mut z = zip::ZipArchive::new(f).unwrap();
    (0..z.len()).map(|i| z.by_index_raw(i).unwrap().size()).sum()
}

fn sha256_rate() -> f64 {
    let buf = vec![0x5au8; 256 << 20];
    let t = Instant::now();
    std::hint::black_box(stboot::verify::digest(&buf));
    256.0 / t.elapsed().as_secs_f64()
}

/// Inflate of the package's own entries, from memory to nowhere (MiB/s of output).
fn inflate_rate(paths: &PackagePaths) -> f64 {
    let bytes = std::fs::read(&paths.archive).unwrap();
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let t = Instant::now();
    let mut n = 0;
    for i in 0..z.len() {
        n += std::io::copy(&mut z.by_index(i).unwrap(), &mut std::io::sink()).unwrap();
    }
    n as f64 / MIB / t.elapsed().as_secs_f64()
}

/// Download over TLS from the same nginx to nowhere, with the pinned CA only.
fn tls_rate(url: &str, ca: &[u8]) -> f64 {
    let client = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_der(ca).unwrap())
        .timeout(None)
        .build()
        .unwrap();
    let t = Instant::now();
    let mut resp = client.get(url).send().unwrap().error_for_status().unwrap();
    let n = std::io::copy(&mut resp, &mut std::io::sink()).unwrap();
    n as f64 / MIB / t.elapsed().as_secs_f64()
}

struct Nginx {
    _process: hostile::NginxProcess,
    port: u16,
}

impl Nginx {
    fn start(d: &Path, www: &Path) -> Nginx {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let conf = d.join("nginx.conf");
        std::fs::create_dir_all(d.join("logs")).unwrap();
        std::fs::write(
            &conf,
            format!(
                "daemon off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/logs/error.log;
events {{ worker_connections 64; }}
http {{ access_log off; sendfile on;
  client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};
  types {{ application/json json; application/zip zip; }}
  server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {d}/server.pem; ssl_certificate_key {d}/server.key; root {www}; }}
}}
",
                d = d.display(),
                www = www.display()
            ),
        )
        .unwrap();
        Nginx { _process: hostile::NginxProcess::start(&conf, d, port), port }
    }
}
