//! S2 over an IPv6 underlay: workloads on both hosts reach each other, full-size frames fit the
//! 70 bytes of IPv6 overhead, bulk TCP arrives intact both ways in GSO frames (with a valid
//! checksum in every segment when checksums are sent, zero ones otherwise), and the FDB names
//! the remote VTEP by its IPv6 address. S1 (an overlay address on each host itself) over IPv6
//! too, and an adopted port, whose GSO frames vtep handles without changing it.

use vtep::{daemon::segmenter, sys::ethtool};
use vtep_tests::{
    configs::{adopted_port, fdb, host_port, vni, workload},
    lab::{Lab, in_netns, ip},
    output::{fdb_row, text, vni_stat},
    packet::{Udp6Checksum, parse_vxlan6},
};

use super::{A6, B6, s2_ipv6, s2_ipv6_mtu, split_in_software, underlay6};
use crate::{
    BULK, header,
    support::{S2, S2_B1, S2_B2, assert_ping, assert_ping_df, ns_read},
};

/// Whether TSO or GSO is on for `eth0` in namespace `ns`.
fn segmentation(ns: &str) -> bool {
    in_netns(ns, || ethtool::segmentation("eth0")).unwrap_or_else(|e| panic!("{ns}: {e:#}"))
}

#[test]
fn ipv6_underlay_s2_ping_and_bulk_tcp_both_ways() {
    let S2 {
        mut lab,
        a1,
        a2,
        b1,
        b2,
        va,
        name_a,
        vb,
        name_b,
        ..
    } = s2_ipv6("");

    // The workload MTU leaves room for the 70 bytes of VXLAN over IPv6.
    for ns in [&a1, &a2, &b1, &b2] {
        assert_eq!(
            ns_read(ns, "/sys/class/net/eth0/mtu"),
            "1430",
            "MTU of eth0 in {ns}"
        );
    }
    for (from, to) in [
        (&a1, "192.0.2.21"),
        (&a1, "192.0.2.22"),
        (&a2, "192.0.2.21"),
        (&b1, "192.0.2.11"),
        (&b2, "192.0.2.12"),
    ] {
        assert_ping(from, to, 2);
    }
    // vtep leaves the workloads' segmentation offloads alone: GSO frames get their checksums
    // per segment (see `ipv6_gso_frames_get_a_valid_checksum_in_every_segment`).
    for ns in [&a1, &a2, &b1, &b2] {
        assert!(segmentation(ns), "{ns}: TSO/GSO turned off");
    }
    // A full-size frame (1430-byte IP packet, DF set) crosses: 1500 on the underlay.
    assert_ping_df(&a1, "192.0.2.21", 1430);
    assert_ping_df(&b2, "192.0.2.12", 1430);

    let rows = lab.vtep(va).fdb(&name_a);
    for mac in [S2_B1, S2_B2] {
        let row = fdb_row(&rows, mac, 200)
            .unwrap_or_else(|| panic!("{mac} missing from fdb show: {rows:?}"));
        assert_eq!(row["dst"], B6, "{mac} behind the IPv6 VTEP: {row}");
    }

    let got = lab.tcp_transfer(&b1, "192.0.2.21:5001".parse().unwrap(), &a1, BULK);
    assert_eq!(got, BULK, "TCP a1 -> b1 over IPv6: bytes received intact");
    let got = lab.tcp_transfer(&a2, "192.0.2.12:5002".parse().unwrap(), &b2, BULK);
    assert_eq!(got, BULK, "TCP b2 -> a2 over IPv6: bytes received intact");

    // No GSO frame was refused a checksum.
    let stats = lab.vtep(va).stats(&name_a);
    assert!(vni_stat(&stats, 200, "encap_packets") >= 1000, "{stats}");
    assert!(vni_stat(&stats, 200, "decap_packets") >= 1000, "{stats}");
    assert_eq!(stats["drops"]["gso_needs_checksum"], 0, "{stats}");
    let stats = lab.vtep(vb).stats(&name_b);
    assert_eq!(stats["drops"]["gso_needs_checksum"], 0, "{stats}");
}

/// With zero checksums a GSO frame's outer UDP header is right for every segment, so vtep
/// leaves the workloads' GSO on, and bulk TCP crosses in GSO frames.
#[test]
fn ipv6_underlay_zero_checksums_keep_gso_and_carry_bulk_tcp() {
    let S2 {
        mut lab,
        a1,
        b1,
        va,
        name_a,
        ..
    } = s2_ipv6("udp6_zero_csum_tx = true");
    for ns in [&a1, &b1] {
        assert!(
            segmentation(ns),
            "{ns}: TSO/GSO turned off with zero checksums"
        );
    }
    let got = lab.tcp_transfer(&b1, "192.0.2.21:5001".parse().unwrap(), &a1, BULK);
    assert_eq!(got, BULK, "TCP a1 -> b1 in GSO frames over IPv6");
    let got = lab.tcp_transfer(&a1, "192.0.2.11:5002".parse().unwrap(), &b1, BULK);
    assert_eq!(got, BULK, "TCP b1 -> a1 in GSO frames over IPv6");
    let stats = lab.vtep(va).stats(&name_a);
    assert_eq!(stats["drops"]["gso_needs_checksum"], 0, "{stats}");
}

/// S1 over IPv6: an overlay address on each host's own interface (which vtep makes); ping and
/// bulk TCP between the hosts' stacks, whose GSO frames vtep checksums like a workload's.
#[test]
fn ipv6_underlay_s1_point_to_point() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts_ipv6();
    let (if_a, if_b) = (lab.name("x"), lab.name("y"));
    let cfg_a = header(&lab.name("va"), &underlay6(A6, ""))
        + &vni(1, 4789, &[B6])
        + &host_port(&if_a, "192.0.2.1/24");
    let cfg_b = header(&lab.name("vb"), &underlay6(B6, ""))
        + &vni(1, 4789, &[A6])
        + &host_port(&if_b, "192.0.2.2/24");
    let va = lab.start_vtep(&a, &cfg_a);
    lab.start_vtep(&b, &cfg_b);
    assert_eq!(ns_read(&a, &format!("/sys/class/net/{if_a}/mtu")), "1430");
    assert_ping(&a, "192.0.2.2", 3);
    assert_ping(&b, "192.0.2.1", 3);
    let got = lab.tcp_transfer(&b, "192.0.2.2:5001".parse().unwrap(), &a, BULK);
    assert_eq!(got, BULK, "TCP a -> b between the hosts' overlay addresses");
    let got = lab.tcp_transfer(&a, "192.0.2.1:5002".parse().unwrap(), &b, BULK);
    assert_eq!(got, BULK, "TCP b -> a between the hosts' overlay addresses");
    let name_a = lab.name("va");
    let stats = lab.vtep(va).stats(&name_a);
    assert_eq!(stats["drops"]["gso_needs_checksum"], 0, "{stats}");
}

/// An adopted port is not vtep's to change, and needs no change: the GSO frames its far end
/// sends (TCP with TSO on, a veth's default) get their outer checksums like a workload's (whole
/// when all their segments are alike, else through the segmenter), so bulk TCP crosses and no
/// frame is counted as `gso_needs_checksum`. (Before the segmenter they were all dropped, and
/// TCP from the port stalled until its owner turned TSO and GSO off.)
#[test]
fn ipv6_adopted_port_gso_frames_cross_with_its_offloads_on() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts_ipv6();
    let (port, pw, b1) = (lab.name("p"), lab.host("pw"), lab.name("b1"));
    let (m_pw, m_b1) = ("02:00:00:00:0c:01", S2_B1);
    ip(&[
        "-n", &a, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &pw,
    ]);
    ip(&["-n", &a, "link", "set", &port, "mtu", "1430", "up"]);
    ip(&[
        "-n", &pw, "link", "set", "eth0", "address", m_pw, "mtu", "1430", "up",
    ]);
    ip(&["-n", &pw, "addr", "add", "192.0.2.31/24", "dev", "eth0"]);
    let name_a = lab.name("va");
    let cfg_a = header(&name_a, &underlay6(A6, ""))
        + &vni(100, 4789, &[B6])
        + &adopted_port(&port)
        + &format!("[[vni.fdb]]\nmac = \"{m_pw}\"\nport = \"{port}\"\n\n")
        + &fdb(m_b1, B6);
    let cfg_b = header(&lab.name("vb"), &underlay6(B6, ""))
        + &vni(100, 4789, &[A6])
        + &workload(&b1, "192.0.2.21/24", m_b1)
        + &fdb(m_pw, A6);
    let va = lab.start_vtep(&a, &cfg_a);
    lab.start_vtep(&b, &cfg_b);
    assert_ping(&pw, "192.0.2.21", 2);
    assert!(segmentation(&pw), "vtep changed the adopted port's far end");
    let got = lab.tcp_transfer(&b1, "192.0.2.21:5001".parse().unwrap(), &pw, BULK);
    assert_eq!(got, BULK, "TCP from the adopted port with its offloads on");
    let stats = lab.vtep(va).stats(&name_a);
    assert_eq!(stats["drops"]["gso_needs_checksum"], 0, "{stats}");
}

/// The bug this pins (issue 11): `bpf_skb_adjust_room` never marks a GSO skb
/// `SKB_GSO_UDP_TUNNEL_CSUM`, so whatever outer checksum a GSO frame carries is copied into
/// every segment when it is split. Host a's underlay splits what it sends in software, with its
/// checksum offload off, so every packet on the wire carries final inner and outer checksums;
/// bulk TCP a1 -> b1 (GSO frames: those of whole segments encapsulated whole, the rest through
/// the segmenter) is captured on b's underlay, and every data packet's UDP checksum must be
/// valid. vtep on b, which sums them, delivers every byte and counts no bad checksum; a sent
/// far fewer frames than the transfer has segments (GSO frames went whole).
#[test]
fn ipv6_gso_frames_get_a_valid_checksum_in_every_segment() {
    const LEN: u64 = 4 * 1024 * 1024;
    let S2 {
        mut lab,
        a,
        b,
        a1,
        b1,
        va,
        name_a,
        vb,
        name_b,
        ..
    } = s2_ipv6("");
    split_in_software(&a);
    assert!(segmentation(&a1), "the workload sends GSO frames");
    let before = vni_stat(&lab.vtep(va).stats(&name_a), 200, "encap_packets");
    let cap = lab.capture(&b, "eth0", "ip6 src 2001:db8::1 and udp dst port 4789");
    let got = lab.tcp_transfer(&b1, "192.0.2.21:5001".parse().unwrap(), &a1, LEN);
    assert_eq!(got, LEN, "TCP a1 -> b1: bytes received intact");
    let frames = cap.frames();
    let sent = vni_stat(&lab.vtep(va).stats(&name_a), 200, "encap_packets") - before;
    let (mut valid, mut full) = (0, 0);
    for (i, f) in frames.iter().enumerate() {
        let v = parse_vxlan6(f).unwrap_or_else(|e| panic!("frame {i}: {e}"));
        assert_eq!(
            v.checksum(),
            Udp6Checksum::Valid,
            "frame {i} of {}: UDP checksum ({} bytes)",
            frames.len(),
            f.len()
        );
        valid += 1;
        if f.len() == 1500 + 14 {
            full += 1;
        }
    }
    // The capture may miss some under load; what it holds is plenty.
    assert!(
        full >= 1_000,
        "{full} full-size segments of {valid} captured"
    );
    // At most 1448 bytes of TCP payload per segment: sending them one by one would take this
    // many frames.
    let segments = LEN / 1448;
    assert!(
        sent < segments / 2,
        "vtep a encapsulated {sent} frames for {segments}+ segments: GSO frames did not go whole"
    );
    let stats = lab.vtep(vb).stats(&name_b);
    assert_eq!(stats["drops"]["vxlan_bad_checksum"], 0, "{stats}");
    let stats = lab.vtep(va).stats(&name_a);
    assert_eq!(stats["drops"]["gso_needs_checksum"], 0, "{stats}");
}

/// A jumbo underlay (MTU 9000): workloads get 8930, full-size frames cross both ways (the outer
/// checksum of a 9,000-byte packet), and bulk TCP with them; also with the XDP program in front,
/// which hands multi-buffer frames to TC.
///
/// The bug this pins (found as a stall of this test under CI load): the segmenter's veth pair
/// kept the default MTU of 1,500, and its return end dropped every 8,9xx-byte segment of the
/// GSO frames sent through it. TCP got there on retransmissions alone (544 retransmitted
/// segments and 21 timeouts for 50 MiB), and under load went 30 s without a byte. Now the
/// segmenter loses nothing.
#[test]
fn ipv6_jumbo_underlay_mtu() {
    for extra in ["", "xdp = \"native\""] {
        let S2 {
            lab,
            a,
            a1,
            b1,
            name_a,
            ..
        } = s2_ipv6_mtu(extra, 9000);
        assert_eq!(ns_read(&a1, "/sys/class/net/eth0/mtu"), "8930", "{extra}");
        assert_ping_df(&a1, "192.0.2.21", 8930);
        assert_ping_df(&b1, "192.0.2.11", 8930);
        let got = lab.tcp_transfer(&b1, "192.0.2.21:5001".parse().unwrap(), &a1, BULK);
        assert_eq!(got, BULK, "TCP a1 -> b1 at MTU 8930 ({extra})");
        let lost = segmenter_drops(&a, &name_a);
        assert_eq!(
            lost,
            0,
            "segments the segmenter dropped ({extra})\n{}",
            lab.explain()
        );
    }
}

/// `vtep stats` and the metrics show what the segmenter dropped, as the kernel counts it: none
/// as vtep makes it, and the lost segments once its return end's MTU is put back to 1,500 by
/// hand (the bug `ipv6_jumbo_underlay_mtu` pins), while TCP still gets through on
/// retransmissions.
#[test]
fn ipv6_segmenter_drops_are_shown_by_vtep_stats() {
    let S2 {
        mut lab,
        a,
        a1,
        b1,
        va,
        name_a,
        ..
    } = s2_ipv6_mtu("", 9000);
    let mut shown = || {
        let stats = lab.vtep(va).stats(&name_a);
        let s = stats["segmenter"].clone();
        assert_eq!(s["interfaces"].as_array().map(Vec::len), Some(2), "{stats}");
        s["dropped"].as_u64().unwrap_or_else(|| panic!("{stats}"))
    };
    assert_eq!(shown(), 0, "as vtep made it");
    let [_, back] = segmenter::names(&name_a);
    ip(&["-n", &a, "link", "set", &back, "mtu", "1500"]);
    let len = 2 * 1024 * 1024;
    let got = lab.tcp_transfer(&b1, "192.0.2.21:5001".parse().unwrap(), &a1, len);
    assert_eq!(got, len, "TCP gets through on retransmissions");
    let kernel = segmenter_drops(&a, &name_a);
    assert!(kernel > 0, "the return end at 1,500 dropped nothing");
    let mut shown = || lab.vtep(va).stats(&name_a)["segmenter"]["dropped"].as_u64();
    assert_eq!(shown(), Some(kernel), "vtep stats against ip -s link");
    let out = text(&lab.vtep(va).cli(&["stats", "-n", &name_a]).stdout);
    let line = format!(
        "segmenter: {} dropped {kernel}\n",
        segmenter::names(&name_a).join(" ")
    );
    assert!(out.contains(&line), "no `{line}` in:\n{out}");
}

/// The packets the two ends of instance `instance`'s segmenter in namespace `ns` dropped,
/// sending and receiving; panics when `ns` does not have both.
fn segmenter_drops(ns: &str, instance: &str) -> u64 {
    let out = ip(&["-n", ns, "-j", "-s", "link", "show"]);
    let links: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("ip -j");
    segmenter::names(instance)
        .iter()
        .map(|end| {
            let l = links
                .iter()
                .find(|l| l["ifname"] == end.as_str())
                .unwrap_or_else(|| panic!("no segmenter end {end} in {ns}"));
            l["stats64"]["tx"]["dropped"].as_u64().unwrap_or(0)
                + l["stats64"]["rx"]["dropped"].as_u64().unwrap_or(0)
        })
        .sum()
}

/// Head-end replication over IPv6 with checksums, between three vtep hosts with no static
/// entries: every ARP broadcast goes to two remote VTEPs, each copy with its own outer
/// destination and so its own UDP checksum, summed from what the flood summed once for the
/// frame. A receiving vtep drops a copy with a wrong checksum and counts it
/// (`vxlan_bad_checksum`, which must stay zero on every host); every ping must be answered and
/// every host must have learned both others' workloads.
#[test]
fn ipv6_three_hosts_flood_a_checksummed_copy_to_each_remote() {
    const C6: &str = "2001:db8::3";
    let mut lab = Lab::new();
    let hosts = lab.three_hosts_ipv6();
    let locals = [A6, B6, C6];
    let mut vteps = Vec::new();
    let mut workloads = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let name = lab.name(&format!("v{i}"));
        let w = lab.name(&format!("w{i}"));
        let others: Vec<&str> = (0..3).filter(|&j| j != i).map(|j| locals[j]).collect();
        let cfg = header(&name, &underlay6(locals[i], ""))
            + &vni(300, 4789, &others)
            + &workload(
                &w,
                &format!("192.0.2.{}/24", 11 + i),
                &format!("02:00:00:00:0d:0{i}"),
            );
        vteps.push((lab.start_vtep(host, &cfg), name));
        workloads.push(w);
    }
    for (from, to) in [(0, 1), (0, 2), (1, 2)] {
        assert_ping(&workloads[from], &format!("192.0.2.{}", 11 + to), 2);
    }
    let a = lab.vtep(vteps[0].0).stats(&vteps[0].1);
    assert!(vni_stat(&a, 300, "flood_packets") >= 2, "{a}");
    for (id, name) in &vteps {
        let stats = lab.vtep(*id).stats(name);
        assert_eq!(stats["drops"]["vxlan_bad_checksum"], 0, "{name}: {stats}");
        assert!(
            vni_stat(&stats, 300, "learned") >= 2,
            "{name} learned: {stats}"
        );
    }
}
