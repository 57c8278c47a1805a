//! `cargo xtask bench`: the kernel's vxlan driver + bridge, vtep (TC only), vtep with its XDP
//! program on the underlay (`vtep-xdp`), the floor (the same hosts, veths and workloads as vtep
//! with programs that only redirect: the limit of any VTEP on this topology), and a direct veth
//! (no tunnel), built side by side on the same machine and measured interleaved, round after
//! round, so that drift of the machine hits every variant alike. Reports medians and ratios.

use std::{
    collections::BTreeMap,
    net::{SocketAddr, UdpSocket},
    os::{fd::OwnedFd, unix::process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use serde_json::json;
use vtep_lab::{End, KernelVtep, Lab, RawProgram, if_counter, in_netns, link, static_neighbour};

use crate::{cmd, lab};

const VNI: u32 = 100;
const MAC_A: &str = "02:00:00:00:0a:01";
const MAC_B: &str = "02:00:00:00:0b:01";
const IP_A: &str = "192.0.2.11";
const IP_B: &str = "192.0.2.21";
/// Workload MTU in every variant: the underlay's 1500 minus VXLAN's 50.
const WORKLOAD_MTU: u32 = 1450;
/// Workload B's UDP port the generator sends to (a sink reads it, see `UdpSink`).
const UDP_PORT: u16 = 9;
/// The CPU the UDP generator is pinned to.
const GENERATOR_CPU: &str = "0";
/// Host B's underlay address, where the host-traffic stream goes.
const HOST_B: &str = "198.18.0.2";
/// The VNI of the attack's VXLAN: configured nowhere.
const ATTACK_VNI: u32 = 999;

pub struct Options {
    pub rounds: u32,
    pub seconds: u32,
    pub json: Option<PathBuf>,
    pub plot: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Variant {
    Kernel,
    Vtep,
    VtepXdp,
    Floor,
    Direct,
}

impl Variant {
    const ALL: [Variant; 5] = [
        Variant::Kernel,
        Variant::Vtep,
        Variant::VtepXdp,
        Variant::Floor,
        Variant::Direct,
    ];
    fn key(self) -> &'static str {
        match self {
            Variant::Kernel => "kernel",
            Variant::Vtep => "vtep",
            Variant::VtepXdp => "vtep-xdp",
            Variant::Floor => "floor",
            Variant::Direct => "direct",
        }
    }
}

/// The two workload namespaces of one variant, and its two hosts (underlay `eth0`, 198.18.0.1
/// and .2) where the variant has hosts of its own.
struct Pair {
    a: String,
    b: String,
    hosts: Option<[String; 2]>,
}

pub fn run(vtep: &Path, opts: &Options) -> Result<()> {
    // The per-program cost runs first and alone: it needs no topology.
    eprintln!("bench: measuring the programs alone (BPF_PROG_TEST_RUN)");
    let prog = prog_cost()?;
    let prefix = format!("vb{}", std::process::id() % 100_000);
    let mut samples: BTreeMap<(&str, Variant), Vec<f64>> = BTreeMap::new();
    lab::with_lab(&prefix, vtep, |lab| {
        // The floor's programs stay attached as long as their links are open.
        let (floor, _floor_links) = build_floor(lab)?;
        let pairs = [
            (Variant::Kernel, build_kernel(lab)?),
            (Variant::Vtep, build_vtep(lab, false)?),
            (Variant::VtepXdp, build_vtep(lab, true)?),
            (Variant::Floor, floor),
            (Variant::Direct, build_direct(lab)?),
        ];
        for (v, p) in &pairs {
            if !vtep_lab::ping(&p.a, IP_B, 2)? {
                bail!("{}: workloads cannot reach each other", v.key());
            }
        }
        for round in 1..=opts.rounds {
            for (v, p) in &pairs {
                eprintln!("bench: round {round}/{}: {}", opts.rounds, v.key());
                samples
                    .entry(("udp_64b_pps", *v))
                    .or_default()
                    .push(udp_pps(lab, p, opts.seconds)?);
                samples
                    .entry(("tcp_gbps", *v))
                    .or_default()
                    .push(tcp_gbps(p, opts.seconds)?);
                samples
                    .entry(("rr_latency_us", *v))
                    .or_default()
                    .push(rr_latency_us(p)?);
                let Some(hosts) = &p.hosts else { continue };
                if *v != Variant::Kernel {
                    // The host's own traffic beside the datapath: TCP between the underlays.
                    let host_tcp = tcp_gbps_to(&hosts[0], &hosts[1], HOST_B, opts.seconds)?;
                    samples
                        .entry(("host_tcp_gbps", *v))
                        .or_default()
                        .push(host_tcp);
                }
                let (tcp, absorbed) = under_attack(lab, p, hosts, opts.seconds)?;
                samples
                    .entry(("attack_tcp_gbps", *v))
                    .or_default()
                    .push(tcp);
                samples
                    .entry(("attack_pps_absorbed", *v))
                    .or_default()
                    .push(absorbed);
            }
        }
        Ok(())
    })?;

    let median_of = |metric: &str, v: Variant| median(&samples[&(metric, v)]);
    let mut report = serde_json::Map::new();
    for metric in ["udp_64b_pps", "tcp_gbps", "rr_latency_us"] {
        let mut m = serde_json::Map::new();
        for v in Variant::ALL {
            m.insert(v.key().into(), json!(round2(median_of(metric, v))));
        }
        report.insert(metric.into(), m.into());
    }
    // Measured on the variants with hosts of their own only.
    for metric in ["host_tcp_gbps", "attack_tcp_gbps", "attack_pps_absorbed"] {
        let mut m = serde_json::Map::new();
        for v in Variant::ALL {
            if let Some(s) = samples.get(&(metric, v)) {
                m.insert(v.key().into(), json!(round2(median(s))));
            }
        }
        report.insert(metric.into(), m.into());
    }
    report.insert(
        "prog_ns".into(),
        json!({"decap": prog.decap, "encap": prog.encap, "xdp_decap": prog.xdp_decap}),
    );
    // Beyond the required fields: what the targets are stated in.
    let overhead =
        |v| 1e9 / median_of("udp_64b_pps", v) - 1e9 / median_of("udp_64b_pps", Variant::Direct);
    report.insert(
        "tunnel_overhead_ns".into(),
        json!({
            "kernel": round2(overhead(Variant::Kernel)),
            "vtep": round2(overhead(Variant::Vtep)),
            "vtep-xdp": round2(overhead(Variant::VtepXdp)),
            "floor": round2(overhead(Variant::Floor)),
        }),
    );
    report.insert(
        "prog_ns_1m_fdb".into(),
        json!({"decap": prog.decap_1m, "encap": prog.encap_1m, "xdp_decap": prog.xdp_decap_1m}),
    );
    report.insert(
        "prog_ns_raw".into(),
        json!({
            "decap": prog.decap_raw,
            "encap": prog.encap_raw,
            "xdp_decap": prog.xdp_decap_raw,
            "empty_program": prog.floor,
            "empty_xdp_program": prog.xdp_floor,
        }),
    );
    report.insert("rounds".into(), json!(opts.rounds));
    report.insert(
        "samples".into(),
        json!(
            samples
                .iter()
                .map(|((m, v), s)| (format!("{m}.{}", v.key()), s.clone()))
                .collect::<BTreeMap<_, _>>()
        ),
    );
    let report = serde_json::Value::Object(report);

    print_table(&report);
    if let Some(path) = &opts.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("bench: wrote {}", path.display());
    }
    if let Some(path) = &opts.plot {
        plot(&report, path)?;
        eprintln!("bench: wrote {}", path.display());
    }
    Ok(())
}

/// The median of `v`; NaN for none.
pub(crate) fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Static neighbours in both workloads, so no ARP runs during a measurement.
fn pin_neighbours(a: &str, b: &str) -> Result<()> {
    static_neighbour(a, "eth0", IP_B, MAC_B)?;
    static_neighbour(b, "eth0", IP_A, MAC_A)
}

/// (a) The seeds' setup: on each host a kernel vxlan device in a Linux bridge, a workload veth in
/// the same bridge, static FDB entries for the far workload (as vtep gets).
fn build_kernel(lab: &Lab) -> Result<Pair> {
    let (ha, hb) = lab.two_hosts_named("kha", "khb")?;
    let pair = Pair {
        a: lab.host("kwa")?,
        b: lab.host("kwb")?,
        hosts: Some([ha.clone(), hb.clone()]),
    };
    for (host, local, remote, ws, addr, mac, far_mac) in [
        (&ha, "198.18.0.1", "198.18.0.2", &pair.a, IP_A, MAC_A, MAC_B),
        (&hb, "198.18.0.2", "198.18.0.1", &pair.b, IP_B, MAC_B, MAC_A),
    ] {
        KernelVtep {
            vni: VNI,
            dstport: 4789,
            local,
            flood: &[remote],
            fdb: &[(far_mac, remote)],
            workload: ws,
            mac,
            cidr: &format!("{addr}/24"),
        }
        .build(host)?;
    }
    pin_neighbours(&pair.a, &pair.b)?;
    Ok(pair)
}

/// (b) vtep on both hosts, one workload each, static FDB entries for the far workload; with
/// `xdp`, the XDP program on both underlays in native mode (`vtep-xdp`).
fn build_vtep(lab: &Lab, xdp: bool) -> Result<Pair> {
    let (p, xdp_line) = if xdp {
        ("x", "xdp = \"native\"\n")
    } else {
        ("v", "")
    };
    let n = |s: &str| format!("{p}{s}");
    let (ha, hb) = lab.two_hosts_named(&n("ha"), &n("hb"))?;
    let pair = Pair {
        a: lab.name(&n("wa")),
        b: lab.name(&n("wb")),
        hosts: Some([ha.clone(), hb.clone()]),
    };
    for (host, name, remote, ws, addr, mac, far_mac) in [
        (
            &ha,
            lab.name(&n("a")),
            "198.18.0.2",
            &pair.a,
            IP_A,
            MAC_A,
            MAC_B,
        ),
        (
            &hb,
            lab.name(&n("b")),
            "198.18.0.1",
            &pair.b,
            IP_B,
            MAC_B,
            MAC_A,
        ),
    ] {
        let config = format!(
            "name = \"{name}\"\n[underlay]\ninterface = \"eth0\"\n{xdp_line}[[vni]]\nid = {VNI}\nremotes = [\"{remote}\"]\n\
             [[vni.workload]]\nnetns = \"{ws}\"\naddress = \"{addr}/24\"\nmac = \"{mac}\"\n\
             [[vni.fdb]]\nmac = \"{far_mac}\"\ndst = \"{remote}\"\n"
        );
        lab::start_vtep(lab, host, &config, false)?;
        vtep_lab::no_ipv6(ws)?;
    }
    pin_neighbours(&pair.a, &pair.b)?;
    Ok(pair)
}

/// (d) The floor: the hosts, veths and workloads of (b), with TC programs that only redirect and
/// do no tunnel work: on each host's port (the workload's veth), to the egress of the underlay;
/// on each underlay, `bpf_redirect_peer` into the workload. The underlays carry the workloads'
/// MACs, so a frame arrives as addressed to its host (as vtep's outer header makes it), and
/// `redirect_peer` keeps that. Returns the workloads and the links that hold the programs.
fn build_floor(lab: &Lab) -> Result<(Pair, Vec<OwnedFd>)> {
    let (ha, hb) = (lab.host("fha")?, lab.host("fhb")?);
    lab.wire(
        End {
            mac: MAC_A,
            ..End::new(&ha, "eth0", "198.18.0.1/24")
        },
        End {
            mac: MAC_B,
            ..End::new(&hb, "eth0", "198.18.0.2/24")
        },
        1500,
    )?;
    let pair = Pair {
        a: lab.host("fwa")?,
        b: lab.host("fwb")?,
        hosts: None,
    };
    let mut links = Vec::new();
    for (host, ws, addr, mac) in [(&ha, &pair.a, IP_A, MAC_A), (&hb, &pair.b, IP_B, MAC_B)] {
        lab.wire(
            End::new(host, "port", ""),
            End {
                mac,
                ..End::new(ws, "eth0", &format!("{addr}/24"))
            },
            WORKLOAD_MTU,
        )?;
        let index = |ifname: &str| -> Result<u32> {
            link(host, ifname)?["ifindex"]
                .as_u64()
                .map(|i| i as u32)
                .with_context(|| format!("no ifindex for {ifname} in {host}"))
        };
        let (port, underlay) = (index("port")?, index("eth0")?);
        let to_underlay = RawProgram::redirecting(underlay, false)?;
        let to_workload = RawProgram::redirecting(port, true)?;
        in_netns(host, || -> Result<()> {
            links.push(to_underlay.attach_tcx_ingress(port)?);
            links.push(to_workload.attach_tcx_ingress(underlay)?);
            Ok(())
        })??;
    }
    pin_neighbours(&pair.a, &pair.b)?;
    Ok((pair, links))
}

/// (e) The zero-overhead reference: the two workloads joined by one veth.
fn build_direct(lab: &Lab) -> Result<Pair> {
    let pair = Pair {
        a: lab.host("dwa")?,
        b: lab.host("dwb")?,
        hosts: None,
    };
    let (ca, cb) = (format!("{IP_A}/24"), format!("{IP_B}/24"));
    lab.wire(
        End {
            mac: MAC_A,
            ..End::new(&pair.a, "eth0", &ca)
        },
        End {
            mac: MAC_B,
            ..End::new(&pair.b, "eth0", &cb)
        },
        WORKLOAD_MTU,
    )?;
    pin_neighbours(&pair.a, &pair.b)?;
    Ok(pair)
}

fn rx_packets(ns: &str) -> Result<u64> {
    if_counter(ns, "eth0", "rx_packets")
}

/// 64-byte frames (60 on the wire plus the FCS) of UDP from workload A to workload B, sent by
/// trafgen on one pinned CPU as fast as it can; returns the packets per second workload B's
/// interface received over `seconds` (after one second of warm-up).
fn udp_pps(lab: &Lab, p: &Pair, seconds: u32) -> Result<f64> {
    // 14 Ethernet + 20 IPv4 + 8 UDP + 18 payload = 60 bytes.
    let cfg = lab.file(
        "udp64.trafgen",
        &format!(
            "{{ eth(da={MAC_B}, sa={MAC_A}), ipv4(saddr={IP_A}, daddr={IP_B}, ttl=64), udp(sp=4000, dp={UDP_PORT}), fill(0x41, 18) }}\n"
        ),
    )?;
    let sink = UdpSink::start(&p.b)?;
    let generator = Trafgen::start(&p.a, &cfg)?;
    std::thread::sleep(Duration::from_secs(1));
    let (t0, r0) = (Instant::now(), rx_packets(&p.b)?);
    std::thread::sleep(Duration::from_secs(u64::from(seconds)));
    let (t1, r1) = (Instant::now(), rx_packets(&p.b)?);
    generator.stop();
    sink.stop();
    Ok((r1 - r0) as f64 / (t1 - t0).as_secs_f64())
}

/// trafgen sending the frames of config file `cfg` out of `eth0` of namespace `ns` as fast as
/// it can, on one pinned CPU, until stopped.
struct Trafgen {
    child: std::process::Child,
}

impl Trafgen {
    fn start(ns: &str, cfg: &Path) -> Result<Self> {
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "taskset",
                "-c",
                GENERATOR_CPU,
                "trafgen",
                "-o",
                "eth0",
                "-P",
                "1",
                "-C",
                "-i",
            ])
            .arg(cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("starting trafgen")?;
        Ok(Self { child })
    }

    fn stop(mut self) {
        // trafgen forks its sender and only stops on SIGTERM: signal the whole group. One that
        // cannot drain its ring never exits on it: killed after a grace period.
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// The attack mix: while workload A sends workload B one TCP stream, host A floods host B's
/// underlay with VXLAN of a VNI nobody configured (60-byte inner frames, as fast as one CPU
/// sends them; the inner bytes are never read: trafgen's `eth()` after the VXLAN header made it
/// send a dozen frames and then hang). Returns the stream's Gbit/s and the flood's packets per second host B took in
/// (its underlay's received packets less what reached workload B).
fn under_attack(lab: &Lab, p: &Pair, hosts: &[String; 2], seconds: u32) -> Result<(f64, f64)> {
    let mac = |ns: &str| -> Result<String> {
        link(ns, "eth0")?["address"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("no MAC on eth0 of {ns}"))
    };
    let (mac_a, mac_b) = (mac(&hosts[0])?, mac(&hosts[1])?);
    let vni = ATTACK_VNI.to_be_bytes();
    let cfg = lab.file(
        "attack.trafgen",
        &format!(
            "{{ eth(da={mac_b}, sa={mac_a}), ipv4(saddr=198.18.0.1, daddr={HOST_B}, ttl=64), \
             udp(sp=4000, dp=4789), 0x08, 0x00, 0x00, 0x00, {:#04x}, {:#04x}, {:#04x}, 0x00, \
             fill(0x41, 60) }}\n",
            vni[1], vni[2], vni[3]
        ),
    )?;
    let generator = Trafgen::start(&hosts[0], &cfg)?;
    std::thread::sleep(Duration::from_secs(1));
    let taken =
        || -> Result<u64> { Ok(if_counter(&hosts[1], "eth0", "rx_packets")? - rx_packets(&p.b)?) };
    let (t0, n0) = (Instant::now(), taken()?);
    let tcp = tcp_gbps(p, seconds);
    let (t1, n1) = (Instant::now(), taken()?);
    generator.stop();
    Ok((tcp?, n1.saturating_sub(n0) as f64 / (t1 - t0).as_secs_f64()))
}

/// A UDP socket bound to workload B's generator port and never read: once its buffer is full,
/// datagrams are dropped at the socket (counted in the interface's `rx_packets` like the rest).
/// Without it every datagram hits a closed port and B's stack answers with ICMP port
/// unreachable, whose per-destination rate limit does a route lookup per packet (about a fifth
/// of all CPU time in every variant, nothing to do with tunnelling). A socket that is read would
/// cost a wake-up of the reader per datagram instead.
struct UdpSink {
    _sock: UdpSocket,
}

impl UdpSink {
    fn start(ns: &str) -> Result<Self> {
        let addr: SocketAddr = format!("{IP_B}:{UDP_PORT}").parse()?;
        let sock = in_netns(ns, move || UdpSocket::bind(addr))??;
        Ok(Self { _sock: sock })
    }

    fn stop(self) {}
}

/// One TCP stream (iperf3) from workload A to workload B for `seconds`; Gbit/s received.
/// Scenario S4's routed path (seed 001): one TCP stream from the workload behind host A
/// (10.1.5.10) to the one behind host B (10.1.8.10), routed by each host onto the tunnel, with
/// the article's kernel commands on both hosts against vtep with `examples/s4-host-{a,b}.toml`,
/// interleaved over `rounds`; prints the medians as JSON.
pub fn routed(vtep: &Path, rounds: u32, seconds: u32) -> Result<()> {
    let prefix = format!("vr{}", std::process::id() % 100_000);
    let mut kernel = Vec::new();
    let mut ours = Vec::new();
    lab::with_lab(&prefix, vtep, |lab| {
        let (ka, kb) = lab.two_hosts_named("kra", "krb")?;
        let (kwa, kwb) = (lab.host("krwa")?, lab.host("krwb")?);
        for (host, workload, gateway, workload_ip, overlay, peer, peer_overlay, far) in [
            (
                &ka,
                &kwa,
                "10.1.5.1",
                "10.1.5.10",
                "1.1.1.1",
                "198.18.0.2",
                "1.1.1.2",
                "10.1.8.0/24",
            ),
            (
                &kb,
                &kwb,
                "10.1.8.1",
                "10.1.8.10",
                "1.1.1.2",
                "198.18.0.1",
                "1.1.1.1",
                "10.1.5.0/24",
            ),
        ] {
            vtep_lab::ArticleHost {
                host,
                workload,
                gateway,
                workload_ip,
                overlay,
                vni: 20,
                dstport: 4789,
                peer_underlay: peer,
                peer_overlay,
                far_subnet: far,
            }
            .build()?;
        }
        let (va, vb) = lab.two_hosts_named("vra", "vrb")?;
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        for (host, file, example_ns, ns) in [
            (&va, "s4-host-a.toml", "s4-a-ns1", "vrwa"),
            (&vb, "s4-host-b.toml", "s4-b-ns1", "vrwb"),
        ] {
            let text = std::fs::read_to_string(examples.join(file))
                .with_context(|| format!("reading examples/{file}"))?
                .replace("name = \"s4a\"", &format!("name = \"{}\"", lab.name("s4a")))
                .replace("name = \"s4b\"", &format!("name = \"{}\"", lab.name("s4b")))
                .replace(
                    &format!("netns = \"{example_ns}\""),
                    &format!("netns = \"{}\"", lab.name(ns)),
                );
            lab::start_vtep(lab, host, &text, false)?;
        }
        let (vwa, vwb) = (lab.name("vrwa"), lab.name("vrwb"));
        for (what, a, b) in [("kernel", &kwa, &kwb), ("vtep", &vwa, &vwb)] {
            vtep_lab::no_ipv6(a)?;
            vtep_lab::no_ipv6(b)?;
            if !vtep_lab::ping(a, "10.1.8.10", 2)? {
                bail!("{what}: the workloads cannot reach each other");
            }
        }
        for round in 1..=rounds {
            eprintln!("bench: round {round}/{rounds}: routed kernel, routed vtep");
            kernel.push(tcp_gbps_to(&kwa, &kwb, "10.1.8.10", seconds)?);
            ours.push(tcp_gbps_to(&vwa, &vwb, "10.1.8.10", seconds)?);
        }
        Ok(())
    })?;
    let (k, v) = (median(&kernel), median(&ours));
    let report = json!({
        "routed_tcp_gbps": {"kernel": round2(k), "vtep": round2(v)},
        "vtep/kernel": round2(v / k),
        "rounds": rounds,
        "seconds": seconds,
        "samples": {"kernel": kernel, "vtep": ours},
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// An IPv6 underlay (2001:db8::1 and ::2, MTU 1500): the kernel's vxlan driver over IPv6 in its
/// default configuration (UDP checksums on), vtep with checksums (the default), and vtep with
/// `udp6_zero_csum_tx` on both hosts (what a vtep-only fabric can have), each with one
/// workload per host (MTU 1430, the underlay's less IPv6 VXLAN's 70) and static FDB entries;
/// 64-byte UDP pps and one TCP stream, interleaved over `rounds`; prints the medians as JSON.
pub fn ipv6(vtep: &Path, rounds: u32, seconds: u32) -> Result<()> {
    const VARIANTS: [&str; 3] = ["kernel", "vtep", "vtep-zero-csum"];
    let prefix = format!("v6b{}", std::process::id() % 100_000);
    let mut pps: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut tcp: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    lab::with_lab(&prefix, vtep, |lab| {
        let mut pairs = Vec::new();
        for (i, variant) in VARIANTS.iter().enumerate() {
            pairs.push(build_ipv6_pair(lab, i, variant)?);
        }
        for round in 1..=rounds {
            eprintln!("bench: round {round}/{rounds}: {}", VARIANTS.join(", "));
            for (variant, pair) in VARIANTS.iter().zip(&pairs) {
                pps.entry(variant)
                    .or_default()
                    .push(udp_pps(lab, pair, seconds)?);
                tcp.entry(variant)
                    .or_default()
                    .push(tcp_gbps(pair, seconds)?);
            }
        }
        Ok(())
    })?;
    let medians = |m: &BTreeMap<&str, Vec<f64>>| -> BTreeMap<String, f64> {
        m.iter()
            .map(|(k, v)| (k.to_string(), round2(median(v))))
            .collect()
    };
    let (p, t) = (medians(&pps), medians(&tcp));
    let ratio = |m: &BTreeMap<String, f64>, v: &str| round2(m[v] / m["kernel"]);
    let report = json!({
        "underlay": "IPv6",
        "pps": p,
        "tcp_gbps": t,
        "vtep/kernel": {"pps": ratio(&p, "vtep"), "tcp": ratio(&t, "vtep")},
        "vtep-zero-csum/kernel": {
            "pps": ratio(&p, "vtep-zero-csum"),
            "tcp": ratio(&t, "vtep-zero-csum"),
        },
        "rounds": rounds,
        "seconds": seconds,
        "samples": {"pps": pps, "tcp_gbps": tcp},
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Variant `variant` (see [`ipv6`]) as the `i`th pair of hosts on IPv6 underlays.
fn build_ipv6_pair(lab: &Lab, i: usize, variant: &str) -> Result<Pair> {
    let host = |s: &str| lab.host(&format!("6{i}{s}"));
    let (ha, hb) = (host("ha")?, host("hb")?);
    // vtep makes its workloads' namespaces; the kernel's workloads need them made.
    let (wa, wb) = match variant {
        "kernel" => (host("wa")?, host("wb")?),
        _ => (lab.name(&format!("6{i}wa")), lab.name(&format!("6{i}wb"))),
    };
    // The lab's hosts start without IPv6 (quiet); the underlay needs it, usable at once,
    // without waiting for duplicate address detection.
    for host in [&ha, &hb] {
        vtep_lab::sysctl(
            host,
            &[
                "net.ipv6.conf.all.disable_ipv6=0",
                "net.ipv6.conf.default.disable_ipv6=0",
                "net.ipv6.conf.all.accept_dad=0",
                "net.ipv6.conf.default.accept_dad=0",
            ],
        )?;
    }
    lab.wire(
        End::new(&ha, "eth0", "2001:db8::1/64"),
        End::new(&hb, "eth0", "2001:db8::2/64"),
        1500,
    )?;
    let sides = [
        (&ha, &wa, "2001:db8::1", "2001:db8::2", IP_A, MAC_A, MAC_B),
        (&hb, &wb, "2001:db8::2", "2001:db8::1", IP_B, MAC_B, MAC_A),
    ];
    for (side, (host, ws, local, remote, addr, mac, far_mac)) in sides.into_iter().enumerate() {
        if variant == "kernel" {
            let ip = |args: &[&str]| vtep_lab::ip_in(host, args).map(drop);
            ip(&[
                "link", "add", "vx0", "type", "vxlan", "id", "100", "dstport", "4789", "local",
                local, "dev", "eth0",
            ])?;
            vtep_lab::run(
                "bridge",
                &[
                    "-n", host, "fdb", "append", far_mac, "dev", "vx0", "dst", remote,
                ],
            )?;
            ip(&["link", "add", "br0", "type", "bridge"])?;
            ip(&["link", "set", "vx0", "master", "br0"])?;
            ip(&[
                "link", "add", "wbh", "type", "veth", "peer", "name", "eth0", "netns", ws,
            ])?;
            ip(&["link", "set", "wbh", "master", "br0"])?;
            for l in ["vx0", "br0", "wbh"] {
                ip(&["link", "set", l, "up"])?;
            }
            let w = |args: &[&str]| vtep_lab::ip_in(ws, args).map(drop);
            w(&["link", "set", "eth0", "address", mac, "mtu", "1430"])?;
            w(&["addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
            w(&["link", "set", "eth0", "up"])?;
        } else {
            let zero = variant == "vtep-zero-csum";
            let name = lab.name(&format!("6{i}{side}"));
            let config = format!(
                "name = \"{name}\"\n[underlay]\ninterface = \"eth0\"\nlocal = \"{local}\"\n\
                 udp6_zero_csum_tx = {zero}\n[[vni]]\nid = {VNI}\nremotes = [\"{remote}\"]\n\
                 [[vni.workload]]\nnetns = \"{ws}\"\naddress = \"{addr}/24\"\nmac = \"{mac}\"\n\
                 [[vni.fdb]]\nmac = \"{far_mac}\"\ndst = \"{remote}\"\n"
            );
            lab::start_vtep(lab, host, &config, false)?;
        }
        vtep_lab::no_ipv6(ws)?;
    }
    pin_neighbours(&wa, &wb)?;
    if !vtep_lab::ping(&wa, IP_B, 2)? {
        bail!("{variant} over IPv6: the workloads cannot reach each other");
    }
    Ok(Pair {
        a: wa,
        b: wb,
        hosts: Some([ha, hb]),
    })
}

fn tcp_gbps(p: &Pair, seconds: u32) -> Result<f64> {
    tcp_gbps_to(&p.a, &p.b, IP_B, seconds)
}

/// One TCP stream (iperf3) from namespace `client` to address `server_ip` in namespace `server`
/// for `seconds`; Gbit/s received.
fn tcp_gbps_to(client: &str, server: &str, server_ip: &str, seconds: u32) -> Result<f64> {
    let mut server = Command::new("ip")
        .args([
            "netns", "exec", server, "iperf3", "-s", "-1", "-B", server_ip,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting iperf3 -s")?;
    std::thread::sleep(Duration::from_millis(300));
    let out = cmd::output(
        "ip",
        &[
            "netns",
            "exec",
            client,
            "iperf3",
            "-c",
            server_ip,
            "-t",
            &seconds.to_string(),
            "-J",
        ],
    );
    let _ = server.wait();
    let report: serde_json::Value = serde_json::from_str(&out?).context("parsing iperf3 -J")?;
    let bps = report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .context("iperf3 report without end.sum_received.bits_per_second")?;
    Ok(bps / 1e9)
}

/// Request/response latency: 1-byte UDP requests from workload A, echoed by workload B, one at
/// a time; the median round trip in microseconds over 20,000 exchanges (after 1,000 warm-up).
///
/// Both ends busy-poll their non-blocking sockets, pinned to different CPUs. A blocking
/// receiver sleeps between messages, and waking an idle vCPU on this VM takes tens of
/// microseconds, which swamped the path being measured (every variant paid it, and the run-to-run
/// spread was larger than the differences). Spinning removes the wake-ups: a datagram is carried
/// through the whole path inside the sender's `send` (veth, backlog and programs run in its
/// softirq), so the round trip is the two paths' cost plus the socket calls.
fn rr_latency_us(p: &Pair) -> Result<f64> {
    const WARMUP: usize = 1_000;
    const SAMPLES: usize = 20_000;
    const GIVE_UP: Duration = Duration::from_secs(2);
    let server_addr: SocketAddr = format!("{IP_B}:7007").parse()?;
    let server = in_netns(&p.b, move || UdpSocket::bind(server_addr))??;
    server.set_nonblocking(true)?;
    let echo = std::thread::spawn(move || {
        pin_current_thread(1);
        let mut buf = [0u8; 16];
        for _ in 0..WARMUP + SAMPLES {
            let Some((n, from)) = spin(GIVE_UP, || server.recv_from(&mut buf)) else {
                return;
            };
            let _ = server.send_to(&buf[..n], from);
        }
    });
    let client = in_netns(&p.a, move || UdpSocket::bind((IP_A, 0)))??;
    client.set_nonblocking(true)?;
    client.connect(server_addr)?;
    let rtts = std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<Vec<f64>> {
                pin_current_thread(0);
                let mut rtts = Vec::with_capacity(SAMPLES);
                let mut buf = [0u8; 16];
                for i in 0..WARMUP + SAMPLES {
                    let t = Instant::now();
                    client.send(&[i as u8])?;
                    spin(GIVE_UP, || client.recv(&mut buf)).context("no echo within 2 s")?;
                    if i >= WARMUP {
                        rtts.push(t.elapsed().as_secs_f64() * 1e6);
                    }
                }
                Ok(rtts)
            })
            .join()
            .map_err(|_| anyhow::anyhow!("latency client panicked"))?
    })?;
    let _ = echo.join();
    Ok(median(&rtts))
}

/// Retries the non-blocking `op` until it has a result; `None` after `limit` without one (or on
/// an error other than "would block").
fn spin<T>(limit: Duration, mut op: impl FnMut() -> std::io::Result<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        match op() {
            Ok(v) => return Some(v),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if start.elapsed() > limit {
                    return None;
                }
                std::hint::spin_loop();
            }
            Err(_) => return None,
        }
    }
}

/// Keeps the calling thread on `cpu` (best effort: on a one-CPU machine both ends share it).
fn pin_current_thread(cpu: usize) {
    let mut set = nix::sched::CpuSet::new();
    if set.set(cpu).is_ok() {
        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
    }
}

/// What prog-cost measured: each program's own cost (a run minus an empty program's run) and
/// the raw medians it came from.
struct ProgCost {
    decap: f64,
    encap: f64,
    xdp_decap: f64,
    decap_1m: f64,
    encap_1m: f64,
    xdp_decap_1m: f64,
    floor: f64,
    xdp_floor: f64,
    decap_raw: f64,
    encap_raw: f64,
    xdp_decap_raw: f64,
}

/// Per-packet cost of the programs alone, from the `prog-cost` tool (BPF_PROG_TEST_RUN).
fn prog_cost() -> Result<ProgCost> {
    let out = cmd::tests_tool("prog-cost")
        .stderr(Stdio::inherit())
        .output()
        .context("running prog-cost")?;
    if !out.status.success() {
        bail!("prog-cost failed ({})", out.status);
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("parsing prog-cost output")?;
    let get = |k: &str| {
        v[k].as_f64()
            .with_context(|| format!("prog-cost output without {k}"))
    };
    Ok(ProgCost {
        decap: get("decap_ns")?,
        encap: get("encap_ns")?,
        xdp_decap: get("xdp_decap_ns")?,
        decap_1m: get("decap_ns_1m")?,
        encap_1m: get("encap_ns_1m")?,
        xdp_decap_1m: get("xdp_decap_ns_1m")?,
        floor: get("floor_ns")?,
        xdp_floor: get("xdp_floor_ns")?,
        decap_raw: get("decap_raw_ns")?,
        encap_raw: get("encap_raw_ns")?,
        xdp_decap_raw: get("xdp_decap_raw_ns")?,
    })
}

fn print_table(r: &serde_json::Value) {
    let f = |m: &str, v: &str| r[m][v].as_f64().unwrap_or(f64::NAN);
    println!(
        "\n{:<14} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8}",
        "metric",
        "kernel",
        "vtep",
        "vtep-xdp",
        "floor",
        "direct",
        "vtep/k",
        "xdp/k",
        "vtep/fl",
        "xdp/fl"
    );
    for m in ["udp_64b_pps", "tcp_gbps", "rr_latency_us"] {
        let (k, v, x, fl, d) = (
            f(m, "kernel"),
            f(m, "vtep"),
            f(m, "vtep-xdp"),
            f(m, "floor"),
            f(m, "direct"),
        );
        println!(
            "{m:<14} {k:>10.2} {v:>10.2} {x:>10.2} {fl:>10.2} {d:>10.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            v / k,
            x / k,
            v / fl,
            x / fl
        );
    }
    let o = |v: &str| f("tunnel_overhead_ns", v);
    println!(
        "overhead per 64-byte packet (1/pps - 1/pps_direct): kernel {:.0} ns, vtep {:.0} ns, vtep-xdp {:.0} ns, floor {:.0} ns",
        o("kernel"),
        o("vtep"),
        o("vtep-xdp"),
        o("floor")
    );
    let (d, e, x) = (
        f("prog_ns", "decap"),
        f("prog_ns", "encap"),
        f("prog_ns", "xdp_decap"),
    );
    let (d1, e1, x1) = (
        f("prog_ns_1m_fdb", "decap"),
        f("prog_ns_1m_fdb", "encap"),
        f("prog_ns_1m_fdb", "xdp_decap"),
    );
    println!(
        "prog_ns (BPF_PROG_TEST_RUN, median, net of an empty program of the same type: TC {:.0} ns, XDP {:.0} ns): decap {d:.1} ns, XDP decap {x:.1} ns, encap {e:.1} ns; with 1,000,000 FDB entries: {d1:.1}, {x1:.1}, {e1:.1} ns",
        f("prog_ns_raw", "empty_program"),
        f("prog_ns_raw", "empty_xdp_program"),
    );
    println!(
        "host TCP to the underlay address (Gbit/s): vtep {:.2}, vtep-xdp {:.2}",
        f("host_tcp_gbps", "vtep"),
        f("host_tcp_gbps", "vtep-xdp")
    );
    println!(
        "under an unknown-VNI flood: workload TCP Gbit/s kernel {:.2}, vtep {:.2}, vtep-xdp {:.2}; flood pps absorbed kernel {:.0}, vtep {:.0}, vtep-xdp {:.0}",
        f("attack_tcp_gbps", "kernel"),
        f("attack_tcp_gbps", "vtep"),
        f("attack_tcp_gbps", "vtep-xdp"),
        f("attack_pps_absorbed", "kernel"),
        f("attack_pps_absorbed", "vtep"),
        f("attack_pps_absorbed", "vtep-xdp")
    );
    println!(
        "rounds: {} (kernel, vtep, vtep-xdp, floor, direct interleaved)",
        r["rounds"]
    );
}

/// A PNG bar chart of every metric relative to the kernel driver (matplotlib).
fn plot(r: &serde_json::Value, path: &Path) -> Result<()> {
    crate::setup::python_module("matplotlib", "matplotlib")?;
    let script = cmd::workspace_root().join("xtask/plot_bench.py");
    let data = path.with_extension("data.json");
    std::fs::write(&data, serde_json::to_string(r)?)?;
    let result = cmd::status(
        "python3",
        &[
            &script.to_string_lossy(),
            &data.to_string_lossy(),
            &path.to_string_lossy(),
        ],
    );
    let _ = std::fs::remove_file(&data);
    result
}
