//! Namespace integration tests: simulated hosts (network namespaces joined by a veth underlay)
//! running the real `vtep` binary, checked for what a user of it expects: overlay reachability
//! (S1, S2, adopted ports, IPv6 inside: `overlay`), RFC 7348 on the wire and both VXLAN ports
//! (`wire`), VNI isolation (`isolation`), malformed VXLAN dropped and counted (`malformed`),
//! interoperation with the kernel's vxlan driver (`interop`), the underlay's MTU, routing, link
//! flaps and traffic (`underlay`, `nexthop`), the underlay or a workload deleted while vtep runs
//! (`link_faults`), config errors that change nothing (`config`, `checks`), nothing left behind
//! after a stop or a crash (`cleanup`), instances that own what they made and nothing else
//! (`ownership`), the scenarios again with the XDP program on the underlay (`xdp`), and over an
//! IPv6 underlay (`ipv6`).
//!
//! Every test builds its own hosts with a [`Lab`](vtep_tests::lab::Lab); every name
//! (namespaces, interfaces, instance names) starts with the lab's unique prefix so parallel runs
//! never collide and the lab's `Drop` removes whatever a failed test left. Tests do not depend on
//! each other.
//!
//! Run as root after building vtep: `cargo build -p vtep-user && cargo test -p vtep-tests
//! --test topology -- --test-threads=2`.

mod checks;
mod cleanup;
mod config;
mod interop;
mod ipv6;
mod isolation;
mod link_faults;
mod malformed;
mod nexthop;
mod overlay;
mod ownership;
mod restart;
mod routed;
mod support;
mod underlay;
mod wire;
mod xdp;

use vtep_tests::configs;

/// Bytes sent by the bulk TCP transfers.
const BULK: u64 = 50 * 1024 * 1024;

const ADDR_A: &str = "198.18.0.1";
const ADDR_B: &str = "198.18.0.2";

/// A config head: instance `name`, the `eth0` underlay with `underlay_extra` lines.
fn header(name: &str, underlay_extra: &str) -> String {
    configs::header(name, "", underlay_extra)
}
