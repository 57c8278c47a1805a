//! A fuzzer for the datapath: every program, for an IPv4 and for an IPv6 underlay, runs through
//! `BPF_PROG_TEST_RUN` on mutated packets (bit flips, byte overwrites, truncations, trailing
//! bytes, length-field lies, VXLAN header and, over IPv6, UDP checksum lies) made from valid
//! seeds (VXLAN to us with IPv4, IPv6, ARP, ND and VLAN-tagged inner frames, over IPv6 with and
//! without a UDP checksum; the same frames, and over IPv6 frames of every kind the outer
//! checksum is computed differently for, from a local port), and after each run the invariants a
//! hostile packet must not break are checked:
//!
//! - the verdict is one the program may give (pass, drop, redirect);
//! - a pass leaves the bytes untouched and no counter moved (the packet was not ours);
//! - the underlay programs (TC, and the XDP one in front of it) deliver (redirect) or flood to
//!   the ports only a packet that passes every decapsulation check written out independently in
//!   [`Decap::judge`] (IPv4) and [`Decap::judge6`] (IPv6), and deliver exactly its inner frame, of
//!   the configured VNI; a packet that passes them is never passed to the kernel by the TC
//!   program (the XDP one may leave it to TC), nor dropped as malformed: only a drop reason that
//!   befalls well-formed VXLAN (its inner destination behind a remote VTEP, nowhere to flood,
//!   too big for the port, a refused redirect) may count it;
//! - every drop or delivery is accounted for in some counter (counters add up);
//! - an encapsulated frame carries its port's VNI; over IPv6 ([`check_encap6`]) what leaves a
//!   port is exactly the frame it got (switched locally), a proxy's answer to its sender, or the
//!   frame behind well-formed outer IPv6/UDP/VXLAN headers to the remote VTEP the FDB or the
//!   flood list names, whose UDP checksum is zero where the instance sends none and otherwise
//!   the one the local checksum offload rule gives ([`lco_udp6_checksum`]): right over the bytes
//!   whenever the inner L4 checksum is right, and for a frame whose inner checksum is wrong
//!   (pending, or mutated), right for the frame as it would be with that checksum right.
//!
//! `cargo xtask fuzz --packets N` runs it long (`src/bin/fuzz.rs`); the datapath tests run a short
//! round. A failure prints the seed, the mutation and the packet, so it can be replayed.

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::TcpHeader;
use vtep::datapath::loader::{
    Datapath, PROG_PORT, PROG_PORT_FLOOD, PROG_UNDERLAY, PROG_UNDERLAY_XDP,
};
use vtep_common::{
    drop::DropReason,
    maps::VNI_F_PROXY,
    wire::{DEFAULT_SRCPORT_MAX, DEFAULT_SRCPORT_MIN},
};

use crate::{
    counters::Counters,
    fixture::{
        Fixture, LOCAL_IP, NEIGH_MAC, PORT_IANA, REMOTE_IP, REMOTE_WL_MAC, Run, TC_ACT_REDIRECT,
        TC_ACT_SHOT, TC_PASS, TTL, UL_MAC, UNRESOLVED_WL_MAC, VNI, WL0_MAC, WL1_MAC, XDP_DROP,
        XDP_PASS, XDP_REDIRECT, load_changed, standard_vxlan, try_test_run, try_xdp_test_run,
    },
    fixture6::{LOCAL_IP6, REMOTE_IP6, UNRESOLVED_IP6, fixture6_named, load6, standard_vxlan6},
    packet::{
        BROADCAST, Csum6, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, INNER_OFFSET6, IP_MF, IPPROTO_ICMP,
        IPPROTO_TCP, IPPROTO_UDP, Ipv4, Mac, UDP6_OFFSET, Udp6Checksum, VXLAN_I, arp_request, eth,
        icmp_echo_request, ipv6, l4_pseudo_header_sum, l4_pseudo_header_sum6, lco_udp6_checksum,
        nd_frame, parse_vxlan, parse_vxlan6, solicitation, tagged, tcp, udp, udp_no_checksum,
        udp4_pseudo_header_sum, udp6_checksum, udp6_frame, vxlan,
    },
};

const WL0_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const REMOTE_WL_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const WL0_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
const REMOTE_WL_IP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
const UNKNOWN_MAC: Mac = Mac([0x02, 0x00, 0x00, 0x00, 0x0f, 0x0f]);
/// Outer Ethernet + IPv4 + UDP + VXLAN.
const OVERHEAD: usize = 50;
/// `BPF_PROG_TEST_RUN` takes TC packets of an Ethernet header up to about a page; mutations
/// stay inside (the kernel refuses the run otherwise, before any program sees the packet).
const MIN_PACKET: usize = 14;
const MAX_PACKET: usize = 3000;
/// The MTU of the fixture's ports.
const PORT_MTU: usize = 1500;

/// The programs under test and the interface each sees the packet arrive on: each role for an
/// IPv4 underlay (`vtep_…`) and for an IPv6 one (`vtep_…6`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    Underlay,
    /// The XDP program in front of `Underlay`; its verdicts are read as the TC ones they stand
    /// for (pass, drop, redirect), so the same invariants apply.
    UnderlayXdp,
    Port,
    PortFlood,
    Underlay6,
    UnderlayXdp6,
    Port6,
    PortFlood6,
}

impl Program {
    pub const ALL: [Program; 8] = [
        Self::Underlay,
        Self::UnderlayXdp,
        Self::Port,
        Self::PortFlood,
        Self::Underlay6,
        Self::UnderlayXdp6,
        Self::Port6,
        Self::PortFlood6,
    ];

    /// The program's name in the object.
    pub fn name(self) -> &'static str {
        match self {
            Self::Underlay => "vtep_underlay",
            Self::UnderlayXdp => "vtep_underlay_xdp",
            Self::Port => "vtep_port",
            Self::PortFlood => "vtep_port_flood",
            Self::Underlay6 => "vtep_underlay6",
            Self::UnderlayXdp6 => "vtep_underlay_xdp6",
            Self::Port6 => "vtep_port6",
            Self::PortFlood6 => "vtep_port_flood6",
        }
    }

    /// The program called `name` in the object, if one is fuzzed.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether the program is the IPv6 underlay's.
    pub fn ipv6(self) -> bool {
        matches!(
            self,
            Self::Underlay6 | Self::UnderlayXdp6 | Self::Port6 | Self::PortFlood6
        )
    }

    /// The program's role (a `PROG_*` name): the datapath of the program's family runs it.
    fn role(self) -> &'static str {
        match self {
            Self::Underlay | Self::Underlay6 => PROG_UNDERLAY,
            Self::UnderlayXdp | Self::UnderlayXdp6 => PROG_UNDERLAY_XDP,
            Self::Port | Self::Port6 => PROG_PORT,
            Self::PortFlood | Self::PortFlood6 => PROG_PORT_FLOOD,
        }
    }

    /// Whether the program receives on the underlay (decapsulates).
    fn on_underlay(self) -> bool {
        matches!(self.role(), PROG_UNDERLAY | PROG_UNDERLAY_XDP)
    }

    /// One run of the program on `pkt` arriving on `ifindex` in datapath `dp` (of the program's
    /// family), its verdict as TC's; `None` when the kernel refused the run.
    fn run(self, dp: &mut Datapath, ifindex: u32, pkt: &[u8]) -> Option<Run> {
        if self.role() != PROG_UNDERLAY_XDP {
            return try_test_run(dp, self.role(), ifindex, pkt).ok();
        }
        let mut run = try_xdp_test_run(dp, pkt).ok()?;
        run.verdict = match run.verdict {
            XDP_PASS => TC_PASS,
            XDP_DROP => TC_ACT_SHOT,
            XDP_REDIRECT => TC_ACT_REDIRECT,
            // Anything else (XDP_ABORTED, XDP_TX) fails as an unexpected verdict.
            other => 1000 + other,
        };
        Some(run)
    }
}

/// xorshift64*: reproducible from the seed the report prints, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// The valid packets mutations start from.
fn underlay_seeds() -> Vec<Vec<u8>> {
    inner_frames(REMOTE_WL_MAC)
        .into_iter()
        .flat_map(|inner| [standard_vxlan(&inner), vxlan_to_us_checksummed(&inner)])
        .collect()
}

/// Over IPv6: each inner frame with a right UDP checksum, none, and one that holds only the
/// pseudo header's sum (what a sender on this host leaves to an offload, which the kernel and
/// vtep accept).
fn underlay_seeds6() -> Vec<Vec<u8>> {
    inner_frames(REMOTE_WL_MAC)
        .into_iter()
        .flat_map(|inner| {
            let mut partial = standard_vxlan6(Csum6::Zero, &inner);
            let udp_len = (partial.len() - UDP6_OFFSET) as u16;
            let sum = l4_pseudo_header_sum6(REMOTE_IP6, LOCAL_IP6, IPPROTO_UDP, udp_len);
            partial[UDP6_OFFSET + 6..UDP6_OFFSET + 8].copy_from_slice(&sum.to_be_bytes());
            [
                standard_vxlan6(Csum6::Correct, &inner),
                standard_vxlan6(Csum6::Zero, &inner),
                partial,
            ]
        })
        .collect()
}

fn port_seeds() -> Vec<Vec<u8>> {
    inner_frames(WL0_MAC)
}

/// Over IPv6, also the frames the outer UDP checksum is summed differently for.
fn port_seeds6() -> Vec<Vec<u8>> {
    let mut seeds = inner_frames(WL0_MAC);
    seeds.extend(checksum_frames());
    seeds
}

/// Frames from station `src` (WL0 on a port, the remote workload inside VXLAN): unicast IPv4
/// to a known and an unknown MAC, IPv6, ARP request, neighbour solicitation and advertisement,
/// and a VLAN-tagged frame.
fn inner_frames(src: Mac) -> Vec<Vec<u8>> {
    let dst = if src == WL0_MAC {
        REMOTE_WL_MAC
    } else {
        WL0_MAC
    };
    let ip4 = |dst: Mac| {
        eth(
            dst,
            src,
            ETH_P_IP,
            &Ipv4::new(WL0_IP, REMOTE_WL_IP, IPPROTO_UDP).build(&udp(
                WL0_IP,
                REMOTE_WL_IP,
                1000,
                7000,
                b"fuzz seed payload",
            )),
        )
    };
    let ip6 = udp6_frame(dst, src, WL0_IP6, REMOTE_WL_IP6);
    let arp = eth(
        BROADCAST,
        src,
        ETH_P_ARP,
        &arp_request(src, WL0_IP, REMOTE_WL_IP),
    );
    let solicit = solicitation(src, WL0_IP6, REMOTE_WL_IP6);
    let advert = nd_frame(
        136,
        dst,
        src,
        REMOTE_WL_IP6,
        WL0_IP6,
        REMOTE_WL_IP6,
        0x60,
        src,
    );
    let plain = ip4(dst);
    let tagged = tagged(&plain, 7);
    vec![
        plain,
        ip4(UNKNOWN_MAC),
        ip4(WL1_MAC),
        ip6,
        arp,
        solicit,
        advert,
        tagged,
    ]
}

/// Frames from WL0 to the remote workload whose outer UDP checksum over IPv6 is computed each
/// its own way (vtep-ebpf outer_csum.rs): TCP and ICMP over IPv4, TCP over IPv6, each also
/// with its checksum left pending (the field holding the pseudo header's sum, as a sender on
/// this host hands it over); and the ones summed byte by byte: UDP without a checksum, a first
/// fragment, IPv4 options, a short frame padded after its IP packet. And one to the workload
/// behind a VTEP without a resolved neighbour.
fn checksum_frames() -> Vec<Vec<u8>> {
    let (s4, d4, s6, d6) = (WL0_IP, REMOTE_WL_IP, WL0_IP6, REMOTE_WL_IP6);
    let v4 = |proto, l4: &[u8]| {
        let ip = Ipv4::new(s4, d4, proto).build(l4);
        eth(REMOTE_WL_MAC, WL0_MAC, ETH_P_IP, &ip)
    };
    let v6 = |next, l4: &[u8]| eth(REMOTE_WL_MAC, WL0_MAC, ETH_P_IPV6, &ipv6(s6, d6, next, l4));
    // The segment with its checksum field (at `at`) holding the pseudo header's sum.
    let pending = |mut l4: Vec<u8>, at: usize, sum: u16| {
        l4[at..at + 2].copy_from_slice(&sum.to_be_bytes());
        l4
    };
    let data = b"checksummed fuzz seed, odd length";
    let tcp4 = tcp(s4, d4, 40000, 5001, 0x18, data);
    let tcp4_sum = l4_pseudo_header_sum(s4, d4, IPPROTO_TCP, tcp4.len() as u16);
    let tcp6 = {
        let mut h = TcpHeader::new(40000, 5001, 1, 0xffff);
        (h.ack, h.psh) = (true, true);
        h.checksum = h
            .calc_checksum_ipv6_raw(s6.octets(), d6.octets(), data)
            .expect("a short segment");
        [&h.to_bytes()[..], data].concat()
    };
    let tcp6_sum = l4_pseudo_header_sum6(s6, d6, IPPROTO_TCP, tcp6.len() as u16);
    let udp4 = udp(s4, d4, 1000, 7000, data);
    let udp4_sum = udp4_pseudo_header_sum(s4, d4, udp4.len() as u16);
    let first_fragment = Ipv4 {
        frag: IP_MF,
        id: 9,
        ..Ipv4::new(s4, d4, IPPROTO_UDP)
    }
    .build(&udp(s4, d4, 1000, 7000, &[7; 64])[..40]);
    // Four NOP options: the header says 24 bytes, its checksum over all of them.
    let with_options = {
        let plain = Ipv4::new(s4, d4, IPPROTO_UDP).build(&udp4);
        let mut h = plain[..20].to_vec();
        h[0] = 0x46;
        h[2..4].copy_from_slice(&((24 + udp4.len()) as u16).to_be_bytes());
        h.extend_from_slice(&[1, 1, 1, 1]);
        h[10..12].copy_from_slice(&[0, 0]);
        let sum = !fold(
            h.chunks(2)
                .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))),
        );
        h[10..12].copy_from_slice(&sum.to_be_bytes());
        eth(REMOTE_WL_MAC, WL0_MAC, ETH_P_IP, &[&h[..], &udp4].concat())
    };
    let short = [
        &v4(IPPROTO_ICMP, &icmp_echo_request(1, 2, b"abc"))[..],
        &[0xab; 15],
    ]
    .concat();
    let unresolved = eth(
        UNRESOLVED_WL_MAC,
        WL0_MAC,
        ETH_P_IP,
        &Ipv4::new(s4, d4, IPPROTO_UDP).build(&udp4),
    );
    vec![
        v4(IPPROTO_TCP, &tcp4),
        v4(IPPROTO_TCP, &pending(tcp4.clone(), 16, tcp4_sum)),
        v4(IPPROTO_UDP, &pending(udp4.clone(), 6, udp4_sum)),
        v4(IPPROTO_ICMP, &icmp_echo_request(7, 1, data)),
        v6(IPPROTO_TCP, &tcp6),
        v6(IPPROTO_TCP, &pending(tcp6.clone(), 16, tcp6_sum)),
        v4(IPPROTO_UDP, &udp_no_checksum(1000, 7000, data)),
        eth(REMOTE_WL_MAC, WL0_MAC, ETH_P_IP, &first_fragment),
        with_options,
        short,
        unresolved,
    ]
}

/// The 16-bit ones'-complement sum of `words`, folded.
fn fold(words: impl Iterator<Item = u32>) -> u16 {
    let mut sum: u32 = words.sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// As [`standard_vxlan`], with a (right) outer UDP checksum.
fn vxlan_to_us_checksummed(inner: &[u8]) -> Vec<u8> {
    eth(
        UL_MAC,
        NEIGH_MAC,
        ETH_P_IP,
        &Ipv4::new(REMOTE_IP, LOCAL_IP, IPPROTO_UDP).build(&udp(
            REMOTE_IP,
            LOCAL_IP,
            54321,
            PORT_IANA,
            &vxlan(VXLAN_I, VNI, inner),
        )),
    )
}

/// One mutation of `seed` for `program`, described for the failure report. VXLAN packets (for
/// the underlay programs) also get lies in their outer length fields and VXLAN header, over
/// IPv6 in the UDP checksum, and, a third of the time, over IPv6, the checksum made right again
/// for what the mutations left, so that mutated frames get past it.
fn mutate(rng: &mut Rng, seed: &[u8], program: Program) -> (Vec<u8>, String) {
    let (underlay, v6) = (program.on_underlay(), program.ipv6());
    let mut p = seed.to_vec();
    let mut what = Vec::new();
    for _ in 0..=rng.below(3) {
        match rng.below(if v6 { 8 } else { 7 }) {
            0 => {
                let bits = 1 + rng.below(8);
                for _ in 0..bits {
                    let i = rng.below(p.len().max(1));
                    if let Some(b) = p.get_mut(i) {
                        *b ^= 1 << rng.below(8);
                    }
                }
                what.push(format!("flip {bits} bits"));
            }
            1 => {
                let i = rng.below(p.len().max(1));
                let v = rng.next_u64() as u8;
                if let Some(b) = p.get_mut(i) {
                    *b = v;
                }
                what.push(format!("byte {i} = {v:#04x}"));
            }
            2 => {
                let n = MIN_PACKET + rng.below(p.len().saturating_sub(MIN_PACKET) + 1);
                p.truncate(n);
                what.push(format!("truncate to {n}"));
            }
            3 => {
                let n = 1 + rng.below(64);
                p.extend((0..n).map(|_| rng.next_u64() as u8));
                what.push(format!("append {n}"));
            }
            4 if underlay => {
                // Lie in a length field: outer IPv4 total length or IPv6 payload length, or
                // UDP length.
                let (at, name) = match (v6, rng.below(2)) {
                    (false, 0) => (16, "ip tot_len"),
                    (false, _) => (38, "udp len"),
                    (true, 0) => (18, "ip payload_len"),
                    (true, _) => (UDP6_OFFSET + 4, "udp len"),
                };
                let v = match rng.below(4) {
                    0 => 0,
                    1 => 8,
                    2 => rng.next_u64() as u16,
                    // Near the truth (both IPv6 lengths are the frame's less 54), off by a few.
                    _ if v6 => (p.len() as u16)
                        .wrapping_sub(UDP6_OFFSET as u16)
                        .wrapping_add(rng.below(17) as u16)
                        .wrapping_sub(8),
                    _ => (p.len() as u16)
                        .wrapping_add(rng.below(64) as u16)
                        .wrapping_sub(32),
                };
                if p.len() >= at + 2 {
                    p[at..at + 2].copy_from_slice(&v.to_be_bytes());
                }
                what.push(format!("{name} = {v}"));
            }
            5 if underlay => {
                // A wrong VNI, or reserved/flag bits, in an otherwise valid packet.
                let base = if v6 { INNER_OFFSET6 - 8 } else { 42 };
                let i = base + rng.below(8);
                let v = rng.next_u64() as u8;
                if let Some(b) = p.get_mut(i) {
                    *b = v;
                }
                what.push(format!("vxlan byte {} = {v:#04x}", i - base));
            }
            7 if underlay => {
                // The outer UDP checksum over IPv6: none, the pseudo header's sum alone, or
                // anything.
                let at = UDP6_OFFSET + 6;
                let v = match rng.below(3) {
                    0 => 0,
                    1 if p.len() >= at => {
                        let udp_len = (p.len() - UDP6_OFFSET) as u16;
                        l4_pseudo_header_sum6(REMOTE_IP6, LOCAL_IP6, IPPROTO_UDP, udp_len)
                    }
                    _ => rng.next_u64() as u16,
                };
                if p.len() >= at + 2 {
                    p[at..at + 2].copy_from_slice(&v.to_be_bytes());
                }
                what.push(format!("udp check = {v:#06x}"));
            }
            _ => {
                // Grow the inner frame (oversize frames, multi-segment packets).
                let n = rng.below(2500);
                p.extend(std::iter::repeat_n(0x5a, n));
                what.push(format!("grow by {n}"));
            }
        }
    }
    p.truncate(MAX_PACKET);
    if underlay && v6 && rng.below(3) == 0 && fix_udp6_checksum(&mut p) {
        what.push("udp check made right".into());
    }
    (p, what.join(", "))
}

/// Makes the non-zero outer UDP checksum of VXLAN-over-IPv6 packet `p` right for the datagram
/// its UDP length describes, when the frame holds that much. Returns whether it did.
fn fix_udp6_checksum(p: &mut [u8]) -> bool {
    let udp = UDP6_OFFSET;
    if p.len() < udp + 8 || p[udp + 6..udp + 8] == [0, 0] {
        return false;
    }
    let udp_len = usize::from(u16::from_be_bytes([p[udp + 4], p[udp + 5]]));
    if udp_len < 8 || udp + udp_len > p.len() {
        return false;
    }
    let addr = |at: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&p[at..at + 16]).expect("16"));
    let c = udp6_checksum(addr(22), addr(38), &p[udp..udp + udp_len]);
    p[udp + 6..udp + 8].copy_from_slice(&c.to_be_bytes());
    true
}

/// The checks a VXLAN packet must pass before anything of it may reach a workload, written from
/// RFC 7348 and the kernel's receive path, and read with etherparse (`parse_vxlan`,
/// `parse_vxlan6`), independently of the datapath's code.
pub struct Decap;

impl Decap {
    /// `Ok(inner)` if `p` arriving on the underlay may be delivered to a port of MTU `port_mtu`,
    /// with the inner frame that must be delivered; `Err(why)` names the first check it fails.
    pub fn judge(p: &[u8], port_mtu: usize) -> Result<&[u8], String> {
        // Ethernet/IPv4/UDP, no fragment, the UDP length the IPv4 payload's, both within the
        // frame, room for VXLAN and an inner Ethernet header.
        let v = parse_vxlan(p)?;
        if v.eth.destination != UL_MAC.0 {
            return Err("not to our MAC".into());
        }
        if !v.ip.options.is_empty() || v.dst() != LOCAL_IP {
            return Err("IPv4 options, or not to our address".into());
        }
        if !v.ip_checksum_ok() {
            return Err("bad IPv4 header checksum".into());
        }
        if v.udp.destination_port != PORT_IANA {
            return Err("not the VNI's port".into());
        }
        if v.udp.checksum != 0 && !v.udp_checksum_ok() && !partial_checksum(&v) {
            return Err("bad UDP checksum".into());
        }
        vxlan_part(v.flags(), v.vni(), v.inner, port_mtu)
    }

    /// [`Decap::judge`] over an IPv6 underlay: Ethernet to our MAC, IPv6 (version 6) to our
    /// address with UDP as its next header (no extension header), the payload length within
    /// the frame (bytes after it are trimmed) and the UDP length equal to it, room for VXLAN and
    /// an inner Ethernet header, the VNI's port, a UDP checksum that is zero, right, or only the
    /// pseudo header's sum (left to an offload by a sender on this host, as over IPv4), the I
    /// flag, the VNI, and an inner frame a port of MTU `port_mtu` takes.
    pub fn judge6(p: &[u8], port_mtu: usize) -> Result<&[u8], String> {
        let v = parse_vxlan6(p)?;
        if v.eth.destination != UL_MAC.0 {
            return Err("not to our MAC".into());
        }
        if v.dst() != LOCAL_IP6 {
            return Err("not to our address".into());
        }
        if v.udp.destination_port != PORT_IANA {
            return Err("not the VNI's port".into());
        }
        match v.checksum() {
            Udp6Checksum::Zero | Udp6Checksum::Valid => {}
            Udp6Checksum::Wrong { found, .. } => {
                let partial = l4_pseudo_header_sum6(v.src(), v.dst(), IPPROTO_UDP, v.udp.length);
                if found != partial {
                    return Err("bad UDP checksum".into());
                }
            }
        }
        vxlan_part(v.flags(), v.vni(), v.inner, port_mtu)
    }
}

/// The checks of [`Decap::judge`] and [`Decap::judge6`] past the outer IP and UDP headers: the
/// I flag in `flags`, the configured `vni`, and an `inner` frame a port of MTU `port_mtu` takes
/// (what a bridge forwards: the MTU plus the Ethernet header, plus a VLAN tag). Returns `inner`.
fn vxlan_part(flags: u8, vni: u32, inner: &[u8], port_mtu: usize) -> Result<&[u8], String> {
    if flags & VXLAN_I == 0 {
        return Err("I flag clear".into());
    }
    if vni != VNI {
        return Err(format!("VNI {vni}"));
    }
    if inner.len() > port_mtu + 14 + 4 {
        return Err(format!("inner frame of {} bytes", inner.len()));
    }
    Ok(inner)
}

/// Whether the UDP checksum field holds just the folded pseudo-header sum, what a local sender
/// leaves for checksum offload (`CHECKSUM_PARTIAL`): the kernel, and so vtep, accepts it.
fn partial_checksum(v: &crate::packet::Vxlan<'_>) -> bool {
    v.udp.checksum == udp4_pseudo_header_sum(v.src(), v.dst(), v.udp.length)
}

/// What a VXLAN-over-IPv6 packet `out` that a port program made of frame `frame` must be: the
/// frame behind outer headers to `remote` (on our underlay: from UL_MAC to the neighbour's MAC
/// for REMOTE_IP6, zero MACs, left to the kernel's neighbour resolution, for UNRESOLVED_IP6),
/// version 6, traffic class 0, payload length and UDP length the frame's plus 16, next header
/// UDP, the VNI's hop limit, from our address, a source port in the default range to the VNI's
/// port, the I flag alone and the VNI; a zero UDP checksum where the instance sends none
/// (`zero_csum`), else the one [`lco_udp6_checksum`] gives. `Ok(true)` when that checksum is
/// not the one over the bytes (the inner checksum is not right); `Err(why)` names the first
/// field that is wrong.
pub fn check_encap6(
    frame: &[u8],
    out: &[u8],
    remote: Ipv6Addr,
    zero_csum: bool,
) -> Result<bool, String> {
    if out.len() != frame.len() + INNER_OFFSET6 || out[INNER_OFFSET6..] != *frame {
        return Err(format!(
            "not the frame behind {INNER_OFFSET6} bytes of headers"
        ));
    }
    let v = parse_vxlan6(out).map_err(|e| format!("not VXLAN over IPv6: {e}"))?;
    let macs = if remote == REMOTE_IP6 {
        (NEIGH_MAC, UL_MAC)
    } else {
        (Mac([0; 6]), Mac([0; 6]))
    };
    if (v.dst_mac(), v.src_mac()) != macs {
        return Err(format!("outer MACs {} <- {}", v.dst_mac(), v.src_mac()));
    }
    let payload_len = usize::from(v.ip.payload_length);
    if v.version() != 6 || v.traffic_class() != 0 || payload_len != out.len() - UDP6_OFFSET {
        return Err(format!(
            "version {}, traffic class {}, payload length {payload_len}",
            v.version(),
            v.traffic_class()
        ));
    }
    if v.ip.hop_limit != TTL || v.src() != LOCAL_IP6 || v.dst() != remote {
        return Err(format!(
            "hop limit {}, {} -> {} (want {TTL}, {LOCAL_IP6} -> {remote})",
            v.ip.hop_limit,
            v.src(),
            v.dst()
        ));
    }
    let sport = v.udp.source_port;
    if !(DEFAULT_SRCPORT_MIN..=DEFAULT_SRCPORT_MAX).contains(&sport)
        || v.udp.destination_port != PORT_IANA
    {
        return Err(format!("UDP ports {sport} -> {}", v.udp.destination_port));
    }
    if v.flags() != VXLAN_I || v.reserved() != [0; 4] || v.vni() != VNI {
        return Err(format!("VXLAN header {:02x?}", v.header));
    }
    let found = v.udp.checksum;
    if zero_csum {
        return match found {
            0 => Ok(false),
            _ => Err(format!("UDP checksum {found:#06x} where none is sent")),
        };
    }
    let segment = &out[UDP6_OFFSET..];
    let want = lco_udp6_checksum(v.src(), v.dst(), segment);
    if found != want {
        return Err(format!(
            "UDP checksum {found:#06x}, the headers' rule gives {want:#06x} ({:?} over the bytes)",
            v.checksum()
        ));
    }
    Ok(v.checksum() != Udp6Checksum::Valid)
}

/// The remote VTEP the fixture's FDB puts the station `mac` behind on an IPv6 underlay.
fn remote6_of(mac: Mac) -> Option<Ipv6Addr> {
    match mac {
        REMOTE_WL_MAC => Some(REMOTE_IP6),
        UNRESOLVED_WL_MAC => Some(UNRESOLVED_IP6),
        _ => None,
    }
}

/// What a fuzzing run found.
#[derive(Debug, Default)]
pub struct Report {
    pub packets: u64,
    pub passed: u64,
    pub dropped: u64,
    pub redirected: u64,
    /// Mutations the kernel refused to run at all (an IPv4 ethertype without a whole IPv4
    /// header, for example): no program saw them.
    pub refused: u64,
    /// Outputs of a port program checked as encapsulated packets (unicast, or over IPv6 the
    /// flood path's last copy).
    pub encapsulated: u64,
    /// Of those over IPv6 with checksums, the ones whose outer checksum is right by the headers'
    /// rule but not over the bytes: the inner frame's own checksum was not right.
    pub inner_checksum_wrong: u64,
    /// Invariant violations, each with the seed, mutation and packet to replay it.
    pub failures: Vec<String>,
}

/// One datapath the fuzzer runs a program in, and whether it sends IPv6 UDP checksums.
struct Instance {
    dp: Datapath,
    zero_csum: bool,
}

/// The datapaths `program` runs in (VNI 100 with the proxy on for the remote workload's
/// addresses): one for an IPv4 program; for an IPv6 one, one that sends UDP checksums and, for
/// the port programs, a second one that sends none.
fn instances(fx: &Fixture, program: Program) -> Vec<Instance> {
    if !program.ipv6() {
        let dp = load_changed(fx, |table| {
            table.flags = VNI_F_PROXY;
            table.proxy_entries = vec![(REMOTE_WL_IP.into(), REMOTE_WL_MAC)];
        });
        return vec![Instance {
            dp,
            zero_csum: false,
        }];
    }
    let modes: &[bool] = if program.on_underlay() {
        &[false]
    } else {
        &[false, true]
    };
    modes
        .iter()
        .map(|&zero_csum| Instance {
            dp: load6(fx, zero_csum, |table| {
                table.flags = VNI_F_PROXY;
                table.proxy_entries = vec![
                    (REMOTE_WL_IP.into(), REMOTE_WL_MAC),
                    (REMOTE_WL_IP6.into(), REMOTE_WL_MAC),
                ];
            }),
            zero_csum,
        })
        .collect()
}

/// Runs `packets` mutated packets through `program`, starting the RNG at `seed`.
pub fn fuzz(program: Program, packets: u64, seed: u64) -> Report {
    let fx = if program.ipv6() {
        fixture6_named("vtfz6")
    } else {
        Fixture::named("vtfz")
    };
    fx.run(|| {
        let mut instances = instances(&fx, program);
        let seeds = match (program.on_underlay(), program.ipv6()) {
            (true, false) => underlay_seeds(),
            (true, true) => underlay_seeds6(),
            (false, false) => port_seeds(),
            (false, true) => port_seeds6(),
        };
        let ifindex = if program.on_underlay() {
            fx.ul0
        } else {
            fx.port0
        };
        let mut rng = Rng::new(seed);
        let mut report = Report::default();
        for n in 0..packets {
            let seed_pkt = &seeds[rng.below(seeds.len())];
            let (pkt, what) = mutate(&mut rng, seed_pkt, program);
            // The datapath without checksums, where there is one, a quarter of the time.
            let i = if instances.len() > 1 && rng.below(4) == 0 {
                1
            } else {
                0
            };
            let Instance { dp, zero_csum } = &mut instances[i];
            let before = Counters::read(dp);
            let Some(run) = program.run(dp, ifindex, &pkt) else {
                report.refused += 1;
                continue;
            };
            let after = Counters::read(dp);
            report.packets += 1;
            let violations = judge(
                program,
                *zero_csum,
                &pkt,
                &run,
                &before,
                &after,
                &mut report,
            );
            for why in violations {
                if report.failures.len() < 20 {
                    let mode = if *zero_csum { ", zero checksums" } else { "" };
                    report.failures.push(format!(
                        "{}: packet {n} (seed {seed}, {what}{mode}): {why}\n  in:  {}\n  out: {}",
                        program.name(),
                        hex(&pkt),
                        hex(&run.out)
                    ));
                }
            }
        }
        report
    })
}

/// The invariants for one run of `program` on `pkt` (in a datapath that sends no IPv6 UDP
/// checksums with `zero_csum`), counters `before` and `after` it: the violations, described.
/// Counts the verdict and what was checked in `report`.
fn judge(
    program: Program,
    zero_csum: bool,
    pkt: &[u8],
    run: &Run,
    before: &Counters,
    after: &Counters,
    report: &mut Report,
) -> Vec<String> {
    let mut fails = Vec::new();
    let decap = |p| {
        if program.ipv6() {
            Decap::judge6(p, PORT_MTU)
        } else {
            Decap::judge(p, PORT_MTU)
        }
    };
    let moved = |f: fn(&vtep_common::maps::VniStats) -> u64| f(&after.stats) != f(&before.stats);
    // Well-formed VXLAN to us of our VNI: it is ours to deliver, and only what happens to a
    // well-formed packet may stop it.
    let deliverable = program.on_underlay() && decap(pkt).is_ok();
    if deliverable {
        let allowed = [
            DropReason::DecapToRemote,
            DropReason::NoFloodTarget,
            DropReason::InnerTooBig,
            DropReason::RedirectFailed,
        ];
        let wrong: Vec<_> = DropReason::ALL
            .into_iter()
            .filter(|r| !allowed.contains(r) && after.drop_count(*r) != before.drop_count(*r))
            .map(DropReason::name)
            .collect();
        if !wrong.is_empty() {
            fails.push(format!("well-formed VXLAN to us, but counted {wrong:?}"));
        }
    }
    match run.verdict {
        TC_PASS => {
            report.passed += 1;
            // The XDP program leaves to TC what it cannot do alone; TC has no one to leave it to.
            if deliverable && program.role() == PROG_UNDERLAY {
                fails.push("well-formed VXLAN to us passed to the kernel".into());
            }
            if run.out != pkt {
                fails.push("passed with changed bytes".into());
            }
            if after != before {
                fails.push("passed, but counters moved".into());
            }
        }
        TC_ACT_SHOT => {
            report.dropped += 1;
            // A consumed flood original counts as flood traffic, every other drop under
            // its reason.
            let flooded = moved(|s| s.flood_packets);
            if after.total_drops() == before.total_drops() && !flooded {
                fails.push("dropped without a counted reason".into());
            }
            // Decapsulated copies went to the local ports: the same checks apply. A frame too
            // big for every port is counted as decapsulated and flooded too, while each copy is
            // dropped (inner_too_big): that fails as well, naming the copies' drops.
            if program.on_underlay()
                && flooded
                && let Err(why) = decap(pkt)
            {
                fails.push(format!(
                    "counted as decapsulated and flooded to the ports (copy drops: {:?}), but {why}",
                    after.moved_drops(before)
                ));
            }
            // Over IPv6, the original holds the last encapsulated flood copy (to the flood
            // list's one remote VTEP).
            if program.ipv6() && !program.on_underlay() && moved(|s| s.encap_packets) {
                encapsulated6(pkt, &run.out, REMOTE_IP6, zero_csum, report, &mut fails);
            }
        }
        TC_ACT_REDIRECT => {
            report.redirected += 1;
            if after.total_traffic() == before.total_traffic() {
                fails.push("redirected, but no traffic counter moved".into());
            }
            if program.on_underlay() {
                match decap(pkt) {
                    Err(why) => fails.push(format!("delivered, but {why}")),
                    Ok(inner) if run.out != inner => {
                        fails.push("delivered something else than the inner frame".into())
                    }
                    Ok(_) => {
                        if after.stats.decap_packets != before.stats.decap_packets + 1 {
                            fails.push("delivered without counting decap_packets".into());
                        }
                    }
                }
            } else if program.ipv6() {
                redirected_from_port6(pkt, run, before, after, zero_csum, report, &mut fails);
            } else if run.out.len() == pkt.len() + OVERHEAD && run.out[OVERHEAD..] == *pkt {
                // Encapsulated: it carries the port's VNI and nothing else.
                report.encapsulated += 1;
                let vx = &run.out[42..50];
                let vni = u32::from_be_bytes([0, vx[4], vx[5], vx[6]]);
                if vni != VNI || vx[0] != VXLAN_I {
                    fails.push(format!("encapsulated with flags {:#x} VNI {vni}", vx[0]));
                }
            }
        }
        other => fails.push(format!("verdict {other}")),
    }
    fails
}

/// What a port program on an IPv6 underlay may redirect, frame `pkt` in: the frame unchanged
/// to a local port, a proxy's answer back to the asker (from the proxied MAC), or the frame
/// encapsulated to the remote VTEP the FDB names for its destination ([`check_encap6`]); each
/// counted as what it is.
fn redirected_from_port6(
    pkt: &[u8],
    run: &Run,
    before: &Counters,
    after: &Counters,
    zero_csum: bool,
    report: &mut Report,
    fails: &mut Vec<String>,
) {
    let (b, a) = (&before.stats, &after.stats);
    if run.out == pkt {
        if a.local_packets != b.local_packets + 1 {
            fails.push("sent unchanged, but not counted as switched locally".into());
        }
    } else if a.proxy_replies != b.proxy_replies {
        // To the frame's sender; an ARP reply to the hardware address the request gives.
        let arp_sender = (pkt[12..14] == ETH_P_ARP.to_be_bytes())
            .then(|| pkt.get(22..28))
            .flatten();
        let ok = run.out.len() >= 14
            && run.out[6..12] == REMOTE_WL_MAC.0
            && (run.out[0..6] == pkt[6..12] || Some(&run.out[0..6]) == arp_sender);
        if !ok {
            fails.push("a proxy answer not from the proxied MAC to the asker".into());
        }
    } else if a.encap_packets != b.encap_packets + 1 {
        fails.push("changed and redirected, but counted as no encapsulation".into());
    } else {
        match remote6_of(Mac(pkt[0..6].try_into().expect("6 bytes"))) {
            Some(remote) => encapsulated6(pkt, &run.out, remote, zero_csum, report, fails),
            None => fails.push("encapsulated to a MAC no remote VTEP has".into()),
        }
    }
}

/// Checks `out` as `pkt` encapsulated to `remote` ([`check_encap6`]), counting it in `report`.
fn encapsulated6(
    pkt: &[u8],
    out: &[u8],
    remote: Ipv6Addr,
    zero_csum: bool,
    report: &mut Report,
    fails: &mut Vec<String>,
) {
    report.encapsulated += 1;
    match check_encap6(pkt, out, remote, zero_csum) {
        Ok(inner_wrong) => report.inner_checksum_wrong += u64::from(inner_wrong),
        Err(why) => fails.push(format!("encapsulated, but {why}")),
    }
}

/// The first bytes of `b` in hex, for failure reports.
fn hex(b: &[u8]) -> String {
    let shown: String = b.iter().take(96).map(|x| format!("{x:02x}")).collect();
    if b.len() > 96 {
        format!("{shown}… ({} bytes)", b.len())
    } else {
        shown
    }
}
