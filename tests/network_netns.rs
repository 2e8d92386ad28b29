//! The network step against the host kernel's netlink and a real DHCP server
//! (dnsmasq), inside network namespaces joined by veth pairs (192.0.2.0/24, TEST-NET-1,
//! never leaves the namespaces). Needs root, `ip` and `dnsmasq`; without them the test
//! is skipped unless STBOOT_REQUIRE_NETNS is set, as scripts/test.sh does.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn have(cmd: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {cmd}")).output().is_ok_and(|o| o.status.success())
}

fn usable() -> bool {
    // SAFETY: geteuid has no preconditions.
    let ok = is_root() && have("ip") && have("dnsmasq");
    if !ok {
        assert!(
            std::env::var_os("STBOOT_REQUIRE_NETNS").is_none(),
            "STBOOT_REQUIRE_NETNS is set but root, ip or dnsmasq is missing"
        );
        eprintln!("not root, or ip/dnsmasq missing: skipping the netns network tests");
    }
    ok
}

fn sh(cmd: &str) -> String {
    let o = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Two namespaces: `c` (the machine under test) with `nics` veth ends, and `s` (server
/// side, 192.0.2.1/24 on a bridge). Removed on drop.
struct Net {
    c: String,
    s: String,
    dnsmasq: Option<Child>,
}

impl Net {
    fn new(tag: &str, nics: usize) -> Net {
        let id = format!("{}{}", tag, std::process::id());
        let (c, s) = (format!("stc{id}"), format!("sts{id}"));
        let _ = Command::new("ip").args(["netns", "del", &c]).output();
        let _ = Command::new("ip").args(["netns", "del", &s]).output();
        sh(&format!("ip netns add {c} && ip netns add {s}"));
        sh(&format!("ip -n {s} link add br0 type bridge && ip -n {s} addr add 192.0.2.1/24 dev br0 && ip -n {s} link set br0 up"));
        for i in 0..nics {
            sh(&format!(
                "ip link add eth{i}x{id} netns {c} address 52:54:00:aa:00:0{i} type veth peer name p{i} netns {s} && \
                 ip -n {c} link set eth{i}x{id} name eth{i} && ip -n {s} link set p{i} master br0 && ip -n {s} link set p{i} up"
            ));
        }
        // `ip netns exec` bind-mounts /etc/netns/NAME/* over /etc: keep the host's resolv.conf untouched
        std::fs::create_dir_all(format!("/etc/netns/{c}")).unwrap();
        std::fs::write(format!("/etc/netns/{c}/resolv.conf"), "").unwrap();
        Net { c, s, dnsmasq: None }
    }

    fn dhcp_server(&mut self) {
        self.dhcp_server_on("br0");
    }

    /// The server side speaks only VLAN `id`: its address moves from br0 to a VLAN
    /// link on it, so untagged frames reach nothing.
    fn tag_server(&self, id: u16) -> String {
        let s = &self.s;
        let v = format!("br0.{id}");
        sh(&format!(
            "ip -n {s} addr del 192.0.2.1/24 dev br0 && ip -n {s} link add link br0 name {v} type vlan id {id} && \
             ip -n {s} addr add 192.0.2.1/24 dev {v} && ip -n {s} link set {v} up"
        ));
        v
    }

    fn dhcp_server_on(&mut self, interface: &str) {
        self.dnsmasq_on(
            interface,
            &[
                "--dhcp-range=192.0.2.50,192.0.2.60,255.255.255.0,1h",
                "--dhcp-option=3,192.0.2.1",
                "--dhcp-option=6,192.0.2.53",
            ],
        );
    }

    /// An IPv6 router on br0 (2001:db8::1/64): dnsmasq sends router advertisements,
    /// and with `args` serves DHCPv6 or only advertises (`ra-only`).
    fn ipv6_router(&mut self, args: &[&str]) {
        sh(&format!("ip -n {} addr add 2001:db8::1/64 dev br0 nodad", self.s));
        let mut all = vec!["--enable-ra"];
        all.extend_from_slice(args);
        self.dnsmasq_on("br0", &all);
    }

    /// dnsmasq on `interface` of the server namespace, DNS off unless `args` set a
    /// `--port`; a dnsmasq that refuses its options fails the test with its words.
    fn dnsmasq_on(&mut self, interface: &str, args: &[&str]) {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.s, "dnsmasq", "--no-daemon"]);
        if !args.iter().any(|a| a.starts_with("--port")) {
            cmd.arg("--port=0");
        }
        // its log goes to a file: a pipe nobody reads could fill and stop it
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = cmd
            .args([&format!("--interface={interface}"), "--bind-interfaces"])
            .args(args)
            .args(["--dhcp-leasefile=/dev/null", "--conf-file=/dev/null"])
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        if let Ok(Some(st)) = child.try_wait() {
            let err = std::fs::read_to_string(log.path()).unwrap_or_default();
            panic!("dnsmasq {args:?} exited ({st}): {err}");
        }
        self.dnsmasq = Some(child);
    }

    fn configure(&self, json: &str) -> (bool, String) {
        self.configure_within(json, 20)
    }

    /// `configure` with the network step's timeout set to `secs`.
    fn configure_within(&self, json: &str, secs: u32) -> (bool, String) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("host.json");
        std::fs::write(&cfg, json).unwrap();
        let o = Command::new("ip")
            .args(["netns", "exec", &self.c])
            .arg(example())
            .arg(&cfg)
            .env("NETCONFIG_TIMEOUT", secs.to_string())
            .output()
            .unwrap();
        (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
    }

    /// A shell command in the client's namespace: whether it succeeded, and its output.
    fn exec_client(&self, cmd: &str) -> (bool, String) {
        let o = Command::new("ip").args(["netns", "exec", &self.c, "sh", "-c", cmd]).output().unwrap();
        (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
    }

    fn client(&self, args: &str) -> String {
        sh(&format!("ip -n {} {args}", self.c))
    }

    fn resolv_conf(&self) -> String {
        std::fs::read_to_string(format!("/etc/netns/{}/resolv.conf", self.c)).unwrap()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        if let Some(mut d) = self.dnsmasq.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.c]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.s]).output();
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.c));
    }
}

fn example() -> PathBuf {
    // a plain `cargo test` builds examples with this test; `cargo test --test
    // network_netns` does not, and may leave an old one: build it when it is missing
    // or older than a source file (not always: cargo build's fingerprints differ from
    // cargo test's, so that would rebuild the dependencies on every run)
    static BUILT: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let p = dir.join("examples/netconfig");
    fn newest(dir: &Path) -> std::time::SystemTime {
        let mut t = std::time::SystemTime::UNIX_EPOCH;
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            let m = if p.is_dir() { newest(&p) } else { e.metadata().and_then(|m| m.modified()).unwrap_or(t) };
            t = t.max(m);
        }
        t
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = newest(&root.join("src")).max(newest(&root.join("examples")));
    let stale = std::fs::metadata(&p).and_then(|m| m.modified()).map_or(true, |t| t < sources);
    BUILT.call_once(|| {
        if !stale {
            return;
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "--quiet", "--example", "netconfig"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(st.success(), "building the netconfig example");
    });
    p
}

#[test]
fn dhcp_from_dnsmasq_on_all_nics() {
    if !usable() {
        return;
    }
    let mut n = Net::new("d", 2);
    n.dhcp_server();
    let (ok, out) = n.configure(r#"{"network_mode":"dhcp","ospkg_pointer":"http://192.0.2.1/x.json"}"#);
    assert!(ok, "{out}");
    assert!(out.contains("address 192.0.2.5") && out.contains("/24 gateway 192.0.2.1"), "{out}");
    let addrs = n.client("-4 addr show");
    assert!(addrs.contains("inet 192.0.2.5"), "{addrs}");
    assert!(n.client("route show default").contains("default via 192.0.2.1"));
    assert_eq!(n.resolv_conf(), "nameserver 192.0.2.53\n");
    assert!(n.client("link show lo").contains("UP"));
}

/// DHCPv4 Rapid Commit (RFC 4039): against dnsmasq with `--dhcp-rapid-commit` the
/// DISCOVER is answered by an ACK and the lease is taken from it (the console says
/// so); against dnsmasq without it (the test above) the four-message exchange runs
/// as before. The times of both exchanges are printed for the record, not checked.
#[test]
fn dhcp_rapid_commit_where_the_server_offers_it() {
    if !usable() {
        return;
    }
    let lease_ms = |out: &str| {
        let line = out.lines().find(|l| l.contains("DHCP lease")).unwrap_or_default();
        line.split(" after ").nth(1).and_then(|t| t.split(" ms").next()?.parse::<u64>().ok()).unwrap_or(0)
    };
    let mut times = Vec::new();
    for rapid in [false, true] {
        let mut n = Net::new(if rapid { "r" } else { "p" }, 1);
        let mut args = vec![
            "--dhcp-range=192.0.2.50,192.0.2.60,255.255.255.0,1h",
            "--dhcp-option=3,192.0.2.1",
            "--dhcp-option=6,192.0.2.53",
            // dnsmasq otherwise pings an address before it offers it, for 3 s
            "--no-ping",
        ];
        if rapid {
            args.push("--dhcp-rapid-commit");
        }
        n.dnsmasq_on("br0", &args);
        let (ok, out) = n.configure(r#"{"network_mode":"dhcp","ospkg_pointer":"http://192.0.2.1/x.json"}"#);
        assert!(ok, "{out}");
        assert!(out.contains("address 192.0.2.5") && out.contains("/24 gateway 192.0.2.1"), "{out}");
        assert_eq!(out.contains("(rapid commit)"), rapid, "rapid commit {rapid}:\n{out}");
        times.push((rapid, lease_ms(&out)));
    }
    eprintln!("DHCPv4 lease after link-up, dnsmasq in a netns: {times:?} (rapid commit, ms)");
}

#[test]
fn static_address_on_the_nic_chosen_by_mac() {
    if !usable() {
        return;
    }
    let n = Net::new("s", 2);
    let (ok, out) = n.configure(
        r#"{"network_mode":"static","host_ip":"192.0.2.7/24","gateway":"192.0.2.1","dns":["192.0.2.53","192.0.2.54"],
            "network_interfaces":[{"mac_address":"52:54:00:aa:00:01"}],"ospkg_pointer":"http://192.0.2.1/x.json"}"#,
    );
    assert!(ok, "{out}");
    assert!(out.contains("network: eth1 address 192.0.2.7/24 gateway 192.0.2.1"), "{out}");
    assert!(n.client("-4 addr show dev eth1").contains("inet 192.0.2.7/24"));
    assert!(!n.client("-4 addr show dev eth0").contains("inet "));
    assert!(n.client("route show default").contains("default via 192.0.2.1 dev eth1"));
    assert_eq!(n.resolv_conf(), "nameserver 192.0.2.53\nnameserver 192.0.2.54\n");
}

/// Static mode races the candidates for carrier: eth0's cable is out (its peer is
/// down), so eth1 gets the address, and the console says why eth0 did not.
#[test]
fn static_address_goes_to_the_first_nic_with_carrier() {
    if !usable() {
        return;
    }
    let n = Net::new("r", 3);
    sh(&format!("ip -n {} link set p0 down", n.s));
    let (ok, out) = n.configure(
        r#"{"network_mode":"static","host_ip":"192.0.2.9/24","gateway":"192.0.2.1","ospkg_pointer":"http://192.0.2.1/x.json"}"#,
    );
    assert!(ok, "{out}");
    assert!(out.contains("static: eth1 has carrier after"), "{out}");
    assert!(out.contains("and gets the address; eth0: no carrier yet; eth2: "), "{out}");
    assert!(out.contains("eth2: carrier too, but eth1 comes first") || out.contains("eth2: no carrier yet"), "{out}");
    assert!(out.contains("network: eth1 address 192.0.2.9/24 gateway 192.0.2.1"), "{out}");
    assert!(n.client("-4 addr show dev eth1").contains("inet 192.0.2.9/24"));
    assert!(!n.client("-4 addr show dev eth0").contains("inet "));
}

/// A static IPv6 address and default route: used only after duplicate address
/// detection passed, and the server answers over it.
#[test]
fn static_ipv6_address_after_duplicate_address_detection() {
    if !usable() {
        return;
    }
    let n = Net::new("v6", 1);
    sh(&format!("ip -n {} addr add 2001:db8::1/64 dev br0 nodad", n.s));
    let (ok, out) = n.configure(
        r#"{"network_mode":"static","host_ip":"2001:db8::7/64","gateway":"2001:db8::1","dns":["2001:db8::53"],
            "ospkg_pointer":"https://[2001:db8::1]:8443/os.json"}"#,
    );
    assert!(ok, "{out}");
    assert!(out.contains("eth0: 2001:db8::7 passed duplicate address detection after"), "{out}");
    assert!(out.contains("network: eth0 address 2001:db8::7/64 gateway 2001:db8::1"), "{out}");
    let a = n.client("-6 addr show dev eth0");
    // (the kernel's own link-local address may still be tentative: it has its own DAD)
    let line = a.lines().find(|l| l.contains("inet6 2001:db8::7/64")).unwrap_or_else(|| panic!("{a}"));
    assert!(!line.contains("tentative"), "{a}");
    assert!(n.client("-6 route show default").contains("default via 2001:db8::1 dev eth0"));
    assert_eq!(n.resolv_conf(), "nameserver 2001:db8::53\n");
    // the address carries traffic: the server's answer to a TCP connect comes back
    let (ok, text) = n.exec_client(
        "python3 -c \"import socket; s=socket.create_connection(('2001:db8::1', 9), timeout=3)\" 2>&1 || true",
    );
    assert!(ok && text.contains("Connection refused"), "expected a refusal from the server's kernel: {text}");
}

/// Another host already has the address: duplicate address detection fails, and the
/// error says so; the address is not used.
#[test]
fn a_duplicate_ipv6_address_is_refused_with_the_reason() {
    if !usable() {
        return;
    }
    let n = Net::new("dad", 1);
    sh(&format!("ip -n {} addr add 2001:db8::7/64 dev br0 nodad", n.s));
    let (ok, out) = n.configure(
        r#"{"network_mode":"static","host_ip":"2001:db8::7/64","gateway":"2001:db8::1","ospkg_pointer":"https://[2001:db8::1]/os.json"}"#,
    );
    assert!(!ok, "{out}");
    assert!(out.contains("2001:db8::7 is already in use on the link of eth0: another host answered for it"), "{out}");
    assert!(!n.client("-6 route show default").contains("default"));
}

/// The line of `ip -6 addr show dev DEV` with `addr`, which must be past duplicate
/// address detection.
fn ipv6_address_line(n: &Net, dev: &str, addr: &str) -> String {
    let a = n.client(&format!("-6 addr show dev {dev}"));
    let line = a.lines().find(|l| l.contains(&format!("inet6 {addr}"))).unwrap_or_else(|| panic!("{addr}: {a}"));
    assert!(!line.contains("tentative") && !line.contains("dadfailed"), "{a}");
    line.to_string()
}

/// The server's kernel answers a TCP connect to a closed port with a refusal: the
/// client's address and route carry traffic both ways.
fn assert_reaches(n: &Net, server: &str) {
    let (ok, text) = n.exec_client(&format!(
        "python3 -c \"import socket; s=socket.create_connection(('{server}', 9), timeout=3)\" 2>&1 || true"
    ));
    assert!(ok && text.contains("Connection refused"), "expected a refusal from {server}'s kernel: {text}");
}

/// `network_mode: dhcp` on an IPv6 network with router advertisements only (no
/// DHCP at all): the kernel's SLAAC address, the default route to the router, and the
/// DNS server from the advertisement's RDNSS option. The URL names an IPv6 address, so
/// DHCPv4 is not started.
#[test]
fn slaac_from_a_router_advertisement_with_its_dns_server() {
    if !usable() {
        return;
    }
    let mut n = Net::new("sl", 1);
    n.ipv6_router(&["--dhcp-range=2001:db8::,ra-only,64", "--dhcp-option=option6:dns-server,[2001:db8::53]"]);
    let (ok, out) = n.configure(r#"{"network_mode":"dhcp","ospkg_pointer":"https://[2001:db8::1]:8443/os.json"}"#);
    assert!(ok, "{out}");
    assert!(out.contains("IPv6 only (SLAAC or DHCPv6): every OS package URL names an IPv6 address"), "{out}");
    assert!(!out.contains("DHCPDISCOVER"), "{out}");
    assert!(out.contains("eth0: router advertisement from fe80::"), "{out}");
    assert!(out.contains("default router for 1800 s, prefix 2001:db8::/64 (SLAAC), DNS 2001:db8::53"), "{out}");
    // EUI-64 from the MAC 52:54:00:aa:00:00
    assert!(out.contains("eth0: SLAAC address 2001:db8::5054:ff:feaa:0/64 usable after"), "{out}");
    assert!(out.contains("network: eth0 address 2001:db8::5054:ff:feaa:0/64 gateway fe80::"), "{out}");
    ipv6_address_line(&n, "eth0", "2001:db8::5054:ff:feaa:0/64");
    let route = n.client("-6 route show default");
    assert!(route.contains("default via fe80::") && route.contains("dev eth0 proto ra"), "{route}");
    assert!(n.client("-4 addr show dev eth0").trim().is_empty(), "no IPv4 address");
    assert_eq!(n.resolv_conf(), "nameserver 2001:db8::53\n");
    assert_reaches(&n, "2001:db8::1");
}

/// A URL with a host name races DHCPv4 and IPv6 on every NIC. On a network with
/// router advertisements but no DHCPv4 server, SLAAC wins, and the console says
/// where DHCPv4 and the NIC without carrier stood.
#[test]
fn ipv6_wins_the_race_where_there_is_no_dhcpv4() {
    if !usable() {
        return;
    }
    let mut n = Net::new("ra", 2);
    sh(&format!("ip -n {} link set p1 down", n.s));
    n.ipv6_router(&["--dhcp-range=2001:db8::,ra-only,64"]);
    let (ok, out) = n.configure(r#"{"network_mode":"dhcp","ospkg_pointer":"https://os.example/os.json"}"#);
    assert!(ok, "{out}");
    assert!(out.contains("DHCP: eth0 won with SLAAC (2001:db8::5054:ff:feaa:0/64, router fe80::"), "{out}");
    assert!(out.contains("; eth0 DHCPv4: no DHCP answer to ") && out.contains("; eth1: no carrier yet"), "{out}");
    assert!(out.contains("network: eth0 address 2001:db8::5054:ff:feaa:0/64"), "{out}");
    assert_reaches(&n, "2001:db8::1");
}

/// A router that advertises itself as DNS server by its link-local address (as
/// dnsmasq does with DNS on): resolv.conf names the link as the address's zone, and
/// a name resolves through it.
#[test]
fn a_link_local_dns_server_from_the_router_advertisement_resolves() {
    if !usable() {
        return;
    }
    let mut n = Net::new("ll", 1);
    n.ipv6_router(&[
        "--port=53",
        "--no-resolv",
        "--no-hosts",
        "--address=/os.test/2001:db8::1",
        "--dhcp-range=2001:db8::,ra-only,64",
    ]);
    let (ok, out) = n.configure(r#"{"network_mode":"dhcp","ospkg_pointer":"https://os.test:8443/os.json"}"#);
    assert!(ok, "{out}");
    let rc = n.resolv_conf();
    assert!(rc.starts_with("nameserver fe80::") && rc.ends_with("%eth0\n"), "{rc}");
    let (ok, hosts) = n.exec_client("getent ahostsv6 os.test");
    assert!(ok && hosts.contains("2001:db8::1 "), "{hosts}");
}

/// The router says "managed": the address comes from DHCPv6 (a /128; the on-link
/// prefix is the advertisement's), with the DHCPv6 server's DNS server, and is used
/// after duplicate address detection.
#[test]
fn dhcpv6_address_when_the_router_says_managed() {
    if !usable() {
        return;
    }
    let mut n = Net::new("d6", 1);
    n.ipv6_router(&[
        "--dhcp-range=2001:db8::100,2001:db8::1ff,64,1h",
        "--dhcp-option=option6:dns-server,[2001:db8::53]",
    ]);
    let (ok, out) = n.configure(r#"{"network_mode":"dhcp","ospkg_pointer":"https://[2001:db8::1]:8443/os.json"}"#);
    assert!(ok, "{out}");
    assert!(out.contains("prefix 2001:db8::/64 (on-link), DNS 2001:db8::53, addresses from DHCPv6"), "{out}");
    let addr = out
        .split("eth0: DHCPv6 address ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    assert!(addr.starts_with("2001:db8::1"), "from dnsmasq's range: {addr}");
    assert!(out.contains(&format!("eth0: {addr} passed duplicate address detection after")), "{out}");
    assert!(out.contains(&format!("network: eth0 address {addr}/128 gateway fe80::")), "{out}");
    ipv6_address_line(&n, "eth0", &format!("{addr}/128"));
    assert!(n.client("-6 route show default").contains("dev eth0 proto ra"));
    assert_eq!(n.resolv_conf(), "nameserver 2001:db8::53\n");
    assert_reaches(&n, "2001:db8::1");
}

/// The DHCPv6 server hands out an address another host already has (a reservation
/// for this machine's DUID-LL, and the server itself holds it): duplicate address
/// detection fails, stboot removes it, declines it (RFC 8415 18.2.8), and takes
/// the next one the server offers.
#[test]
fn a_duplicate_dhcpv6_address_is_declined_and_another_taken() {
    if !usable() {
        return;
    }
    let mut n = Net::new("dc", 1);
    sh(&format!("ip -n {} addr add 2001:db8::1:7/64 dev br0 nodad", n.s));
    n.ipv6_router(&[
        "--dhcp-range=2001:db8::100,2001:db8::1ff,64,1h",
        "--dhcp-host=id:00:03:00:01:52:54:00:aa:00:00,[2001:db8::1:7]",
    ]);
    let (ok, out) = n.configure(r#"{"network_mode":"dhcp","ospkg_pointer":"https://[2001:db8::1]:8443/os.json"}"#);
    assert!(ok, "{out}");
    assert!(out.contains("eth0: DHCPv6 address 2001:db8::1:7 from fe80::"), "{out}");
    assert!(
        out.contains("the DHCPv6 address 2001:db8::1:7 is already in use on the link: another host answered for it (duplicate address detection); declining it and asking again"),
        "{out}"
    );
    assert!(out.contains("network: eth0 address 2001:db8::1"), "{out}");
    assert!(!out.contains("network: eth0 address 2001:db8::1:7/"), "{out}");
    let a = n.client("-6 addr show dev eth0");
    assert!(!a.contains("2001:db8::1:7"), "the duplicate was removed: {a}");
    assert_reaches(&n, "2001:db8::1");
}

/// No router on the link: the IPv6 contender fails with the reason, bounded by
/// the step's timeout.
#[test]
fn ipv6_without_a_router_fails_with_a_reason() {
    if !usable() {
        return;
    }
    let n = Net::new("nr", 1);
    let (ok, out) = n.configure_within(r#"{"network_mode":"dhcp","ospkg_pointer":"https://[2001:db8::1]/os.json"}"#, 3);
    assert!(!ok, "{out}");
    assert!(out.contains("no lease within 3 s (eth0: no router advertisement ("), "{out}");
    assert!(out.contains("router solicitations sent)"), "{out}");
}

#[test]
fn dhcp_without_a_server_fails_with_a_reason() {
    if !usable() {
        return;
    }
    let n = Net::new("f", 1);
    let ex = example();
    let t = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("host.json");
    std::fs::write(&cfg, r#"{"network_mode":"dhcp","ospkg_pointer":"http://192.0.2.1/x.json"}"#).unwrap();
    let o = Command::new("ip")
        .args(["netns", "exec", &n.c])
        .arg(ex)
        .arg(&cfg)
        .env("NETCONFIG_TIMEOUT", "6")
        .output()
        .unwrap();
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("no lease within 6 s") && out.contains("eth0"), "{out}");
    // the console hears where the wait stands while it lasts (it heard nothing before)
    assert!(out.contains("DHCP: still waiting after 5 s of 6 s: eth0: no DHCP answer to "), "{out}");
    assert!(t.elapsed().as_secs() < 18, "the DHCP timeout bounds the step");
}

/// `vlan_id`: DHCP over VLAN 7 on every NIC, against a server that answers only on
/// VLAN 7; the same server gives nothing to an untagged client or one on VLAN 8.
#[test]
fn dhcp_over_a_vlan() {
    if !usable() || !host_has_vlans("dhcp_over_a_vlan") {
        return;
    }
    let mut n = Net::new("v", 2);
    let v = n.tag_server(7);
    n.dhcp_server_on(&v);
    let (ok, out) = n.configure(r#"{"network_mode":"dhcp","ospkg_pointer":"http://192.0.2.1/x.json","vlan_id":7}"#);
    assert!(ok, "{out}");
    assert!(out.contains("VLAN 7 on eth0: eth0.7") && out.contains("VLAN 7 on eth1: eth1.7"), "{out}");
    assert!(
        out.contains("network: eth0.7 address 192.0.2.5") || out.contains("network: eth1.7 address 192.0.2.5"),
        "{out}"
    );
    let link = n.client("-d link show eth0.7");
    assert!(link.contains("vlan protocol 802.1Q id 7"), "{link}");
    assert!(n.client("-4 addr show").contains("inet 192.0.2.5"));
    assert!(n.client("route show default").contains("default via 192.0.2.1 dev eth"));
    assert!(n.client("route show default").contains(".7"));
    // tagged traffic really flows: the server answers a ping over VLAN 7
    sh(&format!("ip netns exec {} ping -c 1 -W 2 192.0.2.1", n.c));

    for (cfg, what) in [
        (r#"{"network_mode":"dhcp","ospkg_pointer":"http://192.0.2.1/x.json"}"#, "untagged"),
        (r#"{"network_mode":"dhcp","ospkg_pointer":"http://192.0.2.1/x.json","vlan_id":8}"#, "VLAN 8"),
    ] {
        let mut m = Net::new(if what == "untagged" { "u" } else { "w" }, 1);
        let v = m.tag_server(7);
        m.dhcp_server_on(&v);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.json");
        std::fs::write(&path, cfg).unwrap();
        let o = Command::new("ip")
            .args(["netns", "exec", &m.c])
            .arg(example())
            .arg(&path)
            .env("NETCONFIG_TIMEOUT", "4")
            .output()
            .unwrap();
        let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(!o.status.success() && out.contains("no lease within 4 s"), "{what}: {out}");
    }
}

/// `vlan_id` with a static address on the NIC chosen by MAC, and on a bond.
#[test]
fn static_over_a_vlan_on_a_nic_and_on_a_bond() {
    if !usable() || !host_has_vlans("static_over_a_vlan_on_a_nic_and_on_a_bond") {
        return;
    }
    let n = Net::new("t", 2);
    n.tag_server(42);
    let (ok, out) = n.configure(
        r#"{"network_mode":"static","host_ip":"192.0.2.7/24","gateway":"192.0.2.1","vlan_id":42,
            "network_interfaces":[{"mac_address":"52:54:00:aa:00:01"}],"ospkg_pointer":"http://192.0.2.1/x.json"}"#,
    );
    assert!(ok, "{out}");
    assert!(out.contains("network: eth1.42 address 192.0.2.7/24 gateway 192.0.2.1"), "{out}");
    assert!(n.client("-4 addr show dev eth1.42").contains("inet 192.0.2.7/24"));
    assert!(!n.client("link").contains("eth0.42"), "only the chosen NIC is tagged");
    sh(&format!("ip netns exec {} ping -c 1 -W 2 192.0.2.1", n.c));

    if Command::new("modprobe").arg("bonding").status().is_ok_and(|s| s.success())
        || Path::new("/sys/class/net/bonding_masters").exists()
    {
        let b = Net::new("b", 2);
        b.tag_server(42);
        let (ok, out) = b.configure(
            r#"{"network_mode":"static","host_ip":"192.0.2.8/24","gateway":"192.0.2.1","vlan_id":42,
                "bonding_mode":"active-backup","bond_name":"bond0",
                "network_interfaces":[{"interface_name":"eth0"},{"interface_name":"eth1"}],"ospkg_pointer":"http://192.0.2.1/x.json"}"#,
        );
        assert!(ok, "{out}");
        assert!(
            out.contains("VLAN 42 on bond0: bond0.42") && out.contains("network: bond0.42 address 192.0.2.8/24"),
            "{out}"
        );
        sh(&format!("ip netns exec {} ping -c 1 -W 3 192.0.2.1", b.c));
    } else {
        skipped("static_over_a_vlan_on_a_nic_and_on_a_bond, the bond part: the host kernel has no bonding driver");
    }
}

/// Whether the host kernel can create 802.1Q links (a kernel without
/// CONFIG_VLAN_8021Q, as some CI hosts run, cannot; the QEMU scenario `vlan` then
/// still covers VLANs with the LinuxBoot kernel). Says so loudly when not.
fn host_has_vlans(test: &str) -> bool {
    let ns = format!("stvlanprobe{}", std::process::id());
    let _ = Command::new("ip").args(["netns", "add", &ns]).output();
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ip -n {ns} link add va type veth peer name vb && ip -n {ns} link add link va name va.7 type vlan id 7"
        ))
        .output()
        .is_ok_and(|o| o.status.success());
    let _ = Command::new("ip").args(["netns", "del", &ns]).output();
    if !ok {
        skipped(&format!(
            "{test}: the host kernel cannot create VLAN links (no CONFIG_VLAN_8021Q); integration-tests/run.sh's `vlan` scenario tests VLANs in QEMU"
        ));
    }
    ok
}

/// Report a skipped test where it is seen: on stderr, and in $STBOOT_SKIP_LOG, which
/// scripts/test.sh prints after `cargo test` (which hides a passing test's output).
fn skipped(why: &str) {
    eprintln!("SKIPPED {why}");
    if let Some(p) = std::env::var_os("STBOOT_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(p) {
            let _ = writeln!(f, "SKIPPED {why}");
        }
    }
}

#[allow(unsafe_code)]
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
