//! GSO frames over an IPv6 underlay with UDP checksums: `bpf_skb_adjust_room` marks an
//! encapsulated GSO skb `SKB_GSO_UDP_TUNNEL` but never `SKB_GSO_UDP_TUNNEL_CSUM`, so the outer
//! checksum would be copied unchanged into every segment, right in none. Such a frame is handed
//! to the instance's segmenter instead (`SEGMENTER`): a veth pair in the host namespace whose one
//! end has segmentation offloads off, so the kernel segments what is sent out of it
//! (`validate_xmit_skb`). The segments arrive on the other end, where the port program runs too
//! and takes each for a frame of the port the mark names (`MARK_SEGMENTED` and the port's
//! ifindex: a mark survives a veth within one namespace), and encapsulates it with its own
//! checksum. (An `ifb` device would hand the segments back to the port itself, but it marks them
//! to skip TC there.)

use aya_ebpf::programs::TcContext;
use vtep_common::{
    drop::DropReason,
    maps::{MARK_SEGMENTED, SEGMENTER_BACK, SEGMENTER_OUT},
};

use crate::{deliver, maps::SEGMENTER, skb};

/// Whether a frame from a port must be segmented before it is encapsulated, in an instance
/// whose packets carry UDP checksums (`checksummed`): it is GSO.
#[inline(always)]
pub fn needed(ctx: &TcContext, checksummed: bool) -> bool {
    checksummed && skb::gso_size(ctx) != 0
}

/// Hands the GSO frame from port `ingress` to the segmenter. Returns the TC verdict; fails with
/// `GsoNeedsChecksum` when the instance has no segmenter or the frame is back from it
/// unsegmented (the offloads of its out end were turned on), or `RedirectFailed`.
#[inline(always)]
pub fn hand_over(ctx: &TcContext, ingress: u32) -> Result<i32, DropReason> {
    let out = SEGMENTER.get(SEGMENTER_OUT).copied().unwrap_or(0);
    let back = SEGMENTER.get(SEGMENTER_BACK).copied().unwrap_or(0);
    if out == 0 || skb::ifindex(ctx) == back {
        return Err(DropReason::GsoNeedsChecksum);
    }
    skb::set_mark(ctx, MARK_SEGMENTED | ingress);
    deliver::redirect(out)
}

/// The port a segment on the segmenter's return end came from, as its mark says. `None` for a
/// frame without the mark (not one the program handed over). The mark stays: the flood path, a
/// program of its own, reads it again; it goes out with the encapsulated segment (a mark is never
/// on the wire).
#[inline(always)]
pub fn came_from(ctx: &TcContext) -> Option<u32> {
    let mark = skb::mark(ctx);
    (mark & MARK_SEGMENTED != 0).then_some(mark & !MARK_SEGMENTED)
}
