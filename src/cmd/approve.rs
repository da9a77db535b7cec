//! `approve` and `revoke`: approvals as files in the GitOps repository, each in its own
//! descriptive commit (docs/design.md §8). With `--key`, the approval carries an SSH signature
//! over its canonical payload, so push access alone cannot forge one.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::cli::{ApproveArgs, RevokeArgs};
use crate::deploy::approve::{self, Order, Signer};
use crate::exit::InvalidInput;
use crate::settings::{Output, Settings};

/// Signs `payload` with a private key file, or through ssh-agent when `key` is a public key.
fn sign(key: &Path, payload: &str) -> crate::exit::Result<String> {
    if key.extension().is_some_and(|e| e == "pub") {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("payload");
        std::fs::write(&file, payload)?;
        let status = Command::new("ssh-keygen")
            .args(["-Y", "sign", "-q", "-n", crate::signing::NAMESPACE, "-f"])
            .arg(key)
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .map_err(|e| {
                InvalidInput(format!(
                    "cannot run ssh-keygen to sign with the agent's key {}: {e}",
                    key.display()
                ))
            })?;
        if !status.success() {
            return Err(InvalidInput(format!(
                "ssh-keygen -Y sign with {} failed ({status}): is the key in ssh-agent?",
                key.display()
            ))
            .into());
        }
        return Ok(std::fs::read_to_string(dir.path().join("payload.sig"))?);
    }
    crate::signing::sign(key, payload).map_err(|e| InvalidInput(e).into())
}

/// The identity acting (`--actor`), or a usage error saying who must be named to `verb`.
fn actor(settings: &Settings, verb: &str) -> Result<String, InvalidInput> {
    settings
        .actor
        .clone()
        .ok_or_else(|| InvalidInput(format!("who {verb}? set --actor or RELEASECTL_ACTOR")))
}

fn order<'a>(
    env: &'a crate::policy::EnvName,
    project: &'a crate::gitops::ProjectRef,
    release_id: &'a crate::gitops::ReleaseSelector,
    actor: &'a str,
    settings: &Settings,
) -> Order<'a> {
    Order {
        env,
        project,
        release_id,
        actor,
        now: settings.now,
        deadline: settings.deadline,
    }
}

pub async fn approve(
    args: &ApproveArgs,
    settings: &Settings,
) -> crate::exit::Result<super::Outcome> {
    if args.justification.trim().is_empty() {
        return Err(InvalidInput(
            "--justification is empty: say why this release may go there".into(),
        )
        .into());
    }
    if let Some(server) = &settings.server {
        if args.key.is_some() {
            return Err(InvalidInput(format!(
                "--key with --server {}: expected no --key (the API records the token's identity as the approver; an SSH-signed approval is written against the repository)",
                server.url
            ))
            .into());
        }
        return through_server(server, args, Some(&args.justification), settings).await;
    }
    let gitops = settings.open_gitops()?;
    let actor = actor(settings, "approves")?;
    let sign_with = args
        .key
        .as_deref()
        .map(|key| move |payload: &str| sign(key, payload));
    let signer = sign_with
        .as_ref()
        .zip(args.key.as_deref())
        .map(|(f, key)| Signer {
            label: key.display().to_string(),
            sign: f,
        });
    let order = order(&args.env, &args.project, &args.release_id, &actor, settings);
    let done = approve::approve(&gitops, &order, &args.justification, signer.as_ref()).await?;
    if let Some(note) = &done.note {
        eprintln!("releasectl: note: {note}");
    }
    report(settings, &done.summary, Some(&done.file), done.commit)
}

pub async fn revoke(args: &RevokeArgs, settings: &Settings) -> crate::exit::Result<super::Outcome> {
    if let Some(server) = &settings.server {
        let target = ApproveArgs {
            env: args.env.clone(),
            project: args.project.clone(),
            release_id: args.release_id.clone(),
            justification: String::new(),
            key: None,
        };
        return through_server(server, &target, None, settings).await;
    }
    let gitops = settings.open_gitops()?;
    let actor = actor(settings, "revokes")?;
    let order = order(&args.env, &args.project, &args.release_id, &actor, settings);
    let done = approve::revoke(&gitops, &order).await?;
    report(settings, &done.summary, None, done.commit)
}

/// `approve` (with a justification) or `revoke` through `--server`, as the token's identity.
async fn through_server(
    server: &crate::settings::Server,
    args: &ApproveArgs,
    justification: Option<&str>,
    settings: &Settings,
) -> crate::exit::Result<super::Outcome> {
    let client = crate::client::Client::new(server, settings.deadline)?;
    let done = crate::client::deploy::approve(
        &client,
        args.env.as_str(),
        &args.project.to_string(),
        &args.release_id.to_string(),
        justification,
    )
    .await?;
    if let Some(note) = &done.note {
        eprintln!("releasectl: note: {}", crate::text::printable(note, 1000));
    }
    let commit = done
        .commit
        .map(|c| c.parse::<git2::Oid>())
        .transpose()
        .map_err(|e| {
            InvalidInput(format!(
                "server {}: a commit that is not a SHA: {e}",
                server.url
            ))
        })?;
    report(settings, &done.result, done.file.as_deref(), commit)
}

/// What `approve` and `revoke` print: `SUMMARY: COMMIT`, or with `-o json` the summary as
/// `result`, the commit and (for `approve`) the approvals `file`.
fn report(
    settings: &Settings,
    summary: &str,
    file: Option<&str>,
    commit: Option<git2::Oid>,
) -> crate::exit::Result<super::Outcome> {
    let commit = commit.map(|o| o.to_string());
    let mut out = Vec::new();
    match settings.output {
        Output::Text => writeln!(out, "{summary}: {}", commit.as_deref().unwrap_or_default())?,
        Output::Json => {
            let mut json = serde_json::json!({"result": summary, "commit": commit});
            if let Some(file) = file {
                json["file"] = file.into();
            }
            writeln!(out, "{json}")?;
        }
    }
    Ok(super::Outcome::ok(out))
}
