//! `approve` and `revoke`: approvals as files in the GitOps repository, each in its own
//! descriptive commit (docs/design.md §8). With `--key`, the approval carries an SSH signature
//! over its canonical payload, so push access alone cannot forge one.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::approvals::{Approval, ApprovalFile};
use crate::cli::{ApproveArgs, RevokeArgs};
use crate::deploy::plan;
use crate::exit::InvalidInput;
use crate::gitops::layout::{self, load_approvals};
use crate::gitops::{Author, Edit, Step};
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

/// The SHA256 fingerprint of an SSH public key (`SHA256:…`), or the key's own text (escaped,
/// truncated) when it does not parse.
fn fingerprint(key: &str) -> String {
    ssh_key::PublicKey::from_openssh(key.trim()).map_or_else(
        |_| crate::text::excerpt(key),
        |k| k.fingerprint(ssh_key::HashAlg::Sha256).to_string(),
    )
}

/// Refuses an approval that could never count (issue 12 point 6): an approver missing from a
/// list the environment declares, or an unsigned approval where the policy lists the
/// approver's key. Returns the key the signature must verify against, if any.
fn admit<'a>(
    env: &'a crate::policy::Environment,
    actor: &str,
    key: Option<&Path>,
) -> Result<Option<&'a str>, InvalidInput> {
    let approvers = &env.approvals.approvers;
    if approvers.is_empty() {
        return Ok(None);
    }
    let Some(listed) = approvers.iter().find(|a| a.id == actor) else {
        let names: Vec<&str> = approvers.iter().map(|a| a.id.as_str()).collect();
        return Err(InvalidInput(format!(
            "{} is not an approver for {}: environments.yaml lists {}; an approval by anyone else would not count",
            crate::text::excerpt(actor),
            env.name,
            names.join(", ")
        )));
    };
    match (&listed.key, key) {
        (Some(required), None) => Err(InvalidInput(format!(
            "{} must sign approvals for {} with the key {}: pass --key (an unsigned approval would not count)",
            crate::text::excerpt(actor),
            env.name,
            fingerprint(required)
        ))),
        (required, _) => Ok(required.as_deref()),
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
    let gitops = settings.open_gitops()?;
    let actor = actor(settings, "approves")?;
    let author = Author::new(&actor, settings.unix_now());
    let landed = gitops.transact(&author, settings.deadline, async |tip| {
        let policy = layout::load_policy(&gitops, tip)?;
        let env = plan::environment(&policy, &args.env)?;
        let reg = crate::gitops::find_register(&gitops, tip, &args.project)?;
        let entry = reg.resolve(tip, &args.release_id)?;
        let now = settings.now;
        // Where nothing waits for approvals, an approval is harmless: say so, refuse nothing.
        let required_key = if env.requires_approval {
            admit(env, &actor, args.key.as_deref())?
        } else {
            eprintln!("releasectl: note: {} needs no approvals (environments.yaml does not set requires_approval): no deploy waits for this one", env.name);
            None
        };
        let path = layout::approvals_path(&env.name, &reg.repository, &reg.project, &entry.commit);
        let mut file = match load_approvals(tip, &path)? {
            Some(file) => file,
            None => ApprovalFile::new(env.name.as_str(), reg.repository.clone(), reg.project.clone(), entry.commit.clone()),
        };
        let live = |a: &&Approval| a.approver == actor && a.digest == entry.digest && a.expires_at.parse::<jiff::Timestamp>().is_ok_and(|t| t > now);
        if let Some(a) = file.approvals.iter().find(live) {
            return Err(InvalidInput(format!(
                "{actor} already approved release {} of {} for {} (until {}): an approver approves once",
                entry.label(),
                reg.full_name(),
                env.name,
                a.expires_at
            ))
            .into());
        }
        // Expired or superseded approvals of this approver make way for the new one.
        file.approvals.retain(|a| a.approver != actor);
        let expires = now.checked_add(env.approvals.ttl)?;
        let mut approval = Approval {
            approver: actor.clone(),
            environment: env.name.to_string(),
            digest: entry.digest.clone(),
            approved_at: now.to_string(),
            expires_at: expires.to_string(),
            justification: args.justification.trim().to_owned(),
            signature: None,
        };
        if let Some(key) = &args.key {
            let payload = approval.payload(&file);
            let signature = sign(key, &payload)?;
            // The same check deploy makes: a signature by another key is refused here.
            if let Some(required) = required_key
                && let Err(why) = crate::signing::verify_approval(required, &payload, &signature)
            {
                return Err(InvalidInput(format!(
                    "{} does not sign for {actor} in {}: the policy requires the key {} ({why})",
                    key.display(),
                    env.name,
                    fingerprint(required)
                ))
                .into());
            }
            approval.signature = Some(signature);
        }
        file.approvals.push(approval);
        let message = format!(
            "Approve release {} of {} for {}\n\nJustification: {}\nApproved by: {actor}\nExpires: {expires}{}\n\nRelease-Commit: {}\nRelease-Digest: {}\nEnvironment: {}\nProject: {}\nAction: approve\nApprover: {actor}\n",
            entry.label(),
            reg.project,
            env.name,
            args.justification.trim(),
            if args.key.is_some() { "\nSigned: yes" } else { "" },
            entry.commit,
            entry.digest,
            env.name,
            reg.full_name(),
        );
        Ok(Step::Commit {
            edits: vec![Edit {
                path: path.clone(),
                content: Some(file.to_yaml().into_bytes()),
            }],
            message,
            result: (format!("approved release {} of {} for {} until {expires}", entry.label(), reg.full_name(), env.name), path),
        })
    }).await?;
    let ((summary, file), commit) = (landed.result, landed.commit);
    report(settings, &summary, Some(&file), commit)
}

pub async fn revoke(args: &RevokeArgs, settings: &Settings) -> crate::exit::Result<super::Outcome> {
    let gitops = settings.open_gitops()?;
    let actor = actor(settings, "revokes")?;
    let env_name = &args.env;
    let author = Author::new(&actor, settings.unix_now());
    let landed = gitops.transact(&author, settings.deadline, async |tip| {
        let reg = crate::gitops::find_register(&gitops, tip, &args.project)?;
        let entry = reg.resolve(tip, &args.release_id)?;
        let path = layout::approvals_path(env_name, &reg.repository, &reg.project, &entry.commit);
        let Some(mut file) = load_approvals(tip, &path)? else {
            return Err(InvalidInput(format!("no approvals of release {} of {} for {env_name}: nothing to revoke", entry.label(), reg.full_name())).into());
        };
        let before = file.approvals.len();
        file.approvals.retain(|a| a.approver != actor);
        if file.approvals.len() == before {
            return Err(InvalidInput(format!("{actor} has not approved release {} of {} for {env_name}: nothing to revoke", entry.label(), reg.full_name())).into());
        }
                let message = format!(
            "Revoke approval of release {} of {} for {env_name}\n\nRevoked by: {actor}\n\nRelease-Commit: {}\nRelease-Digest: {}\nEnvironment: {env_name}\nProject: {}\nAction: revoke\nApprover: {actor}\n",
            entry.label(),
            reg.project,
            entry.commit,
            entry.digest,
            reg.full_name(),
        );
        Ok(Step::Commit {
            edits: vec![Edit {
                path,
                content: (!file.approvals.is_empty()).then(|| file.to_yaml().into_bytes()),
            }],
            message,
            result: format!("revoked {actor}'s approval of release {} of {} for {env_name}", entry.label(), reg.full_name()),
        })
    }).await?;
    report(settings, &landed.result, None, landed.commit)
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
