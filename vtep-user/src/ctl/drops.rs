//! `vtep monitor --drops`: packets the datapath drops, as they happen, with the reason, where
//! (the port or the underlay), the VNI and remote VTEP when the packet says, and a summary of
//! its headers, the way `cilium monitor --type drop` is used. The datapath samples drops only
//! while a monitor keeps `DROP_MONITOR_UNTIL` in the future (pushed forward every second here),
//! at most `--rate` per second per CPU; it stops within seconds of the monitor's end.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::AsFd as _,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, anyhow, bail};
use aya::maps::{MapData, RingBuf};
use serde::Serialize;
use vtep_common::{
    drop::DropReason,
    maps::{
        DROP_MONITOR_RATE, DROP_MONITOR_UNTIL, DropSample, HOOK_PORT, HOOK_UNDERLAY, HOOK_XDP,
        MAP_DROP_SAMPLES,
    },
};

use crate::{ctl::PortNames, datapath::maps::Pinned, mac::Mac, sys::clock};

/// How far ahead the monitor keeps sampling on: it renews every second, so a monitor that dies
/// stops the sampling this long after at most.
const LEASE: Duration = Duration::from_secs(3);
const RENEW: Duration = Duration::from_secs(1);

/// One dropped packet as `vtep monitor --drops` prints it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Drop {
    pub event: &'static str,
    /// The drop reason's name, as `vtep stats` counts it.
    pub reason: &'static str,
    /// "port", "underlay" or "xdp": the program that dropped it.
    pub hook: &'static str,
    /// The interface it arrived on.
    pub port: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
    /// The remote VTEP that sent it (underlay drops of VXLAN), or that a flood copy dropped at a
    /// port was for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<IpAddr>,
    pub len: u32,
    /// Its headers in brief: MACs, addresses, protocol (inner ones for VXLAN).
    pub summary: String,
}

/// The drops of a running instance.
pub struct Drops {
    maps: Pinned,
    ring: RingBuf<MapData>,
    names: PortNames,
    /// The UDP ports the instance takes VXLAN on, read again at each renewal (a reload may
    /// change them): what tells VXLAN from the frames inside it in a sample.
    ports: Vec<u16>,
    renewed: Instant,
}

impl Drops {
    /// Starts sampling the drops of instance `name`, at most `rate` per second per CPU; fails
    /// when it does not run (or runs a datapath without the sampler).
    pub fn open(name: &str, rate: u64) -> Result<Self> {
        let maps = Pinned::of(name);
        let ring = maps.drop_samples()?;
        maps.drop_monitor()?
            .set(DROP_MONITOR_RATE, rate, 0)
            .context("setting the sample rate")?;
        let mut drops = Self {
            names: PortNames::of(name),
            maps,
            ring,
            ports: Vec::new(),
            renewed: Instant::now(),
        };
        drops.renew()?;
        Ok(drops)
    }

    fn renew(&mut self) -> Result<()> {
        let until = clock::monotonic_nanos() + LEASE.as_nanos() as u64;
        self.maps
            .drop_monitor()?
            .set(DROP_MONITOR_UNTIL, until, 0)
            .context("keeping drop sampling on")?;
        self.ports = vxlan_ports(&self.maps);
        self.renewed = Instant::now();
        Ok(())
    }

    /// The next drop, waiting for it as long as it takes. Fails when the instance stops.
    pub fn wait(&mut self) -> Result<Drop> {
        loop {
            if self.renewed.elapsed() >= RENEW {
                self.renew()?;
            }
            if let Some(record) = self.ring.next()
                && let Some(drop) = parse(&record, &self.maps, &self.names, &self.ports)
            {
                return Ok(drop);
            }
            let fd = self.ring.as_fd();
            let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(500u16)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => bail!("waiting for drops: {e}"),
            }
            if !self.maps.path(MAP_DROP_SAMPLES).exists() {
                let name = self.maps.name();
                return Err(anyhow!("instance `{name}` stopped")).context("vtep monitor");
            }
        }
    }
}

impl std::ops::Drop for Drops {
    /// Sampling stops at once when the monitor ends normally.
    fn drop(&mut self) {
        if let Ok(mut m) = self.maps.drop_monitor() {
            let _ = m.set(DROP_MONITOR_UNTIL, 0, 0);
        }
    }
}

/// The UDP ports instance `maps` takes VXLAN on: its VNIs' (empty when they cannot be read).
fn vxlan_ports(maps: &Pinned) -> Vec<u16> {
    let mut ports: Vec<u16> = maps
        .vnis()
        .map(|vnis| {
            vnis.iter()
                .flatten()
                .map(|(_, v)| u16::from_be_bytes(v.dstport))
                .collect()
        })
        .unwrap_or_default();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// A sample as it is printed; `None` for a record that is not one. `ports`: the instance's
/// VXLAN ports.
fn parse(record: &[u8], maps: &Pinned, names: &PortNames, ports: &[u16]) -> Option<Drop> {
    if record.len() != std::mem::size_of::<DropSample>() {
        return None;
    }
    // SAFETY: the size matches and `DropSample` is plain old data (any bytes are valid).
    let s: DropSample = unsafe { std::ptr::read_unaligned(record.as_ptr().cast()) };
    let reason = DropReason::ALL
        .iter()
        .find(|r| **r as u32 == s.reason)
        .map_or("unknown", |r| r.name());
    let bytes = &s.bytes[..(s.caplen as usize).min(s.bytes.len())];
    let hook = match s.hook {
        HOOK_PORT => "port",
        HOOK_UNDERLAY => "underlay",
        HOOK_XDP => "xdp",
        _ => "unknown",
    };
    let port_vni = || {
        maps.ports()
            .ok()
            .and_then(|p| p.get(&s.ifindex, 0).ok())
            .map(|p| p.vni)
    };
    let (vni, remote, summary) = match summarise(s.hook, bytes, ports) {
        (None, remote, summary) if s.hook == HOOK_PORT => (port_vni(), remote, summary),
        parts => parts,
    };
    Some(Drop {
        event: "drop",
        reason,
        hook,
        port: names.name(s.ifindex),
        vni,
        remote,
        len: s.len,
        summary,
    })
}

/// An Ethernet frame in brief: `SRC > DST` MACs, then what it carries.
pub fn frame_summary(b: &[u8]) -> String {
    if b.len() < 14 {
        return format!("{} bytes", b.len());
    }
    let mac = |at: usize| Mac(b[at..at + 6].try_into().expect("6 bytes"));
    let ethertype = u16::from_be_bytes([b[12], b[13]]);
    format!(
        "{} > {} {}",
        mac(6),
        mac(0),
        payload_summary(ethertype, &b[14..])
    )
}

/// What an Ethernet payload of `ethertype` is, in brief.
fn payload_summary(ethertype: u16, p: &[u8]) -> String {
    match (ethertype, ip_header(ethertype, p)) {
        (_, Some((src, dst, proto, _))) => format!("{src} > {dst} {}", proto_name(proto)),
        (0x0806, None) if p.len() >= 28 => format!(
            "arp who-has {} tell {}",
            Ipv4Addr::new(p[24], p[25], p[26], p[27]),
            Ipv4Addr::new(p[14], p[15], p[16], p[17])
        ),
        (t, None) => format!("ethertype {t:#06x}"),
    }
}

/// The addresses, protocol and header length of an IPv4 or IPv6 packet.
fn ip_header(ethertype: u16, p: &[u8]) -> Option<(IpAddr, IpAddr, u8, usize)> {
    match ethertype {
        0x0800 if p.len() >= 20 && p[0] >> 4 == 4 => {
            let ihl = usize::from(p[0] & 0xf) * 4;
            let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
            let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
            Some((src.into(), dst.into(), p[9], ihl.max(20)))
        }
        0x86dd if p.len() >= 40 && p[0] >> 4 == 6 => {
            let addr = |at: usize| -> IpAddr {
                Ipv6Addr::from(<[u8; 16]>::try_from(&p[at..at + 16]).expect("16 bytes")).into()
            };
            Some((addr(8), addr(24), p[6], 40))
        }
        _ => None,
    }
}

fn proto_name(proto: u8) -> String {
    match proto {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "icmpv6".into(),
        p => format!("proto {p}"),
    }
}

/// A dropped packet of the program at `hook` in brief, with the VNI and the remote VTEP when
/// it says them: (VNI, remote, summary). VXLAN (UDP to one of `ports`, the instance's) is
/// summarised by its outer addresses, VNI and inner frame, the remote being its source on the
/// underlay and its destination at a port (a flood copy encapsulated for a remote VTEP); any
/// other packet as a frame: a workload's at a port, and on the underlay one dropped after
/// decapsulation (the inner frame) or one that is not VXLAN for us.
pub fn summarise(hook: u32, b: &[u8], ports: &[u16]) -> (Option<u32>, Option<IpAddr>, String) {
    let Some(v) = vxlan_parts(b, ports) else {
        return (None, None, frame_summary(b));
    };
    let remote = if hook == HOOK_PORT { v.dst } else { v.src };
    let (src, dst, dport) = (v.src, v.dst, v.dport);
    let summary = match (v.vni, v.inner) {
        (Some(vni), Some(inner)) => {
            format!(
                "vxlan {src} > {dst}:{dport} vni {vni}: {}",
                frame_summary(inner)
            )
        }
        _ => format!("vxlan {src} > {dst}:{dport} (no VXLAN header)"),
    };
    (v.vni, Some(remote), summary)
}

/// The parts of a VXLAN packet [`summarise`] shows; the VNI and inner frame when the packet
/// holds the 8-byte VXLAN header.
struct VxlanParts<'a> {
    src: IpAddr,
    dst: IpAddr,
    dport: u16,
    vni: Option<u32>,
    inner: Option<&'a [u8]>,
}

/// `b` as a VXLAN packet: Ethernet, IPv4 or IPv6, UDP to one of `ports`; `None` otherwise.
fn vxlan_parts<'a>(b: &'a [u8], ports: &[u16]) -> Option<VxlanParts<'a>> {
    let ethertype = u16::from_be_bytes([*b.get(12)?, *b.get(13)?]);
    let (src, dst, proto, hlen) = ip_header(ethertype, &b[14..])?;
    let udp = b.get(14 + hlen..)?;
    if proto != 17 || udp.len() < 8 {
        return None;
    }
    let dport = u16::from_be_bytes([udp[2], udp[3]]);
    if !ports.contains(&dport) {
        return None;
    }
    let (vni, inner) = match udp.get(8..16) {
        Some(h) => (
            Some(u32::from_be_bytes([0, h[4], h[5], h[6]])),
            Some(&udp[16..]),
        ),
        None => (None, None),
    };
    Some(VxlanParts {
        src,
        dst,
        dport,
        vni,
        inner,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vxlan_packet_is_summarised_by_its_vtep_vni_and_inner_frame() {
        let mut p = vec![0u8; 14 + 20 + 8 + 8 + 14 + 20];
        p[12..14].copy_from_slice(&[0x08, 0x00]);
        p[14] = 0x45;
        p[14 + 9] = 17;
        p[14 + 12..14 + 16].copy_from_slice(&[198, 18, 0, 2]);
        p[14 + 16..14 + 20].copy_from_slice(&[198, 18, 0, 1]);
        p[34 + 2..34 + 4].copy_from_slice(&4789u16.to_be_bytes());
        p[42] = 0x08;
        p[42 + 4..42 + 7].copy_from_slice(&[0, 0, 77]);
        let inner = 50;
        p[inner..inner + 6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        p[inner + 6..inner + 12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        p[inner + 12..inner + 14].copy_from_slice(&[0x08, 0x00]);
        p[inner + 14] = 0x45;
        p[inner + 14 + 9] = 1;
        p[inner + 26..inner + 30].copy_from_slice(&[192, 0, 2, 1]);
        p[inner + 30..inner + 34].copy_from_slice(&[192, 0, 2, 2]);
        let (vni, remote, summary) = summarise(HOOK_UNDERLAY, &p, &[4789]);
        assert_eq!(vni, Some(77));
        assert_eq!(remote, Some("198.18.0.2".parse().unwrap()));
        let inner_summary =
            "02:00:00:00:00:01 > 02:00:00:00:00:02 192.0.2.1 > 192.0.2.2 icmp".to_string();
        assert_eq!(
            summary,
            format!("vxlan 198.18.0.2 > 198.18.0.1:4789 vni 77: {inner_summary}")
        );
        // At a port it is a flood copy, for the remote it is sent to.
        let (_, remote, _) = summarise(HOOK_PORT, &p, &[4789]);
        assert_eq!(remote, Some("198.18.0.1".parse().unwrap()));
        // Dropped after decapsulation, the inner frame is the packet (the bug: it was read as
        // VXLAN, with the inner source as the remote VTEP and a VNI from its payload).
        assert_eq!(
            summarise(HOOK_UNDERLAY, &p[inner..], &[4789]),
            (None, None, inner_summary)
        );
        // UDP to a port that is not the instance's is no VXLAN.
        assert_eq!(summarise(HOOK_UNDERLAY, &p, &[8472]).0, None);
        // Cut short anywhere, it never panics.
        for n in 0..p.len() {
            let _ = summarise(HOOK_UNDERLAY, &p[..n], &[4789]);
            let _ = summarise(HOOK_PORT, &p[..n], &[4789]);
        }
    }
}
