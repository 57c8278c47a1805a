//! Issue 9 item 4: config mistakes `vtep up` took, or failed on half-way with a bare kernel
//! error, are refused before anything changes, naming the field; `vtep check` finds the same
//! ones, and with `--system` also the one that needs a look at the host.

use std::time::Duration;

use crate::config::bad_config_lab;

#[test]
fn mistakes_of_issue_9_are_refused_naming_the_field() {
    let mut c = bad_config_lab();
    let good = c.good.clone();
    let w1 = c.lab.name("w1");
    let underlay = "interface = \"eth0\"\n";
    let with_local =
        |ip: &str| good.replacen(underlay, &format!("{underlay}local = \"{ip}\"\n"), 1);
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "zero VNIs",
            good[..good.find("[[vni]]").unwrap()].to_string(),
            vec!["vni: no [[vni]]"],
        ),
        (
            "two workloads with one MAC",
            format!(
                "{good}[[vni.workload]]\nnetns = \"{}\"\nmac = \"02:00:00:00:00:01\"\n",
                c.lab.name("w2")
            ),
            vec!["vni[0].workload[1].mac", "02:00:00:00:00:01"],
        ),
        (
            "static entry for a workload's MAC",
            good.replace("02:00:00:00:00:02", "02:00:00:00:00:01"),
            vec!["vni[0].fdb[0].mac", "local station"],
        ),
        (
            // Was a bare netlink EINVAL half-way through the start.
            "multicast host address",
            good.replace("192.0.2.1/24", "224.0.0.5/24"),
            vec!["vni[0].host.address", "224.0.0.5 is a multicast address"],
        ),
        (
            // Was "File exists" half-way through the start.
            "workload interface lo",
            good.replace(
                &format!("netns = \"{w1}\""),
                &format!("netns = \"{w1}\"\ninterface = \"lo\""),
            ),
            vec!["vni[0].workload[0].interface", "`lo`"],
        ),
        (
            "loopback local address",
            with_local("127.0.0.1"),
            vec!["underlay.local", "127.0.0.1", "loopback"],
        ),
    ];
    let mut problems: Vec<String> = cases
        .iter()
        .flat_map(|(what, cfg, want)| c.refusal_problems(what, cfg, want))
        .collect();
    for (what, cfg, want) in &cases {
        problems.extend(c.check_problems(what, cfg, want));
    }
    // Only a look at the host finds this one: `vtep up` and `vtep check --system` refuse it,
    // listing the addresses there are.
    let elsewhere = with_local("198.18.0.9");
    let want = [
        "underlay.local",
        "198.18.0.9 is not an address of this host",
        "198.18.0.1",
    ];
    problems.extend(c.refusal_problems("local not on the host", &elsewhere, &want));
    let a = c.a.clone();
    let system = ["--netns", a.as_str(), "check", "--system"];
    problems.extend(
        c.refusal(
            "local not on the host",
            &system,
            &elsewhere,
            &want,
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("{e}")),
    );
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    c.assert_good_starts();
}
