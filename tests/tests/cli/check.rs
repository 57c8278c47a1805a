//! `vtep check`: input is bounded, and `--system` runs the read-only checks `vtep up` makes
//! against the host (issue 9 item 4).

use std::{
    path::Path,
    process::Output,
    time::{Duration, Instant},
};

use vtep_tests::{
    configs::{vni, workload},
    lab::{Lab, list_netns, vtep_run},
    output::text,
};

use crate::{ADDR_B, MAC_A1, VNI, header};

/// `vtep ARGS`, which must end within 10 s.
fn vtep(args: &[&str]) -> Output {
    vtep_run(args, Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e}"))
}

/// Asserts `out` is a failure whose stderr says every string of `want`.
#[track_caller]
fn assert_fails_saying(out: &Output, want: &[&str]) {
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "exit 0: {}", text(&out.stdout));
    for w in want {
        assert!(stderr.contains(w), "no `{w}` in: {stderr}");
    }
}

/// Issue 9: `vtep check -c /dev/zero` read until the machine ran out of memory, and a config of
/// one 10 MB line was quoted whole in the error.
#[test]
fn check_of_endless_or_huge_input_ends_quickly_and_briefly() {
    let lab = Lab::new();
    let start = Instant::now();
    let out = vtep(&["check", "-c", "/dev/zero"]);
    assert_fails_saying(&out, &["/dev/zero", "larger than 1024 KiB"]);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );

    let huge = lab.file("huge.toml", &"x".repeat(2 << 20));
    let out = vtep(&["check", "-c", huge.to_str().unwrap()]);
    assert_fails_saying(&out, &["larger than 1024 KiB"]);
    assert!(
        out.stderr.len() < 300,
        "{} bytes of error",
        out.stderr.len()
    );

    // Under the bound, a parse error quotes its line cut short.
    let long = lab.file("long.toml", &"x".repeat(900 << 10));
    let out = vtep(&["check", "-c", long.to_str().unwrap()]);
    assert_fails_saying(&out, &["xxxxxxxx…"]);
    assert!(
        out.stderr.len() < 1000,
        "{} bytes of error",
        out.stderr.len()
    );
}

/// Issue 9: `vtep check` passed a config whose underlay interface does not exist, without
/// saying that it had not looked. It says so now, and `--system` looks, changing nothing.
#[test]
fn check_system_looks_at_the_host_and_changes_nothing() {
    let mut lab = Lab::new();
    let (a, _b) = lab.two_hosts();
    let (name, w1) = (lab.name("va"), lab.name("w1"));
    let good =
        header(&name, "") + &vni(VNI, 4789, &[ADDR_B]) + &workload(&w1, "192.0.2.11/24", MAC_A1);
    let missing = lab.name("nx");
    let no_underlay = good.replace(
        "interface = \"eth0\"",
        &format!("interface = \"{missing}\""),
    );
    let (good_path, missing_path) = (
        lab.file("good.toml", &good),
        lab.file("missing.toml", &no_underlay),
    );
    let (good_path, missing_path) = (good_path.to_str().unwrap(), missing_path.to_str().unwrap());

    let out = vtep(&["--netns", &a, "check", "-c", missing_path]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("this host was not checked"),
        "{}",
        text(&out.stdout)
    );
    let out = vtep(&["--netns", &a, "check", "--system", "-c", missing_path]);
    assert_fails_saying(&out, &["underlay.interface", &missing, "does not exist"]);

    // This lab's namespaces only: tests running beside this one make and remove their own
    // (comparing the whole list failed whenever one did, a flaky test fixed here).
    let namespaces = lab.namespaces();
    let out = vtep(&["--netns", &a, "check", "--system", "-c", good_path]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("system ok: underlay `eth0`") && stdout.contains("198.18.0.1"),
        "{stdout}"
    );
    assert_eq!(
        lab.namespaces(),
        namespaces,
        "check --system changed namespaces"
    );
    assert!(
        !list_netns().contains(&w1),
        "check --system made the workload's namespace"
    );
    assert!(!Path::new(&format!("/run/vtep/{name}.json")).exists());

    // With the instance running: its name and its VNI on that underlay are taken.
    let id = lab.start_vtep(&a, &good);
    let pid = lab.vtep(id).pid().expect("vtep runs").to_string();
    let out = vtep(&["--netns", &a, "check", "--system", "-c", good_path]);
    assert_fails_saying(&out, &["name:", "is running", &pid]);
    let other = lab.file(
        "other.toml",
        &good.replace(
            &format!("name = \"{name}\""),
            &format!("name = \"{}\"", lab.name("vb")),
        ),
    );
    let out = vtep(&[
        "--netns",
        &a,
        "check",
        "--system",
        "-c",
        other.to_str().unwrap(),
    ]);
    assert_fails_saying(&out, &["vni[0].id", &name, &pid]);
    assert!(lab.vtep(id).stop().expect("vtep runs").success());
}
