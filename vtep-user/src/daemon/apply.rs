//! The apply step of `vtep up`, after the checks passed: build each VNI's ports and tables, load
//! and fill the datapath, pin its maps, resolve the remote VTEPs' next hops, attach the programs,
//! join the multicast groups. Every change is recorded in the undo log as it is made.
//!
//! The same step serves a start that adopts a stopped instance's datapath and a reload
//! ([`Base`]): the maps are the pinned ones, changed in place to what the new config gives
//! ([`tables::sync`]), the ports the previous config made alike are kept, the new programs
//! replace the old in their links atomically, and only then is what the new config no longer
//! wants removed.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, UdpSocket},
};

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
        segmenter,
        undo::{Item, LinkId, Origin, Undo},
    },
    datapath::{
        accept,
        loader::{Datapath, Hook},
        tables::{self, Group, Port, Target, VniTable},
        trace::Trace,
    },
    instance,
    mac::Mac,
    store::{records::StationRecord, view::Local},
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
    /// This instance as the store sees it: its VTEP, VNIs and stations.
    pub local: Local,
    /// The stations it publishes: those behind the ports it made, with their addresses.
    pub stations: Vec<StationRecord>,
}

/// What the apply step starts from.
pub(super) enum Base<'a> {
    /// Nothing: a fresh start.
    Fresh,
    /// The pinned datapath of a stopped instance, whose log `undo` took over; `old` is the
    /// config it ran, when the log has it.
    Adopt { old: Option<Box<Config>> },
    /// The running instance (a reload), which ran `old`.
    Reload {
        old: &'a Config,
        previous: &'a mut Started,
    },
}

impl Base<'_> {
    fn old_config(&self) -> Option<&Config> {
        match self {
            Self::Fresh => None,
            Self::Adopt { old } => old.as_deref(),
            Self::Reload { old, .. } => Some(old),
        }
    }
}

/// Makes the system what `config` describes, given what the checks found, from `base`; with
/// `options.keep`, its datapath outlives the process (see [`Datapath::pin_links`]); programs it
/// loads have the debug log `options.trace` (and their log is read from here on). Fails at the
/// first step that fails, leaving what it made in `undo` for the caller to remove (a
/// fresh start) or to keep (adopting, reloading: the datapath forwards on meanwhile).
pub(super) async fn apply(
    net: &Net,
    config: &Config,
    checked: &Checked,
    info: instance::Info,
    undo: &mut Undo,
    mut base: Base<'_>,
    options: super::Options,
) -> Result<Started> {
    let pins = instance::pin_dir(&config.name);
    let global = global_config(config, checked);
    // A reload that loads the same programs goes on with the running ones: no verifier run,
    // which makes `vtep workload add` and most reloads quick. The trace setting is the
    // process's, so it never stands in the way here; it is compared all the same, since it is
    // part of what the programs were loaded with.
    let handed = match &base {
        Base::Reload { previous, .. } => {
            previous
                .datapath
                .loaded_as(&global, config.fdb_size, options.trace)
        }
        _ => false,
    };
    let mut datapath = match &mut base {
        Base::Reload { previous, .. } if handed => previous.datapath.hand_over(),
        _ => {
            let mut loaded = load_datapath(config, &global, &base, &pins, options.trace)?;
            loaded.start_log()?;
            loaded
        }
    };
    let result = apply_to(
        net,
        config,
        checked,
        info,
        undo,
        &mut base,
        options.keep,
        &mut datapath,
    )
    .await;
    match result {
        Ok(parts) => Ok(parts.with(datapath)),
        Err(e) => {
            if let Base::Reload { previous, .. } = &mut base
                && handed
            {
                previous.datapath.take_back(datapath);
            }
            Err(e)
        }
    }
}

/// [`Started`] but for its datapath.
pub(super) struct Parts {
    nexthops: Resolver,
    ager: Ager,
    links: Links,
    local: Local,
    stations: Vec<StationRecord>,
}

impl Parts {
    fn with(self, datapath: Datapath) -> Started {
        Started {
            datapath,
            nexthops: self.nexthops,
            ager: self.ager,
            links: self.links,
            local: self.local,
            stations: self.stations,
        }
    }
}

/// The apply step on `datapath`, loaded or handed over from the running instance.
#[allow(clippy::too_many_arguments)]
async fn apply_to(
    net: &Net,
    config: &Config,
    checked: &Checked,
    info: instance::Info,
    undo: &mut Undo,
    base: &mut Base<'_>,
    keep: bool,
    datapath: &mut Datapath,
) -> Result<Parts> {
    let pins = instance::pin_dir(&config.name);
    let fresh = matches!(base, Base::Fresh);
    let serving = match base {
        Base::Fresh => HashMap::new(),
        _ => tables::serving(datapath)?,
    };
    let vnis = build_vnis(net, config, checked, base.old_config(), &serving, undo).await?;
    match &base {
        Base::Fresh => tables::fill(datapath, &vnis)?,
        _ => {
            let old_remotes = base
                .old_config()
                .map(|c| c.vnis.iter().map(|v| (v.id, v.remotes.clone())).collect())
                .unwrap_or_default();
            tables::sync(datapath, &vnis, &old_remotes)?;
        }
    }
    // What the new rule accepts is added now, what only the old one did goes once the new
    // programs run: the old ones may filter sources when the new ones do not.
    let accept_rule = config.underlay.accept_rule();
    if let Some(rule) = &accept_rule {
        accept::fill(&mut datapath.accept()?, rule, remote_vteps(&vnis))?;
    }
    pin(datapath, &pins, undo)?;
    let ager = Ager::new(
        vnis.iter()
            .zip(&config.vnis)
            .filter(|(t, _)| t.learning)
            .map(|(t, v)| (t.id, t.stats_slot, v.ageing)),
    );
    warn_if_neighbour_table_small(config.underlay.max_remotes);
    let accept_known = accept_rule.as_ref().is_some_and(|r| r.known);
    let mut own_resolver = Resolver::new(
        config.underlay.max_remotes,
        config.underlay_ipv6(),
        accept_known,
    );
    if let Base::Adopt { .. } = base {
        datapath.adopt_links(&pins)?;
        own_resolver.adopt(datapath, undo.items());
    }
    {
        // A reload goes on with the running resolver (the neighbour entries it made), which
        // it takes over only once nothing can fail any more.
        let resolver = match base {
            Base::Reload { previous, .. } => {
                previous
                    .nexthops
                    .set_limits(config.underlay.max_remotes, accept_known);
                &mut previous.nexthops
            }
            _ => &mut own_resolver,
        };
        let changes = resolver.changes(datapath);
        resolver
            .reconcile(net, datapath, undo, changes, None)
            .await?;
    }
    enable_forwarding(&vnis, config.underlay_ipv6(), undo)?;
    let segmenter = match segmenter::needed(config) {
        true => Some(segmenter::ensure(net, &config.name, undo).await?),
        false => None,
    };
    tables::set_segmenter(
        datapath,
        segmenter.as_ref().map(|s| (s.out.index, s.back.index)),
    )?;
    add_routes(net, config, undo).await?;
    let groups = join_groups(config, checked)?;

    // From here on the programs change. A fresh start still fails (and is undone) on an
    // error; an adoption or a reload logs it and goes on, for going back is no longer possible
    // without a gap and the datapath forwards either way.
    let nexthops = match base {
        Base::Reload { previous, .. } => {
            datapath.take_links(&mut previous.datapath);
            std::mem::replace(&mut previous.nexthops, own_resolver)
        }
        _ => own_resolver,
    };
    let later = |result: Result<()>| -> Result<()> {
        match result {
            Err(e) if !fresh => {
                warn!("{e:#}");
                Ok(())
            }
            other => other,
        }
    };
    let back = segmenter.as_ref().map(|s| &s.back);
    later(attach(datapath, &vnis, back, checked, fresh))?;
    later(datapath.pin_links(keep))?;
    later(undo.set_kept(keep))?;
    if !fresh {
        for e in prune(net, config, &vnis, undo).await {
            warn!("removing what the config no longer has: {e:#}");
        }
        later(accept::remove_stale(
            &mut datapath.accept()?,
            accept_rule.as_ref(),
        ))?;
    }
    let links = Links::new(config, info, &checked.underlay, &vnis, groups).with_xdp(checked.xdp);
    // Links wrote its state into the info file, whole: a new file under the recorded name.
    later(undo.file_rewritten(&instance::info_file(&config.name)))?;
    let (local, stations) = local_stations(checked.local, &vnis);
    Ok(Parts {
        nexthops,
        ager,
        links,
        local,
        stations,
    })
}

/// What the store needs to know of this instance, from its VTEP `vtep` and its tables: every
/// port whose station vtep knows (it made it) is a station, with the addresses the proxy
/// answers for its MAC.
fn local_stations(vtep: IpAddr, vnis: &[VniTable]) -> (Local, Vec<StationRecord>) {
    let mut local = Local {
        vtep: Some(vtep),
        ..Local::default()
    };
    let mut stations = Vec::new();
    for v in vnis {
        local.vnis.insert(v.id, (v.dstport, v.group.is_some()));
        for mac in v.ports.iter().filter_map(|p| p.mac) {
            local.stations.insert((v.id, mac));
            let mut addresses: Vec<IpAddr> = v
                .proxy_entries
                .iter()
                .filter(|(_, m)| *m == mac)
                .map(|(ip, _)| *ip)
                .collect();
            addresses.sort();
            addresses.dedup();
            stations.push(StationRecord {
                vni: v.id,
                mac,
                vtep,
                addresses,
            });
        }
    }
    (local, stations)
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

/// Builds each VNI's ports (keeping those `old`, the previous config, made alike), then its
/// tables from the config and those ports. A VNI the datapath `serving` already keeps its stats
/// slot.
async fn build_vnis(
    net: &Net,
    config: &Config,
    checked: &Checked,
    old: Option<&Config>,
    serving: &HashMap<u32, u32>,
    undo: &mut Undo,
) -> Result<Vec<VniTable>> {
    let ids: Vec<u32> = config.vnis.iter().map(|v| v.id).collect();
    let slots = tables::assign_slots(&ids, serving);
    let mut out = Vec::new();
    let xdp = checked.xdp.is_some();
    for (vni, slot) in config.vnis.iter().zip(slots) {
        let old_vni = old.and_then(|o| o.vnis.iter().find(|v| v.id == vni.id));
        let ports = ports::build(net, vni, old_vni, checked.workload_mtu, xdp, undo).await?;
        out.push(vni_table(config, checked, slot, vni, ports));
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

/// Loads the datapath (the verifier runs here) with the debug log set to `trace`: with fresh
/// maps, or with the instance's pinned ones when `base` has a datapath already.
fn load_datapath(
    config: &Config,
    global: &vtep_common::maps::DatapathConfig,
    base: &Base<'_>,
    pins: &std::path::Path,
    trace: Trace,
) -> Result<Datapath> {
    let reuse = match base {
        Base::Fresh => None,
        _ => Some(pins),
    };
    Datapath::load(global, config.fdb_size, reuse, trace)
}

/// The load-time configuration of `config`'s programs.
fn global_config(config: &Config, checked: &Checked) -> vtep_common::maps::DatapathConfig {
    let mut global = tables::datapath_config(
        checked.local,
        config.underlay.srcport,
        &config.dstports(),
        config.underlay.udp6_zero_csum_tx,
    );
    if config.underlay.accept_rule().is_some() {
        global.flags |= DP_F_FILTER_SOURCES;
    }
    global
}

/// Pins the maps in `pins`, made and recorded first (a fresh start) so a crash while pinning
/// leaves it to `vtep down`.
fn pin(datapath: &mut Datapath, pins: &std::path::Path, undo: &mut Undo) -> Result<()> {
    bpffs::ensure_mounted()?;
    let id = match crate::sys::identity::FileId::of(pins)? {
        Some(id) => id,
        None => bpffs::create_dir(pins)?,
    };
    undo.record(Item::Pins {
        dir: pins.to_path_buf(),
        id,
    })?;
    datapath.pin(pins)
}

/// Removes what the undo log records that `config` (built into `vnis`) no longer uses: the
/// interfaces, namespaces and sysctls of ports it dropped, and detaches the programs of
/// adopted ports it dropped. Returns what could not be removed.
async fn prune(
    net: &Net,
    config: &Config,
    vnis: &[VniTable],
    undo: &mut Undo,
) -> Vec<anyhow::Error> {
    let ports: HashSet<(String, u32)> = vnis
        .iter()
        .flat_map(|v| v.ports.iter().map(|p| (p.name.clone(), p.ifindex)))
        .collect();
    // The host interfaces are no ports: their veth's other end is.
    let hosts: HashSet<String> = config
        .vnis
        .iter()
        .filter_map(|v| Some(v.host.as_ref()?.interface_name(v.id)))
        .collect();
    let namespaces: HashSet<&str> = config
        .vnis
        .iter()
        .flat_map(|v| v.workloads.iter().map(|w| w.netns.as_str()))
        .collect();
    // The segmenter stays while the config needs one.
    let segmenter = match segmenter::needed(config) {
        true => segmenter::names(&config.name).to_vec(),
        false => Vec::new(),
    };
    undo.prune(net, |item| match item {
        Item::Link {
            name,
            origin: Origin::Created,
            ..
        } if hosts.contains(name) || segmenter.contains(name) => false,
        Item::Link { name, ifindex, .. } => !ports.contains(&(name.clone(), *ifindex)),
        Item::Netns { name, .. } => !namespaces.contains(name.as_str()),
        Item::Sysctl { link: Some(l), .. } => !ports.contains(&(l.name.clone(), l.ifindex)),
        Item::Sysctl {
            key, link: None, ..
        } => key == IP_FORWARD && config.routes.is_empty(),
        Item::Route { to, prefix, via } => !config
            .routes
            .iter()
            .any(|r| r.to.addr == *to && r.to.prefix == *prefix && r.via == *via),
        _ => false,
    })
    .await
}

/// Every remote VTEP the config names: flood lists and static FDB entries.
fn remote_vteps(vnis: &[VniTable]) -> Vec<IpAddr> {
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

/// Turns forwarding of the underlay's family (IPv6 with `ipv6`) on on every port, recording
/// the old values. The datapath's route lookups are input lookups on the port (see vtep-ebpf
/// nexthop.rs), which the kernel allows only with forwarding on. Port traffic never reaches the
/// IP stack, so this changes nothing else. Fails when a sysctl cannot be set or the log written.
fn enable_forwarding(vnis: &[VniTable], ipv6: bool, undo: &mut Undo) -> Result<()> {
    let family = if ipv6 { "ipv6" } else { "ipv4" };
    for port in vnis.iter().flat_map(|v| &v.ports) {
        let key = format!("net/{family}/conf/{}/forwarding", port.name);
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
    }
    Ok(())
}

/// The sysctl that makes the host route between its interfaces (the host interfaces of the
/// VNIs, in a routed overlay).
const IP_FORWARD: &str = "net/ipv4/ip_forward";

/// Adds the config's `[[route]]`s (a route recorded already, an adopted or reloaded instance's,
/// stays as it is) and, when there are any, turns IPv4 forwarding on, recording each. Fails,
/// naming the route, when the kernel refuses one (another route to the prefix exists).
async fn add_routes(net: &Net, config: &Config, undo: &mut Undo) -> Result<()> {
    if config.routes.is_empty() {
        return Ok(());
    }
    let old = sysctl::set(IP_FORWARD, "1")?;
    undo.record(Item::Sysctl {
        key: IP_FORWARD.to_string(),
        value: old,
        link: None,
    })?;
    for (i, route) in config.routes.iter().enumerate() {
        let item = Item::Route {
            to: route.to.addr,
            prefix: route.to.prefix,
            via: route.via,
        };
        if undo.items().contains(&item) {
            continue;
        }
        net.add_route(Some((route.to.addr, route.to.prefix)), route.via)
            .await
            .with_context(|| format!("route[{i}]"))?;
        undo.record(item)?;
    }
    Ok(())
}

/// Attaches the port program to every port, then the underlay program: by the time VXLAN is
/// decapsulated, every port it can be delivered to already sends. Where a link is held
/// already (adopted, reloaded), the program in it is replaced; a held port link that no port
/// of `vnis` uses is detached. With `fail_fast` (a fresh start) the first failure is returned;
/// otherwise every port is tried and the first failure returned at the end.
fn attach(
    datapath: &mut Datapath,
    vnis: &[VniTable],
    segmenter: Option<&crate::sys::netlink::Link>,
    checked: &Checked,
    fail_fast: bool,
) -> Result<()> {
    let mut first_error = None;
    // Returns the error when failing fast; otherwise logs it and keeps the first.
    let mut note = |result: Result<()>| -> Result<()> {
        match result {
            Err(e) if fail_fast => Err(e),
            Err(e) => {
                warn!("{e:#}");
                first_error.get_or_insert(e);
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    };
    let mut used = HashSet::new();
    for port in vnis.iter().flat_map(|v| &v.ports) {
        used.insert(port.ifindex);
        note(datapath.attach_port(&port.name, port.ifindex))?;
    }
    // The segmenter's return end: segments of the ports' GSO frames come in there.
    if let Some(back) = segmenter {
        used.insert(back.index);
        note(datapath.attach_port(&back.name, back.index))?;
    }
    let underlay = &checked.underlay;
    note(datapath.attach_underlay(&underlay.name, underlay.index))?;
    // Last: it hands TC what it does not finish, so TC must be there first.
    note(match checked.xdp {
        Some(mode) => datapath.attach_xdp(&underlay.name, underlay.index, underlay.mac, mode),
        None => {
            // A reload that turned it off.
            datapath.detach_xdp();
            Ok(())
        }
    })?;
    for ifindex in datapath.port_hooks() {
        if !used.contains(&ifindex) {
            datapath.detach(Hook::Port(ifindex));
        }
    }
    info!(
        underlay = %checked.underlay.name,
        local = %checked.local,
        xdp = ?checked.xdp,
        vnis = vnis.len(),
        ports = vnis.iter().map(|v| v.ports.len()).sum::<usize>(),
        "datapath attached"
    );
    first_error.map_or(Ok(()), Err)
}

/// Joins every VNI's multicast group on the underlay (IGMP by its address, MLD by its index),
/// so the kernel reports membership and lets the group's packets in; returns each group with
/// the socket that holds it joined.
fn join_groups(config: &Config, checked: &Checked) -> Result<Vec<(IpAddr, UdpSocket)>> {
    let mut out = Vec::new();
    for group in config.vnis.iter().filter_map(|v| v.group) {
        let sock = super::links::join_group(group, checked.local, checked.underlay.index)
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
    use std::net::Ipv4Addr;

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
