#!/usr/bin/env bash
# Regenerates the embedded default: a release of fixtures/manifests/auth-service in the OCI
# layout root fixtures/registry, and the GitOps pointer that pins it. Reproducible: running it
# again changes nothing (a test checks that the checked-in fixture matches a fresh build).
#   scripts/make-fixtures.sh [path/to/releasectl] [output-root]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=${1:-target/debug/releasectl}
out=${2:-fixtures}
[ -x "$bin" ] || cargo build --quiet
commit=0123456789abcdef0123456789abcdef01234567

rm -rf "$out/registry"
mkdir -p "$out/registry"
digest=$(SOURCE_DATE_EPOCH=1795000000 "$bin" release create -o json \
    --registry "oci:$out/registry" \
    --repository company/monorepo --project auth-service --commit "$commit" \
    --manifests fixtures/manifests/auth-service \
    --trigger tag --source-tag auth-service/v1.2.3 --source-branch main \
    --author 'Alice <alice@company.com>' --message 'Add session TTL' \
    --committed-at 2026-11-18T11:06:40Z --source-url https://git.example.com/company/monorepo \
    --actor ci@company.com \
    --artifact auth-service=registry.example.com/company/auth-service:v1.2.3@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 |
    sed -n 's/.*"digest": "\(sha256:[0-9a-f]*\)".*/\1/p')

app="$out/gitops/dev/apps/company/monorepo/auth-service"
mkdir -p "$app"
cat > "$app/release.yaml" <<YAML
apiVersion: releasectl.dev/v1alpha1
kind: ReleasePointer
metadata:
  name: auth-service
  annotations:
    releasectl.dev/aliases: v1.2.3
    releasectl.dev/deployed-by: alice@company.com
    releasectl.dev/deployed-at: "2026-11-18T12:00:00Z"
spec:
  repository: company/monorepo
  project: auth-service
  release: $commit
  digest: $digest
YAML
cat > "$app/env.yaml" <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: auth-service-env
  namespace: auth
data:
  ENVIRONMENT: dev
YAML
echo "$digest"
