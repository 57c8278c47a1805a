//! The ARP proxy (the kernel's `proxy`): ARP requests from local ports for addresses the VNI
//! knows (`PROXY`) are answered on the host and never flooded; the table learns from ARP in
//! decapsulated frames. Only Ethernet/IPv4 ARP is touched.

use aya_ebpf::programs::TcContext;
use vtep_common::{
    maps::ProxyKey,
    wire::{ARP_ETH_IPV4, ARP_LEN, ARP_OP_REPLY, ARP_OP_REQUEST, ETH_LEN},
};

use crate::{
    learn,
    maps::PROXY,
    parse::{is_group_mac, ptr_at},
};

/// The fields of an Ethernet/IPv4 ARP packet vtep reads.
pub struct Arp {
    pub op: u16,
    pub sha: [u8; 6],
    pub spa: [u8; 4],
    pub tpa: [u8; 4],
}

/// The Ethernet/IPv4 ARP packet at `offset`, or `None` for anything else or a short frame.
#[inline(always)]
pub fn parse(ctx: &TcContext, offset: usize) -> Option<Arp> {
    let a = unsafe { &*ptr_at::<[u8; ARP_LEN]>(ctx, offset)? };
    if a[0..6] != ARP_ETH_IPV4 {
        return None;
    }
    let mut arp = Arp {
        op: u16::from_be_bytes([a[6], a[7]]),
        sha: [0; 6],
        spa: [0; 4],
        tpa: [0; 4],
    };
    arp.sha.copy_from_slice(&a[8..14]);
    arp.spa.copy_from_slice(&a[14..18]);
    arp.tpa.copy_from_slice(&a[24..28]);
    Some(arp)
}

/// What `PROXY` says `tpa` of request `arp` in VNI `vni` is, when the request should be answered:
/// a request, not a gratuitous announcement (sender and target address equal), for a known address.
#[inline(always)]
pub fn known_target(vni: u32, arp: &Arp) -> Option<[u8; 6]> {
    if arp.op != ARP_OP_REQUEST || arp.spa == arp.tpa {
        return None;
    }
    let entry = unsafe { PROXY.get(ProxyKey { vni, ip: arp.tpa }) }?;
    Some(entry.mac)
}

/// Turns the request `arp` (the frame at offset 0) into the reply from `mac`, addressed to the
/// requester. Returns false when the frame cannot be written.
#[inline(always)]
pub fn rewrite_as_reply(ctx: &TcContext, arp: &Arp, mac: &[u8; 6]) -> bool {
    let mut f = [0u8; ETH_LEN + ARP_LEN];
    f[0..6].copy_from_slice(&arp.sha);
    f[6..12].copy_from_slice(mac);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    f[14..20].copy_from_slice(&ARP_ETH_IPV4);
    f[20..22].copy_from_slice(&ARP_OP_REPLY.to_be_bytes());
    f[22..28].copy_from_slice(mac);
    f[28..32].copy_from_slice(&arp.tpa);
    f[32..38].copy_from_slice(&arp.sha);
    f[38..42].copy_from_slice(&arp.spa);
    let Some(dst) = ptr_at::<[u8; ETH_LEN + ARP_LEN]>(ctx, 0) else {
        return false;
    };
    unsafe { core::ptr::write_unaligned(dst, f) };
    true
}

/// Learns the sender of `arp` (a request or a reply from a remote workload) in VNI `vni`.
#[inline(always)]
pub fn learn_sender(vni: u32, arp: &Arp) {
    if (arp.op != ARP_OP_REQUEST && arp.op != ARP_OP_REPLY)
        || arp.spa == [0; 4]
        || is_group_mac(&arp.sha)
    {
        return;
    }
    learn::learn_address(&PROXY, ProxyKey { vni, ip: arp.spa }, &arp.sha);
}
