//! The manual pages (`dist/man`, written by `cargo xtask man`): the committed pages are what a
//! render gives now (`fresh`), vtep.toml(5) documents every key the config parser accepts
//! (`config_reference`), the command line has help for the pages to show (`help`), and every
//! page reads clean through mandoc, groff and man (`lint`).
//!
//! No root or network needed: `cargo test -p vtep-tests --test man`.

mod config_reference;
mod fresh;
mod help;
mod lint;

use std::{collections::BTreeMap, path::PathBuf};

use vtep_tests::man;

/// The committed pages' directory.
fn pages_dir() -> PathBuf {
    man::workspace_root().join(man::OUT_DIR)
}

/// The pages as a render gives them now, by file name (dated as the committed ones are, so
/// they compare).
fn rendered() -> BTreeMap<String, String> {
    let root = man::workspace_root();
    let committed = man::read_pages(&pages_dir()).unwrap();
    man::render(&root.join(man::TEMPLATE_DIR), &committed, &man::today())
        .unwrap()
        .into_iter()
        .map(|p| (p.file, p.text))
        .collect()
}
