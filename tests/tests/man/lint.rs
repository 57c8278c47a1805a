//! The committed pages, as `install` copies them, through the tools that read them: mandoc's
//! linter, groff with every warning on, and man-db's `man -l`. `cargo xtask test` installs the
//! three (xtask/src/setup.rs).

use std::{path::PathBuf, process::Command};

use super::*;

/// The committed pages' paths.
fn pages() -> Vec<PathBuf> {
    let pages: Vec<PathBuf> = man::read_pages(&pages_dir())
        .unwrap()
        .keys()
        .map(|f| pages_dir().join(f))
        .collect();
    assert!(!pages.is_empty(), "no pages in {}", pages_dir().display());
    pages
}

/// Runs `program args`; returns its status, stdout and stderr. Panics, saying what installs it,
/// when it is not there.
fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running {program}: {e} (`cargo xtask test` installs it, see xtask/src/setup.rs)"
            )
        });
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// mandoc's linter down to its style messages (a misused macro, a section out of the usual
/// order, a missing date...): a page that passes reads alike in every man implementation.
#[test]
fn mandoc_lints_every_page_clean() {
    let mut problems = Vec::new();
    for page in pages() {
        let path = page.to_str().unwrap();
        let (ok, stdout, stderr) = run("mandoc", &["-T", "lint", "-W", "style", path], &[]);
        if !ok || !stdout.is_empty() || !stderr.is_empty() {
            problems.push(format!("{stdout}{stderr}"));
        }
    }
    assert!(
        problems.is_empty(),
        "mandoc -T lint:\n{}",
        problems.concat()
    );
}

/// groff, which man-db formats with on Debian, with every warning on (`-ww`).
#[test]
fn groff_formats_every_page_without_a_warning() {
    let mut problems = Vec::new();
    for page in pages() {
        let path = page.to_str().unwrap();
        let (ok, _, stderr) = run("groff", &["-man", "-ww", "-z", path], &[]);
        if !ok || !stderr.is_empty() {
            problems.push(format!("{path}: {stderr}"));
        }
    }
    assert!(
        problems.is_empty(),
        "groff -man -ww -z:\n{}",
        problems.concat()
    );
}

/// `man -l` shows what an operator looks for in vtep(8), and reads every page without a
/// complaint.
#[test]
fn man_shows_the_sections_of_every_page() {
    let env = [("MANWIDTH", "100"), ("MANPAGER", "cat"), ("PAGER", "cat")];
    for page in pages() {
        let path = page.to_str().unwrap();
        let (ok, text, stderr) = run("man", &["-l", path], &env);
        assert!(ok && stderr.is_empty(), "man -l {path}: {stderr}");
        let want: &[&str] = match page.file_name().unwrap().to_str().unwrap() {
            "vtep.8" => &[
                "NAME",
                "SYNOPSIS",
                "DESCRIPTION",
                "OPTIONS",
                "COMMANDS",
                "FILES",
                "ENVIRONMENT",
                "EXIT STATUS",
                "SIGNALS",
                "EXAMPLES",
                "SEE ALSO",
            ],
            "vtep.toml.5" => &["NAME", "DESCRIPTION", "EXAMPLES", "SEE ALSO"],
            _ => &["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SEE ALSO"],
        };
        for heading in want {
            assert!(
                text.lines().any(|l| l == *heading),
                "man -l {path} shows no {heading} section:\n{text}"
            );
        }
    }
}
