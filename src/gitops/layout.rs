//! The GitOps repository's layout (docs/design.md §4): the one place that knows which path
//! holds what, and the readers of the typed files at those paths.
//!
//! ```text
//! environments.yaml                                   the policy
//! releases/<repository>/<project>.yaml                a project's release register
//! <env>/apps/<repository>/<project>/release.yaml      the pointer: what runs in <env>
//! <env>/apps/<repository>/<project>/env.yaml          the environment's own objects
//! approvals/<env>/<repository>/<project>/<commit>.yaml approvals of one release for <env>
//! ```
//!
//! `<repository>` may have several segments (`company/monorepo`); every other segment is one.

use super::remote::GitOps;
use super::snapshot::Snapshot;
use crate::approvals::ApprovalFile;
use crate::exit::InvalidInput;
use crate::ids::{CommitSha, Project, Repository};
use crate::pointer::{self, Pointer};
use crate::policy::{self, EnvName, Policy};

/// The environment policy, at the root.
pub const POLICY: &str = policy::FILE;
/// The directory of the release registers.
pub const REGISTERS: &str = "releases";
/// The pointer's file name in a project directory.
pub const POINTER_FILE: &str = "release.yaml";
/// The environment's own objects, next to the pointer.
pub const ENV_FILE: &str = "env.yaml";

/// `releases/<repository>/<project>.yaml`.
#[must_use]
pub fn register_path(repository: &Repository, project: &Project) -> String {
    format!("{REGISTERS}/{repository}/{project}.yaml")
}

/// The `<repository>/<project>` a register path names (`releases/<repository>/<project>.yaml`).
#[must_use]
pub fn register_of(path: &str) -> Option<&str> {
    path.strip_prefix(REGISTERS)?
        .strip_prefix('/')?
        .strip_suffix(".yaml")
}

/// `<env>/apps`: the pointers of one environment live below it.
#[must_use]
pub fn apps_dir(env: &str) -> String {
    format!("{env}/apps")
}

/// `<env>/apps/<repository>/<project>/release.yaml`.
#[must_use]
pub fn pointer_path(env: &EnvName, repository: &Repository, project: &Project) -> String {
    format!(
        "{}/{repository}/{project}/{POINTER_FILE}",
        apps_dir(env.as_str())
    )
}

/// The environment segment of a pointer path, or `None` when `path` is not a pointer.
#[must_use]
pub fn pointer_env(path: &str) -> Option<&str> {
    let mut parts = path.split('/');
    let env = parts.next()?;
    (parts.next()? == "apps"
        && path.ends_with(&format!("/{POINTER_FILE}"))
        && path.split('/').count() >= 5)
        .then_some(env)
}

/// `approvals/<env>/<repository>/<project>/<commit>.yaml`.
#[must_use]
pub fn approvals_path(
    env: &EnvName,
    repository: &Repository,
    project: &Project,
    commit: &CommitSha,
) -> String {
    format!("approvals/{env}/{repository}/{project}/{commit}.yaml")
}

/// The policy at `snap`; its absence is invalid input.
pub fn load_policy(gitops: &GitOps, snap: &Snapshot<'_>) -> crate::exit::Result<Policy> {
    let bytes = snap.read(POLICY)?.ok_or_else(|| {
        InvalidInput(format!(
            "{} has no {POLICY} on branch {}: expected the environment policy there",
            gitops.url(),
            gitops.branch()
        ))
    })?;
    Ok(policy::parse(POLICY, &bytes)?)
}

/// The pointer at `path`, if there is one.
pub fn load_pointer(snap: &Snapshot<'_>, path: &str) -> crate::exit::Result<Option<Pointer>> {
    match snap.read(path)? {
        Some(bytes) => Ok(Some(pointer::parse(path, &bytes)?)),
        None => Ok(None),
    }
}

/// The approvals file at `path`, if there is one.
pub fn load_approvals(
    snap: &Snapshot<'_>,
    path: &str,
) -> crate::exit::Result<Option<ApprovalFile>> {
    match snap.read(path)? {
        Some(bytes) => Ok(Some(ApprovalFile::parse(path, &bytes)?)),
        None => Ok(None),
    }
}

/// The pointer paths of environment `env`, sorted.
pub fn pointers_in(snap: &Snapshot<'_>, env: &str) -> crate::exit::Result<Vec<String>> {
    let mut paths = snap.list(&apps_dir(env))?;
    paths.retain(|p| pointer_env(p) == Some(env));
    paths.sort();
    Ok(paths)
}

/// Every pointer path at `snap`, whatever the policy says about environments.
pub fn all_pointers(snap: &Snapshot<'_>) -> crate::exit::Result<Vec<String>> {
    let mut out = Vec::new();
    for top in snap.list_dirs() {
        out.extend(pointers_in(snap, &top)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_nest_the_repository_and_name_the_environment() {
        let env: EnvName = "prod".parse().unwrap();
        let repo: Repository = "company/monorepo".parse().unwrap();
        let project: Project = "auth-service".parse().unwrap();
        let pointer = pointer_path(&env, &repo, &project);
        assert_eq!(
            pointer,
            "prod/apps/company/monorepo/auth-service/release.yaml"
        );
        assert_eq!(pointer_env(&pointer), Some("prod"));
        let register = register_path(&repo, &project);
        assert_eq!(register, "releases/company/monorepo/auth-service.yaml");
        assert_eq!(
            register_of(&register),
            Some("company/monorepo/auth-service")
        );
        let commit: CommitSha = "a".repeat(40).parse().unwrap();
        assert_eq!(
            approvals_path(&env, &repo, &project, &commit),
            format!("approvals/prod/company/monorepo/auth-service/{commit}.yaml")
        );
    }

    #[test]
    fn only_release_files_below_an_apps_directory_are_pointers() {
        assert_eq!(pointer_env("prod/apps/company/x/env.yaml"), None);
        assert_eq!(pointer_env("prod/apps/x/release.yaml"), None);
        assert_eq!(pointer_env("prod/other/company/x/release.yaml"), None);
        assert_eq!(pointer_env("releases/company/x.yaml"), None);
    }
}
