//! The host configuration: how this machine joins the network and where its OS
//! package is. Accepts upstream's current format (omitted keys are null) and the
//! legacy shapes that provisioned machines still carry (see docs/formats.md).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use anyhow::{anyhow, bail, Result};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::gojson;

const W: &str = "host configuration";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    Static,
    Dhcp,
}

/// Linux bonding modes, named as the kernel names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BondingMode {
    BalanceRr,
    ActiveBackup,
    BalanceXor,
    Broadcast,
    Ieee8023ad,
    BalanceTlb,
    BalanceAlb,
}

impl BondingMode {
    pub const ALL: [(&'static str, BondingMode); 7] = [
        ("balance-rr", BondingMode::BalanceRr),
        ("active-backup", BondingMode::ActiveBackup),
        ("balance-xor", BondingMode::BalanceXor),
        ("broadcast", BondingMode::Broadcast),
        ("802.3ad", BondingMode::Ieee8023ad),
        ("balance-tlb", BondingMode::BalanceTlb),
        ("balance-alb", BondingMode::BalanceAlb),
    ];
    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, m)| *m == self).map(|(n, _)| *n).expect("all modes are listed")
    }
    /// The kernel's numeric mode (IFLA_BOND_MODE).
    pub fn kernel_mode(self) -> u8 {
        Self::ALL.iter().position(|(_, m)| *m == self).expect("all modes are listed") as u8
    }
}

impl Serialize for BondingMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A hardware address; printed lower-case with colons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mac(pub Vec<u8>);

impl FromStr for Mac {
    type Err = anyhow::Error;
    /// `aa:bb:cc:dd:ee:ff`, `aa-bb-...`, or `aabb.ccdd.eeff` (6, 8 or 20 bytes), as Go's `net.ParseMAC`.
    fn from_str(s: &str) -> Result<Self> {
        let err = || anyhow!("invalid MAC address {s:?}, expected a form like 52:54:00:12:34:56");
        let bytes: Vec<u8> = if s.contains(':') || s.contains('-') {
            let sep = if s.contains(':') { ':' } else { '-' };
            s.split(sep)
                .map(|p| if p.len() == 2 { u8::from_str_radix(p, 16).map_err(|_| err()) } else { Err(err()) })
                .collect::<Result<_>>()?
        } else if s.contains('.') {
            let mut v = Vec::new();
            for p in s.split('.') {
                if p.len() != 4 {
                    return Err(err());
                }
                let w = u16::from_str_radix(p, 16).map_err(|_| err())?;
                v.extend_from_slice(&w.to_be_bytes());
            }
            v
        } else {
            return Err(err());
        };
        if ![6, 8, 20].contains(&bytes.len()) {
            return Err(err());
        }
        Ok(Mac(bytes))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|b| format!("{b:02x}")).collect();
        f.write_str(&parts.join(":"))
    }
}

impl Serialize for Mac {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An address with its prefix length, `10.0.2.15/24` or `2001:db8::2/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpCidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl FromStr for IpCidr {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let err = || anyhow!("invalid address {s:?}, expected IP/prefix-length like 10.0.2.15/24");
        // netlink.ParseAddr allows a label after a space.
        let s0 = s.split(' ').next().unwrap_or(s);
        let (a, p) = s0.split_once('/').ok_or_else(err)?;
        let addr: IpAddr = a.parse().map_err(|_| err())?;
        let prefix: u8 = p.parse().map_err(|_| err())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(err());
        }
        Ok(IpCidr { addr, prefix })
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for IpCidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One entry of `network_interfaces`: a NIC chosen by name, by MAC, or both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkInterface {
    pub interface_name: Option<String>,
    pub mac_address: Option<Mac>,
}

/// A validated host configuration. Serialises in upstream's canonical key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostConfig {
    pub network_mode: NetworkMode,
    pub host_ip: Option<IpCidr>,
    pub gateway: Option<IpAddr>,
    pub dns: Option<Vec<IpAddr>>,
    pub network_interfaces: Option<Vec<NetworkInterface>>,
    pub ospkg_pointer: String,
    pub identity: Option<String>,
    pub authentication: Option<String>,
    pub bonding_mode: Option<BondingMode>,
    pub bond_name: Option<String>,
    /// stboot-rs extension: an 802.1Q VLAN id (1-4094). stboot tags its traffic on
    /// the chosen NIC(s), or on the bond, with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan_id: Option<u16>,
    /// stboot-rs extension: the proxies (`http_proxy`, `https_proxy`, `no_proxy`).
    #[serde(flatten)]
    pub proxies: Proxies,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The proxies packages are fetched through (stboot-rs extension; upstream takes
/// Go's `ProxyFromEnvironment`, which PID 1 does not have): `http_proxy` for http
/// URLs, `https_proxy` for https URLs (a CONNECT tunnel: TLS stays end to end with
/// the provisioning server), each `http://[user:password@]host:port`; `no_proxy`:
/// hosts, domains (`.example.com`), IP addresses and networks (`10.0.0.0/8`),
/// comma-separated, reached directly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Proxies {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_proxy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub https_proxy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_proxy: Option<String>,
}

impl Proxies {
    fn parse(obj: &gojson::Object) -> Result<Self> {
        let url = |key: &str| -> Result<Option<String>> {
            let Some(v) = gojson::opt_string(obj, key, W)?.filter(|s| !s.is_empty()) else { return Ok(None) };
            let shown = redact_userinfo(&v);
            let u = url::Url::parse(&v).map_err(|e| {
                field_err(key, format!("{shown:?} is not a URL ({e}); expected http://[user:password@]host:port"))
            })?;
            if u.scheme() != "http" || u.host_str().is_none() || !matches!(u.path(), "" | "/") || u.query().is_some() {
                return Err(field_err(
                    key,
                    format!("{shown:?} is not allowed, expected http://[user:password@]host:port (a proxy spoken to in plain HTTP; https URLs still go through it as a CONNECT tunnel)"),
                ));
            }
            Ok(Some(v))
        };
        let no_proxy = gojson::opt_string(obj, "no_proxy", W)?.filter(|s| !s.trim().is_empty());
        if let Some(n) = &no_proxy {
            if let Some(bad) = n.split(',').map(str::trim).find(|e| e.is_empty() || e.contains(char::is_whitespace)) {
                return Err(field_err(
                    "no_proxy",
                    format!("entry {bad:?} is not allowed, expected hosts, .domains, IP addresses or networks separated by commas"),
                ));
            }
        }
        Ok(Proxies { http_proxy: url("http_proxy")?, https_proxy: url("https_proxy")?, no_proxy })
    }

    /// Whether any proxy is configured.
    pub fn any(&self) -> bool {
        self.http_proxy.is_some() || self.https_proxy.is_some()
    }

    /// For the console: which proxies, their passwords hidden.
    pub fn describe(&self) -> String {
        let mut v = Vec::new();
        if let Some(p) = &self.http_proxy {
            v.push(format!("http via {}", redact_userinfo(p)));
        }
        if let Some(p) = &self.https_proxy {
            v.push(format!("https via {} (CONNECT)", redact_userinfo(p)));
        }
        if let Some(n) = &self.no_proxy {
            v.push(format!("direct to {n}"));
        }
        v.join(", ")
    }
}

/// `url` with a password in it replaced by `***`.
pub fn redact_userinfo(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => match url.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => url.to_string(),
        },
    }
}

fn field_err(key: &str, msg: impl fmt::Display) -> anyhow::Error {
    anyhow!("{W}: field \"{key}\": {msg}")
}

fn parse_ip(key: &str, v: &Value) -> Result<IpAddr> {
    match v {
        Value::String(s) => s.parse().map_err(|_| field_err(key, format!("{s:?} is not an IP address"))),
        other => Err(field_err(key, format!("expected an IP address string, found {}", gojson::type_name(other)))),
    }
}

impl HostConfig {
    /// The configuration used when none is provisioned: DHCP and the provisioning
    /// package from the initramfs.
    pub fn provisioning() -> Self {
        HostConfig {
            network_mode: NetworkMode::Dhcp,
            host_ip: None,
            gateway: None,
            dns: None,
            network_interfaces: None,
            ospkg_pointer: PROVISION_POINTER.to_string(),
            identity: None,
            authentication: None,
            bonding_mode: None,
            bond_name: None,
            vlan_id: None,
            proxies: Proxies::default(),
            description: None,
        }
    }

    /// Parse and validate; the first JSON value is read, as upstream's decoder does.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let obj = gojson::parse_first_object(bytes, W)?;
        Self::from_object(&obj).map_err(|e| {
            // a required key that is missing is often there, misspelt: say so
            let unknown = unknown_keys(bytes);
            if unknown.is_empty() {
                e
            } else {
                anyhow::anyhow!("{e:#}; and {}", unknown.join("; "))
            }
        })
    }

    /// The ospkg_pointer URLs stboot would skip (not a URL, or a scheme other than
    /// http and https), each named by its position: stboot boots from the others,
    /// `stmgr hostconfig check` refuses the configuration.
    pub fn skipped_urls(&self) -> Vec<String> {
        pointer_urls(&self.pointer()).1
    }

    fn from_object(obj: &gojson::Object) -> Result<Self> {
        let get = |k| gojson::get_non_null(obj, k);
        let network_mode = match get("network_mode") {
            None => bail!("{W}: field \"network_mode\" is missing, expected \"static\" or \"dhcp\""),
            Some(Value::String(s)) if s == "static" => NetworkMode::Static,
            Some(Value::String(s)) if s == "dhcp" => NetworkMode::Dhcp,
            Some(v) => {
                return Err(field_err("network_mode", format!("{v} is not allowed, expected \"static\" or \"dhcp\"")))
            }
        };
        let host_ip = match get("host_ip") {
            None => None,
            Some(Value::String(s)) => Some(s.parse::<IpCidr>().map_err(|e| field_err("host_ip", e))?),
            Some(v) => {
                return Err(field_err(
                    "host_ip",
                    format!("expected a string like \"10.0.2.15/24\", found {}", gojson::type_name(v)),
                ))
            }
        };
        let gateway = get("gateway").map(|v| parse_ip("gateway", v)).transpose()?;
        // `dns`: an array of addresses, or (legacy) a single address string.
        let dns = match get("dns") {
            None => None,
            Some(Value::Array(a)) => {
                Some(a.iter().enumerate().map(|(i, v)| parse_ip(&format!("dns[{i}]"), v)).collect::<Result<Vec<_>>>()?)
            }
            Some(v @ Value::String(_)) => Some(vec![parse_ip("dns", v)?]),
            Some(v) => {
                return Err(field_err(
                    "dns",
                    format!("expected an array of IP addresses, found {}", gojson::type_name(v)),
                ))
            }
        };
        let network_interfaces = parse_interfaces(obj)?;
        // `ospkg_pointer`, or (legacy) the `provisioning_urls` array joined with commas.
        let ospkg_pointer = match gojson::opt_string(obj, "ospkg_pointer", W)? {
            Some(p) => p,
            None => match get("provisioning_urls") {
                Some(Value::Array(urls)) => urls
                    .iter()
                    .enumerate()
                    .map(|(i, u)| match u {
                        Value::String(s) => Ok(s.clone()),
                        other => Err(field_err(
                            &format!("provisioning_urls[{i}]"),
                            format!("expected a URL string, found {}", gojson::type_name(other)),
                        )),
                    })
                    .collect::<Result<Vec<_>>>()?
                    .join(","),
                Some(v) => {
                    return Err(field_err(
                        "provisioning_urls",
                        format!("expected an array of URLs, found {}", gojson::type_name(v)),
                    ))
                }
                None => String::new(),
            },
        };
        let identity = gojson::opt_string(obj, "identity", W)?;
        let authentication = gojson::opt_string(obj, "authentication", W)?;
        let bonding_mode = match get("bonding_mode") {
            None => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => {
                Some(BondingMode::ALL.iter().find(|(n, _)| n == s).map(|(_, m)| *m).ok_or_else(|| {
                    let names: Vec<_> = BondingMode::ALL.iter().map(|(n, _)| *n).collect();
                    field_err(
                        "bonding_mode",
                        format!("{s:?} is not a bonding mode, expected one of {}", names.join(", ")),
                    )
                })?)
            }
            Some(v) => {
                return Err(field_err("bonding_mode", format!("expected a string, found {}", gojson::type_name(v))))
            }
        };
        let bond_name = gojson::opt_string(obj, "bond_name", W)?.filter(|s| !s.is_empty() || bonding_mode.is_some());
        let vlan_id = match get("vlan_id") {
            None => None,
            Some(Value::Number(n)) => match n.as_u64() {
                Some(id @ 1..=4094) => Some(id as u16),
                _ => {
                    return Err(field_err("vlan_id", format!("{n} is not allowed, expected a VLAN id from 1 to 4094")))
                }
            },
            Some(v) => {
                return Err(field_err(
                    "vlan_id",
                    format!("expected a VLAN id from 1 to 4094, found {}", gojson::type_name(v)),
                ))
            }
        };
        let proxies = Proxies::parse(obj)?;
        let description = gojson::opt_string(obj, "description", W)?;
        let cfg = HostConfig {
            network_mode,
            host_ip,
            gateway,
            dns,
            network_interfaces,
            ospkg_pointer,
            identity,
            authentication,
            bonding_mode,
            bond_name,
            vlan_id,
            proxies,
            description,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Upstream's validation rules, in upstream's order.
    pub fn validate(&self) -> Result<()> {
        if self.network_mode == NetworkMode::Static {
            if self.host_ip.is_none() {
                bail!(
                    "{W}: field \"host_ip\" is missing, expected IP/prefix-length because network_mode is \"static\""
                );
            }
            if self.gateway.is_none() {
                bail!("{W}: field \"gateway\" is missing, expected an IP address because network_mode is \"static\"");
            }
            if let (Some(ip), Some(gw)) = (&self.host_ip, &self.gateway) {
                if ip.addr.is_ipv4() != gw.is_ipv4() {
                    let fam = |v4: bool| if v4 { "IPv4" } else { "IPv6" };
                    bail!(
                        "{W}: field \"gateway\" is {gw}, an {} address, but host_ip {ip} is {}; expected a gateway of the same family (a link-local fe80:: gateway is fine for IPv6)",
                        fam(gw.is_ipv4()),
                        fam(ip.addr.is_ipv4())
                    );
                }
            }
        }
        if let Some(ifs) = &self.network_interfaces {
            if ifs.is_empty() {
                bail!("{W}: field \"network_interfaces\" is an empty array, expected null or at least one interface");
            }
        }
        if self.ospkg_pointer.is_empty() {
            bail!("{W}: field \"ospkg_pointer\" is missing or empty, expected comma-separated URLs of OS package descriptors");
        }
        check_substitution(&self.ospkg_pointer, "$ID", "identity", self.identity.as_deref())?;
        check_substitution(&self.ospkg_pointer, "$AUTH", "authentication", self.authentication.as_deref())?;
        if self.bonding_mode.is_some() {
            if self.bond_name.as_deref().unwrap_or("").is_empty() {
                bail!("{W}: field \"bond_name\" is missing or empty, expected a name like \"bond0\" because bonding_mode is set");
            }
            match &self.network_interfaces {
                Some(ifs) if ifs.iter().all(|i| i.interface_name.is_some()) => {}
                _ => bail!("{W}: field \"network_interfaces\": bonding needs each member's interface_name"),
            }
        }
        Ok(())
    }

    /// `ospkg_pointer` with `$ID` and `$AUTH` substituted.
    pub fn pointer(&self) -> String {
        substitute(&self.ospkg_pointer, self.identity.as_deref(), self.authentication.as_deref())
    }

    /// Indented canonical JSON, as `stmgr hostconfig check` prints it.
    pub fn to_json(&self) -> String {
        gojson::marshal_indent(self) + "\n"
    }
}

/// Split and parse the (substituted) pointer; bad entries are reported and skipped
/// (upstream drops every URL after the first bad one).
pub fn pointer_urls(pointer: &str) -> (Vec<url::Url>, Vec<String>) {
    let mut urls = Vec::new();
    let mut bad = Vec::new();
    for (i, s) in pointer.split(',').enumerate() {
        match url::Url::parse(s.trim()) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => urls.push(u),
            Ok(u) => bad.push(format!("URL {}: scheme {:?} is not http or https", i + 1, u.scheme())),
            // the text may hold credentials: never echo it
            Err(e) => bad.push(format!("URL {}: not a URL ({e})", i + 1)),
        }
    }
    (urls, bad)
}

/// The pointer of the synthesised provisioning configuration.
pub const PROVISION_POINTER: &str = "provision.zip";

/// Every key some version of upstream's host configuration has (stboot v0.2 to
/// v0.6, stprov), and stboot-rs's `vlan_id` and proxies, matched case-insensitively
/// as Go's decoder does.
pub const KNOWN_KEYS: [&str; 20] = [
    "version",
    "network_mode",
    "host_ip",
    "gateway",
    "dns",
    "network_interface",
    "network_interfaces",
    "ospkg_pointer",
    "provisioning_urls",
    "identity",
    "authentication",
    "timestamp",
    "bonding",
    "bonding_mode",
    "bond_name",
    "description",
    "vlan_id",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];
/// The keys of a `network_interfaces` entry.
pub const INTERFACE_KEYS: [&str; 2] = ["interface_name", "mac_address"];

/// Keys of the host configuration `bytes` that no version of upstream knows, each as
/// a message with the key's path and, where one is close, a suggestion. Upstream
/// ignores unknown keys, so stboot warns and carries on; `stmgr hostconfig check`
/// refuses them (a typo in an optional key otherwise changes nothing, silently).
pub fn unknown_keys(bytes: &[u8]) -> Vec<String> {
    let Ok(obj) = gojson::parse_first_object(bytes, W) else { return Vec::new() };
    let mut out = Vec::new();
    let mut check = |keys: Vec<&String>, at: &str, known: &[&str]| {
        for k in keys {
            if !known.iter().any(|n| gojson::equal_fold(n, k)) {
                let hint =
                    crate::text::suggest(k, known).map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default();
                out.push(format!("{W}: unknown key {at}{}{hint}", crate::text::printable(&format!("{k:?}"))));
            }
        }
    };
    check(obj.keys().collect(), "", &KNOWN_KEYS);
    if let Some(Value::Array(ifs)) = gojson::get(&obj, "network_interfaces") {
        for (i, v) in ifs.iter().enumerate() {
            if let Value::Object(o) = v {
                check(o.keys().collect(), &format!("network_interfaces[{i}]."), &INTERFACE_KEYS);
            }
        }
    }
    out
}

fn parse_interfaces(obj: &gojson::Object) -> Result<Option<Vec<NetworkInterface>>> {
    const K: &str = "network_interfaces";
    let mut list = match gojson::get_non_null(obj, K) {
        None => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .enumerate()
                .map(|(i, v)| match v {
                    // legacy: an interface name (bond member)
                    Value::String(name) => {
                        Ok(NetworkInterface { interface_name: Some(name.clone()), mac_address: None })
                    }
                    Value::Object(o) => {
                        let key = format!("{K}[{i}]");
                        let name = gojson::opt_string(o, "interface_name", W).map_err(|e| anyhow!("{e} (in {key})"))?;
                        let mac = gojson::opt_string(o, "mac_address", W)
                            .map_err(|e| anyhow!("{e} (in {key})"))?
                            .map(|m| m.parse::<Mac>().map_err(|e| field_err(&format!("{key}.mac_address"), e)))
                            .transpose()?;
                        Ok(NetworkInterface { interface_name: name.filter(|n| !n.is_empty()), mac_address: mac })
                    }
                    other => Err(field_err(
                        &format!("{K}[{i}]"),
                        format!(
                            "expected an object with interface_name and mac_address, found {}",
                            gojson::type_name(other)
                        ),
                    )),
                })
                .collect::<Result<Vec<_>>>()?,
        ),
        Some(v) => return Err(field_err(K, format!("expected an array, found {}", gojson::type_name(v)))),
    };
    // legacy: `network_interface`, the MAC of the one NIC to use.
    if let Some(v) = gojson::get_non_null(obj, "network_interface") {
        let Value::String(s) = v else {
            return Err(field_err(
                "network_interface",
                format!("expected a MAC address string, found {}", gojson::type_name(v)),
            ));
        };
        let mac = s.parse::<Mac>().map_err(|e| field_err("network_interface", e))?;
        if list.is_none() {
            list = Some(vec![NetworkInterface { interface_name: None, mac_address: Some(mac) }]);
        }
    }
    Ok(list)
}

fn check_substitution(pointer: &str, var: &str, key: &str, value: Option<&str>) -> Result<()> {
    if !pointer.contains(var) {
        return Ok(());
    }
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        bail!("{W}: field \"{key}\" is missing, expected a value because ospkg_pointer contains {var}");
    };
    if v.len() > 64 || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        bail!(
            "{W}: field \"{key}\": {v:?} is not allowed, expected at most 64 characters of A-Z, a-z, 0-9, '-' and '_'"
        );
    }
    Ok(())
}

/// Replace `$ID` and `$AUTH` (each only when its value is non-empty), as upstream does.
pub fn substitute(pointer: &str, identity: Option<&str>, authentication: Option<&str>) -> String {
    let mut p = pointer.to_string();
    if let Some(id) = identity.filter(|s| !s.is_empty()) {
        p = p.replace("$ID", id);
    }
    if let Some(auth) = authentication.filter(|s| !s.is_empty()) {
        p = p.replace("$AUTH", auth);
    }
    p
}

#[cfg(test)]
mod tests;
