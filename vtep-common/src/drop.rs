//! Why the datapath dropped a packet. Each reason is an index into the per-CPU drop counters;
//! userspace prints them by [`DropReason::name`].

/// A drop reason. Stored as a `u32` index, never read out of packet bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum DropReason {
    /// VXLAN for us, but too short to hold the VXLAN header and an inner Ethernet header.
    VxlanTruncated = 0,
    /// VXLAN for us with the I flag clear.
    VxlanBadFlags = 1,
    /// VXLAN for us with a VNI that is not configured (or configured on another UDP port).
    UnknownVni = 2,
    /// A decapsulated frame whose destination MAC belongs to another remote VTEP: VTEPs do not
    /// forward overlay traffic back into the overlay.
    DecapToRemote = 3,
    /// A frame arrived on an interface that has the encap program but no port entry.
    UnknownPort = 4,
    /// A frame from a local port too short for an Ethernet header.
    FrameTruncated = 5,
    /// Growing the packet for the outer headers, or writing them, failed.
    EncapFailed = 6,
    /// Shrinking the packet to its inner frame failed.
    DecapFailed = 7,
    /// The kernel has no route to a remote VTEP.
    NoRoute = 8,
    /// The underlay neighbour of a remote VTEP is not resolved and the frame cannot wait for it
    /// (a flood copy, or a non-IP frame). Userspace keeps remote VTEPs' neighbours resolved.
    NoNeigh = 9,
    /// Broadcast or unknown unicast with nowhere to go: no remote VTEP and no other local port.
    NoFloodTarget = 10,
    /// The kernel refused a redirect or clone (target interface gone or down).
    RedirectFailed = 11,
    /// The continuation program of a path (see `JUMP_*`) could not be entered: not loaded.
    TailCallFailed = 12,
}

impl DropReason {
    pub const COUNT: u32 = 13;
    pub const ALL: [DropReason; Self::COUNT as usize] = [
        Self::VxlanTruncated,
        Self::VxlanBadFlags,
        Self::UnknownVni,
        Self::DecapToRemote,
        Self::UnknownPort,
        Self::FrameTruncated,
        Self::EncapFailed,
        Self::DecapFailed,
        Self::NoRoute,
        Self::NoNeigh,
        Self::NoFloodTarget,
        Self::RedirectFailed,
        Self::TailCallFailed,
    ];

    /// The name `vtep stats` prints.
    pub const fn name(self) -> &'static str {
        match self {
            Self::VxlanTruncated => "vxlan_truncated",
            Self::VxlanBadFlags => "vxlan_bad_flags",
            Self::UnknownVni => "unknown_vni",
            Self::DecapToRemote => "decap_to_remote",
            Self::UnknownPort => "unknown_port",
            Self::FrameTruncated => "frame_truncated",
            Self::EncapFailed => "encap_failed",
            Self::DecapFailed => "decap_failed",
            Self::NoRoute => "no_route",
            Self::NoNeigh => "no_neigh",
            Self::NoFloodTarget => "no_flood_target",
            Self::RedirectFailed => "redirect_failed",
            Self::TailCallFailed => "tail_call_failed",
        }
    }
}
