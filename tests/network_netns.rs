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
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.s,
                "dnsmasq",
                "--no-daemon",
                "--port=0",
                &format!("--interface={interface}"),
                "--bind-interfaces",
            ])
            .args([
                "--dhcp-range=192.0.2.50,192.0.2.60,255.255.255.0,1h",
                "--dhcp-option=3,192.0.2.1",
                "--dhcp-option=6,192.0.2.53",
            ])
            .args(["--dhcp-leasefile=/dev/null", "--conf-file=/dev/null"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.dnsmasq = Some(child);
        std::thread::sleep(std::time::Duration::from_millis(300));
    }

    fn configure(&self, json: &str) -> (bool, String) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("host.json");
        std::fs::write(&cfg, json).unwrap();
        let o = Command::new("ip").args(["netns", "exec", &self.c]).arg(example()).arg(&cfg).output().unwrap();
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
        .env("NETCONFIG_TIMEOUT", "3")
        .output()
        .unwrap();
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("no lease within 3 s") && out.contains("eth0"), "{out}");
    assert!(t.elapsed().as_secs() < 15, "the DHCP timeout bounds the step");
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
