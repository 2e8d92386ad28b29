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
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.s,
                "dnsmasq",
                "--no-daemon",
                "--port=0",
                "--interface=br0",
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
    // a plain `cargo test` builds examples; `cargo test --test network_netns` does not
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let p = dir.join("examples/netconfig");
    if !Path::new(&p).exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "--quiet", "--example", "netconfig"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(st.success(), "building the netconfig example");
    }
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

#[allow(unsafe_code)]
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
