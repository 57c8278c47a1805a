//! The manual pages in `dist/man`: `vtep(8)`, a page per subcommand (`vtep-up(8)`,
//! `vtep-fdb(8)`, ... as git and iproute2 name theirs) and `vtep.toml(5)`.
//!
//! What the command line knows (names, synopses, options, their help) is rendered from the real
//! clap definition, [`vtep::cli::Cli`], with clap_mangen, so a flag cannot be added without
//! reaching its page. What it does not know lives in hand-written roff templates in
//! `docs/man/PAGE.in`: the whole page's order, with a line `@SECTION@` where a generated section
//! goes (see [`Section`]). Roff rather than sections built in Rust with the `roff` crate: pages of
//! prose read and diff as what they are, and `mandoc -T lint` points at the template's own lines.
//! A page without a template gets [`DEFAULT_TEMPLATE`].
//!
//! `cargo xtask man` writes the pages (`src/bin/man.rs`); the `man` tests check that the committed
//! ones are what a render gives now ([`stale`]), that vtep.toml(5) names every key the config
//! parser accepts ([`config_keys`]), and that every page lints clean.

pub mod config_keys;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail, ensure};
use clap::CommandFactory as _;
use clap_mangen::{
    Man,
    roff::{Roff, bold, italic, roman},
};

/// Where the pages are written, under the workspace root.
pub const OUT_DIR: &str = "dist/man";
/// Where their templates are, under the workspace root.
pub const TEMPLATE_DIR: &str = "docs/man";

/// The template of a subcommand page that has none in [`TEMPLATE_DIR`].
pub const DEFAULT_TEMPLATE: &str =
    "@NAME@\n@SYNOPSIS@\n@DESCRIPTION@\n@COMMANDS@\n@OPTIONS@\n@EXAMPLES@\n@SEE_ALSO@\n";

/// The config file reference has no command behind it: its template is the whole page.
const CONFIG_PAGE: &str = "vtep.toml.5";

/// The workspace root (this crate's parent directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is in the workspace")
        .to_path_buf()
}

/// One rendered page: its file name (`vtep-fdb.8`) and its roff source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub file: String,
    pub text: String,
}

/// The generated parts a template places by a line `@NAME@`, each a whole section with its
/// heading (or nothing, where the command has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    /// `NAME`: the page's name and the command's one-line about.
    Name,
    /// `SYNOPSIS`: the usage, one line per form; a command with subcommands lists theirs.
    Synopsis,
    /// `DESCRIPTION`: the command's long help.
    Description,
    /// `COMMANDS`: `vtep(8)` lists the subcommand pages; a page of a command with subcommands
    /// (`vtep fdb add`, `del`, ...) describes each in a subsection.
    Commands,
    /// `OPTIONS`: each option and its long help; on a page with subcommands, the ones they all
    /// take.
    Options,
    /// `EXAMPLES`, from the commands' `after_long_help` (what `--help` ends with).
    Examples,
    /// `SEE ALSO`: `vtep(8)` and `vtep.toml(5)`.
    SeeAlso,
    /// `COUNTERS`: the per-VNI counters of `vtep stats`, from their definition.
    Counters,
    /// `DROP REASONS`: every reason the datapath counts drops under, from their definition.
    DropReasons,
}

impl Section {
    fn parse(line: &str) -> Option<Result<Self>> {
        let name = line.trim_end().strip_prefix('@')?.strip_suffix('@')?;
        Some(Ok(match name {
            "NAME" => Self::Name,
            "SYNOPSIS" => Self::Synopsis,
            "DESCRIPTION" => Self::Description,
            "COMMANDS" => Self::Commands,
            "OPTIONS" => Self::Options,
            "EXAMPLES" => Self::Examples,
            "SEE_ALSO" => Self::SeeAlso,
            "COUNTERS" => Self::Counters,
            "DROP_REASONS" => Self::DropReasons,
            other => return Some(Err(anyhow::anyhow!("unknown generated section @{other}@"))),
        }))
    }
}

/// The `vtep` command as the pages show it: without clap's `help` subcommands (`vtep help fdb`
/// is `vtep fdb --help`, which every page describes), built, so every subcommand knows its
/// full name (`vtep fdb add`).
pub fn command() -> clap::Command {
    fn without_help_subcommand(cmd: clap::Command) -> clap::Command {
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .collect();
        let mut cmd = cmd.disable_help_subcommand(true);
        for name in names {
            cmd = cmd.mut_subcommand(name, without_help_subcommand);
        }
        cmd
    }
    let mut cmd =
        without_help_subcommand(vtep::cli::Cli::command()).subcommand_help_heading("COMMANDS");
    cmd.build();
    cmd
}

/// Renders every page from `templates` (the [`TEMPLATE_DIR`]). A page whose text is what
/// `previous` holds under its name, but for the date, keeps that date (a man page's date is that
/// of its last change); the others are dated `today`. Fails on a template that is missing,
/// names an unknown section, or belongs to no page.
pub fn render(
    templates: &Path,
    previous: &BTreeMap<String, String>,
    today: &str,
) -> Result<Vec<Page>> {
    let root = command();
    let mut pages = vec![(String::from("vtep.8"), Some(root.clone()))];
    for sub in root.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages.push((format!("vtep-{}.8", sub.get_name()), Some(sub.clone())));
    }
    pages.push((CONFIG_PAGE.to_string(), None));

    let mut found = read_templates(templates)?;
    let mut out = Vec::new();
    for (file, cmd) in pages {
        let template = match (found.remove(&file), &cmd) {
            (Some(t), _) => t,
            (None, Some(c)) if c.get_name() != root.get_name() => DEFAULT_TEMPLATE.to_string(),
            (None, _) => bail!("{}: the template of {file} is missing", templates.display()),
        };
        let body = fill(&file, &template, cmd.as_ref())
            .with_context(|| format!("{}/{file}.in", templates.display()))?;
        let text = dated(&wrap(&body), previous.get(&file), today);
        out.push(Page { file, text });
    }
    if let Some(orphan) = found.keys().next() {
        bail!(
            "{}/{orphan}.in is the template of no page (a subcommand renamed or removed?)",
            templates.display()
        );
    }
    Ok(out)
}

/// The templates in `dir`, by the name of the page they make (`vtep.8.in` → `vtep.8`).
fn read_templates(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let Some(page) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".in"))
        else {
            continue;
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        found.insert(page.to_string(), text);
    }
    Ok(found)
}

/// The page `file` from `template`, generated sections filled in from `cmd`, headed by its
/// title line with the date left as [`UNDATED`].
fn fill(file: &str, template: &str, cmd: Option<&clap::Command>) -> Result<String> {
    let (stem, manual) = file.rsplit_once('.').expect("pages are NAME.SECTION");
    let version = env!("CARGO_PKG_VERSION");
    let mut out = format!(
        ".\\\" Generated by `cargo xtask man` from vtep's command line (vtep-user/src/cli) and\n\
         .\\\" {TEMPLATE_DIR}/{file}.in: edit those, not this file.\n\
         {APOSTROPHE_PREAMBLE}\
         .TH {} {manual} {UNDATED} \"vtep {version}\"\n\
         .\\\" Ragged right, no hyphens: option names and addresses stay whole.\n\
         .ad l\n\
         .nh\n",
        stem.to_uppercase()
    );
    for line in template.lines() {
        match Section::parse(line) {
            None => {
                out += line;
                out.push('\n');
            }
            Some(section) => {
                let section = section?;
                let Some(cmd) = cmd else {
                    bail!("{line}: this page has no command to generate it from");
                };
                out += &generate(section, cmd, manual, file == "vtep.8");
            }
        }
    }
    Ok(out)
}

/// What clap_mangen's roff starts every piece with (a portable apostrophe); the page has it once,
/// at its top.
const APOSTROPHE_PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// The date field of a page before [`dated`] sets it.
const UNDATED: &str = "DATE";

/// `roff`, rendered, without the preamble: a piece of a page.
fn piece(roff: &Roff) -> String {
    let text = roff.render();
    text.strip_prefix(APOSTROPHE_PREAMBLE)
        .unwrap_or(&text)
        .to_string()
}

/// What clap_mangen's `render` writes, without the preamble.
fn man_piece(render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut buf = Vec::new();
    render(&mut buf).expect("writing to a Vec");
    let text = String::from_utf8(buf).expect("clap_mangen writes UTF-8");
    text.strip_prefix(APOSTROPHE_PREAMBLE)
        .unwrap_or(&text)
        .to_string()
}

/// A section clap_mangen renders, without its `.SH` line: to place it under another heading.
fn body_of(section: String) -> String {
    match section.split_once('\n') {
        Some((first, rest)) if first.starts_with(".SH") => rest.to_string(),
        _ => section,
    }
}

/// Generated `section` of the page of `cmd`, in manual section `manual`. `is_root`: the page of
/// `vtep` itself, whose subcommands have pages of their own.
fn generate(section: Section, cmd: &clap::Command, manual: &str, is_root: bool) -> String {
    let text = generate_raw(section, cmd, manual, is_root);
    match section {
        // A page's name line is plain text (whatis and apropos read it).
        Section::Name => text.replace('`', ""),
        _ => code_spans(&text),
    }
}

/// `text` with the code spans of clap's help (`vtep up`, in backticks, which read well in a
/// terminal) in bold, as man pages show commands; on text lines only.
fn code_spans(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let ticks = line.matches('`').count();
        if line.starts_with('.') || ticks == 0 || ticks % 2 == 1 {
            out += line;
        } else {
            for (i, part) in line.split('`').enumerate() {
                if i > 0 {
                    out += if i % 2 == 1 { "\\fB" } else { "\\fR" };
                }
                out += part;
            }
        }
        out.push('\n');
    }
    out
}

/// [`generate`] before the code spans are set.
fn generate_raw(section: Section, cmd: &clap::Command, manual: &str, is_root: bool) -> String {
    let subs: Vec<&clap::Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    let man = || Man::new(cmd.clone()).section(manual);
    match section {
        Section::Name => man_piece(|w| man().render_name_section(w)),
        Section::Synopsis if subs.is_empty() || is_root => {
            format!(".SH SYNOPSIS\n{}", synopsis(cmd, is_root))
        }
        Section::Synopsis => {
            let forms: Vec<String> = subs.iter().map(|s| synopsis(s, false)).collect();
            format!(".SH SYNOPSIS\n{}", forms.join(".br\n"))
        }
        Section::Description => man_piece(|w| man().render_description_section(w)),
        Section::Commands if subs.is_empty() => String::new(),
        Section::Commands if is_root => man_piece(|w| man().render_subcommands_section(w)),
        Section::Commands => {
            let shared = shared_args(&subs);
            let mut out = String::from(".SH COMMANDS\n");
            for sub in &subs {
                out += &subcommand(sub, &shared);
            }
            out
        }
        Section::Options if subs.is_empty() || is_root => {
            man_piece(|w| man().render_options_section(w))
        }
        Section::Options => {
            // What the subcommands share, once: ARGUMENTS, then OPTIONS (as `--help` orders
            // them).
            let shared = shared_args(&subs);
            let mut out = String::new();
            let mut shown: Vec<String> = Vec::new();
            for sub in &subs {
                for arg in sub.get_arguments().filter(|a| a.is_positional()) {
                    let id = arg.get_id().to_string();
                    if !shared.contains(&id) || shown.contains(&id) {
                        continue;
                    }
                    if shown.is_empty() {
                        out += ".SH ARGUMENTS\n";
                    }
                    out += &body_of(man_piece(|w| {
                        Man::new(only(sub, std::slice::from_ref(&id))).render_options_section(w)
                    }));
                    shown.push(id);
                }
            }
            let options: Vec<String> = shared
                .iter()
                .filter(|id| !shown.contains(id))
                .cloned()
                .collect();
            out += &man_piece(|w| Man::new(only(subs[0], &options)).render_options_section(w));
            out
        }
        Section::Examples => examples(cmd, &subs),
        Section::SeeAlso => {
            let mut roff = Roff::new();
            roff.control("SH", ["SEE ALSO"]);
            roff.text([
                bold("vtep"),
                roman("(8), "),
                bold("vtep.toml"),
                roman("(5)"),
            ]);
            piece(&roff)
        }
        Section::Counters => counters(),
        Section::DropReasons => drop_reasons(),
    }
}

/// The SYNOPSIS lines of `cmd`: its `override_usage` as clap_mangen renders it (one line per
/// form), or its arguments as `vtep up -c FILE [--keep]` shows them. Not clap_mangen's for the
/// latter: it leaves out what an option takes (`[-c|--config]`). Global options (`--netns`) are
/// shown on `vtep(8)` only (`with_globals`), as `--help` and `-V` are nowhere.
fn synopsis(cmd: &clap::Command, with_globals: bool) -> String {
    if cmd.get_overridden_usage().is_some() {
        return body_of(man_piece(|w| {
            Man::new(cmd.clone()).render_synopsis_section(w)
        }));
    }
    let shown = |a: &&clap::Arg| {
        !a.is_hide_set()
            && (with_globals || !a.is_global_set())
            && !matches!(
                a.get_action(),
                clap::ArgAction::Help
                    | clap::ArgAction::HelpShort
                    | clap::ArgAction::HelpLong
                    | clap::ArgAction::Version
            )
    };
    let mut line = vec![bold(cmd.get_bin_name().unwrap_or(cmd.get_name()))];
    let mut done: Vec<&clap::Id> = Vec::new();
    for arg in cmd.get_arguments().filter(shown) {
        if done.contains(&arg.get_id()) {
            continue;
        }
        // Options that exclude each other, both optional, are one choice: `[-c FILE | -n NAME]`.
        let mut choice = vec![arg];
        if !arg.is_required_set() {
            choice.extend(
                cmd.get_arg_conflicts_with(arg)
                    .into_iter()
                    .filter(|c| shown(c) && !c.is_required_set() && !done.contains(&c.get_id())),
            );
        }
        line.push(roman(if arg.is_required_set() { " " } else { " [" }));
        for (i, a) in choice.iter().enumerate() {
            if i > 0 {
                line.push(roman(" | "));
            }
            line.extend(arg_form(a));
            done.push(a.get_id());
        }
        if !arg.is_required_set() {
            line.push(roman("]"));
        }
    }
    if cmd.has_subcommands() {
        line.push(roman(" "));
        line.push(italic("COMMAND"));
        line.push(roman(" ..."));
    }
    let mut roff = Roff::new();
    roff.text(line);
    piece(&roff)
}

/// How an argument is written on a command line: `-c FILE`, `--keep`, `MAC`.
fn arg_form(arg: &clap::Arg) -> Vec<clap_mangen::roff::Inline> {
    let names = arg
        .get_value_names()
        .map(|n| n.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
    let range = arg.get_num_args().expect("built");
    let more = if range.max_values() > 1 { "..." } else { "" };
    if arg.is_positional() {
        return vec![italic(format!("{names}{more}"))];
    }
    let flag = match (arg.get_short(), arg.get_long()) {
        (Some(short), _) => format!("-{short}"),
        (None, Some(long)) => format!("--{long}"),
        (None, None) => String::new(),
    };
    let mut form = vec![bold(flag)];
    if range.takes_values() {
        form.push(roman(" "));
        form.push(italic(format!("{names}{more}")));
    }
    form
}

/// The ids of the arguments a page of subcommands shows once rather than under each: the
/// options every subcommand takes (`-c`, `-n`, `--netns`, `-h`), and the positionals two or
/// more take with the same help (`MAC`).
fn shared_args(subs: &[&clap::Command]) -> Vec<String> {
    let visible = |c: &clap::Command| -> Vec<(String, bool, String)> {
        c.get_arguments()
            .filter(|a| !a.is_hide_set())
            .map(|a| {
                let help = a.get_long_help().or(a.get_help()).map(ToString::to_string);
                (
                    a.get_id().to_string(),
                    a.is_positional(),
                    help.unwrap_or_default(),
                )
            })
            .collect()
    };
    let all: Vec<Vec<(String, bool, String)>> = subs.iter().map(|s| visible(s)).collect();
    let mut shared: Vec<String> = Vec::new();
    for (id, positional, help) in all.iter().flatten() {
        let alike = all
            .iter()
            .filter(|args| args.iter().any(|(i, _, h)| i == id && h == help))
            .count();
        let is_shared = if *positional {
            alike >= 2
        } else {
            alike == subs.len()
        };
        if is_shared && !shared.contains(id) {
            shared.push(id.clone());
        }
    }
    shared
}

/// `cmd` with only the arguments in `keep` shown.
fn only(cmd: &clap::Command, keep: &[String]) -> clap::Command {
    let hide: Vec<String> = cmd
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .filter(|id| !keep.contains(id))
        .collect();
    let mut cmd = cmd.clone();
    for id in hide {
        cmd = cmd.mut_arg(id, |a| a.hide(true));
    }
    cmd
}

/// The subsection of one subcommand on its parent's page: its usage, its long help, then the
/// arguments only it takes (those in `shared` are in the page's ARGUMENTS and OPTIONS).
fn subcommand(sub: &clap::Command, shared: &[String]) -> String {
    let name = sub.get_bin_name().unwrap_or(sub.get_name());
    let aliases: Vec<&str> = sub.get_all_aliases().collect();
    let mut heading = Roff::new();
    if aliases.is_empty() {
        heading.control("SS", [name]);
    } else {
        let title = format!("{name} (also: {})", aliases.join(", "));
        heading.control("SS", [title.as_str()]);
    }
    let own: Vec<String> = sub
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .filter(|id| !shared.contains(id))
        .collect();
    let description = body_of(man_piece(|w| {
        Man::new(sub.clone()).render_description_section(w)
    }));
    let arguments = body_of(man_piece(|w| {
        Man::new(only(sub, &own)).render_options_section(w)
    }));
    format!(
        "{}{}.PP\n{description}{arguments}",
        piece(&heading),
        synopsis(sub, false)
    )
}

/// `EXAMPLES` from the `after_long_help` of `cmd` and of each of `subs`: an `Examples:` line,
/// then paragraphs; an indented paragraph is a command line, shown as typed.
fn examples(cmd: &clap::Command, subs: &[&clap::Command]) -> String {
    let texts: Vec<String> = std::iter::once(cmd)
        .chain(subs.iter().copied())
        .filter_map(|c| c.get_after_long_help().map(ToString::to_string))
        .collect();
    if texts.is_empty() {
        return String::new();
    }
    let mut roff = Roff::new();
    roff.control("SH", ["EXAMPLES"]);
    // A paragraph macro right after a heading is one too many (mandoc warns).
    let mut first = true;
    let mut paragraph = |roff: &mut Roff| {
        if !std::mem::take(&mut first) {
            roff.control("PP", []);
        }
    };
    for text in texts {
        let text = text
            .trim_start()
            .strip_prefix("Examples:")
            .unwrap_or(&text)
            .to_string();
        for block in text.split("\n\n").map(|b| b.trim_matches('\n')) {
            if block.trim().is_empty() {
                continue;
            }
            paragraph(&mut roff);
            if block.lines().all(|l| l.starts_with("  ")) {
                roff.control("RS", ["4"]).control("nf", []);
                for line in block.lines() {
                    roff.text([roman(line.trim_start_matches("  "))]);
                }
                roff.control("fi", []).control("RE", []);
            } else {
                let joined: Vec<&str> = block.lines().map(str::trim).collect();
                roff.text([roman(joined.join(" "))]);
            }
        }
    }
    piece(&roff)
}

/// `COUNTERS`: `vtep stats`'s per-VNI columns (`vtep stats -j`'s keys), each with what it
/// counts.
fn counters() -> String {
    let mut roff = Roff::new();
    roff.control("SH", ["COUNTERS"]);
    roff.control("TP", []).text([bold("vni")]);
    roff.text([roman("The VNI the row is about.")]);
    for c in vtep_common::maps::VniStats::COUNTERS {
        roff.control("TP", []).text([bold(c.name)]);
        roff.text([roman(c.help.trim())]);
    }
    roff.control("TP", []).text([bold("learned")]);
    roff.text([roman(
        "FDB entries learned in this VNI, as of the last ageing sweep plus what was learned \
         since (capped by the VNI's maxaddress).",
    )]);
    roff.control("TP", []).text([bold("drops")]);
    roff.text([roman(
        "Packets of this VNI dropped, every reason together (-j: drops_by_reason, the reasons \
         that dropped some): what was dropped once the VNI was known, from the port a frame \
         came in on or a VXLAN header of a served VNI. Drops before that (unknown_vni, \
         malformed headers, unknown_port) are in no VNI's.",
    )]);
    piece(&roff)
}

/// `DROP REASONS`: every reason `vtep stats` counts drops under, with when the datapath drops
/// for it.
fn drop_reasons() -> String {
    let mut roff = Roff::new();
    roff.control("SH", ["DROP REASONS"]);
    for reason in vtep_common::drop::DropReason::ALL {
        roff.control("TP", []).text([bold(reason.name())]);
        roff.text([roman(reason.help().trim())]);
    }
    piece(&roff)
}

/// The longest source line mandoc's style check lets by.
const LINE_MAX: usize = 80;

/// `page` with its text lines longer than [`LINE_MAX`] broken at spaces. clap's help is a line
/// per paragraph; roff fills the pieces back into the same paragraph, and the source stays
/// readable and its diffs small. Left as they are: control lines, lines in `.nf` blocks (shown
/// as written) and the tag line after `.TP` (one line by definition).
fn wrap(page: &str) -> String {
    let mut out = String::new();
    let mut no_fill = false;
    let mut tag = false;
    for line in page.lines() {
        let is_control = line.starts_with('.') || line.starts_with('\'');
        let keep = is_control || no_fill || tag || line.len() <= LINE_MAX;
        if is_control {
            no_fill = (no_fill || line.starts_with(".nf")) && !line.starts_with(".fi");
        }
        tag = line.starts_with(".TP");
        if keep {
            out += line;
            out.push('\n');
            continue;
        }
        let mut current = String::new();
        for word in line.split(' ') {
            if !current.is_empty() && current.len() + 1 + word.len() > LINE_MAX {
                out += &current;
                out.push('\n');
                current.clear();
            }
            if current.is_empty() {
                // A text line must not start like a control line.
                if word.starts_with('.') || word.starts_with('\'') {
                    current.push_str("\\&");
                }
            } else {
                current.push(' ');
            }
            current.push_str(word);
        }
        out += &current;
        out.push('\n');
    }
    out
}

/// `body` (an [`UNDATED`] page) with its date: `previous`'s when `previous` is the same page
/// but for the date, else `today`.
fn dated(body: &str, previous: Option<&String>, today: &str) -> String {
    let date = previous
        .and_then(|p| {
            let date = date_of(p)?;
            (p.replacen(&title_date(date), &title_date(UNDATED), 1) == body).then_some(date)
        })
        .unwrap_or(today);
    body.replacen(&title_date(UNDATED), &title_date(date), 1)
}

/// How the title line holds `date`: between the section and the source.
fn title_date(date: &str) -> String {
    format!(" {date} \"vtep ")
}

/// The date on the title line of `page`.
fn date_of(page: &str) -> Option<&str> {
    let line = page.lines().find(|l| l.starts_with(".TH "))?;
    line.split(' ').nth(3)
}

/// Today's date in UTC, as a man page's title line gives it (`2026-12-07`).
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The pages in `dir` (`*.5`, `*.8`), by file name; none when `dir` does not exist (the first
/// render). Fails when a page cannot be read.
pub fn read_pages(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut pages = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(pages);
    };
    for entry in entries {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(".5") || name.ends_with(".8") {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            pages.insert(name.to_string(), text);
        }
    }
    Ok(pages)
}

/// Renders the pages into `dir`, keeping the dates of pages that did not change, and removes
/// pages there that are no longer made. Returns the pages. Fails when rendering fails (see
/// [`render`]) or a page cannot be written or removed.
pub fn write(root: &Path, dir: &Path) -> Result<Vec<Page>> {
    let previous = read_pages(dir)?;
    let pages = render(&root.join(TEMPLATE_DIR), &previous, &today())?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for page in &pages {
        let path = dir.join(&page.file);
        if previous.get(&page.file) != Some(&page.text) {
            std::fs::write(&path, &page.text)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    for old in previous.keys() {
        if !pages.iter().any(|p| &p.file == old) {
            let path = dir.join(old);
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(pages)
}

/// What differs between the pages in `dir` and a render now: the names of pages that are
/// stale, missing or no longer made. Empty when they are what `cargo xtask man` would write.
/// Fails when rendering fails (see [`render`]).
pub fn stale(root: &Path, dir: &Path) -> Result<Vec<String>> {
    let committed = read_pages(dir)?;
    let pages = render(&root.join(TEMPLATE_DIR), &committed, &today())?;
    ensure!(!pages.is_empty(), "no pages rendered");
    let mut differ: Vec<String> = pages
        .iter()
        .filter(|p| committed.get(&p.file) != Some(&p.text))
        .map(|p| p.file.clone())
        .collect();
    differ.extend(
        committed
            .keys()
            .filter(|f| !pages.iter().any(|p| &&p.file == f))
            .cloned(),
    );
    Ok(differ)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long text lines are broken at spaces, never into a control line, and nothing else is
    /// touched.
    #[test]
    fn long_text_lines_are_broken_at_spaces() {
        let words = "word ".repeat(16);
        let long = format!("{} .dot", words.trim_end());
        let page = format!(".TP\n{long}\n{long}\n.nf\n{long}\n.fi\nshort\n");
        let want = format!(
            ".TP\n{long}\n{}\n\\&.dot\n.nf\n{long}\n.fi\nshort\n",
            words.trim_end()
        );
        assert_eq!(wrap(&page), want);
    }

    #[test]
    fn dates_are_gregorian() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_429), (2025, 12, 7));
    }

    /// A page keeps its date while only the date would change, and takes today's otherwise.
    #[test]
    fn a_page_keeps_its_date_until_it_changes() {
        let body = format!(".TH VTEP 8 {UNDATED} \"vtep 1\"\ntext\n");
        let old = ".TH VTEP 8 2020-01-01 \"vtep 1\"\ntext\n".to_string();
        assert_eq!(dated(&body, Some(&old), "2030-01-01"), old, "unchanged");
        let changed = format!(".TH VTEP 8 {UNDATED} \"vtep 1\"\nother\n");
        assert_eq!(
            dated(&changed, Some(&old), "2030-01-01"),
            ".TH VTEP 8 2030-01-01 \"vtep 1\"\nother\n"
        );
        assert!(dated(&body, None, "2030-01-01").contains(" 2030-01-01 "));
    }
}
