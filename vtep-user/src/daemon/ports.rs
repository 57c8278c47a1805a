//! Building a VNI's local ports: the host interface's veth pair, a veth into each workload's
//! namespace (created if missing), and the adopted interfaces. Everything created is recorded
//! in the undo log, with its identity, before it is configured, so a failure half-way removes
//! it again; what is adopted (an existing namespace, an adopted port) is recorded as such, and
//! stays.
//!
//! A start that adopts a stopped instance, and a reload, keep the ports the previous config
//! made when the new config describes them alike and they are still what vtep made: their
//! workloads never lose their network. A port whose description changed is made again.

use anyhow::{Context as _, Result};
use vtep_common::maps::PORT_F_PEER;

use crate::{
    config::{AdoptedPort, HostPort, Vni, Workload},
    daemon::undo::{Item, Origin, Undo},
    datapath::tables::Port,
    mac::Mac,
    sys::{
        ethtool,
        netlink::{Link, LinkSettings, Net},
        netns,
    },
};

/// What the far ends of the ports vtep creates need (see [`build`]).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Offloads {
    /// GRO on, for the XDP program's redirects.
    pub xdp: bool,
    /// TSO and GSO off, for an IPv6 underlay with UDP checksums.
    pub segmented: bool,
}

/// Creates (or adopts) the local ports of `vni`, giving the created ones MTU `mtu`: the host
/// interface's, then the workloads', then the adopted ones. `old` is the VNI as the previous
/// config of this instance described it, whose ports the undo log records: those described
/// alike are kept as they are. With `xdp`, the created ones are made ready for the XDP
/// program's redirects (GRO on the far end of their veth) and marked so. With `segmented`
/// (an IPv6 underlay with UDP checksums), the far ends of the created ones send no GSO frames
/// (TSO and GSO off): the datapath cannot checksum those. Fails on the first interface the
/// kernel refuses to create or configure.
pub(super) async fn build(
    net: &Net,
    vni: &Vni,
    old: Option<&Vni>,
    mtu: u32,
    offloads: Offloads,
    undo: &mut Undo,
) -> Result<Vec<Port>> {
    let mut ports = Vec::new();
    if let Some(host) = &vni.host {
        let same = old.and_then(|o| o.host.as_ref()) == Some(host);
        let port_name = host.port_name(vni.id);
        // The log records the host end; deleting it deletes the port end too.
        let kept = match same {
            true => kept_link(net, &host.interface_name(vni.id), undo).await?,
            false => None,
        };
        let port = match kept {
            Some(host_if) => {
                let port_if = net.require_link(&port_name).await?;
                Port {
                    name: port_name,
                    ifindex: port_if.index,
                    flags: 0,
                    mac: Some(Mac(host_if.mac)),
                    xdp: false,
                }
            }
            None => {
                forget_changed(net, &[&host.interface_name(vni.id), &port_name], undo).await?;
                host_port(net, vni.id, host, mtu, undo).await?
            }
        };
        ports.push(port);
    }
    for w in &vni.workloads {
        let same = old.is_some_and(|o| o.workloads.iter().any(|ow| ow == w));
        let name = w.host_interface_name();
        let kept = match same {
            true => kept_link(net, &name, undo).await?,
            false => None,
        };
        let port = match kept {
            Some(host_if) => {
                let inner = netns::connect_in(&w.netns)?;
                let mac = inner.require_link(&w.interface).await?.mac;
                Port {
                    name,
                    ifindex: host_if.index,
                    flags: PORT_F_PEER,
                    mac: Some(Mac(mac)),
                    xdp: false,
                }
            }
            None => {
                forget_changed(net, &[&name], undo).await?;
                workload_port(net, w, mtu, undo).await?
            }
        };
        ports.push(port);
    }
    // An adopted port is not vtep's to change: TC keeps delivering to it, and its GSO frames
    // are counted as `gso_needs_checksum`.
    for (port, far_end) in ports.iter_mut().zip(far_ends(vni)) {
        let set = |f: &(dyn Fn(&str) -> Result<()> + Sync)| match &far_end.0 {
            Some(ns) => netns::run_in(&netns::path(ns), || f(&far_end.1))?,
            None => f(&far_end.1),
        };
        if offloads.xdp {
            // A veth delivers XDP frames only to a peer with NAPI, which GRO gives it.
            set(&|name| ethtool::set_gro(name, true))?;
            port.xdp = true;
        }
        if offloads.segmented {
            set(&|name| ethtool::set_segmentation(name, false))?;
        }
    }
    for p in &vni.ports {
        ports.push(adopted_port(net, p, undo).await?);
    }
    Ok(ports)
}

/// Interface `name` when it exists and is the one the undo log records as created: a port
/// the previous config made, kept.
async fn kept_link(net: &Net, name: &str, undo: &Undo) -> Result<Option<Link>> {
    let Some(link) = net.link(name).await? else {
        return Ok(None);
    };
    Ok(undo
        .items()
        .iter()
        .any(|i| {
            matches!(i, Item::Link { name: n, ifindex, origin: Origin::Created }
            if n == name && *ifindex == link.index)
        })
        .then_some(link))
}

/// Removes the interfaces `names` the undo log records as created (a port whose description
/// changed, made again next), with what was recorded for them.
async fn forget_changed(net: &Net, names: &[&str], undo: &mut Undo) -> Result<()> {
    let errors = undo
        .prune(net, |i| match i {
            Item::Link {
                name,
                origin: Origin::Created,
                ..
            } => names.contains(&name.as_str()),
            Item::Sysctl {
                link: Some(link), ..
            } => names.contains(&link.name.as_str()),
            _ => false,
        })
        .await;
    match errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The far end of each port `build` creates, in its order: the workload-side interface (its
/// namespace, `None` for this one, and its name).
fn far_ends(vni: &Vni) -> Vec<(Option<String>, String)> {
    let host = vni.host.iter().map(|h| (None, h.interface_name(vni.id)));
    let workloads = vni
        .workloads
        .iter()
        .map(|w| (Some(w.netns.clone()), w.interface.clone()));
    host.chain(workloads).collect()
}

/// The created interfaces' settings: MTU `mtu`, up.
fn up_with_mtu(mtu: u32) -> LinkSettings<'static> {
    LinkSettings {
        mtu: Some(mtu),
        up: true,
        ..LinkSettings::default()
    }
}

/// A veth pair between the host interface (with the config's address and MAC) and its port.
async fn host_port(
    net: &Net,
    vni: u32,
    host: &HostPort,
    mtu: u32,
    undo: &mut Undo,
) -> Result<Port> {
    let name = host.interface_name(vni);
    let port_name = host.port_name(vni);
    net.add_veth(&name, &port_name).await?;
    let host_if = record_link(net, &name, undo).await?;
    // Recorded too, so that a start adopting the instance knows it for its own.
    let port_if = record_link(net, &port_name, undo).await?;
    net.configure(port_if.index, &up_with_mtu(mtu)).await?;
    let settings = LinkSettings {
        mac: host.mac.map(|m| m.0),
        ..up_with_mtu(mtu)
    };
    net.configure(host_if.index, &settings).await?;
    if let Some(addr) = host.address {
        net.add_address(host_if.index, addr.addr, addr.prefix)
            .await?;
    }
    let mac = net.require_link(&name).await?.mac;
    Ok(Port {
        name: port_name,
        ifindex: port_if.index,
        flags: 0,
        mac: Some(Mac(mac)),
        xdp: false,
    })
}

/// A veth pair whose peer is moved into the workload's namespace (created when missing) and
/// set up there with the config's name, address and MAC.
async fn workload_port(net: &Net, w: &Workload, mtu: u32, undo: &mut Undo) -> Result<Port> {
    let origin = if netns::exists(&w.netns) {
        Origin::Adopted
    } else {
        netns::create(&w.netns).await?;
        Origin::Created
    };
    let id = netns::id(&w.netns)?
        .with_context(|| format!("network namespace `{}` vanished", w.netns))?;
    undo.record(Item::Netns {
        name: w.netns.clone(),
        id,
        origin,
    })?;
    let host_name = w.host_interface_name();
    // The peer gets a temporary name: `interface` (eth0) may exist in this namespace.
    let temp = format!("vtmp{}", std::process::id() % 100_000_000);
    net.add_veth(&host_name, &temp).await?;
    let host_if = record_link(net, &host_name, undo).await?;
    let peer = net.require_link(&temp).await?;
    net.move_to_netns(peer.index, &netns::open(&w.netns)?)
        .await?;
    let inner = netns::connect_in(&w.netns)?;
    let peer = inner.require_link(&temp).await?;
    let settings = LinkSettings {
        name: Some(&w.interface),
        mac: w.mac.map(|m| m.0),
        ..up_with_mtu(mtu)
    };
    inner
        .configure(peer.index, &settings)
        .await
        .with_context(|| format!("setting up `{}` in namespace `{}`", w.interface, w.netns))?;
    if let Some(addr) = w.address {
        inner
            .add_address(peer.index, addr.addr, addr.prefix)
            .await?;
    }
    if let Some(gateway) = w.gateway {
        // Goes with the interface: nothing to undo.
        inner
            .add_route(None, gateway)
            .await
            .with_context(|| format!("the default route of workload namespace `{}`", w.netns))?;
    }
    if let Some(lo) = inner.link("lo").await? {
        let up = LinkSettings {
            up: true,
            ..LinkSettings::default()
        };
        inner.configure(lo.index, &up).await?;
    }
    let mac = inner.require_link(&w.interface).await?.mac;
    net.configure(host_if.index, &up_with_mtu(mtu)).await?;
    Ok(Port {
        name: host_name,
        ifindex: host_if.index,
        flags: PORT_F_PEER,
        mac: Some(Mac(mac)),
        xdp: false,
    })
}

/// Records interface `name`, just created, with its index; returns it. Fails when it is gone
/// or the log cannot be written.
async fn record_link(net: &Net, name: &str, undo: &mut Undo) -> Result<Link> {
    let link = net.require_link(name).await?;
    undo.record(Item::Link {
        name: name.to_string(),
        ifindex: link.index,
        origin: Origin::Created,
    })?;
    Ok(link)
}

/// An existing interface, as it is (recorded as adopted); a veth whose peer is in another
/// namespace is marked so the datapath can deliver with `redirect_peer`.
async fn adopted_port(net: &Net, p: &AdoptedPort, undo: &mut Undo) -> Result<Port> {
    let link = net.require_link(&p.interface).await?;
    undo.record(Item::Link {
        name: link.name.clone(),
        ifindex: link.index,
        origin: Origin::Adopted,
    })?;
    let flags = if link.veth_peer_elsewhere {
        PORT_F_PEER
    } else {
        0
    };
    Ok(Port {
        name: p.interface.clone(),
        ifindex: link.index,
        flags,
        mac: None,
        xdp: false,
    })
}
