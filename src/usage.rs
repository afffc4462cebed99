//! Usage lines and argument errors, rendered from the clap definition in `cli.rs`.
//!
//! clap's own usage line names only the required arguments (`verify` looked as if it
//! needed `-i`, never `--passphrase`), its man page synopsis drops option values
//! (`[--max-age]`), and its errors are multi-line blocks. forgekeep promises one error
//! line with a hint, so both the man pages' SYNOPSIS and the usage in the hint of an
//! argument error are made here, from the same walk over the definition: a flag added in
//! `cli.rs` shows up in both, and they cannot disagree.

use crate::error::Error;
use clap::{ArgAction, Command};
use std::ffi::OsString;

/// How a piece of a synopsis is set in a man page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Bold,
    Italic,
    Roman,
}

/// A usage line as styled pieces, rendered as plain text or as roff.
#[derive(Debug, Default)]
pub struct Synopsis(Vec<(Style, String)>);

impl Synopsis {
    fn push(&mut self, style: Style, text: impl Into<String>) {
        self.0.push((style, text.into()));
    }

    pub fn plain(&self) -> String {
        self.0.iter().map(|(_, t)| t.as_str()).collect()
    }

    /// The line for a man page (`\fB...\fR` bold, `\fI...\fR` italic, `-` escaped).
    pub fn roff(&self) -> String {
        let escape = |t: &str| t.replace('\\', "\\e").replace('-', "\\-");
        self.0
            .iter()
            .map(|(style, t)| match style {
                Style::Bold => format!("\\fB{}\\fR", escape(t)),
                Style::Italic => format!("\\fI{}\\fR", escape(t)),
                Style::Roman => escape(t),
            })
            .collect()
    }
}

/// The usage of `cmd` (built, so that global flags are in it): its name, then every
/// argument in the order `cli.rs` defines them. A required one-of group is set as
/// `(A | B)` where its first member stands. `full` lists every option with its value
/// (a man page's SYNOPSIS); otherwise the optional ones are summed up as `[OPTIONS]`
/// (the usage in an error's hint).
pub fn synopsis(cmd: &Command, full: bool) -> Synopsis {
    let mut s = Synopsis::default();
    s.push(Style::Bold, cmd.get_bin_name().unwrap_or(cmd.get_name()));
    let mut done_groups: Vec<&str> = Vec::new();
    let mut optional_options = false;
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if arg.is_hide_set() || id == "help" || id == "version" {
            continue;
        }
        if let Some(group) = required_group_of(cmd, id) {
            if done_groups.contains(&group.get_id().as_str()) {
                continue;
            }
            done_groups.push(group.get_id().as_str());
            s.push(Style::Roman, " (");
            for (i, member) in group.get_args().enumerate() {
                if i > 0 {
                    s.push(Style::Roman, " | ");
                }
                if let Some(a) = cmd.get_arguments().find(|a| a.get_id() == member) {
                    bare(&mut s, a);
                }
            }
            s.push(Style::Roman, ")");
            continue;
        }
        let required = arg.is_required_set();
        if !full && !required && !arg.is_positional() {
            optional_options = true;
            continue;
        }
        s.push(Style::Roman, if required { " " } else { " [" });
        bare(&mut s, arg);
        if !required {
            s.push(Style::Roman, "]");
        }
        if repeats(arg) {
            s.push(Style::Roman, "...");
        }
    }
    if optional_options {
        s.push(Style::Roman, " [OPTIONS]");
    }
    if cmd.has_subcommands() {
        s.push(Style::Roman, " ");
        s.push(Style::Italic, "COMMAND");
        s.push(Style::Roman, " [");
        s.push(Style::Italic, "ARGS");
        s.push(Style::Roman, "]");
    }
    s
}

/// The required group (one of several arguments) `id` belongs to, if any.
fn required_group_of<'a>(cmd: &'a Command, id: &str) -> Option<&'a clap::ArgGroup> {
    cmd.get_groups()
        .find(|g| g.is_required_set() && g.get_args().any(|a| a.as_str() == id))
}

/// `-i|--identity IDENTITY`, `--json`, `PATH` (no brackets, no repetition mark).
fn bare(s: &mut Synopsis, arg: &clap::Arg) {
    let value = arg
        .get_value_names()
        .map(|v| v.join(" "))
        .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
    if arg.is_positional() {
        s.push(Style::Italic, value);
        return;
    }
    let flag = match (arg.get_short(), arg.get_long()) {
        (Some(c), Some(l)) => format!("-{c}|--{l}"),
        (Some(c), None) => format!("-{c}"),
        (None, Some(l)) => format!("--{l}"),
        (None, None) => return,
    };
    s.push(Style::Bold, flag);
    if arg.get_action().takes_values() {
        s.push(Style::Roman, " ");
        s.push(Style::Italic, value);
    }
}

fn repeats(arg: &clap::Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append | ArgAction::Count)
        || arg.get_num_args().is_some_and(|r| r.max_values() > 1)
}

/// The subcommand an argument list names (its first word that is one), if any.
fn subcommand_in<'a>(cmd: &'a Command, argv: &[OsString]) -> Option<&'a Command> {
    argv.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .find_map(|a| cmd.find_subcommand(a))
}

/// A clap error as forgekeep's one line: what clap says (its continuation lines joined),
/// and a hint with clap's tip, the command's usage and where to read more.
pub fn argument_error(e: &clap::Error, argv: &[OsString]) -> Error {
    let text = e.render().to_string();
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let mut what = first.strip_prefix("error: ").unwrap_or(first).to_string();
    // "the following required arguments were not provided:" and its indented list.
    let listed: Vec<&str> = lines
        .clone()
        .take_while(|l| l.starts_with("  ") && !l.trim_start().starts_with("tip:"))
        .map(str::trim)
        .collect();
    if !listed.is_empty() {
        what = format!("{} {}", what.trim_end(), listed.join(", "));
    }
    let mut hint: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("tip: "))
        .map(str::to_string)
        .collect();
    let mut cmd = <crate::cli::Cli as clap::CommandFactory>::command();
    cmd.build();
    let (usage, help) = match subcommand_in(&cmd, argv) {
        Some(sub) => (
            synopsis(sub, false).plain(),
            format!("forgekeep {} --help", sub.get_name()),
        ),
        None => (
            synopsis(&cmd, false).plain(),
            "forgekeep --help".to_string(),
        ),
    };
    hint.push(format!("usage: {usage}"));
    hint.push(format!("see {help}"));
    Error::usage(what).hint(hint.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built() -> Command {
        let mut cmd = <crate::cli::Cli as clap::CommandFactory>::command();
        cmd.build();
        cmd
    }

    #[test]
    fn verify_usage_names_both_ways_to_name_the_archive_and_the_keys() {
        let cmd = built();
        let verify = cmd.find_subcommand("verify").unwrap();
        assert_eq!(
            synopsis(verify, false).plain(),
            "forgekeep verify (ARCHIVE | --latest DIR) (-i|--identity IDENTITY | --passphrase) [OPTIONS]"
        );
        let full = synopsis(verify, true).plain();
        assert!(full.contains("[--max-age AGE]"), "{full}");
        assert!(full.contains("[--json]"), "{full}");
    }

    #[test]
    fn every_visible_option_is_in_the_full_synopsis_with_its_value() {
        let cmd = built();
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let full = synopsis(sub, true).plain();
            for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                let mut bit = Synopsis::default();
                bare(&mut bit, arg);
                assert!(full.contains(&bit.plain()), "{}: {full}", bit.plain());
            }
        }
    }

    #[test]
    fn roff_escapes_dashes() {
        let cmd = built();
        let prune = cmd.find_subcommand("prune").unwrap();
        let r = synopsis(prune, true).roff();
        assert!(r.starts_with("\\fBforgekeep prune\\fR"), "{r}");
        assert!(r.contains("\\fB\\-\\-keep\\-last\\fR \\fIN\\fR"), "{r}");
    }
}
