//! Following the interfaces a running instance depends on: the underlay and its local ports.
//!
//! The kernel's link notifications (RTNLGRP_LINK) wake [`Links::reconcile`] at once; each call
//! compares what it knows with a fresh list of the namespace's interfaces, so what a wake-up
//! was about does not matter, and a full socket buffer (which the kernel reports, and which
//! wakes it too) loses no state. As a safety net the run loop also calls it every
//! [`SAFETY_NET`]: not every second, because the list costs in proportion to the namespace's
//! interfaces (500 of them took 4 % of a core in a debug build when listed every second).
//!
//! - The underlay gone: warned, its next hops leave the cache (the resolver finds no route), and
//!   the instance waits. An interface of that name coming back gets the underlay program
//!   attached again (the TCX attachment died with the old interface), the multicast groups
//!   joined again and the flood lists' group sends pointed at it.
//! - A port gone (its workload namespace deleted, its interface deleted or moved away): warned
//!   and taken out of the datapath (`PORTS`, the flood list, the FDB entries that send to it,
//!   the proxy entry of its station), so its traffic is no longer redirected into nothing. It
//!   is not recreated on its own: a reload (or a restart) builds it again.
//!
//! Both are written to the instance's info file for `vtep stats` and `vtep fdb show`.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use aya::{maps::MapError, programs::XdpMode};
use futures::StreamExt as _;
use tracing::{info, warn};
use vtep_common::maps::{
    FDB_F_LEARNED, FDB_F_RUNTIME, FDB_LOCAL, MAX_FLOOD_PORTS, ProxyKey, vtep_addr_is_zero,
};

use crate::{
    config::Config,
    datapath::{
        loader::{Datapath, Hook},
        maps::remove_where,
        tables::{Port, VniTable},
    },
    instance::{Info, MissingPort},
    sys::netlink::{Link, Net},
};

/// How often the interfaces are compared without a notification, and how long a failed
/// subscription waits before it is tried again.
pub const SAFETY_NET: Duration = Duration::from_secs(10);

/// The interfaces an instance depends on, as last seen.
pub struct Links {
    instance: String,
    /// When they were last compared with the system.
    checked: Instant,
    info: Info,
    underlay: Underlay,
    ports: Vec<Tracked>,
    /// The sockets holding each VNI's multicast group joined on the underlay, by group.
    groups: Vec<(IpAddr, UdpSocket)>,
}

/// The underlay interface: its name is what identifies it across a deletion.
struct Underlay {
    name: String,
    /// None while no interface of that name exists.
    index: Option<u32>,
    up: bool,
    /// The mode the XDP program is attached in, to attach it again to a recreated underlay.
    xdp: Option<XdpMode>,
}

/// A local port and what goes with it in the datapath.
struct Tracked {
    port: Port,
    vni: u32,
    /// The workload namespace the port leads into, for a workload's port.
    netns: Option<String>,
    /// The address of the station behind it (a workload's or the host interface's), whose
    /// proxy entry `vtep up` made.
    station_ip: Option<Ipv4Addr>,
    gone: bool,
}

impl Links {
    /// Links of instance `config.name` whose info file holds `info`: the underlay `underlay` as
    /// the checks found it, the ports of `vnis` (built from `config`), and the sockets that
    /// joined the VNIs' `groups`.
    pub(super) fn new(
        config: &Config,
        info: Info,
        underlay: &Link,
        vnis: &[VniTable],
        groups: Vec<(IpAddr, UdpSocket)>,
    ) -> Self {
        let mut ports = Vec::new();
        for (table, vni) in vnis.iter().zip(&config.vnis) {
            for port in &table.ports {
                let workload = vni
                    .workloads
                    .iter()
                    .find(|w| w.host_interface_name() == port.name);
                let host = vni
                    .host
                    .as_ref()
                    .filter(|h| h.port_name(vni.id) == port.name);
                let station_ip = match (workload, host) {
                    (Some(w), _) => w.address.map(|a| a.addr),
                    (None, Some(h)) => h.address.map(|a| a.addr),
                    (None, None) => None,
                };
                ports.push(Tracked {
                    port: port.clone(),
                    vni: vni.id,
                    netns: workload.map(|w| w.netns.clone()),
                    station_ip,
                    gone: false,
                });
            }
        }
        let mut links = Self {
            instance: config.name.clone(),
            checked: Instant::now(),
            info,
            underlay: Underlay {
                name: underlay.name.clone(),
                index: Some(underlay.index),
                up: underlay.up,
                xdp: None,
            },
            ports,
            groups,
        };
        links.publish();
        links
    }

    /// These links, with the XDP program attached to the underlay in `mode` (`None`: not
    /// attached): a recreated underlay gets it again.
    pub(super) fn with_xdp(mut self, mode: Option<XdpMode>) -> Self {
        self.underlay.xdp = mode;
        self
    }

    /// The name of the instance whose links these are.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Whether the safety net's check is due: [`SAFETY_NET`] since the last comparison.
    pub fn due(&self) -> bool {
        self.checked.elapsed() >= SAFETY_NET
    }

    /// Compares the underlay and the ports with the interfaces that exist now and acts on what
    /// changed (see the module doc). Returns whether anything did, for the caller to re-check
    /// the next hops at once. Fails only when the interfaces cannot be listed; a step that
    /// fails is logged and tried again next time.
    pub async fn reconcile(&mut self, net: &Net, dp: &mut Datapath) -> Result<bool> {
        self.checked = Instant::now();
        let links = net.links().await?;
        let mut changed = self.follow_underlay(&links, dp);
        for t in self.ports.iter_mut().filter(|t| !t.gone) {
            if links.iter().any(|l| l.index == t.port.ifindex) {
                continue;
            }
            t.gone = true;
            changed = true;
            let why = match &t.netns {
                Some(ns) if !crate::sys::netns::exists(ns) => {
                    format!("its workload namespace `{ns}` was deleted")
                }
                Some(ns) => format!("the veth into workload namespace `{ns}` was deleted"),
                None => "the interface was deleted or moved to another namespace".to_string(),
            };
            warn!(
                port = %t.port.name,
                vni = t.vni,
                "port `{}` is gone: {why}; removed from the datapath (`vtep reload` or a \
                 restart recreates it)",
                t.port.name
            );
            if let Err(e) = remove_port(dp, t) {
                warn!("removing port `{}` from the datapath: {e:#}", t.port.name);
            }
            // Its link died with it; the pin would outlive it.
            dp.detach(Hook::Port(t.port.ifindex));
        }
        if changed {
            self.publish();
        }
        Ok(changed)
    }

    /// Follows the underlay by its index while that exists (renamed or not), else by its
    /// name; returns whether its state changed.
    fn follow_underlay(&mut self, links: &[Link], dp: &mut Datapath) -> bool {
        let u = &mut self.underlay;
        let same = u.index.and_then(|i| links.iter().find(|l| l.index == i));
        if let Some(link) = same {
            if link.up == u.up {
                return false;
            }
            u.up = link.up;
            if link.up {
                info!(underlay = %u.name, "underlay `{}` is up again", u.name);
            } else {
                warn!(underlay = %u.name, "underlay `{}` is down", u.name);
            }
            return true;
        }
        if let Some(old) = u.index.take() {
            warn!(
                underlay = %u.name,
                "underlay `{}` (ifindex {old}) is gone: no VXLAN is sent or received until an \
                 interface of that name is back; waiting for it",
                u.name
            );
            u.up = false;
        }
        let Some(new) = links.iter().find(|l| l.name == u.name) else {
            return true;
        };
        if let Err(e) = dp.attach_underlay(&u.name, new.index) {
            warn!(
                "underlay `{}` is back, but attaching to it failed (trying again): {e:#}",
                u.name
            );
            return true;
        }
        // After TC, as at the start. Without it TC still does all the work, only slower.
        if let Some(mode) = u.xdp
            && let Err(e) = dp.attach_xdp(&u.name, new.index, new.mac, mode)
        {
            warn!(
                "underlay `{}` is back, but attaching the XDP program to it failed; TC decapsulates everything: {e:#}",
                u.name
            );
        }
        u.index = Some(new.index);
        u.up = new.up;
        warn!(
            underlay = %u.name,
            ifindex = new.index,
            "underlay `{}` is back (ifindex {}); datapath attached to it again",
            u.name,
            new.index
        );
        if let Err(e) = repoint_groups(dp, new) {
            warn!("pointing the multicast groups at the new underlay: {e:#}");
        }
        rejoin_groups(&self.groups, self.info.local, new.index);
        true
    }

    /// Writes the state to the info file, where `vtep stats` and `vtep fdb show` read it.
    fn publish(&mut self) {
        let u = &self.underlay;
        self.info.links.underlay = crate::instance::Underlay {
            name: u.name.clone(),
            state: match (u.index, u.up) {
                (None, _) => "missing",
                (Some(_), false) => "down",
                (Some(_), true) => "up",
            }
            .to_string(),
        };
        self.info.links.missing_ports = self
            .ports
            .iter()
            .filter(|t| t.gone)
            .map(|t| MissingPort {
                port: t.port.name.clone(),
                vni: t.vni,
                netns: t.netns.clone(),
                mac: t.port.mac,
            })
            .collect();
        if let Err(e) = self.info.write(&self.instance) {
            warn!("writing the link state: {e:#}");
        }
    }
}

/// Takes the port of `t` out of every map that sends to it. Keeps going past a failed step;
/// fails with the last failure.
fn remove_port(dp: &mut Datapath, t: &Tracked) -> Result<()> {
    let ifindex = t.port.ifindex;
    let mut result = Ok(());
    let mut note = |r: Result<()>| {
        if r.is_err() {
            result = r;
        }
    };
    note(absent_ok(dp.ports()?.remove(&ifindex)).context("PORTS"));
    if t.port.xdp {
        note(absent_ok(dp.xdp_ports()?.remove(ifindex)).context("XDP_PORTS"));
    }
    note(remove_from_flood_list(dp, t.vni, ifindex));
    // Stations behind the port, whatever made their entries (the config, traffic).
    note(
        remove_where(dp.fdb()?, |_, e| {
            e.kind == FDB_LOCAL && e.ifindex == ifindex
        })
        .map(drop)
        .context("FDB"),
    );
    if let (Some(ip), Some(mac)) = (t.station_ip, t.port.mac) {
        let key = ProxyKey {
            vni: t.vni,
            ip: ip.octets(),
        };
        let mut proxy = dp.proxy()?;
        // Only the entry `vtep up` made for this station: one the config's `[[vni.neigh]]` or
        // an operator set to another MAC stays.
        let made_here = matches!(proxy.get(&key, 0), Ok(e) if e.mac == mac.0
            && e.flags & (FDB_F_RUNTIME | FDB_F_LEARNED) == 0);
        if made_here {
            note(absent_ok(proxy.remove(&key)).context("PROXY"));
        }
    }
    result
}

/// Removes `ifindex` from the ports of VNI `vni`'s flood list.
fn remove_from_flood_list(dp: &mut Datapath, vni: u32, ifindex: u32) -> Result<()> {
    let mut lists = dp.flood()?;
    let mut list = match lists.get(&vni, 0) {
        Ok(l) => l,
        Err(MapError::KeyNotFound) => return Ok(()),
        Err(e) => return Err(e).context("reading the flood list"),
    };
    // A count from a map is data: never trust it to index.
    let n = (list.n_ports as usize).min(MAX_FLOOD_PORTS);
    let Some(i) = list.ports[..n].iter().position(|p| *p == ifindex) else {
        return Ok(());
    };
    list.ports.copy_within(i + 1..n, i);
    list.ports[n - 1] = 0;
    list.n_ports = n as u32 - 1;
    lists
        .insert(vni, list, 0)
        .with_context(|| format!("writing the flood list of VNI {vni}"))
}

/// Points the group sends of every multicast VNI's flood list at the underlay `link`.
fn repoint_groups(dp: &mut Datapath, link: &Link) -> Result<()> {
    let mut lists = dp.flood()?;
    let vnis: Vec<u32> = lists.keys().collect::<Result<_, _>>()?;
    for vni in vnis {
        let mut list = lists.get(&vni, 0)?;
        if vtep_addr_is_zero(&list.group) {
            continue;
        }
        list.group_ifindex = link.index;
        list.group_smac = link.mac;
        lists
            .insert(vni, list, 0)
            .with_context(|| format!("writing the flood list of VNI {vni}"))?;
    }
    Ok(())
}

/// A socket that holds multicast `group` joined on the underlay: by its address `local` for
/// IPv4 (IGMP), by its interface index `ifindex` for IPv6 (MLD). Fails when the kernel refuses.
pub fn join_group(group: IpAddr, local: IpAddr, ifindex: u32) -> std::io::Result<UdpSocket> {
    match (group, local) {
        (IpAddr::V4(group), IpAddr::V4(local)) => {
            let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
            sock.join_multicast_v4(&group, &local)?;
            Ok(sock)
        }
        (IpAddr::V6(group), IpAddr::V6(_)) => {
            let sock = UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0))?;
            sock.join_multicast_v6(&group, ifindex)?;
            Ok(sock)
        }
        // Validation keeps one family per instance.
        _ => Err(std::io::Error::from(std::io::ErrorKind::InvalidInput)),
    }
}

/// Joins each group again on the underlay (address `local`, interface `ifindex`): the kernel
/// dropped the memberships with the old interface. A failure is logged (the address may not be
/// back yet).
fn rejoin_groups(groups: &[(IpAddr, UdpSocket)], local: IpAddr, ifindex: u32) {
    for (group, sock) in groups {
        // The old membership names the old interface; leaving it fails harmlessly.
        let joined = match (group, local) {
            (IpAddr::V4(group), IpAddr::V4(local)) => {
                let _ = sock.leave_multicast_v4(group, &local);
                sock.join_multicast_v4(group, &local)
            }
            (IpAddr::V6(group), _) => sock.join_multicast_v6(group, ifindex),
            _ => Err(std::io::Error::from(std::io::ErrorKind::InvalidInput)),
        };
        match joined {
            Ok(()) => info!(%group, "joined multicast group again"),
            Err(e) => warn!("joining group {group} again on {local}: {e}"),
        }
    }
}

/// `result`, with a missing key counted as done.
fn absent_ok(result: Result<(), MapError>) -> Result<()> {
    match result {
        Err(MapError::KeyNotFound) => Ok(()),
        Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        other => Ok(other?),
    }
}

/// The kernel's link notifications of the process's namespace, as wake-ups.
pub struct Notifications {
    rx: Option<futures::channel::mpsc::UnboundedReceiver<LinkMessage>>,
}

type LinkMessage = (
    rtnetlink::packet_core::NetlinkMessage<rtnetlink::packet_route::RouteNetlinkMessage>,
    rtnetlink::sys::SocketAddr,
);

impl Notifications {
    /// Subscribes to RTNLGRP_LINK. A subscription that cannot be made is logged and tried
    /// again by [`Notifications::next`].
    pub fn subscribe() -> Self {
        match rtnetlink::new_multicast_connection(&[rtnetlink::MulticastGroup::Link]) {
            Ok((conn, _handle, rx)) => {
                tokio::spawn(conn);
                Self { rx: Some(rx) }
            }
            Err(e) => {
                warn!("cannot follow link notifications (checking once a second): {e}");
                Self { rx: None }
            }
        }
    }

    /// Waits for a notification, then takes every one already waiting: one wake-up per burst
    /// (a namespace deleted takes several interfaces at once). A subscription that ended
    /// (logged) or could not be made is made again [`SAFETY_NET`] later, which is a wake-up
    /// too: what happened meanwhile is unknown.
    pub async fn next(&mut self) {
        loop {
            let Some(rx) = &mut self.rx else {
                tokio::time::sleep(SAFETY_NET).await;
                *self = Self::subscribe();
                if self.rx.is_some() {
                    return;
                }
                continue;
            };
            if rx.next().await.is_some() {
                while rx.try_recv().is_ok() {}
                return;
            }
            warn!("link notifications ended; subscribing again in {SAFETY_NET:?}");
            self.rx = None;
        }
    }
}
