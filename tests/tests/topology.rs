//! Namespace integration tests: simulated hosts (network namespaces joined by a veth underlay)
//! running the real `vtep` binary, checked for what a user of it expects: overlay reachability
//! (S1, S2, adopted ports, IPv6 inside, routed underlay, underlay link flap), RFC 7348 on the
//! wire, both VXLAN ports, VNI isolation, interoperation with the kernel's vxlan driver,
//! malformed VXLAN dropped and counted, underlay traffic untouched, config errors that change
//! nothing, and nothing left behind after a stop or a crash.
//!
//! Every test builds its own hosts with a [`Lab`]; every name (namespaces, interfaces, instance
//! names) starts with the lab's unique prefix so parallel runs never collide and the lab's
//! `Drop` removes whatever a failed test left. Tests do not depend on each other.
//!
//! Run as root after building vtep: `cargo build -p vtep-user && cargo test -p vtep-tests
//! --test topology -- --test-threads=2`.

use std::{
    net::{Ipv4Addr, SocketAddr, UdpSocket},
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use aya::programs::{SchedClassifier, TcAttachType};
use serde_json::Value;
use vtep_tests::configs::{self, adopted_port, fdb, host_port, text, vni, workload};
use vtep_tests::lab::{
    Capture, KernelVtep, Lab, if_counter, in_netns, ip, list_netns, ns_exec, ping, run,
    tcp_transfer, vtep_bin,
};

/// Bytes sent by the bulk TCP transfers.
const BULK: u64 = 50 * 1024 * 1024;

const ADDR_A: &str = "198.18.0.1";
const ADDR_B: &str = "198.18.0.2";

// ---------------------------------------------------------------------------------------------
// Config text
// ---------------------------------------------------------------------------------------------

/// A config head: instance `name`, the `eth0` underlay with `underlay_extra` lines.
fn header(name: &str, underlay_extra: &str) -> String {
    configs::header(name, "", underlay_extra)
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/// `ping -c count -i interval` from `ns`; true when every echo was answered.
fn ping_n(ns: &str, addr: &str, count: u32, interval: &str) -> bool {
    vtep_tests::lab::ping_with(ns, addr, count, interval, 2)
}

/// Asserts that 2 pings of `size` bytes of IP packet with DF set (no fragmentation anywhere)
/// from `ns` to `addr` are answered.
#[track_caller]
fn assert_ping_df(ns: &str, addr: &str, size: u32) {
    let payload = (size - 28).to_string();
    let out = ns_exec(
        ns,
        "ping",
        &[
            "-c", "2", "-i", "0.2", "-W", "2", "-M", "do", "-s", &payload, "-q", addr,
        ],
    );
    assert!(
        out.status.success(),
        "{size}-byte packets {ns} -> {addr} with DF: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Asserts `count` pings from `ns` to `addr` are all answered.
#[track_caller]
fn assert_ping(ns: &str, addr: &str, count: u32) {
    assert!(ping(ns, addr, count), "ping {ns} -> {addr} failed");
}

/// One counter of one VNI from `vtep stats -j`.
fn vni_stat(stats: &Value, vni: u64, key: &str) -> u64 {
    stats["vnis"]
        .as_array()
        .expect("stats.vnis")
        .iter()
        .find(|v| v["vni"].as_u64() == Some(vni))
        .unwrap_or_else(|| panic!("VNI {vni} missing from stats: {stats}"))[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing from stats: {stats}"))
}

/// A file's contents read inside namespace `ns` (`ip netns exec` also remounts /sys).
fn ns_read(ns: &str, path: &str) -> String {
    let out = ns_exec(ns, "cat", &[path]);
    assert!(
        out.status.success(),
        "{ns}: cat {path}: {}",
        text(&out.stderr)
    );
    text(&out.stdout).trim().to_string()
}

/// The MAC `ns` has in its neighbour table for `addr` (lowercase), if any.
fn neighbour_mac(ns: &str, addr: &str) -> Option<String> {
    let out = ip(&["-n", ns, "neigh", "show", addr]);
    let s = text(&out.stdout);
    let mut words = s.split_whitespace();
    while let Some(w) = words.next() {
        if w == "lladdr" {
            return words.next().map(|m| m.to_lowercase());
        }
    }
    None
}

/// Names of the programs attached (TCX) to the ingress of `ifname` in `ns`, by BPF_PROG_QUERY.
/// iproute2 6.1 on this machine neither lists TCX programs in `tc filter show` nor in
/// `ip -d link`, so the kernel is asked directly.
fn tcx_ingress(ns: &str, ifname: &str) -> Vec<String> {
    let ifname = ifname.to_string();
    let ns_name = ns.to_string();
    in_netns(ns, move || {
        let (_, progs) = SchedClassifier::query_tcx(&ifname, TcAttachType::Ingress)
            .unwrap_or_else(|e| panic!("{ns_name}: querying TCX ingress of {ifname}: {e}"));
        progs
            .iter()
            .map(|p| p.name_as_str().unwrap_or("?").to_string())
            .collect()
    })
}

/// Runs `vtep ARGS` to completion (at most `limit`; a still-running `vtep` gets SIGINT and the
/// result is reported as an error with its output).
fn vtep_run(args: &[&str], limit: Duration) -> Result<Output, String> {
    let mut child = Command::new(vtep_bin())
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning vtep");
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("waiting for vtep").is_some() {
            return Ok(child.wait_with_output().expect("vtep output"));
        }
        if Instant::now() > deadline {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            let out = child.wait_with_output().expect("vtep output");
            return Err(format!(
                "vtep {} still running after {limit:?}; stopped it. stdout: {} stderr: {}",
                args.join(" "),
                text(&out.stdout),
                text(&out.stderr)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn pin_dir(name: &str) -> String {
    format!("/sys/fs/bpf/vtep/{name}")
}

fn state_file(name: &str) -> String {
    format!("/run/vtep/{name}.json")
}

// ---------------------------------------------------------------------------------------------
// Frame parsing
// ---------------------------------------------------------------------------------------------

fn mac_bytes(s: &str) -> [u8; 6] {
    let mut out = [0u8; 6];
    for (b, p) in out.iter_mut().zip(s.split(':')) {
        *b = u8::from_str_radix(p, 16).expect("MAC");
    }
    out
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn ip4(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// Ones' complement checksum over `data` (0 when a header with its checksum field is valid).
fn csum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet/IPv4/UDP/VXLAN frame as captured on the underlay.
#[derive(Debug)]
struct Vxlan {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    ip_csum_ok: bool,
    sport: u16,
    dport: u16,
    /// UDP checksum field as sent, and whether it verifies over the pseudo-header and payload.
    udp_csum: u16,
    udp_csum_ok: bool,
    /// VXLAN header byte 0 (flags: 0x08 = I).
    flags: u8,
    /// Header bytes 1..4 and 7 (reserved, must be zero).
    reserved: [u8; 4],
    vni: u32,
    inner: Vec<u8>,
}

/// Parses one captured frame as outer Ethernet + IPv4 + UDP + VXLAN.
fn parse_vxlan(f: &[u8]) -> Result<Vxlan, String> {
    if f.len() < 14 + 20 + 8 + 8 + 14 {
        return Err(format!("{} bytes: too short for VXLAN", f.len()));
    }
    if be16(f, 12) != 0x0800 {
        return Err(format!("outer ethertype {:#06x}, not IPv4", be16(f, 12)));
    }
    let ip = &f[14..];
    if ip[0] >> 4 != 4 {
        return Err("outer IP version is not 4".into());
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[9] != 17 {
        return Err(format!("outer IP protocol {}, not UDP", ip[9]));
    }
    let total = usize::from(be16(ip, 2));
    if total > ip.len() {
        return Err(format!(
            "outer IP total length {total} > {} captured",
            ip.len()
        ));
    }
    let udp = &ip[ihl..total];
    let udp_len = usize::from(be16(udp, 4));
    if udp_len != udp.len() {
        return Err(format!(
            "UDP length {udp_len} != IP payload length {}",
            udp.len()
        ));
    }
    let vx = &udp[8..];
    Ok(Vxlan {
        src: ip4(ip, 12),
        dst: ip4(ip, 16),
        ttl: ip[8],
        ip_csum_ok: csum(&ip[..ihl]) == 0,
        sport: be16(udp, 0),
        dport: be16(udp, 2),
        udp_csum: be16(udp, 6),
        udp_csum_ok: {
            let mut pseudo = Vec::with_capacity(12 + udp.len());
            pseudo.extend_from_slice(&ip[12..20]);
            pseudo.extend_from_slice(&[0, 17]);
            pseudo.extend_from_slice(&(udp.len() as u16).to_be_bytes());
            pseudo.extend_from_slice(udp);
            csum(&pseudo) == 0
        },
        flags: vx[0],
        reserved: [vx[1], vx[2], vx[3], vx[7]],
        vni: u32::from_be_bytes([0, vx[4], vx[5], vx[6]]),
        inner: vx[8..].to_vec(),
    })
}

/// The interesting part of an inner frame carrying ICMP over IPv4.
#[derive(Debug, PartialEq, Eq)]
struct InnerIcmp {
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    /// 8 echo request, 0 echo reply.
    icmp_type: u8,
}

fn parse_inner_icmp(f: &[u8]) -> Option<InnerIcmp> {
    if f.len() < 14 + 20 + 8 || be16(f, 12) != 0x0800 {
        return None;
    }
    let ip = &f[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[9] != 1 || ip.len() < ihl + 8 {
        return None;
    }
    Some(InnerIcmp {
        dst_mac: f[0..6].try_into().unwrap(),
        src_mac: f[6..12].try_into().unwrap(),
        src: ip4(ip, 12),
        dst: ip4(ip, 16),
        icmp_type: ip[ihl],
    })
}

/// Destination port of an inner IPv4/UDP frame.
fn inner_udp_dport(f: &[u8]) -> Option<u16> {
    if f.len() < 14 + 20 + 8 || be16(f, 12) != 0x0800 || f[14 + 9] != 17 {
        return None;
    }
    let ihl = usize::from(f[14] & 0x0f) * 4;
    (f.len() >= 14 + ihl + 8).then(|| be16(f, 14 + ihl + 2))
}

// ---------------------------------------------------------------------------------------------
// S1, S2
// ---------------------------------------------------------------------------------------------

/// S1: an overlay address on each host itself; the hosts reach each other over VNI 1.
#[test]
fn s1_point_to_point() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    let (name_a, name_b) = (lab.name("va"), lab.name("vb"));
    let (if_a, if_b) = (lab.name("x"), lab.name("y"));
    let mac_a = "02:00:00:00:01:01";
    let cfg_a = header(&name_a, "")
        + &vni(1, 4789, &[ADDR_B])
        + &host_port(&if_a, "192.0.2.1/24")
        + &format!("mac = \"{mac_a}\"\n\n");
    let cfg_b = header(&name_b, "") + &vni(1, 4789, &[ADDR_A]) + &host_port(&if_b, "192.0.2.2/24");
    let va = lab.start_vtep(&a, &cfg_a);
    lab.start_vtep(&b, &cfg_b);

    assert_ping(&a, "192.0.2.2", 3);
    assert_ping(&b, "192.0.2.1", 3);
    // B resolved A's overlay address to the configured MAC of A's host interface.
    assert_eq!(neighbour_mac(&b, "192.0.2.1").as_deref(), Some(mac_a));
    // The address really is on the overlay interface vtep made, not reached some other way.
    let route = text(&ip(&["-n", &a, "route", "get", "192.0.2.2"]).stdout);
    assert!(route.contains(&format!("dev {if_a} ")), "{route}");
    let stats = lab.vtep(va).stats(&name_a);
    assert!(vni_stat(&stats, 1, "encap_packets") >= 3, "{stats}");
    assert!(vni_stat(&stats, 1, "decap_packets") >= 3, "{stats}");

    let len = 8 * 1024 * 1024;
    let got = tcp_transfer(&b, "192.0.2.2:5001".parse().unwrap(), &a, len);
    assert_eq!(got, len, "TCP A -> B over the overlay");
}

const S2_A1: &str = "02:00:00:00:0a:01";
const S2_A2: &str = "02:00:00:00:0a:02";
const S2_B1: &str = "02:00:00:00:0b:01";
const S2_B2: &str = "02:00:00:00:0b:02";

/// Two hosts with two workloads each on VNI 200 (examples/s2-host-*.toml with lab names).
struct S2 {
    lab: Lab,
    a: String,
    b: String,
    a1: String,
    a2: String,
    b1: String,
    b2: String,
    va: usize,
    name_a: String,
    vb: usize,
    name_b: String,
}

fn s2() -> S2 {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    let [a1, a2, b1, b2] = ["a1", "a2", "b1", "b2"].map(|s| lab.name(s));
    let (name_a, name_b) = (lab.name("va"), lab.name("vb"));
    let cfg_a = header(&name_a, &format!("local = \"{ADDR_A}\""))
        + &vni(200, 4789, &[ADDR_B])
        + &workload(&a1, "192.0.2.11/24", S2_A1)
        + &workload(&a2, "192.0.2.12/24", S2_A2)
        + &fdb(S2_B1, ADDR_B)
        + &fdb(S2_B2, ADDR_B);
    let cfg_b = header(&name_b, &format!("local = \"{ADDR_B}\""))
        + &vni(200, 4789, &[ADDR_A])
        + &workload(&b1, "192.0.2.21/24", S2_B1)
        + &workload(&b2, "192.0.2.22/24", S2_B2)
        + &fdb(S2_A1, ADDR_A)
        + &fdb(S2_A2, ADDR_A);
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

#[test]
fn s2_workloads_across_hosts() {
    let S2 {
        mut lab,
        a,
        a1,
        a2,
        b1,
        b2,
        va,
        name_a,
        ..
    } = s2();

    // Workload MTU leaves room for the 50 bytes of IPv4 VXLAN overhead.
    for ns in [&a1, &a2, &b1, &b2] {
        assert_eq!(
            ns_read(ns, "/sys/class/net/eth0/mtu"),
            "1450",
            "MTU of eth0 in {ns}"
        );
    }
    // The workloads got the configured MACs.
    assert_eq!(ns_read(&a1, "/sys/class/net/eth0/address"), S2_A1);
    assert_eq!(ns_read(&b2, "/sys/class/net/eth0/address"), S2_B2);

    // Every workload reaches every workload on the other host, both ways.
    for (from, to) in [
        (&a1, "192.0.2.21"),
        (&a1, "192.0.2.22"),
        (&a2, "192.0.2.21"),
        (&a2, "192.0.2.22"),
        (&b1, "192.0.2.11"),
        (&b1, "192.0.2.12"),
        (&b2, "192.0.2.11"),
        (&b2, "192.0.2.12"),
    ] {
        assert_ping(from, to, 2);
    }

    // A full-size frame (1450-byte IP packet, DF set) crosses: the MTU really fits.
    assert_ping_df(&a1, "192.0.2.21", 1450);

    // `vtep fdb show` lists the local workloads on their ports and the static remote entries.
    let out = lab.vtep(va).cli(&["fdb", "show", "-n", &name_a, "-j"]);
    assert!(out.status.success(), "fdb show: {}", text(&out.stderr));
    let rows: Value = serde_json::from_slice(&out.stdout).expect("fdb JSON");
    let row = |mac: &str| {
        rows.as_array()
            .expect("fdb rows")
            .iter()
            .find(|r| r["mac"] == mac && r["vni"] == 200)
            .unwrap_or_else(|| panic!("{mac} missing from fdb show: {rows}"))
            .clone()
    };
    assert_eq!(row(S2_A1)["port"], format!("{a1}-h"));
    assert_eq!(row(S2_A2)["port"], format!("{a2}-h"));
    assert_eq!(row(S2_B1)["dst"], ADDR_B);
    assert_eq!(row(S2_B2)["dst"], ADDR_B);

    // Bulk TCP across hosts arrives complete and intact.
    let got = tcp_transfer(&b1, "192.0.2.21:5001".parse().unwrap(), &a1, BULK);
    assert_eq!(got, BULK, "TCP a1 -> b1: bytes received intact");

    // Same-host traffic is switched on the host: it moves vtep's local counters, not the
    // underlay. One ping first so ARP (which is flooded to the remote VTEP) is done.
    assert_ping(&a1, "192.0.2.12", 1);
    let tx_before = if_counter(&a, "eth0", "tx_packets");
    let local_before = vni_stat(&lab.vtep(va).stats(&name_a), 200, "local_packets");
    assert!(
        ping_n(&a1, "192.0.2.12", 50, "0.02"),
        "ping a1 -> a2 failed"
    );
    let tx_after = if_counter(&a, "eth0", "tx_packets");
    let local_after = vni_stat(&lab.vtep(va).stats(&name_a), 200, "local_packets");
    // Allowance for unrelated frames (IPv6 router solicitations and MLD reports of the new
    // workloads are multicast and flooded to the remote VTEP; ARP refreshes of the underlay).
    assert!(
        tx_after - tx_before <= 10,
        "a1 -> a2 left through the underlay: eth0 tx_packets {tx_before} -> {tx_after}"
    );
    assert!(
        local_after - local_before >= 100,
        "50 echo requests + 50 replies between a1 and a2 not switched locally: local_packets \
         {local_before} -> {local_after}"
    );
}

// ---------------------------------------------------------------------------------------------
// Wire format
// ---------------------------------------------------------------------------------------------

#[test]
fn wire_format_on_underlay() {
    const VNI: u32 = 5_000_000;
    const TTL: u8 = 17;
    const SPORT: [u16; 2] = [40000, 40100];
    const DSTPORT: u16 = 4789;
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    let (w_a, w_b) = (lab.name("a1"), lab.name("b1"));
    let underlay = format!("ttl = {TTL}\nsrcport = [{}, {}]", SPORT[0], SPORT[1]);
    let cfg_a = header(&lab.name("va"), &underlay)
        + &vni(VNI, DSTPORT, &[ADDR_B])
        + &workload(&w_a, "192.0.2.11/24", S2_A1)
        + &fdb(S2_B1, ADDR_B);
    let cfg_b = header(&lab.name("vb"), &underlay)
        + &vni(VNI, DSTPORT, &[ADDR_A])
        + &workload(&w_b, "192.0.2.21/24", S2_B1)
        + &fdb(S2_A1, ADDR_A);
    lab.start_vtep(&a, &cfg_a);
    lab.start_vtep(&b, &cfg_b);

    let cap = Capture::start(&lab, &a, "eth0", "udp");
    assert_ping(&w_a, "192.0.2.21", 5);
    let frames = cap.frames();
    assert!(!frames.is_empty(), "nothing captured on the underlay");

    let (mac_a, mac_b) = (mac_bytes(S2_A1), mac_bytes(S2_B1));
    let (ip_a, ip_b): (Ipv4Addr, Ipv4Addr) = (ADDR_A.parse().unwrap(), ADDR_B.parse().unwrap());
    let (wa, wb): (Ipv4Addr, Ipv4Addr) =
        ("192.0.2.11".parse().unwrap(), "192.0.2.21".parse().unwrap());
    let mut requests = Vec::new();
    let mut replies = 0;
    for (i, f) in frames.iter().enumerate() {
        let v = parse_vxlan(f).unwrap_or_else(|e| panic!("frame {i} is not VXLAN: {e}: {f:02x?}"));
        assert!(
            (v.src, v.dst) == (ip_a, ip_b) || (v.src, v.dst) == (ip_b, ip_a),
            "frame {i}: outer {} -> {} are not the VTEP addresses",
            v.src,
            v.dst
        );
        assert_eq!(v.dport, DSTPORT, "frame {i}: UDP destination port");
        assert!(
            (SPORT[0]..=SPORT[1]).contains(&v.sport),
            "frame {i}: UDP source port {} outside {SPORT:?}",
            v.sport
        );
        assert_eq!(v.flags, 0x08, "frame {i}: VXLAN flags (only I set)");
        assert_eq!(v.reserved, [0; 4], "frame {i}: VXLAN reserved bytes");
        assert_eq!(v.vni, VNI, "frame {i}: VNI");
        assert_eq!(v.ttl, TTL, "frame {i}: outer TTL");
        assert!(v.ip_csum_ok, "frame {i}: outer IPv4 header checksum wrong");
        // RFC 7348: zero (SHOULD for IPv4), or correct over the whole packet.
        assert!(
            v.udp_csum == 0 || v.udp_csum_ok,
            "frame {i}: UDP checksum {:#06x} is neither zero nor correct",
            v.udp_csum
        );
        if let Some(icmp) = parse_inner_icmp(&v.inner) {
            if icmp
                == (InnerIcmp {
                    dst_mac: mac_b,
                    src_mac: mac_a,
                    src: wa,
                    dst: wb,
                    icmp_type: 8,
                })
            {
                assert_eq!((v.src, v.dst), (ip_a, ip_b), "frame {i}: echo request");
                requests.push(v.sport);
            } else if icmp
                == (InnerIcmp {
                    dst_mac: mac_a,
                    src_mac: mac_b,
                    src: wb,
                    dst: wa,
                    icmp_type: 0,
                })
            {
                assert_eq!((v.src, v.dst), (ip_b, ip_a), "frame {i}: echo reply");
                replies += 1;
            } else {
                panic!("frame {i}: unexpected inner ICMP {icmp:?}");
            }
        }
    }
    assert_eq!(
        requests.len(),
        5,
        "echo requests a1 -> b1 seen on the underlay"
    );
    assert_eq!(replies, 5, "echo replies b1 -> a1 seen on the underlay");
    // The source port is a hash of the inner flow: one flow, one port.
    assert!(
        requests.iter().all(|p| *p == requests[0]),
        "one ICMP flow used several UDP source ports: {requests:?}"
    );

    // ...and different flows spread over the range (ECMP entropy): 16 inner UDP flows, each
    // sent twice, keep their port and do not all share one.
    let cap = Capture::start(&lab, &a, "eth0", &format!("udp and src host {ADDR_A}"));
    in_netns(&w_a, || {
        let sock = UdpSocket::bind("192.0.2.11:0").expect("bind");
        for _ in 0..2 {
            for port in 7000..7016u16 {
                sock.send_to(b"flow", ("192.0.2.21", port)).expect("send");
            }
        }
    });
    let mut ports = std::collections::BTreeMap::<u16, Vec<u16>>::new();
    for (i, f) in cap.frames().iter().enumerate() {
        let v = parse_vxlan(f).unwrap_or_else(|e| panic!("UDP frame {i} is not VXLAN: {e}"));
        assert!(
            (SPORT[0]..=SPORT[1]).contains(&v.sport),
            "UDP frame {i}: source port {} outside {SPORT:?}",
            v.sport
        );
        if let Some(dport) = inner_udp_dport(&v.inner) {
            ports.entry(dport).or_default().push(v.sport);
        }
    }
    assert_eq!(ports.len(), 16, "inner UDP flows seen: {ports:?}");
    for (flow, sports) in &ports {
        assert!(
            sports.len() == 2 && sports[0] == sports[1],
            "inner flow to port {flow}: outer source ports {sports:?}"
        );
    }
    let distinct: std::collections::BTreeSet<u16> = ports.values().map(|p| p[0]).collect();
    assert!(
        distinct.len() >= 4,
        "16 inner flows got only outer source ports {distinct:?}"
    );
}

/// VNI 10 on the legacy Linux port 8472 and VNI 20 on 4789, side by side (as in S4).
#[test]
fn dstport_4789_and_8472() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    let [a10, b10, a20, b20] = ["a1", "b1", "a2", "b2"].map(|s| lab.name(s));
    let (m_a10, m_b10, m_a20, m_b20) = (
        "02:00:00:10:0a:01",
        "02:00:00:10:0b:01",
        "02:00:00:20:0a:01",
        "02:00:00:20:0b:01",
    );
    let cfg_a = header(&lab.name("va"), "")
        + &vni(10, 8472, &[ADDR_B])
        + &workload(&a10, "192.0.2.11/24", m_a10)
        + &fdb(m_b10, ADDR_B)
        + &vni(20, 4789, &[ADDR_B])
        + &workload(&a20, "198.51.100.11/24", m_a20)
        + &fdb(m_b20, ADDR_B);
    let cfg_b = header(&lab.name("vb"), "")
        + &vni(10, 8472, &[ADDR_A])
        + &workload(&b10, "192.0.2.21/24", m_b10)
        + &fdb(m_a10, ADDR_A)
        + &vni(20, 4789, &[ADDR_A])
        + &workload(&b20, "198.51.100.21/24", m_b20)
        + &fdb(m_a20, ADDR_A);
    lab.start_vtep(&a, &cfg_a);
    lab.start_vtep(&b, &cfg_b);

    let cap = Capture::start(&lab, &a, "eth0", "udp");
    assert_ping(&a10, "192.0.2.21", 3);
    assert_ping(&b20, "198.51.100.11", 3);
    let frames = cap.frames();

    let mut icmp_by_vni = std::collections::BTreeMap::<u32, usize>::new();
    for (i, f) in frames.iter().enumerate() {
        let v = parse_vxlan(f).unwrap_or_else(|e| panic!("frame {i} is not VXLAN: {e}"));
        let want = match v.vni {
            10 => 8472,
            20 => 4789,
            other => panic!("frame {i}: VNI {other} is not configured"),
        };
        assert_eq!(
            v.dport, want,
            "frame {i}: UDP destination port of VNI {}",
            v.vni
        );
        if parse_inner_icmp(&v.inner).is_some() {
            *icmp_by_vni.entry(v.vni).or_default() += 1;
        }
    }
    // 3 requests + 3 replies per VNI.
    assert_eq!(
        icmp_by_vni.get(&10),
        Some(&6),
        "ICMP frames per VNI: {icmp_by_vni:?}"
    );
    assert_eq!(
        icmp_by_vni.get(&20),
        Some(&6),
        "ICMP frames per VNI: {icmp_by_vni:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Isolation
// ---------------------------------------------------------------------------------------------

#[test]
fn vnis_isolated_with_overlapping_addresses() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    // VNI 100: p1 (host A) and q1 (host B). VNI 200: p2 (A), q2 (B) with the same addresses,
    // and q3 (B), whose address exists only in VNI 200.
    let [p1, q1, p2, q2, q3] = ["p1", "q1", "p2", "q2", "q3"].map(|s| lab.name(s));
    let (m_p1, m_q1) = ("02:00:00:01:0a:01", "02:00:00:01:0b:01");
    let (m_p2, m_q2, m_q3) = (
        "02:00:00:02:0a:01",
        "02:00:00:02:0b:01",
        "02:00:00:02:0b:03",
    );
    let cfg_a = header(&lab.name("va"), "")
        + &vni(100, 4789, &[ADDR_B])
        + &workload(&p1, "192.0.2.11/24", m_p1)
        + &fdb(m_q1, ADDR_B)
        + &vni(200, 4789, &[ADDR_B])
        + &workload(&p2, "192.0.2.11/24", m_p2)
        + &fdb(m_q2, ADDR_B)
        + &fdb(m_q3, ADDR_B);
    let cfg_b = header(&lab.name("vb"), "")
        + &vni(100, 4789, &[ADDR_A])
        + &workload(&q1, "192.0.2.21/24", m_q1)
        + &fdb(m_p1, ADDR_A)
        + &vni(200, 4789, &[ADDR_A])
        + &workload(&q2, "192.0.2.21/24", m_q2)
        + &workload(&q3, "192.0.2.22/24", m_q3)
        + &fdb(m_p2, ADDR_A);
    lab.start_vtep(&a, &cfg_a);
    lab.start_vtep(&b, &cfg_b);

    // Within each VNI the same address reaches that VNI's workload, both ways.
    assert_ping(&p1, "192.0.2.21", 3);
    assert_ping(&p2, "192.0.2.21", 3);
    assert_ping(&q1, "192.0.2.11", 2);
    assert_ping(&q2, "192.0.2.11", 2);
    for (ns, peer, want) in [
        (&p1, "192.0.2.21", m_q1),
        (&p2, "192.0.2.21", m_q2),
        (&q1, "192.0.2.11", m_p1),
        (&q2, "192.0.2.11", m_p2),
    ] {
        assert_eq!(
            neighbour_mac(ns, peer).as_deref(),
            Some(want),
            "{ns}: {peer} answered from the wrong VNI"
        );
    }

    // Nothing of VNI 100 reaches VNI 200: p1 cannot reach q3's address, and q3 sees no frame
    // from p1 (not even its ARP broadcasts), while p2 (same VNI) does reach it.
    let cap = Capture::start(
        &lab,
        &q3,
        "eth0",
        &format!("ether src {m_p1} or ether src {m_p2}"),
    );
    assert!(
        !ping_n(&p1, "192.0.2.22", 3, "0.3"),
        "VNI 100 workload reached an address that exists only in VNI 200"
    );
    assert_ping(&p2, "192.0.2.22", 2);
    let frames = cap.frames();
    let from = |mac: &str| {
        let m = mac_bytes(mac);
        frames.iter().filter(|f| f[6..12] == m).count()
    };
    assert_eq!(from(m_p1), 0, "frames from VNI 100 arrived in VNI 200");
    assert!(from(m_p2) >= 2, "capture in q3 saw no frame from p2");
    assert_eq!(neighbour_mac(&q3, "192.0.2.11").as_deref(), Some(m_p2));
}

/// An inner Ethernet/IPv4/ICMP echo request from `src_mac` (192.0.2.99) to b1 of [`s2`].
fn crafted_echo(src_mac: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&mac_bytes(S2_B1));
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![
        0x45, 0, 0, 36, 0x12, 0x34, 0, 0, 64, 1, 0, 0, 192, 0, 2, 99, 192, 0, 2, 21,
    ];
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut icmp = vec![8, 0, 0, 0, 0x42, 0x42, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8];
    let c = csum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&icmp);
    f
}

/// VXLAN that is for us but malformed, or for a VNI we do not have, is dropped and counted,
/// never delivered; reserved bits are ignored on receive (RFC 7348).
#[test]
fn malformed_and_unknown_vni_vxlan_dropped_and_counted() {
    let S2 {
        mut lab,
        a,
        b1,
        vb,
        name_b,
        ..
    } = s2();
    let src = |n: u8| [0x02, 0, 0, 0, 0xee, n];
    let vxlan = |flags: u8, reserved: u8, vni: u32, inner: &[u8]| {
        let v = vni.to_be_bytes();
        let mut p = vec![
            flags, reserved, reserved, reserved, v[1], v[2], v[3], reserved,
        ];
        p.extend_from_slice(inner);
        p
    };
    let datagrams: Vec<(&str, Vec<u8>)> = vec![
        ("valid", vxlan(0x08, 0, 200, &crafted_echo(src(1)))),
        (
            "reserved bits set",
            vxlan(0xff, 0xff, 200, &crafted_echo(src(2))),
        ),
        ("I flag clear", vxlan(0x00, 0, 200, &crafted_echo(src(3)))),
        ("unknown VNI", vxlan(0x08, 0, 201, &crafted_echo(src(4)))),
        (
            "truncated",
            vxlan(0x08, 0, 200, &crafted_echo(src(5))[..10]),
        ),
    ];

    let drops_before = lab.vtep(vb).stats(&name_b)["drops"].clone();
    let cap = Capture::start(
        &lab,
        &b1,
        "eth0",
        "ether[6:4] = 0x02000000 and ether[10] = 0xee",
    );
    let to_send = datagrams.clone();
    in_netns(&a, move || {
        let sock = UdpSocket::bind(format!("{ADDR_A}:0")).expect("bind");
        for (_, d) in &to_send {
            sock.send_to(d, format!("{ADDR_B}:4789")).expect("send");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let frames = cap.frames();
    let drops_after = lab.vtep(vb).stats(&name_b)["drops"].clone();

    let delivered = |n: u8| frames.iter().filter(|f| f[6..12] == src(n)).count();
    let delta = |reason: &str| {
        drops_after[reason].as_u64().expect(reason) - drops_before[reason].as_u64().expect(reason)
    };
    let mut problems = Vec::new();
    for (n, (what, _)) in datagrams.iter().enumerate() {
        let want = usize::from(n < 2);
        let got = delivered(n as u8 + 1);
        if got != want {
            problems.push(format!(
                "{what}: delivered to b1 {got} time(s), expected {want}"
            ));
        }
    }
    for reason in ["vxlan_bad_flags", "unknown_vni", "vxlan_truncated"] {
        if delta(reason) != 1 {
            problems.push(format!(
                "drop counter {reason} moved by {}, expected 1 (before {drops_before}, after \
                 {drops_after})",
                delta(reason)
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Interoperation with the kernel's vxlan driver
// ---------------------------------------------------------------------------------------------

/// Host A runs vtep; host B runs the kernel's vxlan driver with a bridge and a workload, as
/// seed 000 experiment 2 does.
fn interop(dstport: u16) {
    const VNI: u32 = 42;
    let wb_mac = "02:00:00:00:0b:01";
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    let wa = lab.name("a1");
    let wb = lab.host("wb");

    // Host B: the kernel's VTEP, learning (the default).
    KernelVtep {
        vni: VNI,
        dstport,
        local: ADDR_B,
        flood: &[ADDR_A],
        workload: &wb,
        mac: wb_mac,
        cidr: "192.0.2.21/24",
    }
    .build(&b);

    // Host A: vtep with a static entry for B's workload.
    let cfg_a = header(&lab.name("va"), "")
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
    let got = tcp_transfer(&wb, "192.0.2.21:5001".parse().unwrap(), &wa, BULK);
    assert_eq!(got, BULK, "TCP vtep -> kernel vxlan (dstport {dstport})");
    let got = tcp_transfer(&wa, "192.0.2.11:5002".parse().unwrap(), &wb, BULK);
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

// ---------------------------------------------------------------------------------------------
// Bad configs
// ---------------------------------------------------------------------------------------------

/// What `vtep up` could change on host `ns`, as text to compare.
fn host_snapshot(lab: &Lab, ns: &str) -> Vec<(String, String)> {
    let cmd = |args: &[&str]| text(&ip(args).stdout);
    vec![
        ("links".into(), cmd(&["-n", ns, "-o", "link"])),
        ("addresses".into(), cmd(&["-n", ns, "-4", "-o", "addr"])),
        ("routes".into(), cmd(&["-n", ns, "route"])),
        // Entries somebody made (vtep's are "managed"); the kernel's own come and go.
        (
            "configured neighbours".into(),
            cmd(&["-n", ns, "neigh"])
                .lines()
                .filter(|l| {
                    ["managed", "PERMANENT", "NOARP"]
                        .iter()
                        .any(|w| l.contains(w))
                })
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        ("lab namespaces".into(), format!("{:?}", lab.namespaces())),
    ]
}

/// Host A of two, an interface on it to adopt, and a valid config (instance `name`) with a
/// host port, a workload, the adopted port and a static FDB entry: every kind of thing
/// `vtep up` creates or changes.
struct BadConfigLab {
    lab: Lab,
    a: String,
    name: String,
    good: String,
}

fn bad_config_lab() -> BadConfigLab {
    let lab = Lab::new();
    let (a, _b) = lab.two_hosts();
    let name = lab.name("va");
    let port = lab.name("p");
    let peer_ns = lab.host("pw");
    ip(&[
        "-n", &a, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &peer_ns,
    ]);
    ip(&["-n", &a, "link", "set", &port, "up"]);
    let good = header(&name, "")
        + &vni(100, 4789, &[ADDR_B])
        + &host_port(&lab.name("x"), "192.0.2.1/24")
        + &workload(&lab.name("w1"), "192.0.2.11/24", "02:00:00:00:00:01")
        + &adopted_port(&port)
        + &fdb("02:00:00:00:00:02", ADDR_B);
    BadConfigLab { lab, a, name, good }
}

impl BadConfigLab {
    /// Runs `vtep up` with `cfg` and returns what is wrong with how it refused it: it must
    /// exit non-zero, say every string of `want` on stderr, and leave the host as it was.
    fn refusal_problems(&self, what: &str, cfg: &str, want: &[&str]) -> Vec<String> {
        let mut problems = Vec::new();
        if cfg == self.good {
            return vec![format!(
                "{what}: the mistake was not written into the config"
            )];
        }
        let before = host_snapshot(&self.lab, &self.a);
        let path = self
            .lab
            .file(&format!("bad-{}.toml", what.replace(' ', "-")), cfg);
        let out = match vtep_run(
            &["--netns", &self.a, "up", "-c", path.to_str().unwrap()],
            Duration::from_secs(15),
        ) {
            Ok(out) => out,
            Err(e) => return vec![format!("{what}: accepted: {e}")],
        };
        let stderr = text(&out.stderr);
        if out.status.success() {
            problems.push(format!("{what}: exit status 0; stderr: {stderr}"));
        }
        for w in want {
            if !stderr.contains(w) {
                problems.push(format!("{what}: stderr does not contain `{w}`: {stderr}"));
            }
        }
        let after = host_snapshot(&self.lab, &self.a);
        if after != before {
            problems.push(format!(
                "{what}: system changed:\nbefore {before:#?}\nafter {after:#?}"
            ));
        }
        for path in [state_file(&self.name), pin_dir(&self.name)] {
            if Path::new(&path).exists() {
                problems.push(format!("{what}: {path} exists"));
                let _ = std::fs::remove_dir_all(&path);
                let _ = std::fs::remove_file(&path);
            }
        }
        problems
    }

    /// What is wrong with how `vtep check` refused `cfg` (it must exit non-zero and say every
    /// string of `want`).
    fn check_problems(&self, what: &str, cfg: &str, want: &[&str]) -> Vec<String> {
        let path = self
            .lab
            .file(&format!("check-{}.toml", what.replace(' ', "-")), cfg);
        let out = vtep_run(
            &["check", "-c", path.to_str().unwrap()],
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let stderr = text(&out.stderr);
        let mut problems = Vec::new();
        if out.status.success() {
            problems.push(format!(
                "{what}: `vtep check` accepted it: {}",
                text(&out.stdout)
            ));
        }
        for w in want {
            if !stderr.contains(w) {
                problems.push(format!(
                    "{what}: `vtep check` stderr does not contain `{w}`: {stderr}"
                ));
            }
        }
        problems
    }

    /// The good config starts (and stops cleanly), so each refusal was its mistake's.
    fn assert_good_starts(&mut self) {
        let (a, good) = (self.a.clone(), self.good.clone());
        let id = self.lab.start_vtep(&a, &good);
        let status = self.lab.vtep(id).stop().expect("vtep was running");
        assert!(status.success(), "good config: vtep exited {status}");
    }
}

#[test]
fn bad_config_changes_nothing() {
    let mut c = bad_config_lab();
    let good = c.good.clone();
    let missing = c.lab.name("nx");
    let port = c.lab.name("p");
    let (hostif, w1, pw) = (c.lab.name("x"), c.lab.name("w1"), c.lab.name("pw"));
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "unknown key",
            good.replace("remotes =", "remote_vteps ="),
            vec!["vni[0].remote_vteps", "unknown field `remote_vteps`"],
        ),
        (
            "VNI 0",
            good.replace("id = 100", "id = 0"),
            vec!["vni[0].id", "outside"],
        ),
        (
            "VNI 16777216",
            good.replace("id = 100", "id = 16777216"),
            vec!["vni[0].id", "16777216"],
        ),
        (
            "duplicate VNI",
            format!("{good}[[vni]]\nid = 100\n"),
            vec!["vni[1].id", "twice"],
        ),
        (
            // A parse error: named by its path like validation errors, and by its line.
            "bad address",
            good.replace("192.0.2.11/24", "192.0.2.300/24"),
            vec![
                "vni[0].workload[0].address",
                "`192.0.2.300` is not an IPv4 address",
                "(line ",
            ],
        ),
        (
            "bad MAC",
            good.replace("02:00:00:00:00:01", "02:00:00:00:01"),
            vec!["vni[0].workload[0].mac", "is not a MAC address", "(line "],
        ),
        (
            "group MAC",
            good.replace("02:00:00:00:00:01", "03:00:00:00:00:01"),
            vec!["vni[0].workload[0].mac", "group address"],
        ),
        (
            "missing underlay interface",
            good.replace(
                "interface = \"eth0\"",
                &format!("interface = \"{missing}\""),
            ),
            vec!["underlay.interface", &missing],
        ),
        (
            "missing adopted port",
            good.replace(
                &format!("interface = \"{port}\""),
                &format!("interface = \"{missing}\""),
            ),
            vec!["vni[0].port[0].interface", &missing],
        ),
        (
            "host interface exists",
            good.replace(&format!("interface = \"{hostif}\""), "interface = \"lo\""),
            vec!["vni[0].host.interface", "`lo` already exists"],
        ),
        (
            // pw holds the adopted port's peer, called eth0.
            "workload interface exists in its namespace",
            good.replace(&format!("netns = \"{w1}\""), &format!("netns = \"{pw}\"")),
            vec!["vni[0].workload[0].interface", "already exists"],
        ),
    ];
    let mut problems: Vec<String> = cases
        .iter()
        .flat_map(|(what, cfg, want)| c.refusal_problems(what, cfg, want))
        .collect();
    // `vtep check` finds the mistakes that need no look at the system, and passes the good one.
    let config_only = [
        "unknown key",
        "VNI 0",
        "VNI 16777216",
        "duplicate VNI",
        "bad address",
        "bad MAC",
        "group MAC",
    ];
    for (what, cfg, want) in cases.iter().filter(|(w, ..)| config_only.contains(w)) {
        problems.extend(c.check_problems(what, cfg, want));
    }
    let good_path = c.lab.file("good.toml", &good);
    let out = vtep_run(
        &["check", "-c", good_path.to_str().unwrap()],
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    if !out.status.success() {
        problems.push(format!(
            "vtep check refused the good config: {}",
            text(&out.stderr)
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    c.assert_good_starts();
}

/// An FDB too small for the config's own entries is a config error, found before anything on
/// the system changes, naming `fdb_size`.
#[test]
fn fdb_size_too_small_is_a_config_error() {
    let mut c = bad_config_lab();
    // The config has 3 entries: the host port's MAC, the workload's and one static entry.
    let cfg = c
        .good
        .replacen("\n\n[underlay]", "\nfdb_size = 2\n\n[underlay]", 1);
    let mut problems = c.refusal_problems("fdb_size 2", &cfg, &["fdb_size"]);
    problems.extend(c.check_problems("fdb_size 2", &cfg, &["fdb_size"]));
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    c.assert_good_starts();
}

/// Instance names are global (pins, state file): a second `vtep up` under a running
/// instance's name, even in another namespace, is refused and changes nothing.
#[test]
fn second_instance_with_same_name_is_refused() {
    let mut c = bad_config_lab();
    let (a, good) = (c.a.clone(), c.good.clone());
    let id = c.lab.start_vtep(&a, &good);
    let b = c.lab.name("b");
    let cfg = header(&c.name, "")
        + &vni(100, 4789, &[ADDR_A])
        + &workload(&c.lab.name("w9"), "192.0.2.21/24", "02:00:00:00:00:09");
    let before = host_snapshot(&c.lab, &b);
    let path = c.lab.file("same-name.toml", &cfg);
    let out = vtep_run(
        &["--netns", &b, "up", "-c", path.to_str().unwrap()],
        Duration::from_secs(15),
    )
    .unwrap_or_else(|e| panic!("second instance accepted: {e}"));
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "second instance: exit status 0");
    assert!(
        stderr.contains(&c.name),
        "error does not name the instance: {stderr}"
    );
    assert_eq!(host_snapshot(&c.lab, &b), before, "host B changed");
    // The first instance is untouched: its state is still there and it stops cleanly.
    assert!(Path::new(&state_file(&c.name)).exists());
    assert!(Path::new(&pin_dir(&c.name)).exists());
    let stats = c.lab.vtep(id).stats(&c.name);
    assert_eq!(stats["vnis"][0]["vni"], 100, "{stats}");
    let status = c.lab.vtep(id).stop().expect("vtep was running");
    assert!(status.success(), "first instance exited {status}");
}

// ---------------------------------------------------------------------------------------------
// Cleanup
// ---------------------------------------------------------------------------------------------

/// Everything about host `ns` that vtep touches, for before/after comparisons.
#[derive(Debug, PartialEq, Eq)]
struct HostState {
    links: String,
    addresses: String,
    routes: String,
    managed_neighbours: Vec<String>,
    qdiscs: String,
    tc_ingress_filters: String,
    tcx_eth0: Vec<String>,
    tcx_port: Vec<String>,
    port_forwarding: String,
    namespaces: Vec<String>,
}

/// A host with a vtep config that has a host port, two workloads and an adopted port.
struct CleanupLab {
    lab: Lab,
    a: String,
    name: String,
    port: String,
    workloads: [String; 2],
    config: String,
}

fn cleanup_lab() -> CleanupLab {
    let lab = Lab::new();
    let (a, _b) = lab.two_hosts();
    let name = lab.name("va");
    let workloads = [lab.name("w1"), lab.name("w2")];
    let port = lab.name("p");
    let peer_ns = lab.host("pw");
    ip(&[
        "-n", &a, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &peer_ns,
    ]);
    ip(&["-n", &a, "link", "set", &port, "up"]);
    ip(&["-n", &peer_ns, "link", "set", "eth0", "up"]);
    // vtep turns forwarding on for its ports; this one must get its old value back.
    let out = ns_exec(
        &a,
        "sysctl",
        &["-w", &format!("net.ipv4.conf.{port}.forwarding=0")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config = header(&name, "")
        + &vni(100, 4789, &[ADDR_B])
        + &host_port(&lab.name("x"), "192.0.2.1/24")
        + &workload(&workloads[0], "192.0.2.11/24", "02:00:00:00:00:01")
        + &workload(&workloads[1], "192.0.2.12/24", "02:00:00:00:00:02")
        + &adopted_port(&port)
        + &fdb("02:00:00:00:0b:01", ADDR_B);
    CleanupLab {
        lab,
        a,
        name,
        port,
        workloads,
        config,
    }
}

impl CleanupLab {
    fn state(&self) -> HostState {
        let a = &self.a;
        let cmd = |c: &str, args: &[&str]| text(&run(c, args).stdout);
        let neigh = cmd("ip", &["-n", a, "neigh", "show"]);
        HostState {
            links: cmd("ip", &["-n", a, "-o", "link"]),
            addresses: cmd("ip", &["-n", a, "-4", "-o", "addr"]),
            routes: cmd("ip", &["-n", a, "route"]),
            managed_neighbours: neigh
                .lines()
                .filter(|l| l.contains("managed"))
                .map(str::to_string)
                .collect(),
            qdiscs: cmd("tc", &["-n", a, "qdisc", "show"]),
            tc_ingress_filters: cmd("tc", &["-n", a, "filter", "show", "dev", "eth0", "ingress"]),
            tcx_eth0: tcx_ingress(a, "eth0"),
            tcx_port: tcx_ingress(a, &self.port),
            port_forwarding: ns_read(
                a,
                &format!("/proc/sys/net/ipv4/conf/{}/forwarding", self.port),
            ),
            namespaces: self.lab.namespaces(),
        }
    }

    /// Checks that the instance is really up and has changed the host.
    fn assert_running(&self, running: &HostState) {
        for w in &self.workloads {
            assert!(running.namespaces.contains(w), "{w} not created");
        }
        assert!(
            running.tcx_eth0.iter().any(|p| p == "vtep_underlay"),
            "no vtep program on eth0 ingress: {:?}",
            running.tcx_eth0
        );
        assert!(
            running.tcx_port.iter().any(|p| p == "vtep_port"),
            "no vtep program on the adopted port: {:?}",
            running.tcx_port
        );
        assert_eq!(running.port_forwarding, "1");
        assert!(
            running
                .managed_neighbours
                .iter()
                .any(|l| l.contains(ADDR_B)),
            "no managed neighbour for the remote VTEP: {:?}",
            running.managed_neighbours
        );
        assert!(Path::new(&state_file(&self.name)).exists());
        assert!(Path::new(&pin_dir(&self.name)).exists());
        // The datapath works: a workload reaches the host port and the other workload.
        assert_ping(&self.workloads[0], "192.0.2.1", 2);
        assert_ping(&self.workloads[0], "192.0.2.12", 2);
    }

    /// Checks that the host is as it was before `vtep up`.
    fn assert_restored(&self, before: &HostState, when: &str) {
        let after = self.state();
        assert_eq!(&after, before, "{when}: host differs from before `vtep up`");
        for w in &self.workloads {
            assert!(
                !list_netns().contains(w),
                "{when}: workload namespace {w} left"
            );
        }
        assert!(after.tcx_eth0.is_empty() && after.tcx_port.is_empty());
        assert!(after.tc_ingress_filters.trim().is_empty());
        assert!(
            !after.qdiscs.contains("clsact") && !after.qdiscs.contains("ingress"),
            "{when}: {}",
            after.qdiscs
        );
        assert!(
            !Path::new(&pin_dir(&self.name)).exists(),
            "{when}: pins left"
        );
        assert!(
            !Path::new(&state_file(&self.name)).exists(),
            "{when}: state file left"
        );
    }
}

#[test]
fn nothing_left_after_stop() {
    let mut c = cleanup_lab();
    let before = c.state();
    assert_eq!(before.port_forwarding, "0");
    let a = c.a.clone();
    let config = c.config.clone();
    let id = c.lab.start_vtep(&a, &config);
    c.assert_running(&c.state());

    let status = c.lab.vtep(id).stop().expect("vtep was running");
    assert!(
        status.success(),
        "vtep exited {status}: {}",
        c.lab.vtep(id).log()
    );
    c.assert_restored(&before, "after SIGINT");
}

#[test]
fn nothing_left_after_sigterm() {
    let mut c = cleanup_lab();
    let before = c.state();
    let a = c.a.clone();
    let config = c.config.clone();
    let id = c.lab.start_vtep(&a, &config);
    c.assert_running(&c.state());

    let status = c
        .lab
        .vtep(id)
        .stop_with(nix::sys::signal::Signal::SIGTERM)
        .expect("vtep was running");
    assert!(
        status.success(),
        "vtep exited {status}: {}",
        c.lab.vtep(id).log()
    );
    c.assert_restored(&before, "after SIGTERM");
}

/// A workload namespace that existed before `vtep up` is the user's: vtep puts its interface
/// in and takes it out again, and the namespace stays.
#[test]
fn existing_workload_namespace_is_kept() {
    let mut lab = Lab::new();
    let (a, _b) = lab.two_hosts();
    let w1 = lab.host("w1");
    let w2 = lab.name("w2");
    let w1_links = text(&ip(&["-n", &w1, "-o", "link"]).stdout);
    let cfg = header(&lab.name("va"), "")
        + &vni(100, 4789, &[ADDR_B])
        + &workload(&w1, "192.0.2.11/24", "02:00:00:00:00:01")
        + &workload(&w2, "192.0.2.12/24", "02:00:00:00:00:02");
    let id = lab.start_vtep(&a, &cfg);
    assert_ping(&w1, "192.0.2.12", 2);
    let status = lab.vtep(id).stop().expect("vtep was running");
    assert!(status.success(), "vtep exited {status}");
    assert!(
        list_netns().contains(&w1),
        "pre-existing namespace {w1} was deleted"
    );
    assert!(
        !list_netns().contains(&w2),
        "namespace {w2} that vtep made is left"
    );
    assert_eq!(
        text(&ip(&["-n", &w1, "-o", "link"]).stdout),
        w1_links,
        "interfaces left in {w1}"
    );
}

#[test]
fn nothing_left_after_kill_and_down() {
    let mut c = cleanup_lab();
    let before = c.state();
    let a = c.a.clone();
    let config = c.config.clone();
    let id = c.lab.start_vtep(&a, &config);
    c.assert_running(&c.state());

    c.lab.vtep(id).kill().expect("vtep was running");
    // The crash left the instance's state behind (so `down` has work to do).
    assert!(Path::new(&state_file(&c.name)).exists());
    assert!(c.lab.namespaces().contains(&c.workloads[0]));
    // A new `up` under the crashed instance's name is refused, pointing at `vtep down`.
    let path = c.lab.file("again.toml", &config);
    let out = vtep_run(
        &["--netns", &a, "up", "-c", path.to_str().unwrap()],
        Duration::from_secs(15),
    )
    .unwrap_or_else(|e| panic!("up over a crashed instance accepted: {e}"));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("vtep down"),
        "{}",
        text(&out.stderr)
    );
    // TCX attachments belong to the process: they went with it.
    assert!(tcx_ingress(&a, "eth0").is_empty(), "program left on eth0");
    assert!(tcx_ingress(&a, &c.port).is_empty(), "program left on port");

    let out = vtep_run(
        &["--netns", &a, "down", "-n", &c.name],
        Duration::from_secs(20),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "vtep down failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    c.assert_restored(&before, "after kill -9 and `vtep down`");

    // And the instance can be started again under the same name.
    let id = c.lab.start_vtep(&a, &config);
    let status = c.lab.vtep(id).stop().expect("vtep was running");
    assert!(status.success());
    c.assert_restored(&before, "after restart and stop");
}

/// The workload MTU is the underlay's minus 50, whatever the underlay's is, and a frame of that
/// size crosses.
#[test]
fn workload_mtu_follows_underlay() {
    let mut lab = Lab::new();
    let a = lab.host("a");
    let b = lab.host("b");
    lab.wire(&a, "198.18.0.1/24", &b, "198.18.0.2/24", "eth0", 2000);
    let (a1, b1) = (lab.name("a1"), lab.name("b1"));
    let cfg_a = header(&lab.name("va"), "")
        + &vni(7, 4789, &[ADDR_B])
        + &workload(&a1, "192.0.2.11/24", S2_A1)
        + &fdb(S2_B1, ADDR_B);
    let cfg_b = header(&lab.name("vb"), "")
        + &vni(7, 4789, &[ADDR_A])
        + &workload(&b1, "192.0.2.21/24", S2_B1)
        + &fdb(S2_A1, ADDR_A);
    lab.start_vtep(&a, &cfg_a);
    lab.start_vtep(&b, &cfg_b);
    assert_eq!(ns_read(&a1, "/sys/class/net/eth0/mtu"), "1950");
    assert_eq!(ns_read(&b1, "/sys/class/net/eth0/mtu"), "1950");
    assert_ping_df(&a1, "192.0.2.21", 1950);
    let got = tcp_transfer(
        &b1,
        "192.0.2.21:5001".parse().unwrap(),
        &a1,
        8 * 1024 * 1024,
    );
    assert_eq!(got, 8 * 1024 * 1024);
}

/// Inner frames are Ethernet, not only IPv4: IPv6 (neighbour discovery is multicast) works
/// between workloads across hosts.
#[test]
fn ipv6_between_workloads() {
    let S2 {
        lab: _lab, a1, b1, ..
    } = s2();
    for (ns, addr) in [(&a1, "2001:db8::11/64"), (&b1, "2001:db8::21/64")] {
        ip(&["-n", ns, "-6", "addr", "add", addr, "dev", "eth0", "nodad"]);
    }
    let out = ns_exec(
        &a1,
        "ping",
        &[
            "-6",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            "-q",
            "2001:db8::21",
        ],
    );
    assert!(
        out.status.success(),
        "ping -6 a1 -> b1: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let got = tcp_transfer(
        &b1,
        "[2001:db8::21]:5001".parse().unwrap(),
        &a1,
        8 * 1024 * 1024,
    );
    assert_eq!(got, 8 * 1024 * 1024, "TCP over IPv6 a1 -> b1");
}

/// Existing interfaces adopted with `[[vni.port]]` carry traffic: one whose veth peer is in
/// another namespace (a container made by someone else) and one whose peer is on the host.
#[test]
fn adopted_ports_carry_traffic() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    let (p1, p2, q2) = (lab.name("p1"), lab.name("p2"), lab.name("q2"));
    let pw = lab.host("pw");
    let b1 = lab.name("b1");
    let (m_pw, m_q2) = ("02:00:00:00:0c:01", "02:00:00:00:0c:02");
    ip(&[
        "-n", &a, "link", "add", &p1, "type", "veth", "peer", "name", "eth0", "netns", &pw,
    ]);
    ip(&[
        "-n", &pw, "link", "set", "eth0", "address", m_pw, "mtu", "1450", "up",
    ]);
    ip(&["-n", &pw, "addr", "add", "192.0.2.31/24", "dev", "eth0"]);
    ip(&[
        "-n", &a, "link", "add", &p2, "type", "veth", "peer", "name", &q2,
    ]);
    ip(&[
        "-n", &a, "link", "set", &q2, "address", m_q2, "mtu", "1450", "up",
    ]);
    ip(&["-n", &a, "addr", "add", "192.0.2.32/24", "dev", &q2]);
    for p in [&p1, &p2] {
        ip(&["-n", &a, "link", "set", p, "mtu", "1450", "up"]);
    }
    let cfg_a = header(&lab.name("va"), "")
        + &vni(100, 4789, &[ADDR_B])
        + &adopted_port(&p1)
        + &adopted_port(&p2)
        + &format!("[[vni.fdb]]\nmac = \"{m_pw}\"\nport = \"{p1}\"\n\n")
        + &format!("[[vni.fdb]]\nmac = \"{m_q2}\"\nport = \"{p2}\"\n\n")
        + &fdb(S2_B1, ADDR_B);
    let cfg_b = header(&lab.name("vb"), "")
        + &vni(100, 4789, &[ADDR_A])
        + &workload(&b1, "192.0.2.21/24", S2_B1)
        + &fdb(m_pw, ADDR_A)
        + &fdb(m_q2, ADDR_A);
    lab.start_vtep(&a, &cfg_a);
    lab.start_vtep(&b, &cfg_b);

    assert_ping(&pw, "192.0.2.21", 3);
    assert_ping(&a, "192.0.2.21", 3);
    assert_ping(&pw, "192.0.2.32", 2);
    // B's broadcast reaches both adopted ports.
    ip(&["-n", &b1, "neigh", "flush", "all"]);
    assert_ping(&b1, "192.0.2.31", 2);
    ip(&["-n", &b1, "neigh", "flush", "all"]);
    assert_ping(&b1, "192.0.2.32", 2);
    let len = 8 * 1024 * 1024;
    let got = tcp_transfer(&b1, "192.0.2.21:5001".parse().unwrap(), &pw, len);
    assert_eq!(got, len, "TCP from the adopted port's namespace");
    let got = tcp_transfer(&pw, "192.0.2.31:5002".parse().unwrap(), &b1, len);
    assert_eq!(got, len, "TCP to the adopted port's namespace");
}

/// The remote VTEP is not on-link: the underlay is routed through a third namespace (as
/// between racks). vtep follows the kernel's routes and the router's neighbour.
#[test]
fn routed_underlay() {
    let mut lab = Lab::new();
    let a = lab.host("a");
    let r = lab.host("r");
    let b = lab.host("b");
    lab.wire(&a, "198.18.0.1/24", &r, "198.18.0.254/24", "eth0", 1500);
    lab.wire(&r, "198.18.1.254/24", &b, "198.18.1.2/24", "eth1", 1500);
    // `wire` names both ends alike: B's end is eth1, rename it to eth0.
    ip(&["-n", &b, "link", "set", "eth1", "down"]);
    ip(&["-n", &b, "link", "set", "eth1", "name", "eth0"]);
    ip(&["-n", &b, "link", "set", "eth0", "up"]);
    let out = ns_exec(&r, "sysctl", &["-w", "net.ipv4.ip_forward=1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    ip(&[
        "-n",
        &a,
        "route",
        "add",
        "198.18.1.0/24",
        "via",
        "198.18.0.254",
    ]);
    ip(&[
        "-n",
        &b,
        "route",
        "add",
        "198.18.0.0/24",
        "via",
        "198.18.1.254",
    ]);
    let addr_b = "198.18.1.2";
    assert_ping(&a, addr_b, 1);

    let (a1, b1) = (lab.name("a1"), lab.name("b1"));
    let (name_a, name_b) = (lab.name("va"), lab.name("vb"));
    let cfg_a = header(&name_a, "")
        + &vni(300, 4789, &[addr_b])
        + &workload(&a1, "192.0.2.11/24", S2_A1)
        + &fdb(S2_B1, addr_b);
    let cfg_b = header(&name_b, "")
        + &vni(300, 4789, &[ADDR_A])
        + &workload(&b1, "192.0.2.21/24", S2_B1)
        + &fdb(S2_A1, ADDR_A);
    let va = lab.start_vtep(&a, &cfg_a);
    let vb = lab.start_vtep(&b, &cfg_b);

    // The hosts' neighbour caches as after a boot or a link flap: the router is not resolved.
    ip(&["-n", &a, "neigh", "flush", "all"]);
    ip(&["-n", &b, "neigh", "flush", "all"]);
    for (from, to) in [(&a1, "192.0.2.21"), (&b1, "192.0.2.11")] {
        if !ping(from, to, 3) {
            panic!(
                "ping {from} -> {to} over a routed underlay failed. Drops: host A {}, host B {}; \
                 neighbours: host A [{}], host B [{}]",
                lab.vtep(va).stats(&name_a)["drops"],
                lab.vtep(vb).stats(&name_b)["drops"],
                text(&ip(&["-n", &a, "neigh"]).stdout).trim(),
                text(&ip(&["-n", &b, "neigh"]).stdout).trim(),
            );
        }
    }
    let got = tcp_transfer(&b1, "192.0.2.21:5001".parse().unwrap(), &a1, BULK);
    assert_eq!(got, BULK, "TCP a1 -> b1 over a routed underlay");
}

/// The underlay link goes down and up again (a cable, a switch reboot) while vtep runs; the
/// overlay works again afterwards, also for frames that start with a broadcast (ARP).
#[test]
fn overlay_survives_underlay_link_flap() {
    let S2 {
        mut lab,
        a,
        b,
        a1,
        b1,
        va,
        name_a,
        ..
    } = s2();
    assert_ping(&a1, "192.0.2.21", 2);
    for host in [&a, &b] {
        ip(&["-n", host, "link", "set", "eth0", "down"]);
    }
    for host in [&a, &b] {
        ip(&["-n", host, "link", "set", "eth0", "up"]);
    }
    // Workloads' ARP caches as after a while: the next ping starts with a broadcast.
    ip(&["-n", &a1, "neigh", "flush", "all"]);
    ip(&["-n", &b1, "neigh", "flush", "all"]);
    let limit = Duration::from_secs(5);
    let deadline = Instant::now() + limit;
    while !ping(&a1, "192.0.2.21", 1) {
        if Instant::now() > deadline {
            panic!(
                "overlay a1 -> b1 dead {limit:?} after the underlay came back. Host A drops: {}; \
                 neighbours: [{}]",
                lab.vtep(va).stats(&name_a)["drops"],
                text(&ip(&["-n", &a, "neigh"]).stdout).trim()
            );
        }
    }
    assert_ping(&b1, "192.0.2.11", 2);
}

/// The next hop `vtep up` has cached for `remote` in instance `name`'s pinned `NEXTHOPS` map:
/// (underlay ifindex, next hop MAC), or `None` when it has none.
fn cached_next_hop(name: &str, remote: &str) -> Option<(u32, [u8; 6])> {
    let path = format!("{}/NEXTHOPS", pin_dir(name));
    let map = aya::maps::Map::from_map_data(
        aya::maps::MapData::from_pin(&path).unwrap_or_else(|e| panic!("opening {path}: {e}")),
    )
    .expect("NEXTHOPS map");
    let map: aya::maps::HashMap<_, [u8; 4], vtep_common::maps::NextHopEntry> =
        aya::maps::HashMap::try_from(map).expect("NEXTHOPS is a hash map");
    let ip: Ipv4Addr = remote.parse().unwrap();
    map.get(&ip.octets(), 0).ok().map(|e| (e.ifindex, e.dmac))
}

/// The MAC and ifindex of `dev` in namespace `ns`.
fn link_of(ns: &str, dev: &str) -> ([u8; 6], u32) {
    let out = ip(&["-n", ns, "-j", "link", "show", "dev", dev]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("ip -j link");
    (
        mac_bytes(v[0]["address"].as_str().unwrap()),
        v[0]["ifindex"].as_u64().unwrap() as u32,
    )
}

#[test]
fn next_hop_cache_follows_a_changed_neighbour() {
    let S2 {
        lab: _lab,
        a,
        b,
        a1,
        name_a,
        ..
    } = s2();
    assert_ping(&a1, "192.0.2.21", 2);
    let (old_mac, _) = link_of(&b, "eth0");
    let (_, a_eth0) = link_of(&a, "eth0");
    let wait_for_cache = |want: [u8; 6]| {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let got = cached_next_hop(&name_a, ADDR_B);
            if got == Some((a_eth0, want)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "host A caches {got:02x?} for {ADDR_B}, want (eth0 = {a_eth0}, {want:02x?})"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for_cache(old_mac);

    let overlay_recovers = |why: &str| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !ping(&a1, "192.0.2.21", 1) {
            assert!(
                Instant::now() < deadline,
                "overlay a1 -> b1 dead 5 s after {why}; A's neighbours: [{}]",
                text(&ip(&["-n", &a, "neigh"]).stdout).trim()
            );
        }
    };

    // Host B's underlay interface gets another MAC and host A's neighbour entry learns it in
    // place (as from B's gratuitous ARP): encapsulated traffic must follow the kernel's table,
    // not keep going to the MAC that was cached.
    let mac_2 = "02:42:00:00:0b:02";
    ip(&["-n", &b, "link", "set", "dev", "eth0", "address", mac_2]);
    ip(&[
        "-n", &a, "neigh", "replace", ADDR_B, "lladdr", mac_2, "dev", "eth0", "nud", "stale",
    ]);
    overlay_recovers("B's MAC changed and A's neighbour entry was updated");
    wait_for_cache(mac_bytes(mac_2));

    // Again, but A's neighbour table forgets B (a flush): the cache entry must go, and the
    // kernel resolve B anew.
    let mac_3 = "02:42:00:00:0b:03";
    ip(&["-n", &b, "link", "set", "dev", "eth0", "address", mac_3]);
    ip(&["-n", &a, "neigh", "flush", "dev", "eth0"]);
    overlay_recovers("B's MAC changed and A's neighbours were flushed");
    wait_for_cache(mac_bytes(mac_3));
    assert_ping(&a1, "192.0.2.21", 2);
}

// ---------------------------------------------------------------------------------------------
// Underlay traffic
// ---------------------------------------------------------------------------------------------

#[test]
fn underlay_non_vxlan_passes() {
    let S2 {
        lab: _lab,
        a,
        b,
        a1,
        ..
    } = s2();
    // vtep is attached on both hosts and working.
    assert_ping(&a1, "192.0.2.21", 2);

    assert_ping(&a, ADDR_B, 3);
    assert_ping(&b, ADDR_A, 3);
    let got = tcp_transfer(&b, format!("{ADDR_B}:5001").parse().unwrap(), &a, BULK);
    assert_eq!(got, BULK, "TCP on the underlay A -> B");
    let got = tcp_transfer(&a, format!("{ADDR_A}:5002").parse().unwrap(), &b, BULK);
    assert_eq!(got, BULK, "TCP on the underlay B -> A");

    // UDP that is not VXLAN for us: an ordinary port, and 8472 while only 4789 is configured.
    for port in [9999u16, 8472] {
        let server: SocketAddr = format!("{ADDR_B}:{port}").parse().unwrap();
        let sock = in_netns(&b, move || UdpSocket::bind(server).expect("bind"));
        sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let payload: Vec<u8> = (0..1200u32).map(|i| (i * 7 + 3) as u8).collect();
        let sent = payload.clone();
        in_netns(&a, move || {
            let c = UdpSocket::bind("198.18.0.1:0").expect("bind");
            for _ in 0..3 {
                c.send_to(&sent, server).expect("send");
            }
        });
        let mut buf = vec![0u8; 2048];
        let (n, from) = sock
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("UDP to port {port} on the underlay lost: {e}"));
        assert_eq!(&buf[..n], &payload[..], "UDP port {port}: payload changed");
        assert_eq!(from.ip().to_string(), ADDR_A);
    }
}
