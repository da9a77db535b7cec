#!/usr/bin/env bash
# Benchmark: a warm `status` of 20,000 pointers (issue 14), served by `git daemon` on 127.0.0.1.
#
# The repository (generated with `git fast-import` in seconds, like scripts/bench-daemon.sh):
# a policy of three environments (dev, staging, production); BENCH_POINTERS pointers (default
# 20,000) as `<env>/apps/filler/svc-NNNNN/{release.yaml,env.yaml}`, each project in the three
# environments (6,667 projects); BENCH_COMMITS commits (default 10,000); the first
# BENCH_REGISTERED projects (default 1,000) with a register of format 3 (docs/register.md)
# holding BENCH_RELEASES releases (default 1), the first of them the release their pointers
# name (alias `main-1`), the others with none.
#
# Side by side in one hyperfine run, each binary with its own warm cache (filled by one run):
# "after" (this tree's release build, or RELEASECTL) and "before" (BEFORE, e.g.
# /work/target-main/release/releasectl; it must read format 3). Both outputs (text and JSON)
# must be identical.
#
# Usage: scripts/bench-status.sh [--keep]   (needs git, hyperfine, python3)
# Environment: BENCH_RUNS (default 5), BENCH_POINTERS, BENCH_COMMITS, BENCH_REGISTERED,
# BENCH_RELEASES, RELEASECTL, BEFORE. Prints the figures; exit 1 when "after" misses 500 ms.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"
bench_start bench-status "${1:-}" git hyperfine python3
if [[ -n ${RELEASECTL:-} ]]; then
  BIN=$RELEASECTL
else
  cargo build --release --quiet
  BIN=$ROOT/target/release/releasectl
fi
BEFORE=${BEFORE:-}


bench_env

echo "generating the repository in $WORK ..." >&2
git init -q --bare -b main "$WORK/large.git"
python3 - "${BENCH_POINTERS:-20000}" "${BENCH_COMMITS:-10000}" "${BENCH_REGISTERED:-1000}" \
  "${BENCH_RELEASES:-1}" "$ROOT/scripts" <<'PY' |
import hashlib, sys
pointers, commits, registered, releases = (int(a) for a in sys.argv[1:5])
sys.path.insert(0, sys.argv[5])
from register3 import register_files
out = sys.stdout.buffer
def data(b):
    out.write(b"data %d\n" % len(b)); out.write(b); out.write(b"\n")
def file(path, text):
    out.write(b"M 100644 inline %s\n" % path.encode()); data(text.encode())
envs = ("dev", "staging", "production")
policy = "environments:\n" + "".join(
    f"  {e}:\n    promotion_policy: {{allowed_triggers: [branch_push, tag, manual], allowed_branches: [\"*\"]}}\n"
    for e in envs)
def commit_of(p):
    return hashlib.sha1(b"release-%d" % p).hexdigest()
per = max(1, -(-pointers // commits))
n = 0
for c in range(commits):
    out.write(b"commit refs/heads/main\n")
    out.write(b"committer bench <bench@example.com> %d +0000\n" % (1700000000 + c))
    data(b"filler %d\n" % c)
    if c == 0:
        file("environments.yaml", policy)
        for p in range(registered):
            d, sha = f"releases/filler/svc-{p:05d}", commit_of(p)
            items = []
            for i in range(1, releases + 1):
                rc = sha if i == 1 else hashlib.sha1(b"release-%d-%d" % (p, i)).hexdigest()
                items.append((i, rc,
                    f"- number: {i}\n  commit: {rc}\n  digest: sha256:{hashlib.sha256(rc.encode()).hexdigest()}\n"
                    f"  created_at: '2026-11-20T10:00:00Z'\n  aliases:\n  - alias: main-{i}\n    type: branch\n"
                    "  triggers:\n  - type: branch_push\n    branch: main\n    at: '2026-11-20T10:00:00Z'\n",
                    [f"main-{i}"]))
            for path, text in register_files(d, "filler", f"svc-{p:05d}", items):
                file(path, text)
    for _ in range(per):
        if n >= pointers:
            break
        env, p = envs[n % 3], n // 3
        app = f"svc-{p:05d}"
        body = ("apiVersion: releasectl.dev/v1alpha1\nkind: ReleasePointer\nmetadata:\n"
                f"  name: {app}\n  annotations:\n    releasectl.dev/deployed-at: \"2026-11-20T10:{n % 60:02d}:00Z\"\n"
                f"    releasectl.dev/deployed-by: \"ci@example.com\"\n"
                f"    releasectl.dev/release-number: \"1\"\n"
                f"spec:\n  repository: \"filler\"\n  project: \"{app}\"\n  release: \"{commit_of(p)}\"\n"
                f"  digest: \"sha256:{hashlib.sha256(commit_of(p).encode()).hexdigest()}\"\n")
        file(f"{env}/apps/filler/{app}/release.yaml", body)
        file(f"{env}/apps/filler/{app}/env.yaml",
             f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {app}-env\ndata:\n  n: \"{n}\"\n")
        n += 1
out.write(b"done\n")
PY
  git --git-dir "$WORK/large.git" fast-import --quiet --done
git --git-dir "$WORK/large.git" repack -adq
echo "large: $(git --git-dir "$WORK/large.git" ls-tree -r --name-only main | grep -c '/release.yaml$') pointers," \
  "$(git --git-dir "$WORK/large.git" rev-list --count main) commits" >&2

bench_daemon "$WORK" large.git

after="RELEASECTL_CACHE_DIR=$WORK/cache-after $BIN --gitops $URL status"
eval "$after" >"$WORK/after.txt"
eval "$after -o json" >"$WORK/after.json"
args=(-n "status, warm cache (after)" "$after")
if [[ -n $BEFORE ]]; then
  before="RELEASECTL_CACHE_DIR=$WORK/cache-before $BEFORE --gitops $URL status"
  eval "$before" >"$WORK/before.txt"
  eval "$before -o json" >"$WORK/before.json"
  cmp -s "$WORK/before.txt" "$WORK/after.txt" && cmp -s "$WORK/before.json" "$WORK/after.json" ||
    { echo "bench-status: before and after print different status" >&2; diff "$WORK/before.txt" "$WORK/after.txt" | head >&2; exit 1; }
  args+=(-n "status, warm cache (before)" "$before")
fi
echo "status rows: $(($(wc -l <"$WORK/after.txt") - 1)), with aliases: $(grep -c ' main-1 ' "$WORK/after.txt" || true)" >&2
echo "load: $(uptime)" >&2
hyperfine --style basic --warmup 1 --runs "${BENCH_RUNS:-5}" --export-json "$WORK/h.json" "${args[@]}" >&2
python3 - "$WORK/h.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
for n, x in r.items():
    print(f"{n:32s} {x['mean']*1000:8.1f} ms ± {(x['stddev'] or 0)*1000:6.1f} (user {x['user']*1000:.0f} ms, system {x['system']*1000:.0f} ms)")
ok = r["status, warm cache (after)"]["mean"] <= 0.5
print(f"{'PASS' if ok else 'FAIL'}  warm status of 20,000 pointers <= 500 ms")
sys.exit(0 if ok else 1)
PY
