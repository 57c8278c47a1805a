//! The checks `vtep up` makes against the system before it changes anything: no instance of the
//! same name, the underlay and its address and MTU, adopted ports present, the interfaces to
//! create absent. A config that passes [`crate::config`] and these fails later only on a race
//! or a kernel refusal.

use std::net::Ipv4Addr;

use anyhow::{Result, anyhow, bail};
use vtep_common::wire::OVERHEAD_IPV4;

use crate::{
    config::{Config, Vni},
    instance,
    sys::{
        netlink::{Link, Net},
        netns,
    },
};

/// Smallest IPv4 MTU (RFC 791) a workload may be left with.
const MIN_WORKLOAD_MTU: u32 = 68;

/// What the checks found out about the system; the apply step needs nothing else from it.
pub(super) struct Checked {
    pub underlay: Link,
    /// The local VTEP address: the config's, or the underlay's first IPv4 address.
    pub local: Ipv4Addr,
    /// The MTU of the workloads' interfaces: the underlay's, less the VXLAN overhead.
    pub workload_mtu: u32,
}

/// Checks everything about `config` that can fail because of the system's state. Fails with the
/// first problem, naming the config field it is about.
pub(super) async fn check(net: &Net, config: &Config) -> Result<Checked> {
    check_not_running(config)?;
    let checked = check_underlay(net, config).await?;
    for (i, vni) in config.vnis.iter().enumerate() {
        check_interfaces(net, i, vni).await?;
    }
    Ok(checked)
}

/// No state file or pins of an instance with this name: it is running or crashed.
fn check_not_running(config: &Config) -> Result<()> {
    let state = instance::state_file(&config.name);
    if state.exists() || instance::pin_dir(&config.name).exists() {
        bail!(
            "name: instance `{}` is running or crashed ({} exists); stop it, or run `vtep down` to clean up after a crash",
            config.name,
            state.display()
        );
    }
    Ok(())
}

/// The underlay interface exists, has (or is given) a local address, and its MTU leaves room
/// for encapsulated frames.
async fn check_underlay(net: &Net, config: &Config) -> Result<Checked> {
    let underlay = net.link(&config.underlay.interface).await?.ok_or_else(|| {
        anyhow!(
            "underlay.interface: interface `{}` does not exist",
            config.underlay.interface
        )
    })?;
    let addresses = net.ipv4_addresses(underlay.index).await?;
    let local = match config.underlay.local {
        Some(ip) => ip,
        None => addresses.first().copied().ok_or_else(|| {
            anyhow!(
                "underlay.local: not set and `{}` has no IPv4 address",
                underlay.name
            )
        })?,
    };
    let workload_mtu = underlay.mtu.saturating_sub(OVERHEAD_IPV4 as u32);
    if workload_mtu < MIN_WORKLOAD_MTU {
        bail!(
            "underlay.interface: MTU {} of `{}` leaves no room for VXLAN",
            underlay.mtu,
            underlay.name
        );
    }
    Ok(Checked {
        underlay,
        local,
        workload_mtu,
    })
}

/// VNI `vni` (the `i`th): its adopted ports exist, and the interfaces `vtep up` would create
/// for it do not, here or in the workloads' namespaces.
async fn check_interfaces(net: &Net, i: usize, vni: &Vni) -> Result<()> {
    for (j, port) in vni.ports.iter().enumerate() {
        if net.link(&port.interface).await?.is_none() {
            bail!(
                "vni[{i}].port[{j}].interface: interface `{}` does not exist",
                port.interface
            );
        }
    }
    for (field, name) in created_links(vni) {
        if net.link(&name).await?.is_some() {
            bail!("vni[{i}].{field}: interface `{name}` already exists");
        }
    }
    for (j, w) in vni.workloads.iter().enumerate() {
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
