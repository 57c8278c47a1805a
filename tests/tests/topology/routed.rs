//! Scenario S4, the routed overlay of seed 001, from the example configs
//! (`examples/s4-host-{a,b}.toml`, VNI 20 on 4789, and `s4-vyos-host-{a,b}.toml`, VNI 10 on
//! 8472): workloads in two subnets, each host their gateway, reach each other through the
//! tunnel; the inner frames on the wire carry the gateways' MACs and the workloads' IPs, as the
//! article's captures show; TCP carries 50 MB byte-exact both ways (decapsulated GSO packets the
//! host forwards on); vtep interoperates with the article's own kernel commands on the other
//! host; and the routes and the forwarding setting go at the stop.

use std::net::Ipv4Addr;

use etherparse::{NetSlice, SlicedPacket};
use vtep_tests::{
    lab::{ArticleHost, Lab, ip, must, ping},
    output::text,
    packet::{Mac, parse_vxlan},
};

use crate::{ADDR_A, ADDR_B, BULK, support::ns_read};

pub(crate) const WA: &str = "10.1.5.10";
pub(crate) const WB: &str = "10.1.8.10";

/// Example `file` with the lab's names: its instance name and its workload namespace
/// `s4-<host>-ns1` (the article's ns1) as `<prefix><host>ns1`.
pub(crate) fn example(lab: &Lab, file: &str, host: &str) -> String {
    let path = format!("{}/../examples/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let name = text
        .lines()
        .find_map(|l| l.strip_prefix("name = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("the example names its instance");
    text.replace(
        &format!("name = \"{name}\""),
        &format!("name = \"{}\"", lab.name(name)),
    )
    .replace(
        &format!("netns = \"s4-{host}-ns1\""),
        &format!("netns = \"{}\"", lab.name(&format!("{host}ns1"))),
    )
}

/// The MAC of `ifname` in namespace `ns`.
fn mac_of(ns: &str, ifname: &str) -> Mac {
    ns_read(ns, &format!("/sys/class/net/{ifname}/address"))
        .parse()
        .expect("a MAC")
}

/// The (source MAC, destination MAC, source IP, destination IP) of the ICMP frames carried in
/// the VXLAN of `frames`, with their VNI and UDP port.
fn inner_icmp(frames: &[Vec<u8>]) -> Vec<(u32, u16, Mac, Mac, Ipv4Addr, Ipv4Addr)> {
    let mut out = Vec::new();
    for f in frames {
        let Ok(v) = parse_vxlan(f) else { continue };
        let Ok(inner) = SlicedPacket::from_ethernet(v.inner) else {
            continue;
        };
        let Some(NetSlice::Ipv4(ipv4)) = inner.net else {
            continue;
        };
        if ipv4.header().protocol() != etherparse::IpNumber::ICMP {
            continue;
        }
        let mac = |b: &[u8]| Mac(b.try_into().unwrap());
        out.push((
            v.vni(),
            v.udp.destination_port,
            mac(&v.inner[6..12]),
            mac(&v.inner[0..6]),
            ipv4.header().source_addr(),
            ipv4.header().destination_addr(),
        ));
    }
    out
}

/// Both example pairs in namespaces: the workloads ping each other, the captured inner frames
/// are the article's, and (on the VNI 20 pair) 50 MB go byte-exact each way; the stop removes
/// the routes and restores forwarding.
#[test]
fn s4_examples_route_between_the_subnets_through_the_tunnel() {
    for (pair, vni, dstport, bulk) in [
        ("s4-host", 20, 4789, true),
        ("s4-vyos-host", 10, 8472, false),
    ] {
        let mut lab = Lab::new();
        let (a, b) = lab.two_hosts();
        let forward_before = ns_read(&a, "/proc/sys/net/ipv4/ip_forward");
        let va = lab.start_vtep(&a, &example(&lab, &format!("{pair}-a.toml"), "a"));
        let vb = lab.start_vtep(&b, &example(&lab, &format!("{pair}-b.toml"), "b"));
        let (wa, wb) = (lab.name("ans1"), lab.name("bns1"));
        assert!(ping(&wa, WB, 2), "{pair}: {WA} -> {WB}");
        assert!(ping(&wb, WA, 2), "{pair}: {WB} -> {WA}");

        // The article's capture: on the wire between the gateways, the inner frame goes from
        // A's vxlan0 to B's (rewritten at each routing hop), the inner IPs are the workloads'.
        let cap = lab.capture(&b, "eth0", &format!("udp dst port {dstport}"));
        assert!(ping(&wa, WB, 3));
        let frames = cap.frames();
        let (gw_a, gw_b) = (mac_of(&a, "vxlan0"), mac_of(&b, "vxlan0"));
        let (wa_ip, wb_ip): (Ipv4Addr, Ipv4Addr) = (WA.parse().unwrap(), WB.parse().unwrap());
        let seen = inner_icmp(&frames);
        let want = (vni, dstport, gw_a, gw_b, wa_ip, wb_ip);
        assert!(
            seen.contains(&want),
            "{pair}: no echo {want:?} among {seen:?}"
        );

        if bulk {
            let got = lab.tcp_transfer(&wb, format!("{WB}:5001").parse().unwrap(), &wa, BULK);
            assert_eq!(got, BULK, "{pair}: TCP {WA} -> {WB}");
            let got = lab.tcp_transfer(&wa, format!("{WA}:5002").parse().unwrap(), &wb, BULK);
            assert_eq!(got, BULK, "{pair}: TCP {WB} -> {WA}");
        }

        for id in [va, vb] {
            let status = lab.vtep(id).stop().expect("runs");
            assert!(status.success(), "{}", lab.vtep(id).log());
        }
        let routes = text(&ip(&["-n", &a, "route", "show", "10.1.8.0/24"]).stdout);
        assert!(routes.trim().is_empty(), "{pair}: route left: {routes}");
        assert_eq!(
            ns_read(&a, "/proc/sys/net/ipv4/ip_forward"),
            forward_before,
            "{pair}: forwarding not restored"
        );
    }
}

/// The article's commands for host `host` of `lab` (`a` or `b`): its br0 gateway, ns1 behind
/// it, vxlan0 (VNI 20 on 4789) with the overlay address, the route to the far subnet.
pub(crate) fn article_host(
    lab: &Lab,
    host: &str,
    me: (&str, &str, &str),
    peer: (&str, &str, &str),
) {
    let (gateway, workload_ip, overlay) = me;
    let (far_subnet, peer_underlay, peer_overlay) = peer;
    let workload = lab.host(&format!("{host}ns1"));
    must(
        ArticleHost {
            host: &lab.name(host),
            workload: &workload,
            gateway,
            workload_ip,
            overlay,
            vni: 20,
            dstport: 4789,
            peer_underlay,
            peer_overlay,
            far_subnet,
        }
        .build(),
    );
}

/// vtep on one host (the example config), the article's kernel commands on the other, each way
/// round: the workloads ping and carry 50 MB byte-exact in both directions.
#[test]
fn s4_interop_with_the_articles_kernel_commands() {
    for vtep_on_a in [true, false] {
        let mut lab = Lab::new();
        let (a, b) = lab.two_hosts();
        if vtep_on_a {
            lab.start_vtep(&a, &example(&lab, "s4-host-a.toml", "a"));
            article_host(
                &lab,
                "b",
                ("10.1.8.1", WB, "1.1.1.2"),
                ("10.1.5.0/24", ADDR_A, "1.1.1.1"),
            );
        } else {
            article_host(
                &lab,
                "a",
                ("10.1.5.1", WA, "1.1.1.1"),
                ("10.1.8.0/24", ADDR_B, "1.1.1.2"),
            );
            lab.start_vtep(&b, &example(&lab, "s4-host-b.toml", "b"));
        }
        let side = if vtep_on_a {
            "vtep on a, kernel on b"
        } else {
            "kernel on a, vtep on b"
        };
        let (wa, wb) = (lab.name("ans1"), lab.name("bns1"));
        assert!(ping(&wa, WB, 3), "{side}: {WA} -> {WB}");
        assert!(ping(&wb, WA, 3), "{side}: {WB} -> {WA}");
        let got = lab.tcp_transfer(&wb, format!("{WB}:5001").parse().unwrap(), &wa, BULK);
        assert_eq!(got, BULK, "{side}: TCP {WA} -> {WB}");
        let got = lab.tcp_transfer(&wa, format!("{WA}:5002").parse().unwrap(), &wb, BULK);
        assert_eq!(got, BULK, "{side}: TCP {WB} -> {WA}");
    }
}
