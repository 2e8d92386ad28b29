//! The logic of upstream stmgr v0.6.6's test scripts, run against this stmgr:
//! `integration-tests/stmgr-upstream-scripts.sh` (one case per upstream script:
//! cert-keygen, cert-openssl, cert-ssh, cert-agent, hostconfig-check, ospkg-create,
//! ospkg-sign, uki-create). The UKI case needs an EFI-stub kernel: Debian's, which
//! scripts/setup.sh unpacks into target/kernel.

use std::path::Path;
use std::process::Command;

#[test]
fn upstream_stmgr_test_scripts_pass_against_this_stmgr() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let kernel = std::fs::read_dir(root.join("target/kernel/boot"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-")));
    let Some(kernel) = kernel else {
        assert!(
            std::env::var_os("STBOOT_REQUIRE_NETNS").is_none(),
            "target/kernel/boot/vmlinuz-* is missing: run scripts/setup.sh"
        );
        eprintln!("SKIPPED upstream_stmgr_test_scripts_pass_against_this_stmgr: no kernel in target/kernel (run scripts/setup.sh)");
        return;
    };
    let o = Command::new("bash")
        .arg(root.join("integration-tests/stmgr-upstream-scripts.sh"))
        .arg(env!("CARGO_BIN_EXE_stmgr"))
        .env("UKI_KERNEL", &kernel)
        .output()
        .expect("run bash");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("upstream stmgr scripts: 8 passed, 0 failed"), "{out}");
}
