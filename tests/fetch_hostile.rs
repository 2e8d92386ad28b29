//! The fetch step against a provisioning server that misbehaves on purpose
//! (`integration-tests/hostile-server.py`, real TLS on 127.0.0.1). For each
//! behaviour: the hostile URL fails with the expected kind of error within a bound
//! derived from the (small) stall timeout, nothing unverified comes out of it, and
//! the good URL behind it then yields a package that verifies and is byte for byte
//! the one that was signed.

mod common;

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use common::hostile::{env, fetcher_with, ranges, requests, url, user_agent};
use reqwest::Url;
use stboot::fetch::{self, FetchError, Fetcher, RetryPolicy};
use stboot::verify::{self, Threshold};

/// The stall timeout the tests run with.
const STALL: Duration = Duration::from_secs(1);
/// The archive limit the tests run with (an endless body stops here).
const MAX_ARCHIVE: u64 = 16 << 20;

fn fetcher(stage: &Path) -> Fetcher {
    fetcher_with(stage, STALL, std::slice::from_ref(&env().tls_ca_der), MAX_ARCHIVE)
}

/// What one hostile URL did, and that the good URL after it boots.
struct Outcome {
    error: anyhow::Error,
    cost: Duration,
}

/// Try the hostile URL, then the good one, as stboot does; the good one must win
/// with exactly the signed bytes.
fn hostile_then_good(hostile: Url) -> Outcome {
    let stage = tempfile::tempdir().unwrap();
    let f = fetcher(stage.path());
    let t = Instant::now();
    let error = match f.fetch(&hostile, 0) {
        Ok(pkg) => panic!("the hostile URL {hostile} yielded a package: {:?}", pkg.origin()),
        Err(e) => e,
    };
    let cost = t.elapsed();
    assert!(
        std::fs::read_dir(stage.path()).unwrap().next().is_none(),
        "a failed download left a file in the staging directory"
    );
    let pkg = f.fetch(&url("good"), 1).expect("the good URL after the hostile one");
    let e = env();
    let (now, _) = verify::effective_now();
    let v = verify::verify_package(pkg, std::slice::from_ref(&e.signing_root_der), Threshold::AtLeast(2), now)
        .expect("the good package verifies");
    let want = std::fs::read(e.www.join("pkg.zip")).unwrap();
    assert_eq!(v.archive_sha256(), &verify::digest(&want));
    Outcome { error, cost }
}

fn fetch_error(e: &anyhow::Error) -> &FetchError {
    e.chain().find_map(|c| c.downcast_ref::<FetchError>()).unwrap_or_else(|| panic!("not a FetchError: {e:#}"))
}

/// The most a URL that only ever stalls may cost with the default retry policy: two
/// attempts, each at most two stall windows of body plus one of headers, and the
/// backoff between them, plus scheduling slack.
fn stall_bound() -> Duration {
    let p = RetryPolicy::default();
    STALL * 3 * p.stall_attempts + p.first_backoff + Duration::from_secs(2)
}

#[test]
fn headers_that_never_come_end_as_no_response_within_the_bound() {
    let o = hostile_then_good(url("stall-headers"));
    assert!(matches!(fetch_error(&o.error), FetchError::NoResponse(_)), "{:#}", o.error);
    assert!(o.cost <= stall_bound(), "cost {:?} > {:?}", o.cost, stall_bound());
    assert_eq!(requests("/stall-headers/pkg.json"), 2, "a stall is tried twice");
}

#[test]
fn a_body_of_one_byte_every_5_s_ends_as_stalled() {
    let o = hostile_then_good(url("stall-body"));
    assert!(matches!(fetch_error(&o.error), FetchError::Stalled(_)), "{:#}", o.error);
    assert!(format!("{:#}", o.error).contains("descriptor https://127.0.0.1"), "{:#}", o.error);
    assert!(o.cost <= stall_bound(), "cost {:?}", o.cost);
}

#[test]
fn an_archive_trickling_at_100_bytes_per_second_ends_as_stalled() {
    let o = hostile_then_good(url("trickle"));
    let e = fetch_error(&o.error);
    assert!(matches!(e, FetchError::Stalled(m) if m.contains("less than the minimum")), "{:#}", o.error);
    assert!(format!("{:#}", o.error).contains("archive https://127.0.0.1"), "{:#}", o.error);
    assert!(o.cost <= stall_bound(), "cost {:?}", o.cost);
}

#[test]
fn a_tls_handshake_that_never_completes_ends_as_no_response() {
    let u = Url::parse(&format!("https://127.0.0.1:{}/x.json", env().silent_port)).unwrap();
    let o = hostile_then_good(u);
    assert!(matches!(fetch_error(&o.error), FetchError::NoResponse(_)), "{:#}", o.error);
    assert!(o.cost <= stall_bound(), "cost {:?}", o.cost);
}

#[test]
fn an_endless_archive_is_refused_at_once_without_retry() {
    // the body is not a zip: the one-pass reader refuses it at its first bytes,
    // long before the size limit
    let o = hostile_then_good(url("endless"));
    let msg = format!("{:#}", o.error);
    assert!(matches!(fetch_error(&o.error), FetchError::Archive(_)), "{msg}");
    assert!(msg.contains("unexpected bytes at offset 0") && !msg.contains("writing the staged copy"), "{msg}");
    // the remedy is about the archive, not memory (it said "give the machine more
    // memory" before)
    let remedy = fetch_error(&o.error).remedy();
    assert!(remedy.contains("the archive is damaged") && !remedy.contains("memory"), "{remedy}");
    assert_eq!(requests("/endless/pkg.zip"), 1, "a refused archive is not retried");
}

#[test]
fn an_endless_descriptor_is_refused_at_one_mib() {
    let o = hostile_then_good(url("desc-endless"));
    let msg = format!("{:#}", o.error);
    assert!(matches!(fetch_error(&o.error), FetchError::TooLarge { limit: 1048576, .. }), "{msg}");
}

#[test]
fn a_50_mb_descriptor_is_reported_with_its_announced_size() {
    let o = hostile_then_good(url("desc-huge"));
    let msg = format!("{:#}", o.error);
    assert!(msg.contains("announces 50000000 bytes, more than the limit of 1048576 bytes"), "{msg}");
    assert_eq!(requests("/desc-huge/pkg.json"), 1, "not retried");
}

#[test]
fn a_huge_content_length_is_refused_before_downloading() {
    let o = hostile_then_good(url("huge-length"));
    let msg = format!("{:#}", o.error);
    assert!(msg.contains("announces 1000000000000000 bytes"), "{msg}");
    // the error says where the limit comes from
    assert!(msg.contains("the archive does not fit: at most"), "{msg}");
    assert_eq!(requests("/huge-length/pkg.zip"), 1, "not retried");
}

#[test]
fn a_reset_mid_body_is_truncated_and_retried() {
    let o = hostile_then_good(url("reset"));
    let e = fetch_error(&o.error);
    assert!(matches!(e, FetchError::Truncated { .. } | FetchError::Body { .. }), "{:#} {e:?}", o.error);
    assert!(!format!("{:#}", o.error).contains("close_notify"), "not blamed on TLS: {:#}", o.error);
    assert_eq!(requests("/reset/pkg.zip"), RetryPolicy::default().attempts as u64, "transient: retried");
    assert!(o.cost <= RetryPolicy::default().window + STALL * 2, "the retry window bounds it: {:?}", o.cost);
}

/// An 8 MB response header cannot heal: one attempt (it was retried 5 times), and
/// the message says what was wrong.
#[test]
fn an_oversized_response_header_is_not_retried() {
    let o = hostile_then_good(url("huge-header"));
    let msg = format!("{:#}", o.error);
    assert!(matches!(fetch_error(&o.error), FetchError::Protocol(_)), "{msg}");
    assert!(msg.contains("not an HTTP answer this client takes: message head is too large"), "{msg}");
    assert_eq!(requests("/huge-header/pkg.json"), 1, "not retried");
}

/// A server that sends the whole file under a Content-Length 1000 bytes longer, and
/// closes: a cut connection may heal once, the same cut twice cannot (it was
/// retried 5 times), and the message names both numbers.
#[test]
fn a_content_length_longer_than_the_body_is_tried_twice() {
    let o = hostile_then_good(url("long-length"));
    let msg = format!("{:#}", o.error);
    let real = std::fs::metadata(env().www.join("pkg.zip")).unwrap().len();
    assert!(
        matches!(fetch_error(&o.error), FetchError::WrongLength { announced, got } if *announced == real + 1000 && *got == real),
        "{msg}"
    );
    assert!(msg.contains(&format!("announces {} bytes but sends {real}, twice", real + 1000)), "{msg}");
    // one attempt's error says it plainly: no link to the TLS library's manual
    let c = stboot::fetch::Client::new(
        std::slice::from_ref(&env().tls_ca_der),
        STALL,
        "stboot-rs-test",
        &Default::default(),
    )
    .unwrap();
    let zip = Url::parse(&format!("https://127.0.0.1:{}/long-length/pkg.zip", env().tls_port)).unwrap();
    let e = c.download(&zip, MAX_ARCHIVE, &mut Vec::new(), &mut |_, _, _| {}).unwrap_err();
    let line = e.to_string();
    assert!(matches!(e, FetchError::Truncated { reset: false, .. }), "{line}");
    assert!(line.contains("without a TLS close_notify") && !line.contains("https://"), "{line}");
    assert_eq!(requests("/long-length/pkg.zip"), 3, "tried twice, and once more above");
}

/// A redirect to a file: URL is refused and named (it was reported as "302 Found").
#[test]
fn a_redirect_to_a_file_url_is_refused_naming_it() {
    let o = hostile_then_good(url("to-file"));
    let msg = format!("{:#}", o.error);
    assert!(matches!(fetch_error(&o.error), FetchError::Redirect(_)), "{msg}");
    assert!(msg.contains("file:///etc/passwd") && msg.contains("http and https only"), "{msg}");
    assert_eq!(requests("/to-file/pkg.json"), 1, "not retried");
}

/// An empty body cannot heal: one attempt, then the next URL.
#[test]
fn an_empty_archive_is_not_retried() {
    let o = hostile_then_good(url("empty"));
    assert!(matches!(fetch_error(&o.error), FetchError::Empty), "{:#}", o.error);
    assert_eq!(requests("/empty/pkg.zip"), 1, "not retried");
}

#[test]
fn a_redirect_loop_is_refused() {
    let o = hostile_then_good(url("redirect-loop"));
    assert!(matches!(fetch_error(&o.error), FetchError::Redirect(_)), "{:#}", o.error);
    assert_eq!(requests("/redirect-loop/pkg.json"), 1, "not retried");
}

#[test]
fn a_redirect_from_https_to_http_is_refused_and_names_the_target_without_credentials() {
    let mut u = url("to-http");
    u.set_username("stboot").unwrap();
    u.set_password(Some("s3cret")).unwrap();
    let o = hostile_then_good(u);
    let msg = format!("{:#}", o.error);
    assert!(matches!(fetch_error(&o.error), FetchError::Redirect(_)), "{msg}");
    assert!(msg.contains(&format!("http://127.0.0.1:{}/good/pkg.json", env().http_port)), "{msg}");
    assert!(!msg.contains("s3cret"), "{msg}");
}

/// A certificate problem at a redirect target is blamed on that target.
#[test]
fn a_bad_certificate_at_a_redirect_target_names_the_target() {
    let o = hostile_then_good(url("to-other-name"));
    let msg = format!("{:#}", o.error);
    assert!(matches!(fetch_error(&o.error), FetchError::Tls(_)), "{msg}");
    assert!(msg.contains("does not name the host of the URL"), "{msg}");
    assert!(
        msg.contains(&format!("at the redirect target https://localhost:{}/good/pkg.json", env().tls_port)),
        "{msg}"
    );
}

#[test]
fn http_status_errors_move_on_or_retry_by_class() {
    let o = hostile_then_good(url("status-404"));
    assert!(matches!(fetch_error(&o.error), FetchError::Status(s) if s.as_u16() == 404), "{:#}", o.error);
    assert_eq!(requests("/status-404/pkg.json"), 1, "404 is not retried");
    let o = hostile_then_good(url("status-503"));
    assert!(matches!(fetch_error(&o.error), FetchError::Status(s) if s.as_u16() == 503), "{:#}", o.error);
    assert_eq!(requests("/status-503/pkg.json"), 5, "503 is retried");
}

/// A 503 with `Retry-After` (seconds, or an HTTP date): stboot waits at least that
/// long before it asks again, for the descriptor and for the archive, and then
/// boots what the server sends. A 429 that asks for an hour is not waited for: the
/// next URL at once.
#[test]
fn retry_after_is_honoured_within_the_urls_budget() {
    let stage = tempfile::tempdir().unwrap();
    let f = fetcher(stage.path());
    for (mode, at_least) in [("busy", 2), ("busy-date", 1)] {
        let t = Instant::now();
        f.fetch(&url(mode), 0).unwrap_or_else(|e| panic!("{mode}: {e:#}"));
        let cost = t.elapsed();
        for object in ["pkg.json", "pkg.zip"] {
            assert_eq!(requests(&format!("/{mode}/{object}")), 2, "{mode}: {object} asked for again once");
        }
        // two waits of what the server asked for (a lower bound: the jitter adds to it)
        assert!(cost >= Duration::from_secs(2 * at_least), "{mode}: {cost:?}");
    }
    let o = hostile_then_good(url("busy-long"));
    let e = fetch_error(&o.error);
    assert!(
        matches!(e, FetchError::Busy { status, retry_after } if status.as_u16() == 429 && retry_after.as_secs() == 3600),
        "{:#}",
        o.error
    );
    assert!(format!("{:#}", o.error).contains("server answered 429 Too Many Requests and asks to retry after 3600 s"));
    assert_eq!(requests("/busy-long/pkg.json"), 1, "an hour does not fit the URL's budget");
}

#[test]
fn an_untrusted_server_certificate_says_why() {
    let stage = tempfile::tempdir().unwrap();
    // pinned: the signing root, which did not issue the server's certificate
    let f = fetcher_with(stage.path(), STALL, std::slice::from_ref(&env().signing_root_der), MAX_ARCHIVE);
    let t = Instant::now();
    let e = f.fetch(&url("good"), 0).unwrap_err();
    let msg = format!("{e:#}");
    assert!(matches!(fetch_error(&e), FetchError::Tls(_)), "{msg}");
    assert!(msg.contains("not pinned in tls_roots.pem"), "{msg}");
    assert!(t.elapsed() < RetryPolicy::default().first_backoff, "not retried (a retry waits first)");
}

#[test]
fn credentials_reach_the_server_and_never_the_messages() {
    let stage = tempfile::tempdir().unwrap();
    let f = fetcher(stage.path());
    let mut u = url("auth");
    u.set_username("stboot").unwrap();
    u.set_password(Some("s3cret")).unwrap();
    let pkg = f.fetch(&u, 0).expect("Basic auth from the URL, for descriptor and relative archive");
    let origin = format!("{} {:?}", pkg.origin(), pkg.origin());
    assert!(!origin.contains("s3cret") && origin.contains("***@127.0.0.1"), "{origin}");
    u.set_password(Some("wrong")).unwrap();
    let msg = format!("{:#}", f.fetch(&u, 0).unwrap_err());
    assert!(msg.contains("401") && !msg.contains("wrong"), "{msg}");
}

/// One pass: the hash is the served zip's, the entries were unpacked on the way
/// (the same bytes the zip crate extracts from the served file), the zip itself is
/// not kept, and everything staged goes when the package is dropped.
#[test]
fn the_archive_is_hashed_and_unpacked_in_one_pass() {
    let stage = tempfile::tempdir().unwrap();
    let pkg = fetcher(stage.path()).fetch(&url("good"), 0).unwrap();
    let served = std::fs::read(env().www.join("pkg.zip")).unwrap();
    assert_eq!(pkg.archive().sha256(), &verify::digest(&served));
    assert_eq!(pkg.archive().len(), served.len() as u64);
    let stboot::ospkg::package::ArchiveData::Streamed(s) = pkg.archive() else {
        panic!("not unpacked while streaming")
    };
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(&served)).unwrap();
    let mut files = 0;
    for i in 0..z.len() {
        let mut e = z.by_index(i).unwrap();
        if e.is_dir() {
            continue;
        }
        let mut want = Vec::new();
        e.read_to_end(&mut want).unwrap();
        let got = s.entries().get(&e.name().unwrap()).and_then(|x| x.path()).expect("entry unpacked");
        assert_eq!(std::fs::read(got).unwrap(), want, "{}", e.name().unwrap());
        files += 1;
    }
    let staged: Vec<_> = std::fs::read_dir(stage.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(staged.len(), files, "only the entries are staged, not the zip: {staged:?}");
    drop(pkg);
    assert!(std::fs::read_dir(stage.path()).unwrap().next().is_none(), "removed on drop");
    let _ = fetch::progress(0, None, Duration::ZERO);
}

/// A staging tmpfs that fills up while the archive unpacks: the error is a full
/// tmpfs and its remedy is room (the generic text before), not a broken archive.
#[test]
fn a_full_staging_tmpfs_is_named_as_such() {
    let root = std::process::Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
    if !root {
        assert!(std::env::var_os("STBOOT_REQUIRE_NETNS").is_none(), "needs root to mount a tmpfs");
        eprintln!("SKIPPED a_full_staging_tmpfs_is_named_as_such: needs root to mount a tmpfs");
        return;
    }
    let stage = tempfile::tempdir().unwrap();
    let mount = |args: &[&str]| {
        let o = std::process::Command::new(args[0]).args(&args[1..]).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    let dir = stage.path().to_str().unwrap();
    mount(&["mount", "-t", "tmpfs", "-o", "size=256k", "stboot-full", dir]);
    let e = fetcher(stage.path()).fetch(&url("good"), 0).unwrap_err();
    let leftover = std::fs::read_dir(stage.path()).unwrap().count();
    mount(&["umount", dir]);
    let msg = format!("{e:#}");
    let fe = fetch_error(&e);
    assert!(matches!(fe, FetchError::Local { full: true, .. }), "{msg}");
    assert!(fe.remedy().contains("does not fit in the staging tmpfs"), "{}", fe.remedy());
    assert_eq!(leftover, 0, "a failed download left files behind");
}

/// Server logs can tell the machines of a fleet apart: the user agent names
/// stboot-rs, its version and the machine's identity (the host configuration's
/// `identity`), and a per-machine `ospkg_pointer` (`$ID` in the path, `$AUTH` as the
/// password) reaches the server substituted, for the descriptor and the archive.
#[test]
fn the_user_agent_and_per_machine_urls_name_the_machine() {
    let port = env().tls_port;
    let host = stboot::config::HostConfig::parse(
        format!(
            r#"{{"network_mode":"dhcp","identity":"rack7-node12","authentication":"s3cret",
                "ospkg_pointer":"https://stboot:$AUTH@127.0.0.1:{port}/auth/$ID/pkg.json"}}"#
        )
        .as_bytes(),
    )
    .unwrap();
    let urls = fetch::usable_urls(&host.pointer()).unwrap();
    let stage = tempfile::tempdir().unwrap();
    let settings = fetch::Settings {
        stall_timeout: STALL,
        retry: RetryPolicy::default(),
        deadline: Instant::now() + Duration::from_secs(3600),
        max_archive: MAX_ARCHIVE,
        max_archive_why: "the test's limit".into(),
        identity: host.identity.clone(),
        proxies: Default::default(),
    };
    let f = Fetcher::new(std::slice::from_ref(&env().tls_ca_der), settings, stage.path()).unwrap();
    f.fetch(&urls[0], 0).unwrap_or_else(|e| panic!("{e:#}"));
    let want = format!("stboot-rs/{} (id=rack7-node12)", env!("CARGO_PKG_VERSION"));
    for object in ["pkg.json", "pkg.zip"] {
        let path = format!("/auth/rack7-node12/{object}");
        assert_eq!(requests(&path), 1, "{path}");
        assert_eq!(user_agent(&path), want, "{path}");
    }
    // without an identity, the product alone; an identity that is not a plain name is left out
    assert_eq!(fetch::user_agent(None), format!("stboot-rs/{}", env!("CARGO_PKG_VERSION")));
    assert_eq!(fetch::user_agent(Some("a b\r\nX-Evil: 1")), fetch::user_agent(None));
}

/// An archive cut off mid-body (a tenth, then a TCP reset) by a server that names
/// it with an ETag continues with `Range: bytes=N-` and `If-Range` from where it
/// stopped, and the one-pass hash and unzip go on: the package is byte for byte the
/// signed one, and only its entries are staged. A server that sends the whole file
/// again (it takes no ranges, or the ETag changed so If-Range failed) starts over
/// cleanly from byte 0.
#[test]
fn an_interrupted_archive_resumes_where_it_stopped() {
    let served = std::fs::read(env().www.join("pkg.zip")).unwrap();
    let files = {
        let z = zip::ZipArchive::new(std::io::Cursor::new(&served)).unwrap();
        z.file_names().filter(|n| n.as_ref().is_ok_and(|n| !n.ends_with('/'))).count()
    };
    for mode in ["resume", "resume-ignored", "resume-changed"] {
        let stage = tempfile::tempdir().unwrap();
        let pkg = fetcher(stage.path()).fetch(&url(mode), 0).unwrap_or_else(|e| panic!("{mode}: {e:#}"));
        assert_eq!(pkg.archive().sha256(), &verify::digest(&served), "{mode}");
        let staged = std::fs::read_dir(stage.path()).unwrap().count();
        assert_eq!(staged, files, "{mode}: only the final archive's entries are staged");
        let r = ranges(&format!("/{mode}/pkg.zip"));
        assert_eq!(r.len(), 2, "{mode}: {r:?}");
        assert_eq!(r[0], "- -", "{mode}: the first request asks for the whole file");
        let (range, if_range) = r[1].split_once(' ').unwrap();
        let from: u64 = range.strip_prefix("bytes=").and_then(|x| x.strip_suffix('-')).unwrap().parse().unwrap();
        assert!(from > 0 && from <= served.len() as u64 / 10, "{mode}: {r:?}");
        assert_eq!(if_range, "\"v1\"", "{mode}: If-Range holds the ETag of the first answer");
    }
}
