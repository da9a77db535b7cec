#!/usr/bin/env bash
# How long does one `release create --gitops` registration take against a large GitOps
# repository (issue 4): 10,000 releases in one project's register, 5,000 commits of history?
#
#   bash scripts/bench-register.sh            # builds the release binary, prints the figures
#
# The repository is generated with `git fast-import` in a few seconds (not with 5,000
# releasectl runs): 4,990 commits that move ReleasePointers of 200 other projects, and 10
# commits that grow the register of company/monorepo/auth-service by 1,000 releases each, in
# the format src/gitops/register.rs writes (a ReleaseRegister with last_number). It is served
# by `git daemon` on 127.0.0.1 (BENCH_TRANSPORT=file for a file:// URL instead).
#
# Then, with the release build and an OCI layout registry:
#   cold — an empty RELEASECTL_CACHE_DIR every run (full clone of the history, then register);
#   warm — the cache kept from the previous run (fetch only what is new, then register).
# Every run registers a new commit, so every run does the whole job: fetch, number, build and
# push the image, commit, push. Timed with hyperfine when installed, else /usr/bin/time -v.
#
# Environment: BENCH_RUNS (default 10), BENCH_DIR (default a fresh temp dir, removed after),
# BENCH_TRANSPORT (daemon|file), RELEASECTL (a prebuilt binary; skips cargo build --release).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

log() { printf 'bench-register: %s\n' "$*" >&2; }
need() { command -v "$1" >/dev/null 2>&1 || { log "missing $1 (apt-get install -y $2)"; exit 1; }; }
need git git
need python3 python3

runs=${BENCH_RUNS:-10}
transport=${BENCH_TRANSPORT:-daemon}
releases=10000
commits=5000
register_commits=10

if [ -n "${RELEASECTL:-}" ]; then
    bin=$RELEASECTL
else
    log "cargo build --release (takes a few minutes on 2 cores)"
    cargo build --release --quiet
    bin=$root/target/release/releasectl
fi

if [ -n "${BENCH_DIR:-}" ]; then
    work=$BENCH_DIR
    mkdir -p "$work"
else
    work=$(mktemp -d /tmp/releasectl-bench-XXXXXX)
fi
daemon_pid=
cleanup() {
    [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null || true
    [ -z "${BENCH_DIR:-}" ] && rm -rf "$work"
}
trap cleanup EXIT

# --- the repository -------------------------------------------------------------------------
repo=$work/srv/gitops.git
rm -rf "$work/srv" "$work/registry" "$work/cache-"*
git init --quiet --bare --initial-branch=main "$repo"
log "generating $commits commits and a register of $releases releases with git fast-import"
start=$(date +%s.%N)
python3 - "$commits" "$releases" "$register_commits" <<'PY' | git --git-dir="$repo" fast-import --quiet
import hashlib, sys

commits, releases, register_commits = (int(a) for a in sys.argv[1:4])
out = sys.stdout.buffer
def h(kind, n, size):
    return hashlib.sha256(f"{kind}-{n}".encode()).hexdigest()[:size]

def data(b):
    out.write(b"data %d\n" % len(b))
    out.write(b)
    out.write(b"\n")

def stamp(n):
    t = 1_700_000_000 + n * 600
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

def entry(n):
    return (
        f"- number: {n}\n"
        f"  commit: {h('commit', n, 40)}\n"
        f"  digest: sha256:{h('digest', n, 64)}\n"
        f"  created_at: \"{stamp(n)}\"\n"
        f"  aliases:\n"
        f"  - alias: main-{n}\n"
        f"    type: branch\n"
        f"  triggers:\n"
        f"  - type: branch_push\n"
        f"    branch: main\n"
        f"    triggered_by: ci@example.com\n"
        f"    at: \"{stamp(n)}\"\n"
    )

header = (
    "apiVersion: releasectl.dev/v1alpha1\nkind: ReleaseRegister\n"
    "repository: company/monorepo\nproject: auth-service\n"
)
body = []
# Register commits spread evenly through the history.
every = commits // register_commits
per = releases // register_commits
registered = 0
for i in range(1, commits + 1):
    out.write(b"commit refs/heads/main\n")
    out.write(b"mark :%d\n" % i)
    out.write(b"committer Bench <bench@example.com> %d +0000\n" % (1_700_000_000 + i * 60))
    if i % every == 0:
        for n in range(registered + 1, registered + per + 1):
            body.append(entry(n))
        registered += per
        data(f"Register releases up to {registered}\n".encode())
        if i > 1:
            out.write(b"from :%d\n" % (i - 1))
        text = header + f"last_number: {registered}\nreleases:\n" + "".join(body)
        out.write(b"M 100644 inline releases/company/monorepo/auth-service.yaml\n")
        data(text.encode())
    else:
        p = i % 200
        data(f"Deploy svc-{p} to dev: commit {i}\n".encode())
        if i > 1:
            out.write(b"from :%d\n" % (i - 1))
        out.write(f"M 100644 inline dev/apps/company/monorepo/svc-{p}/release.yaml\n".encode())
        data((
            "apiVersion: releasectl.dev/v1alpha1\nkind: ReleasePointer\n"
            f"metadata:\n  name: svc-{p}\nspec:\n  repository: company/monorepo\n"
            f"  project: svc-{p}\n  release: {h('c', i, 40)}\n"
            f"  digest: sha256:{h('d', i, 64)}\n"
        ).encode())
    out.write(b"\n")
out.write(b"done\n")
PY
git --git-dir="$repo" repack -adq
log "generated in $(python3 -c "import sys; print(round($(date +%s.%N) - $start, 1))") s: \
$(git --git-dir="$repo" rev-list --count main) commits, \
$(git --git-dir="$repo" show main:releases/company/monorepo/auth-service.yaml | grep -c '^- number:') releases in the register, \
pack $(du -sh "$repo/objects/pack" | cut -f1)"

case $transport in
    daemon)
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        git daemon --reuseaddr --listen=127.0.0.1 --port="$port" --base-path="$work/srv" \
            --export-all --enable=receive-pack "$work/srv" 2>"$work/daemon.log" &
        daemon_pid=$!
        for _ in $(seq 100); do
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
            sleep 0.05
        done
        url=git://127.0.0.1:$port/gitops.git
        ;;
    file) url=file://$repo ;;
    *) log "BENCH_TRANSPORT must be daemon or file"; exit 2 ;;
esac

# --- one registration ----------------------------------------------------------------------
# A fresh 40-hex commit per run, so every run registers (never the idempotent no-op).
cat >"$work/register.sh" <<EOF
#!/usr/bin/env bash
set -euo pipefail
commit=\$(od -An -N20 -tx1 /dev/urandom | tr -d ' \\n')
RELEASECTL_CACHE_DIR="\$1" exec "$bin" --registry "oci:$work/registry" --gitops "$url" \\
    --actor ci@example.com release create --repository company/monorepo \\
    --project auth-service --commit "\$commit" --manifests "$root/fixtures/manifests/auth-service" \\
    --source-branch main >/dev/null
EOF
chmod +x "$work/register.sh"

# Prove it works (and that the generated register parses) before timing anything.
"$work/register.sh" "$work/cache-check"
number=$(RELEASECTL_CACHE_DIR=$work/cache-check "$bin" --gitops "$url" -o json release get \
    auth-service "main-$((releases + 1))" | python3 -c 'import json,sys; print(json.load(sys.stdin)["number"])')
[ "$number" = "$((releases + 1))" ] || { log "expected release $((releases + 1)), got $number"; exit 1; }
log "check: a registration against $url became release $number"

if command -v hyperfine >/dev/null 2>&1; then
    hyperfine --shell=none --runs "$runs" --export-json "$work/cold.json" \
        --prepare "rm -rf $work/cache-cold" \
        --command-name "cold (empty cache: clone $commits commits, register)" \
        "$work/register.sh $work/cache-cold"
    "$work/register.sh" "$work/cache-warm" # fill the cache
    hyperfine --shell=none --warmup 1 --runs "$runs" --export-json "$work/warm.json" \
        --command-name "warm (cache kept: fetch new commits, register)" \
        "$work/register.sh $work/cache-warm"
    python3 - "$work/cold.json" "$work/warm.json" <<'PY'
import json, sys
for path in sys.argv[1:]:
    r = json.load(open(path))["results"][0]
    print(f"{r['command']}: mean {r['mean']*1000:.0f} ms ± {r['stddev']*1000:.0f} ms, "
          f"median {r['median']*1000:.0f} ms, min {r['min']*1000:.0f} ms, max {r['max']*1000:.0f} ms "
          f"({len(r['times'])} runs)")
PY
else
    need /usr/bin/time time
    rm -rf "$work/cache-cold"
    echo "cold:"; /usr/bin/time -v "$work/register.sh" "$work/cache-cold" 2>&1 |
        grep -E 'Elapsed|Maximum resident'
    echo "warm:"; /usr/bin/time -v "$work/register.sh" "$work/cache-cold" 2>&1 |
        grep -E 'Elapsed|Maximum resident'
fi
log "register now holds $(git --git-dir="$repo" show main:releases/company/monorepo/auth-service.yaml | grep -c '^- number:') releases; history $(git --git-dir="$repo" rev-list --count main) commits"
