//! vtep and the kernel's vxlan driver over an IPv6 underlay, each way round, with checksums on
//! (both sides' default), and vtep's `udp6_zero_csum_tx` against a kernel that accepts zero
//! checksums (`udp6zerocsumrx`) and one that does not.

use vtep_tests::{
    configs::{fdb, vni, workload},
    lab::{KernelOptions, KernelVtep, Lab, ip, must, ns_exec, ping_with, run},
    output::text,
    packet::{Udp6Checksum, parse_vxlan6},
};

use super::{A6, B6, split_in_software, underlay6};
use crate::{BULK, header, support::assert_ping};

const VNI: u32 = 42;
const VTEP_MAC: &str = "02:00:00:00:0a:01";
const KERNEL_MAC: &str = "02:00:00:00:0b:01";
const VTEP_WL: &str = "192.0.2.11";
const KERNEL_WL: &str = "192.0.2.21";

/// Two IPv6 hosts, vtep on one and the kernel's VTEP on the other.
struct Interop6 {
    lab: Lab,
    /// vtep's host.
    vtep_host: String,
    /// The kernel's host, and its and vtep's address.
    kernel_host: String,
    kernel_addr: &'static str,
    vtep_addr: &'static str,
    /// vtep's workload (VTEP_WL) and the kernel's (KERNEL_WL).
    vtep_wl: String,
    kernel_wl: String,
}

/// vtep on host a (`vtep_on_a`) or b with `underlay_extra` in its `[underlay]`, the kernel's
/// VTEP with `kernel` options on the other; vtep has a static entry for the kernel's workload,
/// the kernel floods to vtep and learns.
fn interop6(vtep_on_a: bool, underlay_extra: &str, kernel: KernelOptions) -> Interop6 {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts_ipv6();
    let (vtep_host, kernel_host, vtep_addr, kernel_addr) = if vtep_on_a {
        (a, b, A6, B6)
    } else {
        (b, a, B6, A6)
    };
    let vtep_wl = lab.name("wv");
    let kernel_wl = lab.host("wk");
    must(
        KernelVtep {
            vni: VNI,
            dstport: 4789,
            local: kernel_addr,
            flood: &[vtep_addr],
            fdb: &[],
            workload: &kernel_wl,
            mac: KERNEL_MAC,
            cidr: &format!("{KERNEL_WL}/24"),
        }
        .build_with(&kernel_host, &kernel),
    );
    let cfg = header(&lab.name("v"), &underlay6(vtep_addr, underlay_extra))
        + &vni(VNI, 4789, &[kernel_addr])
        + &workload(&vtep_wl, &format!("{VTEP_WL}/24"), VTEP_MAC)
        + &fdb(KERNEL_MAC, kernel_addr);
    lab.start_vtep(&vtep_host, &cfg);
    Interop6 {
        lab,
        vtep_host,
        kernel_host,
        kernel_addr,
        vtep_addr,
        vtep_wl,
        kernel_wl,
    }
}

/// Counter `key` of namespace `ns`'s IPv6 SNMP statistics (`/proc/net/snmp6`).
fn snmp6(ns: &str, key: &str) -> u64 {
    let out = ns_exec(ns, "cat", &["/proc/net/snmp6"]);
    text(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{ns}: no {key} in /proc/net/snmp6"))
}

/// Ping both ways (the second after the kernel's workload forgot vtep's, so the kernel floods
/// its ARP request to vtep), the kernel's FDB learned vtep's workload behind vtep's IPv6
/// address, and bulk TCP both ways; the kernel's UDP layer found no checksum of vtep's wrong.
/// vtep's underlay splits GSO frames and fills in checksums in software, so every packet
/// reaches the kernel with final checksums, which it verifies (a packet whose checksum is left
/// to an offload it would trust, over a veth).
fn check_interop6(vtep_on_a: bool) {
    let i = interop6(vtep_on_a, "", KernelOptions::default());
    split_in_software(&i.vtep_host);
    let csum_errors = snmp6(&i.kernel_host, "Udp6InCsumErrors");
    let datagrams = snmp6(&i.kernel_host, "Udp6InDatagrams");
    assert_ping(&i.vtep_wl, KERNEL_WL, 3);
    let fdb = text(
        &run(
            "bridge",
            &["-n", &i.kernel_host, "fdb", "show", "dev", "vx0"],
        )
        .stdout,
    );
    let learned = format!("dst {} ", i.vtep_addr);
    assert!(
        fdb.lines()
            .any(|l| l.starts_with(&format!("{VTEP_MAC} ")) && l.contains(&learned)),
        "the kernel did not learn {VTEP_MAC} at {}: {fdb}",
        i.vtep_addr
    );
    ip(&["-n", &i.kernel_wl, "neigh", "flush", "all"]);
    assert_ping(&i.kernel_wl, VTEP_WL, 3);
    let to_kernel = format!("{KERNEL_WL}:5001").parse().unwrap();
    let got = i
        .lab
        .tcp_transfer(&i.kernel_wl, to_kernel, &i.vtep_wl, BULK);
    assert_eq!(got, BULK, "TCP vtep -> kernel vxlan over IPv6");
    let to_vtep = format!("{VTEP_WL}:5002").parse().unwrap();
    let got = i.lab.tcp_transfer(&i.vtep_wl, to_vtep, &i.kernel_wl, BULK);
    assert_eq!(got, BULK, "TCP kernel vxlan -> vtep over IPv6");
    assert_eq!(
        snmp6(&i.kernel_host, "Udp6InCsumErrors"),
        csum_errors,
        "the kernel counted UDP checksum errors in what vtep sent"
    );
    let received = snmp6(&i.kernel_host, "Udp6InDatagrams") - datagrams;
    assert!(
        received > 30_000,
        "the kernel received {received} datagrams for 50 MB from vtep: not segment by segment"
    );
}

#[test]
fn ipv6_interop_vtep_on_a_kernel_on_b() {
    check_interop6(true);
}

#[test]
fn ipv6_interop_kernel_on_a_vtep_on_b() {
    check_interop6(false);
}

/// Pings from vtep's workload to the kernel's with a capture on the kernel's host; returns
/// whether they were answered and the checksums of what vtep sent.
fn ping_and_capture(i: &Interop6) -> (bool, Vec<Udp6Checksum>) {
    let filter = format!("ip6 and udp and src host {}", i.vtep_addr);
    let cap = i.lab.capture(&i.kernel_host, "eth0", &filter);
    let answered = ping_with(&i.vtep_wl, KERNEL_WL, 3, "0.2", 1);
    let sums = cap
        .frames()
        .iter()
        .map(|f| {
            let v = parse_vxlan6(f).unwrap_or_else(|e| panic!("not VXLAN over IPv6: {e}"));
            assert_eq!(v.dst().to_string(), i.kernel_addr);
            v.checksum()
        })
        .collect();
    (answered, sums)
}

#[test]
fn ipv6_zero_csum_tx_reaches_a_kernel_with_udp6zerocsumrx() {
    let rx = KernelOptions {
        udp6_zero_csum_rx: true,
        ..KernelOptions::default()
    };
    let i = interop6(true, "udp6_zero_csum_tx = true", rx);
    let (answered, sums) = ping_and_capture(&i);
    assert!(
        answered,
        "ping vtep (zero checksums) -> kernel (udp6zerocsumrx)"
    );
    assert!(!sums.is_empty(), "vtep sent nothing");
    assert!(
        sums.iter().all(|s| *s == Udp6Checksum::Zero),
        "vtep sent non-zero checksums: {sums:?}"
    );
    // The kernel checksums its own packets; vtep takes them.
    ip(&["-n", &i.kernel_wl, "neigh", "flush", "all"]);
    assert_ping(&i.kernel_wl, VTEP_WL, 3);
}

/// The proof that the mode sends zero checksums: a kernel without `udp6zerocsumrx` drops what
/// vtep sends (counting each as `Udp6InCsumErrors`), so the pings fail, while the capture shows
/// vtep did send them.
#[test]
fn ipv6_zero_csum_tx_is_dropped_by_a_default_kernel() {
    let i = interop6(true, "udp6_zero_csum_tx = true", KernelOptions::default());
    let csum_errors = snmp6(&i.kernel_host, "Udp6InCsumErrors");
    let (answered, sums) = ping_and_capture(&i);
    // The kernel's UDP layer counts a zero checksum over IPv6 as a checksum error.
    let dropped = snmp6(&i.kernel_host, "Udp6InCsumErrors") - csum_errors;
    assert!(
        !answered,
        "a default kernel VTEP answered pings sent with zero UDP checksums"
    );
    assert!(!sums.is_empty(), "vtep sent nothing");
    assert!(
        sums.iter().all(|s| *s == Udp6Checksum::Zero),
        "vtep sent non-zero checksums: {sums:?}"
    );
    assert!(
        dropped >= sums.len() as u64,
        "the kernel counted {dropped} checksum errors for {} packets",
        sums.len()
    );
}
