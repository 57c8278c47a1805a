//! The source-VTEP allow-list (`underlay.accept`) on an IPv6 underlay: IPv6 prefixes in the LPM
//! trie keyed by the 16-byte VTEP address, and the known VTEPs by their full address. VXLAN from
//! any other IPv6 source is dropped as `source_not_allowed`, by TC and by XDP, before anything
//! is learned from it.

use std::net::Ipv6Addr;

use vtep::{
    config::{AcceptRule, IpNet},
    datapath::{accept, loader::Datapath},
};
use vtep_common::{drop::DropReason, maps::DP_F_FILTER_SOURCES};
use vtep_tests::{
    fixture::{Fixture, PORT_IANA, VNI, XDP_DROP, XDP_REDIRECT, load, xdp_test_run},
    fixture6::{REMOTE_IP6, config6, fixture6, table6},
};

use super::learn::roaming_from;
use crate::{
    ROAMING_MAC,
    checks::{check_counted_drop, check_decap, check_delivered, check_refused},
    learn::fdb_entry,
};

/// The IPv6 datapath with the allow-list on, filled with 2001:db8:0:1::/64 and the known
/// REMOTE_IP6.
fn with_allow_list6(fx: &Fixture) -> Datapath {
    let mut cfg = config6(false);
    cfg.flags |= DP_F_FILTER_SOURCES;
    let mut dp = load(&cfg, &[table6(fx, VNI, PORT_IANA, 64)]);
    let rule = AcceptRule {
        known: true,
        prefixes: vec![IpNet {
            addr: "2001:db8:0:1::".parse::<Ipv6Addr>().unwrap().into(),
            prefix: 64,
        }],
    };
    accept::fill(
        &mut dp.accept().expect("ACCEPT"),
        &rule,
        [REMOTE_IP6.into()],
    )
    .expect("allow-list");
    dp
}

#[test]
fn allow_list6_decapsulates_allowed_ipv6_sources_and_drops_others_before_learning() {
    let fx = fixture6();
    fx.run(|| {
        let dp = &mut with_allow_list6(&fx);
        let in_prefix: Ipv6Addr = "2001:db8:0:1::42".parse().unwrap();
        let prefix_end: Ipv6Addr = "2001:db8:0:1:ffff:ffff:ffff:ffff".parse().unwrap();
        for allowed in [REMOTE_IP6, in_prefix, prefix_end] {
            let (pkt, inner) = roaming_from(allowed);
            check_decap(dp, &fx, &pkt, &inner);
            let e = fdb_entry(dp, ROAMING_MAC).expect("learned");
            assert_eq!(e.remote, allowed.octets(), "learned behind {allowed}");
        }
        // Next to the known VTEP, just past the prefix, and an IPv4-mapped address of an IPv4
        // VTEP: dropped, and the station stays behind the last allowed VTEP.
        for refused in ["2001:db8::3", "2001:db8:0:2::", "::ffff:198.18.0.2"] {
            let (pkt, _) = roaming_from(refused.parse().unwrap());
            check_refused(dp, &fx, &pkt, DropReason::SourceNotAllowed, refused);
            let e = fdb_entry(dp, ROAMING_MAC).expect("still known");
            assert_eq!(e.remote, prefix_end.octets(), "{refused} moved the station");
        }
    });
}

#[test]
fn xdp6_drops_sources_the_allow_list_refuses() {
    let fx = fixture6();
    fx.run(|| {
        let dp = &mut with_allow_list6(&fx);
        let (pkt, inner) = roaming_from(REMOTE_IP6);
        let run = |dp: &mut _| xdp_test_run(dp, &pkt);
        check_delivered(dp, run, XDP_REDIRECT, &inner);
        let (pkt, _) = roaming_from("2001:db8::3".parse().unwrap());
        let run = |dp: &mut _| xdp_test_run(dp, &pkt);
        check_counted_drop(
            dp,
            run,
            XDP_DROP,
            DropReason::SourceNotAllowed,
            "2001:db8::3",
        );
    });
}
