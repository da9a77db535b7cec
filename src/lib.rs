//! releasectl: immutable Release OCI images delivered through GitOps with Argo CD.
//!
//! Modules by concept: identities (`ids`, `digest`), the image format (`format`, `archive`,
//! `manifests`), where images live (`oci`), verified reading (`release`), the pointer file
//! (`pointer`), and the commands (`cmd`) with their settings (`cli`, `settings`).

pub mod approvals;
pub mod archive;
pub mod cache;
pub mod cli;
pub mod cmd;
pub mod credentials;
pub mod deploy;
pub mod digest;
pub mod duration;
pub mod error;
pub mod format;
pub mod gitops;
pub mod ids;
pub mod log;
pub mod manifests;
pub mod oci;
pub mod pointer;
pub mod policy;
pub mod release;
pub mod retry;
pub mod settings;
pub mod signing;
pub mod tls;
pub mod yaml;

use std::io::Write;

use cli::{Cli, Command, ReleaseCommand};

/// Runs a parsed command line; everything it prints goes to `out`, once, at the end.
pub fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // generate's output may be hundreds of MB: it is written from where it lies, not copied.
    if let Command::Generate(args) = cli.command {
        let mut output = runtime.block_on(cmd::generate::run(args.pointer, &cli.global))?;
        output.write_to(out)?;
        return Ok(());
    }
    let mut buf = Vec::new();
    runtime.block_on(async {
        match cli.command {
            Command::Release(release) => match *release {
                ReleaseCommand::Create(args) => {
                    cmd::create::run(*args, &cli.global, &mut buf).await
                }
                ReleaseCommand::Get(args) => cmd::release::get(&args, &cli.global, &mut buf),
                ReleaseCommand::List(args) => cmd::release::list(&args, &cli.global, &mut buf),
            },
            Command::Inspect(args) => {
                cmd::inspect::run_inspect(&args.target, &cli.global, &mut buf).await
            }
            Command::Verify(args) => {
                cmd::inspect::run_verify(&args.target, &cli.global, &mut buf).await
            }
            Command::Generate(_) => unreachable!("handled above"),
            Command::Deploy(args) => cmd::deploy::deploy(&args, &cli.global, &mut buf).await,
            Command::Promote(args) => cmd::deploy::promote(&args, &cli.global, &mut buf).await,
            Command::Rollback(args) => cmd::deploy::rollback(&args, &cli.global, &mut buf).await,
            Command::Unblock(args) => cmd::deploy::unblock(&args, &cli.global, &mut buf).await,
            Command::Status(args) => cmd::status::status(&args, &cli.global, &mut buf),
            Command::History(args) => cmd::status::history(&args, &cli.global, &mut buf),
            Command::Diff(args) => cmd::diff::run(&args, &cli.global, &mut buf).await,
            Command::Approve(args) => cmd::approve::approve(&args, &cli.global, &mut buf),
            Command::Revoke(args) => cmd::approve::revoke(&args, &cli.global, &mut buf),
            Command::Check(args) => cmd::check::run(&args, &cli.global, &mut buf),
            Command::Copy(args) => {
                cmd::copy::run(&args.source, &args.destination, &cli.global, &mut buf).await
            }
        }
    })?;
    out.write_all(&buf)?;
    out.flush()?;
    Ok(())
}
