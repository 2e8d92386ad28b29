//! DHCPv4, raced with IPv6 autoconfiguration ([`super::ipv6`]), on several links at
//! once; the first usable address wins.
//!
//! Messages are built and parsed with `dhcproto`. Each link gets a UDP socket bound to
//! port 68 on that device; requests set the BROADCAST flag so that servers answer to
//! the broadcast address, which a link without an address can receive. Each exchange
//! is retried with exponential backoff (0.5, 1, 2, 4, 8, 16 s) until the overall timeout:
//! a single client may retry quickly, and the first answer is often lost right after
//! carrier comes up. Retransmissions keep the transaction id, so a late answer counts.

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use dhcproto::v4::{self, DhcpOption, Flags, Message, MessageType, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable};
use tracing::{debug, info};

/// How a link got its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Dhcpv4,
    /// Stateless autoconfiguration from a router advertisement (the kernel's).
    Slaac,
    Dhcpv6,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Dhcpv4 => "DHCPv4",
            Method::Slaac => "SLAAC",
            Method::Dhcpv6 => "DHCPv6",
        }
    }
}

/// The address families to race on each link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Families {
    pub v4: bool,
    pub v6: bool,
}

/// What the network granted: a DHCPv4 lease (not yet on the link: the caller adds
/// it), or an IPv6 address already on the link, past duplicate address detection,
/// with the kernel's default route from the router advertisement.
#[derive(Debug, Clone)]
pub struct Lease {
    pub interface: String,
    pub index: u32,
    pub method: Method,
    pub address: IpAddr,
    pub prefix: u8,
    pub router: Option<IpAddr>,
    pub dns: Vec<IpAddr>,
    pub lease_time: Option<u32>,
    /// The DHCP server, or for SLAAC the router whose advertisement it came from.
    pub server: IpAddr,
}

/// A link to run DHCP on.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub name: String,
    pub index: u32,
    pub mac: Vec<u8>,
}

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
                        run_link(&link, deadline, &stop, &report)
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
    let state = |n: usize| {
        states.get(n).map(String::as_str).unwrap_or("unknown").replace("waiting for carrier", "no carrier yet")
    };
    let each: Vec<String> =
        (0..contenders.len()).map(|n| format!("{}: {}", label(links, contenders, n), state(n))).collect();
    format!("DHCP: still waiting after {} s of {} s: {}", waited.as_secs(), timeout.as_secs(), each.join("; "))
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
    let state = |n: usize| {
        states.get(n).map(String::as_str).unwrap_or("unknown").replace("waiting for carrier", "no carrier yet")
    };
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

fn socket_for(link: &Candidate) -> Result<UdpSocket> {
    use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};
    let fd: OwnedFd = socket::socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)
        .context("creating a UDP socket")?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    socket::setsockopt(&fd, sockopt::Broadcast, &true)?;
    socket::setsockopt(&fd, sockopt::BindToDevice, &std::ffi::OsString::from(&link.name))
        .with_context(|| format!("binding a socket to {}", link.name))?;
    socket::bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68)))
        .context("binding UDP port 68")?;
    Ok(UdpSocket::from(fd))
}

fn base_message(link: &Candidate, xid: u32, kind: MessageType) -> Message {
    let mut m = Message::default();
    m.set_xid(xid).set_flags(Flags::default().set_broadcast()).set_chaddr(&link.mac);
    let o = m.opts_mut();
    o.insert(DhcpOption::MessageType(kind));
    o.insert(DhcpOption::ClassIdentifier(b"stboot-rs".to_vec()));
    let mut cid = vec![1u8];
    cid.extend_from_slice(&link.mac);
    o.insert(DhcpOption::ClientIdentifier(cid));
    o.insert(DhcpOption::ParameterRequestList(vec![
        OptionCode::SubnetMask,
        OptionCode::Router,
        OptionCode::DomainNameServer,
        OptionCode::DomainName,
        OptionCode::AddressLeaseTime,
    ]));
    m
}

fn run_link(link: &Candidate, deadline: Instant, stop: &AtomicBool, progress: &dyn Fn(String)) -> Result<Lease> {
    let sock = socket_for(link)?;
    let server = SocketAddrV4::new(Ipv4Addr::BROADCAST, 67);
    let mut wait = Duration::from_millis(500);
    // one transaction id for all retransmissions, so that a late answer to an
    // earlier DHCPDISCOVER still counts (RFC 2131 4.1)
    let mut xid = rand_u32();
    let t0 = Instant::now();
    let ms = || t0.elapsed().as_millis();
    let mut discovers = 0u32;
    loop {
        if stop.load(Ordering::Relaxed) {
            bail!("another interface got a lease first");
        }
        if Instant::now() >= deadline {
            bail!("no answer from a DHCP server");
        }
        let discover = base_message(link, xid, MessageType::Discover);
        sock.send_to(&discover.to_vec()?, server).context("sending DHCPDISCOVER")?;
        discovers += 1;
        progress(format!("no DHCP answer to {discovers} DHCPDISCOVER(s) yet"));
        debug!("{}: DHCPDISCOVER sent at {} ms", link.name, ms());
        let step_deadline = (Instant::now() + wait).min(deadline);
        if let Some(offer) = receive(&sock, xid, MessageType::Offer, step_deadline, stop)? {
            let offered = offer.yiaddr();
            let server_id = server_id(&offer);
            debug!("{}: DHCPOFFER of {offered} from {server_id} at {} ms", link.name, ms());
            progress(format!("offered {offered} by {server_id}, no DHCPACK yet"));
            let mut req = base_message(link, xid, MessageType::Request);
            req.opts_mut().insert(DhcpOption::RequestedIpAddress(offered));
            req.opts_mut().insert(DhcpOption::ServerIdentifier(server_id));
            sock.send_to(&req.to_vec()?, server).context("sending DHCPREQUEST")?;
            let ack_deadline = (Instant::now() + wait).min(deadline);
            if let Some(ack) = receive(&sock, xid, MessageType::Ack, ack_deadline, stop)? {
                info!("{}: DHCP lease {} from {server_id} after {} ms", link.name, ack.yiaddr(), ms());
                return Ok(lease_from(link, &ack));
            }
            debug!("{}: no DHCPACK at {} ms", link.name, ms());
            xid = rand_u32(); // a NAK or lost ACK: start a new transaction
        }
        wait = (wait * 2).min(Duration::from_secs(16));
    }
}

fn server_id(m: &Message) -> Ipv4Addr {
    match m.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(a)) => *a,
        _ => m.siaddr(),
    }
}

/// Wait for a reply of `kind` to `xid`; a NAK aborts this exchange.
fn receive(
    sock: &UdpSocket,
    xid: u32,
    kind: MessageType,
    until: Instant,
    stop: &AtomicBool,
) -> Result<Option<Message>> {
    let mut buf = [0u8; 1500];
    loop {
        let now = Instant::now();
        if now >= until || stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        sock.set_read_timeout(Some((until - now).min(Duration::from_millis(250))))?;
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(e) => return Err(e.into()),
        };
        let Ok(m) = decode(&buf[..n]) else { continue };
        if m.xid() != xid || m.opcode() != v4::Opcode::BootReply {
            continue;
        }
        match m.opts().get(OptionCode::MessageType) {
            Some(DhcpOption::MessageType(t)) if *t == kind => return Ok(Some(m)),
            Some(DhcpOption::MessageType(MessageType::Nak)) => return Ok(None),
            _ => continue,
        }
    }
}

fn lease_from(link: &Candidate, m: &Message) -> Lease {
    let o = m.opts();
    let mask = match o.get(OptionCode::SubnetMask) {
        Some(DhcpOption::SubnetMask(m)) => u32::from(*m).count_ones() as u8,
        _ => 32,
    };
    let router = match o.get(OptionCode::Router) {
        Some(DhcpOption::Router(r)) => r.first().copied(),
        _ => None,
    };
    let dns = match o.get(OptionCode::DomainNameServer) {
        Some(DhcpOption::DomainNameServer(d)) => d.clone(),
        _ => Vec::new(),
    };
    let lease_time = match o.get(OptionCode::AddressLeaseTime) {
        Some(DhcpOption::AddressLeaseTime(t)) => Some(*t),
        _ => None,
    };
    Lease {
        interface: link.name.clone(),
        index: link.index,
        method: Method::Dhcpv4,
        address: IpAddr::V4(m.yiaddr()),
        prefix: mask,
        router: router.map(IpAddr::V4),
        dns: dns.into_iter().map(IpAddr::V4).collect(),
        lease_time,
        server: IpAddr::V4(server_id(m)),
    }
}

fn rand_u32() -> u32 {
    use rand_core::RngCore;
    rand_core::OsRng.next_u32()
}

/// Parse a DHCP reply: the one place stboot decodes what the network sent.
///
/// dhcproto has `debug_assert!`s that a crafted packet can trip; in a debug build
/// (tests, fuzzing) that would be a panic, so it is caught and made an error. The
/// release build (`panic = "abort"`) compiles those assertions out.
pub fn decode(bytes: &[u8]) -> Result<Message> {
    let r = std::panic::catch_unwind(|| Message::decode(&mut Decoder::new(bytes)));
    match r {
        Ok(m) => m.map_err(|e| anyhow!("bad DHCP message: {e}")),
        Err(_) => Err(anyhow!("bad DHCP message: the decoder refused it")),
    }
}

/// What stboot reads from a reply, as text (for tests and fuzzing: the same option
/// accessors `lease_from` uses).
pub fn summary(m: &Message) -> String {
    let l = lease_from(&Candidate { name: String::new(), index: 0, mac: Vec::new() }, m);
    format!(
        "{} /{} via {:?} dns {:?} lease {:?} server {:?}",
        l.address, l.prefix, l.router, l.dns, l.lease_time, l.server
    )
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

#[cfg(test)]
mod decode_tests {
    /// An offer whose Rapid Commit option (80) carries a byte: dhcproto's debug
    /// assertion would panic a debug build; it is an error instead.
    #[test]
    fn a_rapid_commit_option_with_data_is_an_error_not_a_panic() {
        let offer = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/dhcp/rapid-commit-with-data.bin"))
            .expect("the fuzz corpus has this input");
        let r = super::decode(&offer);
        if cfg!(debug_assertions) {
            assert!(r.is_err(), "{r:?}");
        }
    }
}
