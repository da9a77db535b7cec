#!/usr/bin/env bash
# The one command that runs the test suite on a fresh Debian 12 machine (and CI):
#   1. installs the real components the integration tests run against (docs/design.md §9) —
#      Debian: docker-registry, skopeo, apache2-utils (htpasswd), openssl, git (git daemon,
#      git http-backend), lighttpd, openssh-client, openssh-server (python3 and python3-venv
#      when no Python with venv is found); PyPI, in ./.venv: oras 0.2.x, kubernetes-validate
#      1.37.x;
#   2. checks the code: `cargo fmt --check` and `cargo clippy --all-targets --locked -D warnings`
#      (one build of the dependencies shared with the tests: clippy checks, the tests build);
#   3. runs the tests: `cargo nextest run --profile ci` when cargo-nextest is installed, else
#      `cargo test`. Extra arguments go to the test runner.
# Idempotent: when everything is in place it only checks (well under a second) and runs tests.
# Tests never skip a missing component, they fail: this script is what makes them pass.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'test.sh: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else log "need root to run: $*"; exit 1
    fi
}

# --- Debian packages -----------------------------------------------------------------------
missing=()
need_cmd() { # command package
    command -v "$1" >/dev/null 2>&1 || missing+=("$2")
}
need_cmd docker-registry docker-registry
need_cmd skopeo skopeo
need_cmd htpasswd apache2-utils
need_cmd openssl openssl
need_cmd lighttpd lighttpd
need_cmd ssh-keygen openssh-client
need_cmd /usr/sbin/sshd openssh-server
# The dashboard tests (tests/integration/serve_dashboard.rs) render pages in headless Chromium.
need_cmd chromium chromium
# `git daemon` and `git http-backend` are part of Debian's git package (no git-daemon-* service
# package is needed). The machine may also have a git under /usr/local: check the one on PATH.
if ! command -v git >/dev/null 2>&1; then
    missing+=(git)
else
    exec_path=$(git --exec-path)
    for helper in git-daemon git-http-backend; do
        if [ ! -x "$exec_path/$helper" ]; then
            log "$exec_path/$helper is missing (git on PATH: $(command -v git))"
            missing+=(git)
            break
        fi
    done
fi

# Python with venv + ensurepip: the machine's python3 (pyenv's 3.11 here) usually has both;
# Debian's /usr/bin/python3 needs python3-venv.
python_for_venv=""
for candidate in python3 /usr/bin/python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        python_for_venv=$candidate
        break
    fi
done
if [ -z "$python_for_venv" ]; then
    missing+=(python3 python3-venv)
    python_for_venv=/usr/bin/python3
fi

if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -q
    as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- Python venv with oras, kubernetes-validate and cryptography ----------------------------
# (cryptography: the independent cosign implementation of fixtures/cosign/cosign.py)
venv=.venv
check_venv='
import importlib.metadata as m, sys
ok = m.version("oras").startswith("0.2.") and m.version("kubernetes-validate").startswith("1.37.") and m.version("schemathesis").startswith("4.")
ok = ok and m.version("cryptography").startswith("46.")
import oras.client, kubernetes_validate, cryptography
sys.exit(0 if ok else 1)
'
if ! "$venv/bin/python" -c "$check_venv" >/dev/null 2>&1; then
    if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
        # Absent, or broken (e.g. made by an interpreter that is gone): start over.
        log "creating $venv with $python_for_venv"
        rm -rf "$venv"
        "$python_for_venv" -m venv "$venv"
    fi
    log "installing oras 0.2.x, kubernetes-validate 1.37.x, schemathesis 4.x and cryptography 46.x into $venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check \
        'oras==0.2.*' 'kubernetes-validate==1.37.*' 'schemathesis==4.*' 'cryptography==46.*'
    "$venv/bin/python" -c "$check_venv"
fi
export RELEASECTL_TEST_PYTHON="${RELEASECTL_TEST_PYTHON:-$PWD/$venv/bin/python}"

# --- Format and lints -------------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy --all-targets --locked -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

# --- Tests -----------------------------------------------------------------------------------
if cargo nextest --version >/dev/null 2>&1; then
    exec cargo nextest run --profile ci "$@"
else
    log "cargo-nextest not found, using cargo test"
    exec cargo test "$@"
fi
