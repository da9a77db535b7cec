//! `diff`: which objects a deploy would add, remove and change, with a unified diff of the
//! changed ones. Both sides are read by the release reader (every check `generate` makes),
//! and compared object by object as rendered from the verified files.

use std::io::Write;

use crate::cli::DiffArgs;
use crate::deploy::diff::{self, Report};
use crate::exit::InvalidInput;
use crate::settings::{Output, Settings};

/// With `--exit-code`, a run that found differences ends with exit 1 and no `error:` line
/// (as `git diff --exit-code`): the report is the answer.
pub async fn run(args: &DiffArgs, settings: &Settings) -> crate::exit::Result<super::Outcome> {
    let mut out = Vec::new();
    let differs = run_to(args, settings, &mut out).await?;
    let exit = if args.exit_code && differs {
        crate::exit::Exit::Other
    } else {
        crate::exit::Exit::Success
    };
    Ok(super::Outcome {
        report: Box::new(out),
        exit,
        message: None,
    })
}

/// Writes the report; returns whether the two sides differ.
async fn run_to(
    args: &DiffArgs,
    settings: &Settings,
    out: &mut Vec<u8>,
) -> crate::exit::Result<bool> {
    let report = match args.args.as_slice() {
        [env, project, id] if settings.server.is_some() => {
            let server = settings.server.as_ref().expect("matched");
            let client = crate::client::Client::new(server, settings.deadline)?;
            let env: crate::policy::EnvName = env.parse().map_err(InvalidInput)?;
            crate::client::reads::diff(
                &client,
                env.as_str(),
                &project.parse()?,
                &id.parse::<crate::gitops::ReleaseSelector>()?.to_string(),
            )
            .await?
        }
        [env, project, id] => {
            let gitops = settings.open_gitops()?;
            let env: crate::policy::EnvName = env.parse().map_err(InvalidInput)?;
            diff::against_running(
                &gitops,
                &env,
                &project.parse()?,
                &id.parse()?,
                settings.registry.as_ref(),
                &settings.store,
                &settings.limits,
            )
            .await?
        }
        [a, b] => {
            let (a_img, a_exp) = super::resolve_target(a, settings)?;
            let (b_img, b_exp) = super::resolve_target(b, settings)?;
            diff::between(
                (&a_img, &a_exp),
                (&b_img, &b_exp),
                &settings.store,
                &settings.limits,
            )
            .await?
        }
        _ => {
            return Err(
                InvalidInput("diff takes ENV PROJECT RELEASE_ID or REF_A REF_B".into()).into(),
            );
        }
    };
    write(out, settings.output, &report)
}

fn write(out: &mut Vec<u8>, output: Output, report: &Report) -> crate::exit::Result<bool> {
    match output {
        Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(report)?)?,
        Output::Text => {
            writeln!(out, "from {}\nto   {}", report.from, report.to)?;
            writeln!(
                out,
                "{} added, {} removed, {} changed, {} unchanged",
                report.added.len(),
                report.removed.len(),
                report.changed.len(),
                report.unchanged
            )?;
            for a in &report.added {
                writeln!(out, "+ {a}")?;
            }
            for r in &report.removed {
                writeln!(out, "- {r}")?;
            }
            for c in &report.changed {
                writeln!(out, "~ {}", c.object)?;
            }
            for c in &report.changed {
                write!(out, "\n{}", c.diff)?;
            }
        }
    }
    Ok(!(report.added.is_empty() && report.removed.is_empty() && report.changed.is_empty()))
}
