//! Namespace tests of the commands that read and change a running instance: `vtep fdb add`,
//! `replace` and `del` (issue 4: change the FDB without restarting) and `vtep vni show`.
//!
//! Like the topology tests, every test builds its own hosts with a [`Lab`] (unique name prefix,
//! everything removed on drop) and runs the real `vtep` binary.
//!
//! Run as root after building vtep: `cargo build -p vtep-user && cargo test -p vtep-tests
//! --test cli -- --test-threads=2`.

use std::{net::Ipv4Addr, path::Path, process::Output, time::Duration};

use serde_json::{Value, json};
use vtep_tests::{
    configs::{self, fdb, text, vni, workload},
    lab::{Capture, Lab, ip, ping},
};

const ADDR_A: &str = "198.18.0.1";
const ADDR_B: &str = "198.18.0.2";
const VNI: u32 = 100;

const MAC_A1: &str = "02:00:00:00:0a:01";
const MAC_B1: &str = "02:00:00:00:0b:01";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn header(name: &str, top_extra: &str) -> String {
    configs::header(name, top_extra, "")
}

/// `vtep ARGS` against the instance of vtep `id` of `lab`, by name.
fn vtep(lab: &mut Lab, id: usize, name: &str, args: &[&str]) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-n", name]);
    lab.vtep(id).cli(&all)
}

/// Runs `vtep ARGS` and asserts it succeeded silently.
#[track_caller]
fn vtep_ok(lab: &mut Lab, id: usize, name: &str, args: &[&str]) {
    let out = vtep(lab, id, name, args);
    assert!(
        out.status.success(),
        "vtep {} failed: {}",
        args.join(" "),
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "", "vtep {} printed", args.join(" "));
}

/// `vtep fdb show -j` exactly as printed.
fn fdb_show(lab: &mut Lab, id: usize, name: &str) -> Vec<u8> {
    let out = vtep(lab, id, name, &["fdb", "show", "-j"]);
    assert!(out.status.success(), "fdb show: {}", text(&out.stderr));
    out.stdout
}

/// The row of `mac` in VNI `vni` of `vtep fdb show -j`, if any.
fn fdb_row(show: &[u8], mac: &str, vni: u32) -> Option<Value> {
    let rows: Value = serde_json::from_slice(show).expect("fdb show JSON");
    rows.as_array()
        .expect("fdb rows")
        .iter()
        .find(|r| r["mac"] == mac && r["vni"] == vni)
        .cloned()
}

/// One counter of VNI `vni` from `vtep stats -j`.
fn vni_stat(lab: &mut Lab, id: usize, name: &str, vni: u32, key: &str) -> u64 {
    let stats = lab.vtep(id).stats(name);
    stats["vnis"]
        .as_array()
        .expect("stats.vnis")
        .iter()
        .find(|v| v["vni"] == vni)
        .unwrap_or_else(|| panic!("VNI {vni} missing from stats: {stats}"))[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing from stats: {stats}"))
}

/// Drop counter `reason` from `vtep stats -j`.
fn drops(lab: &mut Lab, id: usize, name: &str, reason: &str) -> u64 {
    let stats = lab.vtep(id).stats(name);
    stats["drops"][reason]
        .as_u64()
        .unwrap_or_else(|| panic!("drop reason {reason} missing from stats: {stats}"))
}

/// A permanent neighbour entry in workload `ns`, so its unicast frames need no ARP: what the
/// datapath does with unicast is then all that decides whether a ping gets through.
fn static_neighbour(ns: &str, addr: &str, mac: &str) {
    ip(&[
        "-n",
        ns,
        "neigh",
        "replace",
        addr,
        "lladdr",
        mac,
        "dev",
        "eth0",
        "nud",
        "permanent",
    ]);
}

/// True when `count` pings from `ns` to `addr` are all answered; quick to fail.
fn ping_fast(ns: &str, addr: &str, count: u32) -> bool {
    vtep_tests::lab::ping_with(ns, addr, count, "0.2", 1)
}

/// Outer destination, UDP destination port, VNI and inner destination MAC of a captured
/// Ethernet/IPv4/UDP/VXLAN frame.
fn vxlan_summary(f: &[u8]) -> Option<(Ipv4Addr, u16, u32, [u8; 6])> {
    if f.len() < 14 + 20 + 8 + 8 + 14 || f[12..14] != [0x08, 0x00] || f[14 + 9] != 17 {
        return None;
    }
    let ihl = usize::from(f[14] & 0x0f) * 4;
    let udp = 14 + ihl;
    let vx = udp + 8;
    if f.len() < vx + 8 + 14 {
        return None;
    }
    let dst = Ipv4Addr::new(f[14 + 16], f[14 + 17], f[14 + 18], f[14 + 19]);
    let dport = u16::from_be_bytes([f[udp + 2], f[udp + 3]]);
    let vni = u32::from_be_bytes([0, f[vx + 4], f[vx + 5], f[vx + 6]]);
    let inner_dst = f[vx + 8..vx + 14].try_into().unwrap();
    Some((dst, dport, vni, inner_dst))
}

fn mac_bytes(s: &str) -> [u8; 6] {
    let mut out = [0u8; 6];
    for (b, p) in out.iter_mut().zip(s.split(':')) {
        *b = u8::from_str_radix(p, 16).expect("MAC");
    }
    out
}

// ---------------------------------------------------------------------------------------------
// fdb add / del steer traffic
// ---------------------------------------------------------------------------------------------

/// Two hosts with one workload each and no way for unicast to cross: no FDB entry for the far
/// workload and no flood remotes. `vtep fdb add` on both hosts makes the ping work, as unicast
/// VXLAN to the remote VTEP; the entry survives `vtep up`'s periodic reconcile; `vtep fdb del`
/// takes it away again.
#[test]
fn fdb_add_steers_unicast_to_the_remote_and_del_removes_it() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    let (a1, b1) = (lab.name("a1"), lab.name("b1"));
    let (name_a, name_b) = (lab.name("va"), lab.name("vb"));
    let va = lab.start_vtep(
        &a,
        &(header(&name_a, "") + &vni(VNI, 4789, &[]) + &workload(&a1, "192.0.2.11/24", MAC_A1)),
    );
    let vb = lab.start_vtep(
        &b,
        &(header(&name_b, "") + &vni(VNI, 4789, &[]) + &workload(&b1, "192.0.2.21/24", MAC_B1)),
    );
    static_neighbour(&a1, "192.0.2.21", MAC_B1);
    static_neighbour(&b1, "192.0.2.11", MAC_A1);

    // Without an entry, a1's frames to b1 are unknown unicast, and the VNI has nowhere to
    // flood them: no remote VTEP, no other local port.
    let encap_before = vni_stat(&mut lab, va, &name_a, VNI, "encap_packets");
    let no_target_before = drops(&mut lab, va, &name_a, "no_flood_target");
    assert!(
        !ping_fast(&a1, "192.0.2.21", 2),
        "a1 reached b1 without an FDB entry"
    );
    assert_eq!(
        vni_stat(&mut lab, va, &name_a, VNI, "encap_packets"),
        encap_before,
        "something was encapsulated without an FDB entry or flood remote"
    );
    assert!(
        drops(&mut lab, va, &name_a, "no_flood_target") >= no_target_before + 2,
        "the echo requests were not handled as unknown unicast"
    );

    let show_before = fdb_show(&mut lab, va, &name_a);
    assert!(fdb_row(&show_before, MAC_B1, VNI).is_none());
    vtep_ok(
        &mut lab,
        va,
        &name_a,
        &["fdb", "add", MAC_B1, "dst", ADDR_B, "vni", "100"],
    );
    // The other keyword order, as `bridge fdb` allows.
    vtep_ok(
        &mut lab,
        vb,
        &name_b,
        &["fdb", "add", MAC_A1, "vni", "100", "dst", ADDR_A],
    );

    // `fdb show` has the new entry, marked as made at run time; the configured ones are not.
    let show = fdb_show(&mut lab, va, &name_a);
    let row = fdb_row(&show, MAC_B1, VNI).expect("added entry missing from fdb show");
    assert_eq!(
        row,
        json!({"mac": MAC_B1, "vni": VNI, "dst": ADDR_B, "state": "static", "origin": "runtime"})
    );
    let local = fdb_row(&show, MAC_A1, VNI).expect("a1 missing from fdb show");
    assert_eq!(local["port"], format!("{a1}-h"));
    assert_eq!(local["origin"], "config");

    // Unicast now crosses as VXLAN to B's address, one packet per echo request, not flooded.
    let encap_before = vni_stat(&mut lab, va, &name_a, VNI, "encap_packets");
    let decap_b_before = vni_stat(&mut lab, vb, &name_b, VNI, "decap_packets");
    let cap = Capture::start(&lab, &a, "eth0", "udp dst port 4789");
    assert!(
        ping(&a1, "192.0.2.21", 5),
        "a1 does not reach b1 after fdb add"
    );
    let frames = cap.frames();
    let to_b: Vec<_> = frames
        .iter()
        .filter_map(|f| vxlan_summary(f))
        .filter(|&(dst, ..)| dst == ADDR_B.parse::<Ipv4Addr>().unwrap())
        .collect();
    let unicast = to_b
        .iter()
        .filter(|&&(_, dport, vni, inner)| {
            dport == 4789 && vni == VNI && inner == mac_bytes(MAC_B1)
        })
        .count();
    assert!(
        unicast >= 5,
        "{unicast} VXLAN frames to {ADDR_B} for {MAC_B1} on A's underlay, expected 5: {to_b:?}"
    );
    assert!(vni_stat(&mut lab, va, &name_a, VNI, "encap_packets") >= encap_before + 5);
    assert!(vni_stat(&mut lab, vb, &name_b, VNI, "decap_packets") >= decap_b_before + 5);

    // `vtep up` re-checks its state every second; runtime entries outlive that.
    std::thread::sleep(Duration::from_millis(2500));
    let show = fdb_show(&mut lab, va, &name_a);
    assert!(
        fdb_row(&show, MAC_B1, VNI).is_some(),
        "the running instance dropped the added entry: {}",
        text(&show)
    );
    assert!(ping(&a1, "192.0.2.21", 2), "a1 -> b1 after the reconcile");

    // Delete: the FDB is back to what it was, and unicast stops crossing.
    vtep_ok(&mut lab, va, &name_a, &["fdb", "del", MAC_B1, "vni", "100"]);
    let show_after = fdb_show(&mut lab, va, &name_a);
    assert!(fdb_row(&show_after, MAC_B1, VNI).is_none());
    assert_eq!(
        text(&show_after),
        text(&show_before),
        "fdb show after del differs from before add"
    );
    let encap_before = vni_stat(&mut lab, va, &name_a, VNI, "encap_packets");
    assert!(
        !ping_fast(&a1, "192.0.2.21", 2),
        "a1 still reaches b1 after fdb del"
    );
    assert_eq!(
        vni_stat(&mut lab, va, &name_a, VNI, "encap_packets"),
        encap_before
    );

    // Deleting it again is an error.
    let out = vtep(&mut lab, va, &name_a, &["fdb", "del", MAC_B1, "vni", "100"]);
    assert!(!out.status.success(), "second del succeeded");
    assert!(
        text(&out.stderr).contains(&format!("no entry for {MAC_B1} in VNI 100")),
        "{}",
        text(&out.stderr)
    );

    // The info file the commands read goes with the instance.
    let info = format!("/run/vtep/{name_a}.info.json");
    assert!(Path::new(&info).exists(), "{info} missing while running");
    lab.vtep(va).stop();
    assert!(!Path::new(&info).exists(), "{info} left after stop");
}

// ---------------------------------------------------------------------------------------------
// Refusals change nothing
// ---------------------------------------------------------------------------------------------

/// A host with one VNI: a workload (a local entry), a configured remote entry and a flood
/// remote. The instance's local address is not in the config: vtep takes it from eth0.
struct OneHost {
    lab: Lab,
    id: usize,
    name: String,
    a1: String,
}

const MAC_CFG: &str = "02:00:00:00:0c:01";

fn one_host(top_extra: &str) -> OneHost {
    let mut lab = Lab::new();
    let (a, _b) = lab.two_hosts();
    let a1 = lab.name("a1");
    let name = lab.name("va");
    let cfg = header(&name, top_extra)
        + &vni(VNI, 4789, &[ADDR_B])
        + &workload(&a1, "192.0.2.11/24", MAC_A1)
        + &fdb(MAC_CFG, ADDR_B);
    let id = lab.start_vtep(&a, &cfg);
    OneHost { lab, id, name, a1 }
}

/// Runs `vtep ARGS` that must be refused: non-zero exit, `problem` in its error, nothing on
/// stdout, and `vtep fdb show -j` byte for byte the same before and after.
#[track_caller]
fn assert_refused(h: &mut OneHost, args: &[&str], problem: &str) {
    let before = fdb_show(&mut h.lab, h.id, &h.name);
    let out = vtep(&mut h.lab, h.id, &h.name, args);
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success(),
        "vtep {} succeeded; stderr: {stderr}",
        args.join(" ")
    );
    assert!(
        stderr.contains(problem),
        "vtep {}: error does not say `{problem}`: {stderr}",
        args.join(" ")
    );
    assert_eq!(text(&out.stdout), "", "vtep {} printed", args.join(" "));
    let after = fdb_show(&mut h.lab, h.id, &h.name);
    assert_eq!(
        text(&after),
        text(&before),
        "vtep {} changed the FDB",
        args.join(" ")
    );
}

#[test]
fn fdb_add_refuses_bad_input_and_changes_nothing() {
    let mut h = one_host("");
    const NEW: &str = "02:00:00:00:0d:01";
    let add = |mac: &'static str, dst: &'static str, vni: &'static str| {
        vec!["fdb", "add", mac, "dst", dst, "vni", vni]
    };
    for (args, problem) in [
        // MACs
        (
            add("02:00:00:00:0d", "198.18.0.3", "100"),
            "mac: `02:00:00:00:0d` is not a MAC address",
        ),
        (
            add("02:00:00:00:0d:zz", "198.18.0.3", "100"),
            "mac: `02:00:00:00:0d:zz` is not a MAC address",
        ),
        (
            add("01:00:5e:00:00:01", "198.18.0.3", "100"),
            "mac: 01:00:5e:00:00:01 is a group address",
        ),
        (
            add("ff:ff:ff:ff:ff:ff", "198.18.0.3", "100"),
            "mac: ff:ff:ff:ff:ff:ff is a group address",
        ),
        (
            add("00:00:00:00:00:00", "198.18.0.3", "100"),
            "mac: 00:00:00:00:00:00 is not a station address",
        ),
        // VNIs
        (
            add(NEW, "198.18.0.3", "101"),
            "vni: VNI 101 is not configured in instance",
        ),
        (
            add(NEW, "198.18.0.3", "16777216"),
            "vni: 16777216 is outside 1..=16777215",
        ),
        (add(NEW, "198.18.0.3", "ten"), "vni: `ten` is not a VNI"),
        // Remote VTEPs
        (
            add(NEW, "0.0.0.0", "100"),
            "dst: 0.0.0.0 is not a unicast address",
        ),
        (
            add(NEW, "239.1.1.1", "100"),
            "dst: 239.1.1.1 is not a unicast address",
        ),
        (
            add(NEW, "255.255.255.255", "100"),
            "dst: 255.255.255.255 is not a unicast address",
        ),
        (
            add(NEW, ADDR_A, "100"),
            "dst: 198.18.0.1 is the local VTEP address",
        ),
        (
            add(NEW, "198.18.0", "100"),
            "dst: `198.18.0` is not an IPv4 address",
        ),
        // Syntax
        (
            vec![
                "fdb",
                "add",
                NEW,
                "dst",
                "198.18.0.3",
                "vni",
                "100",
                "dev",
                "x",
            ],
            "`dev` is not an argument of `vtep fdb add`",
        ),
        (vec!["fdb", "add", NEW, "vni", "100"], "`dst IP` is missing"),
        // Existing entries: a different target needs `replace`; local ones stay as configured.
        (
            add(MAC_CFG, "198.18.0.3", "100"),
            "02:00:00:00:0c:01 in VNI 100 already goes to 198.18.0.2; `vtep fdb replace`",
        ),
        (
            add(MAC_A1, "198.18.0.3", "100"),
            "is a station behind local port",
        ),
        (
            vec!["fdb", "replace", MAC_A1, "dst", "198.18.0.3", "vni", "100"],
            "is a station behind local port",
        ),
        (
            vec!["fdb", "del", MAC_A1, "vni", "100"],
            "is a station behind local port",
        ),
        (
            vec!["fdb", "del", NEW, "vni", "100"],
            "mac: no entry for 02:00:00:00:0d:01 in VNI 100",
        ),
        (
            vec!["fdb", "del", MAC_CFG, "vni", "101"],
            "vni: VNI 101 is not configured",
        ),
    ] {
        assert_refused(&mut h, &args, problem);
    }
    // The local-port refusal names the port.
    let out = vtep(
        &mut h.lab,
        h.id,
        &h.name,
        &["fdb", "del", MAC_A1, "vni", "100"],
    );
    assert!(
        text(&out.stderr).contains(&format!("local port `{}-h`", h.a1)),
        "{}",
        text(&out.stderr)
    );

    // Adding what is already there is a silent success that changes nothing, also for a
    // configured entry (which stays a configured one).
    let before = fdb_show(&mut h.lab, h.id, &h.name);
    vtep_ok(
        &mut h.lab,
        h.id,
        &h.name,
        &["fdb", "add", MAC_CFG, "dst", ADDR_B, "vni", "100"],
    );
    assert_eq!(text(&fdb_show(&mut h.lab, h.id, &h.name)), text(&before));
}

/// `replace` points an entry elsewhere (configured ones too: they become runtime entries),
/// `add` repeats silently, and `del` works on any remote entry.
#[test]
fn fdb_replace_moves_entries_and_del_removes_configured_ones() {
    let mut h = one_host("");
    const NEW: &str = "02:00:00:00:0d:01";
    let (lab, id, name) = (&mut h.lab, h.id, h.name.clone());
    let row = |lab: &mut Lab, mac: &str| fdb_row(&fdb_show(lab, id, &name), mac, VNI);

    vtep_ok(
        lab,
        id,
        &name,
        &["fdb", "replace", MAC_CFG, "dst", "198.18.0.3", "vni", "100"],
    );
    let r = row(lab, MAC_CFG).expect("replaced entry missing");
    assert_eq!(
        (&r["dst"], &r["origin"]),
        (&json!("198.18.0.3"), &json!("runtime"))
    );

    // `replace` of a missing entry adds it; `add` of the same again is a no-op.
    vtep_ok(
        lab,
        id,
        &name,
        &["fdb", "replace", NEW, "dst", ADDR_B, "vni", "100"],
    );
    let before = fdb_show(lab, id, &name);
    vtep_ok(
        lab,
        id,
        &name,
        &["fdb", "add", NEW, "dst", ADDR_B, "vni", "100"],
    );
    assert_eq!(text(&fdb_show(lab, id, &name)), text(&before));
    assert_eq!(row(lab, NEW).expect("new entry")["origin"], "runtime");

    vtep_ok(lab, id, &name, &["fdb", "delete", MAC_CFG, "vni", "100"]);
    vtep_ok(lab, id, &name, &["fdb", "del", NEW, "vni", "100"]);
    assert!(row(lab, MAC_CFG).is_none() && row(lab, NEW).is_none());
    // Only the workload's own entry is left.
    let rows: Value = serde_json::from_slice(&fdb_show(lab, id, &name)).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
}

/// A full FDB is reported as such, and the failed add leaves the FDB as it was.
#[test]
fn fdb_add_to_a_full_fdb_is_refused() {
    // Room for the workload's entry, the configured one and one more.
    let mut h = one_host("fdb_size = 3\n");
    vtep_ok(
        &mut h.lab,
        h.id,
        &h.name,
        &[
            "fdb",
            "add",
            "02:00:00:00:0d:01",
            "dst",
            ADDR_B,
            "vni",
            "100",
        ],
    );
    assert_refused(
        &mut h,
        &[
            "fdb",
            "add",
            "02:00:00:00:0d:02",
            "dst",
            ADDR_B,
            "vni",
            "100",
        ],
        "is full (3 entries)",
    );
    // Replacing an entry in a full FDB needs no room.
    vtep_ok(
        &mut h.lab,
        h.id,
        &h.name,
        &[
            "fdb",
            "replace",
            "02:00:00:00:0d:01",
            "dst",
            "198.18.0.3",
            "vni",
            "100",
        ],
    );

    // After a crash, `vtep down` also removes the info file the commands read.
    let info = format!("/run/vtep/{}.info.json", h.name);
    h.lab.vtep(h.id).kill();
    assert!(Path::new(&info).exists(), "{info} missing after a crash");
    let out = vtep(&mut h.lab, h.id, &h.name, &["down"]);
    assert!(out.status.success(), "vtep down: {}", text(&out.stderr));
    assert!(!Path::new(&info).exists(), "{info} left after vtep down");
}

// ---------------------------------------------------------------------------------------------
// vni show
// ---------------------------------------------------------------------------------------------

#[test]
fn vni_show_lists_ports_remotes_and_fdb_counts() {
    let mut lab = Lab::new();
    let (a, _b) = lab.two_hosts();
    let (a1, a2, a3) = (lab.name("a1"), lab.name("a2"), lab.name("a3"));
    let name = lab.name("va");
    let cfg = header(&name, "")
        + &vni(100, 4789, &[ADDR_B, "198.18.0.3"])
        + "[vni.host]\ninterface = \"hv100\"\naddress = \"192.0.2.1/24\"\n\n"
        + &workload(&a1, "192.0.2.11/24", MAC_A1)
        + &workload(&a2, "192.0.2.12/24", "02:00:00:00:0a:02")
        + &fdb(MAC_B1, ADDR_B)
        + &vni(5000, 8472, &[])
        + &workload(&a3, "198.51.100.13/24", "02:00:00:00:0a:03");
    let id = lab.start_vtep(&a, &cfg);

    let show = |lab: &mut Lab| -> Value {
        let out = vtep(lab, id, &name, &["vni", "show", "-j"]);
        assert!(out.status.success(), "vni show: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("vni show JSON")
    };
    let mut ports_100 = vec!["hv100p".to_string(), format!("{a1}-h"), format!("{a2}-h")];
    ports_100.sort();
    let expected = |fdb_5000: u64| {
        json!([
            {
                "vni": 100,
                "dstport": 4789,
                "ports": ports_100,
                "remotes": [ADDR_B, "198.18.0.3"],
                // The host interface, two workloads, one configured remote entry.
                "fdb_entries": 4
            },
            {
                "vni": 5000,
                "dstport": 8472,
                "ports": [format!("{a3}-h")],
                "remotes": [],
                "fdb_entries": fdb_5000
            }
        ])
    };
    assert_eq!(show(&mut lab), expected(1));

    // The count follows runtime changes.
    vtep_ok(
        &mut lab,
        id,
        &name,
        &[
            "fdb",
            "add",
            "02:00:00:00:0d:01",
            "dst",
            ADDR_B,
            "vni",
            "5000",
        ],
    );
    assert_eq!(show(&mut lab), expected(2));

    // The table form has a row per VNI with the same facts.
    let out = vtep(&mut lab, id, &name, &["vni", "show"]);
    assert!(out.status.success(), "vni show: {}", text(&out.stderr));
    let table = text(&out.stdout);
    let lines: Vec<Vec<&str>> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        vec![
            vec![
                "100",
                "4789",
                "4",
                &ports_100.join(","),
                &format!("{ADDR_B},198.18.0.3")
            ],
            vec!["5000", "8472", "2", &format!("{a3}-h"), "-"],
        ],
        "{table}"
    );
}
