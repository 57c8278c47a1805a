//! Output as iproute2 users expect it: `-j` one line of JSON, `-p` the same pretty-printed, the
//! text with the JSON's field names, and MACs taken in iproute2's short form.

use serde_json::Value;
use vtep_tests::output::text;

use crate::{
    VNI,
    support::{one_host, vtep, vtep_ok},
};

#[test]
fn json_is_compact_with_j_pretty_with_p_and_the_text_uses_its_names() {
    let mut h = one_host("");
    for show in [
        &["fdb", "show"][..],
        &["neigh", "show"],
        &["vni", "show"],
        &["stats"],
    ] {
        let compact = vtep(&mut h.lab, h.id, &h.name, &[show, &["-j"]].concat());
        let pretty = vtep(&mut h.lab, h.id, &h.name, &[show, &["-p"]].concat());
        assert!(
            compact.status.success() && pretty.status.success(),
            "{show:?}"
        );
        let (compact, pretty) = (text(&compact.stdout), text(&pretty.stdout));
        assert_eq!(
            compact.lines().count(),
            1,
            "{show:?} -j is not one line: {compact}"
        );
        assert!(
            pretty.lines().count() > 1,
            "{show:?} -p is not pretty: {pretty}"
        );
        let a: Value = serde_json::from_str(&compact).unwrap();
        let b: Value = serde_json::from_str(&pretty).unwrap();
        assert_eq!(a, b, "{show:?}: -j and -p say different things");
    }

    // Every column of the stats table is a key of the VNI's JSON object.
    let stats = vtep(&mut h.lab, h.id, &h.name, &["stats"]);
    let heading = text(&stats.stdout).lines().next().unwrap().to_string();
    let json: Value =
        serde_json::from_slice(&vtep(&mut h.lab, h.id, &h.name, &["stats", "-j"]).stdout).unwrap();
    let vni = &json["vnis"][0];
    for column in heading.split_whitespace() {
        assert!(
            vni.get(column).is_some(),
            "stats column `{column}` is not a JSON field: {vni}"
        );
    }
    let vnis = vtep(&mut h.lab, h.id, &h.name, &["vni", "show"]);
    let row: Value =
        serde_json::from_slice(&vtep(&mut h.lab, h.id, &h.name, &["vni", "show", "-j"]).stdout)
            .unwrap();
    for column in text(&vnis.stdout)
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
    {
        assert!(
            row[0].get(column).is_some(),
            "vni show column `{column}` is not a JSON field: {}",
            row[0]
        );
    }
}

#[test]
fn macs_are_taken_in_iproute2s_short_form() {
    let mut h = one_host("");
    let vni = VNI.to_string();
    vtep_ok(
        &mut h.lab,
        h.id,
        &h.name,
        &[
            "fdb",
            "add",
            "2:0:0:0:c:3",
            "dst",
            "198.18.0.2",
            "vni",
            &vni,
        ],
    );
    let show = text(&vtep(&mut h.lab, h.id, &h.name, &["fdb", "show"]).stdout);
    assert!(
        show.lines()
            .any(|l| l.starts_with("02:00:00:00:0c:03 ") && l.contains("dst 198.18.0.2")),
        "{show}"
    );
}
