//! What the pages show of the command line comes from its doc comments: every command and
//! argument needs one, `-h` stays one short line, and a usage written by hand
//! (`override_usage`) names every option.

use super::*;

/// Each command with its subcommands, depth first.
fn commands() -> Vec<clap::Command> {
    fn walk(cmd: &clap::Command, out: &mut Vec<clap::Command>) {
        out.push(cmd.clone());
        for sub in cmd.get_subcommands() {
            walk(sub, out);
        }
    }
    let mut out = Vec::new();
    walk(&man::command(), &mut out);
    out
}

fn name(cmd: &clap::Command) -> String {
    cmd.get_bin_name().unwrap_or(cmd.get_name()).to_string()
}

/// The longest `-h` text: one line of an 100-column terminal beside its option.
const SHORT_HELP_MAX: usize = 150;

#[test]
fn every_command_and_argument_has_help() {
    for cmd in commands() {
        let about = cmd.get_about().map(ToString::to_string);
        assert!(about.is_some(), "`{}` has no doc comment", name(&cmd));
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            assert!(
                arg.get_help().is_some(),
                "`{}` {}: no doc comment",
                name(&cmd),
                arg.get_id()
            );
        }
    }
}

/// `-h` and the command lists show the first paragraph only: it stays a short line, and the
/// rest goes into the following paragraphs (`--help`, the pages).
#[test]
fn short_help_is_one_short_line() {
    for cmd in commands() {
        let about = cmd.get_about().map(ToString::to_string).unwrap_or_default();
        assert!(
            about.len() <= SHORT_HELP_MAX && !about.contains('\n'),
            "`{}`: the first paragraph of its doc comment is {} characters; make it a short \
             line and put the rest in a paragraph after it: {about}",
            name(&cmd),
            about.len()
        );
        for arg in cmd.get_arguments() {
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            assert!(
                help.len() <= SHORT_HELP_MAX && !help.contains('\n'),
                "`{}` {}: the first paragraph of its doc comment is {} characters; make it a \
                 short line and put the rest in a paragraph after it: {help}",
                name(&cmd),
                arg.get_id(),
                help.len()
            );
        }
    }
}

/// A usage written by hand does not follow the arguments: a new option must be added to it.
#[test]
fn a_usage_written_by_hand_names_every_option() {
    for cmd in commands() {
        let Some(usage) = cmd.get_overridden_usage().map(ToString::to_string) else {
            continue;
        };
        let words: Vec<&str> = usage
            .split(|c: char| c.is_whitespace() || matches!(c, '[' | ']' | '|' | '(' | ')'))
            .collect();
        for arg in cmd.get_arguments().filter(|a| {
            !a.is_positional() && !a.is_global_set() && !a.is_hide_set() && a.get_id() != "help"
        }) {
            let forms: Vec<String> = arg
                .get_short()
                .map(|s| format!("-{s}"))
                .into_iter()
                .chain(arg.get_long().map(|l| format!("--{l}")))
                .collect();
            assert!(
                forms.iter().any(|f| words.contains(&f.as_str())),
                "`{}`: its override_usage does not show {}: {usage}",
                name(&cmd),
                forms.join(" or ")
            );
        }
    }
}
