//! The IPv6 underlay: the hosts' `eth0` carry 2001:db8::1, ::2 (and ::3) and no IPv4, vtep's
//! `underlay.local` is IPv6, and VXLAN crosses the underlay over IPv6 (70 bytes of overhead,
//! UDP checksums on unless `udp6_zero_csum_tx`). First the lab itself (`lab`: the kernel's vxlan
//! driver over the same underlay, so a failure elsewhere here is vtep's), then S2 over IPv6 with
//! bulk TCP (`overlay`), malformed VXLAN over IPv6 on the wire dropped and counted
//! (`malformed`), the kernel's driver on the other side both ways and the zero-checksum
//! mode against it (`interop`), every outer field and checksum of captured packets (`wire`), and
//! the XDP program decapsulating IPv6 (`xdp`); `vtep fdb` with IPv6 VTEPs on a running instance
//! (`runtime`), a restart and a reload that lose nothing (`restart`), the routed overlay S4
//! (`routed`), and configs that mix families (`config`).

mod config;
mod interop;
mod lab;
mod malformed;
mod overlay;
mod restart;
mod routed;
mod runtime;
mod wire;
mod xdp;

use vtep_tests::{
    configs::{fdb, vni, workload},
    lab::{Lab, ip},
};

use crate::{
    header,
    support::{S2, S2_A1, S2_A2, S2_B1, S2_B2},
};

/// The hosts' underlay addresses (`Lab::two_hosts_ipv6`, `Lab::three_hosts_ipv6`).
const A6: &str = "2001:db8::1";
const B6: &str = "2001:db8::2";

/// The `[underlay]` lines of a host whose VTEP address is `local`, then `extra`.
fn underlay6(local: &str, extra: &str) -> String {
    format!("local = \"{local}\"\n{extra}")
}

/// S2 (two workloads per host on VNI 200, static entries for the far ones) on an IPv6 underlay,
/// with `underlay_extra` lines in both hosts' `[underlay]`.
fn s2_ipv6(underlay_extra: &str) -> S2 {
    s2_ipv6_mtu(underlay_extra, 1500)
}

/// [`s2_ipv6`] on an underlay of MTU `mtu` (the workloads get 70 bytes less).
fn s2_ipv6_mtu(underlay_extra: &str, mtu: u32) -> S2 {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts_ipv6();
    for host in [&a, &b] {
        ip(&["-n", host, "link", "set", "eth0", "mtu", &mtu.to_string()]);
    }
    let [a1, a2, b1, b2] = ["a1", "a2", "b1", "b2"].map(|s| lab.name(s));
    let (name_a, name_b) = (lab.name("va"), lab.name("vb"));
    let cfg_a = header(&name_a, &underlay6(A6, underlay_extra))
        + &vni(200, 4789, &[B6])
        + &workload(&a1, "192.0.2.11/24", S2_A1)
        + &workload(&a2, "192.0.2.12/24", S2_A2)
        + &fdb(S2_B1, B6)
        + &fdb(S2_B2, B6);
    let cfg_b = header(&name_b, &underlay6(B6, underlay_extra))
        + &vni(200, 4789, &[A6])
        + &workload(&b1, "192.0.2.21/24", S2_B1)
        + &workload(&b2, "192.0.2.22/24", S2_B2)
        + &fdb(S2_A1, A6)
        + &fdb(S2_A2, A6);
    let va = lab.start_vtep(&a, &cfg_a);
    let vb = lab.start_vtep(&b, &cfg_b);
    S2 {
        lab,
        a,
        b,
        a1,
        a2,
        b1,
        b2,
        va,
        name_a,
        vb,
        name_b,
    }
}

/// Makes `host`'s underlay (`eth0`) split GSO packets and fill in checksums in software, so
/// every packet it sends carries final inner and outer checksums: what a receiver verifies and
/// a capture can judge (over a veth, a checksum left to an offload is trusted, never filled in).
fn split_in_software(host: &str) {
    vtep_tests::lab::ns_exec(
        host,
        "ethtool",
        &[
            "-K",
            "eth0",
            "tx",
            "off",
            "tx-udp_tnl-segmentation",
            "off",
            "tx-udp_tnl-csum-segmentation",
            "off",
        ],
    );
}
