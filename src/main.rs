//! The shim: parse, run, map the error to an exit code (README "Exit codes").

use std::io::ErrorKind;
use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = releasectl::cli::Cli::parse();
    let stdout = std::io::stdout();
    match releasectl::run(cli, &mut stdout.lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A reader that closed stdout early is not our failure to report.
            if err
                .chain()
                .filter_map(|c| c.downcast_ref::<std::io::Error>())
                .any(|e| e.kind() == ErrorKind::BrokenPipe)
            {
                return ExitCode::from(releasectl::error::OTHER);
            }
            eprintln!("error: {err:#}");
            ExitCode::from(releasectl::error::exit_code(&err))
        }
    }
}
