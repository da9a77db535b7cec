#!/usr/bin/env bash
# Benchmarks `releasectl generate` (the Argo CD plugin) against a local registry, side by side
# with the plugin a user would otherwise write (skopeo copy + tar xzf + cat), and with
# signature verification on (RELEASECTL_TRUSTED_KEYS, the releases signed with `sign`) against
# off. See docs/benchmarks.md for what is measured, the targets (issue 3, "Speed"; issue 17,
# verification within 10%) and recorded figures.
#
#   scripts/bench-generate.sh [path/to/releasectl]
#
# Environment:
#   RUNS=20 WARMUP=2     hyperfine runs and warm-up runs per command
#   MEM_RUNS=3           runs per peak-memory measurement (the maximum is reported)
#   LARGE_MB=100         uncompressed size of the large release, in MB (10^6 bytes)
#   KEEP=1               keep the work directory (registry, manifests, hyperfine JSON)
#   SIGNED_ONLY=1        only the signature verification on/off comparison
#
# Needs: docker-registry (Debian), skopeo, hyperfine, jq, python3, GNU time (/usr/bin/time),
# curl; missing Debian packages are installed with apt-get when running as root.
set -euo pipefail
bin=${1:+$(realpath -m "$1")}  # resolved before the cd: relative to the caller's directory
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=${bin:-$PWD/target/release/releasectl}
runs=${RUNS:-20}
warmup=${WARMUP:-2}
mem_runs=${MEM_RUNS:-3}
large_mb=${LARGE_MB:-100}
[ -x "$bin" ] || { echo "no releasectl at $bin: run cargo build --release first" >&2; exit 2; }

need() { # need COMMAND DEBIAN-PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing $2" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$2" >/dev/null ||
            { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive \
                apt-get install -y --no-install-recommends "$2" >/dev/null; }
    fi
    command -v "$1" >/dev/null 2>&1 || { echo "missing $1 (Debian package $2)" >&2; exit 2; }
}
need docker-registry docker-registry
need skopeo skopeo
need hyperfine hyperfine
need jq jq
need curl curl
need python3 python3
need openssl openssl
[ -x /usr/bin/time ] || need /usr/bin/time time

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-generate.XXXXXX")
registry_pid=
cleanup() {
    if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null; wait "$registry_pid" 2>/dev/null || true; fi
    if [ "${KEEP:-}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# --- registry -------------------------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
registry=127.0.0.1:$port
cat > "$work/registry.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: $registry, secret: x}
YAML
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://$registry/v2/" 2>/dev/null && break
    sleep 0.1
done
curl -fsS -o /dev/null "http://$registry/v2/" || { cat "$work/registry.log" >&2; exit 1; }

# --- manifests ------------------------------------------------------------------------------
# Deterministic (seeded) and shaped like real rendered charts.
python3 - "$work" "$large_mb" <<'PY'
import os, random, sys
work, large_mb = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
words = [''.join(rng.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(rng.randint(3, 9)))
         for _ in range(512)]

def configmap(name, data):
    lines = [f"apiVersion: v1", "kind: ConfigMap", "metadata:", f"  name: {name}",
             "  namespace: bench", "  labels:", "    app.kubernetes.io/part-of: bench", "data:"]
    for k, v in data.items():
        lines.append(f"  {k}: |")
        lines.extend("    " + l for l in v.splitlines())
    return "\n".join(lines) + "\n"

def deployment(name, i):
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: bench
  labels:
    app.kubernetes.io/name: {name}
    app.kubernetes.io/part-of: bench
spec:
  replicas: {1 + i % 3}
  selector:
    matchLabels:
      app.kubernetes.io/name: {name}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {name}
    spec:
      containers:
        - name: app
          image: registry.example.com/bench/{name}:v1.{i}.0
          ports:
            - containerPort: 8080
              name: http
          env:
            - name: LOG_LEVEL
              value: info
            - name: INSTANCE
              value: "{i}"
          resources:
            requests: {{cpu: 100m, memory: 128Mi}}
            limits: {{cpu: 500m, memory: 256Mi}}
          readinessProbe:
            httpGet: {{path: /healthz, port: http}}
"""

def service(name, i):
    return f"""apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: bench
spec:
  selector:
    app.kubernetes.io/name: {name}
  ports:
    - name: http
      port: 80
      targetPort: http
"""

def text(nbytes):
    out, n = [], 0
    while n < nbytes:
        line = ' '.join(rng.choice(words) for _ in range(12))
        out.append(line)
        n += len(line) + 5  # indentation and newline in the YAML
    return "\n".join(out)

# small: 1,000 objects (ConfigMap, Deployment, Service in turn) over 50 files of 20.
d = os.path.join(work, "manifests-small"); os.makedirs(d)
for f in range(50):
    docs = []
    for j in range(20):
        i = f * 20 + j
        name = f"svc-{i:04d}"
        kind = i % 3
        if kind == 0:
            docs.append(configmap(name, {"config.yaml": text(300), "LOG_LEVEL": "info"}))
        elif kind == 1:
            docs.append(deployment(name, i))
        else:
            docs.append(service(name, i))
    with open(os.path.join(d, f"part-{f:02d}.yaml"), "w") as fh:
        fh.write("---\n".join(docs))

# large: ~large_mb MB of ConfigMaps, 100 files of 10 ConfigMaps.
d = os.path.join(work, "manifests-large"); os.makedirs(d)
per_object = large_mb * 1_000_000 // 1000
for f in range(100):
    docs = [configmap(f"blob-{f:03d}-{j}", {f"part-{k}.txt": text(per_object // 10) for k in range(10)})
            for j in range(10)]
    with open(os.path.join(d, f"data-{f:03d}.yaml"), "w") as fh:
        fh.write("---\n".join(docs))
PY

# Limits high enough for the large release (the defaults cap the tar stream at 64 MiB).
export RELEASECTL_MAX_TOTAL_BYTES=$((1024 * 1024 * 1024))
export RELEASECTL_MAX_FILE_BYTES=$((64 * 1024 * 1024))
export RELEASECTL_INSECURE_REGISTRIES=$registry
export SOURCE_DATE_EPOCH=1795000000 RELEASECTL_ACTOR=bench@example.com
unset RELEASECTL_CACHE_DIR RELEASECTL_REGISTRY RELEASECTL_LOG

commit=0123456789abcdef0123456789abcdef01234567
declare -A digest bytes
for size in small large; do
    digest[$size]=$("$bin" release create -o json --registry "$registry" \
        --insecure-registry "$registry" --repository bench/monorepo --project "$size" \
        --commit "$commit" --manifests "$work/manifests-$size" | jq -r .digest)
    bytes[$size]=$(cat "$work/manifests-$size"/* | wc -c)
    app=$work/app-$size
    mkdir -p "$app"
    cat > "$app/release.yaml" <<YAML
apiVersion: releasectl.dev/v1alpha1
kind: ReleasePointer
metadata:
  name: $size
spec:
  repository: bench/monorepo
  project: $size
  release: $commit
  digest: ${digest[$size]}
  registry: $registry
YAML
    # Sanity: both ways produce the release, and generate's output parses.
    RELEASECTL_CACHE_DIR=$work/check "$bin" generate --pointer "$app/release.yaml" > "$work/out-$size.yaml"
    echo "$size: ${digest[$size]}, $(grep -c '^kind: ' "$work/out-$size.yaml") objects," \
        "$(printf '%s' "${bytes[$size]}") bytes uncompressed," \
        "$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
            "http://$registry/v2/bench/monorepo/$size/manifests/${digest[$size]}" |
            jq '.layers[] | select(.mediaType | endswith("resources.v1.tar+gzip")) | .size') bytes compressed" >&2
done
rm -rf "$work/check"

# The plugin a user would otherwise write: copy the image to a temp OCI layout, find the
# resources layer in its manifest, unpack it and print the YAML files. It verifies nothing
# beyond what skopeo checks (blob digests) and keeps nothing between runs.
cat > "$work/baseline.sh" <<'SH'
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
skopeo copy -q --preserve-digests --src-tls-verify=false "docker://$1" "oci:$tmp/image:x"
manifest=$(jq -r '.manifests[0].digest' "$tmp/image/index.json")
layer=$(jq -r '.layers[] | select(.mediaType == "application/vnd.releasectl.release.resources.v1.tar+gzip") | .digest' \
    "$tmp/image/blobs/sha256/${manifest#sha256:}")
mkdir "$tmp/files"
tar xzf "$tmp/image/blobs/sha256/${layer#sha256:}" -C "$tmp/files"
find "$tmp/files" -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) | sort | xargs cat
SH
for size in small large; do
    ref=$registry/bench/monorepo/$size@${digest[$size]}
    sh "$work/baseline.sh" "$ref" | cmp -s - <(cat "$work/manifests-$size"/*) ||
        { echo "baseline output differs from the manifests for $size" >&2; exit 1; }
done

# --- timings --------------------------------------------------------------------------------
hf() { hyperfine -N --style basic --warmup "$warmup" --runs "$runs" "$@"; }
if [ "${SIGNED_ONLY:-}" != 1 ]; then
for size in small large; do
    pointer=$work/app-$size/release.yaml
    cache=$work/cache-$size
    ref=$registry/bench/monorepo/$size@${digest[$size]}
    echo "== $size: generate cold (empty cache every run)" >&2
    RELEASECTL_CACHE_DIR=$cache hf --prepare "rm -rf $cache" \
        --export-json "$work/$size-cold.json" -n "generate cold ($size)" \
        "$bin generate --pointer $pointer"
    echo "== $size: generate warm (cached)" >&2
    RELEASECTL_CACHE_DIR=$cache "$bin" generate --pointer "$pointer" > /dev/null
    RELEASECTL_CACHE_DIR=$cache hf --export-json "$work/$size-warm.json" \
        -n "generate warm ($size)" "$bin generate --pointer $pointer"
    echo "== $size: baseline (skopeo copy + tar xzf + cat)" >&2
    hf --export-json "$work/$size-baseline.json" -n "baseline ($size)" \
        "sh $work/baseline.sh $ref"
done

fi

# --- signature verification on --------------------------------------------------------------
# A P-256 key made by openssl (PKCS#8), both releases signed with it, generate run with the
# public key trusted: cold (empty cache, so the signature is fetched and verified) and warm.
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null |
    openssl pkcs8 -topk8 -nocrypt -out "$work/sign.key"
openssl pkey -in "$work/sign.key" -pubout -out "$work/sign.pub" 2>/dev/null
for size in small large; do
    "$bin" sign --insecure-registry "$registry" \
        "$registry/bench/monorepo/$size@${digest[$size]}" --key "$work/sign.key" > /dev/null
done
# Off and on are measured in one hyperfine call each (cold, warm), one after the other, so
# that load on a shared machine hits both alike; both go through `env` to pay the same exec.
for size in small large; do
    pointer=$work/app-$size/release.yaml
    off="env -u RELEASECTL_TRUSTED_KEYS RELEASECTL_CACHE_DIR=$work/cache-off-$size $bin generate --pointer $pointer"
    on="env RELEASECTL_TRUSTED_KEYS=$work/sign.pub RELEASECTL_CACHE_DIR=$work/cache-on-$size $bin generate --pointer $pointer"
    echo "== $size: generate cold, verification off and on" >&2
    hf --prepare "rm -rf $work/cache-off-$size $work/cache-on-$size" \
        --export-json "$work/$size-cold-signed.json" -n "cold off ($size)" "$off" -n "cold on ($size)" "$on"
    echo "== $size: generate warm, verification off and on" >&2
    $off > /dev/null && $on > /dev/null
    hf --export-json "$work/$size-warm-signed.json" -n "warm off ($size)" "$off" -n "warm on ($size)" "$on"
done

status=0
if [ "${SIGNED_ONLY:-}" != 1 ]; then
# --- peak memory ----------------------------------------------------------------------------
peak() { # peak CACHE-MODE POINTER CACHE → max RSS in KiB over MEM_RUNS runs
    local max=0 kib
    for _ in $(seq "$mem_runs"); do
        [ "$1" = cold ] && rm -rf "$3"
        RELEASECTL_CACHE_DIR=$3 /usr/bin/time -f %M -o "$work/time.out" \
            "$bin" generate --pointer "$2" > /dev/null
        kib=$(tail -n1 "$work/time.out")
        [ "$kib" -gt "$max" ] && max=$kib
    done
    echo "$max"
}
declare -A rss
for size in small large; do
    pointer=$work/app-$size/release.yaml
    cache=$work/cache-$size
    rss[$size-cold]=$(peak cold "$pointer" "$cache")
    rss[$size-warm]=$(peak warm "$pointer" "$cache")
done

# --- summary --------------------------------------------------------------------------------
median_ms() { jq '.results[0].median * 1000' "$1"; }
echo
echo "releasectl $("$bin" --version | cut -d' ' -f2), $(nproc) cores, $runs runs (median), $(date -u +%Y-%m-%dT%H:%MZ)"
printf '%-6s %10s %10s %10s %9s %9s %12s %12s %12s %6s\n' \
    release "uncompr." "warm ms" "cold ms" "base ms" base/cold "RSS cold" "RSS warm" "RSS target" ok
for size in small large; do
    warm=$(median_ms "$work/$size-warm.json")
    cold=$(median_ms "$work/$size-cold.json")
    base=$(median_ms "$work/$size-baseline.json")
    target_kib=$(( (3 * bytes[$size] + 32 * 1024 * 1024) / 1024 ))
    awk -v n="$size" -v u="${bytes[$size]}" -v w="$warm" -v c="$cold" -v b="$base" \
        -v rc="${rss[$size-cold]}" -v rw="${rss[$size-warm]}" -v t="$target_kib" 'BEGIN {
            v = (w < 10 ? "" : "warm,") (b / c >= 3 ? "" : "cold,") (rc < t && rw < t ? "" : "mem,")
            printf "%-6s %8.1fMB %10.1f %10.1f %10.1f %8.2fx %9.1fMiB %9.1fMiB %9.1fMiB %6s\n",
                n, u / 1e6, w, c, b, b / c, rc / 1024, rw / 1024, t / 1024, (v == "" ? "yes" : "NO:" v)
            exit (v != "")
        }' || status=1
done
echo "targets: warm median < 10 ms; baseline/cold >= 3; peak RSS < 3 x uncompressed + 32 MiB"
fi
echo
printf '%-6s %10s %10s %8s %10s %10s %8s %6s\n' \
    release "cold off" "cold on" ratio "warm off" "warm on" ratio ok
median_of() { jq ".results[$2].median * 1000" "$1"; }
for size in small large; do
    awk -v n="$size" \
        -v c="$(median_of "$work/$size-cold-signed.json" 0)" -v cs="$(median_of "$work/$size-cold-signed.json" 1)" \
        -v w="$(median_of "$work/$size-warm-signed.json" 0)" -v ws="$(median_of "$work/$size-warm-signed.json" 1)" 'BEGIN {
            v = (cs / c <= 1.10 ? "" : "cold,") (ws / w <= 1.10 ? "" : "warm,")
            printf "%-6s %10.1f %10.1f %7.2fx %10.2f %10.2f %7.2fx %6s\n",
                n, c, cs, cs / c, w, ws, ws / w, (v == "" ? "yes" : "NO:" v)
            exit (v != "")
        }' || status=1
done
echo "target: generate with signature verification within 10% of without (cold and warm)"
exit "$status"
