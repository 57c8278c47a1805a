//! The host configuration file: its schema (this module), complete validation before anything on
//! the system changes ([`validate`]), and the field checks the command line shares with it
//! ([`fields`]). Every error names the field it is about, and a parse error its line.

pub mod fields;
pub mod metrics;
pub mod store;
mod validate;

use std::{
    net::{IpAddr, Ipv4Addr},
    path::Path,
};

use serde::Deserialize;
use vtep_common::wire::{DEFAULT_SRCPORT_MAX, DEFAULT_SRCPORT_MIN, DEFAULT_TTL, DSTPORT_IANA};

use crate::mac::Mac;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

/// The error for `field`, which is wrong for `reason`.
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
    /// Routes through the overlay (scenario S4: a far workload subnet via the far host's
    /// address in a VNI); added to the host's routing table, with IPv4 forwarding on.
    #[serde(default, rename = "route")]
    pub routes: Vec<Route>,
    /// The etcd cluster stations are published in and programmed from (scenario S5).
    pub store: Option<store::Store>,
    /// Where `vtep up` serves its counters to Prometheus; nothing listens without it.
    pub metrics: Option<metrics::Metrics>,
}

/// `[[route]]`: `to` (a prefix) via `via`, an address in the subnet of one of the VNIs' host
/// interfaces, like `ip route add TO via VIA`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub to: Ipv4Net,
    pub via: Ipv4Addr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Underlay {
    /// Interface VXLAN packets arrive on and leave through.
    pub interface: String,
    /// Local VTEP address, IPv4 or IPv6: its family is the underlay's (see
    /// [`Config::underlay_ipv6`]). Default: the interface's first address of that family.
    pub local: Option<IpAddr>,
    #[serde(default = "default_ttl")]
    pub ttl: u8,
    /// Outer UDP source port range, inclusive.
    #[serde(default = "default_srcport")]
    pub srcport: [u16; 2],
    /// Outer sources VXLAN is accepted from: `"any"` (the default, as the kernel), `"known"`
    /// (the VTEPs vtep knows), or a list of prefixes, which may include `"known"`. Read
    /// it through [`Underlay::accept_rule`].
    #[serde(default)]
    pub accept: Option<AcceptList>,
    /// Most remote VTEPs kept resolved at once (each a managed neighbour entry the kernel keeps
    /// probing); further ones are refused and counted.
    #[serde(default = "default_max_remotes")]
    pub max_remotes: u32,
    /// Whether an XDP program decapsulates known unicast in front of the TC program.
    #[serde(default)]
    pub xdp: XdpSetting,
    /// Over IPv6, send VXLAN with a zero UDP checksum (the kernel's `udp6zerocsumtx`), for
    /// peers that accept it (vtep, or the kernel driver with `udp6zerocsumrx`). Off by default:
    /// IPv6 requires the checksum unless both ends agree (RFC 6935).
    #[serde(default)]
    pub udp6_zero_csum_tx: bool,
}

/// `underlay.xdp`: where the XDP program runs, if anywhere. TC stays the complete path in
/// every mode; XDP only takes the frames it can finish alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpSetting {
    /// TC only.
    #[default]
    Off,
    /// In the driver; `vtep up` refuses a driver without native XDP.
    Native,
    /// In the kernel's generic hook, after the skb is built (any driver; for testing).
    Generic,
    /// Native where the driver has it and is not a veth, TC only otherwise.
    Auto,
}

/// The entries of `underlay.accept` as written: one string or a list of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptList(pub Vec<String>);

impl<'de> Deserialize<'de> for AcceptList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        match OneOrMany::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "expected \"any\", \"known\" or a list of prefixes and \"known\"",
            )
        })? {
            OneOrMany::One(s) => Ok(Self(vec![s])),
            OneOrMany::Many(v) => Ok(Self(v)),
        }
    }
}

/// Which outer sources the datapath accepts VXLAN from, when not every one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcceptRule {
    /// The remote VTEPs vtep knows: in a flood list or the destination of a static or runtime
    /// FDB entry.
    pub known: bool,
    /// Sources within these prefixes (host bits zero), of the underlay's family.
    pub prefixes: Vec<IpNet>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vni {
    pub id: u32,
    #[serde(default = "default_dstport")]
    pub dstport: u16,
    /// Remote VTEPs that get this VNI's broadcast and unknown-unicast frames.
    #[serde(default)]
    pub remotes: Vec<IpAddr>,
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
    /// Static entries for the ARP/ND proxy (`[[vni.neigh]]`, iproute2's word).
    #[serde(default, rename = "neigh")]
    pub proxy_entries: Vec<StaticProxyEntry>,
    /// A multicast group (the kernel's `group`): broadcast and unknown unicast are sent to it
    /// in one copy instead of to `remotes`, and vtep joins it on the underlay to receive.
    pub group: Option<IpAddr>,
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
pub struct StaticProxyEntry {
    /// IPv4 (answered to ARP) or IPv6 (answered to neighbour solicitations).
    pub ip: IpAddr,
    pub mac: Mac,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostPort {
    /// Name of the host interface; its port end is NAME + "p". Default `vtep<id>`.
    pub interface: Option<String>,
    pub address: Option<Ipv4Net>,
    pub mac: Option<Mac>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
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
    /// The workload's default route goes via this address (the host interface of its VNI, as
    /// the gateway of a routed segment); it must be in `address`'s subnet.
    pub gateway: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdoptedPort {
    pub interface: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticFdb {
    pub mac: Mac,
    /// Remote VTEP address...
    pub dst: Option<IpAddr>,
    /// ...or a local port of this VNI (an adopted port or a workload's host interface).
    pub port: Option<String>,
}

/// An IPv4 address with prefix length, written `192.0.2.1/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Net {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Net {
    /// The address with the host bits cleared.
    pub fn network(&self) -> Ipv4Addr {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0);
        Ipv4Addr::from(u32::from(self.addr) & mask)
    }

    /// Whether `ip` is in this subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        Self {
            addr: ip,
            prefix: self.prefix,
        }
        .network()
            == self.network()
    }
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

/// An IPv4 or IPv6 prefix, written `192.0.2.0/24` or `2001:db8::/32`: an underlay prefix
/// (`underlay.accept`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    /// The address with the host bits cleared.
    pub fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(v4) => IpAddr::V4(
                Ipv4Net {
                    addr: v4,
                    prefix: self.prefix,
                }
                .network(),
            ),
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        }
    }
}

impl std::str::FromStr for IpNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not ADDRESS/PREFIX"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IP address"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| format!("`{prefix}` is not a prefix length"))?;
        let max = if addr.is_ipv6() { 128 } else { 32 };
        if prefix > max {
            return Err(format!("prefix length {prefix} is over {max}"));
        }
        Ok(Self { addr, prefix })
    }
}

impl std::fmt::Display for IpNet {
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
/// Default `underlay.max_remotes`: half the kernel's default neighbour table limit
/// (`net.ipv4.neigh.default.gc_thresh3`, 1024, shared by every namespace), so spoofed sources
/// can never fill the table the host's own traffic needs.
pub const DEFAULT_MAX_REMOTES: u32 = 512;

fn default_max_remotes() -> u32 {
    DEFAULT_MAX_REMOTES
}
fn default_dstport() -> u16 {
    DSTPORT_IANA
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

/// The most a config file may hold. A real config is a few kilobytes; the bound keeps `vtep check
/// -c /dev/zero` or a runaway generated file from taking the machine's memory.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// The most of one line a parse error quotes back.
const MAX_QUOTED_LINE: usize = 160;

/// The text of config file `path`; fails when it cannot be read, is larger than
/// [`MAX_CONFIG_BYTES`] or is not UTF-8.
fn read_bounded(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read as _;
    let read_error = |source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError::Parse {
            path: path.display().to_string(),
            message: format!(
                "larger than {} KiB: not a vtep config",
                MAX_CONFIG_BYTES / 1024
            ),
        });
    }
    String::from_utf8(bytes).map_err(|_| ConfigError::Parse {
        path: path.display().to_string(),
        message: "not UTF-8 text".into(),
    })
}

/// `message` with every line cut to [`MAX_QUOTED_LINE`] characters: parse errors quote the
/// offending line, which in a generated file can be megabytes long.
fn shorten_lines(message: &str) -> String {
    message
        .lines()
        .map(|line| match line.char_indices().nth(MAX_QUOTED_LINE) {
            Some((at, _)) => format!("{}…", &line[..at]),
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl Config {
    /// Reads and validates `path`. Fails with the first problem found, naming its field.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with_text(path).map(|(config, _)| config)
    }

    /// [`Config::load`], also returning the text read: what a running instance keeps to
    /// compare a reloaded config with.
    pub fn load_with_text(path: &Path) -> Result<(Self, String), ConfigError> {
        let text = read_bounded(path)?;
        let config = Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })?;
        Ok((config, text))
    }

    /// Parses and validates a configuration text. Fails with the first problem found, naming its
    /// field (and its line, for what the schema refuses).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let parse_error = |e: toml::de::Error| ConfigError::Parse {
            path: "config".into(),
            message: shorten_lines(e.to_string().trim_end()),
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

    /// The distinct VXLAN UDP ports of all VNIs.
    pub fn dstports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self.vnis.iter().map(|v| v.dstport).collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }
}

impl Underlay {
    /// The sources `accept` allows; `None` for every source. Only for a validated config.
    pub fn accept_rule(&self) -> Option<AcceptRule> {
        let list = self.accept.as_ref()?;
        validate::accept_rule(&list.0).expect("validated")
    }
}

impl HostPort {
    /// The host interface's name: `interface`, or `vtep<vni>` for VNI `vni`.
    pub fn interface_name(&self, vni: u32) -> String {
        self.interface
            .clone()
            .unwrap_or_else(|| format!("vtep{vni}"))
    }

    /// The port end of the host interface's veth, the interface name + "p".
    pub fn port_name(&self, vni: u32) -> String {
        format!("{}p", self.interface_name(vni))
    }
}

impl Workload {
    /// The host end of the workload's veth: `host_interface`, or `<netns>-h`.
    pub fn host_interface_name(&self) -> String {
        self.host_interface
            .clone()
            .unwrap_or_else(|| format!("{}-h", self.netns))
    }
}

#[cfg(test)]
mod tests;
