#!/usr/bin/env bash
# Many writers at once (issue 14): N concurrent `deploy dev pK 1` of N distinct projects to one
# GitOps repository served by `git daemon` on 127.0.0.1, every process with a cache of its own
# (a copy of one warm cache: CI runners racing at the remote, not on a local lock).
#
# Prints, for each N in BENCH_WRITERS (default "32 128"): the wall time until the last deploy
# exits, how many landed, the push attempts made (1 + the rejected pushes each process logged)
# and the slowest single process; then checks that every deploy landed, history is linear,
# `git fsck --full` is clean, and that every deploy commit changes exactly its project's
# pointer to its release with the right trailers (Project, Environment, Release-Commit).
# Exit 1 when any check fails or when 32 writers take longer than 8 s.
#
# Usage: scripts/bench-concurrency.sh [--keep]   (needs git, python3; RELEASECTL=path skips
# the release build; BENCH_DIR=dir keeps the prepared repository there and reuses it on the
# next run, since registering 128 projects takes a few minutes; BENCH_CACHE=empty starts every
# process with an empty cache instead, as ephemeral CI runners do).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
KEEP=0
[[ ${1:-} == --keep ]] && KEEP=1
BIN=${RELEASECTL:-$ROOT/target/release/releasectl}
[[ -x $BIN ]] || cargo build --release --quiet
WRITERS=${BENCH_WRITERS:-32 128}
MAX=0
for n in $WRITERS; do ((n > MAX)) && MAX=$n; done

if [[ -n ${BENCH_DIR:-} ]]; then
  WORK=$BENCH_DIR KEEP=1
  mkdir -p "$WORK"
else
  WORK=$(mktemp -d /tmp/releasectl-bench-conc.XXXXXX)
fi
DAEMON=
cleanup() {
  [[ -n $DAEMON ]] && kill "$DAEMON" 2>/dev/null
  if [[ $KEEP == 0 ]]; then rm -rf "$WORK"; else echo "kept $WORK (remove $WORK/old-* at leisure)" >&2; fi
}
trap cleanup EXIT

# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"
bench_env

# A repository prepared for at least MAX projects is reused (its marker names the base commit).
PREPARED=0
for marker in "$WORK"/prepared-*; do
  [[ -f $marker ]] || continue
  m=${marker##*-}
  if ((m >= MAX)); then PREPARED=1 MAX=$m; break; fi
done
if [[ $PREPARED == 0 ]]; then
rm -rf "$WORK/remote.git" "$WORK/registry" "$WORK/cache-warm" "$WORK"/prepared-*
git init -q --bare -b main "$WORK/remote.git"
git --git-dir "$WORK/remote.git" config receive.denyNonFastForwards true
git --git-dir "$WORK/remote.git" config uploadpack.allowFilter true
git --git-dir "$WORK/remote.git" config uploadpack.allowAnySHA1InWant true
seed=$(mktemp -d "$WORK/seed.XXXX")
git init -q -b main "$seed"
printf 'environments:\n  dev:\n    promotion_policy: {allowed_triggers: [branch_push, tag, manual], allowed_branches: ["*"], auto_deploy: true}\n' \
  >"$seed/environments.yaml"
git -C "$seed" add -A && git -C "$seed" commit -qm seed && git -C "$seed" push -q "$WORK/remote.git" main
fi

bench_daemon "$WORK" remote.git

common=(--gitops "$URL" --registry "oci:$WORK/registry" --actor bench@example.com)
if [[ $PREPARED == 0 ]]; then
echo "registering $MAX projects ..." >&2
for k in $(seq "$MAX"); do
  RELEASECTL_CACHE_DIR=$WORK/cache-warm "$BIN" "${common[@]}" release create \
    --repository company/monorepo --project "p$k" --commit "$(printf '%040x' "$k")" \
    --manifests "$ROOT/fixtures/manifests/auth-service" --source-branch main >/dev/null
done
git --git-dir "$WORK/remote.git" rev-parse main >"$WORK/prepared-$MAX"
fi
BASE=$(cat "$WORK/prepared-$MAX")
git --git-dir "$WORK/remote.git" update-ref refs/heads/main "$BASE"
RELEASECTL_CACHE_DIR=$WORK/cache-warm "$BIN" "${common[@]}" status >/dev/null
# A bare project name makes `deploy` look through every register; a warm cache holds them.
RELEASECTL_CACHE_DIR=$WORK/cache-warm "$BIN" "${common[@]}" deploy dev p1 1 --dry-run >/dev/null

status=0
for n in $WRITERS; do
  git --git-dir "$WORK/remote.git" update-ref refs/heads/main "$BASE"
  # Moving the previous caches aside is instant; deleting thousands of files is not.
  for d in caches logs; do [[ -e $WORK/$d ]] && mv "$WORK/$d" "$WORK/old-$d.$n.$$.$RANDOM"; done
  mkdir -p "$WORK/caches" "$WORK/logs"
  for k in $(seq "$n"); do
    if [[ ${BENCH_CACHE:-warm} == empty ]]; then mkdir -p "$WORK/caches/$k"; else cp -r "$WORK/cache-warm" "$WORK/caches/$k"; fi
  done
  start=$(date +%s.%N)
  pids=()
  for k in $(seq "$n"); do
    (
      s=$(date +%s.%N)
      rc=0
      RELEASECTL_LOG=${BENCH_LOG:-info} RELEASECTL_CACHE_DIR=$WORK/caches/$k "$BIN" "${common[@]}" \
        deploy dev "p$k" 1 >/dev/null 2>"$WORK/logs/$k.err" || rc=$?
      echo "$rc $s $(date +%s.%N)" >"$WORK/logs/$k.rc"
    ) &
    pids+=($!)
  done
  wait "${pids[@]}"
  end=$(date +%s.%N)
  python3 - "$WORK" "$n" "$start" "$end" "$BASE" "$URL" <<'PY' || status=1
import os, subprocess, sys
work, n, start, end, base, url = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6]
git = lambda *a: subprocess.run(["git", "--git-dir", f"{work}/remote.git", *a], check=True,
                                capture_output=True, text=True).stdout
landed, attempts, slowest, errors = 0, 0, 0.0, {}
for k in range(1, n + 1):
    rc, s, e = open(f"{work}/logs/{k}.rc").read().split()
    landed += rc == "0"
    slowest = max(slowest, float(e) - float(s))
    err = open(f"{work}/logs/{k}.err").read()
    attempts += 1 + err.count("rejected")
    if rc != "0":
        last = (err.strip().splitlines() or ["(no message)"])[-1]
        errors[last[:160]] = errors.get(last[:160], 0) + 1
ok = True
commits = git("rev-list", "--first-parent", f"{base}..main").split()
merges = git("rev-list", "--merges", f"{base}..main").split()
fsck = subprocess.run(["git", "--git-dir", f"{work}/remote.git", "fsck", "--full", "--strict", "--no-dangling"],
                      capture_output=True, text=True)
seen = set()
bad = []
for c in commits:
    msg = git("log", "-1", "--format=%B", c)
    tr = dict(l.split(": ", 1) for l in msg.splitlines() if ": " in l)
    files = git("diff-tree", "--no-commit-id", "--name-only", "-r", c).split()
    p = tr.get("Project", "").rsplit("/", 1)[-1]
    k = int(p[1:]) if p[1:].isdigit() else 0
    want = f"{k:040x}"
    ptr = f"dev/apps/company/monorepo/{p}/release.yaml"
    if (tr.get("Environment") != "dev" or tr.get("Release-Commit") != want or files != [ptr]
            or p in seen or want not in git("show", f"{c}:{ptr}")):
        bad.append(c[:12])
    seen.add(p)
for k in range(1, n + 1):
    shown = subprocess.run(["git", "--git-dir", f"{work}/remote.git", "show",
                            f"main:dev/apps/company/monorepo/p{k}/release.yaml"],
                           capture_output=True, text=True).stdout
    if f"{k:040x}" not in shown:
        bad.append(f"p{k}: pointer at main")
wall = end - start
print(f"{n:4d} writers: wall {wall:6.2f} s, landed {landed}/{n}, {len(commits)} commits, "
      f"push attempts {attempts} ({attempts / n:.2f} per deploy), slowest process {slowest:.2f} s, "
      f"fsck {'clean' if fsck.returncode == 0 and not fsck.stdout.strip() else 'NOT clean'}, "
      f"merges {len(merges)}, bad commits {len(bad)}")
checks = [landed == n, len(commits) == n, not merges, not bad, fsck.returncode == 0]
if n == 32:
    checks.append(wall <= 8)
if bad:
    print("  bad:", " ".join(bad[:10]))
for e, c in errors.items():
    print(f"  {c} x {e}")
sys.exit(0 if all(checks) else 1)
PY
  if [[ $KEEP == 1 ]]; then rm -rf "$WORK/logs-$n" && cp -r "$WORK/logs" "$WORK/logs-$n"; fi
done
exit "$status"
