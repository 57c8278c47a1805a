//! Turning an Ethernet frame from a local port into a VXLAN packet (RFC 7348).

use aya_ebpf::{
    bindings::{
        BPF_F_ADJ_ROOM_ENCAP_L2_ETH, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4, BPF_F_ADJ_ROOM_ENCAP_L4_UDP,
        BPF_F_ADJ_ROOM_FIXED_GSO, bpf_adj_room_mode::BPF_ADJ_ROOM_MAC,
    },
    helpers::bpf_skb_change_head,
    programs::TcContext,
};
use vtep_common::{
    drop::DropReason,
    flow,
    maps::{DatapathConfig, PortConfig},
    wire::{
        ETH_LEN, ETH_P_IP, ETH_P_IPV6, INNER_OFFSET, IPPROTO_UDP, IPV4_LEN, OVERHEAD_IPV4,
        VXLAN_FLAG_I,
    },
};

use crate::{csum, flowhash, parse::ptr_at};

/// Outer Ethernet + IPv4 + UDP + VXLAN + a copy of the inner Ethernet header.
pub const HDR_BUF_LEN: usize = INNER_OFFSET + ETH_LEN;

/// Offsets of the outer fields rewritten per flood copy.
pub const OFF_IP: usize = ETH_LEN;
pub const OFF_IP_CHECK: usize = OFF_IP + 10;
pub const OFF_IP_DST: usize = OFF_IP + 16;

/// `adjust_room` flags for VXLAN over IPv4. FIXED_GSO: workload MTUs already leave room for the
/// overhead, so the inner MSS stays as TCP chose it.
const ENCAP_FLAGS: u64 = (BPF_F_ADJ_ROOM_FIXED_GSO
    | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4
    | BPF_F_ADJ_ROOM_ENCAP_L4_UDP
    | BPF_F_ADJ_ROOM_ENCAP_L2_ETH) as u64
    | ((ETH_LEN as u64) << 56);

/// The outer headers of one packet, built on the stack and written with one store.
pub struct OuterHeaders {
    pub buf: [u8; HDR_BUF_LEN],
}

impl OuterHeaders {
    /// Builds outer IPv4/UDP/VXLAN headers for an inner frame of `inner_len` bytes (inner
    /// Ethernet header included) to `remote`, with the inner Ethernet header `inner_eth`.
    /// MAC addresses stay zero until [`OuterHeaders::set_macs`].
    #[inline(always)]
    pub fn new(
        cfg: &DatapathConfig,
        port: &PortConfig,
        remote: [u8; 4],
        inner_len: u32,
        srcport: u16,
        inner_eth: &[u8; ETH_LEN],
    ) -> Self {
        let mut buf = [0u8; HDR_BUF_LEN];
        // Outer Ethernet: MACs filled later, type IPv4.
        buf[12..14].copy_from_slice(&ETH_P_IP.to_be_bytes());
        // IPv4: no options, DF so a too-big frame is never fragmented on the underlay (the
        // workload MTU leaves room for the overhead), id 0 as RFC 6864 allows for atomic
        // datagrams.
        let tot_len = (inner_len as u16).wrapping_add((OVERHEAD_IPV4 - ETH_LEN) as u16);
        let ip = &mut buf[OFF_IP..OFF_IP + 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&tot_len.to_be_bytes());
        ip[6] = 0x40;
        ip[8] = port.ttl;
        ip[9] = IPPROTO_UDP;
        ip[12..16].copy_from_slice(&cfg.local_ip);
        ip[16..20].copy_from_slice(&remote);
        // UDP: checksum zero, as RFC 7348 allows over IPv4 and the kernel driver sends.
        let udp_len = (inner_len as u16).wrapping_add(16);
        let udp = &mut buf[34..42];
        udp[0..2].copy_from_slice(&srcport.to_be_bytes());
        udp[2..4].copy_from_slice(&port.dstport);
        udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
        // VXLAN: I flag, reserved bits zero, 24-bit VNI.
        let vx = &mut buf[42..50];
        vx[0] = VXLAN_FLAG_I;
        let vni = port.vni.to_be_bytes();
        vx[4] = vni[1];
        vx[5] = vni[2];
        vx[6] = vni[3];
        buf[INNER_OFFSET..].copy_from_slice(inner_eth);
        let mut hdr = Self { buf };
        hdr.set_ip_checksum();
        hdr
    }

    #[inline(always)]
    pub fn set_macs(&mut self, dst: &[u8; 6], src: &[u8; 6]) {
        self.buf[0..6].copy_from_slice(dst);
        self.buf[6..12].copy_from_slice(src);
    }

    /// Points the packet at another remote VTEP (flood copies).
    #[inline(always)]
    pub fn set_remote(&mut self, remote: &[u8; 4]) {
        self.buf[OFF_IP_DST..OFF_IP_DST + 4].copy_from_slice(remote);
        self.set_ip_checksum();
    }

    #[inline(always)]
    fn set_ip_checksum(&mut self) {
        self.buf[OFF_IP_CHECK] = 0;
        self.buf[OFF_IP_CHECK + 1] = 0;
        let check = !csum::ipv4_header_sum(&self.buf[OFF_IP..OFF_IP + IPV4_LEN]);
        self.buf[OFF_IP_CHECK..OFF_IP_CHECK + 2].copy_from_slice(&check.to_be_bytes());
    }
}

/// The outer UDP source port for this frame: the inner flow hash scaled into the configured
/// range, so one flow keeps one path and different flows spread over ECMP links. The skb's own
/// hash is used when it has one (sockets set it); otherwise `flowhash` hashes the inner headers,
/// a fraction of what the kernel's flow dissector (`bpf_get_hash_recalc`) costs.
#[inline(always)]
pub fn source_port(ctx: &TcContext, cfg: &DatapathConfig, inner_eth: &[u8; ETH_LEN]) -> u16 {
    let skb_hash = unsafe { (*ctx.skb.skb).hash };
    let hash = if skb_hash != 0 {
        skb_hash
    } else {
        flowhash::of_frame(ctx, inner_eth)
    };
    flow::scale_to_port(hash, cfg.srcport_min, cfg.srcport_max)
}

/// Makes room for the outer headers in front of the inner frame, whose Ethernet type is
/// `inner_proto`. Returns how many bytes of `OuterHeaders::buf` to write at offset 0.
///
/// IP frames grow with `adjust_room`, which marks the skb as UDP-tunnelled so GSO packets stay
/// GSO and are segmented (or offloaded) on the underlay. `adjust_room` refuses other protocols,
/// which are never GSO, so those grow at the head instead and keep their Ethernet header in
/// place.
#[inline(always)]
pub fn grow(ctx: &TcContext, inner_proto: u16) -> Result<usize, DropReason> {
    if is_ip(inner_proto) {
        ctx.adjust_room(OVERHEAD_IPV4 as i32, BPF_ADJ_ROOM_MAC, ENCAP_FLAGS)
            .map_err(|_| DropReason::EncapFailed)?;
        Ok(HDR_BUF_LEN)
    } else {
        let ret = unsafe { bpf_skb_change_head(ctx.skb.skb, OVERHEAD_IPV4 as u32, 0) };
        if ret != 0 {
            return Err(DropReason::EncapFailed);
        }
        Ok(INNER_OFFSET)
    }
}

/// IP frames are grown with `adjust_room`, which leaves skb->protocol IPv4 (the outer header);
/// other frames keep theirs.
#[inline(always)]
pub fn is_ip(inner_proto: u16) -> bool {
    inner_proto == ETH_P_IP || inner_proto == ETH_P_IPV6
}

/// Writes the first `len` bytes of `hdr` at the start of the packet through direct packet
/// access, which costs less than the `bpf_skb_store_bytes` call of [`write`]. The unicast path
/// uses it; the flood path keeps [`write`], whose single call site per copy the verifier walks
/// in fewer states.
#[inline(always)]
pub fn write_direct(ctx: &TcContext, hdr: &OuterHeaders, len: usize) -> Result<(), DropReason> {
    // The grown room and the inner Ethernet header are in the linear head after `grow`.
    if len == HDR_BUF_LEN {
        let dst = ptr_at::<[u8; HDR_BUF_LEN]>(ctx, 0).ok_or(DropReason::EncapFailed)?;
        unsafe { core::ptr::write_unaligned(dst, hdr.buf) };
    } else {
        let dst = ptr_at::<[u8; INNER_OFFSET]>(ctx, 0).ok_or(DropReason::EncapFailed)?;
        let mut short = [0u8; INNER_OFFSET];
        short.copy_from_slice(&hdr.buf[..INNER_OFFSET]);
        unsafe { core::ptr::write_unaligned(dst, short) };
    }
    Ok(())
}

/// Writes the first `len` bytes of `hdr` at the start of the packet.
#[inline(always)]
pub fn write(ctx: &TcContext, hdr: &OuterHeaders, len: usize) -> Result<(), DropReason> {
    let ok = if len == HDR_BUF_LEN {
        ctx.store(0, &hdr.buf, 0).is_ok()
    } else {
        let mut short = [0u8; INNER_OFFSET];
        short.copy_from_slice(&hdr.buf[..INNER_OFFSET]);
        ctx.store(0, &short, 0).is_ok()
    };
    if ok {
        Ok(())
    } else {
        Err(DropReason::EncapFailed)
    }
}
