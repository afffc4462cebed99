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
    let cmd = Cli::command().version(env!("CARGO_PKG_VERSION"));
    clap_mangen::generate_to(cmd.clone(), dir)
        .map_err(|e| Error::io("cannot write man pages to", dir, &e))?;
    // The main page also gets what clap cannot derive: the configuration file and the
    // JSON schema.
    let mut page = Vec::new();
    let man = clap_mangen::Man::new(cmd);
    man.render(&mut page)
        .map_err(|e| Error::io("cannot render", dir, &e))?;
    page.extend(roff_section("CONFIGURATION", crate::manual::CONFIGURATION, true).bytes());
    page.extend(roff_section("JSON OUTPUT", crate::manual::JSON_OUTPUT, false).bytes());
    let path = dir.join(man.get_filename());
    std::fs::write(&path, page).map_err(|e| Error::io("cannot write", &path, &e))?;
    Ok(())
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
