//! Bounds-checked access to packet bytes: the only place raw packet pointers are made. Headers
//! are copied out of the packet ([`load`]) and written into it ([`store`]) whole, unaligned, so
//! no code elsewhere holds a pointer into the packet or reads a field through a typed pointer
//! that assumes an alignment the packet need not have. The TC programs (an skb) and the XDP
//! program (an xdp_buff) reach their bytes the same way, through [`Packet`], so the checks of
//! received VXLAN are written once for both.

use aya_ebpf::programs::{TcContext, XdpContext};
use network_types::{
    arp::ArpHdr,
    eth::EthHdr,
    icmp::Icmpv6Hdr,
    ip::{Ipv4Hdr, Ipv6Hdr},
    udp::UdpHdr,
    vxlan::VxlanHdr,
};
use vtep_common::wire::{ETH_P_IP, ETH_P_IPV6};

/// Types whose bytes may be copied from and to packet bytes as they are.
///
/// # Safety
///
/// Implement only for types in which every bit pattern is a valid value and that have no padding
/// (`#[repr(C)]` structs of integers and byte arrays, with their size asserted equal to the sum
/// of their fields'), so a copy of any packet bytes is a valid value and a copy into the packet
/// writes no uninitialised byte.
pub unsafe trait Plain: Copy {
    /// The value's bytes, as they are on the wire (checksums sum them).
    #[inline(always)]
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: `Self: Plain` has no padding, so all `size_of::<Self>()` bytes of the value
        // are initialised; the slice borrows the value and covers exactly it.
        unsafe { core::slice::from_raw_parts((self as *const Self).cast(), size_of::<Self>()) }
    }
}

// SAFETY: byte arrays are valid for any bytes and have no padding.
unsafe impl<const N: usize> Plain for [u8; N] {}
// SAFETY: network-types' headers are `#[repr(C)]` structs of `u8`, `u16` and byte arrays whose
// sizes (asserted below) are the sums of their fields: no padding, any bytes valid.
unsafe impl Plain for EthHdr {}
unsafe impl Plain for Ipv4Hdr {}
unsafe impl Plain for Ipv6Hdr {}
unsafe impl Plain for UdpHdr {}
unsafe impl Plain for VxlanHdr {}
unsafe impl Plain for ArpHdr {}
unsafe impl Plain for Icmpv6Hdr {}

const _: () = assert!(
    size_of::<EthHdr>() == 6 + 6 + 2
        && size_of::<Ipv4Hdr>() == 20
        && size_of::<Ipv6Hdr>() == 40
        && size_of::<UdpHdr>() == 8
        && size_of::<VxlanHdr>() == 8
        && size_of::<ArpHdr>() == 28
        && size_of::<Icmpv6Hdr>() == 8
);

/// A program context with packet bytes: the linear part from `data()` to `data_end()`, and the
/// rest (an skb's paged data, an xdp_buff's fragments) reached only by copying.
pub trait Packet {
    /// Address of the first byte of the linear part.
    fn data(&self) -> usize;
    /// Address one past the last byte of the linear part.
    fn data_end(&self) -> usize;
    /// The whole packet's length, the non-linear part included.
    fn len(&self) -> u32;
    /// Makes the first `len` bytes linear; `false` when the packet is shorter or the context
    /// cannot pull (an xdp_buff's head is as linear as it gets).
    fn pull(&self, len: u32) -> bool;
    /// Copies `len` packet bytes from `offset` to `to`, also from the non-linear part. Returns
    /// `None` when the packet is shorter.
    ///
    /// # Safety
    /// `to` must be valid for writes of `len` bytes (the verifier checks it as well).
    unsafe fn load_bytes(&self, offset: u32, to: *mut u8, len: u32) -> Option<()>;
}

impl Packet for TcContext {
    #[inline(always)]
    fn data(&self) -> usize {
        TcContext::data(self)
    }
    #[inline(always)]
    fn data_end(&self) -> usize {
        TcContext::data_end(self)
    }
    #[inline(always)]
    fn len(&self) -> u32 {
        TcContext::len(self)
    }
    #[inline(always)]
    fn pull(&self, len: u32) -> bool {
        self.pull_data(len).is_ok()
    }
    #[inline(always)]
    unsafe fn load_bytes(&self, offset: u32, to: *mut u8, len: u32) -> Option<()> {
        // SAFETY: `to` is the caller's promise.
        unsafe { crate::skb::load_bytes(self, offset, to, len) }
    }
}

impl Packet for XdpContext {
    #[inline(always)]
    fn data(&self) -> usize {
        XdpContext::data(self)
    }
    #[inline(always)]
    fn data_end(&self) -> usize {
        XdpContext::data_end(self)
    }
    #[inline(always)]
    fn len(&self) -> u32 {
        crate::xdp_buff::len(self)
    }
    #[inline(always)]
    fn pull(&self, _len: u32) -> bool {
        false
    }
    #[inline(always)]
    unsafe fn load_bytes(&self, offset: u32, to: *mut u8, len: u32) -> Option<()> {
        // SAFETY: `to` is the caller's promise.
        unsafe { crate::xdp_buff::load_bytes(self, offset, to, len) }
    }
}

/// A pointer to a `T` at `offset` bytes into the linear packet data, or `None` when the packet
/// (its linear part) is shorter than `offset + size_of::<T>()`. The pointer is only valid until
/// the next helper that changes the packet; [`load`] and [`store`] use it at once.
#[inline(always)]
fn ptr_at<T>(ctx: &impl Packet, offset: usize) -> Option<*mut T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + core::mem::size_of::<T>() > end {
        return None;
    }
    Some((start + offset) as *mut T)
}

/// A copy of the `T` at `offset` bytes into the linear packet data, or `None` when the linear
/// part is too short for it.
#[inline(always)]
pub fn load<T: Plain>(ctx: &impl Packet, offset: usize) -> Option<T> {
    let src = ptr_at::<T>(ctx, offset)?;
    // SAFETY: `ptr_at` checked that `size_of::<T>()` bytes from `src` lie inside the linear
    // packet data, which the kernel keeps mapped while the program runs; the read is unaligned
    // because packet data has no alignment, and `T: Plain` makes any bytes a valid `T`.
    Some(unsafe { src.read_unaligned() })
}

/// Writes `value` at `offset` bytes into the linear packet data. Returns `None`, writing nothing,
/// when the linear part is too short for it.
#[inline(always)]
pub fn store<T: Plain>(ctx: &impl Packet, offset: usize, value: T) -> Option<()> {
    let dst = ptr_at::<T>(ctx, offset)?;
    // SAFETY: as in `load`: the bytes lie inside the linear packet data, which TC and XDP programs
    // may write (direct packet access); unaligned, and `T: Plain` has no padding to leak.
    unsafe { dst.write_unaligned(value) };
    Some(())
}

/// Makes the first `len` bytes linear so [`load`] and [`store`] can reach them. Returns `false`
/// when the packet is shorter than `len` or cannot be pulled.
#[inline(always)]
pub fn ensure_linear(ctx: &impl Packet, len: usize) -> bool {
    if ctx.data() + len <= ctx.data_end() {
        return true;
    }
    ctx.len() as usize >= len && ctx.pull(len as u32)
}

/// True for group (broadcast and multicast) MAC addresses.
#[inline(always)]
pub fn is_group_mac(mac: &[u8; 6]) -> bool {
    mac[0] & 1 != 0
}

/// The Ethernet type of `eth`, in host byte order (`ETH_P_*`).
#[inline(always)]
pub fn ether_type(eth: &EthHdr) -> u16 {
    u16::from_be(eth.ether_type)
}

/// True for the Ethernet types of IP (`ETH_P_IP`, `ETH_P_IPV6`): the frames `adjust_room`
/// takes, and after which it leaves `skb->protocol` matching the frame.
#[inline(always)]
pub fn is_ip(ether_type: u16) -> bool {
    ether_type == ETH_P_IP || ether_type == ETH_P_IPV6
}

/// True for an IPv4 header of version 4 without options (IHL 5): the only kind vtep reads past.
#[inline(always)]
pub fn is_plain_ipv4(ip: &Ipv4Hdr) -> bool {
    ip.vihl == 0x45
}

/// True for a fragment of an IPv4 datagram: more fragments follow, or it is not the first.
#[inline(always)]
pub fn is_fragment(ip: &Ipv4Hdr) -> bool {
    // The MF flag (0x2000) and the 13-bit fragment offset.
    u16::from_be_bytes(ip.frags) & 0x3fff != 0
}
