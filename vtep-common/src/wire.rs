//! Wire-format constants of VXLAN over IPv4 (RFC 7348).

/// The I flag: the VNI field is valid. The only flag RFC 7348 defines.
pub const VXLAN_FLAG_I: u8 = 0x08;
/// Largest 24-bit VNI.
pub const VNI_MAX: u32 = 0x00FF_FFFF;
/// IANA-assigned VXLAN port.
pub const DSTPORT_IANA: u16 = 4789;

pub const ETH_LEN: usize = 14;
pub const IPV4_LEN: usize = 20;
pub const IPV6_LEN: usize = 40;
pub const UDP_LEN: usize = 8;
pub const VXLAN_LEN: usize = 8;
/// Bytes VXLAN over IPv4 adds to an Ethernet frame: outer IPv4 + UDP + VXLAN + the inner
/// Ethernet header that now counts towards the outer MTU.
pub const OVERHEAD_IPV4: usize = IPV4_LEN + UDP_LEN + VXLAN_LEN + ETH_LEN;
/// Outer Ethernet + outer IPv4 + UDP + VXLAN: where the inner frame starts in a VXLAN packet.
pub const INNER_OFFSET: usize = ETH_LEN + IPV4_LEN + UDP_LEN + VXLAN_LEN;

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86DD;
pub const ETH_P_ARP: u16 = 0x0806;
/// An Ethernet/IPv4 ARP packet: hardware type, protocol type, lengths, operation, then sender
/// and target hardware and protocol addresses.
pub const ARP_LEN: usize = 28;
/// The fixed start of an Ethernet/IPv4 ARP packet: hardware type 1, protocol type 0x0800,
/// address lengths 6 and 4.
pub const ARP_ETH_IPV4: [u8; 6] = [0, 1, 8, 0, 6, 4];
pub const ARP_OP_REQUEST: u16 = 1;
pub const ARP_OP_REPLY: u16 = 2;
pub const IPPROTO_UDP: u8 = 17;

/// Default outer TTL, the kernel's default hop limit for unicast.
pub const DEFAULT_TTL: u8 = 64;
/// Default UDP source port range: the kernel vxlan driver takes `ip_local_port_range`, whose
/// default is this.
pub const DEFAULT_SRCPORT_MIN: u16 = 32768;
pub const DEFAULT_SRCPORT_MAX: u16 = 60999;

const _: () = assert!(OVERHEAD_IPV4 == 50);
const _: () = assert!(INNER_OFFSET == 50);

/// Whether `ip` (network order) can be a remote VTEP: a unicast address a packet can be sent to
/// and come back from. Not 0.0.0.0/8, loopback (127/8), multicast (224/4) or reserved and
/// broadcast (240/4). The one rule for both sides: the datapath does not learn other outer
/// sources, and the config and `vtep fdb` refuse them as `dst`.
#[inline(always)]
pub const fn is_unicast_vtep_ipv4(ip: [u8; 4]) -> bool {
    ip[0] != 0 && ip[0] != 127 && ip[0] < 224
}
