//! Records the build time used as a floor for the clock (see `verify::effective_now`).
//! Reproducible: `SOURCE_DATE_EPOCH` wins, then the last commit's time.
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-changed=.git/HEAD");
    let t = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .filter(|s| s.parse::<u64>().is_ok())
        .or_else(|| {
            Command::new("git")
                .args(["log", "-1", "--format=%ct"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .filter(|s| s.parse::<u64>().is_ok())
        })
        .unwrap_or_else(|| "0".to_string());
    println!("cargo:rustc-env=STBOOT_BUILD_UNIX_TIME={t}");
}
