//! vtep's datapath: one TC program on each local port (frames from workloads, `port.rs`), its
//! flood path entered by tail call, and one on the underlay interface (VXLAN from remote VTEPs,
//! `decap.rs`). Every drop goes through `verdict.rs`; packet bytes are reached only through
//! `parse.rs`, the skb's metadata through `skb.rs`, map memory through `maps.rs`.
#![no_std]
#![no_main]
// atomic_xadd, see maps.rs (`LearnedCount::add_one`); the datapath is built with the nightly
// toolchain anyway (host builds, for clippy, use the stable atomics instead).
#![cfg_attr(target_arch = "bpf", allow(internal_features))]
#![cfg_attr(target_arch = "bpf", feature(core_intrinsics))]

mod csum;
mod decap;
mod deliver;
mod encap;
mod flood;
mod flowhash;
mod learn;
mod maps;
mod miss;
mod nexthop;
mod parse;
mod port;
mod proxy;
mod skb;
mod udp_csum;
mod verdict;

use aya_ebpf::{macros::classifier, programs::TcContext};

/// TC ingress of a host-side port: frames a workload sends.
#[classifier]
pub fn vtep_port(ctx: TcContext) -> i32 {
    port::ingress(&ctx)
}

/// The port program's continuation for broadcast, multicast and unknown-unicast frames
/// (`JUMP_PORT_FLOOD`): never attached, entered by tail call.
#[classifier]
pub fn vtep_port_flood(ctx: TcContext) -> i32 {
    port::flood(&ctx)
}

/// TC ingress of the underlay interface: VXLAN to decapsulate; everything else passes.
#[classifier]
pub fn vtep_underlay(ctx: TcContext) -> i32 {
    decap::ingress(&ctx)
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
