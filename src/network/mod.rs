//! Bringing up the network over netlink: choose NICs (by name, by MAC, or all with a
//! MAC), optionally bond them, optionally tag with a VLAN (`vlan_id`), wait for
//! carrier, then configure a static address, or race DHCPv4 and IPv6 autoconfiguration
//! (SLAAC, DHCPv6) on all candidates at once. Writes `/etc/resolv.conf`.

pub mod dhcp;
pub mod dhcpv6;
pub mod ipv6;
pub mod lease;
pub mod netlink;
pub mod race;

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tracing::{info, warn};

use crate::config::host_config::{HostConfig, NetworkMode};
use netlink::{Link, Netlink};

/// What the network looks like after configuration.
#[derive(Debug, Clone)]
pub struct Configured {
    pub interface: String,
    pub address: String,
    pub gateway: Option<IpAddr>,
    pub dns: Vec<IpAddr>,
    pub lease_time: Option<u32>,
}

impl std::fmt::Display for Configured {
    /// `network: eth0 address 10.0.2.15/24 gateway 10.0.2.2 dns [10.0.2.3] lease 86400 s`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "network: {} address {} gateway {} dns [{}]{}",
            self.interface,
            self.address,
            self.gateway.map(|g| g.to_string()).unwrap_or_else(|| "none".into()),
            self.dns.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
            self.lease_time.map(|t| format!(" lease {t} s")).unwrap_or_default()
        )
    }
}

/// Whether a link can be a NIC to boot from when the configuration names none: a
/// device with a driver (no link kind), or a veth end (containers, namespaces).
/// Bonds, bridges, VLANs, dummies and the like are not: a built-in bonding driver,
/// for one, creates an empty `bond0` that would otherwise be raced for DHCP.
pub fn is_nic(l: &Link) -> bool {
    !l.loopback && l.mac.is_some() && matches!(l.kind.as_deref(), None | Some("veth"))
}

/// Choose the links to use, as upstream: with `network_interfaces`, those matching by
/// name or MAC; none matching, or none configured, means every NIC ([`is_nic`]).
pub fn candidates(links: &[Link], cfg: &HostConfig) -> Vec<Link> {
    let all: Vec<Link> = links.iter().filter(|l| is_nic(l)).cloned().collect();
    let Some(wanted) = &cfg.network_interfaces else { return all };
    let chosen: Vec<Link> = links
        .iter()
        .filter(|l| !l.loopback && l.mac.is_some())
        .filter(|l| {
            wanted.iter().any(|w| {
                let name_ok = w.interface_name.as_deref().is_none_or(|n| n == l.name);
                let mac_ok = w.mac_address.as_ref().is_none_or(|m| Some(&m.0) == l.mac.as_ref());
                name_ok && mac_ok
            })
        })
        .cloned()
        .collect();
    if chosen.is_empty() {
        let names: Vec<_> = all.iter().map(|l| l.name.as_str()).collect();
        warn!("no NIC matches network_interfaces; trying all NICs with a MAC: {}", names.join(", "));
        return all;
    }
    chosen
}

/// `NICs: eth0 52:54:00:12:34:56, eth1 ...; not NICs: bond0 (bond)` for the console.
pub fn describe_links(links: &[Link], chosen: &[Link]) -> String {
    let mac =
        |l: &Link| l.mac.as_ref().map(|m| crate::config::host_config::Mac(m.clone()).to_string()).unwrap_or_default();
    let used: Vec<String> = chosen.iter().map(|l| format!("{} {}", l.name, mac(l))).collect();
    let mut s = format!("using {}", used.join(", "));
    let other: Vec<String> = links
        .iter()
        .filter(|l| !l.loopback && !chosen.iter().any(|c| c.index == l.index))
        .map(|l| match (&l.kind, &l.mac) {
            (Some(k), _) if !is_nic(l) => format!("{} ({k}, not a NIC)", l.name),
            (_, None) => format!("{} (no MAC)", l.name),
            _ => format!("{} (not in network_interfaces)", l.name),
        })
        .collect();
    if !other.is_empty() {
        s.push_str(&format!("; not used: {}", other.join(", ")));
    }
    s
}

/// Wait until one of `indexes` reports carrier (the first in the given order wins),
/// or `deadline`. One link dump per poll; the last dump is returned too.
fn race_carrier(nl: &mut Netlink, indexes: &[u32], deadline: Instant) -> Result<(Option<u32>, Vec<Link>)> {
    loop {
        let links = nl.links()?;
        if let Some(i) = indexes.iter().find(|i| links.iter().any(|l| l.index == **i && l.carrier)) {
            return Ok((Some(*i), links));
        }
        if Instant::now() >= deadline {
            return Ok((None, links));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_carrier(nl: &mut Netlink, indexes: &[u32], deadline: Instant) -> Result<Option<u32>> {
    Ok(race_carrier(nl, indexes, deadline)?.0)
}

/// The outcome of duplicate address detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dad {
    Passed,
    /// Another host answered for the address: it must not be used.
    Duplicate,
}

/// Wait for IPv6 duplicate address detection (RFC 4862) of `addr` on link `index`
/// (`name` for messages): the kernel keeps a new address tentative, unusable, until
/// no other host answered for it (about a second, or two with the initial random
/// delay).
pub(crate) fn wait_dad(nl: &mut Netlink, index: u32, name: &str, addr: IpAddr, deadline: Instant) -> Result<Dad> {
    let t0 = Instant::now();
    let deadline = deadline.min(t0 + Duration::from_secs(10));
    loop {
        let state = nl.addresses()?.into_iter().find(|a| a.index == index && a.addr == addr);
        match state {
            None => bail!("{addr} disappeared from {name} during duplicate address detection"),
            Some(a) if a.dad_failed => return Ok(Dad::Duplicate),
            Some(a) if !a.tentative => {
                info!("{name}: {addr} passed duplicate address detection after {} ms", t0.elapsed().as_millis());
                return Ok(Dad::Passed);
            }
            Some(_) if Instant::now() >= deadline => bail!(
                "{addr} on {name} is still tentative after {} s: duplicate address detection did not finish (no carrier?)",
                t0.elapsed().as_secs()
            ),
            Some(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// The console line of the static mode's carrier race: which candidate got the
/// address and why the others did not (`links`: the dump the race ended with).
fn carrier_race_line(winner: Option<u32>, cands: &[Link], links: &[Link], waited: Duration) -> String {
    let has_carrier = |c: &Link| links.iter().any(|l| l.index == c.index && l.carrier);
    let names = |v: Vec<&Link>| v.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(", ");
    let Some(w) = winner.and_then(|i| cands.iter().find(|l| l.index == i)) else {
        return format!(
            "static: no carrier on {} within {} s (cable or switch port?); configuring {} anyway, the first candidate",
            names(cands.iter().collect()),
            waited.as_secs(),
            cands[0].name
        );
    };
    let mut s = format!("static: {} has carrier after {} ms and gets the address", w.name, waited.as_millis());
    for c in cands.iter().filter(|c| c.index != w.index) {
        if has_carrier(c) {
            s.push_str(&format!("; {}: carrier too, but {} comes first", c.name, w.name));
        } else {
            s.push_str(&format!("; {}: no carrier yet", c.name));
        }
    }
    s
}

/// Bring every NIC up (links with a driver: [`candidates`] without a configuration)
/// at the very start of PID 1, before the configuration is read, so that carrier
/// negotiation (about 2 s on many NICs) runs while stboot reads its configuration
/// and trust policy, and the first DHCPDISCOVER goes out on a link that has settled.
/// Returns the indexes brought up: [`configure`] takes the NICs it uses and brings
/// the others down again.
pub fn wake_nics() -> Result<Vec<u32>> {
    let mut nl = Netlink::open().map_err(netlink::explain)?;
    let mut woken = Vec::new();
    let mut names = Vec::new();
    for l in nl.links()?.iter().filter(|l| is_nic(l)) {
        nl.set_up(l.index, true).with_context(|| format!("bringing up {}", l.name))?;
        woken.push(l.index);
        names.push(l.name.clone());
    }
    if !names.is_empty() {
        info!("NICs up early, carrier negotiates while the configuration is read: {}", names.join(", "));
    }
    Ok(woken)
}

/// Configure the network per `cfg`; DHCP and carrier waits are bounded by `timeout`.
/// `woken`: the links [`wake_nics`] brought up early; those the configuration does
/// not use go down again.
pub fn configure(cfg: &HostConfig, timeout: Duration, woken: &[u32]) -> Result<Configured> {
    let mut nl = Netlink::open().map_err(netlink::explain)?;
    let links = nl.links()?;
    let mut used: Vec<u32> = Vec::new();
    if let Some(lo) = links.iter().find(|l| l.loopback) {
        nl.set_up(lo.index, true).context("bringing up lo")?;
    }
    let mut cands = candidates(&links, cfg);
    if let Some(mode) = cfg.bonding_mode {
        let name = cfg.bond_name.as_deref().unwrap_or("bond0");
        let bond = nl.create_bond(name, mode.kernel_mode())?;
        for member in cfg.network_interfaces.iter().flatten().filter_map(|i| i.interface_name.as_deref()) {
            let l =
                links.iter().find(|l| l.name == member).with_context(|| format!("bond member {member} not found"))?;
            nl.enslave(l.index, bond).with_context(|| format!("adding {member} to {name}"))?;
            used.push(l.index);
        }
        info!("bond {name} ({}) created", mode.name());
        cands = vec![nl.link(bond)?];
    }
    if cands.is_empty() {
        let names: Vec<String> = links
            .iter()
            .map(|l| match &l.kind {
                Some(k) => format!("{} [{k}]", l.name),
                None => l.name.clone(),
            })
            .collect();
        bail!("no NIC found (links: {}); is the NIC driver loaded?", names.join(", "));
    }
    info!("network: {}", describe_links(&links, &cands));
    for l in &cands {
        nl.set_up(l.index, true).with_context(|| format!("bringing up {}", l.name))?;
        used.push(l.index);
    }
    for l in links.iter().filter(|l| woken.contains(&l.index) && !used.contains(&l.index)) {
        nl.set_up(l.index, false).with_context(|| format!("bringing down {}, which is not used", l.name))?;
    }
    if let Some(id) = cfg.vlan_id {
        // the VLAN links go up after their lower links (the kernel refuses otherwise);
        // their operational state follows the lower link's carrier
        let mut tagged = Vec::with_capacity(cands.len());
        for l in &cands {
            let name = vlan_name(&l.name, l.index, id);
            let index = nl.create_vlan(l.index, &name, id)?;
            nl.set_up(index, true).with_context(|| format!("bringing up {name}"))?;
            info!("VLAN {id} on {}: {name}", l.name);
            tagged.push(nl.link(index)?);
        }
        cands = tagged;
    }
    let deadline = Instant::now() + timeout;
    let result = match cfg.network_mode {
        NetworkMode::Static => {
            let ip = cfg.host_ip.context("static mode needs host_ip")?;
            let gw = cfg.gateway.context("static mode needs gateway")?;
            // the first link that gets carrier within 10 s wins; else the first link
            let carrier_deadline = (Instant::now() + Duration::from_secs(10)).min(deadline);
            let indexes: Vec<u32> = cands.iter().map(|l| l.index).collect();
            let t0 = Instant::now();
            let (won, seen) = race_carrier(&mut nl, &indexes, carrier_deadline)?;
            let line = carrier_race_line(won, &cands, &seen, t0.elapsed());
            let link = match won.and_then(|i| cands.iter().find(|l| l.index == i)) {
                Some(l) => {
                    info!("{line}");
                    l.clone()
                }
                None => {
                    warn!("{line}");
                    cands[0].clone()
                }
            };
            nl.add_address(link.index, ip.addr, ip.prefix).with_context(|| format!("adding {ip} to {}", link.name))?;
            if ip.addr.is_ipv6() && wait_dad(&mut nl, link.index, &link.name, ip.addr, deadline)? == Dad::Duplicate {
                bail!(
                    "{} is already in use on the link of {}: another host answered for it (duplicate address detection, RFC 4862); give this machine its own host_ip",
                    ip.addr,
                    link.name
                );
            }
            nl.add_default_route(link.index, gw).with_context(|| format!("adding default route via {gw}"))?;
            Configured {
                interface: link.name,
                address: ip.to_string(),
                gateway: Some(gw),
                dns: Vec::new(),
                lease_time: None,
            }
        }
        NetworkMode::Dhcp => {
            let dc: Vec<lease::Candidate> = cands
                .iter()
                .map(|l| lease::Candidate {
                    name: l.name.clone(),
                    index: l.index,
                    mac: l.mac.clone().unwrap_or_default(),
                })
                .collect();
            let families = families_for(&cfg.pointer());
            if !families.v6 {
                info!("DHCP: IPv4 only: every OS package URL names an IPv4 address");
            } else if !families.v4 {
                info!("DHCP: IPv6 only (SLAAC or DHCPv6): every OS package URL names an IPv6 address");
            }
            let lease = race::obtain(dc, families, timeout, |c, deadline| {
                let mut nl = Netlink::open()?;
                let t0 = Instant::now();
                if wait_carrier(&mut nl, &[c.index], deadline)?.is_some() {
                    info!("{}: link up after {} ms", c.name, t0.elapsed().as_millis());
                } else {
                    bail!("no carrier (cable or switch port?)");
                }
                Ok(())
            })?;
            // an IPv6 address is on the link already (the kernel's SLAAC, or DHCPv6
            // past duplicate address detection), with the kernel's default route
            if lease.method == lease::Method::Dhcpv4 {
                nl.add_address(lease.index, lease.address, lease.prefix)?;
                if let Some(r) = lease.router {
                    nl.add_default_route(lease.index, r)?;
                }
            }
            Configured {
                interface: lease.interface,
                address: format!("{}/{}", lease.address, lease.prefix),
                gateway: lease.router,
                dns: lease.dns,
                lease_time: lease.lease_time,
            }
        }
    };
    let mut result = result;
    if let Some(dns) = &cfg.dns {
        result.dns = dns.clone(); // configured servers replace DHCP's, as upstream
    }
    if !result.dns.is_empty() {
        write_resolv_conf(&result.dns, &result.interface)?;
    }
    Ok(result)
}

/// The address families `network_mode: dhcp` races, from the OS package URLs: an
/// URL that names an IPv4 address needs IPv4, one that names an IPv6 address needs
/// IPv6, a host name either. Nothing parseable: both.
pub fn families_for(pointer: &str) -> lease::Families {
    let (urls, _) = crate::config::host_config::pointer_urls(pointer);
    let mut f = lease::Families { v4: urls.is_empty(), v6: urls.is_empty() };
    for u in &urls {
        match u.host() {
            Some(url::Host::Ipv4(_)) => f.v4 = true,
            Some(url::Host::Ipv6(_)) => f.v6 = true,
            _ => (f.v4, f.v6) = (true, true),
        }
    }
    f
}

/// The name of the VLAN `id` link on `lower`: `eth0.7` as `ip link` users expect, or
/// `v7x1c` (lower's index in hex) when that would pass the kernel's 15 bytes.
pub fn vlan_name(lower: &str, lower_index: u32, id: u16) -> String {
    let name = format!("{lower}.{id}");
    if name.len() <= 15 {
        name
    } else {
        format!("v{id}x{lower_index:x}")
    }
}

/// The bytes of `/etc/resolv.conf` for `servers`. A link-local IPv6 server (routers
/// often advertise themselves so, RFC 8106) is only reachable through a link, so it
/// gets `interface` as its zone: `nameserver fe80::1%eth0` (musl and glibc read it).
pub fn resolv_conf(servers: &[IpAddr], interface: &str) -> String {
    let mut s = String::new();
    for ip in servers {
        match ip {
            IpAddr::V6(v) if lease::is_link_local(v) => {
                let _ = writeln!(s, "nameserver {ip}%{interface}");
            }
            _ => {
                let _ = writeln!(s, "nameserver {ip}");
            }
        }
    }
    s
}

fn write_resolv_conf(servers: &[IpAddr], interface: &str) -> Result<()> {
    std::fs::write("/etc/resolv.conf", resolv_conf(servers, interface)).context("writing /etc/resolv.conf")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_bytes_match_upstream() {
        let s = resolv_conf(&["0.0.0.0".parse().unwrap(), "8.8.8.8".parse().unwrap()], "eth0");
        assert_eq!(s, "nameserver 0.0.0.0\nnameserver 8.8.8.8\n");
        // a link-local server gets the link as its zone; a global one does not
        let v6 = resolv_conf(&["fe80::1".parse().unwrap(), "2001:db8::53".parse().unwrap()], "eth0.7");
        assert_eq!(v6, "nameserver fe80::1%eth0.7\nnameserver 2001:db8::53\n");
    }

    #[test]
    fn the_static_carrier_race_says_who_won_and_why_the_others_did_not() {
        let (mut a, mut b, c) = (link(2, "eth0", 1), link(3, "eth1", 2), link(4, "eth2", 3));
        b.carrier = true;
        let cands = vec![a.clone(), b.clone(), c.clone()];
        let seen = vec![a.clone(), b.clone(), c.clone()];
        assert_eq!(
            carrier_race_line(Some(3), &cands, &seen, Duration::from_millis(1234)),
            "static: eth1 has carrier after 1234 ms and gets the address; eth0: no carrier yet; eth2: no carrier yet"
        );
        a.carrier = true;
        let seen = vec![a.clone(), b.clone(), c.clone()];
        assert_eq!(
            carrier_race_line(Some(2), &cands, &seen, Duration::from_millis(5)),
            "static: eth0 has carrier after 5 ms and gets the address; eth1: carrier too, but eth0 comes first; eth2: no carrier yet"
        );
        assert_eq!(
            carrier_race_line(None, &cands, &cands, Duration::from_secs(10)),
            "static: no carrier on eth0, eth1, eth2 within 10 s (cable or switch port?); configuring eth0 anyway, the first candidate"
        );
    }

    #[test]
    fn the_families_raced_follow_the_urls() {
        let f = |p: &str| {
            let f = families_for(p);
            (f.v4, f.v6)
        };
        assert_eq!(f("https://10.0.2.2:8443/os.json"), (true, false));
        assert_eq!(f("https://[2001:db8::1]:8443/os.json"), (false, true));
        assert_eq!(f("https://10.0.2.2/a.json,https://[2001:db8::1]/a.json"), (true, true));
        assert_eq!(f("https://os.example/a.json"), (true, true));
        assert_eq!(f("not a url"), (true, true));
    }

    #[test]
    fn vlan_names_fit_the_kernel() {
        assert_eq!(vlan_name("eth0", 2, 7), "eth0.7");
        assert_eq!(vlan_name("bond0", 9, 4094), "bond0.4094");
        assert_eq!(vlan_name("enp0s31f6", 3, 4094), "enp0s31f6.4094");
        assert_eq!(vlan_name("enx525400123456", 28, 100), "v100x1c");
        assert_eq!(vlan_name("enx525400123456", u32::MAX, 4094), "v4094xffffffff");
    }

    fn link(i: u32, name: &str, mac: u8) -> Link {
        Link {
            index: i,
            name: name.into(),
            mac: Some(vec![0x52, 0x54, 0, 0, 0, mac]),
            up: false,
            carrier: false,
            loopback: false,
            kind: None,
        }
    }

    #[test]
    fn nic_choice() {
        let mut lo = link(1, "lo", 0);
        lo.loopback = true;
        lo.mac = None;
        let links = vec![lo, link(2, "eth0", 1), link(3, "eth1", 2)];
        let parse = |j: &str| HostConfig::parse(j.as_bytes()).unwrap();
        let names = |v: Vec<Link>| v.into_iter().map(|l| l.name).collect::<Vec<_>>();
        assert_eq!(
            names(candidates(&links, &parse(r#"{"network_mode":"dhcp","ospkg_pointer":"p"}"#))),
            ["eth0", "eth1"]
        );
        let by_mac =
            r#"{"network_mode":"dhcp","ospkg_pointer":"p","network_interfaces":[{"mac_address":"52:54:00:00:00:02"}]}"#;
        assert_eq!(names(candidates(&links, &parse(by_mac))), ["eth1"]);
        let by_name = r#"{"network_mode":"dhcp","ospkg_pointer":"p","network_interfaces":[{"interface_name":"eth0"}]}"#;
        assert_eq!(names(candidates(&links, &parse(by_name))), ["eth0"]);
        let both = r#"{"network_mode":"dhcp","ospkg_pointer":"p","network_interfaces":[{"interface_name":"eth0","mac_address":"52:54:00:00:00:02"}]}"#;
        // name and MAC must both match; nothing does, so all NICs are tried (upstream's fallback)
        assert_eq!(names(candidates(&links, &parse(both))), ["eth0", "eth1"]);
    }

    #[test]
    fn virtual_links_are_not_nics_unless_named() {
        let mut bond = link(4, "bond0", 9);
        bond.kind = Some("bond".into());
        let mut veth = link(5, "veth0", 8);
        veth.kind = Some("veth".into());
        let mut sit = link(6, "sit0", 0);
        sit.mac = None;
        let links = vec![link(2, "eth0", 1), bond, veth, sit];
        let parse = |j: &str| HostConfig::parse(j.as_bytes()).unwrap();
        let auto = candidates(&links, &parse(r#"{"network_mode":"dhcp","ospkg_pointer":"p"}"#));
        assert_eq!(auto.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["eth0", "veth0"]);
        assert_eq!(
            describe_links(&links, &auto),
            "using eth0 52:54:00:00:00:01, veth0 52:54:00:00:00:08; not used: bond0 (bond, not a NIC), sit0 (no MAC)"
        );
        let named = r#"{"network_mode":"dhcp","ospkg_pointer":"p","network_interfaces":[{"interface_name":"bond0"}]}"#;
        assert_eq!(candidates(&links, &parse(named))[0].name, "bond0");
        // with no NIC at all there is nothing to race (the network step says so at once)
        let only_bond = vec![links[1].clone()];
        assert!(candidates(&only_bond, &parse(r#"{"network_mode":"dhcp","ospkg_pointer":"p"}"#)).is_empty());
    }
}
