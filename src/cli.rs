//! The command line (docs/design.md §10), stage one: syntax only. Values that have a domain
//! type are parsed into it here, by clap's value parsers (environment, project, release id,
//! `--override` rule, GitOps URL, tag strategy), so a bad value is a usage error (exit 2)
//! that names the flag.

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser as _};
use clap::{Args, Parser, Subcommand};

use crate::deploy::Override;
use crate::format::TriggerType;
use crate::gitops::register::TagStrategy;
use crate::gitops::{ProjectRef, ReleaseSelector, Url};
use crate::ids::{CommitSha, Project, Repository};
use crate::oci::RegistryBase;
use crate::policy::EnvName;
use crate::settings::{Flags, Output};

/// `--version`: the crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// `--version` in full, and `releasectl version`: what was built, from which commit, when, with
/// which compiler (recorded by build.rs).
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("RELEASECTL_GIT_COMMIT"),
    ", built ",
    env!("RELEASECTL_BUILD_DATE"),
    ", ",
    env!("RELEASECTL_RUSTC"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "releasectl",
    version = VERSION,
    long_version = LONG_VERSION,
    about = "Immutable releases as OCI images, delivered through GitOps with Argo CD"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Registry for releases: host[:port][/prefix] or oci:PATH (a directory of OCI layouts).
    #[arg(long, global = true, env = "RELEASECTL_REGISTRY")]
    pub registry: Option<RegistryBase>,
    /// Registries (host:port) spoken to over plain HTTP; repeat or comma-separate.
    #[arg(
        long = "insecure-registry",
        global = true,
        env = "RELEASECTL_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    pub insecure_registries: Vec<String>,
    /// Extra CA certificates (PEM) to trust for registries.
    #[arg(long, global = true, env = "RELEASECTL_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Time budget for the whole command, e.g. 45s, 2m.
    #[arg(long, global = true, env = "RELEASECTL_TIMEOUT", value_parser = crate::duration::parse)]
    pub timeout: Option<std::time::Duration>,
    /// The GitOps repository: a URL (file://, git://, http(s)://, ssh://) or a path.
    #[arg(long, global = true, env = "RELEASECTL_GITOPS")]
    pub gitops: Option<Url>,
    /// The GitOps repository's branch [default: the context's, else main].
    #[arg(long, global = true, env = "RELEASECTL_GITOPS_BRANCH")]
    pub gitops_branch: Option<String>,
    /// Who is acting (commit author, triggered_by); else git's user.email, else CI variables.
    #[arg(long, global = true, env = "RELEASECTL_ACTOR")]
    pub actor: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// A context of the config file (`releasectl config get-contexts`) instead of the current
    /// one; flags and environment variables still win over it.
    #[arg(long, global = true, env = "RELEASECTL_CONTEXT")]
    pub context: Option<String>,
    /// More on stderr: -v for info, -vv for debug (as RELEASECTL_LOG).
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// How much to log on stderr: quiet, info or debug [default: RELEASECTL_LOG, else quiet].
    #[arg(long, global = true, value_parser = ["quiet", "info", "debug"])]
    pub log_level: Option<String>,
}

impl Global {
    /// The log level the flags ask for, if they do: `--log-level` wins over `-v`.
    #[must_use]
    pub fn log_level(&self) -> Option<crate::log::Level> {
        use crate::log::Level;
        match (self.log_level.as_deref(), self.verbose) {
            (Some("debug"), _) | (None, 2..) => Some(Level::Debug),
            (Some("info"), _) | (None, 1) => Some(Level::Info),
            (Some(_), _) => Some(Level::Quiet),
            (None, 0) => None,
        }
    }

    /// The flags as stage two takes them.
    #[must_use]
    pub fn flags(&self) -> Flags {
        Flags {
            registry: self.registry.clone(),
            insecure_registries: self.insecure_registries.clone(),
            ca_file: self.ca_file.clone(),
            timeout: self.timeout,
            gitops: self.gitops.clone(),
            gitops_branch: self.gitops_branch.clone(),
            actor: self.actor.clone(),
            output: self.output,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and register releases.
    #[command(subcommand)]
    Release(Box<ReleaseCommand>),
    /// Show what a release image holds, with every digest verified.
    Inspect(InspectArgs),
    /// Verify a release image; exit 0 when every check passes, 3 when one fails.
    Verify(VerifyArgs),
    /// Copy a release image between registries and OCI layouts, digests preserved.
    Copy(CopyArgs),
    /// Argo CD plugin: print the manifests of the release the pointer names.
    Generate(GenerateArgs),
    /// Deploy a release to an environment (or a group, or --auto), under policy.
    Deploy(Box<DeployArgs>),
    /// Deploy the release running in one environment to another.
    Promote(Box<PromoteArgs>),
    /// Go back to an earlier release in an environment.
    Rollback(Box<RollbackArgs>),
    /// Let a release blocked by `rollback --block` return to an environment.
    Unblock(UnblockArgs),
    /// Which release runs where.
    Status(StatusArgs),
    /// The deploys of one project in one environment, from the commits' trailers.
    History(HistoryArgs),
    /// Which objects would be added, removed and changed.
    Diff(DiffArgs),
    /// Approve a release for an environment (signed with --key).
    Approve(ApproveArgs),
    /// Withdraw your approval of a release for an environment.
    Revoke(RevokeArgs),
    /// Validate the GitOps repository (or each commit of a range) against its policy.
    Check(CheckArgs),
    /// Show the version, the git commit and the date of the build, and the compiler.
    Version,
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completion(CompletionArgs),
    /// Print the man page of releasectl or of one of its commands (roff).
    Man(ManArgs),
    /// Named contexts in the config file: GitOps repository, branch, registry, actor.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The ReleasePointer file.
    #[arg(long, default_value = "release.yaml")]
    pub pointer: PathBuf,
    /// Print the Argo CD parameter announcement (the release's number, aliases, commit and
    /// digest, from the verified metadata) instead of the manifests: the plugin's
    /// `parameters.dynamic` command.
    #[arg(long)]
    pub parameters: bool,
}

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Package rendered manifests into a release image, push it, and register it (--gitops).
    Create(Box<CreateArgs>),
    /// Show one registered release.
    Get(GetArgs),
    /// List a project's registered releases.
    List(ListArgs),
    /// Rewrite one-file registers (format 1) in the one-file-per-release layout (format 2),
    /// in one commit; registers already in format 2 are left as they are.
    Migrate(MigrateArgs),
}

/// `--tag-strategy monorepo|tag-all`: `monorepo` makes an alias only of tags
/// `<project>/v*` (`auth-service/v1.2.3` → `v1.2.3`); `tag-all` of every tag.
fn tag_strategy() -> impl clap::builder::TypedValueParser<Value = TagStrategy> {
    PossibleValuesParser::new(["monorepo", "tag-all"])
        .map(|s| s.parse::<TagStrategy>().expect("a possible value"))
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(long)]
    pub repository: Repository,
    #[arg(long)]
    pub project: Project,
    #[arg(long)]
    pub commit: CommitSha,
    /// Directory of rendered Kubernetes manifests (.yaml, .yml, .json).
    #[arg(long)]
    pub manifests: PathBuf,
    #[arg(long, value_name = "branch_push|tag|manual")]
    pub trigger: Option<TriggerType>,
    #[arg(long)]
    pub source_branch: Option<String>,
    #[arg(long)]
    pub source_tag: Option<String>,
    /// Which git tags make an alias: `monorepo` (only `<project>/v*`) or `tag-all`.
    #[arg(long, value_parser = tag_strategy(), default_value = "monorepo")]
    pub tag_strategy: TagStrategy,
    /// Author of the source commit, e.g. "Alice <alice@example.com>".
    #[arg(long)]
    pub author: Option<String>,
    /// Message of the source commit.
    #[arg(long)]
    pub message: Option<String>,
    /// Commit time of the source commit (RFC 3339); used as created_at when
    /// SOURCE_DATE_EPOCH is not set.
    #[arg(long)]
    pub committed_at: Option<String>,
    /// URL of the source repository.
    #[arg(long)]
    pub source_url: Option<String>,
    /// A built artifact: NAME=URI[@DIGEST]; repeatable.
    #[arg(long = "artifact")]
    pub artifacts: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// An image reference, oci:PATH[:TAG], or a ReleasePointer file.
    pub target: String,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// An image reference, oci:PATH[:TAG], or a ReleasePointer file.
    pub target: String,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Source image: registry reference or oci:PATH[:TAG].
    pub source: String,
    /// Destination: registry reference or oci:PATH[:TAG]; the tag defaults to the source's.
    pub destination: String,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// `auth-service` when unique, else `company/monorepo/auth-service`.
    pub project: ProjectRef,
    /// An alias (`v1.2.3`, `main-42`), a number, or a commit prefix of at least 7 hex digits.
    pub release_id: ReleaseSelector,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// `auth-service` when unique, else `company/monorepo/auth-service`.
    pub project: ProjectRef,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// `auth-service` when unique, else `company/monorepo/auth-service`.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub project: Option<ProjectRef>,
    /// Every register of format 1 in the repository.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct PolicyFlags {
    /// Print the plan and every decision; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Let a failing rule pass (recorded in the commit); needs --reason. Repeatable.
    #[arg(long = "override", value_name = "RULE", requires = "reason")]
    pub overrides: Vec<Override>,
    /// Why the override is needed.
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// `ENV PROJECT RELEASE_ID`, `ENV P1=ID1 P2=ID2 ...` (a release group), or with --auto
    /// `PROJECT RELEASE_ID`.
    #[arg(required = true, num_args = 2..)]
    pub args: Vec<String>,
    /// Deploy to every environment with auto_deploy whose policy admits the release.
    #[arg(long)]
    pub auto: bool,
    #[command(flatten)]
    pub policy: PolicyFlags,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    pub project: ProjectRef,
    #[arg(long)]
    pub from: EnvName,
    #[arg(long)]
    pub to: EnvName,
    #[command(flatten)]
    pub policy: PolicyFlags,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    pub env: EnvName,
    pub project: ProjectRef,
    /// The release to go back to (default: the one before the current in this environment).
    #[arg(long)]
    pub to: Option<ReleaseSelector>,
    /// Keep the rolled-back release out of this environment until `unblock`.
    #[arg(long)]
    pub block: bool,
    #[command(flatten)]
    pub policy: PolicyFlags,
}

#[derive(Debug, Args)]
pub struct UnblockArgs {
    pub env: EnvName,
    pub project: ProjectRef,
    pub release_id: ReleaseSelector,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this project (`auth-service` or `company/monorepo/auth-service`).
    pub project: Option<ProjectRef>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    pub env: EnvName,
    pub project: ProjectRef,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// `ENV PROJECT RELEASE_ID` (what runs against what would run) or `REF_A REF_B`.
    #[arg(required = true, num_args = 2..=3)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    pub env: EnvName,
    pub project: ProjectRef,
    pub release_id: ReleaseSelector,
    /// Why this release may go to this environment.
    #[arg(long)]
    pub justification: String,
    /// Sign with this SSH key: a private key file, or a public key (`.pub`) whose private
    /// half is in ssh-agent (signed through `ssh-keygen -Y sign`).
    #[arg(long)]
    pub key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    pub env: EnvName,
    pub project: ProjectRef,
    pub release_id: ReleaseSelector,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Check each commit of `A..B` (first-parent) instead of the branch tip's state.
    #[arg(long)]
    pub range: Option<String>,
    /// Read the repository this process runs in (a `pre-receive` hook) instead of --gitops;
    /// policy windows are judged at the current time, not at commit time.
    #[arg(long)]
    pub here: bool,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell: bash, zsh, fish, powershell or elvish.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// A command (`deploy`, `release create`); none: the page of releasectl itself.
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// List the contexts; the current one is marked with `*`.
    GetContexts,
    /// Print the name of the current context.
    CurrentContext,
    /// Make a context the current one.
    UseContext {
        /// The context's name.
        name: String,
    },
    /// Create a context, or change an existing one: it records the --gitops, --gitops-branch,
    /// --registry, --insecure-registry and --actor given (flags or their environment variables).
    SetContext {
        /// The context's name.
        name: String,
    },
    /// Remove a context.
    DeleteContext {
        /// The context's name.
        name: String,
    },
}
