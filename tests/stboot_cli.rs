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
