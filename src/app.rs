//! The program: build the settings once, run one command, write its report once, exit.
//!
//! Invariants: stdout carries only the command's report, written after the command returned
//! (for `generate`, after every check passed); a failure prints one `error:` line on stderr;
//! a reader that closed stdout early (a broken pipe) is not a failure; the exit code is the
//! outcome's class (README "Exit codes").

use std::io::{ErrorKind, Write};
use std::process::ExitCode;

use crate::cli::{Cli, Command, ReleaseCommand};
use crate::cmd::{self, Outcome};
use crate::exit::{Exit, Result};
use crate::settings::{self, Settings};

/// Parses the command line, runs it and maps the outcome to an exit code.
#[must_use]
pub fn main() -> ExitCode {
    let cli = crate::cli::parse();
    let outcome = run(cli);
    let (exit, message) = match outcome {
        Ok(mut outcome) => match write_report(&mut outcome) {
            Ok(()) => (outcome.exit, outcome.message),
            Err(e) if e.kind() == ErrorKind::BrokenPipe => (outcome.exit, outcome.message),
            Err(e) => (Exit::Other, Some(format!("cannot write the report: {e}"))),
        },
        Err(e) => (e.exit(), Some(e.to_string())),
    };
    if let Some(message) = message {
        // The last guard of "one line": a control character that escaped every message's
        // own escaping is shown escaped, and the line is cut under 4 KiB.
        let mut line: String = message
            .chars()
            .flat_map(|c| {
                let escaped: Vec<char> = if c.is_control() {
                    c.escape_default().collect()
                } else {
                    vec![c]
                };
                escaped
            })
            .collect();
        if line.len() > 4000 {
            let mut cut = 3900;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line = format!("{}…({} bytes)", &line[..cut], message.len());
        }
        eprintln!("error: {line}");
    }
    ExitCode::from(exit.code())
}

fn write_report(outcome: &mut Outcome) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    outcome.report.write_to(&mut out)?;
    out.flush()
}

fn run(cli: Cli) -> Result<Outcome> {
    let (level, app) = settings::log_settings(cli.global.log_level())?;
    crate::log::init(level, app);
    let mut flags = cli.global.flags();
    let budget = match &cli.command {
        Command::Config(command) => {
            let outcome = cmd::config::run(command, settings::config_path(), &flags)?;
            return Ok(match cli.global.output {
                settings::Format::Yaml => cmd::as_yaml(outcome),
                settings::Format::Text | settings::Format::Json => outcome,
            });
        }
        // The plugin is configured by its environment only, never by a user's config file.
        Command::Generate(_) => settings::GENERATE_TIMEOUT,
        _ => {
            if let Some(path) = settings::config_path() {
                let config = cmd::config::load(&path)?;
                let file = path.display().to_string();
                if let Some(context) = config.select(&file, cli.global.context.as_deref())? {
                    flags.apply(context)?;
                }
            }
            settings::DEFAULT_TIMEOUT
        }
    };
    let format = cli.global.output;
    cmd::refuse_format(&cli.command, format)?;
    let settings = Settings::load(flags, budget)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(dispatch(cli.command, &settings))?;
    Ok(match format {
        settings::Format::Yaml => cmd::as_yaml(outcome),
        settings::Format::Text | settings::Format::Json => outcome,
    })
}

async fn dispatch(command: Command, s: &Settings) -> Result<Outcome> {
    match command {
        Command::Release(release) => match *release {
            ReleaseCommand::Create(args) => cmd::create::run(*args, s).await,
            ReleaseCommand::Get(args) => cmd::release::get(&args, s).await,
            ReleaseCommand::List(args) => cmd::release::list(&args, s).await,
            ReleaseCommand::Migrate(args) => cmd::release::migrate(&args, s).await,
        },
        Command::Inspect(args) => cmd::inspect::run_inspect(&args.target, &args.keys, s).await,
        Command::Verify(args) => cmd::inspect::run_verify(&args.target, &args.keys, s).await,
        Command::Generate(args) => cmd::generate::run(args.pointer, args.parameters, s).await,
        Command::Deploy(args) => cmd::deploy::deploy(&args, s).await,
        Command::Promote(args) => cmd::deploy::promote(&args, s).await,
        Command::Rollback(args) => cmd::deploy::rollback(&args, s).await,
        Command::Unblock(args) => cmd::deploy::unblock(&args, s).await,
        Command::Status(args) => cmd::status::status(&args, s).await,
        Command::History(args) => cmd::status::history(&args, s).await,
        Command::Diff(args) => cmd::diff::run(&args, s).await,
        Command::Approve(args) => cmd::approve::approve(&args, s).await,
        Command::Revoke(args) => cmd::approve::revoke(&args, s).await,
        Command::Check(args) => cmd::check::run(&args, s),
        Command::Version => cmd::version::run(s),
        Command::Completion(args) => cmd::completion::completion(args.shell),
        Command::Man(args) => cmd::completion::man(&args.command),
        Command::Config(_) => unreachable!("config commands run before the settings are built"),
        Command::Copy(args) => cmd::copy::run(&args.source, &args.destination, s).await,
        Command::Summary => cmd::summary::summary(s),
        Command::Serve(args) => cmd::serve::run(&args, s).await,
        Command::Sign(args) => cmd::sign::run(&args, s).await,
    }
}
