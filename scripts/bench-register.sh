#!/usr/bin/env bash
# Does registering and resolving cost the same with 10, 10,000 and 100,000 releases in a
# project's register (issue 14)? And how did the one-file register of format 1 do (issue 4)?
#
#   bash scripts/bench-register.sh            # builds the release binary, prints the figures
#
# For each size N (BENCH_SIZES, default "10 10000 100000") GitOps repositories are generated
# with `git fast-import` in seconds (not with N releasectl runs): the register of
# company/monorepo/auth-service holding N releases in format 3 (docs/register.md: bucket files
# of 20 releases, commit and alias indexes in bucket files of a 3-digit prefix, a head), and
# the same releases in the format BEFORE reads (BEFORE_FORMAT, default 2: one file per
# release, commit and alias) and in formats 1 and 2 for the migrations, next to 200 other
# projects' pointers. Each is served by `git daemon` on 127.0.0.1 (BENCH_TRANSPORT=file for
# file:// URLs).
#
# Then, side by side in one run, with warm caches (filled by one run first), every case once
# per round (the sizes interleaved):
#   register — `release create --gitops` of a fresh commit (fetch, number, build and push the
#              image to an OCI layout, commit, push): every run does the whole job;
#   get      — `release get auth-service main-<N/2>` (an alias), and by a 9-digit commit prefix;
#   migrate  — `release migrate` of the format 1 and of the format 2 register (once per size up
#              to BENCH_MIGRATE_MAX, default 10000, from a cold cache).
# "after" is this tree's binary on format 3; "before" is BEFORE (an older binary, e.g. a build
# of main before format 3) on format BEFORE_FORMAT, when given. Each figure is the median wall
# time of BENCH_RUNS runs (default 5) and the highest peak RSS (/usr/bin/time -v).
#
# Environment: BENCH_RUNS, BENCH_SIZES, BENCH_MIGRATE_MAX, BENCH_DIR (default a fresh temp dir, removed after),
# BENCH_TRANSPORT (daemon|file), RELEASECTL (a prebuilt binary; skips cargo build --release),
# BEFORE (the binary to compare with), BEFORE_FORMAT (1 or 2: the register format it gets).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

log() { printf 'bench-register: %s\n' "$*" >&2; }
need() { command -v "$1" >/dev/null 2>&1 || { log "missing $1 (apt-get install -y $2)"; exit 1; }; }
need git git
need python3 python3
[ -x /usr/bin/time ] || { log "missing /usr/bin/time (apt-get install -y time)"; exit 1; }

runs=${BENCH_RUNS:-5}
sizes=${BENCH_SIZES:-10 10000 100000}
transport=${BENCH_TRANSPORT:-daemon}
before=${BEFORE:-}
migrate_max=${BENCH_MIGRATE_MAX:-10000}
before_format=${BEFORE_FORMAT:-2}

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
    if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null || true; fi
    if [ -z "${BENCH_DIR:-}" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
rm -rf "$work/srv" "$work/registry" "$work/cache-"* "$work/results"
mkdir -p "$work/srv" "$work/results"

# --- the repositories ------------------------------------------------------------------------
# generate N FORMAT (1, 2 or 3) writes a fast-import stream of one commit.
generate() {
    python3 - "$1" "$2" "$root/scripts" <<'PY'
import hashlib, sys, time

n, fmt = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer
def h(kind, i, size):
    return hashlib.sha256(f"{kind}-{i}".encode()).hexdigest()[:size]
def data(b):
    out.write(b"data %d\n" % len(b)); out.write(b); out.write(b"\n")
def stamp(i):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_700_000_000 + i * 600))
def entry(i, indent):
    p = " " * indent
    return (
        f"number: {i}\n{p}commit: {h('commit', i, 40)}\n{p}digest: sha256:{h('digest', i, 64)}\n"
        f"{p}created_at: '{stamp(i)}'\n{p}aliases:\n{p}- alias: main-{i}\n{p}  type: branch\n"
        f"{p}triggers:\n{p}- type: branch_push\n{p}  branch: main\n"
        f"{p}  triggered_by: ci@example.com\n{p}  at: '{stamp(i)}'\n"
    )
out.write(b"commit refs/heads/main\ncommitter Bench <bench@example.com> 1700000000 +0000\n")
data(f"A register of {n} releases in format {fmt}\n".encode())
def file(path, text):
    out.write(f"M 100644 inline {path}\n".encode()); data(text.encode())
for p in range(200):
    file(f"dev/apps/company/monorepo/svc-{p}/release.yaml",
         "apiVersion: releasectl.dev/v1alpha1\nkind: ReleasePointer\n"
         f"metadata:\n  name: svc-{p}\nspec:\n  repository: company/monorepo\n"
         f"  project: svc-{p}\n  release: {h('c', p, 40)}\n  digest: sha256:{h('d', p, 64)}\n")
head = "apiVersion: releasectl.dev/v1alpha1\n"
ident = "repository: company/monorepo\nproject: auth-service\n"
if fmt == 1:
    body = "".join("- " + entry(i, 2) for i in range(1, n + 1))
    file("releases/company/monorepo/auth-service.yaml",
         head + "kind: ReleaseRegister\n" + ident + f"last_number: {n}\nreleases:\n" + body)
elif fmt == 3:
    sys.path.insert(0, sys.argv[3])
    from register3 import register_files
    releases = ((i, h('commit', i, 40), "- " + entry(i, 2), [f"main-{i}"]) for i in range(1, n + 1))
    for path, text in register_files("releases/company/monorepo/auth-service",
                                     "company/monorepo", "auth-service", list(releases)):
        file(path, text)
else:
    d = "releases/company/monorepo/auth-service"
    file(f"{d}/_register.yaml", head + "kind: ReleaseRegisterHead\n" + ident + f"last_number: {n}\n")
    for i in range(1, n + 1):
        c = h('commit', i, 40)
        a = hashlib.sha256(f"main-{i}".encode()).hexdigest()
        file(f"{d}/_releases/{i // 1000}/{i}.yaml", entry(i, 0))
        file(f"{d}/_commits/{c[:2]}/{c}", f"{i}\n")
        file(f"{d}/_aliases/{a[:2]}/main-{i}", f"{i}\n")
out.write(b"\ndone\n")
PY
}

for n in $sizes; do
    formats=3
    if [ -n "$before" ]; then formats="$formats $before_format"; fi
    if [ "$n" -le "$migrate_max" ]; then formats="$formats 1 2"; fi
    for fmt in $(printf '%s\n' $formats | sort -u); do
        repo=$work/srv/r$n-f$fmt.git
        [ -d "$repo" ] && continue   # a size listed twice (to see drift) is generated once
        git init --quiet --bare --initial-branch=main "$repo"
        start=$(date +%s%N)
        generate "$n" "$fmt" | git --git-dir="$repo" fast-import --quiet
        git --git-dir="$repo" repack -adq
        log "generated $n releases in format $fmt in $(( ($(date +%s%N) - start) / 1000000 )) ms, pack $(du -sh "$repo/objects/pack" | cut -f1)"
    done
done

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
        base=git://127.0.0.1:$port
        ;;
    file) base=file://$work/srv ;;
    *) log "BENCH_TRANSPORT must be daemon or file"; exit 2 ;;
esac

# --- the commands ------------------------------------------------------------------------------
# register BIN URL CACHE: one registration of a fresh random commit.
cat >"$work/register.sh" <<EOF
#!/usr/bin/env bash
set -euo pipefail
commit=\$(od -An -N20 -tx1 /dev/urandom | tr -d ' \\n')
RELEASECTL_CACHE_DIR="\$3" exec "\$1" --registry "oci:$work/registry" --gitops "\$2" \\
    --actor ci@example.com release create --repository company/monorepo \\
    --project auth-service --commit "\$commit" --manifests "$root/fixtures/manifests/auth-service" \\
    --source-branch main >/dev/null
EOF
# get BIN URL CACHE ID
cat >"$work/get.sh" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
RELEASECTL_CACHE_DIR="$3" exec "$1" --gitops "$2" -o json release get auth-service "$4" >/dev/null
EOF
chmod +x "$work/register.sh" "$work/get.sh"

# case LABEL CMD...: one case of the measured run (below).
case_() { local IFS=$'\x1f'; printf '%s\n' "$*" >>"$work/cases"; }

commit_of() { python3 -c "import hashlib,sys; print(hashlib.sha256(f'commit-{sys.argv[1]}'.encode()).hexdigest()[:9])" "$1"; }

: >"$work/cases"
for n in $sizes; do
    mid=$(( (n + 1) / 2 ))
    prefix=$(commit_of "$mid")
    # after: this binary, format 3.
    url=$base/r$n-f3.git
    cache=$work/cache-after-$n
    "$work/register.sh" "$bin" "$url" "$cache"   # fill the cache, prove it works
    got=$(RELEASECTL_CACHE_DIR=$cache "$bin" --gitops "$url" -o json release get auth-service "main-$((n + 1))" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["number"])')
    [ "$got" = "$((n + 1))" ] || { log "expected release $((n + 1)), got $got"; exit 1; }
    case_ "after register N=$n" "$work/register.sh" "$bin" "$url" "$cache"
    case_ "after get-alias N=$n" "$work/get.sh" "$bin" "$url" "$cache" "main-$mid"
    case_ "after get-prefix N=$n" "$work/get.sh" "$bin" "$url" "$cache" "$prefix"
    if [ -n "$before" ]; then
        url=$base/r$n-f$before_format.git
        cache=$work/cache-before-$n
        if ! "$work/register.sh" "$before" "$url" "$cache" 2>"$work/before-$n.err"; then
            log "  before N=$n fails: $(head -c 300 "$work/before-$n.err")"
            continue
        fi
        case_ "before register N=$n" "$work/register.sh" "$before" "$url" "$cache"
        case_ "before get-alias N=$n" "$work/get.sh" "$before" "$url" "$cache" "main-$mid"
        case_ "before get-prefix N=$n" "$work/get.sh" "$before" "$url" "$cache" "$prefix"
    fi
done

# Every case once per round, BENCH_RUNS rounds: the sizes are measured interleaved, so a
# machine that slows down during the run slows every size alike (measured one size after the
# other, a drift of the server's push time alone once made 100,000 look 1.6× slower than 10).
log "measuring $(wc -l <"$work/cases") cases, $runs rounds"
python3 - "$runs" "$work/cases" "$work/results/all" <<'PY'
import statistics, subprocess, sys, time
runs, cases, results = int(sys.argv[1]), sys.argv[2], sys.argv[3]
cases = [line.rstrip("\n").split("\x1f") for line in open(cases) if line.strip()]
times = {c[0]: [] for c in cases}
rss = {c[0]: 0 for c in cases}
for _ in range(runs):
    for label, *cmd in cases:
        t = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
        times[label].append((time.perf_counter() - t) * 1000)
        if p.returncode != 0:
            sys.exit(f"{label}: {' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
        for line in p.stderr.splitlines():
            if "Maximum resident set size" in line:
                rss[label] = max(rss[label], int(line.split(":")[1]))
with open(results, "a") as f:
    for label in (c[0] for c in cases):
        t = times[label]
        f.write(f"{label}\t{statistics.median(t):.0f}\t{min(t):.0f}\t{max(t):.0f}\t{rss[label]}\n")
PY

# The one-time migrations of the format 1 and format 2 registers (a fresh copy, a cold cache).
for n in $sizes; do
    [ "$n" -le "$migrate_max" ] || continue
    for fmt in 1 2; do
        [ -d "$work/srv/m$n-f$fmt.git" ] && continue   # once per size
        git clone --quiet --bare "$work/srv/r$n-f$fmt.git" "$work/srv/m$n-f$fmt.git"
        start=$(date +%s%N)
        if ! /usr/bin/time -v -o "$work/results/migrate-$n-$fmt.time" env RELEASECTL_CACHE_DIR="$work/cache-migrate-$n-$fmt" \
            "$bin" --gitops "$base/m$n-f$fmt.git" --actor ci@example.com --timeout 30m \
            release migrate auth-service >/dev/null 2>"$work/migrate-$n-$fmt.err"; then
            log "  migrate format $fmt N=$n fails: $(head -c 300 "$work/migrate-$n-$fmt.err")"
            continue
        fi
        ms=$(( ($(date +%s%N) - start) / 1000000 ))
        rss=$(grep 'Maximum resident' "$work/results/migrate-$n-$fmt.time" | awk '{print $NF}')
        printf 'migrate format %s (cold) N=%s\t%s\t%s\t%s\t%s\n' "$fmt" "$n" "$ms" "$ms" "$ms" "$rss" >>"$work/results/all"
        log "  migrate format $fmt (cold clone + rewrite + push) N=$n: $ms ms, peak RSS $((rss / 1024)) MiB"
    done
done

echo
echo "| what | N | median ms | min | max | peak RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|"
python3 - "$work/results/all" <<'PY'
import sys
for line in open(sys.argv[1]):
    label, med, lo, hi, rss = line.rstrip("\n").split("\t")
    what, n = label.rsplit(" N=", 1)
    print(f"| {what} | {int(n):,} | {med} | {lo} | {hi} | {int(rss) / 1024:.1f} |")
PY
