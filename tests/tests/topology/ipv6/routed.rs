//! Scenario S4 (the routed overlay of seed 001) on an IPv6 underlay: the example configs with
//! the hosts' IPv6 addresses, vtep on both hosts, then vtep against the article's own kernel
//! commands (`vxlan0 … remote 2001:db8::…`) each way round. The workloads reach each other's
//! subnet through the hosts' routing and carry 50 MB byte-exact both ways.

use vtep_tests::lab::{Lab, ping};

use super::{A6, B6};
use crate::{
    BULK,
    routed::{WA, WB, article_host, example},
};

/// Example `file` for `host` on the IPv6 underlay: its remote is the other host's IPv6 address,
/// and its local address `local`.
fn example6(lab: &Lab, file: &str, host: &str, local: &str, remote: &str) -> String {
    example(lab, file, host)
        .replace(
            "remotes = [\"198.18.0.2\"]",
            &format!("remotes = [\"{remote}\"]"),
        )
        .replace(
            "remotes = [\"198.18.0.1\"]",
            &format!("remotes = [\"{remote}\"]"),
        )
        .replace(
            "interface = \"eth0\"\n",
            &format!("interface = \"eth0\"\nlocal = \"{local}\"\n"),
        )
}

/// Pings and 50 MB each way between the two subnets' workloads of `lab`.
fn check_routed(lab: &Lab, side: &str) {
    let (wa, wb) = (lab.name("ans1"), lab.name("bns1"));
    assert!(ping(&wa, WB, 3), "{side}: {WA} -> {WB}");
    assert!(ping(&wb, WA, 3), "{side}: {WB} -> {WA}");
    let got = lab.tcp_transfer(&wb, format!("{WB}:5001").parse().unwrap(), &wa, BULK);
    assert_eq!(got, BULK, "{side}: TCP {WA} -> {WB}");
    let got = lab.tcp_transfer(&wa, format!("{WA}:5002").parse().unwrap(), &wb, BULK);
    assert_eq!(got, BULK, "{side}: TCP {WB} -> {WA}");
}

#[test]
fn ipv6_s4_routed_overlay_between_two_vteps() {
    let mut lab = Lab::new();
    let (a, b) = lab.two_hosts_ipv6();
    let cfg_a = example6(&lab, "s4-host-a.toml", "a", A6, B6);
    let cfg_b = example6(&lab, "s4-host-b.toml", "b", B6, A6);
    assert!(cfg_a.contains(B6) && cfg_b.contains(A6), "{cfg_a}\n{cfg_b}");
    lab.start_vtep(&a, &cfg_a);
    lab.start_vtep(&b, &cfg_b);
    check_routed(&lab, "vtep on both");
}

#[test]
fn ipv6_s4_interop_with_the_articles_kernel_commands() {
    for vtep_on_a in [true, false] {
        let mut lab = Lab::new();
        let (a, b) = lab.two_hosts_ipv6();
        if vtep_on_a {
            lab.start_vtep(&a, &example6(&lab, "s4-host-a.toml", "a", A6, B6));
            article_host(
                &lab,
                "b",
                ("10.1.8.1", WB, "1.1.1.2"),
                ("10.1.5.0/24", A6, "1.1.1.1"),
            );
        } else {
            article_host(
                &lab,
                "a",
                ("10.1.5.1", WA, "1.1.1.1"),
                ("10.1.8.0/24", B6, "1.1.1.2"),
            );
            lab.start_vtep(&b, &example6(&lab, "s4-host-b.toml", "b", B6, A6));
        }
        let side = if vtep_on_a {
            "vtep on a, kernel on b"
        } else {
            "kernel on a, vtep on b"
        };
        check_routed(&lab, side);
    }
}
