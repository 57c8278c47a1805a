//! Drops counted for the VNI of the packet (`VNI_DROPS`, `vtep_vni_drops_total`): once a
//! program knows the VNI (the port a frame came in on, a VXLAN header of a served VNI), a drop
//! counts under its reason and under that VNI's stats slot; before that (a VNI not served, a
//! header too short to hold one, an interface that is no port) only under its reason. Whole
//! packets (the verdict path's `in_vni`) and single flood copies (`copy_dropped`) alike, on the
//! TC and the XDP programs.

use crate::frames::wl0_arp_broadcast;
use vtep::datapath::loader::{Datapath, PROG_PORT, PROG_UNDERLAY};
use vtep_common::drop::DropReason;
use vtep_tests::{
    counters::Counters,
    fixture::{
        Fixture, PORT_IANA, REMOTE_IP, REMOTE_WL_MAC, SLOT, UNROUTABLE_IP, UNROUTABLE_WL_MAC,
        WL0_MAC, load_changed, test_run, xdp_test_run,
    },
    packet::{VXLAN_I, vxlan_header},
};

use crate::{
    UNKNOWN_VNI,
    checks::standard,
    frames::{remote_udp_frame, standard_vxlan, vxlan_to_us, wl0_udp_frame},
};

/// The per-VNI drop counters of stats slot `SLOT`, by reason.
fn vni_drops(dp: &mut Datapath) -> [u64; DropReason::COUNT as usize] {
    let map = dp.vni_drops().expect("VNI_DROPS");
    let mut out = [0; DropReason::COUNT as usize];
    for reason in DropReason::ALL {
        out[reason as usize] = map
            .get(&(SLOT * DropReason::COUNT + reason as u32), 0)
            .expect("VNI_DROPS entry");
    }
    out
}

/// Runs `run` and checks it counts one drop of `reason`, and one for the VNI too when
/// `for_vni`, and nothing else.
#[track_caller]
fn check(dp: &mut Datapath, run: impl FnOnce(&mut Datapath), reason: DropReason, for_vni: bool) {
    let (before, vni_before) = (Counters::read(dp), vni_drops(dp));
    run(dp);
    let (after, vni_after) = (Counters::read(dp), vni_drops(dp));
    assert_eq!(
        after.drops,
        before.with_drop(reason).drops,
        "one {} drop; moved: {:?}",
        reason.name(),
        after.moved_drops(&before)
    );
    let mut want = vni_before;
    if for_vni {
        want[reason as usize] += 1;
    }
    assert_eq!(
        vni_after,
        want,
        "the VNI's drops after a {} drop",
        reason.name()
    );
}

#[test]
fn a_port_frame_dropped_counts_for_its_vni() {
    standard(|fx, dp| {
        // Unicast to a station behind a VTEP the kernel has no route to.
        let frame = wl0_udp_frame(UNROUTABLE_WL_MAC, 1000);
        let run = |dp: &mut Datapath| drop(test_run(dp, PROG_PORT, fx.port0, &frame));
        check(dp, run, DropReason::NoRoute, true);
        // An interface that is no port: no VNI to count for.
        let run = |dp: &mut Datapath| drop(test_run(dp, PROG_PORT, fx.ul0, &frame));
        check(dp, run, DropReason::UnknownPort, false);
    });
}

#[test]
fn vxlan_dropped_counts_for_its_vni_once_the_vni_is_known() {
    standard(|fx, dp| {
        let inner = remote_udp_frame(WL0_MAC);
        let unknown = vxlan_to_us(PORT_IANA, vxlan_header(VXLAN_I, UNKNOWN_VNI), &inner);
        let to_remote = standard_vxlan(&remote_udp_frame(REMOTE_WL_MAC));
        // Too short for an inner Ethernet header: refused before its VNI is read.
        let short_inner = standard_vxlan(&inner[..13]);
        // A UDP length that lies: found once the VNI is known.
        let mut bad_length = standard_vxlan(&inner);
        bad_length[38..40].copy_from_slice(&8u16.to_be_bytes());
        for (pkt, reason, for_vni) in [
            (&unknown, DropReason::UnknownVni, false),
            (&short_inner, DropReason::VxlanTruncated, false),
            (&to_remote, DropReason::DecapToRemote, true),
            (&bad_length, DropReason::VxlanBadLength, true),
        ] {
            let run = |dp: &mut Datapath| drop(test_run(dp, PROG_UNDERLAY, fx.ul0, pkt));
            check(dp, run, reason, for_vni);
            let run = |dp: &mut Datapath| drop(xdp_test_run(dp, pkt));
            check(dp, run, reason, for_vni);
        }
    });
}

#[test]
fn a_flood_copy_dropped_counts_for_its_vni() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_changed(&fx, |t| {
            t.remotes = vec![UNROUTABLE_IP.into(), REMOTE_IP.into()];
        });
        let broadcast = wl0_arp_broadcast();
        // The copy to the unroutable VTEP is lost; the others go and the original is consumed.
        let run = |dp: &mut Datapath| drop(test_run(dp, PROG_PORT, fx.port0, &broadcast));
        check(&mut dp, run, DropReason::NoRoute, true);
    });
}

/// A VNI's drop lands in its own slot's counters only.
#[test]
fn other_vnis_counters_do_not_move() {
    standard(|fx, dp| {
        let frame = wl0_udp_frame(UNROUTABLE_WL_MAC, 1000);
        test_run(dp, PROG_PORT, fx.port0, &frame);
        let map = dp.vni_drops().expect("VNI_DROPS");
        let reasons = DropReason::COUNT;
        let moved: Vec<u32> = (0..vtep_common::maps::MAX_VNIS * reasons)
            .filter(|i| i / reasons != SLOT)
            .filter(|i| map.get(i, 0).expect("VNI_DROPS entry") != 0)
            .collect();
        assert!(moved.is_empty(), "other slots' drops moved: {moved:?}");
    });
}
