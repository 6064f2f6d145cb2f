#!/usr/bin/env bash
# Idempotent set-up for selftrain on a fresh Debian machine (Python 3.11, root or sudo).
# Installs: Debian packages (speech synthesis, sox, fortunes, KenLM build deps), a virtualenv at
# .venv with the Python stack pinned by constraints.txt, and KenLM's lmplz/build_binary built once
# from kenlm's sdist.
# Each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${SELFTRAIN_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
# The exact versions of the Python stack (pyproject.toml holds the ranges).
CONSTRAINTS=$ROOT/constraints.txt
KENLM_VERSION=$(sed -n 's/^kenlm==//p' "$CONSTRAINTS")

APT_PACKAGES=(espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k sox libsox-fmt-all
  fortune-mod fortunes cmake g++ make libboost-program-options-dev libboost-system-dev
  libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev)

LOG=${SELFTRAIN_SETUP_LOG:-/tmp/selftrain-setup.log}
: > "$LOG"

log() { printf '[setup] %s\n' "$*"; }

# Run a command with its output in $LOG; on failure show the end of it and stop.
quiet() {
  if ! "$@" >>"$LOG" 2>&1; then
    echo "[setup] FAILED: $*  (last lines of $LOG below)" >&2
    tail -n 40 "$LOG" >&2
    exit 1
  fi
}

install_debian_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then log "Debian packages: present"; return; fi
  log "Debian packages: installing ${missing[*]}"
  local SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  quiet $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive quiet $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

install_python_stack() {
  [ -x "$VENV/bin/python" ] || { log "virtualenv: creating $VENV"; quiet "$PY" -m venv "$VENV"; }
  local stamp="$VENV/.selftrain-stack"
  local want; want=$(cat pyproject.toml constraints.txt scripts/setup.sh | sha256sum | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then log "Python stack: present"; return; fi
  log "Python stack: installing (torch wheel from local disk, ~2-4 min the first time)"
  quiet "$VENV/bin/pip" install --upgrade pip setuptools wheel
  quiet "$VENV/bin/pip" install -c "$CONSTRAINTS" torch torchaudio
  quiet "$VENV/bin/pip" install -c "$CONSTRAINTS" -e ".[dev,pretrained]"
  echo "$want" > "$stamp"
}

build_kenlm_binaries() {
  if [ -x "$VENV/bin/lmplz" ] && [ -x "$VENV/bin/build_binary" ]; then log "KenLM lmplz/build_binary: present"; return; fi
  log "KenLM lmplz/build_binary: building from kenlm's source distribution (~2 min)"
  local work; work=$(mktemp -d)
  # --no-binary for kenlm only: the sdist holds KenLM's C++ sources, including lmplz.
  quiet "$VENV/bin/pip" download --no-deps --no-binary kenlm "kenlm==$KENLM_VERSION" -d "$work"
  tar xzf "$work/kenlm-$KENLM_VERSION.tar.gz" -C "$work"
  quiet cmake -S "$work/kenlm-$KENLM_VERSION" -B "$work/build" -DCMAKE_BUILD_TYPE=Release
  quiet make -C "$work/build" -j"$(nproc)" lmplz build_binary
  cp "$work/build/bin/lmplz" "$work/build/bin/build_binary" "$VENV/bin/"
  rm -rf "$work"
}

timed() {
  local start=$SECONDS
  "$@"
  log "  ($1: $((SECONDS - start)) s)"
}

timed install_debian_packages
timed install_python_stack
timed build_kenlm_binaries
log "ready: activate with 'source $VENV/bin/activate'"
