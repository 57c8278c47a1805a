//! Why the datapath dropped a packet. Each reason is an index into the per-CPU drop counters;
//! userspace prints them by [`DropReason::name`] and describes them by [`DropReason::help`].
//!
//! The list below is the only place a reason is defined: the enum, [`DropReason::ALL`], the
//! counter array's size and the names `vtep stats` prints all come from it, so adding a reason is
//! one entry, at the end (an index never changes meaning).

macro_rules! drop_reasons {
    ($( $(#[doc = $doc:literal])+ $variant:ident = $index:literal, $name:literal; )+) => {
        /// A drop reason. Stored as a `u32` index, never read out of packet bytes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u32)]
        pub enum DropReason {
            $( $(#[doc = $doc])+ $variant = $index, )+
        }

        impl DropReason {
            /// Every reason, in index order.
            pub const ALL: [DropReason; [$($name),+].len()] = [$(Self::$variant),+];
            /// How many reasons there are: the size of the `DROPS` counter array.
            pub const COUNT: u32 = Self::ALL.len() as u32;

            /// The name `vtep stats` prints (snake case, stable).
            pub const fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => $name, )+
                }
            }

            /// One sentence saying when the datapath drops for this reason (its doc comment).
            pub const fn help(self) -> &'static str {
                match self {
                    $( Self::$variant => concat!($($doc),+), )+
                }
            }
        }
    };
}

drop_reasons! {
    /// VXLAN for us, but too short to hold the VXLAN header and an inner Ethernet header.
    VxlanTruncated = 0, "vxlan_truncated";
    /// VXLAN for us with the I flag clear.
    VxlanBadFlags = 1, "vxlan_bad_flags";
    /// VXLAN for us with a VNI that is not configured (or configured on another UDP port).
    UnknownVni = 2, "unknown_vni";
    /// A decapsulated frame whose destination MAC belongs to another remote VTEP: VTEPs do not
    /// forward overlay traffic back into the overlay.
    DecapToRemote = 3, "decap_to_remote";
    /// A frame arrived on an interface that has the encap program but no port entry.
    UnknownPort = 4, "unknown_port";
    /// A frame from a local port too short for an Ethernet header.
    FrameTruncated = 5, "frame_truncated";
    /// Growing the packet for the outer headers, or writing them, failed.
    EncapFailed = 6, "encap_failed";
    /// Shrinking the packet to its inner frame failed.
    DecapFailed = 7, "decap_failed";
    /// The kernel has no route to a remote VTEP.
    NoRoute = 8, "no_route";
    /// The underlay next hop of a remote VTEP is not resolved and the frame cannot wait for it
    /// (a flood copy, or a non-IP frame). Userspace keeps remote VTEPs' next hops resolved.
    NexthopUnresolved = 9, "nexthop_unresolved";
    /// Broadcast or unknown unicast with nowhere to go: no remote VTEP and no other local port.
    NoFloodTarget = 10, "no_flood_target";
    /// The kernel refused a redirect or clone (target interface gone or down, or the redirect
    /// to a next hop it was to resolve refused).
    RedirectFailed = 11, "redirect_failed";
    /// The continuation program of a path (see `JUMP_*`) could not be entered: not loaded.
    TailCallFailed = 12, "tail_call_failed";
    /// A frame from a local port whose 802.1Q tag the kernel had taken out could not have it put
    /// back (the frame could not be grown or written).
    VlanRestoreFailed = 13, "vlan_restore_failed";
    /// The proxy could not rewrite an ARP request or neighbour solicitation into its answer (the
    /// frame could not be resized or written).
    ProxyReplyFailed = 14, "proxy_reply_failed";
    /// VXLAN for us whose outer IPv4 total length (IPv6 payload length) is longer than the
    /// frame, or whose UDP length disagrees with it (a length-field lie; the kernel's IP and UDP
    /// layers drop these).
    VxlanBadLength = 15, "vxlan_bad_length";
    /// VXLAN for us with a non-zero outer UDP checksum that is wrong (the kernel's UDP layer
    /// verifies it).
    VxlanBadChecksum = 16, "vxlan_bad_checksum";
    /// A decapsulated frame longer than the MTU of the local port it is for (plus the Ethernet
    /// header and a VLAN tag), which a bridge or veth would drop too.
    InnerTooBig = 17, "inner_too_big";
    /// VXLAN for us from an outer source `underlay.accept` does not allow (a spoofed or unknown
    /// VTEP), dropped before anything is learned from it.
    SourceNotAllowed = 18, "source_not_allowed";
    /// A GSO frame (several segments in one skb) from a local port on an IPv6 underlay that
    /// sends UDP checksums: `bpf_skb_adjust_room` cannot mark it for per-segment outer checksums
    /// (`SKB_GSO_UDP_TUNNEL_CSUM`), and one checksum copied into every segment would be wrong in
    /// all of them. vtep turns segmentation offloads off where it creates workloads; this counts
    /// what other senders (adopted ports) still hand over.
    GsoNeedsChecksum = 19, "gso_needs_checksum";
}

// The counters are indexed by the discriminant: the list must be dense and in order.
const _: () = {
    let mut i = 0;
    while i < DropReason::ALL.len() {
        assert!(DropReason::ALL[i] as usize == i);
        i += 1;
    }
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case_and_help_is_set() {
        let mut seen = std::collections::HashSet::new();
        for r in DropReason::ALL {
            assert!(seen.insert(r.name()), "{} twice", r.name());
            assert!(
                r.name()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
            assert!(!r.help().trim().is_empty());
        }
    }

    /// A counter index keeps its meaning across builds (a `DROPS` map, or a reader that goes by
    /// index, sees each count under the same name): reasons are only added at the end.
    #[test]
    fn reasons_keep_their_index() {
        const KNOWN: [&str; 15] = [
            "vxlan_truncated",
            "vxlan_bad_flags",
            "unknown_vni",
            "decap_to_remote",
            "unknown_port",
            "frame_truncated",
            "encap_failed",
            "decap_failed",
            "no_route",
            "nexthop_unresolved",
            "no_flood_target",
            "redirect_failed",
            "tail_call_failed",
            "vlan_restore_failed",
            "proxy_reply_failed",
        ];
        let names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names[..KNOWN.len()], KNOWN);
    }
}
