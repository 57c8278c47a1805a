//! One address family per instance: `underlay.local` decides, and every `remotes`, `fdb.dst`,
//! `group` and `accept` entry of the other family is refused by `vtep check`, naming the field.
//! A config that is IPv6 throughout passes.

use std::time::Duration;

use vtep_tests::{
    configs::{fdb, header, vni, workload},
    lab::{Lab, vtep_run},
    output::text,
};

use super::{A6, B6};

/// Runs `vtep check` on `cfg`; returns its exit success and stderr.
fn check(lab: &Lab, what: &str, cfg: &str) -> (bool, String) {
    let path = lab.file(&format!("{}.toml", what.replace(' ', "-")), cfg);
    let out = vtep_run(
        &["check", "-c", path.to_str().unwrap()],
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    (out.status.success(), text(&out.stderr))
}

#[test]
fn ipv6_config_mixed_families_are_refused_naming_the_field() {
    let lab = Lab::new();
    let name = lab.name("va");
    let w = workload(&lab.name("w1"), "192.0.2.11/24", "02:00:00:00:00:01");
    let v6 = |underlay: &str, vni_lines: &str| {
        header(&name, "", &format!("local = \"{A6}\"\n{underlay}")) + vni_lines + &w
    };
    let good = v6(
        "accept = [\"2001:db8::/64\"]",
        &(vni(100, 4789, &[B6]) + &fdb("02:00:00:00:00:02", B6)),
    );
    let (ok, stderr) = check(&lab, "good", &good);
    assert!(ok, "an IPv6 config refused: {stderr}");
    let group6 = v6("", &(vni(100, 4789, &[]) + "group = \"ff0e::100\"\n"));
    let (ok, stderr) = check(&lab, "good group", &group6);
    assert!(ok, "an IPv6 group refused: {stderr}");

    let mut problems = Vec::new();
    for (what, cfg, field) in [
        (
            "IPv4 remote",
            v6("", &vni(100, 4789, &["198.18.0.2"])),
            "vni[0].remotes",
        ),
        (
            "IPv4 fdb dst",
            v6(
                "",
                &(vni(100, 4789, &[B6]) + &fdb("02:00:00:00:00:02", "198.18.0.2")),
            ),
            "vni[0].fdb[0].dst",
        ),
        (
            "IPv4 group",
            v6("", &(vni(100, 4789, &[]) + "group = \"239.1.1.1\"\n")),
            "vni[0].group",
        ),
        (
            "IPv4 accept prefix",
            v6("accept = [\"198.18.0.0/24\"]", &vni(100, 4789, &[B6])),
            "underlay.accept",
        ),
        (
            "IPv6 remote of an IPv4 local",
            header(&name, "", "local = \"198.18.0.1\"") + &vni(100, 4789, &[B6]) + &w,
            "vni[0].remotes",
        ),
    ] {
        let (ok, stderr) = check(&lab, what, &cfg);
        if ok {
            problems.push(format!("{what}: accepted"));
        } else if !stderr.contains(field) {
            problems.push(format!("{what}: the error does not name {field}: {stderr}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `vtep check --system` on an IPv6 underlay: it names the IPv6 local address it found, and an
/// IPv6 `local` the host does not have is refused with the addresses it has.
#[test]
fn ipv6_check_system_finds_the_ipv6_local_address() {
    let lab = Lab::new();
    let (a, _b) = lab.two_hosts_ipv6();
    let cfg = |local: &str| {
        header(&lab.name("va"), "", &format!("local = \"{local}\""))
            + &vni(100, 4789, &[B6])
            + &workload(&lab.name("w1"), "192.0.2.11/24", "02:00:00:00:00:01")
    };
    let run = |local: &str| {
        let path = lab.file(
            &format!("check-{}.toml", local.replace(':', "-")),
            &cfg(local),
        );
        vtep_run(
            &[
                "--netns",
                &a,
                "check",
                "--system",
                "-c",
                path.to_str().unwrap(),
            ],
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    };
    let out = run(A6);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("with local address {A6}")),
        "{stdout}"
    );
    let out = run("2001:db8::9");
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "a local address the host lacks");
    assert!(
        stderr.contains("underlay.local") && stderr.contains(A6),
        "{stderr}"
    );
}
