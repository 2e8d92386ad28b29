//! The address race: DHCPv4 ([`super::dhcp`]) and IPv6 autoconfiguration
//! ([`super::ipv6`]) on several links at once, one thread per contender; the first
//! usable address wins, and the console says where the others stood (and, while the
//! race lasts, where every contender stands every few seconds).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use tracing::info;

use super::lease::{Candidate, Families, Lease, Method};

/// Where each contender (a link and an address family) stands, for the console:
/// shared by the threads.
#[derive(Clone)]
struct Progress(Arc<Mutex<Vec<String>>>);

impl Progress {
    fn set(&self, i: usize, what: impl Into<String>) {
        if let Ok(mut v) = self.0.lock() {
            v[i] = what.into();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

/// One thing racing for the address: DHCPv4 or IPv6 on one link.
#[derive(Debug, Clone, Copy)]
struct Contender {
    link: usize,
    family: Family,
}

/// Run DHCPv4 and/or IPv6 autoconfiguration (per `families`) on all `links` in
/// parallel until one gets a usable address or `timeout` passes. `wait_ready(link,
/// deadline)` is called first on each link's own thread (carrier wait). When one
/// wins, the console says where every other contender stood.
pub fn obtain<F>(links: Vec<Candidate>, families: Families, timeout: Duration, wait_ready: F) -> Result<Lease>
where
    F: Fn(&Candidate, Instant) -> Result<()> + Send + Sync + 'static,
{
    if links.is_empty() {
        bail!("DHCP: no network interface to run on");
    }
    let kinds: Vec<Family> =
        [(families.v4, Family::V4), (families.v6, Family::V6)].into_iter().filter(|f| f.0).map(|f| f.1).collect();
    if kinds.is_empty() {
        bail!("DHCP: neither IPv4 nor IPv6 to run");
    }
    let contenders: Vec<Contender> =
        (0..links.len()).flat_map(|link| kinds.iter().map(move |&family| Contender { link, family })).collect();
    let deadline = Instant::now() + timeout;
    let stop = Arc::new(AtomicBool::new(false));
    let wait_ready = Arc::new(wait_ready);
    let progress = Progress(Arc::new(Mutex::new(vec!["waiting for carrier".to_string(); contenders.len()])));
    let (tx, rx) = mpsc::channel::<(usize, Result<Lease>)>();
    for (i, link) in links.clone().into_iter().enumerate() {
        let mine: Vec<(usize, Family)> =
            contenders.iter().enumerate().filter(|(_, c)| c.link == i).map(|(n, c)| (n, c.family)).collect();
        let (tx, stop, wait_ready, progress) = (tx.clone(), stop.clone(), wait_ready.clone(), progress.clone());
        std::thread::spawn(move || {
            if let Err(e) = wait_ready(&link, deadline) {
                for (n, _) in &mine {
                    let _ = tx.send((*n, Err(anyhow!("{e:#}"))));
                }
                return;
            }
            let run = move |n: usize, family: Family| {
                let report = |what: String| progress.set(n, what);
                match family {
                    Family::V4 => {
                        report("carrier, but no DHCP answer yet".into());
                        super::dhcp::run_link(&link, deadline, &stop, &report)
                    }
                    Family::V6 => {
                        report("carrier, but no router advertisement yet".into());
                        super::ipv6::run_link(&link, deadline, &stop, &report)
                    }
                }
            };
            let run = Arc::new(run);
            let (last, others) = mine.split_last().expect("each link races at least one family");
            for &(n, family) in others {
                let (tx, run) = (tx.clone(), run.clone());
                std::thread::spawn(move || {
                    let _ = tx.send((n, run(n, family)));
                });
            }
            let _ = tx.send((last.0, run(last.0, last.1)));
        });
    }
    drop(tx);
    let mut errors = Vec::new();
    let started = Instant::now();
    loop {
        let (n, r) = match rx.recv_timeout(WAITING_LINE_EVERY) {
            Ok(got) => got,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let states = progress.0.lock().map(|v| v.clone()).unwrap_or_default();
                info!("{}", waiting_line(started.elapsed(), timeout, &links, &contenders, &states));
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        match r {
            Ok(lease) => {
                stop.store(true, Ordering::Relaxed);
                if contenders.len() > 1 {
                    let others = progress.0.lock().map(|v| v.clone()).unwrap_or_default();
                    info!("{}", race_summary(&links, &contenders, n, &lease, &others));
                }
                return Ok(lease);
            }
            Err(e) => {
                progress.set(n, format!("failed: {e:#}"));
                errors.push(format!("{}: {e:#}", label(&links, &contenders, n)));
            }
        }
    }
    bail!("DHCP: no lease within {} s ({})", timeout.as_secs(), errors.join("; "))
}

/// How often the console hears where a DHCP wait stands (a 58 s wait printed
/// nothing until it ended).
pub const WAITING_LINE_EVERY: Duration = Duration::from_secs(5);

/// `DHCP: still waiting after 5 s of 60 s: eth0: no DHCP answer to 3 DHCPDISCOVER(s) yet; eth1: no carrier yet`.
fn waiting_line(
    waited: Duration,
    timeout: Duration,
    links: &[Candidate],
    contenders: &[Contender],
    states: &[String],
) -> String {
    let each: Vec<String> =
        (0..contenders.len()).map(|n| format!("{}: {}", label(links, contenders, n), state(states, n))).collect();
    format!("DHCP: still waiting after {} s of {} s: {}", waited.as_secs(), timeout.as_secs(), each.join("; "))
}

/// Where contender `n` stands, for the console.
fn state(states: &[String], n: usize) -> String {
    states.get(n).map(String::as_str).unwrap_or("unknown").replace("waiting for carrier", "no carrier yet")
}

/// `eth0`, or `eth0 DHCPv4` / `eth0 IPv6` when both families race.
fn label(links: &[Candidate], contenders: &[Contender], n: usize) -> String {
    let c = contenders[n];
    let name = &links[c.link].name;
    if contenders.iter().filter(|o| o.link == c.link).count() == 1 {
        return name.clone();
    }
    match c.family {
        Family::V4 => format!("{name} DHCPv4"),
        Family::V6 => format!("{name} IPv6"),
    }
}

/// `DHCP: eth1 won (lease 10.0.2.15 from 10.0.2.2); eth0: no carrier yet; ...`, or
/// `DHCP: eth1 won with SLAAC (...); eth1 DHCPv4: no DHCP answer ...`. A link whose
/// contenders all stand at the same place is named once.
fn race_summary(
    links: &[Candidate],
    contenders: &[Contender],
    winner: usize,
    lease: &Lease,
    states: &[String],
) -> String {
    let name = &links[contenders[winner].link].name;
    let mut s = match lease.method {
        Method::Dhcpv4 => format!("DHCP: {name} won (lease {} from {})", lease.address, lease.server),
        m => format!(
            "DHCP: {name} won with {} ({}/{}, router {})",
            m.name(),
            lease.address,
            lease.prefix,
            lease.router.map(|r| r.to_string()).unwrap_or_else(|| "none".into())
        ),
    };
    let state = |n: usize| state(states, n);
    for (i, l) in links.iter().enumerate() {
        let mine: Vec<usize> = (0..contenders.len()).filter(|&n| contenders[n].link == i && n != winner).collect();
        let Some(&first) = mine.first() else { continue };
        if i != contenders[winner].link && mine.iter().all(|&n| state(n) == state(first)) {
            s.push_str(&format!("; {}: {}", l.name, state(first)));
        } else {
            for n in mine {
                s.push_str(&format!("; {}: {}", label(links, contenders, n), state(n)));
            }
        }
    }
    s
}

#[cfg(test)]
mod race_tests {
    use super::*;

    #[test]
    fn the_summary_names_the_winner_and_where_the_others_stood() {
        let c = |n: &str, i| Candidate { name: n.into(), index: i, mac: vec![] };
        let links = [c("eth0", 2), c("eth1", 3), c("eth2", 4)];
        let v4 = |link| Contender { link, family: Family::V4 };
        let v6 = |link| Contender { link, family: Family::V6 };
        let mut lease = Lease {
            interface: "eth1".into(),
            index: 3,
            method: Method::Dhcpv4,
            address: "10.0.2.15".parse().unwrap(),
            prefix: 24,
            router: None,
            dns: vec![],
            lease_time: None,
            server: "10.0.2.2".parse().unwrap(),
        };
        let states =
            ["waiting for carrier".to_string(), String::new(), "no DHCP answer to 2 DHCPDISCOVER(s) yet".into()];
        assert_eq!(
            race_summary(&links, &[v4(0), v4(1), v4(2)], 1, &lease, &states),
            "DHCP: eth1 won (lease 10.0.2.15 from 10.0.2.2); eth0: no carrier yet; eth2: no DHCP answer to 2 DHCPDISCOVER(s) yet"
        );
        // both families: a link whose two contenders stand at the same place is named
        // once; the winner's link names the other family
        let both = [v4(0), v6(0), v4(1), v6(1)];
        lease.method = Method::Slaac;
        lease.address = "2001:db8::5054:ff:feaa:1".parse().unwrap();
        lease.prefix = 64;
        lease.router = Some("fe80::1".parse().unwrap());
        let states = [
            "waiting for carrier".to_string(),
            "waiting for carrier".into(),
            "no DHCP answer to 3 DHCPDISCOVER(s) yet".into(),
            String::new(),
        ];
        assert_eq!(
            race_summary(&links[..2], &both, 3, &lease, &states),
            "DHCP: eth1 won with SLAAC (2001:db8::5054:ff:feaa:1/64, router fe80::1); eth0: no carrier yet; eth1 DHCPv4: no DHCP answer to 3 DHCPDISCOVER(s) yet"
        );
    }
}
