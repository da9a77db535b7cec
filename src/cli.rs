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
use crate::settings::{Flags, Format};

mod examples;

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
    about = "Immutable releases as OCI images, delivered through GitOps with Argo CD",
    after_help = examples::ROOT
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// The flags every command accepts, shown under their own heading after the command's own
/// (those that do not matter to a command are hidden in its help: [`command`]).
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
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
    /// Output format: text for people; json (pretty, 2-space) or yaml (the same structure)
    /// for scripts.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Format::Text)]
    pub output: Format,
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
    #[command(flatten)]
    pub argocd: ArgoCdFlags,
    /// A `releasectl serve` to act through instead of the GitOps repository, e.g.
    /// https://releasectl.example.com; its token comes from RELEASECTL_SERVER_TOKEN or
    /// --server-token-file, and the actor is the token's identity (docs/serve.md).
    #[arg(long, global = true, env = "RELEASECTL_SERVER")]
    pub server: Option<String>,
    /// A file holding the bearer token for --server (never the token itself on the command
    /// line) [default: RELEASECTL_SERVER_TOKEN].
    #[arg(long, global = true, env = "RELEASECTL_SERVER_TOKEN_FILE")]
    pub server_token_file: Option<PathBuf>,
}

/// How to reach Argo CD (`--wait`, `status --live`, policy that asks for live health); the
/// token comes only from RELEASECTL_ARGOCD_TOKEN (docs/argocd.md, "Waiting for Argo CD").
#[derive(Debug, Clone, Args)]
pub struct ArgoCdFlags {
    /// Argo CD's API server, e.g. https://argocd.example.com.
    #[arg(long = "argocd", global = true, env = "RELEASECTL_ARGOCD_SERVER")]
    pub argocd_server: Option<String>,
    /// Extra CA certificates (PEM) to trust for Argo CD [default: --ca-file].
    #[arg(
        long = "argocd-ca-file",
        global = true,
        env = "RELEASECTL_ARGOCD_CA_FILE"
    )]
    pub argocd_ca_file: Option<PathBuf>,
    /// Allow an http:// Argo CD server (plain HTTP, for local use only).
    #[arg(
        long = "argocd-insecure",
        global = true,
        env = "RELEASECTL_ARGOCD_INSECURE"
    )]
    pub argocd_insecure: bool,
    /// The Application that shows a pointer: a template of {env}, {repository} and {project},
    /// normalized as the example ApplicationSet's `normalize` does.
    #[arg(
        long = "argocd-app",
        global = true,
        env = "RELEASECTL_ARGOCD_APP",
        default_value = "{env}-{repository}-{project}"
    )]
    pub argocd_app_template: String,
    /// The namespace of the Applications (Argo CD's `appNamespace`) when not Argo CD's own.
    #[arg(
        long = "argocd-app-namespace",
        global = true,
        env = "RELEASECTL_ARGOCD_APP_NAMESPACE"
    )]
    pub argocd_app_namespace: Option<String>,
    /// The Argo CD project of the Applications (sent as `project`, so a project-scoped token
    /// sees them).
    #[arg(
        long = "argocd-project",
        global = true,
        env = "RELEASECTL_ARGOCD_PROJECT"
    )]
    pub argocd_project: Option<String>,
}

/// `--wait`: follow Argo CD after the write until the Application is Synced and Healthy at
/// the pushed commit (exit 0), or Degraded, failed to sync, or out of time (exit 7).
#[derive(Debug, Clone, Args)]
pub struct WaitFlags {
    /// After the push, wait until Argo CD has synced the commit and the Application is
    /// Healthy; exit 7 when it is Degraded, its sync failed, or --wait-timeout passed.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits after the push, e.g. 5m, 90s [default: 5m].
    #[arg(long, value_parser = crate::duration::parse, requires = "wait")]
    pub wait_timeout: Option<std::time::Duration>,
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
            output: self.output.output(),
            argocd: crate::settings::ArgoCdFlags {
                server: self.argocd.argocd_server.clone(),
                ca_file: self.argocd.argocd_ca_file.clone(),
                insecure: self.argocd.argocd_insecure,
                app_template: self.argocd.argocd_app_template.clone(),
                app_namespace: self.argocd.argocd_app_namespace.clone(),
                project: self.argocd.argocd_project.clone(),
            },
            server: self.server.clone(),
            server_token_file: self.server_token_file.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and register releases.
    #[command(subcommand, after_help = examples::RELEASE)]
    Release(Box<ReleaseCommand>),
    /// Show what a release image holds, with every digest verified.
    #[command(after_help = examples::INSPECT)]
    Inspect(InspectArgs),
    /// Verify a release image; exit 0 when every check passes, 3 when one fails.
    #[command(after_help = examples::VERIFY)]
    Verify(VerifyArgs),
    /// Copy a release image between registries and OCI layouts, digests preserved.
    #[command(after_help = examples::COPY)]
    Copy(CopyArgs),
    /// Argo CD plugin: print the manifests of the release the pointer names.
    #[command(after_help = examples::GENERATE)]
    Generate(GenerateArgs),
    /// Deploy a release to an environment (or a group, or --auto), under policy.
    #[command(after_help = examples::DEPLOY)]
    Deploy(Box<DeployArgs>),
    /// Deploy the release running in one environment to another.
    #[command(after_help = examples::PROMOTE)]
    Promote(Box<PromoteArgs>),
    /// Go back to an earlier release in an environment.
    #[command(after_help = examples::ROLLBACK)]
    Rollback(Box<RollbackArgs>),
    /// Let a release blocked by `rollback --block` return to an environment.
    #[command(after_help = examples::UNBLOCK)]
    Unblock(UnblockArgs),
    /// Which release runs where.
    #[command(after_help = examples::STATUS)]
    Status(StatusArgs),
    /// The deploys of one project (or all) in one environment, from the commits' trailers.
    #[command(after_help = examples::HISTORY)]
    History(HistoryArgs),
    /// Which objects would be added, removed and changed.
    #[command(after_help = examples::DIFF)]
    Diff(DiffArgs),
    /// Approve a release for an environment (signed with --key).
    #[command(after_help = examples::APPROVE)]
    Approve(ApproveArgs),
    /// Withdraw your approval of a release for an environment.
    #[command(after_help = examples::REVOKE)]
    Revoke(RevokeArgs),
    /// Validate the GitOps repository (or each commit of a range) against its policy.
    #[command(after_help = examples::CHECK)]
    Check(CheckArgs),
    /// Show the version, the git commit and the date of the build, and the compiler.
    #[command(after_help = examples::VERSION)]
    Version,
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    #[command(after_help = examples::COMPLETION)]
    Completion(CompletionArgs),
    /// Print the man page of releasectl or of one of its commands (roff).
    #[command(after_help = examples::MAN)]
    Man(ManArgs),
    /// Named contexts in the config file: GitOps repository, branch, registry, actor.
    #[command(subcommand, after_help = examples::CONFIG)]
    Config(ConfigCommand),
    /// Counts per environment and overall: deployments, active services, completed, failed,
    /// rolled back.
    #[command(after_help = examples::SUMMARY)]
    Summary,
    /// Serve the release API over HTTP (docs/serve.md): one writer for many pipelines.
    #[command(after_help = examples::SERVE)]
    Serve(ServeArgs),
    /// Sign a release image with a cosign key (tag sha256-<hex>.sig next to it).
    #[command(after_help = examples::SIGN)]
    Sign(SignArgs),
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
    #[command(after_help = examples::CREATE)]
    Create(Box<CreateArgs>),
    /// Show one registered release.
    #[command(after_help = examples::GET)]
    Get(GetArgs),
    /// List a project's registered releases.
    #[command(after_help = examples::LIST)]
    List(ListArgs),
    /// Rewrite registers of an older format (1: one file; 2: a file per release) in bucket
    /// files (format 3), in one commit; registers already in format 3 are left as they are.
    #[command(after_help = examples::MIGRATE)]
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
    /// The source repository, as a path of names: `company/monorepo`.
    #[arg(long)]
    pub repository: Repository,
    /// The project inside the repository: `auth-service`.
    #[arg(long)]
    pub project: Project,
    /// The source commit the manifests were rendered from (40 hex digits): the release's id.
    #[arg(long)]
    pub commit: CommitSha,
    /// Directory of rendered Kubernetes manifests (.yaml, .yml, .json).
    #[arg(long)]
    pub manifests: PathBuf,
    /// What started the build [default: tag with --source-tag, else branch_push with
    /// --source-branch, else manual].
    #[arg(long, value_name = "branch_push|tag|manual")]
    pub trigger: Option<TriggerType>,
    /// The branch the commit was built from (`main`): policies' allowed_branches match it,
    /// and it makes the alias `<branch>-<number>`.
    #[arg(long)]
    pub source_branch: Option<String>,
    /// The git tag that triggered the build (`auth-service/v1.2.3`): makes an alias, as
    /// --tag-strategy says.
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
    /// Sign the pushed image with this cosign private key (PKCS#8 PEM or cosign.key; its
    /// password in RELEASECTL_SIGN_KEY_PASSWORD or COSIGN_PASSWORD).
    #[arg(long, env = "RELEASECTL_SIGN_KEY")]
    pub sign_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// An image reference, oci:PATH[:TAG], or a ReleasePointer file.
    pub target: String,
    /// Public keys (PEM) to tell who made the image's signatures; repeatable.
    #[arg(long = "key")]
    pub keys: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// An image reference, oci:PATH[:TAG], or a ReleasePointer file.
    pub target: String,
    /// Also require a signature by one of these public keys (PEM, or a directory of them);
    /// repeatable.
    #[arg(long = "key")]
    pub keys: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// An image reference, oci:PATH[:TAG], or a ReleasePointer file.
    pub target: String,
    /// The cosign private key (PKCS#8 PEM or cosign.key; its password in
    /// RELEASECTL_SIGN_KEY_PASSWORD or COSIGN_PASSWORD).
    #[arg(long, env = "RELEASECTL_SIGN_KEY")]
    pub key: PathBuf,
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
    /// Every register of format 1 or 2 in the repository.
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
    #[command(flatten)]
    pub wait: WaitFlags,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// `auth-service` when unique, else `company/monorepo/auth-service`.
    pub project: ProjectRef,
    /// The environment whose current release is promoted.
    #[arg(long)]
    pub from: EnvName,
    /// The environment it goes to.
    #[arg(long)]
    pub to: EnvName,
    #[command(flatten)]
    pub policy: PolicyFlags,
    #[command(flatten)]
    pub wait: WaitFlags,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The environment (`production`).
    pub env: EnvName,
    /// `auth-service` when unique, else `company/monorepo/auth-service`.
    pub project: ProjectRef,
    /// The release to go back to (default: the one before the current in this environment).
    #[arg(long)]
    pub to: Option<ReleaseSelector>,
    /// Keep the rolled-back release out of this environment until `unblock`.
    #[arg(long)]
    pub block: bool,
    #[command(flatten)]
    pub policy: PolicyFlags,
    #[command(flatten)]
    pub wait: WaitFlags,
}

#[derive(Debug, Args)]
pub struct UnblockArgs {
    /// The environment (`production`).
    pub env: EnvName,
    /// `auth-service` when unique, else `company/monorepo/auth-service`.
    pub project: ProjectRef,
    /// An alias (`v1.2.3`, `main-42`), a number, or a commit prefix of at least 7 hex digits.
    pub release_id: ReleaseSelector,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this project (`auth-service` or `company/monorepo/auth-service`).
    pub project: Option<ProjectRef>,
    /// Also ask Argo CD (--argocd) for each Application's live sync and health.
    #[arg(long)]
    pub live: bool,
    /// Only this environment; repeatable. With --server at least one is needed (the API
    /// answers one environment and project at a time).
    #[arg(long = "env", value_name = "ENV")]
    pub envs: Vec<EnvName>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The environment (`production`).
    pub env: EnvName,
    /// `auth-service` when unique, else `company/monorepo/auth-service`; none: every
    /// project of the environment, newest first.
    pub project: Option<ProjectRef>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// `ENV PROJECT RELEASE_ID` (what runs against what would run) or `REF_A REF_B`.
    #[arg(required = true, num_args = 2..=3)]
    pub args: Vec<String>,
    /// Exit 1 when there are differences and 0 when there are none (as `git diff
    /// --exit-code` and `kubectl diff`); without it, 0 either way.
    #[arg(long)]
    pub exit_code: bool,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The environment (`production`).
    pub env: EnvName,
    /// `auth-service` when unique, else `company/monorepo/auth-service`.
    pub project: ProjectRef,
    /// An alias (`v1.2.3`, `main-42`), a number, or a commit prefix of at least 7 hex digits.
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
    /// The environment (`production`).
    pub env: EnvName,
    /// `auth-service` when unique, else `company/monorepo/auth-service`.
    pub project: ProjectRef,
    /// An alias (`v1.2.3`, `main-42`), a number, or a commit prefix of at least 7 hex digits.
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
    #[command(after_help = examples::GET_CONTEXTS)]
    GetContexts,
    /// Print the name of the current context.
    #[command(after_help = examples::CURRENT_CONTEXT)]
    CurrentContext,
    /// Make a context the current one.
    #[command(after_help = examples::USE_CONTEXT)]
    UseContext {
        /// The context's name.
        name: String,
    },
    /// Create a context, or change an existing one: it records the --gitops, --gitops-branch,
    /// --registry, --insecure-registry and --actor given (flags or their environment variables).
    #[command(after_help = examples::SET_CONTEXT)]
    SetContext {
        /// The context's name.
        name: String,
    },
    /// Remove a context.
    #[command(after_help = examples::DELETE_CONTEXT)]
    DeleteContext {
        /// The context's name.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen on this address (`127.0.0.1:8080`, `[::]:8080`); wins over the config file.
    #[arg(long, env = "RELEASECTL_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// The server's configuration file (YAML): issuers, static tokens, anonymous read.
    #[arg(long, env = "RELEASECTL_SERVE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key. Without
    /// it, plain HTTP (terminate TLS in front, e.g. at an Ingress).
    #[arg(
        long,
        env = "RELEASECTL_TLS_CERT",
        value_name = "PEM",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        env = "RELEASECTL_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
}

/// The global flags each command shows in its help: a flag that does not change what a
/// command does is hidden there (it is still accepted, and its environment variable still
/// read, so a CI job can set them all once). Paths are command names joined by spaces.
const GLOBALS_HIDDEN: &[(&str, &[&str])] = &[
    (
        "release get",
        &["registry", "insecure_registries", "ca_file", "actor"],
    ),
    (
        "release list",
        &["registry", "insecure_registries", "ca_file", "actor"],
    ),
    (
        "release migrate",
        &["registry", "insecure_registries", "ca_file"],
    ),
    ("inspect", &["gitops", "gitops_branch", "actor"]),
    ("verify", &["gitops", "gitops_branch", "actor"]),
    ("copy", &["gitops", "gitops_branch", "actor"]),
    (
        "generate",
        &["gitops", "gitops_branch", "actor", "output", "context"],
    ),
    ("unblock", &["registry", "insecure_registries", "ca_file"]),
    (
        "status",
        &["registry", "insecure_registries", "ca_file", "actor"],
    ),
    (
        "history",
        &["registry", "insecure_registries", "ca_file", "actor"],
    ),
    ("diff", &["actor"]),
    ("approve", &["registry", "insecure_registries", "ca_file"]),
    ("revoke", &["registry", "insecure_registries", "ca_file"]),
    (
        "check",
        &["registry", "insecure_registries", "ca_file", "actor"],
    ),
    (
        "summary",
        &["registry", "insecure_registries", "ca_file", "actor"],
    ),
    ("version", NOT_OUTPUT),
    ("completion", ALL_GLOBALS),
    ("man", ALL_GLOBALS),
    ("config get-contexts", NOT_OUTPUT),
    ("config current-context", ALL_GLOBALS),
    ("config use-context", ALL_GLOBALS),
    ("config delete-context", ALL_GLOBALS),
    (
        "config set-context",
        &[
            "ca_file",
            "timeout",
            "output",
            "context",
            "verbose",
            "log_level",
        ],
    ),
];

const ALL_GLOBALS: &[&str] = &[
    "registry",
    "insecure_registries",
    "ca_file",
    "timeout",
    "gitops",
    "gitops_branch",
    "actor",
    "output",
    "context",
    "verbose",
    "log_level",
];

const NOT_OUTPUT: &[&str] = &[
    "registry",
    "insecure_registries",
    "ca_file",
    "timeout",
    "gitops",
    "gitops_branch",
    "actor",
    "context",
    "verbose",
    "log_level",
];

/// The command line's definition: [`Cli`]'s, with the global flags that do not matter to a
/// command hidden in that command's help (see [`GLOBALS_HIDDEN`]). Help, completions and man
/// pages are all generated from it.
#[must_use]
pub fn command() -> clap::Command {
    use clap::CommandFactory as _;
    let mut command = Cli::command();
    for (path, hidden) in GLOBALS_HIDDEN {
        let args: Vec<clap::Arg> = command
            .get_arguments()
            .filter(|a| hidden.contains(&a.get_id().as_str()))
            .map(|a| a.clone().hide(true))
            .collect();
        command = hide_in(command, &path.split(' ').collect::<Vec<_>>(), args);
    }
    // Argo CD's flags matter only to the writes that can `--wait` and to `status --live`.
    let argocd: Vec<clap::Arg> = command
        .get_arguments()
        .filter(|a| a.get_id().as_str().starts_with("argocd_"))
        .map(|a| a.clone().hide(true))
        .collect();
    let names: Vec<String> = command
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .filter(|n| !ARGOCD_SHOWN_IN.contains(&n.as_str()))
        .collect();
    for name in names {
        command = hide_in(command, &[name.as_str()], argocd.clone());
    }
    // `--server` matters only to the commands that go through the API (docs/serve.md).
    let server: Vec<clap::Arg> = command
        .get_arguments()
        .filter(|a| a.get_id().as_str().starts_with("server"))
        .map(|a| a.clone().hide(true))
        .collect();
    for name in SERVER_HIDDEN_IN {
        command = hide_in(command, &[name], server.clone());
    }
    command
}

/// The commands that never go through `--server` (they read no GitOps repository, or read
/// it themselves): their help hides `--server*`.
const SERVER_HIDDEN_IN: &[&str] = &[
    "inspect",
    "verify",
    "generate",
    "copy",
    "check",
    "sign",
    "serve",
    "version",
    "completion",
    "man",
];

/// The commands whose help shows the `--argocd*` flags.
const ARGOCD_SHOWN_IN: &[&str] = &["deploy", "promote", "rollback", "status"];

/// Gives the command at `path` its own hidden copies of global flags: clap propagates a
/// global flag only into a command that does not define it already.
fn hide_in(command: clap::Command, path: &[&str], args: Vec<clap::Arg>) -> clap::Command {
    match path {
        [] => command.args(args),
        [first, rest @ ..] => command.mut_subcommand(*first, |sub| hide_in(sub, rest, args)),
    }
}

/// Parses the process's arguments with [`command`] (exits 2 with clap's usage message on a
/// usage error, 0 after `--help` and `--version`).
#[must_use]
pub fn parse() -> Cli {
    use clap::FromArgMatches as _;
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}
