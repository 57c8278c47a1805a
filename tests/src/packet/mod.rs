//! The tests' packets, built and read with etherparse, a packet crate that is not the project's
//! own, so the tests judge the datapath's bytes with a parser that shares none of its code:
//! [`build`] makes Ethernet, ARP, IPv4, IPv6, UDP, TCP, ICMP, neighbour discovery and VXLAN
//! packets with correct checksums, [`parse`] reads VXLAN packets the datapath wrote or a capture
//! saw, and the frames inside them. MACs are `vtep::mac::Mac`, as in the datapath's tables.
//!
//! VXLAN over IPv6 has modules of its own: [`vxlan6`] builds it (with a correct, zero or wrong
//! UDP checksum, and malformed variants), [`parse6`] reads it, and [`csum6`] judges its UDP
//! checksum with code of its own, checked against a packet the kernel's vxlan driver sent, and
//! computes the one the local checksum offload rule gives (the fuzzer's oracle).
//!
//! etherparse has no VXLAN: its 8-byte header (RFC 7348) is written and read here, after the
//! UDP header etherparse handles.

mod build;
mod csum6;
mod parse;
mod parse6;
mod vxlan6;

pub use build::*;
pub use csum6::*;
pub use parse::*;
pub use parse6::*;
pub use vtep::mac::Mac;
pub use vxlan6::*;

use etherparse::{EtherType, IpNumber};

/// The MAC written `s` (`02:00:00:00:00:01`); panics when it is none.
pub fn mac(s: &str) -> Mac {
    s.parse().unwrap_or_else(|e| panic!("{e}"))
}

/// The broadcast MAC.
pub const BROADCAST: Mac = Mac([0xff; 6]);

pub const ETH_P_IP: u16 = EtherType::IPV4.0;
pub const ETH_P_ARP: u16 = EtherType::ARP.0;
pub const ETH_P_IPV6: u16 = EtherType::IPV6.0;
pub const ETH_P_8021Q: u16 = EtherType::VLAN_TAGGED_FRAME.0;
pub const IPPROTO_ICMP: u8 = IpNumber::ICMP.0;
pub const IPPROTO_TCP: u8 = IpNumber::TCP.0;
pub const IPPROTO_UDP: u8 = IpNumber::UDP.0;
/// IPv4 "don't fragment" and "more fragments" bits of the flags/fragment-offset field.
pub const IP_DF: u16 = 0x4000;
pub const IP_MF: u16 = 0x2000;
/// The VXLAN I flag (RFC 7348): the VNI field is valid.
pub const VXLAN_I: u8 = 0x08;
/// Bytes of a VXLAN header.
pub const VXLAN_LEN: usize = 8;
