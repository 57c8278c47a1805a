//! What the CLI says to an operator who gets something wrong, and what it leaves on the
//! terminal (issue 9, item 7): each test pins a fix (a closed pipe, colour codes in log files,
//! `neigh add` on a VNI without the proxy, a user without rights, `-n ../x`, a repeated cause,
//! a missing instance, missing help).

use std::{
    fs::File,
    os::unix::process::ExitStatusExt as _,
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use nix::sys::signal::{Signal, kill};
use vtep_tests::{lab::vtep_bin, output::text};

use crate::{
    ADDR_B, VNI, header,
    support::{OneHost, one_host, vtep},
};

/// `vtep ARGS` from the test's namespace, whatever its exit status.
fn vtep_here(args: &[&str]) -> Output {
    Command::new(vtep_bin())
        .args(args)
        .output()
        .expect("running vtep")
}

/// Asserts `out` is a refusal: exit status 1, nothing on stdout, `problem` in stderr; returns
/// stderr.
#[track_caller]
fn assert_refused(out: &Output, problem: &str) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "exit status; stderr: {stderr}");
    assert_eq!(text(&out.stdout), "", "printed on stdout");
    assert!(
        stderr.contains(problem),
        "does not say `{problem}`: {stderr}"
    );
    stderr
}

/// Bug: `vtep stats | head -c0` panicked ("failed printing to stdout: Broken pipe") because
/// Rust ignores SIGPIPE. Commands other than `up` now end quietly, as other tools do, when
/// their reader is gone.
#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    let mut h = one_host("");
    let a = h.lab.name("a");
    for args in [&["stats"][..], &["fdb", "show", "-j"]] {
        // The reading end is closed before vtep writes: every write fails, deterministically.
        let (reader, writer) = nix::unistd::pipe().expect("pipe");
        drop(reader);
        let out = Command::new(vtep_bin())
            .args(["--netns", &a])
            .args(args)
            .args(["-n", &h.name])
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .expect("running vtep");
        assert_eq!(
            text(&out.stderr),
            "",
            "vtep {} into a closed pipe",
            args.join(" ")
        );
        assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}", out.status);
    }
    // Still running and readable.
    assert!(vtep(&mut h.lab, h.id, &h.name, &["stats"]).status.success());
}

/// Bug: `vtep up`'s log lines carried ANSI colour codes into files and journald. Colours are
/// for a terminal only now, also without `NO_COLOR`.
#[test]
fn vtep_up_writes_no_colour_codes_into_a_log_file() {
    let lab = vtep_tests::lab::Lab::new();
    let (a, _b) = lab.two_hosts();
    let name = lab.name("va");
    let cfg = header(&name, "") + &vtep_tests::configs::vni(VNI, 4789, &[ADDR_B]);
    let config = lab.file("up.toml", &cfg);
    let log_path = lab.file("up.log", "");
    let log = File::create(&log_path).expect("log file");
    let child = Command::new(vtep_bin())
        .args(["--netns", &a, "up", "-c"])
        .arg(&config)
        .env_remove("NO_COLOR")
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("vtep up");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let stopped = Stop(pid);
    let read = || std::fs::read(&log_path).expect("reading the log");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !text(&read()).contains("vtep is up") {
        assert!(Instant::now() < deadline, "not up: {}", text(&read()));
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(stopped);
    let status = wait(child);
    assert!(status.success(), "{status:?}: {}", text(&read()));
    let log = read();
    assert!(text(&log).contains("stopping"), "{}", text(&log));
    assert!(
        !log.contains(&0x1b),
        "ESC bytes in the log file: {}",
        text(&log)
    );
}

/// Sends SIGINT to a `vtep up` when dropped (also when the test fails).
struct Stop(nix::unistd::Pid);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = kill(self.0, Signal::SIGINT);
    }
}

/// Waits for `child` to exit, killing it after 20 s.
fn wait(mut child: std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("waiting for vtep") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().expect("waiting for vtep");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Bug: `vtep neigh add` on a VNI without `proxy` succeeded and did nothing (nothing reads the
/// table there). It is refused with exit status 1, and the table stays as it was.
#[test]
fn neigh_add_on_a_vni_without_the_proxy_is_refused() {
    let mut h = one_host("");
    let show = |h: &mut OneHost| {
        let out = vtep(&mut h.lab, h.id, &h.name, &["neigh", "show", "-j"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let before = show(&mut h);
    let out = vtep(
        &mut h.lab,
        h.id,
        &h.name,
        &[
            "neigh",
            "add",
            "192.0.2.99",
            "lladdr",
            "02:00:00:00:0d:01",
            "vni",
            &VNI.to_string(),
        ],
    );
    assert_refused(&out, "has no ARP/ND proxy");
    assert_eq!(show(&mut h), before, "the proxy table changed");
}

/// Bug: a user without the rights to open the pins was told "no running instance". As user
/// nobody, against a live instance, the error now says which rights are missing.
#[test]
fn a_user_without_rights_is_told_what_is_missing() {
    let h = one_host("");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(vtep_bin())
        .args(["stats", "-n", &h.name])
        .output()
        .expect("setpriv vtep stats");
    let stderr = assert_refused(&out, "permission denied");
    assert!(stderr.contains("needs root"), "{stderr}");
    assert!(!stderr.contains("no running instance"), "{stderr}");
    drop(h);
}

/// Bug: `-n ../x` was taken as an instance name, which becomes part of paths: `vtep down -n
/// ../NAME` would have run the undo log /run/NAME.json, outside vtep's directory. Names are
/// checked like a config's `name` now, before anything is read.
#[test]
fn an_instance_name_with_a_path_is_refused() {
    let tag = format!("vtep-test-{}", std::process::id());
    // What such a name reaches: a log outside /run/vtep that would remove a file.
    let victim = std::env::temp_dir().join(format!("{tag}-victim"));
    std::fs::write(&victim, "keep me").expect("victim file");
    let decoy = Path::new("/run").join(format!("{tag}.json"));
    let log = serde_json::json!([{ "file": victim }]);
    std::fs::write(&decoy, log.to_string()).expect("decoy log");
    let name = format!("../{tag}");
    let results = [
        ("down", vtep_here(&["down", "-n", &name])),
        ("stats", vtep_here(&["stats", "-n", &name])),
        ("fdb show", vtep_here(&["fdb", "show", "-n", &name])),
    ];
    let victim_kept = victim.exists();
    let _ = std::fs::remove_file(&decoy);
    let _ = std::fs::remove_file(&victim);
    for (what, out) in &results {
        let stderr = assert_refused(out, "--name");
        assert!(stderr.contains("[A-Za-z0-9_-]"), "vtep {what}: {stderr}");
    }
    assert!(
        victim_kept,
        "vtep down -n {name} ran an undo log outside /run/vtep"
    );
}

/// Bug: reading a missing config file printed its cause twice ("No such file" in two links of
/// the error chain).
#[test]
fn check_of_a_missing_file_says_the_cause_once() {
    let out = vtep_here(&["check", "-c", "/nonexistent/vtep.toml"]);
    let stderr = assert_refused(&out, "/nonexistent/vtep.toml");
    assert_eq!(stderr.matches("No such file").count(), 1, "{stderr}");
}

/// No instance of that name: the error names it and where its pins would be.
#[test]
fn a_missing_instance_is_named() {
    let name = format!("vtepnone{}", std::process::id());
    let out = vtep_here(&["stats", "-n", &name]);
    assert_refused(
        &out,
        &format!("no running instance `{name}`: nothing pinned at /sys/fs/bpf/vtep/{name}"),
    );
}

/// Bug: `-c` (and `-j`) had no help text. Read from `-h`, which gives each option one line
/// (`--help` puts the long help under the option); the `man` tests check every argument of
/// every command.
#[test]
fn every_option_has_help() {
    for (command, option) in [
        (&["up", "-h"][..], "-c, --config <FILE>"),
        (&["check", "-h"], "-c, --config <FILE>"),
        (&["stats", "-h"], "-c, --config <FILE>"),
        (&["stats", "-h"], "-j, --json"),
        (&["fdb", "show", "-h"], "-j, --json"),
    ] {
        let out = vtep_here(command);
        let help = text(&out.stdout);
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(option))
            .unwrap_or_else(|| panic!("vtep {}: no {option}: {help}", command.join(" ")));
        assert!(
            line.trim_start()[option.len()..].trim().len() > 3,
            "vtep {}: {option} has no help: {line}",
            command.join(" ")
        );
    }
}
