//! vtep.toml(5) against the config parser: every key it accepts is documented, with the type it
//! takes, and nothing else is. The keys come from the parser's own structs
//! ([`man::config_keys`]), so a key added to the code without a line in
//! docs/man/vtep.toml.5.in fails here.
//!
//! The page's layout is the contract: each table is a subsection headed by its TOML header
//! (`.SS "[underlay]"`, `.SS "[[vni]]"`), the top-level keys one headed "Top-level keys", and
//! each key a tagged paragraph whose tag starts with the key in bold and its type in italics
//! (`\fBttl\fR (\fIinteger\fR, default 64)`).

use std::collections::BTreeMap;

use man::config_keys::{self, Kind};

use super::*;

/// A key as the page documents it: its dotted path, and the type it names (`integer`, or
/// `table` / `array of tables` for a subsection's header).
fn documented(page: &str) -> BTreeMap<String, String> {
    let mut keys = BTreeMap::new();
    let mut table: Option<String> = None;
    let mut lines = page.lines();
    while let Some(line) = lines.next() {
        if line.starts_with(".SH") {
            table = None;
        } else if let Some(title) = line.strip_prefix(".SS ") {
            let title = title.trim().trim_matches('"');
            table = if title.eq_ignore_ascii_case("top-level keys") {
                Some(String::new())
            } else if let Some(name) = title.strip_prefix("[[").and_then(|t| t.strip_suffix("]]")) {
                keys.insert(name.to_string(), "array of tables".to_string());
                Some(name.to_string())
            } else if let Some(name) = title.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
                keys.insert(name.to_string(), "table".to_string());
                Some(name.to_string())
            } else {
                None
            };
        } else if line == ".TP"
            && let Some(table) = &table
        {
            let tag = lines.next().unwrap_or_default();
            let Some(key) = between(tag, "\\fB", "\\fR") else {
                continue;
            };
            let kind = between(tag, "\\fI", "\\fR").unwrap_or_default();
            let path = if table.is_empty() {
                key.to_string()
            } else {
                format!("{table}.{key}")
            };
            let previous = keys.insert(path.clone(), kind.to_string());
            assert!(previous.is_none(), "vtep.toml(5) documents {path} twice");
        }
    }
    keys
}

/// The text between the first `open` and the `close` after it.
fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let rest = &s[s.find(open)? + open.len()..];
    Some(&rest[..rest.find(close)?])
}

#[test]
fn vtep_toml_5_documents_every_key_the_parser_accepts() {
    let page = &rendered()["vtep.toml.5"];
    let documented = documented(page);
    let accepted = config_keys::keys();
    assert!(accepted.len() > 40, "the walk found only {accepted:?}");
    let missing: Vec<&String> = accepted
        .keys()
        .filter(|k| !documented.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "vtep.toml(5) does not document {missing:?}: add each to docs/man/vtep.toml.5.in (type, \
         default, meaning) and run `cargo xtask man`"
    );
    let unknown: Vec<&String> = documented
        .keys()
        .filter(|k| !accepted.contains_key(*k))
        .collect();
    assert!(
        unknown.is_empty(),
        "vtep.toml(5) documents {unknown:?}, which the parser does not accept"
    );
    for (key, kind) in &accepted {
        let says = &documented[key];
        assert!(
            *kind == Kind::Any || says.starts_with(kind.word()),
            "vtep.toml(5) says {key} is `{says}`; the parser takes {}",
            kind.word()
        );
    }
}

/// The page's parser, on the forms the page uses.
#[test]
fn the_page_layout_is_read_as_documented() {
    let page = ".SH FILES\n.TP\n\\fBnot_a_key\\fR\n.SH KEYS\n.SS \"Top-level keys\"\n.TP\n\
                \\fBname\\fR (\\fIstring\\fR, default \"vtep\")\n.SS \"[[vni]]\"\n.TP\n\
                \\fBid\\fR (\\fIinteger\\fR, required)\n.SS \"[vni.host]\"\n.TP\n\
                \\fBmac\\fR (\\fIstring\\fR)\n";
    let keys = documented(page);
    let want: BTreeMap<String, String> = [
        ("name", "string"),
        ("vni", "array of tables"),
        ("vni.id", "integer"),
        ("vni.host", "table"),
        ("vni.host.mac", "string"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(keys, want);
}
