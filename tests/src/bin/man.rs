//! `cargo xtask man`: writes the manual pages (`vtep(8)`, a page per subcommand, `vtep.toml(5)`)
//! to DIR (default: the workspace's `dist/man`), from the `vtep` command line and the templates
//! in `docs/man` (see `vtep_tests::man`). A page that did not change keeps its file and date.

use anyhow::Result;
use vtep_tests::man;

fn main() -> Result<()> {
    let root = man::workspace_root();
    let dir = match std::env::args_os().nth(1) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => root.join(man::OUT_DIR),
    };
    let pages = man::write(&root, &dir)?;
    let names: Vec<&str> = pages.iter().map(|p| p.file.as_str()).collect();
    println!("{}: {}", dir.display(), names.join(" "));
    Ok(())
}
