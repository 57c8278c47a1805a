//! `cargo xtask demo`: two simulated hosts in network namespaces, joined by an underlay veth,
//! each with two workloads on one VNI; vtep on both; pings and a TCP transfer across the
//! overlay; vtep's counters; then everything is removed, also when interrupted.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::cmd;

const VNI: u32 = 100;

/// What must be removed at the end, shared with the Ctrl-C handler.
struct Lab {
    prefix: String,
    dir: PathBuf,
    vtep: PathBuf,
    vteps: Vec<Child>,
}

static LAB: Mutex<Option<Lab>> = Mutex::new(None);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

struct Host {
    ns: String,
    underlay_ip: &'static str,
    peer_ip: &'static str,
    letter: char,
    peer_letter: char,
}

pub fn run(vtep: &Path) -> Result<()> {
    let prefix = format!("vd{}", std::process::id() % 100_000);
    let dir = std::env::temp_dir().join(format!("vtep-demo-{prefix}"));
    std::fs::create_dir_all(&dir)?;
    *LAB.lock().unwrap() = Some(Lab {
        prefix: prefix.clone(),
        dir,
        vtep: vtep.to_path_buf(),
        vteps: Vec::new(),
    });
    ctrlc::set_handler(|| {
        INTERRUPTED.store(true, Ordering::SeqCst);
        eprintln!("\ninterrupted: removing the demo lab");
        cleanup();
        std::process::exit(130);
    })
    .context("installing the Ctrl-C handler")?;

    let result = demo(&prefix);
    cleanup();
    if INTERRUPTED.load(Ordering::SeqCst) {
        // The handler is cleaning up (cleanup() above waited for it) and exits; the error
        // demo() saw is only the interruption.
        std::process::exit(130);
    }
    result
}

fn demo(prefix: &str) -> Result<()> {
    let hosts = [
        Host {
            ns: format!("{prefix}-hostA"),
            underlay_ip: "198.18.0.1",
            peer_ip: "198.18.0.2",
            letter: 'a',
            peer_letter: 'b',
        },
        Host {
            ns: format!("{prefix}-hostB"),
            underlay_ip: "198.18.0.2",
            peer_ip: "198.18.0.1",
            letter: 'b',
            peer_letter: 'a',
        },
    ];
    step("building two hosts joined by an underlay veth (198.18.0.0/24, MTU 1500)");
    for h in &hosts {
        cmd::status("ip", &["netns", "add", &h.ns])?;
        cmd::status("ip", &["-n", &h.ns, "link", "set", "lo", "up"])?;
    }
    let (ua, ub) = (format!("{prefix}ua"), format!("{prefix}ub"));
    cmd::status(
        "ip",
        &["link", "add", &ua, "type", "veth", "peer", "name", &ub],
    )?;
    for (h, tmp) in hosts.iter().zip([&ua, &ub]) {
        cmd::status("ip", &["link", "set", tmp, "netns", &h.ns])?;
        cmd::status("ip", &["-n", &h.ns, "link", "set", tmp, "name", "eth0"])?;
        cmd::status(
            "ip",
            &[
                "-n",
                &h.ns,
                "addr",
                "add",
                &format!("{}/24", h.underlay_ip),
                "dev",
                "eth0",
            ],
        )?;
        cmd::status("ip", &["-n", &h.ns, "link", "set", "eth0", "up"])?;
    }

    step(&format!(
        "starting vtep on both hosts (VNI {VNI}, two workloads each)"
    ));
    for h in &hosts {
        let config = host_config(prefix, h);
        println!("--- config of {} ---\n{config}", h.ns);
        start_vtep(h, &config)?;
    }

    let ws = |l: char, n: u32| format!("{prefix}-{l}{n}");
    let ip_of = |l: char, n: u32| format!("192.0.2.{}{n}", if l == 'a' { 1 } else { 2 });
    step("pinging across the overlay and on the same host");
    for (from, to) in [
        (('a', 1), ('b', 1)),
        (('b', 2), ('a', 2)),
        (('a', 1), ('a', 2)),
    ] {
        let (src, dst) = (ws(from.0, from.1), ip_of(to.0, to.1));
        println!("$ ip netns exec {src} ping -c 3 {dst}");
        let out = Command::new("ip")
            .args([
                "netns", "exec", &src, "ping", "-c", "3", "-i", "0.2", "-W", "2", &dst,
            ])
            .output()?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            bail!("ping {src} -> {dst} failed");
        }
    }

    step("a 3-second TCP transfer (iperf3) from workload a1 to workload b1, across hosts");
    let server_ns = ws('b', 1);
    let mut server = Command::new("ip")
        .args(["netns", "exec", &server_ns, "iperf3", "-s", "-1"])
        .stdout(Stdio::null())
        .spawn()
        .context("starting iperf3 server")?;
    std::thread::sleep(Duration::from_millis(500));
    let client = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ws('a', 1),
            "iperf3",
            "-c",
            &ip_of('b', 1),
            "-t",
            "3",
            "-f",
            "g",
        ])
        .output()?;
    let _ = server.wait();
    print!("{}", String::from_utf8_lossy(&client.stdout));
    if !client.status.success() {
        bail!("iperf3 failed: {}", String::from_utf8_lossy(&client.stderr));
    }

    for h in &hosts {
        step(&format!("vtep stats and fdb on {}", h.ns));
        let lab = LAB.lock().unwrap();
        let vtep = lab.as_ref().unwrap().vtep.clone();
        drop(lab);
        let name = instance(prefix, h);
        for args in [vec!["stats", "-n", &name], vec!["fdb", "show", "-n", &name]] {
            let mut full = vec!["--netns", h.ns.as_str()];
            full.extend(args.iter().copied());
            print!("{}", cmd::output(&vtep.to_string_lossy(), &full)?);
        }
    }
    step("stopping vtep (it removes the workloads it created) and removing the hosts");
    Ok(())
}

fn instance(prefix: &str, h: &Host) -> String {
    format!("{prefix}{}", h.letter)
}

fn host_config(prefix: &str, h: &Host) -> String {
    let mut s = format!(
        "name = \"{name}\"\n\n[underlay]\ninterface = \"eth0\"\n\n[[vni]]\nid = {VNI}\nremotes = [\"{peer}\"]\n",
        name = instance(prefix, h),
        peer = h.peer_ip
    );
    let octet = |l: char| if l == 'a' { 1 } else { 2 };
    for n in 1..=2 {
        s += &format!(
            "\n[[vni.workload]]\nnetns = \"{prefix}-{l}{n}\"\naddress = \"192.0.2.{o}{n}/24\"\nmac = \"02:00:00:00:0{o}:0{n}\"\n",
            l = h.letter,
            o = octet(h.letter)
        );
    }
    for n in 1..=2 {
        s += &format!(
            "\n[[vni.fdb]]\nmac = \"02:00:00:00:0{o}:0{n}\"\ndst = \"{peer}\"\n",
            o = octet(h.peer_letter),
            peer = h.peer_ip
        );
    }
    s
}

fn start_vtep(h: &Host, config: &str) -> Result<()> {
    let (vtep, dir) = {
        let lab = LAB.lock().unwrap();
        let lab = lab.as_ref().unwrap();
        (lab.vtep.clone(), lab.dir.clone())
    };
    let path = dir.join(format!("{}.toml", h.ns));
    std::fs::write(&path, config)?;
    let log_path = dir.join(format!("{}.log", h.ns));
    let log = std::fs::File::create(&log_path)?;
    let child = Command::new(&vtep)
        .args(["--netns", &h.ns, "up", "-c"])
        .arg(&path)
        .env("NO_COLOR", "1")
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting vtep")?;
    let index = {
        let mut lab = LAB.lock().unwrap();
        let lab = lab.as_mut().unwrap();
        lab.vteps.push(child);
        lab.vteps.len() - 1
    };
    // The lock is only held briefly: the Ctrl-C handler needs it to clean up.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.contains("vtep is up") {
            print!("{text}");
            return Ok(());
        }
        let exited = LAB
            .lock()
            .unwrap()
            .as_mut()
            .and_then(|lab| lab.vteps[index].try_wait().ok().flatten());
        if let Some(status) = exited {
            bail!("vtep on {} exited ({status}):\n{text}", h.ns);
        }
        if Instant::now() > deadline {
            bail!("vtep on {} did not come up:\n{text}", h.ns);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn step(what: &str) {
    println!("\n=== {what}");
}

/// Stops the vteps (they remove what they made), then removes the hosts and anything a vtep
/// that died early left behind. Safe to run twice, also at the same time.
fn cleanup() {
    // The guard lives to the end: a second caller (Ctrl-C handler or main thread) waits here
    // until everything is gone instead of returning, and exiting, half-way.
    let mut guard = LAB.lock().unwrap_or_else(|e| e.into_inner());
    let Some(mut lab) = guard.take() else {
        return;
    };
    for child in &mut lab.vteps {
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
    }
    for child in &mut lab.vteps {
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    for suffix in ["a", "b"] {
        let name = format!("{}{suffix}", lab.prefix);
        let host = format!("{}-host{}", lab.prefix, suffix.to_uppercase());
        let _ = Command::new(&lab.vtep)
            .args(["--netns", &host, "down", "-n", &name])
            .stdout(Stdio::null())
            .status();
    }
    if let Ok(entries) = std::fs::read_dir("/run/netns") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&lab.prefix) {
                let _ = Command::new("ip").args(["netns", "del", &name]).status();
            }
        }
    }
    let _ = std::fs::remove_dir_all(&lab.dir);
    if !INTERRUPTED.load(Ordering::SeqCst) {
        println!("removed the demo lab; nothing is left behind");
    }
}
