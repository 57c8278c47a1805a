//! The frames and packets the tests send.

use std::net::Ipv4Addr;

pub use vtep_tests::fixture::{standard_vxlan, vxlan_to_us};
use vtep_tests::{
    fixture::{REMOTE_IP, REMOTE_WL_MAC, WL0_MAC},
    packet::{
        BROADCAST, ETH_P_ARP, ETH_P_IP, IPPROTO_UDP, Ipv4, Mac, arp_request, eth, udp, udp6_frame,
    },
};

use crate::{REMOTE_WL_IP, REMOTE_WL_IP6, WL0_IP, WL0_IP6};

/// WL0's ARP request for the remote workload's address: a broadcast, which the port program
/// floods.
pub fn wl0_arp_broadcast() -> Vec<u8> {
    eth(
        BROADCAST,
        WL0_MAC,
        ETH_P_ARP,
        &arp_request(WL0_MAC, WL0_IP, REMOTE_WL_IP),
    )
}

/// An IPv4/UDP frame from WL0 to the workload `dst_mac` (10.0.0.2), source port `sport`.
pub fn wl0_udp_frame(dst_mac: Mac, sport: u16) -> Vec<u8> {
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

/// An IPv4/UDP frame from `src_mac` (the remote workload's address) to `dst_mac` (WL0's), as
/// it arrives inside VXLAN.
pub fn remote_udp_frame_from(src_mac: Mac, dst_mac: Mac, payload: &[u8]) -> Vec<u8> {
    eth(
        dst_mac,
        src_mac,
        ETH_P_IP,
        &Ipv4::new(REMOTE_WL_IP, WL0_IP, IPPROTO_UDP).build(&udp(
            REMOTE_WL_IP,
            WL0_IP,
            7000,
            7001,
            payload,
        )),
    )
}

/// An IPv4/UDP frame from the remote workload to `dst_mac`, as it arrives inside VXLAN.
pub fn remote_udp_frame(dst_mac: Mac) -> Vec<u8> {
    remote_udp_frame_from(REMOTE_WL_MAC, dst_mac, b"from the remote side")
}

/// An IPv6/UDP frame from the remote workload to `dst_mac`, as it arrives inside VXLAN.
pub fn remote_udp6_frame(dst_mac: Mac) -> Vec<u8> {
    udp6_frame(dst_mac, REMOTE_WL_MAC, REMOTE_WL_IP6, WL0_IP6)
}

/// An IPv6/UDP frame from WL0 to the workload `dst_mac`.
pub fn wl0_udp6_frame(dst_mac: Mac) -> Vec<u8> {
    udp6_frame(dst_mac, WL0_MAC, WL0_IP6, REMOTE_WL_IP6)
}

/// The outer IPv4 header the remote VTEP sends to us.
pub fn outer_ip_to(dst: Ipv4Addr) -> Ipv4 {
    Ipv4::new(REMOTE_IP, dst, IPPROTO_UDP)
}
