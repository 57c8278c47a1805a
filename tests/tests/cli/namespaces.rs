//! The CLI across network and mount namespaces (issue 9, item 7): port names come from the
//! instance's namespace whichever namespace the command runs in, and `ip netns exec`, whose
//! private /sys hides the pins, is refused by `vtep up` and named by the other commands.

use std::{
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use vtep_tests::{
    configs::{vni, workload},
    lab::{Lab, ping_with, static_neighbour, vtep_bin},
    output::{fdb_row, text},
};

use crate::{
    ADDR_B, MAC_A1, VNI, header,
    support::{one_host, vtep},
};

/// `vtep ARGS` run from the test's own namespace (no `--netns`), whatever its exit status.
fn vtep_here(args: &[&str]) -> Output {
    Command::new(vtep_bin())
        .args(args)
        .output()
        .expect("running vtep")
}

/// The port of `mac`'s row in `vtep fdb show -j` output `stdout`.
fn fdb_port(stdout: &[u8], mac: &str) -> Value {
    let rows: Vec<Value> = serde_json::from_slice(stdout)
        .unwrap_or_else(|e| panic!("fdb show JSON: {e}: {}", text(stdout)));
    fdb_row(&rows, mac, VNI).unwrap_or_else(|| panic!("no row for {mac}: {rows:?}"))["port"].clone()
}

/// Bug: `vtep fdb show`, `vtep vni show` and `vtep monitor` named ports by looking their
/// ifindexes up in the caller's namespace: without `--netns` they printed `port ` with no (or
/// the host's) name, with another host's `--netns` that host's names. They now name them in the
/// namespace the instance runs in.
#[test]
fn port_names_come_from_the_instance_namespace() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    let a1 = lab.name("a1");
    let name = lab.name("va");
    let cfg = header(&name, "")
        + &vni(VNI, 4789, &[ADDR_B])
        + "l2miss = true\n\n"
        + &workload(&a1, "192.0.2.11/24", MAC_A1);
    let id = lab.start_vtep(&a, &cfg);
    let port = format!("{a1}-h");

    // From the instance's namespace, from the test's (the host's), from another host's.
    let inside = vtep(&mut lab, id, &name, &["fdb", "show", "-j"]);
    assert_eq!(fdb_port(&inside.stdout, MAC_A1), port.as_str());
    let here = vtep_here(&["fdb", "show", "-n", &name, "-j"]);
    assert!(here.status.success(), "{}", text(&here.stderr));
    assert_eq!(
        fdb_port(&here.stdout, MAC_A1),
        port.as_str(),
        "without --netns"
    );
    let elsewhere = vtep_here(&["--netns", &b, "fdb", "show", "-n", &name, "-j"]);
    assert_eq!(
        fdb_port(&elsewhere.stdout, MAC_A1),
        port.as_str(),
        "with another host's --netns"
    );
    let text_rows = text(&vtep_here(&["fdb", "show", "-n", &name]).stdout);
    assert!(
        text_rows.contains(&format!("{MAC_A1} vni {VNI} port {port} static config")),
        "fdb show text: {text_rows}"
    );
    let vnis: Value =
        serde_json::from_slice(&vtep_here(&["vni", "show", "-n", &name, "-j"]).stdout)
            .expect("vni show JSON");
    assert_eq!(vnis[0]["ports"], serde_json::json!([port]), "vni show");

    // A miss event, read from the host's namespace: a unicast frame to a station nobody knows.
    let mut monitor = Command::new(vtep_bin())
        .args(["monitor", "-n", &name, "-j", "--count", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vtep monitor");
    let _kill = KillOnDrop(monitor.id());
    static_neighbour(&a1, "eth0", "192.0.2.99", "02:00:00:00:0d:0d");
    let deadline = Instant::now() + Duration::from_secs(10);
    while monitor
        .try_wait()
        .expect("waiting for vtep monitor")
        .is_none()
    {
        assert!(Instant::now() < deadline, "vtep monitor printed no event");
        let _ = ping_with(&a1, "192.0.2.99", 1, "0.2", 1);
    }
    let out = monitor.wait_with_output().expect("monitor output");
    let event: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "monitor JSON: {e}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    assert_eq!(event["port"], port.as_str(), "{event}");
}

/// Kills a process when dropped (a failed test leaves no command behind).
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0 as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Bug: `ip netns exec NS vtep up` pinned its maps into a BPF filesystem of its own (`ip netns
/// exec` mounts a private /sys), so every later command said "no running instance" and `vtep
/// down` could not clean up after it. It is now refused before anything changes, saying what to
/// run instead.
#[test]
fn up_under_ip_netns_exec_is_refused() {
    let lab = Lab::new();
    let (a, _b) = lab.two_hosts();
    let a1 = lab.name("a1");
    let name = lab.name("va");
    let cfg =
        header(&name, "") + &vni(VNI, 4789, &[ADDR_B]) + &workload(&a1, "192.0.2.11/24", MAC_A1);
    let file = lab.file("up.toml", &cfg);
    let file = file.to_str().expect("a UTF-8 path");
    let bin = vtep_bin();
    let bin = bin.to_str().expect("a UTF-8 path");
    let mut child = Command::new("ip")
        .args(["netns", "exec", &a, bin, "up", "-c", file])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ip netns exec vtep up");
    let _kill = KillOnDrop(child.id());
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().expect("waiting for vtep").is_none() {
        assert!(
            Instant::now() < deadline,
            "vtep up under ip netns exec is still running"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("vtep output");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("vtep --netns {a}")) && stderr.contains("nothing was changed"),
        "the refusal does not say what to run instead: {stderr}"
    );
    assert!(
        !lab.namespaces().contains(&a1),
        "the workload namespace was created"
    );
    for path in [
        format!("/sys/fs/bpf/vtep/{name}"),
        format!("/run/vtep/{name}.json"),
        format!("/run/vtep/{name}.info.json"),
    ] {
        assert!(!Path::new(&path).exists(), "{path} was made");
    }
}

/// A command run under `ip netns exec` sees a /sys/fs/bpf of its own and finds no pins: it
/// says so and what to run instead, rather than only "no running instance".
#[test]
fn commands_under_ip_netns_exec_say_what_to_run_instead() {
    let h = one_host("");
    let a = h.lab.name("a");
    let out = Command::new("ip")
        .args(["netns", "exec", &a])
        .arg(vtep_bin())
        .args(["stats", "-n", &h.name])
        .output()
        .expect("ip netns exec vtep stats");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("no running instance `{}`", h.name))
            && stderr.contains(&format!("ip netns exec {a}"))
            && stderr.contains(&format!("vtep --netns {a} ...")),
        "{stderr}"
    );
}
