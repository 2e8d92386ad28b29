//! stboot outside PID 1: it must refuse the boot path (modules, network, kexec) on a
//! running system, and say how to get a dry run instead.

use std::process::{Command, Stdio};

fn stboot(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_stboot")).args(args).output().expect("run stboot");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

#[test]
fn outside_pid_1_the_boot_path_is_refused() {
    for args in [&[][..], &["-loglevel=d"], &["-deadline=1"]] {
        let (code, out, err) = stboot(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains("not running as PID 1") && err.contains("stboot --dry-run"), "{err}");
        // it stops before logging starts: no step ran
        assert!(!err.contains("starting (PID") && !err.contains("INFO"), "nothing was started: {err}");
    }
}

#[test]
fn help_and_version_do_nothing_else() {
    let (code, out, _) = stboot(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Outside PID 1 only a dry run is allowed") && out.contains("--configure-network"), "{out}");
    assert!(out.contains("[-trustPolicy DIR] [-hostConfig FILE]"), "{out}");
    assert!(out.lines().all(|l| l.chars().count() <= 80), "{out}");
    let (code, out, _) = stboot(&["--version"]);
    assert_eq!((code, out.trim_end()), (0, concat!("stboot-rs ", env!("CARGO_PKG_VERSION"))));
}

#[path = "common/hostile.rs"]
mod hostile;

/// A dry run outside PID 1, end to end: the real binary, a real TLS server, real
/// signatures. It runs in a private mount namespace whose /etc holds only the trust
/// policy and the host configuration (the host's /etc is untouched). It must fetch,
/// verify and stage the package, say which measurements it would make, extend
/// nothing, configure no network, and exit 0; with a bad threshold it must exit 1.
#[test]
fn a_dry_run_outside_pid_1_verifies_and_touches_nothing() {
    if !can_dry_run("a_dry_run_outside_pid_1_verifies_and_touches_nothing") {
        return;
    }
    let e = hostile::env();
    let run = |threshold: u32| dry_run(&trust_policy(threshold, &e.signing_root_der), hostile::url("good").as_str());
    let (code, err) = run(2);
    assert_eq!(code, Some(0), "{err}");
    for want in [
        "dry run outside PID 1: no modules, no kexec, no TPM; the network is used as it is",
        "Signatures: 2 found, 2 valid, 2 required",
        "OS package passed verification",
        "step stage:",
        "dry run: would measure OS package archive into PCR 12",
        "Dry run: verified the OS package and did not boot it",
    ] {
        assert!(err.contains(want), "missing {want:?}:\n{err}");
    }
    for never in ["network:", "kexec_load", "measured OS package", "module "] {
        assert!(!err.contains(never), "unexpected {never:?}:\n{err}");
    }
    let (code, err) = run(3);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("Signatures: 2 found, 2 valid, 3 required") && err.contains("giving up"), "{err}");
}

/// On an admin host, `-trustPolicy DIR -hostConfig FILE` check a configuration
/// without touching /etc: the same dry run, from the files given (no root needed).
#[test]
fn a_dry_run_reads_the_trust_policy_and_host_configuration_it_is_given() {
    let e = hostile::env();
    let d = tempfile::tempdir().unwrap();
    let tp = trust_policy_dir(d.path(), 2, &e.signing_root_der);
    let host = d.path().join("host.json");
    let url = hostile::url("good");
    std::fs::write(&host, format!(r#"{{"network_mode":"dhcp","ospkg_pointer":"{url}"}}"#)).unwrap();
    let (tps, hosts) = (tp.to_str().unwrap(), host.to_str().unwrap());
    let (code, _, err) = stboot(&["--dry-run", "-trustPolicy", tps, "-hostConfig", hosts]);
    assert_eq!(code, 0, "{err}");
    for want in [
        format!("host configuration from file {hosts}"),
        "Signatures: 2 found, 2 valid, 2 required".into(),
        "Dry run: verified the OS package and did not boot it".into(),
    ] {
        assert!(err.contains(&want), "missing {want:?}:\n{err}");
    }
    // a threshold the package does not meet: exit 1, as on the machine
    std::fs::write(tp.join("trust_policy.json"), r#"{"ospkg_signature_threshold":3,"ospkg_fetch_method":"network"}"#)
        .unwrap();
    let (code, _, err) = stboot(&["--dry-run", "-trustPolicy", tps, "-hostConfig", hosts]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("Signatures: 2 found, 2 valid, 3 required"), "{err}");
    // a file that is not there is named, not replaced by the EFI variable or defaults
    let (code, _, err) = stboot(&["--dry-run", "-trustPolicy", tps, "-hostConfig", "/nonexistent/host.json"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("-hostConfig /nonexistent/host.json: no such file"), "{err}");
    let (code, _, err) = stboot(&["--dry-run", "-trustPolicy", "/nonexistent/tp", "-hostConfig", hosts]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("/nonexistent/tp"), "{err}");
}

/// Whether dry runs in a private mount namespace can run here (root and unshare(1));
/// if not, `test` is reported as skipped, or fails where STBOOT_REQUIRE_NETNS says
/// they must run.
fn can_dry_run(test: &str) -> bool {
    let ok = is_root() && Command::new("unshare").arg("--version").output().is_ok();
    if !ok {
        assert!(std::env::var_os("STBOOT_REQUIRE_NETNS").is_none(), "{test}: needs root and unshare(1)");
        eprintln!("SKIPPED {test}: needs root and unshare(1)");
    }
    ok
}

#[allow(unsafe_code)]
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A trust policy directory's files: `threshold`, fetch method network, `root` as the
/// signing root and the test server's CA as the TLS root.
fn trust_policy(threshold: u32, root: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let pem = |der: &[u8]| stboot::pem::encode("CERTIFICATE", der).into_bytes();
    vec![
        (
            "trust_policy.json",
            format!(r#"{{"ospkg_signature_threshold":{threshold},"ospkg_fetch_method":"network"}}"#).into_bytes(),
        ),
        ("ospkg_signing_root.pem", pem(root)),
        ("tls_roots.pem", pem(&hostile::env().tls_ca_der)),
    ]
}

/// [`trust_policy`] as the directory `DIR/trust_policy`.
fn trust_policy_dir(dir: &std::path::Path, threshold: u32, root: &[u8]) -> std::path::PathBuf {
    let tp = dir.join("trust_policy");
    std::fs::create_dir(&tp).unwrap();
    for (name, bytes) in trust_policy(threshold, root) {
        std::fs::write(tp.join(name), bytes).unwrap();
    }
    tp
}

/// A dry run in a private mount namespace whose /etc holds `trust_policy` (file name,
/// contents) and a host configuration with `pointer`. Returns the exit code and the
/// console (stderr).
fn dry_run(trust_policy: &[(&str, Vec<u8>)], pointer: &str) -> (Option<i32>, String) {
    let d = tempfile::tempdir().unwrap();
    let tp = d.path().join("tp");
    std::fs::create_dir_all(&tp).unwrap();
    for (name, bytes) in trust_policy {
        std::fs::write(tp.join(name), bytes).unwrap();
    }
    let host = d.path().join("host.json");
    std::fs::write(&host, format!(r#"{{"network_mode":"dhcp","ospkg_pointer":"{pointer}"}}"#)).unwrap();
    let script = format!(
        "set -e; mount -t tmpfs stboot-test /etc; mkdir /etc/trust_policy; cp {tp}/* /etc/trust_policy/; \
         cp {host} /etc/host_configuration.json; exec {stboot} --dry-run",
        tp = tp.display(),
        host = host.display(),
        stboot = env!("CARGO_BIN_EXE_stboot"),
    );
    let o = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("STBOOT_TEST", "1")
        .output()
        .unwrap();
    (o.status.code(), String::from_utf8_lossy(&o.stderr).to_string())
}

/// The `what to do:` lines of a console.
fn remedies(console: &str) -> Vec<String> {
    console.lines().filter_map(|l| l.split_once("what to do: ").map(|(_, r)| r.to_string())).collect()
}

/// The console names the right remedy for what an operator gets wrong most often
/// (each said something else before): a package signed under another root (it said
/// "re-sign it"; what differs is the machine's ospkg_signing_root.pem), an expired
/// signer (the generic text), a signed package whose kernel is not a bzImage ("not
/// signed by enough trusted keys"), and a pointer whose only URL has a typo in its
/// scheme (retried 3 times, and sent to `stmgr hostconfig check`, which accepted it).
#[test]
fn the_console_names_the_right_remedy() {
    use stboot::keys;
    if !can_dry_run("the_console_names_the_right_remedy") {
        return;
    }
    let e = hostile::env();
    let url = |name: &str| format!("https://127.0.0.1:{}/good/{name}.json", e.tls_port);

    // signed under another root: the machine's root file is what to change
    let other_key = keys::generate_key();
    let v = keys::Validity::from_args(None, None, 30).unwrap();
    let other_root = keys::pem_to_der(&keys::root_certificate(&other_key, &v).unwrap()).unwrap();
    let (code, out) = dry_run(&trust_policy(2, &other_root), &url("pkg"));
    assert_eq!(code, Some(1), "{out}");
    let r = remedies(&out);
    assert!(
        r.iter().any(|r| r.contains("not in this machine's /etc/trust_policy/ospkg_signing_root.pem: add that root")),
        "{r:#?}\n{out}"
    );
    assert!(!r.iter().any(|r| r.contains("re-sign")), "{r:#?}");

    // a package of our own root, signed once by an expired certificate, and once by a
    // valid one over an archive whose kernel is not a bzImage
    let w = &e.www;
    let sign = |name: &str, kernel: &[u8], validity: &keys::Validity| {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("k"), kernel).unwrap();
        std::fs::write(d.path().join("i"), b"initramfs").unwrap();
        let paths = stboot::ospkg::PackagePaths::from_arg(&w.join(name)).unwrap();
        let zip = format!("{name}.zip");
        stboot::ospkg::create(&paths, &d.path().join("k"), &d.path().join("i"), "console=ttyS0", name, &zip, None)
            .unwrap();
        let k = keys::generate_key();
        let leaf = keys::pem_to_der(&keys::leaf_certificate(&k, &other_root, &other_key, validity).unwrap()).unwrap();
        stboot::sign::sign(&paths, &keys::Key::Local(k), &leaf).unwrap();
    };
    let mut bzimage = b"kernel ".repeat(1000);
    bzimage[0x202..0x206].copy_from_slice(b"HdrS");
    let expired = keys::Validity::from_args(Some("2020-01-01T00:00:00Z"), Some("2021-01-01T00:00:00Z"), 0).unwrap();
    sign("remedy-expired", &bzimage, &expired);
    let (code, out) = dry_run(&trust_policy(1, &other_root), &url("remedy-expired"));
    assert_eq!(code, Some(1), "{out}");
    let r = remedies(&out);
    assert!(r.iter().any(|r| r.contains("has expired: issue a new one (stmgr keygen certificate")), "{r:#?}\n{out}");

    sign("remedy-not-bzimage", b"not a kernel at all", &v);
    let (code, out) = dry_run(&trust_policy(1, &other_root), &url("remedy-not-bzimage"));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("Signatures: 1 found, 1 valid, 1 required"), "{out}");
    let r = remedies(&out);
    assert!(r.iter().any(|r| r.contains("the package is signed, but it cannot boot as built")), "{r:#?}\n{out}");
    assert!(!r.iter().any(|r| r.contains("not signed by enough")), "{r:#?}");

    // a typo in the only URL's scheme: a configuration error, said once, not retried
    let (code, out) = dry_run(&trust_policy(1, &other_root), &url("pkg").replace("https://", "htps://"));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("ospkg_pointer: URL 1: scheme \"htps\" is not http or https"), "{out}");
    assert!(out.contains("BOOT FAILED at step configuration"), "{out}");
    let r = remedies(&out);
    assert!(r.iter().any(|r| r.contains("stmgr hostconfig check FILE")), "{r:#?}\n{out}");
    assert_eq!(out.matches("BOOT FAILED").count(), 1, "not retried: {out}");
}

/// Packages through a real proxy (tinyproxy, with Basic auth): a dry run of the real
/// binary in a network namespace whose only way out is the proxy on a veth. The
/// provisioning server listens on the host's 127.0.0.1, which the namespace cannot
/// reach, so a package that verifies came through the proxy (a CONNECT tunnel:
/// TLS stays end to end, the server's certificate still checked against
/// tls_roots.pem). The proxy's password never reaches the console; `no_proxy` and a
/// wrong password fail, each with a reason.
#[test]
fn packages_come_through_the_configured_proxy_and_its_password_stays_hidden() {
    let have_tools = ["ip", "tinyproxy"].iter().all(|t| {
        Command::new("sh").arg("-c").arg(format!("command -v {t}")).output().is_ok_and(|o| o.status.success())
    });
    if !(is_root() && have_tools) {
        assert!(std::env::var_os("STBOOT_REQUIRE_NETNS").is_none(), "needs root, ip and tinyproxy (tinyproxy-bin)");
        eprintln!("SKIPPED packages_come_through_the_configured_proxy: needs root, ip and tinyproxy");
        return;
    }
    let sh = |cmd: &str| {
        let o = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
        assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
    };
    let id = std::process::id();
    let (ns, veth) = (format!("stpx{id}"), format!("vpx{id}"));
    struct Cleanup(String, String, Option<std::process::Child>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            if let Some(mut c) = self.2.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
            let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
            let _ = Command::new("ip").args(["link", "del", &self.1]).output();
        }
    }
    let mut cleanup = Cleanup(ns.clone(), veth.clone(), None);
    // TEST-NET-2 on a veth pair: the host side 198.51.100.1, the namespace .2
    sh(&format!(
        "ip netns add {ns} && ip link add {veth} type veth peer name eth0 netns {ns} && \
         ip addr add 198.51.100.1/24 dev {veth} && ip link set {veth} up && \
         ip -n {ns} addr add 198.51.100.2/24 dev eth0 && ip -n {ns} link set eth0 up && ip -n {ns} link set lo up"
    ));
    let port = std::net::TcpListener::bind("198.51.100.1:0").unwrap().local_addr().unwrap().port();
    let d = tempfile::tempdir().unwrap();
    let e = hostile::env();
    let conf = d.path().join("tinyproxy.conf");
    let log = d.path().join("tinyproxy.log");
    std::fs::write(
        &conf,
        format!(
            "Port {port}\nListen 198.51.100.1\nTimeout 30\nAllow 198.51.100.0/24\nBasicAuth stboot pr0xy-s3cret\n\
             ConnectPort {}\nLogFile \"{}\"\nLogLevel Connect\n",
            e.tls_port,
            log.display()
        ),
    )
    .unwrap();
    cleanup.2 = Some(Command::new("tinyproxy").arg("-d").arg("-c").arg(&conf).stderr(Stdio::null()).spawn().unwrap());
    let t = std::time::Instant::now();
    while std::net::TcpStream::connect(("198.51.100.1", port)).is_err() {
        assert!(t.elapsed() < std::time::Duration::from_secs(10), "tinyproxy did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let tp = trust_policy_dir(d.path(), 2, &e.signing_root_der);
    let host = d.path().join("host.json");
    let pointer = hostile::url("good");
    let run = |proxy: &str, extra: &str| {
        std::fs::write(
            &host,
            format!(r#"{{"network_mode":"dhcp","ospkg_pointer":"{pointer}","https_proxy":"{proxy}"{extra}}}"#),
        )
        .unwrap();
        let o = Command::new("ip")
            .args(["netns", "exec", &ns, env!("CARGO_BIN_EXE_stboot"), "--dry-run", "-trustPolicy"])
            .arg(&tp)
            .arg("-hostConfig")
            .arg(&host)
            .output()
            .unwrap();
        let console = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(!console.contains("pr0xy-s3cret"), "the proxy's password reached the console:\n{console}");
        (o.status.code(), console)
    };
    let good = format!("http://stboot:pr0xy-s3cret@198.51.100.1:{port}");
    let (code, console) = run(&good, "");
    assert_eq!(code, Some(0), "{console}");
    assert!(
        console.contains(&format!("proxy: https via http://stboot:***@198.51.100.1:{port}/ (CONNECT)"))
            && console.contains("OS package passed verification"),
        "{console}"
    );
    let proxied = std::fs::read_to_string(&log).unwrap();
    assert!(proxied.contains(&format!("127.0.0.1:{}", e.tls_port)), "the proxy saw no CONNECT:\n{proxied}");
    // no_proxy: straight to 127.0.0.1, which the namespace does not have
    let (code, console) = run(&good, r#","no_proxy":"127.0.0.1""#);
    assert_eq!(code, Some(1), "{console}");
    assert!(console.contains("cannot connect"), "{console}");
    // the proxy refuses a wrong password
    let (code, console) = run(&format!("http://stboot:wrong@198.51.100.1:{port}"), "");
    assert_eq!(code, Some(1), "{console}");
    assert!(!console.contains(":wrong@"), "{console}");
}
