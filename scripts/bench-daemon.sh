#!/usr/bin/env bash
# Benchmark: releasectl against a GitOps repository served by `git daemon` (issue 14): the
# large repository of scripts/bench-deploy.sh (20,000 files, 10,000 commits, `git fast-import`),
# served on 127.0.0.1 with receive-pack, `uploadpack.allowFilter` and
# `uploadpack.allowAnySHA1InWant` on. Timed side by side in one run (hyperfine; before every
# run the branch is reset, so every command really commits and pushes):
#
#  - `deploy` with a warm cache;
#  - `deploy`, `release create --gitops` and `approve` with an empty cache (every ephemeral CI
#    runner), with their peak RSS and what they fetched;
#  - what a user would script instead of each: `git clone --filter=blob:none --depth 1
#    --no-checkout`, sparse checkout of the pointer's (register's, approvals') directory,
#    edit, commit, push;
#  - `status` with a warm cache (20,000 pointer-shaped files, 6,667 of them under dev/apps).
#
# Usage: scripts/bench-daemon.sh [--keep]   (needs git, hyperfine, python3, /usr/bin/time).
# BENCH_RUNS (default 10) sets the runs per case; BENCH_BIN the binary measured (default
# target/release/releasectl); BENCH_BEFORE another binary whose cold commands run in the same
# hyperfine run ("before" figures side by side). Prints a table; exit 1 when a target is missed.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"
bench_start bench-daemon "${1:-}" git hyperfine python3
BIN=${BENCH_BIN:-$ROOT/target/release/releasectl}
[[ -x $BIN ]] || cargo build --release --quiet
BEFORE=${BENCH_BEFORE:-}

bench_env

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

bench_daemon "$WORK" large.git

common="--gitops $URL --registry oci:$WORK/registry --actor bench@example.com"
for c in "$COMMIT" "${COMMIT/0123/4567}"; do
  RELEASECTL_CACHE_DIR=$WORK/cache-warm "$BIN" $common release create \
    --repository company/monorepo --project auth-service --commit "$c" \
    --manifests "$ROOT/fixtures/manifests/auth-service" --source-branch main >/dev/null
done
RELEASECTL_CACHE_DIR=$WORK/cache-warm "$BIN" $common deploy dev auth-service 1 >/dev/null
BASE=$(git --git-dir "$WORK/large.git" rev-parse main)
NEW=89abcdef0123456789abcdef0123456789abcdef
reset="git --git-dir $WORK/large.git update-ref refs/heads/main $BASE"
warm="RELEASECTL_CACHE_DIR=$WORK/cache-warm $BIN $common deploy dev auth-service 2"
# The cold commands, as run by binary $1 (each with an empty cache of its own).
cold_deploy() { echo "rm -rf $WORK/cache-cold && RELEASECTL_CACHE_DIR=$WORK/cache-cold $1 $common deploy dev auth-service 2"; }
cold_register() { echo "rm -rf $WORK/cache-cold && RELEASECTL_CACHE_DIR=$WORK/cache-cold $1 $common release create --repository company/monorepo --project auth-service --commit $NEW --manifests $ROOT/fixtures/manifests/auth-service --source-branch main"; }
cold_approve() { echo "rm -rf $WORK/cache-cold && RELEASECTL_CACHE_DIR=$WORK/cache-cold $1 $common approve dev auth-service 2 --justification bench"; }
# What a user would script: a blobless shallow clone, sparse checkout of directory $1, the
# edit $2 (run in the clone), commit, push.
scripted() { echo "rm -rf $WORK/clone && git clone -q --filter=blob:none --depth 1 --no-checkout $URL $WORK/clone && cd $WORK/clone && git sparse-checkout set --no-cone /$1 && git checkout -q main && mkdir -p $1 && $2 && git add -A && git commit -qm 'releasectl-like change' && git push -q origin main"; }
REG=releases/company/monorepo/auth-service
script=$(scripted "${POINTER%/*}/" "sed -i 's/^  release: .*/  release: \"${COMMIT/0123/4567}\"/' $POINTER")
# The files a registration writes in format 3 (docs/register.md): the entry bucket, a commit
# index bucket, an alias index bucket (sha256("main-3") starts with 970) and the head.
script_register=$(scripted "$REG/" "mkdir -p $REG/_commit-index/89 $REG/_alias-index/97 && printf -- '- number: 3\n' >> $REG/_entries/0/0.yaml && echo '$NEW 3' >> $REG/_commit-index/89/89a && echo 'main-3 3' >> $REG/_alias-index/97/970 && echo '# 3' >> $REG/_register.yaml")
script_approve=$(scripted "approvals/dev/company/monorepo/auth-service/" "printf 'approver: bench@example.com\n' > approvals/dev/company/monorepo/auth-service/${COMMIT/0123/4567}.yaml")
status="RELEASECTL_CACHE_DIR=$WORK/cache-warm $BIN $common status"

cases=(-n "deploy, warm cache" "$warm"
  -n "deploy, empty cache" "$(cold_deploy "$BIN")"
  -n "script: deploy" "$script"
  -n "release create --gitops, empty cache" "$(cold_register "$BIN")"
  -n "script: register" "$script_register"
  -n "approve, empty cache" "$(cold_approve "$BIN")"
  -n "script: approve" "$script_approve")
if [[ -n $BEFORE ]]; then
  cases+=(-n "before: deploy, empty cache" "$(cold_deploy "$BEFORE")"
    -n "before: release create --gitops, empty cache" "$(cold_register "$BEFORE")"
    -n "before: approve, empty cache" "$(cold_approve "$BEFORE")")
fi
cases+=(-n "status, warm cache" "$status")

RUNS=${BENCH_RUNS:-10}
hyperfine --style basic --warmup 2 --runs "$RUNS" --export-json "$WORK/h.json" \
  --prepare "$reset" "${cases[@]}" >&2

# Peak RSS (KiB) and what each cold command fetched (from its debug log), one run each.
measure() { # name command
  eval "$reset"
  /usr/bin/time -f %M -o "$WORK/rss-$1" env RELEASECTL_LOG=debug bash -c "$2" >/dev/null 2>"$WORK/$1.log" || true
  grep -o 'this run: [0-9]* objects, [0-9]* bytes' "$WORK/$1.log" | tail -1 | tr -dc '0-9 ' |
    awk '{printf "%s objects, %s bytes ", $1, $2}' > "$WORK/got-$1" || true
  echo "in $(grep -c 'fetched ' "$WORK/$1.log" || true) fetches" >> "$WORK/got-$1"
}
measure deploy "$(cold_deploy "$BIN")"
git --git-dir "$WORK/large.git" show "main:$POINTER" | grep -q "${COMMIT/0123/4567}" ||
  { echo "bench-daemon: the last run did not write the pointer" >&2; exit 1; }
measure register "$(cold_register "$BIN")"
measure approve "$(cold_approve "$BIN")"
measure script "$script"
eval "$reset"

python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
r = {x["command"]: x for x in json.load(open(f"{w}/h.json"))["results"]}
ms = lambda n: r[n]["mean"] * 1000
rss = lambda n: int(open(f"{w}/rss-{n}").read().split()[-1]) / 1024
got = lambda n: " ".join(open(f"{w}/got-{n}").read().split("\n")).strip()
for n, x in r.items():
    print(f"{n:48s} {x['mean']*1000:8.1f} ms ± {(x['stddev'] or 0)*1000:6.1f}  (min {x['min']*1000:.1f}, user {x['user']*1000:.0f} ms)")
for n in ("deploy", "register", "approve"):
    print(f"cold {n}: peak RSS {rss(n):.1f} MiB, fetched {got(n)}")
print(f"script: peak RSS {rss('script'):.1f} MiB")
checks = [("warm deploy <= 150 ms", ms("deploy, warm cache") <= 150),
          ("cold deploy >= 2x faster than the script", ms("script: deploy") / ms("deploy, empty cache") >= 2),
          ("cold release create >= 2x faster than the script",
           ms("script: register") / ms("release create --gitops, empty cache") >= 2),
          ("cold approve >= 2x faster than the script", ms("script: approve") / ms("approve, empty cache") >= 2),
          ("cold deploy RSS < 64 MiB", rss("deploy") < 64), ("cold release create RSS < 64 MiB", rss("register") < 64),
          ("cold approve RSS < 64 MiB", rss("approve") < 64), ("warm status <= 500 ms", ms("status, warm cache") <= 500)]
for n, ok in checks:
    print(f"{'PASS' if ok else 'FAIL'}  {n}")
sys.exit(0 if all(ok for _, ok in checks) else 1)
PY
