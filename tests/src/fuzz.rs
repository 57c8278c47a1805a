//! A fuzzer for the datapath: every program runs through `BPF_PROG_TEST_RUN` on mutated packets
//! (bit flips, byte overwrites, truncations, trailing bytes, length-field lies) made from valid
//! seeds (VXLAN with IPv4, IPv6, ARP, ND and VLAN-tagged inner frames; the same frames from a
//! local port), and after each run the invariants a hostile packet must not break are checked:
//!
//! - the verdict is one the program may give (pass, drop, redirect);
//! - a pass leaves the bytes untouched and no counter moved (the packet was not ours);
//! - the underlay programs (TC, and the XDP one in front of it) deliver (redirect) only a packet
//!   that passes every decapsulation check written out independently in [`Decap::judge`], and
//!   deliver exactly its inner frame, of the configured VNI;
//! - every drop or delivery is accounted for in some counter (counters add up).
//!
//! `cargo xtask fuzz --packets N` runs it long (`src/bin/fuzz.rs`); the datapath tests run a short
//! round. A failure prints the seed, the mutation and the packet, so it can be replayed.

use std::net::{Ipv4Addr, Ipv6Addr};

use vtep::datapath::loader::Datapath;
use vtep_common::maps::VNI_F_PROXY;

use crate::{
    counters::Counters,
    fixture::{
        Fixture, LOCAL_IP, NEIGH_MAC, PORT_IANA, REMOTE_IP, REMOTE_WL_MAC, Run, TC_ACT_REDIRECT,
        TC_ACT_SHOT, TC_PASS, UL_MAC, VNI, WL0_MAC, WL1_MAC, XDP_DROP, XDP_PASS, XDP_REDIRECT,
        load_changed, standard_vxlan, try_test_run, try_xdp_test_run,
    },
    packet::{
        BROADCAST, ETH_P_ARP, ETH_P_IP, IPPROTO_UDP, Ipv4, Mac, VXLAN_I, arp_request, eth,
        nd_frame, parse_vxlan, solicitation, tagged, udp, udp4_pseudo_header_sum, udp6_frame,
        vxlan,
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

/// The programs under test and the interface each sees the packet arrive on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    Underlay,
    /// The XDP program in front of `Underlay`; its verdicts are read as the TC ones they stand
    /// for (pass, drop, redirect), so the same invariants apply.
    UnderlayXdp,
    Port,
    PortFlood,
}

impl Program {
    pub const ALL: [Program; 4] = [
        Self::Underlay,
        Self::UnderlayXdp,
        Self::Port,
        Self::PortFlood,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Underlay => "vtep_underlay",
            Self::UnderlayXdp => "vtep_underlay_xdp",
            Self::Port => "vtep_port",
            Self::PortFlood => "vtep_port_flood",
        }
    }

    /// Whether the program receives on the underlay (decapsulates).
    fn on_underlay(self) -> bool {
        matches!(self, Self::Underlay | Self::UnderlayXdp)
    }

    /// One run of the program on `pkt` arriving on `ifindex`, its verdict as TC's; `None` when
    /// the kernel refused the run.
    fn run(self, dp: &mut Datapath, ifindex: u32, pkt: &[u8]) -> Option<Run> {
        if self != Self::UnderlayXdp {
            return try_test_run(dp, self.name(), ifindex, pkt).ok();
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

fn port_seeds() -> Vec<Vec<u8>> {
    inner_frames(WL0_MAC)
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

/// One mutation, described for the failure report.
fn mutate(rng: &mut Rng, seed: &[u8], underlay: bool) -> (Vec<u8>, String) {
    let mut p = seed.to_vec();
    let mut what = Vec::new();
    for _ in 0..=rng.below(3) {
        match rng.below(7) {
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
                // Lie in a length field: outer IPv4 total length or UDP length.
                let (at, name) = if rng.below(2) == 0 {
                    (16, "ip tot_len")
                } else {
                    (38, "udp len")
                };
                let v = match rng.below(4) {
                    0 => 0,
                    1 => 8,
                    2 => rng.next_u64() as u16,
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
                let i = 42 + rng.below(8);
                let v = rng.next_u64() as u8;
                if let Some(b) = p.get_mut(i) {
                    *b = v;
                }
                what.push(format!("vxlan byte {} = {v:#04x}", i - 42));
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
    (p, what.join(", "))
}

/// The checks a VXLAN packet must pass before anything of it may reach a workload, written from
/// RFC 7348 and the kernel's receive path, and read with etherparse (`parse_vxlan`),
/// independently of the datapath's code.
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
        if v.flags() & VXLAN_I == 0 {
            return Err("I flag clear".into());
        }
        if v.vni() != VNI {
            return Err(format!("VNI {}", v.vni()));
        }
        // What a bridge forwards: the MTU plus the Ethernet header, plus a VLAN tag.
        if v.inner.len() > port_mtu + 14 + 4 {
            return Err(format!("inner frame of {} bytes", v.inner.len()));
        }
        Ok(v.inner)
    }
}

/// Whether the UDP checksum field holds just the folded pseudo-header sum, what a local sender
/// leaves for checksum offload (`CHECKSUM_PARTIAL`): the kernel, and so vtep, accepts it.
fn partial_checksum(v: &crate::packet::Vxlan<'_>) -> bool {
    v.udp.checksum == udp4_pseudo_header_sum(v.src(), v.dst(), v.udp.length)
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
    /// Invariant violations, each with the seed, mutation and packet to replay it.
    pub failures: Vec<String>,
}

/// Runs `packets` mutated packets through `program`, starting the RNG at `seed`.
pub fn fuzz(program: Program, packets: u64, seed: u64) -> Report {
    let fx = Fixture::named("vtfz");
    fx.run(|| {
        let mut dp = load_changed(&fx, |table| {
            table.flags = VNI_F_PROXY;
            table.proxy_entries = vec![(REMOTE_WL_IP.into(), REMOTE_WL_MAC)];
        });
        let (seeds, ifindex) = match program {
            Program::Underlay | Program::UnderlayXdp => (underlay_seeds(), fx.ul0),
            Program::Port | Program::PortFlood => (port_seeds(), fx.port0),
        };
        let port_mtu = 1500;
        let mut rng = Rng::new(seed);
        let mut report = Report::default();
        for n in 0..packets {
            let seed_pkt = &seeds[rng.below(seeds.len())];
            let (pkt, what) = mutate(&mut rng, seed_pkt, program.on_underlay());
            let before = Counters::read(&mut dp);
            let Some(run) = program.run(&mut dp, ifindex, &pkt) else {
                report.refused += 1;
                continue;
            };
            let after = Counters::read(&mut dp);
            report.packets += 1;
            let mut fail = |why: String| {
                if report.failures.len() < 20 {
                    report.failures.push(format!(
                        "{}: packet {n} (seed {seed}, {what}): {why}\n  in:  {}\n  out: {}",
                        program.name(),
                        hex(&pkt),
                        hex(&run.out)
                    ));
                }
            };
            match run.verdict {
                TC_PASS => {
                    report.passed += 1;
                    if run.out != pkt {
                        fail("passed with changed bytes".into());
                    }
                    if after != before {
                        fail("passed, but counters moved".into());
                    }
                }
                TC_ACT_SHOT => {
                    report.dropped += 1;
                    // A consumed flood original counts as flood traffic, every other drop under
                    // its reason.
                    let flooded = after.stats.flood_packets != before.stats.flood_packets;
                    if after.total_drops() == before.total_drops() && !flooded {
                        fail("dropped without a counted reason".into());
                    }
                    // Decapsulated copies went to the local ports: the same checks apply.
                    if program.on_underlay()
                        && flooded
                        && let Err(why) = Decap::judge(&pkt, port_mtu)
                    {
                        fail(format!("flooded to the ports, but {why}"));
                    }
                }
                TC_ACT_REDIRECT => {
                    report.redirected += 1;
                    if after.total_traffic() == before.total_traffic() {
                        fail("redirected, but no traffic counter moved".into());
                    }
                    if program.on_underlay() {
                        match Decap::judge(&pkt, port_mtu) {
                            Err(why) => fail(format!("delivered, but {why}")),
                            Ok(inner) if run.out != inner => {
                                fail("delivered something else than the inner frame".into())
                            }
                            Ok(_) => {
                                if after.stats.decap_packets != before.stats.decap_packets + 1 {
                                    fail("delivered without counting decap_packets".into());
                                }
                            }
                        }
                    } else if run.out.len() == pkt.len() + OVERHEAD && run.out[OVERHEAD..] == pkt {
                        // Encapsulated: it carries the port's VNI and nothing else.
                        let vx = &run.out[42..50];
                        let vni = u32::from_be_bytes([0, vx[4], vx[5], vx[6]]);
                        if vni != VNI || vx[0] != VXLAN_I {
                            fail(format!("encapsulated with flags {:#x} VNI {vni}", vx[0]));
                        }
                    }
                }
                other => fail(format!("verdict {other}")),
            }
        }
        report
    })
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
