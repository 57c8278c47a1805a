//! Validation of a parsed config, one section at a time: the instance, the underlay, each VNI
//! (settings, remotes, ports, station MACs, FDB), the proxy entries, then the totals the maps
//! must hold. The checks that span VNIs (unique VNIs and interface names, the dstport count)
//! keep their state in [`Seen`]. The first problem found is returned, naming its field.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
};

use vtep_common::maps::{
    MAX_DSTPORTS, MAX_FLOOD_PORTS, MAX_FLOOD_REMOTES, MAX_NEXTHOPS, MAX_PORTS, MAX_VNIS,
};

use crate::{
    config::{
        AcceptRule, Config, ConfigError, IpNet, Ipv4Net, MAX_AGEING, Underlay, Vni,
        fields::{
            IFNAME_MAX, check_family, check_ifname, check_instance_name, check_interface_address,
            check_local, check_mac, check_netns, check_remote, check_vni, check_workload_ifname,
            is_station_address,
        },
        invalid,
    },
    mac::Mac,
};

impl Config {
    /// Whether the instance's underlay is IPv6: one family per instance, that of
    /// `underlay.local`; without it, IPv6 when any remote VTEP or group the config names is
    /// IPv6 (the local address is then the interface's first global IPv6 address), else IPv4.
    pub fn underlay_ipv6(&self) -> bool {
        match self.underlay.local {
            Some(local) => local.is_ipv6(),
            None => self.vnis.iter().any(|v| {
                v.remotes
                    .iter()
                    .chain(v.group.iter())
                    .chain(v.fdb.iter().filter_map(|f| f.dst.as_ref()))
                    .any(IpAddr::is_ipv6)
            }),
        }
    }

    /// Checks everything that can be checked without looking at the system. Fails with the first
    /// problem found, naming its field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check_instance()?;
        self.underlay.check()?;
        if self.vnis.is_empty() {
            return Err(invalid(
                "vni",
                "no [[vni]]: an instance serves at least one VNI",
            ));
        }
        if self.vnis.len() > MAX_VNIS as usize {
            return Err(invalid("vni", format!("at most {MAX_VNIS} VNIs")));
        }
        let mut seen = Seen::default();
        seen.interface("underlay.interface", &self.underlay.interface)?;
        let local = self.underlay.local;
        let ipv6 = self.underlay_ipv6();
        self.underlay.check_accept_family(ipv6)?;
        for (i, vni) in self.vnis.iter().enumerate() {
            let at = format!("vni[{i}]");
            seen.vni(&at, vni.id)?;
            vni.check_settings(&at, self.fdb_size, ipv6)?;
            seen.dstport(&at, vni.dstport)?;
            vni.check_remotes(&at, local, ipv6)?;
            let ports = vni.check_ports(&at, &mut seen)?;
            let stations = vni.check_station_macs(&at)?;
            vni.check_fdb(&at, &ports, &stations, local, ipv6)?;
        }
        for (i, vni) in self.vnis.iter().enumerate() {
            vni.check_proxy_entries(&format!("vni[{i}]"))?;
        }
        self.check_totals(seen.ports)?;
        self.check_remote_vteps()?;
        self.check_routes()?;
        if let Some(store) = &self.store {
            store.check()?;
        }
        match &self.metrics {
            Some(metrics) => metrics.check(),
            None => Ok(()),
        }
    }

    /// Each `[[route]]`: a prefix with no host bits set, listed once, via an address (not the
    /// host's own) in the subnet of one of the VNIs' host interfaces, the only place the overlay
    /// reaches from the host's routing table.
    fn check_routes(&self) -> Result<(), ConfigError> {
        let subnets: Vec<Ipv4Net> = self
            .vnis
            .iter()
            .filter_map(|v| v.host.as_ref()?.address)
            .collect();
        let mut seen = HashSet::new();
        for (i, route) in self.routes.iter().enumerate() {
            let at = format!("route[{i}]");
            let to = route.to;
            if to.network() != to.addr {
                return Err(invalid(
                    format!("{at}.to"),
                    format!(
                        "`{}/{}` has bits set past its prefix length; the prefix is {}/{}",
                        to.addr,
                        to.prefix,
                        to.network(),
                        to.prefix
                    ),
                ));
            }
            if !seen.insert((to.addr, to.prefix)) {
                return Err(invalid(
                    format!("{at}.to"),
                    format!("{}/{} is routed twice", to.addr, to.prefix),
                ));
            }
            let via = route.via;
            if subnets.iter().any(|n| n.addr == via) {
                return Err(invalid(
                    format!("{at}.via"),
                    format!("{via} is this host's own address in the overlay, not a next hop"),
                ));
            }
            if !subnets.iter().any(|n| n.contains(via)) {
                let list: Vec<String> = subnets
                    .iter()
                    .map(|n| format!("{}/{}", n.network(), n.prefix))
                    .collect();
                return Err(invalid(
                    format!("{at}.via"),
                    format!(
                        "{via} is in none of the host's overlay subnets ({}); a route's next hop \
                         must be reachable through a VNI's host interface",
                        if list.is_empty() {
                            "none: no [vni.host] has an address".to_string()
                        } else {
                            list.join(", ")
                        }
                    ),
                ));
            }
        }
        Ok(())
    }

    /// What the remote VTEPs of all VNIs need: room in `underlay.max_remotes` for every one the
    /// config names, and, when only known VTEPs are accepted, no VNI whose VTEPs are not named
    /// (a multicast group's members).
    fn check_remote_vteps(&self) -> Result<(), ConfigError> {
        let named: HashSet<IpAddr> = self
            .vnis
            .iter()
            .flat_map(|v| {
                v.remotes
                    .iter()
                    .chain(v.fdb.iter().filter_map(|f| f.dst.as_ref()))
            })
            .copied()
            .collect();
        if named.len() > self.underlay.max_remotes as usize {
            return Err(invalid(
                "underlay.max_remotes",
                format!(
                    "{} is less than the {} remote VTEPs this config names",
                    self.underlay.max_remotes,
                    named.len()
                ),
            ));
        }
        let only_known = self
            .underlay
            .accept_rule()
            .is_some_and(|r| r.known && r.prefixes.is_empty());
        if let Some(i) = self.vnis.iter().position(|v| v.group.is_some())
            && only_known
        {
            return Err(invalid(
                format!("vni[{i}].group"),
                "with underlay.accept = \"known\" only VTEPs the config or `vtep fdb` names are \
                 accepted, and a group's members are not named; add their prefixes to \
                 underlay.accept",
            ));
        }
        Ok(())
    }

    /// The instance's name and FDB size.
    fn check_instance(&self) -> Result<(), ConfigError> {
        check_instance_name("name", &self.name)?;
        if self.fdb_size == 0 || self.fdb_size > 16_777_216 {
            return Err(invalid("fdb_size", "must be within 1..=16777216"));
        }
        Ok(())
    }

    /// What all VNIs together put in maps of fixed size: FDB entries and local ports.
    fn check_totals(&self, ports: usize) -> Result<(), ConfigError> {
        let fdb_entries: usize = self
            .vnis
            .iter()
            .map(|v| usize::from(v.host.is_some()) + v.workloads.len() + v.fdb.len())
            .sum();
        if fdb_entries > self.fdb_size as usize {
            return Err(invalid(
                "fdb_size",
                format!(
                    "{} is less than the {fdb_entries} FDB entries this config makes",
                    self.fdb_size
                ),
            ));
        }
        if ports > MAX_PORTS as usize {
            return Err(invalid(
                "vni",
                format!("at most {MAX_PORTS} local ports in all"),
            ));
        }
        Ok(())
    }
}

impl Underlay {
    /// Every prefix of `underlay.accept` of the underlay's family (`ipv6`).
    fn check_accept_family(&self, ipv6: bool) -> Result<(), ConfigError> {
        let Some(list) = &self.accept else {
            return Ok(());
        };
        for (i, entry) in list.0.iter().enumerate() {
            if let Ok(net) = entry.parse::<IpNet>() {
                check_family(&format!("underlay.accept[{i}]"), net.addr, ipv6)?;
            }
        }
        Ok(())
    }

    fn check(&self) -> Result<(), ConfigError> {
        check_ifname("underlay.interface", &self.interface)?;
        if let Some(local) = self.local {
            check_local("underlay.local", local)?;
        }
        if self.ttl == 0 {
            return Err(invalid("underlay.ttl", "must be within 1..=255"));
        }
        let [lo, hi] = self.srcport;
        if lo == 0 || lo > hi {
            return Err(invalid(
                "underlay.srcport",
                format!("[{lo}, {hi}] is not a range within 1..=65535"),
            ));
        }
        if !(1..=MAX_NEXTHOPS).contains(&self.max_remotes) {
            return Err(invalid(
                "underlay.max_remotes",
                format!("must be within 1..={MAX_NEXTHOPS}"),
            ));
        }
        if let Some(list) = &self.accept {
            accept_rule(&list.0)?;
        }
        Ok(())
    }
}

/// Most prefixes `underlay.accept` may list.
pub const MAX_ACCEPT_PREFIXES: usize = 1024;

/// What the entries of `underlay.accept` allow: `None` for every source (`"any"`). Fails, naming
/// the entry, on an empty list, an entry that is neither a keyword nor a prefix, a prefix with
/// host bits set, one listed twice, `"any"` among others, or too many prefixes.
pub(super) fn accept_rule(entries: &[String]) -> Result<Option<AcceptRule>, ConfigError> {
    if entries.is_empty() {
        return Err(invalid(
            "underlay.accept",
            "an empty list accepts no VTEP; leave the key out (or say \"any\") to accept every \
             source",
        ));
    }
    if entries.len() > MAX_ACCEPT_PREFIXES {
        return Err(invalid(
            "underlay.accept",
            format!("at most {MAX_ACCEPT_PREFIXES} entries"),
        ));
    }
    let mut rule = AcceptRule::default();
    let mut seen = HashSet::new();
    for (i, entry) in entries.iter().enumerate() {
        let field = format!("underlay.accept[{i}]");
        if !seen.insert(entry.as_str()) {
            return Err(invalid(field, format!("`{entry}` is listed twice")));
        }
        match entry.as_str() {
            "any" if entries.len() == 1 => return Ok(None),
            "any" => {
                return Err(invalid(
                    field,
                    "\"any\" accepts every source: it stands alone",
                ));
            }
            "known" => rule.known = true,
            _ => rule.prefixes.push(accept_prefix(&field, entry)?),
        }
    }
    Ok(Some(rule))
}

/// One prefix of `underlay.accept`, written ADDRESS/LENGTH with the host bits zero.
fn accept_prefix(field: &str, entry: &str) -> Result<IpNet, ConfigError> {
    let net: IpNet = entry.parse().map_err(|e: String| {
        invalid(
            field,
            format!("`{entry}` is neither \"known\" nor an IP prefix: {e}"),
        )
    })?;
    let network = net.network();
    if network != net.addr {
        return Err(invalid(
            field,
            format!(
                "`{entry}` has bits set past its prefix length; the prefix is {network}/{}",
                net.prefix
            ),
        ));
    }
    Ok(net)
}

/// What the VNIs checked so far use, for the checks that span VNIs.
#[derive(Default)]
struct Seen {
    vnis: HashSet<u32>,
    dstports: HashSet<u16>,
    /// Interface name → the field that named it first.
    interfaces: HashMap<String, String>,
    namespaces: HashSet<String>,
    /// Local ports of all VNIs.
    ports: usize,
}

impl Seen {
    /// VNI `id` of the VNI at `at`: valid and not configured before.
    fn vni(&mut self, at: &str, id: u32) -> Result<(), ConfigError> {
        check_vni(&format!("{at}.id"), id)?;
        if !self.vnis.insert(id) {
            return Err(invalid(
                format!("{at}.id"),
                format!("VNI {id} is configured twice"),
            ));
        }
        Ok(())
    }

    /// The dstport of the VNI at `at`: one of at most [`MAX_DSTPORTS`] distinct ports.
    fn dstport(&mut self, at: &str, port: u16) -> Result<(), ConfigError> {
        self.dstports.insert(port);
        if self.dstports.len() > MAX_DSTPORTS {
            return Err(invalid(
                format!("{at}.dstport"),
                format!("at most {MAX_DSTPORTS} distinct dstports"),
            ));
        }
        Ok(())
    }

    /// Interface `name`, named by `field`: valid and not used by another field.
    fn interface(&mut self, field: &str, name: &str) -> Result<(), ConfigError> {
        check_ifname(field, name)?;
        if let Some(first) = self.interfaces.insert(name.to_string(), field.to_string()) {
            return Err(invalid(
                field,
                format!("interface `{name}` is already used by {first}"),
            ));
        }
        Ok(())
    }

    /// Namespace `name` of a workload, named by `field`: valid and holding no other workload.
    fn namespace(&mut self, field: &str, name: &str) -> Result<(), ConfigError> {
        check_netns(field, name)?;
        if !self.namespaces.insert(name.to_string()) {
            return Err(invalid(
                field,
                format!("namespace `{name}` holds another workload already"),
            ));
        }
        Ok(())
    }
}

impl Vni {
    /// The settings of one VNI that stand alone: dstport, group (of the underlay's family,
    /// `ipv6`), ageing, maxaddress.
    fn check_settings(&self, at: &str, fdb_size: u32, ipv6: bool) -> Result<(), ConfigError> {
        if self.dstport == 0 {
            return Err(invalid(format!("{at}.dstport"), "must be within 1..=65535"));
        }
        if let Some(group) = self.group {
            if !group.is_multicast() {
                let range = if group.is_ipv6() {
                    "ff00::/8"
                } else {
                    "224.0.0.0/4"
                };
                return Err(invalid(
                    format!("{at}.group"),
                    format!("{group} is not a multicast address ({range})"),
                ));
            }
            check_family(&format!("{at}.group"), group, ipv6)?;
            if let IpAddr::V6(v6) = group
                && v6.segments()[0] & 0x000f <= 2
            {
                return Err(invalid(
                    format!("{at}.group"),
                    format!(
                        "{group} is interface- or link-local in scope; VTEPs need a group that \
                         crosses routers, such as ff0e::/16 (global) or ff05::/16 (site)"
                    ),
                ));
            }
            if !self.remotes.is_empty() {
                return Err(invalid(
                    format!("{at}.group"),
                    "set either `group` or `remotes`, not both (as the kernel's group and \
                     remote)",
                ));
            }
            if self.group_ttl == 0 {
                return Err(invalid(format!("{at}.group_ttl"), "must be within 1..=255"));
            }
        }
        if !(1..=MAX_AGEING).contains(&self.ageing) {
            return Err(invalid(
                format!("{at}.ageing"),
                format!("must be within 1..={MAX_AGEING} seconds"),
            ));
        }
        if self.maxaddress > fdb_size {
            return Err(invalid(
                format!("{at}.maxaddress"),
                format!(
                    "{} is more than the FDB holds (fdb_size = {fdb_size})",
                    self.maxaddress
                ),
            ));
        }
        Ok(())
    }

    /// The flood list: at most [`MAX_FLOOD_REMOTES`] distinct remote VTEPs.
    fn check_remotes(
        &self,
        at: &str,
        local: Option<IpAddr>,
        ipv6: bool,
    ) -> Result<(), ConfigError> {
        if self.remotes.len() > MAX_FLOOD_REMOTES {
            return Err(invalid(
                format!("{at}.remotes"),
                format!("at most {MAX_FLOOD_REMOTES} remote VTEPs"),
            ));
        }
        let mut remotes = HashSet::new();
        for (j, r) in self.remotes.iter().enumerate() {
            check_remote(&format!("{at}.remotes[{j}]"), *r, local, ipv6)?;
            if !remotes.insert(*r) {
                return Err(invalid(
                    format!("{at}.remotes[{j}]"),
                    format!("{r} is listed twice"),
                ));
            }
        }
        Ok(())
    }

    /// The host interface, workloads and adopted ports, claiming their interface names in
    /// `seen`; returns the names of the VNI's local ports.
    fn check_ports(&self, at: &str, seen: &mut Seen) -> Result<Vec<String>, ConfigError> {
        let mut ports = Vec::new();
        if let Some(host) = &self.host {
            let field = format!("{at}.host.interface");
            let name = host.interface_name(self.id);
            seen.interface(&field, &name)?;
            if name.len() + 1 > IFNAME_MAX {
                return Err(invalid(
                    field,
                    format!(
                        "`{name}` leaves no room for its port `{name}p` (15 characters at most)"
                    ),
                ));
            }
            let port = host.port_name(self.id);
            seen.interface(&field, &port)?;
            check_mac(&format!("{at}.host.mac"), host.mac)?;
            if let Some(addr) = host.address {
                check_interface_address(&format!("{at}.host.address"), addr.addr)?;
            }
            ports.push(port);
        }
        for (j, w) in self.workloads.iter().enumerate() {
            let at = format!("{at}.workload[{j}]");
            seen.namespace(&format!("{at}.netns"), &w.netns)?;
            check_workload_ifname(&format!("{at}.interface"), &w.interface)?;
            let host_if = w.host_interface_name();
            seen.interface(&format!("{at}.host_interface"), &host_if)?;
            check_mac(&format!("{at}.mac"), w.mac)?;
            if let Some(addr) = w.address {
                check_interface_address(&format!("{at}.address"), addr.addr)?;
            }
            if let Some(gw) = w.gateway {
                let field = format!("{at}.gateway");
                match w.address {
                    None => {
                        return Err(invalid(
                            field,
                            "a gateway needs the workload's `address`, whose subnet it is in",
                        ));
                    }
                    Some(addr) if !addr.contains(gw) || addr.addr == gw => {
                        return Err(invalid(
                            field,
                            format!(
                                "{gw} is not another address in the workload's subnet {}/{}",
                                addr.network(),
                                addr.prefix
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
            ports.push(host_if);
        }
        for (j, p) in self.ports.iter().enumerate() {
            seen.interface(&format!("{at}.port[{j}].interface"), &p.interface)?;
            ports.push(p.interface.clone());
        }
        if ports.len() > MAX_FLOOD_PORTS {
            return Err(invalid(
                at,
                format!("at most {MAX_FLOOD_PORTS} local ports per VNI"),
            ));
        }
        seen.ports += ports.len();
        Ok(ports)
    }

    /// The MACs the config gives the VNI's own stations (host interface, workloads): one
    /// station each, as the FDB holds one entry per MAC and the second would take the first's.
    /// Returns them with the field that gives each.
    fn check_station_macs(&self, at: &str) -> Result<HashMap<Mac, String>, ConfigError> {
        let host = self.host.iter().map(|h| (h.mac, format!("{at}.host.mac")));
        let workloads = self
            .workloads
            .iter()
            .enumerate()
            .map(|(j, w)| (w.mac, format!("{at}.workload[{j}].mac")));
        let mut stations = HashMap::new();
        for (mac, field) in host.chain(workloads) {
            let Some(mac) = mac else { continue };
            if let Some(first) = stations.get(&mac) {
                return Err(invalid(
                    field,
                    format!(
                        "{mac} is also {first} in VNI {}: one MAC, one station",
                        self.id
                    ),
                ));
            }
            stations.insert(mac, field);
        }
        Ok(stations)
    }

    /// The static FDB entries: one per station MAC, none for a MAC of the VNI's own
    /// `stations` (their entries are made from the ports), each to a remote VTEP or one of
    /// `ports`.
    fn check_fdb(
        &self,
        at: &str,
        ports: &[String],
        stations: &HashMap<Mac, String>,
        local: Option<IpAddr>,
        ipv6: bool,
    ) -> Result<(), ConfigError> {
        let mut macs = HashSet::new();
        for (j, f) in self.fdb.iter().enumerate() {
            let at = format!("{at}.fdb[{j}]");
            check_mac(&format!("{at}.mac"), Some(f.mac))?;
            if let Some(station) = stations.get(&f.mac) {
                return Err(invalid(
                    format!("{at}.mac"),
                    format!(
                        "{} is {station}, a local station of VNI {}, whose entry vtep makes itself",
                        f.mac, self.id
                    ),
                ));
            }
            if !macs.insert(f.mac) {
                return Err(invalid(
                    format!("{at}.mac"),
                    format!("{} has two entries in VNI {}", f.mac, self.id),
                ));
            }
            match (&f.dst, &f.port) {
                (Some(dst), None) => check_remote(&format!("{at}.dst"), *dst, local, ipv6)?,
                (None, Some(port)) if !ports.contains(port) => {
                    return Err(invalid(
                        format!("{at}.port"),
                        format!("`{port}` is not a port of VNI {}", self.id),
                    ));
                }
                (None, Some(_)) => {}
                _ => return Err(invalid(at, "set exactly one of `dst` and `port`")),
            }
        }
        Ok(())
    }

    /// The static proxy entries (`[[vni.neigh]]`): one per station address.
    fn check_proxy_entries(&self, at: &str) -> Result<(), ConfigError> {
        let mut ips = HashSet::new();
        for (j, n) in self.proxy_entries.iter().enumerate() {
            let at = format!("{at}.neigh[{j}]");
            check_mac(&format!("{at}.mac"), Some(n.mac))?;
            if !is_station_address(n.ip) {
                return Err(invalid(
                    format!("{at}.ip"),
                    format!("{} is not a station's address", n.ip),
                ));
            }
            if !ips.insert(n.ip) {
                return Err(invalid(
                    format!("{at}.ip"),
                    format!("{} has two entries in VNI {}", n.ip, self.id),
                ));
            }
        }
        Ok(())
    }
}
