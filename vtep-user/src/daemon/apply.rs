//! The apply step of `vtep up`, after the checks passed: build each VNI's ports and tables, load
//! and fill the datapath, pin its maps, resolve the remote VTEPs' next hops, attach the programs,
//! join the multicast groups. Every change is recorded in the undo log as it is made.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};

use anyhow::{Context as _, Result};
use tracing::{info, warn};
use vtep_common::maps::{DP_F_FILTER_SOURCES, VNI_F_L2MISS, VNI_F_L3MISS, VNI_F_PROXY};

use crate::{
    config::{Config, Vni},
    daemon::{
        ageing::Ager,
        links::Links,
        nexthop::Resolver,
        ports,
        preflight::Checked,
        undo::{Item, LinkId, Undo},
    },
    datapath::{
        accept,
        loader::Datapath,
        tables::{self, Group, Port, Target, VniTable},
    },
    instance,
    mac::Mac,
    sys::{bpffs, netlink::Net, sysctl},
};

/// What a started instance holds until it stops.
pub(super) struct Started {
    pub datapath: Datapath,
    pub nexthops: Resolver,
    pub ager: Ager,
    /// The underlay and the ports as last seen; it also holds the sockets that keep the
    /// multicast groups joined.
    pub links: Links,
}

/// Makes the system what `config` describes, given what the checks found. Fails at the first
/// step that fails, leaving what it made in `undo` for the caller to remove.
pub(super) async fn apply(
    net: &Net,
    config: &Config,
    checked: &Checked,
    info: instance::Info,
    undo: &mut Undo,
) -> Result<Started> {
    let vnis = build_vnis(net, config, checked, undo).await?;
    let mut datapath = load_datapath(config, checked, &vnis, undo)?;
    let ager = Ager::new(
        vnis.iter()
            .zip(&config.vnis)
            .filter(|(t, _)| t.learning)
            .map(|(t, v)| (t.id, t.stats_slot, v.ageing)),
    );
    warn_if_neighbour_table_small(config.underlay.max_remotes);
    let accept_known = config.underlay.accept_rule().is_some_and(|r| r.known);
    let mut nexthops = Resolver::new(config.underlay.max_remotes, accept_known);
    let changes = nexthops.changes(&mut datapath);
    nexthops
        .reconcile(net, &mut datapath, undo, changes, None)
        .await?;
    attach(&mut datapath, &vnis, checked, undo)?;
    let groups = join_groups(config, checked)?;
    let links = Links::new(config, info, &checked.underlay, &vnis, groups).with_xdp(checked.xdp);
    // Links wrote its state into the info file, whole: a new file under the recorded name.
    undo.file_rewritten(&instance::info_file(&config.name))?;
    Ok(Started {
        datapath,
        nexthops,
        ager,
        links,
    })
}

/// Warns when `max_remotes` managed neighbour entries would take more than half the kernel's
/// neighbour table: spoofed sources could then crowd out the host's own neighbours.
fn warn_if_neighbour_table_small(max_remotes: u32) {
    let Ok(limit) = sysctl::get("net/ipv4/neigh/default/gc_thresh3") else {
        return;
    };
    if let Ok(limit) = limit.parse::<u32>()
        && max_remotes > limit / 2
    {
        warn!(
            max_remotes,
            gc_thresh3 = limit,
            "underlay.max_remotes is more than half the kernel's neighbour table \
             (net.ipv4.neigh.default.gc_thresh3): raise it, or set underlay.accept"
        );
    }
}

/// Builds each VNI's ports, then its tables from the config and those ports. The VNI's index
/// is its stats slot.
async fn build_vnis(
    net: &Net,
    config: &Config,
    checked: &Checked,
    undo: &mut Undo,
) -> Result<Vec<VniTable>> {
    let mut out = Vec::new();
    for (slot, vni) in config.vnis.iter().enumerate() {
        let xdp = checked.xdp.is_some();
        let ports = ports::build(net, vni, checked.workload_mtu, xdp, undo).await?;
        out.push(vni_table(config, checked, slot as u32, vni, ports));
    }
    Ok(out)
}

/// VNI `vni` as the datapath's tables hold it, with its local `ports` built.
fn vni_table(
    config: &Config,
    checked: &Checked,
    slot: u32,
    vni: &Vni,
    ports: Vec<Port>,
) -> VniTable {
    let flag = |on: bool, flag: u32| if on { flag } else { 0 };
    VniTable {
        id: vni.id,
        dstport: vni.dstport,
        ttl: config.underlay.ttl,
        stats_slot: slot,
        remotes: vni.remotes.clone(),
        fdb: fdb_targets(vni, &ports),
        learning: vni.learning,
        max_learned: vni.maxaddress,
        flags: flag(vni.l2miss, VNI_F_L2MISS)
            | flag(vni.l3miss, VNI_F_L3MISS)
            | flag(vni.proxy, VNI_F_PROXY),
        proxy_entries: proxy_entries(vni, &ports),
        group: vni.group.map(|ip| Group {
            ip,
            ttl: vni.group_ttl,
            ifindex: checked.underlay.index,
            smac: Mac(checked.underlay.mac),
        }),
        ports,
    }
}

/// The static FDB entries of `vni`, a local port given by name resolved among `ports`.
fn fdb_targets(vni: &Vni, ports: &[Port]) -> Vec<(Mac, Target)> {
    vni.fdb
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
        .collect()
}

/// The proxy's static entries of `vni`: its workloads' and host interface's own addresses
/// (the MACs as `ports` found them), then the config's `[[vni.neigh]]`, which win.
fn proxy_entries(vni: &Vni, ports: &[Port]) -> Vec<(IpAddr, Mac)> {
    let mac_of = |port_name: &str| ports.iter().find(|p| p.name == port_name)?.mac;
    let mut out = Vec::new();
    for w in &vni.workloads {
        if let (Some(addr), Some(mac)) = (w.address, mac_of(&w.host_interface_name())) {
            out.push((addr.addr.into(), mac));
        }
    }
    if let Some(host) = &vni.host
        && let (Some(addr), Some(mac)) = (host.address, mac_of(&host.port_name(vni.id)))
    {
        out.push((addr.addr.into(), mac));
    }
    out.extend(vni.proxy_entries.iter().map(|n| (n.ip, n.mac)));
    out
}

/// Loads the datapath (the verifier runs here), fills its maps from `vnis` and pins them.
fn load_datapath(
    config: &Config,
    checked: &Checked,
    vnis: &[VniTable],
    undo: &mut Undo,
) -> Result<Datapath> {
    let mut global =
        tables::datapath_config(checked.local, config.underlay.srcport, &config.dstports());
    let accept_rule = config.underlay.accept_rule();
    if accept_rule.is_some() {
        global.flags |= DP_F_FILTER_SOURCES;
    }
    let mut datapath = Datapath::load(&global, config.fdb_size)?;
    tables::fill(&mut datapath, vnis)?;
    if let Some(rule) = &accept_rule {
        accept::fill(&mut datapath.accept()?, rule, remote_vteps(vnis))?;
    }
    let pins = instance::pin_dir(&config.name);
    bpffs::ensure_mounted()?;
    // Made and recorded before anything is pinned, so a crash while pinning leaves it to
    // `vtep down`.
    let id = bpffs::create_dir(&pins)?;
    undo.record(Item::Pins {
        dir: pins.clone(),
        id,
    })?;
    datapath.pin_maps(&pins)?;
    Ok(datapath)
}

/// Every remote VTEP the config names: flood lists and static FDB entries.
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

/// Attaches the port program to every port, then the underlay program, then the XDP program in
/// front of it: by the time VXLAN is decapsulated, every port it can be delivered to already
/// sends.
fn attach(
    datapath: &mut Datapath,
    vnis: &[VniTable],
    checked: &Checked,
    undo: &mut Undo,
) -> Result<()> {
    for port in vnis.iter().flat_map(|v| &v.ports) {
        // The datapath's route lookups are input lookups on the port (see vtep-ebpf nexthop.rs),
        // which the kernel allows only with forwarding on. Port traffic never reaches the IP
        // stack, so this changes nothing else.
        let key = format!("net/ipv4/conf/{}/forwarding", port.name);
        let old = sysctl::set(&key, "1")?;
        let link = LinkId {
            name: port.name.clone(),
            ifindex: port.ifindex,
        };
        undo.record(Item::Sysctl {
            key,
            value: old,
            link: Some(link),
        })?;
        datapath.attach_port(&port.name)?;
    }
    datapath.attach_underlay(&checked.underlay.name)?;
    // Last: it hands TC what it does not finish, so TC must be there first.
    if let Some(mode) = checked.xdp {
        let underlay = &checked.underlay;
        datapath.attach_xdp(&underlay.name, underlay.mac, mode)?;
    }
    info!(
        underlay = %checked.underlay.name,
        local = %checked.local,
        xdp = ?checked.xdp,
        vnis = vnis.len(),
        ports = vnis.iter().map(|v| v.ports.len()).sum::<usize>(),
        "datapath attached"
    );
    Ok(())
}

/// Joins every VNI's multicast group on the underlay (by its address), so the kernel reports
/// membership and lets the group's packets in; returns each group with the socket that holds
/// it joined.
fn join_groups(config: &Config, checked: &Checked) -> Result<Vec<(Ipv4Addr, UdpSocket)>> {
    let mut out = Vec::new();
    for group in config.vnis.iter().filter_map(|v| v.group) {
        let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
            .context("opening a socket for multicast membership")?;
        sock.join_multicast_v4(&group, &checked.local)
            .with_context(|| {
                format!(
                    "joining group {group} on {} ({})",
                    checked.underlay.name, checked.local
                )
            })?;
        info!(%group, underlay = %checked.underlay.name, "joined multicast group");
        out.push((group, sock));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[underlay]
interface = "eth0"
[[vni]]
id = 100
[vni.host]
address = "192.0.2.1/24"
[[vni.workload]]
netns = "w1"
address = "192.0.2.11/24"
[[vni.fdb]]
mac = "02:00:00:00:00:08"
port = "w1-h"
[[vni.fdb]]
mac = "02:00:00:00:00:09"
dst = "198.18.0.3"
[[vni.neigh]]
ip = "192.0.2.11"
mac = "02:00:00:00:00:99"
"#;

    fn port(name: &str, ifindex: u32, mac: u8) -> Port {
        Port {
            name: name.into(),
            ifindex,
            flags: 0,
            mac: Some(Mac([2, 0, 0, 0, 0, mac])),
            xdp: false,
        }
    }

    #[test]
    fn proxy_entries_are_the_local_stations_then_the_config() {
        let config = Config::parse(CONFIG).unwrap();
        let ports = [port("vtep100p", 7, 1), port("w1-h", 8, 2)];
        let wl = IpAddr::from([192, 0, 2, 11]);
        assert_eq!(
            proxy_entries(&config.vnis[0], &ports),
            [
                (wl, Mac([2, 0, 0, 0, 0, 2])),
                (IpAddr::from([192, 0, 2, 1]), Mac([2, 0, 0, 0, 0, 1])),
                (wl, Mac([2, 0, 0, 0, 0, 0x99])),
            ]
        );
    }

    #[test]
    fn fdb_targets_resolve_port_names() {
        let config = Config::parse(CONFIG).unwrap();
        let ports = [port("vtep100p", 7, 1), port("w1-h", 8, 2)];
        let targets = fdb_targets(&config.vnis[0], &ports);
        assert!(matches!(targets[0].1, Target::Port { ifindex: 8, .. }));
        assert!(matches!(targets[1].1, Target::Remote(ip) if ip == Ipv4Addr::new(198, 18, 0, 3)));
    }
}
