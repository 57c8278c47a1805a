//! What the CLI tests share: running commands against an instance, reading its FDB and
//! counters, and a one-host instance to refuse commands on.

use std::process::Output;

use serde_json::Value;
use vtep_tests::{
    configs::{fdb, vni, workload},
    lab::{self, Lab, ping_with},
    output::{self, text},
};

use crate::{ADDR_B, MAC_A1, VNI, header};

/// `vtep ARGS` against the instance of vtep `id` of `lab`, by name.
pub fn vtep(lab: &mut Lab, id: usize, name: &str, args: &[&str]) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-n", name]);
    lab.vtep(id).cli(&all)
}

/// Runs `vtep ARGS` and asserts it succeeded silently.
#[track_caller]
pub fn vtep_ok(lab: &mut Lab, id: usize, name: &str, args: &[&str]) {
    let out = vtep(lab, id, name, args);
    assert!(
        out.status.success(),
        "vtep {} failed: {}",
        args.join(" "),
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "", "vtep {} printed", args.join(" "));
}

/// `vtep fdb show -j` exactly as printed.
pub fn fdb_show(lab: &mut Lab, id: usize, name: &str) -> Vec<u8> {
    let out = vtep(lab, id, name, &["fdb", "show", "-j"]);
    assert!(out.status.success(), "fdb show: {}", text(&out.stderr));
    out.stdout
}

/// The row of `mac` in VNI `vni` of `vtep fdb show -j` output `show`, if any.
pub fn fdb_row(show: &[u8], mac: &str, vni: u32) -> Option<Value> {
    let rows: Vec<Value> = serde_json::from_slice(show).expect("fdb show JSON");
    output::fdb_row(&rows, mac, vni).cloned()
}

/// One counter of VNI `vni` from `vtep stats -j`.
pub fn vni_stat(lab: &mut Lab, id: usize, name: &str, vni: u32, key: &str) -> u64 {
    output::vni_stat(&lab.vtep(id).stats(name), vni, key)
}

/// Drop counter `reason` from `vtep stats -j`.
pub fn drops(lab: &mut Lab, id: usize, name: &str, reason: &str) -> u64 {
    let stats = lab.vtep(id).stats(name);
    stats["drops"][reason]
        .as_u64()
        .unwrap_or_else(|| panic!("drop reason {reason} missing from stats: {stats}"))
}

/// A permanent neighbour entry in workload `ns`, so its unicast frames need no ARP: what the
/// datapath does with unicast is then all that decides whether a ping gets through.
pub fn static_neighbour(ns: &str, addr: &str, mac: &str) {
    lab::static_neighbour(ns, "eth0", addr, mac);
}

/// `vtep fdb VERB MAC dst DST vni VNI`.
pub fn fdb_cmd<'a>(verb: &'a str, mac: &'a str, dst: &'a str, vni: &'a str) -> Vec<&'a str> {
    vec!["fdb", verb, mac, "dst", dst, "vni", vni]
}

/// True when `count` pings from `ns` to `addr` are all answered; quick to fail.
pub fn ping_fast(ns: &str, addr: &str, count: u32) -> bool {
    ping_with(ns, addr, count, "0.2", 1)
}

/// A host with one VNI: a workload (a local entry), a configured remote entry and a flood
/// remote. The instance's local address is not in the config: vtep takes it from eth0.
pub struct OneHost {
    pub lab: Lab,
    pub id: usize,
    pub name: String,
    pub a1: String,
}

pub const MAC_CFG: &str = "02:00:00:00:0c:01";

pub fn one_host(top_extra: &str) -> OneHost {
    let mut lab = Lab::new();
    let (a, _b) = lab.two_hosts();
    let a1 = lab.name("a1");
    let name = lab.name("va");
    let cfg = header(&name, top_extra)
        + &vni(VNI, 4789, &[ADDR_B])
        + &workload(&a1, "192.0.2.11/24", MAC_A1)
        + &fdb(MAC_CFG, ADDR_B);
    let id = lab.start_vtep(&a, &cfg);
    OneHost { lab, id, name, a1 }
}

/// Runs `vtep ARGS` that must be refused: non-zero exit, `problem` in its error, nothing on
/// stdout, and `vtep fdb show -j` byte for byte the same before and after.
#[track_caller]
pub fn assert_refused(h: &mut OneHost, args: &[&str], problem: &str) {
    let before = fdb_show(&mut h.lab, h.id, &h.name);
    let out = vtep(&mut h.lab, h.id, &h.name, args);
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success(),
        "vtep {} succeeded; stderr: {stderr}",
        args.join(" ")
    );
    assert!(
        stderr.contains(problem),
        "vtep {}: error does not say `{problem}`: {stderr}",
        args.join(" ")
    );
    assert_eq!(text(&out.stdout), "", "vtep {} printed", args.join(" "));
    let after = fdb_show(&mut h.lab, h.id, &h.name);
    assert_eq!(
        text(&after),
        text(&before),
        "vtep {} changed the FDB",
        args.join(" ")
    );
}
