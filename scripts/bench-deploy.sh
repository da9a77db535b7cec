#!/usr/bin/env bash
# Benchmark: `releasectl deploy` cost grows with the changed paths, not the repository
# (docs/design.md §7, issue 5 "Speed"). Not a timed test: run it by hand and report the figures.
#
#  1. Generates two bare GitOps repositories: a large one (20,000 files, 10,000 commits, built
#     with `git fast-import`) and a small one (10 files), both with the same policy, and
#     registers one release in each (`release create --gitops`, OCI layout registry).
#  2. Times `releasectl deploy dev auth-service 1` against each with a warm cache (hyperfine;
#     before every run the remote's branch is reset to where it was, so every run really
#     writes a pointer, commits and pushes). The large/small ratio must be < 2.
#  3. Times, side by side on the large repository, what a user would otherwise script:
#     `git clone --depth 1`, edit the pointer, `git commit`, `git push`. releasectl must be at
#     least 5x faster.
#
# Usage: scripts/bench-deploy.sh [--keep]   (needs git, hyperfine, python3; builds
# target/release/releasectl if it is missing). Exit 1 when a target is missed.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"
bench_start bench-deploy "${1:-}" git hyperfine python3

BIN=$ROOT/target/release/releasectl
if [[ ! -x $BIN ]]; then
  echo "building target/release/releasectl ..." >&2
  cargo build --release --quiet
fi

# No user or system git config, no inherited RELEASECTL_* settings.
bench_env

POLICY='environments:
  dev:
    promotion_policy: {allowed_triggers: [branch_push, tag, manual], allowed_branches: ["*"], auto_deploy: true}
'
COMMIT=0123456789abcdef0123456789abcdef01234567
POINTER=dev/apps/company/monorepo/auth-service/release.yaml

# make_repo DIR FILES COMMITS: a bare repository whose main holds environments.yaml plus FILES
# filler files (pointers and env.yaml of other apps, as a real GitOps repository holds) spread
# over COMMITS commits, written by `git fast-import` (commits to one branch chain by themselves).
make_repo() {
  local dir=$1 files=$2 commits=$3
  git init -q --bare -b main "$dir"
  POLICY="$POLICY" python3 - "$files" "$commits" <<'PY' | git --git-dir "$dir" fast-import --quiet --done
import os, sys
files, commits = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer
def data(b):
    out.write(b"data %d\n" % len(b)); out.write(b); out.write(b"\n")
policy = os.environ["POLICY"].encode()
per = max(1, -(-files // commits))
n = 0
for c in range(commits):
    out.write(b"commit refs/heads/main\n")
    out.write(b"committer bench <bench@example.com> %d +0000\n" % (1700000000 + c))
    data(b"filler %d\n" % c)
    if c == 0:
        out.write(b"M 100644 inline environments.yaml\n"); data(policy)
    for _ in range(per):
        if n >= files:
            break
        env = ("dev", "staging", "production")[n % 3]
        app = "svc-%05d" % (n // 2)
        name = "release.yaml" if n % 2 == 0 else "env.yaml"
        body = (b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s-%d\ndata:\n  n: \"%d\"\n"
                % (app.encode(), n, n))
        out.write(b"M 100644 inline filler/%s/%s/%s\n" % (env.encode(), app.encode(), name.encode()))
        data(body)
        n += 1
out.write(b"done\n")
PY
  git --git-dir "$dir" repack -adq
}

echo "generating repositories in $WORK ..." >&2
make_repo "$WORK/large.git" 20000 10000
make_repo "$WORK/small.git" 9 1   # + environments.yaml = 10 files
for r in large small; do
  files=$(git --git-dir "$WORK/$r.git" ls-tree -r --name-only main | wc -l)
  commits=$(git --git-dir "$WORK/$r.git" rev-list --count main)
  echo "$r: $files files, $commits commits" >&2
done

# Register one release in each and deploy it once (so the pointer exists and the next deploy
# replaces it, the common case), then remember where main is: every timed run starts there.
declare -A BASE
for r in large small; do
  common=(--gitops "$WORK/$r.git" --registry "oci:$WORK/registry" --actor bench@example.com)
  RELEASECTL_CACHE_DIR=$WORK/cache-$r "$BIN" "${common[@]}" release create \
    --repository company/monorepo --project auth-service --commit "$COMMIT" \
    --manifests "$ROOT/fixtures/manifests/auth-service" --source-branch main >/dev/null
  RELEASECTL_CACHE_DIR=$WORK/cache-$r "$BIN" "${common[@]}" release create \
    --repository company/monorepo --project auth-service --commit "${COMMIT/0123/4567}" \
    --manifests "$ROOT/fixtures/manifests/auth-service" --source-branch main >/dev/null
  RELEASECTL_CACHE_DIR=$WORK/cache-$r "$BIN" "${common[@]}" deploy dev auth-service 1 >/dev/null
  BASE[$r]=$(git --git-dir "$WORK/$r.git" rev-parse main)
done

reset() { echo "git --git-dir $WORK/$1.git update-ref refs/heads/main ${BASE[$1]}"; }
deploy() {
  echo "RELEASECTL_CACHE_DIR=$WORK/cache-$1 $BIN --gitops $WORK/$1.git --registry oci:$WORK/registry --actor bench@example.com deploy dev auth-service 2"
}
# What a user would otherwise script, in a fresh clone each time.
by_hand() {
  cat <<EOF
rm -rf $WORK/clone && git clone -q --depth 1 file://$WORK/$1.git $WORK/clone && cd $WORK/clone && sed -i 's/^  release: .*/  release: ${COMMIT/0123/4567}/' $POINTER && git commit -qam 'Deploy auth-service to dev: release 2' && git push -q origin main
EOF
}

RUNS=${BENCH_RUNS:-20}
hyperfine --style basic --warmup 3 --runs "$RUNS" --export-json "$WORK/deploy.json" \
  --prepare "$(reset large)" -n "deploy, large (20000 files, 10000 commits)" "$(deploy large)" \
  --prepare "$(reset small)" -n "deploy, small (10 files)" "$(deploy small)" >&2
hyperfine --style basic --warmup 2 --runs "$((RUNS / 2 > 5 ? RUNS / 2 : 5))" --export-json "$WORK/script.json" \
  --prepare "$(reset large)" -n "clone --depth 1 + edit + commit + push, large" "$(by_hand large)" >&2

# Sanity: the last timed deploy really wrote release 2.
git --git-dir "$WORK/large.git" show "main:$POINTER" | grep -q "release: ${COMMIT/0123/4567}" ||
  { echo "bench-deploy: the deploy did not write the pointer" >&2; exit 1; }

python3 - "$WORK/deploy.json" "$WORK/script.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))["results"]
s = json.load(open(sys.argv[2]))["results"][0]
large, small = d[0]["mean"], d[1]["mean"]
script = s["mean"]
ratio = large / small
speedup = script / large
print(f"deploy, large repository: {large*1000:8.1f} ms ± {d[0]['stddev']*1000:.1f}")
print(f"deploy, small repository: {small*1000:8.1f} ms ± {d[1]['stddev']*1000:.1f}")
print(f"clone+edit+commit+push:   {script*1000:8.1f} ms ± {s['stddev']*1000:.1f}  (large repository)")
print(f"large/small ratio:        {ratio:8.2f}  (target < 2)")
print(f"speed-up over the script: {speedup:8.1f}x (target >= 5)")
ok = ratio < 2 and speedup >= 5
print("PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
