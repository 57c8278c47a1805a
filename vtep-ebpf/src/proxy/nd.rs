//! The proxy for IPv6: neighbour solicitations (RFC 4861) for addresses in `PROXY6` are answered
//! with a solicited neighbour advertisement, and advertisements are learned from. Duplicate
//! address detection (an unspecified source) is never answered.

use aya_ebpf::programs::TcContext;
use network_types::{
    eth::EthHdr,
    icmp::Icmpv6Hdr,
    ip::{IpProto, Ipv6Hdr},
};
use vtep_common::{maps::Proxy6Key, wire::ETH_P_IPV6};

use crate::{
    csum, learn,
    maps::{self, PROXY6},
    parse::{self, Packet, Plain, is_group_mac},
    skb,
};

const ND_SOLICIT: u8 = 135;
const ND_ADVERT: u8 = 136;
/// RFC 4861: neighbour discovery packets are sent, and accepted, with hop limit 255 only.
const ND_HOP_LIMIT: u8 = 255;
/// An advertisement's flags (the first byte after the ICMPv6 checksum): solicited and override
/// (RFC 4861 section 7.2.4); not a router.
const ND_FLAGS_SOLICITED_OVERRIDE: u8 = 0x60;
/// The target link-layer address option (RFC 4861 section 4.6.1) and its length in 8-byte units.
const ND_OPT_TARGET_LL_ADDR: u8 = 2;

/// A neighbour solicitation or advertisement: the ICMPv6 header (its 4 data bytes are flags and
/// reserved) and the target address.
#[repr(C)]
#[derive(Clone, Copy)]
struct NdMsg {
    icmp: Icmpv6Hdr,
    target: [u8; 16],
}

/// The advertisement vtep sends: the ND message and one target link-layer address option.
#[repr(C)]
#[derive(Clone, Copy)]
struct Advert {
    msg: NdMsg,
    opt_type: u8,
    /// In units of 8 bytes: 1.
    opt_len: u8,
    opt_mac: [u8; 6],
}

/// The frame the proxy writes over a solicitation.
#[repr(C)]
#[derive(Clone, Copy)]
struct AdvertFrame {
    eth: EthHdr,
    ip: Ipv6Hdr,
    advert: Advert,
}

const _: () = assert!(size_of::<NdMsg>() == Icmpv6Hdr::LEN + 16);
const _: () = assert!(size_of::<Advert>() == size_of::<NdMsg>() + 8);
const _: () = assert!(size_of::<AdvertFrame>() == EthHdr::LEN + Ipv6Hdr::LEN + size_of::<Advert>());
// SAFETY: `#[repr(C)]` structs of `Plain` headers, bytes and byte arrays with no padding (sizes
// asserted above).
unsafe impl Plain for NdMsg {}
unsafe impl Plain for Advert {}
unsafe impl Plain for AdvertFrame {}

/// Bytes from the Ethernet header to the end of an ND message's target address: what must be
/// linear to parse one.
pub const ADVERT_MIN_LEN: usize = EthHdr::LEN + Ipv6Hdr::LEN + size_of::<NdMsg>();

/// A neighbour solicitation or advertisement: the IPv6 source and the target address.
pub struct Nd {
    pub kind: u8,
    pub src: [u8; 16],
    pub target: [u8; 16],
}

/// The ND message of the IPv6 frame at offset `offset` (its Ethernet header), or `None` for
/// anything else: other protocols, extension headers, a hop limit other than 255, a short frame.
#[inline(always)]
pub fn parse(ctx: &impl Packet, offset: usize) -> Option<Nd> {
    let ip: Ipv6Hdr = parse::load(ctx, offset + EthHdr::LEN)?;
    if ip.version() != 6 || ip.next_hdr != IpProto::Ipv6Icmp as u8 || ip.hop_limit != ND_HOP_LIMIT {
        return None;
    }
    let msg: NdMsg = parse::load(ctx, offset + EthHdr::LEN + Ipv6Hdr::LEN)?;
    let kind = msg.icmp.type_;
    if (kind != ND_SOLICIT && kind != ND_ADVERT) || msg.icmp.code != 0 {
        return None;
    }
    Some(Nd {
        kind,
        src: ip.src_addr,
        target: msg.target,
    })
}

/// The MAC `PROXY6` has for the target of solicitation `nd` in VNI `vni`, when it should be
/// answered: a solicitation, not duplicate address detection.
#[inline(always)]
pub fn known_target(vni: u32, nd: &Nd) -> Option<[u8; 6]> {
    if nd.kind != ND_SOLICIT || nd.src == [0; 16] {
        return None;
    }
    let entry = maps::get(&PROXY6, &Proxy6Key { vni, ip: nd.target })?;
    Some(entry.mac)
}

/// Turns the solicitation `nd` from `requester` (the frame at offset 0) into the solicited
/// advertisement from `mac`: to the solicitor, override and solicited flags set, with a target
/// link-layer address option. Returns `None` when the frame cannot be resized or written.
#[inline(always)]
pub fn rewrite_as_advert(
    ctx: &TcContext,
    nd: &Nd,
    requester: &[u8; 6],
    mac: &[u8; 6],
) -> Option<()> {
    let mut advert = Advert {
        msg: NdMsg {
            icmp: Icmpv6Hdr {
                type_: ND_ADVERT,
                code: 0,
                check: [0; 2],
                data: [ND_FLAGS_SOLICITED_OVERRIDE, 0, 0, 0],
            },
            target: nd.target,
        },
        opt_type: ND_OPT_TARGET_LL_ADDR,
        opt_len: 1,
        opt_mac: *mac,
    };
    // From the solicited address to the solicitor.
    let (src, dst) = (nd.target, nd.src);
    let sum = csum::icmpv6_sum(&src, &dst, advert.as_bytes());
    advert.msg.icmp.check = (!sum).to_be_bytes();
    let mut ip = Ipv6Hdr {
        vcf: [0; 4],
        payload_len: (size_of::<Advert>() as u16).to_be_bytes(),
        next_hdr: IpProto::Ipv6Icmp as u8,
        hop_limit: ND_HOP_LIMIT,
        src_addr: src,
        dst_addr: dst,
    };
    ip.set_version(6);
    let frame = AdvertFrame {
        eth: EthHdr {
            dst_addr: *requester,
            src_addr: *mac,
            ether_type: ETH_P_IPV6.to_be(),
        },
        ip,
        advert,
    };
    skb::change_tail(ctx, size_of::<AdvertFrame>() as u32)?;
    parse::store(ctx, 0, frame)
}

/// Learns the target of advertisement `nd` (from a remote station with MAC `mac`) in VNI `vni`,
/// as `arp::learn_sender` does for ARP.
#[inline(always)]
pub fn learn_advert(vni: u32, nd: &Nd, mac: &[u8; 6]) {
    if nd.kind != ND_ADVERT || is_group_mac(mac) || nd.target[0] == 0xff {
        return;
    }
    learn::learn_address(&PROXY6, Proxy6Key { vni, ip: nd.target }, mac);
}
