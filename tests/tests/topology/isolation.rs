//! VNI isolation with overlapping inner addresses.

use vtep_tests::{
    configs::{fdb, vni, workload},
    lab::Lab,
    packet::{self, eth_source},
};

use crate::{
    ADDR_A, ADDR_B, header,
    support::{assert_ping, neighbour_mac, ping_n},
};

#[test]
fn vnis_isolated_with_overlapping_addresses() {
    check_vnis_isolated("");
}

/// Two VNIs with the same inner addresses on two hosts whose `[underlay]` has
/// `underlay_extra`: each reaches only its own.
pub fn check_vnis_isolated(underlay_extra: &str) {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    // VNI 100: p1 (host A) and q1 (host B). VNI 200: p2 (A), q2 (B) with the same addresses,
    // and q3 (B), whose address exists only in VNI 200.
    let [p1, q1, p2, q2, q3] = ["p1", "q1", "p2", "q2", "q3"].map(|s| lab.name(s));
    let (m_p1, m_q1) = ("02:00:00:01:0a:01", "02:00:00:01:0b:01");
    let (m_p2, m_q2, m_q3) = (
        "02:00:00:02:0a:01",
        "02:00:00:02:0b:01",
        "02:00:00:02:0b:03",
    );
    let cfg_a = header(&lab.name("va"), underlay_extra)
        + &vni(100, 4789, &[ADDR_B])
        + &workload(&p1, "192.0.2.11/24", m_p1)
        + &fdb(m_q1, ADDR_B)
        + &vni(200, 4789, &[ADDR_B])
        + &workload(&p2, "192.0.2.11/24", m_p2)
        + &fdb(m_q2, ADDR_B)
        + &fdb(m_q3, ADDR_B);
    let cfg_b = header(&lab.name("vb"), underlay_extra)
        + &vni(100, 4789, &[ADDR_A])
        + &workload(&q1, "192.0.2.21/24", m_q1)
        + &fdb(m_p1, ADDR_A)
        + &vni(200, 4789, &[ADDR_A])
        + &workload(&q2, "192.0.2.21/24", m_q2)
        + &workload(&q3, "192.0.2.22/24", m_q3)
        + &fdb(m_p2, ADDR_A);
    lab.start_vtep(&a, &cfg_a);
    lab.start_vtep(&b, &cfg_b);

    // Within each VNI the same address reaches that VNI's workload, both ways.
    assert_ping(&p1, "192.0.2.21", 3);
    assert_ping(&p2, "192.0.2.21", 3);
    assert_ping(&q1, "192.0.2.11", 2);
    assert_ping(&q2, "192.0.2.11", 2);
    for (ns, peer, want) in [
        (&p1, "192.0.2.21", m_q1),
        (&p2, "192.0.2.21", m_q2),
        (&q1, "192.0.2.11", m_p1),
        (&q2, "192.0.2.11", m_p2),
    ] {
        assert_eq!(
            neighbour_mac(ns, peer).as_deref(),
            Some(want),
            "{ns}: {peer} answered from the wrong VNI"
        );
    }

    // Nothing of VNI 100 reaches VNI 200: p1 cannot reach q3's address, and q3 sees no frame
    // from p1 (not even its ARP broadcasts), while p2 (same VNI) does reach it.
    let cap = lab.capture(
        &q3,
        "eth0",
        &format!("ether src {m_p1} or ether src {m_p2}"),
    );
    assert!(
        !ping_n(&p1, "192.0.2.22", 3, "0.3"),
        "VNI 100 workload reached an address that exists only in VNI 200"
    );
    assert_ping(&p2, "192.0.2.22", 2);
    let frames = cap.frames();
    let from = |mac: &str| {
        let m = Some(packet::mac(mac));
        frames.iter().filter(|f| eth_source(f) == m).count()
    };
    assert_eq!(from(m_p1), 0, "frames from VNI 100 arrived in VNI 200");
    assert!(from(m_p2) >= 2, "capture in q3 saw no frame from p2");
    assert_eq!(neighbour_mac(&q3, "192.0.2.11").as_deref(), Some(m_p2));
}
