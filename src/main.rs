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
