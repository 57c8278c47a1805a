//! Learning (the kernel's `learning`, `maxaddress`): stations behind remote VTEPs from
//! decapsulated frames, stations behind ports vtep does not know from the port program.

use std::net::Ipv4Addr;

use vtep::{
    datapath::loader::{Datapath, PROG_PORT, PROG_UNDERLAY},
    sys::clock::monotonic_secs,
};
use vtep_common::maps::{FDB_F_LEARNED, FDB_LOCAL, FDB_REMOTE, FdbEntry, FdbKey, vtep_addr_v4};
use vtep_tests::{
    fixture::{
        self, Fixture, LOCAL_IP, PORT_IANA, REMOTE_IP, REMOTE_WL_MAC, SLOT, TC_ACT_REDIRECT, VNI,
        WL0_MAC, load_changed, test_run,
    },
    packet::{ETH_P_IP, IPPROTO_UDP, Ipv4, Mac, VXLAN_I, eth, udp, vxlan_header},
};

use crate::{
    REMOTE_WL_IP, ROAMING_MAC, WL1_IP,
    checks::{Expect, check_decap, check_encap, standard},
    frames::{remote_udp_frame, remote_udp_frame_from, standard_vxlan, wl0_udp_frame},
};
use vtep_tests::counters::Counters;

/// Another remote VTEP on the underlay subnet.
const OTHER_VTEP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);

/// A VXLAN packet from VTEP `from` to us carrying a frame from `src` to WL0, and that frame.
fn vxlan_from(from: Ipv4Addr, src: Mac) -> (Vec<u8>, Vec<u8>) {
    let inner = remote_udp_frame_from(src, WL0_MAC, b"learn me");
    let pkt = fixture::vxlan_from(from, PORT_IANA, vxlan_header(VXLAN_I, VNI), &inner);
    (pkt, inner)
}

/// The FDB entry of `mac` in the standard VNI, if any.
pub fn fdb_entry(dp: &mut Datapath, mac: Mac) -> Option<FdbEntry> {
    dp.fdb().expect("FDB").get(&fdb_key(mac), 0).ok()
}

fn fdb_key(mac: Mac) -> FdbKey {
    FdbKey {
        vni: VNI,
        mac: mac.0,
        _pad: [0; 2],
    }
}

fn learned_entries(dp: &mut Datapath) -> usize {
    dp.fdb()
        .expect("FDB")
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|(_, e)| e.flags & FDB_F_LEARNED != 0))
        .count()
}

#[test]
fn decap_learns_the_inner_source_behind_the_sending_vtep() {
    standard(|fx, dp| {
        assert_eq!(fdb_entry(dp, ROAMING_MAC), None);
        let (pkt, inner) = vxlan_from(REMOTE_IP, ROAMING_MAC);

        check_decap(dp, fx, &pkt, &inner);

        let e = fdb_entry(dp, ROAMING_MAC).expect("learned");
        assert_eq!(
            (e.kind, e.remote),
            (FDB_REMOTE, vtep_addr_v4(REMOTE_IP.octets()))
        );
        assert_eq!(e.flags, FDB_F_LEARNED);
        let now = monotonic_secs();
        assert!(
            now.wrapping_sub(e.seen) <= 1,
            "stamped {} s, now is {now} s",
            e.seen
        );
        assert_eq!(dp.learned().unwrap().get(&SLOT, 0).unwrap(), 1, "counted");
        assert!(
            dp.dynamic_vteps()
                .unwrap()
                .get(&vtep_addr_v4(REMOTE_IP.octets()), 0)
                .is_ok(),
            "the VTEP is noted for userspace to resolve"
        );
        // Traffic to it now goes to that VTEP only, not to the flood list.
        let out = wl0_udp_frame(ROAMING_MAC, 1000);
        let run = test_run(dp, PROG_PORT, fx.port0, &out);
        assert_eq!(run.verdict, TC_ACT_REDIRECT);
        check_encap(&run.out, &out, &Expect::standard());
    });
}

#[test]
fn a_forged_outer_source_teaches_nothing() {
    standard(|fx, dp| {
        for forged in [
            Ipv4Addr::new(0, 0, 0, 0),
            Ipv4Addr::new(127, 0, 0, 1),
            Ipv4Addr::new(224, 0, 0, 5),
            Ipv4Addr::new(255, 255, 255, 255),
            LOCAL_IP,
        ] {
            let (pkt, inner) = vxlan_from(forged, ROAMING_MAC);
            check_decap(dp, fx, &pkt, &inner);
            assert_eq!(fdb_entry(dp, ROAMING_MAC), None, "learned behind {forged}");
        }
        assert!(dp.dynamic_vteps().unwrap().keys().next().is_none());
    });
}

#[test]
fn learned_mac_moves_to_another_vtep_but_static_entries_never_do() {
    standard(|fx, dp| {
        let (pkt, inner) = vxlan_from(REMOTE_IP, ROAMING_MAC);
        check_decap(dp, fx, &pkt, &inner);
        let (pkt, inner) = vxlan_from(OTHER_VTEP, ROAMING_MAC);
        check_decap(dp, fx, &pkt, &inner);
        let e = fdb_entry(dp, ROAMING_MAC).expect("still known");
        assert_eq!(
            e.remote,
            vtep_addr_v4(OTHER_VTEP.octets()),
            "moved with the station"
        );
        assert_eq!(e.flags, FDB_F_LEARNED);
        assert_eq!(
            dp.learned().unwrap().get(&SLOT, 0).unwrap(),
            1,
            "a move is not a new entry"
        );

        // REMOTE_WL_MAC is configured behind REMOTE_IP: a frame claiming it from elsewhere
        // changes nothing. Nor does WL0's own MAC (a static local entry).
        let before = fdb_entry(dp, REMOTE_WL_MAC).expect("static entry");
        let (pkt, inner) = vxlan_from(OTHER_VTEP, REMOTE_WL_MAC);
        check_decap(dp, fx, &pkt, &inner);
        assert_eq!(fdb_entry(dp, REMOTE_WL_MAC), Some(before));
        let local = fdb_entry(dp, WL0_MAC).expect("WL0's entry");
        let (pkt, _) = vxlan_from(OTHER_VTEP, WL0_MAC);
        test_run(dp, PROG_UNDERLAY, fx.ul0, &pkt);
        assert_eq!(fdb_entry(dp, WL0_MAC), Some(local));
    });
}

#[test]
fn a_known_entry_is_not_rewritten_per_packet_only_refreshed_when_stale() {
    standard(|fx, dp| {
        let (pkt, inner) = vxlan_from(REMOTE_IP, ROAMING_MAC);
        check_decap(dp, fx, &pkt, &inner);
        let key = fdb_key(ROAMING_MAC);
        // A marker in a field the datapath never writes for a remote entry, and a fresh
        // stamp: a rewrite of the entry, or of the stamp, would show.
        let mut marked = fdb_entry(dp, ROAMING_MAC).unwrap();
        marked.port_flags = 0x5a5a;
        marked.seen = monotonic_secs();
        dp.fdb().unwrap().insert(key, marked, 0).unwrap();
        for _ in 0..100 {
            test_run(dp, PROG_UNDERLAY, fx.ul0, &pkt);
        }
        let after = fdb_entry(dp, ROAMING_MAC).unwrap();
        assert_eq!(after.port_flags, 0x5a5a, "the entry was not rewritten");
        assert!(after.seen.wrapping_sub(marked.seen) <= 1, "stamp kept");

        // A stamp 10 s old is refreshed by the next frame (in place: the marker stays).
        let mut stale = after;
        stale.seen = monotonic_secs() - 10;
        dp.fdb().unwrap().insert(key, stale, 0).unwrap();
        test_run(dp, PROG_UNDERLAY, fx.ul0, &pkt);
        let refreshed = fdb_entry(dp, ROAMING_MAC).unwrap();
        assert!(
            monotonic_secs().wrapping_sub(refreshed.seen) <= 1,
            "refreshed"
        );
        assert_eq!(refreshed.port_flags, 0x5a5a);
    });
}

#[test]
fn maxaddress_caps_learning_counts_refusals_and_keeps_existing_flows() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_changed(&fx, |table| {
            table.max_learned = 10;
        });
        // A MAC flood: 100,000 random unicast sources (deterministic, for a reproducible run;
        // distinct, as a 64-bit xorshift does not repeat this soon).
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        const FLOOD: u64 = 100_000;
        for _ in 0..FLOOD {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = x.to_be_bytes();
            let src = Mac([b[0] & 0xfe | 0x02, b[1], b[2], b[3], b[4], b[5]]);
            let (pkt, _) = vxlan_from(REMOTE_IP, src);
            assert_eq!(
                test_run(&mut dp, PROG_UNDERLAY, fx.ul0, &pkt).verdict,
                TC_ACT_REDIRECT
            );
        }
        assert_eq!(learned_entries(&mut dp), 10, "learning stopped at the cap");
        assert_eq!(dp.learned().unwrap().get(&SLOT, 0).unwrap(), 10);
        let c = Counters::read(&mut dp);
        assert_eq!(
            c.stats.learn_refused,
            FLOOD - 10,
            "every refused MAC counted"
        );
        // The configured flow still works both ways.
        let inner = remote_udp_frame(WL0_MAC);
        let pkt = standard_vxlan(&inner);
        check_decap(&mut dp, &fx, &pkt, &inner);
        let out = wl0_udp_frame(REMOTE_WL_MAC, 1000);
        let run = test_run(&mut dp, PROG_PORT, fx.port0, &out);
        check_encap(&run.out, &out, &Expect::standard());
    });
}

#[test]
fn ports_vtep_does_not_know_are_learned_from_known_ones_nothing() {
    let fx = Fixture::new();
    fx.run(|| {
        // port1 as an adopted port: vtep does not know who is behind it.
        let mut dp = load_changed(&fx, |table| table.ports[1].mac = None);
        let behind_port1 = Mac([0x02, 0x00, 0x00, 0x00, 0x0a, 0x01]);
        let frame = eth(
            REMOTE_WL_MAC,
            behind_port1,
            ETH_P_IP,
            &Ipv4::new(WL1_IP, REMOTE_WL_IP, IPPROTO_UDP).build(&udp(
                WL1_IP,
                REMOTE_WL_IP,
                1,
                2,
                b"x",
            )),
        );
        test_run(&mut dp, PROG_PORT, fx.port1, &frame);
        let e = fdb_entry(&mut dp, behind_port1).expect("learned behind port1");
        assert_eq!(
            (e.kind, e.ifindex, e.flags),
            (FDB_LOCAL, fx.port1, FDB_F_LEARNED)
        );
        // Frames from WL0 to it are now switched locally.
        let to_it = wl0_udp_frame(behind_port1, 1000);
        let run = test_run(&mut dp, PROG_PORT, fx.port0, &to_it);
        assert_eq!(run.verdict, TC_ACT_REDIRECT);
        assert_eq!(run.out, to_it, "switched locally, not encapsulated");

        // port0's workload is a static entry: a frame from another MAC there teaches nothing.
        let stranger = Mac([0x02, 0x00, 0x00, 0x00, 0x0a, 0x02]);
        let frame = eth(REMOTE_WL_MAC, stranger, ETH_P_IP, &frame[14..]);
        test_run(&mut dp, PROG_PORT, fx.port0, &frame);
        assert_eq!(fdb_entry(&mut dp, stranger), None);
    });
}

#[test]
fn learning_off_learns_nothing() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_changed(&fx, |table| {
            table.learning = false;
            table.ports[1].mac = None;
        });
        let (pkt, inner) = vxlan_from(REMOTE_IP, ROAMING_MAC);
        check_decap(&mut dp, &fx, &pkt, &inner);
        let frame = eth(REMOTE_WL_MAC, ROAMING_MAC, ETH_P_IP, &inner[14..]);
        test_run(&mut dp, PROG_PORT, fx.port1, &frame);
        assert_eq!(fdb_entry(&mut dp, ROAMING_MAC), None);
        assert_eq!(learned_entries(&mut dp), 0);
    });
}
