#!/usr/bin/env bash
# Install the peer systems `kws bench` compares against, each in its own virtual environment
# (never as kws dependencies):
#
#   lce           Larq Compute Engine 0.16.0 (+ larq 0.14.0, tensorflow-cpu 2.15.1)
#   openwakeword  openWakeWord 0.5.1 (numpy<2), with the models its wheel bundles
#
#   bash benchmarks/peers/setup.sh [lce] [openwakeword]      (default: both)
#
# Idempotent: a venv whose recorded requirements match is left alone.  Where: $KWS_PEERS_DIR,
# default ~/.cache/kws-peers/<name>.  Needs a Python the peers publish wheels for ($KWS_PEERS_PYTHON,
# default python3; tensorflow-cpu 2.15.1 has wheels for CPython 3.9-3.11).
set -euo pipefail

DIR="${KWS_PEERS_DIR:-$HOME/.cache/kws-peers}"
PY="${KWS_PEERS_PYTHON:-python3}"

declare -A REQS=(
  [lce]='tensorflow-cpu==2.15.1 larq==0.14.0 larq-compute-engine==0.16.0'
  [openwakeword]='openwakeword==0.5.1 numpy<2'
)

install_peer() {
  local name="$1" venv="$DIR/$1" reqs="${REQS[$1]:-}"
  if [[ -z "$reqs" ]]; then
    echo "setup.sh: unknown peer '$name' (known: ${!REQS[*]})" >&2
    return 2
  fi
  if [[ -f "$venv/.kws-peer-reqs" && "$(cat "$venv/.kws-peer-reqs")" == "$reqs" ]]; then
    echo "$name: already installed in $venv"
    return 0
  fi
  echo "$name: installing $reqs into $venv"
  rm -rf "$venv"
  mkdir -p "$DIR"
  "$PY" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  # shellcheck disable=SC2086  # the requirement list is meant to split into words
  "$venv/bin/python" -m pip install --quiet $reqs
  "$venv/bin/python" -c "import sys; print('$name: python', sys.version.split()[0])"
  echo "$reqs" > "$venv/.kws-peer-reqs"      # written last: a half-done install is retried
  echo "$name: ok"
}

peers=("$@")
[[ ${#peers[@]} -eq 0 ]] && peers=(lce openwakeword)
for p in "${peers[@]}"; do
  install_peer "$p"
done
