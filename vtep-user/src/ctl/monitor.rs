//! `vtep monitor`: the miss events of a running instance as they happen (the kernel's
//! `l2miss`/`l3miss` netlink notifications, here from the datapath's ring buffer).

use std::{
    io::Write,
    net::Ipv4Addr,
    os::fd::{AsFd as _, AsRawFd as _},
};

use anyhow::{Context as _, Result, bail};
use aya::maps::{MapData, RingBuf};
use serde::Serialize;
use vtep_common::maps::{MAP_EVENTS, MISS_L2, MISS_L3, MissEvent};

use crate::{ctl::show as live, instance, mac::Mac};

/// One event as `vtep monitor` prints it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Event {
    /// "l2miss" or "l3miss".
    pub event: &'static str,
    pub vni: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ipv4Addr>,
    /// The local port the frame came from.
    pub port: String,
}

impl Event {
    /// The event in one ring buffer record, or `None` for a record of another size or kind.
    pub fn parse(record: &[u8]) -> Option<Self> {
        if record.len() != std::mem::size_of::<MissEvent>() {
            return None;
        }
        // SAFETY: the size matches and `MissEvent` is plain old data (any bytes are valid).
        let e: MissEvent = unsafe { std::ptr::read_unaligned(record.as_ptr().cast()) };
        let (event, mac, ip) = match e.kind {
            MISS_L2 => ("l2miss", Some(Mac(e.mac)), None),
            MISS_L3 => ("l3miss", None, Some(Ipv4Addr::from(e.ip))),
            _ => return None,
        };
        Some(Self {
            event,
            vni: e.vni,
            mac,
            ip,
            port: live::ifname(e.ifindex),
        })
    }

    fn text(&self) -> String {
        let what = match (&self.mac, &self.ip) {
            (Some(mac), _) => format!("mac {mac}"),
            (None, Some(ip)) => format!("ip {ip}"),
            (None, None) => String::new(),
        };
        format!("{} vni {} {what} port {}", self.event, self.vni, self.port)
    }
}

/// Prints the events of instance `name` to `out` as they arrive, one line each (JSON lines
/// with `json`), until `count` events were printed (forever without one).
pub fn run(name: &str, json: bool, count: Option<u64>, out: &mut impl Write) -> Result<()> {
    let map = live::open(&instance::pin_dir(name), MAP_EVENTS)?;
    let mut ring: RingBuf<MapData> = RingBuf::try_from(map)?;
    let mut printed = 0u64;
    loop {
        while let Some(record) = ring.next() {
            let Some(event) = Event::parse(&record) else {
                continue;
            };
            let line = if json {
                serde_json::to_string(&event)?
            } else {
                event.text()
            };
            writeln!(out, "{line}")?;
            out.flush()?;
            printed += 1;
            if count.is_some_and(|c| printed >= c) {
                return Ok(());
            }
        }
        // The ring buffer's descriptor is readable when records are waiting.
        let fd = ring.as_fd();
        let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(1000u16)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => bail!("waiting for events on fd {}: {e}", ring.as_raw_fd()),
        }
        // The instance went away: its pins are removed when it stops.
        if !instance::pin_dir(name).join(MAP_EVENTS).exists() {
            return Err(anyhow::anyhow!("instance `{name}` stopped")).context("vtep monitor");
        }
    }
}
