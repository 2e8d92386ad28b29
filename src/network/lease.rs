//! What the address race works with: the links that race ([`Candidate`]), the address
//! families ([`Families`]), and what the winner got ([`Lease`]). Data only, shared by
//! DHCPv4 ([`super::dhcp`]), IPv6 ([`super::ipv6`]) and the race ([`super::race`]).

use std::net::IpAddr;

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

/// A link-local IPv6 address (fe80::/10).
pub(crate) fn is_link_local(a: &std::net::Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// A global (not link-local, loopback or multicast) IPv6 address.
pub(crate) fn is_global(a: &std::net::IpAddr) -> bool {
    matches!(a, std::net::IpAddr::V6(v) if !is_link_local(v) && !v.is_loopback() && !v.is_multicast() && !v.is_unspecified())
}
