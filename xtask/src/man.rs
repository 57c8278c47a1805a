//! `cargo xtask man [--install [PREFIX]]`: the manual pages. The tests crate renders them
//! (`tests/src/bin/man.rs`), not xtask: the renderer needs the `vtep` command line, whose crate
//! builds the eBPF datapath, and xtask must build before the toolchain for that is installed.

use std::{os::unix::fs::PermissionsExt as _, path::Path};

use anyhow::{Context as _, Result};

use crate::{cmd, setup};

/// Where the pages are, under the workspace root.
const PAGES: &str = "dist/man";

/// Renders the pages into dist/man (a page that did not change keeps its file and date), then,
/// with `install`, copies them to `install`/man5 and `install`/man8. Fails when the build, the
/// render or a copy fails.
pub fn run(install: Option<&Path>) -> Result<()> {
    // vtep-user's build script compiles the datapath, so the renderer needs the toolchain too.
    setup::ensure()?;
    cmd::cargo(&[
        "run",
        "--quiet",
        "-p",
        "vtep-tests",
        "--bin",
        "man",
        "--",
        PAGES,
    ])?;
    match install {
        Some(prefix) => copy_pages(&cmd::workspace_root().join(PAGES), prefix),
        None => Ok(()),
    }
}

/// Copies every page in `dir` (`NAME.5`, `NAME.8`) to `prefix/manSECTION/`, mode 0644, as
/// `install -m 0644` would.
fn copy_pages(dir: &Path, prefix: &Path) -> Result<()> {
    let mut copied = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let Some(section) = path.extension().and_then(|e| e.to_str()) else {
            continue;
        };
        if !matches!(section, "5" | "8") {
            continue;
        }
        let to_dir = prefix.join(format!("man{section}"));
        std::fs::create_dir_all(&to_dir)
            .with_context(|| format!("creating {}", to_dir.display()))?;
        let to = to_dir.join(path.file_name().expect("a file"));
        std::fs::copy(&path, &to)
            .with_context(|| format!("copying {} to {}", path.display(), to.display()))?;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("setting the mode of {}", to.display()))?;
        copied += 1;
    }
    println!(
        "installed {copied} pages under {}: `man vtep` reads them when that is in `manpath`",
        prefix.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages land in the directory of their section, readable by everyone; other files stay.
    #[test]
    fn pages_are_installed_by_section_with_mode_0644() {
        let tmp = std::env::temp_dir().join(format!("xtask-man-{}", std::process::id()));
        let from = tmp.join("from");
        std::fs::create_dir_all(&from).unwrap();
        for (file, text) in [("vtep.8", "a"), ("vtep.toml.5", "b"), ("README", "c")] {
            std::fs::write(from.join(file), text).unwrap();
        }
        std::fs::set_permissions(from.join("vtep.8"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        let prefix = tmp.join("share/man");
        copy_pages(&from, &prefix).unwrap();
        assert_eq!(
            std::fs::read_to_string(prefix.join("man8/vtep.8")).unwrap(),
            "a"
        );
        assert_eq!(
            std::fs::read_to_string(prefix.join("man5/vtep.toml.5")).unwrap(),
            "b"
        );
        let mode = std::fs::metadata(prefix.join("man8/vtep.8"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        assert!(!prefix.join("manREADME").exists());
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
