//! Bounds-checked access to packet bytes: the only place raw packet pointers are made.

use aya_ebpf::programs::TcContext;

/// A pointer to a `T` at `offset` bytes into the linear packet data, or `None` when the packet
/// (its linear part) is shorter than `offset + size_of::<T>()`.
#[inline(always)]
pub fn ptr_at<T>(ctx: &TcContext, offset: usize) -> Option<*mut T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + core::mem::size_of::<T>() > end {
        return None;
    }
    Some((start + offset) as *mut T)
}

/// Makes the first `len` bytes linear so `ptr_at` can reach them. Returns `false` when the
/// packet is shorter than `len`.
#[inline(always)]
pub fn ensure_linear(ctx: &TcContext, len: usize) -> bool {
    if ctx.data() + len <= ctx.data_end() {
        return true;
    }
    ctx.len() as usize >= len && ctx.pull_data(len as u32).is_ok()
}

/// True for group (broadcast and multicast) MAC addresses.
#[inline(always)]
pub fn is_group_mac(mac: &[u8; 6]) -> bool {
    mac[0] & 1 != 0
}
