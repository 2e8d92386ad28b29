//! DHCPv4 on one link ([`run_link`]), one contender of the address race
//! ([`super::race`]).
//!
//! Messages are built and parsed with `dhcproto`. Each link gets a UDP socket bound to
//! port 68 on that device; requests set the BROADCAST flag so that servers answer to
//! the broadcast address, which a link without an address can receive. Each exchange
//! is retried with exponential backoff (0.5, 1, 2, 4, 8, 16 s) until the overall timeout:
//! a single client may retry quickly, and the first answer is often lost right after
//! carrier comes up. Retransmissions keep the transaction id, so a late answer counts.
//!
//! DHCPDISCOVER offers Rapid Commit (RFC 4039, option 80): a server that takes it
//! (dnsmasq `--dhcp-rapid-commit`, systemd-networkd) answers with a DHCPACK at once
//! and the DHCPREQUEST/DHCPACK round trip is saved; any other server answers with a
//! DHCPOFFER as before.

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use dhcproto::v4::{self, DhcpOption, Flags, Message, MessageType, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable};
use tracing::{debug, info};

use super::lease::{Candidate, Lease, Method};

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

pub(crate) fn run_link(
    link: &Candidate,
    deadline: Instant,
    stop: &AtomicBool,
    progress: &dyn Fn(String),
) -> Result<Lease> {
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
        let mut discover = base_message(link, xid, MessageType::Discover);
        discover.opts_mut().insert(DhcpOption::RapidCommit);
        sock.send_to(&discover.to_vec()?, server).context("sending DHCPDISCOVER")?;
        discovers += 1;
        progress(format!("no DHCP answer to {discovers} DHCPDISCOVER(s) yet"));
        debug!("{}: DHCPDISCOVER sent at {} ms", link.name, ms());
        let step_deadline = (Instant::now() + wait).min(deadline);
        let answer = receive(&sock, xid, &[MessageType::Offer, MessageType::Ack], step_deadline, stop)?;
        if let Some(ack) = answer.as_ref().filter(|m| is(m, MessageType::Ack)) {
            // an ACK to a DISCOVER is a rapid commit, and must say so (RFC 4039 4.1)
            if ack.opts().get(OptionCode::RapidCommit).is_some() {
                let server_id = server_id(ack);
                info!("{}: DHCP lease {} from {server_id} after {} ms (rapid commit)", link.name, ack.yiaddr(), ms());
                return Ok(lease_from(link, ack));
            }
            debug!("{}: a DHCPACK to DHCPDISCOVER without Rapid Commit: ignored", link.name);
        }
        if let Some(offer) = answer.filter(|m| is(m, MessageType::Offer)) {
            let offered = offer.yiaddr();
            let server_id = server_id(&offer);
            debug!("{}: DHCPOFFER of {offered} from {server_id} at {} ms", link.name, ms());
            progress(format!("offered {offered} by {server_id}, no DHCPACK yet"));
            let mut req = base_message(link, xid, MessageType::Request);
            req.opts_mut().insert(DhcpOption::RequestedIpAddress(offered));
            req.opts_mut().insert(DhcpOption::ServerIdentifier(server_id));
            sock.send_to(&req.to_vec()?, server).context("sending DHCPREQUEST")?;
            let ack_deadline = (Instant::now() + wait).min(deadline);
            if let Some(ack) = receive(&sock, xid, &[MessageType::Ack], ack_deadline, stop)? {
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

fn is(m: &Message, kind: MessageType) -> bool {
    matches!(m.opts().get(OptionCode::MessageType), Some(DhcpOption::MessageType(t)) if *t == kind)
}

/// Wait for a reply of one of `kinds` to `xid`; a NAK aborts this exchange.
fn receive(
    sock: &UdpSocket,
    xid: u32,
    kinds: &[MessageType],
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
            Some(DhcpOption::MessageType(t)) if kinds.contains(t) => return Ok(Some(m)),
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
