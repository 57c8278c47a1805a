//! Miss events (the kernel's `l2miss`): unknown unicast destinations reported to userspace.

use vtep::datapath::loader::{Datapath, PROG_PORT};
use vtep_common::maps::VNI_F_L2MISS;
use vtep_tests::{
    fixture::{Fixture, REMOTE_WL_MAC, VNI, load_changed, test_run},
    packet::{BROADCAST, Mac},
};

use crate::{UNKNOWN_MAC, checks::standard, frames::wl0_udp_frame};
use vtep_tests::counters::Counters;

/// The events the datapath has queued since the last call.
pub fn miss_events(dp: &mut Datapath) -> Vec<vtep::ctl::monitor::Event> {
    let mut ring = dp.events().expect("EVENTS");
    let mut out = Vec::new();
    while let Some(record) = ring.next() {
        out.push(vtep::ctl::monitor::Event::parse(&record).expect("a miss event"));
    }
    out
}

#[test]
fn l2miss_reports_an_unknown_unicast_mac_once_per_second() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_changed(&fx, |table| {
            table.flags = VNI_F_L2MISS;
        });
        let frame = wl0_udp_frame(UNKNOWN_MAC, 1000);
        for _ in 0..5 {
            test_run(&mut dp, PROG_PORT, fx.port0, &frame);
        }
        let events = miss_events(&mut dp);
        assert_eq!(events.len(), 1, "one event for five frames: {events:?}");
        let e = &events[0];
        assert_eq!((e.event, e.vni), ("l2miss", VNI));
        assert_eq!(e.mac, Some(UNKNOWN_MAC));
        assert_eq!(e.port, "port0");
        // The frame itself was still flooded.
        assert!(Counters::read(&mut dp).stats.flood_packets >= 5);

        // Known, group and other unknown destinations.
        test_run(
            &mut dp,
            PROG_PORT,
            fx.port0,
            &wl0_udp_frame(REMOTE_WL_MAC, 1000),
        );
        test_run(
            &mut dp,
            PROG_PORT,
            fx.port0,
            &wl0_udp_frame(BROADCAST, 1000),
        );
        assert!(
            miss_events(&mut dp).is_empty(),
            "known and broadcast: no event"
        );
        let other = Mac([0x02, 0x00, 0x00, 0x00, 0x0f, 0x10]);
        test_run(&mut dp, PROG_PORT, fx.port0, &wl0_udp_frame(other, 1000));
        assert_eq!(miss_events(&mut dp).len(), 1, "another MAC is another miss");

        // After the interval the same miss is reported again.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        test_run(&mut dp, PROG_PORT, fx.port0, &frame);
        assert_eq!(
            miss_events(&mut dp).len(),
            1,
            "reported again after a second"
        );
    });
}

#[test]
fn l2miss_off_reports_nothing() {
    standard(|fx, dp| {
        test_run(dp, PROG_PORT, fx.port0, &wl0_udp_frame(UNKNOWN_MAC, 1000));
        assert!(miss_events(dp).is_empty());
    });
}
