#!/usr/bin/env bash
# Run the whole pipeline with one local Prefect server for all stages. Without arguments scripts/repro.py runs
# the stages TENFOLD_JOBS at a time where the DAG allows (one `dvc repro` per stage, the way DVC documents parallel
# stages), sharing cores // common.threads CPU slots; the default, auto, is cores // common.max_workers (1 on 2
# cores: a plain `dvc repro`). TENFOLD_FORCE=1 reruns every stage (`make pipeline FORCE=1`); with arguments it is a
# plain `dvc repro "$@"`.
# Every stage would otherwise start its own ephemeral Prefect API (~5-10 s each); with one server they connect
# in about a second and the runs stay browsable at the printed URL while the pipeline runs.
# TENFOLD_EPHEMERAL=1 skips the server (each stage then uses Prefect's ephemeral API, as a bare `dvc repro` does).
# A warm interpreter (flows/warm.py) imports torch, prefect and mlflow once; each stage's command is then a fork of
# it instead of a new interpreter (about 10 s less per stage). TENFOLD_COLD=1 starts every stage cold.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

server_pid=""
warm_pid=""
warm_dir=""
stop_server() {
  if [ -n "$warm_pid" ]; then kill "$warm_pid" 2>/dev/null; wait "$warm_pid" 2>/dev/null; warm_pid=""; fi
  if [ -n "$warm_dir" ]; then rm -rf "$warm_dir"; warm_dir=""; fi
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; server_pid=""; fi
}
trap stop_server EXIT

# the warm interpreter imports while the Prefect server starts; it serves only stages whose environment is its own
start_warm() {
  if [ -n "${TENFOLD_COLD:-}" ] || [ -n "${TENFOLD_WARM:-}" ]; then return; fi
  mkdir -p .prefect
  warm_dir=$(mktemp -d "${TMPDIR:-/tmp}/tenfold-warm-XXXXXX")
  PREFECT_API_URL="${1:-${PREFECT_API_URL:-}}" python -m flows.warm serve "$warm_dir/sock" \
    --ready-file "$warm_dir/ready" > .prefect/warm.log 2>&1 &
  warm_pid=$!
}
wait_warm() {
  if [ -z "$warm_pid" ]; then return; fi
  for _ in $(seq 1 240); do
    if [ -f "$warm_dir/ready" ] || ! kill -0 "$warm_pid" 2>/dev/null; then break; fi
    sleep 0.5
  done
  if [ -f "$warm_dir/ready" ]; then
    export TENFOLD_WARM="$warm_dir/sock"
  else
    echo "pipeline: warm interpreter did not start (see .prefect/warm.log); every stage starts its own" >&2
  fi
}

if [ -z "${PREFECT_API_URL:-}" ] && [ -z "${TENFOLD_EPHEMERAL:-}" ]; then
  port=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  mkdir -p .prefect
  prefect server start --host 127.0.0.1 --port "$port" > .prefect/server.log 2>&1 &
  server_pid=$!
  start_warm "http://127.0.0.1:$port/api"
  for _ in $(seq 1 120); do
    if python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/api/health', timeout=2)" 2>/dev/null; then
      export PREFECT_API_URL="http://127.0.0.1:$port/api"
      echo "pipeline: Prefect server at http://127.0.0.1:$port (UI) for this run"
      break
    fi
    sleep 1
  done
  if [ -z "${PREFECT_API_URL:-}" ]; then
    echo "pipeline: Prefect server did not start (see .prefect/server.log); stages use the ephemeral API" >&2
    stop_server  # the warm interpreter too: it was started for that server's URL
  fi
else
  start_warm
fi
wait_warm
jobs="${TENFOLD_JOBS:-auto}"
# without a server each stage starts its own temporary Prefect API on one sqlite file: keep those one at a time
if [ -z "${PREFECT_API_URL:-}" ]; then jobs=1; fi
if [ "$#" -gt 0 ]; then
  dvc repro "$@"
else
  python scripts/repro.py --jobs "$jobs" ${TENFOLD_FORCE:+--force}
fi
rc=$?
stop_server
exit "$rc"
