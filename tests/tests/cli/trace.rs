//! `vtep up --trace-datapath [--trace-vni N]`: a ping across two hosts shows up in the tracing
//! host's log as what its datapath did with each packet (target `vtep::datapath`, at the
//! default level), a drop with its reason; the VNI filter; the setting holds across a reload
//! that loads new programs, and ends with a restart that adopts the kept datapath without it;
//! bad values are refused before anything starts.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use vtep_tests::{
    configs::{header, vni, workload},
    lab::{Lab, ping_with, vtep_run},
    output::text,
};

use crate::{ADDR_A, ADDR_B, MAC_A1, MAC_B1, VNI};

/// A VNI host b serves and host a does not: b's floods in it reach a, which drops them.
const OTHER_VNI: u32 = 999;

/// The lines of vtep log `log` from the datapath, without the timestamp, level and target.
fn datapath_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.split_once(" vtep::datapath: "))
        .map(|(_, line)| line.to_string())
        .collect()
}

/// Waits until `vtep`'s log has a datapath line for which `wanted` holds, running `poke` in
/// between (traffic to log). Panics with the log after 20 s.
#[track_caller]
fn wait_for_line(log: impl Fn() -> String, wanted: impl Fn(&str) -> bool, poke: impl Fn()) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if datapath_lines(&log()).iter().any(|l| wanted(l)) {
            return;
        }
        assert!(Instant::now() < deadline, "no such line in:\n{}", log());
        poke();
    }
}

/// Host a (VNI 100, workload wa) and host b (VNI 100 with wb, and VNI 999 with wo, which a does
/// not serve), a started with the config in a file and `args`; returns the lab, vtep a's id,
/// a's config file and instance name, and the workloads wa and wo.
fn two_hosts(args: &[&str]) -> (Lab, usize, std::path::PathBuf, String, String, String) {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    let (name_a, name_b) = (lab.name("va"), lab.name("vb"));
    let (wa, wb, wo) = (lab.name("wa"), lab.name("wb"), lab.name("wo"));
    let config_a = lab.file(
        "a.toml",
        &(header(&name_a, "", "")
            + &vni(VNI, 4789, &[ADDR_B])
            + &workload(&wa, "192.0.2.1/24", MAC_A1)),
    );
    let va = lab.start_vtep_file(&a, &config_a, args);
    lab.start_vtep(
        &b,
        &(header(&name_b, "", "")
            + &vni(VNI, 4789, &[ADDR_A])
            + &workload(&wb, "192.0.2.2/24", MAC_B1)
            + &vni(OTHER_VNI, 4789, &[ADDR_A])
            + &workload(&wo, "192.0.2.3/24", "02:00:00:00:0b:09")),
    );
    (lab, va, config_a, name_a, wa, wo)
}

/// What host a logs for a ping from wa to wb: wa's frames encapsulated to b, b's answers
/// decapsulated to wa's port (by TC: the lab's underlay has no XDP).
fn is_encap(l: &str) -> bool {
    l.starts_with("port ") && l.ends_with(&format!("vni {VNI} dst {MAC_B1} -> vtep {ADDR_B}"))
}

fn is_decap(l: &str) -> bool {
    l.starts_with(&format!(
        "decap tc from {ADDR_B} vni {VNI} dst {MAC_A1} -> port "
    ))
}

fn is_other_vni_drop(l: &str) -> bool {
    l == format!("drop unknown_vni (2) at underlay tc vni {OTHER_VNI}")
}

#[test]
fn trace_datapath_logs_a_ping_across_and_a_drop_with_its_reason() {
    let (mut lab, va, _, _, wa, wo) = two_hosts(&["--trace-datapath"]);
    assert!(ping_with(&wa, "192.0.2.2", 3, "0.2", 2), "ping across");
    let lines = datapath_lines(&lab.vtep(va).log());
    assert!(
        lines.iter().any(|l| is_encap(l)),
        "no encap line: {lines:#?}"
    );
    assert!(
        lines.iter().any(|l| is_decap(l)),
        "no decap line: {lines:#?}"
    );
    // The ports are named: `port 5 (wa's host-side veth) vni 100 ...`.
    let encap = lines.iter().find(|l| is_encap(l)).unwrap();
    assert!(encap.contains(") vni"), "{encap}");
    // wa's first frame, its ARP request, went to the flood path, whose traced program logged
    // the copy to b.
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(&format!("vni {VNI} dst ff:ff:ff:ff:ff:ff -> flood"))),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| *l == format!("flood vni {VNI} -> vtep {ADDR_B}")),
        "no flood copy line: {lines:#?}"
    );
    // b's workload in VNI 999 asks for its neighbours: a drops that.
    let log = || lab.vtep_ref(va).log();
    wait_for_line(log, is_other_vni_drop, || {
        ping_with(&wo, "192.0.2.1", 1, "0.2", 1);
    });
    // At the default level: the test runs vtep without VTEP_LOG.
    assert!(lab.vtep(va).log().contains(" INFO vtep::datapath: "));
}

#[test]
fn trace_vni_logs_that_vni_only() {
    let (mut lab, va, _, _, wa, wo) = two_hosts(&["--trace-datapath", "--trace-vni", "100"]);
    // VNI 999's floods reach a while wa pings: by the time the ping's lines are in, drops of
    // VNI 999 would have been logged next to them.
    for _ in 0..3 {
        ping_with(&wo, "192.0.2.1", 1, "0.2", 1);
    }
    assert!(ping_with(&wa, "192.0.2.2", 3, "0.2", 2), "ping across");
    let log = lab.vtep(va).log();
    assert!(log.contains("tracing the datapath (VNI 100)"), "{log}");
    let lines = datapath_lines(&log);
    assert!(lines.iter().any(|l| is_encap(l)), "{lines:#?}");
    assert!(lines.iter().any(|l| is_decap(l)), "{lines:#?}");
    assert!(
        lines.iter().all(|l| l.contains(&format!("vni {VNI}"))),
        "another VNI logged: {lines:#?}"
    );
}

/// The trace setting is the process's: a reload that loads new programs (a second dstport
/// changes the load-time configuration) loads traced ones again and reads their log; a
/// restart without the flag that adopts the kept datapath replaces them with untraced ones.
#[test]
fn tracing_survives_a_reload_with_new_programs_and_ends_with_a_restart_without_it() {
    let (mut lab, va, config_a, name_a, wa, _) = two_hosts(&["--trace-datapath", "--keep"]);
    assert!(ping_with(&wa, "192.0.2.2", 2, "0.2", 2), "ping across");
    let before = datapath_lines(&lab.vtep(va).log()).len();
    assert!(before > 0, "{}", lab.vtep(va).log());

    // A second VNI on 8472: the dstports are in the programs' load-time configuration.
    let text_a = std::fs::read_to_string(&config_a).unwrap()
        + &vni(300, 8472, &[ADDR_B])
        + &workload(&lab.name("wx"), "198.51.100.1/24", "02:00:00:00:0a:09");
    std::fs::write(&config_a, text_a).unwrap();
    let out = lab.vtep(va).cli(&["reload", "-n", &name_a]);
    assert!(out.status.success(), "reload: {}", text(&out.stderr));
    assert!(
        ping_with(&wa, "192.0.2.2", 2, "0.2", 2),
        "ping after the reload"
    );
    let after: Vec<String> = datapath_lines(&lab.vtep(va).log())
        .into_iter()
        .skip(before)
        .collect();
    assert!(after.iter().any(|l| is_encap(l)), "{after:#?}");
    assert!(after.iter().any(|l| is_decap(l)), "{after:#?}");

    // SIGINT with --keep leaves the (traced) datapath forwarding, and says it still logs.
    let a = lab.name("a");
    lab.vtep(va).stop();
    let kept = lab.vtep(va).log();
    assert!(kept.contains("loaded with --trace-datapath"), "{kept}");
    let vb = lab.start_vtep_file(&a, &config_a, &[]);
    assert!(lab.vtep(vb).log().contains("adopting the datapath"));
    assert!(
        ping_with(&wa, "192.0.2.2", 3, "0.2", 2),
        "ping after the restart"
    );
    let log = lab.vtep(vb).log();
    assert_eq!(datapath_lines(&log), Vec::<String>::new(), "{log}");
    lab.vtep(vb).stop();
}

/// `vtep up` refuses a VNI filter that is no VNI, or one without tracing, naming the option,
/// before it reads the config.
#[test]
fn bad_trace_options_are_refused_by_name() {
    let config = Path::new("/nonexistent/vtep.toml").display().to_string();
    for (args, says) in [
        (
            &["--trace-datapath", "--trace-vni", "0"][..],
            "0 is outside 1..=16777215",
        ),
        (
            &["--trace-datapath", "--trace-vni", "16777216"],
            "16777216 is outside 1..=16777215",
        ),
        (
            &["--trace-datapath", "--trace-vni", "ten"],
            "`ten` is not a VNI",
        ),
        (&["--trace-vni", "100"], "--trace-datapath"),
    ] {
        let mut all = vec!["up", "-c", &config];
        all.extend(args);
        let out = vtep_run(&all, Duration::from_secs(10)).expect("vtep up");
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(stderr.contains("--trace-vni"), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
