# Environment for every tenfold command (sourced by the Makefile): no telemetry, local state only.
export PATH="$PWD/.venv/bin:$PATH"
export PREFECT_HOME="${PREFECT_HOME:-$PWD/.prefect}"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export MLFLOW_DISABLE_TELEMETRY=true
export DO_NOT_TRACK=true
export DVC_NO_ANALYTICS=1
# The venv is shared by every checkout with the same pyproject.toml (its editable install points at whichever
# checkout ran setup last): put this checkout first so `tenfold` and the tests always run the code here.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
