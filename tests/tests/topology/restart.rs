//! Restarts that keep traffic flowing (issue 9, item 3), each under a 1,000 pps ping flow between
//! two hosts' workloads that must lose nothing: `vtep up --keep` stopped and started again, the
//! same killed with SIGKILL (no process runs for a while) and started again, SIGUSR2 without
//! `--keep`, and `vtep reload` adding a VNI and a remote. What the restarted instance adopts
//! must be the instance as it was: learned entries, counters, namespaces, the very interfaces
//! with one program each, floods (the tail-call table) working; and `vtep down` must still
//! remove all of it.

use std::{path::PathBuf, thread::sleep, time::Duration};

use nix::sys::signal::Signal;
use serde_json::Value;
use vtep_tests::{
    configs::{host_port, vni, workload},
    lab::{Lab, PingFlow, ip, list_netns, ping, vtep_run},
    output::text,
};

use crate::{
    ADDR_A, ADDR_B, header,
    support::{pin_dir, pin_new_map, state_file, tcx_ingress, underlay_runs, xdp_prog},
};

/// Echoes in each flow: 5 s at 1 ms.
const FLOW: u32 = 5000;
const INTERVAL: &str = "0.001";
const MAC_A: &str = "02:00:00:00:0a:01";
const MAC_B: &str = "02:00:00:00:0b:01";
const MAC_B2: &str = "02:00:00:00:0b:02";
const IP_A: &str = "192.0.2.1";
const IP_B: &str = "192.0.2.2";

/// Two hosts with one workload each on VNI 100, learning each other's station, and on a a host
/// interface in VNI 100 too; a's config in a file of its own (a reload reads it again).
struct Pair {
    lab: Lab,
    a: String,
    name_a: String,
    cfg_a: PathBuf,
    va: usize,
    /// a's workload namespace, made by vtep.
    wa: String,
    wb: String,
    /// a's host interface of VNI 100, made by vtep (192.0.2.100).
    host_if: String,
    /// Lines of a's `[underlay]` beyond `local`.
    a_underlay: String,
}

/// a's config: VNI 100 with the host interface and workload `wa`, then `extra`.
fn config_a(p: &Pair, extra: &str) -> String {
    header(
        &p.name_a,
        &format!("local = \"{ADDR_A}\"\n{}", p.a_underlay),
    ) + &vni(100, 4789, &[ADDR_B])
        + &host_port(&p.host_if, "192.0.2.100/24")
        + &workload(&p.wa, &format!("{IP_A}/24"), MAC_A)
        + extra
}

fn pair(up_args: &[&str]) -> Pair {
    pair_with(up_args, "")
}

/// [`pair`], b's config with `b_extra` (its names of namespaces without the lab's prefix).
fn pair_with(up_args: &[&str], b_extra: &str) -> Pair {
    pair_full(up_args, b_extra, "")
}

/// [`pair_with`], a's `[underlay]` with `a_underlay` too.
fn pair_full(up_args: &[&str], b_extra: &str, a_underlay: &str) -> Pair {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    let (name_a, name_b) = (lab.name("va"), lab.name("vb"));
    let (wa, wb) = (lab.name("wa"), lab.name("wb"));
    let b_extra = b_extra.replace("netns = \"", &format!("netns = \"{}", lab.name("")));
    let cfg_b = header(&name_b, &format!("local = \"{ADDR_B}\""))
        + &vni(100, 4789, &[ADDR_A])
        + &workload(&wb, &format!("{IP_B}/24"), MAC_B)
        + &b_extra;
    lab.start_vtep(&b, &cfg_b);
    let mut p = Pair {
        cfg_a: PathBuf::new(),
        host_if: lab.name("h"),
        a_underlay: a_underlay.to_string(),
        lab,
        a,
        name_a,
        va: 0,
        wa,
        wb,
    };
    p.cfg_a = p.lab.file("a.toml", &config_a(&p, ""));
    p.va = p.lab.start_vtep_file(&p.a, &p.cfg_a.clone(), up_args);
    assert!(ping(&p.wa, IP_B, 2), "a's workload cannot reach b's");
    p
}

/// a's FDB row for `mac` in VNI 100.
fn fdb_row(p: &mut Pair, mac: &str) -> Option<Value> {
    let name = p.name_a.clone();
    p.lab
        .vtep(p.va)
        .fdb(&name)
        .into_iter()
        .find(|r| r["mac"] == mac && r["vni"] == 100)
}

/// a's VNI 100 counter `field`.
fn counter(p: &mut Pair, field: &str) -> u64 {
    let name = p.name_a.clone();
    let stats = p.lab.vtep(p.va).stats(&name);
    stats["vnis"]
        .as_array()
        .and_then(|v| v.iter().find(|c| c["vni"] == 100))
        .and_then(|c| c[field].as_u64())
        .unwrap_or_else(|| panic!("no {field} for VNI 100 in {stats}"))
}

/// a's drops counted as `reason`.
fn drops(p: &mut Pair, reason: &str) -> u64 {
    let name = p.name_a.clone();
    p.lab.vtep(p.va).stats(&name)["drops"][reason]
        .as_u64()
        .unwrap_or(0)
}

/// What a restart or reload must leave as it was on host a: the host interface, its port end
/// and the workload's veth, each by index (kept, not made again) with the programs on it.
fn a_interfaces(p: &Pair) -> Vec<(String, String, Vec<String>)> {
    [
        p.host_if.clone(),
        format!("{}p", p.host_if),
        format!("{}-h", p.wa),
    ]
    .into_iter()
    .map(|name| {
        let out = ip(&["-n", &p.a, "-o", "link", "show", &name]);
        let index = text(&out.stdout)
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string();
        let progs = tcx_ingress(&p.a, &name);
        (name, index, progs)
    })
    .collect()
}

/// Makes the next echoes of a's workload and of a's host interface need ARP, which only a
/// flood (the port program's tail call) carries.
fn forget_neighbours(p: &Pair) {
    ip(&["-n", &p.wa, "neigh", "flush", "all"]);
    ip(&["-n", &p.a, "neigh", "flush", "dev", &p.host_if]);
}

/// Asserts that the flow lost nothing.
#[track_caller]
fn assert_nothing_lost(flow: PingFlow, what: &str) {
    let result = flow.finish().unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        result.lost(),
        0,
        "{what}: {} of {} echoes lost",
        result.lost(),
        result.sent
    );
}

/// Asserts the new `vtep up` of `p.va` adopted the kept datapath.
#[track_caller]
fn assert_adopted(p: &mut Pair) {
    let log = p.lab.vtep(p.va).log();
    assert!(
        log.contains("adopting the datapath"),
        "the new vtep did not adopt: {log}"
    );
}

/// `vtep reload` of a; panics with its output when it fails.
#[track_caller]
fn reload(p: &mut Pair) -> String {
    let out = p.lab.vtep(p.va).cli(&["reload", "-n", &p.name_a]);
    assert!(
        out.status.success(),
        "reload: {}{}",
        text(&out.stderr),
        p.lab.vtep(p.va).log()
    );
    text(&out.stdout)
}

#[test]
fn restart_in_keep_mode_loses_nothing_and_keeps_learned_entries_and_counters() {
    let mut p = pair(&["--keep"]);
    let learned = fdb_row(&mut p, MAC_B).expect("a learned b's station");
    assert_eq!(learned["state"], "learned", "{learned}");
    let encap_before = counter(&mut p, "encap_packets");
    let interfaces = a_interfaces(&p);
    assert!(
        interfaces.iter().all(|(_, _, progs)| progs.len() <= 1),
        "{interfaces:?}"
    );

    let flow = PingFlow::start(&p.wa, IP_B, FLOW, INTERVAL).unwrap();
    sleep(Duration::from_millis(1000));
    let status = p.lab.vtep(p.va).stop_with(Signal::SIGTERM).expect("runs");
    assert!(status.success(), "{}", p.lab.vtep(p.va).log());
    // No process serves the instance now; its datapath does, and what it made stays.
    assert_eq!(tcx_ingress(&p.a, "eth0"), ["vtep_underlay"]);
    assert!(list_netns().contains(&p.wa), "workload namespace deleted");
    sleep(Duration::from_millis(500));
    p.va = p.lab.start_vtep_file(&p.a, &p.cfg_a.clone(), &["--keep"]);
    assert_adopted(&mut p);
    assert_nothing_lost(flow, "restart with --keep");

    let row = fdb_row(&mut p, MAC_B).expect("the learned entry is kept");
    assert_eq!(row["state"], "learned", "{row}");
    let encap_after = counter(&mut p, "encap_packets");
    assert!(
        encap_after >= encap_before + u64::from(FLOW),
        "counters were reset: {encap_before} before, {encap_after} after {FLOW} echoes"
    );
    // One program on each interface, the new one in place of the old; the very interfaces of
    // before. Bug (review of this change): the adoption deleted the host interface's veth.
    assert_eq!(tcx_ingress(&p.a, "eth0"), ["vtep_underlay"]);
    assert_eq!(a_interfaces(&p), interfaces);
    assert!(ping(&p.a, IP_B, 2), "a's host interface lost b's workload");

    // Bug (review of this change): the adopting process counted reloads from 0 while the
    // outcome file of the one before said more, so `vtep reload` waited out its 120 s.
    reload(&mut p);
    let status = p.lab.vtep(p.va).stop().expect("runs");
    assert!(status.success());
    p.va = p.lab.start_vtep_file(&p.a, &p.cfg_a.clone(), &["--keep"]);
    let asked = std::time::Instant::now();
    reload(&mut p);
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "{:?}",
        asked.elapsed()
    );
}

/// An upgrade whose build counts more than the kept datapath's (a counter added to the
/// per-VNI stats, a new map of per-VNI drops, more resolver slots) adopts the datapath
/// without a lost echo: those counter maps are made anew, everything else is kept. Bug
/// (issue 13): any change to a map's size refused the kept datapath, so each such upgrade
/// needed a `vtep down` that interrupted traffic.
#[test]
fn an_upgrade_whose_counters_changed_shape_adopts_and_loses_nothing() {
    let mut p = pair(&["--keep"]);
    let flow = PingFlow::start(&p.wa, IP_B, FLOW, INTERVAL).unwrap();
    sleep(Duration::from_millis(1000));
    let status = p.lab.vtep(p.va).stop_with(Signal::SIGTERM).expect("runs");
    assert!(status.success(), "{}", p.lab.vtep(p.va).log());
    // What the build before this one pinned: per-VNI stats of 80 bytes, a resolver of four
    // slots, no per-VNI drops.
    let dir = pin_dir(&p.name_a);
    for (map, map_type, value, entries) in [("VNI_STATS", 6, 80, 4096), ("RESOLVER", 2, 8, 4)] {
        let path = format!("{dir}/{map}");
        std::fs::remove_file(&path).unwrap();
        pin_new_map(&path, map_type, 4, value, entries);
    }
    std::fs::remove_file(format!("{dir}/VNI_DROPS")).unwrap();
    p.va = p.lab.start_vtep_file(&p.a, &p.cfg_a.clone(), &["--keep"]);
    assert_adopted(&mut p);
    assert_nothing_lost(flow, "an upgrade whose counters changed shape");
    let log = p.lab.vtep(p.va).log();
    assert!(
        log.contains("VNI_STATS has key/value/entries 4/80/4096") && log.contains("made anew"),
        "{log}"
    );
    let row = fdb_row(&mut p, MAC_B).expect("the learned entry is kept");
    assert_eq!(row["state"], "learned", "{row}");
    // Counting again, from zero, in maps of this build's shape.
    let encap = counter(&mut p, "encap_packets");
    assert!(
        encap > 0 && encap <= u64::from(FLOW),
        "encap_packets {encap} after a renewal"
    );
    assert!(std::path::Path::new(&format!("{dir}/VNI_DROPS")).exists());
    assert!(ping(&p.wa, IP_B, 2));
}

#[test]
fn killed_in_keep_mode_it_forwards_on_and_the_next_up_adopts() {
    let mut p = pair(&["--keep"]);
    let flow = PingFlow::start(&p.wa, IP_B, FLOW, INTERVAL).unwrap();
    sleep(Duration::from_millis(800));
    p.lab.vtep(p.va).kill().expect("runs");
    // Well over a thousand echoes while no process runs, and ARP floods among them: the
    // tail-call table must outlive the process too.
    sleep(Duration::from_millis(500));
    forget_neighbours(&p);
    sleep(Duration::from_millis(1000));
    p.va = p.lab.start_vtep_file(&p.a, &p.cfg_a.clone(), &["--keep"]);
    assert_adopted(&mut p);
    forget_neighbours(&p);
    assert_nothing_lost(flow, "kill -9 in keep mode, then up");
    assert_eq!(drops(&mut p, "tail_call_failed"), 0);
    assert!(ping(&p.a, IP_B, 2), "a's host interface lost b's workload");

    // `vtep down` after a stop that kept the datapath removes all of it.
    p.lab.vtep(p.va).stop().expect("runs");
    let out = vtep_run(
        &["--netns", &p.a, "down", "-n", &p.name_a],
        Duration::from_secs(20),
    )
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(tcx_ingress(&p.a, "eth0").is_empty(), "program left on eth0");
    assert!(!list_netns().contains(&p.wa), "workload namespace left");
    let host_if_left = std::process::Command::new("ip")
        .args(["-n", &p.a, "link", "show", &p.host_if])
        .output()
        .unwrap()
        .status
        .success();
    assert!(!host_if_left, "host interface left");
    assert!(!std::path::Path::new(&pin_dir(&p.name_a)).exists());
    assert!(!std::path::Path::new(&state_file(&p.name_a)).exists());
    assert!(!ping(&p.wb, IP_A, 1), "a's workload still answers");
}

#[test]
fn sigusr2_keeps_the_datapath_of_an_instance_started_without_keep() {
    let mut p = pair(&[]);
    let flow = PingFlow::start(&p.wa, IP_B, FLOW, INTERVAL).unwrap();
    sleep(Duration::from_millis(1000));
    let status = p.lab.vtep(p.va).stop_with(Signal::SIGUSR2).expect("runs");
    assert!(status.success(), "{}", p.lab.vtep(p.va).log());
    forget_neighbours(&p);
    p.va = p.lab.start_vtep_file(&p.a, &p.cfg_a.clone(), &[]);
    assert_adopted(&mut p);
    assert_nothing_lost(flow, "SIGUSR2, then up");
    // A reload of a plain (unpinned) instance: floods still work after it.
    reload(&mut p);
    forget_neighbours(&p);
    assert!(ping(&p.wa, IP_B, 2), "no flood after a reload");
    // Started without --keep, the adopted instance is a plain one again: SIGINT removes it.
    let status = p.lab.vtep(p.va).stop().expect("runs");
    assert!(status.success());
    assert!(tcx_ingress(&p.a, "eth0").is_empty(), "program left on eth0");
    assert!(!list_netns().contains(&p.wa));
}

#[test]
fn reload_adding_a_vni_and_a_remote_loses_nothing_on_the_existing_flow() {
    // b serves VNI 200 too, with a workload of its own, from the start.
    let mut p = pair_with(
        &["--keep"],
        &(vni(200, 4789, &[ADDR_A]) + &workload("wb2", "192.0.2.22/24", MAC_B2)),
    );
    let wa2 = p.lab.name("wa2");
    let interfaces = a_interfaces(&p);
    let flow = PingFlow::start(&p.wa, IP_B, FLOW, INTERVAL).unwrap();
    sleep(Duration::from_millis(1000));

    // A broken config is refused naming the field, and changes nothing.
    std::fs::write(&p.cfg_a, config_a(&p, "[[vni]]\nid = 100\n")).unwrap();
    let out = p.lab.vtep(p.va).cli(&["reload", "-n", &p.name_a]);
    assert!(!out.status.success(), "a duplicate VNI was reloaded");
    assert!(
        text(&out.stderr).contains("vni[1].id"),
        "{}",
        text(&out.stderr)
    );

    // VNI 200 with a workload, and a third remote for VNI 100, whose flow must not notice.
    let cfg = config_a(&p, "").replace(
        &format!("remotes = [\"{ADDR_B}\"]"),
        &format!("remotes = [\"{ADDR_B}\", \"198.18.0.9\"]"),
    ) + &vni(200, 4789, &[ADDR_B])
        + &workload(&wa2, "192.0.2.21/24", "02:00:00:00:0a:02");
    std::fs::write(&p.cfg_a, cfg).unwrap();
    assert!(reload(&mut p).contains("reloaded"));
    assert!(ping(&wa2, "192.0.2.22", 2), "the added VNI does not carry");
    assert_nothing_lost(flow, "reload adding a VNI and a remote");
    // Bug (review of this change): a reload pruned the host interface's veth (its port end was
    // recorded, but not counted as wanted).
    assert_eq!(a_interfaces(&p), interfaces, "kept ports were made again");
    assert!(ping(&p.a, IP_B, 2), "a's host interface lost b's workload");
    let vni_show: Value = serde_json::from_slice(
        &p.lab
            .vtep(p.va)
            .cli(&["vni", "show", "-j", "-n", &p.name_a])
            .stdout,
    )
    .unwrap();
    let remotes = vni_show
        .as_array()
        .and_then(|v| v.iter().find(|v| v["vni"] == 100))
        .map(|v| v["remotes"].clone());
    assert_eq!(
        remotes,
        Some(serde_json::json!([ADDR_B, "198.18.0.9"])),
        "{vni_show}"
    );

    // A reload that removes VNI 200 again removes its workload's namespace, which vtep made.
    std::fs::write(&p.cfg_a, config_a(&p, "")).unwrap();
    reload(&mut p);
    assert!(
        !list_netns().contains(&wa2),
        "the removed workload's namespace stays"
    );
    assert!(ping(&p.wa, IP_B, 2));

    // The reloaded datapath outlives its process as the first did (--keep): its own tail-call
    // table is pinned, so floods go on after a kill.
    p.lab.vtep(p.va).kill().expect("runs");
    forget_neighbours(&p);
    assert!(
        ping(&p.wa, IP_B, 2),
        "no flood after a kill of the reloaded instance"
    );
    assert!(ping(&p.a, IP_B, 2), "a's host interface lost b's workload");
}

/// A kept datapath is only adopted by a vtep whose maps it fits: another FDB size, or a state
/// file written by a build with another map layout, is refused before anything changes, saying
/// what to do, and the kept datapath forwards on.
#[test]
fn a_kept_datapath_that_does_not_fit_is_refused_and_forwards_on() {
    let mut p = pair(&["--keep"]);
    let status = p.lab.vtep(p.va).stop().expect("runs");
    assert!(status.success(), "{}", p.lab.vtep(p.va).log());
    let up = |lab: &Lab, a: &str, text: &str| {
        let path = lab.file("other.toml", text);
        vtep_run(
            &["--netns", a, "up", "-c", path.to_str().unwrap()],
            Duration::from_secs(30),
        )
        .unwrap_or_else(|e| panic!("up of a datapath that does not fit accepted: {e}"))
    };
    let state = state_file(&p.name_a);
    let info = state.replace(".json", ".info.json");
    let files = || {
        (
            std::fs::read_to_string(&state).unwrap(),
            std::fs::read_to_string(&info).unwrap(),
        )
    };
    let before = files();

    let bigger = config_a(&p, "").replacen('\n', "\nfdb_size = 1024\n", 1);
    let out = up(&p.lab, &p.a, &bigger);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("fdb_size"), "{stderr}");
    assert!(stderr.contains("forwards on"), "{stderr}");
    assert!(ping(&p.wb, IP_A, 2), "the kept datapath stopped forwarding");
    // Bug (review of this change): the refused start had taken the state file over and
    // rewritten the info file with the new config's VNIs and addresses.
    assert_eq!(
        files(),
        before,
        "the refused start changed the instance's files"
    );

    let kept = std::fs::read_to_string(&state).unwrap();
    let mut other: Value = serde_json::from_str(&kept).unwrap();
    other["layout"] = serde_json::json!(999);
    std::fs::write(&state, other.to_string()).unwrap();
    let out = up(&p.lab, &p.a, &config_a(&p, ""));
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("incompatible"), "{stderr}");
    assert!(stderr.contains("vtep down"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&state).unwrap(), other.to_string());
    assert!(ping(&p.wb, IP_A, 2), "the kept datapath stopped forwarding");

    // This build's own state again: adopted.
    std::fs::write(&state, kept).unwrap();
    p.va = p.lab.start_vtep_file(&p.a, &p.cfg_a.clone(), &[]);
    assert_adopted(&mut p);
    assert!(ping(&p.wa, IP_B, 2));
}

/// The XDP program of `underlay.xdp` outlives a kill in keep mode like the TC programs, and the
/// adopting start replaces it in its link (another program, the same attachment), as a reload
/// that changes a load-time setting does; a reload that changes none keeps it. It keeps
/// decapsulating throughout.
#[test]
fn the_xdp_program_stays_attached_across_a_kill_and_is_replaced_in_place() {
    let mut p = pair_full(&["--keep"], "", "xdp = \"native\"");
    let first = xdp_prog(&p.a, "eth0").expect("an XDP program on a's eth0");
    let flow = PingFlow::start(&p.wa, IP_B, FLOW, INTERVAL).unwrap();
    sleep(Duration::from_millis(800));
    p.lab.vtep(p.va).kill().expect("runs");
    sleep(Duration::from_millis(1000));
    assert_eq!(
        xdp_prog(&p.a, "eth0"),
        Some(first),
        "XDP went with the process"
    );
    p.va = p.lab.start_vtep_file(&p.a, &p.cfg_a.clone(), &["--keep"]);
    assert_adopted(&mut p);
    assert_nothing_lost(flow, "kill -9 and up with XDP");
    let second = xdp_prog(&p.a, "eth0").expect("an XDP program on a's eth0");
    assert_ne!(second, first, "the adopting start left the old XDP program");
    let (xdp, _) = underlay_runs(&p.a, || {
        assert!(ping(&p.wa, IP_B, 3));
    });
    assert!(
        xdp >= 3,
        "the new XDP program ran {xdp} times for 3 echo replies"
    );
    // A reload that loads nothing new goes on with the running programs (no verifier run);
    // one that changes what they are loaded with replaces them in their links.
    reload(&mut p);
    assert_eq!(
        xdp_prog(&p.a, "eth0"),
        Some(second),
        "a reload without a load-time change replaced the XDP program"
    );
    p.a_underlay = "xdp = \"native\"\nsrcport = [40000, 50000]".into();
    std::fs::write(&p.cfg_a, config_a(&p, "")).unwrap();
    reload(&mut p);
    let third = xdp_prog(&p.a, "eth0").expect("an XDP program after the reload");
    assert_ne!(third, second, "the reload left the old XDP program");
    let (xdp, _) = underlay_runs(&p.a, || {
        assert!(ping(&p.wa, IP_B, 3));
    });
    assert!(xdp >= 3, "the reloaded XDP program ran {xdp} times");
}
