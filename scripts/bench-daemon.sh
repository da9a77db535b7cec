#!/usr/bin/env bash
# Benchmark: releasectl against a GitOps repository served by `git daemon` (issue 14): the
# large repository of scripts/bench-deploy.sh (20,000 files, 10,000 commits, `git fast-import`),
# served on 127.0.0.1 with receive-pack, `uploadpack.allowFilter` and
# `uploadpack.allowAnySHA1InWant` on. Timed side by side in one run (hyperfine; before every
# run the branch is reset, so every deploy really commits and pushes):
#
#  - `deploy` with a warm cache;
#  - `deploy` with an empty cache (every ephemeral CI runner), with its peak RSS;
#  - what a user would script instead: `git clone --filter=blob:none --depth 1 --no-checkout`,
#    sparse checkout of the pointer's directory, edit, commit, push;
#  - `status` with a warm cache (20,000 pointer-shaped files, 6,667 of them under dev/apps).
#
# Usage: scripts/bench-daemon.sh [--keep]   (needs git, hyperfine, python3, /usr/bin/time).
# BENCH_RUNS (default 10) sets the runs per case. Prints a table; exit 1 when a target is missed.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
KEEP=0
[[ ${1:-} == --keep ]] && KEEP=1
for tool in git hyperfine python3; do
  command -v "$tool" >/dev/null || { echo "bench-daemon: $tool is not installed" >&2; exit 2; }
done
BIN=$ROOT/target/release/releasectl
[[ -x $BIN ]] || cargo build --release --quiet

WORK=$(mktemp -d /tmp/releasectl-bench-daemon.XXXXXX)
DAEMON=
cleanup() {
  [[ -n $DAEMON ]] && kill "$DAEMON" 2>/dev/null
  if [[ $KEEP == 0 ]]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT

export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
unset "${!RELEASECTL_@}" 2>/dev/null || true
export SOURCE_DATE_EPOCH=1700000000 RELEASECTL_NOW=2026-11-23T10:00:00Z

POLICY='environments:
  dev:
    promotion_policy: {allowed_triggers: [branch_push, tag, manual], allowed_branches: ["*"], auto_deploy: true}
'
COMMIT=0123456789abcdef0123456789abcdef01234567
POINTER=dev/apps/company/monorepo/auth-service/release.yaml
FILES=${BENCH_FILES:-20000}
COMMITS=${BENCH_COMMITS:-10000}

echo "generating the repository in $WORK ..." >&2
git init -q --bare -b main "$WORK/large.git"
# Pointer-shaped filler: <env>/apps/company/svc-NNNNN/{release.yaml,env.yaml}, 2 files a commit.
POLICY="$POLICY" python3 - "$FILES" "$COMMITS" <<'PY' | git --git-dir "$WORK/large.git" fast-import --quiet --done
import os, sys
files, commits = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer
def data(b):
    out.write(b"data %d\n" % len(b)); out.write(b); out.write(b"\n")
per = max(1, -(-files // commits))
n = 0
for c in range(commits):
    out.write(b"commit refs/heads/main\n")
    out.write(b"committer bench <bench@example.com> %d +0000\n" % (1700000000 + c))
    data(b"filler %d\n" % c)
    if c == 0:
        out.write(b"M 100644 inline environments.yaml\n"); data(os.environ["POLICY"].encode())
    for _ in range(per):
        if n >= files:
            break
        env = ("dev", "staging", "production")[n % 3]
        app = "svc-%05d" % (n // 2)
        name = "release.yaml" if n % 2 == 0 else "env.yaml"
        if name == "release.yaml":
            body = (b"apiVersion: releasectl.dev/v1alpha1\nkind: ReleasePointer\nmetadata:\n  name: %s\n"
                    b"spec:\n  repository: filler\n  project: %s\n  release: \"%040x\"\n"
                    % (app.encode(), app.encode(), n + 1))
        else:
            body = (b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s-%d\ndata:\n  n: \"%d\"\n"
                    % (app.encode(), n, n))
        out.write(b"M 100644 inline %s/apps/filler/%s/%s\n" % (env.encode(), app.encode(), name.encode()))
        data(body)
        n += 1
out.write(b"done\n")
PY
git --git-dir "$WORK/large.git" repack -adq
git --git-dir "$WORK/large.git" config uploadpack.allowFilter true
git --git-dir "$WORK/large.git" config uploadpack.allowAnySHA1InWant true
git --git-dir "$WORK/large.git" config receive.denyNonFastForwards true
echo "large: $(git --git-dir "$WORK/large.git" ls-tree -r --name-only main | wc -l) files," \
  "$(git --git-dir "$WORK/large.git" rev-list --count main) commits" >&2

PORT=$((20000 + RANDOM % 20000))
git daemon --reuseaddr --listen=127.0.0.1 --port="$PORT" --base-path="$WORK" --export-all \
  --enable=receive-pack --max-connections=0 "$WORK" &
DAEMON=$!
URL=git://127.0.0.1:$PORT/large.git
for _ in $(seq 50); do git ls-remote "$URL" >/dev/null 2>&1 && break; sleep 0.1; done

common="--gitops $URL --registry oci:$WORK/registry --actor bench@example.com"
for c in "$COMMIT" "${COMMIT/0123/4567}"; do
  RELEASECTL_CACHE_DIR=$WORK/cache-warm "$BIN" $common release create \
    --repository company/monorepo --project auth-service --commit "$c" \
    --manifests "$ROOT/fixtures/manifests/auth-service" --source-branch main >/dev/null
done
RELEASECTL_CACHE_DIR=$WORK/cache-warm "$BIN" $common deploy dev auth-service 1 >/dev/null
BASE=$(git --git-dir "$WORK/large.git" rev-parse main)
reset="git --git-dir $WORK/large.git update-ref refs/heads/main $BASE"
warm="RELEASECTL_CACHE_DIR=$WORK/cache-warm $BIN $common deploy dev auth-service 2"
cold="rm -rf $WORK/cache-cold && RELEASECTL_CACHE_DIR=$WORK/cache-cold $BIN $common deploy dev auth-service 2"
script="rm -rf $WORK/clone && git clone -q --filter=blob:none --depth 1 --no-checkout $URL $WORK/clone && cd $WORK/clone && git sparse-checkout set --no-cone /$POINTER && git checkout -q main && sed -i 's/^  release: .*/  release: \"${COMMIT/0123/4567}\"/' $POINTER && git commit -qam 'Deploy auth-service to dev: release 2' && git push -q origin main"
status="RELEASECTL_CACHE_DIR=$WORK/cache-warm $BIN $common status"

RUNS=${BENCH_RUNS:-10}
hyperfine --style basic --warmup 2 --runs "$RUNS" --export-json "$WORK/h.json" \
  --prepare "$reset" -n "deploy, warm cache" "$warm" \
  --prepare "$reset" -n "deploy, empty cache" "$cold" \
  --prepare "$reset" -n "script: blobless sparse shallow clone + commit + push" "$script" \
  --prepare "$reset" -n "status, warm cache" "$status" >&2

# Peak RSS of one cold deploy and one script run (KiB), and what the cold deploy fetched.
eval "$reset"; rm -rf "$WORK/cache-cold"
/usr/bin/time -f %M -o "$WORK/rss-cold" env RELEASECTL_CACHE_DIR="$WORK/cache-cold" \
  RELEASECTL_LOG=info "$BIN" $common deploy dev auth-service 2 >/dev/null 2>"$WORK/cold.log" || true
packed=$(find "$WORK/cache-cold" -name '*.idx' -exec sh -c 'git show-index < "$1" | wc -l' _ {} \; | paste -sd+ | bc 2>/dev/null || echo 0)
git --git-dir "$WORK/large.git" show "main:$POINTER" | grep -q "${COMMIT/0123/4567}" ||
  { echo "bench-daemon: the last run did not write the pointer" >&2; exit 1; }
loose=$(find "$WORK/cache-cold" -path '*/objects/??/*' -type f | wc -l)
bytes=$(du -sb "$WORK/cache-cold" | cut -f1)
eval "$reset"
/usr/bin/time -f %M -o "$WORK/rss-script" bash -c "$script" >/dev/null 2>&1 || true

python3 - "$WORK/h.json" "$(cat "$WORK/rss-cold")" "$(cat "$WORK/rss-script")" "$packed" "$loose" "$bytes" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
ms = lambda n: r[n]["mean"] * 1000
warm, cold = ms("deploy, warm cache"), ms("deploy, empty cache")
script = ms("script: blobless sparse shallow clone + commit + push")
status = ms("status, warm cache")
rss, rss_script = int(sys.argv[2]) / 1024, int(sys.argv[3]) / 1024
for n, x in r.items():
    print(f"{n:55s} {x['mean']*1000:8.1f} ms ± {x['stddev']*1000:6.1f}")
print(f"cold deploy peak RSS {rss:.1f} MiB (script {rss_script:.1f} MiB); cache after it: "
      f"{sys.argv[4]} packed + {sys.argv[5]} loose objects, {int(sys.argv[6])/1024:.0f} KiB")
checks = [("warm deploy <= 150 ms", warm <= 150), ("cold deploy >= 2x faster than the script", script / cold >= 2),
          ("cold deploy RSS < 64 MiB", rss < 64), ("warm status <= 500 ms", status <= 500)]
for n, ok in checks:
    print(f"{'PASS' if ok else 'FAIL'}  {n}")
sys.exit(0 if all(ok for _, ok in checks) else 1)
PY
