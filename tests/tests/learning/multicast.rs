//! A multicast underlay group instead of a flood list.

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use vtep_tests::{
    configs::{header, vni},
    lab::{Lab, ping},
    packet::{BROADCAST, Vxlan, eth_destination, parse_vxlan},
};

use crate::{
    ADDR, IP, VNI,
    support::{quiet, quiet_workload},
};

const GROUP: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);

#[test]
fn multicast_group_between_three_hosts() {
    let mut lab = Lab::new();
    let hosts = lab.three_hosts();
    quiet(&lab, &hosts);
    for (i, h) in hosts.iter().enumerate() {
        // No remotes: the group replaces the flood list.
        let cfg = header(&lab.name(&format!("v{i}")), "", "")
            + &vni(VNI, 4789, &[])
            + "group = \"239.1.1.1\"\n\n"
            + &quiet_workload(&lab, i);
        lab.start_vtep(h, &cfg);
    }
    let w0 = lab.name("w0");
    let cap = lab.capture(
        &hosts[0],
        "eth0",
        &format!("udp dst port 4789 and src host {}", ADDR[0]),
    );
    // First contact: b and c learn a's VTEP from the group's traffic and resolve it (up to a
    // second), so their first answer may be lost and the workload's ARP retry gets through.
    for target in [IP[1], IP[2]] {
        let deadline = Instant::now() + Duration::from_secs(6);
        while !ping(&w0, target, 1) {
            assert!(Instant::now() < deadline, "a -> {target} over the group");
        }
    }
    assert!(ping(&w0, IP[1], 2), "a -> b over the group");
    assert!(ping(&w0, IP[2], 2), "a -> c over the group");
    let frames = cap.frames();
    let packets: Vec<Vxlan> = frames
        .iter()
        .map(|f| parse_vxlan(f).unwrap_or_else(|e| panic!("not VXLAN: {e}: {f:02x?}")))
        .collect();
    // Broadcasts (a's ARP requests) went to the group, once each; unicast went to the VTEPs.
    let to_group: Vec<&Vxlan> = packets.iter().filter(|v| v.dst() == GROUP).collect();
    assert!(
        !to_group.is_empty(),
        "no packet to the group: {frames:02x?}"
    );
    for v in &to_group {
        assert_eq!(
            v.eth.destination,
            [0x01, 0x00, 0x5e, 0x01, 0x01, 0x01],
            "group MAC"
        );
        assert_eq!(v.ip.time_to_live, 1, "outer TTL 1");
        assert_eq!(
            eth_destination(v.inner),
            Some(BROADCAST),
            "only broadcasts go to the group"
        );
    }
    let learned: [Ipv4Addr; 2] = [ADDR[1], ADDR[2]].map(|a| a.parse().unwrap());
    let unicast = packets.iter().filter(|v| v.dst() != GROUP);
    for v in unicast {
        assert!(
            learned.contains(&v.dst()),
            "unicast to a VTEP learned from the group's traffic: {v:02x?}"
        );
    }
}
