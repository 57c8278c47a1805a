//! One address family per instance: `underlay.local` decides, and every `remotes`, `fdb.dst`,
//! `group` and `accept` entry of the other family is refused by `vtep check`, naming the field.
//! A config that is IPv6 throughout passes. On a dual-stack underlay, the VTEPs named decide.

use std::time::Duration;

use vtep_tests::{
    configs::{fdb, header, vni, workload},
    lab::{Lab, ip, vtep_run},
    output::text,
    packet::{parse_vxlan, parse_vxlan6},
};

use super::{A6, B6};
use crate::support::{assert_ping, ns_read};

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

/// A dual-stack underlay (IPv4 and IPv6 on `eth0`) and no `local`: the VTEPs a config names
/// decide the family, and `local` is the interface's first address of it. Two instances, one of
/// each family on different ports, carry their VNIs side by side, each over its own family.
#[test]
fn ipv6_dual_stack_underlay_takes_the_family_of_the_vteps_named() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts();
    for (host, addr) in [(&a, "2001:db8::1/64"), (&b, "2001:db8::2/64")] {
        ip(&["-n", host, "addr", "add", addr, "dev", "eth0", "nodad"]);
    }
    let [a4, b4, a6, b6] = ["a4", "b4", "a6", "b6"].map(|s| lab.name(s));
    // (host, instance, VNI, port, remote, workload, address, MAC): no `local` anywhere.
    let instances = [
        (
            &a,
            "v4a",
            4,
            4789,
            "198.18.0.2",
            &a4,
            "192.0.2.11/24",
            "02:00:00:04:0a:01",
        ),
        (
            &b,
            "v4b",
            4,
            4789,
            "198.18.0.1",
            &b4,
            "192.0.2.21/24",
            "02:00:00:04:0b:01",
        ),
        (
            &a,
            "v6a",
            6,
            8472,
            B6,
            &a6,
            "198.51.100.11/24",
            "02:00:00:06:0a:01",
        ),
        (
            &b,
            "v6b",
            6,
            8472,
            A6,
            &b6,
            "198.51.100.21/24",
            "02:00:00:06:0b:01",
        ),
    ];
    let configs: Vec<(String, String)> = instances
        .iter()
        .map(|(host, name, id, port, remote, ns, cidr, m)| {
            let cfg = header(&lab.name(name), "", "")
                + &vni(*id, *port, &[remote])
                + &workload(ns, cidr, m);
            (host.to_string(), cfg)
        })
        .collect();
    for (host, cfg) in &configs {
        lab.start_vtep(host, cfg);
    }
    assert_eq!(ns_read(&a4, "/sys/class/net/eth0/mtu"), "1450");
    assert_eq!(ns_read(&a6, "/sys/class/net/eth0/mtu"), "1430");

    let cap4 = lab.capture(&a, "eth0", "ip and udp port 4789");
    let cap6 = lab.capture(&a, "eth0", "ip6 and udp port 8472");
    assert_ping(&a4, "192.0.2.21", 3);
    assert_ping(&a6, "198.51.100.21", 3);
    let (f4, f6) = (cap4.frames(), cap6.frames());
    assert!(
        !f4.is_empty() && !f6.is_empty(),
        "{} and {}",
        f4.len(),
        f6.len()
    );
    for f in &f4 {
        let v = parse_vxlan(f).unwrap_or_else(|e| panic!("not VXLAN over IPv4: {e}"));
        assert_eq!(v.vni(), 4, "VNI 4 over IPv4 only");
    }
    for f in &f6 {
        let v = parse_vxlan6(f).unwrap_or_else(|e| panic!("not VXLAN over IPv6: {e}"));
        assert_eq!(v.vni(), 6, "VNI 6 over IPv6 only");
        assert!(
            [A6, B6].contains(&v.src().to_string().as_str()),
            "outer source {} is not a VTEP's IPv6 address",
            v.src()
        );
    }
}
