//! Samples of dropped packets for `vtep monitor --drops` (`drop_monitor.rs` in the datapath):
//! none while no monitor listens, the reason, hook, interface, length and first bytes of each
//! one while it does, and no more than the rate it asked for.

use crate::frames::wl0_arp_broadcast;
use vtep::datapath::loader::{Datapath, PROG_PORT, PROG_UNDERLAY};
use vtep_common::{
    drop::DropReason,
    maps::{
        DROP_MONITOR_RATE, DROP_MONITOR_UNTIL, DROP_SAMPLE_BYTES, DropSample, HOOK_PORT,
        HOOK_UNDERLAY,
    },
};
use vtep_tests::{
    fixture::{
        Fixture, PORT_IANA, REMOTE_IP, TC_ACT_SHOT, UNROUTABLE_IP, UNROUTABLE_WL_MAC, VNI, WL0_MAC,
        load_changed, test_run,
    },
    packet::{VXLAN_I, parse_vxlan, vxlan_header},
};

use crate::{
    UNKNOWN_VNI,
    checks::standard,
    frames::{remote_udp_frame, vxlan_to_us, wl0_udp_frame},
};

/// Turns sampling on for the next minute at `rate` per second per CPU, or off (`rate` 0).
fn listen(dp: &mut Datapath, rate: u64) {
    let until = match rate {
        0 => 0,
        _ => vtep::sys::clock::monotonic_nanos() + 60_000_000_000,
    };
    let mut m = dp.drop_monitor().unwrap();
    m.set(DROP_MONITOR_RATE, rate, 0).unwrap();
    m.set(DROP_MONITOR_UNTIL, until, 0).unwrap();
}

/// Every sample waiting in the ring buffer.
fn samples(dp: &mut Datapath) -> Vec<DropSample> {
    let mut ring = dp.drop_samples().unwrap();
    let mut out = Vec::new();
    while let Some(record) = ring.next() {
        assert_eq!(record.len(), std::mem::size_of::<DropSample>());
        // SAFETY: the size matches and `DropSample` is plain old data.
        out.push(unsafe { std::ptr::read_unaligned(record.as_ptr().cast()) });
    }
    out
}

#[test]
fn drops_are_sampled_only_while_a_monitor_listens_and_no_faster_than_it_asked() {
    standard(|fx, dp| {
        let inner = remote_udp_frame(WL0_MAC);
        let pkt = vxlan_to_us(PORT_IANA, vxlan_header(VXLAN_I, UNKNOWN_VNI), &inner);
        let drop = |dp: &mut Datapath| {
            let run = test_run(dp, PROG_UNDERLAY, fx.ul0, &pkt);
            assert_eq!(run.verdict, TC_ACT_SHOT, "an unknown VNI is dropped");
        };

        drop(dp);
        assert!(samples(dp).is_empty(), "sampled while nobody listens");

        listen(dp, 3);
        for _ in 0..10 {
            drop(dp);
        }
        let got = samples(dp);
        assert_eq!(got.len(), 3, "10 drops at a rate of 3 per second");
        let s = got[0];
        assert_eq!(s.reason, DropReason::UnknownVni as u32);
        assert_eq!(s.hook, HOOK_UNDERLAY);
        assert_eq!(s.ifindex, fx.ul0);
        assert_eq!(s.len as usize, pkt.len());
        let caplen = pkt.len().min(DROP_SAMPLE_BYTES);
        assert_eq!(s.caplen as usize, caplen);
        assert_eq!(
            &s.bytes[..caplen],
            &pkt[..caplen],
            "the packet's first bytes"
        );

        listen(dp, 0);
        drop(dp);
        assert!(samples(dp).is_empty(), "sampled after the monitor left");
    });
}

#[test]
fn a_port_drop_is_sampled_with_its_port() {
    standard(|fx, dp| {
        listen(dp, 10);
        // To a station behind a remote VTEP the underlay has no route to.
        let frame = wl0_udp_frame(UNROUTABLE_WL_MAC, 1000);
        let run = test_run(dp, PROG_PORT, fx.port0, &frame);
        assert_eq!(run.verdict, TC_ACT_SHOT);
        let got = samples(dp);
        assert_eq!(got.len(), 1, "{got:?}");
        let s = got[0];
        assert_eq!(s.reason, DropReason::NoRoute as u32);
        assert_eq!((s.hook, s.ifindex), (HOOK_PORT, fx.port0));
        assert_eq!(&s.bytes[..s.caplen as usize], &frame[..s.caplen as usize]);
    });
}

/// A flood copy that cannot go is sampled as the copy it was: encapsulated for the remote VTEP
/// it was for (no MACs: it had no next hop), while the flood's other copies go. Before, copies
/// were counted but never sampled: the flood programs sat too near the verifier's limit for the
/// sampler's call.
#[test]
fn a_flood_copy_that_cannot_go_is_sampled_encapsulated_for_its_remote() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_changed(&fx, |t| {
            t.remotes = vec![UNROUTABLE_IP.into(), REMOTE_IP.into()];
        });
        listen(&mut dp, 10);
        let frame = wl0_arp_broadcast();
        let run = test_run(&mut dp, PROG_PORT, fx.port0, &frame);
        assert_eq!(run.verdict, TC_ACT_SHOT, "the original is consumed");
        let got = samples(&mut dp);
        assert_eq!(got.len(), 1, "one copy lost, one sample: {got:?}");
        let s = got[0];
        assert_eq!(s.reason, DropReason::NoRoute as u32);
        assert_eq!((s.hook, s.ifindex), (HOOK_PORT, fx.port0));
        assert_eq!(
            s.len as usize,
            frame.len() + 50,
            "the encapsulated copy's length"
        );
        assert_eq!(s.caplen, s.len, "all of it fits a sample");
        let copy = parse_vxlan(&s.bytes[..s.caplen as usize]).expect("a VXLAN packet");
        assert_eq!(
            copy.ip.destination,
            UNROUTABLE_IP.octets(),
            "to the lost remote"
        );
        assert_eq!(copy.eth.destination, [0; 6], "no next hop, no MAC");
        assert_eq!(copy.vni(), VNI);
        assert_eq!(copy.inner, &frame[..], "the flooded frame inside");
    });
}
