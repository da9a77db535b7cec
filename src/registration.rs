//! Registering a release image that is already pushed (`POST /v1/releases`): read and verify
//! it by digest ([`verify`]: [`crate::release::read`], every check of docs/format.md §7), then
//! add it to its project's register in one commit ([`decide`], docs/design.md §2). The
//! server verifies before it queues the write, so a slow registry never holds its writer.
//!
//! Invariants: nothing is written for an image that fails verification, that lives anywhere
//! but where the registry base puts its release, or whose recorded number is not the one the
//! register would give it; registering a commit again only adds new aliases and triggers
//! (idempotent); the actor is recorded as the trigger's `triggered_by`.

use jiff::Timestamp;

use crate::archive::Limits;
use crate::digest::Digest;
use crate::format::{Expected, ReleaseInfo};
use crate::gitops::register::{Entry, Register, RegisteredTrigger};
use crate::gitops::{Snapshot, Step};
use crate::ids::ReleaseId;
use crate::oci::{ImageRef, RegistryBase, StoreOptions};

/// What to register, who registers it, and where its images must live.
pub struct Pushed<'a> {
    pub image: &'a ImageRef,
    pub digest: &'a Digest,
    pub base: &'a RegistryBase,
    pub actor: &'a str,
    pub now: Timestamp,
    pub store: &'a StoreOptions,
    pub limits: &'a Limits,
}

/// Why an image cannot be registered as it is.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("reference {given}: expected {expected} (where the registry base keeps release {id})")]
    Elsewhere {
        given: String,
        expected: String,
        id: String,
    },
    #[error(
        "release {id}: the image records number {recorded}, expected {next} (the register's next number): it was built for another registration"
    )]
    Number {
        id: String,
        recorded: u64,
        next: u64,
    },
    #[error("{image}: {what} not found: expected the pushed release image there")]
    Missing { image: String, what: String },
}

impl crate::exit::Classify for RegistrationError {
    fn exit(&self) -> crate::exit::Exit {
        match self {
            Self::Elsewhere { .. } | Self::Missing { .. } => crate::exit::Exit::Verify,
            Self::Number { .. } => crate::exit::Exit::Conflict,
        }
    }
}

/// A pushed image that passed verification: everything the register write needs, read from
/// the registry once, before the write (a slow registry never holds the writer).
#[derive(Debug, Clone)]
pub struct Verified {
    pub id: ReleaseId,
    pub digest: Digest,
    pub info: ReleaseInfo,
    pub trigger: Option<RegisteredTrigger>,
    pub actor: String,
}

/// Reads `p.image` at `p.digest` and verifies it (docs/format.md §7) and where it lives;
/// writes nothing.
pub async fn verify(p: &Pushed<'_>) -> crate::exit::Result<Verified> {
    let pinned = p.image.with_digest(p.digest.clone());
    let release = match crate::release::read(&pinned, &Expected::default(), p.store, p.limits).await
    {
        Err(crate::release::ReleaseError::Oci(crate::oci::OciError::NotFound { what })) => {
            return Err(RegistrationError::Missing {
                image: pinned.to_string(),
                what,
            }
            .into());
        }
        read => read?,
    };
    let id = release.id();
    let expected = p.base.image(&id, Some(p.digest.clone()));
    if expected != pinned {
        return Err(RegistrationError::Elsewhere {
            given: pinned.to_string(),
            expected: expected.to_string(),
            id: id.to_string(),
        }
        .into());
    }
    let trigger = release
        .metadata()
        .trigger
        .as_ref()
        .map(|t| RegisteredTrigger {
            kind: t.kind,
            branch: t.branch.clone(),
            tag: t.tag.clone(),
            triggered_by: Some(p.actor.to_owned()),
            at: p.now.to_string(),
        });
    Ok(Verified {
        id,
        digest: p.digest.clone(),
        info: release.metadata().release.clone(),
        trigger,
        actor: p.actor.to_owned(),
    })
}

/// The register write of `v` on `tip`: a new entry with the register's next number, new
/// aliases and a trigger merged into an entry already there, or nothing (already registered
/// as it is). `GitOps::transact` runs it alone; the server's writer runs it in a batch, on the
/// commits of the requests before it.
pub fn decide(v: &Verified, tip: &Snapshot<'_>) -> crate::exit::Result<Step<(Register, Entry)>> {
    let (id, info) = (&v.id, &v.info);
    // A bounded number of the register's files (format 2); a format 1 register is migrated by
    // this write (docs/register.md).
    let reg = Register::open_or_new(tip, &id.repository, &id.project)?;
    let (verb, entry, edits) = if reg.find_commit(tip, &id.commit)?.is_some() {
        let (entry, edits) = reg.merge(tip, &id.commit, &info.aliases, v.trigger.clone())?;
        if edits.is_empty() {
            return Ok(Step::Done((reg, entry)));
        }
        ("Update", entry, edits)
    } else {
        let next = reg.next_number();
        if let Some(recorded) = info.number.filter(|n| *n != next) {
            return Err(RegistrationError::Number {
                id: id.to_string(),
                recorded,
                next,
            }
            .into());
        }
        for a in &info.aliases {
            reg.check_alias_free(tip, &a.alias, &id.commit)?;
        }
        let entry = Entry {
            number: next,
            commit: id.commit.clone(),
            digest: v.digest.clone(),
            created_at: info.created_at.to_string(),
            aliases: info.aliases.clone(),
            triggers: v.trigger.clone().into_iter().collect(),
        };
        let edits = reg.add(tip, &entry)?;
        ("Register", entry, edits)
    };
    Ok(Step::Commit {
        edits,
        message: commit_message(verb, &reg, &entry, &v.actor),
        result: (reg, entry),
    })
}

/// The message of a registration commit: `Register release 42 (v1.2.3) of …` or `Update …`,
/// the aliases and who registered, and the trailers `check` and `history` read.
#[must_use]
pub fn commit_message(verb: &str, reg: &Register, entry: &Entry, actor: &str) -> String {
    let aliases: Vec<&str> = entry.aliases.iter().map(|a| a.alias.as_str()).collect();
    format!(
        "{verb} release {} of {}\n\nAliases: {}\nRegistered by: {actor}\n\nRelease-Commit: {}\nRelease-Digest: {}\nRelease-Number: {}\nProject: {}\nAction: {}\n",
        entry.label(),
        reg.full_name(),
        if aliases.is_empty() {
            "-".to_owned()
        } else {
            aliases.join(", ")
        },
        entry.commit,
        entry.digest,
        entry.number,
        reg.full_name(),
        verb.to_ascii_lowercase(),
    )
}
