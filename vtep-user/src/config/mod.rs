//! The host configuration file: parsing and complete validation, before anything on the system
//! changes. Every error names the field it is about.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, Ipv4Addr},
    path::Path,
};

use serde::Deserialize;
use vtep_common::{
    maps::{MAX_DSTPORTS, MAX_FLOOD_PORTS, MAX_FLOOD_REMOTES, MAX_PORTS, MAX_VNIS},
    wire::{DEFAULT_SRCPORT_MAX, DEFAULT_SRCPORT_MIN, DEFAULT_TTL, DSTPORT_IANA, VNI_MAX},
};

use crate::mac::Mac;

/// Longest Linux interface name (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// One host's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Instance name: pins live in /sys/fs/bpf/vtep/NAME, state in /run/vtep/NAME.json.
    #[serde(default = "default_name")]
    pub name: String,
    /// FDB capacity (entries over all VNIs).
    #[serde(default = "default_fdb_size")]
    pub fdb_size: u32,
    pub underlay: Underlay,
    #[serde(default, rename = "vni")]
    pub vnis: Vec<Vni>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Underlay {
    /// Interface VXLAN packets arrive on and leave through.
    pub interface: String,
    /// Local VTEP address; default: the interface's first IPv4 address.
    pub local: Option<Ipv4Addr>,
    #[serde(default = "default_ttl")]
    pub ttl: u8,
    /// Outer UDP source port range, inclusive.
    #[serde(default = "default_srcport")]
    pub srcport: [u16; 2],
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vni {
    pub id: u32,
    #[serde(default = "default_dstport")]
    pub dstport: u16,
    /// Remote VTEPs that get this VNI's broadcast and unknown-unicast frames.
    #[serde(default)]
    pub remotes: Vec<Ipv4Addr>,
    /// An interface on the host itself, attached to this VNI (the vxlan device's address in
    /// `ip link add vxlan…` setups).
    pub host: Option<HostPort>,
    #[serde(default, rename = "workload")]
    pub workloads: Vec<Workload>,
    /// Existing host-side interfaces to adopt as ports.
    #[serde(default, rename = "port")]
    pub ports: Vec<AdoptedPort>,
    #[serde(default)]
    pub fdb: Vec<StaticFdb>,
    /// Learn remote MACs from decapsulated frames and the MACs behind adopted ports from their
    /// frames (the kernel's `learning`, on by default).
    #[serde(default = "default_learning")]
    pub learning: bool,
    /// Seconds a learned entry lives without traffic (the kernel's `ageing`, default 300).
    #[serde(default = "default_ageing")]
    pub ageing: u32,
    /// Most learned entries this VNI holds; further MACs are not learned (and counted as
    /// `learn_refused`). 0, the default, for no limit (the kernel's `maxaddress`).
    #[serde(default)]
    pub maxaddress: u32,
    /// Report unicast frames to unknown MACs (`vtep monitor`), as the kernel's `l2miss`.
    #[serde(default)]
    pub l2miss: bool,
    /// Report ARP requests for unknown addresses (with `proxy`), as the kernel's `l3miss`.
    #[serde(default)]
    pub l3miss: bool,
    /// Answer ARP requests from local ports for known addresses on the host, as the kernel's
    /// `proxy`. Known: `[[vni.neigh]]`, this VNI's workloads and host interface, ARP seen from
    /// remote workloads, `vtep neigh add`.
    #[serde(default)]
    pub proxy: bool,
    /// Static entries for the ARP proxy.
    #[serde(default)]
    pub neigh: Vec<StaticNeigh>,
    /// A multicast group (the kernel's `group`): broadcast and unknown unicast are sent to it
    /// in one copy instead of to `remotes`, and vtep joins it on the underlay to receive.
    pub group: Option<Ipv4Addr>,
    /// Outer TTL of packets to the group; 1 (the kernel's default for a group) keeps them on
    /// the underlay segment.
    #[serde(default = "default_group_ttl")]
    pub group_ttl: u8,
}

fn default_group_ttl() -> u8 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticNeigh {
    /// IPv4 (answered to ARP) or IPv6 (answered to neighbour solicitations).
    pub ip: IpAddr,
    pub mac: Mac,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostPort {
    /// Name of the host interface; its port end is NAME + "p". Default `vtep<id>`.
    pub interface: Option<String>,
    pub address: Option<Ipv4Net>,
    pub mac: Option<Mac>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Network namespace of the workload; created if it does not exist.
    pub netns: String,
    pub address: Option<Ipv4Net>,
    pub mac: Option<Mac>,
    /// Interface name inside the namespace.
    #[serde(default = "default_workload_ifname")]
    pub interface: String,
    /// Host-side end of the veth pair. Default `<netns>-h`.
    pub host_interface: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdoptedPort {
    pub interface: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticFdb {
    pub mac: Mac,
    /// Remote VTEP address...
    pub dst: Option<Ipv4Addr>,
    /// ...or a local port of this VNI (an adopted port or a workload's host interface).
    pub port: Option<String>,
}

/// An IPv4 address with prefix length, written `192.0.2.1/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Net {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for Ipv4Net {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not ADDRESS/PREFIX"))?;
        let addr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| format!("`{prefix}` is not a prefix length"))?;
        if prefix > 32 {
            return Err(format!("prefix length {prefix} is over 32"));
        }
        Ok(Self { addr, prefix })
    }
}

impl std::fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn default_name() -> String {
    "vtep".into()
}
fn default_fdb_size() -> u32 {
    vtep_common::maps::DEFAULT_FDB_SIZE
}
fn default_ttl() -> u8 {
    DEFAULT_TTL
}
fn default_srcport() -> [u16; 2] {
    [DEFAULT_SRCPORT_MIN, DEFAULT_SRCPORT_MAX]
}
fn default_dstport() -> u16 {
    DSTPORT_IANA
}

/// An address a station can have: not unspecified, loopback, multicast or broadcast.
pub fn is_station_address(ip: IpAddr) -> bool {
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    !(ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() || broadcast)
}

fn default_learning() -> bool {
    true
}

/// The kernel vxlan driver's default `ageing`.
pub const DEFAULT_AGEING: u32 = 300;
/// Longest `ageing` accepted: a day.
pub const MAX_AGEING: u32 = 86_400;

fn default_ageing() -> u32 {
    DEFAULT_AGEING
}
fn default_workload_ifname() -> String {
    "eth0".into()
}

impl Config {
    /// Reads and validates `path`. Fails with the first problem found, naming its field.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates a configuration text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let parse_error = |e: toml::de::Error| ConfigError::Parse {
            path: "config".into(),
            message: e.to_string().trim_end().to_string(),
        };
        let de = toml::Deserializer::parse(text).map_err(parse_error)?;
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            // Name the field the way validation errors do (`vni[0].workload[1].mac`), then say
            // where it is in the file.
            let field = e.path().to_string();
            let inner = e.into_inner();
            let line = inner
                .span()
                .map(|span| format!(" (line {})", text[..span.start].matches('\n').count() + 1))
                .unwrap_or_default();
            if field.is_empty() || field == "." {
                parse_error(inner)
            } else {
                invalid(field, format!("{}{line}", inner.message()))
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks everything that can be checked without looking at the system.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.name.is_empty()
            || self.name.len() > 64
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid("name", "use 1 to 64 of [A-Za-z0-9_-]"));
        }
        if self.fdb_size == 0 || self.fdb_size > 16_777_216 {
            return Err(invalid("fdb_size", "must be within 1..=16777216"));
        }
        check_ifname("underlay.interface", &self.underlay.interface)?;
        if let Some(local) = self.underlay.local
            && (local.is_unspecified() || local.is_multicast() || local.is_broadcast())
        {
            return Err(invalid(
                "underlay.local",
                format!("{local} is not a unicast address"),
            ));
        }
        if self.underlay.ttl == 0 {
            return Err(invalid("underlay.ttl", "must be within 1..=255"));
        }
        let [lo, hi] = self.underlay.srcport;
        if lo == 0 || lo > hi {
            return Err(invalid(
                "underlay.srcport",
                format!("[{lo}, {hi}] is not a range within 1..=65535"),
            ));
        }
        if self.vnis.len() > MAX_VNIS as usize {
            return Err(invalid("vni", format!("at most {MAX_VNIS} VNIs")));
        }

        let mut vni_ids = HashSet::new();
        let mut dstports = HashSet::new();
        let mut ifnames: HashMap<String, String> = HashMap::new();
        let mut netns_names = HashSet::new();
        let mut n_ports = 0usize;
        let mut claim = |field: &str, name: &str| -> Result<(), ConfigError> {
            check_ifname(field, name)?;
            if let Some(first) = ifnames.insert(name.to_string(), field.to_string()) {
                return Err(invalid(
                    field,
                    format!("interface `{name}` is already used by {first}"),
                ));
            }
            Ok(())
        };
        claim("underlay.interface", &self.underlay.interface)?;

        for (i, vni) in self.vnis.iter().enumerate() {
            let at = format!("vni[{i}]");
            check_vni(&format!("{at}.id"), vni.id)?;
            if !vni_ids.insert(vni.id) {
                return Err(invalid(
                    format!("{at}.id"),
                    format!("VNI {} is configured twice", vni.id),
                ));
            }
            if vni.dstport == 0 {
                return Err(invalid(format!("{at}.dstport"), "must be within 1..=65535"));
            }
            if let Some(group) = vni.group {
                if !group.is_multicast() {
                    return Err(invalid(
                        format!("{at}.group"),
                        format!("{group} is not a multicast address (224.0.0.0/4)"),
                    ));
                }
                if !vni.remotes.is_empty() {
                    return Err(invalid(
                        format!("{at}.group"),
                        "set either `group` or `remotes`, not both (as the kernel's group and \
                         remote)",
                    ));
                }
                if vni.group_ttl == 0 {
                    return Err(invalid(format!("{at}.group_ttl"), "must be within 1..=255"));
                }
            }
            if !(1..=MAX_AGEING).contains(&vni.ageing) {
                return Err(invalid(
                    format!("{at}.ageing"),
                    format!("must be within 1..={MAX_AGEING} seconds"),
                ));
            }
            if vni.maxaddress > self.fdb_size {
                return Err(invalid(
                    format!("{at}.maxaddress"),
                    format!(
                        "{} is more than the FDB holds (fdb_size = {})",
                        vni.maxaddress, self.fdb_size
                    ),
                ));
            }
            dstports.insert(vni.dstport);
            if dstports.len() > MAX_DSTPORTS {
                return Err(invalid(
                    format!("{at}.dstport"),
                    format!("at most {MAX_DSTPORTS} distinct dstports"),
                ));
            }
            if vni.remotes.len() > MAX_FLOOD_REMOTES {
                return Err(invalid(
                    format!("{at}.remotes"),
                    format!("at most {MAX_FLOOD_REMOTES} remote VTEPs"),
                ));
            }
            let mut remotes = HashSet::new();
            for (j, r) in vni.remotes.iter().enumerate() {
                check_remote(&format!("{at}.remotes[{j}]"), *r, self.underlay.local)?;
                if !remotes.insert(*r) {
                    return Err(invalid(
                        format!("{at}.remotes[{j}]"),
                        format!("{r} is listed twice"),
                    ));
                }
            }

            let mut local_ports = Vec::new();
            if let Some(host) = &vni.host {
                let name = host.interface_name(vni.id);
                claim(&format!("{at}.host.interface"), &name)?;
                if name.len() + 1 > IFNAME_MAX {
                    return Err(invalid(
                        format!("{at}.host.interface"),
                        format!(
                            "`{name}` leaves no room for its port `{name}p` (15 characters at most)"
                        ),
                    ));
                }
                claim(&format!("{at}.host.interface"), &format!("{name}p"))?;
                check_mac(&format!("{at}.host.mac"), host.mac)?;
                local_ports.push(format!("{name}p"));
            }
            for (j, w) in vni.workloads.iter().enumerate() {
                let wat = format!("{at}.workload[{j}]");
                check_netns(&format!("{wat}.netns"), &w.netns)?;
                if !netns_names.insert(w.netns.clone()) {
                    return Err(invalid(
                        format!("{wat}.netns"),
                        format!("namespace `{}` holds another workload already", w.netns),
                    ));
                }
                check_ifname(&format!("{wat}.interface"), &w.interface)?;
                let host_if = w.host_interface_name();
                claim(&format!("{wat}.host_interface"), &host_if)?;
                check_mac(&format!("{wat}.mac"), w.mac)?;
                local_ports.push(host_if);
            }
            for (j, p) in vni.ports.iter().enumerate() {
                claim(&format!("{at}.port[{j}].interface"), &p.interface)?;
                local_ports.push(p.interface.clone());
            }
            if local_ports.len() > MAX_FLOOD_PORTS {
                return Err(invalid(
                    at,
                    format!("at most {MAX_FLOOD_PORTS} local ports per VNI"),
                ));
            }
            n_ports += local_ports.len();

            let mut macs = HashSet::new();
            for (j, f) in vni.fdb.iter().enumerate() {
                let fat = format!("{at}.fdb[{j}]");
                check_mac(&format!("{fat}.mac"), Some(f.mac))?;
                if !macs.insert(f.mac) {
                    return Err(invalid(
                        format!("{fat}.mac"),
                        format!("{} has two entries in VNI {}", f.mac, vni.id),
                    ));
                }
                match (&f.dst, &f.port) {
                    (Some(dst), None) => {
                        check_remote(&format!("{fat}.dst"), *dst, self.underlay.local)?
                    }
                    (None, Some(port)) => {
                        if !local_ports.contains(port) {
                            return Err(invalid(
                                format!("{fat}.port"),
                                format!("`{port}` is not a port of VNI {}", vni.id),
                            ));
                        }
                    }
                    _ => return Err(invalid(fat, "set exactly one of `dst` and `port`")),
                }
            }
        }
        for (i, vni) in self.vnis.iter().enumerate() {
            let mut ips = HashSet::new();
            for (j, n) in vni.neigh.iter().enumerate() {
                let at = format!("vni[{i}].neigh[{j}]");
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
                        format!("{} has two entries in VNI {}", n.ip, vni.id),
                    ));
                }
            }
        }
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
        if n_ports > MAX_PORTS as usize {
            return Err(invalid(
                "vni",
                format!("at most {MAX_PORTS} local ports in all"),
            ));
        }
        Ok(())
    }

    /// The distinct VXLAN UDP ports of all VNIs.
    pub fn dstports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self.vnis.iter().map(|v| v.dstport).collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }
}

impl HostPort {
    pub fn interface_name(&self, vni: u32) -> String {
        self.interface
            .clone()
            .unwrap_or_else(|| format!("vtep{vni}"))
    }
}

impl Workload {
    pub fn host_interface_name(&self) -> String {
        self.host_interface
            .clone()
            .unwrap_or_else(|| format!("{}-h", self.netns))
    }
}

fn check_ifname(field: &str, name: &str) -> Result<(), ConfigError> {
    if name.is_empty() || name.len() > IFNAME_MAX {
        return Err(invalid(
            field,
            format!("`{name}` must be 1 to {IFNAME_MAX} characters"),
        ));
    }
    if name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err(invalid(
            field,
            format!("`{name}` is not a valid interface name"),
        ));
    }
    Ok(())
}

fn check_netns(field: &str, name: &str) -> Result<(), ConfigError> {
    if name.is_empty()
        || name.len() > 64
        || name.starts_with('.')
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(invalid(
            field,
            format!("`{name}` is not a valid namespace name (1 to 64 of [A-Za-z0-9_.-])"),
        ));
    }
    Ok(())
}

/// A station MAC: an FDB key or an interface's own address.
pub fn check_mac(field: &str, mac: Option<Mac>) -> Result<(), ConfigError> {
    match mac {
        Some(m) if m.is_group() => Err(invalid(field, format!("{m} is a group address"))),
        Some(m) if m.is_zero() => Err(invalid(field, "00:00:00:00:00:00 is not a station address")),
        _ => Ok(()),
    }
}

/// A VXLAN network identifier: 24 bits, and 0 is not one.
pub fn check_vni(field: &str, id: u32) -> Result<(), ConfigError> {
    if id == 0 || id > VNI_MAX {
        return Err(invalid(field, format!("{id} is outside 1..=16777215")));
    }
    Ok(())
}

/// A remote VTEP: a unicast address (the rule the datapath applies to learned sources,
/// [`vtep_common::wire::is_unicast_vtep_ipv4`]) other than our own (`local`, when known), or the
/// datapath would send VXLAN to nobody or to itself.
pub fn check_remote(field: &str, ip: Ipv4Addr, local: Option<Ipv4Addr>) -> Result<(), ConfigError> {
    if !vtep_common::wire::is_unicast_vtep_ipv4(ip.octets()) {
        return Err(invalid(field, format!("{ip} is not a unicast address")));
    }
    if Some(ip) == local {
        return Err(invalid(field, format!("{ip} is the local VTEP address")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "a"
[underlay]
interface = "eth0"
[[vni]]
id = 100
remotes = ["198.18.0.2"]
[vni.host]
address = "192.0.2.1/24"
[[vni.workload]]
netns = "w1"
address = "192.0.2.11/24"
mac = "02:00:00:00:00:01"
[[vni.fdb]]
mac = "02:00:00:00:00:02"
dst = "198.18.0.2"
"#;

    /// The error `text` gives, as printed.
    fn error(text: &str) -> String {
        Config::parse(text)
            .expect_err("config accepted")
            .to_string()
    }

    #[test]
    fn accepts_a_full_config_with_defaults() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.vnis[0].dstport, 4789);
        assert_eq!(c.underlay.ttl, 64);
        assert_eq!(c.underlay.srcport, [32768, 60999]);
        assert_eq!(
            c.vnis[0].host.as_ref().unwrap().interface_name(100),
            "vtep100"
        );
        assert_eq!(c.vnis[0].workloads[0].host_interface_name(), "w1-h");
        assert_eq!(c.vnis[0].workloads[0].interface, "eth0");
    }

    #[test]
    fn the_examples_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                n += 1;
            }
        }
        assert!(n >= 4, "examples missing");
    }

    #[test]
    fn unknown_key_is_named() {
        let e = error(&GOOD.replace("remotes =", "remote_vteps ="));
        assert!(e.contains("unknown field `remote_vteps`"), "{e}");
    }

    #[test]
    fn vni_outside_24_bits_is_refused() {
        assert!(error(&GOOD.replace("id = 100", "id = 0")).starts_with("vni[0].id: 0 is outside"));
        let e = error(&GOOD.replace("id = 100", "id = 16777216"));
        assert!(
            e.starts_with("vni[0].id: 16777216 is outside 1..=16777215"),
            "{e}"
        );
        assert!(Config::parse(&GOOD.replace("id = 100", "id = 16777215")).is_ok());
    }

    #[test]
    fn duplicate_vni_is_refused() {
        let text = format!("{GOOD}\n[[vni]]\nid = 100\n");
        assert!(error(&text).starts_with("vni[1].id: VNI 100 is configured twice"));
    }

    #[test]
    fn duplicate_port_is_refused() {
        let text = format!("{GOOD}\n[[vni]]\nid = 200\n[[vni.port]]\ninterface = \"w1-h\"\n");
        let e = error(&text);
        assert!(
            e.starts_with("vni[1].port[0].interface: interface `w1-h` is already used"),
            "{e}"
        );
        let text = format!("{GOOD}\n[[vni]]\nid = 200\n[[vni.port]]\ninterface = \"eth0\"\n");
        assert!(error(&text).contains("already used by underlay.interface"));
    }

    #[test]
    fn bad_addresses_are_refused() {
        let e = error(&GOOD.replace("192.0.2.11/24", "192.0.2.300/24"));
        assert!(e.contains("`192.0.2.300` is not an IPv4 address"), "{e}");
        assert!(
            error(&GOOD.replace("192.0.2.11/24", "192.0.2.11")).contains("is not ADDRESS/PREFIX")
        );
        assert!(error(&GOOD.replace("192.0.2.11/24", "192.0.2.11/33")).contains("over 32"));
        let e = error(&GOOD.replace("remotes = [\"198.18.0.2\"]", "remotes = [\"224.0.0.1\"]"));
        assert!(
            e.starts_with("vni[0].remotes[0]: 224.0.0.1 is not a unicast address"),
            "{e}"
        );
    }

    #[test]
    fn bad_macs_are_refused() {
        let e = error(&GOOD.replace("02:00:00:00:00:01", "02:00:00:00:01"));
        assert!(e.contains("is not a MAC address"), "{e}");
        let e = error(&GOOD.replace("02:00:00:00:00:02", "01:00:5e:00:00:01"));
        assert!(
            e.starts_with("vni[0].fdb[0].mac: 01:00:5e:00:00:01 is a group address"),
            "{e}"
        );
    }

    #[test]
    fn fdb_dst_is_checked_like_a_remote() {
        let e = error(&GOOD.replace("dst = \"198.18.0.2\"", "dst = \"127.0.0.1\""));
        assert!(
            e.starts_with("vni[0].fdb[0].dst: 127.0.0.1 is not a unicast address"),
            "{e}"
        );
        let with_local = GOOD.replace(
            "interface = \"eth0\"",
            "interface = \"eth0\"\nlocal = \"198.18.0.2\"",
        );
        let e = error(&with_local.replace("remotes = [\"198.18.0.2\"]", "remotes = []"));
        assert!(
            e.starts_with("vni[0].fdb[0].dst: 198.18.0.2 is the local VTEP address"),
            "{e}"
        );
    }

    /// Bug: userspace and the datapath disagreed on what a remote VTEP may be. The datapath never
    /// learned a source in 240.0.0.0/4, but `check_remote` (the config and `vtep fdb add`)
    /// accepted 240.0.0.1. Both now use `wire::is_unicast_vtep_ipv4`.
    #[test]
    fn reserved_class_e_remote_is_refused_as_the_datapath_refuses_it() {
        let e = error(&GOOD.replace("remotes = [\"198.18.0.2\"]", "remotes = [\"240.0.0.1\"]"));
        assert!(
            e.starts_with("vni[0].remotes[0]: 240.0.0.1 is not a unicast address"),
            "{e}"
        );
        assert!(!vtep_common::wire::is_unicast_vtep_ipv4([240, 0, 0, 1]));
        assert!(vtep_common::wire::is_unicast_vtep_ipv4([198, 18, 0, 2]));
    }

    #[test]
    fn fdb_entry_needs_one_target() {
        let e = error(&GOOD.replace("dst = \"198.18.0.2\"", "port = \"nope\""));
        assert!(
            e.starts_with("vni[0].fdb[0].port: `nope` is not a port of VNI 100"),
            "{e}"
        );
        let e = error(&GOOD.replace("dst = \"198.18.0.2\"", ""));
        assert!(e.starts_with("vni[0].fdb[0]: set exactly one of"), "{e}");
    }

    #[test]
    fn long_interface_names_are_refused() {
        let e = error(&GOOD.replace("netns = \"w1\"", "netns = \"a-very-long-name\""));
        assert!(e.starts_with("vni[0].workload[0].host_interface"), "{e}");
        let e = error(&GOOD.replace("[vni.host]", "[vni.host]\ninterface = \"fifteen-chars-x\""));
        assert!(e.starts_with("vni[0].host.interface"), "{e}");
    }

    #[test]
    fn fdb_size_holds_the_configured_entries() {
        // host interface + workload + static entry
        assert!(Config::parse(&format!("fdb_size = 3\n{GOOD}")).is_ok());
        let e = error(&format!("fdb_size = 2\n{GOOD}"));
        assert!(
            e.starts_with("fdb_size: 2 is less than the 3 FDB entries"),
            "{e}"
        );
    }

    #[test]
    fn parse_errors_name_the_field_and_line() {
        // GOOD starts with an empty line: the workload address is on line 12.
        let e = error(&GOOD.replace("192.0.2.11/24", "192.0.2.300/24"));
        assert!(
            e.starts_with(
                "vni[0].workload[0].address: `192.0.2.300` is not an IPv4 address (line 12)"
            ),
            "{e}"
        );
        let e = error(&GOOD.replace("id = 100", "id = \"x\""));
        assert!(e.starts_with("vni[0].id: invalid type"), "{e}");
    }

    #[test]
    fn srcport_range_is_checked() {
        let e = error(&GOOD.replace(
            "interface = \"eth0\"",
            "interface = \"eth0\"\nsrcport = [5000, 4000]",
        ));
        assert!(e.starts_with("underlay.srcport"), "{e}");
    }
}
