//! What `vtep fdb add`, `replace` and `del` accept and refuse, and what they change.

use std::path::Path;

use serde_json::{Value, json};
use vtep_tests::{lab::Lab, output::text};

use crate::{
    ADDR_A, ADDR_B, MAC_A1, VNI,
    support::{MAC_CFG, assert_refused, fdb_cmd, fdb_row, fdb_show, one_host, vtep, vtep_ok},
};

#[test]
fn fdb_add_refuses_bad_input_and_changes_nothing() {
    let mut h = one_host("");
    const NEW: &str = "02:00:00:00:0d:01";
    let add = |mac, dst, vni| fdb_cmd("add", mac, dst, vni);
    for (args, problem) in [
        // MACs
        (
            add("02:00:00:00:0d", "198.18.0.3", "100"),
            "mac: `02:00:00:00:0d` is not a MAC address",
        ),
        (
            add("02:00:00:00:0d:zz", "198.18.0.3", "100"),
            "mac: `02:00:00:00:0d:zz` is not a MAC address",
        ),
        (
            add("01:00:5e:00:00:01", "198.18.0.3", "100"),
            "mac: 01:00:5e:00:00:01 is a group address",
        ),
        (
            add("ff:ff:ff:ff:ff:ff", "198.18.0.3", "100"),
            "mac: ff:ff:ff:ff:ff:ff is a group address",
        ),
        (
            add("00:00:00:00:00:00", "198.18.0.3", "100"),
            "mac: 00:00:00:00:00:00 is not a station address",
        ),
        // VNIs
        (
            add(NEW, "198.18.0.3", "101"),
            "vni: VNI 101 is not configured in instance",
        ),
        (
            add(NEW, "198.18.0.3", "16777216"),
            "vni: 16777216 is outside 1..=16777215",
        ),
        (add(NEW, "198.18.0.3", "ten"), "vni: `ten` is not a VNI"),
        // Remote VTEPs
        (
            add(NEW, "0.0.0.0", "100"),
            "dst: 0.0.0.0 is not a unicast address",
        ),
        (
            add(NEW, "239.1.1.1", "100"),
            "dst: 239.1.1.1 is not a unicast address",
        ),
        (
            add(NEW, "255.255.255.255", "100"),
            "dst: 255.255.255.255 is not a unicast address",
        ),
        (
            add(NEW, ADDR_A, "100"),
            "dst: 198.18.0.1 is the local VTEP address",
        ),
        (
            add(NEW, "198.18.0", "100"),
            "dst: `198.18.0` is not an IP address",
        ),
        // Syntax
        (
            vec![
                "fdb",
                "add",
                NEW,
                "dst",
                "198.18.0.3",
                "vni",
                "100",
                "dev",
                "x",
            ],
            "`dev` is not an argument of `vtep fdb add`",
        ),
        (vec!["fdb", "add", NEW, "vni", "100"], "`dst IP` is missing"),
        // Existing entries: a different target needs `replace`; local ones stay as configured.
        (
            add(MAC_CFG, "198.18.0.3", "100"),
            "02:00:00:00:0c:01 in VNI 100 already goes to 198.18.0.2; `vtep fdb replace`",
        ),
        (
            add(MAC_A1, "198.18.0.3", "100"),
            "is a station behind local port",
        ),
        (
            vec!["fdb", "replace", MAC_A1, "dst", "198.18.0.3", "vni", "100"],
            "is a station behind local port",
        ),
        (
            vec!["fdb", "del", MAC_A1, "vni", "100"],
            "is a station behind local port",
        ),
        (
            vec!["fdb", "del", NEW, "vni", "100"],
            "mac: no entry for 02:00:00:00:0d:01 in VNI 100",
        ),
        (
            vec!["fdb", "del", MAC_CFG, "vni", "101"],
            "vni: VNI 101 is not configured",
        ),
    ] {
        assert_refused(&mut h, &args, problem);
    }
    // The local-port refusal names the port.
    let out = vtep(
        &mut h.lab,
        h.id,
        &h.name,
        &["fdb", "del", MAC_A1, "vni", "100"],
    );
    assert!(
        text(&out.stderr).contains(&format!("local port `{}-h`", h.a1)),
        "{}",
        text(&out.stderr)
    );

    // Adding what is already there is a silent success that changes nothing, also for a
    // configured entry (which stays a configured one).
    let before = fdb_show(&mut h.lab, h.id, &h.name);
    vtep_ok(
        &mut h.lab,
        h.id,
        &h.name,
        &fdb_cmd("add", MAC_CFG, ADDR_B, "100"),
    );
    assert_eq!(text(&fdb_show(&mut h.lab, h.id, &h.name)), text(&before));
}

/// `replace` points an entry elsewhere (configured ones too: they become runtime entries),
/// `add` repeats silently, and `del` works on any remote entry.
#[test]
fn fdb_replace_moves_entries_and_del_removes_configured_ones() {
    let mut h = one_host("");
    const NEW: &str = "02:00:00:00:0d:01";
    let (lab, id, name) = (&mut h.lab, h.id, h.name.clone());
    let row = |lab: &mut Lab, mac: &str| fdb_row(&fdb_show(lab, id, &name), mac, VNI);

    vtep_ok(
        lab,
        id,
        &name,
        &fdb_cmd("replace", MAC_CFG, "198.18.0.3", "100"),
    );
    let r = row(lab, MAC_CFG).expect("replaced entry missing");
    assert_eq!(
        (&r["dst"], &r["origin"]),
        (&json!("198.18.0.3"), &json!("runtime"))
    );

    // `replace` of a missing entry adds it; `add` of the same again is a no-op.
    vtep_ok(lab, id, &name, &fdb_cmd("replace", NEW, ADDR_B, "100"));
    let before = fdb_show(lab, id, &name);
    vtep_ok(lab, id, &name, &fdb_cmd("add", NEW, ADDR_B, "100"));
    assert_eq!(text(&fdb_show(lab, id, &name)), text(&before));
    assert_eq!(row(lab, NEW).expect("new entry")["origin"], "runtime");

    vtep_ok(lab, id, &name, &["fdb", "delete", MAC_CFG, "vni", "100"]);
    vtep_ok(lab, id, &name, &["fdb", "del", NEW, "vni", "100"]);
    assert!(row(lab, MAC_CFG).is_none() && row(lab, NEW).is_none());
    // Only the workload's own entry is left.
    let rows: Value = serde_json::from_slice(&fdb_show(lab, id, &name)).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
}

/// A full FDB is reported as such, and the failed add leaves the FDB as it was.
#[test]
fn fdb_add_to_a_full_fdb_is_refused() {
    // Room for the workload's entry, the configured one and one more.
    let mut h = one_host("fdb_size = 3\n");
    let (first, second) = ("02:00:00:00:0d:01", "02:00:00:00:0d:02");
    vtep_ok(
        &mut h.lab,
        h.id,
        &h.name,
        &fdb_cmd("add", first, ADDR_B, "100"),
    );
    assert_refused(
        &mut h,
        &fdb_cmd("add", second, ADDR_B, "100"),
        "is full (3 entries)",
    );
    // Replacing an entry in a full FDB needs no room.
    let replace = fdb_cmd("replace", first, "198.18.0.3", "100");
    vtep_ok(&mut h.lab, h.id, &h.name, &replace);

    // After a crash, `vtep down` also removes the info file the commands read.
    let info = format!("/run/vtep/{}.info.json", h.name);
    h.lab.vtep(h.id).kill();
    assert!(Path::new(&info).exists(), "{info} missing after a crash");
    let out = vtep(&mut h.lab, h.id, &h.name, &["down"]);
    assert!(out.status.success(), "vtep down: {}", text(&out.stderr));
    assert!(!Path::new(&info).exists(), "{info} left after vtep down");
}
