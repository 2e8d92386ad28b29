//! Configure the network of the current network namespace from a host configuration,
//! as stboot does at boot. Used by tests/network_netns.rs inside throwaway network
//! namespaces: `ip netns exec NS netconfig host_configuration.json`.

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt().with_target(false).with_ansi(false).init();
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: netconfig HOST_CONFIG_JSON");
        return std::process::ExitCode::from(2);
    };
    let bytes = std::fs::read(&path).expect("read host config");
    let cfg = match stboot::config::HostConfig::parse(&bytes) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let secs = std::env::var("NETCONFIG_TIMEOUT").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    match stboot::network::configure(&cfg, std::time::Duration::from_secs(secs), &[]) {
        Ok(n) => {
            println!(
                "network: {} address {} gateway {} dns {:?}",
                n.interface,
                n.address,
                n.gateway.map(|g| g.to_string()).unwrap_or_default(),
                n.dns
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
