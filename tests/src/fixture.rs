//! The namespace fixture for running the datapath's programs through `BPF_PROG_TEST_RUN`: used
//! by the datapath tests (tests/tests/datapath/) and the program-cost benchmark
//! (src/bin/prog_cost.rs).
//!
//! A [`Fixture`] is a network namespace of its own (removed on drop, also when a test fails or
//! the benchmark panics) holding an underlay veth `ul0` (198.18.0.1/24, fixed MAC, a permanent
//! neighbour 198.18.0.2 so `bpf_fib_lookup` returns known MACs) and two port veths
//! `port0`/`port1` whose peers `wl0`/`wl1` stand for workloads. The programs are loaded and run
//! on a thread that entered the namespace ([`Fixture::run`]): `BPF_PROG_TEST_RUN` runs in the
//! caller's namespace, and the port program finds its port by `skb->ifindex`, which
//! [`test_run`] sets through the `__sk_buff` context. IPv6 is off in the namespace so the
//! interfaces send nothing of their own.
//!
//! `ctx_in` notes: only `ifindex` (offset 40) makes the port program find its port;
//! `ingress_ifindex` alone leaves `skb->dev` the loopback device (the run is dropped as
//! unknown_port), as does running without a context.

use std::{net::Ipv4Addr, time::Duration};

use aya::programs::{TestRun, TestRunOptions};
use vtep::datapath::{
    loader::Datapath,
    tables::{Port, Target, VniTable, fill},
    trace::Trace,
};
use vtep_common::{
    maps::{DEFAULT_FDB_SIZE, DatapathConfig, NextHopEntry, vtep_addr_v4},
    wire::{DEFAULT_SRCPORT_MAX, DEFAULT_SRCPORT_MIN},
};
use vtep_lab::{Netns, ip_in, no_ipv6, sysctl};

use crate::{
    lab::must,
    packet::{IPPROTO_UDP, Ipv4, Mac, VXLAN_I, VXLAN_LEN, vxlan_header, vxlan_packet},
};

// TC verdicts (include/uapi/linux/pkt_cls.h).
/// What the programs return for a packet that is not theirs: `TCX_NEXT` (`TC_ACT_UNSPEC`, -1),
/// so the next program on the hook, or the kernel, gets it.
pub const TC_PASS: u32 = u32::MAX;
pub const TC_ACT_SHOT: u32 = 2;
pub const TC_ACT_REDIRECT: u32 = 7;
// XDP verdicts (include/uapi/linux/bpf.h, enum xdp_action).
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_REDIRECT: u32 = 4;

/// `struct __sk_buff` of this kernel's uapi: 192 bytes, `ifindex` the u32 at offset 40
/// (len, pkt_type, mark, queue_mapping, protocol, vlan_present, vlan_tci, vlan_proto, priority,
/// ingress_ifindex, ifindex). `BPF_PROG_TEST_RUN` makes the device with this ifindex
/// `skb->dev`, which is what the program reads as `skb->ifindex`.
pub const SKB_CTX_LEN: usize = 192;
pub const SKB_CTX_IFINDEX: usize = 40;

/// This host's VTEP address (on `ul0`) and the remote VTEP (a permanent neighbour on `ul0`).
pub const LOCAL_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const REMOTE_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// On the underlay subnet but without a neighbour entry: the fib lookup answers NO_NEIGH.
pub const UNRESOLVED_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 7);
/// Not routable from the namespace (TEST-NET-3, no default route).
pub const UNROUTABLE_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);

/// `ul0`'s MAC: the outer source of encapsulated packets.
pub const UL_MAC: Mac = Mac([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
/// The remote VTEP's MAC: the outer destination of encapsulated packets.
pub const NEIGH_MAC: Mac = Mac([0x02, 0x00, 0x00, 0x00, 0x00, 0x02]);
/// Workloads behind `port0` and `port1`, and one behind the remote VTEP.
pub const WL0_MAC: Mac = Mac([0x02, 0x00, 0x00, 0x00, 0x01, 0x00]);
pub const WL1_MAC: Mac = Mac([0x02, 0x00, 0x00, 0x00, 0x01, 0x01]);
pub const REMOTE_WL_MAC: Mac = Mac([0x02, 0x00, 0x00, 0x00, 0x02, 0x00]);
/// In the VNI's FDB as behind a VTEP without route, and one without a resolved neighbour.
pub const UNROUTABLE_WL_MAC: Mac = Mac([0x02, 0x00, 0x00, 0x00, 0x02, 0x01]);
pub const UNRESOLVED_WL_MAC: Mac = Mac([0x02, 0x00, 0x00, 0x00, 0x02, 0x02]);

/// The standard VNI, its UDP ports and outer TTL.
pub const VNI: u32 = 100;
pub const PORT_IANA: u16 = 4789;
pub const PORT_LEGACY: u16 = 8472;
pub const TTL: u8 = 64;
/// The stats slot every VNI of [`Fixture::table`] uses.
pub const SLOT: u32 = 0;

// ---------------------------------------------------------------------------------------------
// The namespace fixture.

/// One network namespace with the underlay and two ports; deleted when dropped.
pub struct Fixture {
    netns: Netns,
    pub ul0: u32,
    pub port0: u32,
    pub port1: u32,
}

// No `Default`: making a fixture creates a namespace, which a default value should not do.
#[allow(clippy::new_without_default)]
impl Fixture {
    /// A fixture in a namespace named `vtdp<pid>-<n>`.
    pub fn new() -> Self {
        Self::named("vtdp")
    }

    /// A fixture in a namespace named `<prefix><pid>-<n>`.
    pub fn named(prefix: &str) -> Self {
        // From here on the namespace is removed whatever happens.
        let netns = must(Netns::unique(prefix));
        let ns = netns.name();
        // No IPv6: the interfaces would send router solicitations and MLD reports, and the
        // flood tests count what the interfaces transmit.
        must(no_ipv6(ns));
        let ipn = |args: &[&str]| must(ip_in(ns, args));
        let (ul_mac, neigh_mac) = (UL_MAC.to_string(), NEIGH_MAC.to_string());
        ipn(&[
            "link", "add", "name", "ul0", "address", &ul_mac, "type", "veth", "peer", "name",
            "ul0p",
        ]);
        ipn(&["addr", "add", "198.18.0.1/24", "dev", "ul0"]);
        ipn(&["link", "set", "ul0", "up"]);
        ipn(&["link", "set", "ul0p", "up"]);
        ipn(&[
            "neigh",
            "add",
            "198.18.0.2",
            "lladdr",
            &neigh_mac,
            "dev",
            "ul0",
            "nud",
            "permanent",
        ]);
        for (port, wl) in [("port0", "wl0"), ("port1", "wl1")] {
            ipn(&[
                "link", "add", "name", port, "type", "veth", "peer", "name", wl,
            ]);
            ipn(&["link", "set", port, "up"]);
            ipn(&["link", "set", wl, "up"]);
            // The encap path does an input fib lookup on the port, which the kernel refuses
            // (FWD_DISABLED) unless the port forwards.
            must(sysctl(ns, &[&format!("net.ipv4.conf.{port}.forwarding=1")]));
        }
        let mut fx = Self {
            netns,
            ul0: 0,
            port0: 0,
            port1: 0,
        };
        fx.ul0 = fx.ifindex("ul0");
        fx.port0 = fx.ifindex("port0");
        fx.port1 = fx.ifindex("port1");
        fx
    }

    /// The namespace's name (under /run/netns).
    pub fn ns(&self) -> &str {
        self.netns.name()
    }

    /// `ip -j -s link show dev IFNAME` inside the namespace, parsed.
    pub fn link(&self, ifname: &str) -> serde_json::Value {
        crate::lab::link(self.ns(), ifname)
    }

    pub fn ifindex(&self, ifname: &str) -> u32 {
        self.link(ifname)["ifindex"]
            .as_u64()
            .unwrap_or_else(|| panic!("no ifindex for {ifname}")) as u32
    }

    /// Sets the MTU of `ifname` in the namespace.
    pub fn set_mtu(&self, ifname: &str, mtu: u32) {
        crate::lab::ip(&[
            "-n",
            self.ns(),
            "link",
            "set",
            ifname,
            "mtu",
            &mtu.to_string(),
        ]);
    }

    /// Packets `ifname` transmitted (a clone sent out of it counts here).
    pub fn tx_packets(&self, ifname: &str) -> u64 {
        self.link(ifname)["stats64"]["tx"]["packets"]
            .as_u64()
            .unwrap_or_else(|| panic!("no tx counter for {ifname}"))
    }

    /// Runs `f` on a thread inside the namespace (where `BPF_PROG_TEST_RUN` then runs);
    /// a panic in `f` fails the test with its own message.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        must(self.netns.run(f))
    }

    /// VNI `id` on `dstport` with outer TTL `ttl`: `port0` (workload WL0) and `port1`
    /// (workload WL1), the remote VTEP REMOTE_IP in the flood list, and REMOTE_WL behind it.
    pub fn table(&self, id: u32, dstport: u16, ttl: u8) -> VniTable {
        VniTable {
            id,
            dstport,
            ttl,
            stats_slot: SLOT,
            remotes: vec![REMOTE_IP.into()],
            ports: vec![
                Port {
                    name: "port0".into(),
                    ifindex: self.port0,
                    flags: 0,
                    mac: Some(WL0_MAC),
                    xdp: true,
                },
                Port {
                    name: "port1".into(),
                    ifindex: self.port1,
                    flags: 0,
                    mac: Some(WL1_MAC),
                    xdp: true,
                },
            ],
            fdb: vec![
                (REMOTE_WL_MAC, Target::Remote(REMOTE_IP.into())),
                (UNROUTABLE_WL_MAC, Target::Remote(UNROUTABLE_IP.into())),
                (UNRESOLVED_WL_MAC, Target::Remote(UNRESOLVED_IP.into())),
            ],
            learning: true,
            max_learned: 0,
            flags: 0,
            proxy_entries: Vec::new(),
            group: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Loading and running.

/// The instance configuration: we are LOCAL_IP, VXLAN arrives on 4789 and 8472.
pub fn config(srcport_min: u16, srcport_max: u16) -> DatapathConfig {
    DatapathConfig {
        local_ip: vtep_addr_v4(LOCAL_IP.octets()),
        srcport_min,
        srcport_max,
        dstports: [
            PORT_IANA.to_be_bytes(),
            PORT_LEGACY.to_be_bytes(),
            [0, 0],
            [0, 0],
        ],
        flags: 0,
    }
}

/// The datapath with the default FDB capacity, loaded with `cfg` and filled with `tables`.
pub fn load(cfg: &DatapathConfig, tables: &[VniTable]) -> Datapath {
    load_sized(cfg, tables, DEFAULT_FDB_SIZE)
}

/// As [`load`], with an FDB of `fdb_size` entries.
pub fn load_sized(cfg: &DatapathConfig, tables: &[VniTable], fdb_size: u32) -> Datapath {
    load_with(cfg, tables, fdb_size, Trace::Off)
}

/// As [`load`], with the debug log set to `trace` (`vtep up --trace-datapath`).
pub fn load_traced(cfg: &DatapathConfig, tables: &[VniTable], trace: Trace) -> Datapath {
    load_with(cfg, tables, DEFAULT_FDB_SIZE, trace)
}

fn load_with(cfg: &DatapathConfig, tables: &[VniTable], fdb_size: u32, trace: Trace) -> Datapath {
    let mut dp = Datapath::load(cfg, fdb_size, None, trace).expect("loading the datapath");
    fill(&mut dp, tables).expect("filling the maps");
    dp
}

/// Writes the next-hop cache entry `vtep up`'s resolver would write for `remote`: send on
/// `ifindex` from `smac` to `dmac`.
pub fn cache_next_hop(dp: &mut Datapath, remote: Ipv4Addr, ifindex: u32, dmac: Mac, smac: Mac) {
    dp.nexthops()
        .expect("next-hop map")
        .insert(
            vtep_addr_v4(remote.octets()),
            NextHopEntry {
                ifindex,
                dmac: dmac.0,
                smac: smac.0,
            },
            0,
        )
        .expect("caching a next hop");
}

/// The default configuration with the standard VNI 100 on 4789.
pub fn load_standard(fx: &Fixture) -> Datapath {
    load_changed(fx, |_| {})
}

/// As [`load_standard`], with the standard VNI's table changed by `change` first.
pub fn load_changed(fx: &Fixture, change: impl FnOnce(&mut VniTable)) -> Datapath {
    let mut table = fx.table(VNI, PORT_IANA, TTL);
    change(&mut table);
    load(&config(DEFAULT_SRCPORT_MIN, DEFAULT_SRCPORT_MAX), &[table])
}

/// A VXLAN packet from the remote VTEP to us (from NEIGH_MAC to UL_MAC) on `dport` with VXLAN
/// header `vx` around `inner`.
pub fn vxlan_to_us(dport: u16, vx: [u8; VXLAN_LEN], inner: &[u8]) -> Vec<u8> {
    vxlan_from(REMOTE_IP, dport, vx, inner)
}

/// As [`vxlan_to_us`], from VTEP `from` instead of REMOTE_IP.
pub fn vxlan_from(from: Ipv4Addr, dport: u16, vx: [u8; VXLAN_LEN], inner: &[u8]) -> Vec<u8> {
    let ip = Ipv4::new(from, LOCAL_IP, IPPROTO_UDP);
    vxlan_packet(UL_MAC, NEIGH_MAC, ip, 54321, dport, vx, inner)
}

/// [`vxlan_to_us`] in the standard VNI on 4789.
pub fn standard_vxlan(inner: &[u8]) -> Vec<u8> {
    vxlan_to_us(PORT_IANA, vxlan_header(VXLAN_I, VNI), inner)
}

/// What one test run gave: the verdict, the packet as the program left it, and the time the
/// kernel measured around the program run.
#[derive(Debug)]
pub struct Run {
    pub verdict: u32,
    pub out: Vec<u8>,
    pub duration: Duration,
}

impl Run {
    /// The run the kernel reported as `res`, its output written into `out`.
    fn of(res: aya::programs::TestRunResult, mut out: Vec<u8>) -> Self {
        out.truncate(res.data_size_out as usize);
        Self {
            verdict: res.return_value,
            out,
            duration: res.duration,
        }
    }
}

/// The `__sk_buff` context that makes a test run look as if the packet arrived on `ifindex`.
pub fn skb_ctx(ifindex: u32) -> [u8; SKB_CTX_LEN] {
    let mut ctx = [0u8; SKB_CTX_LEN];
    ctx[SKB_CTX_IFINDEX..SKB_CTX_IFINDEX + 4].copy_from_slice(&ifindex.to_ne_bytes());
    ctx
}

/// Runs program `prog` once on `pkt` as if it arrived on `ifindex`.
pub fn test_run(dp: &mut Datapath, prog: &str, ifindex: u32, pkt: &[u8]) -> Run {
    try_test_run(dp, prog, ifindex, pkt)
        .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN of {prog}: {e:?}"))
}

/// As [`test_run`]; `Err` when the kernel refuses the run itself. It checks a packet before any
/// program sees it: an IPv4 ethertype needs a whole IPv4 header, for example.
pub fn try_test_run(
    dp: &mut Datapath,
    prog: &str,
    ifindex: u32,
    pkt: &[u8],
) -> Result<Run, aya::programs::ProgramError> {
    let ctx = skb_ctx(ifindex);
    let mut out = vec![0u8; 4096];
    let res = dp
        .program(prog)
        .expect("program")
        .test_run(TestRunOptions {
            data_in: Some(pkt),
            data_out: Some(&mut out),
            ctx_in: Some(&ctx),
            repeat: 1,
            ..Default::default()
        })?;
    Ok(Run::of(res, out))
}

/// Runs the XDP program once on `pkt`, loading it first if needed, with `ul0`'s MAC as the
/// underlay's (what `vtep up` writes when it attaches the program). XDP test runs take no
/// interface: the frame is seen as arriving on the namespace's loopback, which the program never
/// asks about; a redirect is only reported in the verdict, not carried out.
pub fn xdp_test_run(dp: &mut Datapath, pkt: &[u8]) -> Run {
    try_xdp_test_run(dp, pkt)
        .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN of the XDP program: {e:?}"))
}

/// As [`xdp_test_run`]; `Err` when the kernel refuses the run itself.
pub fn try_xdp_test_run(dp: &mut Datapath, pkt: &[u8]) -> Result<Run, aya::programs::ProgramError> {
    dp.xdp_underlay()
        .expect("XDP_UNDERLAY")
        .set(0, UL_MAC.0, 0)
        .expect("writing the underlay MAC");
    // Big enough for a multi-buffer frame: the kernel splits data_in past one page into fragments.
    let mut out = vec![0u8; pkt.len().max(4096)];
    let res = dp
        .xdp_program()
        .expect("loading the XDP program")
        .test_run(TestRunOptions {
            data_in: Some(pkt),
            data_out: Some(&mut out),
            repeat: 1,
            ..Default::default()
        })?;
    Ok(Run::of(res, out))
}
