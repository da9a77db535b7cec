# syntax=docker/dockerfile:1
#
# The releasectl image for the Argo CD Config Management Plugin sidecar.
#
#   docker build -t registry.example.com/platform/releasectl:0.1.0 .
#
# In the sidecar the entrypoint is NOT releasectl: the container runs
# /var/run/argocd/argocd-cmp-server, which Argo CD's own `copyutil` init container copies into
# the shared `var-files` volume (manifests/repo-server-patch.yaml sets `command:`). That
# server runs `releasectl generate` (plugin/plugin.yaml, mounted from a ConfigMap) in each
# application's directory, so this image needs only the releasectl binary on PATH, CA
# certificates and the shared libraries the binary links. The ENTRYPOINT below is for running
# the image on its own, e.g. `docker run --rm IMAGE inspect oci:/data/releases/...`.

FROM rust:1-bookworm AS build
WORKDIR /src
# Only what the build reads (BuildKit transfers just these paths of the context, so target/
# is never sent). tests/ is copied because Cargo.toml declares the integration test target
# by path; add any new build inputs (build.rs, benches, workspace members) here.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY tests ./tests
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin releasectl \
    && install -D -m 0755 target/release/releasectl /out/releasectl \
    && ldd /out/releasectl

# Debian slim rather than distroless: the binary links glibc and, through git2, OpenSSL
# (libssl3, pulled in by ca-certificates) and zlib (essential in Debian). The smoke tests below
# fail the build if any shared library is missing.
#
# amazon-ecr-credential-helper is Debian's build of docker-credential-ecr-login: with
# `"credHelpers": {"<account>.dkr.ecr.<region>.amazonaws.com": "ecr-login"}` in the mounted
# docker config, releasectl gets ECR tokens from the pod's AWS identity (IRSA) with no
# long-lived secret (docs/argocd.md §4). It is the only credential helper in the image.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates amazon-ecr-credential-helper \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/releasectl /usr/local/bin/releasectl
RUN ["/usr/local/bin/releasectl", "--version"]
RUN ["docker-credential-ecr-login", "-v"]
# Argo CD runs its containers (and requires the plugin sidecar to run) as uid 999.
USER 999
ENV HOME=/home/argocd
ENTRYPOINT ["/usr/local/bin/releasectl"]
