//! Nothing left behind after a stop, a SIGTERM, or a crash and `vtep down`.

use std::{path::Path, time::Duration};

use nix::sys::signal::Signal;

use vtep_tests::{
    configs::{adopted_port, fdb, host_port, vni, workload},
    lab::{Lab, ip, list_netns, run, sysctl},
    output::text,
};

use crate::{
    ADDR_B, header,
    support::{
        assert_ping, host_with_a_port, ns_read, pin_dir, state_file, tcx_ingress, vtep_run,
        xdp_prog,
    },
};

/// Everything about host `ns` that vtep touches, for before/after comparisons.
#[derive(Debug, PartialEq, Eq)]
struct HostState {
    links: String,
    addresses: String,
    routes: String,
    managed_neighbours: Vec<String>,
    qdiscs: String,
    tc_ingress_filters: String,
    tcx_eth0: Vec<String>,
    tcx_port: Vec<String>,
    /// The XDP program on eth0, if any.
    xdp_eth0: Option<u32>,
    port_forwarding: String,
    namespaces: Vec<String>,
}

/// A host with a vtep config that has a host port, two workloads and an adopted port.
struct CleanupLab {
    lab: Lab,
    a: String,
    name: String,
    port: String,
    workloads: [String; 2],
    config: String,
}

fn cleanup_lab_with(underlay_extra: &str) -> CleanupLab {
    let (lab, a, port) = host_with_a_port();
    let name = lab.name("va");
    let workloads = [lab.name("w1"), lab.name("w2")];
    ip(&["-n", &lab.name("pw"), "link", "set", "eth0", "up"]);
    // vtep turns forwarding on for its ports; this one must get its old value back.
    sysctl(&a, &[&format!("net.ipv4.conf.{port}.forwarding=0")]);
    let config = header(&name, underlay_extra)
        + &vni(100, 4789, &[ADDR_B])
        + &host_port(&lab.name("x"), "192.0.2.1/24")
        + &workload(&workloads[0], "192.0.2.11/24", "02:00:00:00:00:01")
        + &workload(&workloads[1], "192.0.2.12/24", "02:00:00:00:00:02")
        + &adopted_port(&port)
        + &fdb("02:00:00:00:0b:01", ADDR_B);
    CleanupLab {
        lab,
        a,
        name,
        port,
        workloads,
        config,
    }
}

impl CleanupLab {
    fn state(&self) -> HostState {
        let a = &self.a;
        let cmd = |c: &str, args: &[&str]| text(&run(c, args).stdout);
        let neigh = cmd("ip", &["-n", a, "neigh", "show"]);
        HostState {
            links: cmd("ip", &["-n", a, "-o", "link"]),
            addresses: cmd("ip", &["-n", a, "-4", "-o", "addr"]),
            routes: cmd("ip", &["-n", a, "route"]),
            managed_neighbours: neigh
                .lines()
                .filter(|l| l.contains("managed"))
                .map(str::to_string)
                .collect(),
            qdiscs: cmd("tc", &["-n", a, "qdisc", "show"]),
            tc_ingress_filters: cmd("tc", &["-n", a, "filter", "show", "dev", "eth0", "ingress"]),
            tcx_eth0: tcx_ingress(a, "eth0"),
            tcx_port: tcx_ingress(a, &self.port),
            xdp_eth0: xdp_prog(a, "eth0"),
            port_forwarding: ns_read(
                a,
                &format!("/proc/sys/net/ipv4/conf/{}/forwarding", self.port),
            ),
            namespaces: self.lab.namespaces(),
        }
    }

    /// Checks that the instance is really up and has changed the host.
    fn assert_running(&self, running: &HostState) {
        for w in &self.workloads {
            assert!(running.namespaces.contains(w), "{w} not created");
        }
        assert!(
            running.tcx_eth0.iter().any(|p| p == "vtep_underlay"),
            "no vtep program on eth0 ingress: {:?}",
            running.tcx_eth0
        );
        assert!(
            running.tcx_port.iter().any(|p| p == "vtep_port"),
            "no vtep program on the adopted port: {:?}",
            running.tcx_port
        );
        assert_eq!(running.port_forwarding, "1");
        assert!(
            running
                .managed_neighbours
                .iter()
                .any(|l| l.contains(ADDR_B)),
            "no managed neighbour for the remote VTEP: {:?}",
            running.managed_neighbours
        );
        assert!(Path::new(&state_file(&self.name)).exists());
        assert!(Path::new(&pin_dir(&self.name)).exists());
        // The datapath works: a workload reaches the host port and the other workload.
        assert_ping(&self.workloads[0], "192.0.2.1", 2);
        assert_ping(&self.workloads[0], "192.0.2.12", 2);
    }

    /// Checks that the host is as it was before `vtep up`.
    fn assert_restored(&self, before: &HostState, when: &str) {
        let after = self.state();
        assert_eq!(&after, before, "{when}: host differs from before `vtep up`");
        for w in &self.workloads {
            assert!(
                !list_netns().contains(w),
                "{when}: workload namespace {w} left"
            );
        }
        assert!(after.tcx_eth0.is_empty() && after.tcx_port.is_empty());
        assert_eq!(after.xdp_eth0, None, "{when}: XDP program left on eth0");
        assert!(after.tc_ingress_filters.trim().is_empty());
        assert!(
            !after.qdiscs.contains("clsact") && !after.qdiscs.contains("ingress"),
            "{when}: {}",
            after.qdiscs
        );
        assert!(
            !Path::new(&pin_dir(&self.name)).exists(),
            "{when}: pins left"
        );
        assert!(
            !Path::new(&state_file(&self.name)).exists(),
            "{when}: state file left"
        );
    }
}

/// Starts the instance of a [`cleanup_lab`], stops it with `signal` and checks that it exits
/// cleanly and leaves the host as it was.
fn check_nothing_left_after(signal: Signal, when: &str) {
    check_nothing_left_with(signal, when, "");
}

/// [`check_nothing_left_after`] for an instance with `underlay_extra` in its `[underlay]`.
pub fn check_nothing_left_with(signal: Signal, when: &str, underlay_extra: &str) {
    let mut c = cleanup_lab_with(underlay_extra);
    let before = c.state();
    assert_eq!(before.port_forwarding, "0");
    let a = c.a.clone();
    let config = c.config.clone();
    let id = c.lab.start_vtep(&a, &config);
    c.assert_running(&c.state());

    let status = c.lab.vtep(id).stop_with(signal).expect("vtep was running");
    assert!(
        status.success(),
        "vtep exited {status}: {}",
        c.lab.vtep(id).log()
    );
    c.assert_restored(&before, when);
}

#[test]
fn nothing_left_after_stop() {
    check_nothing_left_after(Signal::SIGINT, "after SIGINT");
}

#[test]
fn nothing_left_after_sigterm() {
    check_nothing_left_after(Signal::SIGTERM, "after SIGTERM");
}

/// A workload namespace that existed before `vtep up` is the user's: vtep puts its interface
/// in and takes it out again, and the namespace stays.
#[test]
fn existing_workload_namespace_is_kept() {
    let mut lab = Lab::new();
    let (a, _b) = lab.two_hosts();
    let w1 = lab.host("w1");
    let w2 = lab.name("w2");
    let w1_links = text(&ip(&["-n", &w1, "-o", "link"]).stdout);
    let cfg = header(&lab.name("va"), "")
        + &vni(100, 4789, &[ADDR_B])
        + &workload(&w1, "192.0.2.11/24", "02:00:00:00:00:01")
        + &workload(&w2, "192.0.2.12/24", "02:00:00:00:00:02");
    let id = lab.start_vtep(&a, &cfg);
    assert_ping(&w1, "192.0.2.12", 2);
    let status = lab.vtep(id).stop().expect("vtep was running");
    assert!(status.success(), "vtep exited {status}");
    assert!(
        list_netns().contains(&w1),
        "pre-existing namespace {w1} was deleted"
    );
    assert!(
        !list_netns().contains(&w2),
        "namespace {w2} that vtep made is left"
    );
    assert_eq!(
        text(&ip(&["-n", &w1, "-o", "link"]).stdout),
        w1_links,
        "interfaces left in {w1}"
    );
}

#[test]
fn nothing_left_after_kill_and_down() {
    check_kill_and_down("");
}

/// Kills an instance with `underlay_extra` in its `[underlay]` (SIGKILL: no cleanup of its
/// own) and checks that `vtep down` leaves the host as it was, and that it starts again.
pub fn check_kill_and_down(underlay_extra: &str) {
    let mut c = cleanup_lab_with(underlay_extra);
    let before = c.state();
    let a = c.a.clone();
    let config = c.config.clone();
    let id = c.lab.start_vtep(&a, &config);
    c.assert_running(&c.state());

    c.lab.vtep(id).kill().expect("vtep was running");
    // The crash left the instance's state behind (so `down` has work to do).
    assert!(Path::new(&state_file(&c.name)).exists());
    assert!(c.lab.namespaces().contains(&c.workloads[0]));
    // A new `up` under the crashed instance's name is refused, pointing at `vtep down`.
    let path = c.lab.file("again.toml", &config);
    let out = vtep_run(
        &["--netns", &a, "up", "-c", path.to_str().unwrap()],
        Duration::from_secs(15),
    )
    .unwrap_or_else(|e| panic!("up over a crashed instance accepted: {e}"));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("vtep down"),
        "{}",
        text(&out.stderr)
    );
    // TCX and XDP link attachments belong to the process: they went with it.
    assert!(tcx_ingress(&a, "eth0").is_empty(), "program left on eth0");
    assert_eq!(xdp_prog(&a, "eth0"), None, "XDP program left on eth0");
    assert!(tcx_ingress(&a, &c.port).is_empty(), "program left on port");

    let out = vtep_run(
        &["--netns", &a, "down", "-n", &c.name],
        Duration::from_secs(20),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "vtep down failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    c.assert_restored(&before, "after kill -9 and `vtep down`");

    // And the instance can be started again under the same name.
    let id = c.lab.start_vtep(&a, &config);
    let status = c.lab.vtep(id).stop().expect("vtep was running");
    assert!(status.success());
    c.assert_restored(&before, "after restart and stop");
}
