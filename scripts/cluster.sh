#!/usr/bin/env bash
# The whole stack on 127.0.0.1 (PostgreSQL, MLflow server, Prefect server + work pool + worker, Dask scheduler +
# 2 workers), logs and pids under .cluster/:
#   scripts/cluster.sh up [--only dask,...]   then `source .cluster/env`
#   scripts/cluster.sh status
#   scripts/cluster.sh down                   stops only what `up` started
# See scripts/cluster.py for what each service is and how it is started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
exec python scripts/cluster.py "$@"
