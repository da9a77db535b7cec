# Sourced by the benchmarks under scripts/: their start (tools, work directory, clean-up), the
# environment they run in and the `git daemon` they start. Not a command of its own.

# bench_start NAME ARG TOOL...: NAME is the script's name for messages, ARG its first argument
# (`--keep` keeps the work directory). Exits 2 when a TOOL is missing; makes WORK, a fresh
# directory under /tmp; at exit stops SERVER and DAEMON (whichever the script set) and removes
# WORK unless kept.
bench_start() {
  local name=$1 arg=$2 tool
  shift 2
  KEEP=0
  [[ $arg == --keep ]] && KEEP=1
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$name: $tool is not installed" >&2; exit 2; }
  done
  WORK=$(mktemp -d "/tmp/releasectl-$name.XXXXXX")
  DAEMON= SERVER=
  trap bench_cleanup EXIT
}

bench_cleanup() {
  [[ -n $SERVER ]] && kill "$SERVER" 2>/dev/null
  [[ -n $DAEMON ]] && kill "$DAEMON" 2>/dev/null
  wait 2>/dev/null
  if [[ $KEEP == 0 ]]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}

# A git that reads none of the user's configuration, fixed identities and clock (so commits
# and images are reproducible), and no RELEASECTL_* variable leaking in from the shell.
bench_env() {
  export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
  export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
  export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
  unset "${!RELEASECTL_@}" 2>/dev/null || true
  export SOURCE_DATE_EPOCH=1700000000 RELEASECTL_NOW=2026-11-23T10:00:00Z
}

# bench_daemon DIR REPO: serves the repositories below DIR with `git daemon` (receive-pack
# on, no connection limit) on a free port of 127.0.0.1, its log in DIR/daemon.log; sets
# DAEMON (its pid, for the caller's cleanup) and URL (git://…/REPO), and returns once the
# daemon answers.
bench_daemon() {
  local dir=$1 repo=$2 port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  git daemon --reuseaddr --listen=127.0.0.1 --port="$port" --base-path="$dir" --export-all \
    --enable=receive-pack --max-connections=0 "$dir" 2>>"$dir/daemon.log" &
  DAEMON=$!
  URL=git://127.0.0.1:$port/$repo
  for _ in $(seq 50); do git ls-remote "$URL" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "bench: git daemon on port $port did not answer" >&2
  return 1
}
