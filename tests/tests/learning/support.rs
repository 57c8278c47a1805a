//! What the learning tests share: configs, quiet hosts, FDB rows, and counting what the switch
//! sends to each host.

use serde_json::Value;
use vtep_tests::{
    configs::{header, vni, workload},
    lab::{Lab, if_counter, list_netns, no_ipv6, ping_with, sysctl},
    output::fdb_row,
};

use crate::{ADDR, IP, MAC, VNI};

/// Host `i`'s config: one workload, every other host in the flood list, `extra` VNI lines.
/// The workload's namespace is made here, without IPv6 (see `no_ipv6`); vtep adopts it.
pub fn config(lab: &Lab, i: usize, hosts: usize, extra: &str, tail: &str) -> String {
    let remotes: Vec<&str> = (0..hosts).filter(|&j| j != i).map(|j| ADDR[j]).collect();
    header(&lab.name(&format!("v{i}")), "", "")
        + &vni(VNI, 4789, &remotes)
        + extra
        + "\n"
        + &quiet_workload(lab, i)
        + tail
}

/// Workload `i`'s table, its namespace made here without IPv6 (vtep adopts it).
pub fn quiet_workload(lab: &Lab, i: usize) -> String {
    no_ipv6(&lab.host(&format!("w{i}")));
    workload(
        &lab.name(&format!("w{i}")),
        &format!("{}/24", IP[i]),
        MAC[i],
    )
}

/// IPv6 off on the hosts (their underlay interfaces exist already: each one too) and the
/// switch, if any.
pub fn quiet(lab: &Lab, hosts: &[String]) {
    for h in hosts {
        no_ipv6(h);
        sysctl(h, &["net.ipv6.conf.eth0.disable_ipv6=1"]);
    }
    let sw = lab.name("sw");
    if list_netns().contains(&sw) {
        no_ipv6(&sw);
    }
}

/// The FDB row of `mac` in `rows`, if any.
pub fn row<'a>(rows: &'a [Value], mac: &str) -> Option<&'a Value> {
    fdb_row(rows, mac, VNI)
}

/// Asserts that `rows` has `mac` learned behind remote VTEP `dst`.
pub fn assert_learned(rows: &[Value], mac: &str, dst: &str, host: &str) {
    let r = row(rows, mac).unwrap_or_else(|| panic!("{host} did not learn {mac}: {rows:?}"));
    assert_eq!(r["state"], "learned", "{host}: {r}");
    assert_eq!(r["dst"], dst, "{host} has {mac} behind the wrong VTEP: {r}");
}

/// Packets the switch sent to hosts b and c (their ports' transmit counters) while `f` ran.
pub fn sent_to_b_and_c(lab: &Lab, f: impl FnOnce()) -> (u64, u64) {
    let to_host = |i: usize| if_counter(&lab.name("sw"), &format!("p{i}"), "tx_packets");
    let (b0, c0) = (to_host(1), to_host(2));
    f();
    (to_host(1) - b0, to_host(2) - c0)
}

pub fn ping_quick(ns: &str, addr: &str, count: u32) -> bool {
    ping_with(ns, addr, count, "0.05", 2)
}
