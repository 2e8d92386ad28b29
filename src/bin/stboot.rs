//! stboot: for now it reads and checks its configuration; the boot path follows.
fn main() -> std::process::ExitCode {
    let tp = stboot::config::TrustConfig::load(
        std::path::Path::new(stboot::config::TRUST_POLICY_DIR),
        Some(std::path::Path::new(stboot::config::trust_policy::LEGACY_TLS_ROOTS)),
    );
    match tp {
        Ok(t) => {
            println!("stboot {}: trust policy {:?}", stboot::VERSION, t.policy);
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("stboot: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
