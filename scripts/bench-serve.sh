#!/usr/bin/env bash
# Benchmark: one `releasectl serve` writer against many pipelines (issue 15), side by side in
# one run with the CLI. A fixture world of N (default 200) registered projects (`release
# create` into an OCI layout, one release each), served by `git daemon --enable=receive-pack`
# on 127.0.0.1. Then, from the same base commit:
#
#  - 32 concurrent `releasectl deploy dev svc-NNN 1` (each with its own empty cache, as CI
#    runners have): the wall time;
#  - N concurrent `POST /v1/deployments` to one `releasectl serve` (the branch reset first):
#    the wall time, p50/p99 latency, the server's peak RSS (VmHWM).
#
#  - a mixed run (BENCH_MIXED=0 skips it): the branch reset, a new server, N/4 registrations
#    of pushed images of one project, N/4 approvals and N/2 deploys, interleaved and sent at
#    once: the wall time, latency, RSS and how many pushes the server made (its debug log).
#
# Checked for the server: every request answered 200 `deployed` with its own commit; exactly N
# new commits, no merge, `git fsck` clean; each commit's trailers name its project and release
# (`Project:`, `Release-Commit:`, `Environment: dev`, `Action: deploy`) and its pointer names
# the release. In the mixed run: every request answered 201/200 with its own commit and its
# trailers, the registrations numbered 1..N/4 with no gap or duplicate. Exit 1 when a check
# fails or a server wall time exceeds 5 s.
#
# Usage: scripts/bench-serve.sh [--keep]   (needs git, python3; builds target/release).
# BENCH_PROJECTS (default 200) and BENCH_CLI (default 32) set the sizes; BENCH_BIN another binary.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=scripts/bench-lib.sh
source "$ROOT/scripts/bench-lib.sh"
bench_start bench-serve "${1:-}" git python3
BIN=${BENCH_BIN:-$ROOT/target/release/releasectl}
[[ -x $BIN ]] || cargo build --release --locked --quiet


bench_env

N=${BENCH_PROJECTS:-200}
CLI=${BENCH_CLI:-32}
sha() { printf '%040x' "$((0x5e7000 + $1))"; }
name() { printf 'svc-%03d' "$1"; }

# The world: a policy, then N registered projects (written through a path remote: no daemon yet).
git init -q -b main "$WORK/seed"
cat >"$WORK/seed/environments.yaml" <<'YAML'
environments:
  dev:
    promotion_policy: {allowed_triggers: [branch_push, tag, manual], allowed_branches: ["*"]}
  production:
    promotion_policy:
      allowed_triggers: [branch_push, tag, manual]
      allowed_branches: ["*"]
      requires_approval: true
      approvals: {min: 1, ttl: 24h, approvers: [approver@example.com]}
YAML
git -C "$WORK/seed" add -A && git -C "$WORK/seed" commit -qm "policy"
git clone -q --bare "$WORK/seed" "$WORK/gitops.git"
git --git-dir "$WORK/gitops.git" config receive.denyNonFastForwards true
git --git-dir "$WORK/gitops.git" config uploadpack.allowFilter true
git --git-dir "$WORK/gitops.git" config uploadpack.allowAnySHA1InWant true
echo "registering $N projects ..." >&2
t0=$(date +%s.%N)
for i in $(seq 0 $((N - 1))); do
  RELEASECTL_CACHE_DIR=$WORK/cache-create "$BIN" --gitops "$WORK/gitops.git" \
    --registry "oci:$WORK/registry" --actor ci@example.com release create \
    --repository company/monorepo --project "$(name "$i")" --commit "$(sha "$i")" \
    --manifests "$ROOT/fixtures/manifests/auth-service" --source-branch main >/dev/null
done
echo "registered in $(python3 -c "import time;print(round(time.time()-$t0,1))") s" >&2
MIXED=${BENCH_MIXED:-1}
if [[ $MIXED == 1 ]]; then
  # Images pushed but not registered: what the mixed run's registrations register.
  echo "pushing $((N / 4)) images to register ..." >&2
  for i in $(seq 0 $((N / 4 - 1))); do
    RELEASECTL_CACHE_DIR=$WORK/cache-create "$BIN" --registry "oci:$WORK/registry" -o json \
      release create --repository company/monorepo --project fresh --commit "$(sha $((1000 + i)))" \
      --manifests "$ROOT/fixtures/manifests/auth-service" --source-branch main >>"$WORK/pushed.jsonl"
  done
fi
BASE=$(git --git-dir "$WORK/gitops.git" rev-parse main)
reset() { git --git-dir "$WORK/gitops.git" update-ref refs/heads/main "$BASE"; }

bench_daemon "$WORK" gitops.git
common=(--gitops "$URL" --registry "oci:$WORK/registry")

# 1. The CLI: 32 concurrent deploys, each with its own empty cache.
echo "CLI: $CLI concurrent deploys ..." >&2
t0=$(date +%s.%N)
for i in $(seq 0 $((CLI - 1))); do
  RELEASECTL_CACHE_DIR=$WORK/cli-cache-$i "$BIN" "${common[@]}" --actor ci@example.com \
    deploy dev "$(name "$i")" 1 >"$WORK/cli-$i.out" 2>&1 &
done
cli_failed=0
for job in $(jobs -p); do
  [[ $job == "$DAEMON" ]] && continue
  wait "$job" || cli_failed=$((cli_failed + 1))
done
CLI_WALL=$(python3 -c "import time;print(round(time.time()-$t0,2))")
CLI_LANDED=$(git --git-dir "$WORK/gitops.git" rev-list --count "$BASE..main")

# 2. The server: N concurrent requests, the branch back at the base.
reset
TOKEN=bench-token-0123456789
printf 'tokens:\n  %s: ci@example.com\n' "$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)" \
  >"$WORK/tokens.yaml"
# Every request comes from one robot identity: its rate-limit burst must cover them all (the
# default, 500, does for N <= 500).
printf 'static_tokens: tokens.yaml\nrate_limit: {burst: %d}\n' "$((N > 500 ? N : 500))" >"$WORK/serve.yaml"
# serve LOG_LEVEL CACHE LOG: starts a server on a free port; sets SERVER (its pid) and ADDR.
serve() {
  : >"$WORK/serve.out"
  RELEASECTL_LOG=$1 RELEASECTL_CACHE_DIR=$2 "$BIN" "${common[@]}" serve --listen 127.0.0.1:0 \
    --config "$WORK/serve.yaml" >"$WORK/serve.out" 2>"$3" &
  SERVER=$!
  for _ in $(seq 100); do grep -q listening "$WORK/serve.out" 2>/dev/null && break; sleep 0.05; done
  ADDR=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['listening'])" "$WORK/serve.out")
}
serve "${BENCH_LOG:-}" "$WORK/serve-cache" "$WORK/serve.log"
echo "server: $N concurrent deployment requests to $ADDR ..." >&2

rc=0
python3 - "$ROOT/scripts" "$ADDR" "$TOKEN" "$N" "$WORK/gitops.git" "$BASE" "$SERVER" "$CLI" \
  "$CLI_WALL" "$CLI_LANDED" "$cli_failed" <<'PY' || rc=$?
import json, sys
sys.path.insert(0, sys.argv[1])
from serve_load import branch, fire, git, latency, peak_rss_mib, report
addr, token, n, repo, base, pid = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6], sys.argv[7]
cli, cli_wall, cli_landed, cli_failed = int(sys.argv[8]), float(sys.argv[9]), int(sys.argv[10]), int(sys.argv[11])
name = lambda i: "svc-%03d" % i
sha = lambda i: "%040x" % (0x5e7000 + i)
answers, wall = fire(addr, [(token, "/v1/deployments",
                             {"environment": "dev", "project": name(i), "release_id": "1"})
                            for i in range(n)])
failures = []
commits = set()
for i, (status, body, _) in enumerate(answers):
    if status != 200 or body.get("result") != "deployed" or not body.get("commit"):
        failures.append(f"{name(i)}: {status} {json.dumps(body)[:300]}")
        continue
    c = body["commit"]
    if c in commits:
        failures.append(f"{name(i)}: commit {c} answered twice")
    commits.add(c)
    msg = git(repo, "show", "-s", "--format=%B", c)
    for want in (f"Project: company/monorepo/{name(i)}", f"Release-Commit: {sha(i)}", "Environment: dev", "Action: deploy"):
        if want not in msg:
            failures.append(f"{name(i)}: commit {c} lacks trailer {want!r}")
    if sha(i) not in git(repo, "show", f"{c}:dev/apps/company/monorepo/{name(i)}/release.yaml"):
        failures.append(f"{name(i)}: the pointer at {c} does not name {sha(i)}")
new, merges, fsck_clean = branch(repo, base)
print(f"CLI:    {cli} concurrent deploys (own empty caches): {cli_wall:.2f} s wall, {cli_landed} landed, {cli_failed} failed")
print(f"server: {n} concurrent requests: {wall:.2f} s wall, {latency(answers)}; "
      f"peak RSS {peak_rss_mib(pid):.1f} MiB; {new} new commits, {merges} merges")
report([("every request its own commit with its trailers", not failures),
        (f"{n} new commits, linear", new == n and merges == 0 and len(commits) == n),
        ("fsck clean", fsck_clean),
        ("server wall <= 5 s", wall <= 5)], failures)
PY
[[ $MIXED == 1 ]] || exit "$rc"

# 3. Mixed: registrations, approvals and deploys at once, to a new server on the reset branch.
kill "$SERVER" && wait "$SERVER" 2>/dev/null || true
reset
APPROVER=bench-approver-0123456789
printf '  %s: approver@example.com\n' "$(printf %s "$APPROVER" | sha256sum | cut -d' ' -f1)" \
  >>"$WORK/tokens.yaml"
serve debug "$WORK/serve-cache-mixed" "$WORK/serve-mixed.log"
echo "server: mixed requests to $ADDR ..." >&2
python3 - "$ROOT/scripts" "$ADDR" "$TOKEN" "$APPROVER" "$N" "$WORK/gitops.git" "$BASE" "$SERVER" \
  "$WORK/pushed.jsonl" "$WORK/serve-mixed.log" <<'PY' || rc=1
import json, sys
sys.path.insert(0, sys.argv[1])
from serve_load import branch, fire, git, latency, peak_rss_mib, report
addr, token, approver, n, repo, base, pid, pushed, log = sys.argv[2:11]
n = int(n)
name = lambda i: "svc-%03d" % i
text, images, at = open(pushed).read(), [], 0
while text[at:].strip():  # `create -o json` prints indented documents, one after another
    doc, end = json.JSONDecoder().raw_decode(text, at + len(text[at:]) - len(text[at:].lstrip()))
    images.append(doc)
    at = end
regs, apps, deps = len(images), n // 4, n // 2
requests = []  # (kind, token, path, body), interleaved: deploy, deploy, registration, approval
for k in range(max(regs, apps, (deps + 1) // 2)):
    for d in (2 * k, 2 * k + 1):
        if d < deps:
            requests.append(("deploy", token, "/v1/deployments",
                             {"environment": "dev", "project": name(d), "release_id": "1"}))
    if k < regs:
        requests.append(("register", token, "/v1/releases",
                         {"reference": images[k]["reference"], "digest": images[k]["digest"]}))
    if k < apps:
        requests.append(("approve", approver, "/v1/approvals",
                         {"environment": "production", "project": name(deps + k), "release_id": "1",
                          "justification": "bench"}))
answers, wall = fire(addr, [r[1:] for r in requests])
failures, commits, numbers = [], set(), []
for (kind, _, _, body), (status, answer, _) in zip(requests, answers):
    key = "registration_commit" if kind == "register" else "commit"
    c = answer.get(key)
    if status != (201 if kind == "register" else 200) or not c:
        failures.append(f"{kind} {json.dumps(body)[:120]}: {status} {json.dumps(answer)[:300]}")
        continue
    if c in commits:
        failures.append(f"{kind}: commit {c} answered twice")
    commits.add(c)
    msg = git(repo, "show", "-s", "--format=%B", c)
    want = {"deploy": [f"Project: company/monorepo/{body.get('project')}", "Action: deploy"],
            "approve": [f"Project: company/monorepo/{body.get('project')}", "Action: approve",
                        "Approver: approver@example.com"],
            "register": [f"Release-Number: {answer.get('number')}", "Action: register",
                         f"Release-Digest: {body.get('digest')}"]}[kind]
    for w in want:
        if w not in msg:
            failures.append(f"{kind}: commit {c} lacks {w!r}")
    if kind == "register":
        numbers.append(answer.get("number"))
new, merges, fsck_clean = branch(repo, base)
batches = [int(l.split("landed ")[1].split()[0]) for l in open(log) if "landed " in l]
pushes = sum(1 for b in batches if b > 0)
print(f"mixed:  {regs} registrations + {apps} approvals + {deps} deploys at once: {wall:.2f} s wall, "
      f"{latency(answers)}; peak RSS {peak_rss_mib(pid):.1f} MiB; "
      f"{new} new commits in {pushes} pushes ({len(batches)} batches), {merges} merges")
total = len(requests)
report([("mixed: every request its own commit with its trailers", not failures),
        (f"mixed: {total} new commits, linear", new == total and merges == 0 and len(commits) == total),
        (f"mixed: registrations numbered 1..{regs}", sorted(numbers) == list(range(1, regs + 1))),
        ("mixed: fsck clean", fsck_clean),
        ("mixed: server wall <= 5 s", wall <= 5)], failures)
PY
exit "$rc"
