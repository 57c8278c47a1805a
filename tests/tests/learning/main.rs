//! Flood-and-learn between hosts (issue 4, scenario S3): real namespaces, the real `vtep`
//! binary, no static entries for remote workloads: only flood lists, as with `ip link add type
//! vxlan` plus `bridge fdb append 00:00:00:00:00:00` (`learn`). And what goes with it on a
//! running instance: miss events (`monitor`), the ARP/ND proxy (`proxy`), a multicast group
//! instead of a flood list (`multicast`), and changing the flood list (`flood_list`). And spoofed
//! outer sources: bounded resolution and the allow-list (`spoof`). And flood-and-learn and a
//! multicast group on an IPv6 underlay (`ipv6`).
//!
//! Run as root after building vtep: `cargo build -p vtep-user && cargo test -p vtep-tests
//! --test learning`.

mod flood_list;
mod ipv6;
mod learn;
mod monitor;
mod multicast;
mod proxy;
mod spoof;
mod support;

const ADDR: [&str; 3] = ["198.18.0.1", "198.18.0.2", "198.18.0.3"];
const VNI: u32 = 300;
const MAC: [&str; 3] = [
    "02:00:00:00:0a:01",
    "02:00:00:00:0b:01",
    "02:00:00:00:0c:01",
];
const IP: [&str; 3] = ["192.0.2.11", "192.0.2.21", "192.0.2.31"];
