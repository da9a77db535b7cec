//! The `Examples:` section of each command's help (clap `after_help`), as argocd, kargo and
//! flux show them. Every line that starts with `releasectl` runs as written in
//! tests/integration/help.rs, against the fixture world: a GitOps repository with the example
//! policy (RELEASECTL_GITOPS), RELEASECTL_REGISTRY=oci:registry, a pointer file release.yaml
//! (and app/release.yaml) and rendered manifests in rendered/ in the working directory.

pub const ROOT: &str = "\
Examples:
  # Which release runs where, and what deploying one to staging would decide
  releasectl status
  releasectl deploy staging auth-service v1.2.3 --dry-run

  # Every command's own examples
  releasectl deploy --help";

pub const RELEASE: &str = "\
Examples:
  # Package, push and register the rendered manifests of a tagged build
  releasectl release create --repository company/monorepo --project auth-service --commit 0123456789abcdef0123456789abcdef01234567 --manifests rendered/ --source-branch main --source-tag auth-service/v1.2.3

  # Show a release by its alias, and every release of the project
  releasectl release get auth-service v1.2.3
  releasectl release list auth-service";

pub const CREATE: &str = "\
Examples:
  # Package, push and register the rendered manifests of a tagged build (CI)
  releasectl release create --repository company/monorepo --project auth-service --commit 0123456789abcdef0123456789abcdef01234567 --manifests rendered/ --source-branch main --source-tag auth-service/v1.2.3

  # The same, with the source commit's details and a built artifact, as JSON
  releasectl release create -o json --repository company/monorepo --project auth-service --commit 0123456789abcdef0123456789abcdef01234567 --manifests rendered/ --source-branch main --source-tag auth-service/v1.2.3 --author 'Alice <alice@company.com>' --message 'Add session TTL' --artifact auth-service=registry.example.com/company/auth-service:v1.2.3";

pub const GET: &str = "\
Examples:
  # A release by alias, by number, or by commit prefix
  releasectl release get auth-service v1.2.3
  releasectl release get auth-service 1
  releasectl release get company/monorepo/auth-service 0123456 -o yaml";

pub const LIST: &str = "\
Examples:
  releasectl release list auth-service
  releasectl release list company/monorepo/auth-service -o json";

pub const INSPECT: &str = "\
Examples:
  # The release a pointer file names (its spec.registry, else --registry)
  releasectl inspect release.yaml

  # A release image in an OCI layout directory (or a registry), by its commit tag
  releasectl inspect oci:registry/company/monorepo/auth-service:0123456789abcdef0123456789abcdef01234567 -o json";

pub const VERIFY: &str = "\
Examples:
  # Exit 0 when every digest matches, 3 when one does not
  releasectl verify release.yaml
  releasectl verify oci:registry/company/monorepo/auth-service:0123456789abcdef0123456789abcdef01234567 -o json";

pub const COPY: &str = "\
Examples:
  # Into an air-gapped directory: a layout per project, as --registry oci:airgap reads it
  releasectl copy release.yaml oci:airgap/company/monorepo/auth-service
  releasectl --registry oci:airgap verify release.yaml

  # Between registries; the tag defaults to the source's
  releasectl copy registry.example.com/company/monorepo/auth-service:v1.2.3 mirror.example.com/company/monorepo/auth-service";

pub const GENERATE: &str = "\
Examples:
  # As Argo CD runs it: in the application's directory (release.yaml, env.yaml), `releasectl
  # generate`; from elsewhere, name the pointer (nothing else may sit beside it)
  releasectl generate --pointer app/release.yaml

  # The parameters Argo CD shows for the application
  releasectl generate --pointer app/release.yaml --parameters";

pub const DEPLOY: &str = "\
Examples:
  # One release of one project
  releasectl deploy dev auth-service v1.2.3

  # See the plan and every policy decision first
  releasectl deploy staging auth-service v1.2.3 --dry-run

  # Every environment with auto_deploy whose policy admits the release
  releasectl deploy --auto auth-service v1.2.3

  # A release group: several projects in one commit, all or none
  releasectl deploy dev auth-service=v1.2.3 billing=v2.0.1

  # Outside the deployment window, recorded in the commit
  releasectl deploy production auth-service v1.2.3 --override windows --reason 'INC-1234 hotfix'

  # Through a releasectl serve, as the identity of the token in RELEASECTL_SERVER_TOKEN
  releasectl --server https://releasectl.example.com deploy staging auth-service v1.2.3 --dry-run";

pub const PROMOTE: &str = "\
Examples:
  releasectl promote auth-service --from dev --to staging
  releasectl promote auth-service --from staging --to production --dry-run";

pub const ROLLBACK: &str = "\
Examples:
  # Back to the release before the current one
  releasectl rollback dev auth-service

  # Back to a named release, and keep the bad one out until `unblock`
  releasectl rollback production auth-service --to v1.2.2 --block";

pub const UNBLOCK: &str = "\
Examples:
  releasectl unblock production auth-service v1.2.3";

pub const STATUS: &str = "\
Examples:
  releasectl status
  releasectl status auth-service -o json";

pub const HISTORY: &str = "\
Examples:
  # Every deploy, rollback and hand edit of one project in one environment
  releasectl history dev auth-service

  # The whole environment, newest first, as YAML
  releasectl history dev -o yaml";

pub const DIFF: &str = "\
Examples:
  # What deploying a release would change in an environment
  releasectl diff staging auth-service v1.2.3

  # In a script: exit 1 when there are differences, 0 when none
  releasectl diff --exit-code dev auth-service v1.2.3

  # Two release images
  releasectl diff release.yaml oci:registry/company/monorepo/auth-service:0123456789abcdef0123456789abcdef01234567";

pub const APPROVE: &str = "\
Examples:
  releasectl approve production auth-service v1.2.3 --justification 'CHG-1234 reviewed'

  # Signed with an SSH key held by ssh-agent
  releasectl approve production auth-service v1.2.3 --justification 'CHG-1234' --key ~/.ssh/id_ed25519.pub";

pub const REVOKE: &str = "\
Examples:
  releasectl revoke production auth-service v1.2.3";

pub const CHECK: &str = "\
Examples:
  # The branch tip of --gitops
  releasectl check

  # Every commit a push adds, in a pre-receive hook
  releasectl check --here --range 0000000..HEAD";

pub const VERSION: &str = "\
Examples:
  releasectl version
  releasectl version -o json";

pub const COMPLETION: &str = "\
Examples:
  # Load completions into the current bash: source <(releasectl completion bash)
  releasectl completion bash
  releasectl completion zsh";

pub const MAN: &str = "\
Examples:
  # Read with: releasectl man deploy | man -l -
  releasectl man
  releasectl man release create";

pub const CONFIG: &str = "\
Examples:
  releasectl config set-context lab --gitops https://git.example.com/platform/gitops.git --registry registry.example.com
  releasectl config get-contexts
  releasectl --context lab status";

pub const GET_CONTEXTS: &str = "\
Examples:
  releasectl config get-contexts
  releasectl config get-contexts -o json";

pub const CURRENT_CONTEXT: &str = "\
Examples:
  releasectl config current-context";

pub const USE_CONTEXT: &str = "\
Examples:
  releasectl config use-context lab";

pub const SET_CONTEXT: &str = "\
Examples:
  releasectl config set-context lab --gitops https://git.example.com/platform/gitops.git --registry registry.example.com
  releasectl config set-context lab --gitops-branch release";

pub const DELETE_CONTEXT: &str = "\
Examples:
  releasectl config delete-context lab";

pub const SUMMARY: &str = "\
Examples:
  # Deployments per environment and overall: completed, failed, rolled back, active services
  releasectl summary
  releasectl summary -o json";

pub const SERVE: &str = "\
Examples:
  # The release API on port 8080, configured as docs/serve.md shows
  releasectl serve --listen 127.0.0.1:8080 --config /etc/releasectl/serve.yaml";

pub const SIGN: &str = "\
Examples:
  # Sign the release a pointer names with a cosign key (its password, if any, in
  # COSIGN_PASSWORD), then check the signature
  releasectl sign release.yaml --key cosign.key
  releasectl verify release.yaml --key cosign.pub

  # The same by reference, in a registry
  releasectl sign registry.example.com/releases/company/monorepo/auth-service@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef --key cosign.key";

pub const MIGRATE: &str = "\\
Examples:
  # Move one project's register, or every register of an older format, to bucket files
  # (format 3, docs/register.md); a register already moved is left as it is
  releasectl release migrate auth-service
  releasectl release migrate --all";
