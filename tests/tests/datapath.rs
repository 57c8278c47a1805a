//! The datapath on crafted packets, through `BPF_PROG_TEST_RUN`: exact output bytes, verdicts
//! and counters of the port program (`vtep_port`) and the underlay program (`vtep_underlay`).
//!
//! Each test makes its own network namespace with [`Fixture`] (vtep_tests::fixture, removed on
//! drop, also when the test fails): an underlay veth `ul0` (198.18.0.1/24, fixed MAC, a
//! permanent neighbour 198.18.0.2 so `bpf_fib_lookup` returns known MACs) and two port veths
//! `port0`/`port1` whose peers `wl0`/`wl1` stand for workloads. The programs are loaded and run
//! on a thread that entered the namespace: `BPF_PROG_TEST_RUN` runs in the caller's namespace,
//! and the port program finds its port by `skb->ifindex`, which the test sets through the
//! `__sk_buff` context. Nothing leaves the namespace: every interface a clone can be sent to
//! lives in it, and IPv6 is off there so the interfaces send nothing of their own (the flood
//! tests count transmitted packets). The two `live_` tests at the end attach the programs and
//! send real frames instead, for what `BPF_PROG_TEST_RUN` cannot show (VLAN tags held in skb
//! metadata).
//!
//! Run as root: `cargo test -p vtep-tests --test datapath -- --test-threads=1`.

use std::net::{Ipv4Addr, Ipv6Addr};

use vtep::{
    datapath::{
        loader::{Datapath, PROG_PORT, PROG_UNDERLAY},
        tables::Group,
    },
    sys::clock::monotonic_secs,
};
use vtep_common::{
    drop::DropReason,
    flow,
    maps::{
        FDB_F_LEARNED, FDB_LOCAL, FDB_REMOTE, FdbEntry, FdbKey, ProxyKey, VNI_F_L2MISS,
        VNI_F_L3MISS, VNI_F_PROXY, VniStats,
    },
    wire::{DEFAULT_SRCPORT_MAX, DEFAULT_SRCPORT_MIN},
};
use vtep_tests::fixture::{
    Fixture, LOCAL_IP, NEIGH_MAC, PORT_IANA, PORT_LEGACY, REMOTE_IP, REMOTE_WL_MAC, SLOT,
    TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, TTL, UL_MAC, UNRESOLVED_IP, UNRESOLVED_WL_MAC,
    UNROUTABLE_WL_MAC, VNI, WL0_MAC, WL1_MAC, cache_next_hop, config, load, load_changed,
    load_standard, test_run,
};
use vtep_tests::packet::{
    BROADCAST, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, IP_DF, IP_MF, IPPROTO_TCP, IPPROTO_UDP, Ipv4, Mac,
    VXLAN_I, arp_reply, arp_request, checksum, eth, ipv6, nd_frame, tcp, udp, udp_no_checksum,
    udp6, vxlan_header, vxlan_packet,
};

/// Another address on the underlay subnet: not ours.
const OTHER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);
/// Known to nobody: unknown unicast.
const UNKNOWN_MAC: Mac = [0x02, 0x00, 0x00, 0x00, 0x0f, 0x0f];

/// Overlay addresses of the workloads.
const WL0_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const WL1_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);
const REMOTE_WL_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

const WL0_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
const REMOTE_WL_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);

/// A VNI that needs all 24 bits: truncation to 16 bits would give 0xCDEF.
const BIG_VNI: u32 = 0xABCDEF;
const UNKNOWN_VNI: u32 = 200;
/// Bytes encapsulation adds: outer Ethernet + IPv4 + UDP + VXLAN.
const OVERHEAD: usize = 50;

// ---------------------------------------------------------------------------------------------
// Counting.

/// Every counter the datapath keeps for the tests: drops by reason and the VNI stats slot,
/// summed over CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counters {
    drops: [u64; DropReason::COUNT as usize],
    stats: VniStats,
}

impl Counters {
    fn read(dp: &mut Datapath) -> Self {
        let mut drops = [0u64; DropReason::COUNT as usize];
        let map = dp.drops().expect("DROPS");
        for reason in DropReason::ALL {
            drops[reason as usize] = map
                .get(&(reason as u32), 0)
                .expect("DROPS entry")
                .iter()
                .sum();
        }
        let mut stats = VniStats::default();
        for s in dp
            .vni_stats()
            .expect("VNI_STATS")
            .get(&SLOT, 0)
            .expect("VNI_STATS entry")
            .iter()
        {
            stats.accumulate(s);
        }
        Self { drops, stats }
    }

    fn drop_count(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    /// The counters after `self` plus one drop of `reason`.
    fn with_drop(mut self, reason: DropReason) -> Self {
        self.drops[reason as usize] += 1;
        self
    }

    /// The names of the drop reasons that differ from `before`.
    fn moved_drops(&self, before: &Self) -> Vec<&'static str> {
        DropReason::ALL
            .iter()
            .filter(|r| self.drop_count(**r) != before.drop_count(**r))
            .map(|r| r.name())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Frames.

/// An IPv4/UDP frame from WL0 to the workload `dst_mac` (10.0.0.2), source port `sport`.
fn wl0_udp_frame(dst_mac: Mac, sport: u16) -> Vec<u8> {
    let payload = b"vtep datapath test payload";
    eth(
        dst_mac,
        WL0_MAC,
        ETH_P_IP,
        &Ipv4::new(WL0_IP, REMOTE_WL_IP, IPPROTO_UDP).build(&udp(
            WL0_IP,
            REMOTE_WL_IP,
            sport,
            7000,
            payload,
        )),
    )
}

/// An IPv4/UDP frame from the remote workload to `dst_mac`, as it arrives inside VXLAN.
fn remote_udp_frame(dst_mac: Mac) -> Vec<u8> {
    eth(
        dst_mac,
        REMOTE_WL_MAC,
        ETH_P_IP,
        &Ipv4::new(REMOTE_WL_IP, WL0_IP, IPPROTO_UDP).build(&udp(
            REMOTE_WL_IP,
            WL0_IP,
            7000,
            7001,
            b"from the remote side",
        )),
    )
}

/// An IPv6/UDP frame from WL0 to the workload `dst_mac`.
fn wl0_udp6_frame(dst_mac: Mac) -> Vec<u8> {
    eth(
        dst_mac,
        WL0_MAC,
        ETH_P_IPV6,
        &ipv6(
            WL0_IP6,
            REMOTE_WL_IP6,
            IPPROTO_UDP,
            &udp6(WL0_IP6, REMOTE_WL_IP6, 1000, 7000, b"v6 payload"),
        ),
    )
}

/// The outer IPv4 header the remote VTEP sends to us.
fn outer_ip_to(dst: Ipv4Addr) -> Ipv4 {
    Ipv4::new(REMOTE_IP, dst, IPPROTO_UDP)
}

/// A VXLAN packet from the remote VTEP to us on `dport` with VXLAN header `vx` around `inner`.
fn vxlan_to_us(dport: u16, vx: [u8; 8], inner: &[u8]) -> Vec<u8> {
    vxlan_packet(
        UL_MAC,
        NEIGH_MAC,
        outer_ip_to(LOCAL_IP),
        54321,
        dport,
        vx,
        inner,
    )
}

// ---------------------------------------------------------------------------------------------
// Checking encapsulated output.

/// The outer fields an encapsulated packet must carry.
struct Expect {
    dst_ip: Ipv4Addr,
    dstport: u16,
    ttl: u8,
    vni: u32,
    srcport_min: u16,
    srcport_max: u16,
}

impl Expect {
    fn standard() -> Self {
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

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// Asserts that `out` is `inner` encapsulated for the remote with every outer header field as
/// `want` says; returns the outer UDP source port.
fn check_encap(out: &[u8], inner: &[u8], want: &Expect) -> u16 {
    assert_eq!(
        out.len(),
        inner.len() + OVERHEAD,
        "encapsulation adds exactly {OVERHEAD} bytes"
    );
    let inner_len = inner.len();

    // Outer Ethernet: to the underlay neighbour, from ul0, IPv4.
    assert_eq!(out[0..6], NEIGH_MAC, "outer dst MAC (the neighbour's)");
    assert_eq!(out[6..12], UL_MAC, "outer src MAC (ul0's)");
    assert_eq!(be16(&out[12..14]), ETH_P_IP, "outer ethertype");

    // Outer IPv4.
    let ip = &out[14..34];
    assert_eq!(ip[0], 0x45, "version 4, IHL 5");
    assert_eq!(ip[1], 0, "TOS");
    assert_eq!(
        be16(&ip[2..4]) as usize,
        inner_len + 36,
        "IPv4 total length"
    );
    assert_eq!(be16(&ip[4..6]), 0, "IPv4 id");
    assert_eq!(be16(&ip[6..8]), IP_DF, "DF set, no fragment offset");
    assert_eq!(ip[8], want.ttl, "TTL");
    assert_eq!(ip[9], IPPROTO_UDP, "protocol");
    let mut zeroed = ip.to_vec();
    zeroed[10..12].fill(0);
    assert_eq!(
        be16(&ip[10..12]),
        checksum(&zeroed),
        "IPv4 header checksum (recomputed)"
    );
    assert_eq!(ip[12..16], LOCAL_IP.octets(), "outer source address");
    assert_eq!(
        ip[16..20],
        want.dst_ip.octets(),
        "outer destination address"
    );

    // Outer UDP.
    let udp = &out[34..42];
    let srcport = be16(&udp[0..2]);
    assert!(
        (want.srcport_min..=want.srcport_max).contains(&srcport),
        "UDP source port {srcport} outside {}..={}",
        want.srcport_min,
        want.srcport_max
    );
    assert_eq!(be16(&udp[2..4]), want.dstport, "UDP destination port");
    assert_eq!(be16(&udp[4..6]) as usize, inner_len + 16, "UDP length");
    assert_eq!(be16(&udp[6..8]), 0, "UDP checksum (none, RFC 7348)");

    // VXLAN: I flag, reserved zero, 24-bit VNI, reserved zero.
    let vx = &out[42..50];
    assert_eq!(vx[0], VXLAN_I, "VXLAN flags: I only");
    assert_eq!(vx[1..4], [0, 0, 0], "VXLAN reserved bytes 1..4");
    assert_eq!(
        vx[4..7],
        want.vni.to_be_bytes()[1..4],
        "VNI (24 bits, network order)"
    );
    assert_eq!(vx[7], 0, "VXLAN last reserved byte");

    assert_eq!(&out[OVERHEAD..], inner, "inner frame byte-identical");
    srcport
}

/// Encapsulates the frame of flow `sport` and returns the outer source port.
fn srcport_of(dp: &mut Datapath, port: u32, sport: u16, want: &Expect) -> u16 {
    let inner = wl0_udp_frame(REMOTE_WL_MAC, sport);
    let run = test_run(dp, PROG_PORT, port, &inner);
    assert_eq!(run.verdict, TC_ACT_REDIRECT, "flow {sport}");
    check_encap(&run.out, &inner, want)
}

// ---------------------------------------------------------------------------------------------
// 1. Encapsulation.

#[test]
fn encap_ipv4_udp_sets_every_outer_field() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        let inner = wl0_udp_frame(REMOTE_WL_MAC, 1000);
        let before = Counters::read(&mut dp);

        let run = test_run(&mut dp, PROG_PORT, fx.port0, &inner);

        assert_eq!(run.verdict, TC_ACT_REDIRECT, "sent to the underlay");
        check_encap(&run.out, &inner, &Expect::standard());
        let after = Counters::read(&mut dp);
        assert_eq!(after.stats.encap_packets, before.stats.encap_packets + 1);
        assert_eq!(
            after.stats.encap_bytes,
            before.stats.encap_bytes + inner.len() as u64,
            "encap bytes count the inner frame"
        );
        assert_eq!(after.drops, before.drops, "nothing dropped");
    });
}

#[test]
fn encap_source_port_is_stable_per_flow_and_differs_between_flows() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        let want = Expect::standard();
        // One flow, one path: the same inner 5-tuple always gets the same outer source port.
        let first = srcport_of(&mut dp, fx.port0, 1000, &want);
        for _ in 0..5 {
            assert_eq!(srcport_of(&mut dp, fx.port0, 1000, &want), first);
        }
        // Different flows spread over ECMP links: 64 inner source ports cannot all hash to one
        // outer port unless the port ignores the flow.
        let mut ports: Vec<u16> = (2000..2064)
            .map(|sport| srcport_of(&mut dp, fx.port0, sport, &want))
            .collect();
        ports.sort_unstable();
        ports.dedup();
        assert!(ports.len() > 1, "64 flows all got source port {}", ports[0]);
    });
}

#[test]
fn encap_source_port_stays_in_a_narrow_range() {
    let fx = Fixture::new();
    fx.run(|| {
        let (min, max) = (50000, 50003);
        let mut dp = load(&config(min, max), &[fx.table(VNI, PORT_IANA, TTL)]);
        let want = Expect {
            srcport_min: min,
            srcport_max: max,
            ..Expect::standard()
        };
        // check_encap asserts every port is inside the range; 64 flows over 4 ports should
        // also reach both ends of it (an off-by-one in the scaling would miss `max`).
        let mut ports: Vec<u16> = (3000..3064)
            .map(|sport| srcport_of(&mut dp, fx.port0, sport, &want))
            .collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports, vec![50000, 50001, 50002, 50003]);
    });
}

#[test]
fn encap_source_port_is_the_hash_of_the_inner_addresses_protocol_and_ports() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        // A test-run skb has no hash of its own, so the datapath hashes the inner headers:
        // Ethernet type, both IPv4 addresses, the protocol, then both ports.
        let sport = 1234;
        let mut h = flow::mix(flow::SEED, u32::from(ETH_P_IP));
        h = flow::mix(h, u32::from_be_bytes(WL0_IP.octets()));
        h = flow::mix(h, u32::from_be_bytes(REMOTE_WL_IP.octets()));
        h = flow::mix(h, u32::from(IPPROTO_UDP));
        h = flow::mix(h, (u32::from(sport) << 16) | 7000);
        let want_port =
            flow::scale_to_port(flow::finish(h), DEFAULT_SRCPORT_MIN, DEFAULT_SRCPORT_MAX);
        assert_eq!(
            srcport_of(&mut dp, fx.port0, sport, &Expect::standard()),
            want_port
        );
    });
}

#[test]
fn encap_uses_the_cached_next_hop_over_the_fib() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        // What the resolver writes for a remote whose next hop it resolved; distinct MACs, so
        // the output shows they came from the cache and not from the kernel's neighbour table.
        let cached_dmac: Mac = [0x02, 0xca, 0xce, 0x00, 0x00, 0x01];
        let cached_smac: Mac = [0x02, 0xca, 0xce, 0x00, 0x00, 0x02];
        cache_next_hop(&mut dp, REMOTE_IP, fx.ul0, cached_dmac, cached_smac);
        let inner = wl0_udp_frame(REMOTE_WL_MAC, 1000);

        let run = test_run(&mut dp, PROG_PORT, fx.port0, &inner);

        assert_eq!(run.verdict, TC_ACT_REDIRECT, "sent to the underlay");
        assert_eq!(run.out[0..6], cached_dmac, "outer dst MAC from the cache");
        assert_eq!(run.out[6..12], cached_smac, "outer src MAC from the cache");
        // Everything after the MACs is as without the cache.
        let mut as_fib = run.out.clone();
        as_fib[0..6].copy_from_slice(&NEIGH_MAC);
        as_fib[6..12].copy_from_slice(&UL_MAC);
        check_encap(&as_fib, &inner, &Expect::standard());
    });
}

#[test]
fn encap_vni_uses_all_24_bits() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load(
            &config(DEFAULT_SRCPORT_MIN, DEFAULT_SRCPORT_MAX),
            &[fx.table(BIG_VNI, PORT_IANA, TTL)],
        );
        let inner = wl0_udp_frame(REMOTE_WL_MAC, 1000);
        let run = test_run(&mut dp, PROG_PORT, fx.port0, &inner);
        assert_eq!(run.verdict, TC_ACT_REDIRECT);
        check_encap(
            &run.out,
            &inner,
            &Expect {
                vni: BIG_VNI,
                ..Expect::standard()
            },
        );
        assert_eq!(run.out[46..49], [0xAB, 0xCD, 0xEF]);
    });
}

// 2. Per-VNI send parameters.

#[test]
fn encap_uses_the_vnis_dstport_and_ttl() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load(
            &config(DEFAULT_SRCPORT_MIN, DEFAULT_SRCPORT_MAX),
            &[fx.table(VNI, PORT_LEGACY, 9)],
        );
        let inner = wl0_udp_frame(REMOTE_WL_MAC, 1000);
        let run = test_run(&mut dp, PROG_PORT, fx.port0, &inner);
        assert_eq!(run.verdict, TC_ACT_REDIRECT);
        check_encap(
            &run.out,
            &inner,
            &Expect {
                dstport: PORT_LEGACY,
                ttl: 9,
                ..Expect::standard()
            },
        );
    });
}

// 3. Non-IP frames grow at the head (bpf_skb_change_head) instead of with adjust_room.

#[test]
fn encap_arp_unicast_to_a_remote_mac() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        // A unicast ARP request, as a workload sends to refresh its neighbour entry.
        let inner = eth(
            REMOTE_WL_MAC,
            WL0_MAC,
            ETH_P_ARP,
            &arp_request(WL0_MAC, WL0_IP, REMOTE_WL_IP),
        );
        let before = Counters::read(&mut dp);
        let run = test_run(&mut dp, PROG_PORT, fx.port0, &inner);
        assert_eq!(run.verdict, TC_ACT_REDIRECT);
        check_encap(&run.out, &inner, &Expect::standard());
        let after = Counters::read(&mut dp);
        assert_eq!(after.stats.encap_packets, before.stats.encap_packets + 1);
        assert_eq!(after.drops, before.drops, "nothing dropped");
    });
}

#[test]
fn encap_ipv6_frame() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        // IPv6 also grows with adjust_room, with the outer headers still IPv4.
        let inner = wl0_udp6_frame(REMOTE_WL_MAC);
        let before = Counters::read(&mut dp);
        let run = test_run(&mut dp, PROG_PORT, fx.port0, &inner);
        assert_eq!(run.verdict, TC_ACT_REDIRECT);
        check_encap(&run.out, &inner, &Expect::standard());
        let after = Counters::read(&mut dp);
        assert_eq!(after.stats.encap_packets, before.stats.encap_packets + 1);
        assert_eq!(after.drops, before.drops, "nothing dropped");
    });
}

// 4. Local switching.

#[test]
fn local_switching_redirects_unchanged() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        let frame = eth(
            WL1_MAC,
            WL0_MAC,
            ETH_P_IP,
            &Ipv4::new(WL0_IP, WL1_IP, IPPROTO_UDP).build(&udp(WL0_IP, WL1_IP, 1, 2, b"local")),
        );
        let before = Counters::read(&mut dp);
        let run = test_run(&mut dp, PROG_PORT, fx.port0, &frame);
        assert_eq!(run.verdict, TC_ACT_REDIRECT, "redirected to port1");
        assert_eq!(run.out, frame, "a switched frame is not modified");
        let after = Counters::read(&mut dp);
        assert_eq!(after.stats.local_packets, before.stats.local_packets + 1);
        assert_eq!(
            after.stats.local_bytes,
            before.stats.local_bytes + frame.len() as u64
        );
        assert_eq!(after.stats.encap_packets, before.stats.encap_packets);
        assert_eq!(after.drops, before.drops, "nothing dropped");
    });
}

// 5. Decapsulation.

/// Decapsulates `pkt` (carrying `inner`) and checks it is delivered as exactly `inner`.
fn check_decap(dp: &mut Datapath, fx: &Fixture, pkt: &[u8], inner: &[u8]) {
    let before = Counters::read(dp);
    let run = test_run(dp, PROG_UNDERLAY, fx.ul0, pkt);
    let after = Counters::read(dp);
    assert_eq!(
        run.verdict,
        TC_ACT_REDIRECT,
        "delivered to the port; drops moved: {:?}",
        after.moved_drops(&before)
    );
    assert_eq!(run.out, inner, "output is exactly the inner frame");
    assert_eq!(after.stats.decap_packets, before.stats.decap_packets + 1);
    assert_eq!(
        after.stats.decap_bytes,
        before.stats.decap_bytes + inner.len() as u64,
        "decap bytes count the inner frame"
    );
    assert_eq!(after.drops, before.drops, "nothing dropped");
}

#[test]
fn decap_delivers_the_inner_frame() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        let inner = remote_udp_frame(WL0_MAC);
        let pkt = vxlan_to_us(PORT_IANA, vxlan_header(VXLAN_I, VNI), &inner);
        check_decap(&mut dp, &fx, &pkt, &inner);
    });
}

#[test]
fn decap_ignores_reserved_bits() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        let inner = remote_udp_frame(WL0_MAC);
        // Every reserved bit set: flags other than I, the 24 bits after the flags and the last
        // byte. RFC 7348 section 5: reserved fields are ignored on receipt.
        let v = VNI.to_be_bytes();
        let vx = [0xff, 0xff, 0xff, 0xff, v[1], v[2], v[3], 0xff];
        let pkt = vxlan_to_us(PORT_IANA, vx, &inner);
        check_decap(&mut dp, &fx, &pkt, &inner);
    });
}

#[test]
fn decap_vni_uses_all_24_bits_and_the_legacy_port() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load(
            &config(DEFAULT_SRCPORT_MIN, DEFAULT_SRCPORT_MAX),
            &[fx.table(BIG_VNI, PORT_LEGACY, TTL)],
        );
        let inner = remote_udp_frame(WL0_MAC);
        let pkt = vxlan_to_us(PORT_LEGACY, vxlan_header(VXLAN_I, BIG_VNI), &inner);
        check_decap(&mut dp, &fx, &pkt, &inner);
    });
}

#[test]
fn decap_arp_frame() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        // A 42-byte ARP frame: not IP, and shorter than the 60-byte Ethernet minimum, as Linux
        // senders put it into VXLAN.
        let inner = eth(
            WL0_MAC,
            REMOTE_WL_MAC,
            ETH_P_ARP,
            &arp_request(REMOTE_WL_MAC, REMOTE_WL_IP, WL0_IP),
        );
        let pkt = vxlan_to_us(PORT_IANA, vxlan_header(VXLAN_I, VNI), &inner);
        check_decap(&mut dp, &fx, &pkt, &inner);
    });
}

#[test]
fn decap_ipv6_inner_frame() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        let inner = eth(
            WL0_MAC,
            REMOTE_WL_MAC,
            ETH_P_IPV6,
            &ipv6(
                REMOTE_WL_IP6,
                WL0_IP6,
                IPPROTO_UDP,
                &udp6(
                    REMOTE_WL_IP6,
                    WL0_IP6,
                    7000,
                    7001,
                    b"v6 from the remote side",
                ),
            ),
        );
        let pkt = vxlan_to_us(PORT_IANA, vxlan_header(VXLAN_I, VNI), &inner);
        check_decap(&mut dp, &fx, &pkt, &inner);
    });
}

/// Fails against the datapath as written: `bpf_skb_adjust_room` refuses to shrink when fewer
/// than 20 bytes (an IPv4 header) would remain after the MAC header, so every inner frame of
/// 14..=33 bytes is dropped as decap_failed.
#[test]
fn decap_short_inner_frame() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        // A 20-byte IEEE 802.2 LLC XID frame (length field 6: DSAP 0, SSAP 0, control 0xAF,
        // 3 bytes of XID information). It holds an Ethernet header, so it is no
        // vxlan_truncated case, and the kernel's vxlan driver delivers it; so must we.
        let inner = eth(
            WL0_MAC,
            REMOTE_WL_MAC,
            0x0006,
            &[0x00, 0x00, 0xaf, 0x81, 0x01, 0x00],
        );
        assert_eq!(inner.len(), 20);
        let pkt = vxlan_to_us(PORT_IANA, vxlan_header(VXLAN_I, VNI), &inner);
        check_decap(&mut dp, &fx, &pkt, &inner);
    });
}

#[test]
fn decap_to_a_remote_mac_is_dropped() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        // VTEPs do not send overlay traffic back into the overlay.
        let inner = remote_udp_frame(REMOTE_WL_MAC);
        let pkt = vxlan_to_us(PORT_IANA, vxlan_header(VXLAN_I, VNI), &inner);
        let before = Counters::read(&mut dp);
        let run = test_run(&mut dp, PROG_UNDERLAY, fx.ul0, &pkt);
        assert_eq!(run.verdict, TC_ACT_SHOT);
        assert_eq!(
            Counters::read(&mut dp),
            before.with_drop(DropReason::DecapToRemote)
        );
    });
}

// 6-8. VXLAN for us that is refused.

/// Runs the underlay program on `pkt` and asserts it is dropped, counted under `reason` only.
fn check_refused(dp: &mut Datapath, fx: &Fixture, pkt: &[u8], reason: DropReason, what: &str) {
    let before = Counters::read(dp);
    let run = test_run(dp, PROG_UNDERLAY, fx.ul0, pkt);
    let after = Counters::read(dp);
    assert_eq!(run.verdict, TC_ACT_SHOT, "{what}: dropped");
    assert_eq!(
        after,
        before.with_drop(reason),
        "{what}: counted as {} and nothing else; moved: {:?}",
        reason.name(),
        after.moved_drops(&before)
    );
}

#[test]
fn decap_unknown_vni_is_dropped() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        let inner = remote_udp_frame(WL0_MAC);
        let pkt = vxlan_to_us(PORT_IANA, vxlan_header(VXLAN_I, UNKNOWN_VNI), &inner);
        check_refused(&mut dp, &fx, &pkt, DropReason::UnknownVni, "VNI 200");
        // VNI 100 is configured on 4789 only; on the other port we listen on it is unknown.
        let pkt = vxlan_to_us(PORT_LEGACY, vxlan_header(VXLAN_I, VNI), &inner);
        check_refused(
            &mut dp,
            &fx,
            &pkt,
            DropReason::UnknownVni,
            "VNI 100 on 8472",
        );
    });
}

#[test]
fn decap_i_flag_clear_is_dropped() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        let inner = remote_udp_frame(WL0_MAC);
        let pkt = vxlan_to_us(PORT_IANA, vxlan_header(0, VNI), &inner);
        check_refused(&mut dp, &fx, &pkt, DropReason::VxlanBadFlags, "flags 0");
        // Every other flag bit set does not stand in for I.
        let pkt = vxlan_to_us(PORT_IANA, vxlan_header(!VXLAN_I, VNI), &inner);
        check_refused(&mut dp, &fx, &pkt, DropReason::VxlanBadFlags, "flags 0xf7");
    });
}

#[test]
fn decap_truncated_is_dropped() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        // Cut inside the VXLAN header: 4 of its 8 bytes (lengths consistent with the cut).
        let ip = outer_ip_to(LOCAL_IP);
        let pkt = eth(
            UL_MAC,
            NEIGH_MAC,
            ETH_P_IP,
            &ip.build(&udp_no_checksum(54321, PORT_IANA, &[VXLAN_I, 0, 0, 0])),
        );
        check_refused(
            &mut dp,
            &fx,
            &pkt,
            DropReason::VxlanTruncated,
            "cut in the VXLAN header",
        );
        // A full VXLAN header but a 13-byte inner frame: no room for an Ethernet header.
        let inner = remote_udp_frame(WL0_MAC);
        let pkt = vxlan_to_us(PORT_IANA, vxlan_header(VXLAN_I, VNI), &inner[..13]);
        check_refused(
            &mut dp,
            &fx,
            &pkt,
            DropReason::VxlanTruncated,
            "13-byte inner frame",
        );
    });
}

// 9. Everything that is not VXLAN for us passes untouched.

#[test]
fn underlay_passes_what_is_not_vxlan_for_us() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        let inner = remote_udp_frame(WL0_MAC);
        let vx = vxlan_header(VXLAN_I, VNI);
        let vxlan_payload = [vx.as_slice(), inner.as_slice()].concat();
        let ip_to_us = |proto| Ipv4::new(REMOTE_IP, LOCAL_IP, proto);
        let frame = |payload: &[u8]| eth(UL_MAC, NEIGH_MAC, ETH_P_IP, payload);

        // A first fragment holds a complete, valid-looking VXLAN packet; a later fragment
        // starts with bytes that look like a UDP header to 4789. Both are for reassembly.
        let whole = udp_no_checksum(54321, PORT_IANA, &vxlan_payload);
        let first_fragment = Ipv4 {
            frag: IP_MF,
            id: 7,
            ..ip_to_us(IPPROTO_UDP)
        }
        .build(&whole);
        let later_fragment = Ipv4 {
            frag: 185, // offset 1480 bytes, last fragment
            id: 7,
            ..ip_to_us(IPPROTO_UDP)
        }
        .build(&whole);

        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "UDP to us, port 53",
                frame(&ip_to_us(IPPROTO_UDP).build(&udp(
                    REMOTE_IP,
                    LOCAL_IP,
                    54321,
                    53,
                    b"\x12\x34query",
                ))),
            ),
            (
                "UDP:4789 to another address",
                vxlan_packet(
                    UL_MAC,
                    NEIGH_MAC,
                    outer_ip_to(OTHER_IP),
                    54321,
                    PORT_IANA,
                    vx,
                    &inner,
                ),
            ),
            (
                "TCP to us, port 4789",
                frame(
                    &ip_to_us(IPPROTO_TCP)
                        .build(&tcp(REMOTE_IP, LOCAL_IP, 40000, PORT_IANA, 0x02, b"")),
                ),
            ),
            (
                "ARP on the underlay",
                eth(
                    BROADCAST,
                    NEIGH_MAC,
                    ETH_P_ARP,
                    &arp_request(NEIGH_MAC, REMOTE_IP, LOCAL_IP),
                ),
            ),
            (
                "IPv6 UDP to port 4789",
                eth(
                    UL_MAC,
                    NEIGH_MAC,
                    ETH_P_IPV6,
                    // The UDP checksum is left zero: the program passes IPv6 before reading it.
                    &ipv6(
                        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
                        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
                        IPPROTO_UDP,
                        &udp_no_checksum(54321, PORT_IANA, &vxlan_payload),
                    ),
                ),
            ),
            ("IPv4 first fragment to 4789", frame(&first_fragment)),
            ("IPv4 later fragment to 4789", frame(&later_fragment)),
            // The kernel's IP layer drops a corrupted header; the datapath must not trust it.
            ("VXLAN with a corrupted outer IPv4 checksum", {
                let mut pkt = vxlan_to_us(PORT_IANA, vx, &inner);
                pkt[14 + 10] ^= 0xff;
                pkt
            }),
            // Seen in promiscuous mode: addressed to our IP, but another host's MAC.
            ("VXLAN to our address but another host's MAC", {
                let mut pkt = vxlan_to_us(PORT_IANA, vx, &inner);
                pkt[..6].copy_from_slice(&UNKNOWN_MAC);
                pkt
            }),
        ];
        for (what, pkt) in cases {
            let before = Counters::read(&mut dp);
            let run = test_run(&mut dp, PROG_UNDERLAY, fx.ul0, &pkt);
            let after = Counters::read(&mut dp);
            assert_eq!(run.verdict, TC_ACT_OK, "{what}: passed to the kernel");
            assert_eq!(run.out, pkt, "{what}: bytes untouched");
            assert_eq!(
                after,
                before,
                "{what}: no counter moved; drops moved: {:?}",
                after.moved_drops(&before)
            );
        }
    });
}

// 10. Flooding.

/// Floods `frame` from port0 and checks: SHOT (the original is consumed, not dropped), no drop
/// counted, the flood counter moved, one clone went out of port1, one encapsulated clone out of
/// ul0 and none back out of port0. The original was the template of the encapsulated copy, so the program leaves it
/// encapsulated for REMOTE_IP.
fn check_flood_from_port0(frame: &[u8]) {
    let fx = Fixture::new();
    let (port0_tx, port1_tx, ul0_tx) = (
        fx.tx_packets("port0"),
        fx.tx_packets("port1"),
        fx.tx_packets("ul0"),
    );
    fx.run(|| {
        let mut dp = load_standard(&fx);
        let before = Counters::read(&mut dp);
        let run = test_run(&mut dp, PROG_PORT, fx.port0, frame);
        let after = Counters::read(&mut dp);
        assert_eq!(run.verdict, TC_ACT_SHOT, "the original is consumed");
        assert_eq!(
            after.drops,
            before.drops,
            "flooding is not a drop; moved: {:?}",
            after.moved_drops(&before)
        );
        assert_eq!(after.stats.flood_packets, before.stats.flood_packets + 1);
        assert_eq!(
            after.stats.encap_packets,
            before.stats.encap_packets + 1,
            "one encapsulated copy for the one remote"
        );
        check_encap(&run.out, frame, &Expect::standard());
    });
    // bpf_clone_redirect transmits for real, also under BPF_PROG_TEST_RUN.
    assert_eq!(
        fx.tx_packets("port0"),
        port0_tx,
        "no copy back to the sender's port"
    );
    assert_eq!(
        fx.tx_packets("port1"),
        port1_tx + 1,
        "one raw copy out of port1"
    );
    assert_eq!(
        fx.tx_packets("ul0"),
        ul0_tx + 1,
        "one encapsulated copy out of ul0"
    );
}

#[test]
fn flood_broadcast_to_the_remote_and_the_other_port() {
    // An ARP broadcast, the most common flooded frame (non-IP: grows with change_head).
    check_flood_from_port0(&eth(
        BROADCAST,
        WL0_MAC,
        ETH_P_ARP,
        &arp_request(WL0_MAC, WL0_IP, REMOTE_WL_IP),
    ));
}

#[test]
fn flood_unknown_unicast_to_the_remote_and_the_other_port() {
    // IPv4 to a MAC nobody knows (grows with adjust_room).
    check_flood_from_port0(&wl0_udp_frame(UNKNOWN_MAC, 1000));
}

#[test]
fn decap_broadcast_floods_to_the_local_ports() {
    let fx = Fixture::new();
    let (port0_tx, port1_tx, ul0_tx) = (
        fx.tx_packets("port0"),
        fx.tx_packets("port1"),
        fx.tx_packets("ul0"),
    );
    fx.run(|| {
        let mut dp = load_standard(&fx);
        let inner = eth(
            BROADCAST,
            REMOTE_WL_MAC,
            ETH_P_ARP,
            &arp_request(REMOTE_WL_MAC, REMOTE_WL_IP, WL0_IP),
        );
        let pkt = vxlan_to_us(PORT_IANA, vxlan_header(VXLAN_I, VNI), &inner);
        let before = Counters::read(&mut dp);
        let run = test_run(&mut dp, PROG_UNDERLAY, fx.ul0, &pkt);
        let after = Counters::read(&mut dp);
        assert_eq!(run.verdict, TC_ACT_SHOT, "the original is consumed");
        assert_eq!(
            after.drops,
            before.drops,
            "not a drop; moved: {:?}",
            after.moved_drops(&before)
        );
        assert_eq!(after.stats.flood_packets, before.stats.flood_packets + 1);
        assert_eq!(after.stats.decap_packets, before.stats.decap_packets + 1);
        assert_eq!(run.out, inner, "the copies were made of the inner frame");
    });
    assert_eq!(fx.tx_packets("port0"), port0_tx + 1, "a copy to port0");
    assert_eq!(fx.tx_packets("port1"), port1_tx + 1, "a copy to port1");
    assert_eq!(fx.tx_packets("ul0"), ul0_tx, "never back into the overlay");
}

// Refusals of the port program.

/// Runs the port program on `frame` as if it came in on `ifindex` and asserts it is dropped,
/// counted under `reason` only (no traffic counter moves for a frame that was not sent).
fn check_port_refuses(dp: &mut Datapath, ifindex: u32, frame: &[u8], reason: DropReason) {
    let before = Counters::read(dp);
    let run = test_run(dp, PROG_PORT, ifindex, frame);
    let after = Counters::read(dp);
    assert_eq!(run.verdict, TC_ACT_SHOT, "{}: dropped", reason.name());
    assert_eq!(
        after,
        before.with_drop(reason),
        "counted as {} and nothing else; drops moved: {:?}",
        reason.name(),
        after.moved_drops(&before)
    );
}

#[test]
fn port_program_on_an_unknown_port_drops() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        // The program run for an interface that has no port entry (ul0).
        let frame = wl0_udp_frame(REMOTE_WL_MAC, 1000);
        check_port_refuses(&mut dp, fx.ul0, &frame, DropReason::UnknownPort);
    });
}

#[test]
fn encap_without_a_route_drops() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        // UNROUTABLE_WL is behind a VTEP the namespace has no route to.
        let frame = wl0_udp_frame(UNROUTABLE_WL_MAC, 1000);
        check_port_refuses(&mut dp, fx.port0, &frame, DropReason::NoRoute);
    });
}

/// Fails against the datapath as written: port.rs counts `Traffic::Encap` before it decides the
/// frame cannot be sent, so the drop also shows as an encapsulated packet (encap_packets +1).
#[test]
fn encap_non_ip_to_an_unresolved_neighbour_drops_without_counting_it_sent() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        // A non-IP frame cannot wait for the neighbour in the kernel (bpf_redirect_neigh takes
        // only IPv4 skbs), so it is dropped as nexthop_unresolved. It was not sent, so encap_packets must
        // not count it.
        let frame = eth(
            UNRESOLVED_WL_MAC,
            WL0_MAC,
            ETH_P_ARP,
            &arp_request(WL0_MAC, WL0_IP, REMOTE_WL_IP),
        );
        check_port_refuses(&mut dp, fx.port0, &frame, DropReason::NexthopUnresolved);
    });
}

#[test]
fn encap_to_an_unresolved_neighbour_lets_the_kernel_resolve() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        // An IPv4 frame waits for neighbour resolution in the kernel (bpf_redirect_neigh): the
        // outer MACs stay zero for the kernel to fill; everything else is as usual.
        let inner = wl0_udp_frame(UNRESOLVED_WL_MAC, 1000);
        let run = test_run(&mut dp, PROG_PORT, fx.port0, &inner);
        assert_eq!(run.verdict, TC_ACT_REDIRECT);
        assert_eq!(run.out[0..12], [0; 12], "outer MACs left to the kernel");
        let mut with_macs = run.out.clone();
        with_macs[0..6].copy_from_slice(&NEIGH_MAC);
        with_macs[6..12].copy_from_slice(&UL_MAC);
        check_encap(
            &with_macs,
            &inner,
            &Expect {
                dst_ip: UNRESOLVED_IP,
                ..Expect::standard()
            },
        );
    });
}

// ---------------------------------------------------------------------------------------------
// 10. Learning (the kernel's `learning`, `maxaddress`).

/// A MAC nobody configured, behind a remote VTEP.
const ROAMING_MAC: Mac = [0x02, 0x00, 0x00, 0x00, 0x0e, 0x01];
/// Another remote VTEP on the underlay subnet.
const OTHER_VTEP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);

/// A VXLAN packet from VTEP `from` to us carrying a frame from `src` to WL0.
fn vxlan_from(from: Ipv4Addr, src: Mac) -> (Vec<u8>, Vec<u8>) {
    let inner = eth(
        WL0_MAC,
        src,
        ETH_P_IP,
        &Ipv4::new(REMOTE_WL_IP, WL0_IP, IPPROTO_UDP).build(&udp(
            REMOTE_WL_IP,
            WL0_IP,
            7000,
            7001,
            b"learn me",
        )),
    );
    let pkt = vxlan_packet(
        UL_MAC,
        NEIGH_MAC,
        Ipv4::new(from, LOCAL_IP, IPPROTO_UDP),
        54321,
        PORT_IANA,
        vxlan_header(VXLAN_I, VNI),
        &inner,
    );
    (pkt, inner)
}

fn fdb_entry(dp: &mut Datapath, mac: Mac) -> Option<FdbEntry> {
    dp.fdb()
        .expect("FDB")
        .get(
            &FdbKey {
                vni: VNI,
                mac,
                _pad: [0; 2],
            },
            0,
        )
        .ok()
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
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        assert_eq!(fdb_entry(&mut dp, ROAMING_MAC), None);
        let (pkt, inner) = vxlan_from(REMOTE_IP, ROAMING_MAC);

        check_decap(&mut dp, &fx, &pkt, &inner);

        let e = fdb_entry(&mut dp, ROAMING_MAC).expect("learned");
        assert_eq!((e.kind, e.remote), (FDB_REMOTE, REMOTE_IP.octets()));
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
                .get(&REMOTE_IP.octets(), 0)
                .is_ok(),
            "the VTEP is noted for userspace to resolve"
        );
        // Traffic to it now goes to that VTEP only, not to the flood list.
        let out = wl0_udp_frame(ROAMING_MAC, 1000);
        let run = test_run(&mut dp, PROG_PORT, fx.port0, &out);
        assert_eq!(run.verdict, TC_ACT_REDIRECT);
        check_encap(&run.out, &out, &Expect::standard());
    });
}

#[test]
fn a_forged_outer_source_teaches_nothing() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        for forged in [
            Ipv4Addr::new(0, 0, 0, 0),
            Ipv4Addr::new(127, 0, 0, 1),
            Ipv4Addr::new(224, 0, 0, 5),
            Ipv4Addr::new(255, 255, 255, 255),
            LOCAL_IP,
        ] {
            let (pkt, inner) = vxlan_from(forged, ROAMING_MAC);
            check_decap(&mut dp, &fx, &pkt, &inner);
            assert_eq!(
                fdb_entry(&mut dp, ROAMING_MAC),
                None,
                "learned behind {forged}"
            );
        }
        assert!(dp.dynamic_vteps().unwrap().keys().next().is_none());
    });
}

#[test]
fn learned_mac_moves_to_another_vtep_but_static_entries_never_do() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        let (pkt, inner) = vxlan_from(REMOTE_IP, ROAMING_MAC);
        check_decap(&mut dp, &fx, &pkt, &inner);
        let (pkt, inner) = vxlan_from(OTHER_VTEP, ROAMING_MAC);
        check_decap(&mut dp, &fx, &pkt, &inner);
        let e = fdb_entry(&mut dp, ROAMING_MAC).expect("still known");
        assert_eq!(e.remote, OTHER_VTEP.octets(), "moved with the station");
        assert_eq!(e.flags, FDB_F_LEARNED);
        assert_eq!(
            dp.learned().unwrap().get(&SLOT, 0).unwrap(),
            1,
            "a move is not a new entry"
        );

        // REMOTE_WL_MAC is configured behind REMOTE_IP: a frame claiming it from elsewhere
        // changes nothing. Nor does WL0's own MAC (a static local entry).
        let before = fdb_entry(&mut dp, REMOTE_WL_MAC).expect("static entry");
        let (pkt, inner) = vxlan_from(OTHER_VTEP, REMOTE_WL_MAC);
        check_decap(&mut dp, &fx, &pkt, &inner);
        assert_eq!(fdb_entry(&mut dp, REMOTE_WL_MAC), Some(before));
        let local = fdb_entry(&mut dp, WL0_MAC).expect("WL0's entry");
        let (pkt, _) = vxlan_from(OTHER_VTEP, WL0_MAC);
        test_run(&mut dp, PROG_UNDERLAY, fx.ul0, &pkt);
        assert_eq!(fdb_entry(&mut dp, WL0_MAC), Some(local));
    });
}

#[test]
fn a_known_entry_is_not_rewritten_per_packet_only_refreshed_when_stale() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        let (pkt, inner) = vxlan_from(REMOTE_IP, ROAMING_MAC);
        check_decap(&mut dp, &fx, &pkt, &inner);
        let key = FdbKey {
            vni: VNI,
            mac: ROAMING_MAC,
            _pad: [0; 2],
        };
        // A marker in a field the datapath never writes for a remote entry, and a fresh
        // stamp: a rewrite of the entry, or of the stamp, would show.
        let mut marked = fdb_entry(&mut dp, ROAMING_MAC).unwrap();
        marked.port_flags = 0x5a5a;
        marked.seen = monotonic_secs();
        dp.fdb().unwrap().insert(key, marked, 0).unwrap();
        for _ in 0..100 {
            test_run(&mut dp, PROG_UNDERLAY, fx.ul0, &pkt);
        }
        let after = fdb_entry(&mut dp, ROAMING_MAC).unwrap();
        assert_eq!(after.port_flags, 0x5a5a, "the entry was not rewritten");
        assert!(after.seen.wrapping_sub(marked.seen) <= 1, "stamp kept");

        // A stamp 10 s old is refreshed by the next frame (in place: the marker stays).
        let mut stale = after;
        stale.seen = monotonic_secs() - 10;
        dp.fdb().unwrap().insert(key, stale, 0).unwrap();
        test_run(&mut dp, PROG_UNDERLAY, fx.ul0, &pkt);
        let refreshed = fdb_entry(&mut dp, ROAMING_MAC).unwrap();
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
            let src = [b[0] & 0xfe | 0x02, b[1], b[2], b[3], b[4], b[5]];
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
        let pkt = vxlan_to_us(PORT_IANA, vxlan_header(VXLAN_I, VNI), &inner);
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
        let behind_port1: Mac = [0x02, 0x00, 0x00, 0x00, 0x0a, 0x01];
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
        let stranger: Mac = [0x02, 0x00, 0x00, 0x00, 0x0a, 0x02];
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

// ---------------------------------------------------------------------------------------------
// 11. Miss events (the kernel's `l2miss`).

fn miss_events(dp: &mut Datapath) -> Vec<vtep::ctl::monitor::Event> {
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
        assert_eq!(e.mac.map(|m| m.0), Some(UNKNOWN_MAC));
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
        let other: Mac = [0x02, 0x00, 0x00, 0x00, 0x0f, 0x10];
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
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_standard(&fx);
        test_run(
            &mut dp,
            PROG_PORT,
            fx.port0,
            &wl0_udp_frame(UNKNOWN_MAC, 1000),
        );
        assert!(miss_events(&mut dp).is_empty());
    });
}

// ---------------------------------------------------------------------------------------------
// 12. ARP proxy (the kernel's `proxy`, `l3miss`).

/// The standard table with the proxy on (and `extra` flags), knowing REMOTE_WL_IP.
fn load_proxy(fx: &Fixture, extra: u32) -> Datapath {
    load_changed(fx, |table| {
        table.flags = VNI_F_PROXY | extra;
        table.proxy_entries = vec![(REMOTE_WL_IP.into(), vtep::mac::Mac(REMOTE_WL_MAC))];
    })
}

/// WL0 asking, by broadcast, who has `target`.
fn wl0_arp_request(target: Ipv4Addr) -> Vec<u8> {
    eth(
        BROADCAST,
        WL0_MAC,
        ETH_P_ARP,
        &arp_request(WL0_MAC, WL0_IP, target),
    )
}

#[test]
fn proxy_answers_a_request_for_a_known_address_on_the_host() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_proxy(&fx, 0);
        let before = Counters::read(&mut dp);
        let ul_sent = fx.tx_packets("ul0");

        let run = test_run(&mut dp, PROG_PORT, fx.port0, &wl0_arp_request(REMOTE_WL_IP));

        assert_eq!(run.verdict, TC_ACT_REDIRECT, "sent back to the asking port");
        let want = eth(
            WL0_MAC,
            REMOTE_WL_MAC,
            ETH_P_ARP,
            &arp_reply(REMOTE_WL_MAC, REMOTE_WL_IP, WL0_MAC, WL0_IP),
        );
        assert_eq!(run.out, want, "the reply, exactly");
        let after = Counters::read(&mut dp);
        assert_eq!(after.stats.proxy_replies, before.stats.proxy_replies + 1);
        assert_eq!(
            after.stats.flood_packets, before.stats.flood_packets,
            "not flooded"
        );
        assert_eq!(after.stats.encap_packets, before.stats.encap_packets);
        assert_eq!(
            fx.tx_packets("ul0"),
            ul_sent,
            "no VXLAN packet left the host"
        );
    });
}

#[test]
fn proxy_floods_unknown_and_gratuitous_requests_and_reports_l3miss() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_proxy(&fx, VNI_F_L3MISS);
        let unknown = Ipv4Addr::new(10, 0, 0, 99);
        let before = Counters::read(&mut dp);
        let run = test_run(&mut dp, PROG_PORT, fx.port0, &wl0_arp_request(unknown));
        assert_eq!(run.verdict, TC_ACT_SHOT, "consumed by the flood");
        let after = Counters::read(&mut dp);
        assert_eq!(after.stats.flood_packets, before.stats.flood_packets + 1);
        assert_eq!(after.stats.proxy_replies, before.stats.proxy_replies);
        let events = miss_events(&mut dp);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!((events[0].event, events[0].ip), ("l3miss", Some(unknown)));
        assert_eq!(events[0].port, "port0");

        // A gratuitous announcement of a known address is flooded, not answered.
        let garp = eth(
            BROADCAST,
            WL0_MAC,
            ETH_P_ARP,
            &arp_request(WL0_MAC, REMOTE_WL_IP, REMOTE_WL_IP),
        );
        let before = Counters::read(&mut dp);
        test_run(&mut dp, PROG_PORT, fx.port0, &garp);
        let after = Counters::read(&mut dp);
        assert_eq!(after.stats.proxy_replies, before.stats.proxy_replies);
        assert_eq!(after.stats.flood_packets, before.stats.flood_packets + 1);
        assert!(
            miss_events(&mut dp).is_empty(),
            "no l3miss for an announcement"
        );
    });
}

#[test]
fn proxy_learns_addresses_from_arp_in_decapsulated_frames() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_proxy(&fx, 0);
        let roaming_ip = Ipv4Addr::new(10, 0, 0, 77);
        // A remote workload's reply to WL0 teaches where roaming_ip is.
        let inner = eth(
            WL0_MAC,
            ROAMING_MAC,
            ETH_P_ARP,
            &arp_reply(ROAMING_MAC, roaming_ip, WL0_MAC, WL0_IP),
        );
        let pkt = vxlan_to_us(PORT_IANA, vxlan_header(VXLAN_I, VNI), &inner);
        check_decap(&mut dp, &fx, &pkt, &inner);
        let entry = dp
            .proxy()
            .unwrap()
            .get(
                &ProxyKey {
                    vni: VNI,
                    ip: roaming_ip.octets(),
                },
                0,
            )
            .expect("learned");
        assert_eq!((entry.mac, entry.flags), (ROAMING_MAC, FDB_F_LEARNED));

        let run = test_run(&mut dp, PROG_PORT, fx.port0, &wl0_arp_request(roaming_ip));
        assert_eq!(run.verdict, TC_ACT_REDIRECT);
        assert_eq!(
            &run.out[6..12],
            &ROAMING_MAC,
            "answered with the learned MAC"
        );
    });
}

#[test]
fn without_proxy_requests_are_flooded_even_for_known_addresses() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_changed(&fx, |table| {
            table.proxy_entries = vec![(REMOTE_WL_IP.into(), vtep::mac::Mac(REMOTE_WL_MAC))];
        });
        let before = Counters::read(&mut dp);
        test_run(&mut dp, PROG_PORT, fx.port0, &wl0_arp_request(REMOTE_WL_IP));
        let after = Counters::read(&mut dp);
        assert_eq!(after.stats.flood_packets, before.stats.flood_packets + 1);
        assert_eq!(after.stats.proxy_replies, 0);
    });
}

/// WL0 soliciting `target` (to its solicited-node multicast address).
fn wl0_solicit(target: Ipv6Addr) -> Vec<u8> {
    let t = target.octets();
    let solicited = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(t[13]),
        u16::from_be_bytes([t[14], t[15]]),
    );
    let o = solicited.octets();
    nd_frame(
        135,
        [0x33, 0x33, o[12], o[13], o[14], o[15]],
        WL0_MAC,
        WL0_IP6,
        solicited,
        target,
        0,
        WL0_MAC,
    )
}

#[test]
fn proxy_answers_a_neighbour_solicitation_for_a_known_ipv6_address() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_changed(&fx, |table| {
            table.flags = VNI_F_PROXY;
            table.proxy_entries = vec![(REMOTE_WL_IP6.into(), vtep::mac::Mac(REMOTE_WL_MAC))];
        });
        let ul_sent = fx.tx_packets("ul0");

        let run = test_run(&mut dp, PROG_PORT, fx.port0, &wl0_solicit(REMOTE_WL_IP6));

        assert_eq!(run.verdict, TC_ACT_REDIRECT, "sent back to the asking port");
        let want = nd_frame(
            136,
            WL0_MAC,
            REMOTE_WL_MAC,
            REMOTE_WL_IP6,
            WL0_IP6,
            REMOTE_WL_IP6,
            0x60,
            REMOTE_WL_MAC,
        );
        assert_eq!(
            run.out, want,
            "the advertisement, exactly (checksum included)"
        );
        assert_eq!(Counters::read(&mut dp).stats.proxy_replies, 1);
        assert_eq!(fx.tx_packets("ul0"), ul_sent, "nothing left the host");

        // Unknown targets and duplicate address detection (unspecified source) are flooded.
        let before = Counters::read(&mut dp);
        let unknown = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x99);
        test_run(&mut dp, PROG_PORT, fx.port0, &wl0_solicit(unknown));
        let mut dad = wl0_solicit(REMOTE_WL_IP6);
        dad[22..38].fill(0);
        test_run(&mut dp, PROG_PORT, fx.port0, &dad);
        let after = Counters::read(&mut dp);
        assert_eq!(after.stats.proxy_replies, before.stats.proxy_replies);
        assert_eq!(after.stats.flood_packets, before.stats.flood_packets + 2);
    });
}

#[test]
fn proxy_learns_ipv6_addresses_from_decapsulated_advertisements() {
    let fx = Fixture::new();
    fx.run(|| {
        let mut dp = load_changed(&fx, |table| {
            table.flags = VNI_F_PROXY;
        });
        let roaming = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x77);
        let advert = nd_frame(
            136,
            WL0_MAC,
            ROAMING_MAC,
            roaming,
            WL0_IP6,
            roaming,
            0x60,
            ROAMING_MAC,
        );
        let pkt = vxlan_to_us(PORT_IANA, vxlan_header(VXLAN_I, VNI), &advert);
        check_decap(&mut dp, &fx, &pkt, &advert);
        let run = test_run(&mut dp, PROG_PORT, fx.port0, &wl0_solicit(roaming));
        assert_eq!(
            run.verdict, TC_ACT_REDIRECT,
            "answered from what was learned"
        );
        assert_eq!(&run.out[6..12], &ROAMING_MAC);
    });
}

// ---------------------------------------------------------------------------------------------
// 13. Multicast underlay (the kernel's `group`).

const GROUP: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);

/// The standard table with broadcast and unknown unicast going to GROUP instead of REMOTE_IP.
fn load_group(fx: &Fixture) -> Datapath {
    load_changed(fx, |table| {
        table.remotes.clear();
        table.group = Some(Group {
            ip: GROUP,
            ttl: 1,
            ifindex: fx.ul0,
            smac: vtep::mac::Mac(UL_MAC),
        });
    })
}

/// A VXLAN packet from the remote VTEP to multicast group `group`, carrying `inner`.
fn vxlan_to_group(group: Ipv4Addr, inner: &[u8]) -> Vec<u8> {
    let o = group.octets();
    vxlan_packet(
        [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]],
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

// ---------------------------------------------------------------------------------------------
// Live: 802.1Q tags. BPF_PROG_TEST_RUN cannot show these: the kernel moves a received frame's
// VLAN tag out of the packet into skb metadata (skb_vlan_untag) before TC ingress runs, and
// test_run neither does that nor accepts vlan fields in the context. So these tests attach the
// programs and send real frames between interfaces of the namespace, through AF_PACKET sockets.

/// `PACKET_AUXDATA` (linux/if_packet.h): `recvmsg` then reports the VLAN tag the kernel holds
/// outside the packet, in a `tpacket_auxdata` (tp_status at offset 0, tp_vlan_tci at 16).
const PACKET_AUXDATA: libc::c_int = 8;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const PACKET_OUTGOING: u8 = 4;
const ETH_P_8021Q: u16 = 0x8100;

/// A raw socket on one interface of the calling thread's namespace.
struct RawSocket {
    fd: std::os::fd::OwnedFd,
    ifindex: u32,
}

/// A frame a [`RawSocket`] received, and the VLAN tag the kernel kept outside it, if any.
struct Received {
    frame: Vec<u8>,
    offloaded_tci: Option<u16>,
}

impl Received {
    /// The VLAN id the frame carries on the wire: offloaded, or in the packet itself.
    fn outer_vlan(&self) -> Option<u16> {
        if let Some(tci) = self.offloaded_tci {
            return Some(tci & 0x0fff);
        }
        (be16(&self.frame[12..14]) == ETH_P_8021Q).then(|| be16(&self.frame[14..16]) & 0x0fff)
    }
}

impl RawSocket {
    fn open(ifindex: u32) -> Self {
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: plain socket calls on a descriptor this function owns; every pointer passed
        // is to a live local of the size given.
        unsafe {
            let raw = libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                i32::from((libc::ETH_P_ALL as u16).to_be()),
            );
            assert!(
                raw >= 0,
                "AF_PACKET socket: {}",
                std::io::Error::last_os_error()
            );
            let fd = std::os::fd::OwnedFd::from_raw_fd(raw);
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
            sll.sll_ifindex = ifindex as i32;
            let r = libc::bind(
                fd.as_raw_fd(),
                (&raw const sll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
            let one: libc::c_int = 1;
            let r = libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_AUXDATA,
                (&raw const one).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            );
            assert_eq!(r, 0, "PACKET_AUXDATA: {}", std::io::Error::last_os_error());
            let tv = libc::timeval {
                tv_sec: 1,
                tv_usec: 0,
            };
            let r = libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            );
            assert_eq!(r, 0, "SO_RCVTIMEO: {}", std::io::Error::last_os_error());
            Self { fd, ifindex }
        }
    }

    /// Transmits `frame` (a complete Ethernet frame) out of the interface.
    fn send(&self, frame: &[u8]) {
        use std::os::fd::AsRawFd;
        // SAFETY: as in `open`.
        unsafe {
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_ifindex = self.ifindex as i32;
            sll.sll_halen = 6;
            let r = libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const sll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            assert_eq!(
                r,
                frame.len() as isize,
                "sendto: {}",
                std::io::Error::last_os_error()
            );
        }
    }

    /// The next frame the interface received (not one it sent) that `want` accepts, or None
    /// after a second without one.
    fn recv(&self, want: impl Fn(&[u8]) -> bool) -> Option<Received> {
        use std::os::fd::AsRawFd;
        loop {
            let mut buf = vec![0u8; 4096];
            let mut cmsg = [0u64; 16];
            // SAFETY: as in `open`; the kernel writes at most the lengths given.
            let (n, sll, msg) = unsafe {
                let mut sll: libc::sockaddr_ll = std::mem::zeroed();
                let mut iov = libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: buf.len(),
                };
                let mut msg: libc::msghdr = std::mem::zeroed();
                msg.msg_name = (&raw mut sll).cast();
                msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
                msg.msg_iov = &raw mut iov;
                msg.msg_iovlen = 1;
                msg.msg_control = cmsg.as_mut_ptr().cast();
                msg.msg_controllen = std::mem::size_of_val(&cmsg);
                let n = libc::recvmsg(self.fd.as_raw_fd(), &raw mut msg, 0);
                (n, sll, msg)
            };
            if n < 0 {
                let err = std::io::Error::last_os_error();
                assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock, "recvmsg: {err}");
                return None;
            }
            buf.truncate(n as usize);
            if sll.sll_pkttype == PACKET_OUTGOING || !want(&buf) {
                continue;
            }
            let mut offloaded_tci = None;
            // SAFETY: walking the control messages the kernel wrote into `cmsg`.
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&raw const msg);
                while !c.is_null() {
                    if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == PACKET_AUXDATA {
                        let data = libc::CMSG_DATA(c);
                        let status = data.cast::<u32>().read_unaligned();
                        let tci = data.add(16).cast::<u16>().read_unaligned();
                        if status & TP_STATUS_VLAN_VALID != 0 {
                            offloaded_tci = Some(tci);
                        }
                    }
                    c = libc::CMSG_NXTHDR(&raw const msg, c);
                }
            }
            return Some(Received {
                frame: buf,
                offloaded_tci,
            });
        }
    }
}

/// `frame` with an 802.1Q tag for VLAN `vid` after its MAC addresses.
fn tagged(frame: &[u8], vid: u16) -> Vec<u8> {
    let mut t = frame[..12].to_vec();
    t.extend_from_slice(&ETH_P_8021Q.to_be_bytes());
    t.extend_from_slice(&vid.to_be_bytes());
    t.extend_from_slice(&frame[12..]);
    t
}

/// True for a VXLAN packet to REMOTE_IP:4789, tagged in the packet or not.
fn is_vxlan_to_remote(f: &[u8]) -> bool {
    let ip = if f.len() > 16 && be16(&f[12..14]) == ETH_P_8021Q {
        18
    } else {
        14
    };
    f.len() >= ip + 28
        && be16(&f[ip - 2..ip]) == ETH_P_IP
        && f[ip + 16..ip + 20] == REMOTE_IP.octets()
        && be16(&f[ip + 22..ip + 24]) == PORT_IANA
}

/// Fails against the datapath as written: the port program ignores `skb->vlan_present`, so the
/// inner frame loses its tag and the outer frame leaves on the workload's VLAN.
#[test]
fn live_vlan_tag_of_a_workload_frame_does_not_reach_the_underlay() {
    let fx = Fixture::new();
    let (wl0, ul0p) = (fx.ifindex("wl0"), fx.ifindex("ul0p"));
    fx.run(|| {
        let mut dp = load_standard(&fx);
        dp.attach_port("port0").expect("attaching to port0");
        let workload = RawSocket::open(wl0);
        let underlay = RawSocket::open(ul0p);

        // Control: an untagged frame comes out of ul0 encapsulated, untagged.
        let frame = wl0_udp_frame(REMOTE_WL_MAC, 1000);
        workload.send(&frame);
        let got = underlay
            .recv(is_vxlan_to_remote)
            .expect("the untagged frame encapsulated on the underlay");
        assert_eq!(got.outer_vlan(), None);
        assert_eq!(&got.frame[OVERHEAD..], frame.as_slice());

        // The workload tags a frame with VLAN 5. The tag belongs to the overlay: it may travel
        // inside the VXLAN packet (as with the kernel's vxlan driver) or the frame may be
        // refused, but the underlay frame must not be put on VLAN 5.
        let frame5 = tagged(&frame, 5);
        workload.send(&frame5);
        if let Some(got) = underlay.recv(is_vxlan_to_remote) {
            assert_eq!(
                got.outer_vlan(),
                None,
                "the workload's VLAN tag is on the outer (underlay) frame"
            );
            assert_eq!(
                &got.frame[OVERHEAD..],
                frame5.as_slice(),
                "the inner frame lost its VLAN tag"
            );
        }
    });
}

/// Fails against the datapath as written: the underlay program ignores `skb->vlan_present`,
/// decapsulates VXLAN from any VLAN and the inner frame reaches the workload with that tag.
#[test]
fn live_vxlan_tagged_on_the_underlay_does_not_reach_a_workload_tagged() {
    let fx = Fixture::new();
    let (wl0, ul0p) = (fx.ifindex("wl0"), fx.ifindex("ul0p"));
    fx.run(|| {
        let mut dp = load_standard(&fx);
        dp.attach_underlay("ul0").expect("attaching to ul0");
        let workload = RawSocket::open(wl0);
        let underlay = RawSocket::open(ul0p);
        let inner = remote_udp_frame(WL0_MAC);
        let is_inner = |f: &[u8]| f.len() >= 12 && f[0..12] == inner[0..12];

        // Control: untagged VXLAN to us is delivered to wl0 as the plain inner frame.
        let pkt = vxlan_to_us(PORT_IANA, vxlan_header(VXLAN_I, VNI), &inner);
        underlay.send(&pkt);
        let got = workload
            .recv(is_inner)
            .expect("the untagged packet decapsulated to wl0");
        assert_eq!(got.outer_vlan(), None);
        assert_eq!(got.frame, inner);

        // The same packet on underlay VLAN 7 (ul0 itself is untagged, so it is not addressed
        // to our VTEP on our network). Whatever happens to it, the workload must not receive
        // the inner frame tagged with the underlay's VLAN.
        underlay.send(&tagged(&pkt, 7));
        if let Some(got) = workload.recv(is_inner) {
            assert_eq!(
                got.outer_vlan(),
                None,
                "the underlay's VLAN tag reached the workload on the inner frame"
            );
        }
    });
}
