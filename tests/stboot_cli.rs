//! stboot outside PID 1: it must refuse the boot path (modules, network, kexec) on a
//! running system, and say how to get a dry run instead.

use std::process::Command;

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
    let root = is_root() && Command::new("unshare").arg("--version").output().is_ok();
    if !root {
        assert!(std::env::var_os("STBOOT_REQUIRE_NETNS").is_none(), "needs root and unshare(1)");
        eprintln!("SKIPPED a_dry_run_outside_pid_1_verifies_and_touches_nothing: needs root and unshare(1)");
        return;
    }
    let e = hostile::env();
    let d = tempfile::tempdir().unwrap();
    let run = |threshold: u32| {
        let tp = d.path().join(format!("tp{threshold}"));
        std::fs::create_dir_all(&tp).unwrap();
        std::fs::write(
            tp.join("trust_policy.json"),
            format!(r#"{{"ospkg_signature_threshold":{threshold},"ospkg_fetch_method":"network"}}"#),
        )
        .unwrap();
        std::fs::write(tp.join("ospkg_signing_root.pem"), stboot::pem::encode("CERTIFICATE", &e.signing_root_der))
            .unwrap();
        std::fs::write(tp.join("tls_roots.pem"), stboot::pem::encode("CERTIFICATE", &e.tls_ca_der)).unwrap();
        let host = format!(r#"{{"network_mode":"dhcp","ospkg_pointer":"{}"}}"#, hostile::url("good"));
        std::fs::write(d.path().join("host.json"), host).unwrap();
        let script = format!(
            "set -e; mount -t tmpfs stboot-test /etc; mkdir /etc/trust_policy; cp {tp}/* /etc/trust_policy/; \
             cp {host} /etc/host_configuration.json; exec {stboot} --dry-run",
            tp = tp.display(),
            host = d.path().join("host.json").display(),
            stboot = env!("CARGO_BIN_EXE_stboot"),
        );
        let o = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .env("STBOOT_TEST", "1")
            .output()
            .unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).to_string())
    };
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

#[allow(unsafe_code)]
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
