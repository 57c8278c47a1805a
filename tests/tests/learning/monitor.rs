//! `vtep monitor`: miss events of a running instance.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use nix::sys::signal::{Signal, kill};
use serde_json::Value;
use vtep_tests::{
    lab::{Lab, static_neighbour, vtep_bin},
    output::text,
};

use crate::{
    VNI,
    support::{config, ping_quick, quiet},
};

#[test]
fn vtep_monitor_prints_an_l2miss_once_per_second_per_mac() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    quiet(&lab, &[a.clone(), b.clone()]);
    lab.start_vtep(&a, &config(&lab, 0, 2, "l2miss = true\n", ""));
    lab.start_vtep(&b, &config(&lab, 1, 2, "", ""));
    let name_a = lab.name("v0");
    let w0 = lab.name("w0");
    // A station nobody knows, with a static ARP entry so the frames are unicast to it.
    let unknown = "02:00:00:00:0d:0d";
    static_neighbour(&w0, "eth0", "192.0.2.99", unknown);
    let monitor = start_monitor(&a, &name_a);
    let _ = ping_quick(&w0, "192.0.2.99", 5);
    std::thread::sleep(Duration::from_millis(1200));
    let _ = ping_quick(&w0, "192.0.2.99", 1);
    std::thread::sleep(Duration::from_millis(300));
    let lines = stop_monitor(monitor);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for l in &lines {
        assert_eq!(l["event"], "l2miss", "{l}");
        assert_eq!(l["vni"], VNI, "{l}");
        assert_eq!(l["mac"], unknown, "{l}");
        assert_eq!(l["port"], format!("{w0}-h"), "{l}");
    }
    // Five frames within a second gave one event, the frame a second later the other.
}

/// Starts `vtep monitor -j` against instance `name` on `host`; `stop_monitor` returns its
/// events. Waits for it to open the ring buffer: events before that are read all the same (the
/// ring keeps them), this only keeps the tests' timing honest.
pub fn start_monitor(host: &str, name: &str) -> Child {
    let child = Command::new(vtep_bin())
        .args(["--netns", host, "monitor", "-n", name, "-j"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("vtep monitor");
    std::thread::sleep(Duration::from_millis(300));
    child
}

/// Stops a monitor (it runs until stopped; every line it printed is flushed already) and parses
/// its output.
pub fn stop_monitor(child: Child) -> Vec<Value> {
    kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        Signal::SIGTERM,
    )
    .expect("stopping vtep monitor");
    let out = child.wait_with_output().expect("monitor output");
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}
