//! The checks `vtep up` makes against the system before it changes anything: no instance of the
//! same name, the underlay and its address and MTU (and XDP support, when asked for), adopted
//! ports present, the interfaces to
//! create absent, and nothing another instance serves or holds (its underlay UDP ports and
//! VNIs, its namespaces and interfaces). A config that passes [`crate::config`] and these fails
//! later only on a race or a kernel refusal. None of them changes anything, so `vtep check
//! --system` runs them too.

use std::net::IpAddr;

use anyhow::{Result, anyhow, bail};
use aya::programs::XdpMode;
use vtep_common::wire::{OVERHEAD_IPV4, OVERHEAD_IPV6};

use crate::{
    config::{Config, Vni, XdpSetting},
    daemon::{
        registry::Known,
        undo::{Item, Origin, State},
    },
    instance::{self, Namespace},
    sys::{
        netdev,
        netlink::{Link, Net},
        netns,
    },
};

/// Smallest IPv4 MTU (RFC 791) a workload may be left with.
const MIN_WORKLOAD_MTU: u32 = 68;
/// Smallest MTU IPv6 works over (RFC 8200).
const IPV6_MIN_MTU: u32 = 1280;

/// What the checks found out about the system; the apply step needs nothing else from it.
pub(super) struct Checked {
    pub underlay: Link,
    /// The local VTEP address: the config's, or the underlay's first address of the underlay's
    /// family (`Config::underlay_ipv6`).
    pub local: IpAddr,
    /// The MTU of the workloads' interfaces: the underlay's, less the VXLAN overhead.
    pub workload_mtu: u32,
    /// How the XDP program is attached to the underlay (`underlay.xdp` resolved); `None`: not.
    pub xdp: Option<XdpMode>,
}

/// Checks everything about `config` that can fail because of the system's state, for an
/// instance in namespace `here` beside the `known` ones. `own` is the state of the instance
/// itself when it exists already (a start adopting it, a reload): its name and what it made
/// are its own. Fails with the first problem, naming the config field it is about (and the
/// other instance, when it is one).
pub(super) async fn check(
    net: &Net,
    config: &Config,
    known: &[Known],
    here: &Namespace,
    own: Option<&State>,
) -> Result<Checked> {
    if own.is_none() {
        check_not_running(config, known)?;
    }
    if let Some(store) = &config.store {
        store.check_files()?;
    }
    let checked = check_underlay(net, config, own.is_some()).await?;
    // Before the interfaces: what another instance holds exists, and which one holds it is
    // the better answer.
    let others: Vec<&Known> = known.iter().filter(|k| k.name != config.name).collect();
    check_not_served(config, &checked, &others, here)?;
    check_not_held(net, config, &others, here).await?;
    let own_items = own.map(|s| s.items.as_slice()).unwrap_or(&[]);
    for (i, vni) in config.vnis.iter().enumerate() {
        check_interfaces(net, i, vni, own_items).await?;
    }
    Ok(checked)
}

/// Whether instance `name`'s state `state` is a stopped instance a `vtep up` in namespace
/// `here` adopts: its owner is gone (checked by the caller), its start (or last reload)
/// completed, its datapath was kept, and has this build's layout. Fails, saying what to do, when it cannot be adopted.
pub(super) fn adoptable(name: &str, state: &State, here: &Namespace) -> Result<()> {
    if !state.adoptable || !state.kept {
        bail!(
            "name: instance `{name}` crashed ({} exists, its process {} is gone); run `vtep down -n {name}` to clean up after it",
            instance::state_file(name).display(),
            state.owner.pid
        );
    }
    if state.netns.id != here.id {
        bail!(
            "name: instance `{name}` was stopped with its datapath kept in {}, not in this network namespace; start it there (`vtep --netns NS up`), or run `vtep down -n {name}` to remove it",
            state.netns
        );
    }
    if state.layout != vtep_common::maps::LAYOUT {
        bail!(
            "name: the kept datapath of instance `{name}` was built by an incompatible vtep (map layout {}, this vtep has {}); run `vtep down -n {name}` to remove it (this interrupts its traffic), then start again",
            state.layout,
            vtep_common::maps::LAYOUT
        );
    }
    Ok(())
}

/// No state file or pins of an instance with this name: it is running, or crashed and needs
/// `vtep down`.
fn check_not_running(config: &Config, known: &[Known]) -> Result<()> {
    let name = &config.name;
    let state = instance::state_file(name);
    if let Some(other) = known.iter().find(|k| &k.name == name) {
        if other.alive {
            bail!(
                "name: instance `{name}` is running (`vtep up`, pid {}); stop that process first",
                other.state.owner.pid
            );
        }
        bail!(
            "name: instance `{name}` crashed ({} exists, its process {} is gone); run `vtep down -n {name}` to clean up after it",
            state.display(),
            other.state.owner.pid
        );
    }
    if state.exists() || instance::pin_dir(name).exists() {
        bail!(
            "name: instance `{name}` is running or crashed ({} or {} exists); stop it, or run `vtep down -n {name}` to clean up after a crash",
            state.display(),
            instance::pin_dir(name).display()
        );
    }
    Ok(())
}

/// No instance whose datapath runs in namespace `here` (live, or kept at its stop) decapsulates
/// on the same underlay what this config would: a (VNI, UDP port) of its, or any VNI on a UDP port of its to the same local address
/// (its datapath, first on the interface, drops VXLAN of VNIs it does not serve as unknown).
fn check_not_served(
    config: &Config,
    checked: &Checked,
    others: &[&Known],
    here: &Namespace,
) -> Result<()> {
    let underlay = &checked.underlay;
    for other in others
        .iter()
        .filter(|k| k.forwards() && k.state.netns.id == here.id)
    {
        let Some(info) = other.info.as_ref() else {
            continue;
        };
        if info.underlay_ifindex != underlay.index {
            continue;
        }
        for (i, vni) in config.vnis.iter().enumerate() {
            if info
                .vnis
                .iter()
                .any(|s| s.vni == vni.id && s.dstport == vni.dstport)
            {
                bail!(
                    "vni[{i}].id: VNI {} on UDP port {} of underlay `{}` is served by {}; instance `{}` cannot serve it too",
                    vni.id,
                    vni.dstport,
                    underlay.name,
                    other.describe(),
                    config.name
                );
            }
        }
        if info.local != checked.local {
            continue;
        }
        for (i, vni) in config.vnis.iter().enumerate() {
            if info.vnis.iter().any(|s| s.dstport == vni.dstport) {
                bail!(
                    "vni[{i}].dstport: UDP port {} to {} on underlay `{}` is served by {}, whose datapath drops the VNIs it does not serve; give instance `{}` another dstport or underlay.local",
                    vni.dstport,
                    checked.local,
                    underlay.name,
                    other.describe(),
                    config.name
                );
            }
        }
    }
    Ok(())
}

/// No other instance, running or crashed, made or uses what this config would use: the
/// workloads' namespaces that exist and the adopted ports (in namespace `here`). Two
/// instances on one port would both attach to it; a namespace one instance made goes when
/// that one stops.
async fn check_not_held(
    net: &Net,
    config: &Config,
    others: &[&Known],
    here: &Namespace,
) -> Result<()> {
    let holder = |same_netns_only: bool, is_it: &dyn Fn(&Item) -> Option<Origin>| {
        others
            .iter()
            .filter(|k| !same_netns_only || k.state.netns.id == here.id)
            .find_map(|k| Some((k, k.state.items.iter().find_map(is_it)?)))
    };
    let how = |origin: Origin| match origin {
        Origin::Created => "created by it",
        Origin::Adopted => "in use by it",
    };
    for (i, vni) in config.vnis.iter().enumerate() {
        for (j, port) in vni.ports.iter().enumerate() {
            let Some(link) = net.link(&port.interface).await? else {
                continue;
            };
            let is_it = |item: &Item| match item {
                Item::Link {
                    name,
                    ifindex,
                    origin,
                } if *ifindex == link.index && *name == link.name => Some(*origin),
                _ => None,
            };
            if let Some((other, origin)) = holder(true, &is_it) {
                bail!(
                    "vni[{i}].port[{j}].interface: `{}` belongs to {} ({})",
                    port.interface,
                    other.describe(),
                    how(origin)
                );
            }
        }
        for (j, w) in vni.workloads.iter().enumerate() {
            let Some(id) = netns::id(&w.netns)? else {
                continue;
            };
            let is_it = |item: &Item| match item {
                Item::Netns {
                    id: theirs, origin, ..
                } if *theirs == id => Some(*origin),
                _ => None,
            };
            if let Some((other, origin)) = holder(false, &is_it) {
                bail!(
                    "vni[{i}].workload[{j}].netns: namespace `{}` belongs to {} ({})",
                    w.netns,
                    other.describe(),
                    how(origin)
                );
            }
        }
    }
    Ok(())
}

/// The underlay interface exists, has (or is given) a local address, and its MTU leaves room
/// for encapsulated frames.
async fn check_underlay(net: &Net, config: &Config, own: bool) -> Result<Checked> {
    let underlay = net.link(&config.underlay.interface).await?.ok_or_else(|| {
        anyhow!(
            "underlay.interface: interface `{}` does not exist",
            config.underlay.interface
        )
    })?;
    let ipv6 = config.underlay_ipv6();
    let addresses: Vec<IpAddr> = if ipv6 {
        let v6 = net.ipv6_addresses(underlay.index).await?;
        v6.into_iter().map(IpAddr::V6).collect()
    } else {
        let v4 = net.ipv4_addresses(underlay.index).await?;
        v4.into_iter().map(IpAddr::V4).collect()
    };
    let local = match config.underlay.local {
        Some(ip) => {
            check_local_present(net, &underlay, &addresses, ip).await?;
            ip
        }
        None => addresses.first().copied().ok_or_else(|| {
            anyhow!(
                "underlay.local: not set and `{}` has no {} address",
                underlay.name,
                if ipv6 {
                    "IPv6 (other than link-local)"
                } else {
                    "IPv4"
                }
            )
        })?,
    };
    let overhead = if ipv6 { OVERHEAD_IPV6 } else { OVERHEAD_IPV4 };
    let workload_mtu = underlay.mtu.saturating_sub(overhead as u32);
    if (MIN_WORKLOAD_MTU..IPV6_MIN_MTU).contains(&workload_mtu) {
        tracing::warn!(
            underlay = %underlay.name,
            workload_mtu,
            "the workloads' MTU is below IPv6's minimum of {IPV6_MIN_MTU}: IPv6 between them will not work over this underlay"
        );
    }
    if workload_mtu < MIN_WORKLOAD_MTU {
        bail!(
            "underlay.interface: MTU {} of `{}` leaves no room for VXLAN",
            underlay.mtu,
            underlay.name
        );
    }
    let xdp = xdp_mode(config.underlay.xdp, &underlay, own)?;
    Ok(Checked {
        underlay,
        local,
        workload_mtu,
        xdp,
    })
}

/// The XDP mode `setting` asks for on `underlay`, as this system can have it: `native` needs a
/// driver with native XDP (`auto` then falls back to TC only, as it does on a veth, where XDP
/// in front of TC costs more than it saves: see the README), and no mode takes an interface
/// another XDP program holds (for an instance that exists already, `own`, the program there is
/// its own, which the new one replaces). Fails naming `underlay.xdp` when the asked-for mode is
/// impossible.
fn xdp_mode(setting: XdpSetting, underlay: &Link, own: bool) -> Result<Option<XdpMode>> {
    let name = &underlay.name;
    if setting == XdpSetting::Off {
        return Ok(None);
    }
    if underlay.has_xdp && !own {
        if setting == XdpSetting::Auto {
            tracing::warn!(underlay = %name, "underlay.xdp = \"auto\": the underlay already has an XDP program; running TC only");
            return Ok(None);
        }
        bail!(
            "underlay.xdp: `{name}` already has an XDP program attached; detach it, or set underlay.xdp = \"off\""
        );
    }
    if setting == XdpSetting::Generic {
        return Ok(Some(XdpMode::Skb));
    }
    // `None` (a kernel older than 6.3 cannot tell): native is tried, and the attach says.
    let native = netdev::xdp_features(underlay.index)?.map(|f| f & netdev::XDP_ACT_BASIC != 0);
    match setting {
        XdpSetting::Native if native == Some(false) => bail!(
            "underlay.xdp: the driver of `{name}` has no native XDP; use \"generic\" (slower than TC alone) or \"auto\""
        ),
        XdpSetting::Native => Ok(Some(XdpMode::Driver)),
        _ if native == Some(true) && !underlay.veth => Ok(Some(XdpMode::Driver)),
        _ => {
            tracing::info!(underlay = %name, "underlay.xdp = \"auto\": no native XDP worth having on this interface; running TC only");
            Ok(None)
        }
    }
}

/// `local` (the config's `underlay.local`) is an address of the host: of the underlay (its
/// `addresses`), or of another interface (a VTEP address on a loopback or dummy interface,
/// routed to the underlay, is common). Otherwise no VXLAN to it would ever arrive; the error
/// lists the addresses there are.
async fn check_local_present(
    net: &Net,
    underlay: &Link,
    addresses: &[IpAddr],
    local: IpAddr,
) -> Result<()> {
    if addresses.contains(&local) {
        return Ok(());
    }
    let host: Vec<(u32, IpAddr)> = net
        .host_addresses()
        .await?
        .into_iter()
        .filter(|(_, a)| a.is_ipv6() == local.is_ipv6())
        .collect();
    if host.iter().any(|(_, a)| *a == local) {
        tracing::info!(%local, underlay = %underlay.name, "underlay.local is on another interface than the underlay");
        return Ok(());
    }
    let list = |addrs: Vec<String>| {
        if addrs.is_empty() {
            "none".to_string()
        } else {
            addrs.join(", ")
        }
    };
    let on_underlay = list(addresses.iter().map(ToString::to_string).collect());
    let elsewhere = list(
        host.iter()
            .filter(|(index, a)| *index != underlay.index && !a.is_loopback())
            .map(|(_, a)| a.to_string())
            .collect(),
    );
    bail!(
        "underlay.local: {local} is not an address of this host (`{}` has {on_underlay}; other interfaces have {elsewhere})",
        underlay.name
    )
}

/// VNI `vni` (the `i`th): its adopted ports exist, and the interfaces `vtep up` would create
/// for it do not, here or in the workloads' namespaces, unless the instance made them itself
/// (`own`, its undo log's items, when it exists already).
async fn check_interfaces(net: &Net, i: usize, vni: &Vni, own: &[Item]) -> Result<()> {
    for (j, port) in vni.ports.iter().enumerate() {
        if net.link(&port.interface).await?.is_none() {
            bail!(
                "vni[{i}].port[{j}].interface: interface `{}` does not exist",
                port.interface
            );
        }
    }
    let made_here = |link: &Link| {
        own.iter().any(|item| {
            matches!(item, Item::Link { name, ifindex, origin: Origin::Created }
                if *name == link.name && *ifindex == link.index)
        })
    };
    let mut ours = Vec::new();
    for (field, name) in created_links(vni) {
        match net.link(&name).await? {
            Some(link) if made_here(&link) => ours.push(name),
            Some(_) => bail!("vni[{i}].{field}: interface `{name}` already exists"),
            None => {}
        }
    }
    for (j, w) in vni.workloads.iter().enumerate() {
        // The instance's own veth: its peer is the interface in the namespace.
        if ours.contains(&w.host_interface_name()) {
            continue;
        }
        if netns::exists(&w.netns) {
            let inner = netns::connect_in(&w.netns)?;
            if inner.link(&w.interface).await?.is_some() {
                bail!(
                    "vni[{i}].workload[{j}].interface: `{}` already exists in namespace `{}`",
                    w.interface,
                    w.netns
                );
            }
        }
    }
    Ok(())
}

/// Interfaces `vtep up` creates in its own namespace for one VNI, with the field naming each.
fn created_links(vni: &Vni) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(host) = &vni.host {
        out.push(("host.interface".to_string(), host.port_name(vni.id)));
        out.push(("host.interface".to_string(), host.interface_name(vni.id)));
    }
    for (j, w) in vni.workloads.iter().enumerate() {
        out.push((
            format!("workload[{j}].host_interface"),
            w.host_interface_name(),
        ));
    }
    out
}
