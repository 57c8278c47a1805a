//! `vtep up` under a service manager (`dist/vtep@.service`, `Type=notify`): it says READY=1
//! only once the datapath forwards, RELOADING=1 then READY=1 around a reload, STOPPING=1 at the
//! stop, through the datagram socket `NOTIFY_SOCKET` names, as systemd's `sd_notify` protocol
//! has it. The test stands in for systemd with a socket of its own.

use std::{
    os::unix::net::UnixDatagram,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};
use vtep_tests::{
    configs::{header, vni, workload},
    lab::{Lab, ping, vtep_bin, vtep_run},
};

/// The next message on `socket` within `limit`, or None.
fn next_message(socket: &UnixDatagram, limit: Duration) -> Option<String> {
    socket.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn up_tells_the_service_manager_when_it_is_ready_reloading_and_stopping() {
    let lab = Lab::new();
    let (a, _b) = lab.two_hosts();
    let name = lab.name("svc");
    let wl = lab.name("w");
    let config = lab.file(
        "svc.toml",
        &(header(&name, "", "")
            + &vni(100, 4789, &["198.18.0.2"])
            + &workload(&wl, "192.0.2.11/24", "02:00:00:00:0a:01")),
    );
    let notify_path = lab.file("notify.sock", "");
    std::fs::remove_file(&notify_path).unwrap();
    let socket = UnixDatagram::bind(&notify_path).unwrap();
    let mut child = Command::new(vtep_bin())
        .args(["--netns", &a, "up", "-c"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();

    let started = Instant::now();
    let ready = next_message(&socket, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no READY=1 within 30 s"));
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(
        ready.lines().any(|l| l == format!("MAINPID={pid}")),
        "{ready:?}"
    );
    // Ready means forwarding: the instance answers at once, its workload is up.
    let stats = vtep_run(&["stats", "-n", &name, "-j"], Duration::from_secs(10)).unwrap();
    assert!(stats.status.success(), "not running at READY=1");
    assert!(
        ping(&wl, "192.0.2.11", 1),
        "the workload is not there at READY=1"
    );
    eprintln!("ready after {:?}", started.elapsed());

    let reload = vtep_run(&["reload", "-n", &name], Duration::from_secs(30)).unwrap();
    assert!(reload.status.success(), "reload failed");
    let reloading = next_message(&socket, Duration::from_secs(5)).expect("RELOADING=1");
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading:?}"
    );
    assert_eq!(
        next_message(&socket, Duration::from_secs(5)).as_deref(),
        Some("READY=1")
    );

    nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGTERM).unwrap();
    assert_eq!(
        next_message(&socket, Duration::from_secs(10)).as_deref(),
        Some("STOPPING=1")
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}
