//! Flood-and-learn between hosts (issue 4, scenario S3): real namespaces, the real `vtep`
//! binary, no static entries for remote workloads: only flood lists, as with `ip link add type
//! vxlan` plus `bridge fdb append 00:00:00:00:00:00`.
//!
//! Run as root after building vtep: `cargo build -p vtep-user && cargo test -p vtep-tests
//! --test learning`.

use std::time::{Duration, Instant};

use serde_json::Value;
use vtep_tests::{
    configs::{adopted_port, fdb, header, text, vni, workload},
    lab::{KernelVtep, Lab, if_counter, ip, no_ipv6, ping, run},
};

const ADDR: [&str; 3] = ["198.18.0.1", "198.18.0.2", "198.18.0.3"];
const VNI: u32 = 300;
const MAC: [&str; 3] = [
    "02:00:00:00:0a:01",
    "02:00:00:00:0b:01",
    "02:00:00:00:0c:01",
];
const IP: [&str; 3] = ["192.0.2.11", "192.0.2.21", "192.0.2.31"];

/// Host `i`'s config: one workload, every other host in the flood list, `extra` VNI lines.
/// The workload's namespace is made here, without IPv6 (see `no_ipv6`); vtep adopts it.
fn config(lab: &Lab, i: usize, hosts: usize, extra: &str, tail: &str) -> String {
    no_ipv6(&lab.host(&format!("w{i}")));
    let remotes: Vec<&str> = (0..hosts).filter(|&j| j != i).map(|j| ADDR[j]).collect();
    header(&lab.name(&format!("v{i}")), "", "")
        + &vni(VNI, 4789, &remotes)
        + extra
        + "\n"
        + &workload(
            &lab.name(&format!("w{i}")),
            &format!("{}/24", IP[i]),
            MAC[i],
        )
        + tail
}

/// IPv6 off on the hosts (their underlay interfaces exist already: each one too) and the
/// switch, if any.
fn quiet(lab: &Lab, hosts: &[String]) {
    for h in hosts {
        no_ipv6(h);
        vtep_tests::lab::ns_exec(
            h,
            "sysctl",
            &["-q", "-w", "net.ipv6.conf.eth0.disable_ipv6=1"],
        );
    }
    let sw = lab.name("sw");
    if vtep_tests::lab::list_netns().contains(&sw) {
        no_ipv6(&sw);
    }
}

/// The FDB row of `mac` in `rows`, if any.
fn row<'a>(rows: &'a [Value], mac: &str) -> Option<&'a Value> {
    rows.iter().find(|r| r["mac"] == mac && r["vni"] == VNI)
}

/// Asserts that `rows` has `mac` learned behind remote VTEP `dst`.
fn assert_learned(rows: &[Value], mac: &str, dst: &str, host: &str) {
    let r = row(rows, mac).unwrap_or_else(|| panic!("{host} did not learn {mac}: {rows:?}"));
    assert_eq!(r["state"], "learned", "{host}: {r}");
    assert_eq!(r["dst"], dst, "{host} has {mac} behind the wrong VTEP: {r}");
}

/// Packets the switch sent to host `i` (its port's transmit counter).
fn to_host(lab: &Lab, i: usize) -> u64 {
    if_counter(&lab.name("sw"), &format!("p{i}"), "tx_packets")
}

fn ping_quick(ns: &str, addr: &str, count: u32) -> bool {
    vtep_tests::lab::ping_with(ns, addr, count, "0.05", 2)
}

#[test]
fn three_hosts_learn_from_one_ping_round_then_unicast_goes_to_one_vtep() {
    let mut lab = Lab::new();
    let hosts = lab.three_hosts();
    quiet(&lab, &hosts);
    let mut ids = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let cfg = config(&lab, i, 3, "", "");
        ids.push(lab.start_vtep(h, &cfg));
    }
    let w0 = lab.name("w0");
    assert!(ping(&w0, IP[1], 1), "first ping a -> b");

    // One round: a's ARP request was flooded to b and c, b's reply came back unicast.
    let names: Vec<String> = (0..3).map(|i| lab.name(&format!("v{i}"))).collect();
    let fdb_a = lab.vtep(ids[0]).fdb(&names[0]);
    let fdb_b = lab.vtep(ids[1]).fdb(&names[1]);
    let fdb_c = lab.vtep(ids[2]).fdb(&names[2]);
    assert_learned(&fdb_a, MAC[1], ADDR[1], "a");
    assert_learned(&fdb_b, MAC[0], ADDR[0], "b");
    assert_learned(&fdb_c, MAC[0], ADDR[0], "c (from the flooded request)");
    assert!(
        row(&fdb_c, MAC[1]).is_none(),
        "c saw nothing from b's workload"
    );
    // Learned entries carry an age.
    assert!(row(&fdb_a, MAC[1]).unwrap()["age"].as_u64().unwrap() <= 2);

    // From now on a's frames to b's workload go to b only.
    let (b0, c0) = (to_host(&lab, 1), to_host(&lab, 2));
    assert!(ping_quick(&w0, IP[1], 50), "50 pings a -> b");
    let (b1, c1) = (to_host(&lab, 1), to_host(&lab, 2));
    assert!(b1 - b0 >= 50, "b got {} packets for 50 pings", b1 - b0);
    assert!(
        c1 - c0 < 5,
        "c got {} packets during 50 unicast pings to b: still flooding",
        c1 - c0
    );
}

#[test]
fn a_mac_moving_to_another_host_is_relearned_and_traffic_follows() {
    let mut lab = Lab::new();
    let hosts = lab.three_hosts();
    quiet(&lab, &hosts);
    // On host c, an adopted port whose far end will take over b's workload (same MAC and
    // address) once b's goes down: a migrated VM.
    let mover = lab.host("mv");
    no_ipv6(&mover);
    ip(&[
        "-n", &hosts[2], "link", "add", "mvh", "type", "veth", "peer", "name", "eth0", "netns",
        &mover,
    ]);
    ip(&["-n", &hosts[2], "link", "set", "mvh", "mtu", "1450", "up"]);
    ip(&[
        "-n", &mover, "link", "set", "eth0", "address", MAC[1], "mtu", "1450",
    ]);
    ip(&["-n", &mover, "addr", "add", "192.0.2.21/24", "dev", "eth0"]);
    let mut ids = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let tail = if i == 2 {
            adopted_port("mvh")
        } else {
            String::new()
        };
        let cfg = config(&lab, i, 3, "", &tail);
        ids.push(lab.start_vtep(h, &cfg));
    }
    let (w0, w1) = (lab.name("w0"), lab.name("w1"));
    let name_a = lab.name("v0");
    assert!(ping(&w0, IP[1], 2), "a -> b before the move");
    assert_learned(&lab.vtep(ids[0]).fdb(&name_a), MAC[1], ADDR[1], "a");

    // The move: b's workload goes quiet, the same station appears behind c and speaks.
    ip(&["-n", &w1, "link", "set", "eth0", "down"]);
    ip(&["-n", &mover, "link", "set", "eth0", "up"]);
    assert!(ping(&mover, IP[0], 2), "the moved station reaches a from c");
    assert_learned(
        &lab.vtep(ids[0]).fdb(&name_a),
        MAC[1],
        ADDR[2],
        "a after the move",
    );
    // c learned it locally, behind the adopted port.
    let name_c = lab.name("v2");
    let fdb_c = lab.vtep(ids[2]).fdb(&name_c);
    let local = row(&fdb_c, MAC[1]).expect("c learned the station locally");
    assert_eq!(local["port"], "mvh", "{local}");
    assert_eq!(local["state"], "learned");

    let (b0, c0) = (to_host(&lab, 1), to_host(&lab, 2));
    assert!(ping_quick(&w0, IP[1], 30), "a -> the moved station");
    let (b1, c1) = (to_host(&lab, 1), to_host(&lab, 2));
    assert!(c1 - c0 >= 30, "c got {} packets for 30 pings", c1 - c0);
    assert!(
        b1 - b0 < 5,
        "b still gets the station's traffic: {}",
        b1 - b0
    );
}

#[test]
fn learned_entries_age_out_on_time_static_ones_stay() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    quiet(&lab, &[a.clone(), b.clone()]);
    let unrelated = "02:00:00:00:0f:01";
    let cfg_a = config(&lab, 0, 2, "ageing = 3\n", &fdb(unrelated, ADDR[1]));
    let cfg_b = config(&lab, 1, 2, "", "");
    let va = lab.start_vtep(&a, &cfg_a);
    lab.start_vtep(&b, &cfg_b);
    let name_a = lab.name("v0");
    let w0 = lab.name("w0");
    assert!(ping(&w0, IP[1], 1));
    let learned_at = Instant::now();
    assert_learned(&lab.vtep(va).fdb(&name_a), MAC[1], ADDR[1], "a");

    // Nothing from b's workload from now on (a ping's reply was its last frame).
    let gone = loop {
        let rows = lab.vtep(va).fdb(&name_a);
        assert!(
            row(&rows, unrelated).is_some_and(|r| r["state"] == "static"),
            "the static entry must stay: {rows:?}"
        );
        if row(&rows, MAC[1]).is_none() {
            break learned_at.elapsed();
        }
        assert!(
            learned_at.elapsed() < Duration::from_secs(8),
            "learned entry still there after 8 s with ageing = 3: {rows:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // ageing 3 s, plus up to 1 s of stamp resolution and one sweep (1 s at this ageing).
    assert!(
        gone >= Duration::from_secs(2),
        "aged out after {gone:?}, before its 3 s"
    );
    // Traffic teaches it again.
    assert!(ping(&w0, IP[1], 1));
    assert_learned(&lab.vtep(va).fdb(&name_a), MAC[1], ADDR[1], "a again");
}

#[test]
fn interop_with_kernel_vxlan_learning_on_both_sides() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    quiet(&lab, &[a.clone(), b.clone()]);
    let wb = lab.host("wb");
    no_ipv6(&wb);
    // Host b: the kernel's VTEP (learning is its default), flood entry towards a only.
    KernelVtep {
        vni: VNI,
        dstport: 4789,
        local: ADDR[1],
        flood: &[ADDR[0]],
        workload: &wb,
        mac: MAC[1],
        cidr: "192.0.2.21/24",
    }
    .build(&b);
    // Host a: vtep with only the flood list.
    let va = lab.start_vtep(&a, &config(&lab, 0, 2, "", ""));
    let w0 = lab.name("w0");

    assert!(ping(&w0, IP[1], 3), "vtep -> kernel vxlan, both learning");
    let name_a = lab.name("v0");
    assert_learned(&lab.vtep(va).fdb(&name_a), MAC[1], ADDR[1], "vtep");
    let kernel = text(&run("bridge", &["-n", &b, "fdb", "show", "dev", "vx0"]).stdout);
    assert!(
        kernel
            .lines()
            .any(|l| l.starts_with(&format!("{} ", MAC[0]))
                && l.contains(&format!("dst {} ", ADDR[0]))),
        "the kernel did not learn vtep's workload at {}: {kernel}",
        ADDR[0]
    );
    ip(&["-n", &wb, "neigh", "flush", "all"]);
    assert!(ping(&wb, IP[0], 3), "kernel vxlan -> vtep");
}

#[test]
fn vtep_monitor_prints_an_l2miss_once_per_second_per_mac() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    quiet(&lab, &[a.clone(), b.clone()]);
    lab.start_vtep(&a, &config(&lab, 0, 2, "l2miss = true\n", ""));
    lab.start_vtep(&b, &config(&lab, 1, 2, "", ""));
    let name_a = lab.name("v0");
    let w0 = lab.name("w0");
    // A station nobody knows, with a static ARP entry so the frames are unicast to it.
    let unknown = "02:00:00:00:0d:0d";
    ip(&[
        "-n",
        &w0,
        "neigh",
        "add",
        "192.0.2.99",
        "lladdr",
        unknown,
        "dev",
        "eth0",
        "nud",
        "permanent",
    ]);
    let monitor = start_monitor(&a, &name_a);
    let _ = ping_quick(&w0, "192.0.2.99", 5);
    std::thread::sleep(Duration::from_millis(1200));
    let _ = ping_quick(&w0, "192.0.2.99", 1);
    std::thread::sleep(Duration::from_millis(300));
    let lines = stop_monitor(monitor);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for l in &lines {
        assert_eq!(l["event"], "l2miss", "{l}");
        assert_eq!(l["vni"], VNI, "{l}");
        assert_eq!(l["mac"], unknown, "{l}");
        assert_eq!(l["port"], format!("{w0}-h"), "{l}");
    }
    // Five frames within a second gave one event, the frame a second later the other.
}

/// Starts `vtep monitor -j` against instance `name` on `host`; `stop_monitor` returns its
/// events. Waits for it to open the ring buffer: events before that are read all the same (the
/// ring keeps them), this only keeps the tests' timing honest.
fn start_monitor(host: &str, name: &str) -> std::process::Child {
    let child = std::process::Command::new(vtep_tests::lab::vtep_bin())
        .args(["--netns", host, "monitor", "-n", name, "-j"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("vtep monitor");
    std::thread::sleep(Duration::from_millis(300));
    child
}

/// Stops a monitor (it runs until stopped; every line it printed is flushed already) and parses
/// its output.
fn stop_monitor(child: std::process::Child) -> Vec<Value> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("stopping vtep monitor");
    let out = child.wait_with_output().expect("monitor output");
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn arp_proxy_answers_known_addresses_on_the_host_and_reports_unknown_ones() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    quiet(&lab, &[a.clone(), b.clone()]);
    let neigh = format!(
        "[[vni.neigh]]\nip = \"{}\"\nmac = \"{}\"\n\n",
        IP[1], MAC[1]
    );
    let va = lab.start_vtep(
        &a,
        &config(
            &lab,
            0,
            2,
            "proxy = true\nl3miss = true\n",
            &(fdb(MAC[1], ADDR[1]) + &neigh),
        ),
    );
    lab.start_vtep(&b, &config(&lab, 1, 2, "", ""));
    let name_a = lab.name("v0");
    let w0 = lab.name("w0");

    // a's workload resolves b's address: answered on host a, nothing crosses the underlay but
    // the unicast ping itself.
    let cap = vtep_tests::lab::Capture::start(
        &lab,
        &a,
        "eth0",
        &format!("udp dst port 4789 and src host {}", ADDR[0]),
    );
    assert!(ping(&w0, IP[1], 2), "ping through the proxied ARP");
    let frames = cap.frames();
    assert!(!frames.is_empty(), "the pings went out as VXLAN");
    let target: std::net::Ipv4Addr = IP[1].parse().unwrap();
    for f in &frames {
        // Outer Ethernet (14) + IPv4 (20) + UDP (8) + VXLAN (8), then the inner frame; its
        // ARP operation at 20 and target address at 38. (a's answer to b's own request for
        // a's address is unicast and may well cross.)
        let inner = &f[50..];
        let arp_request_for_b = inner[12..14] == [0x08, 0x06]
            && inner[20..22] == [0, 1]
            && inner[38..42] == target.octets();
        assert!(!arp_request_for_b, "a's ARP request left host a: {f:02x?}");
    }
    let stats = lab.vtep(va).stats(&name_a);
    let v = &stats["vnis"][0];
    assert!(v["proxy_replies"].as_u64().unwrap() >= 1, "{stats}");
    let answered = text(&ip(&["-n", &w0, "neigh", "show", IP[1]]).stdout);
    assert!(
        answered.contains(MAC[1]),
        "a's workload learned {}: {answered}",
        MAC[1]
    );

    // An address nobody knows: flooded and reported.
    let monitor = start_monitor(&a, &name_a);
    let _ = ping_quick(&w0, "192.0.2.99", 1);
    let events = stop_monitor(monitor);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "l3miss" && e["ip"] == "192.0.2.99" && e["vni"] == VNI),
        "no l3miss for 192.0.2.99: {events:?}"
    );

    // An agent answers it: the next request is answered on the host.
    let unknown_mac = "02:00:00:00:0d:99";
    let vtep = lab.vtep(va);
    let out = vtep.cli(&[
        "neigh",
        "add",
        "192.0.2.99",
        "lladdr",
        unknown_mac,
        "vni",
        "300",
        "-n",
        &name_a,
    ]);
    assert!(out.status.success(), "neigh add: {}", text(&out.stderr));
    let before = text(&vtep.cli(&["neigh", "show", "-n", &name_a, "-j"]).stdout);
    for (args, problem) in [
        (
            vec![
                "neigh",
                "add",
                "192.0.2.98",
                "lladdr",
                "zz:00",
                "vni",
                "300",
            ],
            "lladdr",
        ),
        (
            vec![
                "neigh",
                "add",
                "192.0.2.98",
                "lladdr",
                unknown_mac,
                "vni",
                "301",
            ],
            "VNI 301",
        ),
        (
            vec![
                "neigh",
                "add",
                "192.0.2.300",
                "lladdr",
                unknown_mac,
                "vni",
                "300",
            ],
            "ip",
        ),
        (vec!["neigh", "del", IP[0], "vni", "300"], "config"),
    ] {
        let mut full = args.clone();
        full.extend(["-n", &name_a]);
        let out = vtep.cli(&full);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(
            text(&out.stderr).contains(problem),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let after = text(&vtep.cli(&["neigh", "show", "-n", &name_a, "-j"]).stdout);
    assert_eq!(before, after, "refused commands changed the table");
    let rows: Vec<Value> = serde_json::from_str(&after).unwrap();
    assert!(
        rows.iter().any(|r| r["ip"] == "192.0.2.99"
            && r["lladdr"] == unknown_mac
            && r["origin"] == "runtime"),
        "{rows:?}"
    );
    let _ = ping_quick(&w0, "192.0.2.99", 1);
    let resolved = text(&ip(&["-n", &w0, "neigh", "show", "192.0.2.99"]).stdout);
    assert!(resolved.contains(unknown_mac), "{resolved}");
}

#[test]
fn multicast_group_between_three_hosts() {
    let mut lab = Lab::new();
    let hosts = lab.three_hosts();
    quiet(&lab, &hosts);
    for (i, h) in hosts.iter().enumerate() {
        // No remotes: the group replaces the flood list.
        let cfg = header(&lab.name(&format!("v{i}")), "", "")
            + &vni(VNI, 4789, &[])
            + "group = \"239.1.1.1\"\n\n"
            + &{
                no_ipv6(&lab.host(&format!("w{i}")));
                workload(
                    &lab.name(&format!("w{i}")),
                    &format!("{}/24", IP[i]),
                    MAC[i],
                )
            };
        lab.start_vtep(h, &cfg);
    }
    let w0 = lab.name("w0");
    let cap = vtep_tests::lab::Capture::start(
        &lab,
        &hosts[0],
        "eth0",
        &format!("udp dst port 4789 and src host {}", ADDR[0]),
    );
    // First contact: b and c learn a's VTEP from the group's traffic and resolve it (up to a
    // second), so their first answer may be lost and the workload's ARP retry gets through.
    for target in [IP[1], IP[2]] {
        let deadline = Instant::now() + Duration::from_secs(6);
        while !ping(&w0, target, 1) {
            assert!(Instant::now() < deadline, "a -> {target} over the group");
        }
    }
    assert!(ping(&w0, IP[1], 2), "a -> b over the group");
    assert!(ping(&w0, IP[2], 2), "a -> c over the group");
    let frames = cap.frames();
    // Broadcasts (a's ARP requests) went to the group, once each; unicast went to the VTEPs.
    let to_group: Vec<&Vec<u8>> = frames
        .iter()
        .filter(|f| f[30..34] == [239, 1, 1, 1])
        .collect();
    assert!(
        !to_group.is_empty(),
        "no packet to the group: {frames:02x?}"
    );
    for f in &to_group {
        assert_eq!(&f[0..6], &[0x01, 0x00, 0x5e, 0x01, 0x01, 0x01], "group MAC");
        assert_eq!(f[22], 1, "outer TTL 1");
        assert_eq!(&f[50..56], &[0xff; 6], "only broadcasts go to the group");
    }
    let unicast = frames.iter().filter(|f| f[30..34] != [239, 1, 1, 1]);
    for f in unicast {
        assert!(
            f[30..34] == [198, 18, 0, 2] || f[30..34] == [198, 18, 0, 3],
            "unicast to a VTEP learned from the group's traffic: {f:02x?}"
        );
    }
}

#[test]
fn proxy_answers_ipv6_neighbour_solicitations_on_the_host() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    let (w0, w1) = (lab.name("w0"), lab.name("w1"));
    let (ip6_0, ip6_1) = ("fd00::11", "fd00::21");
    let neigh = format!("[[vni.neigh]]\nip = \"{ip6_1}\"\nmac = \"{}\"\n\n", MAC[1]);
    for (i, host) in [&a, &b].into_iter().enumerate() {
        let extra = if i == 0 { "proxy = true\n" } else { "" };
        let tail = if i == 0 {
            fdb(MAC[1], ADDR[1]) + &neigh
        } else {
            fdb(MAC[0], ADDR[0])
        };
        let cfg = header(&lab.name(&format!("v{i}")), "", "")
            + &vni(VNI, 4789, &[ADDR[1 - i]])
            + extra
            + "\n"
            + &workload(
                &lab.name(&format!("w{i}")),
                &format!("{}/24", IP[i]),
                MAC[i],
            )
            + &tail;
        lab.start_vtep(host, &cfg);
    }
    for (w, addr) in [(&w0, ip6_0), (&w1, ip6_1)] {
        ip(&[
            "-n",
            w,
            "addr",
            "add",
            &format!("{addr}/64"),
            "dev",
            "eth0",
            "nodad",
        ]);
    }
    let cap = vtep_tests::lab::Capture::start(
        &lab,
        &a,
        "eth0",
        &format!("udp dst port 4789 and src host {}", ADDR[0]),
    );
    let ok = vtep_tests::lab::ns_exec(&w0, "ping", &["-6", "-c", "2", "-W", "2", "-q", ip6_1])
        .status
        .success();
    assert!(ok, "ping6 a -> b through the proxied solicitation");
    let target: std::net::Ipv6Addr = ip6_1.parse().unwrap();
    for f in cap.frames() {
        // The inner frame at 50: IPv6 next header at 14 + 6, ICMPv6 type at 14 + 40, the
        // target address at 14 + 48.
        let inner = &f[50..];
        let solicit_for_b = inner.len() >= 78
            && inner[12..14] == [0x86, 0xdd]
            && inner[20] == 58
            && inner[54] == 135
            && inner[62..78] == target.octets();
        assert!(
            !solicit_for_b,
            "a's solicitation for b left host a: {f:02x?}"
        );
    }
    let learned = text(&ip(&["-n", &w0, "-6", "neigh", "show", ip6_1]).stdout);
    assert!(learned.contains(MAC[1]), "{learned}");
}

#[test]
fn fdb_append_and_del_change_the_flood_list_of_a_running_instance() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    quiet(&lab, &[a.clone(), b.clone()]);
    // a floods nowhere; b floods to a.
    let va = lab.start_vtep(&a, &config(&lab, 0, 1, "", ""));
    lab.start_vtep(&b, &config(&lab, 1, 2, "", ""));
    let name_a = lab.name("v0");
    let w0 = lab.name("w0");
    assert!(
        !ping(&w0, IP[1], 1),
        "a cannot resolve b's workload without a flood list"
    );

    let vtep = lab.vtep(va);
    let run = |args: &[&str]| {
        let mut full = args.to_vec();
        full.extend(["-n", &name_a]);
        vtep.cli(&full)
    };
    let remotes = || -> Value {
        let out = run(&["vni", "show", "-j"]);
        serde_json::from_slice::<Value>(&out.stdout).unwrap()[0]["remotes"].clone()
    };
    let zeros = "00:00:00:00:00:00";
    for _ in 0..2 {
        let out = run(&["fdb", "append", zeros, "dst", ADDR[1], "vni", "300"]);
        assert!(out.status.success(), "append: {}", text(&out.stderr));
    }
    assert_eq!(remotes(), serde_json::json!([ADDR[1]]), "appended once");
    assert!(ping(&w0, IP[1], 2), "a floods to b now");

    let before = remotes();
    for (args, problem) in [
        (
            vec!["fdb", "append", MAC[1], "dst", ADDR[1], "vni", "300"],
            "mac",
        ),
        (
            vec!["fdb", "append", zeros, "dst", ADDR[0], "vni", "300"],
            "local",
        ),
        (
            vec!["fdb", "append", zeros, "dst", ADDR[1], "vni", "301"],
            "VNI 301",
        ),
        (
            vec!["fdb", "del", zeros, "dst", "198.18.0.9", "vni", "300"],
            "does not flood",
        ),
    ] {
        let out = run(&args);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(
            text(&out.stderr).contains(problem),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(remotes(), before, "refused commands changed the list");

    let out = run(&["fdb", "del", zeros, "dst", ADDR[1], "vni", "300"]);
    assert!(out.status.success(), "del: {}", text(&out.stderr));
    assert_eq!(remotes(), serde_json::json!([]));
}
