//! `vtep up`: check the whole configuration against the system, build what it describes, load
//! and attach the datapath, run until told to stop, then remove everything it made.

pub mod ageing;
pub mod nexthop;
pub mod undo;

use std::net::Ipv4Addr;

use anyhow::{Context as _, Result, anyhow, bail};
use tracing::{info, warn};
use vtep_common::{
    maps::{DatapathConfig, MAX_DSTPORTS, PORT_F_PEER, VNI_F_L2MISS, VNI_F_L3MISS, VNI_F_PROXY},
    wire::OVERHEAD_IPV4,
};

use crate::{
    config::{Config, Vni},
    daemon::{
        ageing::Ager,
        nexthop::Resolver,
        undo::{Item, Undo},
    },
    datapath::{
        loader::Datapath,
        tables::{self, Group, Port, Target, VniTable},
    },
    instance,
    mac::Mac,
    sys::{
        netlink::{Link, Net},
        netns, sysctl,
    },
};

/// Smallest IPv4 MTU (RFC 791) a workload may be left with.
const MIN_WORKLOAD_MTU: u32 = 68;

/// What the checks found out about the system; the apply step needs nothing else from it.
struct Checked {
    underlay: Link,
    local: Ipv4Addr,
    workload_mtu: u32,
}

/// How often the remote VTEPs' next hops are checked (after a link flap or a route change).
const RECONCILE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A started instance: the datapath and the undo log of what was made for it.
pub struct Running {
    datapath: Datapath,
    undo: Undo,
    net: Net,
    resolver: Resolver,
    ager: Ager,
    /// Held for the instance's lifetime: the kernel keeps the multicast groups joined (IGMP
    /// reports, the NIC's multicast filter) while they are open.
    _groups: Vec<std::net::UdpSocket>,
}

impl Running {
    /// Re-checks what the kernel may have undone meanwhile (neighbour entries of remote VTEPs)
    /// and ages learned FDB entries when a sweep is due.
    pub async fn reconcile(&mut self) -> Result<()> {
        self.resolver
            .reconcile(&self.net, &mut self.datapath, &mut self.undo)
            .await?;
        if let Err(e) = self.ager.tick(&mut self.datapath) {
            warn!("ageing the FDB: {e:#}");
        }
        Ok(())
    }

    /// Detaches the datapath and removes everything `start` created. Returns what could not
    /// be removed.
    pub async fn stop(self) -> Vec<anyhow::Error> {
        drop(self.datapath);
        self.undo.run(&self.net).await
    }
}

/// Validates `config` against the system, then applies it. On any failure everything created
/// so far is removed again before the error is returned.
pub async fn start(config: &Config) -> Result<Running> {
    let net = Net::connect()?;
    let checked = check(&net, config).await?;
    let mut undo = Undo::new(instance::state_file(&config.name));
    match apply(&net, config, &checked, &mut undo).await {
        Ok((datapath, resolver, ager, groups)) => Ok(Running {
            datapath,
            undo,
            net,
            resolver,
            ager,
            _groups: groups,
        }),
        Err(e) => {
            for err in undo.run(&net).await {
                warn!("cleanup after failed start: {err:#}");
            }
            Err(e)
        }
    }
}

/// Runs `config` until SIGINT or SIGTERM.
pub async fn run(config: &Config) -> Result<()> {
    // Handlers first: a signal that arrives while starting must still end in a clean stop,
    // not in the default action that kills the process half-way.
    let stop = stop_signal()?;
    tokio::pin!(stop);
    let mut running = start(config).await?;
    info!(name = %config.name, "vtep is up; SIGINT or SIGTERM stops it");
    let mut tick = tokio::time::interval(RECONCILE_EVERY);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = tick.tick() => {
                if let Err(e) = running.reconcile().await {
                    warn!("{e:#}");
                }
            }
        }
    }
    info!("stopping");
    let errors = running.stop().await;
    for e in &errors {
        warn!("{e:#}");
    }
    if errors.is_empty() {
        Ok(())
    } else {
        bail!("{} item(s) could not be removed", errors.len())
    }
}

/// Installs the SIGINT and SIGTERM handlers now; the returned future completes on either.
fn stop_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}

/// Everything that can fail because of the system's state, checked before anything changes.
async fn check(net: &Net, config: &Config) -> Result<Checked> {
    let state = instance::state_file(&config.name);
    if state.exists() || instance::pin_dir(&config.name).exists() {
        bail!(
            "name: instance `{}` is running or crashed ({} exists); stop it, or run `vtep down` to clean up after a crash",
            config.name,
            state.display()
        );
    }
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
    for (i, vni) in config.vnis.iter().enumerate() {
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
    }
    Ok(Checked {
        underlay,
        local,
        workload_mtu,
    })
}

/// Interfaces `vtep up` creates in its own namespace for one VNI, with the field naming each.
fn created_links(vni: &Vni) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(host) = &vni.host {
        let name = host.interface_name(vni.id);
        out.push(("host.interface".to_string(), format!("{name}p")));
        out.push(("host.interface".to_string(), name));
    }
    for (j, w) in vni.workloads.iter().enumerate() {
        out.push((
            format!("workload[{j}].host_interface"),
            w.host_interface_name(),
        ));
    }
    out
}

async fn apply(
    net: &Net,
    config: &Config,
    checked: &Checked,
    undo: &mut Undo,
) -> Result<(Datapath, Resolver, Ager, Vec<std::net::UdpSocket>)> {
    // Before the pins: a command that finds the maps finds this too.
    let info_path = instance::info_file(&config.name);
    undo.record(Item::File(info_path))?;
    instance::Info {
        local: checked.local,
    }
    .write(&config.name)?;

    let mut tables_by_vni = Vec::new();
    for (slot, vni) in config.vnis.iter().enumerate() {
        let ports = build_ports(net, vni, checked.workload_mtu, undo).await?;
        let fdb = vni
            .fdb
            .iter()
            .map(|f| {
                let target = match (f.dst, &f.port) {
                    (Some(ip), _) => Target::Remote(ip),
                    (None, Some(name)) => {
                        let p = ports.iter().find(|p| &p.name == name).expect("validated");
                        Target::Port {
                            ifindex: p.ifindex,
                            flags: p.flags,
                        }
                    }
                    (None, None) => unreachable!("validated"),
                };
                (f.mac, target)
            })
            .collect();
        let neighbours = neighbours(vni, &ports);
        tables_by_vni.push(VniTable {
            id: vni.id,
            dstport: vni.dstport,
            ttl: config.underlay.ttl,
            stats_slot: slot as u32,
            remotes: vni.remotes.clone(),
            ports,
            fdb,
            learning: vni.learning,
            max_learned: vni.maxaddress,
            flags: if vni.l2miss { VNI_F_L2MISS } else { 0 }
                | if vni.l3miss { VNI_F_L3MISS } else { 0 }
                | if vni.proxy { VNI_F_PROXY } else { 0 },
            neighbours,
            group: vni.group.map(|ip| Group {
                ip,
                ttl: vni.group_ttl,
                ifindex: checked.underlay.index,
                smac: Mac(checked.underlay.mac),
            }),
        });
    }

    let mut dstports = [[0u8; 2]; MAX_DSTPORTS];
    for (slot, port) in dstports.iter_mut().zip(config.dstports()) {
        *slot = port.to_be_bytes();
    }
    let dp_config = DatapathConfig {
        local_ip: checked.local.octets(),
        srcport_min: config.underlay.srcport[0],
        srcport_max: config.underlay.srcport[1],
        dstports,
    };
    let mut datapath = Datapath::load(&dp_config, config.fdb_size)?;
    tables::fill(&mut datapath, &tables_by_vni)?;
    let pins = instance::pin_dir(&config.name);
    instance::ensure_bpffs()?;
    undo.record(Item::Pins(pins.clone()))?;
    datapath.pin_maps(&pins)?;

    let ager = Ager::new(
        tables_by_vni
            .iter()
            .zip(&config.vnis)
            .filter(|(t, _)| t.learning)
            .map(|(t, v)| (t.id, t.stats_slot, v.ageing)),
    );
    let mut resolver = Resolver::new(remote_vteps(&tables_by_vni));
    resolver.reconcile(net, &mut datapath, undo).await?;

    // Ports first, the underlay last: by the time VXLAN is decapsulated, every port it can be
    // delivered to already sends.
    for port in tables_by_vni.iter().flat_map(|v| &v.ports) {
        // The datapath's route lookups are input lookups on the port (see vtep-ebpf xmit.rs),
        // which the kernel allows only with forwarding on. Port traffic never reaches the IP
        // stack, so this changes nothing else.
        let key = format!("net/ipv4/conf/{}/forwarding", port.name);
        let old = sysctl::set(&key, "1")?;
        undo.record(Item::Sysctl { key, value: old })?;
        datapath.attach_port(&port.name)?;
    }
    datapath.attach_underlay(&checked.underlay.name)?;
    info!(
        underlay = %checked.underlay.name,
        local = %checked.local,
        vnis = tables_by_vni.len(),
        ports = tables_by_vni.iter().map(|v| v.ports.len()).sum::<usize>(),
        "datapath attached"
    );
    let groups = join_groups(config, checked)?;
    Ok((datapath, resolver, ager, groups))
}

/// Joins every VNI's multicast group on the underlay (by its address), so the kernel reports
/// membership and lets the group's packets in.
fn join_groups(config: &Config, checked: &Checked) -> Result<Vec<std::net::UdpSocket>> {
    let mut out = Vec::new();
    for group in config.vnis.iter().filter_map(|v| v.group) {
        let sock = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
            .context("opening a socket for multicast membership")?;
        sock.join_multicast_v4(&group, &checked.local)
            .with_context(|| {
                format!(
                    "joining group {group} on {} ({})",
                    checked.underlay.name, checked.local
                )
            })?;
        info!(%group, underlay = %checked.underlay.name, "joined multicast group");
        out.push(sock);
    }
    Ok(out)
}

/// The ARP proxy's static entries of `vni`: its workloads' and host interface's own addresses
/// (the MACs as `ports` found them), then the config's `[[vni.neigh]]`, which win.
fn neighbours(vni: &Vni, ports: &[Port]) -> Vec<(std::net::IpAddr, Mac)> {
    let mac_of = |port_name: &str| ports.iter().find(|p| p.name == port_name)?.mac;
    let mut out = Vec::new();
    for w in &vni.workloads {
        if let (Some(addr), Some(mac)) = (w.address, mac_of(&w.host_interface_name())) {
            out.push((addr.addr.into(), mac));
        }
    }
    if let Some(host) = &vni.host
        && let (Some(addr), Some(mac)) = (
            host.address,
            mac_of(&format!("{}p", host.interface_name(vni.id))),
        )
    {
        out.push((addr.addr.into(), mac));
    }
    out.extend(vni.neigh.iter().map(|n| (n.ip, n.mac)));
    out
}

/// Creates (or adopts) the local ports of one VNI.
async fn build_ports(net: &Net, vni: &Vni, mtu: u32, undo: &mut Undo) -> Result<Vec<Port>> {
    let mut ports = Vec::new();
    if let Some(host) = &vni.host {
        let name = host.interface_name(vni.id);
        let port_name = format!("{name}p");
        net.add_veth(&name, &port_name).await?;
        undo.record(Item::Link(name.clone()))?;
        let host_if = net.require_link(&name).await?;
        let port_if = net.require_link(&port_name).await?;
        net.configure(port_if.index, None, None, Some(mtu), true)
            .await?;
        net.configure(host_if.index, None, host.mac.map(|m| m.0), Some(mtu), true)
            .await?;
        if let Some(addr) = host.address {
            net.add_address(host_if.index, addr.addr, addr.prefix)
                .await?;
        }
        let mac = net.require_link(&name).await?.mac;
        ports.push(Port {
            name: port_name,
            ifindex: port_if.index,
            flags: 0,
            mac: Some(Mac(mac)),
        });
    }
    for w in &vni.workloads {
        if !netns::exists(&w.netns) {
            netns::create(&w.netns).await?;
            undo.record(Item::Netns(w.netns.clone()))?;
        }
        let host_name = w.host_interface_name();
        // The peer gets a temporary name: `interface` (eth0) may exist in this namespace.
        let temp = format!("vtmp{}", std::process::id() % 100_000_000);
        net.add_veth(&host_name, &temp).await?;
        undo.record(Item::Link(host_name.clone()))?;
        let host_if = net.require_link(&host_name).await?;
        let peer = net.require_link(&temp).await?;
        net.move_to_netns(peer.index, &netns::open(&w.netns)?)
            .await?;
        let inner = netns::connect_in(&w.netns)?;
        let peer = inner.require_link(&temp).await?;
        inner
            .configure(
                peer.index,
                Some(&w.interface),
                w.mac.map(|m| m.0),
                Some(mtu),
                true,
            )
            .await
            .with_context(|| format!("setting up `{}` in namespace `{}`", w.interface, w.netns))?;
        if let Some(addr) = w.address {
            inner
                .add_address(peer.index, addr.addr, addr.prefix)
                .await?;
        }
        if let Some(lo) = inner.link("lo").await? {
            inner.configure(lo.index, None, None, None, true).await?;
        }
        let mac = inner.require_link(&w.interface).await?.mac;
        net.configure(host_if.index, None, None, Some(mtu), true)
            .await?;
        ports.push(Port {
            name: host_name,
            ifindex: host_if.index,
            flags: PORT_F_PEER,
            mac: Some(Mac(mac)),
        });
    }
    for p in &vni.ports {
        let link = net.require_link(&p.interface).await?;
        let flags = if link.veth_peer_elsewhere {
            PORT_F_PEER
        } else {
            0
        };
        ports.push(Port {
            name: p.interface.clone(),
            ifindex: link.index,
            flags,
            mac: None,
        });
    }
    Ok(ports)
}

/// Every remote VTEP the datapath may send to: flood lists and static FDB entries.
fn remote_vteps(vnis: &[VniTable]) -> Vec<Ipv4Addr> {
    vnis.iter()
        .flat_map(|v| {
            v.remotes
                .iter()
                .copied()
                .chain(v.fdb.iter().filter_map(|(_, t)| match t {
                    Target::Remote(ip) => Some(*ip),
                    Target::Port { .. } => None,
                }))
        })
        .collect()
}
