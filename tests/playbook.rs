//! The operator's playbook (docs/operator-guide.md, section 8) run for real against
//! this stmgr: `integration-tests/playbook.sh` rolls out releases behind a stable
//! descriptor name, raises the floor, rotates a signing key, revokes a leaked one
//! and keeps the floor in a (software) TPM, checking what stmgr says at each step.

use std::path::Path;
use std::process::Command;

#[test]
fn the_operators_playbook_runs_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = Command::new("bash")
        .arg(root.join("integration-tests/playbook.sh"))
        .arg(env!("CARGO_BIN_EXE_stmgr"))
        .output()
        .expect("run bash");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("playbook: 8 steps passed"), "{out}");
}
