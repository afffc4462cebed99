//! `forgekeep generate man DIR | completions SHELL` (hidden): man pages and completions
//! rendered from the clap definition in `cli.rs`, so they cannot drift from `--help`.
//! `man/` in the repository holds the output of `generate man man/`; a test fails when
//! it is stale.

use crate::cli::{Cli, GenerateArgs, GenerateWhat};
use crate::error::{Error, ExitCode, Result};
use clap::CommandFactory;
use std::path::Path;

pub fn run(args: &GenerateArgs) -> Result<ExitCode> {
    match &args.what {
        GenerateWhat::Man { dir } => write_man_pages(dir)?,
        GenerateWhat::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(*shell, &mut cmd, "forgekeep", &mut std::io::stdout());
        }
    }
    Ok(ExitCode::Success)
}

/// One page per visible command: forgekeep.1, forgekeep-backup.1, ...
pub fn write_man_pages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, &e))?;
    // No `help` subcommand on the pages: there is no forgekeep-help(1).
    let mut cmd = Cli::command()
        .version(env!("CARGO_PKG_VERSION"))
        .disable_help_subcommand(true);
    cmd.build();
    let mut pages = vec![(cmd.clone(), None)];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages.push((sub.clone(), Some(sub.get_name().to_string())));
    }
    for (page_cmd, name) in pages {
        let man = clap_mangen::Man::new(page_cmd.clone());
        let page = render_page(&man, &page_cmd, name.as_deref())
            .map_err(|e| Error::io("cannot render", dir, &e))?;
        let path = dir.join(man.get_filename());
        std::fs::write(&path, page).map_err(|e| Error::io("cannot write", &path, &e))?;
    }
    Ok(())
}

/// A page as clap_mangen renders its sections, with forgekeep's SYNOPSIS (every option
/// with its value, one-of groups spelled out: [`crate::usage::synopsis`]) and the
/// sections clap cannot derive: EXIT STATUS, FINDINGS (commands that report them),
/// ENVIRONMENT, TRUST and OFF-HOST ARCHIVES (the commands they concern), and on the main
/// page CONFIGURATION and JSON OUTPUT.
fn render_page(
    man: &clap_mangen::Man,
    cmd: &clap::Command,
    command: Option<&str>,
) -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    page.extend(
        format!(
            ".SH SYNOPSIS\n{}\n",
            crate::usage::synopsis(cmd, true).roff()
        )
        .bytes(),
    );
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    if command.is_none() {
        man.render_subcommands_section(&mut page)?;
    }
    if cmd.get_after_help().is_some() {
        man.render_extra_section(&mut page)?;
    }
    page.extend(exit_status_section(command).bytes());
    if matches!(command, Some("backup" | "check" | "list")) {
        page.extend(findings_section().bytes());
    }
    page.extend(environment_section(command).bytes());
    if matches!(
        command,
        None | Some("restore" | "verify" | "list" | "diff" | "backup" | "keygen")
    ) {
        page.extend(roff_section("TRUST", crate::manual::TRUST, false).bytes());
    }
    if matches!(
        command,
        None | Some(
            "backup" | "restore" | "verify" | "list" | "diff" | "check" | "prune" | "status"
        )
    ) {
        page.extend(roff_section("OFF-HOST ARCHIVES", crate::manual::OFF_HOST, false).bytes());
    }
    if command.is_none() {
        page.extend(roff_section("CONFIGURATION", crate::manual::CONFIGURATION, true).bytes());
        page.extend(roff_section("JSON OUTPUT", crate::manual::JSON_OUTPUT, false).bytes());
    } else {
        page.extend(".SH \"SEE ALSO\"\nforgekeep(1)\n".bytes());
    }
    man.render_version_section(&mut page)?;
    Ok(page)
}

/// `.TP` items: a bold term, then its text.
fn roff_items<'a>(items: impl IntoIterator<Item = (String, &'a str)>) -> String {
    let mut out = String::new();
    for (term, text) in items {
        out.push_str(&format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            escape(&term),
            escape(text)
        ));
    }
    out
}

fn exit_status_section(command: Option<&str>) -> String {
    let codes = crate::manual::exit_status(command);
    format!(
        ".SH \"EXIT STATUS\"\n{}",
        roff_items(codes.into_iter().map(|(c, m)| (c.to_string(), m)))
    )
}

fn findings_section() -> String {
    let mut out = ".SH FINDINGS\n.PP\nEach finding has a stable code (in --json and the manifest), a severity, the path and a one-line fix; one finding per file, whose fix ends it. Warnings give exit 3; errors of collection (unreadable, changed-while-read) stop a backup.\n".to_string();
    out.push_str(&roff_items(crate::findings::Code::ALL.iter().map(|c| {
        let (severity, meaning) = c.manual();
        (format!("{} ({severity})", c.as_str()), meaning)
    })));
    out
}

fn environment_section(command: Option<&str>) -> String {
    let vars = crate::manual::ENVIRONMENT
        .iter()
        .filter(|(_, cmds, _)| command.is_none_or(|c| cmds.is_empty() || cmds.contains(&c)));
    format!(
        ".SH ENVIRONMENT\n{}",
        roff_items(vars.map(|(name, _, text)| (name.to_string(), *text)))
    )
}

/// Text for a roff line: backslashes and a leading control character escaped.
fn escape(line: &str) -> String {
    let l = line.replace('\\', "\\e").replace('-', "\\-");
    if l.starts_with('.') || l.starts_with('\'') {
        format!("\\&{l}")
    } else {
        l
    }
}

/// A man page section from plain text: paragraphs split at blank lines, or kept
/// verbatim (`.nf`) for the example file.
fn roff_section(title: &str, text: &str, verbatim_tail: bool) -> String {
    let escape = |line: &str| {
        let l = line.replace('\\', "\\e");
        if l.starts_with('.') || l.starts_with('\'') {
            format!("\\&{l}")
        } else {
            l
        }
    };
    let mut out = format!(".SH \"{title}\"\n");
    let mut paragraphs = text.split("\n\n");
    if verbatim_tail {
        // First paragraph prose, the rest the example file as is.
        if let Some(first) = paragraphs.next() {
            out.push_str(&format!(".PP\n{}\n.PP\n.nf\n", escape(first.trim())));
        }
        let rest: Vec<&str> = paragraphs.collect();
        for line in rest.join("\n\n").lines() {
            out.push_str(&escape(line));
            out.push('\n');
        }
        out.push_str(".fi\n");
    } else {
        for p in paragraphs {
            out.push_str(&format!(".PP\n{}\n", escape(p.trim())));
        }
    }
    out
}
