//! The underlay in native XDP mode (`underlay.xdp = "native"`, issue 10) on the lab's veths: the
//! scenarios of the TC path again (S2 with bulk TCP, flood-and-learn between three hosts, the
//! kernel's vxlan driver both ways, the ARP proxy, VNI isolation, nothing left after a stop),
//! and proof that the XDP program did the decapsulation, not the TC program behind it.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use vtep::sys::ethtool;
use vtep_tests::{
    configs::{fdb, header as config_header, vni, workload},
    lab::{End, Lab, in_netns, ping},
    output::{fdb_row, vni_stat},
};

use crate::{
    ADDR_A, ADDR_B, BULK,
    cleanup::{check_kill_and_down, check_nothing_left_with},
    config::bad_config_lab,
    interop::interop_with,
    isolation::check_vnis_isolated,
    support::{
        S2, assert_ping, assert_ping_df, ping_n, s2_with, s2_with_mtu, underlay_runs, xdp_prog,
    },
};

const NATIVE: &str = "xdp = \"native\"";

#[test]
fn xdp_s2_ping_and_bulk_tcp_are_decapsulated_in_xdp() {
    let S2 {
        lab,
        a,
        b,
        a1,
        b1,
        va,
        name_a,
        ..
    } = s2_with(NATIVE);
    let mut lab = lab;
    for host in [&a, &b] {
        assert!(xdp_prog(host, "eth0").is_some(), "{host}: no XDP program");
    }
    // Frames XDP redirects into a veth arrive only where its far end has NAPI: GRO on.
    for ns in [&a1, &b1] {
        assert!(
            in_netns(ns, || ethtool::gro("eth0")).unwrap(),
            "{ns}: GRO off"
        );
    }
    assert_ping(&a1, "192.0.2.21", 2);
    // Once ARP is done, every echo is known unicast: the XDP program decapsulates it and the
    // TC program behind it sees only the rest (the workloads' IPv6 multicast, flooded; the
    // underlay's own ARP).
    let by_xdp = |lab: &mut vtep_tests::lab::Lab| {
        let stats = lab.vtep(va).stats(&name_a);
        vni_stat(&stats, 200, "decap_by_xdp")
    };
    let by_xdp_before = by_xdp(&mut lab);
    let (xdp, tc) = underlay_runs(&a, || {
        assert!(ping_n(&a1, "192.0.2.21", 50, "0.01"), "50 pings a1 -> b1");
    });
    assert!(xdp >= 50, "XDP program ran {xdp} times for 50 echo replies");
    // The share operators see (`decap_by_xdp`, `vtep_vni_decap_by_xdp_total`): every echo
    // reply was XDP's.
    let grew = by_xdp(&mut lab) - by_xdp_before;
    assert!(
        grew >= 50,
        "decap_by_xdp grew by {grew} for 50 echo replies"
    );
    assert!(
        tc * 4 < xdp,
        "the TC program handled {tc} of {xdp} packets: XDP passed them on"
    );
    // The workloads leave TCP checksums to an offload (veth's default): XDP must hand those
    // frames to TC (see vtep-ebpf underlay_xdp.rs, `inner_checksum_pending`).
    let got = lab.tcp_transfer(&b1, "192.0.2.21:5001".parse().unwrap(), &a1, BULK);
    assert_eq!(
        got, BULK,
        "TCP a1 -> b1 over XDP decap: bytes received intact"
    );
    let got = lab.tcp_transfer(&a1, "192.0.2.11:5002".parse().unwrap(), &b1, BULK);
    assert_eq!(
        got, BULK,
        "TCP b1 -> a1 over XDP decap: bytes received intact"
    );
    let stats = lab.vtep(va).stats(&name_a);
    assert!(vni_stat(&stats, 200, "decap_packets") >= 1000, "{stats}");
    // TCP's frames with offloaded checksums went through TC: counted decapsulated, not XDP's.
    assert!(
        vni_stat(&stats, 200, "decap_by_xdp") < vni_stat(&stats, 200, "decap_packets"),
        "{stats}"
    );
}

/// `generic`: the kernel's skb-based XDP hook, any driver. The program runs there, but the
/// kernel skips generic XDP for skbs a TC program redirected (`skb_is_tc_redirected`), which is
/// every frame another vtep sends over a veth: those reach TC as before, and the overlay works.
#[test]
fn xdp_generic_mode_runs_in_the_skb_hook_and_the_overlay_works() {
    let S2 {
        lab, a, b, a1, b1, ..
    } = s2_with("xdp = \"generic\"");
    // XDP_ATTACHED_SKB.
    let mode = vtep_tests::lab::link(&a, "eth0")["xdp"]["mode"].as_u64();
    assert_eq!(mode, Some(2), "generic XDP on eth0");
    // Host b's own pings to host a are skbs nobody redirected: the program sees them first.
    let (xdp, _) = underlay_runs(&a, || {
        assert!(
            ping_n(&b, ADDR_A, 5, "0.01"),
            "5 pings b -> a on the underlay"
        );
    });
    assert!(xdp >= 5, "XDP ran {xdp} times for 5 echo requests");
    assert_ping(&a1, "192.0.2.21", 2);
    let got = lab.tcp_transfer(&b1, "192.0.2.21:5001".parse().unwrap(), &a1, BULK);
    assert_eq!(
        got, BULK,
        "TCP a1 -> b1 with generic XDP: bytes received intact"
    );
}

/// `auto` on a veth underlay is TC only (XDP measured slower there): no XDP program, and the
/// workloads' interfaces left as they were.
#[test]
fn xdp_auto_on_a_veth_underlay_is_tc_only() {
    let S2 {
        lab: _lab, a, a1, ..
    } = s2_with("xdp = \"auto\"");
    assert_eq!(xdp_prog(&a, "eth0"), None, "auto attached XDP to a veth");
    assert!(
        !in_netns(&a1, || ethtool::gro("eth0")).unwrap(),
        "GRO turned on without XDP"
    );
    assert_ping(&a1, "192.0.2.21", 2);
}

/// A jumbo underlay MTU keeps working with the XDP program: it is `xdp.frags`-aware (a veth
/// refuses a program that is not at this MTU), and the multi-buffer frames of 9000-byte packets
/// go to TC unchanged.
#[test]
fn xdp_jumbo_underlay_mtu_keeps_working() {
    let S2 { lab, a, a1, b1, .. } = s2_with_mtu(NATIVE, 9000);
    assert!(xdp_prog(&a, "eth0").is_some(), "no XDP program at MTU 9000");
    assert_ping_df(&a1, "192.0.2.21", 8950);
    assert_ping_df(&b1, "192.0.2.11", 8950);
    let got = lab.tcp_transfer(&b1, "192.0.2.21:5001".parse().unwrap(), &a1, BULK);
    assert_eq!(got, BULK, "TCP a1 -> b1 at MTU 8950: bytes received intact");
}

/// A recreated underlay gets the XDP program again, in front of TC as at the start.
#[test]
fn xdp_underlay_recreated_gets_the_xdp_program_again() {
    let S2 { lab, a, b, a1, .. } = s2_with(NATIVE);
    assert_ping(&a1, "192.0.2.21", 1);
    // One end of the underlay veth deletes both hosts' eth0; the same wire again.
    vtep_tests::lab::ip(&["-n", &a, "link", "del", "eth0"]);
    std::thread::sleep(Duration::from_millis(1500));
    lab.wire(
        End::new(&a, "eth0", "198.18.0.1/24"),
        End::new(&b, "eth0", "198.18.0.2/24"),
        1500,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ping(&a1, "192.0.2.21", 1) {
        assert!(Instant::now() < deadline, "a1 -> b1 not back within 10 s");
    }
    for host in [&a, &b] {
        assert!(
            xdp_prog(host, "eth0").is_some(),
            "{host}: no XDP program on the new eth0"
        );
    }
    let (xdp, tc) = underlay_runs(&a, || {
        assert!(ping_n(&a1, "192.0.2.21", 20, "0.01"), "20 pings a1 -> b1");
    });
    assert!(
        xdp >= 20 && tc * 4 < xdp,
        "XDP ran {xdp} times, TC {tc} times"
    );
}

#[test]
fn xdp_three_hosts_flood_and_learn() {
    let mut lab = Lab::new();
    let hosts = lab.three_hosts();
    let addrs = ["198.18.0.1", "198.18.0.2", "198.18.0.3"];
    let macs = [
        "02:00:00:00:0a:01",
        "02:00:00:00:0b:01",
        "02:00:00:00:0c:01",
    ];
    let names: Vec<String> = (0..3).map(|i| lab.name(&format!("v{i}"))).collect();
    let workloads: Vec<String> = (0..3).map(|i| lab.name(&format!("w{i}"))).collect();
    let mut ids = Vec::new();
    for i in 0..3 {
        // Only flood lists: every station is learned.
        let remotes: Vec<&str> = (0..3).filter(|&j| j != i).map(|j| addrs[j]).collect();
        let cfg = config_header(&names[i], "", NATIVE)
            + &vni(300, 4789, &remotes)
            + &workload(&workloads[i], &format!("192.0.2.{}/24", 11 + i), macs[i]);
        ids.push(lab.start_vtep(&hosts[i], &cfg));
    }
    // The workloads' own IPv6 start-up (duplicate address detection, MLD reports, router
    // solicitations: multicast, so flooded and decapsulated by TC) would be counted below as
    // TC's work; the test is about IPv4 unicast.
    for w in &workloads {
        vtep_tests::lab::sysctl(w, &["net.ipv6.conf.all.disable_ipv6=1"]);
    }
    for (from, to) in [(0, 1), (1, 2), (2, 0)] {
        let addr = format!("192.0.2.{}", 11 + to);
        assert!(ping(&workloads[from], &addr, 2), "ping w{from} -> w{to}");
    }
    for (i, j) in [(0, 1), (1, 0), (1, 2), (2, 1), (2, 0), (0, 2)] {
        let rows = lab.vtep(ids[i]).fdb(&names[i]);
        let row = fdb_row(&rows, macs[j], 300)
            .unwrap_or_else(|| panic!("host {i} did not learn {}: {rows:?}", macs[j]));
        assert_eq!(row["state"], "learned", "host {i}: {row}");
        assert_eq!(
            row["dst"], addrs[j],
            "host {i} has w{j} behind the wrong VTEP"
        );
    }
    // Learned unicast is XDP's to decapsulate.
    let (xdp, tc) = underlay_runs(&hosts[0], || {
        assert!(
            ping_n(&workloads[0], "192.0.2.12", 20, "0.01"),
            "20 pings w0 -> w1"
        );
    });
    assert!(
        xdp >= 20 && tc * 4 < xdp,
        "XDP ran {xdp} times, TC {tc} times"
    );
}

#[test]
fn xdp_interop_with_kernel_vxlan_both_ways() {
    interop_with(4789, NATIVE);
}

#[test]
fn xdp_arp_proxy_answers_on_the_host() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    let (wa, wb) = (lab.name("a1"), lab.name("b1"));
    let (mac_a, mac_b) = ("02:00:00:00:0a:01", "02:00:00:00:0b:01");
    let name_a = lab.name("va");
    let cfg_a = config_header(&name_a, "", NATIVE)
        + &vni(100, 4789, &[ADDR_B])
        + "proxy = true\n"
        + &workload(&wa, "192.0.2.11/24", mac_a)
        + &fdb(mac_b, ADDR_B)
        + &format!("[[vni.neigh]]\nip = \"192.0.2.21\"\nmac = \"{mac_b}\"\n\n");
    let cfg_b = config_header(&lab.name("vb"), "", NATIVE)
        + &vni(100, 4789, &[ADDR_A])
        + &workload(&wb, "192.0.2.21/24", mac_b)
        + &fdb(mac_a, ADDR_A);
    let va = lab.start_vtep(&a, &cfg_a);
    lab.start_vtep(&b, &cfg_b);
    assert_ping(&wa, "192.0.2.21", 3);
    let stats = lab.vtep(va).stats(&name_a);
    assert!(vni_stat(&stats, 100, "proxy_replies") >= 1, "{stats}");
}

#[test]
fn xdp_vnis_isolated_with_overlapping_addresses() {
    check_vnis_isolated(NATIVE);
}

#[test]
fn xdp_nothing_left_after_stop() {
    check_nothing_left_with(Signal::SIGINT, "after SIGINT (XDP)", NATIVE);
}

#[test]
fn xdp_nothing_left_after_kill_and_down() {
    check_kill_and_down(NATIVE);
}

/// A driver without native XDP (a bridge) asked for `native`: refused before anything
/// changes, naming the field and what to use instead.
#[test]
fn xdp_native_on_a_driver_without_it_is_refused_before_anything_changes() {
    let c = bad_config_lab();
    let bridge = c.lab.name("d");
    vtep_tests::lab::ip(&["-n", &c.a, "link", "add", &bridge, "type", "bridge"]);
    vtep_tests::lab::ip(&["-n", &c.a, "addr", "add", "198.18.9.1/24", "dev", &bridge]);
    vtep_tests::lab::ip(&["-n", &c.a, "link", "set", &bridge, "up"]);
    let cfg = c.good.replacen(
        "interface = \"eth0\"\n",
        &format!("interface = \"{bridge}\"\n{NATIVE}\n"),
        1,
    );
    let problems = c.refusal_problems(
        "native XDP on a bridge",
        &cfg,
        &["underlay.xdp", &format!("`{bridge}` has no native XDP")],
    );
    assert!(problems.is_empty(), "{problems:#?}");
}
