//! The source-VTEP allow-list (`underlay.accept`): VXLAN from an outer source outside `ACCEPT`
//! is dropped as `source_not_allowed` before the datapath learns anything from it (issue 9
//! item 1: anyone on the underlay could make vtep learn, and resolve, any source).

use std::{collections::HashSet, net::Ipv4Addr};

use vtep::{
    config::{AcceptRule, IpNet},
    datapath::{accept, loader::Datapath},
};
use vtep_common::{
    drop::DropReason,
    maps::{DP_F_FILTER_SOURCES, FdbKey, VtepAddr},
    wire::{DEFAULT_SRCPORT_MAX, DEFAULT_SRCPORT_MIN},
};
use vtep_tests::{
    fixture::{self, Fixture, PORT_IANA, REMOTE_IP, SLOT, UNROUTABLE_IP, VNI, WL0_MAC, load},
    packet::{Mac, VXLAN_I, vxlan_header},
};

use crate::{
    OTHER_IP,
    checks::{check_decap, check_refused},
    frames::remote_udp_frame_from,
};

/// A VXLAN packet from VTEP `from` carrying a frame from station `src` to WL0, and that frame.
fn from_vtep(from: Ipv4Addr, src: Mac) -> (Vec<u8>, Vec<u8>) {
    let inner = remote_udp_frame_from(src, WL0_MAC, b"who sent this?");
    let pkt = fixture::vxlan_from(from, PORT_IANA, vxlan_header(VXLAN_I, VNI), &inner);
    (pkt, inner)
}

fn station(n: u8) -> Mac {
    Mac([0x02, 0, 0, 0, 0x0a, n])
}

/// Whether the standard VNI's FDB holds `mac`.
fn knows(dp: &mut Datapath, mac: Mac) -> bool {
    let key = FdbKey {
        vni: VNI,
        mac: mac.0,
        _pad: [0; 2],
    };
    dp.fdb().expect("FDB").get(&key, 0).is_ok()
}

/// The standard datapath with the allow-list on (`filter`) and filled from `rule`, the
/// standard remote VTEP known.
fn with_allow_list(fx: &Fixture, filter: bool, rule: &AcceptRule) -> Datapath {
    let mut cfg = fixture::config(DEFAULT_SRCPORT_MIN, DEFAULT_SRCPORT_MAX);
    if filter {
        cfg.flags |= DP_F_FILTER_SOURCES;
    }
    let mut dp = load(&cfg, &[fx.table(VNI, PORT_IANA, 64)]);
    accept::fill(&mut dp.accept().expect("ACCEPT"), rule, [REMOTE_IP.into()]).expect("allow-list");
    dp
}

/// A known VTEP and a listed prefix are decapsulated and learned from; any other source is
/// dropped and counted, and teaches nothing: no FDB entry, no VTEP noted for resolution.
#[test]
fn allow_list_decapsulates_allowed_sources_and_drops_others_before_learning() {
    let fx = Fixture::new();
    fx.run(|| {
        let rule = AcceptRule {
            known: true,
            prefixes: vec![IpNet {
                addr: Ipv4Addr::new(203, 0, 113, 0).into(),
                prefix: 24,
            }],
        };
        let dp = &mut with_allow_list(&fx, true, &rule);

        let (pkt, inner) = from_vtep(REMOTE_IP, station(1));
        check_decap(dp, &fx, &pkt, &inner);
        assert!(knows(dp, station(1)), "learned behind the known VTEP");
        let (pkt, inner) = from_vtep(UNROUTABLE_IP, station(2));
        check_decap(dp, &fx, &pkt, &inner);
        assert!(knows(dp, station(2)), "learned behind a VTEP of the prefix");

        let learned = dp.learned().unwrap().get(&SLOT, 0).unwrap();
        let dynamic_before: HashSet<VtepAddr> =
            dp.dynamic_vteps().unwrap().keys().flatten().collect();
        for (n, spoofed) in [
            OTHER_IP,
            Ipv4Addr::new(198, 19, 7, 7),
            Ipv4Addr::new(203, 0, 114, 1),
        ]
        .into_iter()
        .enumerate()
        {
            let mac = station(10 + n as u8);
            let (pkt, _) = from_vtep(spoofed, mac);
            check_refused(
                dp,
                &fx,
                &pkt,
                DropReason::SourceNotAllowed,
                "spoofed source",
            );
            assert!(!knows(dp, mac), "learned {mac} behind spoofed {spoofed}");
        }
        assert_eq!(
            dp.learned().unwrap().get(&SLOT, 0).unwrap(),
            learned,
            "learned count"
        );
        let dynamic_after: HashSet<VtepAddr> =
            dp.dynamic_vteps().unwrap().keys().flatten().collect();
        assert_eq!(dynamic_after, dynamic_before, "a spoofed VTEP was noted");

        // The VTEP is no longer named anywhere: `vtep up` takes its /32 away, and its traffic
        // is refused from then on, while the config's prefix stays.
        let removed = accept::sync_known(&mut dp.accept().unwrap(), &HashSet::new()).unwrap();
        assert_eq!(removed, 1);
        let (pkt, _) = from_vtep(REMOTE_IP, station(20));
        check_refused(
            dp,
            &fx,
            &pkt,
            DropReason::SourceNotAllowed,
            "VTEP no longer known",
        );
        let (pkt, inner) = from_vtep(UNROUTABLE_IP, station(21));
        check_decap(dp, &fx, &pkt, &inner);
    });
}

/// Without `underlay.accept` (the default, as the kernel) every source is decapsulated, even
/// with entries in the map.
#[test]
fn without_the_allow_list_every_source_is_accepted() {
    let fx = Fixture::new();
    fx.run(|| {
        let dp = &mut with_allow_list(&fx, false, &AcceptRule::default());
        let (pkt, inner) = from_vtep(OTHER_IP, station(30));
        check_decap(dp, &fx, &pkt, &inner);
        assert!(knows(dp, station(30)));
    });
}
