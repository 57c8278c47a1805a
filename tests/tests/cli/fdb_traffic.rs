//! `vtep fdb add` and `del` steer traffic of a running instance (issue 4: change the FDB
//! without restarting).

use std::{net::Ipv4Addr, path::Path, time::Duration};

use serde_json::json;
use vtep_tests::{
    configs::{vni, workload},
    lab::{Lab, ping},
    output::text,
    packet::{eth_destination, mac, parse_vxlan},
};

use crate::{
    ADDR_A, ADDR_B, MAC_A1, MAC_B1, VNI, header,
    support::{
        drops, fdb_cmd, fdb_row, fdb_show, ping_fast, static_neighbour, vni_stat, vtep, vtep_ok,
    },
};

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
        &fdb_cmd("add", MAC_B1, ADDR_B, "100"),
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
    let cap = lab.capture(&a, "eth0", "udp dst port 4789");
    assert!(
        ping(&a1, "192.0.2.21", 5),
        "a1 does not reach b1 after fdb add"
    );
    let frames = cap.frames();
    // Outer destination, UDP destination port, VNI and inner destination MAC.
    let to_b: Vec<_> = frames
        .iter()
        .filter_map(|f| parse_vxlan(f).ok())
        .map(|v| {
            (
                v.dst(),
                v.udp.destination_port,
                v.vni(),
                eth_destination(v.inner),
            )
        })
        .filter(|&(dst, ..)| dst == ADDR_B.parse::<Ipv4Addr>().unwrap())
        .collect();
    let unicast = to_b
        .iter()
        .filter(|&&(_, dport, vni, inner)| {
            dport == 4789 && vni == VNI && inner == Some(mac(MAC_B1))
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
