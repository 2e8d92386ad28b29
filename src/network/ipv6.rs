//! IPv6 for `network_mode: dhcp`, raced with DHCPv4 on every link: router discovery
//! (RFC 4861), an address from stateless autoconfiguration (SLAAC, RFC 4862) or from
//! DHCPv6 (RFC 8415, [`super::dhcpv6`]), DNS servers from the router advertisement
//! (RDNSS, RFC 8106) or from DHCPv6 (RFC 3646).
//!
//! The kernel does SLAAC itself: once a link is up it makes a link-local address,
//! solicits routers, and from a router advertisement (RA) with an autonomous prefix
//! it makes a global address, runs duplicate address detection (DAD) on it and adds
//! the default route. stboot listens to the same RAs on a raw ICMPv6 socket for what
//! the kernel leaves to user space: the managed and other-configuration flags (run
//! DHCPv6) and the DNS servers. It sends router solicitations of its own too, so an
//! answer to the kernel's that came before the socket existed is asked for again.
//!
//! A link's IPv6 is usable once it has a global address that passed DAD and an IPv6
//! default route. A DHCPv6 address is added by stboot and used only after DAD; one
//! that another host answers for is removed and declined to the server (RFC 8415
//! 18.2.8), and stboot asks again.

use std::net::{IpAddr, Ipv6Addr, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tracing::{info, warn};

use super::dhcpv6::Dhcp6;
use super::lease::{is_global, is_link_local, Candidate, Lease, Method};
use super::netlink::Netlink;

/// A prefix information option of a router advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix {
    pub prefix: Ipv6Addr,
    pub len: u8,
    /// The L flag: addresses in the prefix are on this link.
    pub on_link: bool,
    /// The A flag: hosts make their own address in it (SLAAC).
    pub autonomous: bool,
}

/// What stboot reads from a router advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterAdvert {
    /// The M flag: addresses come from DHCPv6.
    pub managed: bool,
    /// The O flag: other configuration (DNS) comes from DHCPv6.
    pub other: bool,
    /// Seconds the sender is a default router; 0: it is not one.
    pub router_lifetime: u16,
    pub prefixes: Vec<Prefix>,
    /// Recursive DNS servers (RDNSS options with a lifetime).
    pub dns: Vec<Ipv6Addr>,
}

/// Parse the ICMPv6 message of a router advertisement (RFC 4861 4.2): the one place
/// stboot decodes an RA. Malformed options refuse the whole message, as RFC 4861
/// 6.1.2 asks.
pub fn parse_router_advert(icmp: &[u8]) -> Result<RouterAdvert> {
    if icmp.len() < 16 {
        bail!("router advertisement of {} bytes: shorter than its 16-byte header", icmp.len());
    }
    if icmp[0] != 134 || icmp[1] != 0 {
        bail!("ICMPv6 type {} code {} is not a router advertisement (134, 0)", icmp[0], icmp[1]);
    }
    let mut ra = RouterAdvert {
        managed: icmp[5] & 0x80 != 0,
        other: icmp[5] & 0x40 != 0,
        router_lifetime: u16::from_be_bytes([icmp[6], icmp[7]]),
        prefixes: Vec::new(),
        dns: Vec::new(),
    };
    let mut opts = &icmp[16..];
    while !opts.is_empty() {
        if opts.len() < 2 || opts[1] == 0 {
            bail!("router advertisement: an option of length 0 or cut short");
        }
        let len = usize::from(opts[1]) * 8;
        if len > opts.len() {
            bail!("router advertisement: option {} claims {len} bytes, {} are left", opts[0], opts.len());
        }
        let (opt, rest) = opts.split_at(len);
        match opt[0] {
            3 => {
                if len != 32 {
                    bail!("router advertisement: prefix information of {len} bytes, not 32");
                }
                let plen = opt[2];
                let valid = u32::from_be_bytes([opt[4], opt[5], opt[6], opt[7]]);
                let bytes: [u8; 16] = opt[16..32].try_into().expect("16 bytes");
                if plen <= 128 && valid > 0 {
                    ra.prefixes.push(Prefix {
                        prefix: Ipv6Addr::from(bytes),
                        len: plen,
                        on_link: opt[3] & 0x80 != 0,
                        autonomous: opt[3] & 0x40 != 0,
                    });
                }
            }
            25 => {
                if len < 24 || (len - 8) % 16 != 0 {
                    bail!("router advertisement: RDNSS option of {len} bytes");
                }
                let lifetime = u32::from_be_bytes([opt[4], opt[5], opt[6], opt[7]]);
                if lifetime > 0 {
                    for a in opt[8..].chunks_exact(16) {
                        let a = Ipv6Addr::from(<[u8; 16]>::try_from(a).expect("16 bytes"));
                        if !ra.dns.contains(&a) {
                            ra.dns.push(a);
                        }
                    }
                }
            }
            _ => {}
        }
        opts = rest;
    }
    Ok(ra)
}

/// `default router for 1800 s, prefix 2001:db8::/64 (SLAAC), DNS 2001:db8::53,
/// addresses from DHCPv6` for the console.
pub fn describe(ra: &RouterAdvert) -> String {
    let mut parts = Vec::new();
    if ra.router_lifetime > 0 {
        parts.push(format!("default router for {} s", ra.router_lifetime));
    } else {
        parts.push("not a default router (lifetime 0)".to_string());
    }
    for p in &ra.prefixes {
        let how = match (p.autonomous, p.on_link) {
            (true, _) => " (SLAAC)",
            (false, true) => " (on-link)",
            (false, false) => "",
        };
        parts.push(format!("prefix {}/{}{how}", p.prefix, p.len));
    }
    if !ra.dns.is_empty() {
        let d: Vec<String> = ra.dns.iter().map(|a| a.to_string()).collect();
        parts.push(format!("DNS {}", d.join(" ")));
    }
    if ra.managed {
        parts.push("addresses from DHCPv6".into());
    } else if ra.other {
        parts.push("DNS from DHCPv6".into());
    }
    parts.join(", ")
}

/// A raw ICMPv6 socket on one link: sends router solicitations, receives RAs.
struct Routers {
    fd: OwnedFd,
    index: u32,
    /// Advertisements ignored, for the console.
    ignored: Ignored,
}

impl Drop for Routers {
    /// The last summary of what was ignored, however the wait ended.
    fn drop(&mut self) {
        if let Some(line) = self.ignored.summary(Instant::now()) {
            warn!("{line}");
        }
    }
}

/// Why a router advertisement was ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum IgnoredKind {
    NotLinkLocal,
    HopLimit,
    Malformed,
}

impl IgnoredKind {
    fn name(self) -> &'static str {
        match self {
            IgnoredKind::NotLinkLocal => "from a source that is not link-local",
            IgnoredKind::HopLimit => "with a hop limit other than 255",
            IgnoredKind::Malformed => "malformed",
        }
    }
}

/// Router advertisements ignored on one link, counted per kind so that a flood of
/// invalid ones (5,000 a second gave 40,754 warning lines in 10 s) cannot flood the
/// console: the first of each kind is shown with its reason, later ones are counted
/// and summed up at most every [`Ignored::EVERY`], and once more at the end.
#[derive(Debug)]
struct Ignored {
    link: String,
    /// Per kind: how many, and how many of them the console has heard of.
    counts: std::collections::BTreeMap<IgnoredKind, (u64, u64)>,
    last_summary: Instant,
}

impl Ignored {
    const EVERY: Duration = Duration::from_secs(5);

    fn new(link: &str) -> Self {
        Self { link: link.to_string(), counts: Default::default(), last_summary: Instant::now() }
    }

    /// Count one; the console lines to print now (the first of its kind, or a
    /// summary when one is due).
    fn note(&mut self, kind: IgnoredKind, from: &Ipv6Addr, reason: &str, now: Instant) -> Vec<String> {
        let c = self.counts.entry(kind).or_insert((0, 0));
        c.0 += 1;
        let mut lines = Vec::new();
        if c.0 == 1 {
            c.1 = 1;
            lines.push(format!("{}: ignoring a router advertisement from {from}: {reason}", self.link));
        }
        if now.saturating_duration_since(self.last_summary) >= Self::EVERY {
            lines.extend(self.summary(now));
        }
        lines
    }

    /// What was ignored since the console last heard, if anything.
    fn summary(&mut self, now: Instant) -> Option<String> {
        self.last_summary = now;
        let news: Vec<String> = self
            .counts
            .iter_mut()
            .filter(|(_, (n, told))| n > told)
            .map(|(k, (n, told))| {
                let new = *n - *told;
                *told = *n;
                format!("{new} {}", k.name())
            })
            .collect();
        (!news.is_empty()).then(|| format!("{}: ignored more router advertisements: {}", self.link, news.join(", ")))
    }
}

impl Routers {
    fn open(link: &Candidate) -> Result<Self> {
        use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockProtocol, SockType};
        let fd = socket::socket(AddressFamily::Inet6, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::IcmpV6)
            .context("creating a raw ICMPv6 socket (is CONFIG_IPV6 in the kernel?)")?;
        socket::setsockopt(&fd, sockopt::BindToDevice, &std::ffi::OsString::from(&link.name))
            .with_context(|| format!("binding an ICMPv6 socket to {}", link.name))?;
        // the hop limit of what arrives: a router advertisement with less than 255
        // crossed a router, and is not from this link (RFC 4861 6.1.2)
        socket::setsockopt(&fd, sockopt::Ipv6RecvHopLimit, &true)?;
        socket::setsockopt(&fd, sockopt::Ipv6MulticastHops, &255)?;
        Ok(Self { fd, index: link.index, ignored: Ignored::new(&link.name) })
    }

    fn ignore(&mut self, kind: IgnoredKind, from: &Ipv6Addr, reason: &str) {
        for line in self.ignored.note(kind, from, reason, Instant::now()) {
            warn!("{line}");
        }
    }

    /// Send a router solicitation to all routers (ff02::2). The kernel fills in the
    /// checksum and the source address (`::` while the link-local one is tentative,
    /// which is why no source link-layer option is sent).
    fn solicit(&self) -> Result<()> {
        use nix::sys::socket::{sendto, MsgFlags, SockaddrIn6};
        let to = SockaddrIn6::from(SocketAddrV6::new(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2), 0, 0, self.index));
        sendto(self.fd.as_raw_fd(), &[133, 0, 0, 0, 0, 0, 0, 0], &to, MsgFlags::empty())
            .context("sending a router solicitation")?;
        Ok(())
    }

    /// The next valid RA within `wait`, with its sender; other ICMPv6 messages, and
    /// RAs from off the link or malformed, are skipped.
    fn receive(&mut self, wait: Duration) -> Result<Option<(Ipv6Addr, RouterAdvert)>> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrIn6};
        let until = Instant::now() + wait;
        let mut buf = [0u8; 1500];
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, PollTimeout::from(ms)).context("waiting for a router advertisement")? == 0 {
                continue;
            }
            let mut iov = [std::io::IoSliceMut::new(&mut buf)];
            let mut cmsg = nix::cmsg_space!(libc::c_int);
            let msg =
                match recvmsg::<SockaddrIn6>(self.fd.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_DONTWAIT) {
                    Ok(m) => m,
                    Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(anyhow!("receiving ICMPv6: {e}")),
                };
            let hop = msg.cmsgs().ok().into_iter().flatten().find_map(|c| match c {
                ControlMessageOwned::Ipv6HopLimit(h) => Some(h),
                _ => None,
            });
            let (n, from) = (msg.bytes, msg.address.map(|a| a.ip()));
            let Some(from) = from else { continue };
            let bytes = &buf[..n];
            if bytes.first() != Some(&134) {
                continue; // not an RA: neighbour discovery, our own solicitation, ...
            }
            if !is_link_local(&from) {
                let why = "its source is not a link-local address (RFC 4861 6.1.2)";
                self.ignore(IgnoredKind::NotLinkLocal, &from, why);
                continue;
            }
            if hop != Some(255) {
                let hop = hop.map_or("unknown".to_string(), |h| h.to_string());
                let why = format!("hop limit {hop}, not 255: it crossed a router");
                self.ignore(IgnoredKind::HopLimit, &from, &why);
                continue;
            }
            match parse_router_advert(bytes) {
                Ok(ra) => return Ok(Some((from, ra))),
                Err(e) => self.ignore(IgnoredKind::Malformed, &from, &format!("{e:#}")),
            }
        }
    }
}

/// Autoconfigure IPv6 on `link` until it is usable, another contender won (`stop`)
/// or `deadline`. `progress` keeps the console's race summary current.
pub fn run_link(link: &Candidate, deadline: Instant, stop: &AtomicBool, progress: &dyn Fn(String)) -> Result<Lease> {
    let t0 = Instant::now();
    let mut routers = Routers::open(link)?;
    let mut solicitations = 0u32;
    let mut next_rs = Instant::now();
    let mut rs_wait = Duration::from_secs(1);
    let mut seen_non_default = None;
    let (router, ra) = loop {
        if stop.load(Ordering::Relaxed) {
            bail!("another interface got an address first");
        }
        let now = Instant::now();
        if now >= deadline {
            match seen_non_default {
                Some(r) => bail!("the router advertisement from {r} does not offer a default router (lifetime 0)"),
                None => bail!("no router advertisement ({solicitations} router solicitations sent)"),
            }
        }
        if now >= next_rs {
            // failing to send (no link-local address yet, ...) is not fatal: try again
            if routers.solicit().is_ok() {
                solicitations += 1;
                progress(format!("no router advertisement yet ({solicitations} router solicitations sent)"));
            }
            next_rs = now + rs_wait;
            rs_wait = (rs_wait * 2).min(Duration::from_secs(4));
        }
        let wait = next_rs.min(deadline).saturating_duration_since(now).min(Duration::from_millis(250));
        if let Some((from, ra)) = routers.receive(wait)? {
            if ra.router_lifetime > 0 {
                break (from, ra);
            }
            seen_non_default = Some(from);
        }
    };
    info!("{}: router advertisement from {router} after {} ms: {}", link.name, t0.elapsed().as_millis(), describe(&ra));
    let mut dns: Vec<Ipv6Addr> = ra.dns.clone();
    let mut nl = Netlink::open()?;
    let slaac = ra.prefixes.iter().any(|p| p.autonomous && p.len == 64);
    let mut from_dhcp: Option<(Ipv6Addr, Ipv6Addr)> = None;
    if ra.managed {
        progress("router says managed: no DHCPv6 address yet".into());
        let mut client = Dhcp6::open(link)?;
        let mut nl2 = Netlink::open()?;
        let mut abandon = || stop.load(Ordering::Relaxed) || (slaac && usable(&mut nl2, link.index).is_some());
        match client.stateful(&mut nl, deadline, &mut abandon, progress) {
            Ok(Some(got)) => {
                dns.extend(got.dns.iter().filter(|a| !ra.dns.contains(a)));
                from_dhcp = Some((got.address, got.server));
            }
            Ok(None) => {}
            Err(e) if slaac => warn!("{}: DHCPv6 failed ({e:#}); using the SLAAC address", link.name),
            Err(e) => return Err(e),
        }
    } else if ra.other && dns.is_empty() {
        // stateless DHCPv6 for the DNS servers only; the address is SLAAC's
        progress("router says other configuration: asking DHCPv6 for DNS".into());
        let until = deadline.min(Instant::now() + Duration::from_secs(5));
        let mut abandon = || stop.load(Ordering::Relaxed);
        match Dhcp6::open(link).and_then(|mut c| c.information(until, &mut abandon)) {
            Ok(Some(d)) => dns = d,
            Ok(None) => warn!("{}: no DHCPv6 answer with DNS servers within 5 s; going on without", link.name),
            Err(e) => warn!("{}: DHCPv6 for DNS failed ({e:#}); going on without", link.name),
        }
    }
    // wait for the kernel: the SLAAC address past DAD, and the default route
    loop {
        if stop.load(Ordering::Relaxed) {
            bail!("another interface got an address first");
        }
        let addr = match from_dhcp {
            Some((a, _)) => Some((a, 128)),
            None => usable(&mut nl, link.index),
        };
        let route = nl.ipv6_default_routes()?.into_iter().find(|(i, _)| *i == link.index).map(|r| r.1);
        if let (Some((address, prefix)), Some(gw)) = (addr, route) {
            let (method, server) = match from_dhcp {
                Some((_, s)) => (Method::Dhcpv6, IpAddr::V6(s)),
                None => (Method::Slaac, IpAddr::V6(router)),
            };
            info!(
                "{}: {} address {address}/{prefix} usable after {} ms (duplicate address detection passed), default route via {gw}",
                link.name,
                method.name(),
                t0.elapsed().as_millis()
            );
            return Ok(Lease {
                interface: link.name.clone(),
                index: link.index,
                method,
                address: IpAddr::V6(address),
                prefix,
                router: Some(gw),
                dns: dns.into_iter().map(IpAddr::V6).collect(),
                lease_time: None,
                server,
            });
        }
        if Instant::now() >= deadline {
            let failed =
                nl.addresses()?.into_iter().find(|a| a.index == link.index && a.dad_failed && is_global(&a.addr));
            if let Some(f) = failed {
                bail!(
                    "the SLAAC address {} is already in use on the link: another host answered for it (duplicate address detection, RFC 4862)",
                    f.addr
                );
            }
            match (addr, route) {
                (None, _) if !slaac && !ra.managed => bail!(
                    "the router advertisement from {router} offers no prefix for SLAAC and no DHCPv6: no address to take"
                ),
                (None, _) => bail!("no IPv6 address passed duplicate address detection"),
                _ => bail!("an address, but no IPv6 default route from {router}"),
            }
        }
        progress(match addr {
            None => "router advertisement, no address past duplicate address detection yet".into(),
            Some(_) => "address, no default route yet".into(),
        });
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A global IPv6 address on link `index` that passed DAD, with its prefix length.
fn usable(nl: &mut Netlink, index: u32) -> Option<(Ipv6Addr, u8)> {
    let addrs = nl.addresses().ok()?;
    addrs.into_iter().find_map(|a| match a.addr {
        IpAddr::V6(v) if a.index == index && is_global(&a.addr) && !a.tentative && !a.dad_failed => Some((v, a.prefix)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flood of invalid advertisements (5,000 a second for 10 s) gives one line per
    /// kind and a summary every 5 s, not a line each (40,754 lines before).
    #[test]
    fn a_flood_of_invalid_advertisements_is_summed_up() {
        let t0 = Instant::now();
        let mut ig = Ignored::new("eth0");
        let from: Ipv6Addr = "fe80::1".parse().unwrap();
        let mut lines = Vec::new();
        for i in 0..50_000u64 {
            let now = t0 + Duration::from_micros(i * 200);
            let kind = if i % 10 == 0 { IgnoredKind::HopLimit } else { IgnoredKind::Malformed };
            lines.extend(ig.note(kind, &from, "option length 0", now));
        }
        lines.extend(ig.summary(t0 + Duration::from_secs(10)));
        assert!(lines.len() <= 5, "{lines:#?}");
        assert_eq!(lines[0], "eth0: ignoring a router advertisement from fe80::1: option length 0");
        // every ignored advertisement is counted once: 2 shown, the rest summed up
        let summed: u64 = lines
            .iter()
            .filter(|l| l.contains("ignored more"))
            .flat_map(|l| {
                l.split_once("advertisements: ")
                    .unwrap()
                    .1
                    .split(", ")
                    .map(|p| p.split(' ').next().unwrap().parse::<u64>().unwrap())
                    .collect::<Vec<_>>()
            })
            .sum();
        assert_eq!(summed + 2, 50_000, "{lines:#?}");
        assert!(
            lines.last().unwrap().contains("malformed")
                && lines.iter().any(|l| l.contains("with a hop limit other than 255"))
        );
        // nothing new: no summary
        assert_eq!(ig.summary(t0 + Duration::from_secs(20)), None);
    }

    /// An RA as dnsmasq sends it: M and O clear, lifetime 1800, SLLAO, MTU, PIO
    /// 2001:db8::/64 with L and A, RDNSS 2001:db8::53.
    fn ra_bytes() -> Vec<u8> {
        let mut b = vec![134, 0, 0, 0, 64, 0x00, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&[1, 1, 0x52, 0x54, 0, 0, 0, 1]); // source link-layer address
        b.extend_from_slice(&[5, 1, 0, 0, 0, 0, 0x05, 0xdc]); // MTU 1500
        b.extend_from_slice(&[3, 4, 64, 0xc0, 0, 0, 0x0e, 0x10, 0, 0, 0x07, 0x08, 0, 0, 0, 0]);
        b.extend_from_slice(&"2001:db8::".parse::<Ipv6Addr>().unwrap().octets());
        b.extend_from_slice(&[25, 3, 0, 0, 0, 0, 0x0e, 0x10]);
        b.extend_from_slice(&"2001:db8::53".parse::<Ipv6Addr>().unwrap().octets());
        b
    }

    #[test]
    fn a_router_advertisement_gives_flags_prefixes_and_dns() {
        let ra = parse_router_advert(&ra_bytes()).unwrap();
        assert_eq!(
            ra,
            RouterAdvert {
                managed: false,
                other: false,
                router_lifetime: 1800,
                prefixes: vec![Prefix {
                    prefix: "2001:db8::".parse().unwrap(),
                    len: 64,
                    on_link: true,
                    autonomous: true
                }],
                dns: vec!["2001:db8::53".parse().unwrap()],
            }
        );
        assert_eq!(describe(&ra), "default router for 1800 s, prefix 2001:db8::/64 (SLAAC), DNS 2001:db8::53");
        let mut managed = ra_bytes();
        managed[5] = 0xc0;
        managed[35] = 0x80; // the prefix's A flag off: on-link only
        let ra = parse_router_advert(&managed).unwrap();
        assert!(ra.managed && ra.other && !ra.prefixes[0].autonomous);
        assert_eq!(
            describe(&ra),
            "default router for 1800 s, prefix 2001:db8::/64 (on-link), DNS 2001:db8::53, addresses from DHCPv6"
        );
    }

    #[test]
    fn malformed_router_advertisements_are_refused() {
        let good = ra_bytes();
        let err = |b: &[u8]| format!("{:#}", parse_router_advert(b).unwrap_err());
        assert!(err(&good[..10]).contains("shorter than its 16-byte header"));
        let mut zero = good.clone();
        zero[17] = 0; // the first option's length
        assert!(err(&zero).contains("length 0"));
        let mut long = good.clone();
        long[good.len() - 23] = 9; // RDNSS claims 72 bytes, 24 are left
        assert!(err(&long).contains("claims 72 bytes"), "{}", err(&long));
        let mut pio = good.clone();
        pio[33] = 3;
        assert!(err(&pio).contains("claims") || err(&pio).contains("not 32"), "{}", err(&pio));
        let mut ns = good;
        ns[0] = 135;
        assert!(err(&ns).contains("not a router advertisement"));
        // an RDNSS with lifetime 0 withdraws its servers: none are taken
        let mut gone = ra_bytes();
        let n = gone.len();
        gone[n - 20..n - 16].copy_from_slice(&[0, 0, 0, 0]);
        assert!(parse_router_advert(&gone).unwrap().dns.is_empty());
    }

    /// The fuzz corpus's seeds are what they claim to be.
    #[test]
    fn the_fuzz_seeds_parse() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/ipv6/");
        let ra = std::fs::read(format!("{dir}router-advert.bin")).unwrap();
        assert_eq!(parse_router_advert(&ra[1..]).unwrap(), parse_router_advert(&ra_bytes()).unwrap());
    }
}
