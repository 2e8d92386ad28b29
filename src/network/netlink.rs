//! rtnetlink requests over a plain netlink socket: list links, bring them up, add
//! addresses and routes, create bonds and VLANs. Messages are built with netlink-packet-route;
//! every request asks for an ACK and its error code becomes a Rust error.

use std::net::IpAddr;

use anyhow::{anyhow, Context, Result};
use netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{
    BondMode, InfoBond, InfoData, InfoKind, InfoVlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, State,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// A network interface as the kernel reports it.
#[derive(Debug, Clone)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mac: Option<Vec<u8>>,
    pub up: bool,
    /// Ready to carry traffic: the kernel reports operational state UP (or carrier
    /// with state UNKNOWN, for drivers that do not report it). Until then the kernel
    /// drops what is sent, so DHCP waits for this, not for the carrier bit alone.
    pub carrier: bool,
    pub loopback: bool,
    /// The kind of a virtual link (`bond`, `vlan`, `veth`, `dummy`, ...); `None` for a
    /// NIC with a driver.
    pub kind: Option<String>,
}

/// An address on a link as the kernel reports it, with the state of its duplicate
/// address detection (IPv6).
#[derive(Debug, Clone, PartialEq)]
pub struct Address {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix: u8,
    /// Duplicate address detection is still running: the address cannot be used yet.
    pub tentative: bool,
    /// Another host on the link answered for the address.
    pub dad_failed: bool,
}

pub struct Netlink {
    sock: Socket,
    seq: u32,
}

impl Netlink {
    pub fn open() -> Result<Self> {
        let mut sock = Socket::new(NETLINK_ROUTE).context("opening a netlink socket")?;
        sock.bind_auto().context("binding the netlink socket")?;
        sock.connect(&SocketAddr::new(0, 0)).context("connecting the netlink socket")?;
        Ok(Self { sock, seq: 0 })
    }

    /// Send one request and collect the replies until ACK/DONE.
    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<Vec<RouteNetlinkMessage>> {
        self.seq += 1;
        let mut nl = NetlinkMessage::from(msg);
        nl.header.flags = NLM_F_REQUEST | flags;
        nl.header.sequence_number = self.seq;
        nl.finalize();
        let mut buf = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut buf);
        self.sock.send(&buf, 0).context("netlink send")?;
        let mut out = Vec::new();
        loop {
            let mut rbuf: Vec<u8> = Vec::with_capacity(65536);
            let n = self.sock.recv(&mut rbuf, 0).context("netlink receive")?;
            let mut off = 0;
            while off < n {
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rbuf[off..n])
                    .map_err(|e| anyhow!("netlink: bad reply: {e}"))?;
                let len = m.header.length as usize;
                if m.header.sequence_number == self.seq {
                    match m.payload {
                        NetlinkPayload::Done(_) => return Ok(out),
                        NetlinkPayload::Error(e) => {
                            return match e.code {
                                None => Ok(out),
                                Some(c) => Err(std::io::Error::from_raw_os_error(-c.get()).into()),
                            };
                        }
                        NetlinkPayload::InnerMessage(inner) => {
                            out.push(inner);
                            if flags & NLM_F_DUMP == 0 && flags & NLM_F_ACK == 0 {
                                return Ok(out);
                            }
                        }
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                off += len;
            }
        }
    }

    /// All links.
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let replies = self.request(RouteNetlinkMessage::GetLink(LinkMessage::default()), NLM_F_DUMP)?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(link_from(l)),
                _ => None,
            })
            .collect())
    }

    pub fn link(&mut self, index: u32) -> Result<Link> {
        self.links()?.into_iter().find(|l| l.index == index).ok_or_else(|| anyhow!("link {index} disappeared"))
    }

    pub fn set_up(&mut self, index: u32, up: bool) -> Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = if up { LinkFlags::Up } else { LinkFlags::empty() };
        m.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(m), NLM_F_ACK).map(|_| ())
    }

    /// Every address the kernel has, on every link.
    pub fn addresses(&mut self) -> Result<Vec<Address>> {
        let replies = self.request(RouteNetlinkMessage::GetAddress(AddressMessage::default()), NLM_F_DUMP)?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => address_from(a),
                _ => None,
            })
            .collect())
    }

    pub fn add_address(&mut self, index: u32, addr: IpAddr, prefix: u8) -> Result<()> {
        let m = RouteNetlinkMessage::NewAddress(address_message(index, addr, prefix));
        match self.request(m, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL) {
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// Remove `addr/prefix` from link `index` (an address that failed duplicate
    /// address detection).
    pub fn del_address(&mut self, index: u32, addr: IpAddr, prefix: u8) -> Result<()> {
        let m = RouteNetlinkMessage::DelAddress(address_message(index, addr, prefix));
        self.request(m, NLM_F_ACK).map(|_| ())
    }

    /// The IPv6 default routes of the main table: (link index, gateway) pairs, such
    /// as the kernel adds from a router advertisement.
    pub fn ipv6_default_routes(&mut self) -> Result<Vec<(u32, IpAddr)>> {
        let mut q = RouteMessage::default();
        q.header.address_family = AddressFamily::Inet6;
        let replies = self.request(RouteNetlinkMessage::GetRoute(q), NLM_F_DUMP)?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => default_route_from(r),
                _ => None,
            })
            .collect())
    }

    pub fn add_default_route(&mut self, index: u32, gateway: IpAddr) -> Result<()> {
        let mut m = RouteMessage::default();
        m.header.address_family = family(gateway);
        m.header.table = libc::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Boot;
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        m.attributes.push(RouteAttribute::Gateway(match gateway {
            IpAddr::V4(a) => RouteAddress::Inet(a),
            IpAddr::V6(a) => RouteAddress::Inet6(a),
        }));
        m.attributes.push(RouteAttribute::Oif(index));
        match self.request(RouteNetlinkMessage::NewRoute(m), NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL) {
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// Remove the link called `name`, if there is one (left by an earlier attempt).
    fn remove_named(&mut self, name: &str) -> Result<()> {
        if let Some(old) = self.links()?.into_iter().find(|l| l.name == name) {
            let mut m = LinkMessage::default();
            m.header.index = old.index;
            self.request(RouteNetlinkMessage::DelLink(m), NLM_F_ACK)?;
        }
        Ok(())
    }

    /// Create an 802.1Q VLAN link `name` with VLAN id `id` on link `lower`; returns
    /// its index.
    pub fn create_vlan(&mut self, lower: u32, name: &str, id: u16) -> Result<u32> {
        self.remove_named(name)?;
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        m.attributes.push(LinkAttribute::Link(lower));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Vlan),
            LinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(id)])),
        ]));
        self.request(RouteNetlinkMessage::NewLink(m), NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL).with_context(|| {
            format!("creating VLAN {id} link {name} (is CONFIG_VLAN_8021Q built in, or the 8021q module loaded?)")
        })?;
        self.links()?
            .into_iter()
            .find(|l| l.name == name)
            .map(|l| l.index)
            .ok_or_else(|| anyhow!("VLAN link {name} missing"))
    }

    /// Create a bond device (miimon 100 ms; for 802.3ad also lacp_rate fast, as
    /// upstream); returns its index.
    pub fn create_bond(&mut self, name: &str, mode: u8) -> Result<u32> {
        self.remove_named(name)?;
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Bond),
            LinkInfo::Data(InfoData::Bond({
                let mut opts = vec![InfoBond::Mode(BondMode::from(mode)), InfoBond::MiiMon(100)];
                if mode == 4 {
                    opts.push(InfoBond::AdLacpRate(1)); // fast: LACPDUs every second
                }
                opts
            })),
        ]));
        self.request(RouteNetlinkMessage::NewLink(m), NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
            .with_context(|| format!("creating bond {name} (is the bonding module loaded?)"))?;
        self.links()?
            .into_iter()
            .find(|l| l.name == name)
            .map(|l| l.index)
            .ok_or_else(|| anyhow!("bond {name} missing"))
    }

    /// Make `index` a member of `bond` (the member must be down).
    pub fn enslave(&mut self, index: u32, bond: u32) -> Result<()> {
        self.set_up(index, false)?;
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.attributes.push(LinkAttribute::Controller(bond));
        self.request(RouteNetlinkMessage::SetLink(m), NLM_F_ACK).map(|_| ())
    }
}

fn address_from(a: AddressMessage) -> Option<Address> {
    // the 32-bit IFA_FLAGS attribute, where the kernel sends it, else the header's 8
    // bits (the same values)
    let mut flags = AddressFlags::from_bits_retain(a.header.flags.bits() as u32);
    let mut addr = None;
    for attr in &a.attributes {
        match attr {
            AddressAttribute::Flags(f) => flags = *f,
            AddressAttribute::Address(x) => addr = Some(*x),
            AddressAttribute::Local(x) if addr.is_none() => addr = Some(*x),
            _ => {}
        }
    }
    Some(Address {
        index: a.header.index,
        addr: addr?,
        prefix: a.header.prefix_len,
        tentative: flags.contains(AddressFlags::Tentative),
        dad_failed: flags.contains(AddressFlags::Dadfailed),
    })
}

/// `addr/prefix` on link `index`, as a request to add or remove it.
fn address_message(index: u32, addr: IpAddr, prefix: u8) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = family(addr);
    m.header.prefix_len = prefix;
    m.header.index = index;
    m.attributes.push(AddressAttribute::Local(addr));
    m.attributes.push(AddressAttribute::Address(addr));
    m
}

fn default_route_from(r: RouteMessage) -> Option<(u32, IpAddr)> {
    if r.header.destination_prefix_length != 0 || r.header.address_family != AddressFamily::Inet6 {
        return None;
    }
    let mut table = u32::from(r.header.table);
    let (mut oif, mut gw) = (None, None);
    for a in &r.attributes {
        match a {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Gateway(RouteAddress::Inet6(g)) => gw = Some(IpAddr::V6(*g)),
            _ => {}
        }
    }
    if table != u32::from(libc::RT_TABLE_MAIN) {
        return None;
    }
    Some((oif?, gw?))
}

fn family(a: IpAddr) -> AddressFamily {
    if a.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

fn is_errno(e: &anyhow::Error, errno: i32) -> bool {
    e.downcast_ref::<std::io::Error>().and_then(|e| e.raw_os_error()) == Some(errno)
}

fn link_from(l: LinkMessage) -> Link {
    let mut link = Link {
        index: l.header.index,
        name: String::new(),
        mac: None,
        up: l.header.flags.contains(LinkFlags::Up),
        carrier: false,
        loopback: l.header.flags.contains(LinkFlags::Loopback),
        kind: None,
    };
    let (mut carrier, mut oper) = (false, State::Unknown);
    for a in l.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name = n,
            LinkAttribute::Address(m) if m.iter().any(|&b| b != 0) => link.mac = Some(m),
            LinkAttribute::Carrier(c) => carrier = c != 0,
            LinkAttribute::OperState(s) => oper = s,
            LinkAttribute::LinkInfo(infos) => {
                link.kind = infos.into_iter().find_map(|i| match i {
                    LinkInfo::Kind(k) => Some(k.to_string()),
                    _ => None,
                })
            }
            _ => {}
        }
    }
    link.carrier = oper == State::Up || (oper == State::Unknown && carrier);
    link
}

/// Fail with a readable message when `e` is a permission problem.
pub fn explain(e: anyhow::Error) -> anyhow::Error {
    if is_errno(&e, libc::EPERM) {
        return e.context("netlink: operation not permitted (stboot must run as root/PID 1)");
    }
    e
}
