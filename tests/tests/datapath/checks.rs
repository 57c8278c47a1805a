//! Running a program and checking what it did: the output read with etherparse, the verdict,
//! and which counters moved.

use std::net::Ipv4Addr;

use etherparse::IpNumber;
use vtep::datapath::loader::{Datapath, PROG_PORT, PROG_UNDERLAY};
use vtep_common::{
    drop::DropReason,
    maps::VniStats,
    wire::{DEFAULT_SRCPORT_MAX, DEFAULT_SRCPORT_MIN},
};
use vtep_tests::{
    fixture::{
        Fixture, LOCAL_IP, NEIGH_MAC, PORT_IANA, REMOTE_IP, REMOTE_WL_MAC, Run, TC_ACT_REDIRECT,
        TC_ACT_SHOT, TTL, UL_MAC, VNI, load_standard, test_run,
    },
    packet::{ETH_P_IP, VXLAN_I, parse_vxlan},
};

use crate::{OVERHEAD, frames::standard_vxlan, frames::wl0_udp_frame};
use vtep_tests::counters::Counters;

/// Runs `test` in a fixture of its own, with the standard datapath loaded (VNI 100 on 4789).
pub fn standard(test: impl FnOnce(&Fixture, &mut Datapath) + Send) {
    let fx = Fixture::new();
    fx.run(|| test(&fx, &mut load_standard(&fx)));
}

/// The outer fields an encapsulated packet must carry.
pub struct Expect {
    pub dst_ip: Ipv4Addr,
    pub dstport: u16,
    pub ttl: u8,
    pub vni: u32,
    pub srcport_min: u16,
    pub srcport_max: u16,
}

impl Expect {
    pub fn standard() -> Self {
        Self {
            dst_ip: REMOTE_IP,
            dstport: PORT_IANA,
            ttl: TTL,
            vni: VNI,
            srcport_min: DEFAULT_SRCPORT_MIN,
            srcport_max: DEFAULT_SRCPORT_MAX,
        }
    }
}

/// Asserts that `out` is `inner` encapsulated for the remote with every outer header field as
/// `want` says; returns the outer UDP source port.
pub fn check_encap(out: &[u8], inner: &[u8], want: &Expect) -> u16 {
    assert_eq!(
        out.len(),
        inner.len() + OVERHEAD,
        "encapsulation adds exactly {OVERHEAD} bytes"
    );
    let inner_len = inner.len();
    let v = parse_vxlan(out).unwrap_or_else(|e| panic!("not VXLAN over IPv4: {e}: {out:02x?}"));

    // Outer Ethernet: to the underlay neighbour, from ul0, IPv4.
    assert_eq!(
        v.eth.destination, NEIGH_MAC.0,
        "outer dst MAC (the neighbour's)"
    );
    assert_eq!(v.eth.source, UL_MAC.0, "outer src MAC (ul0's)");
    assert_eq!(v.eth.ether_type.0, ETH_P_IP, "outer ethertype");

    // Outer IPv4 (etherparse read it as version 4).
    let ip = &v.ip;
    assert_eq!(ip.ihl(), 5, "version 4, IHL 5");
    assert_eq!((ip.dscp.value(), ip.ecn.value()), (0, 0), "TOS");
    assert_eq!(
        usize::from(ip.total_len),
        inner_len + 36,
        "IPv4 total length"
    );
    assert_eq!(ip.identification, 0, "IPv4 id");
    assert_eq!(
        (
            ip.dont_fragment,
            ip.more_fragments,
            ip.fragment_offset.value()
        ),
        (true, false, 0),
        "DF set, no fragment offset"
    );
    assert!(v.ip_fully_read(), "IPv4 reserved flag clear");
    assert_eq!(ip.time_to_live, want.ttl, "TTL");
    assert_eq!(ip.protocol, IpNumber::UDP, "protocol");
    assert!(v.ip_checksum_ok(), "IPv4 header checksum (recomputed)");
    assert_eq!(v.src(), LOCAL_IP, "outer source address");
    assert_eq!(v.dst(), want.dst_ip, "outer destination address");

    // Outer UDP.
    let srcport = v.udp.source_port;
    assert!(
        (want.srcport_min..=want.srcport_max).contains(&srcport),
        "UDP source port {srcport} outside {}..={}",
        want.srcport_min,
        want.srcport_max
    );
    assert_eq!(v.udp.destination_port, want.dstport, "UDP destination port");
    assert_eq!(usize::from(v.udp.length), inner_len + 16, "UDP length");
    assert_eq!(v.udp.checksum, 0, "UDP checksum (none, RFC 7348)");

    // VXLAN: I flag, reserved zero, 24-bit VNI, reserved zero.
    let vx = &v.header;
    assert_eq!(vx[0], VXLAN_I, "VXLAN flags: I only");
    assert_eq!(vx[1..4], [0, 0, 0], "VXLAN reserved bytes 1..4");
    assert_eq!(
        vx[4..7],
        want.vni.to_be_bytes()[1..4],
        "VNI (24 bits, network order)"
    );
    assert_eq!(vx[7], 0, "VXLAN last reserved byte");

    assert_eq!(v.inner, inner, "inner frame byte-identical");
    srcport
}

/// Encapsulates the frame of flow `sport` and returns the outer source port.
pub fn srcport_of(dp: &mut Datapath, port: u32, sport: u16, want: &Expect) -> u16 {
    let inner = wl0_udp_frame(REMOTE_WL_MAC, sport);
    let run = test_run(dp, PROG_PORT, port, &inner);
    assert_eq!(run.verdict, TC_ACT_REDIRECT, "flow {sport}");
    check_encap(&run.out, &inner, want)
}

/// Decapsulates `pkt` (carrying `inner`) and checks it is delivered as exactly `inner`.
pub fn check_decap(dp: &mut Datapath, fx: &Fixture, pkt: &[u8], inner: &[u8]) {
    let run = |dp: &mut Datapath| test_run(dp, PROG_UNDERLAY, fx.ul0, pkt);
    check_delivered(dp, run, TC_ACT_REDIRECT, inner);
}

/// Checks that `run` (a program run on a packet carrying `inner`) returns `verdict` with
/// exactly `inner` as output, counted as one decapsulated packet and nothing else.
#[track_caller]
pub fn check_delivered(
    dp: &mut Datapath,
    run: impl FnOnce(&mut Datapath) -> Run,
    verdict: u32,
    inner: &[u8],
) {
    let before = Counters::read(dp);
    let run = run(dp);
    let after = Counters::read(dp);
    assert_eq!(
        run.verdict,
        verdict,
        "delivered to the port; drops moved: {:?}",
        after.moved_drops(&before)
    );
    assert_eq!(run.out, inner, "output is exactly the inner frame");
    let decap = |s: &VniStats| (s.decap_packets, s.decap_bytes);
    after.assert_one_packet_more(&before, decap, inner.len(), "decap");
}

/// With the standard datapath, checks that `inner` sent to us in the standard VNI is delivered
/// as exactly `inner` ([`check_decap`]).
pub fn check_standard_decap(inner: &[u8]) {
    standard(|fx, dp| check_decap(dp, fx, &standard_vxlan(inner), inner));
}

/// Runs the underlay program on `pkt` and asserts it is dropped, counted under `reason` only.
pub fn check_refused(dp: &mut Datapath, fx: &Fixture, pkt: &[u8], reason: DropReason, what: &str) {
    check_dropped(dp, PROG_UNDERLAY, fx.ul0, pkt, reason, what);
}

/// Runs the port program on `frame` as if it came in on `ifindex` and asserts it is dropped,
/// counted under `reason` only (no traffic counter moves for a frame that was not sent).
pub fn check_port_refuses(dp: &mut Datapath, ifindex: u32, frame: &[u8], reason: DropReason) {
    check_dropped(dp, PROG_PORT, ifindex, frame, reason, reason.name());
}

/// Runs program `prog` on `pkt` as if it came in on `ifindex` and asserts it is dropped,
/// counted under `reason` and nothing else.
fn check_dropped(
    dp: &mut Datapath,
    prog: &str,
    ifindex: u32,
    pkt: &[u8],
    reason: DropReason,
    what: &str,
) {
    let run = |dp: &mut Datapath| test_run(dp, prog, ifindex, pkt);
    check_counted_drop(dp, run, TC_ACT_SHOT, reason, what);
}

/// Checks that `run` returns the drop verdict `verdict`, counted under `reason` and nothing
/// else.
#[track_caller]
pub fn check_counted_drop(
    dp: &mut Datapath,
    run: impl FnOnce(&mut Datapath) -> Run,
    verdict: u32,
    reason: DropReason,
    what: &str,
) {
    let before = Counters::read(dp);
    let run = run(dp);
    let after = Counters::read(dp);
    assert_eq!(run.verdict, verdict, "{what}: dropped");
    assert_eq!(
        after,
        before.with_drop(reason),
        "{what}: counted as {} and nothing else; drops moved: {:?}",
        reason.name(),
        after.moved_drops(&before)
    );
}

/// Checks that `run` on `pkt` returns the pass verdict `verdict` with `pkt` untouched and no
/// counter moved.
#[track_caller]
pub fn check_passed(
    dp: &mut Datapath,
    run: impl FnOnce(&mut Datapath) -> Run,
    verdict: u32,
    pkt: &[u8],
    what: &str,
) {
    let before = Counters::read(dp);
    let run = run(dp);
    let after = Counters::read(dp);
    assert_eq!(run.verdict, verdict, "{what}: passed on");
    assert_eq!(run.out, pkt, "{what}: bytes untouched");
    assert_eq!(
        after,
        before,
        "{what}: no counter moved; drops moved: {:?}",
        after.moved_drops(&before)
    );
}
