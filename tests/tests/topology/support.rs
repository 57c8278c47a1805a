//! What the topology tests share: pings that must work, reading a host's state, running
//! `vtep` to completion, and the S2 hosts several tests start from.

use aya::programs::{SchedClassifier, TcAttachType};
use vtep_tests::{
    configs::{fdb, vni, workload},
    lab::{Lab, in_netns, ip, ns_exec, ping, ping_with},
    output::text,
};

use crate::{ADDR_A, ADDR_B, header};

pub use vtep_tests::lab::vtep_run;

/// `ping -c count -i interval` from `ns`; true when every echo was answered.
pub fn ping_n(ns: &str, addr: &str, count: u32, interval: &str) -> bool {
    ping_with(ns, addr, count, interval, 2)
}

/// Asserts that 2 pings of `size` bytes of IP packet with DF set (no fragmentation anywhere)
/// from `ns` to `addr` are answered.
#[track_caller]
pub fn assert_ping_df(ns: &str, addr: &str, size: u32) {
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
pub fn assert_ping(ns: &str, addr: &str, count: u32) {
    assert!(ping(ns, addr, count), "ping {ns} -> {addr} failed");
}

/// Two hosts and, on host a, an interface `<prefix>p` (up) to adopt: a veth whose peer `eth0`
/// is in namespace `<prefix>pw`. Returns the lab, host a and the interface.
pub fn host_with_a_port() -> (Lab, String, String) {
    let lab = Lab::new();
    let (a, _b) = lab.two_hosts();
    let port = lab.name("p");
    let peer_ns = lab.host("pw");
    ip(&[
        "-n", &a, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &peer_ns,
    ]);
    ip(&["-n", &a, "link", "set", &port, "up"]);
    (lab, a, port)
}

/// A file's contents read inside namespace `ns` (`ip netns exec` also remounts /sys).
pub fn ns_read(ns: &str, path: &str) -> String {
    let out = ns_exec(ns, "cat", &[path]);
    assert!(
        out.status.success(),
        "{ns}: cat {path}: {}",
        text(&out.stderr)
    );
    text(&out.stdout).trim().to_string()
}

/// The MAC `ns` has in its neighbour table for `addr` (lowercase), if any.
pub fn neighbour_mac(ns: &str, addr: &str) -> Option<String> {
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
pub fn tcx_ingress(ns: &str, ifname: &str) -> Vec<String> {
    in_netns(ns, || {
        let (_, progs) = SchedClassifier::query_tcx(ifname, TcAttachType::Ingress)
            .unwrap_or_else(|e| panic!("{ns}: querying TCX ingress of {ifname}: {e}"));
        progs
            .iter()
            .map(|p| p.name_as_str().unwrap_or("?").to_string())
            .collect()
    })
}

/// The id of the XDP program attached to `ifname` in `ns`, if any.
pub fn xdp_prog(ns: &str, ifname: &str) -> Option<u32> {
    let link = vtep_tests::lab::link(ns, ifname);
    link["xdp"]["prog"]["id"].as_u64().map(|id| id as u32)
}

/// Runs `f` with the kernel's per-program run counters on (`BPF_ENABLE_STATS`, undone when
/// done); returns how many packets the XDP program on `ns`'s eth0 and the TC program on its
/// ingress saw meanwhile: which of the two did the work.
pub fn underlay_runs(ns: &str, f: impl FnOnce()) -> (u64, u64) {
    let xdp = xdp_prog(ns, "eth0").unwrap_or_else(|| panic!("{ns}: no XDP program on eth0"));
    let tc = in_netns(ns, || {
        let (_, progs) = SchedClassifier::query_tcx("eth0", TcAttachType::Ingress)
            .unwrap_or_else(|e| panic!("{ns}: querying TCX ingress of eth0: {e}"));
        progs.first().map(|p| p.id()).expect("a TC program on eth0")
    });
    let runs = |id: u32| {
        aya::programs::loaded_programs()
            .filter_map(Result::ok)
            .find(|p| p.id() == id)
            .map(|p| p.run_count())
            .unwrap_or_else(|| panic!("program {id} not loaded"))
    };
    let _stats = aya::sys::enable_stats(aya::sys::Stats::RunTime).expect("BPF_ENABLE_STATS");
    let before = (runs(xdp), runs(tc));
    f();
    (runs(xdp) - before.0, runs(tc) - before.1)
}

pub fn pin_dir(name: &str) -> String {
    format!("/sys/fs/bpf/vtep/{name}")
}

pub fn state_file(name: &str) -> String {
    format!("/run/vtep/{name}.json")
}

pub const S2_A1: &str = "02:00:00:00:0a:01";
pub const S2_A2: &str = "02:00:00:00:0a:02";
pub const S2_B1: &str = "02:00:00:00:0b:01";
pub const S2_B2: &str = "02:00:00:00:0b:02";

/// Two hosts with two workloads each on VNI 200 (examples/s2-host-*.toml with lab names).
pub struct S2 {
    pub lab: Lab,
    pub a: String,
    pub b: String,
    pub a1: String,
    pub a2: String,
    pub b1: String,
    pub b2: String,
    pub va: usize,
    pub name_a: String,
    pub vb: usize,
    pub name_b: String,
}

pub fn s2() -> S2 {
    s2_with("")
}

/// [`s2`] with `underlay_extra` lines in both hosts' `[underlay]`.
pub fn s2_with(underlay_extra: &str) -> S2 {
    s2_with_mtu(underlay_extra, 1500)
}

/// [`s2_with`] on an underlay of MTU `mtu` (the workloads get 50 bytes less).
pub fn s2_with_mtu(underlay_extra: &str, mtu: u32) -> S2 {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    for host in [&a, &b] {
        ip(&["-n", host, "link", "set", "eth0", "mtu", &mtu.to_string()]);
    }
    let [a1, a2, b1, b2] = ["a1", "a2", "b1", "b2"].map(|s| lab.name(s));
    let (name_a, name_b) = (lab.name("va"), lab.name("vb"));
    let cfg_a = header(&name_a, &format!("local = \"{ADDR_A}\"\n{underlay_extra}"))
        + &vni(200, 4789, &[ADDR_B])
        + &workload(&a1, "192.0.2.11/24", S2_A1)
        + &workload(&a2, "192.0.2.12/24", S2_A2)
        + &fdb(S2_B1, ADDR_B)
        + &fdb(S2_B2, ADDR_B);
    let cfg_b = header(&name_b, &format!("local = \"{ADDR_B}\"\n{underlay_extra}"))
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

/// Pins a new, empty map of `map_type` (a `bpf_map_type` value) with these sizes at `path`,
/// standing in for a map an older vtep build defined otherwise.
pub fn pin_new_map(path: &str, map_type: u32, key: u32, value: u32, entries: u32) {
    use aya_obj::generated::{bpf_attr, bpf_cmd};
    // SAFETY: `bpf_attr` holds only integers, for which all-zero bytes are valid; the kernel
    // wants every field a command does not use zero.
    let mut attr: bpf_attr = unsafe { std::mem::zeroed() };
    attr.__bindgen_anon_1.map_type = map_type;
    attr.__bindgen_anon_1.key_size = key;
    attr.__bindgen_anon_1.value_size = value;
    attr.__bindgen_anon_1.max_entries = entries;
    let bpf = |cmd: bpf_cmd, attr: &mut bpf_attr| {
        // SAFETY: `attr` is a valid, initialised `bpf_attr` of the size passed, alive for the
        // call; the kernel reads and writes only within it.
        unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd as libc::c_long,
                attr as *mut bpf_attr,
                std::mem::size_of::<bpf_attr>(),
            )
        }
    };
    let fd = bpf(bpf_cmd::BPF_MAP_CREATE, &mut attr);
    assert!(
        fd >= 0,
        "BPF_MAP_CREATE: {}",
        std::io::Error::last_os_error()
    );
    let path = std::ffi::CString::new(path).unwrap();
    // SAFETY: as above.
    let mut pin: bpf_attr = unsafe { std::mem::zeroed() };
    pin.__bindgen_anon_4.pathname = path.as_ptr() as u64;
    pin.__bindgen_anon_4.bpf_fd = fd as u32;
    let ret = bpf(bpf_cmd::BPF_OBJ_PIN, &mut pin);
    let err = std::io::Error::last_os_error();
    // SAFETY: `fd` is the map's descriptor, ours alone; the pin holds the map from here on.
    unsafe { libc::close(fd as i32) };
    assert!(ret == 0, "BPF_OBJ_PIN {path:?}: {err}");
}
