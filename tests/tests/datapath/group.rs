//! A multicast underlay (the kernel's `group`): flooding to the VNI's group, and receiving
//! VXLAN sent to it.

use std::net::Ipv4Addr;

use vtep::datapath::{
    loader::{Datapath, PROG_PORT, PROG_UNDERLAY},
    tables::Group,
};
use vtep_tests::{
    fixture::{
        Fixture, NEIGH_MAC, PORT_IANA, REMOTE_IP, TC_ACT_OK, TC_ACT_SHOT, UL_MAC, VNI, WL0_MAC,
        load_changed, load_standard, test_run,
    },
    packet::{BROADCAST, IPPROTO_UDP, Ipv4, Mac, VXLAN_I, vxlan_header, vxlan_packet},
};

use crate::{
    checks::check_decap,
    frames::{remote_udp_frame, wl0_udp_frame},
};
use vtep_tests::counters::Counters;

const GROUP: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);

/// The standard table with broadcast and unknown unicast going to GROUP instead of REMOTE_IP.
fn load_group(fx: &Fixture) -> Datapath {
    load_changed(fx, |table| {
        table.remotes.clear();
        table.group = Some(Group {
            ip: GROUP.into(),
            ttl: 1,
            ifindex: fx.ul0,
            smac: UL_MAC,
        });
    })
}

/// A VXLAN packet from the remote VTEP to multicast group `group`, carrying `inner`.
fn vxlan_to_group(group: Ipv4Addr, inner: &[u8]) -> Vec<u8> {
    let o = group.octets();
    vxlan_packet(
        Mac([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]),
        NEIGH_MAC,
        Ipv4::new(REMOTE_IP, group, IPPROTO_UDP),
        54321,
        PORT_IANA,
        vxlan_header(VXLAN_I, VNI),
        inner,
    )
}

#[test]
fn decap_accepts_vxlan_to_the_vnis_group_and_leaves_other_groups_alone() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_group(&fx);
        let inner = remote_udp_frame(WL0_MAC);
        check_decap(&mut dp, &fx, &vxlan_to_group(GROUP, &inner), &inner);

        let other = vxlan_to_group(Ipv4Addr::new(239, 9, 9, 9), &inner);
        let run = test_run(&mut dp, PROG_UNDERLAY, fx.ul0, &other);
        assert_eq!(run.verdict, TC_ACT_OK, "another group passes");
        assert_eq!(run.out, other, "untouched");

        // Without a group, group-addressed VXLAN is not ours either.
        let mut dp = load_standard(&fx);
        let run = test_run(
            &mut dp,
            PROG_UNDERLAY,
            fx.ul0,
            &vxlan_to_group(GROUP, &inner),
        );
        assert_eq!(run.verdict, TC_ACT_OK);
    });
}

#[test]
fn flood_with_a_group_sends_one_copy_on_the_underlay() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_group(&fx);
        let (ul, p1) = (fx.tx_packets("ul0"), fx.tx_packets("port1"));
        let before = Counters::read(&mut dp);
        let run = test_run(
            &mut dp,
            PROG_PORT,
            fx.port0,
            &wl0_udp_frame(BROADCAST, 1000),
        );
        assert_eq!(run.verdict, TC_ACT_SHOT, "consumed by the copies");
        assert_eq!(fx.tx_packets("ul0"), ul + 1, "one copy to the group");
        assert_eq!(
            fx.tx_packets("port1"),
            p1 + 1,
            "one to the other local port"
        );
        let after = Counters::read(&mut dp);
        assert_eq!(after.stats.encap_packets, before.stats.encap_packets + 1);
        assert_eq!(after.drops, before.drops, "nothing dropped");
    });
}
