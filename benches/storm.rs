//! A boot storm: many machines ask for the same package in the same second, as after
//! a power cut. Each simulated machine is a thread running stboot's own fetch,
//! verify and stage code (its own HTTPS client, its own staging directory), with
//! stboot's retries and up to three whole boot attempts with stboot's backoff,
//! against nginx on 127.0.0.1:
//!
//! - **origin**: one nginx serving the package, with a capacity like a real
//!   provisioning server's: at most `STORM_ORIGIN_CONNS` (64) connections, each at
//!   most `STORM_ORIGIN_RATE` (2 MiB/s); beyond that it answers 503 (no
//!   Retry-After), so machines retry;
//! - **cache**: the same origin behind a caching tier (nginx `proxy_cache` with
//!   `proxy_cache_lock` and `slice 1m`, as docs/operator-guide.md "Serving a fleet"
//!   has it), which takes every machine's connection.
//!
//! For 100, 500 and 1,000 machines (`STORM_CLIENTS`) and a package of `STORM_MIB`
//! MiB (4; incompressible), with and without the retries' jitter, it prints the
//! time until each machine had a verified, staged package (p50, p99, max), the bytes
//! the origin served, failures and retries. Asserts nothing: a table to size
//! servers by, docs/design.md "Boot storm". `cargo bench --bench storm`

#[path = "../tests/common/hostile.rs"]
mod hostile;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use stboot::fetch::{Fetcher, RetryPolicy, Settings};
use stboot::keys;
use stboot::ospkg::{self, PackagePaths};

const MIB: f64 = (1 << 20) as f64;

/// Retry lines ("retrying in") the fetch code logged: a tracing writer counts them.
static RETRIES: AtomicU64 = AtomicU64::new(0);

struct CountRetries;
impl std::io::Write for CountRetries {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if b.windows(11).any(|w| w == b"retrying in") {
            RETRIES.fetch_add(1, Ordering::Relaxed);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    tracing_subscriber::fmt().with_writer(|| CountRetries).with_ansi(false).with_max_level(tracing::Level::WARN).init();
    raise_open_files();
    let clients: Vec<usize> = std::env::var("STORM_CLIENTS")
        .unwrap_or_else(|_| "100,500,1000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("STORM_CLIENTS: comma-separated counts"))
        .collect();
    let mib: u64 = env_or("STORM_MIB", 4);
    let conns: u32 = env_or("STORM_ORIGIN_CONNS", 64);
    let rate: u32 = env_or("STORM_ORIGIN_RATE", 2);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = hostile::make_tls(d);
    let www = d.join("www");
    std::fs::create_dir(&www).unwrap();
    let (root, leaves) = hostile::signing_pki(2);
    let pkg = make_package(d, &www, mib << 20, &leaves);
    let zip_len = std::fs::metadata(&pkg.archive).unwrap().len();

    let origin = Nginx::start(d, "origin", &Nginx::origin_conf(&www, conns, rate));
    println!(
        "package: {:.1} MiB; origin: at most {conns} connections of {rate} MiB/s each ({} MiB/s in all), 503 beyond; \
         {} cores",
        zip_len as f64 / MIB,
        conns * rate,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!();
    println!("| machines | served by | retries | until all had a verified package: p50 / p99 / max | origin served | failed | retry lines | whole-boot retries |");
    println!("|---|---|---|---|---|---|---|---|");
    for &n in &clients {
        for (tier, jitter) in [("origin", false), ("origin", true), ("cache", true)] {
            // a cold cache for each storm: one that starts empty, as after a power cut
            let cache = (tier == "cache").then(|| {
                Nginx::start(d, &format!("cache-{n}"), &Nginx::cache_conf(&d.join(format!("store-{n}")), origin.port))
            });
            let port = cache.as_ref().map_or(origin.port, |c| c.port);
            let origin_before = origin.bytes_served();
            RETRIES.store(0, Ordering::Relaxed);
            let r = storm(n, port, jitter, &ca, &root);
            let served = origin.bytes_served() - origin_before;
            let pct = |p: f64| r.times.get(((r.times.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied();
            let show = |t: Option<f64>| t.map(|t| format!("{t:.1} s")).unwrap_or_else(|| "-".into());
            println!(
                "| {n} | {tier} | {} | {} / {} / {} | {:.0} MiB ({:.1} x the package) | {} | {} | {} |",
                if jitter { "jittered" } else { "plain 1, 2, 4, 8 s" },
                show(pct(0.5)),
                show(pct(0.99)),
                show(r.times.last().copied()),
                served as f64 / MIB,
                served as f64 / zip_len as f64,
                r.failed,
                RETRIES.load(Ordering::Relaxed),
                r.boot_retries,
            );
        }
    }
}

struct Outcome {
    /// Seconds from the start until each machine that succeeded had its package, sorted.
    times: Vec<f64>,
    failed: usize,
    boot_retries: u64,
}

/// `n` machines at once against 127.0.0.1:`port`.
fn storm(n: usize, port: u16, jitter: bool, ca: &[u8], root: &[u8]) -> Outcome {
    let barrier = Arc::new(Barrier::new(n));
    let boot_retries = Arc::new(AtomicU64::new(0));
    let url = reqwest::Url::parse(&format!("https://127.0.0.1:{port}/storm.json")).unwrap();
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (barrier, boot_retries, url, ca, root) =
                (barrier.clone(), boot_retries.clone(), url.clone(), ca.to_vec(), root.to_vec());
            std::thread::Builder::new()
                .stack_size(1 << 20)
                .spawn(move || {
                    let stage = stage_dir();
                    barrier.wait();
                    let t0 = Instant::now();
                    for attempt in 1..=3u32 {
                        if machine(&url, &ca, &root, stage.path(), jitter).is_ok() {
                            return Some(t0.elapsed().as_secs_f64());
                        }
                        if attempt < 3 {
                            boot_retries.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(if jitter {
                                stboot::recovery::jittered_backoff(attempt, stboot::fetch::retry::os_random())
                            } else {
                                stboot::recovery::backoff(attempt)
                            });
                        }
                    }
                    None
                })
                .expect("spawning a machine thread")
        })
        .collect();
    let mut times: Vec<f64> = Vec::new();
    let mut failed = 0;
    for h in handles {
        match h.join().unwrap() {
            Some(t) => times.push(t),
            None => failed += 1,
        }
    }
    times.sort_by(f64::total_cmp);
    Outcome { times, failed, boot_retries: boot_retries.load(Ordering::Relaxed) }
}

/// One machine's boot attempt up to "ready to kexec": fetch, verify, stage.
fn machine(url: &reqwest::Url, ca: &[u8], root: &[u8], stage: &Path, jitter: bool) -> anyhow::Result<()> {
    let settings = Settings {
        stall_timeout: Duration::from_secs(10),
        retry: RetryPolicy { jitter, ..RetryPolicy::default() },
        deadline: Instant::now() + Duration::from_secs(600),
        max_archive: 1 << 30,
        max_archive_why: "the benchmark's limit".into(),
        identity: None,
        proxies: Default::default(),
    };
    let f = Fetcher::new(&[ca.to_vec()], settings, stage)?;
    let pkg = f.fetch(url, 0)?;
    let roots = [root.to_vec()];
    let anchors = stboot::verify::Anchors::from(&roots);
    let (now, _) = stboot::verify::effective_now();
    let pkg = stboot::verify::verify_package(pkg, anchors, stboot::verify::Threshold::AtLeast(2), now)
        .map_err(|r| r.error)?;
    let staged = stboot::boot::stage(pkg, stage, &stboot::fetch::archive_budget(stage))?;
    drop(staged);
    Ok(())
}

/// A staging directory on a tmpfs (/dev/shm), as stboot's is; else a temporary one.
fn stage_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("stboot-storm")
        .tempdir_in("/dev/shm")
        .unwrap_or_else(|_| tempfile::tempdir().unwrap())
}

/// A thousand machines hold a thousand sockets and files: the soft limit goes up to
/// the hard one.
#[allow(unsafe_code)]
fn raise_open_files() {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

/// The package: a pretend bzImage and `bytes` incompressible bytes of initramfs,
/// signed by both leaves, as `www/storm.{json,zip}`.
fn make_package(d: &Path, www: &Path, bytes: u64, leaves: &[(keys::Key, Vec<u8>)]) -> PackagePaths {
    let mut kernel = vec![0u8; 64 << 10];
    kernel[0x202..0x206].copy_from_slice(b"HdrS");
    std::fs::write(d.join("vmlinuz"), &kernel).unwrap();
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let initrd: Vec<u8> = (0..bytes / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect();
    std::fs::write(d.join("initrd"), &initrd).unwrap();
    let paths = PackagePaths::from_arg(&www.join("storm")).unwrap();
    ospkg::create(&paths, &d.join("vmlinuz"), &d.join("initrd"), "console=ttyS0", "storm", "storm.zip", None).unwrap();
    for (k, c) in leaves {
        stboot::sign::sign(&paths, k, c).unwrap();
    }
    paths
}

struct Nginx {
    _process: hostile::NginxProcess,
    port: u16,
    log: PathBuf,
}

impl Nginx {
    /// The origin: `conns` connections at most (503 beyond), `rate` MiB/s each.
    fn origin_conf(www: &Path, conns: u32, rate: u32) -> String {
        format!(
            "limit_conn_zone $server_addr zone=all:1m;
  server {{ listen 127.0.0.1:PORT ssl; ssl_certificate DIR/server.pem; ssl_certificate_key DIR/server.key;
    root {www}; limit_conn all {conns}; limit_conn_status 503; limit_rate {rate}m; }}",
            www = www.display()
        )
    }

    /// The caching tier in front of the origin on `origin`, as the operator guide has
    /// it, caching into `store`.
    fn cache_conf(store: &Path, origin: u16) -> String {
        format!(
            "proxy_cache_path {d} levels=1:2 keys_zone=ospkg:10m max_size=10g inactive=30d use_temp_path=off;
  server {{ listen 127.0.0.1:PORT ssl; ssl_certificate DIR/server.pem; ssl_certificate_key DIR/server.key;
    proxy_http_version 1.1; proxy_cache ospkg; proxy_cache_lock on; proxy_cache_lock_timeout 120s;
    location ~ \\.zip$ {{ slice 1m; proxy_cache_key $uri$slice_range; proxy_set_header Range $slice_range;
      proxy_cache_valid 200 206 30d; proxy_pass https://127.0.0.1:{origin}; }}
    location / {{ proxy_cache_valid 200 10s; proxy_cache_use_stale updating; proxy_pass https://127.0.0.1:{origin}; }} }}",
            d = store.display()
        )
    }

    fn start(d: &Path, name: &str, server: &str) -> Nginx {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let p = d.join(name);
        std::fs::create_dir_all(p.join("logs")).unwrap();
        let log = p.join("logs/access.log");
        let server = server.replace("PORT", &port.to_string()).replace("DIR", &d.display().to_string());
        let conf = p.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "daemon off; worker_processes 1; worker_rlimit_nofile 16384; pid {p}/nginx.pid; error_log {p}/logs/error.log;
events {{ worker_connections 8192; }}
http {{ log_format bytes '$status $body_bytes_sent'; access_log {log} bytes; sendfile on;
  client_body_temp_path {p}; proxy_temp_path {p}; fastcgi_temp_path {p}; uwsgi_temp_path {p}; scgi_temp_path {p};
  types {{ application/json json; application/zip zip; }}
  {server}
}}
",
                p = p.display(),
                log = log.display()
            ),
        )
        .unwrap();
        let process = hostile::NginxProcess::start(&conf, &p, port);
        Nginx { _process: process, port, log }
    }

    /// Body bytes this server has sent so far (its access log).
    fn bytes_served(&self) -> u64 {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum()
    }
}
