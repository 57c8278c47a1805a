use super::*;

const GOOD: &str = r#"
name = "a"
[underlay]
interface = "eth0"
[[vni]]
id = 100
remotes = ["198.18.0.2"]
[vni.host]
address = "192.0.2.1/24"
[[vni.workload]]
netns = "w1"
address = "192.0.2.11/24"
mac = "02:00:00:00:00:01"
[[vni.fdb]]
mac = "02:00:00:00:00:02"
dst = "198.18.0.2"
"#;

/// The error `text` gives, as printed.
fn error(text: &str) -> String {
    Config::parse(text)
        .expect_err("config accepted")
        .to_string()
}

/// Asserts that `text` is refused with an error starting with `start`.
#[track_caller]
fn assert_refused(text: &str, start: &str) {
    let e = error(text);
    assert!(e.starts_with(start), "{e}");
}

#[test]
fn accepts_a_full_config_with_defaults() {
    let c = Config::parse(GOOD).unwrap();
    assert_eq!(c.vnis[0].dstport, 4789);
    assert_eq!(c.underlay.ttl, 64);
    assert_eq!(c.underlay.srcport, [32768, 60999]);
    assert_eq!(
        c.vnis[0].host.as_ref().unwrap().interface_name(100),
        "vtep100"
    );
    assert_eq!(c.vnis[0].workloads[0].host_interface_name(), "w1-h");
    assert_eq!(c.vnis[0].workloads[0].interface, "eth0");
}

#[test]
fn the_examples_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            Config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
    }
    assert!(n >= 4, "examples missing");
}

#[test]
fn unknown_key_is_named() {
    let e = error(&GOOD.replace("remotes =", "remote_vteps ="));
    assert!(e.contains("unknown field `remote_vteps`"), "{e}");
}

#[test]
fn vni_outside_24_bits_is_refused() {
    assert!(error(&GOOD.replace("id = 100", "id = 0")).starts_with("vni[0].id: 0 is outside"));
    assert_refused(
        &GOOD.replace("id = 100", "id = 16777216"),
        "vni[0].id: 16777216 is outside 1..=16777215",
    );
    assert!(Config::parse(&GOOD.replace("id = 100", "id = 16777215")).is_ok());
}

#[test]
fn duplicate_vni_is_refused() {
    let text = format!("{GOOD}\n[[vni]]\nid = 100\n");
    assert!(error(&text).starts_with("vni[1].id: VNI 100 is configured twice"));
}

#[test]
fn duplicate_port_is_refused() {
    let text = format!("{GOOD}\n[[vni]]\nid = 200\n[[vni.port]]\ninterface = \"w1-h\"\n");
    assert_refused(
        &text,
        "vni[1].port[0].interface: interface `w1-h` is already used",
    );
    let text = format!("{GOOD}\n[[vni]]\nid = 200\n[[vni.port]]\ninterface = \"eth0\"\n");
    assert!(error(&text).contains("already used by underlay.interface"));
}

#[test]
fn bad_addresses_are_refused() {
    let e = error(&GOOD.replace("192.0.2.11/24", "192.0.2.300/24"));
    assert!(e.contains("`192.0.2.300` is not an IPv4 address"), "{e}");
    assert!(error(&GOOD.replace("192.0.2.11/24", "192.0.2.11")).contains("is not ADDRESS/PREFIX"));
    assert!(error(&GOOD.replace("192.0.2.11/24", "192.0.2.11/33")).contains("over 32"));
    assert_refused(
        &GOOD.replace("remotes = [\"198.18.0.2\"]", "remotes = [\"224.0.0.1\"]"),
        "vni[0].remotes[0]: 224.0.0.1 is not a unicast address",
    );
}

#[test]
fn bad_macs_are_refused() {
    let e = error(&GOOD.replace("02:00:00:00:00:01", "02:00:00:00:01"));
    assert!(e.contains("is not a MAC address"), "{e}");
    assert_refused(
        &GOOD.replace("02:00:00:00:00:02", "01:00:5e:00:00:01"),
        "vni[0].fdb[0].mac: 01:00:5e:00:00:01 is a group address",
    );
}

#[test]
fn fdb_dst_is_checked_like_a_remote() {
    assert_refused(
        &GOOD.replace("dst = \"198.18.0.2\"", "dst = \"127.0.0.1\""),
        "vni[0].fdb[0].dst: 127.0.0.1 is not a unicast address",
    );
    let with_local = GOOD.replace(
        "interface = \"eth0\"",
        "interface = \"eth0\"\nlocal = \"198.18.0.2\"",
    );
    assert_refused(
        &with_local.replace("remotes = [\"198.18.0.2\"]", "remotes = []"),
        "vni[0].fdb[0].dst: 198.18.0.2 is the local VTEP address",
    );
}

/// Bug: userspace and the datapath disagreed on what a remote VTEP may be. The datapath never
/// learned a source in 240.0.0.0/4, but `check_remote` (the config and `vtep fdb add`)
/// accepted 240.0.0.1. Both now use `wire::is_unicast_vtep_ipv4`.
#[test]
fn reserved_class_e_remote_is_refused_as_the_datapath_refuses_it() {
    assert_refused(
        &GOOD.replace("remotes = [\"198.18.0.2\"]", "remotes = [\"240.0.0.1\"]"),
        "vni[0].remotes[0]: 240.0.0.1 is not a unicast address",
    );
    assert!(!vtep_common::wire::is_unicast_vtep_ipv4([240, 0, 0, 1]));
    assert!(vtep_common::wire::is_unicast_vtep_ipv4([198, 18, 0, 2]));
}

#[test]
fn fdb_entry_needs_one_target() {
    assert_refused(
        &GOOD.replace("dst = \"198.18.0.2\"", "port = \"nope\""),
        "vni[0].fdb[0].port: `nope` is not a port of VNI 100",
    );
    assert_refused(
        &GOOD.replace("dst = \"198.18.0.2\"", ""),
        "vni[0].fdb[0]: set exactly one of",
    );
}

#[test]
fn long_interface_names_are_refused() {
    assert_refused(
        &GOOD.replace("netns = \"w1\"", "netns = \"a-very-long-name\""),
        "vni[0].workload[0].host_interface",
    );
    assert_refused(
        &GOOD.replace("[vni.host]", "[vni.host]\ninterface = \"fifteen-chars-x\""),
        "vni[0].host.interface",
    );
}

#[test]
fn fdb_size_holds_the_configured_entries() {
    // host interface + workload + static entry
    assert!(Config::parse(&format!("fdb_size = 3\n{GOOD}")).is_ok());
    assert_refused(
        &format!("fdb_size = 2\n{GOOD}"),
        "fdb_size: 2 is less than the 3 FDB entries",
    );
}

#[test]
fn parse_errors_name_the_field_and_line() {
    // GOOD starts with an empty line: the workload address is on line 12.
    assert_refused(
        &GOOD.replace("192.0.2.11/24", "192.0.2.300/24"),
        "vni[0].workload[0].address: `192.0.2.300` is not an IPv4 address (line 12)",
    );
    assert_refused(
        &GOOD.replace("id = 100", "id = \"x\""),
        "vni[0].id: invalid type",
    );
}

#[test]
fn srcport_range_is_checked() {
    assert_refused(
        &GOOD.replace(
            "interface = \"eth0\"",
            "interface = \"eth0\"\nsrcport = [5000, 4000]",
        ),
        "underlay.srcport",
    );
}

/// `GOOD` with `lines` added to its `[underlay]` section.
fn with_underlay(lines: &str) -> String {
    GOOD.replace(
        "interface = \"eth0\"\n",
        &format!("interface = \"eth0\"\n{lines}\n"),
    )
}

#[test]
fn accept_takes_a_keyword_or_a_list_of_prefixes_and_known() {
    let rule = |lines: &str| {
        Config::parse(&with_underlay(lines))
            .unwrap()
            .underlay
            .accept_rule()
    };
    assert_eq!(rule(""), None, "every source, as the kernel, by default");
    assert_eq!(rule("accept = \"any\""), None);
    assert_eq!(
        rule("accept = \"known\""),
        Some(AcceptRule {
            known: true,
            prefixes: vec![]
        })
    );
    let both = rule("accept = [\"198.18.0.0/24\", \"known\", \"203.0.113.7/32\"]").unwrap();
    assert!(both.known);
    assert_eq!(
        both.prefixes,
        [
            "198.18.0.0/24".parse().unwrap(),
            "203.0.113.7/32".parse().unwrap()
        ]
    );
    let c = Config::parse(GOOD).unwrap();
    assert_eq!(c.underlay.max_remotes, DEFAULT_MAX_REMOTES);
}

/// Bad allow-list entries are refused, naming the entry, before anything changes.
#[test]
fn bad_accept_entries_are_refused_naming_the_entry() {
    let refused = |lines: &str, start: &str| assert_refused(&with_underlay(lines), start);
    refused(
        "accept = [\"198.18.0.0/24\", \"198.18.1.0/33\"]",
        "underlay.accept[1]: `198.18.1.0/33` is neither \"known\" nor an IP prefix",
    );
    refused(
        "accept = [\"198.18.0.1/24\"]",
        "underlay.accept[0]: `198.18.0.1/24` has bits set past its prefix length; the prefix is \
         198.18.0.0/24",
    );
    refused(
        "accept = [\"198.18.0.0\"]",
        "underlay.accept[0]: `198.18.0.0` is neither",
    );
    refused(
        "accept = [\"kown\"]",
        "underlay.accept[0]: `kown` is neither",
    );
    refused(
        "accept = []",
        "underlay.accept: an empty list accepts no VTEP",
    );
    refused(
        "accept = [\"known\", \"any\"]",
        "underlay.accept[1]: \"any\" accepts every source",
    );
    refused(
        "accept = [\"known\", \"known\"]",
        "underlay.accept[1]: `known` is listed twice",
    );
    refused(
        "accept = 5",
        "underlay.accept: expected \"any\", \"known\" or a list",
    );
}

#[test]
fn max_remotes_must_hold_the_configured_remotes() {
    assert_refused(
        &with_underlay("max_remotes = 0"),
        "underlay.max_remotes: must be within 1..=4096",
    );
    // GOOD names one remote VTEP (in the flood list and an FDB entry).
    assert!(Config::parse(&with_underlay("max_remotes = 1")).is_ok());
    let two =
        with_underlay("max_remotes = 1").replace("dst = \"198.18.0.2\"", "dst = \"198.18.0.3\"");
    assert_refused(
        &two,
        "underlay.max_remotes: 1 is less than the 2 remote VTEPs this config names",
    );
}

/// With only known VTEPs accepted, a VNI flooding to a multicast group would drop its members'
/// traffic: their addresses are named nowhere.
#[test]
fn accepting_only_known_vteps_refuses_a_group_vni() {
    let text = r#"
[underlay]
interface = "eth0"
accept = "known"
[[vni]]
id = 100
group = "239.1.1.1"
"#;
    assert_refused(text, "vni[0].group: with underlay.accept = \"known\"");
    let with_prefix = text.replace("\"known\"", "[\"known\", \"198.18.0.0/16\"]");
    assert!(Config::parse(&with_prefix).is_ok());
}

/// Issue 9: a config with no VNI was accepted and started an instance that serves nothing.
#[test]
fn zero_vnis_are_refused() {
    assert_refused(
        "[underlay]\ninterface = \"eth0\"\n",
        "vni: no [[vni]]: an instance serves at least one VNI",
    );
}

/// Issue 9: two stations with one MAC in a VNI were accepted; the FDB holds one entry per MAC,
/// so the first station became unreachable. A static entry for a local station's MAC
/// overrode the station's own entry.
#[test]
fn one_mac_is_one_station_in_a_vni() {
    let second = format!("{GOOD}[[vni.workload]]\nnetns = \"w2\"\nmac = \"02:00:00:00:00:01\"\n");
    assert_refused(
        &second,
        "vni[0].workload[1].mac: 02:00:00:00:00:01 is also vni[0].workload[0].mac in VNI 100",
    );
    let host = GOOD.replace(
        "address = \"192.0.2.1/24\"",
        "address = \"192.0.2.1/24\"\nmac = \"02:00:00:00:00:01\"",
    );
    assert_refused(
        &host,
        "vni[0].workload[0].mac: 02:00:00:00:00:01 is also vni[0].host.mac",
    );
    assert_refused(
        &GOOD.replace("mac = \"02:00:00:00:00:02\"", "mac = \"02:00:00:00:00:01\""),
        "vni[0].fdb[0].mac: 02:00:00:00:00:01 is vni[0].workload[0].mac, a local station of VNI 100",
    );
    let port_entry = GOOD.replace(
        "mac = \"02:00:00:00:00:02\"\ndst = \"198.18.0.2\"",
        "mac = \"02:00:00:00:00:01\"\nport = \"w1-h\"",
    );
    assert_refused(
        &port_entry,
        "vni[0].fdb[0].mac: 02:00:00:00:00:01 is vni[0].workload[0].mac",
    );
    // The same MAC in another VNI is another station.
    let other_vni = format!(
        "{GOOD}[[vni]]\nid = 200\n[[vni.workload]]\nnetns = \"w2\"\nmac = \"02:00:00:00:00:01\"\n"
    );
    assert!(Config::parse(&other_vni).is_ok());
}

/// Issue 9: `vni.host.address = "224.0.0.5/24"` failed half-way through `vtep up` with a bare
/// netlink EINVAL instead of an error naming the field.
#[test]
fn interface_addresses_must_be_station_addresses() {
    for (bad, kind) in [
        ("224.0.0.5/24", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("0.0.0.0/0", "unspecified"),
        ("127.0.0.2/8", "loopback"),
    ] {
        let ip = bad.split('/').next().unwrap();
        assert_refused(
            &GOOD.replace("192.0.2.1/24", bad),
            &format!("vni[0].host.address: {ip} is a {kind} address"),
        );
        assert_refused(
            &GOOD.replace("192.0.2.11/24", bad),
            &format!("vni[0].workload[0].address: {ip} is a {kind} address"),
        );
    }
}

/// Issue 9: `workload.interface = "lo"` failed in `vtep up` with "File exists": every new
/// namespace has a loopback (and the tunnel modules' fallback devices).
#[test]
fn workload_interface_names_that_cannot_be_made_are_refused() {
    let with_ifname = |name: &str| {
        GOOD.replace(
            "netns = \"w1\"",
            &format!("netns = \"w1\"\ninterface = \"{name}\""),
        )
    };
    assert_refused(
        &with_ifname("lo"),
        "vni[0].workload[0].interface: `lo` is the loopback",
    );
    assert_refused(
        &with_ifname("tunl0"),
        "vni[0].workload[0].interface: `tunl0` is a tunnel module's fallback device",
    );
    assert_refused(
        &with_ifname("eth%d"),
        "vni[0].workload[0].interface: `eth%d` is not a valid interface name",
    );
    assert!(Config::parse(&with_ifname("lo0")).is_ok());
}

/// Issue 9: `underlay.local = "127.0.0.1"` was accepted; no remote VTEP can send to it.
#[test]
fn local_must_be_reachable_unicast() {
    for (bad, kind) in [
        ("127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "this network"),
        ("224.0.0.1", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
    ] {
        let text = GOOD.replace(
            "interface = \"eth0\"",
            &format!("interface = \"eth0\"\nlocal = \"{bad}\""),
        );
        let e = error(&text);
        assert!(
            e.starts_with(&format!(
                "underlay.local: {bad} is not a unicast address other VTEPs can reach"
            )) && e.contains(kind),
            "{e}"
        );
    }
}

/// A file of `len` bytes of `byte` with no newline, in the temporary directory; removed on
/// drop.
struct OneLine(std::path::PathBuf);

impl OneLine {
    fn new(tag: &str, byte: u8, len: usize) -> Self {
        let path =
            std::env::temp_dir().join(format!("vtep-config-{tag}-{}.toml", std::process::id()));
        std::fs::write(&path, vec![byte; len]).unwrap();
        Self(path)
    }
}

impl Drop for OneLine {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Issue 9: `vtep check -c /dev/zero` read until out of memory, and a 10 MB one-line config
/// was echoed whole in the error. Input is bounded to 1 MiB and an error quotes 160
/// characters of a line at most.
#[test]
fn input_is_bounded() {
    let start = std::time::Instant::now();
    let e = Config::load(Path::new("/dev/zero"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("larger than 1024 KiB"), "{e}");
    assert!(start.elapsed() < std::time::Duration::from_secs(5));

    let big = OneLine::new("big", b'x', 2 << 20);
    let e = Config::load(&big.0).unwrap_err().to_string();
    assert!(e.contains("larger than 1024 KiB") && e.len() < 300, "{e}");

    // Under the bound, the parse error quotes the line cut short.
    let long = OneLine::new("long", b'x', 900 << 10);
    let e = Config::load(&long.0).unwrap_err().to_string();
    assert!(e.len() < 1000, "{} bytes: {}", e.len(), &e[..1000]);
    assert!(e.contains("xxxxxxxx…"), "{e}");
}

#[test]
fn routes_go_via_a_next_hop_in_an_overlay_subnet() {
    let route = |to: &str, via: &str| format!("{GOOD}[[route]]\nto = \"{to}\"\nvia = \"{via}\"\n");
    let c = Config::parse(&route("10.1.8.0/24", "192.0.2.2")).unwrap();
    assert_eq!(c.routes[0].via, Ipv4Addr::new(192, 0, 2, 2));
    // Only the host interface's subnet (192.0.2.0/24) reaches the overlay.
    let e = error(&route("10.1.8.0/24", "192.0.3.2"));
    assert!(e.starts_with("route[0].via: 192.0.3.2 is in none"), "{e}");
    assert!(e.contains("192.0.2.0/24"), "{e}");
    assert_refused(
        &route("10.1.8.0/24", "192.0.2.1"),
        "route[0].via: 192.0.2.1 is this host's own",
    );
    assert_refused(
        &route("10.1.8.1/24", "192.0.2.2"),
        "route[0].to: `10.1.8.1/24` has bits set",
    );
    let twice = route("10.1.8.0/24", "192.0.2.2")
        + "[[route]]\nto = \"10.1.8.0/24\"\nvia = \"192.0.2.3\"\n";
    assert_refused(&twice, "route[1].to: 10.1.8.0/24 is routed twice");
    assert_refused(
        &format!("{GOOD}[[route]]\nto = \"10.1.8.0/24\"\n"),
        "route[0]: missing field `via`",
    );
    // Without any host address there is no overlay subnet to route through.
    let no_host = GOOD.replace("[vni.host]\naddress = \"192.0.2.1/24\"\n", "");
    let e = error(&format!(
        "{no_host}[[route]]\nto = \"10.1.8.0/24\"\nvia = \"192.0.2.2\"\n"
    ));
    assert!(e.contains("no [vni.host] has an address"), "{e}");
}

#[test]
fn a_workload_gateway_is_another_address_of_its_subnet() {
    let with = |gw: &str| {
        GOOD.replace(
            "mac = \"02:00:00:00:00:01\"\n",
            &format!("mac = \"02:00:00:00:00:01\"\ngateway = \"{gw}\"\n"),
        )
    };
    assert!(Config::parse(&with("192.0.2.1")).is_ok());
    assert_refused(
        &with("192.0.3.1"),
        "vni[0].workload[0].gateway: 192.0.3.1 is not another address",
    );
    assert_refused(
        &with("192.0.2.11"),
        "vni[0].workload[0].gateway: 192.0.2.11 is not another address",
    );
    let no_address = with("192.0.2.1").replace("address = \"192.0.2.11/24\"\n", "");
    assert_refused(&no_address, "vni[0].workload[0].gateway: a gateway needs");
}

#[test]
fn xdp_defaults_to_off_and_takes_the_four_modes() {
    let xdp = |lines: &str| Config::parse(&with_underlay(lines)).unwrap().underlay.xdp;
    assert_eq!(xdp(""), XdpSetting::Off);
    assert_eq!(xdp("xdp = \"off\""), XdpSetting::Off);
    assert_eq!(xdp("xdp = \"native\""), XdpSetting::Native);
    assert_eq!(xdp("xdp = \"generic\""), XdpSetting::Generic);
    assert_eq!(xdp("xdp = \"auto\""), XdpSetting::Auto);
}

#[test]
fn unknown_xdp_mode_is_refused_naming_the_field_and_the_modes() {
    let e = error(&with_underlay("xdp = \"driver\""));
    assert!(
        e.starts_with("underlay.xdp: unknown variant `driver`"),
        "{e}"
    );
    assert!(e.contains("`off`, `native`, `generic`, `auto`"), "{e}");
}

const IPV6: &str = r#"
name = "a"
[underlay]
interface = "eth0"
local = "2001:db8::1"
accept = ["2001:db8::/64", "known"]
[[vni]]
id = 100
remotes = ["2001:db8::2"]
[[vni.fdb]]
mac = "02:00:00:00:00:02"
dst = "2001:db8::3"
[[vni]]
id = 101
group = "ff0e::101"
"#;

#[test]
fn an_ipv6_underlay_takes_ipv6_vteps_groups_and_prefixes() {
    let c = Config::parse(IPV6).unwrap();
    assert!(c.underlay_ipv6());
    assert!(
        !c.underlay.udp6_zero_csum_tx,
        "checksums are sent by default"
    );
    assert_eq!(
        c.vnis[0].remotes[0],
        "2001:db8::2".parse::<IpAddr>().unwrap()
    );
    let rule = c.underlay.accept_rule().unwrap();
    assert_eq!(rule.prefixes[0].to_string(), "2001:db8::/64");
    // Without `local`, the named VTEPs give the family.
    let derived = IPV6.replace("local = \"2001:db8::1\"\n", "");
    assert!(Config::parse(&derived).unwrap().underlay_ipv6());
    assert!(!Config::parse(GOOD).unwrap().underlay_ipv6());
}

#[test]
fn one_address_family_per_instance_naming_the_field() {
    let cases = [
        (
            "remotes = [\"2001:db8::2\"]",
            "remotes = [\"198.18.0.2\"]",
            "vni[0].remotes[0]: 198.18.0.2 is an IPv4 address and this instance's underlay is IPv6",
        ),
        (
            "dst = \"2001:db8::3\"",
            "dst = \"198.18.0.3\"",
            "vni[0].fdb[0].dst: 198.18.0.3 is an IPv4 address",
        ),
        (
            "group = \"ff0e::101\"",
            "group = \"239.1.1.1\"",
            "vni[1].group: 239.1.1.1 is an IPv4 address",
        ),
        (
            "\"2001:db8::/64\"",
            "\"198.18.0.0/24\"",
            "underlay.accept[0]: 198.18.0.0 is an IPv4 address",
        ),
    ];
    for (from, to, start) in cases {
        assert_refused(&IPV6.replace(from, to), start);
    }
    // And the other way round: IPv6 on an IPv4 underlay.
    let v4 = GOOD.replace(
        "interface = \"eth0\"",
        "interface = \"eth0\"\nlocal = \"198.18.0.1\"",
    );
    assert_refused(
        &v4.replace("remotes = [\"198.18.0.2\"]", "remotes = [\"2001:db8::2\"]"),
        "vni[0].remotes[0]: 2001:db8::2 is an IPv6 address and this instance's underlay is IPv4",
    );
    // Without `local`, one IPv6 VTEP makes the underlay IPv6: the IPv4 ones are named.
    assert_refused(
        &GOOD.replace("remotes = [\"198.18.0.2\"]", "remotes = [\"2001:db8::2\"]"),
        "vni[0].fdb[0].dst: 198.18.0.2 is an IPv4 address and this instance's underlay is IPv6",
    );
}

#[test]
fn ipv6_vteps_must_be_unicast_with_a_scope_beyond_the_link() {
    for (bad, kind) in [
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("ff0e::1", "multicast"),
        ("fe80::2", "link-local"),
        ("::ffff:198.18.0.2", "IPv4-mapped"),
    ] {
        assert_refused(
            &IPV6.replace(
                "remotes = [\"2001:db8::2\"]",
                &format!("remotes = [\"{bad}\"]"),
            ),
            &format!("vni[0].remotes[0]: {bad} is not a unicast address ({kind}"),
        );
    }
    assert_refused(
        &IPV6.replace("local = \"2001:db8::1\"", "local = \"fe80::1\""),
        "underlay.local: fe80::1 is not a unicast address other VTEPs can reach (link-local)",
    );
    assert_refused(
        &IPV6.replace("group = \"ff0e::101\"", "group = \"ff02::101\""),
        "vni[1].group: ff02::101 is interface- or link-local in scope",
    );
    assert_refused(
        &IPV6.replace("group = \"ff0e::101\"", "group = \"2001:db8::9\""),
        "vni[1].group: 2001:db8::9 is not a multicast address (ff00::/8)",
    );
}

#[test]
fn metrics_section_is_optional_and_checked() {
    assert!(Config::parse(GOOD).unwrap().metrics.is_none());
    let with = |section: &str| format!("{GOOD}\n[metrics]\n{section}\n");
    let c = Config::parse(&with("listen = \"127.0.0.1:9470\"")).unwrap();
    assert_eq!(c.metrics.unwrap().addr(), "127.0.0.1:9470".parse().unwrap());
    assert_refused(
        &with("listen = \"localhost:9470\""),
        "metrics.listen: `localhost:9470` is not ADDRESS:PORT",
    );
    assert_refused(&with("listen = \"127.0.0.1:0\""), "metrics.listen: ");
    assert_refused(&with("listen = 9470"), "metrics.listen: ");
    assert_refused(&with(""), "metrics: missing field `listen`");
    let e = error(&with("listen = \"127.0.0.1:9470\"\npath = \"/m\""));
    assert!(e.contains("unknown field `path`"), "{e}");
}
