//! A DHCPv6 client (RFC 8415) on one link, for the IPv6 autoconfiguration of
//! [`super::ipv6`]: stateful (solicit, advertise, request, reply; the address added
//! and used only after duplicate address detection, a duplicate declined and asked
//! for again) when the router says "managed", an information-request for the DNS
//! servers when it says "other configuration".

use std::net::{IpAddr, Ipv6Addr, SocketAddrV6, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use dhcproto::v6::{self, DhcpOption, DhcpOptions, MessageType, OptionCode, IANA, ORO};
use dhcproto::{Decodable, Decoder, Encodable};
use tracing::{info, warn};

use super::lease::{is_global, Candidate};
use super::netlink::Netlink;

/// What a DHCPv6 server gave.
pub(crate) struct Granted {
    pub address: Ipv6Addr,
    pub server: Ipv6Addr,
    pub dns: Vec<Ipv6Addr>,
}

/// A DHCPv6 client on one link (UDP port 546, to All_DHCP_Relay_Agents_and_Servers).
pub(crate) struct Dhcp6 {
    sock: UdpSocket,
    link: Candidate,
    duid: Vec<u8>,
    iaid: u32,
}

const ALL_DHCP: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

impl Dhcp6 {
    pub(crate) fn open(link: &Candidate) -> Result<Self> {
        use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn6};
        let fd: OwnedFd = socket::socket(AddressFamily::Inet6, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)
            .context("creating a UDP socket for DHCPv6")?;
        socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
        socket::setsockopt(&fd, sockopt::BindToDevice, &std::ffi::OsString::from(&link.name))
            .with_context(|| format!("binding a socket to {}", link.name))?;
        socket::bind(fd.as_raw_fd(), &SockaddrIn6::from(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 546, 0, 0)))
            .context("binding UDP port 546")?;
        // DUID-LL (RFC 8415 11.4): type 3, hardware type 1 (Ethernet), the MAC; the
        // same on every boot, so a server can reserve an address for it
        let mut duid = vec![0, 3, 0, 1];
        duid.extend_from_slice(&link.mac);
        Ok(Self { sock: UdpSocket::from(fd), link: link.clone(), duid, iaid: link.index })
    }

    fn message(&self, kind: MessageType, xid: [u8; 3], t0: Instant) -> v6::Message {
        let mut m = v6::Message::new_with_id(kind, xid);
        let o = m.opts_mut();
        o.insert(DhcpOption::ClientId(self.duid.clone()));
        // elapsed time in hundredths of a second (RFC 8415 21.9)
        o.insert(DhcpOption::ElapsedTime(u16::try_from(t0.elapsed().as_millis() / 10).unwrap_or(u16::MAX)));
        o.insert(DhcpOption::ORO(ORO { opts: vec![OptionCode::DomainNameServers] }));
        m
    }

    /// Send `m`, retransmitting after 1, 2, 4, 8 s (RFC 8415 15, capped), until a
    /// reply of `want` to it arrives, `until`, or `abandon()`.
    fn exchange(
        &mut self,
        m: &mut v6::Message,
        want: MessageType,
        t0: Instant,
        until: Instant,
        abandon: &mut dyn FnMut() -> bool,
    ) -> Result<Option<(v6::Message, Ipv6Addr)>> {
        let to = SocketAddrV6::new(ALL_DHCP, 547, 0, self.link.index);
        let mut wait = Duration::from_secs(1);
        let mut buf = [0u8; 1500];
        loop {
            m.opts_mut()
                .insert(DhcpOption::ElapsedTime(u16::try_from(t0.elapsed().as_millis() / 10).unwrap_or(u16::MAX)));
            // no link-local address yet makes sending fail: wait and send again
            let _ = self.sock.send_to(&m.to_vec()?, to);
            let step = (Instant::now() + wait).min(until);
            while Instant::now() < step {
                if abandon() {
                    return Ok(None);
                }
                self.sock.set_read_timeout(Some(
                    step.saturating_duration_since(Instant::now())
                        .clamp(Duration::from_millis(1), Duration::from_millis(250)),
                ))?;
                let (n, from) = match self.sock.recv_from(&mut buf) {
                    Ok(r) => r,
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                        continue
                    }
                    Err(e) => return Err(e.into()),
                };
                let Ok(r) = decode(&buf[..n]) else { continue };
                let ours =
                    matches!(r.opts().get(OptionCode::ClientId), Some(DhcpOption::ClientId(c)) if *c == self.duid);
                if r.xid() == m.xid() && r.msg_type() == want && ours {
                    let from = match from.ip() {
                        IpAddr::V6(a) => a,
                        IpAddr::V4(_) => continue,
                    };
                    return Ok(Some((r, from)));
                }
            }
            if Instant::now() >= until {
                return Ok(None);
            }
            wait = (wait * 2).min(Duration::from_secs(8));
        }
    }

    /// Solicit, advertise, request, reply; add the address (/128: the on-link prefix
    /// is the RA's) and wait for DAD. A duplicate is removed, declined, and asked for
    /// again, up to three times.
    pub(crate) fn stateful(
        &mut self,
        nl: &mut Netlink,
        deadline: Instant,
        abandon: &mut dyn FnMut() -> bool,
        progress: &dyn Fn(String),
    ) -> Result<Option<Granted>> {
        let name = self.link.name.clone();
        for attempt in 1..=3 {
            let t0 = Instant::now();
            let mut sol = self.message(MessageType::Solicit, xid(), t0);
            sol.opts_mut().insert(DhcpOption::IANA(IANA { id: self.iaid, t1: 0, t2: 0, opts: DhcpOptions::new() }));
            let Some((adv, _)) = self.exchange(&mut sol, MessageType::Advertise, t0, deadline, abandon)? else {
                return match abandon() {
                    true => Ok(None),
                    false => Err(anyhow!("no answer from a DHCPv6 server")),
                };
            };
            let offered = granted(&adv).context("DHCPv6 advertise")?;
            let server_id = match adv.opts().get(OptionCode::ServerId) {
                Some(DhcpOption::ServerId(s)) => s.clone(),
                _ => bail!("DHCPv6 advertise without a server identifier"),
            };
            progress(format!("DHCPv6 offered {}, no reply yet", offered.0));
            let mut req = self.message(MessageType::Request, xid(), t0);
            req.opts_mut().insert(DhcpOption::ServerId(server_id.clone()));
            if let Some(DhcpOption::IANA(ia)) = adv.opts().get(OptionCode::IANA) {
                req.opts_mut().insert(DhcpOption::IANA(ia.clone()));
            }
            let Some((reply, server)) = self.exchange(&mut req, MessageType::Reply, t0, deadline, abandon)? else {
                return match abandon() {
                    true => Ok(None),
                    false => Err(anyhow!("DHCPv6 server offered {} but did not confirm it", offered.0)),
                };
            };
            let (address, dns) = granted(&reply).context("DHCPv6 reply")?;
            info!("{name}: DHCPv6 address {address} from {server} after {} ms", t0.elapsed().as_millis());
            nl.add_address(self.link.index, IpAddr::V6(address), 128)
                .with_context(|| format!("adding {address} to {name}"))?;
            if super::wait_dad(nl, self.link.index, &name, IpAddr::V6(address), deadline)? == super::Dad::Passed {
                return Ok(Some(Granted { address, server, dns }));
            }
            // RFC 8415 18.2.8: remove it, tell the server, ask again
            warn!(
                "{name}: the DHCPv6 address {address} is already in use on the link: another host answered for it (duplicate address detection); declining it and asking again"
            );
            let _ = nl.del_address(self.link.index, IpAddr::V6(address), 128);
            let mut decline = self.message(MessageType::Decline, xid(), t0);
            decline.opts_mut().insert(DhcpOption::ServerId(server_id));
            if let Some(DhcpOption::IANA(ia)) = reply.opts().get(OptionCode::IANA) {
                decline.opts_mut().insert(DhcpOption::IANA(ia.clone()));
            }
            let until = deadline.min(Instant::now() + Duration::from_secs(2));
            let _ = self.exchange(&mut decline, MessageType::Reply, t0, until, abandon);
            progress(format!("DHCPv6 address {address} was in use; declined (attempt {attempt} of 3)"));
        }
        bail!("every DHCPv6 address offered was in use on the link")
    }

    /// Information-request (stateless DHCPv6): the DNS servers.
    pub(crate) fn information(
        &mut self,
        until: Instant,
        abandon: &mut dyn FnMut() -> bool,
    ) -> Result<Option<Vec<Ipv6Addr>>> {
        let t0 = Instant::now();
        let mut m = self.message(MessageType::InformationRequest, xid(), t0);
        Ok(self.exchange(&mut m, MessageType::Reply, t0, until, abandon)?.map(|(r, _)| dns_of(r.opts())))
    }
}

/// The address in a reply's or advertise's IA_NA, and the DNS servers; a status
/// code other than success is the server's refusal, named.
fn granted(m: &v6::Message) -> Result<(Ipv6Addr, Vec<Ipv6Addr>)> {
    if let Some(DhcpOption::StatusCode(s)) = m.opts().get(OptionCode::StatusCode) {
        if s.status != v6::Status::Success {
            bail!("the server refused: {:?} {}", s.status, s.msg);
        }
    }
    let Some(DhcpOption::IANA(ia)) = m.opts().get(OptionCode::IANA) else {
        bail!("no address (IA_NA) in the answer");
    };
    if let Some(DhcpOption::StatusCode(s)) = ia.opts.get(OptionCode::StatusCode) {
        if s.status != v6::Status::Success {
            bail!("the server refused an address: {:?} {}", s.status, s.msg);
        }
    }
    match ia.opts.get(OptionCode::IAAddr) {
        Some(DhcpOption::IAAddr(a)) if a.valid_life > 0 && is_global(&IpAddr::V6(a.addr)) => {
            Ok((a.addr, dns_of(m.opts())))
        }
        Some(DhcpOption::IAAddr(a)) => bail!("the address {} is not usable (valid lifetime {})", a.addr, a.valid_life),
        _ => bail!("no address in the IA_NA"),
    }
}

fn dns_of(o: &DhcpOptions) -> Vec<Ipv6Addr> {
    match o.get(OptionCode::DomainNameServers) {
        Some(DhcpOption::DomainNameServers(d)) => d.clone(),
        _ => Vec::new(),
    }
}

/// What stboot reads from a DHCPv6 answer, as text (for tests and fuzzing: the same
/// accessors the client uses).
pub fn summary(m: &v6::Message) -> String {
    match granted(m) {
        Ok((a, dns)) => format!("{:?} {a} dns {dns:?}", m.msg_type()),
        Err(e) => format!("{:?} refused: {e:#}", m.msg_type()),
    }
}

fn xid() -> [u8; 3] {
    use rand_core::RngCore;
    let mut x = [0u8; 3];
    rand_core::OsRng.fill_bytes(&mut x);
    x
}

/// Parse a DHCPv6 message (dhcproto's debug assertions caught, as for DHCPv4).
pub fn decode(bytes: &[u8]) -> Result<v6::Message> {
    let r = std::panic::catch_unwind(|| v6::Message::decode(&mut Decoder::new(bytes)));
    match r {
        Ok(m) => m.map_err(|e| anyhow!("bad DHCPv6 message: {e}")),
        Err(_) => Err(anyhow!("bad DHCPv6 message: the decoder refused it")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dhcpv6_answers_give_the_address_or_the_servers_reason() {
        let mut m = v6::Message::new(MessageType::Reply);
        let mut ia = IANA { id: 2, t1: 0, t2: 0, opts: DhcpOptions::new() };
        ia.opts.insert(DhcpOption::IAAddr(v6::IAAddr {
            addr: "2001:db8::1:7".parse().unwrap(),
            preferred_life: 3600,
            valid_life: 3600,
            opts: DhcpOptions::new(),
        }));
        m.opts_mut().insert(DhcpOption::IANA(ia));
        m.opts_mut().insert(DhcpOption::DomainNameServers(vec!["2001:db8::53".parse().unwrap()]));
        let bytes = m.to_vec().unwrap();
        let (a, dns) = granted(&decode(&bytes).unwrap()).unwrap();
        assert_eq!((a.to_string(), dns[0].to_string()), ("2001:db8::1:7".into(), "2001:db8::53".into()));

        let mut none = v6::Message::new(MessageType::Advertise);
        let mut ia = IANA { id: 2, t1: 0, t2: 0, opts: DhcpOptions::new() };
        ia.opts.insert(DhcpOption::StatusCode(v6::StatusCode {
            status: v6::Status::NoAddrsAvail,
            msg: "no addresses".into(),
        }));
        none.opts_mut().insert(DhcpOption::IANA(ia));
        let e = format!("{:#}", granted(&none).unwrap_err());
        assert!(e.contains("NoAddrsAvail no addresses"), "{e}");
    }

    /// The fuzz corpus's DHCPv6 seed is what it claims to be.
    #[test]
    fn the_fuzz_seed_parses() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/ipv6/");
        let reply = std::fs::read(format!("{dir}dhcpv6-reply.bin")).unwrap();
        assert_eq!(summary(&decode(&reply[1..]).unwrap()), "Reply 2001:db8::1:7 dns [2001:db8::53]");
    }
}
