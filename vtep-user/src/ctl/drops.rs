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
    /// The remote VTEP that sent it (underlay drops of VXLAN).
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
                && let Some(drop) = parse(&record, &self.maps, &self.names)
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

/// A sample as it is printed; `None` for a record that is not one.
fn parse(record: &[u8], maps: &Pinned, names: &PortNames) -> Option<Drop> {
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
    let (vni, remote, summary) = if s.hook == HOOK_PORT {
        let vni = maps
            .ports()
            .ok()
            .and_then(|p| p.get(&s.ifindex, 0).ok())
            .map(|p| p.vni);
        (vni, None, frame_summary(bytes))
    } else {
        underlay_summary(bytes)
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

/// A packet from the underlay in brief: for VXLAN the remote VTEP, the VNI and the inner frame;
/// otherwise its outer headers.
pub fn underlay_summary(b: &[u8]) -> (Option<u32>, Option<IpAddr>, String) {
    if b.len() < 14 {
        return (None, None, format!("{} bytes", b.len()));
    }
    let ethertype = u16::from_be_bytes([b[12], b[13]]);
    let Some((src, dst, proto, hlen)) = ip_header(ethertype, &b[14..]) else {
        return (None, None, frame_summary(b));
    };
    let udp = &b[14 + hlen.min(b.len() - 14)..];
    if proto != 17 || udp.len() < 8 + 8 {
        return (
            None,
            Some(src),
            format!("{src} > {dst} {}", proto_name(proto)),
        );
    }
    let dport = u16::from_be_bytes([udp[2], udp[3]]);
    let vxlan = &udp[8..16];
    let vni = u32::from_be_bytes([0, vxlan[4], vxlan[5], vxlan[6]]);
    let inner = frame_summary(&udp[16..]);
    (
        Some(vni),
        Some(src),
        format!("vxlan {src} > {dst}:{dport} vni {vni}: {inner}"),
    )
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
        let (vni, remote, summary) = underlay_summary(&p);
        assert_eq!(vni, Some(77));
        assert_eq!(remote, Some("198.18.0.2".parse().unwrap()));
        assert_eq!(
            summary,
            "vxlan 198.18.0.2 > 198.18.0.1:4789 vni 77: 02:00:00:00:00:01 > 02:00:00:00:00:02 192.0.2.1 > 192.0.2.2 icmp"
        );
        // Cut short anywhere, it never panics.
        for n in 0..p.len() {
            let _ = underlay_summary(&p[..n]);
            let _ = frame_summary(&p[..n]);
        }
    }
}
