//! Checks of single values, shared by the config's validation and the command line (`vtep fdb
//! add` refuses what the config refuses, with the same words). Each fails with a
//! [`ConfigError::Invalid`] naming `field`.

use std::net::{IpAddr, Ipv4Addr};

use vtep_common::wire::VNI_MAX;

use crate::{
    config::{ConfigError, invalid},
    mac::Mac,
};

/// Longest Linux interface name (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// An address a station can have: not unspecified, loopback, multicast or broadcast.
pub fn is_station_address(ip: IpAddr) -> bool {
    not_a_station(ip).is_none()
}

/// What kind of address `ip` is when a station cannot have it, `None` when it can.
fn not_a_station(ip: IpAddr) -> Option<&'static str> {
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if matches!(ip, IpAddr::V4(v4) if v4.is_broadcast()) {
        Some("broadcast")
    } else {
        None
    }
}

/// An interface address vtep gives a host interface or a workload: one a station can have
/// (the kernel refuses the others with a bare EINVAL, or makes them useless).
pub fn check_interface_address(field: &str, ip: Ipv4Addr) -> Result<(), ConfigError> {
    match not_a_station(ip.into()) {
        Some(kind) => Err(invalid(
            field,
            format!("{ip} is a {kind} address, not one an interface can have"),
        )),
        None => Ok(()),
    }
}

/// The local VTEP address: one remote VTEPs can send VXLAN to (the rule the datapath applies
/// to remote VTEPs, [`vtep_common::wire::is_unicast_vtep`]).
pub fn check_local(field: &str, ip: IpAddr) -> Result<(), ConfigError> {
    match not_a_vtep(ip) {
        None => Ok(()),
        Some(kind) => Err(invalid(
            field,
            format!("{ip} is not a unicast address other VTEPs can reach ({kind})"),
        )),
    }
}

/// What kind of address `ip` is when it cannot be a VTEP's, `None` when it can: the datapath's
/// rule ([`vtep_common::wire::is_unicast_vtep`]).
fn not_a_vtep(ip: IpAddr) -> Option<&'static str> {
    let vtep = vtep_common::maps::vtep_addr(ip);
    if vtep_common::wire::is_unicast_vtep(&vtep, ip.is_ipv6()) {
        return None;
    }
    if let IpAddr::V6(v6) = ip
        && v6.is_unicast_link_local()
    {
        return Some("link-local");
    }
    Some(not_a_station(ip).unwrap_or(match ip {
        IpAddr::V4(v4) if v4.octets()[0] == 0 => "\"this network\" (0.0.0.0/8)",
        IpAddr::V4(_) => "reserved (240.0.0.0/4)",
        IpAddr::V6(_) => "IPv4-mapped or -compatible",
    }))
}

/// Which IP version an address is, for the one-family-per-instance rule.
pub fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv6() { "IPv6" } else { "IPv4" }
}

/// An underlay address (a remote VTEP, a group, an accepted prefix) of the instance's family:
/// `ipv6` when its underlay is IPv6 (see `Config::underlay_ipv6`).
pub fn check_family(field: &str, ip: IpAddr, ipv6: bool) -> Result<(), ConfigError> {
    if ip.is_ipv6() == ipv6 {
        return Ok(());
    }
    Err(invalid(
        field,
        format!(
            "{ip} is an {} address and this instance's underlay is {}: one address family per \
             instance (the family of underlay.local)",
            family(ip),
            if ipv6 { "IPv6" } else { "IPv4" },
        ),
    ))
}

/// An interface name Linux accepts.
pub fn check_ifname(field: &str, name: &str) -> Result<(), ConfigError> {
    if name.is_empty() || name.len() > IFNAME_MAX {
        return Err(invalid(
            field,
            format!("`{name}` must be 1 to {IFNAME_MAX} characters"),
        ));
    }
    // `%` makes the kernel pick a name from a pattern (`eth%d`), not take this one.
    if name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c == '%' || c.is_whitespace() || c.is_control())
    {
        return Err(invalid(
            field,
            format!("`{name}` is not a valid interface name"),
        ));
    }
    Ok(())
}

/// Interfaces every new network namespace has: the loopback, and the fallback devices of the
/// tunnel modules (made in each namespace while the module is loaded).
const IN_EVERY_NAMESPACE: [&str; 10] = [
    "lo", "tunl0", "sit0", "gre0", "gretap0", "erspan0", "ip_vti0", "ip6_vti0", "ip6tnl0",
    "ip6gre0",
];

/// The name of an interface vtep creates inside a workload's namespace: a valid name that is
/// not one every namespace has already.
pub fn check_workload_ifname(field: &str, name: &str) -> Result<(), ConfigError> {
    check_ifname(field, name)?;
    if name == "lo" {
        return Err(invalid(
            field,
            "`lo` is the loopback, which every network namespace has",
        ));
    }
    if IN_EVERY_NAMESPACE.contains(&name) {
        return Err(invalid(
            field,
            format!(
                "`{name}` is a tunnel module's fallback device, which every network namespace has while the module is loaded"
            ),
        ));
    }
    Ok(())
}

/// An instance name: it names files and pin directories (`/run/vtep/NAME.json`,
/// `/sys/fs/bpf/vtep/NAME`), so no dots or slashes.
pub fn check_instance_name(field: &str, name: &str) -> Result<(), ConfigError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid(field, "use 1 to 64 of [A-Za-z0-9_-]"));
    }
    Ok(())
}

/// A namespace name `ip netns` accepts, as a file under /run/netns.
pub fn check_netns(field: &str, name: &str) -> Result<(), ConfigError> {
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
/// [`vtep_common::wire::is_unicast_vtep`]) of the instance's family (`ipv6`) other than our
/// own (`local`, when known), or the datapath would send VXLAN to nobody or to itself.
pub fn check_remote(
    field: &str,
    ip: IpAddr,
    local: Option<IpAddr>,
    ipv6: bool,
) -> Result<(), ConfigError> {
    if let Some(kind) = not_a_vtep(ip) {
        return Err(invalid(
            field,
            format!("{ip} is not a unicast address ({kind})"),
        ));
    }
    check_family(field, ip, ipv6)?;
    if Some(ip) == local {
        return Err(invalid(field, format!("{ip} is the local VTEP address")));
    }
    Ok(())
}
