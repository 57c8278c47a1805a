//! `metrics.listen`: checked with the config, bound before anything changes, followed by a
//! reload.

use std::{
    net::{TcpListener, TcpStream},
    path::Path,
    time::Duration,
};

use vtep_tests::{
    lab::{Lab, free_port, ip, vtep_run},
    output::text,
};

use crate::support::{A1_IP, ADDR_B, MAC_A1, config, metrics_section, scrape};

/// How long a `vtep up` that must fail may run.
const LIMIT: Duration = Duration::from_secs(30);

/// The interfaces of namespace `ns`, one line each (`ip -o link`), without their counters'
/// and state's changes: what a refused start must leave as it was.
fn interfaces(ns: &str) -> Vec<String> {
    let out = ip(&["-n", ns, "-o", "link", "show"]);
    let mut names: Vec<String> = text(&out.stdout)
        .lines()
        .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().to_string()))
        .collect();
    names.sort();
    names
}

/// Asserts instance `name` left nothing behind: no state or info file, no pins.
#[track_caller]
fn assert_no_instance(name: &str) {
    for path in [
        format!("/run/vtep/{name}.json"),
        format!("/run/vtep/{name}.info.json"),
        format!("/sys/fs/bpf/vtep/{name}"),
    ] {
        assert!(!Path::new(&path).exists(), "{path} exists");
    }
}

#[test]
fn a_listen_that_is_not_address_and_port_is_refused_naming_the_field() {
    let lab = Lab::new();
    let (a, _b) = lab.two_hosts();
    let (a1, name) = (lab.name("a1"), lab.name("va"));
    for (listen, why) in [
        ("127.0.0.1", "is not ADDRESS:PORT"),
        ("localhost:9470", "is not ADDRESS:PORT"),
        ("127.0.0.1:0", "has port 0"),
    ] {
        let cfg = config(
            &name,
            &format!("[metrics]\nlisten = \"{listen}\"\n"),
            ADDR_B,
            &a1,
            A1_IP,
            MAC_A1,
        );
        let path = lab.file("bad.toml", &cfg);
        let path = path.to_str().unwrap();
        let want = format!("metrics.listen: `{listen}` {why}");
        let check = vtep_run(&["check", "-c", path], LIMIT).unwrap();
        assert!(!check.status.success(), "vtep check accepted {listen}");
        assert!(
            text(&check.stderr).contains(&want),
            "{}",
            text(&check.stderr)
        );
        let up = vtep_run(&["--netns", &a, "up", "-c", path], LIMIT).unwrap();
        assert!(!up.status.success(), "vtep up accepted {listen}");
        assert!(text(&up.stderr).contains(&want), "{}", text(&up.stderr));
        assert!(!lab.namespaces().contains(&a1), "the workload was made");
        assert_no_instance(&name);
    }
}

#[test]
fn a_port_in_use_is_refused_before_anything_changes() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    let (a1, name) = (lab.name("a1"), lab.name("va"));
    // Someone else's server on the port (127.0.0.1 of this namespace, where vtep listens).
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cfg = config(&name, &metrics_section(port), ADDR_B, &a1, A1_IP, MAC_A1);
    let path = lab.file("taken.toml", &cfg);
    let path = path.to_str().unwrap();
    let (namespaces, links) = (lab.namespaces(), interfaces(&a));
    let want = format!("metrics.listen: cannot listen on 127.0.0.1:{port}");

    let check = vtep_run(&["--netns", &a, "check", "--system", "-c", path], LIMIT).unwrap();
    let stderr = text(&check.stderr);
    assert!(
        !check.status.success() && stderr.contains(&want),
        "{stderr}"
    );
    let up = vtep_run(&["--netns", &a, "up", "-c", path], LIMIT).unwrap();
    let stderr = text(&up.stderr);
    assert!(
        !up.status.success(),
        "vtep up started on a taken port: {stderr}"
    );
    assert!(stderr.contains(&want), "{stderr}");
    assert!(stderr.contains("in use"), "{stderr}");
    assert_eq!(lab.namespaces(), namespaces, "namespaces changed");
    assert_eq!(interfaces(&a), links, "interfaces of {a} changed");
    assert_no_instance(&name);

    // Once the port is free, the same config starts; the check says what it checked.
    drop(taken);
    let check = vtep_run(&["--netns", &a, "check", "--system", "-c", path], LIMIT).unwrap();
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(
        text(&check.stdout).contains(&format!("metrics address 127.0.0.1:{port} free")),
        "{}",
        text(&check.stdout)
    );
    let id = lab.start_vtep_file(&a, Path::new(path), &[]);
    scrape(port);

    // A second start of the running instance is told that, not that its port is taken.
    let again = vtep_run(&["--netns", &a, "up", "-c", path], LIMIT).unwrap();
    let stderr = text(&again.stderr);
    assert!(!again.status.success(), "{stderr}");
    assert!(stderr.contains("is running"), "{stderr}");
    assert!(!stderr.contains("metrics.listen"), "{stderr}");
    // Another instance on the same port is refused naming the field, and the first serves on.
    let (b1, other) = (lab.name("b1"), lab.name("vb"));
    let cfg_b = config(
        &other,
        &metrics_section(port),
        "198.18.0.1",
        &b1,
        "192.0.2.21",
        "02:00:00:00:0b:01",
    );
    let path_b = lab.file("other.toml", &cfg_b);
    let up_b = vtep_run(
        &["--netns", &b, "up", "-c", path_b.to_str().unwrap()],
        LIMIT,
    )
    .unwrap();
    let stderr = text(&up_b.stderr);
    assert!(!up_b.status.success() && stderr.contains(&want), "{stderr}");
    assert!(
        !lab.namespaces().contains(&b1),
        "the second instance made its workload"
    );
    assert_no_instance(&other);
    scrape(port);
    assert!(lab.vtep(id).pid().is_some(), "the first instance stopped");
}

#[test]
fn a_reload_moves_or_ends_the_listener() {
    let mut lab = Lab::new();
    let (a, _b) = lab.two_hosts();
    let (a1, name) = (lab.name("a1"), lab.name("va"));
    let make = |top: &str| config(&name, top, ADDR_B, &a1, A1_IP, MAC_A1);
    let first = free_port();
    // The file the instance is started from, which a reload reads again.
    let path = lab.file("reload.toml", &make(&metrics_section(first)));
    let id = lab.start_vtep_file(&a, &path, &[]);
    let reload = |lab: &mut Lab, cfg: &str| {
        std::fs::write(&path, cfg).unwrap();
        lab.vtep(id).cli(&["reload", "-n", &name])
    };
    scrape(first);

    // To another port: served there at once, and no longer on the old one.
    let moved = free_port();
    let out = reload(&mut lab, &make(&metrics_section(moved)));
    assert!(out.status.success(), "reload: {}", text(&out.stderr));
    scrape(moved);
    assert!(refused_soon(first), "the old port still answers");

    // To a port in use: refused naming the field, and the metrics stay where they were.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = reload(&mut lab, &make(&metrics_section(port)));
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "reload onto a taken port: {stderr}");
    assert!(
        stderr.contains(&format!(
            "metrics.listen: cannot listen on 127.0.0.1:{port}"
        )),
        "{stderr}"
    );
    scrape(moved);

    // Without [metrics]: nothing listens any more.
    let out = reload(&mut lab, &make(""));
    assert!(out.status.success(), "reload: {}", text(&out.stderr));
    assert!(
        refused_soon(moved),
        "metrics still served without [metrics]"
    );
    assert!(lab.vtep(id).pid().is_some(), "vtep stopped");
}

/// Whether connecting to 127.0.0.1:`port` is refused within a second: a listener closed by
/// a reload goes with the task that served it, a moment after the reload's answer.
fn refused_soon(port: u16) -> bool {
    (0..20).any(|_| {
        let refused = TcpStream::connect(("127.0.0.1", port)).is_err();
        if !refused {
            std::thread::sleep(Duration::from_millis(50));
        }
        refused
    })
}
