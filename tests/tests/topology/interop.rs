//! Interoperation with the kernel's vxlan driver.

use vtep_tests::{
    configs::{fdb, vni, workload},
    lab::{KernelVtep, Lab, ip, must, run},
    output::text,
};

use crate::{ADDR_A, ADDR_B, BULK, header, support::assert_ping};

/// Host A runs vtep; host B runs the kernel's vxlan driver with a bridge and a workload, as
/// seed 000 experiment 2 does.
fn interop(dstport: u16) {
    interop_with(dstport, "");
}

/// [`interop`] with `underlay_extra` lines in vtep's `[underlay]`.
pub fn interop_with(dstport: u16, underlay_extra: &str) {
    const VNI: u32 = 42;
    let wb_mac = "02:00:00:00:0b:01";
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    let wa = lab.name("a1");
    let wb = lab.host("wb");

    // Host B: the kernel's VTEP, learning (the default).
    let kernel = KernelVtep {
        vni: VNI,
        dstport,
        local: ADDR_B,
        flood: &[ADDR_A],
        fdb: &[],
        workload: &wb,
        mac: wb_mac,
        cidr: "192.0.2.21/24",
    };
    must(kernel.build(&b));

    // Host A: vtep with a static entry for B's workload.
    let cfg_a = header(&lab.name("va"), underlay_extra)
        + &vni(VNI, dstport, &[ADDR_B])
        + &workload(&wa, "192.0.2.11/24", "02:00:00:00:0a:01")
        + &fdb(wb_mac, ADDR_B);
    lab.start_vtep(&a, &cfg_a);

    // vtep floods a1's ARP request to B; the kernel bridge delivers it; the reply comes back
    // unicast through B's learned entry.
    assert_ping(&wa, "192.0.2.21", 3);
    // B's kernel learned a1 behind the VTEP address vtep sends from.
    let fdb = text(&run("bridge", &["-n", &b, "fdb", "show", "dev", "vx0"]).stdout);
    assert!(
        fdb.lines()
            .any(|l| l.starts_with("02:00:00:00:0a:01 ") && l.contains(&format!("dst {ADDR_A} "))),
        "kernel vxlan did not learn a1 at {ADDR_A}: {fdb}"
    );
    // Now B's broadcast (ARP from wb, flooded by the kernel to 198.18.0.1) reaches a1.
    ip(&["-n", &wb, "neigh", "flush", "all"]);
    assert_ping(&wb, "192.0.2.11", 3);
    let got = lab.tcp_transfer(&wb, "192.0.2.21:5001".parse().unwrap(), &wa, BULK);
    assert_eq!(got, BULK, "TCP vtep -> kernel vxlan (dstport {dstport})");
    let got = lab.tcp_transfer(&wa, "192.0.2.11:5002".parse().unwrap(), &wb, BULK);
    assert_eq!(got, BULK, "TCP kernel vxlan -> vtep (dstport {dstport})");
}

#[test]
fn interop_with_kernel_vxlan() {
    interop(4789);
}

#[test]
fn interop_with_kernel_vxlan_dstport_8472() {
    interop(8472);
}
