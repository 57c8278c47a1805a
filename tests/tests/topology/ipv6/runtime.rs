//! A running instance on an IPv6 underlay: `vtep fdb add` and `append` take IPv6 VTEPs and
//! refuse IPv4 ones, `fdb show` and `vni show` print IPv6 VTEPs in their usual text form, and
//! vtep keeps the IPv6 VTEPs it names resolved (managed neighbour entries on the underlay, and
//! the datapath's next-hop cache).

use std::time::{Duration, Instant};

use serde_json::Value;
use vtep_tests::{
    lab::{Vtep, cached_next_hop, link, managed_neighbours},
    output::{fdb_row, text},
    packet::mac,
};

use super::{B6, s2_ipv6};
use crate::support::{S2, assert_ping};

const STATION: &str = "02:00:00:00:0d:01";
const ZEROS: &str = "00:00:00:00:00:00";
const C6: &str = "2001:db8::3";

/// `vtep fdb VERB MAC dst DST vni 200 -n NAME`.
fn fdb(vtep: &Vtep, name: &str, verb: &str, mac: &str, dst: &str) -> std::process::Output {
    vtep.cli(&["fdb", verb, mac, "dst", dst, "vni", "200", "-n", name])
}

#[test]
fn ipv6_runtime_fdb_add_and_append_take_ipv6_vteps() {
    let S2 {
        mut lab,
        a,
        b,
        a1,
        va,
        name_a,
        ..
    } = s2_ipv6("");
    let v = lab.vtep(va);
    for (verb, mac) in [("add", STATION), ("append", ZEROS)] {
        let out = fdb(v, &name_a, verb, mac, C6);
        assert!(
            out.status.success(),
            "fdb {verb} {mac} dst {C6}: {}",
            text(&out.stderr)
        );
    }
    let rows = v.fdb(&name_a);
    let row = fdb_row(&rows, STATION, 200).unwrap_or_else(|| panic!("no {STATION}: {rows:?}"));
    assert_eq!(row["dst"], C6, "{row}");
    let vnis: Value = serde_json::from_slice(&v.cli(&["vni", "show", "-j", "-n", &name_a]).stdout)
        .expect("vni show JSON");
    assert_eq!(vnis[0]["remotes"], serde_json::json!([B6, C6]), "{vnis}");

    // An IPv4 VTEP has no place on an IPv6 underlay: refused, naming `dst`.
    let out = fdb(v, &name_a, "add", "02:00:00:00:0d:02", "198.18.0.3");
    assert!(!out.status.success(), "fdb add with an IPv4 dst succeeded");
    assert!(text(&out.stderr).contains("dst"), "{}", text(&out.stderr));

    // The IPv6 VTEPs named are kept resolved: managed neighbour entries on the underlay.
    let deadline = Instant::now() + Duration::from_secs(4);
    loop {
        let managed = managed_neighbours(&a);
        if [B6, C6].iter().all(|m| managed.iter().any(|n| n == m)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{B6} and {C6} not kept resolved: managed {managed:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The overlay still works with the extra flood remote (which does not answer).
    assert_ping(&a1, "192.0.2.21", 2);
    // The datapath's next-hop cache holds b's underlay MAC under its IPv6 address.
    let b_mac = mac(link(&b, "eth0")["address"].as_str().expect("a MAC"));
    let a_eth0 = link(&a, "eth0")["ifindex"].as_u64().expect("an ifindex") as u32;
    assert_eq!(cached_next_hop(&name_a, B6), Some((a_eth0, b_mac)));
}
