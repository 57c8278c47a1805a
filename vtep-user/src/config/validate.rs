//! Validation of a parsed config, one section at a time: the instance, the underlay, each VNI
//! (settings, remotes, ports, station MACs, FDB), the proxy entries, then the totals the maps
//! must hold. The checks that span VNIs (unique VNIs and interface names, the dstport count)
//! keep their state in [`Seen`]. The first problem found is returned, naming its field.

use std::{
    collections::{HashMap, HashSet},
    net::Ipv4Addr,
};

use vtep_common::maps::{MAX_DSTPORTS, MAX_FLOOD_PORTS, MAX_FLOOD_REMOTES, MAX_PORTS, MAX_VNIS};

use crate::{
    config::{
        Config, ConfigError, MAX_AGEING, Underlay, Vni,
        fields::{
            IFNAME_MAX, check_ifname, check_instance_name, check_interface_address, check_local,
            check_mac, check_netns, check_remote, check_vni, check_workload_ifname,
            is_station_address,
        },
        invalid,
    },
    mac::Mac,
};

impl Config {
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
        for (i, vni) in self.vnis.iter().enumerate() {
            let at = format!("vni[{i}]");
            seen.vni(&at, vni.id)?;
            vni.check_settings(&at, self.fdb_size)?;
            seen.dstport(&at, vni.dstport)?;
            vni.check_remotes(&at, local)?;
            let ports = vni.check_ports(&at, &mut seen)?;
            let stations = vni.check_station_macs(&at)?;
            vni.check_fdb(&at, &ports, &stations, local)?;
        }
        for (i, vni) in self.vnis.iter().enumerate() {
            vni.check_proxy_entries(&format!("vni[{i}]"))?;
        }
        self.check_totals(seen.ports)
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
        Ok(())
    }
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
    /// The settings of one VNI that stand alone: dstport, group, ageing, maxaddress.
    fn check_settings(&self, at: &str, fdb_size: u32) -> Result<(), ConfigError> {
        if self.dstport == 0 {
            return Err(invalid(format!("{at}.dstport"), "must be within 1..=65535"));
        }
        if let Some(group) = self.group {
            if !group.is_multicast() {
                return Err(invalid(
                    format!("{at}.group"),
                    format!("{group} is not a multicast address (224.0.0.0/4)"),
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
    fn check_remotes(&self, at: &str, local: Option<Ipv4Addr>) -> Result<(), ConfigError> {
        if self.remotes.len() > MAX_FLOOD_REMOTES {
            return Err(invalid(
                format!("{at}.remotes"),
                format!("at most {MAX_FLOOD_REMOTES} remote VTEPs"),
            ));
        }
        let mut remotes = HashSet::new();
        for (j, r) in self.remotes.iter().enumerate() {
            check_remote(&format!("{at}.remotes[{j}]"), *r, local)?;
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
        local: Option<Ipv4Addr>,
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
                (Some(dst), None) => check_remote(&format!("{at}.dst"), *dst, local)?,
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
