//! `vtep vni show`.

use serde_json::{Value, json};
use vtep_tests::{
    configs::{fdb, vni, workload},
    lab::Lab,
    output::text,
};

use crate::{
    ADDR_B, MAC_A1, MAC_B1, header,
    support::{fdb_cmd, vtep, vtep_ok},
};

#[test]
fn vni_show_lists_ports_remotes_and_fdb_counts() {
    let mut lab = Lab::new();
    let (a, _b) = lab.two_hosts();
    let (a1, a2, a3) = (lab.name("a1"), lab.name("a2"), lab.name("a3"));
    let name = lab.name("va");
    let cfg = header(&name, "")
        + &vni(100, 4789, &[ADDR_B, "198.18.0.3"])
        + "[vni.host]\ninterface = \"hv100\"\naddress = \"192.0.2.1/24\"\n\n"
        + &workload(&a1, "192.0.2.11/24", MAC_A1)
        + &workload(&a2, "192.0.2.12/24", "02:00:00:00:0a:02")
        + &fdb(MAC_B1, ADDR_B)
        + &vni(5000, 8472, &[])
        + &workload(&a3, "198.51.100.13/24", "02:00:00:00:0a:03");
    let id = lab.start_vtep(&a, &cfg);

    let show = |lab: &mut Lab| -> Value {
        let out = vtep(lab, id, &name, &["vni", "show", "-j"]);
        assert!(out.status.success(), "vni show: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("vni show JSON")
    };
    let mut ports_100 = vec!["hv100p".to_string(), format!("{a1}-h"), format!("{a2}-h")];
    ports_100.sort();
    let expected = |fdb_5000: u64| {
        json!([
            {
                "vni": 100,
                "dstport": 4789,
                "ports": ports_100,
                "remotes": [ADDR_B, "198.18.0.3"],
                // The host interface, two workloads, one configured remote entry.
                "fdb_entries": 4
            },
            {
                "vni": 5000,
                "dstport": 8472,
                "ports": [format!("{a3}-h")],
                "remotes": [],
                "fdb_entries": fdb_5000
            }
        ])
    };
    assert_eq!(show(&mut lab), expected(1));

    // The count follows runtime changes.
    let add = fdb_cmd("add", "02:00:00:00:0d:01", ADDR_B, "5000");
    vtep_ok(&mut lab, id, &name, &add);
    assert_eq!(show(&mut lab), expected(2));

    // The table form has a row per VNI with the same facts.
    let out = vtep(&mut lab, id, &name, &["vni", "show"]);
    assert!(out.status.success(), "vni show: {}", text(&out.stderr));
    let table = text(&out.stdout);
    let lines: Vec<Vec<&str>> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        vec![
            vec![
                "100",
                "4789",
                "4",
                &ports_100.join(","),
                &format!("{ADDR_B},198.18.0.3")
            ],
            vec!["5000", "8472", "2", &format!("{a3}-h"), "-"],
        ],
        "{table}"
    );
}
