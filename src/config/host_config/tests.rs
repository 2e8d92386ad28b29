use super::*;

fn upstream_compat(name: &str) -> Vec<u8> {
    // The three real provisioned configs from upstream's test data: JSON after `---`.
    let path = format!("{}/tests/data/upstream-hostconfigs/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.split_once("\n---\n").expect("--- separator").1.as_bytes().to_vec()
}

#[test]
fn upstream_compat_1_bonding_legacy() {
    let c = HostConfig::parse(&upstream_compat("compat-1.txt")).unwrap();
    assert_eq!(c.network_mode, NetworkMode::Static);
    assert_eq!(c.host_ip.unwrap().to_string(), "45.129.56.67/26");
    assert_eq!(c.gateway.unwrap().to_string(), "45.129.56.65");
    assert_eq!(c.dns, Some(vec!["9.9.9.9".parse().unwrap()]));
    assert_eq!(c.ospkg_pointer, "https://USERNAME:PASSWORD@HOSTNAME/os-stable.json");
    assert_eq!(c.bonding_mode, Some(BondingMode::Ieee8023ad));
    assert_eq!(c.bond_name.as_deref(), Some("bond0"));
    let names: Vec<_> = c.network_interfaces.unwrap().into_iter().map(|i| i.interface_name.unwrap()).collect();
    assert_eq!(names, ["eth2", "eth3"]);
    assert_eq!(c.identity.as_deref(), Some("bar"));
}

#[test]
fn upstream_compat_2_single_mac() {
    let c = HostConfig::parse(&upstream_compat("compat-2.txt")).unwrap();
    assert_eq!(c.bonding_mode, None);
    assert_eq!(c.bond_name, None);
    let ifs = c.network_interfaces.unwrap();
    assert_eq!(ifs.len(), 1);
    assert_eq!(ifs[0].mac_address.as_ref().unwrap().to_string(), "3c:ec:ef:9b:96:e4");
    assert_eq!(ifs[0].interface_name, None);
}

#[test]
fn upstream_compat_3_oldest() {
    let c = HostConfig::parse(&upstream_compat("compat-3.txt")).unwrap();
    assert_eq!(c.host_ip.unwrap().to_string(), "69.4.234.132/27");
    assert_eq!(c.dns, Some(vec!["8.8.8.8".parse().unwrap()]));
    assert_eq!(c.network_interfaces.unwrap()[0].mac_address.as_ref().unwrap().to_string(), "ac:1f:6b:fc:c0:68");
    assert_eq!(c.bonding_mode, None);
}

#[test]
fn canonical_output_key_order_and_nulls() {
    let c = HostConfig::parse(br#"{"network_mode":"dhcp","ospkg_pointer":"https://a/b.json"}"#).unwrap();
    assert_eq!(
        gojson::marshal(&c),
        r#"{"network_mode":"dhcp","host_ip":null,"gateway":null,"dns":null,"network_interfaces":null,"ospkg_pointer":"https://a/b.json","identity":null,"authentication":null,"bonding_mode":null,"bond_name":null}"#
    );
    let c = HostConfig::parse(
        br#"{"network_mode":"static","host_ip":"10.0.2.15/24","gateway":"10.0.2.2","dns":["9.9.9.9"],
        "network_interfaces":[{"interface_name":"eth0","mac_address":"00-00-5E-00-53-01"}],"ospkg_pointer":"x"}"#,
    )
    .unwrap();
    let j = gojson::marshal(&c);
    assert!(j.contains(r#""network_interfaces":[{"interface_name":"eth0","mac_address":"00:00:5e:00:53:01"}]"#), "{j}");
    assert!(j.contains(r#""host_ip":"10.0.2.15/24","gateway":"10.0.2.2","dns":["9.9.9.9"]"#), "{j}");
    // the output parses back to the same configuration
    assert_eq!(HostConfig::parse(j.as_bytes()).unwrap(), c);
}

#[test]
fn table_of_valid_variants() {
    let ok: &[&str] = &[
        r#"{"network_mode":"dhcp","ospkg_pointer":"http://h/p.json"}"#,
        r#"{"network_mode":"dhcp","ospkg_pointer":"http://h/p.json","host_ip":null,"gateway":null,"dns":null,"network_interfaces":null,"identity":null,"authentication":null,"bonding_mode":null,"bond_name":null}"#,
        r#"{"network_mode":"static","host_ip":"2001:db8::2/64","gateway":"2001:db8::1","ospkg_pointer":"p"}"#,
        r#"{"network_mode":"dhcp","ospkg_pointer":"http://h/$ID/$AUTH.json","identity":"host-01","authentication":"s3cr_et"}"#,
        r#"{"network_mode":"dhcp","ospkg_pointer":"p","bonding_mode":"active-backup","bond_name":"bond0","network_interfaces":[{"interface_name":"eth0","mac_address":null},{"interface_name":"eth1"}]}"#,
        r#"{"network_mode":"dhcp","ospkg_pointer":"p","bonding_mode":"","bond_name":""}"#,
        r#"{"network_mode":"dhcp","ospkg_pointer":"p","network_interfaces":[{"mac_address":"0000.5e00.5301"}]}"#,
        r#"{"network_mode":"dhcp","ospkg_pointer":"p","description":"stprov version v0.5; timestamp 2025-01-30T13:49:01Z"}"#,
        r#"{"network_mode":"dhcp","provisioning_urls":["http://a/1.json","http://b/2.json"],"timestamp":1,"version":1,"bonding":false}"#,
        r#"{"network_mode":"dhcp","ospkg_pointer":"p"} trailing bytes are ignored like upstream's decoder"#,
    ];
    for (i, c) in ok.iter().enumerate() {
        HostConfig::parse(c.as_bytes()).unwrap_or_else(|e| panic!("case {i}: {e:#}"));
    }
    let c = HostConfig::parse(ok[8].as_bytes()).unwrap();
    assert_eq!(c.ospkg_pointer, "http://a/1.json,http://b/2.json");
}

#[test]
fn table_of_invalid_variants() {
    let bad: &[(&str, &str)] = &[
        (r#"{"ospkg_pointer":"p"}"#, "\"network_mode\" is missing"),
        (r#"{"network_mode":"","ospkg_pointer":"p"}"#, "\"network_mode\": \"\" is not allowed"),
        (r#"{"network_mode":"foo","ospkg_pointer":"p"}"#, "\"network_mode\": \"foo\" is not allowed"),
        (r#"{"network_mode":1,"ospkg_pointer":"p"}"#, "\"network_mode\": 1 is not allowed"),
        (r#"{"network_mode":"static","gateway":"10.0.2.2","ospkg_pointer":"p"}"#, "\"host_ip\" is missing"),
        (r#"{"network_mode":"static","host_ip":"10.0.2.15/24","ospkg_pointer":"p"}"#, "\"gateway\" is missing"),
        (
            r#"{"network_mode":"static","host_ip":"2001:db8::7/64","gateway":"10.0.2.2","ospkg_pointer":"p"}"#,
            "\"gateway\" is 10.0.2.2, an IPv4 address, but host_ip 2001:db8::7/64 is IPv6",
        ),
        (
            r#"{"network_mode":"static","host_ip":"10.0.2.15/24","gateway":"fe80::1","ospkg_pointer":"p"}"#,
            "\"gateway\" is fe80::1, an IPv6 address, but host_ip 10.0.2.15/24 is IPv4",
        ),
        (
            r#"{"network_mode":"static","host_ip":"10.0.2.15","gateway":"10.0.2.2","ospkg_pointer":"p"}"#,
            "\"host_ip\": invalid address",
        ),
        (
            r#"{"network_mode":"static","host_ip":"10.0.2.15/33","gateway":"10.0.2.2","ospkg_pointer":"p"}"#,
            "\"host_ip\": invalid address",
        ),
        (
            r#"{"network_mode":"dhcp","gateway":"10.0.2","ospkg_pointer":"p"}"#,
            "\"gateway\": \"10.0.2\" is not an IP address",
        ),
        (
            r#"{"network_mode":"dhcp","dns":["1.1.1.1","x"],"ospkg_pointer":"p"}"#,
            "\"dns[1]\": \"x\" is not an IP address",
        ),
        (r#"{"network_mode":"dhcp","dns":5,"ospkg_pointer":"p"}"#, "\"dns\": expected an array"),
        (
            r#"{"network_mode":"dhcp","network_interfaces":[],"ospkg_pointer":"p"}"#,
            "\"network_interfaces\" is an empty array",
        ),
        (
            r#"{"network_mode":"dhcp","network_interfaces":[{"mac_address":"zz:00:00:00:00:00"}],"ospkg_pointer":"p"}"#,
            "\"network_interfaces[0].mac_address\": invalid MAC",
        ),
        (
            r#"{"network_mode":"dhcp","network_interfaces":[7],"ospkg_pointer":"p"}"#,
            "\"network_interfaces[0]\": expected an object",
        ),
        (
            r#"{"network_mode":"dhcp","network_interface":"00:11","ospkg_pointer":"p"}"#,
            "\"network_interface\": invalid MAC",
        ),
        (r#"{"network_mode":"dhcp"}"#, "\"ospkg_pointer\" is missing or empty"),
        (r#"{"network_mode":"dhcp","ospkg_pointer":""}"#, "\"ospkg_pointer\" is missing or empty"),
        (r#"{"network_mode":"dhcp","ospkg_pointer":"http://h/$ID.json"}"#, "\"identity\" is missing"),
        (
            r#"{"network_mode":"dhcp","ospkg_pointer":"http://h/$ID.json","identity":"a.b"}"#,
            "\"identity\": \"a.b\" is not allowed",
        ),
        (r#"{"network_mode":"dhcp","ospkg_pointer":"http://h/$ID.json","identity":"a/b"}"#, "is not allowed"),
        (r#"{"network_mode":"dhcp","ospkg_pointer":"http://h/$ID.json","identity":"a@b"}"#, "is not allowed"),
        (r#"{"network_mode":"dhcp","ospkg_pointer":"http://$AUTH@h/x.json"}"#, "\"authentication\" is missing"),
        (r#"{"network_mode":"dhcp","ospkg_pointer":"p","bonding_mode":"fast"}"#, "\"fast\" is not a bonding mode"),
        (
            r#"{"network_mode":"dhcp","ospkg_pointer":"p","bonding_mode":"802.3ad","network_interfaces":[{"interface_name":"eth0"}]}"#,
            "\"bond_name\" is missing",
        ),
        (
            r#"{"network_mode":"dhcp","ospkg_pointer":"p","bonding_mode":"802.3ad","bond_name":"bond0"}"#,
            "bonding needs each member's interface_name",
        ),
        (
            r#"{"network_mode":"dhcp","ospkg_pointer":"p","identity":5}"#,
            "\"identity\": expected a string, found a number",
        ),
        (r#"{"network_mode":"dhcp","provisioning_urls":"http://a"}"#, "\"provisioning_urls\": expected an array"),
        (r#"[]"#, "expected a JSON object"),
        (r#"{"network_mode":"dhcp","ospkg_pointer":"p""#, "not valid JSON"),
    ];
    for (input, want) in bad {
        let e = format!("{:#}", HostConfig::parse(input.as_bytes()).unwrap_err());
        assert!(e.contains(want), "{input}\n  got {e:?}\n  want {want:?}");
    }
    let long = "a".repeat(65);
    let e =
        HostConfig::parse(format!(r#"{{"network_mode":"dhcp","ospkg_pointer":"$ID","identity":"{long}"}}"#).as_bytes())
            .unwrap_err();
    assert!(e.to_string().contains("at most 64"));
    let ok64 = "a".repeat(64);
    HostConfig::parse(format!(r#"{{"network_mode":"dhcp","ospkg_pointer":"$ID","identity":"{ok64}"}}"#).as_bytes())
        .unwrap();
}

#[test]
fn substitution_vectors() {
    // from upstream's TestSubstituteIDandAUTH, plus digits (upstream's regex rejects them: a bug)
    assert_eq!(substitute("http://h/$ID/$AUTH", Some("id"), Some("auth")), "http://h/id/auth");
    assert_eq!(substitute("http://h/$ID/$AUTH", None, Some("auth")), "http://h/$ID/auth");
    assert_eq!(substitute("http://h/$ID/$ID", Some("x1"), None), "http://h/x1/x1");
    assert_eq!(substitute("http://h/p", Some("x"), Some("y")), "http://h/p");
    assert_eq!(substitute("http://h/$ID", Some(""), None), "http://h/$ID");
}

#[test]
fn mac_forms() {
    for s in ["52:54:00:12:34:56", "52-54-00-12-34-56", "5254.0012.3456", "52:54:00:12:34:56:78:9a"] {
        s.parse::<Mac>().unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    for s in ["", "52:54:00:12:34", "5254:0012:3456", "52:54:00:12:34:5g", "525400123456"] {
        assert!(s.parse::<Mac>().is_err(), "{s}");
    }
}

#[test]
fn bonding_kernel_modes() {
    assert_eq!(BondingMode::BalanceRr.kernel_mode(), 0);
    assert_eq!(BondingMode::Ieee8023ad.kernel_mode(), 4);
    assert_eq!(BondingMode::BalanceAlb.kernel_mode(), 6);
}

#[test]
fn vlan_id_extension() {
    let base = r#"{"network_mode":"dhcp","ospkg_pointer":"p""#;
    let c = HostConfig::parse(format!("{base},\"vlan_id\":7}}").as_bytes()).unwrap();
    assert_eq!(c.vlan_id, Some(7));
    // printed after upstream's keys; absent from the output of configs without it
    assert!(c.to_json().contains("\"bond_name\": null,\n  \"vlan_id\": 7\n}"), "{}", c.to_json());
    let plain = HostConfig::parse(format!("{base}}}").as_bytes()).unwrap();
    assert!(!plain.to_json().contains("vlan_id"));
    assert_eq!(HostConfig::parse(format!("{base},\"vlan_id\":null}}").as_bytes()).unwrap().vlan_id, None);
    assert_eq!(HostConfig::parse(format!("{base},\"vlan_id\":4094}}").as_bytes()).unwrap().vlan_id, Some(4094));
    assert!(unknown_keys(format!("{base},\"vlan_id\":7}}").as_bytes()).is_empty());
    for (v, want) in [
        ("0", "0 is not allowed, expected a VLAN id from 1 to 4094"),
        ("4095", "4095 is not allowed"),
        ("-3", "-3 is not allowed"),
        ("7.5", "7.5 is not allowed"),
        ("\"7\"", "expected a VLAN id from 1 to 4094, found a string"),
    ] {
        let e = HostConfig::parse(format!("{base},\"vlan_id\":{v}}}").as_bytes()).unwrap_err().to_string();
        assert!(e.contains("field \"vlan_id\"") && e.contains(want), "{v}: {e}");
    }
    // a typo is caught by the unknown-key check
    let w = unknown_keys(format!("{base},\"vlan\":7}}").as_bytes());
    assert!(w.len() == 1 && w[0].contains("did you mean \"vlan_id\""), "{w:?}");
}

#[test]
fn proxies_extension() {
    let base = r#"{"network_mode":"dhcp","ospkg_pointer":"https://prov.example/os.json""#;
    let c = HostConfig::parse(
        format!(
            r#"{base},"http_proxy":"http://proxy:3128","https_proxy":"http://u:pw@proxy:3128","no_proxy":"10.0.0.0/8, .lan,prov.local"}}"#
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(c.proxies.https_proxy.as_deref(), Some("http://u:pw@proxy:3128"));
    assert!(c.proxies.any());
    // the console's line hides the password
    assert_eq!(
        c.proxies.describe(),
        "http via http://proxy:3128/, https via http://u:***@proxy:3128/ (CONNECT), direct to 10.0.0.0/8, .lan,prov.local"
    );
    assert!(c.to_json().contains("\"https_proxy\": \"http://u:pw@proxy:3128\""), "{}", c.to_json());
    assert!(unknown_keys(format!(r#"{base},"https_proxy":"http://p:1"}}"#).as_bytes()).is_empty());
    let plain = HostConfig::parse(format!("{base}}}").as_bytes()).unwrap();
    assert!(!plain.proxies.any() && !plain.to_json().contains("proxy"));
    for (kv, want) in [
        (r#""https_proxy":"https://proxy:3128""#, "expected http://[user:password@]host:port"),
        (r#""https_proxy":"socks5://proxy:1080""#, "expected http://[user:password@]host:port"),
        (r#""http_proxy":"http://proxy:3128/path""#, "expected http://[user:password@]host:port"),
        (r#""https_proxy":"proxy:3128""#, "is not allowed"),
        (r#""https_proxy":"not a url at all""#, "is not a URL"),
        (r#""https_proxy":7"#, "expected a string"),
        (r#""no_proxy":"a,,b""#, "entry \"\" is not allowed"),
        (r#""no_proxy":"a b""#, "entry \"a b\" is not allowed"),
    ] {
        let e = HostConfig::parse(format!("{base},{kv}}}").as_bytes()).unwrap_err().to_string();
        assert!(e.contains(want), "{kv}: {e}");
    }
    // a password in a refused proxy URL is not echoed
    let e = HostConfig::parse(format!(r#"{base},"https_proxy":"https://u:s3cret@proxy:1"}}"#).as_bytes())
        .unwrap_err()
        .to_string();
    assert!(!e.contains("s3cret") && e.contains("u:***@proxy"), "{e}");
}
