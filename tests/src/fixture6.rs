//! The `BPF_PROG_TEST_RUN` fixture on an IPv6 underlay: a [`Fixture`] whose `ul0` also has
//! IPv6 on (2001:db8::1/64, no duplicate address detection) and a permanent neighbour
//! 2001:db8::2 at NEIGH_MAC, so an IPv6 `bpf_fib_lookup` returns known MACs, and whose ports
//! forward IPv6 (the encap path's input lookup on a port is refused otherwise); the datapath
//! loaded with `DP_F_IPV6` and our VTEP address 2001:db8::1; and the VXLAN-over-IPv6 packets the
//! remote VTEP sends us. Only `ul0` sends anything of its own (IPv6 stays off elsewhere).

use std::net::Ipv6Addr;

use vtep::datapath::{
    loader::Datapath,
    tables::{Target, VniTable},
};
use vtep_common::{
    maps::{DP_F_IPV6, DP_F_UDP6_ZERO_CSUM_TX, DatapathConfig},
    wire::{DEFAULT_SRCPORT_MAX, DEFAULT_SRCPORT_MIN},
};
use vtep_lab::{ip_in, sysctl};

use crate::{
    fixture::{
        Fixture, NEIGH_MAC, PORT_IANA, PORT_LEGACY, REMOTE_WL_MAC, TTL, UL_MAC, UNRESOLVED_WL_MAC,
        UNROUTABLE_WL_MAC, VNI, load,
    },
    lab::must,
    packet::{Csum6, Outer6, VXLAN_I, VXLAN_LEN, vxlan_header},
};

/// This host's VTEP address (on `ul0`) and the remote VTEP (a permanent neighbour on `ul0`).
pub const LOCAL_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub const REMOTE_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
/// Another VTEP on the underlay subnet, without a neighbour entry.
pub const OTHER_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 3);
/// On the underlay subnet but without a neighbour entry: the fib lookup answers NO_NEIGH.
pub const UNRESOLVED_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7);
/// Not routable from the namespace (no route outside 2001:db8::/64).
pub const UNROUTABLE_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 9);

/// A fixture (namespace `vtdp6<pid>-<n>`) with IPv6 on its underlay as the module says.
pub fn fixture6() -> Fixture {
    fixture6_named("vtdp6")
}

/// As [`fixture6`], in a namespace named `<prefix><pid>-<n>`.
pub fn fixture6_named(prefix: &str) -> Fixture {
    let fx = Fixture::named(prefix);
    let ns = fx.ns().to_string();
    let ipn = |args: &[&str]| must(ip_in(&ns, args));
    must(sysctl(&ns, &["net.ipv6.conf.ul0.disable_ipv6=0"]));
    ipn(&["addr", "add", "2001:db8::1/64", "dev", "ul0", "nodad"]);
    let neigh = NEIGH_MAC.to_string();
    ipn(&[
        "neigh",
        "add",
        "2001:db8::2",
        "lladdr",
        &neigh,
        "dev",
        "ul0",
        "nud",
        "permanent",
    ]);
    for port in ["port0", "port1"] {
        must(sysctl(
            &ns,
            &[&format!("net.ipv6.conf.{port}.forwarding=1")],
        ));
    }
    fx
}

/// The instance configuration on the IPv6 underlay: we are LOCAL_IP6, VXLAN arrives on 4789 and
/// 8472, UDP checksums are sent (or zero, with `zero_csum`).
pub fn config6(zero_csum: bool) -> DatapathConfig {
    let zero = if zero_csum { DP_F_UDP6_ZERO_CSUM_TX } else { 0 };
    DatapathConfig {
        local_ip: LOCAL_IP6.octets(),
        srcport_min: DEFAULT_SRCPORT_MIN,
        srcport_max: DEFAULT_SRCPORT_MAX,
        dstports: [
            PORT_IANA.to_be_bytes(),
            PORT_LEGACY.to_be_bytes(),
            [0, 0],
            [0, 0],
        ],
        flags: DP_F_IPV6 | zero,
    }
}

/// The fixture's table for VNI `id` on `dstport` with hop limit `ttl` ([`Fixture::table`]),
/// with IPv6 VTEPs: REMOTE_IP6 in the flood list and behind REMOTE_WL, UNROUTABLE_IP6 behind
/// UNROUTABLE_WL, UNRESOLVED_IP6 behind UNRESOLVED_WL.
pub fn table6(fx: &Fixture, id: u32, dstport: u16, ttl: u8) -> VniTable {
    let mut t = fx.table(id, dstport, ttl);
    t.remotes = vec![REMOTE_IP6.into()];
    t.fdb = vec![
        (REMOTE_WL_MAC, Target::Remote(REMOTE_IP6.into())),
        (UNROUTABLE_WL_MAC, Target::Remote(UNROUTABLE_IP6.into())),
        (UNRESOLVED_WL_MAC, Target::Remote(UNRESOLVED_IP6.into())),
    ];
    t
}

/// The datapath on the IPv6 underlay (`zero_csum`: [`config6`]) with the standard VNI 100 on
/// 4789, its table changed by `change` first.
pub fn load6(fx: &Fixture, zero_csum: bool, change: impl FnOnce(&mut VniTable)) -> Datapath {
    let mut table = table6(fx, VNI, PORT_IANA, TTL);
    change(&mut table);
    load(&config6(zero_csum), &[table])
}

/// The outer headers the remote VTEP `from` sends us (from NEIGH_MAC to UL_MAC, port 54321 to
/// `dport`, hop limit 64, a correct UDP checksum).
pub fn outer6_from(from: Ipv6Addr, dport: u16) -> Outer6 {
    Outer6::new(UL_MAC, NEIGH_MAC, from, LOCAL_IP6, 54321, dport)
}

/// A VXLAN-over-IPv6 packet from REMOTE_IP6 to us on `dport`, UDP checksum `csum`, VXLAN
/// header `vx` around `inner`.
pub fn vxlan6_to_us(dport: u16, csum: Csum6, vx: [u8; VXLAN_LEN], inner: &[u8]) -> Vec<u8> {
    outer6_from(REMOTE_IP6, dport)
        .with_csum(csum)
        .build(vx, inner)
}

/// [`vxlan6_to_us`] in the standard VNI on 4789 with UDP checksum `csum`.
pub fn standard_vxlan6(csum: Csum6, inner: &[u8]) -> Vec<u8> {
    vxlan6_to_us(PORT_IANA, csum, vxlan_header(VXLAN_I, VNI), inner)
}
