//! The `forgekeep` binary: parse, run, map the outcome to an exit code.
//! Everything else lives in the library.

use clap::Parser;
use forgekeep::cli::Cli;
use forgekeep::error::ExitCode;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            // --help and --version are not errors, and `forgekeep` alone gets the help;
            // everything else is one error line with a hint, as forgekeep's own errors.
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                std::process::exit(if e.use_stderr() {
                    ExitCode::Usage.code()
                } else {
                    0
                });
            }
            let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
            // `--json` promises one JSON object on stdout, usage errors included: the
            // scripts that pass it parse stdout, not the text.
            forgekeep::report::error(
                &forgekeep::usage::argument_error(&e, &argv),
                json_requested(&argv),
            );
            std::process::exit(ExitCode::Usage.code());
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
fn json_requested(argv: &[std::ffi::OsString]) -> bool {
    argv.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json")
}
