//! A restart and a reload on an IPv6 underlay lose nothing (as `topology::restart` over IPv4):
//! `vtep up --keep` stopped and started again under a 1,000 pps ping flow adopts the kept
//! datapath (the IPv6 programs, the learned entry behind the IPv6 VTEP, the flood tail call),
//! and `vtep reload` adds an IPv6 flood remote.

use std::{thread::sleep, time::Duration};

use nix::sys::signal::Signal;
use serde_json::json;
use vtep_tests::{
    configs::{vni, workload},
    lab::{Lab, PingFlow, ip, ping},
    output::{fdb_row, text},
};

use super::{A6, B6, underlay6};
use crate::{header, support::tcx_ingress};

const MAC_A: &str = "02:00:00:00:0a:01";
const MAC_B: &str = "02:00:00:00:0b:01";

#[test]
fn ipv6_restart_in_keep_mode_loses_nothing_and_reload_adds_a_remote() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts_ipv6();
    let (wa, wb) = (lab.name("wa"), lab.name("wb"));
    let (name_a, name_b) = (lab.name("va"), lab.name("vb"));
    let cfg_b = header(&name_b, &underlay6(B6, ""))
        + &vni(100, 4789, &[A6])
        + &workload(&wb, "192.0.2.2/24", MAC_B);
    lab.start_vtep(&b, &cfg_b);
    let cfg_a = |remotes: &[&str]| {
        header(&name_a, &underlay6(A6, ""))
            + &vni(100, 4789, remotes)
            + &workload(&wa, "192.0.2.1/24", MAC_A)
    };
    let file = lab.file("a.toml", &cfg_a(&[B6]));
    let mut va = lab.start_vtep_file(&a, &file, &["--keep"]);
    assert!(ping(&wa, "192.0.2.2", 2), "a's workload cannot reach b's");
    let row = fdb_row(&lab.vtep(va).fdb(&name_a), MAC_B, 100).cloned();
    assert_eq!(row.as_ref().map(|r| r["dst"].clone()), Some(json!(B6)));

    let flow = PingFlow::start(&wa, "192.0.2.2", 5000, "0.001").unwrap();
    sleep(Duration::from_millis(1000));
    let status = lab.vtep(va).stop_with(Signal::SIGTERM).expect("runs");
    assert!(status.success(), "{}", lab.vtep(va).log());
    // The IPv6 program stays and serves; a flood (ARP, through the tail call) works meanwhile.
    assert_eq!(tcx_ingress(&a, "eth0"), ["vtep_underlay6"]);
    ip(&["-n", &wa, "neigh", "flush", "all"]);
    sleep(Duration::from_millis(500));
    va = lab.start_vtep_file(&a, &file, &["--keep"]);
    let log = lab.vtep(va).log();
    assert!(log.contains("adopting the datapath"), "no adoption: {log}");
    let result = flow.finish().unwrap();
    assert_eq!(
        result.lost(),
        0,
        "{} of {} echoes lost across the restart",
        result.lost(),
        result.sent
    );
    let rows = lab.vtep(va).fdb(&name_a);
    let row = fdb_row(&rows, MAC_B, 100).unwrap_or_else(|| panic!("{MAC_B} gone: {rows:?}"));
    assert_eq!(
        (&row["state"], &row["dst"]),
        (&json!("learned"), &json!(B6))
    );

    // A reload adds an IPv6 flood remote.
    std::fs::write(&file, cfg_a(&[B6, "2001:db8::3"])).unwrap();
    let out = lab.vtep(va).cli(&["reload", "-n", &name_a]);
    assert!(out.status.success(), "reload: {}", text(&out.stderr));
    let out = lab.vtep(va).cli(&["vni", "show", "-j", "-n", &name_a]);
    let vnis: serde_json::Value = serde_json::from_slice(&out.stdout).expect("vni show JSON");
    assert_eq!(vnis[0]["remotes"], json!([B6, "2001:db8::3"]), "{vnis}");
    ip(&["-n", &wa, "neigh", "flush", "all"]);
    assert!(ping(&wa, "192.0.2.2", 2), "a -> b after the reload");
}
