//! Reading what `vtep` prints: its JSON (`-j`) output and its text.

use serde_json::Value;

/// `bytes` as text (invalid UTF-8 replaced).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Counter `key` of VNI `vni` in `vtep stats -j` output `stats`; panics, showing the stats,
/// when either is missing.
pub fn vni_stat(stats: &Value, vni: u32, key: &str) -> u64 {
    stats["vnis"]
        .as_array()
        .expect("stats.vnis")
        .iter()
        .find(|v| v["vni"] == vni)
        .unwrap_or_else(|| panic!("VNI {vni} missing from stats: {stats}"))[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing from stats: {stats}"))
}

/// The row of `mac` in VNI `vni` of `vtep fdb show -j` rows `rows`, if any.
pub fn fdb_row<'a>(rows: &'a [Value], mac: &str, vni: u32) -> Option<&'a Value> {
    rows.iter().find(|r| r["mac"] == mac && r["vni"] == vni)
}
