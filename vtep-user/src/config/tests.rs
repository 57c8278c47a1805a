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
