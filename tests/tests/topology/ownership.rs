//! Issue 9 item 2: an instance belongs to its `vtep up` process, and its undo log removes only
//! what is still what it made. `vtep down` of a live instance is refused; a second instance
//! cannot take a live one's name, underlay VNIs and ports, namespaces or ports; a stale undo
//! log, a namespace made again by hand and an interface of the same name in another namespace
//! are all left alone.

use std::{path::Path, process::Command, time::Duration};

use vtep_tests::{
    configs::{adopted_port, host_port, vni, workload},
    lab::{Lab, ip, list_netns, run_limited, vtep_bin},
    output::text,
};

use crate::{
    ADDR_B,
    config::host_snapshot,
    header,
    support::{assert_ping, pin_dir, s2, state_file, tcx_ingress, vtep_run},
};

const LIMIT: Duration = Duration::from_secs(20);

/// Names of the interfaces in namespace `ns`.
fn links(ns: &str) -> Vec<String> {
    let out = text(&ip(&["-n", ns, "-o", "link"]).stdout);
    out.lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// Bug (issue 9): `vtep down -n NAME` while `vtep up` of NAME ran removed everything and
/// exited 0, leaving the running process's program attached. It is refused now, naming the
/// process, and the instance keeps forwarding.
#[test]
fn down_of_a_live_instance_is_refused_and_it_keeps_forwarding() {
    let mut s = s2();
    let pid = s.lab.vtep(s.va).pid().expect("vtep a runs");
    let before = host_snapshot(&s.lab, &s.a);
    let out = vtep_run(&["--netns", &s.a, "down", "-n", &s.name_a], LIMIT).unwrap();
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "down of a live instance: exit 0");
    assert!(
        stderr.contains(&format!("pid {pid}")) && stderr.contains("running"),
        "the refusal does not name the owner: {stderr}"
    );
    assert_eq!(host_snapshot(&s.lab, &s.a), before, "down changed host a");
    assert!(Path::new(&state_file(&s.name_a)).exists());
    assert!(Path::new(&pin_dir(&s.name_a)).exists());
    assert_eq!(tcx_ingress(&s.a, "eth0"), ["vtep_underlay"]);
    assert_ping(&s.a1, "192.0.2.21", 3);
    let status = s.lab.vtep(s.va).stop().expect("vtep a runs");
    assert!(status.success(), "vtep a exited {status}");
}

/// Bug (issue 9): after `vtep down` of a live instance, a new `vtep up` of the name lost all
/// traffic to the orphan's program, and the orphan's stop then deleted the new instance's
/// namespaces, links and pins. Neither step can happen now: the new `up` is refused naming the
/// live owner, and a stale undo log run against a successor removes nothing of it.
#[test]
fn orphan_scenario_of_issue_9_cannot_happen() {
    let mut lab = Lab::new();
    let (a, _b) = lab.two_hosts();
    let name = lab.name("va");
    let (w1, hostif) = (lab.name("w1"), lab.name("x"));
    let cfg = header(&name, "")
        + &vni(100, 4789, &[ADDR_B])
        + &host_port(&hostif, "192.0.2.1/24")
        + &workload(&w1, "192.0.2.11/24", "02:00:00:00:00:01");
    let first = lab.start_vtep(&a, &cfg);
    let pid = lab.vtep(first).pid().expect("vtep runs");

    // A second `up` of the name is refused while the first lives, naming it.
    let path = lab.file("again.toml", &cfg);
    let out = vtep_run(&["--netns", &a, "up", "-c", path.to_str().unwrap()], LIMIT)
        .unwrap_or_else(|e| panic!("second up accepted: {e}"));
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("pid {pid}")), "{stderr}");
    assert_ping(&a, "192.0.2.11", 2);

    // The first instance's undo log as it is while it runs: what an orphan would run at its stop.
    let stale = std::fs::read_to_string(state_file(&name)).unwrap();
    let status = lab.vtep(first).stop().expect("vtep runs");
    assert!(status.success());
    let second = lab.start_vtep(&a, &cfg);
    let orphan = lab.name("orph");
    std::fs::write(state_file(&orphan), stale).unwrap();
    let out = vtep_run(&["--netns", &a, "down", "-n", &orphan], LIMIT).unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for what in [format!("namespace `{w1}`"), format!("interface `{hostif}`")] {
        assert!(
            stderr.contains(&format!("leaving {what}")),
            "no word on {what}: {stderr}"
        );
    }
    // The successor lost nothing.
    assert!(list_netns().contains(&w1), "{w1} deleted");
    assert!(links(&a).contains(&hostif), "{hostif} deleted");
    assert!(Path::new(&pin_dir(&name)).exists(), "pins deleted");
    assert!(Path::new(&state_file(&name)).exists(), "state file deleted");
    assert_ping(&a, "192.0.2.11", 3);
    let status = lab.vtep(second).stop().expect("vtep runs");
    assert!(status.success(), "{}", lab.vtep(second).log());
    assert!(!list_netns().contains(&w1));
}

/// Bug (issue 9): a workload namespace deleted and made again by hand while vtep ran was
/// deleted at vtep's stop. It is somebody else's now and stays.
#[test]
fn namespace_made_again_by_hand_survives_the_stop() {
    let mut lab = Lab::new();
    let (a, _b) = lab.two_hosts();
    let (w1, w2) = (lab.name("w1"), lab.name("w2"));
    let cfg = header(&lab.name("va"), "")
        + &vni(100, 4789, &[ADDR_B])
        + &workload(&w1, "192.0.2.11/24", "02:00:00:00:00:01")
        + &workload(&w2, "192.0.2.12/24", "02:00:00:00:00:02");
    let id = lab.start_vtep(&a, &cfg);
    ip(&["netns", "del", &w1]);
    ip(&["netns", "add", &w1]);
    // This machine's kernel has no dummy interfaces: a veth pair marks the namespace as new.
    ip(&[
        "-n", &w1, "link", "add", "mine", "type", "veth", "peer", "name", "mine2",
    ]);
    let status = lab.vtep(id).stop().expect("vtep runs");
    let log = lab.vtep(id).log();
    assert!(status.success(), "{log}");
    assert!(list_netns().contains(&w1), "the new {w1} was deleted");
    assert!(links(&w1).contains(&"mine".to_string()));
    assert!(
        log.contains(&format!("leaving namespace `{w1}` alone")),
        "no word on why {w1} stays: {log}"
    );
    assert!(
        !list_netns().contains(&w2),
        "{w2}, which vtep made, is left"
    );
}

/// Bug (issue 9): `vtep down` run in another network namespace than the instance's deleted
/// interfaces there that had the names of the instance's. It removes the instance's objects in
/// the instance's namespace (entered by its name) and nothing where it runs.
#[test]
fn same_named_interfaces_in_another_namespace_survive_down() {
    let mut lab = Lab::new();
    let (a, _b) = lab.two_hosts();
    let c = lab.host("c");
    let name = lab.name("va");
    let (w1, hostif) = (lab.name("w1"), lab.name("x"));
    let port = format!("{w1}-h");
    let cfg = header(&name, "")
        + &vni(100, 4789, &[ADDR_B])
        + &host_port(&hostif, "192.0.2.1/24")
        + &workload(&w1, "192.0.2.11/24", "02:00:00:00:00:01");
    let id = lab.start_vtep(&a, &cfg);
    lab.vtep(id).kill().expect("vtep runs");
    for ifname in [&hostif, &port] {
        let peer = format!("{ifname}q");
        ip(&[
            "-n", &c, "link", "add", ifname, "type", "veth", "peer", "name", &peer,
        ]);
    }
    let before_c = links(&c);

    // `vtep down` without --netns, run from namespace c (nsenter keeps the mount namespace,
    // as a shell in c would).
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net=/run/netns/{c}"))
        .arg(vtep_bin())
        .args(["down", "-n", &name]);
    let out = run_limited(cmd, LIMIT).unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        links(&c),
        before_c,
        "down removed interfaces of namespace c"
    );
    let left = links(&a);
    assert!(
        !left.contains(&hostif) && !left.contains(&port),
        "the instance's interfaces are left in {a}: {left:?}"
    );
    assert!(!list_netns().contains(&w1));
    assert!(!Path::new(&state_file(&name)).exists());
    assert!(!Path::new(&pin_dir(&name)).exists());
}

/// Issue 9: a second instance on the same underlay, VNI and UDP port had its decapsulation
/// silently taken by the first. `vtep up` refuses it, naming the field and both instances,
/// and so it does for one that would adopt the first one's port or namespace; the same VNI on
/// another UDP port does not overlap.
#[test]
fn second_instance_cannot_take_a_live_ones_vni_port_or_objects() {
    let mut lab = Lab::new();
    let (a, _b) = lab.two_hosts();
    let (first, second) = (lab.name("va"), lab.name("vb"));
    let w1 = lab.name("w1");
    let cfg = header(&first, "")
        + &vni(100, 4789, &[ADDR_B])
        + &workload(&w1, "192.0.2.11/24", "02:00:00:00:00:01");
    let id = lab.start_vtep(&a, &cfg);
    let pid = lab.vtep(id).pid().expect("vtep runs");
    let other = format!("`{first}` (pid {pid})");
    let w9 = workload(&lab.name("w9"), "192.0.2.19/24", "02:00:00:00:00:09");
    let cases = [
        (
            "same VNI and port",
            header(&second, "") + &vni(100, 4789, &[ADDR_B]) + &w9,
            vec!["vni[0].id", "VNI 100 on UDP port 4789", &other, &second],
        ),
        (
            "other VNI, same port and local address",
            header(&second, "") + &vni(200, 4789, &[ADDR_B]) + &w9,
            vec!["vni[0].dstport", "UDP port 4789", &other, &second],
        ),
        (
            "the first one's port",
            header(&second, "") + &vni(300, 8472, &[ADDR_B]) + &adopted_port(&format!("{w1}-h")),
            vec!["vni[0].port[0].interface", &other, "created by it"],
        ),
        (
            "the first one's namespace",
            header(&second, "")
                + &vni(300, 8472, &[ADDR_B])
                + &workload(&w1, "192.0.2.31/24", "02:00:00:00:00:31"),
            vec!["vni[0].workload[0].netns", &other],
        ),
    ];
    let mut problems = Vec::new();
    for (what, cfg, want) in &cases {
        let before = host_snapshot(&lab, &a);
        let path = lab.file(&format!("{}.toml", what.replace(' ', "-")), cfg);
        let out = match vtep_run(&["--netns", &a, "up", "-c", path.to_str().unwrap()], LIMIT) {
            Ok(out) => out,
            Err(e) => {
                problems.push(format!("{what}: accepted: {e}"));
                continue;
            }
        };
        let stderr = text(&out.stderr);
        if out.status.success() {
            problems.push(format!("{what}: exit 0"));
        }
        for w in want {
            if !stderr.contains(w) {
                problems.push(format!("{what}: no `{w}` in: {stderr}"));
            }
        }
        if host_snapshot(&lab, &a) != before {
            problems.push(format!("{what}: host a changed"));
        }
        if Path::new(&state_file(&second)).exists() {
            problems.push(format!("{what}: a state file of {second} is left"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // VNI 100 on port 8472 is another VXLAN service: the first one passes it on.
    let ok = header(&second, "") + &vni(100, 8472, &[ADDR_B]) + &w9;
    let id2 = lab.start_vtep(&a, &ok);
    assert!(lab.vtep(id2).stop().expect("runs").success());
    assert!(lab.vtep(id).stop().expect("runs").success());
}
