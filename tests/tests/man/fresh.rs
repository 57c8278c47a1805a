use super::*;

/// A change to the command line or a template without `cargo xtask man` leaves the installed
/// pages describing another vtep: CI fails until they are rendered again and committed.
#[test]
fn the_committed_pages_are_a_fresh_render() {
    let root = man::workspace_root();
    let stale = man::stale(&root, &pages_dir()).unwrap();
    assert!(
        stale.is_empty(),
        "{} differ from what the command line and docs/man make now: {}. Run `cargo xtask man` \
         and commit dist/man.",
        man::OUT_DIR,
        stale.join(", ")
    );
}

/// Every subcommand has its page, and `vtep(8)` points at each.
#[test]
fn every_subcommand_has_a_page_that_vtep_8_names() {
    let pages = rendered();
    let vtep8 = &pages["vtep.8"];
    for sub in man::command().get_subcommands() {
        let page = format!("vtep-{}.8", sub.get_name());
        assert!(pages.contains_key(&page), "no {page}");
        let reference = format!("vtep\\-{}(8)", sub.get_name().replace('-', "\\-"));
        assert!(
            vtep8.contains(&reference),
            "vtep(8) does not name {reference}"
        );
    }
}
