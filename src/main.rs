//! The `forgekeep` binary: parse, run, map the outcome to an exit code.
//! Everything else lives in the library.

use clap::Parser;
use forgekeep::cli::Cli;
use forgekeep::error::ExitCode;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help and --version are not errors; clap knows which is which.
            let code = if e.use_stderr() {
                ExitCode::Usage.code()
            } else {
                0
            };
            let _ = e.print();
            // `--json` promises one JSON object on stdout, usage errors included: the
            // scripts that pass it parse stdout, not clap's text.
            if code != 0 && json_requested() {
                forgekeep::report::error_json(&parse_error(&e));
            }
            std::process::exit(code);
        }
    };
    let level = match (cli.global.quiet, cli.global.verbose) {
        (true, _) => log::LevelFilter::Error,
        (_, 0) => log::LevelFilter::Warn,
        (_, 1) => log::LevelFilter::Info,
        _ => log::LevelFilter::Debug,
    };
    env_logger::Builder::new()
        .filter_level(level)
        .format_timestamp(None)
        .format_target(false)
        .parse_env("FORGEKEEP_LOG")
        .init();
    let code = match forgekeep::run(&cli) {
        // A closed stdout during a listing (`forgekeep list ... | head`) is the reader's
        // choice and is ignored where the listing is printed (report::Out); a closed pipe
        // while an ARCHIVE goes to stdout is a failed backup and stays an error.
        Ok(code) => code,
        Err(e) => {
            forgekeep::report::error(&e, cli.global.json);
            e.exit
        }
    };
    std::process::exit(code.code());
}

/// `--json` among the arguments (before a `--`), for errors found before it is parsed.
fn json_requested() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// clap's error as forgekeep's one-line error: its first line, without "error: ".
fn parse_error(e: &clap::Error) -> forgekeep::error::Error {
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or_default();
    let what = first.strip_prefix("error: ").unwrap_or(first).trim();
    forgekeep::error::Error::usage(what).hint("see forgekeep --help, or forgekeep COMMAND --help")
}
