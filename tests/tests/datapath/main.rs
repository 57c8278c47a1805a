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
//! tests count transmitted packets). The `live_` tests (module `vlan`) attach the programs and
//! send real frames instead, for what `BPF_PROG_TEST_RUN` cannot show (VLAN tags held in skb
//! metadata).
//!
//! The output is read with etherparse (vtep_tests::packet), not with the project's own code.
//! Modules: `encap`, `srcport`, `nexthop` and `local` (the port program sending), `decap` and
//! `passthrough` (the underlay program receiving), `flood`, `learn`, `accept` (the source allow-list), `miss`, `proxy`, `group`,
//! `vlan`, `xdp` (the XDP program in front of the underlay program), `ipv6` (all of it on an IPv6
//! underlay, with vtep_tests::fixture6), `ageing` (the ageing sweep over a large FDB), `trace`
//! (the debug log of `vtep up --trace-datapath`);
//! `counters`, `frames` and `checks` are what they share.
//!
//! Run as root: `cargo test -p vtep-tests --test datapath -- --test-threads=1`.
//!
//! [`Fixture`]: vtep_tests::fixture::Fixture

mod accept;
mod ageing;
mod checks;
mod decap;
mod drop_monitor;
mod drops;
mod encap;
mod flood;
mod frames;
mod fuzz;
mod group;
mod hardening;
mod ipv6;
mod learn;
mod local;
mod miss;
mod nexthop;
mod passthrough;
mod proxy;
mod srcport;
mod store;
mod trace;
mod vlan;
mod vni_drops;
mod xdp;

use std::net::{Ipv4Addr, Ipv6Addr};

use vtep_tests::packet::Mac;

/// Another address on the underlay subnet: not ours.
const OTHER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);
/// Known to nobody: unknown unicast.
const UNKNOWN_MAC: Mac = Mac([0x02, 0x00, 0x00, 0x00, 0x0f, 0x0f]);

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

/// A MAC nobody configured, behind a remote VTEP.
const ROAMING_MAC: Mac = Mac([0x02, 0x00, 0x00, 0x00, 0x0e, 0x01]);
