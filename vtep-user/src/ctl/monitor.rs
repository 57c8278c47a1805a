//! `vtep monitor`: the miss events of a running instance as they happen (the kernel's
//! `l2miss`/`l3miss` netlink notifications, here from the datapath's ring buffer).

use std::{
    net::Ipv4Addr,
    os::fd::{AsFd as _, AsRawFd as _},
};

use anyhow::{Context as _, Result, anyhow, bail};
use aya::maps::{MapData, RingBuf};
use serde::Serialize;
use vtep_common::maps::{MAP_EVENTS, MISS_L2, MISS_L3, MissEvent};

use crate::{ctl::PortNames, datapath::maps::Pinned, mac::Mac};

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
    /// The event in one ring buffer record, its port named in the calling thread's namespace,
    /// or `None` for a record of another size or kind.
    pub fn parse(record: &[u8]) -> Option<Self> {
        Self::parse_named(record, &PortNames::here())
    }

    /// As [`Event::parse`], the port named as `names` name it.
    fn parse_named(record: &[u8], names: &PortNames) -> Option<Self> {
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
            port: names.name(e.ifindex),
        })
    }
}

/// The event stream of a running instance.
pub struct Events {
    maps: Pinned,
    ring: RingBuf<MapData>,
    names: PortNames,
}

impl Events {
    /// Subscribes to the events of instance `name`; fails when it does not run.
    pub fn open(name: &str) -> Result<Self> {
        let maps = Pinned::of(name);
        let ring = maps.events()?;
        let names = PortNames::of(name);
        Ok(Self { maps, ring, names })
    }

    /// The next event, waiting for it as long as it takes. Records of another kind are skipped.
    /// Fails when the instance stops (its pins are removed) or waiting fails.
    pub fn wait(&mut self) -> Result<Event> {
        loop {
            while let Some(record) = self.ring.next() {
                if let Some(event) = Event::parse_named(&record, &self.names) {
                    return Ok(event);
                }
            }
            // The ring buffer's descriptor is readable when records are waiting.
            let fd = self.ring.as_fd();
            let mut fds = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(1000u16)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => bail!("waiting for events on fd {}: {e}", self.ring.as_raw_fd()),
            }
            if !self.maps.path(MAP_EVENTS).exists() {
                let name = self.maps.name();
                return Err(anyhow!("instance `{name}` stopped")).context("vtep monitor");
            }
        }
    }
}
