//! vtep's datapath: one TC program on each local port (frames from workloads, `port.rs`), its
//! flood path entered by tail call, and one on the underlay interface (VXLAN from remote VTEPs,
//! `decap.rs`), optionally with an XDP program in front of it that decapsulates known unicast
//! before an skb exists (`underlay_xdp.rs`). Every drop goes through `verdict.rs`, and the debug
//! log (`vtep up --trace-datapath`, off unless asked for) through `trace.rs`; packet bytes
//! are reached only through `parse.rs`, the skb's metadata through `skb.rs` (the xdp_buff's
//! through `xdp_buff.rs`), map memory through `maps.rs`.
#![no_std]
#![no_main]
// atomic_xadd, see maps.rs (`SharedCounter::add_one`); the datapath is built with the nightly
// toolchain anyway (host builds, for clippy, use the stable atomics instead).
#![cfg_attr(target_arch = "bpf", allow(internal_features))]
#![cfg_attr(target_arch = "bpf", feature(core_intrinsics))]

mod csum;
mod decap;
mod deliver;
mod drop_monitor;
mod encap;
mod flood;
mod flowhash;
mod learn;
mod maps;
mod miss;
mod nexthop;
mod outer_csum;
mod parse;
mod port;
mod proxy;
mod segment;
mod skb;
mod trace;
mod udp_csum;
mod underlay_xdp;
mod verdict;
mod xdp_buff;

use aya_ebpf::{
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use network_types::ip::{Ipv4Hdr, Ipv6Hdr};

// Each program comes twice, for an IPv4 (`…`) and an IPv6 (`…6`) underlay: the loader loads the
// family of `underlay.local`. One program per family, not one branching on it, so each is
// verified with the whole 512-byte stack for its own path: the IPv6 headers and checksum did
// not fit beside the IPv4 path.
//
// And each comes twice again, without and with the debug log (`…_trace`,
// built with the const parameter `TRACED`; see `trace.rs`): the loader loads the `_trace`
// programs only for `vtep up --trace-datapath`, so a datapath without it runs the programs as
// they were before the log existed. Log calls compiled into the same programs behind the
// read-only global `TRACE` alone are folded away by the verifier with tracing off, but their
// presence changed how the compiler laid out the code around them (registers, spills): the
// untraced programs grew by up to 70 instructions, and the flood programs, whose verification
// then sat near the kernel's complexity limit and swung with such layout changes, went past it.
// (The flood programs got their traced variants once their copies to remote VTEPs became global
// functions, `flood::Copies`, far from that limit.)

/// TC ingress of a host-side port: frames a workload sends.
#[classifier]
pub fn vtep_port(ctx: TcContext) -> i32 {
    port::ingress::<Ipv4Hdr, false>(&ctx)
}

#[classifier]
pub fn vtep_port6(ctx: TcContext) -> i32 {
    port::ingress::<Ipv6Hdr, false>(&ctx)
}

#[classifier]
pub fn vtep_port_trace(ctx: TcContext) -> i32 {
    port::ingress::<Ipv4Hdr, true>(&ctx)
}

#[classifier]
pub fn vtep_port6_trace(ctx: TcContext) -> i32 {
    port::ingress::<Ipv6Hdr, true>(&ctx)
}

/// The port program's continuation for broadcast, multicast and unknown-unicast frames
/// (`JUMP_PORT_FLOOD`): never attached, entered by tail call (the traced port programs enter the
/// traced one).
#[classifier]
pub fn vtep_port_flood(ctx: TcContext) -> i32 {
    port::flood::<Ipv4Hdr, false>(&ctx)
}

#[classifier]
pub fn vtep_port_flood6(ctx: TcContext) -> i32 {
    port::flood::<Ipv6Hdr, false>(&ctx)
}

#[classifier]
pub fn vtep_port_flood_trace(ctx: TcContext) -> i32 {
    port::flood::<Ipv4Hdr, true>(&ctx)
}

#[classifier]
pub fn vtep_port_flood6_trace(ctx: TcContext) -> i32 {
    port::flood::<Ipv6Hdr, true>(&ctx)
}

/// TC ingress of the underlay interface: VXLAN to decapsulate; everything else passes.
#[classifier]
pub fn vtep_underlay(ctx: TcContext) -> i32 {
    decap::ingress::<Ipv4Hdr, false>(&ctx)
}

#[classifier]
pub fn vtep_underlay6(ctx: TcContext) -> i32 {
    decap::ingress::<Ipv6Hdr, false>(&ctx)
}

#[classifier]
pub fn vtep_underlay_trace(ctx: TcContext) -> i32 {
    decap::ingress::<Ipv4Hdr, true>(&ctx)
}

#[classifier]
pub fn vtep_underlay6_trace(ctx: TcContext) -> i32 {
    decap::ingress::<Ipv6Hdr, true>(&ctx)
}

/// XDP on the underlay interface, in front of `vtep_underlay`: known unicast VXLAN decapsulated
/// and redirected, malformed and unknown-VNI VXLAN dropped, everything else passed to TC.
/// Fragment-aware (`xdp.frags`) so a jumbo underlay MTU can have it; multi-buffer frames pass.
#[xdp(frags)]
pub fn vtep_underlay_xdp(ctx: XdpContext) -> u32 {
    underlay_xdp::ingress::<Ipv4Hdr, false>(&ctx)
}

#[xdp(frags)]
pub fn vtep_underlay_xdp6(ctx: XdpContext) -> u32 {
    underlay_xdp::ingress::<Ipv6Hdr, false>(&ctx)
}

#[xdp(frags)]
pub fn vtep_underlay_xdp_trace(ctx: XdpContext) -> u32 {
    underlay_xdp::ingress::<Ipv4Hdr, true>(&ctx)
}

#[xdp(frags)]
pub fn vtep_underlay_xdp6_trace(ctx: XdpContext) -> u32 {
    underlay_xdp::ingress::<Ipv6Hdr, true>(&ctx)
}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

// SAFETY: the kernel reads the program license from the `license` section, which holds only
// this; no other symbol is named `LICENSE`.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
